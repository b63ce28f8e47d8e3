"""How closely a result computed today must match a pinned one, on any machine.

A golden file is written once, on one machine; the tests compare against it on every other.  float64
arithmetic on float64 inputs rounds the same way everywhere to far below the 1e-12 the analytic goldens use,
but float32 kernels (convolutions, matrix products, reductions, even element-wise ops compiled with or without
fused multiply-adds) give different bits on different CPUs: the summation order follows the instruction set,
the blocking and the thread count.  A float32 sum of ``n`` terms carries a rounding error of at most about
``n · eps · Σ|terms|`` (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., 2002, §4.2), so a
value that went through kernels of total fan-in ``n`` may differ between machines by that much relative to its
scale; covariances and the ratios built from them (indices) inherit a few times that.  The tolerance below is
that bound, relative to the largest magnitude of the pinned variable; an algorithmic change moves results by
orders of magnitude more.
"""

from __future__ import annotations

import numpy as np
import torch

#: error growth from a network output to the statistics and ratios computed from it
DERIVED = 4


def golden_atol(golden: np.ndarray, dtype: torch.dtype, fan_in: int) -> float:
    """Absolute tolerance for comparing a result computed in ``dtype`` through kernels of total ``fan_in``
    with its pinned ``golden`` values (non-finite entries are compared for equality separately)."""
    finite = np.abs(golden[np.isfinite(golden)])
    scale = float(finite.max()) if finite.size else 0.0
    return DERIVED * fan_in * torch.finfo(dtype).eps * scale


def assert_matches_golden(
    actual: np.ndarray, golden: np.ndarray, dtype: torch.dtype, fan_in: int, name: str
) -> None:
    """``actual`` equals ``golden`` up to :func:`golden_atol` (NaN and inf where the golden has them)."""
    np.testing.assert_array_equal(
        np.isfinite(actual), np.isfinite(golden), err_msg=f"{name}: non-finite entries"
    )
    np.testing.assert_allclose(actual, golden, rtol=0, atol=golden_atol(golden, dtype, fan_in), err_msg=name)

"""Bit-level agreement with scipy.stats.sobol_indices and SALib on identical evaluations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import sobol_indices

from augsens.core.api import sobol
from augsens.core.design import SobolDesign
from augsens.core.estimate import SobolAccumulator
from augsens.core.factors import Problem, Uniform

N_OUT = 10_000


def _problem() -> Problem:
    return Problem(
        [Uniform(f"x{i}", -math.pi, math.pi) for i in range(5)], groups={"pair": ["x0", "x3"]}
    )  # groups: pair, x1, x2, x4


def _vector_f():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(5, N_OUT, generator=gen, dtype=torch.float64)
    inter = torch.randn(N_OUT, generator=gen, dtype=torch.float64)
    offset = 100 * torch.rand(N_OUT, generator=gen, dtype=torch.float64)  # large means: centring matters

    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x) @ w + inter * x[:, 1:2] * torch.cos(x[:, 2:3]) ** 2 + offset

    return f


def _evaluations(design: SobolDesign, f) -> np.ndarray:
    unit = design.unit_rows(0, design.n)
    y = f(design.problem.decode(unit).reshape(-1, design.k))
    return y.reshape(design.n, design.rows_per_sample, -1).numpy()  # [n, R, s]


def test_sobol_matches_scipy_on_identical_evaluations():
    problem, f = _problem(), _vector_f()
    n, replicates = 2**8, 4
    ds = sobol(f, problem, n=n, seed=5, replicates=replicates, batch_size=700)
    y = _evaluations(SobolDesign(problem, n, seed=5, replicates=replicates), f)
    res = sobol_indices(
        func={"f_A": y[:, 0].T, "f_B": y[:, 1].T, "f_AB": y[:, 2:].transpose(1, 2, 0)},
        n=n,
    )  # f_A, f_B: (s, n); f_AB: (d, s, n)
    assert ds["S1"].shape == (problem.D, N_OUT)
    np.testing.assert_allclose(ds["S1"].values, res.first_order.T, rtol=0, atol=1e-8)
    np.testing.assert_allclose(ds["ST"].values, res.total_order.T, rtol=0, atol=1e-8)


def test_janon_and_second_order_match_direct_formulas():
    problem, f = _problem(), _vector_f()
    n = 2**7
    design = SobolDesign(problem, n, seed=2, second_order=True)
    y = _evaluations(design, f)[:, :, :50]
    acc = SobolAccumulator(problem.D, second_order=True, method="janon_2014")
    for start in range(0, n, 37):
        acc.update(torch.from_numpy(y[start : start + 37]))
    ds = acc.finalize(problem.group_names)
    D = problem.D
    a, b, ab, ba = y[:, 0], y[:, 1], y[:, 2 : 2 + D], y[:, 2 + D :]
    # Janon et al. (2014), eq. (6), with y = f(B), y^j = f(AB_j)
    for j in range(D):
        mu = np.mean((b + ab[:, j]) / 2, axis=0)
        s1 = (np.mean(b * ab[:, j], axis=0) - mu**2) / (np.mean((b**2 + ab[:, j] ** 2) / 2, axis=0) - mu**2)
        np.testing.assert_allclose(ds["S1"].values[j], s1, rtol=0, atol=1e-9)
    # Saltelli (2002) second order as SALib computes it, on outputs centred by the A/B pooled mean
    salib = pytest.importorskip("SALib.analyze.sobol")
    m = np.mean([a, b], axis=(0, 1))
    for j in range(D):
        for k in range(j + 1, D):
            ref = salib.second_order(a - m, ab[:, j] - m, ab[:, k] - m, ba[:, j] - m, b - m)
            np.testing.assert_allclose(ds["S2"].values[j, k], ref, rtol=0, atol=1e-9)
            np.testing.assert_allclose(ds["S2"].values[k, j], ref, rtol=0, atol=1e-9)

"""Precision targets: one number that summarises the 95 % half-widths, and the rule that stops a run.

A run with a precision target grows in *rounds* (:class:`augsens.core.design.SobolDesign`
``first``): the first round has ``n`` base samples split over the replicates, every later round gives
each replicate the next block of its own sequence and doubles the total, so every replicate is again a
``2^m``-point net when a round ends.  After each round the **precision** is computed (:data:`PRECISION_RULE`):

* per accumulator (one per checkpoint; the one output array of :func:`augsens.sobol`), the 95th
  percentile over output elements and factors of the 95 % Student-t half-width, separately for ``ST``
  and for ``S1`` (Sobol) or the Shapley effect (Shapley; the exact method also ``ST``), over the elements
  whose half-width is finite (elements that do not vary have none);
* the largest of those percentiles.

The run stops when the precision is at or below the target (``"precision reached"``), when the design is
used up (``"max_n reached"``), or when the next round, which costs as much as all rounds before it, would
end after the time limit (``"time limit"``).  This is the block-wise rule of OpenTURNS'
``SobolSimulationAlgorithm`` (it stops on the width of the index intervals) and of qmcpy's
``CubQMCRepStudentT`` (independent randomisations, Student t, sample size doubled until the half-width is
below the tolerance), applied to a percentile of a field of indices instead of one integral.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import xarray as xr

from augsens.core.estimate.protocol import Accumulator

__all__ = ["PRECISION_RULE", "STOP_REASONS", "precision_of", "stop_reason"]

#: The summary of half-widths that a precision target bounds (recorded in results).
PRECISION_RULE = (
    "the largest, over output arrays, of the 95th percentile over elements and factors with a finite "
    "half-width of the 95 % Student-t half-widths of ST and of S1 (Sobol') or of the Shapley effect"
)

#: Why a run stopped: a fixed-size run uses the whole design ("n reached").
STOP_REASONS = ("precision reached", "max_n reached", "time limit", "n reached")

#: Quantile of the half-widths that the target bounds.
_QUANTILE = 0.95

#: The quantities whose half-widths the rule reads (those a result has).
_NAMES = ("S1", "ST", "shapley")


def _half_widths(item: Accumulator | xr.Dataset) -> list[torch.Tensor]:
    """Half-widths of the rule's quantities: from an accumulator (computed) or a results Dataset."""
    if isinstance(item, xr.Dataset):
        return [torch.from_numpy(item[f"{n}_conf"].values) for n in _NAMES if f"{n}_conf" in item]
    half_widths = item.half_widths()
    return [half_widths[n] for n in _NAMES if n in half_widths]


def _percentile(values: torch.Tensor) -> float:
    finite = values[torch.isfinite(values)].flatten()
    if finite.numel() == 0:
        return math.nan
    # kthvalue works on tensors of any size (torch.quantile refuses more than 2^24 values)
    k = max(1, math.ceil(_QUANTILE * finite.numel()))
    return float(finite.kthvalue(k).values)


def precision_of(results: Iterable[Accumulator | xr.Dataset]) -> float:
    """The precision of a set of results by :data:`PRECISION_RULE` (NaN when none is defined).

    Parameters
    ----------
    results : iterable of accumulators or xarray.Dataset
        Sobol or Shapley accumulators (one per checkpoint) with ``replicates >= 2``, or their finalised
        datasets (``S1_conf``, ``ST_conf``, ``shapley_conf``); others are skipped.

    Returns
    -------
    float
        The largest 95th percentile of the half-widths; NaN with one replicate or no varying element.

    Examples
    --------
    >>> import torch
    >>> from augsens.core.estimate import SobolAccumulator
    >>> acc = SobolAccumulator(2, replicates=4)
    >>> g = torch.Generator().manual_seed(0)
    >>> for r in range(4):
    ...     acc.update(torch.randn(64, 4, 10, generator=g), replicate=r)
    >>> 0 < precision_of([acc]) < 1
    True
    """
    worst = math.nan
    for item in results:
        for conf in _half_widths(item):
            p = _percentile(conf)
            if not math.isnan(p):
                worst = p if math.isnan(worst) else max(worst, p)
    return worst


def stop_reason(
    precision: float,
    target: float,
    *,
    done: int,
    total: int,
    elapsed: float,
    time_limit: float,
) -> str | None:
    """Why a run stops at the end of a round, or ``None`` to run the next round.

    Parameters
    ----------
    precision : float
        The precision now (:func:`precision_of`); NaN (no interval yet) never meets a target.
    target : float
        The precision target (``0``: none, the run uses the whole design).
    done, total : int
        Base samples done and in the whole design.
    elapsed : float
        Seconds spent so far.
    time_limit : float
        Seconds allowed (``0``: none).  The next round has ``done`` base samples, as many as all rounds
        before it, so it is predicted to take ``elapsed`` seconds.
    """
    if target > 0 and precision <= target:  # NaN compares False
        return "precision reached"
    if done >= total:
        return "max_n reached" if target > 0 else "n reached"
    if time_limit > 0 and elapsed + elapsed * (min(total, 2 * done) - done) / max(done, 1) > time_limit:
        return "time limit"
    return None

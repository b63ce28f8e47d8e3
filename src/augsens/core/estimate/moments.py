"""Streaming mean, variance and coefficient of variation per output element, and the same moments read
off the state of any accumulator that tracks output rows (:class:`OutputRowsAccumulator`)."""

from __future__ import annotations

from typing import Any

import torch

from augsens.core.estimate._base import CoMomentAccumulator, Ratio, chan_merge

__all__ = ["MomentsAccumulator", "OutputRowsAccumulator", "COV_EPS"]

#: Added to ``|mean|`` in the coefficient of variation so dead (all-zero) units stay finite.
COV_EPS = 1e-5


class OutputRowsAccumulator(CoMomentAccumulator):
    """A co-moment accumulator whose variables include output rows, with their ``M2`` among its pairs:
    the outputs' mean and variance come from its state for free (:meth:`pooled_moments`)."""

    def pooled_moments(self) -> MomentsAccumulator:
        """Mean and variance of the outputs over every row whose ``M2`` this accumulator tracks, all
        replicates pooled, as a :class:`~augsens.core.estimate.MomentsAccumulator` (no extra pass over the
        outputs: Sobol tracks rows A, B and AB_j; the Shapley accumulators the full row x).

        Rows of one base sample are correlated, so the variance pools ``Σ_r M2_r + n Σ_r (mean_r -
        mean)²`` over ``R n - 1`` degrees of freedom: consistent, with an O(1/n) bias.
        """
        out = MomentsAccumulator(dtype=self.dtype, device=self.device)
        out.input_dtype = self.input_dtype
        if self.out_shape is None:
            return out
        diag = [p for p, (i, j) in enumerate(self._pairs) if i == j]
        rows = [self._pairs[p][0] for p in diag]
        count, means, comoment = self.state_tensors()
        k = torch.arange(len(rows), device=count.device)
        n, mean, m2 = count[0], means[0, rows], comoment[0, diag]
        for r in range(1, self.replicates):  # replicate slots (a handful), never samples
            n, mean, m2 = chan_merge(n, mean, m2, count[r], means[r, rows], comoment[r, diag], k, k)
        grand = mean.mean(0)
        n_f = n.to(self.dtype)
        out.allocate(self.out_shape, count.device)
        out_count, out_mean, out_comoment = out.state_tensors()
        out_count[0] = n * len(rows)
        out_mean[0, 0] = grand
        out_comoment[0, 0] = m2.sum(0) + n_f * (mean - grand).square().sum(0)
        out.seen = [sum(self.seen) * len(rows)]
        return out


class MomentsAccumulator(OutputRowsAccumulator):
    """Mean, variance (``ddof=1``) and ``cov = sd / (|mean| + 1e-5)`` of every output element.

    Parameters
    ----------
    rows_per_sample : int, optional
        ``None`` (default): :meth:`update` takes ``[b, *out]``.  An integer ``R``: it takes
        ``[b, R, *out]`` and treats each row as a sample (every design row has the output's marginal law).
    dtype, device
        State dtype (float64 default) and device (default: that of the first batch).
    work_dtype : torch.dtype, optional
        Per-batch arithmetic for float32 or narrower outputs (default: the state dtype);
        ``torch.float32`` beside a float64 state merges batches into a float32 block first
        (:mod:`augsens.core.estimate._base`).

    Notes
    -----
    State per element: ``count``, mean and ``M2`` (Welford / Chan), 3 numbers.  ``aggregate`` averages
    the element means and pools the variances (``Σ M2 / Σ (n - 1)``).  An element without a single finite
    value has NaN ``mean``, ``var`` and ``cov`` and is left out of aggregates.
    """

    def __init__(
        self,
        *,
        rows_per_sample: int | None = None,
        dtype: torch.dtype = torch.float64,
        work_dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if rows_per_sample is not None and (not isinstance(rows_per_sample, int) or rows_per_sample < 1):
            raise ValueError(f"rows_per_sample must be None or a positive integer, got {rows_per_sample!r}")
        self.rows_per_sample = rows_per_sample
        self._rows = rows_per_sample
        self._rows_flattened = rows_per_sample
        super().__init__(1, [(0, 0)], replicates=1, dtype=dtype, work_dtype=work_dtype, device=device)

    def _config(self) -> dict[str, Any]:
        return {"rows_per_sample": self.rows_per_sample}

    def update(self, y: torch.Tensor) -> None:
        """Add outputs ``[b, *out]`` (or ``[b, R, *out]``); non-finite values are dropped per element."""
        v = self._check_batch(y, 0).flatten(0, 1)[:, None]  # rows become samples: [b R, 1, O]
        self._accumulate(v, torch.isfinite(v[:, 0]), 0)

    def _estimates(self, n: torch.Tensor, mean: torch.Tensor, com: torch.Tensor) -> dict[str, Ratio]:
        mean = mean[..., 0, :]
        # an element that never saw a finite value has no mean (0 / 0 = NaN, not the state's initial 0),
        # and it adds nothing to an aggregate's average of element means
        seen = (n > 0).to(mean.dtype)
        return {
            "mean": Ratio(mean * seen, seen, (), guard=False),
            "var": Ratio(com[..., 0, :], (n - 1).clamp_min(0), (), guard=False),
        }

    def _derived(
        self, values: dict[str, torch.Tensor], dims: dict[str, tuple[str, ...]]
    ) -> tuple[dict[str, torch.Tensor], dict[str, tuple[str, ...]]]:
        values["cov"] = values["var"].sqrt() / (values["mean"].abs() + COV_EPS)
        dims["cov"] = ()
        return values, dims

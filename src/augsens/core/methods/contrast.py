"""The treatment–control contrast: each treatment against the untreated input, per output element.

The study kind ``contrast`` (:mod:`augsens.engine.contrast`) evaluates, for every input, the original
(control) and ``draws[a]`` treated copies of each treatment ``a`` (an augmentation alone).  Per output
element its :class:`ContrastAccumulator` gives the paired Wilcoxon signed-rank test (zsplit, continuity
correction, normal approximation), the matched-pairs rank-biserial correlation, the point-biserial
correlation and Benjamini–Yekutieli adjusted p-values (:mod:`augsens.core.paired` holds the formulas).

The method runs in the one loop (:func:`augsens.core.loop.run`) like every other: a *base sample* is one
input and its ``R = 1 + sum(draws)`` rows are the original followed by each treatment's copies; the
evaluator returns their outputs flattened over all checkpoints.

Memory: ranks do not stream (the Wilcoxon test sees every difference of an element at once), so the
output elements are cut into blocks of ``block`` elements and the design makes one *pass* over the
inputs per block (a round of the design, base samples ``p * n .. (p + 1) * n - 1`` for pass ``p``).
Only the current block's differences are held (``n_pairs[a] x block`` float32 per treatment), ranked
at the end of its pass and reduced to per-element statistics; the evaluator is asked for the block's
elements only (:meth:`Contrast.span`), except in the first pass, whose every element feeds the
point-biserial moments (which stream, merged with Chan's formula) and whose batches are bounded in bytes
(``first_pass_bytes``).  Treatment draws are addressable
(counter-based on ``(seed, treatment, input, draw)``), so every pass regenerates identical copies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

from augsens.core.design import Design
from augsens.core.estimate import MomentsAccumulator
from augsens.core.methods._base import Batch, Method
from augsens.core.paired import benjamini_yekutieli, point_biserial, rank_biserial, wilcoxon_zsplit

__all__ = ["Contrast", "ContrastAccumulator", "ContrastDesign", "block_for", "moments_of", "STATISTICS"]

#: the per-element maps of a contrast, ``[treatment, element]``
STATISTICS = ("wilcoxon_stat", "wilcoxon_z", "p_value", "rank_biserial", "point_biserial")


def moments_of(m: MomentsAccumulator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-element count, mean and centred sum of squares of a moments accumulator's state."""
    count, mean, comoment = m.state_tensors()
    return count[0].to(torch.float64), mean[0, 0], comoment[0, 0]


class ContrastDesign(Design):
    """``passes`` walks over ``n`` inputs: base sample ``p * n + i`` is input ``i`` in pass ``p``.

    Each pass is a round (a batch never straddles two); there are no unit rows to draw (``k = 0``): a
    row is the original or a treated copy, by its position in the base sample.  Batches of the first
    pass hold at most ``first_pass_batch`` inputs (its outputs span every element).
    """

    def __init__(
        self,
        n_inputs: int,
        passes: int,
        rows_per_sample: int,
        labels: list[str],
        seed: int,
        first_pass_batch: int | None = None,
    ) -> None:
        self.inputs = n_inputs
        self.passes = passes
        self.n = n_inputs * passes
        self.seed = seed
        self.replicates = 1
        self.design_name = "iid"  # copies are drawn by a counter-based generator, not from a Sobol' net
        self.rows_per_sample = rows_per_sample
        self.labels = labels
        self.round_ends = [n_inputs * (p + 1) for p in range(passes)]
        self.first_pass_batch = first_pass_batch or n_inputs

    def unit_rows(self, start: int, count: int) -> torch.Tensor:
        self._check_range(start, count)
        return torch.zeros(count, self.rows_per_sample, 0, dtype=torch.float64)

    def split(self, start: int, count: int) -> list[tuple[int, int, int]]:
        self._check_range(start, count)
        out, stop = [], start + count
        while start < stop:
            end = min(stop, (start // self.inputs + 1) * self.inputs)  # the end of this pass
            out.append((0, start, end - start))
            start = end
        return out

    def batches(self, batch: int, start: int = 0, stop: int | None = None) -> list[tuple[int, int, int]]:
        if batch < 1:
            raise ValueError(f"batch must be a positive number of base samples, got {batch!r}")
        stop = self.n if stop is None else min(stop, self.n)
        out: list[tuple[int, int, int]] = []
        for r, s, c in self.split(start, max(0, stop - start)):
            size = min(batch, self.first_pass_batch) if s < self.inputs else batch
            out.extend((r, b, min(size, s + c - b)) for b in range(s, s + c, size))
        return out


class ContrastAccumulator:
    """The contrast statistics of ``len(draws)`` treatments over ``total`` output elements.

    Parameters
    ----------
    draws : sequence of int
        Treated copies per input of each treatment (rows ``1 + sum(draws[:a]) ..`` of a base sample).
    n_inputs : int
        Inputs per pass.
    blocks : sequence of (int, int)
        The element range ``[lo, hi)`` of each pass.
    pairing : {"draw", "image"}
        ``"draw"``: one pair per copy (the original reused); ``"image"``: one pair per input, the
        original against the mean of its copies.
    signed : bool
        Signed rank-biserial values (``False``: the authors' unsigned ones).
    device : torch.device, optional
        Where the differences are held and ranked.
    """

    def __init__(
        self,
        draws: Sequence[int],
        n_inputs: int,
        blocks: Sequence[tuple[int, int]],
        *,
        pairing: Literal["draw", "image"],
        signed: bool,
        device: torch.device | str | None = None,
    ) -> None:
        self.draws = list(draws)
        self.n_inputs = n_inputs
        self.blocks = list(blocks)
        self.total = self.blocks[-1][1]
        self.pairing = pairing
        self.signed = signed
        self.device = device
        self.n_pairs = [n_inputs * (d if pairing == "draw" else 1) for d in self.draws]
        self.maps = {name: np.full((len(self.draws), self.total), np.nan) for name in STATISTICS}
        # point-biserial streams: per-element moments of the originals and of each treatment's copies
        self.moments0 = MomentsAccumulator(device=device)
        self.moments1 = [MomentsAccumulator(device=device) for _ in self.draws]
        self.untested = 0
        self.passes_done = 0
        self._buffers: list[torch.Tensor] = []

    def update(self, y: torch.Tensor, *, block: int, first: int) -> None:
        """Add outputs ``y [count, R, width]`` of inputs ``first ..`` in pass ``block``; ``width`` spans
        the whole output in pass 0 (for the moments) and the block's elements after it."""
        lo, hi = self.blocks[block]
        count, width = y.shape[0], hi - lo
        offset = 0 if block == 0 else lo  # the element y's first column holds
        if first == 0:
            self._buffers = [
                torch.empty(m, width, dtype=torch.float32, device=y.device) for m in self.n_pairs
            ]
        if block == 0:
            self.moments0.update(y[:, 0])
        orig = y[:, 0, lo - offset : hi - offset]
        row = 1
        for a, d in enumerate(self.draws):
            copies = y[:, row : row + d]
            row += d
            if block == 0:
                self.moments1[a].update(copies.reshape(count * d, -1))
            diff = copies[..., lo - offset : hi - offset] - orig[:, None, :]
            if self.pairing == "draw":
                self._buffers[a][first * d : (first + count) * d] = diff.reshape(-1, width)
            else:
                self._buffers[a][first : first + count] = diff.mean(dim=1)
        if first + count == self.n_inputs:
            self._rank(lo, hi)

    def _rank(self, lo: int, hi: int) -> None:
        """The end of a pass: rank the block's differences into its statistics, and free them."""
        for a, buf in enumerate(self._buffers):
            res = wilcoxon_zsplit(buf)
            self.untested += int(torch.isnan(res.p_value).sum())
            self.maps["wilcoxon_stat"][a, lo:hi] = res.statistic.cpu().numpy()
            self.maps["wilcoxon_z"][a, lo:hi] = res.z.cpu().numpy()
            self.maps["p_value"][a, lo:hi] = res.p_value.cpu().numpy()
            self.maps["rank_biserial"][a, lo:hi] = (
                rank_biserial(res.r_plus, res.r_minus, res.n, signed=self.signed).cpu().numpy()
            )
        self._buffers = []
        self.passes_done += 1
        if self.passes_done == len(self.blocks):
            for a, m1 in enumerate(self.moments1):
                r = point_biserial(*moments_of(self.moments0), *moments_of(m1))
                self.maps["point_biserial"][a] = r.cpu().numpy()


class Contrast(Method[ContrastAccumulator]):
    """Each treatment alone against the original: ``R = 1 + sum(draws)`` rows per input, one pass per
    block of output elements (module docstring).

    Parameters
    ----------
    treatments : sequence of str
        Treatment names (the ``augmentation`` coordinate of the results).
    draws : sequence of int
        Copies per input of each treatment.
    n_inputs : int
        Inputs compared (base samples per pass).
    sizes : sequence of int
        Elements of each output (checkpoint), in order; their concatenation is cut into blocks.
    block : int
        Elements per pass.
    pairing : {"draw", "image"}
    signed : bool
        As :class:`ContrastAccumulator`.
    seed : int, default 0
        The key of the treatments' draws (recorded).
    first_pass_bytes : int, optional
        Bound on a first-pass batch's float32 outputs (``R`` rows over every element): its batches hold
        at most ``first_pass_bytes // (4 R total)`` inputs (at least one).  Default: no bound.
    device : torch.device or str, optional
        Where the differences are held.

    Notes
    -----
    A contrast has no factors, so it is not built from a :class:`~augsens.core.factors.Problem` and is
    not in :data:`~augsens.core.methods.METHODS`; the study kind ``contrast`` builds it from its config
    keys (``draws``, ``pairing``, ``n_images``, ``block_elements``).
    """

    name = "contrast"
    sensitivity = False
    pooled_moments = False
    design: ContrastDesign

    def __init__(
        self,
        treatments: Sequence[str],
        draws: Sequence[int],
        n_inputs: int,
        sizes: Sequence[int],
        *,
        block: int,
        pairing: Literal["draw", "image"],
        signed: bool,
        seed: int = 0,
        first_pass_bytes: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        self.treatments = list(treatments)
        self.draws = list(draws)
        self.sizes = list(sizes)
        self.offsets = [0, *np.cumsum(self.sizes).tolist()]
        total = self.offsets[-1]
        self.blocks = [(lo, min(total, lo + block)) for lo in range(0, total, block)]
        self.block = block
        self.pairing: Literal["draw", "image"] = pairing
        self.signed = signed
        self.replicates = 1
        self.dtype = torch.float64
        self.device = device
        labels = [
            "original",
            *(f"{t}[{j}]" for t, d in zip(self.treatments, self.draws, strict=True) for j in range(d)),
        ]
        rows = 1 + sum(self.draws)
        # the first pass's outputs span every element: as many inputs per batch as fit first_pass_bytes
        cap = max(1, first_pass_bytes // (4 * rows * total)) if first_pass_bytes else None
        self.design = ContrastDesign(n_inputs, len(self.blocks), rows, labels, seed, first_pass_batch=cap)

    @property
    def n_inputs(self) -> int:
        """Inputs compared (base samples per pass)."""
        return self.design.inputs

    def position(self, batch: Batch) -> tuple[int, int]:
        """``(pass, first input)`` of a batch."""
        return divmod(batch.start, self.n_inputs)

    def span(self, block: int) -> tuple[int, int]:
        """The element range ``[lo, hi)`` the outputs of pass ``block`` must cover: every element in the
        first pass (the point-biserial moments see them all), the block's after it."""
        return (0, self.offsets[-1]) if block == 0 else self.blocks[block]

    def outputs_in(self, lo: int, hi: int) -> list[int]:
        """Indices of the outputs (checkpoints) with elements in ``[lo, hi)``."""
        return [i for i in range(len(self.sizes)) if self.offsets[i] < hi and self.offsets[i + 1] > lo]

    def accumulator(self) -> ContrastAccumulator:
        return ContrastAccumulator(
            self.draws,
            self.n_inputs,
            self.blocks,
            pairing=self.pairing,
            signed=self.signed,
            device=self.device,
        )

    def update(self, acc: ContrastAccumulator, y: torch.Tensor, batch: Batch) -> None:
        block, first = self.position(batch)
        acc.update(y.reshape(batch.count, self.rows_per_sample, -1), block=block, first=first)

    def results(
        self,
        acc: ContrastAccumulator,
        outputs: Mapping[str, tuple[tuple[int, ...], tuple[str, ...]]],
        *,
        swap_effect_names: bool = False,
    ) -> dict[str, xr.Dataset]:
        """One dataset per output ``{name: (shape, dims)}`` (consecutive elements, in order): the maps over
        ``("augmentation", *dims)``, ``p_value_by`` and ``n_pairs``.

        Benjamini–Yekutieli runs over every element of every output, one family per treatment (the
        authors' intended grouping).  ``swap_effect_names`` stores the point-biserial map under
        ``rank_biserial`` and vice versa, as the authors' files did.
        """
        by_all = np.stack([benjamini_yekutieli(row) for row in acc.maps["p_value"]])
        nodes: dict[str, xr.Dataset] = {}
        hi = 0
        for name, (shape, dims) in outputs.items():
            lo, hi = hi, hi + math.prod(shape)
            data = {k: v[:, lo:hi] for k, v in acc.maps.items()}
            data["p_value_by"] = by_all[:, lo:hi]
            if swap_effect_names:
                data["rank_biserial"], data["point_biserial"] = data["point_biserial"], data["rank_biserial"]
            full = ("augmentation", *dims)
            ds = xr.Dataset(
                {k: (full, v.reshape(len(self.treatments), *shape)) for k, v in sorted(data.items())},
                coords={
                    "augmentation": self.treatments,
                    **{d: np.arange(s) for d, s in zip(dims, shape, strict=True)},
                },
            )
            ds["n_pairs"] = ("augmentation", np.asarray(acc.n_pairs, dtype=np.int64))
            nodes[name] = ds
        if hi != self.offsets[-1]:
            raise ValueError(f"the outputs hold {hi} elements, the contrast {self.offsets[-1]}")
        return nodes

    def finalize(
        self,
        acc: ContrastAccumulator,
        factors: Sequence[str] | None = None,
        dims: Sequence[str] | None = None,
        coords: Mapping[str, Any] | None = None,
    ) -> xr.Dataset:
        """The maps of a contrast of one output, its elements along ``dims`` (default ``("element",)``;
        one dim); a study of several outputs takes :meth:`results`."""
        names = tuple(dims) if dims is not None else ("element",)
        if len(names) != 1:
            raise ValueError(f"finalize takes the dim of one flat output, got {names!r}: use results()")
        return self.results(acc, {"output": ((self.offsets[-1],), names)})["output"]

    def attrs(self) -> dict[str, Any]:
        return {
            "seed": self.design.seed,
            "rows_per_sample": self.rows_per_sample,
            "n_passes": len(self.blocks),
            "block_elements": self.block,
        }

    def __repr__(self) -> str:
        return (
            f"Contrast({len(self.treatments)} treatments, {self.n_inputs} inputs, {len(self.blocks)} passes)"
        )


def block_for(n_pairs: Sequence[int], budget_bytes: int, bytes_per_pair_element: int) -> int:
    """Elements per block whose differences and rank workspace fit ``budget_bytes``: each element holds
    ``4 * sum(n_pairs)`` bytes of float32 differences and ``bytes_per_pair_element * max(n_pairs)`` of
    sort workspace while one treatment is ranked."""
    per_element = 4 * sum(n_pairs) + bytes_per_pair_element * max(n_pairs)
    return max(1, budget_bytes // per_element)

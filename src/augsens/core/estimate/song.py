"""The authors' Song-type Shapley accumulator (double loop), kept for fidelity (study kind ``shapley-song``).

Its design is :class:`augsens.core.design.SongShapleyDesign`; the method that pairs them is
:class:`augsens.core.methods.song.SongShapley`.

Song, Nelson & Staum (2016), random-permutation version, as in ``docs/paper.md`` §8: for each of
``Np`` random permutations ``π`` of the players and each position ``i``, hold the players after ``i``
fixed at ``No`` outer draws, re-draw the players ``π[:i+1]`` ``Ni`` times (inner draws), and take the cost

    c(π, i) = mean over outer draws of Var_inner(Y)        (ddof = 1)
            ≈ E[Var(Y | X_{π[i+1:]})];

then ``Sh[π[i]] += c(π, i) − c(π, i−1)`` with ``c(π, −1) = 0``, and finally ``Sh /= Np``.  The sum over
players of the raw effects estimates Var(Y).  As the authors did, effects are clipped at 0 and divided by
their sum, so the reported shares sum to 1.

The double loop exists for dependent inputs; with independent factors, as here, the one-loop permutation
estimator (:class:`augsens.core.estimate.PermutationShapleyAccumulator`)
or the exact design is cheaper for the
same accuracy.  Players here are factor groups (augmentations, order, image, partition); the authors used
individual variables and summed them per group, which is not the Shapley effect of the group.

Reference: Song, E., Nelson, B. L., Staum, J. (2016). Shapley effects for global sensitivity analysis:
theory and computation. SIAM/ASA J. Uncertainty Quantification 4(1), 1060–1083. doi:10.1137/15M1048070
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import torch
import xarray as xr

from augsens.core.estimate._base import group_sum
from augsens.errors import UserInputError

__all__ = ["SongShapleyAccumulator"]


class SongShapleyAccumulator:
    """Running Song-type Shapley sums; blocks must arrive in design order within a permutation.

    Parameters
    ----------
    D : int
        Number of players (factor groups).
    outer, inner : int
        Rows per block: ``outer`` outer draws x ``inner`` inner draws (``inner >= 2``).
    dtype : torch.dtype, default torch.float64
        State dtype.
    device : torch.device or str, optional
        Where the state lives (default: the device of the first batch).

    Notes
    -----
    State: ``sh [D, *out]`` (sums of cost increments), ``count [D, *out]`` (increments summed per player),
    ``prev [*out]`` (last cost of the current permutation), ``nonfinite [*out]`` (blocks whose cost was
    not finite) and the number of blocks.  Two states merge when both hold whole permutations.

    The protocol is that of :mod:`augsens.core.estimate` with one replicate slot (the double loop has no
    randomised copies of its design): ``update``, ``merge`` (returns ``self``), ``state_dict`` /
    ``from_state_dict``, ``to``, ``finalize``, ``aggregate``.  A block with a NaN or inf row at an element
    has no cost there; the increments that need that cost (its own and the next position's) are left
    out for that element only, so ``Sh_j`` averages the permutations whose increment for ``j`` is finite.
    ``finalize`` reports the dropped blocks per element in ``nonfinite``.
    """

    _VERSION = 2
    #: the double loop has no randomised copies of its design: one replicate slot, no half-widths
    replicates = 1
    conf_names: tuple[str, ...] = ()

    def __init__(
        self, D: int, outer: int, inner: int, *, dtype: torch.dtype = torch.float64, device: Any = None
    ):
        self.D, self.outer, self.inner = D, outer, inner
        self.dtype, self.device = dtype, torch.device(device) if device is not None else None
        self.sh: torch.Tensor | None = None
        self.count: torch.Tensor | None = None
        self.prev: torch.Tensor | None = None
        self.nonfinite: torch.Tensor | None = None
        self.blocks = 0

    def _config(self) -> dict[str, Any]:
        return {"D": self.D, "outer": self.outer, "inner": self.inner}

    @property
    def n(self) -> int:
        """Blocks (the design's base samples) seen."""
        return self.blocks

    @property
    def out_shape(self) -> tuple[int, ...] | None:
        """Shape of one sample's output (``None`` before the first update)."""
        return None if self.prev is None else tuple(self.prev.shape)

    def state_tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(sh, count, prev, nonfinite)`` once allocated (set together by the first update or merge)."""
        sh, count, prev, nonfinite = self.sh, self.count, self.prev, self.nonfinite
        assert sh is not None and count is not None and prev is not None and nonfinite is not None, (
            "state is not allocated"
        )
        return sh, count, prev, nonfinite

    def allocate(
        self, out_shape: tuple[int, ...], device: torch.device, *, pending_block: bool = False
    ) -> None:
        """Zero state for outputs of shape ``out_shape`` (what the first update or merge does); the double
        loop keeps no pending block, so ``pending_block`` changes nothing."""
        dev = self.device if self.device is not None else device
        self.device = dev
        self.sh = torch.zeros(self.D, *out_shape, dtype=self.dtype, device=dev)
        self.count = torch.zeros(self.D, *out_shape, dtype=torch.int64, device=dev)
        self.prev = torch.zeros(out_shape, dtype=self.dtype, device=dev)
        self.nonfinite = torch.zeros(out_shape, dtype=torch.int64, device=dev)

    def update(
        self, y: torch.Tensor, perms: torch.Tensor, positions: torch.Tensor, replicate: int = 0
    ) -> None:
        """``y [count, No * Ni, *out]`` for consecutive blocks with their permutations and positions
        (:meth:`augsens.core.design.SongShapleyDesign.blocks`); ``replicate`` must be 0."""
        if replicate != 0:
            raise ValueError(
                f"replicate={replicate!r}: the Song-type double loop has one replicate slot (0) only"
            )
        rows = self.outer * self.inner
        if y.dim() < 2 or y.shape[1] != rows:
            raise ValueError(
                f"SongShapleyAccumulator.update expects outputs [blocks, {rows}, *out] "
                f"(outer {self.outer} x inner {self.inner} rows per block), got shape {tuple(y.shape)}"
            )
        count = y.shape[0]
        out_shape = tuple(y.shape[2:])
        if self.prev is None:
            self.allocate(out_shape, y.device)
        elif out_shape != self.out_shape:
            raise ValueError(
                f"output shape {out_shape} differs from the shape {self.out_shape} this accumulator was "
                "started with"
            )
        sh, counts, last, nonfinite = self.state_tensors()
        v = y.to(device=sh.device, dtype=self.dtype).reshape(count, self.outer, self.inner, *out_shape)
        cost = v.var(dim=2, unbiased=True).mean(dim=1)  # [count, *out], vectorised over blocks
        nonfinite += (~torch.isfinite(cost)).sum(0)
        for b in range(count):  # sequential by definition: each increment needs the previous cost
            i = int(positions[b])
            step = cost[b] if i == 0 else cost[b] - last  # NaN / inf where either cost is not finite
            ok = torch.isfinite(step)
            j = int(perms[b, i])
            sh[j] += torch.where(ok, step, 0.0)
            counts[j] += ok
            self.prev = last = cost[b]
        self.blocks += count

    def merge(self, other: SongShapleyAccumulator) -> SongShapleyAccumulator:
        """Add ``other``'s permutations (in place); returns ``self``.

        Raises
        ------
        UserInputError
            ``other`` has another class or configuration (players, outer, inner draws).
        ValueError
            Either state stops inside a permutation.
        """
        if type(other) is not type(self) or other._config() != self._config():
            raise UserInputError(
                f"cannot merge {type(other).__name__}({other._config()}) into "
                f"{type(self).__name__}({self._config()}): class and configuration must match"
            )
        if self.blocks % self.D or other.blocks % other.D:
            raise ValueError("Song-type Shapley states merge only at permutation boundaries")
        if other.prev is None:
            return self
        o_sh, o_count, o_prev, o_nonfinite = other.state_tensors()
        if self.prev is None:
            self.allocate(tuple(o_prev.shape), o_prev.device)
        elif tuple(o_prev.shape) != self.out_shape:
            raise ValueError(f"cannot merge output shape {tuple(o_prev.shape)} into {self.out_shape}")
        sh, count, _, nonfinite = self.state_tensors()
        sh += o_sh.to(sh.device, self.dtype)
        count += o_count.to(count.device)
        nonfinite += o_nonfinite.to(nonfinite.device)
        self.blocks += other.blocks
        return self

    def to(self, device: Any) -> SongShapleyAccumulator:
        """Move the state to ``device`` (in place); returns ``self``."""
        self.device = torch.device(device)
        if self.prev is not None:
            self.sh, self.count, self.prev, self.nonfinite = (t.to(self.device) for t in self.state_tensors())
        return self

    def half_widths(self) -> dict[str, torch.Tensor]:
        """None: one replicate slot gives no confidence intervals."""
        return {}

    def pooled_moments(self) -> NoReturn:
        """Not available: the state holds sums of cost increments, not the outputs' moments."""
        raise TypeError(
            "SongShapleyAccumulator keeps sums of cost increments, not the outputs' moments: use a "
            "MomentsAccumulator beside it"
        )

    def state_dict(self) -> dict[str, Any]:
        """Plain, versioned state (tensors, ints and strings only)."""
        return {
            "class": type(self).__name__,
            "version": self._VERSION,
            **self._config(),
            "dtype": str(self.dtype).removeprefix("torch."),
            "blocks": self.blocks,
            "sh": self.sh,
            "count": self.count,
            "prev": self.prev,
            "nonfinite": self.nonfinite,
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> SongShapleyAccumulator:
        """Rebuild an accumulator from :meth:`state_dict`."""
        if state.get("class") != cls.__name__ or state.get("version") != cls._VERSION:
            raise ValueError(
                f"not a {cls.__name__} state of version {cls._VERSION}: class {state.get('class')!r}, "
                f"version {state.get('version')!r}"
            )
        acc = cls(state["D"], state["outer"], state["inner"], dtype=getattr(torch, state["dtype"]))
        acc.blocks = int(state["blocks"])
        acc.sh, acc.count, acc.prev, acc.nonfinite = (
            state["sh"], state["count"], state["prev"], state["nonfinite"]
        )  # fmt: skip
        if acc.prev is not None:
            acc.device = acc.prev.device
        return acc

    def _raw(self) -> torch.Tensor:
        """Effects ``[D, *out]``: mean increment per player (NaN where no increment was finite)."""
        if self.prev is None or self.blocks < self.D:
            raise ValueError("no complete permutation accumulated yet")
        sh, count, _, _ = self.state_tensors()
        return sh / count.to(self.dtype)

    def _attrs(self, nonfinite: torch.Tensor) -> dict[str, Any]:
        return {
            "n": self.n,
            "replicates": 1,
            "state_dtype": str(self.dtype),
            "shapley_method": "song (Song, Nelson & Staum 2016, double loop)",
            "nonfinite_total": int(nonfinite.sum()),
        }

    def finalize(
        self,
        factors: Sequence[str] | None = None,
        dims: Sequence[str] | None = None,
        coords: Mapping[str, Any] | None = None,
    ) -> xr.Dataset:
        """``shapley`` (clipped at 0, normalised to sum 1 per element, as the authors), ``shapley_raw``
        and ``nonfinite`` (blocks dropped per element); ``factors`` default to ``"0", "1", ...``."""
        raw = self._raw()
        nonfinite = self.state_tensors()[3]
        clipped = raw.clamp_min(0)
        total = clipped.sum(0, keepdim=True)
        shares = torch.where(total > 0, clipped / torch.where(total > 0, total, 1), torch.nan)
        out_dims = tuple(dims) if dims is not None else tuple(f"dim_{i}" for i in range(raw.ndim - 1))
        d = ("factor", *out_dims)
        ds = xr.Dataset(
            {
                "shapley": (d, shares.cpu().numpy()),
                "shapley_raw": (d, raw.cpu().numpy()),
                "nonfinite": (out_dims, nonfinite.cpu().numpy()),
            },
            coords={"factor": _names(factors, self.D), **(coords or {})},
        )
        ds.attrs.update(self._attrs(nonfinite))
        return ds

    def aggregate(
        self, group_ids: torch.Tensor, n_groups: int, factors: Sequence[str] | None = None
    ) -> xr.Dataset:
        """Shares of summed (clipped) effects within element groups: ``shapley`` dims (factor, group).

        ``group_ids`` broadcasts to the output shape; elements with a negative id are left out, as are
        elements where a player has no finite increment.  ``factors`` default to ``"0", "1", ...``.
        """
        raw = self._raw().clamp_min(0).reshape(self.D, -1)
        raw = torch.where(torch.isnan(raw), 0.0, raw)
        ids = torch.broadcast_to(torch.as_tensor(group_ids), self.out_shape or ()).reshape(-1).to(raw.device)
        if ids.numel() and int(ids.max()) >= n_groups:
            raise ValueError(f"group_ids holds id {int(ids.max())}, but n_groups={n_groups}")
        sums = group_sum(raw, ids, int(n_groups))
        total = sums.sum(0, keepdim=True)
        shares = torch.where(total > 0, sums / torch.where(total > 0, total, 1), torch.nan)
        ds = xr.Dataset(
            {"shapley": (("factor", "group"), shares.cpu().numpy())},
            coords={"factor": _names(factors, self.D)},
        )
        ds.attrs.update(self._attrs(self.state_tensors()[3]))
        return ds


def _names(factors: Sequence[str] | None, D: int) -> list[str]:
    return [str(i) for i in range(D)] if factors is None else [str(f) for f in factors]

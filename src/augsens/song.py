"""The authors' Song-type Shapley estimator (double loop), kept for fidelity (study kind ``shapley-song``).

Song, Nelson & Staum (2016), random-permutation version, as in ``authors-code-spec.md`` 4.5: for each of
``Np`` random permutations ``π`` of the players and each position ``i``, hold the players after ``i``
fixed at ``No`` outer draws, re-draw the players ``π[:i+1]`` ``Ni`` times (inner draws), and take the cost

    c(π, i) = mean over outer draws of Var_inner(Y)        (ddof = 1)
            ≈ E[Var(Y | X_{π[i+1:]})];

then ``Sh[π[i]] += c(π, i) − c(π, i−1)`` with ``c(π, −1) = 0``, and finally ``Sh /= Np``.  The sum over
players of the raw effects estimates Var(Y).  As the authors did, effects are clipped at 0 and divided by
their sum, so the reported shares sum to 1.

The double loop exists for dependent inputs; with independent factors, as here, the one-loop permutation
estimator (:class:`augsens.estimate.PermutationShapleyAccumulator`) or the exact design is cheaper for the
same accuracy.  Players here are factor groups (augmentations, order, image, partition); the authors used
individual variables and summed them per group, which is not the Shapley effect of the group.

Reference: Song, E., Nelson, B. L., Staum, J. (2016). Shapley effects for global sensitivity analysis:
theory and computation. SIAM/ASA J. Uncertainty Quantification 4(1), 1060–1083. doi:10.1137/15M1048070
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

from augsens.factors import Problem

__all__ = ["SongShapleyDesign", "SongShapleyAccumulator"]


def _rng(seed: int, *key: int) -> np.random.Generator:
    # counter-based: every (permutation, position) block has its own stream, so any block replays alone
    return np.random.Generator(np.random.Philox(np.random.SeedSequence([seed, *key])))


class SongShapleyDesign:
    """Blocks of ``No x Ni`` rows, one per (permutation, position): ``Np * D`` blocks ("base samples").

    Block ``j`` is permutation ``j // D`` at position ``j % D``.  Its rows are ordered outer-major: row
    ``o * Ni + q`` takes the players ``π[:i+1]`` from inner draw ``(o, q)`` and the others from outer
    draw ``o``.
    """

    def __init__(self, problem: Problem, permutations: int, outer: int, inner: int, *, seed: int = 0) -> None:
        if min(permutations, outer) < 1 or inner < 2:
            raise ValueError(
                f"shapley-song needs permutations >= 1, outer >= 1 and inner >= 2; got "
                f"{permutations}, {outer}, {inner}"
            )
        self.problem = problem
        self.n_permutations, self.outer, self.inner, self.seed = permutations, outer, inner, seed
        self.D = problem.D
        self.n = permutations * self.D
        self.rows_per_sample = outer * inner
        self.labels = [f"o{o}q{q}" for o in range(outer) for q in range(inner)]

    def permutation(self, p: int) -> torch.Tensor:
        """Order of the players ``[D]`` for permutation ``p``."""
        return torch.from_numpy(_rng(self.seed, p).permutation(self.D)).to(torch.int64)

    def blocks(self, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Permutations ``[count, D]`` and positions ``[count]`` of blocks ``start .. start+count-1``."""
        j = np.arange(start, start + count)
        perms = torch.stack([self.permutation(int(p)) for p in j // self.D])
        return perms, torch.from_numpy(j % self.D).to(torch.int64)

    def unit_rows(self, start: int, count: int) -> torch.Tensor:
        """Unit-cube rows ``[count, No * Ni, k]`` (float64) of blocks ``start .. start+count-1``."""
        k, No, Ni = self.problem.k, self.outer, self.inner
        gi = self.problem.group_index
        out = torch.empty(count, No * Ni, k, dtype=torch.float64)
        perms, pos = self.blocks(start, count)
        for b in range(count):  # a loop over blocks of No x Ni rows, each drawn in one call
            j = start + b
            rng = _rng(self.seed, j // self.D, j % self.D, 1)
            outer = torch.from_numpy(rng.random((No, 1, k))).expand(No, Ni, k)
            inner = torch.from_numpy(rng.random((No, Ni, k)))
            redrawn = torch.isin(gi, perms[b, : int(pos[b]) + 1])  # [k] columns of players π[:i+1]
            out[b] = torch.where(redrawn, inner, outer).reshape(No * Ni, k)
        return out


class SongShapleyAccumulator:
    """Running Song-type Shapley sums; blocks must arrive in design order within a permutation.

    State: ``sh [D, *out]`` (sums of cost increments), ``prev [*out]`` (last cost of the current
    permutation), counts.  Two states merge when both hold whole permutations.
    """

    _VERSION = 1

    def __init__(
        self, D: int, outer: int, inner: int, *, dtype: torch.dtype = torch.float64, device: Any = None
    ):
        self.D, self.outer, self.inner = D, outer, inner
        self.dtype, self.device = dtype, torch.device(device) if device is not None else None
        self.sh: torch.Tensor | None = None
        self.prev: torch.Tensor | None = None
        self.blocks = 0

    @property
    def n(self) -> int:
        return self.blocks

    def _state(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sh, prev)`` once allocated (both are set together by the first update or a merge)."""
        sh, prev = self.sh, self.prev
        assert sh is not None and prev is not None, "state is not allocated"
        return sh, prev

    def update(self, y: torch.Tensor, perms: torch.Tensor, positions: torch.Tensor) -> None:
        """``y [count, No * Ni, *out]`` for consecutive blocks with their permutations and positions."""
        count = y.shape[0]
        out_shape = y.shape[2:]
        v = y.to(self.dtype).reshape(count, self.outer, self.inner, *out_shape)
        cost = v.var(dim=2, unbiased=True).mean(dim=1)  # [count, *out], vectorised over blocks
        if self.sh is None:
            self.sh = torch.zeros(self.D, *out_shape, dtype=self.dtype, device=y.device)
            self.prev = torch.zeros(out_shape, dtype=self.dtype, device=y.device)
        sh, last = self._state()
        for b in range(count):  # sequential by definition: each increment needs the previous cost
            i = int(positions[b])
            prev = torch.zeros_like(last) if i == 0 else last
            sh[int(perms[b, i])] += cost[b] - prev
            self.prev = last = cost[b]
        self.blocks += count

    def merge(self, other: SongShapleyAccumulator) -> None:
        if self.blocks % self.D or other.blocks % other.D:
            raise ValueError("Song-type Shapley states merge only at permutation boundaries")
        if other.sh is None:
            return
        other_sh, other_prev = other._state()
        if self.sh is None:
            self.sh, self.prev = other_sh.clone(), other_prev.clone()
        else:
            self.sh += other.sh.to(self.sh.device)
        self.blocks += other.blocks

    def to(self, device: Any) -> SongShapleyAccumulator:
        if self.sh is not None:
            sh, prev = self._state()
            self.sh, self.prev = sh.to(device), prev.to(device)
        self.device = torch.device(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        return {
            "class": type(self).__name__,
            "version": self._VERSION,
            "D": self.D,
            "outer": self.outer,
            "inner": self.inner,
            "dtype": str(self.dtype).removeprefix("torch."),
            "blocks": self.blocks,
            "sh": self.sh,
            "prev": self.prev,
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> SongShapleyAccumulator:
        if state.get("class") != cls.__name__ or state.get("version") != cls._VERSION:
            raise ValueError(f"not a {cls.__name__} state (version {cls._VERSION}): {state.get('class')!r}")
        acc = cls(state["D"], state["outer"], state["inner"], dtype=getattr(torch, state["dtype"]))
        acc.blocks, acc.sh, acc.prev = int(state["blocks"]), state["sh"], state["prev"]
        return acc

    def _raw(self) -> torch.Tensor:
        if self.sh is None or self.blocks < self.D:
            raise ValueError("no complete permutation accumulated yet")
        return self.sh / (self.blocks // self.D)

    def finalize(
        self,
        factors: Sequence[str],
        dims: Sequence[str] | None = None,
        coords: Mapping[str, Any] | None = None,
    ) -> xr.Dataset:
        """``shapley`` (clipped at 0, normalised to sum 1 per element, as the authors) and ``shapley_raw``."""
        raw = self._raw()
        clipped = raw.clamp_min(0)
        total = clipped.sum(0, keepdim=True)
        shares = torch.where(total > 0, clipped / torch.where(total > 0, total, 1), torch.nan)
        out_dims = tuple(dims) if dims is not None else tuple(f"dim_{i}" for i in range(raw.ndim - 1))
        d = ("factor", *out_dims)
        return xr.Dataset(
            {"shapley": (d, shares.cpu().numpy()), "shapley_raw": (d, raw.cpu().numpy())},
            coords={"factor": list(factors), **(coords or {})},
        )

    def aggregate(self, group_ids: torch.Tensor, n_groups: int) -> xr.Dataset:
        """Shares of summed (clipped) effects within element groups: ``shapley`` dims (factor, group)."""
        raw = self._raw().clamp_min(0).reshape(self.D, -1)
        ids = group_ids.reshape(-1).to(raw.device)
        sums = torch.zeros(self.D, n_groups, dtype=raw.dtype, device=raw.device).index_add_(1, ids, raw)
        total = sums.sum(0, keepdim=True)
        shares = torch.where(total > 0, sums / torch.where(total > 0, total, 1), torch.nan)
        return xr.Dataset({"shapley": (("factor", "group"), shares.cpu().numpy())})

"""The authors' Song-type Shapley double loop (Song, Nelson & Staum 2016), kept for fidelity."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from augsens.core.budget import Budget
from augsens.core.design import DesignName, SongShapleyDesign
from augsens.core.estimate import SongShapleyAccumulator
from augsens.core.factors import Problem
from augsens.core.methods._base import Method

__all__ = ["SongShapley"]


class SongShapley(Method):
    """Shapley effects from ``permutations x D`` blocks of ``outer x inner`` rows.

    Parameters
    ----------
    problem, seed, dtype, device
        As :class:`~augsens.core.methods.Method`.
    n, design, replicates, first
        Not used: the design holds ``permutations x D`` blocks of i.i.d. draws, in one round, with one
        replicate (accepted so that every method is built from the same keywords).
    permutations, outer, inner : int
        ``Np >= 1`` random permutations, ``No >= 1`` outer and ``Ni >= 2`` inner draws per block.

    Notes
    -----
    Blocks of one permutation must reach the accumulator in order (each cost increment needs the
    previous one), so shards hold whole permutations: :attr:`granularity` is ``D`` blocks.  Each batch
    carries its blocks' permutations and positions (``Batch.extra``).  The accumulator gives no pooled
    moments: a study keeps a moments pass beside it.
    """

    name = "shapley-song"
    options: ClassVar[dict[str, str]] = {
        "permutations": "song_permutations",
        "outer": "song_outer",
        "inner": "song_inner",
    }
    pooled_moments = False
    design: SongShapleyDesign

    def __init__(
        self,
        problem: Problem,
        budget: Budget | None = None,
        *,
        permutations: int = 8,
        outer: int = 4,
        inner: int = 4,
        **common: Any,
    ) -> None:
        self.permutations, self.outer, self.inner = permutations, outer, inner
        blocks = permutations * problem.D  # the design's own size: song_* keys, not the budget's n
        super().__init__(problem, Budget(n=blocks, max_n=blocks), **common)

    def make_design(self, budget: Budget, *, seed: int, design: DesignName) -> SongShapleyDesign:
        return SongShapleyDesign(self.problem, self.permutations, self.outer, self.inner, seed=seed)

    @property
    def granularity(self) -> int:
        return self.problem.D

    def rows(self, start: int, count: int) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        return self.design.unit_rows(start, count), self.design.blocks(start, count)

    def accumulator(self) -> Any:
        return SongShapleyAccumulator(
            self.problem.D, self.design.outer, self.design.inner, dtype=self.dtype, device=self.device
        )

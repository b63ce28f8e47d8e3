"""Morris screening: elementary effects of every group from trajectories of ``D + 1`` rows."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from augsens.core.budget import Budget
from augsens.core.design import DesignName
from augsens.core.estimate import MorrisAccumulator
from augsens.core.factors import Problem
from augsens.core.methods._base import Method
from augsens.core.trajectories import DEFAULT_LEVELS, MorrisDesign

__all__ = ["Morris"]


class Morris(Method):
    """``mu``, ``mu_star`` and ``sigma`` of the elementary effects: ``R = D + 1``, any ``D``.

    Each batch carries the group order and the step directions of its trajectories (``Batch.extra``),
    drawn on the host with the rows.  The accumulator keeps elementary effects, not the outputs'
    moments (``pooled_moments = False``: a study adds a moments pass over the rows).

    Parameters
    ----------
    problem, n, seed, design, replicates, first, dtype, device
        As :class:`~augsens.core.methods.Method` (``n``: trajectories).
    levels : int, default 16
        Grid levels of the trajectories (:class:`~augsens.core.trajectories.MorrisDesign`).
    """

    name = "morris"
    options: ClassVar[dict[str, str]] = {"levels": "morris_levels"}
    pooled_moments = False
    design: MorrisDesign

    def __init__(
        self, problem: Problem, budget: Budget, *, levels: int = DEFAULT_LEVELS, **common: Any
    ) -> None:
        self.levels = levels
        super().__init__(problem, budget, **common)

    def make_design(self, budget: Budget, *, seed: int, design: DesignName) -> MorrisDesign:
        return MorrisDesign(
            self.problem,
            levels=self.levels,
            seed=seed,
            method=design,
            **self.design_size(budget),
        )

    def rows(self, start: int, count: int) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        unit, order, sign = self.design.rows_and_steps(start, count)
        return unit, (order, sign)

    def accumulator(self) -> Any:
        return MorrisAccumulator(
            self.problem.D,
            delta=self.design.delta,
            replicates=self.replicates,
            dtype=self.dtype,
            device=self.device,
        )

    def attrs(self) -> dict[str, Any]:
        return {**super().attrs(), "levels": self.levels, "step": self.design.delta}

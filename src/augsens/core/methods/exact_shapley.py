"""Exact Shapley effects: all ``2^D`` hybrids of each base pair, closed indices, Möbius inversion."""

from __future__ import annotations

from typing import Any

from augsens.core.budget import Budget
from augsens.core.design import DesignName, ShapleyDesign
from augsens.core.estimate import ShapleyAccumulator
from augsens.core.methods._base import Method

__all__ = ["ExactShapley"]


class ExactShapley(Method):
    """Shapley effects from every subset of groups (Owen 2014): ``R = 2^D``, ``D <= 12``.

    Parameters as :class:`~augsens.core.methods.Method`.
    """

    name = "shapley-exact"

    def make_design(self, budget: Budget, *, seed: int, design: DesignName) -> ShapleyDesign:
        return ShapleyDesign(
            self.problem,
            seed=seed,
            method=design,
            **self.design_size(budget),
        )

    def accumulator(self) -> Any:
        return ShapleyAccumulator(
            self.problem.D, replicates=self.replicates, dtype=self.dtype, device=self.device
        )

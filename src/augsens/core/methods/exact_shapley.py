"""Exact Shapley effects: all ``2^D`` hybrids of each base pair, closed indices, Möbius inversion."""

from __future__ import annotations

from typing import Any

import torch

from augsens.core.design import Method as DesignMethod
from augsens.core.design import ShapleyDesign
from augsens.core.estimate import ShapleyAccumulator
from augsens.core.factors import Problem
from augsens.core.methods._base import Method

__all__ = ["ExactShapley"]


class ExactShapley(Method):
    """Shapley effects from every subset of groups (Owen 2014): ``R = 2^D``, ``D <= 12``.

    Parameters as :class:`~augsens.core.methods.Method`.
    """

    name = "shapley-exact"

    def __init__(
        self,
        problem: Problem,
        n: int,
        *,
        seed: int = 0,
        design: DesignMethod = "sobol",
        replicates: int = 1,
        first: int | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(problem, n, replicates=replicates, dtype=dtype, device=device)
        self.design = ShapleyDesign(problem, n, seed=seed, method=design, replicates=replicates, first=first)

    def accumulator(self) -> Any:
        return ShapleyAccumulator(
            self.problem.D, replicates=self.replicates, dtype=self.dtype, device=self.device
        )

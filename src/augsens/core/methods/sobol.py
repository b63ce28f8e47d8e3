"""Sobol' indices: the pick-freeze design ``A, B, AB_j[, BA_j]`` and its co-moment accumulator."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from augsens.core.budget import Budget
from augsens.core.design import DesignName, SobolDesign
from augsens.core.estimate import SobolAccumulator
from augsens.core.factors import Problem
from augsens.core.methods._base import Method

__all__ = ["Sobol"]


class Sobol(Method):
    """First-order and total Sobol' indices (optionally second order): ``R = D + 2`` (``2D + 2``).

    Parameters
    ----------
    problem, n, seed, design, replicates, first, dtype, device
        As :class:`~augsens.core.methods.Method`.
    second_order : bool, default False
        Add the ``BA_j`` rows and ``S2`` (Saltelli 2002).
    estimator : {"saltelli_2010", "janon_2014"}, default "saltelli_2010"
        First-order estimator (totals are always Jansen 1999).
    """

    name = "sobol"
    options: ClassVar[dict[str, str]] = {"second_order": "second_order", "estimator": "sobol_method"}

    def __init__(
        self,
        problem: Problem,
        budget: Budget,
        *,
        second_order: bool = False,
        estimator: Literal["saltelli_2010", "janon_2014"] = "saltelli_2010",
        **common: Any,
    ) -> None:
        self.second_order = second_order
        self.estimator = estimator
        super().__init__(problem, budget, **common)

    def make_design(self, budget: Budget, *, seed: int, design: DesignName) -> SobolDesign:
        return SobolDesign(
            self.problem,
            second_order=self.second_order,
            seed=seed,
            method=design,
            **self.design_size(budget),
        )

    def accumulator(self) -> Any:
        return SobolAccumulator(
            self.problem.D,
            second_order=self.second_order,
            replicates=self.replicates,
            method=self.estimator,
            dtype=self.dtype,
            device=self.device,
        )

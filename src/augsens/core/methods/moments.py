"""Moments: mean, variance and coefficient of variation of the outputs, one row per base sample."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from augsens.core.budget import Budget
from augsens.core.design import DesignName, IIDDesign
from augsens.core.estimate import MomentsAccumulator
from augsens.core.factors import Problem
from augsens.core.methods._base import Batch, Method

__all__ = ["Moments"]


class Moments(Method):
    """Running moments over independent draws: ``R = 1``, no factor dim, no replicates.

    Parameters as :class:`~augsens.core.methods.Method` (``replicates`` and ``first`` are not used:
    moments have no half-widths to target).
    """

    name = "moments"
    sensitivity = False
    pooled_moments = False

    def __init__(self, problem: Problem, budget: Budget, **common: Any) -> None:
        super().__init__(problem, dataclasses.replace(budget, replicates=1), **common)  # one i.i.d. sample

    def make_design(self, budget: Budget, *, seed: int, design: DesignName) -> IIDDesign:
        return IIDDesign(self.problem, budget.max_n, seed=seed, method=design)

    def accumulator(self) -> Any:
        return MomentsAccumulator(dtype=self.dtype, device=self.device)

    def update(self, acc: Any, y: torch.Tensor, batch: Batch) -> None:
        acc.update(y)  # one row per base sample: the outputs are the samples

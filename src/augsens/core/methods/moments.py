"""Moments: mean, variance and coefficient of variation of the outputs, one row per base sample."""

from __future__ import annotations

from typing import Any

import torch

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

    def __init__(self, problem: Problem, n: int, **common: Any) -> None:
        super().__init__(problem, n, **{**common, "replicates": 1})

    def make_design(
        self, n: int, *, seed: int, design: DesignName, replicates: int, first: int | None
    ) -> IIDDesign:
        return IIDDesign(self.problem, n, seed=seed, method=design)

    def accumulator(self) -> Any:
        return MomentsAccumulator(dtype=self.dtype, device=self.device)

    def update(self, acc: Any, y: torch.Tensor, batch: Batch) -> None:
        acc.update(y)  # one row per base sample: the outputs are the samples

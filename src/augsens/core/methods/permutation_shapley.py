"""Permutation Shapley effects (Goda 2021): one random order of the groups per base sample."""

from __future__ import annotations

from typing import Any

import torch

from augsens.core.budget import Budget
from augsens.core.design import DesignName, PermutationShapleyDesign
from augsens.core.estimate import PermutationShapleyAccumulator
from augsens.core.methods._base import Method

__all__ = ["PermutationShapley"]


class PermutationShapley(Method):
    """Shapley effects from permutation chains: ``R = D + 1``, any ``D``.

    Each batch carries its group orders (``Batch.extra``), drawn on the host with the rows, where the
    accumulator checks them without a device-to-host synchronisation.  Parameters as
    :class:`~augsens.core.methods.Method`.
    """

    name = "shapley-permutation"
    design: PermutationShapleyDesign

    def make_design(self, budget: Budget, *, seed: int, design: DesignName) -> PermutationShapleyDesign:
        return PermutationShapleyDesign(
            self.problem,
            seed=seed,
            method=design,
            **self.design_size(budget),
        )

    def rows(self, start: int, count: int) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        unit, perms = self.design.rows_and_permutations(start, count)
        return unit, (perms,)

    def accumulator(self) -> Any:
        return PermutationShapleyAccumulator(
            self.problem.D, replicates=self.replicates, dtype=self.dtype, device=self.device
        )

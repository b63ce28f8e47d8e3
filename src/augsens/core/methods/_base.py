"""What every method has: a design, fresh accumulators, the rows of a batch and the update call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, cast

import torch
import xarray as xr

from augsens.core.budget import Budget
from augsens.core.design import Design, DesignName
from augsens.core.estimate.protocol import Accumulator
from augsens.core.factors import Problem

__all__ = ["Batch", "Method"]

#: The accumulator type of a method: an :class:`~augsens.core.estimate.Accumulator` for the sensitivity
#: methods; a method with other statistics (the contrast study's ranks) names its own and overrides
#: :meth:`Method.update` and :meth:`Method.finalize`.
AccT = TypeVar("AccT")


@dataclass(frozen=True)
class Batch:
    """Consecutive base samples of one replicate block, with the unit rows to evaluate.

    Attributes
    ----------
    start, count : int
        Base samples ``start .. start+count-1`` (global design positions).
    replicate : int
        The replicate block they belong to (the accumulator slot they go to).
    unit : torch.Tensor
        Unit-cube rows ``[count, R, k]`` float64 on the host, in design row order.
    extra : tuple of torch.Tensor
        What the update needs besides the outputs: ``()``, the group orders of a permutation design, or
        the permutations and positions of Song blocks.
    """

    start: int
    count: int
    replicate: int
    unit: torch.Tensor
    extra: tuple[torch.Tensor, ...] = ()

    @property
    def rows(self) -> torch.Tensor:
        """The unit rows flattened to ``[count * R, k]``, in the order the outputs must come back."""
        return self.unit.reshape(-1, self.unit.shape[-1])


class Method(Generic[AccT]):
    """An estimator kind: its design, its accumulator, its row layout and its update call.

    Parameters
    ----------
    problem : Problem
        Factors and groups; results are per group.
    budget : Budget
        The run's budget (:class:`augsens.core.budget.Budget`, validated where it was built): the
        design holds ``budget.max_n`` base samples in ``budget.replicates`` randomisations, walked in
        rounds from ``budget.n`` when there is a precision target.  Kept as :attr:`budget`.
    seed : int, default 0
    design : {"sobol", "sobol-lms", "iid"}, default "sobol"
        How base points are drawn (:mod:`augsens.core.design`).
    dtype : torch.dtype, default torch.float64
        Accumulator state dtype.
    device : torch.device or str, optional
        Where accumulator states live (default: where the first outputs are).
    **options
        The method's own options (:attr:`options` names their study config keys).

    Notes
    -----
    Every method takes the same keywords, so that a registry name and a config build any of them.  This
    constructor keeps what accumulators need (``problem``, ``replicates``, ``dtype``, ``device``) and
    builds :attr:`design` from the budget with :meth:`make_design`, the one place where the budget
    becomes a design's size.

    A subclass sets :attr:`name` and implements :meth:`make_design` and :meth:`accumulator`; it takes its
    own options in an ``__init__`` that stores them before calling this one, overrides :meth:`rows` when
    its update needs per-batch data besides the outputs, and :meth:`update` when its accumulator takes
    another call.
    """

    #: registry name (:data:`augsens.core.methods.METHODS`)
    name: ClassVar[str]
    #: the method's own keyword options -> the ``[study]`` config keys that set them
    options: ClassVar[dict[str, str]] = {}
    #: whether results are indices over factors, with replicate half-widths for a precision target
    sensitivity: ClassVar[bool] = True
    #: whether the accumulator gives the outputs' mean and variance (``pooled_moments()``) for free
    pooled_moments: ClassVar[bool] = True

    design: Design

    def __init__(
        self,
        problem: Problem,
        budget: Budget,
        *,
        seed: int = 0,
        design: DesignName = "sobol",
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        self.problem = problem
        self.budget = budget
        self.replicates = budget.replicates
        self.dtype = dtype
        self.device = device
        self.design = self.make_design(budget, seed=seed, design=design)

    def make_design(self, budget: Budget, *, seed: int, design: DesignName) -> Design:
        """The method's design for ``budget`` (keywords as the constructor's)."""
        raise NotImplementedError  # pragma: no cover - abstract

    @staticmethod
    def design_size(budget: Budget) -> dict[str, Any]:
        """The size keywords of a design for ``budget`` (for :meth:`make_design`): ``n = max_n`` base
        samples in ``replicates`` randomisations, walked in rounds from ``first``."""
        return {"n": budget.max_n, "replicates": budget.replicates, "first": budget.first}

    # -- layout -----------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Base samples of the whole design (Song: blocks)."""
        return self.design.n

    @property
    def rows_per_sample(self) -> int:
        """Rows ``R`` evaluated per base sample."""
        return self.design.rows_per_sample

    @property
    def round_ends(self) -> list[int]:
        """Base samples done at the end of each round; a run may stop at any of them."""
        return list(self.design.round_ends)

    @property
    def granularity(self) -> int:
        """Shard boundaries must be multiples of it: states of shards merge only there."""
        return 1

    def rows(self, start: int, count: int) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Unit rows ``[count, R, k]`` of base samples ``start..start+count-1`` and the batch's extra data."""
        return self.design.unit_rows(start, count), ()

    # -- accumulation -----------------------------------------------------------------------------
    def accumulator(self) -> AccT:
        """A fresh, empty accumulator (one per output: a checkpoint, the result of ``f``)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def update(self, acc: AccT, y: torch.Tensor, batch: Batch) -> None:
        """Add the outputs ``y [count * R, *out]`` of ``batch.rows`` to ``acc``."""
        y = y.reshape(batch.count, self.rows_per_sample, *y.shape[1:])
        cast(Accumulator, acc).update(y, *batch.extra, replicate=batch.replicate)

    def finalize(
        self,
        acc: AccT,
        factors: Sequence[str] | None = None,
        dims: Sequence[str] | None = None,
        coords: Mapping[str, Any] | None = None,
    ) -> xr.Dataset:
        """Per-element results of ``acc`` (``factors`` default to the problem's group names; a method
        without indices over factors has no factor dim)."""
        done = cast(Accumulator, acc)
        if not self.sensitivity:
            return done.finalize(None, dims=dims, coords=coords)
        names = self.problem.group_names if factors is None else list(factors)
        return done.finalize(names, dims=dims, coords=coords)

    def attrs(self) -> dict[str, Any]:
        """Provenance of the design: ``seed``, ``design`` and ``rows_per_sample``."""
        return {
            "seed": self.design.seed,
            "design": self.design.design_name,
            "rows_per_sample": self.rows_per_sample,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.design!r})"

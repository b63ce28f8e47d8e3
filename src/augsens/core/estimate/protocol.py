"""The accumulator protocol: what every streaming estimator of :mod:`augsens.core.estimate` offers.

A method (:class:`augsens.core.methods.Method`) builds accumulators, feeds them batches and finalises
them; a study keeps one per checkpoint in its state, saves, moves and merges them.  None of that needs
to know which estimator it holds, so all of them are typed by :class:`Accumulator`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, Self, runtime_checkable

import torch
import xarray as xr

__all__ = ["Accumulator"]


@runtime_checkable
class Accumulator(Protocol):
    """A streaming reduction of outputs ``[b, R, *out]`` to per-element statistics.

    ``update`` takes the outputs of a batch in design row order, plus what its design gives beside them
    (the group orders of a permutation design, the permutations and positions of Song blocks) and the
    replicate slot; the rest of the protocol is the same for all.

    Examples
    --------
    >>> from augsens.core.estimate import Accumulator, MorrisAccumulator, SobolAccumulator
    >>> isinstance(SobolAccumulator(3), Accumulator), isinstance(MorrisAccumulator(2, delta=0.5), Accumulator)
    (True, True)
    """

    #: independent randomisations of the design, each in its own state slot
    replicates: int
    #: state dtype
    dtype: torch.dtype
    #: where the state lives (``None`` until the first update: where the outputs are)
    device: torch.device | None

    @property
    def n(self) -> int:
        """Base samples (Song: blocks) seen, all replicates together."""

    @property
    def out_shape(self) -> tuple[int, ...] | None:
        """Shape of one row's output; ``None`` before the first update."""

    def update(self, y: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        """Add a batch of outputs (moved to the state's device and dtype); vectorised over the batch."""

    def merge(self, other: Self) -> Self:
        """Add the samples of ``other`` (same class and configuration) in place; returns ``self``."""

    def to(self, device: torch.device | str) -> Self:
        """Move the state to ``device`` in place; returns ``self``."""

    def allocate(self, out: tuple[int, ...], device: torch.device, *, pending_block: bool = False) -> None:
        """Zero state for outputs of shape ``out`` (what the first update does); on the ``meta`` device,
        with ``pending_block``, it sizes the largest state a save may hold without taking memory."""

    def state_dict(self) -> dict[str, Any]:
        """Plain, versioned state: tensors, numbers and strings, with the class name."""

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> Accumulator:
        """The accumulator :meth:`state_dict` saved (on the device it was saved from)."""

    def finalize(
        self,
        factors: Sequence[str] | None = None,
        dims: Sequence[str] | None = None,
        coords: Mapping[str, Any] | None = None,
    ) -> xr.Dataset:
        """Per-element results, ``"factor"`` first where the quantities are per factor."""

    def aggregate(
        self, group_ids: torch.Tensor, n_groups: int, factors: Sequence[str] | None = None
    ) -> xr.Dataset:
        """Results of groups of elements (numerators and variances summed before dividing)."""

    def half_widths(self) -> dict[str, torch.Tensor]:
        """95 % half-widths over the replicates of each quantity that has one (empty if none)."""

    def pooled_moments(self) -> Accumulator:
        """The outputs' moments read off the state, as a moments accumulator; ``TypeError`` when the
        state holds no output rows (:attr:`augsens.core.methods.Method.pooled_moments` says which)."""

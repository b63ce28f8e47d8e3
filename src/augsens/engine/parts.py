"""What the run loop, the results and the disk checks read of a study: :class:`StudyParts`.

:class:`augsens.engine.Study` is data (config, plan, model, inputs) and the calls that make its run
states; :mod:`augsens.engine.runner`, :mod:`augsens.engine.results` and :mod:`augsens.engine.space`
work on any object of this shape, so they need not import the study, which imports them.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
import xarray as xr

from augsens.config import StudyConfig
from augsens.data import SampleCache
from augsens.engine.factors import AugmentationFactors
from augsens.engine.plan import StudyPlan
from augsens.engine.state import StudyState
from augsens.models import LoadedModel
from augsens.models.layout import CheckpointLayout

__all__ = ["StudyParts"]


class StudyParts(Protocol):
    """A built study: its settings, plan, model and inputs, and its run states.

    Attributes
    ----------
    config : StudyConfig
        The validated config (dtype resolved for the device).
    plan : StudyPlan
        Factors, method and budget (:mod:`augsens.engine.plan`).
    factors : AugmentationFactors
        ``plan.factors``.
    model : LoadedModel
        The network on :attr:`device`, with activation capture.
    images : SampleCache
        The inputs on :attr:`device`.
    device : torch.device
        Where the forward passes and the accumulators run.
    checkpoints : list of str
        The captured activations, in results order.
    shapes, layouts : dict
        Each checkpoint's output shape and its dims and depth.
    input_mean, input_std : torch.Tensor
        The model's input normalisation, on :attr:`device`.
    progress : bool
        Whether a run shows a progress bar.
    """

    config: StudyConfig
    plan: StudyPlan
    factors: AugmentationFactors
    model: LoadedModel
    images: SampleCache
    device: torch.device
    checkpoints: list[str]
    shapes: dict[str, tuple[int, ...]]
    layouts: dict[str, CheckpointLayout]
    input_mean: torch.Tensor
    input_std: torch.Tensor
    progress: bool

    @property
    def label(self) -> str:
        """A short name of the study for progress bars."""
        ...

    def forward(self, unit: torch.Tensor, first_row: int) -> dict[str, torch.Tensor]:
        """Captured activations per checkpoint of unit rows starting at global row ``first_row``."""
        ...

    def new_state(self) -> StudyState:
        """Empty accumulators at design position 0."""
        ...

    def export_state(self, state: StudyState) -> dict[str, Any]:
        """``state`` as plain tensors and numbers."""
        ...

    def import_state(self, blob: dict[str, Any], *, source: str = "state") -> StudyState:
        """Inverse of :meth:`export_state`."""
        ...

    def fingerprint(self) -> dict[str, Any]:
        """Hashes of the inputs a saved state depends on."""
        ...

    def finalize(self, state: StudyState) -> xr.DataTree:
        """The results tree of ``state``."""
        ...

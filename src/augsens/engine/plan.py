"""A study config -> its augmentation factors and its sensitivity method (:mod:`augsens.core.methods`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from augsens.config import StudyConfig
from augsens.core.design import _Walk
from augsens.core.methods import METHODS, Method
from augsens.core.precision import default_max_n
from augsens.engine.factors import AugmentationFactors

__all__ = ["StudyPlan", "plan", "method_name", "state_dtype"]


@dataclass(frozen=True)
class StudyPlan:
    """The factors a study varies and the method that estimates their effects."""

    factors: AugmentationFactors
    method: Method

    @property
    def design(self) -> _Walk:
        """The method's design."""
        return self.method.design

    @property
    def n(self) -> int:
        """Base samples of the whole design (blocks for shapley-song)."""
        return self.method.n

    @property
    def rows(self) -> int:
        """Rows (forwards) per base sample."""
        return self.method.rows_per_sample


def method_name(config: StudyConfig) -> str:
    """The registry name of the study's method: ``[study] kind``, with the Shapley method for ``shapley``."""
    sc = config.study
    return f"shapley-{sc.shapley_method}" if sc.kind == "shapley" else sc.kind


def state_dtype(config: StudyConfig) -> torch.dtype:
    """Accumulator state dtype (``[run] state_dtype``)."""
    return torch.float64 if config.run.state_dtype == "float64" else torch.float32


def plan(
    config: StudyConfig,
    partitions: Sequence[Sequence[int]],
    device: torch.device,
    *,
    sample_shape: Sequence[int] | None = None,
) -> StudyPlan:
    """The factors and method of ``config``; ``partitions`` are the image indices of each partition.

    ``sample_shape`` is one input's shape: for images ``(3, H, W)``, whose size the augmentations' pixel
    bounds are scaled to (:mod:`augsens.augment.scaling`); default 224 x 224.

    A precision target makes the design the budget (``max_n``, default 16 n), run in rounds that double
    the first ``n`` (:mod:`augsens.core.precision`).
    """
    sc = config.study
    switches = sc.switches
    if switches == "default":
        # the authors' switch models per family (docs/paper.md §7); clean mode switches every augmentation
        switches = "nonparametric" if (sc.mode == "paper" and sc.kind in ("sobol", "moments")) else "all"
    factors = AugmentationFactors(
        sc.augmentations if isinstance(sc.augmentations, str) else list(sc.augmentations),
        partitions,
        switches=switches,
        p=sc.switch_p,
        mode=sc.mode,
        integer_params=sc.mode == "paper" and sc.kind.startswith("shapley"),
        order=sc.order,
        ranges=config.augment,
        image_size=(int(sample_shape[-2]), int(sample_shape[-1]))
        if sample_shape is not None and len(sample_shape) == 3
        else None,
    )
    name = method_name(config)
    if name not in METHODS:
        raise ValueError(f"[study] kind = {sc.kind!r} is not supported by this engine")
    cls = METHODS[name]
    size, first = (sc.max_n or default_max_n(sc.n), sc.n) if sc.precision else (sc.n, None)
    # the method's own options, read from the config keys it names
    options: dict[str, Any] = {arg: getattr(sc, key) for arg, key in cls.options.items()}
    method = cls(
        factors.problem,
        size,
        seed=sc.seed,
        design=sc.design,
        replicates=sc.replicates,
        first=first,
        dtype=state_dtype(config),
        device=device,
        **options,
    )
    return StudyPlan(factors, method)

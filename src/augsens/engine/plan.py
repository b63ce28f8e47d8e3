"""A study config -> its augmentation factors and its sensitivity method (:mod:`augsens.core.methods`)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from augsens.config import StudyConfig
from augsens.core.budget import Budget
from augsens.core.kinds import KINDS
from augsens.core.methods import METHODS, Method
from augsens.engine.factors import AugmentationFactors

__all__ = [
    "StudyPlan",
    "plan",
    "method_name",
    "state_dtype",
    "work_dtype",
    "native_bf16",
    "resolve_dtype",
    "resolve_layout",
]


@dataclass(frozen=True)
class StudyPlan:
    """The factors a study varies, the method that estimates their effects and the budget it runs within
    (:class:`augsens.core.budget.Budget`, as the config set it)."""

    factors: AugmentationFactors
    method: Method
    budget: Budget

    @property
    def n(self) -> int:
        """Base samples of the whole design (blocks for shapley-song)."""
        return self.method.n

    @property
    def rows(self) -> int:
        """Rows (forwards) per base sample."""
        return self.method.rows_per_sample


def method_name(config: StudyConfig) -> str:
    """The registry name of the study's method: its kind's (:data:`augsens.core.kinds.KINDS`), chosen by
    the kind's ``[study]`` key where it has several (``shapley_method``)."""
    kind = KINDS[config.study.kind]
    return kind.method(getattr(config.study, kind.choose) if kind.choose else "")


def state_dtype(config: StudyConfig) -> torch.dtype:
    """Accumulator state dtype (``[run] state_dtype``: float64 for ``"float64"`` and ``"mixed"``)."""
    return torch.float32 if config.run.state_dtype == "float32" else torch.float64


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` is a CPU that computes in bfloat16 natively (Intel AMX tiles or AVX512-BF16),
    where bf16 autocast + channels_last runs convolutions about 2.5x faster than float32."""
    if device.type != "cpu":
        return False
    names = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # torch's own CPUID probes
    probes = [getattr(torch.cpu, name, None) for name in names]
    return any(bool(probe()) for probe in probes if probe is not None)


def resolve_dtype(config: StudyConfig, device: torch.device) -> StudyConfig:
    """``config`` with ``[run] dtype = "auto"`` made concrete for ``device`` (a copy; others unchanged):
    bfloat16 autocast where :func:`native_bf16`, else float32.  The results record the dtype that ran
    (``docs/performance.md`` gives the agreement of bf16 indices with float32 ones)."""
    if config.run.dtype != "auto":
        return config
    out = copy.deepcopy(config)
    out.run.dtype = "bfloat16" if native_bf16(device) else "float32"
    return out


def resolve_layout(config: StudyConfig, device: torch.device, module: torch.nn.Module) -> StudyConfig:
    """``config`` with ``[run] channels_last = "auto"`` made concrete (a copy; others unchanged): NHWC for
    a network with 2-D convolutions on a CPU (float32 too: 1.2-1.8x faster for the registry's networks
    on the CPU of ``docs/performance.md``, through oneDNN's NHWC kernels) and under bf16 autocast on
    any device (the tensor cores' layout); NCHW otherwise (float32 on a GPU was not measured)."""
    if config.run.channels_last != "auto":
        return config
    out = copy.deepcopy(config)
    convolutional = any(isinstance(m, torch.nn.Conv2d) for m in module.modules())
    out.run.channels_last = convolutional and (device.type == "cpu" or config.run.dtype == "bfloat16")
    return out


def work_dtype(config: StudyConfig) -> torch.dtype:
    """Per-batch arithmetic dtype of the accumulators: float32 blocks for ``"mixed"``, else the state's."""
    return torch.float32 if config.run.state_dtype == "mixed" else state_dtype(config)


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
    kind = KINDS[sc.kind]
    switches = sc.switches
    if switches == "default":
        # the authors' switch models per family (docs/paper.md §7); clean mode switches every augmentation
        switches = kind.paper_switches if sc.mode == "paper" else "all"
    factors = AugmentationFactors(
        sc.augmentations if isinstance(sc.augmentations, str) else list(sc.augmentations),
        partitions,
        switches=switches,
        p=sc.switch_p,
        mode=sc.mode,
        integer_params=sc.mode == "paper" and kind.paper_integer_params,
        order=sc.order,
        ranges=config.augment,
        image_size=(int(sample_shape[-2]), int(sample_shape[-1]))
        if sample_shape is not None and len(sample_shape) == 3
        else None,
    )
    name = method_name(config)
    if not kind.sensitivity:
        raise ValueError(f"[study] kind = {sc.kind!r} is not a sensitivity study: it has no factors to plan")
    cls = METHODS[name]
    budget = config.budget()
    # the method's own options, read from the config keys it names
    options: dict[str, Any] = {arg: getattr(sc, key) for arg, key in cls.options.items()}
    method = cls(
        factors.problem,
        budget,
        seed=sc.seed,
        design=sc.design,
        dtype=state_dtype(config),
        device=device,
        **options,
    )
    return StudyPlan(factors, method, budget)

"""The factor model of an augmentation study.

An augmentation study has one group of factors per augmentation (its parameters, plus an on/off switch
where the switch model says so) and auxiliary factors: the composition ``order`` (a permutation of the
augmentations, one uniform decoded by the factorial number system), the ``image`` (class, then image
within class) and, when two image partitions are given, the ``partition`` (train/val).

:class:`AugmentationFactors` builds the :class:`~augsens.core.factors.Problem` from the augmentation specs
alone and decodes design rows into what the augmentation and image stages need: per-augmentation
parameter tensors, switches, per-sample orders, image indices.

Switch models
-------------
``"all"``
    Every augmentation has a switch, on with probability ``p`` (the authors' Shapley family; the clean
    default): the index of an augmentation then measures "applying it at all, with random parameters".
``"nonparametric"``
    Only augmentations without parameters (sharpness, grayscale, hflip) have a switch; parametric ones
    are always applied (the authors' Sobol family, ``docs/paper.md`` §7).
``"none"``
    Every augmentation is always applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from augsens.augment import SET1, SET2, Augmentation
from augsens.augment import spec as augmentation_spec
from augsens.augment.corruptions import CORRUPTIONS
from augsens.augment.ranges import apply_ranges
from augsens.augment.scaling import at_size
from augsens.core.factors import (
    Categorical,
    ImageFactor,
    Parameter,
    Permutation,
    Problem,
    Switch,
    Uniform,
)
from augsens.errors import UserInputError

__all__ = [
    "AugmentationFactors",
    "DecodedRows",
    "SwitchModel",
    "Mode",
    "resolve_augmentations",
    "resolve_specs",
]

SwitchModel = Literal["all", "nonparametric", "none"]
Mode = Literal["clean", "paper"]

_SETS = {"set1": SET1, "set2": SET2, "1": SET1, "2": SET2, "corruptions": tuple(CORRUPTIONS)}


def resolve_specs(
    augmentations: str | Sequence[str | Augmentation],
    ranges: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    image_size: tuple[int, int] | None = None,
) -> tuple[Augmentation, ...]:
    """``"set1"``, ``"set2"``, ``"corruptions"`` or a list of names, ``"package.module:name"`` references and
    :class:`~augsens.augment.Augmentation` objects -> the augmentations, with the paper's pixel bounds
    scaled to ``image_size`` (height, width; :func:`augsens.augment.scaling.at_size`) and then a study's
    ranges applied (:func:`augsens.augment.ranges.apply_ranges`)."""
    items: Sequence[str | Augmentation]
    if isinstance(augmentations, str):
        key = augmentations.lower().replace(" ", "").replace("_", "")
        if key in _SETS:
            items = _SETS[key]
        elif key in ("set3", "all", "3"):
            items = tuple(SET1) + tuple(SET2)
        else:
            items = [augmentations]
    else:
        items = list(augmentations)
    if not items:
        raise UserInputError("the augmentation list is empty: give 'set1', 'set2' or a list of names")
    specs = tuple(augmentation_spec(item) for item in items)  # raises with close-match suggestions
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise UserInputError(f"augmentation list {list(names)!r} names an augmentation twice")
    if image_size is not None:
        specs = tuple(at_size(s, *image_size) for s in specs)
    return apply_ranges(specs, ranges)


def resolve_augmentations(augmentations: str | Sequence[str | Augmentation]) -> tuple[str, ...]:
    """``"set1"``, ``"set2"`` or a list of augmentations -> tuple of their names (validated)."""
    return tuple(s.name for s in resolve_specs(augmentations))


@dataclass
class DecodedRows:
    """Everything the image and augmentation stages need for a batch of design rows.

    Attributes
    ----------
    params : dict of str to dict of str to Tensor
        ``params[aug][keyword]``: ``[N]`` float32 parameter values on the target device.
    on : dict of str to Tensor
        ``on[aug]``: ``[N]`` bool switch (all True where the augmentation has no switch), on the CPU.
    order : Tensor
        ``[N, n_aug]`` int64: ``order[b, k]`` is the index of the augmentation applied at step ``k``, on
        the CPU: :func:`augsens.augment.compose` plans its sub-batches on the host, so keeping the
        schedule there avoids a device -> host copy per batch.
    image : Tensor
        ``[N]`` int64 global image index (partition offset included).
    """

    params: dict[str, dict[str, torch.Tensor]]
    on: dict[str, torch.Tensor]
    order: torch.Tensor
    image: torch.Tensor


class AugmentationFactors:
    """Factors of a simultaneous-augmentation study and the decoding of its design rows.

    Parameters
    ----------
    augmentations : str or sequence of str or Augmentation
        ``"set1"``, ``"set2"``, or augmentations (names of :func:`augsens.augment.available`,
        ``"package.module:name"`` references or objects), in list order; the ``order`` factor permutes
        them per sample.
    partitions : sequence of sequence of int
        Class sizes of each image partition (one list for a single image source; two for train/val).
        Images are numbered partition by partition, class by class.
    switches : {"all", "nonparametric", "none"}
        Switch model (module docstring).
    p : float
        Probability that a switch is on.
    mode : {"clean", "paper"}
        ``"paper"`` with ``integer_params=True`` draws the parameters the authors' Shapley/contrast
        samplers drew as discrete uniforms (erasing centres, roll shifts) as :class:`Integer`.
    integer_params : bool
        See ``mode``.
    order : bool
        Include the composition-order factor (needs two or more augmentations).
    ranges : mapping, optional
        Ranges or distributions of parameters, ``{"hue" or "erasing.scale": table}``
        (:func:`augsens.augment.ranges.normalize`); the others keep their declared ranges.
    image_size : (int, int), optional
        Height and width of the images.  The paper's bounds in pixels (erasing centres, roll shifts,
        elliptic-blur axes and shifts) are set for 224 x 224 and scaled to this size
        (:func:`augsens.augment.scaling.at_size`) before ``ranges`` apply.  Default: 224 x 224.
    """

    def __init__(
        self,
        augmentations: str | Sequence[str | Augmentation],
        partitions: Sequence[Sequence[int]],
        *,
        switches: SwitchModel = "all",
        p: float = 0.5,
        mode: Mode = "clean",
        integer_params: bool = False,
        order: bool = True,
        ranges: Mapping[str, Mapping[str, Any]] | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> None:
        if switches not in ("all", "nonparametric", "none"):
            raise UserInputError(f"switches={switches!r}: allowed values are 'all', 'nonparametric', 'none'")
        if mode not in ("clean", "paper"):
            raise UserInputError(f"mode={mode!r}: allowed values are 'clean', 'paper'")
        if not partitions or any(len(sizes) == 0 for sizes in partitions):
            raise UserInputError("every image partition needs at least one class with images")
        #: The augmentations as applied (ranges included), in list order.
        self.specs = resolve_specs(augmentations, ranges, image_size=image_size)
        self.augmentations = tuple(s.name for s in self.specs)
        self.switch_model = switches
        self.mode = mode
        params: list[Parameter] = []
        groups: dict[str, list[str]] = {}
        self._switch_col: dict[str, int] = {}
        self._param_cols: dict[str, dict[str, int]] = {}
        for spec in self.specs:
            name = spec.name
            members: list[str] = []
            has_switch = switches == "all" or (switches == "nonparametric" and not spec.params)
            if has_switch:
                self._switch_col[name] = len(params)
                params.append(Switch(f"{name}.on", p))
                members.append(f"{name}.on")
            self._param_cols[name] = {}
            for ps in spec.params:
                pname = f"{name}.{ps.name}"
                self._param_cols[name][ps.name] = len(params)
                params.append(ps.factor(pname, integer_draws=integer_params))
                members.append(pname)
            if members:
                groups[name] = members
        # An augmentation with neither switch nor parameters is constant: it has no factor.
        self.constant = tuple(a for a in self.augmentations if a not in groups)
        self._order_col: int | None = None
        if order and len(self.augmentations) > 1:
            self._order_col = len(params)
            self._order = Permutation("order", len(self.augmentations))
            params.append(self._order)
        self.partition_sizes = [list(map(int, sizes)) for sizes in partitions]
        self._partition_col: int | None = None
        if len(self.partition_sizes) > 1:
            self._partition_col = len(params)
            params.append(Categorical("partition", len(self.partition_sizes)))
        self._images = [ImageFactor("image", sizes) for sizes in self.partition_sizes]
        self._image_col = len(params)
        params.append(self._images[0] if len(self._images) == 1 else Uniform("image", 0.0, 1.0))
        offsets = [0]
        for f in self._images[:-1]:
            offsets.append(offsets[-1] + f.n_images)
        self._partition_offsets = torch.tensor(offsets, dtype=torch.float64)
        self.problem = Problem(params, groups=groups)

    @property
    def factor_names(self) -> list[str]:
        """Group names, in the order of the ``factor`` dimension of the results."""
        return list(self.problem.group_names)

    @property
    def class_sizes(self) -> list[int]:
        """Class sizes of all partitions, concatenated (the image cache's class order)."""
        return [s for sizes in self.partition_sizes for s in sizes]

    def decode(
        self,
        unit: torch.Tensor,
        *,
        device: torch.device | str = "cpu",
        row_ids: torch.Tensor | None = None,
        seed: int = 0,
    ) -> DecodedRows:
        """Decode unit-cube rows ``[N, k]`` into augmentation parameters, switches, orders and images.

        ``row_ids`` (global design row numbers) are needed in paper mode only, where the image within its
        class is re-drawn per row as the authors' sampler did (deterministically from ``(seed, row)``).
        """
        values = self.problem.decode(unit)
        n = values.shape[0]
        dev = torch.device(device)
        params = {
            aug: {kw: values[:, col].to(dev, torch.float32) for kw, col in cols.items()}
            for aug, cols in self._param_cols.items()
        }
        on = {
            aug: (
                values[:, self._switch_col[aug]] > 0.5
                if aug in self._switch_col
                else torch.ones(n, dtype=torch.bool)
            )
            for aug in self.augmentations
        }
        if self._order_col is not None:
            order = self._order.orders(values[:, self._order_col])
        else:
            order = torch.arange(len(self.augmentations)).expand(n, -1)
        image = self._decode_image(unit, values, row_ids, seed)
        return DecodedRows(params=params, on=on, order=order, image=image.to(dev))

    def _decode_image(
        self, unit: torch.Tensor, values: torch.Tensor, row_ids: torch.Tensor | None, seed: int
    ) -> torch.Tensor:
        u = unit[:, self._image_col].to(torch.float64)
        if self._partition_col is None:
            part = torch.zeros(u.shape[0], dtype=torch.int64)
        else:
            part = values[:, self._partition_col].to(torch.int64)
        index = torch.empty(u.shape[0], dtype=torch.float64)
        for k, factor in enumerate(self._images):  # a loop over partitions (1 or 2), not samples
            sel = part == k
            index[sel] = factor.decode(u[sel]) + self._partition_offsets[k]
        index = index.to(torch.int64)
        if self.mode == "paper":
            if row_ids is None:
                raise ValueError("paper mode re-draws the image per row: pass row_ids to decode()")
            from augsens.data import redraw_within_class

            index = redraw_within_class(index, self.class_sizes, row_ids, seed)
        return index

    def describe(self) -> list[dict[str, object]]:
        """One record per parameter: group, name, kind, bounds and, for a scipy.stats parameter, its
        distribution (for provenance and ``augsens info``)."""
        out = []
        for g, members in zip(self.problem.group_names, self.problem.group_members, strict=True):
            for i in members:
                p = self.problem.parameters[i]
                lo, hi = p.bounds()
                record: dict[str, object] = {
                    "factor": g,
                    "parameter": p.name,
                    "kind": p.kind,
                    "low": lo,
                    "high": hi,
                }
                describe = getattr(p, "describe", None)
                if describe is not None:
                    record["distribution"] = describe()
                out.append(record)
        return out

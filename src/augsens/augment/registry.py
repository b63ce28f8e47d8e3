"""The catalogue of the twelve augmentations: names, parameters, bounds, identity values, constants.

Bounds and constants follow the authors' ``augmentation_setting.py`` for 224 x 224 images
(``docs/paper.md`` §5).  Two deliberate departures:

* hue's identity value is 0 (the authors recorded 1, which is not an identity and was never used);
* parameters without a finite identity inside their range (blur sigma, erasing scale, ELB axes) still
  get the value that leaves an image unchanged (sigma 0, scale 0, axes 0), outside ``[low, high]``.
  :func:`augsens.augment.apply` accepts a parameter's identity value as well as values within bounds.

``integer=True`` marks the parameters that the authors' Shapley and contrast samplers draw as discrete
uniforms on ``[low, high)`` (upper bound exclusive): erasing centres, roll shifts, and the ELB axes and
shifts (contrast sampler, docs/paper.md §7).  The Sobol family draws every parameter continuously on
``[low, high]``; every op rounds such parameters to the nearest integer (half to even, like Python's
``round``), so both encodings reach the same images.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from augsens.errors import UserInputError

__all__ = [
    "ParamSpec",
    "AugmentationSpec",
    "AUGMENTATIONS",
    "SET1",
    "SET2",
    "spec",
    "UnknownAugmentationError",
]


class UnknownAugmentationError(KeyError, UserInputError):
    """An augmentation name that is not in :data:`AUGMENTATIONS` (a ``KeyError`` and a ``ValueError``)."""

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0])


#: Image side the bounds refer to (the authors' Resize(256) + CenterCrop(224)).
_SIDE = 224


@dataclass(frozen=True)
class ParamSpec:
    """One scalar parameter of an augmentation.

    Parameters
    ----------
    name : str
        Keyword of :func:`augsens.augment.apply`.
    low, high : float
        Sampling bounds (inclusive for validation; ``high`` is exclusive for the authors' integer draws).
    identity : float
        Value at which the augmentation leaves the image unchanged; may lie outside ``[low, high]``.
    integer : bool
        Whether the authors' Shapley / contrast samplers draw it as an integer.
    doc : str
        Meaning and units.
    """

    name: str
    low: float
    high: float
    identity: float
    integer: bool
    doc: str


@dataclass(frozen=True)
class AugmentationSpec:
    """An augmentation: its parameters (in keyword order), set number, fixed constants and meaning.

    Parameters
    ----------
    name : str
        Name passed to :func:`augsens.augment.apply`.
    params : tuple of ParamSpec
        Per-sample parameters, in the authors' variable order; empty for parameter-free ops.
    set : int
        1 or 2 (the paper's augmentation sets, analysed separately).
    constants : Mapping[str, float]
        Fixed settings of the op, passed to it as keywords (recorded in provenance).
    doc : str
        One-line description, including the torchvision op it matches.
    """

    name: str
    params: tuple[ParamSpec, ...]
    set: int
    constants: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    doc: str = ""

    @property
    def param_names(self) -> tuple[str, ...]:
        """Parameter keywords in order."""
        return tuple(p.name for p in self.params)

    @property
    def identity(self) -> dict[str, float]:
        """Parameter values that leave an image unchanged (empty for parameter-free ops)."""
        return {p.name: p.identity for p in self.params}


def _frozen(**constants: float) -> Mapping[str, float]:
    return MappingProxyType(dict(constants))


_CENTRE = (_SIDE // 5, _SIDE - _SIDE // 5)  # [44, 180]
_SHIFT = _SIDE // 5  # 44

_ALL = (
    AugmentationSpec(
        "erasing",
        (
            ParamSpec("center_y", *_CENTRE, 1.0, True, "row of the rectangle centre (px)"),
            ParamSpec("center_x", *_CENTRE, 1.0, True, "column of the rectangle centre (px)"),
            ParamSpec("scale", 0.02, 0.33, 0.0, False, "rectangle area as a fraction of H*W"),
            ParamSpec("log_ratio", math.log(0.3), math.log(3.3), 0.0, False, "log(height / width)"),
        ),
        1,
        _frozen(value=0.0),
        "Fill a centred rectangle with `value` (torchvision F.erase).",
    ),
    AugmentationSpec(
        "sharpness",
        (),
        1,
        _frozen(sharpness_factor=1.5),
        "torchvision F.adjust_sharpness(img, sharpness_factor); border pixels unchanged.",
    ),
    AugmentationSpec(
        "rolling",
        (
            ParamSpec("shift_y", -_SHIFT, _SHIFT, 0.0, True, "circular shift down (px)"),
            ParamSpec("shift_x", -_SHIFT, _SHIFT, 0.0, True, "circular shift right (px)"),
        ),
        1,
        _frozen(),
        "torch.roll(img, (shift_y, shift_x), dims=(-2, -1)).",
    ),
    AugmentationSpec(
        "grayscale",
        (),
        1,
        _frozen(),
        "torchvision F.rgb_to_grayscale(img, num_output_channels=3).",
    ),
    AugmentationSpec(
        "gaussian_blur",
        (ParamSpec("sigma", 0.1, 2.0, 0.0, False, "Gaussian standard deviation (px)"),),
        1,
        _frozen(kernel_size=7),
        "torchvision F.gaussian_blur(img, [kernel_size] * 2, [sigma] * 2), reflect padding.",
    ),
    AugmentationSpec(
        "brightness",
        (ParamSpec("factor", 0.1, 2.5, 1.0, False, "multiplier, clamped to [0, 1]"),),
        2,
        _frozen(),
        "torchvision F.adjust_brightness(img, factor).",
    ),
    AugmentationSpec(
        "contrast",
        (ParamSpec("factor", 0.01, 3.5, 1.0, False, "blend weight against the mean grey level"),),
        2,
        _frozen(),
        "torchvision F.adjust_contrast(img, factor).",
    ),
    AugmentationSpec(
        "saturation",
        (ParamSpec("factor", 0.01, 3.5, 1.0, False, "blend weight against the grayscale image"),),
        2,
        _frozen(),
        "torchvision F.adjust_saturation(img, factor).",
    ),
    AugmentationSpec(
        "hue",
        (ParamSpec("factor", -0.5, 0.5, 0.0, False, "hue shift in turns (mod 1)"),),
        2,
        _frozen(),
        "torchvision F.adjust_hue(img, factor).",
    ),
    AugmentationSpec(
        "hflip",
        (),
        2,
        _frozen(),
        "torchvision F.hflip(img).",
    ),
    AugmentationSpec(
        "rotation",
        (ParamSpec("angle", -10.0, 10.0, 0.0, False, "counter-clockwise rotation (degrees)"),),
        2,
        _frozen(),
        "Rotate about the centre, crop the black borders, resize back (authors' custom_rotation).",
    ),
    AugmentationSpec(
        "elliptic_local_blur",
        (
            ParamSpec("a", 10.0, 32.0, 0.0, True, "horizontal half-axis before rotation (px)"),
            ParamSpec("b", 10.0, 32.0, 0.0, True, "vertical half-axis before rotation (px)"),
            ParamSpec("shift_x", -32.0, 32.0, 0.0, True, "ellipse centre right of the image centre (px)"),
            ParamSpec("shift_y", -32.0, 32.0, 0.0, True, "ellipse centre below the image centre (px)"),
            ParamSpec("angle", -15.0, 15.0, 0.0, False, "counter-clockwise ellipse rotation (degrees)"),
        ),
        2,
        _frozen(sigma=3.0, kernel_size=19, max_half_axis=32),
        "Gaussian blur (sigma) inside a rotated ellipse (authors' elliptic_local_blur).",
    ),
)

#: Every augmentation by name: set 1 then set 2, each in the authors' list order.
AUGMENTATIONS: dict[str, AugmentationSpec] = {s.name: s for s in _ALL}
#: Names of set 1, in the authors' list order (the order that composition indices refer to).
SET1: tuple[str, ...] = tuple(s.name for s in _ALL if s.set == 1)
#: Names of set 2, in the authors' list order.
SET2: tuple[str, ...] = tuple(s.name for s in _ALL if s.set == 2)


def spec(name: str) -> AugmentationSpec:
    """Look up an augmentation by name.

    Parameters
    ----------
    name : str
        One of :data:`AUGMENTATIONS`.

    Returns
    -------
    AugmentationSpec

    Raises
    ------
    KeyError
        For an unknown name; the message suggests close matches and lists the valid names.

    Examples
    --------
    >>> spec("hue").params[0].identity
    0.0
    """
    try:
        return AUGMENTATIONS[name]
    except (KeyError, TypeError) as exc:
        close = difflib.get_close_matches(str(name), AUGMENTATIONS, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        if isinstance(name, str) and "," in name:  # a TOML string where a list was meant
            items = ", ".join(f'"{part.strip()}"' for part in name.split(","))
            hint = f" A list is written in brackets: augmentations = [{items}]."
        raise UnknownAugmentationError(
            f"unknown augmentation {name!r}.{hint} Valid names: {', '.join(AUGMENTATIONS)}."
        ) from exc

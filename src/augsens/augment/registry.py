"""The catalogue: the paper's twelve augmentations, plugins' and users' -- and name resolution.

The twelve (:data:`AUGMENTATIONS`, :data:`SET1`, :data:`SET2`) are ordinary
:class:`~augsens.augment.protocol.Augmentation` instances of the ops in :mod:`augsens.augment.ops`.
Bounds and constants follow the authors' ``augmentation_setting.py`` for 224 x 224 images
(``docs/paper.md`` §5).  Two deliberate departures:

* hue's identity value is 0 (the authors recorded 1, which is not an identity and was never used);
* parameters without a finite identity inside their range (blur sigma, erasing scale, ELB axes) still
  get the value that leaves an image unchanged (sigma 0, scale 0, axes 0), outside ``[low, high]``.
  :func:`augsens.augment.apply` accepts a parameter's identity value as well as values within bounds.

``integer=True`` marks the parameters that the authors' Shapley and contrast samplers draw as discrete
uniforms on ``[low, high)`` (upper bound exclusive): erasing centres, roll shifts, and the ELB axes and
shifts (contrast sampler, docs/paper.md §7).  The Sobol family draws every parameter continuously on
``[low, high]``; such parameters are rounded to the nearest integer (half to even, like Python's
``round``) before an op sees them, so both encodings reach the same images.

Beyond the twelve, :func:`available` lists the common corruptions of ImageNet-C
(:data:`augsens.augment.corruptions.CORRUPTIONS`), what installed packages offer through the entry-point group
``augsens.augmentations`` (:data:`ENTRY_POINT_GROUP`; an entry point names an ``Augmentation``, a list of
them, or a function returning either) and what :func:`register` added in this process; :func:`spec`
resolves a name, a ``"package.module:name"`` reference or an ``Augmentation`` object.
"""

from __future__ import annotations

import difflib
import importlib
import math
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import torch

from augsens.errors import UserInputError

from .corruptions import CORRUPTIONS
from .ops import (
    brightness,
    contrast,
    elliptic_local_blur,
    erasing,
    gaussian_blur,
    grayscale,
    hflip,
    hue,
    rolling,
    rotation,
    saturation,
    sharpness,
)
from .protocol import Augmentation, ParamSpec

__all__ = [
    "AUGMENTATIONS",
    "SET1",
    "SET2",
    "ENTRY_POINT_GROUP",
    "spec",
    "available",
    "register",
    "reference",
    "UnknownAugmentationError",
]

#: Entry-point group through which installed packages offer augmentations.
ENTRY_POINT_GROUP = "augsens.augmentations"


class UnknownAugmentationError(KeyError, UserInputError):
    """An augmentation name that is not in :data:`AUGMENTATIONS` (a ``KeyError`` and a ``ValueError``)."""

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0])


#: Image side the bounds refer to (the authors' Resize(256) + CenterCrop(224)).
_SIDE = 224
_IMAGE = "[B, 3, H, W]"


def _frozen(**constants: float) -> Mapping[str, float]:
    return MappingProxyType(dict(constants))


def _paper(
    fn: Callable[..., torch.Tensor],
    params: tuple[ParamSpec, ...],
    set_: int,
    constants: Mapping[str, float],
    doc: str,
) -> Augmentation:
    return Augmentation(
        fn.__name__,
        params,
        fn,
        constants,
        doc,
        set=set_,
        input_shape=_IMAGE,
        source="augsens (the paper's catalogue)",
    )


_CENTRE = (_SIDE // 5, _SIDE - _SIDE // 5)  # [44, 180]
_SHIFT = _SIDE // 5  # 44

_ALL = (
    _paper(
        erasing,
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
    _paper(
        sharpness,
        (),
        1,
        _frozen(sharpness_factor=1.5),
        "torchvision F.adjust_sharpness(img, sharpness_factor); border pixels unchanged.",
    ),
    _paper(
        rolling,
        (
            ParamSpec("shift_y", -_SHIFT, _SHIFT, 0.0, True, "circular shift down (px)"),
            ParamSpec("shift_x", -_SHIFT, _SHIFT, 0.0, True, "circular shift right (px)"),
        ),
        1,
        _frozen(),
        "torch.roll(img, (shift_y, shift_x), dims=(-2, -1)).",
    ),
    _paper(
        grayscale,
        (),
        1,
        _frozen(),
        "torchvision F.rgb_to_grayscale(img, num_output_channels=3).",
    ),
    _paper(
        gaussian_blur,
        (ParamSpec("sigma", 0.1, 2.0, 0.0, False, "Gaussian standard deviation (px)"),),
        1,
        _frozen(kernel_size=7),
        "torchvision F.gaussian_blur(img, [kernel_size] * 2, [sigma] * 2), reflect padding.",
    ),
    _paper(
        brightness,
        (ParamSpec("factor", 0.1, 2.5, 1.0, False, "multiplier, clamped to [0, 1]"),),
        2,
        _frozen(),
        "torchvision F.adjust_brightness(img, factor).",
    ),
    _paper(
        contrast,
        (ParamSpec("factor", 0.01, 3.5, 1.0, False, "blend weight against the mean grey level"),),
        2,
        _frozen(),
        "torchvision F.adjust_contrast(img, factor).",
    ),
    _paper(
        saturation,
        (ParamSpec("factor", 0.01, 3.5, 1.0, False, "blend weight against the grayscale image"),),
        2,
        _frozen(),
        "torchvision F.adjust_saturation(img, factor).",
    ),
    _paper(
        hue,
        (ParamSpec("factor", -0.5, 0.5, 0.0, False, "hue shift in turns (mod 1)"),),
        2,
        _frozen(),
        "torchvision F.adjust_hue(img, factor).",
    ),
    _paper(
        hflip,
        (),
        2,
        _frozen(),
        "torchvision F.hflip(img).",
    ),
    _paper(
        rotation,
        (ParamSpec("angle", -10.0, 10.0, 0.0, False, "counter-clockwise rotation (degrees)"),),
        2,
        _frozen(),
        "Rotate about the centre, crop the black borders, resize back (authors' custom_rotation).",
    ),
    _paper(
        elliptic_local_blur,
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
AUGMENTATIONS: dict[str, Augmentation] = {s.name: s for s in _ALL}
#: Names of set 1, in the authors' list order (the order that composition indices refer to).
SET1: tuple[str, ...] = tuple(s.name for s in _ALL if s.set == 1)
#: Names of set 2, in the authors' list order.
SET2: tuple[str, ...] = tuple(s.name for s in _ALL if s.set == 2)


_REGISTERED: dict[str, Augmentation] = {}
_PLUGINS: dict[str, Augmentation] | None = None


def register(augmentation: Augmentation) -> Augmentation:
    """Make ``augmentation`` known by its name in this process (for :func:`spec` and configs); returns it.

    A later registration under the same name replaces an earlier one (a notebook cell run again); a
    name of the paper's catalogue or of a plugin cannot be taken.
    """
    if not isinstance(augmentation, Augmentation):
        raise UserInputError(f"register() takes an Augmentation, got {type(augmentation).__name__}")
    taken = {**AUGMENTATIONS, **CORRUPTIONS, **_plugins()}
    if augmentation.name in taken and taken[augmentation.name] is not augmentation:
        raise UserInputError(
            f"augmentation name {augmentation.name!r} is taken by {taken[augmentation.name].source}; "
            "give yours another name"
        )
    if augmentation.name not in AUGMENTATIONS:
        _REGISTERED[augmentation.name] = augmentation
    return augmentation


def _entry_points() -> Iterable[Any]:
    from importlib.metadata import entry_points

    return entry_points(group=ENTRY_POINT_GROUP)


def _as_augmentations(obj: Any, where: str) -> list[Augmentation]:
    if callable(obj) and not isinstance(obj, Augmentation):
        obj = obj()
    items = [obj] if isinstance(obj, Augmentation) else list(obj) if isinstance(obj, Iterable) else [obj]
    for item in items:
        if not isinstance(item, Augmentation):
            raise UserInputError(
                f"{where} gives {type(item).__name__} {item!r}, not an augsens Augmentation (see "
                "augsens.augment.protocol)"
            )
    return items


def _plugins() -> dict[str, Augmentation]:
    """Augmentations offered by installed packages (loaded once per process)."""
    global _PLUGINS
    if _PLUGINS is None:
        found: dict[str, Augmentation] = {}
        for ep in _entry_points():
            dist = getattr(getattr(ep, "dist", None), "name", "?")
            where = f"entry point {ep.name!r} of package {dist!r} ({ep.value})"
            try:
                items = _as_augmentations(ep.load(), where)
            except Exception as exc:  # a broken plugin must not break augsens: say so and go on
                warnings.warn(f"{where} cannot be loaded: {type(exc).__name__}: {exc}", stacklevel=2)
                continue
            for item in items:
                if item.name in AUGMENTATIONS or item.name in CORRUPTIONS or item.name in found:
                    warnings.warn(
                        f"{where}: augmentation name {item.name!r} is already taken; it is left out",
                        stacklevel=2,
                    )
                    continue
                found[item.name] = _with_source(item, f"plugin {dist} ({ep.value})")
        _PLUGINS = found
    return _PLUGINS


def _with_source(augmentation: Augmentation, source: str) -> Augmentation:
    import dataclasses

    return augmentation if augmentation.source == source else dataclasses.replace(augmentation, source=source)


def available() -> dict[str, Augmentation]:
    """Every augmentation known by name: the paper's twelve, the common corruptions, then plugins', then
    registered ones."""
    return {**AUGMENTATIONS, **CORRUPTIONS, **_plugins(), **_REGISTERED}


def _import_reference(ref: str) -> Augmentation:
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownAugmentationError(
            f"augmentation {ref!r}: module {module_name!r} cannot be imported ({exc}); is it installed or on "
            "PYTHONPATH?"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UnknownAugmentationError(f"augmentation {ref!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    items = _as_augmentations(obj, f"augmentation {ref!r}")
    if len(items) != 1:
        raise UnknownAugmentationError(
            f"augmentation {ref!r} gives {len(items)} augmentations: a reference names exactly one"
        )
    return _with_source(items[0], ref)


def reference(augmentation: Augmentation) -> str:
    """How a config names ``augmentation``: its name when that resolves to it, else
    ``"package.module:attribute"`` when it is a module-level object, else its name after registering it
    in this process (other processes, such as Ray workers, then cannot resolve it)."""
    if available().get(augmentation.name) is augmentation:
        return augmentation.name
    if ":" in augmentation.source:
        return augmentation.source
    # the module that holds it: first those of fn and of what it wraps (an adapter's op), then any
    chain: list[str] = []
    current: Any = augmentation.fn
    while current is not None and len(chain) < 8:
        chain.append(getattr(current, "__module__", "") or "")
        current = getattr(current, "__augsens_wraps__", None) or getattr(current, "__wrapped__", None)
    names = list(dict.fromkeys(chain)) + [n for n in list(sys.modules) if n not in chain]
    for name in names:
        module = sys.modules.get(name)
        if module is None or name == "__main__":
            continue
        for attr, value in list(getattr(module, "__dict__", {}).items()):
            if value is augmentation:
                return f"{name}:{attr}"
    register(augmentation)
    return augmentation.name


def spec(name: str | Augmentation) -> Augmentation:
    """Look up an augmentation by name, ``"package.module:name"`` reference or object.

    Parameters
    ----------
    name : str or Augmentation
        One of :func:`available` (the paper's twelve, plugins', registered ones), a reference
        ``"package.module:attribute"`` to an :class:`Augmentation`, or an ``Augmentation`` (returned).

    Returns
    -------
    Augmentation

    Raises
    ------
    KeyError
        For an unknown name; the message suggests close matches and lists the valid names.

    Examples
    --------
    >>> spec("hue").params[0].identity
    0.0
    """
    if isinstance(name, Augmentation):
        return name
    if isinstance(name, str) and ":" in name:
        return _import_reference(name)
    known = available()
    try:
        return known[name]
    except (KeyError, TypeError) as exc:
        close = difflib.get_close_matches(str(name), known, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        if isinstance(name, str) and "," in name:  # a TOML string where a list was meant
            items = ", ".join(f'"{part.strip()}"' for part in name.split(","))
            hint = f" A list is written in brackets: augmentations = [{items}]."
        raise UnknownAugmentationError(
            f"unknown augmentation {name!r}.{hint} Valid names: {', '.join(known)}, or "
            "'package.module:name' for an augmentation of yours."
        ) from exc

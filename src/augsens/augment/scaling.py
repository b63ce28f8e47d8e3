"""How the paper's augmentation bounds follow the image size.

The authors set their bounds for 224 x 224 images (Kharyuk, Matveev & Oseledets 2025, arXiv:2503.03283;
``augmentation_setting.py``).  Some are positions or lengths in pixels -- erasing centres in
``[44, 180]``, roll shifts in ``[-44, 44]``, elliptic-blur half-axes in ``[10, 32]`` and centre shifts in
``[-32, 32]`` -- and mean something else on an image of another size: on 32 x 32 a shift of 44 px is more
than a full turn, and a half-axis of 32 px blurs the whole image.  Those bounds are **scaled with the
side** they are measured along, by ``H / 224`` (rows: ``*_y``, the ellipse's ``b``) or ``W / 224``
(columns: ``*_x``, ``a``), so that a study on 32 x 32 images draws the same geometry, as fractions of the
image, as the paper's on 224 x 224 (shifts of up to a fifth of the side, rectangles centred in the middle
three fifths, ellipses up to a seventh of the side).  At 224 x 224 nothing changes.

Everything else is **not** scaled: angles (degrees), factors (brightness, contrast, saturation, hue),
erasing's area fraction and aspect ratio are free of units; blur widths (Gaussian blur sigma 0.1--2 px with
7 taps, the elliptic blur's sigma 3 px with 19 taps) describe a filter on the pixel grid, whose meaning --
how many neighbouring pixels are mixed -- does not change with the image size (scaled to 32 x 32 the
Gaussian blur's sigma would fall to 0.014--0.29 px, below what a pixel grid can show).  The elliptic blur's
``max_half_axis`` window follows its axes (:func:`augsens.augment.ops.elliptic_local_blur`).

Examples
--------
>>> from augsens.augment import spec
>>> from augsens.augment.scaling import at_size
>>> [(p.name, round(p.low, 3), round(p.high, 3)) for p in at_size(spec("rolling"), 32, 32).params]
[('shift_y', -6.286, 6.286), ('shift_x', -6.286, 6.286)]
>>> at_size(spec("rolling"), 224, 224) == spec("rolling")
True
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from augsens.augment.protocol import Augmentation
from augsens.augment.registry import AUGMENTATIONS
from augsens.errors import UserInputError

__all__ = ["REFERENCE_SIDE", "PIXEL_PARAMS", "at_size", "scale_factor"]

#: Side of the images the paper's bounds are set for (the authors' Resize(256) + CenterCrop(224)).
REFERENCE_SIDE = 224

#: Parameters measured in pixels, by (augmentation, parameter): the image axis they run along
#: (``"y"``: rows, scaled with the height; ``"x"``: columns, scaled with the width).
PIXEL_PARAMS: dict[tuple[str, str], Literal["y", "x"]] = {
    ("erasing", "center_y"): "y",
    ("erasing", "center_x"): "x",
    ("rolling", "shift_y"): "y",
    ("rolling", "shift_x"): "x",
    ("elliptic_local_blur", "a"): "x",  # horizontal half-axis before rotation
    ("elliptic_local_blur", "b"): "y",
    ("elliptic_local_blur", "shift_x"): "x",
    ("elliptic_local_blur", "shift_y"): "y",
}


def scale_factor(side: int) -> float:
    """``side / 224``: how much a pixel bound along an axis of ``side`` pixels is scaled."""
    return side / REFERENCE_SIDE


def at_size(spec: Augmentation, height: int, width: int) -> Augmentation:
    """The augmentation with its pixel bounds scaled to ``height x width`` images (module docstring).

    Parameters
    ----------
    spec : Augmentation
        An augmentation with the paper's bounds (for 224 x 224).
    height, width : int
        Image size in pixels.

    Returns
    -------
    Augmentation
        ``spec`` itself when nothing changes (not one of the paper's twelve as declared -- a user's
        augmentation, or one whose ranges were already set, is taken as given --, no pixel parameter, or a
        224 x 224 image); otherwise a copy whose pixel parameters have ``low`` and ``high`` multiplied by
        ``height / 224`` or ``width / 224`` (identity values stay: they leave any image unchanged).

    Raises
    ------
    UserInputError
        A side that is not a positive integer.
    """
    for what, side in (("height", height), ("width", width)):
        if isinstance(side, bool) or not isinstance(side, int) or side < 1:
            raise UserInputError(f"image {what} {side!r} must be a positive number of pixels")
    if AUGMENTATIONS.get(spec.name) is not spec:
        return spec  # only the paper's declared bounds are in pixels of 224 x 224 images
    scale = {"y": scale_factor(height), "x": scale_factor(width)}
    params = []
    for p in spec.params:
        axis = PIXEL_PARAMS.get((spec.name, p.name))
        if axis is None or scale[axis] == 1.0:
            params.append(p)
        else:
            params.append(dataclasses.replace(p, low=p.low * scale[axis], high=p.high * scale[axis]))
    if all(new is old for new, old in zip(params, spec.params, strict=True)):
        return spec
    return dataclasses.replace(spec, params=tuple(params))

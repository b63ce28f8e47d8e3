"""The twelve augmentations of the paper as batched tensor ops with per-sample parameters.

* :mod:`~augsens.augment.registry` -- names, parameters, bounds, identity values and constants
  (:data:`AUGMENTATIONS`, :data:`SET1`, :data:`SET2`, :func:`spec`);
* :mod:`~augsens.augment.ops` -- the ops, each equal to torchvision's functional op image by image, with
  the authors' variants behind ``mode="paper"``;
* :mod:`~augsens.augment.compose` -- :func:`apply` (one augmentation, per-sample switch) and
  :func:`compose` (a set, each sample in its own order);
* :mod:`~augsens.augment.pipeline` -- post-processing before the network, RGB <-> HSV, uint8 grid.

Images are float ``[B, 3, H, W]`` in [0, 1] on any device; parameters are tensors ``[B]``; nothing
here draws randomness.
"""

from .compose import Mode, apply, compose
from .pipeline import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    hsv_to_rgb,
    paper_rgb_to_hsv,
    postprocess,
    quantize_uint8,
    rgb_to_hsv,
)
from .registry import AUGMENTATIONS, SET1, SET2, AugmentationSpec, ParamSpec, spec

__all__ = [
    "AUGMENTATIONS",
    "SET1",
    "SET2",
    "AugmentationSpec",
    "ParamSpec",
    "spec",
    "apply",
    "compose",
    "Mode",
    "postprocess",
    "rgb_to_hsv",
    "hsv_to_rgb",
    "paper_rgb_to_hsv",
    "quantize_uint8",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

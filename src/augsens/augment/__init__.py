"""Augmentations as batched tensor ops with per-sample parameters: the paper's twelve and anyone's.

* :mod:`~augsens.augment.protocol` -- what an augmentation is (:class:`Augmentation`,
  :class:`ParamSpec`) and the rules its function follows;
* :mod:`~augsens.augment.registry` -- the paper's twelve (:data:`AUGMENTATIONS`, :data:`SET1`,
  :data:`SET2`), plugins and registered ones (:func:`available`, :func:`register`), name resolution
  (:func:`spec`);
* :mod:`~augsens.augment.ops` -- the ops, each equal to torchvision's functional op image by image, with
  the authors' variants behind ``mode="paper"``;
* :mod:`~augsens.augment.corruptions` -- the common corruptions of ImageNet-C (:data:`CORRUPTIONS`) with
  a continuous per-sample severity, checked against the ``imagecorruptions`` package;
* :mod:`~augsens.augment.compose` -- :func:`apply` (one augmentation, per-sample switch) and
  :func:`compose` (a set, each sample in its own order);
* :mod:`~augsens.augment.pipeline` -- post-processing before the network, RGB <-> HSV, uint8 grid.

Inputs are float ``[B, ...]`` on any device (images ``[B, 3, H, W]`` in [0, 1] for the twelve);
parameters are tensors ``[B]``; nothing here draws randomness.
"""

from .compose import apply, compose
from .corruptions import CORRUPTIONS
from .pipeline import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    hsv_to_rgb,
    paper_rgb_to_hsv,
    postprocess,
    quantize_uint8,
    rgb_to_hsv,
)
from .protocol import Augmentation, Mode, ParamSpec
from .registry import AUGMENTATIONS, SET1, SET2, available, register, spec

__all__ = [
    "AUGMENTATIONS",
    "CORRUPTIONS",
    "SET1",
    "SET2",
    "Augmentation",
    "ParamSpec",
    "spec",
    "available",
    "register",
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

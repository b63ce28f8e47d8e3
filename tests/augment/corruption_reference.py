"""The reference implementation of the common corruptions, ``imagecorruptions`` (a dev dependency).

Its version 1.1.2 predates the current scientific stack in three places, which this module bridges
before importing it, without changing any computation:

* ``pkg_resources`` (gone from setuptools >= 81) only locates the frost images: an equivalent
  ``resource_filename`` from :mod:`importlib.resources` is provided when it is missing;
* ``skimage.filters.gaussian(..., multichannel=True)`` (removed in scikit-image 0.19) becomes
  ``channel_axis=-1``, its replacement;
* ``numpy.float_`` (removed in numpy 2) is ``numpy.float64`` (used by the fog's fractal).

And one for reproducibility: ``skimage.util.random_noise`` (impulse noise) gets a generator seeded from
numpy's global state, like every other draw of the reference, instead of fresh entropy.

Also the photos the checks run on: real photos bundled with scikit-image, resized to 224 x 224 as
the studies do (Resize(256) + CenterCrop(224)).
"""

from __future__ import annotations

import importlib.resources
import sys
import types
import warnings
from collections.abc import Callable

import numpy as np
import skimage.color
import skimage.data
import skimage.util
import torch
import torchvision.transforms.v2.functional as F
from PIL import Image


def _load() -> types.ModuleType:
    shim = None
    try:
        with warnings.catch_warnings():  # setuptools 80 still ships it, deprecated
            warnings.simplefilter("ignore", UserWarning)
            import pkg_resources  # noqa: F401
    except ImportError:
        shim = types.ModuleType("pkg_resources")

        def resource_filename(package: str, name: str) -> str:
            return str(importlib.resources.files(package).joinpath(name))

        shim.resource_filename = resource_filename  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = shim
    try:
        with warnings.catch_warnings():  # its scipy.ndimage.interpolation import is deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            import imagecorruptions.corruptions as module
    finally:
        # the shim serves that one import: left in sys.modules it would pass for the real package
        # (pytest's monkeypatch.syspath_prepend, for one, calls pkg_resources when it is imported)
        if shim is not None and sys.modules.get("pkg_resources") is shim:
            del sys.modules["pkg_resources"]

    gaussian = module.gaussian

    def gaussian_channel_axis(image, *args, multichannel=None, **kwargs):
        if multichannel:
            kwargs["channel_axis"] = -1
        return gaussian(image, *args, **kwargs)

    module.gaussian = gaussian_channel_axis
    # skimage.util.random_noise draws from a fresh generator unless given one: seed it from numpy's
    # global state, which the rest of the reference draws from, so a seeded run replays
    random_noise = skimage.util.random_noise

    def seeded_random_noise(image, *args, **kwargs):
        kwargs.setdefault("rng", np.random.randint(2**31))  # noqa: NPY002 - the reference's global state
        return random_noise(image, *args, **kwargs)

    util = types.SimpleNamespace(random_noise=seeded_random_noise)
    module.sk = types.SimpleNamespace(util=util, color=skimage.color)
    if not hasattr(np, "float_"):
        module.np = types.SimpleNamespace(**{**vars(np), "float_": np.float64})
    return module


corruptions = _load()


def reference(name: str) -> Callable[..., np.ndarray]:
    """The reference corruption ``name`` on one uint8 ``[H, W, 3]`` image, as float ``[H, W, 3]`` in 0..255.

    The raw function, before ``imagecorruptions.corrupt`` truncates its result to uint8, so the
    comparison is not blurred by that truncation (it floors, ``np.uint8(float)``).  The returned
    ``run(image, severity, seed=None)`` seeds numpy's global generator first, which the reference
    draws from, when ``seed`` is given.
    """
    fn = getattr(corruptions, name)

    def run(image: np.ndarray, severity: int, seed: int | None = None) -> np.ndarray:
        if seed is not None:
            np.random.seed(seed)  # noqa: NPY002 - the reference draws from the global state
        return np.asarray(fn(Image.fromarray(image), severity), dtype=np.float64)

    return run


def motion_angle(seed: int) -> float:
    """The direction (degrees) the reference's ``motion_blur`` draws first after ``np.random.seed(seed)``."""
    return float(np.random.RandomState(seed).uniform(-45, 45))


PHOTOS = (skimage.data.astronaut, skimage.data.chelsea, skimage.data.coffee)


def photos(size: int = 224) -> np.ndarray:
    """Three real photos, uint8 ``[3, size, size, 3]`` (shorter side to ``size * 8/7``, centre crop)."""
    out = []
    for f in PHOTOS:
        t = torch.from_numpy(f()).permute(2, 0, 1)
        t = F.center_crop(F.resize(t, size + size // 7), size)
        out.append(t.permute(1, 2, 0).numpy())
    return np.stack(out)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[B, H, W, 3]`` -> float32 ``[B, 3, H, W]`` in [0, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).to(torch.float32) / 255

"""Decoded inputs held on the device, and the paper's per-row image re-draw.

Every image is decoded once (PIL, RGB), resized so its shorter side is 256 (bilinear, antialiased, as
torchvision's ``Resize(256)`` on a PIL image) and centre-cropped to 224 x 224: the authors' pre-processing
(``docs/paper.md`` §2) up to ``ToTensor``, whose float values are exactly ``uint8 / 255``.  So a uint8
cache loses nothing, takes a quarter of the memory of float32, and :meth:`ImageCache.gather` reproduces
``ToTensor`` on the device.

Another side ``s`` keeps the same proportions: shorter side ``round(s * 256 / 224)``, centre crop ``s``
(:func:`resized_side`); ``size=None`` keeps every image as it is (they must then share one size).

Inputs that are not images -- 1-D signals ``[C, T]``, spectra, any float tensor per sample -- live in a
:class:`SampleCache`, the same container without the image conventions: stored as given, in float.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Self

import numpy as np
import torch

from augsens.extras import missing_extra, require

try:
    from PIL import Image
except ImportError as exc:  # pillow comes with augsens[vision]
    raise missing_extra("PIL", "reading images") from exc

from augsens.core.draws import splitmix64_torch, uniform_from_bits

__all__ = [
    "SampleCache",
    "ImageCache",
    "decode_image",
    "decode_pil",
    "pil_to_rgb8",
    "redraw_within_class",
    "resized_side",
    "SIZE",
    "RESIZE",
]

RESIZE = 256  # shorter side after resizing
SIZE = 224  # side of the centre crop


def resized_side(size: int) -> int:
    """Shorter side before the centre crop to ``size``: ``round(size * 256 / 224)`` (256 for 224).

    The authors' ``Resize(256) + CenterCrop(224)`` keeps the central 224/256 = 7/8 of the shorter side;
    every other crop side keeps the same share.

    Examples
    --------
    >>> resized_side(224), resized_side(32), resized_side(64)
    (256, 37, 73)
    """
    return round(size * RESIZE / SIZE)


# What PIL raises on a missing, truncated, corrupt or over-large file; anything else is a bug and propagates.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def decode_image(path: str | os.PathLike, size: int | None = SIZE) -> torch.Tensor:
    """Read one image as uint8 ``[3, size, size]``: RGB, ``Resize(256)`` bilinear, ``CenterCrop(224)``
    for the default size (:func:`resized_side` for another), or ``[3, H, W]`` as stored for ``size=None``.

    Raises
    ------
    OSError, ValueError, SyntaxError, EOFError, PIL.Image.DecompressionBombError
        The file cannot be read or decoded.
    """
    with Image.open(path) as img:
        return decode_pil(img, size)


# PIL modes whose samples are wider than 8 bits.  ``convert("RGB")`` clips them at 255 instead of
# rescaling (a 16-bit photo becomes white), so they are rescaled by their own range first.
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def pil_to_rgb8(img: Image.Image) -> Image.Image:
    """A PIL image as 8-bit RGB, keeping the dynamic range of every mode PIL decodes.

    8-bit modes (``L``, ``P``, ``RGBA``, ``CMYK``, ``YCbCr``, ``LAB``, ``1``...) are converted by PIL.
    16-bit greyscale (``I;16*``, and ``I`` whose values lie in ``[0, 65535]``, as PIL holds 16-bit
    PNG, TIFF and PGM files) maps ``[0, 65535]`` onto ``[0, 255]`` (``round(v / 257)``); floating-point
    ``F`` images in ``[0, 1]`` map onto ``[0, 255]``.

    Raises
    ------
    ValueError
        An ``I`` image with values outside ``[0, 65535]``, an ``F`` image outside ``[0, 1]`` or with
        NaN (no range to map from), or a mode PIL cannot convert to RGB.
    """
    mode = img.mode
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        arr = np.asarray(img)
        if mode == "F":
            finite = arr[np.isfinite(arr)]
            if finite.size < arr.size:
                raise ValueError(
                    f"floating-point image (PIL mode 'F') with {arr.size - finite.size} NaN or infinite "
                    "values: save it as 8- or 16-bit"
                )
            if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
                raise ValueError(
                    f"floating-point image (PIL mode 'F') with values in [{arr.min():.4g}, "
                    f"{arr.max():.4g}]: only [0, 1] has a known range; save it as 8- or 16-bit"
                )
            scaled = np.rint(arr.astype(np.float64) * 255.0)
        else:
            if mode == "I" and arr.size and (arr.min() < 0 or arr.max() > 65535):
                raise ValueError(
                    f"32-bit integer image (PIL mode 'I') with values in [{arr.min()}, {arr.max()}], "
                    "outside the 16-bit range [0, 65535]: save it as 8- or 16-bit"
                )
            scaled = np.rint(arr.astype(np.float64) / 257.0)
        img = Image.fromarray(scaled.astype(np.uint8))  # 2-D uint8: mode "L"
    return img.convert("RGB")


def decode_pil(img: Image.Image, size: int | None = SIZE) -> torch.Tensor:
    """A PIL image as uint8 ``[3, size, size]`` (see :func:`decode_image`; ``None``: its own size), its
    colours by :func:`pil_to_rgb8`."""
    TF = require("torchvision.transforms.functional", purpose="decoding images")

    rgb = pil_to_rgb8(img)
    if size is None:
        return TF.pil_to_tensor(rgb)
    resized = TF.resize(rgb, resized_side(size), interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    return TF.pil_to_tensor(TF.center_crop(resized, size))


class SampleCache:
    """Inputs of a study, sorted class by class, as one tensor on a device: any shape per sample.

    The container every study reads: labels, classes, names, partitions and :meth:`gather`.  Samples are
    kept as given (a float tensor ``[N, C, T]`` of 1-D signals, ``[N, C, H, W]`` of multi-channel maps,
    ...) and gathered in the requested float dtype; :class:`ImageCache` adds the image conventions (uint8
    RGB, gathered as ``uint8 / 255``).  Build one with :func:`augsens.data.inputs.as_samples`.

    A cache may hold several partitions (train, val) one after the other, each sorted class by class over
    the same classes: see :meth:`concatenate` and :attr:`partitions`.

    Parameters
    ----------
    samples : Tensor [N, ...]
        The inputs, class 0's first (within each partition); floating point (at least 2 dims per sample
        for a network with channels: ``[N, C, T]``, ``[N, C, H, W]``).
    labels : Tensor [N], integer
        Class index of each sample; non-decreasing within each partition, every class in
        ``0 .. len(classes) - 1`` present in every partition.
    classes : sequence of str
        Class names.
    names : sequence of str
        One name per sample (file path relative to the source root, the photo name, or its index).
    skipped : sequence of (str, str), optional
        Files left out and why.
    device : str or torch.device, optional
        Where to keep samples and labels; default: where ``samples`` is.
    partitions : sequence of sequence of int, optional
        Class sizes of each partition, in sample order; default: one partition.

    Attributes
    ----------
    samples : Tensor [N, ...]
    labels : Tensor [N] int64, on the same device
    classes : list of str
    class_sizes : list of int
        Samples per class, all partitions together.  For a one-partition cache this is the ``class_sizes``
        of :class:`augsens.core.factors.ImageFactor`.
    partitions : list of list of int
        Class sizes per partition (``[class_sizes]`` for one partition): samples are numbered partition by
        partition, class by class, as :class:`augsens.engine.factors.AugmentationFactors` expects.
    names : list of str
    skipped : list of (str, str)
        ``(file, reason)`` for every unreadable file.

    Raises
    ------
    ValueError
        Shapes or counts disagree, labels are not sorted, or a class has no sample.
    """

    def __init__(
        self,
        samples: torch.Tensor,
        labels: torch.Tensor,
        classes: Sequence[str],
        names: Sequence[str],
        skipped: Sequence[tuple[str, str]] = (),
        device: str | torch.device | None = None,
        partitions: Sequence[Sequence[int]] | None = None,
    ) -> None:
        self._check_samples(samples)
        n = samples.shape[0]
        labels_cpu = torch.as_tensor(labels, dtype=torch.int64).cpu()
        if labels_cpu.shape != (n,) or len(names) != n:
            raise ValueError(
                f"need one label and one name per {self._noun}: {n} {self._noun}s, labels of shape "
                f"{tuple(labels_cpu.shape)}, {len(names)} names"
            )
        classes = [str(c) for c in classes]
        if n and (labels_cpu.min() < 0 or labels_cpu.max() >= len(classes)):
            raise ValueError(f"labels must lie in [0, {len(classes)}), the number of classes")
        if partitions is None:
            blocks = [labels_cpu]
        else:
            counts = [sum(int(s) for s in p) for p in partitions]
            if sum(counts) != n:
                raise ValueError(
                    f"partitions hold {sum(counts)} {self._noun}s in all, but there are {n} {self._noun}s"
                )
            blocks = list(labels_cpu.split(counts))
        part_sizes = []
        for k, block in enumerate(blocks):
            if block.numel() > 1 and bool((block[1:] < block[:-1]).any()):
                raise ValueError(
                    f"{self._noun}s of partition {k} must be sorted class by class (non-decreasing labels)"
                )
            sizes = torch.bincount(block, minlength=len(classes)).tolist()
            empty = [c for c, s in zip(classes, sizes, strict=True) if s == 0]
            if empty:
                where = f" in partition {k}" if len(blocks) > 1 else ""
                raise ValueError(
                    f"classes {empty[:5]!r} have no {self._noun}{where}: every class needs at least one"
                )
            if partitions is not None and [int(s) for s in partitions[k]] != sizes:
                raise ValueError(
                    f"partition {k}: class sizes {list(partitions[k])!r} disagree with its labels {sizes!r}"
                )
            part_sizes.append(sizes)
        dev = samples.device if device is None else torch.device(device)
        self.samples = samples.to(dev)
        self.labels = labels_cpu.to(dev)
        self.classes = classes
        self.class_sizes: list[int] = torch.bincount(labels_cpu, minlength=len(classes)).tolist()
        self.partitions: list[list[int]] = part_sizes
        self.names = [str(s) for s in names]
        self.skipped = [(str(f), str(r)) for f, r in skipped]

    #: what one item is called in messages
    _noun = "sample"

    @staticmethod
    def _check_samples(samples: torch.Tensor) -> None:
        if not isinstance(samples, torch.Tensor) or not samples.is_floating_point() or samples.ndim < 2:
            what = f"{samples.dtype} {tuple(samples.shape)}" if isinstance(samples, torch.Tensor) else samples
            raise ValueError(f"samples must be a float tensor [N, ...] (e.g. [N, C, T]), got {what}")

    @property
    def device(self) -> torch.device:
        return self.samples.device

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample as the network receives it: ``(3, H, W)`` for images, ``(C, T)`` for
        signals."""
        return tuple(self.samples.shape[1:])

    @classmethod
    def concatenate(cls, caches: Sequence[Self]) -> Self:
        """Join caches over the same classes as consecutive partitions (e.g. ``train_val(...)``).

        Labels keep their class meaning; :attr:`partitions` lists each part's class sizes.  The result lives
        on the first cache's device.

        Raises
        ------
        ValueError
            No caches, or caches with different classes.
        """
        parts = list(caches)
        if not parts:
            raise ValueError(f"concatenate needs at least one {cls.__name__}")
        for k, c in enumerate(parts[1:], start=1):
            if c.classes != parts[0].classes:
                raise ValueError(
                    f"cache {k} has classes {c.classes[:3]!r}... ({len(c.classes)}), cache 0 has "
                    f"{parts[0].classes[:3]!r}... ({len(parts[0].classes)}): partitions need the same classes"
                )
        dev = parts[0].device
        return cls(
            torch.cat([c.samples.to(dev) for c in parts]),
            torch.cat([c.labels.to(dev) for c in parts]),
            parts[0].classes,
            [name for c in parts for name in c.names],
            skipped=[s for c in parts for s in c.skipped],
            partitions=[sizes for c in parts for sizes in c.partitions],
        )

    def __len__(self) -> int:
        return self.samples.shape[0]

    def gather(self, index: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Samples ``index`` in ``dtype``, on the cache's device.

        Parameters
        ----------
        index : Tensor [b], integer (or integral float, as :meth:`ImageFactor.decode` returns)
            Global indices in ``[0, len(self))``; moved to the device without a host sync.  Out-of-range
            indices fail on the CPU and trigger a device-side assert on CUDA.
        dtype : torch.dtype, default float32
            A floating dtype (float16 / bfloat16 halve the traffic).

        Returns
        -------
        Tensor [b, ...]
            ``samples[index]`` (images: ``images[index] / 255``, floats in [0, 1]).
        """
        if not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating dtype, got {dtype}")
        idx = index.long() if index.is_floating_point() else index
        idx = idx.to(self.samples.device, non_blocking=True)
        return self._scale(self.samples.index_select(0, idx).to(dtype))

    def _scale(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def to(self, device: str | torch.device) -> Self:
        """Move samples and labels to ``device`` (in place) and return ``self``."""
        self.samples = self.samples.to(device)
        self.labels = self.labels.to(device)
        return self

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self)} {self._noun}s of shape {list(self.sample_shape)}, "
            f"{len(self.classes)} classes, {len(self.partitions)} partition(s), "
            f"device={str(self.device)!r}, skipped={len(self.skipped)})"
        )


class ImageCache(SampleCache):
    """Decoded images, sorted class by class, as one uint8 tensor on a device.

    A :class:`SampleCache` of RGB images: stored as uint8 ``[N, 3, H, W]`` (exactly ``ToTensor``'s values
    times 255) and gathered as floats in [0, 1].  ``images`` is the same tensor as ``samples``.

    Parameters
    ----------
    images : Tensor [N, 3, H, W], uint8
        The images, class 0's first (within each partition).
    labels, classes, names, skipped, device, partitions
        As :class:`SampleCache`.

    Attributes
    ----------
    images : Tensor [N, 3, H, W] uint8
    labels, classes, class_sizes, partitions, names, skipped
        As :class:`SampleCache`.

    Raises
    ------
    ValueError
        Not uint8 ``[N, 3, H, W]``, shapes or counts disagree, labels are not sorted, or a class has no
        image.
    """

    _noun = "image"

    @staticmethod
    def _check_samples(samples: torch.Tensor) -> None:
        if samples.dtype != torch.uint8 or samples.ndim != 4 or samples.shape[1] != 3:
            raise ValueError(
                f"images must be a uint8 tensor [N, 3, H, W], got {samples.dtype} {tuple(samples.shape)}"
            )

    @property
    def images(self) -> torch.Tensor:
        """The images, uint8 ``[N, 3, H, W]`` (the same tensor as :attr:`samples`)."""
        return self.samples

    @images.setter
    def images(self, value: torch.Tensor) -> None:
        self.samples = value

    def _scale(self, x: torch.Tensor) -> torch.Tensor:
        return x.div_(255)


def redraw_within_class(
    image_index: torch.Tensor, class_sizes: Sequence[int], row_id: torch.Tensor, seed: int
) -> torch.Tensor:
    """Paper mode: replace each row's image by another of the same class, drawn from ``(seed, row id)``.

    The authors re-drew the image within its class for every design row with a stateful sampler
    (``docs/paper.md`` §13.2).  Here the draw is a counter-based hash: image ``floor(u n_c)`` of
    class ``c`` with ``u = splitmix64(splitmix64(seed) + (row_id + 1) * gamma) / 2^64``, so any row replays
    on its own, on any device, without state.

    Parameters
    ----------
    image_index : Tensor [B], integer or integral float
        Global image indices (class by class numbering); only their class is kept.
    class_sizes : sequence of int
        Images per class (:attr:`ImageCache.class_sizes`).
    row_id : Tensor [B], integer
        Global design-row numbers (unique per row).
    seed : int
        Study seed.

    Returns
    -------
    Tensor [B], int64, on ``image_index``'s device
        New global image indices, each in the class of the old one.

    Examples
    --------
    >>> import torch
    >>> from augsens.data import redraw_within_class
    >>> new = redraw_within_class(torch.tensor([0, 0, 7]), [5, 5], torch.tensor([0, 1, 2]), seed=0)
    >>> bool((new[:2] < 5).all()), bool(new[2] >= 5)
    (True, True)
    """
    dev = image_index.device
    idx = image_index.long()
    sizes = torch.as_tensor(list(class_sizes), dtype=torch.int64, device=dev)
    ends = sizes.cumsum(0)
    cls = torch.searchsorted(ends, idx, right=True).clamp_max(len(sizes) - 1)
    u = uniform_from_bits(splitmix64_torch(row_id.to(device=dev), seed))
    n_c = sizes[cls]
    within = torch.minimum(torch.floor(u * n_c.to(torch.float64)).long(), n_c - 1)
    return ends[cls] - n_c + within

"""Decoded images held on the device, and the paper's per-row image re-draw.

Every image is decoded once (PIL, RGB), resized so its shorter side is 256 (bilinear, antialiased, as
torchvision's ``Resize(256)`` on a PIL image) and centre-cropped to 224 x 224: the authors' pre-processing
(``authors-code-spec.md`` 1.3) up to ``ToTensor``, whose float values are exactly ``uint8 / 255``.  So a uint8
cache loses nothing, takes a quarter of the memory of float32, and :meth:`ImageCache.gather` reproduces
``ToTensor`` on the device.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from augsens.core.draws import splitmix64_torch, uniform_from_bits

__all__ = [
    "ImageCache",
    "decode_image",
    "decode_pil",
    "pil_to_rgb8",
    "redraw_within_class",
    "SIZE",
    "RESIZE",
]

RESIZE = 256  # shorter side after resizing
SIZE = 224  # side of the centre crop

# What PIL raises on a missing, truncated, corrupt or over-large file; anything else is a bug and propagates.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def decode_image(path: str | os.PathLike) -> torch.Tensor:
    """Read one image as uint8 ``[3, 224, 224]``: RGB, ``Resize(256)`` bilinear, ``CenterCrop(224)``.

    Raises
    ------
    OSError, ValueError, SyntaxError, EOFError, PIL.Image.DecompressionBombError
        The file cannot be read or decoded.
    """
    with Image.open(path) as img:
        return decode_pil(img)


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


def decode_pil(img: Image.Image) -> torch.Tensor:
    """A PIL image as uint8 ``[3, 224, 224]``: RGB (:func:`pil_to_rgb8`), ``Resize(256)`` bilinear,
    ``CenterCrop(224)``."""
    import torchvision.transforms.functional as TF

    resized = TF.resize(pil_to_rgb8(img), RESIZE, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    return TF.pil_to_tensor(TF.center_crop(resized, SIZE))


class ImageCache:
    """Decoded images, sorted class by class, as one uint8 tensor on a device.

    A cache may hold several partitions (train, val) one after the other, each sorted class by class over
    the same classes: see :meth:`concatenate` and :attr:`partitions`.

    Parameters
    ----------
    images : Tensor [N, 3, H, W], uint8
        The images, class 0's first (within each partition).
    labels : Tensor [N], integer
        Class index of each image; non-decreasing within each partition, every class in
        ``0 .. len(classes) - 1`` present in every partition.
    classes : sequence of str
        Class names.
    names : sequence of str
        One name per image (file path relative to the source root, or the photo name).
    skipped : sequence of (str, str), optional
        Files left out and why.
    device : str or torch.device, optional
        Where to keep images and labels; default: where ``images`` is.
    partitions : sequence of sequence of int, optional
        Class sizes of each partition, in image order; default: one partition.

    Attributes
    ----------
    images : Tensor [N, 3, H, W] uint8
    labels : Tensor [N] int64, on the same device
    classes : list of str
    class_sizes : list of int
        Images per class, all partitions together.  For a one-partition cache this is the ``class_sizes`` of
        :class:`augsens.core.factors.ImageFactor`.
    partitions : list of list of int
        Class sizes per partition (``[class_sizes]`` for one partition): images are numbered partition by
        partition, class by class, as :class:`augsens.engine.factors.AugmentationFactors` expects.
    names : list of str
    skipped : list of (str, str)
        ``(file, reason)`` for every unreadable file.

    Raises
    ------
    ValueError
        Shapes or counts disagree, labels are not sorted, or a class has no image.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        classes: Sequence[str],
        names: Sequence[str],
        skipped: Sequence[tuple[str, str]] = (),
        device: str | torch.device | None = None,
        partitions: Sequence[Sequence[int]] | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"images must be a uint8 tensor [N, 3, H, W], got {images.dtype} {tuple(images.shape)}"
            )
        n = images.shape[0]
        labels_cpu = torch.as_tensor(labels, dtype=torch.int64).cpu()
        if labels_cpu.shape != (n,) or len(names) != n:
            raise ValueError(
                f"need one label and one name per image: {n} images, labels of shape "
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
                raise ValueError(f"partitions hold {sum(counts)} images in all, but there are {n} images")
            blocks = list(labels_cpu.split(counts))
        part_sizes = []
        for k, block in enumerate(blocks):
            if block.numel() > 1 and bool((block[1:] < block[:-1]).any()):
                raise ValueError(
                    f"images of partition {k} must be sorted class by class (non-decreasing labels)"
                )
            sizes = torch.bincount(block, minlength=len(classes)).tolist()
            empty = [c for c, s in zip(classes, sizes, strict=True) if s == 0]
            if empty:
                where = f" in partition {k}" if len(blocks) > 1 else ""
                raise ValueError(
                    f"classes {empty[:5]!r} have no image{where}: every class needs at least one"
                )
            if partitions is not None and [int(s) for s in partitions[k]] != sizes:
                raise ValueError(
                    f"partition {k}: class sizes {list(partitions[k])!r} disagree with its labels {sizes!r}"
                )
            part_sizes.append(sizes)
        dev = images.device if device is None else torch.device(device)
        self.images = images.to(dev)
        self.labels = labels_cpu.to(dev)
        self.classes = classes
        self.class_sizes: list[int] = torch.bincount(labels_cpu, minlength=len(classes)).tolist()
        self.partitions: list[list[int]] = part_sizes
        self.names = [str(s) for s in names]
        self.skipped = [(str(f), str(r)) for f, r in skipped]

    @property
    def device(self) -> torch.device:
        return self.images.device

    @classmethod
    def concatenate(cls, caches: Sequence[ImageCache]) -> ImageCache:
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
            raise ValueError("concatenate needs at least one ImageCache")
        for k, c in enumerate(parts[1:], start=1):
            if c.classes != parts[0].classes:
                raise ValueError(
                    f"cache {k} has classes {c.classes[:3]!r}... ({len(c.classes)}), cache 0 has "
                    f"{parts[0].classes[:3]!r}... ({len(parts[0].classes)}): partitions need the same classes"
                )
        dev = parts[0].device
        return cls(
            torch.cat([c.images.to(dev) for c in parts]),
            torch.cat([c.labels.to(dev) for c in parts]),
            parts[0].classes,
            [name for c in parts for name in c.names],
            skipped=[s for c in parts for s in c.skipped],
            partitions=[sizes for c in parts for sizes in c.partitions],
        )

    def __len__(self) -> int:
        return self.images.shape[0]

    def gather(self, index: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Images ``index`` as floats in [0, 1], on the cache's device.

        Parameters
        ----------
        index : Tensor [b], integer (or integral float, as :meth:`ImageFactor.decode` returns)
            Global image indices in ``[0, len(self))``; moved to the device without a host sync.  Out-of-range
            indices fail on the CPU and trigger a device-side assert on CUDA.
        dtype : torch.dtype, default float32
            A floating dtype (float16 / bfloat16 halve the traffic).

        Returns
        -------
        Tensor [b, 3, H, W]
            ``images[index] / 255``.
        """
        if not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating dtype, got {dtype}")
        idx = index.long() if index.is_floating_point() else index
        idx = idx.to(self.images.device, non_blocking=True)
        return self.images.index_select(0, idx).to(dtype).div_(255)

    def to(self, device: str | torch.device) -> ImageCache:
        """Move images and labels to ``device`` (in place) and return ``self``."""
        self.images = self.images.to(device)
        self.labels = self.labels.to(device)
        return self

    def __repr__(self) -> str:
        return (
            f"ImageCache({len(self)} images, {len(self.classes)} classes, "
            f"{len(self.partitions)} partition(s), device={str(self.device)!r}, skipped={len(self.skipped)})"
        )


def redraw_within_class(
    image_index: torch.Tensor, class_sizes: Sequence[int], row_id: torch.Tensor, seed: int
) -> torch.Tensor:
    """Paper mode: replace each row's image by another of the same class, drawn from ``(seed, row id)``.

    The authors re-drew the image within its class for every design row with a stateful sampler
    (``authors-code-spec.md`` 13.1).  Here the draw is a counter-based hash: image ``floor(u n_c)`` of
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

"""Images in whatever form a notebook holds them, turned into an :class:`~augsens.data.ImageCache`.

:func:`as_image_cache` accepts a folder (class sub-folders, or images directly in it), ``"bundled"``, a
list of paths or PIL images, a uint8 or float tensor ``[N, 3, H, W]``, a numpy array (``[N, 3, H, W]`` or
numpy's usual ``[N, H, W, 3]``), a torch ``Dataset`` returning images or ``(image, label, ...)`` tuples,
or an ``ImageCache``.  Every image becomes uint8 ``[3, 224, 224]`` as files do (shorter side resized to 256,
centre crop 224; a 224 x 224 input is kept as it is), or ``[3, s, s]`` for another ``size`` (shorter side
``round(s * 256 / 224)``, centre crop ``s``), or keeps its own size with ``size=None``; labelled images are
sorted class by class.  Images without labels form one class, ``"images"``.  Wrong input fails with one
message naming the fix.

:func:`as_samples` takes inputs that are not images -- a float tensor ``[N, C, T]`` of 1-D signals, or any
``[N, ...]`` -- into a :class:`~augsens.data.cache.SampleCache`, kept exactly as given.

Examples
--------
>>> import torch
>>> from augsens.data.inputs import as_image_cache
>>> cache = as_image_cache(torch.rand(4, 3, 224, 224))
>>> len(cache), cache.classes, cache.images.dtype
(4, ['images'], torch.uint8)
>>> as_image_cache(torch.rand(4, 3, 40, 50), size=32).sample_shape
(3, 32, 32)
>>> as_samples(torch.randn(6, 2, 128), labels=[0, 1, 0, 1, 0, 1]).class_sizes
[3, 3]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augsens.extras import missing_extra, require

try:
    from PIL import Image
except ImportError as exc:  # pillow comes with augsens[vision]
    raise missing_extra("PIL", "reading images") from exc

from augsens.errors import UserInputError

from .cache import DECODE_ERRORS, SIZE, ImageCache, SampleCache, decode_image, decode_pil, resized_side
from .sources import IMG_EXTENSIONS, FolderWalker, bundled_photos, decode_files, image_folder, keep_readable

__all__ = ["as_image_cache", "as_samples", "folder_layout", "UNLABELLED"]

#: class name of images given without labels
UNLABELLED = "images"


def folder_layout(path: str | os.PathLike) -> str:
    """``"classes"`` (sub-folders holding images), ``"flat"`` (images directly inside) or ``"empty"``.

    Raises
    ------
    FileNotFoundError
        ``path`` is not an existing folder.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(
            f"image folder {str(root)!r} does not exist or is not a folder: give an existing folder, a list "
            "of image files, a tensor, or 'bundled'"
        )
    walker = FolderWalker(root)  # no link loop, no results folder
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if walker.enter(sub) and any(_is_image(f) for _, files in walker.walk(sub) for f in files):
            return "classes"
    return "flat" if any(_is_image(p.name) for p in root.iterdir() if p.is_file()) else "empty"


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMG_EXTENSIONS)


def as_image_cache(
    images: Any,
    *,
    device: str | torch.device = "cpu",
    per_class: int | None = None,
    seed: int = 0,
    strict: bool = False,
    progress: bool = False,
    size: int | None = SIZE,
) -> SampleCache:
    """Turn images in any supported form into an :class:`ImageCache` (module docstring).

    Parameters
    ----------
    images : str, os.PathLike, sequence, Tensor, numpy.ndarray, torch.utils.data.Dataset or ImageCache
        ``"bundled"``; a folder (``root/<class>/<image>``, or images directly in ``root``: one class); a
        list of image paths and/or PIL images; a tensor ``[N, 3, H, W]``, uint8 in [0, 255] or float in
        [0, 1] (not normalised: the model's mean and std are applied by augsens); a numpy array, the same,
        or ``[N, H, W, 3]``; a ``Dataset`` whose items are an image (PIL, tensor ``[3, H, W]`` or array) or a
        tuple ``(image, label, ...)`` with an integer or string label.
    device : str or torch.device, default "cpu"
        Where the cache keeps the images.
    per_class, seed, strict, progress
        For folders with class sub-folders: see :func:`augsens.data.image_folder`.  ``strict`` applies
        to every source of files: an unreadable file in a folder (flat or not) or in a list of paths is
        skipped, listed in ``ImageCache.skipped`` and named in a warning, or with ``strict=True``
        refused; a single path that does not decode is always refused, naming it.
    size : int or None, default 224
        Side of the square images (shorter side resized to ``round(size * 256 / 224)``, centre crop; an
        input already ``size`` x ``size`` is kept as it is); ``None``: keep the input's size.  A cache given
        (an ``ImageCache`` or a :class:`SampleCache` from :func:`as_samples`) is kept as it is.

    Returns
    -------
    SampleCache
        An :class:`ImageCache`, or the :class:`SampleCache` given.

    Raises
    ------
    UserInputError
        Wrong shape, dtype or value range, an empty folder or list, a Dataset item that is not an image.
    FileNotFoundError
        A folder or file that does not exist.
    """
    _check_size(size)
    if isinstance(images, SampleCache):
        return images.to(device)
    if isinstance(images, str) and images == "bundled":
        return bundled_photos(device=device, size=size)
    if isinstance(images, str | os.PathLike):
        return _from_path(Path(images), device, per_class, seed, strict, progress, size)
    if isinstance(images, torch.Tensor | np.ndarray):
        return _cache(_batch_tensor(images, size=size), None, device)
    if isinstance(images, torch.utils.data.Dataset):
        return _from_dataset(images, device, size)
    if isinstance(images, Image.Image):
        images = [images]
    if isinstance(images, Sequence):
        if not images:
            raise UserInputError("images is an empty list: give at least one image path or PIL image")
        return _from_list(list(images), device, strict, size)
    raise UserInputError(
        f"images of type {type(images).__name__} are not supported: give a folder, 'bundled', a list of "
        "paths or PIL images, a tensor [N, 3, H, W], a numpy array or a torch Dataset"
    )


def _check_size(size: object) -> None:
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise UserInputError(
            f"size = {size!r}: give the side of the square images in pixels (a positive integer, e.g. 224 or "
            "32), or None to keep the input's size"
        )


def _stack(images: list[torch.Tensor], where: str = "images") -> torch.Tensor:
    """One batch of images that kept their own size (``size=None``) or share one; else one message."""
    shapes = sorted({tuple(t.shape) for t in images})
    if len(shapes) > 1:
        (_, h0, w0), (_, h1, w1) = shapes[0], shapes[1]
        raise UserInputError(
            f"{where} have different sizes ({h0} x {w0} and {h1} x {w1}, height x width) and size=None keeps "
            "each as it is: give size a side (e.g. 224 or 32) to resize and crop them all"
        )
    return torch.stack(images)


def _from_path(
    path: Path,
    device: str | torch.device,
    per_class: int | None,
    seed: int,
    strict: bool,
    progress: bool,
    size: int | None,
) -> ImageCache:
    if path.is_file():
        return _cache(_one_image(path, str(path), size)[None], None, device)
    layout = folder_layout(path)
    if layout == "classes":
        return image_folder(
            path, per_class=per_class, seed=seed, strict=strict, device=device, progress=progress, size=size
        )
    if layout == "empty":
        raise UserInputError(
            f"image folder {str(path)!r} holds no image files (extensions {', '.join(IMG_EXTENSIONS)}): put "
            "images in it (or in class sub-folders of it), or pass images='bundled' for the bundled photos"
        )
    files = sorted(p for p in path.iterdir() if p.is_file() and _is_image(p.name))
    decoded, errors = decode_files(
        files, min(8, os.cpu_count() or 1), progress, f"decoding {path.name}", size
    )
    keep, skipped = keep_readable([f.name for f in files], errors, strict=strict, where=f"in {str(path)!r}")
    _need_one(keep, skipped, f"in {str(path)!r}")
    images = decoded[keep] if skipped else decoded
    return _cache(images, None, device, [files[i].name for i in keep], skipped=skipped)


def _from_list(items: list[Any], device: str | torch.device, strict: bool, size: int | None) -> ImageCache:
    """A list of paths, PIL images and tensors: unreadable files are skipped and listed (or refused with
    ``strict``) as in a folder."""
    decoded: list[torch.Tensor | None] = []
    errors: list[BaseException | None] = []
    names = []
    for i, item in enumerate(items):
        names.append(os.fspath(item) if isinstance(item, str | os.PathLike) else f"images[{i}]")
        if isinstance(item, str | os.PathLike) and Path(item).is_file():
            try:
                decoded.append(decode_image(item, size))
                errors.append(None)
            except DECODE_ERRORS as exc:
                decoded.append(None)
                errors.append(exc)
            continue
        decoded.append(_one_image(item, f"images[{i}]", size))
        errors.append(None)
    keep, skipped = keep_readable(names, errors, strict=strict, where="in the list of images")
    _need_one(keep, skipped, "in the list of images")
    kept = _stack([t for t in decoded if t is not None])
    return _cache(kept, None, device, [names[i] for i in keep], skipped=skipped)


def _need_one(keep: list[int], skipped: list[tuple[str, str]], where: str) -> None:
    if not keep:
        raise UserInputError(
            f"every image file {where} is unreadable ({len(skipped)} files), e.g. {skipped[:3]!r}: fix "
            "the files or give other images"
        )


def _one_image(item: Any, where: str, size: int | None = SIZE) -> torch.Tensor:
    """One image (path, PIL image, tensor [3, H, W], array [3, H, W] / [H, W, 3]) as uint8 [3, size, size]."""
    if isinstance(item, str | os.PathLike):
        if not Path(item).is_file():
            raise FileNotFoundError(f"{where}: image file {str(item)!r} does not exist")
        try:
            return decode_image(item, size)
        except DECODE_ERRORS as exc:
            raise UserInputError(
                f"{where}: image file {str(item)!r} is unreadable ({type(exc).__name__}: {exc}): fix or "
                "re-save it, or leave it out"
            ) from exc
    if isinstance(item, Image.Image):
        return decode_pil(item, size)
    if isinstance(item, torch.Tensor | np.ndarray):
        if item.ndim != 3:
            raise UserInputError(
                f"{where}: one image must have 3 dims [3, H, W], got shape {tuple(item.shape)}"
            )
        return _batch_tensor(item[None], where=where, size=size)[0]
    raise UserInputError(
        f"{where} is a {type(item).__name__}, not an image: give a path, a PIL image or a tensor [3, H, W]"
    )


def _batch_tensor(
    x: torch.Tensor | np.ndarray, where: str = "images", size: int | None = SIZE
) -> torch.Tensor:
    """Check a batch of images and return it as uint8 [N, 3, size, size] ([N, 3, H, W] for None)."""
    if isinstance(x, np.ndarray):
        if x.ndim == 4 and x.shape[-1] == 3 and x.shape[1] != 3:
            x = np.moveaxis(x, -1, 1)  # numpy's image layout [N, H, W, 3]
        t = torch.from_numpy(np.ascontiguousarray(x))
    else:
        t = x.detach().cpu()
    shape = tuple(t.shape)
    if t.ndim != 4 or t.shape[1] != 3:
        if t.ndim == 3 and t.shape[0] == 3:
            fix = "add the batch dim with x.unsqueeze(0) (or x[None])"
        elif t.ndim == 4 and t.shape[-1] == 3:
            fix = "move channels to dim 1 with x.permute(0, 3, 1, 2)"
        elif t.ndim == 4 and t.shape[1] == 1:
            fix = "repeat the grey channel with x.expand(-1, 3, -1, -1)"
        else:
            fix = "give RGB images as [N, 3, H, W]"
        if t.ndim != 4 and where == "images":
            fix += "; for inputs that are not images ([N, C, T] signals, ...) pass augsens.data.as_samples(x)"
        raise UserInputError(f"{where} must have shape [N, 3, H, W], got {list(shape)}: {fix}")
    if t.shape[0] == 0:
        raise UserInputError(f"{where} holds no image (shape {list(shape)}): give at least one")
    if t.dtype == torch.uint8:
        u8 = t
    elif t.is_floating_point():
        bad = int((~torch.isfinite(t)).sum())
        if bad:
            raise UserInputError(
                f"float {where} hold {bad} NaN or infinite values (of {t.numel()}): give finite values in "
                "[0, 1] (e.g. x.nan_to_num(0.0), or find where the NaN came from)"
            )
        lo, hi = float(t.min()), float(t.max())
        if lo < 0.0 or hi > 1.0:
            raise UserInputError(
                f"float {where} must lie in [0, 1], got values in [{lo:.3g}, {hi:.3g}]: give un-normalised "
                "images (augsens applies the model's mean and std itself), e.g. x.float() / 255 for 0..255"
            )
        u8 = (t.float() * 255).round_().to(torch.uint8)
    else:
        raise UserInputError(
            f"{where} have dtype {t.dtype}: give uint8 images in [0, 255] (x.to(torch.uint8)) or float "
            "images in [0, 1] (x.float() / 255)"
        )
    if size is None or u8.shape[-2:] == (size, size):
        return u8.contiguous()
    TF = require("torchvision.transforms.functional", purpose="decoding images")

    # the pre-processing of image files: shorter side to 256 (bilinear, antialiased), centre crop 224
    # (for another side, the same proportions: augsens.data.cache.resized_side)
    resized = TF.resize(u8, resized_side(size), interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    return TF.center_crop(resized, size).contiguous()


def _from_dataset(data: Any, device: str | torch.device, size: int | None = SIZE) -> ImageCache:
    try:
        n = len(data)
    except TypeError as exc:
        raise UserInputError(
            f"the Dataset {type(data).__name__} has no length: augsens decodes every image once, so give a "
            "map-style Dataset (with __len__) or a list of images"
        ) from exc
    if n == 0:
        raise UserInputError(f"the Dataset {type(data).__name__} is empty: give at least one image")
    images, labels = [], []
    for i in range(n):
        item = data[i]
        if isinstance(item, tuple | list):
            if len(item) < 2:
                raise UserInputError(
                    f"dataset[{i}] is a {type(item).__name__} of {len(item)}: expected (image, label)"
                )
            image, label = item[0], item[1]
            labels.append(label.item() if isinstance(label, torch.Tensor) else label)
        else:
            image = item
        images.append(_one_image(image, f"dataset[{i}]", size))
    if labels and len(labels) != n:
        raise UserInputError(
            "some Dataset items carry a label and some do not: return (image, label) for all"
        )
    return _cache(_stack(images, f"the images of {type(data).__name__}"), labels or None, device)


def as_samples(
    samples: torch.Tensor | np.ndarray,
    labels: Sequence[Any] | torch.Tensor | np.ndarray | None = None,
    *,
    names: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
) -> SampleCache:
    """Inputs that are not images, as a :class:`~augsens.data.cache.SampleCache` for a study.

    Parameters
    ----------
    samples : Tensor or numpy.ndarray [N, C, ...]
        One float row per input, exactly as the network takes it (``[N, C, T]`` for a ``Conv1d``
        network): kept as given, in float32 (float64 stays float64).  No resizing, no range rule: the
        model's ``mean`` / ``std`` (default 0 and 1 for such inputs) are the only normalisation.
    labels : sequence of int or str, optional
        One class per sample; the samples are sorted class by class (stable).  Default: one class,
        ``"images"`` (as unlabelled images).
    names : sequence of str, optional
        One name per sample (default: its index).
    device : str or torch.device, default "cpu"
        Where the cache keeps the samples.

    Returns
    -------
    SampleCache

    Raises
    ------
    UserInputError
        Fewer than 2 dims per sample, no sample, non-finite values, a non-numeric dtype, or labels / names
        whose count is not N.

    Examples
    --------
    >>> import torch
    >>> cache = as_samples(torch.zeros(4, 2, 100))
    >>> cache.sample_shape, cache.gather(torch.tensor([0, 3])).shape
    ((2, 100), torch.Size([2, 2, 100]))
    """
    t = torch.from_numpy(np.ascontiguousarray(samples)) if isinstance(samples, np.ndarray) else samples
    if not isinstance(t, torch.Tensor):
        raise UserInputError(
            f"samples of type {type(samples).__name__} are not supported: give a tensor or numpy array "
            "[N, C, T]"
        )
    t = t.detach()
    if t.ndim < 3:
        raise UserInputError(
            f"samples must have shape [N, C, ...] (e.g. [N, C, T] for 1-D signals), got {list(t.shape)}: add "
            "the channel dim with x.unsqueeze(1) for one-channel signals"
        )
    if t.shape[0] == 0:
        raise UserInputError(f"samples hold no sample (shape {list(t.shape)}): give at least one")
    if t.dtype == torch.bool or t.is_complex():
        raise UserInputError(f"samples have dtype {t.dtype}: give real numbers (a float tensor)")
    t = t if t.dtype == torch.float64 else t.float()
    if not bool(torch.isfinite(t).all()):
        raise UserInputError(
            f"samples hold {int((~torch.isfinite(t)).sum())} NaN or infinite values: give finite inputs"
        )
    n = t.shape[0]
    if names is not None and len(names) != n:
        raise UserInputError(f"names has {len(names)} entries for {n} samples: give one name per sample")
    if labels is not None:
        values = labels.tolist() if isinstance(labels, torch.Tensor | np.ndarray) else list(labels)
        if len(values) != n:
            raise UserInputError(
                f"labels has {len(values)} entries for {n} samples: give one label per sample"
            )
        labels = values
    return _cache(t.contiguous(), labels, device, names, SampleCache)


def _cache(
    images: torch.Tensor,
    labels: Sequence[Any] | None,
    device: str | torch.device,
    names: Sequence[str] | None = None,
    cls: type[SampleCache] = ImageCache,
    skipped: Sequence[tuple[str, str]] = (),
) -> Any:
    """An ImageCache (or ``cls``) with items sorted class by class (stable: input order within a class)."""
    n = images.shape[0]
    names = [str(i) for i in range(n)] if names is None else list(names)
    if labels is None:
        return cls(images, torch.zeros(n, dtype=torch.int64), [UNLABELLED], names, skipped, device=device)
    classes = sorted(set(labels), key=lambda v: (isinstance(v, str), v))
    index = {c: k for k, c in enumerate(classes)}
    ids = torch.tensor([index[v] for v in labels], dtype=torch.int64)
    order = torch.sort(ids, stable=True).indices
    return cls(
        images[order],
        ids[order],
        [str(c) for c in classes],
        [names[i] for i in order.tolist()],
        skipped,
        device=device,
    )

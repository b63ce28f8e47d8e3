"""Images in whatever form a notebook holds them, turned into an :class:`~augsens.data.ImageCache`.

:func:`as_image_cache` accepts a folder (class sub-folders, or images directly in it), ``"bundled"``, a
list of paths or PIL images, a uint8 or float tensor ``[N, 3, H, W]``, a numpy array (``[N, 3, H, W]`` or
numpy's usual ``[N, H, W, 3]``), a torch ``Dataset`` returning images or ``(image, label, ...)`` tuples,
or an ``ImageCache``.  Every image becomes uint8 ``[3, 224, 224]`` as files do (shorter side resized to 256,
centre crop 224; a 224 x 224 input is kept as it is), and labelled images are sorted class by class.
Images without labels form one class, ``"images"``.  Wrong input fails with one message naming the fix.

Examples
--------
>>> import torch
>>> from augsens.data.inputs import as_image_cache
>>> cache = as_image_cache(torch.rand(4, 3, 224, 224))
>>> len(cache), cache.classes, cache.images.dtype
(4, ['images'], torch.uint8)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from augsens.errors import UserInputError

from .cache import DECODE_ERRORS, RESIZE, SIZE, ImageCache, decode_image, decode_pil
from .sources import IMG_EXTENSIONS, _Walker, bundled_photos, decode_files, image_folder, keep_readable

__all__ = ["as_image_cache", "folder_layout", "UNLABELLED"]

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
    walker = _Walker(root)  # no link loop, no results folder
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
) -> ImageCache:
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

    Returns
    -------
    ImageCache

    Raises
    ------
    UserInputError
        Wrong shape, dtype or value range, an empty folder or list, a Dataset item that is not an image.
    FileNotFoundError
        A folder or file that does not exist.
    """
    if isinstance(images, ImageCache):
        return images.to(device)
    if isinstance(images, str) and images == "bundled":
        return bundled_photos(device=device)
    if isinstance(images, str | os.PathLike):
        return _from_path(Path(images), device, per_class, seed, strict, progress)
    if isinstance(images, torch.Tensor | np.ndarray):
        return _cache(_batch_tensor(images), None, device)
    if isinstance(images, torch.utils.data.Dataset):
        return _from_dataset(images, device)
    if isinstance(images, Image.Image):
        images = [images]
    if isinstance(images, Sequence):
        if not images:
            raise UserInputError("images is an empty list: give at least one image path or PIL image")
        return _from_list(list(images), device, strict)
    raise UserInputError(
        f"images of type {type(images).__name__} are not supported: give a folder, 'bundled', a list of "
        "paths or PIL images, a tensor [N, 3, H, W], a numpy array or a torch Dataset"
    )


def _from_path(
    path: Path, device: str | torch.device, per_class: int | None, seed: int, strict: bool, progress: bool
) -> ImageCache:
    if path.is_file():
        return _cache(_one_image(path, str(path))[None], None, device)
    layout = folder_layout(path)
    if layout == "classes":
        return image_folder(
            path, per_class=per_class, seed=seed, strict=strict, device=device, progress=progress
        )
    if layout == "empty":
        raise UserInputError(
            f"image folder {str(path)!r} holds no image files (extensions {', '.join(IMG_EXTENSIONS)}): put "
            "images in it (or in class sub-folders of it), or pass images='bundled' for the bundled photos"
        )
    files = sorted(p for p in path.iterdir() if p.is_file() and _is_image(p.name))
    decoded, errors = decode_files(files, min(8, os.cpu_count() or 1), progress, f"decoding {path.name}")
    keep, skipped = keep_readable([f.name for f in files], errors, strict=strict, where=f"in {str(path)!r}")
    _need_one(keep, skipped, f"in {str(path)!r}")
    images = decoded[keep] if skipped else decoded
    return _cache(images, None, device, [files[i].name for i in keep], skipped)


def _from_list(items: list[Any], device: str | torch.device, strict: bool) -> ImageCache:
    """A list of paths, PIL images and tensors: unreadable files are skipped and listed (or refused with
    ``strict``) as in a folder."""
    decoded: list[torch.Tensor | None] = []
    errors: list[BaseException | None] = []
    names = []
    for i, item in enumerate(items):
        names.append(os.fspath(item) if isinstance(item, str | os.PathLike) else f"images[{i}]")
        if isinstance(item, str | os.PathLike) and Path(item).is_file():
            try:
                decoded.append(decode_image(item))
                errors.append(None)
            except DECODE_ERRORS as exc:
                decoded.append(None)
                errors.append(exc)
            continue
        decoded.append(_one_image(item, f"images[{i}]"))
        errors.append(None)
    keep, skipped = keep_readable(names, errors, strict=strict, where="in the list of images")
    _need_one(keep, skipped, "in the list of images")
    kept = [t for t in decoded if t is not None]
    return _cache(torch.stack(kept), None, device, [names[i] for i in keep], skipped)


def _need_one(keep: list[int], skipped: list[tuple[str, str]], where: str) -> None:
    if not keep:
        raise UserInputError(
            f"every image file {where} is unreadable ({len(skipped)} files), e.g. {skipped[:3]!r}: fix "
            "the files or give other images"
        )


def _one_image(item: Any, where: str) -> torch.Tensor:
    """One image (path, PIL image, tensor [3, H, W], array [3, H, W] / [H, W, 3]) as uint8 [3, 224, 224]."""
    if isinstance(item, str | os.PathLike):
        if not Path(item).is_file():
            raise FileNotFoundError(f"{where}: image file {str(item)!r} does not exist")
        try:
            return decode_image(item)
        except DECODE_ERRORS as exc:
            raise UserInputError(
                f"{where}: image file {str(item)!r} is unreadable ({type(exc).__name__}: {exc}): fix or "
                "re-save it, or leave it out"
            ) from exc
    if isinstance(item, Image.Image):
        return decode_pil(item)
    if isinstance(item, torch.Tensor | np.ndarray):
        if item.ndim != 3:
            raise UserInputError(
                f"{where}: one image must have 3 dims [3, H, W], got shape {tuple(item.shape)}"
            )
        return _batch_tensor(item[None], where=where)[0]
    raise UserInputError(
        f"{where} is a {type(item).__name__}, not an image: give a path, a PIL image or a tensor [3, H, W]"
    )


def _batch_tensor(x: torch.Tensor | np.ndarray, where: str = "images") -> torch.Tensor:
    """Check a batch of images and return it as uint8 [N, 3, 224, 224]."""
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
    if u8.shape[-2:] == (SIZE, SIZE):
        return u8.contiguous()
    import torchvision.transforms.functional as TF

    # the pre-processing of image files: shorter side to 256 (bilinear, antialiased), centre crop 224
    resized = TF.resize(u8, RESIZE, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    return TF.center_crop(resized, SIZE).contiguous()


def _from_dataset(data: Any, device: str | torch.device) -> ImageCache:
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
        images.append(_one_image(image, f"dataset[{i}]"))
    if labels and len(labels) != n:
        raise UserInputError(
            "some Dataset items carry a label and some do not: return (image, label) for all"
        )
    return _cache(torch.stack(images), labels or None, device)


def _cache(
    images: torch.Tensor,
    labels: Sequence[Any] | None,
    device: str | torch.device,
    names: Sequence[str] | None = None,
    skipped: Sequence[tuple[str, str]] = (),
) -> ImageCache:
    """An ImageCache with images sorted class by class (stable: input order within a class)."""
    n = images.shape[0]
    names = [str(i) for i in range(n)] if names is None else list(names)
    if labels is None:
        return ImageCache(
            images, torch.zeros(n, dtype=torch.int64), [UNLABELLED], names, skipped, device=device
        )
    classes = sorted(set(labels), key=lambda v: (isinstance(v, str), v))
    index = {c: k for k, c in enumerate(classes)}
    ids = torch.tensor([index[v] for v in labels], dtype=torch.int64)
    order = torch.sort(ids, stable=True).indices
    return ImageCache(
        images[order],
        ids[order],
        [str(c) for c in classes],
        [names[i] for i in order.tolist()],
        device=device,
    )

"""Where images come from: the photos bundled with scikit-image / scikit-learn, and image folders.

Each source decodes its files once into an :class:`~augsens.data.cache.ImageCache`, class by class.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch

from augsens.errors import MissingFileError, UserInputError
from augsens.preflight import STATE_DIR

from .cache import DECODE_ERRORS, SIZE, ImageCache, decode_image

__all__ = [
    "IMG_EXTENSIONS",
    "BUNDLED_PHOTOS",
    "bundled_photos",
    "image_folder",
    "train_val",
    "TrainVal",
    "is_results_folder",
    "keep_readable",
    "decode_files",
    "count_images",
]

# torchvision.datasets.folder.IMG_EXTENSIONS: the files ImageFolder would list.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

# Colour photographs shipped inside the wheels (no download): name -> (package, file).
BUNDLED_PHOTOS: dict[str, tuple[str, str]] = {
    "astronaut": ("skimage", "astronaut.png"),
    "chelsea": ("skimage", "chelsea.png"),
    "china": ("sklearn", "china.jpg"),
    "coffee": ("skimage", "coffee.png"),
    "flower": ("sklearn", "flower.jpg"),
    "hubble_deep_field": ("skimage", "hubble_deep_field.jpg"),
    "immunohistochemistry": ("skimage", "ihc.png"),
    "motorcycle": ("skimage", "motorcycle_left.png"),
    "retina": ("skimage", "retina.jpg"),
    "rocket": ("skimage", "rocket.jpg"),
}


def _bundled_dir(package: str) -> Path:
    # The files sit in the installed package itself.  skimage's public loaders may fetch through pooch in
    # some versions, so the files are read directly and a missing one is skipped, never downloaded.
    from augsens.extras import require

    if package == "skimage":
        data = require("skimage.data", purpose="the bundled photos")
        return Path(getattr(data, "data_dir", Path(data.__file__ or "").parent))
    datasets = require("sklearn.datasets", purpose="the bundled photos")
    return Path(datasets.__file__ or "").parent / "images"


def bundled_photos(device: str | torch.device = "cpu", *, size: int | None = SIZE) -> ImageCache:
    """The colour photos shipped with scikit-image and scikit-learn; each photo is its own class.

    astronaut, chelsea (a cat), china, coffee, flower, hubble_deep_field, immunohistochemistry, motorcycle,
    retina and rocket, in that (alphabetical) order.  Photos the installed versions do not ship are left out
    and listed in :attr:`ImageCache.skipped`.

    Parameters
    ----------
    device : str or torch.device, default "cpu"
        Where the decoded images are kept.
    size : int or None, default 224
        Side of the square images (:func:`augsens.data.decode_image`).  ``None`` (keep each photo's own
        size) is refused: the photos differ in size.

    Returns
    -------
    ImageCache
        One image per class; class name = image name = photo name.

    Examples
    --------
    >>> from augsens.data import bundled_photos
    >>> photos = bundled_photos()
    >>> photos.classes[:3], tuple(photos.images.shape[1:])
    (['astronaut', 'chelsea', 'china'], (3, 224, 224))
    """
    if size is None:
        raise UserInputError(
            "the bundled photos have different sizes, so they cannot keep their own: give [images] size "
            "a side (e.g. 224 or 32)"
        )
    images, names, skipped = [], [], []
    for name, (package, file) in sorted(BUNDLED_PHOTOS.items()):
        path = _bundled_dir(package) / file
        if not path.is_file():
            skipped.append((f"{package}:{file}", "not shipped with the installed version"))
            continue
        try:
            images.append(decode_image(path, size))
        except DECODE_ERRORS as exc:
            skipped.append((str(path), f"{type(exc).__name__}: {exc}"))
            continue
        names.append(name)
    if not images:
        raise MissingFileError(
            "none of the bundled photos was found in the installed scikit-image / scikit-learn: reinstall "
            "them or use image_folder() on your own images"
        )
    return ImageCache(
        torch.stack(images), torch.arange(len(names)), names, names, skipped=skipped, device=device
    )


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMG_EXTENSIONS)


#: what an augsens run writes into its results folder; a folder holding one is never a class of images
RESULTS_MARKERS = ("results.zarr", STATE_DIR)


def is_results_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is (or was made as) the results folder of an augsens run: it holds
    ``results.zarr`` or a ``state`` folder."""
    return any((Path(path) / m).is_dir() for m in RESULTS_MARKERS)


class FolderWalker:
    """``os.walk`` that follows folder links but never into a loop, never twice into one folder and
    never into an augsens results folder; it lists what it left out and why.

    A link is followed when it leads to a folder not yet scanned that is not the root or one of its
    ancestors (``a/up -> ..`` would make every image of the tree, other classes' included, a file of
    ``a`` again and again).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real_root = root.resolve()
        self.seen: set[tuple[int, int]] = {self._key(root)}
        self.skipped: list[tuple[str, str]] = []

    @staticmethod
    def _key(path: Path) -> tuple[int, int]:
        st = os.stat(path)
        return st.st_dev, st.st_ino

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def enter(self, path: Path) -> bool:
        """Whether to scan the folder ``path`` (a folder under the root); records why not."""
        try:
            key = self._key(path)
        except OSError as exc:  # a dangling link or a folder that cannot be read
            self.skipped.append((self._rel(path) + "/", f"folder not readable: {exc.strerror or exc}"))
            return False
        real = path.resolve()
        if key in self.seen or real == self.real_root or real in self.real_root.parents:
            self.skipped.append(
                (self._rel(path) + "/", f"link to {str(real)!r}, a folder already scanned (a loop)")
            )
            return False
        if is_results_folder(path):
            self.skipped.append((self._rel(path) + "/", "an augsens results folder, not images"))
            return False
        self.seen.add(key)
        return True

    def walk(self, top: Path) -> list[tuple[str, list[str]]]:
        """``(folder, sorted file names)`` of ``top`` and every folder under it that is entered."""
        found = []
        for d, dirs, fs in os.walk(top, followlinks=True):
            dirs[:] = sorted(x for x in dirs if not x.startswith(".") and self.enter(Path(d) / x))
            found.append((d, sorted(fs)))
        return sorted(found)


def _scan(root: Path, layout: str) -> tuple[list[str], list[list[Path]], list[tuple[str, str]]]:
    """Class names, their image files (sorted as torchvision's ImageFolder sorts them) and the folders
    left out (links into loops, results folders) with the reason."""
    walker = FolderWalker(root)
    if layout == "imagefolder":
        subs = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
        classes = [c for c in subs if walker.enter(root / c)]
        files = [
            [Path(d) / f for d, fs in walker.walk(root / c) for f in fs if _is_image(f)] for c in classes
        ]
        return classes, files, walker.skipped
    groups: dict[str, list[Path]] = {}
    for d, fs in walker.walk(root):
        images = [Path(d) / f for f in fs if _is_image(f)]
        rel = Path(d).relative_to(root).as_posix()
        if images and rel != ".":
            groups[rel] = images
    classes = sorted(groups)
    return classes, [groups[c] for c in classes], walker.skipped


def _warn_skipped_folders(skipped: list[tuple[str, str]], base: Path) -> None:
    if skipped:
        warnings.warn(
            f"left out {len(skipped)} folders of {str(base)!r}: {skipped[:3]!r}"
            f"{' ...' if len(skipped) > 3 else ''} (all listed in .skipped)",
            stacklevel=3,
        )


def _class_balanced(files: list[Path], per_class: int, seed: int) -> list[Path]:
    # The authors' rule (docs/paper.md §2): a fresh default_rng(seed) per class, permute that class's
    # files, keep the first k, restore file order.  Reusing it picks the same ILSVRC subset as theirs.
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.permutation(len(files))[:per_class])
    return [files[i] for i in keep]


def decode_files(
    paths: list[Path], workers: int, progress: bool, description: str, size: int | None = SIZE
) -> tuple[torch.Tensor, list[BaseException | None]]:
    """Decode ``paths`` into one uint8 tensor (row ``i`` is unset where ``errors[i]`` is).

    With a ``size`` the tensor is preallocated; with ``None`` (each image keeps its size) the images are
    stacked afterwards, and images of different sizes are refused."""
    images = torch.empty(len(paths), 3, size, size, dtype=torch.uint8) if size is not None else None
    kept: dict[int, torch.Tensor] = {}

    def job(i: int) -> BaseException | None:
        try:
            decoded = decode_image(paths[i], size)
        except DECODE_ERRORS as exc:
            return exc
        if images is not None:
            images[i] = decoded
        else:
            kept[i] = decoded
        return None

    errors = _run_jobs(job, len(paths), workers, progress, description)
    if images is not None:
        return images, errors
    return _stack_same_size(paths, kept), errors


def _stack_same_size(paths: list[Path], kept: dict[int, torch.Tensor]) -> torch.Tensor:
    """Images decoded at their own size, stacked; one message naming two files that differ in size."""
    if not kept:
        return torch.empty(len(paths), 3, 1, 1, dtype=torch.uint8)
    first = min(kept)
    shape = kept[first].shape
    for i in sorted(kept):
        if kept[i].shape != shape:
            raise UserInputError(
                f'[images] size = "keep" needs images of one size, but {str(paths[first])!r} is '
                f"{shape[2]} x {shape[1]} and {str(paths[i])!r} is {kept[i].shape[2]} x {kept[i].shape[1]} "
                f"(width x height; different sizes ({shape[1]} x {shape[2]} and {kept[i].shape[1]} x "
                f"{kept[i].shape[2]}, height x width) with size=None in Python): give [images] size (or "
                "size=) a side (e.g. 32) to resize and crop them all"
            )
    out = torch.empty(len(paths), *shape, dtype=torch.uint8)
    for i, t in kept.items():
        out[i] = t
    return out


def _run_jobs(
    job: Callable[[int], BaseException | None], count: int, workers: int, progress: bool, description: str
) -> list[BaseException | None]:
    """``job(i)`` for ``i < count`` on a thread pool, with an optional progress bar; the errors in order."""

    # PIL releases the GIL while decoding and resizing, so threads decode in parallel.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(job, range(count))
        if not progress:
            return list(results)
        from rich.progress import Progress

        errors = []
        with Progress(transient=True) as bar:
            task = bar.add_task(description, total=count)
            for r in results:
                errors.append(r)
                bar.advance(task)
        return errors


def image_folder(
    root: str | os.PathLike,
    *,
    per_class: int | None = None,
    seed: int = 0,
    strict: bool = False,
    layout: Literal["imagefolder", "nested"] = "imagefolder",
    device: str | torch.device = "cpu",
    progress: bool = True,
    workers: int | None = None,
    size: int | None = SIZE,
) -> ImageCache:
    """Decode an image folder, optionally a class-balanced subset of it.

    Parameters
    ----------
    root : str or os.PathLike
        ``"imagefolder"`` layout: ``root/<class>/**/<image>`` (torchvision's ImageFolder; ILSVRC
        ``CLS-LOC/train`` and ``CLS-LOC/val`` after ``valprep.sh``; Places365 val arranged in class folders).
        Classes are the sorted sub-folder names, so labels follow the standard ILSVRC (sorted wnid) order.
    per_class : int, optional
        Keep this many images per class, chosen as the authors did: per class a fresh
        ``numpy.random.default_rng(seed)`` permutes the class's files, the first ``per_class`` are kept, in
        file order (paper: 732 for ILSVRC train, 50 = all for val).  Classes with fewer files keep all (a
        warning names them).  ``None``: every image.
    seed : int, default 0
        Seed of the subset choice.
    strict : bool, default False
        Raise on the first unreadable file instead of skipping it.
    layout : {"imagefolder", "nested"}, default "imagefolder"
        ``"nested"``: every folder that directly holds images is a class named by its path relative to
        ``root`` (Places365's ``data_256/a/abbey/*.jpg`` gives class ``"a/abbey"``).
    device : str or torch.device, default "cpu"
        Where the decoded images are kept.
    progress : bool, default True
        Show a progress bar while decoding.
    workers : int, optional
        Decoding threads; default ``min(8, os.cpu_count())``.
    size : int or None, default 224
        Side of the square images (:func:`augsens.data.decode_image`); ``None``: every image keeps its
        own size (they must all have the same).

    Returns
    -------
    ImageCache
        Images sorted class by class (file order within a class); ``names`` are paths relative to ``root``;
        unreadable files are listed in ``skipped`` (and a warning names them).

    Raises
    ------
    FileNotFoundError
        ``root`` does not exist or is not a folder.
    ValueError
        No class folders, a class without images, an unreadable file with ``strict=True``, bad ``per_class``.
    """
    base = Path(root)
    if not base.is_dir():
        raise MissingFileError(f"image folder {str(base)!r} does not exist or is not a folder")
    if layout not in ("imagefolder", "nested"):
        raise UserInputError(f"layout must be 'imagefolder' or 'nested', got {layout!r}")
    if per_class is not None and (int(per_class) != per_class or per_class < 1):
        raise UserInputError(f"per_class must be a positive integer or None, got {per_class!r}")
    classes, files, left_out = _scan(base, layout)
    _warn_skipped_folders(left_out, base)
    if not classes:
        raise UserInputError(
            f"no class folders with images in {str(base)!r}: expected {str(base)}/<class>/<image> with "
            f"extensions {IMG_EXTENSIONS!r}"
        )
    empty = [c for c, fs in zip(classes, files, strict=True) if not fs]
    if empty:
        raise UserInputError(
            f"class folders {empty[:5]!r} in {str(base)!r} hold no image files ({len(empty)} in all): remove "
            "them or add images"
        )
    if per_class is not None:
        short = [c for c, fs in zip(classes, files, strict=True) if len(fs) < per_class]
        if short:
            warnings.warn(
                f"{len(short)} classes have fewer than per_class={per_class} images and keep all of theirs "
                f"(e.g. {short[:3]!r})",
                stacklevel=2,
            )
        files = [_class_balanced(fs, per_class, seed) for fs in files]

    paths = [p for fs in files for p in fs]
    labels = [c for c, fs in enumerate(files) for _ in fs]
    n_workers = workers if workers is not None else min(8, os.cpu_count() or 1)
    decoded, errors = decode_files(paths, n_workers, progress, f"decoding {base.name or str(base)}", size)
    names = [p.relative_to(base).as_posix() for p in paths]
    keep, skipped = keep_readable(names, errors, strict=strict, where=f"in {str(base)!r}")
    kept_labels = torch.tensor([labels[i] for i in keep], dtype=torch.int64)
    lost = sorted(set(range(len(classes))) - set(kept_labels.tolist()))
    if lost:
        raise UserInputError(
            f"every image of classes {[classes[c] for c in lost][:5]!r} in {str(base)!r} is unreadable: "
            f"fix the files (see the skipped list: {skipped[:3]!r})"
        )
    images = decoded[keep] if len(keep) < len(paths) else decoded  # copy only when rows must be dropped
    return ImageCache(
        images, kept_labels, classes, [names[i] for i in keep], left_out + skipped, device=device
    )


def keep_readable(
    names: list[str], errors: list[BaseException | None], *, strict: bool, where: str
) -> tuple[list[int], list[tuple[str, str]]]:
    """The indices of the files that decoded, and ``(name, reason)`` for each that did not.

    Every source of image files (class folders, a flat folder, a list of paths) skips and lists an
    unreadable file the same way: a warning names the first ones, :attr:`ImageCache.skipped` lists all.

    Raises
    ------
    UserInputError
        ``strict`` and a file did not decode (the message names some).
    """
    skipped = [(n, f"{type(e).__name__}: {e}") for n, e in zip(names, errors, strict=True) if e is not None]
    keep = [i for i, e in enumerate(errors) if e is None]
    if skipped and strict:
        raise UserInputError(
            f"{len(skipped)} unreadable image files {where}, e.g. {skipped[:3]!r}. Fix or remove "
            "them, or pass strict=False ([images] strict = false) to skip them"
        )
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} unreadable image files {where}: {skipped[:3]!r}"
            f"{' ...' if len(skipped) > 3 else ''} (all listed in .skipped)",
            stacklevel=3,
        )
    return keep, skipped


def count_images(
    root: str | os.PathLike,
    *,
    per_class: int | None = None,
    seed: int = 0,
    layout: Literal["imagefolder", "nested"] = "imagefolder",
) -> list[int]:
    """Images per class that :func:`image_folder` would decode, found without decoding any (a scan of
    the folder names only), so that the memory of the decoded images is known before they are.

    Returns
    -------
    list of int
        Files per class after the ``per_class`` subset, classes in :func:`image_folder`'s order (empty
        when ``root`` is not a folder; unreadable files are found only when decoded).
    """
    base = Path(root)
    if not base.is_dir():
        return []
    _, files, _ = _scan(base, layout)
    return [len(fs) if per_class is None else min(len(fs), per_class) for fs in files]


class TrainVal(NamedTuple):
    """The two partitions of a study with a train/val factor (partition 0 = train, 1 = val)."""

    train: ImageCache
    val: ImageCache


def train_val(
    root_train: str | os.PathLike,
    root_val: str | os.PathLike,
    *,
    per_class: tuple[int | None, int | None] = (None, None),
    seed: tuple[int, int] = (0, 0),
    **kwargs,
) -> TrainVal:
    """Decode a train and a val folder with the same classes, as the two partitions of a study.

    Parameters
    ----------
    root_train, root_val : str or os.PathLike
        Image folders (see :func:`image_folder`).
    per_class : (int or None, int or None), default (None, None)
        Images per class for train and for val (the paper: ``(732, 50)`` for ILSVRC).
    seed : (int, int), default (0, 0)
        Subset seeds for train and val (the authors' ``subset_random_state_train`` / ``_valid``).
    **kwargs
        Passed to :func:`image_folder` (``strict``, ``layout``, ``device``, ``progress``, ``workers``).

    Returns
    -------
    TrainVal
        ``(train, val)``; both have the same :attr:`~ImageCache.classes`, so a class index means the same
        class in either partition.  ``ImageCache.concatenate(train_val(...))`` gives the one two-partition
        cache a study with a partition factor reads (images numbered train first, then val).

    Raises
    ------
    ValueError
        The two folders have different classes (the message names some).
    """
    train = image_folder(root_train, per_class=per_class[0], seed=seed[0], **kwargs)
    val = image_folder(root_val, per_class=per_class[1], seed=seed[1], **kwargs)
    if train.classes != val.classes:
        only_train = sorted(set(train.classes) - set(val.classes))[:3]
        only_val = sorted(set(val.classes) - set(train.classes))[:3]
        raise UserInputError(
            f"train folder {str(root_train)!r} and val folder {str(root_val)!r} have different classes "
            f"({len(train.classes)} vs {len(val.classes)}; only in train e.g. {only_train!r}, only in val "
            f"e.g. {only_val!r}): both need the same class sub-folders"
        )
    return TrainVal(train, val)

"""Class names: ImageNet's from torchvision's weights metadata, Places365's from CSAIL's text file.

Both sources are offline: torchvision ships the ImageNet names inside its weights enums, and the Places365
names come from a ``categories_places365.txt`` the user already has (lines ``/a/abbey 0``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from augsens.errors import MissingFileError, UserInputError

__all__ = ["imagenet_categories", "read_categories", "resolve_categories"]

# CSAIL's file: "/a/apartment_building/outdoor 8" -> name "apartment_building/outdoor", index 8.
_INDEXED_LINE = re.compile(r"^(?P<name>\S+)\s+(?P<index>\d+)$")


def imagenet_categories() -> list[str]:
    """The 1000 ILSVRC-2012 class names in the standard (sorted-wnid) label order.

    Read from torchvision's ``AlexNet_Weights.IMAGENET1K_V1.meta`` (no download).
    """
    from augsens.extras import require

    weights = require("torchvision.models", purpose="the ImageNet class names")
    return list(weights.AlexNet_Weights.IMAGENET1K_V1.meta["categories"])


def _strip_places_prefix(name: str) -> str:
    # CSAIL names carry "/<first letter>/" in front ("/a/abbey"); their own demo drops it with [3:].
    if len(name) > 3 and name[0] == "/" and name[2] == "/":
        return name[3:]
    return name


def read_categories(path: str | os.PathLike) -> list[str]:
    """Read class names from a file.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.json`` file holding a list of names or a ``{index: name}`` mapping, or a text file with one name
        per line, or with lines ``name index`` (CSAIL's ``categories_places365.txt``: ``/a/abbey 0``; the
        ``/a/`` prefix is dropped).

    Returns
    -------
    list of str
        Names in label order.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is empty or its indices are not exactly ``0 .. n-1``.
    """
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(f"categories file {str(p)!r} not found: pass the path of an existing file")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".json":
        data = json.loads(text)
        if isinstance(data, dict):
            indexed = {int(k): str(v) for k, v in data.items()}
            return _ordered(indexed, p)
        if isinstance(data, list):
            return [str(v) for v in data]
        raise UserInputError(f"categories file {str(p)!r} must hold a JSON list or {{index: name}} object")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise UserInputError(f"categories file {str(p)!r} is empty: it needs one class name per line")
    matches = [_INDEXED_LINE.match(line) for line in lines]
    if all(matches):
        indexed = {int(m["index"]): _strip_places_prefix(m["name"]) for m in matches if m}
        return _ordered(indexed, p)
    return lines


def _ordered(indexed: dict[int, str], path: Path) -> list[str]:
    if sorted(indexed) != list(range(len(indexed))):
        raise UserInputError(
            f"categories file {str(path)!r}: class indices must be 0..{len(indexed) - 1} "
            "without gaps or repeats"
        )
    return [indexed[i] for i in range(len(indexed))]


def resolve_categories(
    categories: Sequence[str] | str | os.PathLike | None, num_classes: int | None
) -> list[str] | None:
    """Turn the ``categories`` argument of :func:`augsens.models.load` into a list of names.

    ``"imagenet"`` gives :func:`imagenet_categories`; another string or a path is read with
    :func:`read_categories`; a sequence is used as is.  The count must equal ``num_classes`` when known.
    """
    if categories is None:
        return None
    if isinstance(categories, os.PathLike) or isinstance(categories, str):
        names = imagenet_categories() if categories == "imagenet" else read_categories(categories)
    else:
        names = [str(c) for c in categories]
    if num_classes is not None and len(names) != num_classes:
        raise UserInputError(
            f"got {len(names)} category names for a model with {num_classes} classes: pass one name per class"
        )
    return names

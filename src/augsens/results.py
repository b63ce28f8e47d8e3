"""Results on disk: an ``xarray.DataTree`` in Zarr, one node per checkpoint, with provenance.

A results folder ``DIR`` holds ``DIR/results.zarr``; :func:`open_results` reads it back with the
checkpoint nodes in model order (Zarr lists groups alphabetically).  Root attributes carry the study
config (JSON), package versions, seed, n, rows done, timings, and counts of skipped images and
non-finite values.  Only final maps are written: nothing here ever sees an activation.
"""

from __future__ import annotations

import json
import platform
import shutil
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import xarray as xr

import augsens.display  # noqa: F401  (registers the .augsens summary accessor on results)
from augsens.errors import MissingFileError, UserInputError
from augsens.manifest import check_tree, verify_store, write_manifest
from augsens.preflight import STATE_DIR, STATE_NAME
from augsens.wording import option

__all__ = [
    "json_attr",
    "open_results",
    "write_results",
    "output_dims",
    "versions",
    "RESULTS_NAME",
    "is_results_dir",
    "find_results",
    "unfinished_run",
    "results_folder",
]

RESULTS_NAME = "results.zarr"


def output_dims(
    shape: tuple[int, ...],
    channel_axis: Literal["first", "last"] | None = None,
    *,
    sequence: Literal["token", "time"] = "token",
) -> tuple[str, ...]:
    """Dimension names of one sample's activation.

    Parameters
    ----------
    shape : tuple of int
        Per-sample shape (batch dim excluded).
    channel_axis : {"first", "last"}, optional
        Where the feature (channel) axis is, as :func:`augsens.models.layout.checkpoint_layouts` finds
        it.  ``None``: unknown, so 3-D outputs are taken as conv maps and 2-D outputs stay anonymous.
    sequence : {"token", "time"}, default "token"
        Name of the position axis of a 2-D output: ``"token"`` in a network on images (a transformer's
        patch tokens), ``"time"`` in a network on 1-D signals.

    Returns
    -------
    tuple of str
        ``(unit,)`` for a vector (a fully connected layer); ``(channel, y, x)`` for a conv map and
        ``(y, x, channel)`` for a channels-last map (Swin-style stages); ``(token, channel)`` for a
        transformer block (class token included, if the model has one) and ``(channel, token)`` for a
        channels-first 1-D sequence; with ``sequence="time"``, ``(channel, time)`` for a ``Conv1d`` map of
        a signal network and ``(time, channel)`` channels-last; ``dim_i`` otherwise.

    Examples
    --------
    >>> output_dims((64, 56, 56)), output_dims((197, 192), "last"), output_dims((1000,))
    (('channel', 'y', 'x'), ('token', 'channel'), ('unit',))
    >>> output_dims((16, 250), "first", sequence="time")
    ('channel', 'time')
    """
    if len(shape) == 1:
        return ("unit",)
    if len(shape) == 3:
        return ("y", "x", "channel") if channel_axis == "last" else ("channel", "y", "x")
    if len(shape) == 2 and channel_axis is not None:
        return (sequence, "channel") if channel_axis == "last" else ("channel", sequence)
    return tuple(f"dim_{i}" for i in range(len(shape)))


def versions() -> dict[str, str]:
    """Versions of Python and the packages that shape the numbers."""
    out = {"python": platform.python_version()}
    for pkg in ("augsens", "torch", "torchvision", "timm", "numpy", "scipy", "xarray", "zarr"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def write_results(tree: xr.DataTree, directory: str | Path) -> Path:
    """Write ``tree`` to ``directory/results.zarr``, atomically.

    The tree is written to a temporary sibling and renamed into place, so a crash or a kill while writing
    leaves the previous results (or none), never a half-written folder under the results name.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    final = d / RESULTS_NAME
    tmp = d / (RESULTS_NAME + ".tmp")
    old = d / (RESULTS_NAME + ".old")
    for stale in (tmp, old):  # left by a run killed while writing
        if stale.exists():
            shutil.rmtree(stale)
    try:
        # Zarr v2 format: readable by zarr 2 and 3 and free of v3's unstable string-dtype warnings.
        tree.to_zarr(tmp, mode="w", zarr_format=2, consolidated=True)
        write_manifest(tmp, tree)  # what must exist, with checksums: open_results checks against it
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a partial store must not stay filling the disk
        raise
    if final.exists():
        final.rename(old)  # two renames: the results name is never bound to a partial folder
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)
    return final


def results_folder(directory: str | Path) -> Path:
    """The results folder meant by ``directory``: given ``DIR/results.zarr`` itself, ``DIR``."""
    d = Path(directory)
    if d.name == RESULTS_NAME and d.is_dir() and not (d / RESULTS_NAME).exists():
        return d.parent
    return d


def is_results_dir(directory: str | Path) -> bool:
    return (results_folder(directory) / RESULTS_NAME).is_dir()


def find_results(directory: str | Path) -> list[Path]:
    """``directory`` itself if it is a results folder, else its results sub-folders (sorted).

    ``DIR/results.zarr`` is understood as ``DIR``."""
    d = results_folder(directory)
    if is_results_dir(d):
        return [d]
    return sorted(p for p in d.iterdir() if p.is_dir() and is_results_dir(p)) if d.is_dir() else []


def unfinished_run(directory: str | Path) -> str:
    """A sentence about the unfinished run ``directory`` holds (its saved state), or ``""``."""
    state = results_folder(directory) / STATE_DIR / STATE_NAME
    if not state.is_file():
        return ""
    return (
        f" It holds an unfinished run: its state is saved in {str(state)!r}. Finish it by running the "
        f"same study into it with {option('resume')}; the results are written when it completes."
    )


def open_results(directory: str | Path, *, verify: Literal["quick", "full", "none"] = "quick") -> xr.DataTree:
    """Open a results folder as a ``DataTree`` (checkpoint nodes in model order).

    Parameters
    ----------
    directory : path
        The results folder (the ``out`` of a run); its ``results.zarr`` itself is understood too.
    verify : {"quick", "full", "none"}, default "quick"
        Compare the store with the manifest written beside its data (:mod:`augsens.manifest`):
        ``"quick"`` checks that every node, variable and file is there with its size (a ``stat`` per
        file); ``"full"`` also reads every file and checks its checksum; ``"none"`` skips both.

    Raises
    ------
    MissingFileError
        ``directory`` holds no ``results.zarr`` (the message names a saved state to resume, or lists
        results sub-folders if any).
    DamagedResultsError
        The store differs from its manifest: the message names the nodes, variables and files.
    UserInputError
        ``results.zarr`` is incomplete (no ``.zmetadata``: its writing never finished) or unreadable.
    """
    if verify not in ("quick", "full", "none"):
        raise UserInputError(f"verify={verify!r}: choose 'quick', 'full' or 'none'")
    d = results_folder(directory)
    path = d / RESULTS_NAME
    if not path.is_dir():
        subs = find_results(d) if d.is_dir() else []
        hint = f" It contains results folders: {[p.name for p in subs]!r}." if subs else ""
        what = "does not exist" if not d.exists() else f"is not an augsens results folder (no {RESULTS_NAME})"
        raise MissingFileError(f"{str(d)!r} {what}.{hint}{unfinished_run(d)}")
    incomplete = (
        f"{str(d)!r} is not a complete results folder: {RESULTS_NAME} {{}}. Rerun the study into it with "
        f"{option('overwrite')} (or with {option('resume')} if it holds a state/ folder)"
    )
    if not (path / ".zmetadata").is_file():
        raise UserInputError(incomplete.format("has no .zmetadata (its writing never finished)"))
    if verify != "none":
        verify_store(path, full=verify == "full")  # before zarr reads a missing chunk as NaN
    try:
        tree = xr.open_datatree(path, engine="zarr", consolidated=True)
    except (OSError, KeyError, ValueError) as exc:  # zarr's answers to a missing or damaged array
        raise UserInputError(incomplete.format(f"cannot be read ({type(exc).__name__}: {exc})")) from exc
    if verify != "none":
        check_tree(tree, path)
    order = json_attr(tree.attrs, "checkpoints", default=list(tree.children))
    nodes: dict[str, Any] = {"/": tree.to_dataset(inherit=False)}
    for name in order:
        if name in tree.children:
            nodes[name] = tree.children[name].to_dataset(inherit=False)
    for name in tree.children:  # any node not listed keeps its place at the end
        nodes.setdefault(name, tree.children[name].to_dataset(inherit=False))
    out = xr.DataTree.from_dict(nodes)
    out.attrs = dict(tree.attrs)
    return out


def json_attr(attrs: Mapping[Any, Any], key: str, default: Any = None) -> Any:
    """A root attribute that the results store as JSON text, decoded (``default`` when missing)."""
    value = attrs.get(key)
    if value is None:
        return default
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value

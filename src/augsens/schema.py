"""The results schema: the layout of a results tree and its root attributes, read and written here only.

Layout.  A results folder ``DIR`` holds ``DIR/results.zarr``: an ``xarray.DataTree`` in Zarr (format 2,
consolidated), with a manifest of its files beside the data (:mod:`augsens.manifest`).  The root node holds
no variables, only the provenance attributes; every child is one checkpoint of the network (its node name
the checkpoint's name), holding the per-element maps (``S1``, ``ST``, ``shapley``, ``mean``...,
dimensions ``factor`` then the output dims of :func:`output_dims`), their 95 % half-widths (``*_conf``) and
the aggregates (``*_checkpoint``, ``*_channel``, ``*_token``).  Zarr lists groups alphabetically, so the
model order is the root's ``checkpoints`` attribute, and :func:`open_tree` restores it.

Attributes.  Structured root attributes (lists and mappings) are stored as JSON text, since Zarr attributes
of nested types do not round-trip through every reader; :class:`ResultsInfo` decodes them once into typed
fields (:data:`JSON_ATTRS` names them), and :meth:`ResultsInfo.to_attrs` encodes them back.
:class:`Results` is the typed view every reader uses: the tree, its :class:`ResultsInfo`, and its
checkpoint nodes in model order.  Only final maps are written: nothing here ever sees an activation.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import xarray as xr

from augsens.errors import MissingFileError, UserInputError
from augsens.manifest import check_tree, verify_store, write_manifest
from augsens.preflight import STATE_DIR, STATE_NAME
from augsens.wording import option

__all__ = [
    "RESULTS_NAME",
    "JSON_ATTRS",
    "ResultsInfo",
    "Results",
    "read_results",
    "json_attr",
    "open_tree",
    "results_tree",
    "write_results",
    "output_dims",
    "versions",
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


def open_tree(directory: str | Path, *, verify: Literal["quick", "full", "none"] = "quick") -> xr.DataTree:
    """Open a results folder as a ``DataTree`` (checkpoint nodes in model order), its store checked
    against its manifest as ``verify`` says; the parameters and errors are those of the public
    :func:`augsens.results.open_results`, which calls this."""
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
    view = Results.of(tree)  # the checkpoints in model order; any node not listed keeps its place at the end
    return results_tree(view.info.attrs, {c: view.node(c) for c in view.checkpoints})


def results_tree(attrs: Mapping[str, Any] | ResultsInfo, nodes: Mapping[str, xr.Dataset]) -> xr.DataTree:
    """The layout of a results tree: a root holding only ``attrs``, then one node per checkpoint in the
    order of ``nodes`` (the model's).

    Parameters
    ----------
    attrs : mapping or ResultsInfo
        The root attributes as stored (JSON text for :data:`JSON_ATTRS`), or typed (encoded with
        :meth:`ResultsInfo.to_attrs`).
    nodes : mapping of str to Dataset
        Each checkpoint's variables, by checkpoint name.

    Examples
    --------
    >>> node = xr.Dataset({"ST": ("factor", [0.5, 0.5])}, coords={"factor": ["a", "b"]})
    >>> tree = results_tree(ResultsInfo(kind="sobol", checkpoints=("z", "a")), {"z": node, "a": node})
    >>> list(tree.children), Results.of(tree).info.checkpoints
    (['z', 'a'], ('z', 'a'))
    """
    root = attrs.to_attrs() if isinstance(attrs, ResultsInfo) else dict(attrs)
    tree = xr.DataTree.from_dict({"/": xr.Dataset(), **nodes})
    tree.attrs = root
    return tree


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


#: Root attributes stored as JSON text (lists and mappings); every other root attribute is a number or text.
JSON_ATTRS = (
    "checkpoints",
    "depth",
    "factors",
    "parameters",
    "augmentations",
    "augmentation_specs",
    "config",
    "versions",
    "run_history",
    "skipped_files",
    "nonfinite",
    "no_data_checkpoints",
    "screening",
)


@dataclass(frozen=True)
class ResultsInfo:
    """The root attributes of a results tree, decoded once.

    Attributes
    ----------
    kind, mode, model : str
        The study kind (``"sobol"``, ``"shapley"``, ``"contrast"``...), its mode and the model's name;
        ``""`` when not recorded.
    checkpoints : tuple of str
        Checkpoint names in model order (input to output).
    depth : mapping of str to float
        Relative depth of each checkpoint in ``(0, 1]``, where recorded.
    factors, augmentations : tuple of str
        The study's factor names (``factor`` coordinate) and its augmentations.
    augmentation_specs : tuple of dict
        Each augmentation as run: source, parameters with their ranges or distributions, code hash.
    config : mapping
        The whole study config as recorded (``{}`` for results written without one).
    versions : mapping of str to str
        Python and package versions that computed the results.
    run_history : tuple of dict
        One entry per start or resume of the run (first base sample, batch size, device...).
    nonfinite : mapping of str to int
        Non-finite values dropped, per checkpoint.
    no_data_checkpoints : tuple of str
        Checkpoints where no element had a finite sample.
    attrs : mapping
        Every root attribute as stored (numbers and text as written, JSON attributes as text): the
        scalar provenance (``n``, ``seed``, ``forwards``, ``precision``, ``stop_reason``...) is read here.
    """

    kind: str = ""
    mode: str = ""
    model: str = ""
    checkpoints: tuple[str, ...] = ()
    depth: Mapping[str, float] = field(default_factory=dict)
    factors: tuple[str, ...] = ()
    augmentations: tuple[str, ...] = ()
    augmentation_specs: tuple[dict[str, Any], ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)
    run_history: tuple[dict[str, Any], ...] = ()
    nonfinite: Mapping[str, int] = field(default_factory=dict)
    no_data_checkpoints: tuple[str, ...] = ()
    attrs: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_attrs(cls, attrs: Mapping[Any, Any]) -> ResultsInfo:
        """Decode the root attributes of a results tree (missing ones take their empty default).

        Examples
        --------
        >>> info = ResultsInfo.from_attrs({"kind": "sobol", "checkpoints": '["a", "b"]', "n": 1024})
        >>> info.kind, info.checkpoints, info.get("n")
        ('sobol', ('a', 'b'), 1024)
        """
        a = {str(k): v for k, v in attrs.items()}

        def text(key: str) -> str:
            value = a.get(key)
            return "" if value is None else str(value)

        def listed(key: str) -> tuple[Any, ...]:
            value = json_attr(a, key, [])
            return tuple(value) if isinstance(value, list | tuple) else ()

        def mapping(key: str) -> dict[str, Any]:
            value = json_attr(a, key, {})
            return dict(value) if isinstance(value, Mapping) else {}

        return cls(
            kind=text("kind"),
            mode=text("mode"),
            model=text("model"),
            checkpoints=tuple(str(c) for c in listed("checkpoints")),
            depth={str(c): float(d) for c, d in mapping("depth").items()},
            factors=tuple(str(f) for f in listed("factors")),
            augmentations=tuple(str(f) for f in listed("augmentations")),
            augmentation_specs=tuple(s for s in listed("augmentation_specs") if isinstance(s, dict)),
            config=mapping("config"),
            versions={str(k): str(v) for k, v in mapping("versions").items()},
            run_history=tuple(h for h in listed("run_history") if isinstance(h, dict)),
            nonfinite={str(c): int(v) for c, v in mapping("nonfinite").items()},
            no_data_checkpoints=tuple(str(c) for c in listed("no_data_checkpoints")),
            attrs=a,
        )

    def get(self, key: str, default: Any = None) -> Any:
        """A root attribute, decoded if it is one of :data:`JSON_ATTRS` (``default`` when missing)."""
        return json_attr(self.attrs, key, default) if key in JSON_ATTRS else self.attrs.get(key, default)

    def to_attrs(self) -> dict[str, Any]:
        """The root attributes to write: the stored ones, with the typed fields encoded as JSON text.

        Examples
        --------
        >>> info = ResultsInfo(kind="sobol", checkpoints=("a",), depth={"a": 1.0})
        >>> ResultsInfo.from_attrs(info.to_attrs()) == info
        True
        """
        out = dict(self.attrs)
        out.update(kind=self.kind, mode=self.mode, model=self.model)
        typed: dict[str, Any] = {
            "checkpoints": list(self.checkpoints),
            "depth": dict(self.depth),
            "factors": list(self.factors),
            "augmentations": list(self.augmentations),
            "augmentation_specs": list(self.augmentation_specs),
            "config": dict(self.config),
            "versions": dict(self.versions),
            "run_history": list(self.run_history),
            "nonfinite": dict(self.nonfinite),
            "no_data_checkpoints": list(self.no_data_checkpoints),
        }
        for key, value in typed.items():
            if value or key in out:  # an empty field stays unwritten unless it was stored
                out[key] = json.dumps(value)
        return {k: v for k, v in out.items() if v != "" or k in self.attrs}


@dataclass(frozen=True)
class Results:
    """A results tree read through the schema: its typed attributes and its checkpoint nodes in model order.

    Attributes
    ----------
    tree : xarray.DataTree
        The tree as opened (or as a study returned it).
    info : ResultsInfo
        Its root attributes, decoded.
    name : str
        A label: the results folder's name, or the model and kind of a tree given directly.
    """

    tree: xr.DataTree
    info: ResultsInfo
    name: str = ""

    @classmethod
    def of(cls, tree: xr.DataTree, name: str = "") -> Results:
        """The typed view of a tree already in memory."""
        info = ResultsInfo.from_attrs(tree.attrs)
        return cls(tree, info, name or f"{info.model or 'run'} {info.kind}".strip())

    @property
    def checkpoints(self) -> tuple[str, ...]:
        """The checkpoint nodes present, in model order (a node not listed keeps its place at the end)."""
        listed = [c for c in self.info.checkpoints if c in self.tree.children]
        return (*listed, *(str(c) for c in self.tree.children if c not in listed))

    def node(self, checkpoint: str) -> xr.Dataset:
        """One checkpoint's variables (maps, half-widths, aggregates) as a Dataset."""
        if checkpoint not in self.tree.children:
            raise UserInputError(
                f"checkpoint {checkpoint!r} is not in these results: choose one of {list(self.checkpoints)!r}"
            )
        return self.tree.children[checkpoint].to_dataset(inherit=False)

    def nodes(self) -> Iterator[tuple[str, xr.Dataset]]:
        """``(checkpoint, Dataset)`` for every checkpoint node, in model order."""
        for c in self.checkpoints:
            yield c, self.node(c)

    def depths(self) -> dict[str, float]:
        """Relative depth of each checkpoint: as recorded by the study, else evenly spaced ``(i + 1) / k``."""
        cps = self.checkpoints
        if all(c in self.info.depth for c in cps):
            return {c: float(self.info.depth[c]) for c in cps}
        return {c: (i + 1) / len(cps) for i, c in enumerate(cps)}

    def measures(self, candidates: tuple[str, ...] = ("S1", "ST", "shapley")) -> list[str]:
        """The ``candidates`` (per-element variables) that the first checkpoint holds, in that order."""
        first = self.node(self.checkpoints[0]) if self.checkpoints else xr.Dataset()
        return [m for m in candidates if m in first.data_vars]


def read_results(source: str | os.PathLike[str] | xr.DataTree | Results, name: str = "") -> Results:
    """A results folder (opened with :func:`open_tree`), or a tree in memory, as :class:`Results`.

    ``name`` labels it (default: the folder's name, or the model and kind of a tree)."""
    if isinstance(source, Results):
        return source
    if isinstance(source, xr.DataTree):
        return Results.of(source, name)
    folder = results_folder(os.fspath(source))
    return Results.of(open_tree(folder), name or folder.name)

"""What a results store must hold: its nodes, variables and shapes, and every file with size and checksum.

Zarr reads a missing chunk file as the fill value (NaN for the maps), and consolidated metadata keeps
listing a node whose folder was deleted, so a damaged store would otherwise read as a valid study with
NaN maps.  :func:`write_manifest` records, inside ``results.zarr`` and before it is renamed into place,
every node with its variables' shapes and every file of the store with its size and BLAKE2b checksum.
:func:`verify_store` compares a store with it: ``full=False`` (what :func:`augsens.open_results` does by
default) checks that every node, variable and file is there with its size, a few ``stat`` calls;
``full=True`` (``augsens verify --full``, and every report) also reads each file and checks its checksum,
which finds a chunk changed in place.  A store written before manifests existed is read as it is.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from augsens.errors import UserInputError
from augsens.wording import option

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "DamagedResultsError",
    "write_manifest",
    "verify_store",
    "check_tree",
]

MANIFEST_NAME = "augsens-manifest.json"
MANIFEST_VERSION = 1
_CHUNK = 1 << 20


class DamagedResultsError(UserInputError):
    """A results store differs from its manifest: files, variables or nodes missing, changed or cut."""


def _digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def write_manifest(store: Path, tree: xr.DataTree) -> Path:
    """Record the nodes, variables, shapes and files of the Zarr store ``store`` written from ``tree``.

    Parameters
    ----------
    store : Path
        The ``results.zarr`` folder, complete.
    tree : DataTree
        The tree written there.

    Returns
    -------
    Path
        ``store / MANIFEST_NAME``.
    """
    nodes = {
        node.path: {name: list(var.shape) for name, var in node.to_dataset(inherit=False).variables.items()}
        for node in tree.subtree
    }
    files = {
        p.relative_to(store).as_posix(): [p.stat().st_size, _digest(p)]
        for p in sorted(store.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }
    path = store / MANIFEST_NAME
    body = {"format": MANIFEST_VERSION, "checksum": "blake2b-128", "nodes": nodes, "files": files}
    path.write_text(json.dumps(body, indent=0, sort_keys=True))
    return path


def _owner(rel: str, nodes: dict[str, Any]) -> str:
    """What a store file belongs to, in words (``act/S1/0.0`` -> ``variable 'S1' of node 'act'``)."""
    owner = rel.rpartition("/")[0]
    if not owner:
        return "the store's root metadata"
    if "/" + owner in nodes:
        return f"node {owner!r}"
    node, _, var = owner.rpartition("/")
    return f"variable {var!r} of node {node or '/'!r}"


def verify_store(store: Path, *, full: bool = False) -> int:
    """Compare the store ``store`` with its manifest.

    Parameters
    ----------
    store : Path
        A ``results.zarr`` folder.
    full : bool
        Also read every file and compare its checksum (otherwise presence and size only).

    Returns
    -------
    int
        Files checked (0 for a store without a manifest, written by an earlier version).

    Raises
    ------
    DamagedResultsError
        Naming the nodes missing, and per variable the files missing, cut or changed.
    """
    path = store / MANIFEST_NAME
    if not path.is_file():
        return 0
    try:
        manifest = json.loads(path.read_text())
        nodes, files = manifest["nodes"], manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DamagedResultsError(
            f"{str(store)!r}: its manifest {MANIFEST_NAME} cannot be read ({exc}). {_fix()}"
        ) from exc
    problems: list[str] = []
    missing_nodes = [n for n in nodes if n != "/" and not (store / n.lstrip("/")).is_dir()]
    problems += [
        f"checkpoint node {n.lstrip('/')!r} is missing (its folder was removed)" for n in missing_nodes
    ]
    gone = tuple(n.lstrip("/") + "/" for n in missing_nodes)
    by_owner: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for rel, (nbytes, digest) in files.items():
        if rel.startswith(gone):
            continue
        p = store / rel
        if not p.is_file():
            by_owner[_owner(rel, nodes)]["missing"].append(rel)
        elif p.stat().st_size != nbytes:
            by_owner[_owner(rel, nodes)]["cut or grown"].append(rel)
        elif full and _digest(p) != digest:
            by_owner[_owner(rel, nodes)]["changed"].append(rel)
    for owner, kinds in sorted(by_owner.items()):
        what = "; ".join(
            f"{len(rels)} file{'s' if len(rels) > 1 else ''} {kind} ({', '.join(rels[:3])}"
            f"{', ...' if len(rels) > 3 else ''})"
            for kind, rels in kinds.items()
        )
        problems.append(f"{owner}: {what}")
    if problems:
        more = f" (and {len(problems) - 6} more)" if len(problems) > 6 else ""
        raise DamagedResultsError(
            f"the results in {str(store.parent)!r} are damaged, so they cannot be read as written: "
            f"{'; '.join(problems[:6])}{more}. {_fix()}"
        )
    return len(files)


def check_tree(tree: xr.DataTree, store: Path) -> None:
    """Compare the nodes, variables and shapes of ``tree`` (opened from ``store``) with the manifest.

    Raises
    ------
    DamagedResultsError
        A node or variable of the manifest is not in ``tree``, or has another shape.
    """
    path = store / MANIFEST_NAME
    if not path.is_file():
        return
    problems = []
    for node, variables in json.loads(path.read_text())["nodes"].items():
        name = node.lstrip("/")
        if name and name not in tree.children:
            problems.append(f"checkpoint node {name!r} is missing")
            continue
        ds = (tree.children[name] if name else tree).to_dataset(inherit=False)
        for var, shape in variables.items():
            if var not in ds.variables:
                problems.append(f"variable {var!r} of node {name or '/'!r} is missing")
            elif list(ds[var].shape) != shape:
                problems.append(
                    f"variable {var!r} of node {name or '/'!r} has shape {list(ds[var].shape)}, not {shape}"
                )
    if problems:
        more = f" (and {len(problems) - 6} more)" if len(problems) > 6 else ""
        raise DamagedResultsError(
            f"the results in {str(store.parent)!r} are damaged: {'; '.join(problems[:6])}{more}. {_fix()}"
        )


def _fix() -> str:
    return (
        "Restore the folder from a copy, or run the study into it again with "
        f"{option('overwrite')} (or into another {option('out', '')})"
    )

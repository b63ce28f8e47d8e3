"""Disk space for a run: the size of its state known before the first forward, and a full disk met as a
message saying how much is needed, never as a half-written file.

A run writes two things into its folder: the state (:mod:`augsens.engine.state`, saved every
``checkpoint_every`` seconds, on a stop, and once all samples are done), and the results.  The state's
size does not change during the run, so it is measured exactly before it starts by allocating the
accumulators on PyTorch's ``meta`` device (shapes and dtypes, no memory).  A save writes a temporary
file beside the last good state and renames it, so a save needs that much free space again; the
results (written once the state is saved) are at most their uncompressed size.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

import torch
import xarray as xr

from augsens.core.estimate import Accumulator
from augsens.engine.parts import StudyParts
from augsens.engine.state import export_state
from augsens.errors import UserInputError
from augsens.wording import option

__all__ = ["DiskFullError", "state_nbytes", "tree_nbytes", "free_bytes", "is_disk_full", "check_room", "size"]

#: a serialised state is its tensors plus names and a config: this much more, measured on small states
_STATE_OVERHEAD = 64 * 1024


class DiskFullError(UserInputError, OSError):
    """The output folder's filesystem has no room for what the run must write; the message says how much
    is needed and what was kept."""


def size(nbytes: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _tensor_bytes(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def state_nbytes(study: StudyParts) -> int:
    """Bytes of ``study``'s saved state (what ``state.pt`` holds), before any forward.

    Every accumulator is allocated on the ``meta`` device at its checkpoint's output shape, with the
    float32 block a mixed-precision state may save beside it, so the tensors have their true shapes and
    dtypes and take no memory."""
    state = study.new_state()
    meta = torch.device("meta")
    accumulators: list[tuple[str, Accumulator]] = [*state.acc.items(), *state.moments.items()]
    for c, acc in accumulators:
        acc.device = meta  # a throw-away accumulator: its storage is sized, never filled
        acc.allocate(tuple(study.shapes[c]), meta, pending_block=True)  # "mixed": a float32 block too
    return _tensor_bytes(export_state(state, "")) + _STATE_OVERHEAD


def tree_nbytes(tree: xr.DataTree, block: int = 4096) -> int:
    """Bytes that writing ``tree`` to Zarr may take: every variable uncompressed, plus a filesystem
    ``block`` for each of its three files at least (data, ``.zarray``, ``.zattrs``), which is what
    small maps cost on disk."""
    return sum(
        int(v.nbytes) + 3 * block
        for node in tree.subtree
        for v in node.to_dataset(inherit=False).variables.values()
    )


def free_bytes(folder: Path) -> int:
    """Free bytes for an unprivileged writer on the filesystem holding ``folder``."""
    return shutil.disk_usage(folder).free


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` or an exception in its chain is a full disk or an exhausted quota.

    torch's serialiser reports a failed write as a ``RuntimeError`` whose context is the ``OSError``
    of the file object it wrote to, hence the walk through ``__cause__`` and ``__context__``."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        todo += [e.__cause__, e.__context__]
    return False


def check_room(out: Path, need: int) -> None:
    """Refuse a run whose folder ``out`` clearly lacks the room for one save of its state.

    Parameters
    ----------
    out : Path
        The output folder (exists).
    need : int
        Bytes of one saved state (:func:`state_nbytes`).  A resumed run's new saves are written beside
        the state they replace, so they need this much free space too.

    Raises
    ------
    DiskFullError
        Less than ``need`` bytes free.
    """
    free = free_bytes(out)
    if free < need:
        raise DiskFullError(
            f"{option('out', '')} {str(out)!r} has {size(free)} free, and this run's state alone needs "
            f"{size(need)} (saved every [run] checkpoint_every seconds; the results need more at the end): "
            f"free at least {size(need - free)}, or choose another {option('out', '')}"
        )

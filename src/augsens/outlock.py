"""A run owns its output folder: an exclusive lock on ``OUT/.augsens.lock`` for as long as it writes there.

Two runs into one folder would interleave their states and results (one run exiting 0 over the other's
tree), so the lock is taken before anything is written and a second run is refused at once, naming the
process that holds it.  The lock is ``flock(2)`` on an open file: the kernel drops it when its holder
exits, however it exits (``kill -9`` included), so a lock left by a killed run is free and the next run
takes it over; the file only names the last holder.  Taking the lock checks that the file locked is
still the one at the path (a releasing holder removes it), the usual guard against locking an unlinked
file.  Within one process the lock is re-entrant per thread, so the command line, ``ag.study`` and
``Study.run`` can each hold it around what they write; another thread is refused like another process.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from augsens.errors import UserInputError
from augsens.preflight import check_out_path
from augsens.wording import option

try:  # POSIX; elsewhere runs go unguarded, with a warning
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "OutFolderLockedError", "own_out", "lock_holder"]

LOCK_NAME = ".augsens.lock"


class OutFolderLockedError(UserInputError, FileExistsError):
    """Another run (process or thread) is writing into the output folder."""


@dataclass
class _Held:
    fd: int
    created: bool
    depth: int = 1


_held: dict[tuple[Path, int], _Held] = {}
_guard = threading.Lock()


def lock_holder(out: str | os.PathLike) -> dict[str, object]:
    """What ``OUT/.augsens.lock`` says of its last holder (``{}`` when absent or unreadable)."""
    try:
        info = json.loads((Path(out) / LOCK_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _describe(info: dict[str, object]) -> str:
    if not info:
        return "another process (it has not written its name yet)"
    pid, host = info.get("pid"), info.get("host")
    where = "" if host == socket.gethostname() else f" on {host}"
    since = f", since {info['started']}" if info.get("started") else ""
    cmd = f": {info['command']}" if info.get("command") else ""
    same = pid == os.getpid() and where == ""
    who = "another thread of this process" if same else f"process {pid}{where}"
    return f"{who}{since}{cmd}"


def _open_locked(path: Path) -> int:
    """An fd holding the exclusive lock of the file at ``path`` (created if missing)."""
    assert fcntl is not None
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(fd)
            raise
        try:  # the holder we waited for may have removed the file: then lock the new one
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _acquire(out: Path) -> _Held:
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(
            f"cannot create {option('out', '')} {str(out)!r}: {exc.strerror or exc}. Choose a folder you can "
            "write to"
        ) from exc
    path = out / LOCK_NAME
    if fcntl is None:  # pragma: no cover - Windows
        warnings.warn(f"no file locks here: another run into {str(out)!r} is not detected", stacklevel=3)
        return _Held(-1, created)
    try:
        fd = _open_locked(path)
    except BlockingIOError:
        raise OutFolderLockedError(
            f"{str(out)!r} is in use by another augsens run ({_describe(lock_holder(out))}). Wait for it "
            f"to finish or stop it, or choose another {option('out', '')}"
        ) from None
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):  # e.g. some network filesystems
            warnings.warn(
                f"{str(out)!r} cannot be locked ({exc.strerror}): another run into it is not detected",
                stacklevel=3,
            )
            return _Held(-1, created)
        raise UserInputError(
            f"cannot write into {option('out', '')} {str(out)!r}: {exc.strerror or exc}. Choose a folder you "
            "can write to"
        ) from exc
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv)[:300],
    }
    with contextlib.suppress(OSError):  # the name is a courtesy: the lock holds without it
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode())
    return _Held(fd, created)


def _release(out: Path, held: _Held) -> None:
    if held.fd >= 0:
        with contextlib.suppress(OSError):  # removed while locked: a waiter then locks a fresh file
            (out / LOCK_NAME).unlink()
        os.close(held.fd)
    if held.created:  # a folder this run created and nothing went into: leave no trace
        with contextlib.suppress(OSError):
            out.rmdir()


@contextlib.contextmanager
def own_out(out: str | os.PathLike) -> Iterator[None]:
    """Hold the output folder ``out`` (created if missing) for the block.

    Raises
    ------
    OutFolderLockedError
        Another process or thread holds it; the message names the process (pid, host, start, command).
    UserInputError
        ``out`` cannot be created or written.
    """
    check_out_path(out)  # before Path() reads "" as the current folder
    folder = Path(out)
    key = (folder.resolve(), threading.get_ident())
    with _guard:
        held = _held.get(key)
        if held is not None:
            held.depth += 1
    if held is None:
        held = _acquire(folder)
        with _guard:
            _held[key] = held
    try:
        yield
    finally:
        with _guard:
            held.depth -= 1
            last = held.depth == 0
            if last:
                del _held[key]
        if last:
            _release(folder, held)

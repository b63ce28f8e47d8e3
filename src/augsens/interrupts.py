"""Stopping a run without losing it: SIGINT (Ctrl-C) and SIGTERM (a scheduler, ``timeout``, ``kill``).

While a study runs, both signals only set a flag that the engine reads between batches, so the state is
saved whole; a second signal of the same kind acts at once (the last saved state is then kept).  Before
and after that window the command line turns SIGTERM into the same ``KeyboardInterrupt`` Ctrl-C raises,
so every stop ends in one message saying what was kept.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from augsens.wording import run_again

__all__ = ["StudyInterrupted", "Terminated", "deferred_signals", "sigterm_interrupts", "signal_label"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_label(signum: int) -> str:
    """``"Ctrl-C (SIGINT)"`` or ``"SIGTERM"``: how a message names the signal."""
    return "Ctrl-C (SIGINT)" if signum == signal.SIGINT else signal.Signals(signum).name


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's ``KeyboardInterrupt`` so that both end a run the same way."""

    signum = int(signal.SIGTERM)


class StudyInterrupted(RuntimeError):
    """A run was stopped by a signal; the message says what was kept and how to continue.

    Parameters
    ----------
    state_path : Path
        The run's state file.
    done, total : int
        Base samples done and in all.
    saved : bool, default True
        The state at ``done`` was saved; ``False`` when the stop came inside an accumulator update, so
        the last periodic save is kept instead.
    signum : int, default SIGINT
        The signal; the command line exits with ``128 + signum`` (130 for Ctrl-C, 143 for SIGTERM).
    phase : {"study", "finalising", "written"}, default "study"
        ``"finalising"``: every sample was done and saved, the results were not yet written;
        ``"written"``: the results were written completely before the stop took effect.
    results : Path, optional
        The results written (phase ``"written"``).
    """

    def __init__(
        self,
        state_path: Path,
        done: int,
        total: int,
        *,
        saved: bool = True,
        signum: int = signal.SIGINT,
        phase: str = "study",
        results: Path | None = None,
    ) -> None:
        by = signal_label(signum)
        if phase == "written":
            text = (
                f"stopped by {by} after the results were written: they are complete in {str(results)!r} "
                "(nothing to resume)."
            )
        elif phase == "finalising":
            text = (
                f"stopped by {by} while the results were assembled: all {total} base samples are done and "
                f"saved to {str(state_path)!r}. {run_again()} to write the results (no forward pass is "
                "repeated)."
            )
        else:
            where = (
                f"state saved to {str(state_path)!r}"
                if saved
                else "stopped inside an accumulator update, so the last periodic save in "
                f"{str(state_path)!r} is kept (work since then is redone)"
            )
            text = (
                f"interrupted by {by} after {done} of {total} base samples; {where}. {run_again()} to finish."
            )
        super().__init__(text)
        self.state_path = state_path
        self.signum = int(signum)
        self.phase = phase

    @property
    def exit_code(self) -> int:
        """``128 + signal number``, the shell's convention for a process ended by a signal."""
        return 128 + self.signum


@contextlib.contextmanager
def deferred_signals() -> Iterator[Callable[[], int]]:
    """SIGINT and SIGTERM set a flag instead of stopping; yields ``pending()`` -> the signal number or 0.

    A second signal of the same kind restores the handler found on entry and re-raises there, so a user
    can still force a stop.  Outside the main thread (e.g. a Ray worker) nothing is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: 0
        return
    hit = 0
    # getsignal gives None for a handler installed outside Python: restore the default then
    previous: dict[int, Any] = {int(s): signal.getsignal(s) or signal.SIG_DFL for s in _SIGNALS}

    def handler(signum: int, frame: Any) -> None:
        nonlocal hit
        hit = hit or signum
        signal.signal(signum, previous[signum])  # the next one behaves as before

    for s in _SIGNALS:
        signal.signal(s, handler)
    try:
        yield lambda: hit
    finally:
        for s in _SIGNALS:
            signal.signal(s, previous[s])


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``) like Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

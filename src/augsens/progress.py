"""One progress bar for every long loop: forwards done, forwards/s, ETA (and shards, for Ray runs; the
precision reached, for runs with a precision target).

The bar is rich's: live in a terminal, and live in a Jupyter notebook where ``ipywidgets`` is installed
(rich draws notebook output through it); in a notebook without it the bar is printed once, at the end,
rather than leaving rich to warn on every refresh.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
from collections.abc import Iterator
from typing import Protocol

__all__ = ["forwards_bar", "Advance"]


class Advance(Protocol):
    """``advance(k)``: ``k`` more forwards done; ``total`` resets the bar's end (a precision run's next
    round), ``precision`` shows the precision reached."""

    def __call__(self, k: int, *, total: int | None = None, precision: float | None = None) -> None: ...


def _no_progress(k: int, *, total: int | None = None, precision: float | None = None) -> None:
    """The disabled bar."""


@contextlib.contextmanager
def forwards_bar(
    enabled: bool,
    *,
    total: int,
    label: str,
    done: int = 0,
    shards: int | None = None,
    target: float | None = None,
) -> Iterator[Advance]:
    """A rich progress bar over forwards; yields ``advance(k, *, total=None, precision=None)``.

    With ``shards`` the bar also counts finished shards, one per ``advance`` call.  With a precision
    ``target`` it shows the precision reached next to the target (``total`` is then the end of the current
    round, so the ETA is that of the round).  Disabled, it yields a no-op, so loops need no branches.
    """
    if not enabled:
        yield _no_progress
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("forwards {task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    if shards is not None:
        columns.insert(4, TextColumn("shards {task.fields[shards]}"))
    if target is not None:
        columns.insert(4, TextColumn("precision {task.fields[precision]}"))
    console = Console()
    if console.is_jupyter and importlib.util.find_spec("ipywidgets") is None:
        console = Console(force_jupyter=False)
    with Progress(*columns, console=console, transient=False) as bar:
        shown = f"-/{target:g}" if target is not None else ""
        task = bar.add_task(
            label, total=total, completed=done, rate="", shards=f"0/{shards}", precision=shown
        )
        finished = 0

        def advance(k: int, *, total: int | None = None, precision: float | None = None) -> None:
            nonlocal finished
            finished += 1
            bar.update(task, advance=k, shards=f"{finished}/{shards}", total=total)
            if precision is not None and target is not None:
                now = "-" if math.isnan(precision) else f"{precision:.3g}"
                bar.update(task, precision=f"{now}/{target:g}")
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:,.0f}/s" if speed else "")

        yield advance

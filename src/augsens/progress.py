"""One progress bar for every long loop: forwards done, forwards/s, ETA (and shards, for Ray runs).

The bar is rich's: live in a terminal, and live in a Jupyter notebook where ``ipywidgets`` is installed
(rich draws notebook output through it); in a notebook without it the bar is printed once, at the end,
rather than leaving rich to warn on every refresh.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterator

__all__ = ["forwards_bar"]


@contextlib.contextmanager
def forwards_bar(
    enabled: bool, *, total: int, label: str, done: int = 0, shards: int | None = None
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar over forwards; yields ``advance(k)``.

    With ``shards`` the bar also counts finished shards, one per ``advance`` call.  Disabled, it yields a
    no-op, so loops need no branches.
    """
    if not enabled:
        yield lambda k: None
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
    console = Console()
    if console.is_jupyter and importlib.util.find_spec("ipywidgets") is None:
        console = Console(force_jupyter=False)
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(label, total=total, completed=done, rate="", shards=f"0/{shards}")
        finished = 0

        def advance(k: int) -> None:
            nonlocal finished
            finished += 1
            bar.update(task, advance=k, shards=f"{finished}/{shards}")
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:,.0f}/s" if speed else "")

        yield advance

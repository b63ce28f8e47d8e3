"""How a message names an option: in the words of whoever gave it.

The same check serves ``augsens run`` and the Python API (``ag.study``, ``Study.run``,
``ag.open_results``), so a message cannot hard-code ``--resume`` or ``resume=True``.  The command line
enters :func:`cli_words` around each command; everywhere else the Python keyword is named first and the
command-line flag after it, so a reader of either finds the word they typed.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

__all__ = ["cli_words", "option", "speaking_cli", "run_again"]

_CLI: contextvars.ContextVar[bool] = contextvars.ContextVar("augsens_cli_words", default=False)


@contextlib.contextmanager
def cli_words() -> Iterator[None]:
    """Within the block, messages name options as command-line flags (``--resume``)."""
    token = _CLI.set(True)
    try:
        yield
    finally:
        _CLI.reset(token)


def speaking_cli() -> bool:
    """Whether messages are for the command line (inside :func:`cli_words`)."""
    return _CLI.get()


def option(name: str, value: str = "True") -> str:
    """An option as the reader wrote it.

    Parameters
    ----------
    name : str
        The Python keyword (``"resume"``, ``"out"``); the flag is ``--`` + the name with ``-`` for ``_``.
    value : str, default "True"
        The value shown after ``=`` in the Python form (and after the flag, unless ``"True"``); ``""`` for
        an option whose value the sentence gives.

    Returns
    -------
    str
        ``--resume`` on the command line; ``resume=True (--resume)`` in Python.

    Examples
    --------
    >>> option("resume"), option("out", ""), option("out", "FILE")
    ('resume=True (--resume)', 'out= (--out)', 'out=FILE (--out FILE)')
    >>> with cli_words():
    ...     option("resume")
    '--resume'
    """
    flag = "--" + name.replace("_", "-")
    cli = flag if value in ("True", "") else f"{flag} {value}"  # a placeholder goes after the flag
    return cli if _CLI.get() else f"{name}={value} ({cli})"


def run_again(with_option: str = "resume") -> str:
    """How to repeat the call that stopped, with an option: the command, or the Python call.

    Examples
    --------
    >>> run_again()
    'Call it again with resume=True (--resume)'
    """
    if _CLI.get():
        return f"Run the same command with {option(with_option)}"
    return f"Call it again with {option(with_option)}"

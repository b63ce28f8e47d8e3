"""Exception types that separate a user's mistake from a bug.

:class:`UserInputError` is raised for anything the person running augsens can fix — a config key, a path,
a model or checkpoint name, an image file — and its message names the value and the fix.  The command line
prints such errors as one line (exit code 2); every other exception is a bug and keeps its traceback.
It subclasses :class:`ValueError`, so code that catches ``ValueError`` keeps working; the subclasses below
are also the built-in type a caller would expect (a missing file is a ``FileNotFoundError`` too).

:func:`is_out_of_memory` recognises torch's out-of-memory error without importing torch, so the command
line can answer a bad config before torch loads.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable

__all__ = [
    "UserInputError",
    "MissingFileError",
    "UserTypeError",
    "UnknownNameError",
    "unknown_name_message",
    "is_out_of_memory",
]


class UserInputError(ValueError):
    """A mistake in what the user gave (config, path, model, images); the message says what to fix."""


class MissingFileError(UserInputError, FileNotFoundError):
    """A file or folder the user named does not exist (or is a file where a folder is needed)."""


class UserTypeError(UserInputError, TypeError):
    """A value the user gave has the wrong type (e.g. a model factory that returns no ``nn.Module``)."""


class UnknownNameError(KeyError, UserInputError):
    """A name (factor, measure, segment...) that is not among those available; a ``KeyError`` too."""

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0])


def unknown_name_message(what: str, name: str, known: Iterable[object], fix: str = "") -> str:
    """The message for a name that is not among ``known``: close matches, then what is available.

    Parameters
    ----------
    what : str
        What the name names (``"checkpoint"``, ``"factor"``...).
    name : str
        The name given.
    known : iterable
        The names available (the first 20 are listed).
    fix : str
        A sentence saying what to do instead. Default: none.

    Returns
    -------
    str

    Examples
    --------
    >>> unknown_name_message("factor", "hues", ["hue", "flip"], "Name factors of these results.")
    "unknown factor 'hues'. Did you mean ['hue']? Available: ['hue', 'flip']. Name factors of these results."
    """
    names = list(known)
    close = difflib.get_close_matches(str(name), [str(k) for k in names], n=3)
    hint = f" Did you mean {close!r}?" if close else ""
    more = " ..." if len(names) > 20 else ""
    return f"unknown {what} {name!r}.{hint} Available: {names[:20]!r}{more}.{' ' + fix if fix else ''}"


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is torch's out-of-memory error (``torch.OutOfMemoryError``, CUDA's included).

    torch is looked up among the loaded modules, never imported: before torch is loaded no error can be
    torch's.

    Parameters
    ----------
    exc : BaseException

    Returns
    -------
    bool

    Examples
    --------
    >>> is_out_of_memory(RuntimeError("CUDA error"))
    False
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    # torch.cuda.OutOfMemoryError is the same class since torch 2.5, a separate one before
    kinds = (
        getattr(torch, "OutOfMemoryError", None),
        getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None),
    )
    types = tuple(k for k in kinds if isinstance(k, type))
    return isinstance(exc, types)

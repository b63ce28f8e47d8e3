"""Exception types that separate a user's mistake from a bug.

:class:`UserInputError` is raised for anything the person running augsens can fix — a config key, a path,
a model or checkpoint name, an image file — and its message names the value and the fix.  The command line
prints such errors as one line (exit code 2); every other exception is a bug and keeps its traceback.
It subclasses :class:`ValueError`, so code that catches ``ValueError`` keeps working; the subclasses below
are also the built-in type a caller would expect (a missing file is a ``FileNotFoundError`` too).
"""

from __future__ import annotations

__all__ = ["UserInputError", "MissingFileError", "UserTypeError", "UnknownNameError"]


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

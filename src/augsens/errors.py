"""Exception types that separate a user's mistake from a bug.

:class:`UserInputError` is raised for anything the person running augsens can fix — a config key, a path,
a model or checkpoint name, an image file — and its message names the value and the fix.  The command line
prints such errors as one line (exit code 2); every other exception is a bug and keeps its traceback.
It subclasses :class:`ValueError`, so code that catches ``ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = ["UserInputError"]


class UserInputError(ValueError):
    """A mistake in what the user gave (config, path, model, images); the message says what to fix."""

"""Deprecated location: this module moved to :mod:`augsens.core.api` (the sensitivity core).

Importing it still works and gives the same objects, with a :class:`DeprecationWarning`.  The
public names stay at the top level (``import augsens as ag; ag.sobol, ag.Problem, ...``).
"""

import warnings

from augsens.core.api import *  # noqa: F403
from augsens.core.api import __all__  # noqa: F401

warnings.warn(
    "augsens.api moved to augsens.core.api; import from there (or use the top-level names, e.g. ag.sobol)",
    DeprecationWarning,
    stacklevel=2,
)

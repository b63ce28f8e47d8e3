"""augsens: which parts of a network react to which image changes, and how much.

Streaming Sobol indices, Shapley effects and moments of every activation of a network under
simultaneous image augmentations (Kharyuk, Matveev & Oseledets, arXiv 2503.03283), computed batch by
batch on the model's device without storing activations.

>>> import augsens as ag
>>> sorted(ag.__all__)[:3]
['Categorical', 'ImageFactor', 'Integer']
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from augsens.api import moments, shapley, sobol
    from augsens.factors import (
        Categorical,
        ImageFactor,
        Integer,
        Parameter,
        Permutation,
        Problem,
        Switch,
        Uniform,
    )
    from augsens.results import open_results

__version__ = "0.1.0"

__all__ = [
    "Categorical",
    "ImageFactor",
    "Integer",
    "Parameter",
    "Permutation",
    "Problem",
    "Switch",
    "Uniform",
    "sobol",
    "shapley",
    "moments",
    "open_results",
    "study",
    "compare",
]

_LAZY = {
    **dict.fromkeys(
        ("Categorical", "ImageFactor", "Integer", "Parameter", "Permutation", "Problem", "Switch", "Uniform"),
        "augsens.factors",
    ),
    "sobol": "augsens.api",
    "shapley": "augsens.api",
    "moments": "augsens.api",
    "open_results": "augsens.results",
    "compare": "augsens.analysis.compare",
}


class _Package(types.ModuleType):
    """The package's module type: ``augsens.study`` is the one-call study function.

    ``augsens.study`` is also the name of a submodule (the factor model), and importing a submodule sets
    the package attribute of that name; the property keeps the function there (``from augsens.study
    import ...`` reads the submodule from ``sys.modules`` and is unaffected).
    """

    @property
    def study(self) -> Any:
        from augsens.quickstudy import study

        return study

    @study.setter
    def study(self, value: Any) -> None:
        pass  # the submodule stays reachable as sys.modules["augsens.study"]


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    # Every public name loads on first use (PEP 562): torch, xarray and scipy take seconds to import, and
    # the command line must answer a bad config or a missing path before it needs any of them.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'augsens' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])

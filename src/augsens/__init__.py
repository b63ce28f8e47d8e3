"""augsens: which parts of a network react to which image changes, and how much.

Streaming Sobol indices, Shapley effects and moments of every activation of a network under
simultaneous image augmentations (Kharyuk, Matveev & Oseledets, arXiv 2503.03283), computed batch by
batch on the model's device without storing activations.

>>> import augsens as ag
>>> sorted(ag.__all__)[:3]
['Categorical', 'ImageFactor', 'Integer']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from augsens import plot
    from augsens.analysis.compare import compare
    from augsens.core.api import moments, morris, shapley, sobol
    from augsens.core.factors import (
        Categorical,
        ImageFactor,
        Integer,
        Parameter,
        Permutation,
        Problem,
        ScipyDistribution,
        Switch,
        Uniform,
    )
    from augsens.data.inputs import as_samples
    from augsens.display import show, summary
    from augsens.engine.quick import study
    from augsens.results import open_results
    from augsens.tables import to_dataframe

__version__ = "0.1.0"

__all__ = [
    "Categorical",
    "ImageFactor",
    "Integer",
    "Parameter",
    "Permutation",
    "Problem",
    "ScipyDistribution",
    "Switch",
    "Uniform",
    "sobol",
    "shapley",
    "morris",
    "moments",
    "open_results",
    "study",
    "compare",
    "to_dataframe",
    "summary",
    "show",
    "plot",
    "as_samples",
]

_LAZY = {
    **dict.fromkeys(
        (
            "Categorical",
            "ImageFactor",
            "Integer",
            "Parameter",
            "Permutation",
            "Problem",
            "ScipyDistribution",
            "Switch",
            "Uniform",
        ),
        "augsens.core.factors",
    ),
    "sobol": "augsens.core.api",
    "shapley": "augsens.core.api",
    "morris": "augsens.core.api",
    "moments": "augsens.core.api",
    "open_results": "augsens.results",
    "compare": "augsens.analysis.compare",
    "study": "augsens.engine.quick",
    "to_dataframe": "augsens.tables",
    "summary": "augsens.display",
    "show": "augsens.display",
    "plot": "augsens",
    "as_samples": "augsens.data.inputs",
}


def __getattr__(name: str) -> Any:
    # Every public name loads on first use (PEP 562): torch, xarray and scipy take seconds to import, and
    # the command line must answer a bad config or a missing path before it needs any of them.
    if name in _LAZY:
        import importlib

        if _LAZY[name] == "augsens":  # a subpackage (augsens.plot): the module itself
            return importlib.import_module(f"augsens.{name}")
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'augsens' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])

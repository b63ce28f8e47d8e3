"""The augmentation study: augmentation factors, image data and a network's activations driven
through the sensitivity core (:mod:`augsens.core`), with state, resume, Ray shards and results.

``Study`` and ``resolve_device`` load on first use: importing the package (e.g. for
:mod:`augsens.engine.factors`) must not pull in torch models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from augsens.engine.study import Study, resolve_device

__all__ = ["Study", "resolve_device"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        import augsens.engine.study as study

        return getattr(study, name)
    raise AttributeError(f"module 'augsens.engine' has no attribute {name!r}")

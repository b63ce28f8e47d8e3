"""Figures: sensitivity maps, depth profiles, heatmaps, augmentation galleries, HTML report.

The helpers most used on results load on first use and are reachable from ``augsens.plot`` (and so
``ag.plot``): :func:`depth_profile`, :func:`contrast_profile`, :func:`top_unit_maps`,
:func:`interaction_heatmaps`, :func:`gallery`, :func:`write_report`, :func:`write_explorer`.  Every
module here draws with matplotlib, which comes with ``augsens[analysis]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from augsens.extras import require

require("matplotlib", purpose="figures and reports")

if TYPE_CHECKING:
    from augsens.plot.explorer import write_explorer
    from augsens.plot.gallery import gallery
    from augsens.plot.interactions import interaction_heatmaps
    from augsens.plot.maps import contrast_profile, depth_profile, top_unit_maps
    from augsens.plot.report import write_report

__all__ = [
    "depth_profile",
    "contrast_profile",
    "top_unit_maps",
    "interaction_heatmaps",
    "gallery",
    "write_report",
    "write_explorer",
]

_LAZY = {
    "depth_profile": "maps",
    "contrast_profile": "maps",
    "top_unit_maps": "maps",
    "interaction_heatmaps": "interactions",
    "gallery": "gallery",
    "write_report": "report",
    "write_explorer": "explorer",
}


def __getattr__(name: str) -> Any:
    # Submodules import pandas, xarray and torch: load them when a helper is first used (PEP 562).
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"augsens.plot.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'augsens.plot' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])

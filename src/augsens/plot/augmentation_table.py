"""The report's table of a study's augmentations: where each comes from, its parameters and the ranges or
distributions they were drawn from, its code hash (from the results' ``augmentation_specs`` attribute)."""

from __future__ import annotations

import html
from typing import Any

import xarray as xr

from augsens.schema import ResultsInfo

__all__ = ["augmentation_rows", "augmentation_table_html"]


def _range(p: dict[str, Any]) -> str:
    lo, hi = p.get("low"), p.get("high")
    if p.get("distribution", "uniform") == "uniform":
        return f"uniform [{lo:g}, {hi:g}]"
    keywords = ", ".join(
        f"{k}={v:g}"
        for k, v in p.items()
        if k not in ("name", "identity", "integer", "distribution", "low", "high")
    )
    return f"{p['distribution']}({keywords}) on [{lo:g}, {hi:g}]"


def augmentation_rows(tree: xr.DataTree) -> list[tuple[str, str, str, str, str, str]]:
    """``(augmentation, from, parameter, range or distribution, identity, code hash)`` per parameter
    (one row with an empty parameter for an op without parameters); empty for results that predate the
    record."""
    specs = ResultsInfo.from_attrs(tree.attrs).augmentation_specs
    rows = []
    for a in specs:
        params = a.get("parameters", [])
        if not params:
            rows.append((a["name"], a.get("source", ""), "(switch only)", "", "", a.get("code_hash", "")))
        for i, p in enumerate(params):
            ident = "" if p.get("identity") is None else f"{p['identity']:g}"
            first = i == 0
            rows.append(
                (
                    a["name"] if first else "",
                    a.get("source", "") if first else "",
                    p["name"] + (" (integer)" if p.get("integer") else ""),
                    _range(p),
                    ident,
                    a.get("code_hash", "") if first else "",
                )
            )
    return rows


def augmentation_table_html(tree: xr.DataTree, title: str = "") -> str:
    """An HTML table of :func:`augmentation_rows` (empty string when there are none)."""
    rows = augmentation_rows(tree)
    if not rows:
        return ""
    head = ("augmentation", "from", "parameter", "range or distribution", "identity", "code hash")
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    caption = f"<caption>{html.escape(title)}</caption>" if title else ""
    header = "".join(f"<th>{h}</th>" for h in head)
    return f"<table>{caption}<tr>{header}</tr>{cells}</table>"

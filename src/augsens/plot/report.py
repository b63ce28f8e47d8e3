"""The self-contained HTML report of one or more results folders.

Figures are embedded as base64 PNG, so ``report.html`` can be mailed or archived on its own.  Other
analyses (masking, contrast, correlation, LDA) add sections by writing ``*.section.html`` fragments
into the report folder; :func:`write_report` includes every fragment it finds there.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path

import xarray as xr
from matplotlib.figure import Figure

from augsens.errors import MissingFileError
from augsens.plot.maps import (
    MEASURE_TITLES,
    checkpoints_of,
    contrast_profile,
    depth_profile,
    measures_of,
    top_unit_maps,
)
from augsens.results import find_results, open_results

__all__ = ["write_report", "write_section", "figure_html", "GLOSSARY"]

GLOSSARY = {
    "S1": "First-order Sobol index: the share of an activation's variance explained by the factor alone, "
    "averaging over everything else (Var E[Y | X_j] / Var Y). Near 0: the factor matters only through "
    "interactions, or not at all.",
    "ST": "Total Sobol index: the share of variance that would vanish if the factor were fixed "
    "(E Var[Y | X_~j] / Var Y), interactions included. ST - S1 measures interactions.",
    "shapley": "Shapley effect: the variance shared fairly among factors (each interaction split equally "
    "among its members); the effects of an activation sum to 1.",
    "mean / var / cov": "Mean, variance and coefficient of variation sd / (|mean| + 1e-5) of the activation "
    "over all design rows.",
    "aggregated index": "For a channel or a checkpoint: the sum of the elements' numerators divided by the "
    "sum of their variances, i.e. the share of the whole channel's (checkpoint's) activation variance.",
    "factors": "One per augmentation (its parameters and on/off switch), plus 'order' (the composition "
    "order), 'image' (which photo) and 'partition' (train/val) where present.",
}


def figure_html(fig: Figure, alt: str) -> str:
    """Embed a figure as a base64 PNG ``<img>`` (and close it)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def write_section(out_dir: str | Path, name: str, title: str, files: Sequence[Path], intro: str = "") -> Path:
    """Write ``out_dir/<name>.section.html``: a report section embedding the PNG ``files`` and linking
    the others (CSV tables).  :func:`write_report` includes every such fragment under its folder."""
    d = Path(out_dir)
    parts = [f"<h2>{html.escape(title)}</h2>"]
    if intro:
        parts.append(f"<p>{html.escape(intro)}</p>")
    tables = [f for f in files if f.suffix != ".png"]
    if tables:
        parts.append("<p>Tables: " + ", ".join(html.escape(str(f)) for f in tables) + "</p>")
    for f in files:
        if f.suffix == ".png":
            data = base64.b64encode(Path(f).read_bytes()).decode()
            parts.append(f'<img alt="{html.escape(f.name)}" src="data:image/png;base64,{data}">')
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.section.html"
    path.write_text("\n".join(parts))
    return path


def _contrast_section(name: str, tree: xr.DataTree) -> str:
    a = tree.attrs
    cfg = json.loads(a.get("config", "{}"))
    parts = [
        f"<h2>{html.escape(name)}: treatment-control statistics on {html.escape(str(a.get('model')))}</h2>"
    ]
    parts.append(
        "<p>Each augmentation alone against the original image ("
        + html.escape(
            f"{cfg.get('draws')} draws per image, {cfg.get('n_images')} images, pairing {cfg.get('pairing')}"
        )
        + "): paired Wilcoxon signed-rank test per element (zero differences split), Benjamini-Yekutieli "
        "adjusted p-values, matched-pairs rank-biserial and point-biserial correlations.</p>"
    )
    parts.append(figure_html(contrast_profile(tree), "contrast profile"))
    return "\n".join(parts)


def _nonfinite_line(counts: str) -> str:
    """``'{"fc": 12}'`` -> ``"fc: 12"``: per checkpoint, samples left out of an element's statistics
    because an output was NaN or inf, summed over elements; ``"none"`` when nothing was dropped."""
    dropped = {c: k for c, k in json.loads(counts).items() if k}
    return ", ".join(f"{c}: {k}" for c, k in dropped.items()) or "none"


def _study_section(name: str, tree: xr.DataTree) -> str:
    a = tree.attrs
    if a.get("kind") == "contrast":
        return _contrast_section(name, tree)
    kind, model = html.escape(str(a.get("kind"))), html.escape(str(a.get("model")))
    parts = [f"<h2>{html.escape(name)}: {kind} on {model}</h2>"]
    facts = {
        "augmentations": ", ".join(json.loads(a.get("augmentations", "[]"))),
        "factors": ", ".join(json.loads(a.get("factors", "[]"))),
        "mode": a.get("mode"),
        "base samples (n)": a.get("base_samples_done"),
        "forwards": a.get("forwards"),
        "time": f"{a.get('elapsed_s')} s ({a.get('forwards_per_s')} forwards/s on {a.get('device')})",
        "images": f"{a.get('images')} ({a.get('skipped_images')} skipped)",
        "dropped for NaN/inf (samples x elements)": _nonfinite_line(a.get("nonfinite", "{}")),
    }
    parts.append(
        "<table>"
        + "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts.items()
        )
        + "</table>"
    )
    cps = checkpoints_of(tree)
    for m in measures_of(tree):
        parts.append(f"<h3>{html.escape(MEASURE_TITLES.get(m, m))}</h3>")
        parts.append(figure_html(depth_profile(tree, m, title=f"{name}: depth profile of {m}"), f"depth {m}"))
        spatial = [
            c for c in cps if "channel" in tree[c].dataset[m].dims and tree[c].dataset.sizes.get("y", 1) > 1
        ]
        if spatial:
            mid = spatial[len(spatial) // 2]
            parts.append(figure_html(top_unit_maps(tree, m, mid), f"maps {m} {mid}"))
    return "\n".join(parts)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
img { max-width: 100%; } table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { text-align: left; padding: 2px 10px; border-bottom: 1px solid #ddd; font-size: 90%; }
dt { font-weight: bold; margin-top: .5em; } h2 { border-top: 2px solid #333; padding-top: .6em; }
"""


def write_report(results: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` for a results folder or a folder of results folders.

    Parameters
    ----------
    results : path
        A results folder (``results.zarr`` inside) or a folder whose sub-folders are results folders.
    out : path, optional
        The HTML file; default ``results/report.html``.

    Raises
    ------
    FileNotFoundError
        No results found under ``results``.
    """
    root = Path(results)
    found = find_results(root)
    if not found:
        raise MissingFileError(
            f"no augsens results under {str(root)!r} (expected results.zarr in it or its sub-folders)"
        )
    out = Path(out) if out is not None else root / "report.html"
    body = ["<h1>augsens report</h1>"]
    body.append(
        "<p>Each activation (channel × position of each checkpoint) of the network varies as augmentations "
        "are applied together with random parameters and order. The variance of every activation is split "
        "into shares owed to each factor. Below: depth profiles (how the shares change from input to output) "
        "and the most sensitive units' maps.</p>"
    )
    body.append(
        "<dl>" + "".join(f"<dt>{k}</dt><dd>{html.escape(v)}</dd>" for k, v in GLOSSARY.items()) + "</dl>"
    )
    for d in found:
        body.append(_study_section(d.name if d != root else root.name, open_results(d)))
    fragments = {*root.rglob("*.section.html"), *out.parent.glob("*.section.html")}
    for frag in sorted(fragments):
        body.append(frag.read_text())
    head = f"<meta charset='utf-8'><title>augsens report</title><style>{_CSS}</style>"
    page = f"<!doctype html><html><head>{head}</head>"
    page += "<body>" + "\n".join(body) + "</body></html>"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out

"""The self-contained HTML report of one or more results folders.

The report is the explorer page of :mod:`augsens.plot.explorer`: one HTML file with its data and viewer
inside, so ``report.html`` opens from disk and can be mailed or archived on its own.  Other analyses
(masking, contrast, correlation, LDA, segments) add sections by writing ``*.section.html`` fragments
into the report folder (:func:`write_section`); :func:`write_report` includes every fragment it finds.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from augsens.errors import MissingFileError, UserInputError
from augsens.plot.figures import png_bytes
from augsens.results import find_results

__all__ = ["write_report", "write_section", "figure_html", "GLOSSARY"]

GLOSSARY = {
    "S1": "First-order Sobol index: the share of an activation's variance explained by the factor alone, "
    "averaging over everything else (Var E[Y | X_j] / Var Y). Near 0: the factor matters only through "
    "interactions, or not at all.",
    "ST": "Total Sobol index: the share of variance that would vanish if the factor were fixed "
    "(E Var[Y | X_~j] / Var Y), interactions included. ST - S1 measures interactions.",
    "shapley": "Shapley effect: the variance shared fairly among factors (each interaction split equally "
    "among its members); the effects of an activation sum to 1.",
    "S2": "Second-order Sobol index of a pair of factors (when the study computes it): the share of "
    "variance owed to their interaction alone.",
    "shapley_interaction": "Pairwise Shapley interaction index (exact-Shapley studies): the share of "
    "variance in every interaction the two factors take part in, each interaction of k factors shared "
    "equally among the k - 1 pairs it forms with one of them; a factor's row sums to its ST - S1.",
    "± half-width": "95 % confidence half-width from independent randomisations of the design (Student t "
    "over the replicates); intervals that do not overlap separate two factors at the study's size.",
    "mean / var / cov": "Mean, variance and coefficient of variation sd / (|mean| + 1e-5) of the activation "
    "over all design rows.",
    "aggregated index": "For a channel or a checkpoint: the sum of the elements' numerators divided by the "
    "sum of their variances, i.e. the share of the whole channel's (checkpoint's) activation variance.",
    "factors": "One per augmentation (its parameters and on/off switch), plus 'order' (the composition "
    "order), 'image' (which photo) and 'partition' (train/val) where present.",
}


def figure_html(fig: Figure, alt: str) -> str:
    """Embed a figure as a base64 PNG ``<img>`` (and close it)."""
    data = base64.b64encode(png_bytes(fig, dpi=110)).decode()
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


def write_report(results: str | Path | Sequence[str | Path], out: str | Path | None = None) -> Path:
    """Write the explorer page (:func:`augsens.plot.explorer.write_explorer`) for results folders.

    Every ``*.section.html`` fragment found under the given folders or beside ``out`` becomes a section
    of the page, its relative PNG images embedded.

    Parameters
    ----------
    results : path or sequence of paths
        Results folders (``results.zarr`` inside) and/or folders whose sub-folders are results folders.
    out : path, optional
        The HTML file; default ``report.html`` in the folder given (required for several folders).

    Raises
    ------
    FileNotFoundError
        No results found under one of ``results``.
    ValueError
        Several folders and no ``out``.
    """
    from augsens.plot.explorer import inline_images, write_explorer

    roots = [Path(results)] if isinstance(results, str | Path) else [Path(r) for r in results]
    if not roots:
        raise UserInputError("no results folders given: pass at least one folder holding results.zarr")
    found: list[Path] = []
    for root in roots:
        here = find_results(root)
        if not here:
            raise MissingFileError(
                f"no augsens results under {str(root)!r} (expected results.zarr in it or its sub-folders)"
            )
        found += [d for d in here if d not in found]
    if out is None:
        if len(roots) > 1:
            raise UserInputError(
                f"{len(roots)} results folders given: name the page with --out FILE (e.g. --out report.html)"
            )
        out = roots[0] / "report.html"
    out = Path(out)
    fragments = {f for root in roots for f in root.rglob("*.section.html")} | set(
        out.parent.glob("*.section.html")
    )
    sections = []
    for frag in sorted(fragments):
        text = inline_images(frag.read_text(), frag.parent)
        heading = re.search(r"<h2[^>]*>(.*?)</h2>", text, flags=re.S)
        title = html.unescape(re.sub(r"<[^>]+>", "", heading.group(1))) if heading else frag.stem
        sections.append((title.strip(), text))
    from augsens.plot.augmentation_table import augmentation_table_html
    from augsens.results import open_results

    tables = []
    for folder in found:  # the ranges each study drew its parameters from
        table = augmentation_table_html(open_results(folder), title=folder.name)
        if table:
            tables.append(table)
    if tables:
        sections.append(("Augmentations and ranges", "<h2>Augmentations and ranges</h2>" + "".join(tables)))
    intro = (
        "<p>Each activation (channel × position of each checkpoint) of the network varies as augmentations "
        "are applied together with random parameters and order; its variance is split into shares owed to "
        "each factor. The summary is written from the aggregated indices; the viewer below shows every map. "
        "Definitions are in the glossary.</p>"
    )
    return write_explorer(found, out, sections=sections, intro=intro)

"""The report as an explorer: one self-contained HTML page over any number of results trees.

The page opens from disk with no server and no network: its data (profiles, reduced maps, channel
tables; see :mod:`augsens.plot.explorer_data`) sits in the page as JSON, and a small hand-written viewer
(``explorer.js``, about 15 kB, drawing on ``<canvas>``) reads it.  No plotting library is embedded: the
smallest that can draw heat maps with hover (plotly's bundle) would add ~4.5 MB to every page.

Sections, top to bottom: a summary written from the numbers (:mod:`augsens.plot.summary`), depth profiles
with confidence bands, a map viewer (study, checkpoint, measure, factor, channel; values on hover), a
sortable channel table for the viewer's selection, factor × factor interaction heat maps where a study
has pairwise indices (:mod:`augsens.plot.interactions`), the Morris plane of screening studies
(:mod:`augsens.plot.screening`), per-study provenance, the glossary, then any extra
sections (the analyses' :class:`~augsens.plot.sections.Section` objects, or a comparison's), all in one
navigation bar.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import xarray as xr

from augsens.plot.explorer_data import study_payload
from augsens.plot.figures import figure_html
from augsens.plot.interactions import interactions_section
from augsens.plot.screening import screening_section
from augsens.plot.sections import Section
from augsens.plot.summary import study_summary
from augsens.schema import ResultsInfo, open_tree

__all__ = ["write_explorer", "explorer_html", "GLOSSARY"]

#: Definitions shown at the foot of every page.
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
    "mu_star / sigma": "Morris screening (kind = 'morris'): the mean absolute elementary effect of a factor "
    "(the change of an activation when the factor alone moves by one step of the design grid, per unit "
    "step, in the activation's units) and the standard deviation of the signed effects; aggregated over a "
    "channel or checkpoint as the mean (mu_star) and root mean square (sigma) over its activations.",
    "± half-width": "95 % confidence half-width from independent randomisations of the design (Student t "
    "over the replicates); intervals that do not overlap separate two factors at the study's size.",
    "mean / var / cov": "Mean, variance and coefficient of variation sd / (|mean| + 1e-5) of the activation "
    "over all design rows.",
    "aggregated index": "For a channel or a checkpoint: the sum of the elements' numerators divided by the "
    "sum of their variances, i.e. the share of the whole channel's (checkpoint's) activation variance.",
    "factors": "One per augmentation (its parameters and on/off switch), plus 'order' (the composition "
    "order), 'image' (which photo) and 'partition' (train/val) where present.",
}

_ASSETS = resources.files("augsens.plot")


def _provenance(name: str, tree: xr.DataTree) -> str:
    info = ResultsInfo.from_attrs(tree.attrs)
    a = info.attrs
    rows = {
        "model": a.get("model"),
        "kind / mode": f"{a.get('kind')} / {a.get('mode')}",
        "augmentations": ", ".join(info.augmentations),
        "factors": ", ".join(info.factors),
        "seed": a.get("seed"),
        "base samples (n)": a.get("base_samples_done", a.get("n")),
        "forwards": a.get("forwards"),
        "time": f"{a.get('elapsed_s')} s, {a.get('forwards_per_s')} forwards/s on {a.get('device')}",
        "images": f"{a.get('images')} ({a.get('skipped_images')} skipped)",
        "created": a.get("created"),
        "versions": ", ".join(f"{k} {v}" for k, v in info.versions.items()),
        # each start or resume: from which base sample, with which batch size, device and layout
        "runs": "; ".join(
            f"from sample {h.get('from_sample')}: batch {h.get('batch_size')} on {h.get('device')}"
            + (", channels_last" if h.get("channels_last") else "")
            for h in info.run_history
        )
        or None,
    }
    out = [f'<h3 id="prov-{html.escape(name)}">{html.escape(name)}</h3><table class="facts">']
    out += [
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in rows.items()
        if v is not None
    ]
    out.append("</table>")
    nonfinite = info.nonfinite
    if nonfinite:
        out.append(
            "<table class='nonfinite'><tr><th>checkpoint</th>"
            "<th>values dropped for NaN/inf (samples × elements)</th></tr>"
        )
        out += [
            f"<tr><td>{html.escape(str(c))}</td><td>{html.escape(str(v))}</td></tr>"
            for c, v in nonfinite.items()
        ]
        out.append("</table>")
    # elements that never had a finite sample: no index can be drawn for them (a table of its own, only
    # where there are some)
    empty_rows = []
    for c in tree.children:
        empty = tree[c].attrs.get("no_data_elements")
        if empty:
            note = str(empty)
            ds = tree[c].dataset
            if "mean" in ds and empty == ds["mean"].size:
                note += " (all: no data at this checkpoint)"
            empty_rows.append(f"<tr><td>{html.escape(str(c))}</td><td>{html.escape(note)}</td></tr>")
    if empty_rows:
        out.append(
            "<table class='nodata'><tr><th>checkpoint</th>"
            "<th>elements with no finite sample (no data)</th></tr>"
        )
        out += empty_rows
        out.append("</table>")
    config = dict(info.config)
    out.append(
        "<details><summary>config</summary><pre>"
        + html.escape(json.dumps(config, indent=2, sort_keys=True))
        + "</pre></details>"
    )
    return "\n".join(out)


def _contrast_summary(name: str, tree: xr.DataTree) -> str:
    model = ResultsInfo.from_attrs(tree.attrs).model
    return (
        f"<p><b>{html.escape(name)}</b>: treatment-control statistics on {html.escape(model)} (each "
        "augmentation alone against the original image); the profile below shows, per checkpoint, the share "
        "of elements with a Benjamini-Yekutieli adjusted p below 0.05 and the mean |rank-biserial r|.</p>"
    )


def _profile_block(index: int, name: str, tree: xr.DataTree, payload: dict) -> str:
    if ResultsInfo.from_attrs(tree.attrs).kind == "contrast":
        from augsens.plot.maps import contrast_profile

        return f"<h3>{html.escape(name)}</h3>" + figure_html(contrast_profile(tree), f"{name} contrast")
    if not payload["profiles"]:
        return f"<h3>{html.escape(name)}</h3><p>No aggregated indices.</p>"
    return (
        f'<div class="profile" data-study="{index}"><h3>{html.escape(name)}</h3>'
        '<label>measure <select class="profile-measure"></select></label> '
        '<span class="hover-readout"></span><canvas width="900" height="320"></canvas>'
        '<div class="legend"></div></div>'
    )


_VIEWER = """
<div id="viewer">
 <div class="controls">
  <label>study <select id="sel-study"></select></label>
  <label>checkpoint <select id="sel-checkpoint"></select></label>
  <label>measure <select id="sel-measure"></select></label>
  <label>factor <select id="sel-factor"></select></label>
  <label>channel <select id="sel-channel"></select></label>
 </div>
 <div class="mapbox">
  <canvas id="map" width="420" height="420"></canvas>
  <div class="mapside">
   <canvas id="colorbar" width="24" height="300"></canvas>
   <div id="map-range"></div>
  </div>
 </div>
 <p id="map-readout" class="readout">hover the map for values</p>
 <p id="map-scale" class="readout"></p>
 <p id="map-note" class="note"></p>
</div>
"""

_CHANNELS = """
<p>Every channel (unit) of the viewer's checkpoint, one column per factor: the channel's aggregated
<span id="table-measure"></span> (a unit's own index at fully connected checkpoints). Click a column to
sort (again to reverse); click a row to show that channel above.</p>
<div id="channel-summary"></div>
<div class="tablebox"><table id="channel-table"></table></div>
"""


def explorer_html(
    results: Sequence[tuple[str, xr.DataTree]],
    *,
    sections: Sequence[Section] = (),
    title: str = "augsens report",
    intro: str = "",
    budget: int = 600_000,
) -> str:
    """The explorer page for named results trees plus extra sections (analyses, a comparison).

    Parameters
    ----------
    results : sequence of (str, DataTree)
        Studies in page order, each with its label (e.g. the folder name).
    sections : sequence of Section
        Extra sections (:class:`augsens.plot.sections.Section`) appended after the studies' own, each
        listed in the navigation by its title.
    title, intro : str
        Page heading and an HTML paragraph under it.
    budget : int, default 600_000
        Most stored map values per study (see :func:`augsens.plot.explorer_data.study_payload`).

    Returns
    -------
    str
        The whole HTML document.
    """
    payloads = [study_payload(name, tree, budget=budget) for name, tree in results]
    summary = [
        _contrast_summary(n, t) if ResultsInfo.from_attrs(t.attrs).kind == "contrast" else study_summary(n, t)
        for n, t in results
    ]
    profiles = [
        _profile_block(i, n, t, p) for i, ((n, t), p) in enumerate(zip(results, payloads, strict=True))
    ]
    interactions = interactions_section(results)
    screening = screening_section(results)
    nav = [("summary", "Summary"), ("profiles", "Depth profiles"), ("maps", "Map viewer")]
    nav += [("channels", "Channels")] + ([("interactions", "Interactions")] if interactions else [])
    nav += [("screening", "Morris screening")] if screening else []
    nav += [("provenance", "Provenance"), ("glossary", "Glossary")]
    body = [
        f"<h1>{html.escape(title)}</h1>",
        intro,
        '<section id="summary"><h2>Summary</h2>' + "\n".join(summary) + "</section>",
        '<section id="profiles"><h2>Depth profiles</h2><p>Aggregated index of each checkpoint (input → '
        "output) per factor; bands: 95 % confidence half-widths.</p>" + "\n".join(profiles) + "</section>",
        '<section id="maps"><h2>Map viewer</h2>' + _VIEWER + "</section>",
        '<section id="channels"><h2>Channels</h2>' + _CHANNELS + "</section>",
        f'<section id="interactions"><h2>Interactions</h2>{interactions}</section>' if interactions else "",
        f'<section id="screening"><h2>Morris screening</h2>{screening}</section>' if screening else "",
        '<section id="provenance"><h2>Provenance</h2>'
        + "\n".join(_provenance(n, t) for n, t in results)
        + "</section>",
        '<section id="glossary"><h2>Glossary</h2><dl>'
        + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in GLOSSARY.items())
        + "</dl></section>",
    ]
    for i, section in enumerate(sections):
        nav.append((f"section-{i}", section.title))
        body.append(f'<section id="section-{i}" class="analysis">{section.html}</section>')
    links = "".join(f'<a href="#{k}">{html.escape(v)}</a>' for k, v in nav)
    # "<" escaped so that no string in the data can close the script element
    data = json.dumps({"studies": payloads}, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    css = (_ASSETS / "explorer.css").read_text()
    js = (_ASSETS / "explorer.js").read_text()
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width'><title>{html.escape(title)}</title>"
        f"<style>{css}</style></head><body><nav id='nav'>{links}</nav><main>"
        + "\n".join(body)
        + f"</main><script type='application/json' id='augsens-data'>{data}</script>"
        + f"<script>{js}</script></body></html>"
    )


def write_explorer(
    results: Sequence[str | Path],
    out: str | Path,
    *,
    sections: Sequence[Section] = (),
    title: str = "augsens report",
    intro: str = "",
    budget: int = 600_000,
) -> Path:
    """Write the explorer page for results folders (see :func:`explorer_html`) to ``out``.

    Studies are labelled by their folder names (with the parent's name prepended where two folders
    share a name).

    Raises
    ------
    FileNotFoundError
        A folder is not a results folder.
    ValueError
        ``results`` is empty.
    """
    dirs = [Path(r) for r in results]
    if not dirs:
        raise ValueError("no results folders given: pass at least one folder holding results.zarr")
    names = [d.name for d in dirs]
    labels = [f"{d.parent.name}/{d.name}" if names.count(d.name) > 1 else d.name for d in dirs]
    # every file's checksum: the page reads all of it anyway, and a damaged store is named, not drawn
    trees = [(label, open_tree(d, verify="full")) for label, d in zip(labels, dirs, strict=True)]
    page = explorer_html(trees, sections=sections, title=title, intro=intro, budget=budget)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path

"""Figures, report section and page of a comparison of studies (:func:`augsens.analysis.compare.compare`).

The comparison is one :class:`~augsens.plot.sections.Section` (:func:`comparison_section`): the explorer
shows it beside the compared studies' maps, and ``compare.html`` is that section on a page of its own,
self-contained like the report (figures embedded as base64 PNG); the same figures are written as PNG files
beside it, with the CSV tables.  This module reads a comparison through :class:`ComparisonTables` (what it
draws), so it needs nothing of the module that computes one.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from augsens.plot.figures import save_figure  # noqa: E402
from augsens.plot.maps import MEASURE_TITLES  # noqa: E402
from augsens.plot.sections import Section  # noqa: E402
from augsens.schema import ResultsInfo  # noqa: E402

__all__ = [
    "profile_figure",
    "difference_figure",
    "comparison_section",
    "write_comparison",
    "ComparisonTables",
]


class ComparisonTables(Protocol):
    """What a comparison page draws: the runs' provenance and the three tables of
    :class:`augsens.analysis.compare.Comparison` (see there for their columns)."""

    @property
    def infos(self) -> Mapping[str, ResultsInfo]: ...

    @property
    def profiles(self) -> pd.DataFrame: ...

    @property
    def dominance(self) -> pd.DataFrame: ...

    @property
    def differences(self) -> pd.DataFrame: ...


def _factors(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame["factor"]))  # first-seen order: the runs' factor order


def _grid(n: int) -> tuple[Figure, np.ndarray]:
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.2 * cols + 0.4, 2.6 * rows + 0.8), squeeze=False, sharex=True, sharey=True
    )
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes


def profile_figure(profiles: pd.DataFrame, measure: str) -> Figure:
    """One panel per factor: each run's aggregated index against relative depth, with its 95 % band."""
    data = profiles[profiles["measure"] == measure]
    factors = _factors(data)
    fig, axes = _grid(len(factors))
    colours = {run: f"C{i}" for i, run in enumerate(dict.fromkeys(data["run"]))}
    # indices lie in [0, 1] up to noise: the axis shows that range and the estimates, not the widest band
    values = data["value"].to_numpy()
    ylim = (min(-0.05, float(np.nanmin(values)) - 0.05), max(1.0, float(np.nanmax(values)) + 0.05))
    for ax, factor in zip(axes.flat, factors, strict=False):
        for run, g in data[data["factor"] == factor].groupby("run", sort=False):
            g = g.sort_values("depth")
            x, y, h = g["depth"].to_numpy(), g["value"].to_numpy(), g["conf"].to_numpy()
            ax.plot(x, y, marker="o", ms=3, color=colours[run], label=str(run))
            if np.isfinite(h).any():
                ax.fill_between(x, y - h, y + h, color=colours[run], alpha=0.2, lw=0)
        ax.axhline(0, color="0.7", lw=0.8)
        ax.set_title(factor, fontsize=9)
        ax.set_xlim(0, 1.02)
        ax.set_ylim(*ylim)
    for ax in axes[-1]:
        ax.set_xlabel("relative depth (0 = input, 1 = output)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(measure)
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper right", fontsize=8, frameon=False)
    fig.suptitle(f"Depth profiles: {MEASURE_TITLES.get(measure, measure)} of whole checkpoints (95 % bands)")
    fig.set_layout_engine("constrained")
    return fig


def difference_figure(differences: pd.DataFrame, measure: str) -> Figure:
    """One panel per factor: run a - run b at each shared checkpoint with its 95 % interval (filled markers:
    the interval excludes 0)."""
    data = differences[differences["measure"] == measure]
    factors = _factors(data)
    fig, axes = _grid(len(factors))
    pairs = list(dict.fromkeys(zip(data["run_a"], data["run_b"], strict=True)))
    reach = max(0.1, 1.2 * float(np.nanmax(np.abs(data["difference"].to_numpy()))))
    for ax, factor in zip(axes.flat, factors, strict=False):
        for i, (a, b) in enumerate(pairs):
            g = data[(data["factor"] == factor) & (data["run_a"] == a) & (data["run_b"] == b)]
            g = g.sort_values("depth")
            x, d, h = g["depth"].to_numpy(), g["difference"].to_numpy(), g["conf"].to_numpy()
            colour = f"C{i}"
            ax.errorbar(x, d, yerr=np.nan_to_num(h), color=colour, lw=1, capsize=2, label=f"{a} − {b}")
            sig = g["significant"].to_numpy(dtype=bool)
            ax.scatter(x[sig], d[sig], color=colour, zorder=3, s=18)
            ax.scatter(x[~sig], d[~sig], facecolor="white", edgecolor=colour, zorder=3, s=18)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_title(factor, fontsize=9)
        ax.set_xlim(0, 1.02)
        ax.set_ylim(-reach, reach)  # the differences, not the widest interval, set the scale
    for ax in axes[-1]:
        ax.set_xlabel("relative depth (0 = input, 1 = output)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"Δ {measure}")
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper right", fontsize=8, frameon=False)
    fig.suptitle(
        f"Differences at shared checkpoints: {MEASURE_TITLES.get(measure, measure)} (95 % intervals)"
    )
    fig.set_layout_engine("constrained")
    return fig


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "x"


def _img(path: Path, alt: str) -> str:
    import base64

    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _runs_table(result: ComparisonTables) -> str:
    rows = []
    for label, info in result.infos.items():
        a, cfg = info.attrs, info.config
        rows.append(
            {
                "run": label,
                "model": a.get("model"),
                "weights": cfg.get("model", {}).get("weights", ""),
                "kind": a.get("kind"),
                "mode": a.get("mode"),
                "augmentations": ", ".join(info.augmentations),
                "n": a.get("base_samples_done"),
                "images": f"{cfg.get('images', {}).get('source', '')} ({a.get('images')})",
                "checkpoints": len(info.checkpoints),
            }
        )
    return pd.DataFrame(rows).to_html(index=False, escape=True)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
img { max-width: 100%; } table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { text-align: left; padding: 2px 10px; border-bottom: 1px solid #ddd; font-size: 90%; }
dt { font-weight: bold; margin-top: .5em; } h2 { border-top: 2px solid #333; padding-top: .6em; }
"""


def comparison_section(result: ComparisonTables, out: Path) -> Section:
    """Write the CSV tables and PNG figures of ``result`` into ``out``; the section that shows them."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name in ("profiles", "dominance", "differences"):
        path = out / f"{name}.csv"
        getattr(result, name).to_csv(path, index=False)
        files.append(path)
    body = [
        "<h1>augsens: studies compared</h1>",
        _runs_table(result),
        "<p>Each checkpoint sits at its relative depth: the share of the network's weighted layers that have "
        "run when its output is produced (0 = input, 1 = output), so networks of different lengths share "
        "one axis. Values are aggregated indices of whole checkpoints (summed numerators over summed "
        "variances) with 95 % bands from the studies' independent replicates. Tables: "
        + ", ".join(html.escape(f.name) for f in files)
        + ".</p>",
    ]
    float_format = "{:.3f}".format
    for measure in dict.fromkeys(result.profiles["measure"]):
        body.append(f"<h2>{html.escape(MEASURE_TITLES.get(measure, measure))}</h2>")
        png = save_figure(
            profile_figure(result.profiles, measure), out / f"profile_{_slug(measure)}.png", dpi=110
        )
        files.append(png)
        body.append(_img(png, f"depth profiles of {measure}"))
        dom = result.dominance[result.dominance["measure"] == measure]
        body.append(
            "<h3>Dominant factor per checkpoint</h3><p>The factor with the largest aggregated index; "
            "<i>separated</i>: its interval lies above the runner-up's; <i>augmentation</i>: the strongest "
            "augmentation (factors such as image and order left out).</p>"
        )
        body.append(
            dom.drop(columns="measure").to_html(
                index=False, float_format=float_format, na_rep="", escape=True
            )
        )
        diff = result.differences[result.differences["measure"] == measure]
        if not diff.empty:
            png = save_figure(
                difference_figure(result.differences, measure),
                out / f"difference_{_slug(measure)}.png",
                dpi=110,
            )
            files.append(png)
            body.append("<h3>Differences at shared checkpoints</h3>")
            body.append(_img(png, f"differences of {measure}"))
            sig = diff[diff["significant"]]
            body.append(
                f"<p>{len(sig)} of {len(diff)} differences have a 95 % interval that excludes 0"
                + (" (listed below; all in differences.csv).</p>" if len(sig) else ".</p>")
            )
            if len(sig):
                body.append(
                    sig.drop(columns=["measure", "significant"]).to_html(
                        index=False, float_format=float_format, escape=True
                    )
                )
    return Section("Comparison", "\n".join(body), "comparison", tuple(files))


def write_comparison(result: ComparisonTables, out: Path) -> tuple[Section, Path]:
    """Write the CSV tables, PNG figures and ``compare.html`` of ``result`` into ``out``.

    Returns
    -------
    (Section, Path)
        The comparison as a report section (its files: tables and figures) and the page.
    """
    section = comparison_section(result, out)
    head = f"<meta charset='utf-8'><title>augsens comparison</title><style>{_CSS}</style>"
    page = out / "compare.html"
    page.write_text(f"<!doctype html><html><head>{head}</head><body>{section.html}</body></html>")
    return section, page

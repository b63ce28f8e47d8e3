"""Interaction maps of a study: factor × factor heat maps of the aggregated pairwise indices.

Exact-Shapley studies report, per checkpoint, the pairwise Shapley interaction index
(``shapley_interaction_checkpoint``) and the second-order Sobol' index (``S2_checkpoint``); Sobol studies
with ``second_order = true`` report ``S2_checkpoint``.  :func:`interaction_heatmaps` draws one panel per
checkpoint for one of them, each cell written as ``value ± 95 % half-width``; :func:`interactions_section`
gathers the figures of several studies into the report's "Interactions" section.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from augsens.plot.explorer_data import PAIR_MEASURES  # noqa: E402
from augsens.plot.figures import figure_html  # noqa: E402
from augsens.plot.maps import checkpoints_of  # noqa: E402

__all__ = ["PAIR_TITLES", "pair_measures", "interaction_heatmaps", "interactions_section"]

PAIR_TITLES = {
    "shapley_interaction": "pairwise Shapley interaction index",
    "S2": "second-order Sobol index S2",
}
#: most checkpoint panels per row of a figure
_COLUMNS = 4


def pair_measures(tree: xr.DataTree) -> list[str]:
    """The pairwise measures with per-checkpoint aggregates in ``tree`` (in :data:`PAIR_MEASURES` order)."""
    cps = checkpoints_of(tree)
    return [m for m in PAIR_MEASURES if any(f"{m}_checkpoint" in tree[c].dataset for c in cps)]


def _cell_text(value: float, conf: float) -> str:
    if not np.isfinite(value):
        return ""
    return f"{value:.2f}\n±{conf:.2f}" if np.isfinite(conf) else f"{value:.2f}"


def interaction_heatmaps(tree: xr.DataTree, measure: str = "shapley_interaction") -> Figure:
    """One factor × factor heat map per checkpoint of an aggregated pairwise measure.

    Each cell holds the checkpoint's aggregated index of the pair (the sum over its elements of the
    numerators over the sum of their variances) and, below it, its 95 % half-width where the study has
    replicates.  All panels share one colour scale, centred on 0 (a negative ``S2`` is estimation noise
    around a small value); the diagonal (a factor with itself) is left blank.

    Parameters
    ----------
    tree : xarray.DataTree
        Results (:func:`augsens.open_results`) with ``<measure>_checkpoint`` (dims ``factor``,
        ``factor2``).
    measure : {"shapley_interaction", "S2"}, default "shapley_interaction"

    Returns
    -------
    matplotlib.figure.Figure
        Panels in model order, at most four per row; cell texts ``"0.19\\n±0.02"``.

    Raises
    ------
    KeyError
        No checkpoint of ``tree`` has ``<measure>_checkpoint``.
    """
    key = f"{measure}_checkpoint"
    cps = [c for c in checkpoints_of(tree) if key in tree[c].dataset]
    if not cps:
        have = pair_measures(tree)
        raise KeyError(
            f"no aggregated {measure!r} in these results (variable {key!r} missing); pairwise measures "
            f"present: {have!r} (exact-Shapley studies have both, Sobol studies S2 with second_order = true)"
        )
    values = [tree[c].dataset[key] for c in cps]
    confs = [tree[c].dataset.get(f"{measure}_conf_checkpoint") for c in cps]
    factors = [str(f) for f in values[0]["factor"].values]
    d = len(factors)
    finite = np.concatenate([v.values[np.isfinite(v.values)] for v in values])
    vmax = max(0.01, float(np.abs(finite).max())) if finite.size else 1.0
    cols = min(_COLUMNS, len(cps))
    rows = math.ceil(len(cps) / cols)
    side = max(2.6, 0.5 * d + 1.0)  # inches per panel: room for two lines of text per cell
    fig, axes = plt.subplots(
        rows, cols, figsize=(side * cols + 1.0, side * rows + 0.6), squeeze=False, layout="constrained"
    )
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.92")
    image = None
    for ax, cp, value, conf in zip(axes.flat, cps, values, confs, strict=False):
        v = value.transpose("factor", "factor2").values
        c = conf.transpose("factor", "factor2").values if conf is not None else np.full_like(v, np.nan)
        image = ax.imshow(v, cmap=cmap, vmin=-vmax, vmax=vmax)
        for i in range(d):
            for j in range(d):
                text = _cell_text(v[i, j], c[i, j])
                if text:
                    dark = abs(v[i, j]) > 0.6 * vmax
                    ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color="w" if dark else "k")
        ax.set_xticks(range(d), factors, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(d), factors, fontsize=7)
        ax.set_title(cp, fontsize=9)
    for ax in axes.flat[len(cps) :]:
        ax.set_axis_off()
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label=PAIR_TITLES.get(measure, measure))
    fig.suptitle(f"{PAIR_TITLES.get(measure, measure)} per checkpoint (value ± 95 % half-width)", fontsize=10)
    return fig


_INTRO = (
    "Which factors act together: per checkpoint and pair of factors, the share of the checkpoint's "
    "activation variance owed to their interaction. The pairwise Shapley interaction index counts every "
    "interaction the pair takes part in (shared among the pairs of its members, so a row sums to the "
    "factor's ST − S1); S2 counts the interaction of the two alone. Exact-Shapley studies report both at "
    "no extra forward; Sobol studies report S2 when run with second_order = true."
)


def interactions_section(results: Sequence[tuple[str, xr.DataTree]]) -> str:
    """The report's "Interactions" section: :func:`interaction_heatmaps` of every study and pairwise
    measure that has them, as embedded PNG images ("" when no study has any)."""

    parts = []
    for name, tree in results:
        for measure in pair_measures(tree):
            title = f"{name}: {PAIR_TITLES[measure]}"
            parts.append(
                f'<h3 class="interaction" data-study="{html.escape(name)}" data-measure="{measure}">'
                f"{html.escape(title)}</h3>" + figure_html(interaction_heatmaps(tree, measure), title)
            )
    if not parts:
        return ""
    return f"<p>{html.escape(_INTRO)}</p>" + "\n".join(parts)

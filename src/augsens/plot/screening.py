"""The Morris plane of a screening study: ``mu_star`` against ``sigma`` per checkpoint.

A Morris study (``kind = "morris"``) reports, per checkpoint, the aggregated mean absolute elementary
effect ``mu_star_checkpoint`` and spread ``sigma_checkpoint`` of every factor.  :func:`morris_plane` draws
one panel per checkpoint with each factor as a point (95 % half-widths as error bars) and the line
``sigma = mu_star``: factors near the origin do not matter there, factors far to the right do, and a
factor above the line acts mostly through interactions or non-linearly (Morris 1991; Garcia Sanchez et
al. 2014 for the ``sigma / mu_star`` reading).  :func:`screening_section` gathers the figures of several
studies into the report's "Morris screening" section.
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

from augsens.plot.figures import figure_html  # noqa: E402
from augsens.plot.maps import checkpoints_of  # noqa: E402

__all__ = ["morris_plane", "screening_section"]

_COLUMNS = 4


def _has_plane(tree: xr.DataTree) -> list[str]:
    return [c for c in checkpoints_of(tree) if "mu_star_checkpoint" in tree[c].dataset]


def morris_plane(tree: xr.DataTree) -> Figure:
    """One ``mu_star``-``sigma`` scatter per checkpoint of a Morris study.

    Parameters
    ----------
    tree : xarray.DataTree
        Results (:func:`augsens.open_results`) with ``mu_star_checkpoint`` and ``sigma_checkpoint``.

    Returns
    -------
    matplotlib.figure.Figure
        Panels in model order, at most four per row; each factor a labelled point with error bars
        (95 % half-widths, where the study has replicates) and the dashed line ``sigma = mu_star``.

    Raises
    ------
    KeyError
        No checkpoint has ``mu_star_checkpoint`` (not a Morris study).
    """
    cps = _has_plane(tree)
    if not cps:
        raise KeyError(
            "no 'mu_star_checkpoint' in these results: the Morris plane needs a kind = 'morris' study"
        )
    cols = min(_COLUMNS, len(cps))
    rows = math.ceil(len(cps) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.4 * cols, 3.1 * rows), squeeze=False, layout="constrained"
    )
    for ax, cp in zip(axes.flat, cps, strict=False):
        ds = tree[cp].dataset
        factors = [str(f) for f in ds["factor"].values]
        x, y = ds["mu_star_checkpoint"].values, ds["sigma_checkpoint"].values
        xe = ds["mu_star_conf_checkpoint"].values if "mu_star_conf_checkpoint" in ds else None
        ye = ds["sigma_conf_checkpoint"].values if "sigma_conf_checkpoint" in ds else None
        ax.errorbar(x, y, xerr=_bars(xe), yerr=_bars(ye), fmt="o", ms=4, lw=0.8, capsize=2)
        for f, xi, yi in zip(factors, x, y, strict=True):
            if np.isfinite(xi) and np.isfinite(yi):
                ax.annotate(f, (xi, yi), fontsize=6.5, xytext=(3, 3), textcoords="offset points")
        top = np.nanmax(np.concatenate([x, y, [1e-12]]))
        ax.plot([0, top], [0, top], ls="--", lw=0.7, color="0.5")
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.set_title(cp, fontsize=9)
        ax.set_xlabel("mu_star (mean |elementary effect|)", fontsize=7)
        ax.set_ylabel("sigma (spread of the effects)", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(cps) :]:
        ax.set_axis_off()
    fig.suptitle(
        "Morris plane per checkpoint (aggregated over its activations; ± 95 % half-widths)", fontsize=10
    )
    return fig


def _bars(conf: np.ndarray | None) -> np.ndarray | None:
    if conf is None or not np.isfinite(conf).any():
        return None
    return np.nan_to_num(conf, nan=0.0)


_INTRO = (
    "Elementary effects (Morris screening): per checkpoint, each factor's mean absolute change of the "
    "activations when it alone moves by one step (mu_star, averaged over the checkpoint's activations) "
    "against the spread of those changes (sigma, root mean square over the activations). Factors near the "
    "origin can be fixed; a factor above the dashed line sigma = mu_star acts mostly through interactions "
    "or non-linearly. Each factor costs one forward per trajectory, so screening many augmentations is "
    "cheap; quantify the ones that matter with a Sobol or Shapley study (augsens screen)."
)


def screening_section(results: Sequence[tuple[str, xr.DataTree]]) -> str:
    """The report's "Morris screening" section: :func:`morris_plane` of every study that has one, as
    embedded PNG images ("" when no study has any)."""

    parts = []
    for name, tree in results:
        if _has_plane(tree):
            title = f"{name}: Morris plane"
            parts.append(
                f'<h3 class="morris" data-study="{html.escape(name)}">{html.escape(title)}</h3>'
                + figure_html(morris_plane(tree), title)
            )
    if not parts:
        return ""
    return f"<p>{html.escape(_INTRO)}</p>" + "\n".join(parts)

"""Which factor dominates each activation: the share of a checkpoint's elements each factor leads.

The whole-checkpoint index (``<measure>_checkpoint``) says which factor explains most of a checkpoint's
variance *in total*; it can hide a checkpoint split between factors (half its elements driven by hue, half
by the crop).  Here every element (channel × position) votes for the factor with its largest index, and
each factor's ``share`` is the fraction of the checkpoint's elements it leads.

The indices are estimates, so a vote can be noise.  With the 95 % half-widths ``h`` of the study's
replicates, a lead is *separated* when the leader's interval lies above the runner-up's
(``v_1 - h_1 > v_2 + h_2``), and a factor *reaches* the lead of an element when its interval meets the
leader's (``v_f + h_f >= v_1 - h_1``).  The share a factor leads at the study's precision is then
bracketed::

    share_separated <= share <= share_reachable

(the elements it leads beyond doubt, and those it could lead).  Elements without a half-width count as
not separated and reachable by every factor; without half-widths at all (one replicate) both bounds are
NaN.  Elements with a non-finite index are left out (``n_elements`` counts those used).

Run it as ``augsens dominance RESULTS... --out DIR``; ``augsens report`` then shows its section.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
import xarray as xr
from matplotlib.figure import Figure

from augsens.analysis.protocol import (
    LIST_HELP,
    Analysis,
    OutOption,
    ResultsArgument,
    list_values,
    register,
    require_results,
)
from augsens.errors import UnknownNameError, UserInputError
from augsens.plot.figures import save_figure
from augsens.schema import Results, read_results

__all__ = ["dominance", "dominance_figure", "dominance_report", "ANALYSIS"]

#: Measures used, in this order, where the results hold them.
MEASURES = ("shapley", "ST", "S1")


def _shares(values: np.ndarray, conf: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """``(share, share_separated, share_reachable, n)`` of factors × elements ``values`` (``conf`` alike)."""
    n_factors = values.shape[0]
    keep = np.isfinite(values).all(axis=0)
    v = values[:, keep]
    n = v.shape[1]
    if n == 0:
        nan = np.full(n_factors, np.nan)
        return nan, nan, nan, n
    lead = np.argmax(v, axis=0)
    cols = np.arange(n)
    counts = np.bincount(lead, minlength=n_factors)
    if conf is None:
        nan = np.full(n_factors, np.nan)
        return counts / n, nan, nan, n
    h = conf[:, keep]
    top_low = v[lead, cols] - h[lead, cols]
    runner_up = np.where(np.arange(n_factors)[:, None] == lead, -np.inf, v + h)
    # a NaN half-width makes both comparisons False: not separated, and reachable by everyone
    separated = top_low > np.max(np.where(np.isnan(runner_up), np.inf, runner_up), axis=0)
    reachable = ~(v + h < top_low)
    sep_counts = np.bincount(lead[separated], minlength=n_factors)
    return counts / n, sep_counts / n, reachable.sum(axis=1) / n, n


def dominance(
    results: Results | xr.DataTree | str | Path,
    *,
    measures: Sequence[str] | None = None,
    factors: Sequence[str] | None = None,
) -> xr.Dataset:
    """The share of each checkpoint's elements that each factor leads, with its bracket.

    Parameters
    ----------
    results : Results, DataTree or path
        A study's results (:func:`augsens.schema.read_results` reads any of them).
    measures : sequence of str, optional
        Among ``shapley``, ``ST``, ``S1`` (default: every one the results hold).
    factors : sequence of str, optional
        Factors that compete for the lead (default: all); e.g. the augmentations only, leaving out
        ``image`` and ``order``.

    Returns
    -------
    xarray.Dataset
        Dimensions ``(measure, checkpoint, factor)``: ``share``, ``share_separated``, ``share_reachable``
        (see the module docstring); ``n_elements`` ``(measure, checkpoint)``; coordinate ``depth`` (relative
        depth of each checkpoint).

    Raises
    ------
    UserInputError
        No measure of ``measures`` in the results, fewer than two factors, or an unknown factor.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> maps = xr.Dataset(
    ...     {"S1": (("factor", "unit"), [[0.6, 0.4], [0.2, 0.35]]),
    ...      "S1_conf": (("factor", "unit"), [[0.1, 0.1], [0.1, 0.1]])},
    ...     coords={"factor": ["a", "b"]},
    ... )
    >>> ds = dominance(xr.DataTree.from_dict({"fc": maps}))
    >>> ds["share"].sel(measure="S1", checkpoint="fc").values.tolist()
    [1.0, 0.0]
    >>> ds["share_separated"].sel(measure="S1", checkpoint="fc").values.tolist()
    [0.5, 0.0]
    >>> ds["share_reachable"].sel(measure="S1", checkpoint="fc").values.tolist()
    [1.0, 0.5]
    """
    res = read_results(results)
    available = [m for m in MEASURES if any(m in ds.data_vars for _, ds in res.nodes())]
    chosen = available if measures is None else [m for m in measures if m in available]
    if not chosen:
        raise UserInputError(
            f"these results hold none of the measures {list(measures or MEASURES)!r} (they have "
            f"{available!r}): pass results of a sobol or shapley study"
        )
    checkpoints = [c for c, ds in res.nodes() if any(m in ds.data_vars for m in chosen)]
    names = [str(f) for f in res.node(checkpoints[0])["factor"].values]
    if factors is not None:
        unknown = [f for f in factors if f not in names]
        if unknown:
            raise UnknownNameError(f"factors {unknown!r} are not in these results: available {names!r}")
        names = [f for f in names if f in factors]
    if len(names) < 2:
        raise UserInputError(f"dominance needs at least two factors to compare, got {names!r}")
    shape = (len(chosen), len(checkpoints), len(names))
    out = {k: np.full(shape, np.nan) for k in ("share", "share_separated", "share_reachable")}
    n_elements = np.zeros(shape[:2], dtype=np.int64)
    for j, c in enumerate(checkpoints):
        ds = res.node(c)
        for i, m in enumerate(chosen):
            if m not in ds.data_vars:
                continue
            values = ds[m].sel(factor=names)
            flat = values.values.reshape(len(names), -1)
            conf = ds.get(f"{m}_conf")
            h = None if conf is None else conf.sel(factor=names).values.reshape(len(names), -1)
            share, separated, reachable, n = _shares(flat, h)
            out["share"][i, j], out["share_separated"][i, j], out["share_reachable"][i, j] = (
                share,
                separated,
                reachable,
            )
            n_elements[i, j] = n
    dims = ("measure", "checkpoint", "factor")
    depths = res.depths()
    return xr.Dataset(
        {**{k: (dims, v) for k, v in out.items()}, "n_elements": (dims[:2], n_elements)},
        coords={
            "measure": chosen,
            "checkpoint": checkpoints,
            "factor": names,
            "depth": ("checkpoint", [depths[c] for c in checkpoints]),
        },
        attrs={"study": res.name, "model": res.info.model, "kind": res.info.kind},
    )


def dominance_figure(ds: xr.Dataset, measure: str, *, title: str = "") -> Figure:
    """Stacked bars, one per checkpoint (input → output): each factor's share of the elements it leads,
    the separated part solid and the rest pale (the reachable shares are in the table)."""
    sel = ds.sel(measure=measure)
    checkpoints = [str(c) for c in sel["checkpoint"].values]
    x = np.arange(len(checkpoints))
    fig = Figure(figsize=(max(4.0, 0.8 * len(checkpoints) + 2.5), 3.6))
    ax = fig.add_subplot()
    bottom = np.zeros(len(checkpoints))
    for k, factor in enumerate(sel["factor"].values):
        share = np.nan_to_num(sel["share"].sel(factor=factor).values)
        separated = np.nan_to_num(sel["share_separated"].sel(factor=factor).values)
        colour = f"C{k % 10}"
        ax.bar(x, separated, bottom=bottom, color=colour, width=0.7, label=str(factor))
        ax.bar(x, share - separated, bottom=bottom + separated, color=colour, alpha=0.35, width=0.7)
        bottom += share
    ax.set_xticks(x, checkpoints, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"share of elements led ({measure})")
    ax.set_title(title or f"Dominant factor per element: {measure}", fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.set_layout_engine("constrained")
    return fig


def dominance_report(
    results_dirs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    measures: Sequence[str] | None = None,
    factors: Sequence[str] | None = None,
) -> list[Path]:
    """Write ``dominance.csv`` (study, measure, checkpoint, depth, factor, shares, n_elements) and one
    figure per study and measure (:func:`dominance_figure`) into ``out_dir``; return their paths."""
    if not results_dirs:
        raise UserInputError("no results folders given: pass at least one results folder")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frames, figures = [], []
    for folder in results_dirs:
        ds = dominance(read_results(folder), measures=measures, factors=factors)
        study = str(ds.attrs["study"])
        frame = ds[["share", "share_separated", "share_reachable", "n_elements"]].to_dataframe().reset_index()
        frame.insert(0, "study", study)
        frames.append(frame)
        for m in ds["measure"].values:
            fig = dominance_figure(ds, str(m), title=f"{study}: dominant factor per element ({m})")
            figures.append(save_figure(fig, out / f"dominance_{study}_{m}.png", dpi=110))
    csv = out / "dominance.csv"
    pd.concat(frames, ignore_index=True).to_csv(csv, index=False)
    return [csv, *figures]


def _run(
    results: ResultsArgument,
    out: OutOption,
    measures: Annotated[
        list[str] | None, typer.Option(help="shapley, ST, S1 (default: those present)." + LIST_HELP)
    ] = None,
    factors: Annotated[
        list[str] | None, typer.Option(help="Factors that compete for the lead (default: all)." + LIST_HELP)
    ] = None,
) -> list[Path]:
    """Share of each checkpoint's elements that each factor leads, bracketed by the study's intervals."""
    require_results(results)
    return dominance_report(results, out, measures=list_values(measures), factors=list_values(factors))


ANALYSIS = register(
    Analysis(
        "dominance",
        "Dominant factor per element",
        "Each element (channel × position) of a checkpoint is led by the factor with its largest index; bars "
        "show the share of elements each factor leads, input to output. Solid: leads separated by the 95 % "
        "intervals (the leader's interval above the runner-up's); pale: leads within the noise. The table "
        "also gives the share each factor could lead (its interval reaches the leader's).",
        _run,
    )
)

"""Correlation analysis of sensitivity maps (the paper's notebooks 5-1; ``docs/paper.md`` §12).

At every spatial position of a checkpoint, the Spearman correlation between two factors' sensitivities is
taken **across channels** (the observations); the per-position matrices are then summarised by their mean
and standard deviation over positions.  Three uses:

* within a measure (Shapley vs Shapley of other factors, ...): a factor x factor matrix;
* across measures (e.g. Shapley of every factor vs S1 of every factor);
* against the coefficient of variation ``sqrt(max(var, 0)) / (|mean| + 1e-5)`` of the same study.

A fully connected checkpoint (dims ``("factor", "unit")``) has one position, so its std is 0.

Positions where a factor's values are constant across channels, or not all finite, have no correlation:
they are left out of the mean and std (the authors set them to 0, which biases the mean towards 0), and
``n_positions`` counts the positions that entered each coefficient.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, cast

import numpy as np
import pandas as pd
import scipy.stats
import typer
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from augsens.analysis.factor_maps import as_factor_maps
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
from augsens.schema import Results, ResultsInfo, read_results

__all__ = [
    "MEASURES",
    "coefficient_of_variation",
    "positionwise_correlation",
    "cov_correlation",
    "correlation_analysis",
    "plot_heatmap",
    "correlation_report",
]

#: Sensitivity variables the analyses look for in a results tree, in this order.
MEASURES = ("shapley", "S1", "ST", "rank_biserial", "point_biserial")
#: Guard of the authors' CoV denominator (paper section 2.5).
COV_EPS = 1e-5


def coefficient_of_variation(mean: xr.DataArray, var: xr.DataArray, *, eps: float = COV_EPS) -> xr.DataArray:
    """``sqrt(max(var, 0)) / (|mean| + eps)``, the paper's CoV (section 2.5).

    Parameters
    ----------
    mean, var : xarray.DataArray
        Moments per activation element (same dims).
    eps : float
        Guard of the denominator. Default: 1e-5.

    Returns
    -------
    xarray.DataArray
        CoV with the dims of ``mean``.
    """
    # numpy ufuncs on a DataArray return a DataArray (__array_ufunc__); numpy's stubs say ndarray
    return cast(xr.DataArray, np.sqrt(var.clip(min=0))) / (abs(mean) + eps)


def _standardised_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks along axis 1 (average ties), centred and scaled to unit norm; NaN where undefined."""
    finite = np.isfinite(values).all(axis=1, keepdims=True)
    ranks = scipy.stats.rankdata(np.where(np.isfinite(values), values, 0.0), axis=1)
    ranks = ranks - ranks.mean(axis=1, keepdims=True)
    norm = np.sqrt((ranks * ranks).sum(axis=1, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = ranks / norm
    # Constant columns (norm 0) and columns with a non-finite value have no Spearman coefficient.
    return np.where(finite & (norm > 0), z, np.nan)


def positionwise_correlation(maps: xr.DataArray, other: xr.DataArray | None = None) -> xr.Dataset:
    """Spearman correlation between factors across channels, at every position, and its summary.

    Parameters
    ----------
    maps : xarray.DataArray
        Sensitivities, dims ``("factor", "channel", "y", "x")`` or ``("factor", "unit")`` (a contrast map's
        ``"augmentation"`` dim stands for ``"factor"``).
    other : xarray.DataArray, optional
        Second measure on the same channels and positions (its factors may differ). Default: ``maps``.

    Returns
    -------
    xarray.Dataset
        ``rho`` (dims ``factor``, ``factor2``, then the position dims): the per-position coefficients;
        ``mean``, ``std`` (dims ``factor``, ``factor2``): mean and population std over positions where
        the coefficient exists; ``n_positions``: how many positions that is.

    Raises
    ------
    ValueError
        No factor or channel dim, or ``other`` on different channels or positions.
    """
    a = as_factor_maps(maps)
    b = a if other is None else as_factor_maps(other)
    if a.shape[1:] != b.shape[1:] or a.dims[1:] != b.dims[1:]:
        raise UserInputError(
            "the two measures must share channels and positions: got dims "
            f"{a.dims[1:]!r} shape {a.shape[1:]!r} and dims {b.dims[1:]!r} shape {b.shape[1:]!r}; compare "
            "results of the same network and checkpoints (e.g. a Sobol and a Shapley study of one model)"
        )
    pos_dims = a.dims[2:]
    pos_shape = a.shape[2:]
    za = _standardised_ranks(a.values.reshape(a.shape[0], a.shape[1], -1).astype(np.float64))
    zb = (
        za
        if other is None
        else _standardised_ranks(b.values.reshape(b.shape[0], b.shape[1], -1).astype(np.float64))
    )
    rho = np.einsum("fcp,gcp->fgp", za, zb)
    rho = np.clip(rho, -1.0, 1.0)
    valid = np.isfinite(rho)
    n = valid.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid, rho, 0.0).sum(axis=-1) / n
        std = np.sqrt(np.where(valid, (rho - mean[..., None]) ** 2, 0.0).sum(axis=-1) / n)
    coords = {
        "factor": a["factor"].values,
        "factor2": b["factor"].values,
        **{d: a[d].values for d in pos_dims if d in a.coords},
    }
    return xr.Dataset(
        {
            "rho": (("factor", "factor2", *pos_dims), rho.reshape(rho.shape[0], rho.shape[1], *pos_shape)),
            "mean": (("factor", "factor2"), mean),
            "std": (("factor", "factor2"), std),
            "n_positions": (("factor", "factor2"), n),
        },
        coords=coords,
    )


def cov_correlation(maps: xr.DataArray, cov: xr.DataArray) -> xr.Dataset:
    """Spearman correlation across channels, per position, between each factor's map and the CoV map.

    Parameters
    ----------
    maps : xarray.DataArray
        Sensitivities, dims ``("factor", "channel", "y", "x")`` or ``("factor", "unit")``.
    cov : xarray.DataArray
        Coefficient of variation of the same checkpoint, dims ``("channel", "y", "x")`` or ``("unit",)``.

    Returns
    -------
    xarray.Dataset
        As :func:`positionwise_correlation` with the ``factor2`` dim dropped: ``rho`` (factor, positions),
        ``mean``, ``std``, ``n_positions`` (factor).
    """
    out = positionwise_correlation(maps, cov.expand_dims(factor=["cov"]))
    return out.isel(factor2=0, drop=True)


def _collect(
    trees: Mapping[str, xr.DataTree], measures: Sequence[str] | None, factors: Sequence[str] | None
) -> tuple[dict[str, dict[str, xr.DataArray]], dict[str, dict[str, xr.DataArray]]]:
    """Per checkpoint: ``{label: factor maps}`` and ``{label: CoV map of the measure's own study}``."""
    wanted = list(MEASURES if measures is None else measures)
    holders = {v: sum(any(v in t[c].data_vars for c in t.children) for t in trees.values()) for v in wanted}
    maps: dict[str, dict[str, xr.DataArray]] = {}
    covs: dict[str, dict[str, xr.DataArray]] = {}
    seen: set[str] = set()  # factors of the selected measures, to name the unknown ones in ``factors``
    for study, tree in trees.items():
        for c, ds in Results.of(tree).nodes():
            if "cov" in ds.data_vars and "factor" not in ds["cov"].dims:
                cov = ds["cov"]
            elif "mean" in ds.data_vars and "var" in ds.data_vars:
                cov = coefficient_of_variation(ds["mean"], ds["var"])
            else:
                cov = None
            for v in wanted:
                if v not in ds.data_vars:
                    continue
                # A name found in several studies (e.g. S1 of set 1 and of set 2) is prefixed by its study.
                label = v if holders[v] <= 1 else f"{study}:{v}"
                da = as_factor_maps(ds[v])
                seen.update(str(f) for f in da["factor"].values)
                if factors is not None:
                    keep = [f for f in da["factor"].values if f in set(factors)]
                    da = da.sel(factor=keep)
                maps.setdefault(c, {})[label] = da
                if cov is not None:
                    covs.setdefault(c, {})[label] = cov
    if not maps:
        raise UserInputError(
            f"no measure among {wanted!r} found in the results {list(trees)!r}; "
            "pass measures= naming variables of the results tree"
        )
    unknown = [f for f in factors or () if f not in seen]
    if unknown:
        raise UnknownNameError(
            f"factors {unknown!r} are in none of the maps; available: {sorted(seen)!r}. Name factors of "
            "these results"
        )
    return maps, covs


def correlation_analysis(
    results: xr.DataTree | Mapping[str, xr.DataTree],
    *,
    measures: Sequence[str] | None = None,
    factors: Sequence[str] | None = None,
    cross: bool = True,
    cov: bool = True,
) -> xr.DataTree:
    """Within-measure, cross-measure and CoV correlations of every checkpoint.

    Parameters
    ----------
    results : xarray.DataTree or mapping of str to DataTree
        One results tree or several, keyed by a study label (measures of a Sobol study and of a Shapley
        study are compared across trees).  A variable found in several trees is labelled
        ``"<study>:<variable>"``.
    measures : sequence of str, optional
        Variables to analyse. Default: those of :data:`MEASURES` present.
    factors : sequence of str, optional
        Keep only these factors (e.g. the augmentations, without order / image / partition).
        Default: all.
    cross : bool
        Compute every pair of measures. Default: True.
    cov : bool
        Correlate each measure with the CoV of its own study (needs ``cov`` or ``mean`` and ``var``).
        Default: True.

    Returns
    -------
    xarray.DataTree
        ``/<checkpoint>/within/<measure>``, ``/<checkpoint>/cross/<a>_vs_<b>`` and
        ``/<checkpoint>/cov/<measure>``, each a Dataset from :func:`positionwise_correlation` or
        :func:`cov_correlation`.
    """
    trees = {"results": results} if isinstance(results, xr.DataTree) else dict(results)
    maps, covs = _collect(trees, measures, factors)
    nodes: dict[str, xr.Dataset] = {"/": xr.Dataset(attrs=ResultsInfo(checkpoints=tuple(maps)).to_attrs())}
    for c, by_measure in maps.items():
        labels = list(by_measure)
        for m in labels:
            nodes[f"{c}/within/{_node(m)}"] = positionwise_correlation(by_measure[m])
            if cov and m in covs.get(c, {}):
                nodes[f"{c}/cov/{_node(m)}"] = cov_correlation(by_measure[m], covs[c][m])
        if cross:
            for i, m1 in enumerate(labels):
                for m2 in labels[i + 1 :]:
                    nodes[f"{c}/cross/{_node(m1)}_vs_{_node(m2)}"] = positionwise_correlation(
                        by_measure[m1], by_measure[m2]
                    )
    return xr.DataTree.from_dict(nodes)


def _node(label: str) -> str:
    return label.replace("/", "_").replace(":", "__")


def plot_heatmap(
    matrix: np.ndarray | xr.DataArray,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    *,
    title: str = "",
    vmin: float = -1.0,
    vmax: float = 1.0,
    cmap: str = "RdBu_r",
    annotate: bool = True,
    fmt: str = "{:.2f}",
) -> Figure:
    """Annotated heatmap (RdBu_r on [-1, 1] by default), drawn without pyplot (Agg canvas).

    Parameters
    ----------
    matrix : array [rows, cols] or xarray.DataArray
        Values; NaN cells are left blank. A DataArray supplies its coordinates as labels.
    row_labels, col_labels : sequence of str, optional
        Tick labels. Default: the DataArray coordinates, else indices.
    title : str
        Axes title.
    vmin, vmax : float
        Colour limits. Default: -1, 1.
    cmap : str
        Matplotlib colormap name. Default: ``"RdBu_r"``.
    annotate : bool
        Write each value in its cell. Default: True.
    fmt : str
        Format of the annotations. Default: two decimals.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(matrix, xr.DataArray):
        if row_labels is None:
            row_labels = [str(v) for v in matrix[matrix.dims[0]].values]
        if col_labels is None:
            col_labels = [str(v) for v in matrix[matrix.dims[1]].values]
        matrix = matrix.values
    values = np.asarray(matrix, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"plot_heatmap needs a 2-D matrix, got shape {values.shape!r}")
    rows, cols = values.shape
    row_labels = [str(i) for i in range(rows)] if row_labels is None else list(row_labels)
    col_labels = [str(i) for i in range(cols)] if col_labels is None else list(col_labels)
    fig = Figure(figsize=(1.2 + 0.55 * cols, 1.0 + 0.45 * rows))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(cols), col_labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(rows), row_labels, fontsize=8)
    if annotate:
        mid = (vmin + vmax) / 2
        span = (vmax - vmin) / 2 or 1.0
        for i in range(rows):
            for j in range(cols):
                v = values[i, j]
                if np.isfinite(v):
                    # White text on the saturated ends of the map, black near its middle.
                    colour = "white" if abs(v - mid) > 0.6 * span else "black"
                    ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def correlation_report(
    results_dirs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    measures: Sequence[str] | None = None,
    factors: Sequence[str] | None = None,
) -> list[Path]:
    """Write the correlation analysis of one or more results folders as CSV tables and heatmaps.

    Parameters
    ----------
    results_dirs : sequence of str or Path
        Results folders (each holding ``results.zarr``); folder names label the studies.
    out_dir : str or Path
        Output folder (created).
    measures, factors : sequence of str, optional
        As in :func:`correlation_analysis`.

    Returns
    -------
    list of Path
        ``correlation_within.csv``, ``correlation_cross.csv``, ``correlation_cov.csv`` (long tables:
        checkpoint, measure(s), factor, factor2, mean, std, n_positions) and the PNG heatmaps of the mean
        coefficients, one per checkpoint and measure, measure pair and CoV.
    """
    if not results_dirs:
        raise UserInputError("results_dirs is empty: pass at least one results folder")
    trees = {r.name: r.tree for r in map(read_results, results_dirs)}
    tree = correlation_analysis(trees, measures=measures, factors=factors)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    tables: dict[str, list[pd.DataFrame]] = {"within": [], "cross": [], "cov": []}
    for c in Results.of(tree).checkpoints:
        for kind in ("within", "cross", "cov"):
            if kind not in tree[c].children:
                continue
            for name, node in tree[c][kind].children.items():
                ds = node.to_dataset()
                frame = ds[["mean", "std", "n_positions"]].to_dataframe().reset_index()
                frame.insert(0, "measure", name)
                frame.insert(0, "checkpoint", c)
                tables[kind].append(frame)
                mean = ds["mean"] if kind != "cov" else ds["mean"].expand_dims(factor2=["CoV"]).T
                fig = plot_heatmap(mean, title=f"{c}: {name} ({kind}), mean over positions")
                stem = f"correlation_{kind}_{_node(c)}_{name}.png"
                written.append(save_figure(fig, out / stem, dpi=120))
    csvs = []
    for kind, frames in tables.items():
        if frames:
            path = out / f"correlation_{kind}.csv"
            pd.concat(frames, ignore_index=True).to_csv(path, index=False)
            csvs.append(path)
    return [*csvs, *written]


def _run(
    results: ResultsArgument,
    out: OutOption,
    measures: Annotated[list[str] | None, typer.Option(help="Measures (default: all)." + LIST_HELP)] = None,
    factors: Annotated[list[str] | None, typer.Option(help="Factors (default: all)." + LIST_HELP)] = None,
) -> list[Path]:
    """Spearman correlations between factors' sensitivity maps (within, across measures, vs CoV)."""
    require_results(results)
    return correlation_report(results, out, measures=list_values(measures), factors=list_values(factors))


ANALYSIS = register(
    Analysis(
        "correlation",
        "Correlation analysis",
        "At each spatial position, the Spearman correlation across channels between two factors' "
        "sensitivity maps; mean and spread over positions, per checkpoint and measure; across measures; "
        "and against the coefficient of variation.",
        _run,
    )
)

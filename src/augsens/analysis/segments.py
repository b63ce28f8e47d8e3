"""Single-channel (HSV) segments compared with the full network (the paper's Figure 5, notebook 5-2).

Experimental series 3 of the paper (``docs/paper.md`` §10).  A
study run on a :class:`~augsens.models.segments.SegmentBank` (network segments fed one HSV channel of the
image; see :mod:`augsens.models.segments`) gives sensitivity maps per segment x channel branch.
:func:`segment_comparison` compares the correlation pattern of the factors' sensitivities *across the
pixels of each unit* between the HSV segments and the same units inside the full network;
:func:`layer_comparison` compares those patterns between layers, and :func:`segment_report` writes both as
tables and figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal, cast

import numpy as np
import pandas as pd
import scipy.stats
import typer
import xarray as xr

from augsens.analysis.correlation import plot_heatmap
from augsens.analysis.factor_maps import as_factor_maps
from augsens.analysis.protocol import (
    LIST_HELP,
    Analysis,
    OutOption,
    list_values,
    register,
    require_results,
)
from augsens.errors import UnknownNameError, UserInputError
from augsens.models.segments import HSV_CHANNELS, SegmentSpec, example_segments, load_segments
from augsens.plot.figures import save_figure

__all__ = [
    "pixel_correlation",
    "segment_comparison",
    "layer_comparison",
    "segment_report",
]


def _spearman_over_pixels(values: np.ndarray) -> np.ndarray:
    """Spearman matrix between the rows of ``values`` [F, P] (observations = columns); NaN if constant."""
    ranks = scipy.stats.rankdata(values, axis=1)
    ranks -= ranks.mean(axis=1, keepdims=True)
    norm = np.sqrt((ranks * ranks).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = ranks / norm[:, None]
    z[norm == 0] = np.nan
    return np.clip(z @ z.T, -1.0, 1.0)


def pixel_correlation(maps: xr.DataArray, var: xr.DataArray | None = None) -> xr.Dataset:
    """Per unit, the Spearman correlation between factors with the unit's pixels as observations.

    Parameters
    ----------
    maps : xarray.DataArray
        Sensitivities, dims ``("factor", "channel", "y", "x")``.
    var : xarray.DataArray, optional
        Output variance, dims ``("channel", "y", "x")``.  Pixels with zero variance carry no sensitivity
        and are left out; a unit with zero variance at every pixel is constant.

    Returns
    -------
    xarray.Dataset
        ``rho`` (dims ``channel``, ``factor``, ``factor2``), NaN for constant units; ``constant``
        (``channel``, bool): the unit's output never varies (zero variance everywhere) or no factor
        varies across its valid pixels; ``n_pixels`` (``channel``): pixels used (finite in every factor,
        non-zero variance).  A factor constant across the pixels of an otherwise varying unit gives NaN
        in its row and column only.
    """
    da = as_factor_maps(maps)
    if "channel" not in da.dims:
        raise UserInputError(
            f"pixel_correlation needs maps with a 'channel' dim and pixels, got dims {da.dims!r}: end each "
            "segment at a convolutional module (dims ('factor', 'channel', 'y', 'x'))"
        )
    n_factor, n_channel = da.shape[:2]
    values = da.values.reshape(n_factor, n_channel, -1).astype(np.float64)
    usable = np.asarray(np.isfinite(values).all(axis=0))
    if var is not None:
        usable &= var.transpose("channel", ...).values.reshape(n_channel, -1) > 0
    rho = np.full((n_channel, n_factor, n_factor), np.nan)
    constant = np.zeros(n_channel, dtype=bool)
    for c in range(n_channel):
        v = values[:, c, usable[c]]
        if v.shape[1] < 2 or np.all(v == v[:, :1]):
            constant[c] = True
            continue
        rho[c] = _spearman_over_pixels(v)
    names = da["factor"].values
    return xr.Dataset(
        {
            "rho": (("channel", "factor", "factor2"), rho),
            "constant": ("channel", constant),
            "n_pixels": ("channel", usable.sum(axis=1)),
        },
        coords={"channel": da["channel"].values, "factor": names, "factor2": names},
    )


def _summary(rho: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware mean and std (ddof=1) over ``axis`` without warnings for all-NaN slices."""
    valid = np.isfinite(rho)
    n = valid.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid, rho, 0.0).sum(axis=axis) / n
        dev = np.where(valid, rho - np.expand_dims(mean, axis), 0.0)
        std = np.sqrt((dev * dev).sum(axis=axis) / (n - 1))
    return mean, std


def segment_comparison(
    segment_results: xr.DataTree,
    network_results: xr.DataTree,
    specs: Sequence[SegmentSpec],
    *,
    measures: Sequence[str] = ("shapley", "S1", "ST"),
    channels: Sequence[str] = HSV_CHANNELS,
) -> xr.DataTree:
    """Compare per-unit correlation patterns of HSV segments with the same units in the full network.

    Parameters
    ----------
    segment_results : xarray.DataTree
        Results of a study run on a :class:`SegmentBank` (checkpoints ``"<segment>_<channel>"``).
    network_results : xarray.DataTree
        Results of the same study on the full network, with each segment's :attr:`SegmentSpec.output_module`
        among its checkpoints.
    specs : sequence of SegmentSpec
        The segments of the bank.
    measures : sequence of str
        Sensitivity variables compared (where present in both). Default: ``("shapley", "S1", "ST")``.
    channels : sequence of str
        HSV channels of the bank. Default: all three.

    Returns
    -------
    xarray.DataTree
        ``/<segment>/<measure>`` Datasets with ``rho`` (dims ``source``, ``unit``, ``factor``, ``factor2``;
        sources = the HSV channels then ``"network"``), ``constant`` (``source``, ``unit``), ``mean_rho`` and
        ``std_rho`` (``source``, ``factor``, ``factor2``; over non-constant units, std with ddof=1),
        ``abs_diff_mean`` and ``abs_diff_std`` (``channel``, ``factor``, ``factor2``): ``|rho_HSV -
        rho_network|`` over units, and ``n_units`` (``source``) entering the means.

    Raises
    ------
    KeyError
        A branch or network checkpoint is missing from the results, or a channel is not an HSV channel.
    ValueError
        A segment ends at a checkpoint without a ``channel`` dim, or selects channels it does not have.
    """
    if not channels:
        raise UserInputError(f"channels is empty: name at least one of {HSV_CHANNELS!r}")
    unknown = [c for c in channels if c not in HSV_CHANNELS]
    if unknown:
        raise UnknownNameError(f"unknown HSV channels {unknown!r}: choose among {HSV_CHANNELS!r}")
    nodes: dict[str, xr.Dataset] = {}
    for spec in specs:
        net_node = spec.output_module
        if net_node not in network_results.children:
            raise UnknownNameError(
                f"segment {spec.name!r}: network results lack checkpoint {net_node!r} "
                f"(the segment's last module); available: {list(network_results.children)!r}. Pass the "
                "results of a study on the network with that module among its checkpoints"
            )
        net_ds = network_results[net_node].to_dataset()
        if "channel" not in net_ds.dims:
            raise UserInputError(
                f"segment {spec.name!r} ends at {net_node!r}, whose results have no 'channel' dim (dims "
                f"{tuple(net_ds.dims)!r}): end each segment at a convolutional module"
            )
        size = net_ds.sizes["channel"]
        beyond = [c for c in spec.channels if c >= size]
        if beyond:
            raise UserInputError(
                f"segment {spec.name!r}: channels {beyond!r} are beyond the {size} channels "
                f"of {net_node!r} in the network results: list channels of that module, or pass the results "
                "of the network the segment file was written for"
            )
        net_ds = net_ds.isel(channel=list(spec.channels))
        for m in measures:
            per_source = {}
            for ch in channels:
                branch = f"{spec.name}_{ch}"
                if branch not in segment_results.children:
                    raise UnknownNameError(
                        f"segment results lack branch {branch!r}; "
                        f"available: {list(segment_results.children)!r}. Pass the results of the study on "
                        "the segment bank built from this segment file, with these channels"
                    )
                ds = segment_results[branch].to_dataset()
                if m in ds.data_vars:
                    per_source[ch] = pixel_correlation(ds[m], ds["var"] if "var" in ds.data_vars else None)
            if m not in net_ds.data_vars or not per_source:
                continue
            per_source["network"] = pixel_correlation(
                net_ds[m], net_ds["var"] if "var" in net_ds.data_vars else None
            )
            sources = list(per_source)
            net_factors = [str(f) for f in per_source["network"]["factor"].values]
            for s in sources[:-1]:
                own = [str(f) for f in per_source[s]["factor"].values]
                if own != net_factors:
                    raise UserInputError(
                        f"segment {spec.name!r} ({s}, {m}): the segment results have factors {own!r}, the "
                        f"network results {net_factors!r}: compare the same study (augmentations, kind) "
                        "run on the segment bank and on the network"
                    )
            rho = np.stack([per_source[s]["rho"].values for s in sources])
            constant = np.stack([per_source[s]["constant"].values for s in sources])
            mean, std = _summary(rho, axis=1)
            diff = np.abs(rho[:-1] - rho[-1:])
            dmean, dstd = _summary(diff, axis=1)
            factor = per_source["network"]["factor"].values
            nodes[f"{spec.name}/{m}"] = xr.Dataset(
                {
                    "rho": (("source", "unit", "factor", "factor2"), rho),
                    "constant": (("source", "unit"), constant),
                    "mean_rho": (("source", "factor", "factor2"), mean),
                    "std_rho": (("source", "factor", "factor2"), std),
                    "abs_diff_mean": (("channel", "factor", "factor2"), dmean),
                    "abs_diff_std": (("channel", "factor", "factor2"), dstd),
                    "n_units": ("source", (~constant).sum(axis=1)),
                },
                coords={
                    "source": sources,
                    "channel": sources[:-1],
                    "unit": list(spec.channels),
                    "factor": factor,
                    "factor2": factor,
                },
            )
    return xr.DataTree.from_dict(nodes)


def layer_comparison(comparison: xr.DataTree, measure: str) -> xr.Dataset:
    """Layer x layer comparison of mean correlation patterns (HSV vs HSV and HSV vs network).

    Every (segment, source) pattern is the upper triangle of its ``mean_rho``.  Two patterns are compared
    by the mean absolute difference of their coefficients and by the Spearman correlation between them.

    Parameters
    ----------
    comparison : xarray.DataTree
        Output of :func:`segment_comparison`.
    measure : str
        Measure to compare.

    Returns
    -------
    xarray.Dataset
        ``mean_abs_diff`` and ``spearman`` (dims ``pattern``, ``pattern2``; labels ``"<segment>:<source>"``).
    """
    patterns: dict[str, np.ndarray] = {}
    for seg, node in comparison.children.items():
        if measure not in node.children:
            continue
        mean = cast(xr.DataArray, node[measure]["mean_rho"])
        iu = np.triu_indices(mean.sizes["factor"], k=1)
        for s in mean["source"].values:
            patterns[f"{seg}:{s}"] = mean.sel(source=s).values[iu]
    if not patterns:
        raise UnknownNameError(
            f"measure {measure!r} is in no segment of the comparison; name a measure of both results"
        )
    labels = list(patterns)
    k = len(labels)
    diff = np.full((k, k), np.nan)
    rho = np.full((k, k), np.nan)
    for i, a in enumerate(labels):
        for j, b in enumerate(labels):
            pa, pb = patterns[a], patterns[b]
            ok = np.isfinite(pa) & np.isfinite(pb)
            if ok.sum() >= 1:
                diff[i, j] = float(np.abs(pa[ok] - pb[ok]).mean())
            if ok.sum() >= 2 and np.ptp(pa[ok]) > 0 and np.ptp(pb[ok]) > 0:
                rho[i, j] = float(scipy.stats.spearmanr(pa[ok], pb[ok]).statistic)
    return xr.Dataset(
        {"mean_abs_diff": (("pattern", "pattern2"), diff), "spearman": (("pattern", "pattern2"), rho)},
        coords={"pattern": labels, "pattern2": labels},
    )


def segment_report(
    segment_dir: str | Path,
    network_dir: str | Path,
    segments: str | Path,
    out_dir: str | Path,
    *,
    measures: Sequence[str] = ("shapley", "S1", "ST"),
    channels: Sequence[str] = HSV_CHANNELS,
) -> list[Path]:
    """Figures and tables of :func:`segment_comparison` and :func:`layer_comparison`.

    Parameters
    ----------
    segment_dir, network_dir : str or Path
        Results folders of the study on the segment bank and on the full network.
    segments : str or Path
        The segment JSON file the bank was built from.
    out_dir : str or Path
        Output folder (created).
    measures, channels : sequence of str
        As in :func:`segment_comparison`.

    Returns
    -------
    list of Path
        ``segments_summary.csv`` (segment, measure, source, factor pair, mean and std of rho, mean |diff| to
        the network, units used), then heatmaps: mean rho per segment x measure x source, and the layer
        comparison per measure.
    """
    from augsens.schema import open_tree

    specs = load_segments(segments)
    comparison = segment_comparison(
        open_tree(segment_dir), open_tree(network_dir), specs, measures=measures, channels=channels
    )
    if not comparison.children:  # otherwise an empty table and no figure, without a word
        raise UserInputError(
            f"none of the measures {list(measures)!r} is in both the segment and the network results: "
            "name measures both studies computed, e.g. S1 and ST of a sobol study"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, written = [], []
    for seg, node in comparison.children.items():
        for m, leaf in node.children.items():
            ds = leaf.to_dataset()
            factors = [str(f) for f in ds["factor"].values]
            for s in ds["source"].values:
                for i, f in enumerate(factors):
                    for j in range(i + 1, len(factors)):
                        row = {
                            "segment": seg,
                            "measure": m,
                            "source": str(s),
                            "factor": f,
                            "factor2": factors[j],
                            "mean_rho": float(ds["mean_rho"].sel(source=s).values[i, j]),
                            "std_rho": float(ds["std_rho"].sel(source=s).values[i, j]),
                            "n_units": int(ds["n_units"].sel(source=s)),
                        }
                        if s != "network":
                            row["abs_diff_to_network"] = float(
                                ds["abs_diff_mean"].sel(channel=s).values[i, j]
                            )
                        rows.append(row)
                fig = plot_heatmap(
                    ds["mean_rho"].sel(source=s), title=f"{seg} {m} ({s}): mean Spearman over units"
                )
                written.append(save_figure(fig, out / f"segments_{seg}_{m}_{s}.png", dpi=120))
    for m in measures:
        try:
            lc = layer_comparison(comparison, m)
        except KeyError:
            continue
        fig = plot_heatmap(lc["spearman"], title=f"{m}: Spearman between mean correlation patterns")
        written.append(save_figure(fig, out / f"segments_layers_{m}_spearman.png", dpi=120))
        fig = plot_heatmap(
            lc["mean_abs_diff"],
            title=f"{m}: mean |difference| of patterns",
            vmin=0.0,
            vmax=1.0,
            cmap="viridis",
        )
        written.append(save_figure(fig, out / f"segments_layers_{m}_abs_diff.png", dpi=120))
    csv = out / "segments_summary.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return [csv, *written]


def _run(
    segment_results: Annotated[Path, typer.Argument(help="Results folder of the study on the segments.")],
    network_results: Annotated[Path, typer.Argument(help="Results folder of the same study on the network.")],
    segments_file: Annotated[str, typer.Option("--segments", help="Segment JSON, or alexnet / resnet18.")],
    out: OutOption,
    measures: Annotated[
        list[str] | None, typer.Option(help="Measures (default shapley,S1,ST)." + LIST_HELP)
    ] = None,
    channels: Annotated[
        list[str] | None, typer.Option(help="HSV channels (default hue,saturation,value)." + LIST_HELP)
    ] = None,
) -> list[Path]:
    """Compare single-channel (HSV) segments with the full network (correlation patterns)."""
    require_results([segment_results, network_results])
    path = (
        example_segments(cast(Literal["alexnet", "resnet18"], segments_file))
        if segments_file in ("alexnet", "resnet18")
        else segments_file
    )
    return segment_report(
        segment_results,
        network_results,
        path,
        out,
        measures=list_values(measures or "shapley,S1,ST") or (),
        channels=list_values(channels or "hue,saturation,value") or (),
    )


ANALYSIS = register(
    Analysis(
        "segments",
        "Single-channel (HSV) segments vs the network",
        "Network segments run standalone on one of the H, S, V channels of the augmented image; their "
        "correlation patterns between factors compared with those of the same units inside the network.",
        _run,
    )
)

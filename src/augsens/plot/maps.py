"""Figures of sensitivity results: depth profiles and per-unit sensitivity maps.

All functions take a results ``DataTree`` (:func:`augsens.open_results`) and return a matplotlib
``Figure`` (Agg backend, no display needed).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from augsens.schema import Results  # noqa: E402

__all__ = [
    "depth_profile",
    "contrast_profile",
    "top_unit_maps",
    "checkpoints_of",
    "measures_of",
    "MEASURE_TITLES",
]

MEASURE_TITLES = {
    "S1": "first-order Sobol index S1",
    "ST": "total Sobol index ST",
    "shapley": "Shapley effect (share of variance)",
}


def checkpoints_of(tree: xr.DataTree) -> list[str]:
    """Checkpoint node names in model order."""
    return list(Results.of(tree).checkpoints)


def measures_of(tree: xr.DataTree) -> list[str]:
    """Sensitivity measures present in the tree (S1, ST, shapley), in that order."""
    return Results.of(tree).measures()


def depth_profile(tree: xr.DataTree, measure: str, *, title: str | None = None) -> Figure:
    """Aggregated index per factor (lines) across checkpoints (x axis, input to output).

    The aggregated index of a checkpoint is the sum over its elements of the index numerators divided
    by the sum of their variances: the share of the checkpoint's total activation variance owed to
    each factor.
    """
    cps = checkpoints_of(tree)
    key = f"{measure}_checkpoint"
    rows = [tree[c].dataset[key] for c in cps if key in tree[c].dataset]
    if not rows:
        raise KeyError(f"no aggregated {measure!r} in these results (variable {key!r} missing)")
    data = xr.concat(rows, dim="checkpoint").assign_coords(
        checkpoint=[c for c in cps if key in tree[c].dataset]
    )
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) + 3), 4.2), layout="constrained")
    x = np.arange(data.sizes["checkpoint"])
    for f in data["factor"].values:
        ax.plot(x, data.sel(factor=f).values, marker="o", label=str(f))
    ax.set_xticks(x, data["checkpoint"].values, rotation=35, ha="right")
    ax.set_ylabel(MEASURE_TITLES.get(measure, measure))
    ax.set_xlabel("checkpoint (input → output)")
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_title(title or f"Depth profile: {MEASURE_TITLES.get(measure, measure)}")
    ax.legend(fontsize=8, ncols=2, frameon=False)
    return fig


def top_unit_maps(
    tree: xr.DataTree, measure: str, checkpoint: str, *, units: int = 4, factors: list[str] | None = None
) -> Figure:
    """For each factor, the spatial maps of the ``units`` channels most sensitive to it (by their
    aggregated per-channel index).

    Each factor (row) has its own colour scale, from 0 to the 99th percentile of its maps shown (at least
    0.01), written under its name: factors whose indices are small stay visible beside dominant ones.  A
    ``(channel, time)`` checkpoint (a network on 1-D signals) shows each channel's index over time as a
    curve on that scale."""
    ds = tree[checkpoint].dataset
    if measure not in ds:
        raise KeyError(f"checkpoint {checkpoint!r} has no {measure!r}; it has {sorted(ds.data_vars)!r}")
    da = ds[measure]
    if "channel" not in da.dims:
        raise ValueError(f"checkpoint {checkpoint!r} has no spatial maps (dims {da.dims!r})")
    agg = ds.get(f"{measure}_channel")
    names = factors or [str(f) for f in da["factor"].values]
    fig, axes = plt.subplots(
        len(names), units, figsize=(1.7 * units + 0.6, 1.7 * len(names)), squeeze=False, layout="constrained"
    )
    positions = [str(d) for d in da.dims if d not in ("factor", "channel")]
    for i, f in enumerate(names):
        score = agg.sel(factor=f).values if agg is not None else da.sel(factor=f).mean(positions).values
        order = np.argsort(np.nan_to_num(score, nan=-np.inf))[::-1][:units]
        # channels-last maps (y, x, channel) are drawn like conv maps: one image per channel
        chosen = da.sel(factor=f).isel(channel=[int(c) for c in order]).transpose("channel", *positions)
        maps = np.clip(chosen.values, 0, None)
        vmax = max(0.01, float(np.nanpercentile(maps, 99)))
        for j, ch in enumerate(order):
            ax = axes[i, j]
            if maps.ndim == 2:  # (channel, time): the index along time
                ax.plot(np.arange(maps.shape[1]), maps[j], color="tab:red", lw=0.9)
                ax.set_ylim(0, vmax * 1.05)
                ax.set_xlabel(positions[0], fontsize=6)
            else:
                ax.imshow(maps[j], cmap="Reds", vmin=0, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"ch {int(ch)}: {score[ch]:.2f}", fontsize=7)
        axes[i, 0].set_ylabel(f"{f}\n(0 – {vmax:.2f})", fontsize=8)
    fig.suptitle(
        f"{checkpoint}: most {measure}-sensitive units per factor (channel: aggregated index)", fontsize=10
    )
    return fig


def contrast_profile(tree: xr.DataTree, *, alpha: float = 0.05) -> Figure:
    """Treatment-control results across checkpoints: share of elements whose Benjamini-Yekutieli
    adjusted p-value is below ``alpha`` (left) and mean |rank-biserial correlation| (right), one line per
    augmentation."""
    cps = checkpoints_of(tree)
    fig, axes = plt.subplots(1, 2, figsize=(max(9.0, 1.2 * len(cps) + 4), 4.2), layout="constrained")
    x = np.arange(len(cps))
    augs = [str(a) for a in tree[cps[0]].dataset["augmentation"].values]
    for a in augs:
        sig = [float((tree[c].dataset["p_value_by"].sel(augmentation=a) < alpha).mean()) for c in cps]
        eff = [
            float(np.nanmean(np.abs(tree[c].dataset["rank_biserial"].sel(augmentation=a).values)))
            for c in cps
        ]
        axes[0].plot(x, sig, marker="o", label=a)
        axes[1].plot(x, eff, marker="o", label=a)
    for ax, label in zip(
        axes, (f"share of elements with BY p < {alpha}", "mean |rank-biserial r|"), strict=True
    ):
        ax.set_xticks(x, cps, rotation=35, ha="right")
        ax.set_ylabel(label)
        ax.set_xlabel("checkpoint (input → output)")
    axes[1].legend(fontsize=8, ncols=2, frameon=False)
    fig.suptitle("Treatment vs control: each augmentation alone against the original image")
    return fig

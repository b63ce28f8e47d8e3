"""The numbers behind the HTML explorer: per-study payloads of profiles, maps and channel tables.

Everything the page's viewer draws is computed here from a results ``DataTree`` and embedded in the page
as JSON; the browser only decodes and draws it.  Large maps are reduced to fit a size budget, and every
reduction is described in words for the page:

* spatial maps larger than ``max_side`` are pooled in ``k x k`` blocks.  Sensitivity indices are pooled
  as aggregated indices (the sum of numerators ``index x variance`` over the sum of variances, as for a
  channel or a checkpoint); mean, variance and CoV as plain block means.
* checkpoints with more than ``max_channels`` channels keep the maps of the channels with the largest
  activation variance; the channel tables always list every channel.
* a ``(channel, time)`` checkpoint of a network on 1-D signals is one channel x time heat map per factor
  (``kind = "sequence"``); time series longer than ``max_side ** 2`` steps are pooled in blocks of ``k``
  steps, as spatial maps are.

Map values are stored as ``uint16`` codes over the array's range (NaN as 65535), base64-encoded: about
2.7 bytes per value with a resolution of 1/65534 of the range.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np
import xarray as xr

from augsens.plot.maps import checkpoints_of
from augsens.schema import ResultsInfo

__all__ = [
    "study_payload",
    "INDEX_MEASURES",
    "PAIR_MEASURES",
    "MOMENT_MEASURES",
    "CONTRAST_MEASURES",
    "AUXILIARY_FACTORS",
    "REDUCTIONS",
]

INDEX_MEASURES = ("S1", "ST", "shapley")
# indices of pairs of factors (dims factor, factor2): one map per pair
PAIR_MEASURES = ("shapley_interaction", "S2")
MOMENT_MEASURES = ("mean", "var", "cov")
CONTRAST_MEASURES = ("rank_biserial", "point_biserial", "p_value_by")
# factors that are not augmentations: what the study controls rather than what it asks about
AUXILIARY_FACTORS = ("order", "image", "partition")
# (max_side, max_channels) tried in turn until a study's maps fit its budget of stored values
REDUCTIONS = ((32, 64), (24, 48), (16, 32), (12, 24), (8, 16), (4, 8))
_NAN_CODE = 65535


def _encode(values: np.ndarray) -> dict[str, Any]:
    """``values`` (any shape, float) -> base64 ``uint16`` codes with the range to decode them."""
    v = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(v)
    lo = float(v[finite].min()) if finite.any() else 0.0
    hi = float(v[finite].max()) if finite.any() else 0.0
    scale = (hi - lo) / (_NAN_CODE - 1) if hi > lo else 1.0
    codes = np.full(v.shape, _NAN_CODE, dtype="<u2")
    codes[finite] = np.rint((v[finite] - lo) / scale).astype("<u2")
    return {"lo": lo, "hi": hi, "data": base64.b64encode(codes.tobytes()).decode("ascii")}


def _display_range(values: np.ndarray, measure: str) -> tuple[float, float]:
    """Colour range: indices from 0 to their 99th percentile (at least 0.01), so small indices stay
    visible beside a few large ones; other measures over their 1st-99th percentiles."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    if measure in INDEX_MEASURES or measure in PAIR_MEASURES:
        return 0.0, max(0.01, float(np.percentile(finite, 99)))
    lo, hi = (float(q) for q in np.percentile(finite, [1, 99]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _pool(values: np.ndarray, k: int, weights: np.ndarray | None) -> np.ndarray:
    """Pool the last two axes of ``values`` in ``k x k`` blocks (edges padded with NaN): the
    ``weights``-weighted mean where weights are given (aggregated indices), else the plain mean."""
    if k == 1:
        return values
    *lead, h, w = values.shape
    hp, wp = math.ceil(h / k) * k, math.ceil(w / k) * k

    def blocks(a: np.ndarray) -> np.ndarray:
        padded = np.full((*a.shape[:-2], hp, wp), np.nan)
        padded[..., :h, :w] = a
        return padded.reshape(*a.shape[:-2], hp // k, k, wp // k, k)

    v = blocks(values)
    if weights is None:
        with np.errstate(invalid="ignore"):
            return np.nanmean(v, axis=(-3, -1)) if np.isfinite(v).any() else v.mean(axis=(-3, -1))
    wt = blocks(np.broadcast_to(weights, values.shape).astype(np.float64))
    ok = np.isfinite(v) & np.isfinite(wt)
    num = np.where(ok, v * wt, 0.0).sum(axis=(-3, -1))
    den = np.where(ok, wt, 0.0).sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _factor_dim(da: xr.DataArray) -> str | None:
    return next((d for d in ("factor", "augmentation") if d in da.dims), None)


def _map_measures(ds: xr.Dataset) -> list[str]:
    present = [m for m in (*INDEX_MEASURES, *CONTRAST_MEASURES, *MOMENT_MEASURES) if m in ds]
    return present + [m for m in PAIR_MEASURES if m in ds]


def _labelled_maps(ds: xr.Dataset, measure: str) -> dict[str, np.ndarray]:
    """``{factor label: array over (channel, y, x) or (unit,)}`` of one measure ("" for moments)."""
    da = ds[measure]
    if measure in PAIR_MEASURES:
        names = [str(f) for f in da["factor"].values]
        return {
            f"{a} × {b}": da.isel(factor=i, factor2=j).values
            for i, a in enumerate(names)
            for j, b in enumerate(names)
            if j > i
        }
    fdim = _factor_dim(da)
    if fdim is None:
        return {"": da.values}
    return {str(f): da.sel({fdim: f}).values for f in da[fdim].values}


def _positions(da: xr.DataArray) -> tuple[str, ...]:
    """The dims of ``da`` that are positions within a channel (``y, x``; ``time``; ``token``)."""
    return tuple(str(d) for d in da.dims if d not in ("factor", "factor2", "augmentation", "channel"))


def _is_sequence(ds: xr.Dataset) -> bool:
    """A ``(channel, time)`` checkpoint (a network on 1-D signals)."""
    return "channel" in ds.dims and "time" in ds.dims


def _channel_order(ds: xr.Dataset) -> np.ndarray:
    """Channels by decreasing total activation variance (the order in which maps are kept)."""
    if "var" in ds and "channel" in ds["var"].dims:
        total = np.nan_to_num(ds["var"].sum(_positions(ds["var"])).values, nan=-1.0)
        return np.argsort(-total, kind="stable")
    return np.arange(ds.sizes["channel"])


def _sequence_maps(ds: xr.Dataset, max_side: int, max_channels: int) -> dict[str, Any]:
    """One channel x time heat map per measure and factor: time pooled in blocks to fit ``max_side ** 2``
    steps, the ``max_channels`` channels of largest activation variance kept (in channel order)."""
    c, t = ds.sizes["channel"], ds.sizes["time"]
    keep = np.sort(_channel_order(ds)[:max_channels])
    k = max(1, math.ceil(t / max_side**2))
    tk = math.ceil(t / k)
    out: dict[str, Any] = {
        "measures": {},
        "kind": "sequence",
        "channels": keep.tolist(),
        "shape": [len(keep), tk],
        "full": [c, t],
        "pool": k,
    }
    notes = []
    if k > 1:
        notes.append(f"{t} time steps shown as {tk} ({k} steps pooled)")
    if len(keep) < c:
        notes.append(f"{len(keep)} of {c} channels (largest activation variance)")
    out["note"] = "; ".join(notes)
    weights = ds["var"].transpose("channel", "time").values[keep] if "var" in ds else None
    for m in _map_measures(ds):
        per_label = {}
        for label, values in _labelled_maps(ds, m).items():
            w_ = weights if (m in INDEX_MEASURES or m in PAIR_MEASURES) else None
            # pool time only: a [C, 1, T] stack pooled in 1 x k blocks is the [C, T] map pooled along time
            values = _pool_time(values[keep], k, w_)
            enc = _encode(values)
            enc["vmin"], enc["vmax"] = _display_range(values, m)
            per_label[label] = enc
        out["measures"][m] = per_label
    return out


def _pool_time(values: np.ndarray, k: int, weights: np.ndarray | None) -> np.ndarray:
    """``[C, T]`` values pooled in blocks of ``k`` time steps, as :func:`_pool` pools ``k x k`` blocks."""
    if k == 1:
        return values
    c, t = values.shape
    tp = math.ceil(t / k) * k
    v = np.full((c, tp), np.nan)
    v[:, :t] = values
    v = v.reshape(c, tp // k, k)
    if weights is None:
        with np.errstate(invalid="ignore"):
            return np.nanmean(v, axis=-1) if np.isfinite(v).any() else v.mean(axis=-1)
    wt = np.full((c, tp), np.nan)
    wt[:, :t] = weights
    wt = wt.reshape(c, tp // k, k)
    ok = np.isfinite(v) & np.isfinite(wt)
    num = np.where(ok, v * wt, 0.0).sum(axis=-1)
    den = np.where(ok, wt, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _checkpoint_maps(ds: xr.Dataset, max_side: int, max_channels: int) -> dict[str, Any]:
    """Reduced maps of one checkpoint and the words saying how they were reduced."""
    if _is_sequence(ds):
        return _sequence_maps(ds, max_side, max_channels)
    measures = _map_measures(ds)
    spatial = "channel" in ds.dims and "y" in ds.dims
    out: dict[str, Any] = {"measures": {}}
    if spatial:
        c, h, w = ds.sizes["channel"], ds.sizes["y"], ds.sizes["x"]
        keep = np.sort(_channel_order(ds)[:max_channels])
        k = max(1, math.ceil(max(h, w) / max_side))
        weights = ds["var"].values[keep] if "var" in ds else None
        hk, wk = math.ceil(h / k), math.ceil(w / k)
        out.update(kind="channel", channels=keep.tolist(), shape=[len(keep), hk, wk], full=[c, h, w], pool=k)
        notes = []
        if k > 1:
            notes.append(f"{h}×{w} maps shown as {hk}×{wk} ({k}×{k} blocks pooled)")
        if len(keep) < c:
            notes.append(f"maps of {len(keep)} of {c} channels (largest activation variance)")
        out["note"] = "; ".join(notes)
    else:
        units = ds.sizes.get("unit", 0)
        out.update(kind="unit", channels=list(range(units)), shape=[units], full=[units], pool=1, note="")
    for m in measures:
        per_label = {}
        for label, values in _labelled_maps(ds, m).items():
            if spatial:
                w_ = weights if (m in INDEX_MEASURES or m in PAIR_MEASURES) else None
                values = _pool(values[keep], out["pool"], w_)
            enc = _encode(values)
            enc["vmin"], enc["vmax"] = _display_range(values, m)
            per_label[label] = enc
        out["measures"][m] = per_label
    return out


def _stored_values(ds: xr.Dataset, max_side: int, max_channels: int) -> int:
    """How many map values :func:`_checkpoint_maps` would store for ``ds``."""
    maps = 0
    for m in _map_measures(ds):
        da = ds[m]
        fdim = _factor_dim(da)
        if m in PAIR_MEASURES:
            n = da.sizes["factor"]
            maps += n * (n - 1) // 2
        else:
            maps += da.sizes[fdim] if fdim else 1
    if _is_sequence(ds):
        t = ds.sizes["time"]
        per_map = min(ds.sizes["channel"], max_channels) * math.ceil(t / max(1, math.ceil(t / max_side**2)))
    elif "channel" in ds.dims and "y" in ds.dims:
        h, w = ds.sizes["y"], ds.sizes["x"]
        k = max(1, math.ceil(max(h, w) / max_side))
        per_map = min(ds.sizes["channel"], max_channels) * math.ceil(h / k) * math.ceil(w / k)
    else:
        per_map = ds.sizes.get("unit", 0)
    return maps * per_map


def _channel_tables(ds: xr.Dataset) -> dict[str, Any]:
    """Per measure and factor, one value per channel (aggregated index) or unit (its index), rounded
    to 4 decimals for the sortable tables; half-widths where the results have them."""
    out: dict[str, Any] = {}
    for m in (*INDEX_MEASURES, *CONTRAST_MEASURES):
        if m not in ds:
            continue
        if f"{m}_channel" in ds:
            da, conf = ds[f"{m}_channel"], ds.get(f"{m}_conf_channel")
        elif "unit" in ds[m].dims:
            da, conf = ds[m], ds.get(f"{m}_conf")
        elif "channel" in ds[m].dims:  # contrast maps, or one position per channel: the mean over them
            da, conf = ds[m].mean(_positions(ds[m])), None
        else:
            continue
        fdim = _factor_dim(da)
        if fdim is None:
            continue
        out[m] = {
            str(f): {
                "value": _rounded(da.sel({fdim: f}).values),
                "conf": _rounded(conf.sel({fdim: f}).values) if conf is not None else None,
            }
            for f in da[fdim].values
        }
    return out


def _rounded(values: np.ndarray) -> list[float | None]:
    return [round(float(v), 4) if np.isfinite(v) else None for v in np.asarray(values, dtype=float)]


def _profiles(tree: xr.DataTree, cps: list[str]) -> dict[str, Any]:
    """Aggregated index per checkpoint and factor with its 95 % half-width (None where not computed)."""
    out: dict[str, Any] = {}
    for m in INDEX_MEASURES:
        key = f"{m}_checkpoint"
        have = [c for c in cps if key in tree[c].dataset]
        if not have:
            continue
        factors = [str(f) for f in tree[have[0]].dataset[key]["factor"].values]
        value = [_rounded(tree[c].dataset[key].values) for c in have]
        conf_key = f"{m}_conf_checkpoint"
        conf = [
            _rounded(tree[c].dataset[conf_key].values) if conf_key in tree[c].dataset else None for c in have
        ]
        out[m] = {"checkpoints": have, "factors": factors, "value": value, "conf": conf}
    return out


def study_payload(name: str, tree: xr.DataTree, *, budget: int = 600_000) -> dict[str, Any]:
    """Everything the explorer draws for one results tree.

    Parameters
    ----------
    name : str
        The study's label on the page (its folder name).
    tree : xarray.DataTree
        Results from :func:`augsens.open_results`.
    budget : int, default 600_000
        Most map values stored for the study (about 2.7 bytes each in the page): the first of
        :data:`REDUCTIONS` whose maps fit is used.

    Returns
    -------
    dict
        JSON-ready: ``name``, ``kind``, ``model``, ``checkpoints``, ``profiles`` (aggregated indices and
        half-widths per checkpoint), ``maps`` (per checkpoint: encoded maps per measure and factor, the
        channels kept, the pooling and a ``note`` saying what was reduced), ``tables`` (per checkpoint,
        measure and factor: a value per channel or unit).
    """
    cps = checkpoints_of(tree)
    info = ResultsInfo.from_attrs(tree.attrs)
    datasets = {c: tree[c].dataset for c in cps}
    max_side, max_channels = REDUCTIONS[-1]
    for side, channels in REDUCTIONS:
        if sum(_stored_values(ds, side, channels) for ds in datasets.values()) <= budget:
            max_side, max_channels = side, channels
            break
    return {
        "name": name,
        "kind": info.kind,
        "model": info.model,
        "checkpoints": cps,
        "profiles": _profiles(tree, cps),
        "maps": {c: _checkpoint_maps(ds, max_side, max_channels) for c, ds in datasets.items()},
        "tables": {c: _channel_tables(ds) for c, ds in datasets.items()},
    }

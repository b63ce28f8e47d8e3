"""(channel, time) checkpoints of a network on 1-D signals in the explorer and the figures: one channel x
time heat map per factor, time pooled as aggregated indices when long, channel tables, index curves."""

import base64
import json

import numpy as np
import xarray as xr

from augsens.plot.explorer_data import study_payload
from augsens.plot.maps import top_unit_maps

FACTORS = ["gain", "low_pass", "image"]


def _tree(length: int, channels: int = 4) -> xr.DataTree:
    rng = np.random.default_rng(0)
    shape = (len(FACTORS), channels, length)
    dims = ("factor", "channel", "time")
    var = rng.uniform(0.5, 2.0, (channels, length))
    st = rng.uniform(0, 1, shape)
    node = xr.Dataset(
        {
            "ST": (dims, st),
            "S1": (dims, st * 0.8),
            "var": (("channel", "time"), var),
            "mean": (("channel", "time"), rng.normal(size=(channels, length))),
            "ST_channel": (("factor", "channel"), (st * var).sum(-1) / var.sum(-1)),
            "ST_checkpoint": ("factor", (st * var).sum((-2, -1)) / var.sum()),
        },
        coords={"factor": FACTORS},
    )
    # a pooled output: one time step per channel (no per-channel aggregate, as for a vector)
    pooled = xr.Dataset(
        {"ST": (dims, st[:, :, :1]), "var": (("channel", "time"), var[:, :1])}, coords={"factor": FACTORS}
    )
    tree = xr.DataTree.from_dict({"conv": node, "pool": pooled})
    tree.attrs = {"kind": "sobol", "model": "tiny_conv1d", "checkpoints": json.dumps(["conv", "pool"])}
    return tree


def _decode(enc: dict) -> np.ndarray:
    codes = np.frombuffer(base64.b64decode(enc["data"]), dtype="<u2").astype(float)
    scale = (enc["hi"] - enc["lo"]) / 65534 if enc["hi"] > enc["lo"] else 1.0
    return np.where(codes == 65535, np.nan, enc["lo"] + codes * scale)


def test_a_channel_by_time_map_per_factor():
    tree = _tree(100)
    conv = study_payload("s", tree)["maps"]["conv"]
    assert conv["kind"] == "sequence" and conv["shape"] == [4, 100] and conv["pool"] == 1
    assert conv["note"] == ""
    enc = conv["measures"]["ST"]["low_pass"]
    want = tree["conv"].dataset["ST"].sel(factor="low_pass").values
    np.testing.assert_allclose(_decode(enc).reshape(4, 100), want, atol=(enc["hi"] - enc["lo"]) / 65534)
    assert set(conv["measures"]) == {"S1", "ST", "mean", "var"}


def test_long_series_are_pooled_along_time_as_aggregated_indices():
    tree = _tree(2500)
    payload = study_payload("s", tree, budget=20_000)
    conv = payload["maps"]["conv"]
    k, kept = conv["pool"], conv["channels"]
    assert k > 1 and f"2500 time steps shown as {conv['shape'][1]} ({k} steps pooled)" in conv["note"]
    ds = tree["conv"].dataset
    got = _decode(conv["measures"]["ST"]["gain"]).reshape(conv["shape"])
    ch = kept[0]
    var = ds["var"].values[ch, :k]
    want = (ds["ST"].sel(factor="gain").values[ch, :k] * var).sum() / var.sum()
    enc = conv["measures"]["ST"]["gain"]
    assert abs(got[0, 0] - want) <= (enc["hi"] - enc["lo"]) / 65534 + 1e-12
    stored = sum(
        len(_decode(e))
        for cp in payload["maps"].values()
        for m in cp["measures"].values()
        for e in m.values()
    )
    assert stored <= 20_000


def test_channel_tables_of_sequences():
    tables = study_payload("s", _tree(50))["tables"]
    np.testing.assert_allclose(
        tables["conv"]["ST"]["gain"]["value"],
        np.round(_tree(50)["conv"].dataset["ST_channel"].sel(factor="gain").values, 4),
    )
    # one time step per channel: the channel's value is its only position
    pooled = _tree(50)["pool"].dataset["ST"].sel(factor="image").values[:, 0]
    np.testing.assert_allclose(tables["pool"]["ST"]["image"]["value"], np.round(pooled, 4))


def test_top_unit_maps_draw_index_curves_over_time():
    fig = top_unit_maps(_tree(64), "ST", "conv", units=2)
    axes = [ax for ax in fig.axes if ax.lines]
    assert len(axes) == 2 * len(FACTORS)
    line = axes[0].lines[0]
    assert len(line.get_xdata()) == 64
    assert all(ax.get_xlabel() == "time" for ax in axes)

"""HSV segments: colour conversion, segment construction, constant channels, comparison with the network."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

from augsens.analysis.segments import layer_comparison, pixel_correlation, segment_comparison
from augsens.augment import apply, hsv_to_rgb, rgb_to_hsv
from augsens.models.segments import SegmentBank, SegmentModel, SegmentSpec, example_segments, load_segments


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)
    )


def test_hsv_round_trip_and_grey_pixels() -> None:
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(hsv_to_rgb(rgb_to_hsv(x)), x, rtol=0, atol=1e-12)
    grey = x[:, :1].expand(-1, 3, -1, -1)
    hsv = rgb_to_hsv(grey)
    assert torch.isfinite(hsv).all()
    assert (hsv[:, 0] == 0).all() and (hsv[:, 1] == 0).all()
    torch.testing.assert_close(hsv[:, 2], grey[:, 0])


def test_segment_equals_its_modules_on_one_channel() -> None:
    net = _net()
    x = torch.rand(2, 3, 10, 10, generator=torch.Generator().manual_seed(1))
    sliced = SegmentSpec("c2", ("2", "3", "4"), "2", (1, 5, 6))
    wrapped = SegmentSpec("c2r", ("2", "3", "4"), "3", (1, 5, 6), module_type="residual")
    with torch.no_grad():
        value = rgb_to_hsv(x)[:, 2:3].expand(-1, 6, -1, -1)
        expected = net[4](net[3](net[2](value)))[:, [1, 5, 6]]
        for spec in (sliced, wrapped):
            seg = SegmentModel(net, spec, "value")
            assert seg.in_channels == 6
            torch.testing.assert_close(seg(x), expected)
    assert isinstance(SegmentModel(net, sliced, "hue").body[0], nn.Conv2d)  # filters sliced, not wrapped
    assert net[2].out_channels == 8  # the network itself is untouched
    bank = SegmentBank(net, [sliced], channels=("hue", "value"))
    assert bank.checkpoints == ["c2_hue", "c2_value"]
    torch.testing.assert_close(bank(x)["c2_value"], expected)


def test_paper_mode_uses_normalised_hsv() -> None:
    from augsens.augment import paper_rgb_to_hsv, postprocess

    net = _net()
    spec = SegmentSpec("c1", ("0", "1"), "0", (0, 3))
    x = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(2))
    seg = SegmentModel(net, spec, "saturation", mode="paper")
    s = paper_rgb_to_hsv(postprocess(x, minmax=True))[:, 1:2].expand(-1, 3, -1, -1)
    with torch.no_grad():
        torch.testing.assert_close(seg(x), net[1](net[0](s))[:, [0, 3]])


def test_constant_channel_is_reported_constant() -> None:
    net = _net()
    spec = SegmentSpec("c2", ("2", "3", "4"), "2", (0, 1, 2))
    grey = torch.rand(1, 1, 10, 10, generator=torch.Generator().manual_seed(3)).expand(24, 3, -1, -1)
    factor = torch.linspace(0.3, 0.9, 24)
    aug = apply("brightness", grey, factor=factor)
    with torch.no_grad():
        sat = SegmentModel(net, spec, "saturation")(aug)  # S = 0 for every grey image
        val = SegmentModel(net, spec, "value")(aug)
    var_sat = sat.double().var(dim=0)
    assert torch.isfinite(sat).all() and (var_sat == 0).all()
    assert (val.double().var(dim=0) > 0).any()
    # sensitivity maps of a zero-variance output are undefined (0 / 0): the unit is flagged, not noise
    maps = xr.DataArray(
        np.full((2, 3, 5, 5), np.nan), dims=("factor", "channel", "y", "x"), coords={"factor": ["a", "b"]}
    )
    out = pixel_correlation(maps, xr.DataArray(var_sat.numpy(), dims=("channel", "y", "x")))
    assert out["constant"].all() and (out["n_pixels"] == 0).all() and np.isnan(out["rho"]).all()
    # zeros instead of NaN (an estimator that reports 0 for no variance) give the same verdict
    out0 = pixel_correlation(maps.fillna(0.0))
    assert out0["constant"].all()


def _maps(rng: np.random.Generator, units: int, flip: bool) -> xr.DataArray:
    base = rng.normal(size=(units, 4, 4))
    second = -base if flip else base + 0.01 * rng.normal(size=base.shape)
    values = np.stack([base, second, rng.normal(size=base.shape)])
    return xr.DataArray(values, dims=("factor", "channel", "y", "x"), coords={"factor": ["f0", "f1", "f2"]})


def test_comparison_with_network() -> None:
    rng = np.random.default_rng(0)
    spec = SegmentSpec("seg", ("3", "4"), "3", (1, 4))
    net_maps = _maps(rng, 6, flip=False)  # network checkpoint "4" with 6 channels, units 1 and 4 selected
    seg_nodes = {}
    for ch, flip in (("hue", True), ("saturation", False), ("value", False)):
        m = _maps(rng, 2, flip)
        var = np.ones((2, 4, 4))
        if ch == "saturation":
            var[:] = 0.0  # a constant input channel
        seg_nodes[f"seg_{ch}"] = xr.Dataset({"S1": m, "var": (("channel", "y", "x"), var)})
    net_tree = xr.DataTree.from_dict({"4": xr.Dataset({"S1": net_maps})})
    seg_tree = xr.DataTree.from_dict(seg_nodes)
    res = segment_comparison(seg_tree, net_tree, [spec], measures=["S1"])
    ds = res["seg/S1"].to_dataset()
    assert ds["n_units"].sel(source="saturation").item() == 0 and ds["n_units"].sel(source="hue").item() == 2
    assert ds["constant"].sel(source="saturation").all()
    assert ds["mean_rho"].sel(source="hue", factor="f0", factor2="f1").item() == pytest.approx(-1.0)
    assert ds["mean_rho"].sel(source="network", factor="f0", factor2="f1").item() > 0.99
    assert ds["abs_diff_mean"].sel(channel="hue", factor="f0", factor2="f1").item() > 1.98
    assert ds["abs_diff_mean"].sel(channel="value", factor="f0", factor2="f1").item() < 0.02
    assert np.isnan(ds["abs_diff_mean"].sel(channel="saturation")).all()
    lc = layer_comparison(res, "S1")
    assert lc["mean_abs_diff"].sel(pattern="seg:value", pattern2="seg:value").item() == 0.0
    with pytest.raises(KeyError, match="lack checkpoint '4'"):
        segment_comparison(seg_tree, xr.DataTree.from_dict({"3": xr.Dataset()}), [spec])


def test_segment_files(tmp_path) -> None:
    import torchvision

    specs = load_segments(example_segments("resnet18"))
    net = torchvision.models.resnet18()
    bank = SegmentBank(net, specs, channels=("value",))
    with torch.no_grad():
        out = bank(torch.rand(1, 3, 32, 32))
    # every segment sees the image at full resolution, whatever its depth: layer3 only halves it once
    assert out["stem_value"].shape == (1, 4, 8, 8) and out["layer3_value"].shape == (1, 3, 16, 16)
    assert load_segments(example_segments("alexnet"))[1].modules == ("features.3", "features.4", "features.5")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"unit_name": "x", "modules_names": ["a"], "neurons": {"b": {"1": []}}}]))
    with pytest.raises(ValueError, match="selects channels at 'b', which is not one of its modules"):
        load_segments(bad)
    bad.write_text(json.dumps([{"unit_name": "x", "modules_names": ["a"]}]))
    with pytest.raises(ValueError, match="lacks keys \\['neurons'\\]"):
        load_segments(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_segments(tmp_path / "none.json")
    with pytest.raises(KeyError, match="not in the network"):
        SegmentModel(net, SegmentSpec("s", ("layer9",), "layer9", (0,)), "hue")
    with pytest.raises(ValueError, match="do not exist"):
        SegmentModel(net, SegmentSpec("s", ("conv1",), "conv1", (64,)), "hue")

"""LDA tells apart factors whose maps differ and not factors whose maps are alike."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from augsens.analysis.lda import lda_analysis, lda_report


def _maps(distinct: bool, seed: int = 0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    n_factor, n_channel, side = 3, 40, 5
    templates = rng.normal(size=(n_factor, 1, side, side)) * (2.0 if distinct else 0.0)
    values = templates + rng.normal(size=(n_factor, n_channel, side, side))
    return xr.DataArray(
        values,
        dims=("factor", "channel", "y", "x"),
        coords={"factor": ["erasing", "rolling", "hue"]},
        name="ST",
    )


def test_distinct_maps_are_separated() -> None:
    res = lda_analysis(_maps(True), n_repeats=3)
    assert res["validation_accuracy"] > 0.9 and res["train_accuracy"] > 0.95
    conf = res["confusion"].values
    np.testing.assert_allclose(conf.sum(axis=1), 1.0)
    assert np.diag(conf).min() > 0.85
    assert res["projection"].shape == (120, 2)


def test_identical_maps_are_at_chance() -> None:
    res = lda_analysis(_maps(False), n_repeats=3)
    assert res["chance"] == pytest.approx(1 / 3)
    assert abs(float(res["validation_accuracy"]) - 1 / 3) < 0.12


def test_errors_and_report(tmp_path) -> None:
    maps = _maps(True)
    with pytest.raises(ValueError, match="needs spatial maps"):
        lda_analysis(maps.isel(y=0, x=0, drop=True).rename(channel="unit"))
    with pytest.raises(KeyError, match="factors \\['blur'\\] not in the maps"):
        lda_analysis(maps, factors=["blur", "hue"])
    with pytest.raises(ValueError, match="at least two factors"):
        lda_analysis(maps, factors=["hue"])
    two = lda_analysis(maps, factors=["erasing", "hue"], n_repeats=2)
    assert two["projection"].shape == (80, 1)
    tree = xr.DataTree.from_dict(
        {"conv": xr.Dataset({"ST": maps}), "fc": xr.Dataset({"ST": maps[:, :, 0, 0]})}
    )
    tree.to_zarr(tmp_path / "s" / "results.zarr", mode="w", zarr_format=2, consolidated=True)
    files = lda_report([tmp_path / "s"], tmp_path / "out", n_repeats=2)
    assert [f.name for f in files] == [
        "lda_summary.csv",
        "lda_s_conv_ST_confusion.png",
        "lda_s_conv_ST_projection.png",
    ]

"""Correlation analysis returns the correlation structure the maps were built with."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import xarray as xr

from augsens.analysis.correlation import (
    coefficient_of_variation,
    correlation_analysis,
    correlation_report,
    cov_correlation,
    positionwise_correlation,
)

FACTORS = ["brightness", "contrast", "hue"]


def _maps(
    seed: int = 0, channels: int = 300, shape: tuple[int, int] = (3, 4)
) -> tuple[xr.DataArray, np.ndarray]:
    """Factor 0 = base, factor 1 a decreasing function of it (rho = -1), factor 2 independent (rho ~ 0)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(channels, *shape))
    values = np.stack([base, 1.0 - 2.0 * base**3, rng.normal(size=base.shape)])
    da = xr.DataArray(values, dims=("factor", "channel", "y", "x"), coords={"factor": FACTORS}, name="S1")
    return da, base


def test_within_measure_recovers_structure() -> None:
    maps, _ = _maps()
    out = positionwise_correlation(maps)
    mean = out["mean"].values
    np.testing.assert_allclose(np.diag(mean), 1.0)
    assert mean[0, 1] == pytest.approx(-1.0) and out["std"].values[0, 1] == pytest.approx(0.0, abs=1e-12)
    assert abs(mean[0, 2]) < 0.05 and abs(mean[1, 2]) < 0.05
    assert 0 < out["std"].values[0, 2] < 0.15  # sampling spread of an independent pair over positions
    np.testing.assert_allclose(mean, mean.T)
    assert (out["n_positions"] == 12).all()
    ref = scipy.stats.spearmanr(maps.values[0, :, 1, 2], maps.values[2, :, 1, 2]).statistic
    assert out["rho"].sel(factor="brightness", factor2="hue").values[1, 2] == pytest.approx(ref, rel=1e-12)


def test_constant_positions_are_left_out() -> None:
    maps, _ = _maps()
    maps = maps.copy()
    maps.values[2, :, 0, 0] = 0.5  # hue's map constant across channels at one position
    maps.values[0, 7, 2, 3] = np.nan  # a missing value at another
    out = positionwise_correlation(maps)
    assert out["n_positions"].sel(factor="hue", factor2="brightness").item() == 10
    assert out["n_positions"].sel(factor="contrast", factor2="contrast").item() == 12
    assert np.isnan(out["rho"].sel(factor="hue", factor2="contrast").values[0, 0])
    assert np.isfinite(out["mean"].values).all()


def test_cross_measure_and_cov() -> None:
    maps, base = _maps()
    other = xr.DataArray(
        np.stack([-base, np.exp(base)]),
        dims=("augmentation", "channel", "y", "x"),
        coords={"augmentation": ["rotation", "hflip"]},
    )
    cross = positionwise_correlation(maps, other)
    assert cross["mean"].shape == (3, 2)
    np.testing.assert_allclose(cross["mean"].sel(factor2="rotation").values[:2], [-1.0, 1.0])
    np.testing.assert_allclose(cross["mean"].sel(factor2="hflip").values[:2], [1.0, -1.0])
    mean = xr.DataArray(np.full(base.shape, 2.0), dims=("channel", "y", "x"))
    var = xr.DataArray(np.exp(base), dims=("channel", "y", "x"))
    cov = coefficient_of_variation(mean, var)
    np.testing.assert_allclose(cov.values, np.sqrt(np.exp(base)) / (2.0 + 1e-5))
    res = cov_correlation(maps, cov)
    np.testing.assert_allclose(res["mean"].values[:2], [1.0, -1.0])
    assert res["rho"].dims == ("factor", "y", "x")


def test_fully_connected_maps_have_one_position() -> None:
    maps, _ = _maps(shape=(1, 1))
    fc = maps.isel(y=0, x=0, drop=True).rename(channel="unit")
    out = positionwise_correlation(fc)
    assert out["mean"].values[0, 1] == pytest.approx(-1.0)
    assert (out["std"] == 0).all() and (out["n_positions"] == 1).all()


def test_analysis_and_report_on_results_trees(tmp_path) -> None:
    maps, base = _maps(channels=50)
    conv = xr.Dataset(
        {
            "S1": maps,
            "ST": maps * 2 + 1,
            "mean": (("channel", "y", "x"), np.ones(base.shape)),
            "var": (("channel", "y", "x"), np.exp(base)),
        }
    )
    fc = xr.Dataset({"S1": maps.isel(y=0, x=0, drop=True).rename(channel="unit")})
    tree = xr.DataTree.from_dict(
        {"/": xr.Dataset(attrs={"checkpoints": '["conv", "fc"]'}), "conv": conv, "fc": fc}
    )
    tree.to_zarr(tmp_path / "study" / "results.zarr", mode="w", zarr_format=2, consolidated=True)
    back = xr.open_datatree(tmp_path / "study" / "results.zarr", engine="zarr")
    res = correlation_analysis(back, factors=["brightness", "contrast"])
    assert res["conv/within/S1"]["mean"].shape == (2, 2)
    assert res["conv/cross/S1_vs_ST"]["mean"].values[0, 0] == pytest.approx(1.0)
    assert res["conv/cov/S1"]["mean"].values[0] == pytest.approx(1.0)
    assert "cov" not in res["fc"].children  # no moments in that node
    files = correlation_report([tmp_path / "study"], tmp_path / "report")
    names = {f.name for f in files}
    assert {"correlation_within.csv", "correlation_cross.csv", "correlation_cov.csv"} <= names
    assert "correlation_within_conv_S1.png" in names and all(f.stat().st_size > 0 for f in files)
    with pytest.raises(ValueError, match="no measure among"):
        correlation_analysis(back, measures=["shapley"])

"""The dominance analysis: shares of elements each factor leads, their bracket, its command and section."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from typer.testing import CliRunner

import augsens as ag
from augsens.analysis.dominance import dominance
from augsens.analysis.protocol import get_analysis
from augsens.cli import app
from augsens.errors import UnknownNameError, UserInputError


def _tree(values: np.ndarray, conf: np.ndarray | None, factors: list[str]) -> xr.DataTree:
    dims = ("factor", "channel", "y", "x")
    data = {"ST": (dims, values)}
    if conf is not None:
        data["ST_conf"] = (dims, conf)
    node = xr.Dataset(data, coords={"factor": factors})
    return xr.DataTree.from_dict({"/": xr.Dataset(attrs={"checkpoints": '["conv"]'}), "conv": node})


def _by_loop(values: np.ndarray, conf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The definitions of the module docstring, element by element."""
    k = values.shape[0]
    v, h = values.reshape(k, -1), conf.reshape(k, -1)
    share, separated, reachable = np.zeros(k), np.zeros(k), np.zeros(k)
    n = v.shape[1]
    for e in range(n):
        order = sorted(range(k), key=lambda f: -v[f, e])
        top, second = order[0], order[1]
        share[top] += 1
        if v[top, e] - h[top, e] > max(v[f, e] + h[f, e] for f in range(k) if f != top):
            separated[top] += 1
        for f in range(k):
            if v[f, e] + h[f, e] >= v[top, e] - h[top, e]:
                reachable[f] += 1
        assert second != top
    return share / n, separated / n, reachable / n


def test_shares_equal_the_element_by_element_definition():
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 1, (4, 6, 5, 5))  # ties have probability 0
    conf = rng.uniform(0, 0.2, values.shape)
    ds = dominance(_tree(values, conf, ["a", "b", "c", "d"])).sel(measure="ST", checkpoint="conv")
    share, separated, reachable = _by_loop(values, conf)
    np.testing.assert_allclose(ds["share"].values, share, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ds["share_separated"].values, separated, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ds["share_reachable"].values, reachable, rtol=0, atol=1e-15)
    assert int(ds["n_elements"]) == 6 * 5 * 5
    assert np.isclose(ds["share"].sum(), 1.0)
    assert (ds["share_separated"] <= ds["share"]).all() and (ds["share"] <= ds["share_reachable"]).all()


def test_non_finite_elements_are_left_out_and_missing_half_widths_give_no_bracket():
    rng = np.random.default_rng(1)
    values = rng.uniform(0, 1, (3, 2, 3, 3))
    values[1, 0, 0, 0] = np.nan  # one element without a finite index
    ds = dominance(_tree(values, None, ["a", "b", "c"])).sel(measure="ST", checkpoint="conv")
    finite = values.reshape(3, -1)[:, 1:]
    expected = np.bincount(np.argmax(finite, axis=0), minlength=3) / finite.shape[1]
    np.testing.assert_allclose(ds["share"].values, expected, rtol=0, atol=1e-15)
    assert int(ds["n_elements"]) == 2 * 3 * 3 - 1
    assert np.isnan(ds["share_separated"]).all() and np.isnan(ds["share_reachable"]).all()


def test_a_nan_half_width_counts_as_not_separated_and_reachable():
    values = np.array([0.9, 0.1]).reshape(2, 1, 1, 1)
    conf = np.array([0.01, np.nan]).reshape(2, 1, 1, 1)
    ds = dominance(_tree(values, conf, ["a", "b"])).sel(measure="ST", checkpoint="conv")
    assert ds["share"].values.tolist() == [1.0, 0.0]
    assert ds["share_separated"].values.tolist() == [0.0, 0.0]
    assert ds["share_reachable"].values.tolist() == [1.0, 1.0]


def test_bad_names_are_refused():
    tree = _tree(np.ones((2, 1, 2, 2)), None, ["a", "b"])
    with pytest.raises(UnknownNameError, match=r"\['z'\].*available"):
        dominance(tree, factors=["a", "z"])
    with pytest.raises(UserInputError, match="at least two factors"):
        dominance(tree, factors=["a"])
    with pytest.raises(UserInputError, match=r"none of the measures \['S2'\]"):
        dominance(tree, measures=["S2"])


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dominance") / "tiny"
    ag.study(
        "augsens.testing:tiny_cnn",
        torch.rand(3, 3, 224, 224, generator=torch.Generator().manual_seed(0)),
        augmentations=["hflip", "grayscale"],
        n=8,
        replicates=2,
        checkpoints=["conv", "fc"],
        device="cpu",
        progress=False,
        out=out,
    )
    return out


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_command_and_report_section_come_from_the_registration(study, tmp_path):
    analysis = get_analysis("dominance")
    assert analysis is not None and analysis.title == "Dominant factor per element"
    runner = CliRunner()
    res = runner.invoke(app, ["dominance", str(study), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "dominance.csv").is_file() and list(tmp_path.glob("dominance_tiny_*.png"))
    assert (tmp_path / "dominance.section.json").is_file()
    page = tmp_path / "page.html"
    res = runner.invoke(app, ["report", str(study), "--out", str(page)])
    assert res.exit_code == 0, res.output
    assert f">{analysis.title}</a>" in page.read_text()


def test_shares_of_a_study_sum_to_one_at_every_checkpoint(study):
    ds = dominance(study)
    for measure, checkpoint in itertools.product(ds["measure"].values, ds["checkpoint"].values):
        shares = ds["share"].sel(measure=measure, checkpoint=checkpoint)
        assert np.isclose(float(shares.sum()), 1.0), (measure, checkpoint)

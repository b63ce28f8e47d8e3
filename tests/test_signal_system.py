"""A system that is not about images, end to end: a Conv1d classifier on synthetic signals under the
four signal perturbations (augmentations of the public protocol), through ``ag.study``, the report and
``augsens compare``; its activations labelled (channel, time)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import augsens as ag
from augsens.augment import spec
from augsens.augment.checks import check_augmentation
from augsens.augment.signals import SIGNAL_PERTURBATIONS, additive_noise, gain, low_pass, time_shift
from augsens.cli import app
from augsens.errors import UserInputError
from augsens.plot.explorer_data import study_payload
from augsens.plot.report import write_report
from augsens.results import open_results
from augsens.testing import sinusoid_signals

CHECKPOINTS = ["conv1", "conv2", "pool", "fc"]
SMALL = dict(n=32, replicates=2, checkpoints=CHECKPOINTS, device="cpu", progress=False)


# the designs are small on purpose (speed); their QMC warning is not what these tests look at
pytestmark = pytest.mark.filterwarnings("ignore:.*points per replicate")


@pytest.fixture(scope="module")
def signals():
    x, labels = sinusoid_signals(3, classes=3, channels=2, length=128)
    return ag.as_samples(x, labels)


@pytest.fixture(scope="module")
def runs(signals, tmp_path_factory):
    """The same study twice: the perturbations' declared ranges, and a narrower low-pass range."""
    root = tmp_path_factory.mktemp("signals")
    augmentations = list(SIGNAL_PERTURBATIONS)
    ag.study("augsens.testing:tiny_conv1d", signals, augmentations, out=root / "wide", **SMALL)
    ag.study(
        "augsens.testing:tiny_conv1d",
        signals,
        augmentations,
        out=root / "narrow",
        ranges={"low_pass": (0.3, 0.5)},
        **SMALL,
    )
    return root


def test_signal_perturbations_pass_the_protocols_checks(signals):
    probe = signals.gather(torch.arange(4))
    for aug in SIGNAL_PERTURBATIONS:
        check_augmentation(aug, probe)  # raises AugmentationCheckError on any broken rule
    assert [a.name for a in SIGNAL_PERTURBATIONS] == ["time_shift", "gain", "additive_noise", "low_pass"]
    assert spec("augsens.augment.signals:low_pass") is low_pass
    assert (time_shift.input_shape, gain.input_shape, additive_noise.input_shape) == ("[B, C, T]", None, None)


def test_activations_are_labelled_channel_and_time(runs):
    tree = open_results(runs / "wide")
    assert json.loads(tree.attrs["augmentations"]) == ["time_shift", "gain", "additive_noise", "low_pass"]
    conv1 = tree["conv1"].dataset
    assert conv1["ST"].dims == ("factor", "channel", "time")
    assert dict(conv1.sizes) == {"factor": 6, "channel": 8, "time": 60}
    assert conv1["ST_time"].dims == ("factor", "time") and conv1["ST_channel"].dims == ("factor", "channel")
    assert tree["fc"].dataset["ST"].dims == ("factor", "unit")
    # not normalised as images: the model saw the signals as given
    assert json.loads(tree.attrs["config"])["images"]["source"] == "<SampleCache>"


def test_the_pooled_output_forgets_the_time_shift(runs):
    """A circular shift moves the conv maps along time but barely changes their mean over time."""
    tree = open_results(runs / "wide")
    st = {c: tree[c].dataset["ST_checkpoint"].sel(factor="time_shift").item() for c in CHECKPOINTS}
    assert st["conv1"] > 0.3
    assert st["pool"] < 0.1 * st["conv1"]
    # the gain scales every activation of the first (linear) layer: it owns part of its variance
    assert tree["conv1"].dataset["ST_checkpoint"].sel(factor="gain").item() > 0.02


def test_ranges_are_recorded_and_change_the_study(runs):
    wide, narrow = open_results(runs / "wide"), open_results(runs / "narrow")
    bounds = {p["parameter"]: (p["low"], p["high"]) for p in json.loads(narrow.attrs["parameters"])}
    assert bounds["low_pass.cutoff"] == (0.3, 0.5)
    assert {p["parameter"]: p["high"] for p in json.loads(wide.attrs["parameters"])}["time_shift.shift"] == 16
    # cut-offs above 0.3 cycles per sample keep the signals' content (below 0.1): the filter matters less
    lp = {
        name: t["conv2"].dataset["ST_checkpoint"].sel(factor="low_pass").item()
        for name, t in (("wide", wide), ("narrow", narrow))
    }
    assert lp["narrow"] < 0.5 * lp["wide"]


def test_report_and_compare(runs, tmp_path):
    page = write_report(runs / "wide", tmp_path / "report").read_text()
    assert '"sequence"' in page and '"conv1"' in page
    payload = study_payload("wide", open_results(runs / "wide"))
    assert payload["maps"]["conv1"]["kind"] == "sequence" and payload["maps"]["conv1"]["shape"] == [8, 60]
    assert payload["tables"]["conv1"]["ST"]["gain"]["value"]
    res = CliRunner().invoke(
        app, ["compare", str(runs / "wide"), str(runs / "narrow"), "--out", str(tmp_path / "cmp")]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cmp" / "compare.html").is_file() and (tmp_path / "cmp" / "explorer.html").is_file()
    csvs = sorted(p.name for p in (tmp_path / "cmp").glob("*.csv"))
    assert csvs, "compare wrote no tables"
    table = np.genfromtxt(tmp_path / "cmp" / csvs[0], delimiter=",", dtype=str)
    assert "low_pass" in table


def test_image_settings_and_image_augmentations_are_refused_on_signals(signals):
    with pytest.raises(UserInputError, match=r"size= resizes images, but these inputs are not images"):
        ag.study("augsens.testing:tiny_conv1d", signals, [gain], size=32, **SMALL)
    with pytest.raises(UserInputError, match=r"hue.*\[B, 3, H, W\]"):
        ag.study("augsens.testing:tiny_conv1d", signals, [gain, "hue"], **SMALL)


def test_a_contrast_study_of_signals(signals):
    tree = ag.study(
        "augsens.testing:tiny_conv1d",
        signals,
        [time_shift, gain],
        kind="contrast",
        draws=2,
        checkpoints=["conv1", "fc"],
        device="cpu",
        progress=False,
    )
    assert tree["conv1"].dataset["rank_biserial"].dims == ("augmentation", "channel", "time")
    assert tree["fc"].dataset["rank_biserial"].dims == ("augmentation", "unit")
    assert list(tree["conv1"].dataset["augmentation"].values) == ["time_shift", "gain"]

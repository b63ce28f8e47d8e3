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


# The explorer's script run by Node.js on a minimal stand-in for the page's DOM: it draws the first
# checkpoint's map (conv1, a channel x time map) and reports the canvas size and a hover readout.
_NODE_HARNESS = r"""
const fs = require("fs");
const page = fs.readFileSync(process.argv[2], "utf8");
const data = page.match(/<script type='application\/json' id='augsens-data'>([\s\S]*?)<\/script>/)[1];
const js = page.match(/<script>([\s\S]*?)<\/script><\/body>/)[1];
function context() {
  return new Proxy({}, {
    get: (t, k) => k === "createImageData"
      ? (w, h) => ({ data: new Uint8ClampedArray(4 * w * h), width: w, height: h })
      : k === "putImageData" ? (img) => { globalThis.lastImage = img; }
      : (k in t ? t[k] : () => {}),
    set: (t, k, v) => { t[k] = v; return true; },
  });
}
class El {
  constructor() { this.children = []; this.style = {}; this.dataset = {}; this.parentElement = { style: {} };
    this.textContent = ""; this.width = 0; this.height = 0; this._html = ""; }
  get value() {
    return this._value !== undefined ? this._value : (this.children[0] ? this.children[0].value : "");
  }
  set value(v) { this._value = String(v); }
  get innerHTML() { return this._html; }
  set innerHTML(v) { this._html = v; if (v === "") { this.children = []; this._value = undefined; } }
  get clientWidth() { return this.width; }
  get clientHeight() { return this.height; }
  appendChild(c) { this.children.push(c); }
  addEventListener() {}
  querySelector() { return new El(); }
  querySelectorAll() { return []; }
  getContext() { return this._ctx || (this._ctx = context()); }
}
const els = {};
globalThis.window = globalThis;
globalThis.document = {
  getElementById: (id) => els[id] || (els[id] = id === "augsens-data" ? { textContent: data } : new El()),
  createElement: () => new El(),
  querySelectorAll: () => [],
};
eval(js);
const map = els["map"];
map.onmousemove({ offsetX: Number(process.argv[3]), offsetY: Number(process.argv[4]) });
// the off-screen image the map is drawn from: every cell coloured, none left blank (white)
const img = globalThis.lastImage;
let blank = 0;
for (let i = 0; i < img.data.length; i += 4) {
  if (img.data[i] === 255 && img.data[i + 1] === 255 && img.data[i + 2] === 255) blank++;
}
console.log(JSON.stringify({ state: window.augsensExplorer.state, width: map.width, height: map.height,
  readout: els["map-readout"].textContent, cells: [img.width, img.height], blank }));
"""


def test_the_explorer_draws_a_channel_by_time_map(runs, tmp_path):
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the explorer's script is checked in a browser test instead")
    page = write_report(runs / "wide", tmp_path / "report")
    harness = tmp_path / "harness.js"
    harness.write_text(_NODE_HARNESS)
    # conv1: 8 channels x 60 time steps; 420 px wide -> 7 px per step, rows stretched to 240 / 8 = 30 px
    x, y = 7 * 10 + 1, 30 * 3 + 1
    out = subprocess.run(
        [node, str(harness), str(page), str(x), str(y)], capture_output=True, text=True, check=True
    )
    got = json.loads(out.stdout)
    assert got["state"]["checkpoint"] == "conv1" and got["state"]["measure"] == "ST"
    assert (got["width"], got["height"]) == (420, 240)
    assert got["cells"] == [60, 8] and got["blank"] == 0  # time across, channels down, every cell drawn
    factor = got["state"]["factor"]
    assert got["readout"].startswith(f"conv1 · ST · {factor} · ch 3, t 10: ")
    want = open_results(runs / "wide")["conv1"].dataset["ST"].sel(factor=factor).values[3, 10]
    assert abs(float(got["readout"].rsplit(": ", 1)[1]) - want) < 1e-3

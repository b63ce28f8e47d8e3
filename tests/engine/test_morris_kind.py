"""kind = "morris" end to end (ag.study, augsens run, report, resume, Ray shards) and screen-then-quantify.

The network is :func:`augsens.testing.image_statistics` on one two-tone grey image (as in
``test_engine_kinds.py``): brightness scales the channel means, hflip flips the sign of the
left-minus-right difference and changes no mean, grayscale scales a grey image by its weights' sum,
0.9999 (torchvision's 0.2989 + 0.587 + 0.114).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_engine_kinds import BRIGHT, DARK, cache, two_tone
from typer.testing import CliRunner

import augsens as ag
from augsens.cli import app
from augsens.config import ConfigError, StudyConfig
from augsens.engine.screen import DEFAULT_CUTOFF, screen_then_quantify, select
from augsens.engine.study import Study
from augsens.models import load
from augsens.results import open_results
from augsens.testing import image_statistics

AUGS = ["brightness", "hflip", "grayscale"]
# float32 activations of O(0.3): effects that must vanish are rounding, a few float32 ulps over a step
ZERO = 64 * torch.finfo(torch.float32).eps


@pytest.fixture(scope="module")
def statistics():
    return load(image_statistics(), mean=(0, 0, 0), std=(1, 1, 1))


@pytest.fixture(scope="module")
def one_image():
    return cache(two_tone([DARK], [BRIGHT]))


def config(**study) -> StudyConfig:
    return StudyConfig.from_dict(
        {
            "model": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
            "study": {"kind": "morris", "augmentations": AUGS, "n": 32, "replicates": 4, **study},
            "run": {"batch_size": 256, "device": "cpu"},
        },
        source="test",
    )


def test_study_finds_the_augmentations_that_move_each_output(statistics, one_image):
    tree = ag.study(statistics, one_image, AUGS, kind="morris", n=32, replicates=4, progress=False)
    d = 5  # brightness, hflip, grayscale, order, image
    assert tree.attrs["kind"] == "morris" and tree.attrs["forwards"] == 32 * (d + 1)
    mean, lr = tree["mean"].dataset, tree["left_right"].dataset
    assert list(mean["factor"].values) == [*AUGS, "order", "image"]
    for name in ("mu", "mu_star", "sigma", "mu_star_conf", "mu_star_checkpoint", "mean", "var"):
        assert name in mean, name
    mu_star = mean["mu_star"].max("unit")
    assert float(mu_star.sel(factor="brightness")) > 0.05
    # hflip permutes pixels, one image, commuting ops: no effect on a mean; grayscale scales by 0.9999
    assert float(mu_star.sel(factor=["hflip", "order", "image"]).max()) < ZERO
    assert float(mu_star.sel(factor="grayscale")) < 1e-3 * float(mu_star.sel(factor="brightness"))
    lead = lr["mu_star_checkpoint"]
    assert lead.idxmax("factor").item() == "hflip"
    assert float(lead.sel(factor="grayscale")) < 1e-3 * float(lead.sel(factor="hflip"))
    # |mu| <= mu_star, sigma >= 0 everywhere
    assert (np.abs(mean["mu"].values) <= mean["mu_star"].values + 1e-12).all()
    assert (mean["sigma"].values >= 0).all()


def test_resume_equals_uninterrupted(statistics, one_image, tmp_path):
    whole = Study(config(), model=statistics, images=one_image, progress=False).run(tmp_path / "whole")
    part = Study(config(), model=statistics, images=one_image, progress=False)
    assert part.run(tmp_path / "part", stop_after=12) is None
    resumed = Study(config(), model=statistics, images=one_image, progress=False).run(
        tmp_path / "part", resume=True
    )
    for c in ("mean", "left_right", "extremes"):
        for v in whole[c].dataset.data_vars:
            np.testing.assert_allclose(
                resumed[c].dataset[v], whole[c].dataset[v], rtol=1e-12, atol=1e-12, equal_nan=True
            )


def test_cli_run_and_report_show_the_morris_plane(tmp_path):
    cfg = tmp_path / "morris.toml"
    cfg.write_text(
        '[model]\nname = "augsens.testing:tiny_cnn"\ncheckpoints = ["act", "fc"]\n'
        '[study]\nkind = "morris"\naugmentations = ["hflip", "brightness"]\nn = 8\nreplicates = 2\n'
        "morris_levels = 4\n"
        '[run]\ndevice = "cpu"\n'
    )
    res = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 0, res.output
    tree = open_results(tmp_path / "o")
    assert tree.attrs["kind"] == "morris" and tree["act"].dataset.attrs["step"] == pytest.approx(2 / 3)
    page = (tmp_path / "o" / "report.html").read_text()
    assert 'id="screening"' in page and page.count('class="morris"') == 1
    assert "mean absolute elementary effect (mu_star)" in page


def test_ray_shards_equal_one_process(tmp_path):
    pytest.importorskip("ray")
    from augsens.engine.distributed import run_distributed

    cfg = StudyConfig.from_dict(
        {
            "model": {"name": "augsens.testing:tiny_cnn", "checkpoints": ["conv", "fc"]},
            "study": {"kind": "morris", "augmentations": "set1", "n": 16, "replicates": 2},
            # the float64 path: shards merge float32 blocks at other boundaries than one process does
            "run": {"device": "cpu", "batch_size": 32, "state_dtype": "float64"},
        }
    )
    one = Study(cfg, progress=False).run(tmp_path / "one")
    sharded = run_distributed(cfg, tmp_path / "ray", workers=2, shards=3, progress=False)
    assert sharded.attrs["ray_shards"] == 3 and sharded.attrs["forwards"] == one.attrs["forwards"]
    for c in ("conv", "fc"):
        a, b = one[c].to_dataset(), sharded[c].to_dataset()
        assert sorted(a.data_vars) == sorted(b.data_vars) and "mu_star_checkpoint" in a
        for v in a.data_vars:
            np.testing.assert_allclose(b[v].values, a[v].values, rtol=1e-10, atol=1e-10, equal_nan=True)


def test_bad_levels_is_a_config_error():
    with pytest.raises(ConfigError, match="morris_levels must be an even integer >= 2"):
        config(morris_levels=5)


@pytest.mark.filterwarnings("ignore::augsens.core.design.QMCSmallSampleWarning")
def test_screen_then_quantify_drops_what_does_not_move_and_records_why(statistics, one_image, tmp_path):
    quantify = config(kind="sobol", n=64)
    screened, quantified = screen_then_quantify(
        quantify, tmp_path, trajectories=16, model=statistics, images=one_image, progress=False
    )
    record = json.loads((tmp_path / "screening.json").read_text())
    assert record["kept"] == ["brightness", "hflip"] and record["dropped"] == ["grayscale"]
    assert record["cutoff"] == DEFAULT_CUTOFF and "Campolongo" in record["rule"]
    # the leader's ratio is its upper 95 % end over its own estimate: at least 1
    assert record["ratio"]["grayscale"] < 1e-3 and record["ratio"]["hflip"] >= 1.0
    assert record["leaders"]["left_right"] == "hflip" and record["leaders"]["mean"] == "brightness"
    # forwards: 16 (D + 1) with D = 5 screened factors, then 64 (D + 2) with D = 4 kept
    assert record["screen_forwards"] == 16 * 6 and record["quantify_forwards"] == 64 * 6
    for tree in (screened, quantified):
        assert json.loads(tree.attrs["screening"]) == record
    assert json.loads(quantified.attrs["augmentations"]) == ["brightness", "hflip"]
    assert list(quantified["left_right"].dataset["factor"].values) == [
        "brightness",
        "hflip",
        "order",
        "image",
    ]
    # run again: both finished steps are read back, not recomputed
    again = screen_then_quantify(
        quantify, tmp_path, trajectories=16, model=statistics, images=one_image, progress=False
    )
    np.testing.assert_array_equal(
        again[1]["left_right"].dataset["ST"], quantified["left_right"].dataset["ST"]
    )


def test_select_refuses_a_study_without_elementary_effects_and_a_bad_cutoff(statistics, one_image):
    tree = ag.study(statistics, one_image, ["hflip"], kind="moments", n=8, design="iid", progress=False)
    with pytest.raises(ConfigError, match="not a kind = 'morris' study"):
        select(tree, ["hflip"], 0.1)
    with pytest.raises(ConfigError, match=r"cutoff = 1.5 must be a share"):
        select(tree, ["hflip"], 1.5)
    from augsens.plot.screening import morris_plane, screening_section

    with pytest.raises(KeyError, match="the Morris plane needs a kind = 'morris' study"):
        morris_plane(tree)
    assert screening_section([("moments", tree)]) == ""
    with pytest.raises(ConfigError, match="must be 'sobol' or 'shapley'"):
        screen_then_quantify(config(), "unused", progress=False)


def test_every_sensitivity_kind_of_the_config_names_a_method_and_its_options_are_config_keys():
    from augsens.config import STUDY_KINDS, StudySection
    from augsens.core.methods import METHODS
    from augsens.engine.plan import method_name

    keys = {f for f in StudySection.__dataclass_fields__}
    for kind in (k for k in STUDY_KINDS if k != "contrast"):
        size = {} if kind == "shapley-song" else {"n": 16}  # the Song-type design has its own size keys
        name = method_name(StudyConfig.from_dict({"study": {"kind": kind, **size}}))
        assert name in METHODS
        assert set(METHODS[name].options.values()) <= keys, name
    assert METHODS["morris"].options == {"levels": "morris_levels"}


@pytest.mark.filterwarnings("ignore::augsens.core.design.QMCSmallSampleWarning")
def test_cli_screen_writes_both_studies_the_record_and_one_report(tmp_path):
    cfg = tmp_path / "sobol.toml"
    cfg.write_text(
        '[model]\nname = "augsens.testing:tiny_cnn"\ncheckpoints = ["act", "fc"]\n'
        '[study]\nkind = "sobol"\naugmentations = ["hflip", "brightness"]\nn = 8\nreplicates = 2\n'
        '[run]\ndevice = "cpu"\n'
    )
    out = tmp_path / "s"
    res = CliRunner().invoke(app, ["screen", str(cfg), "--out", str(out), "--trajectories", "8", "--quiet"])
    assert res.exit_code == 0, res.output
    record = json.loads((out / "screening.json").read_text())
    assert record["screen_forwards"] == 8 * 5 and record["quantify_kind"] == "sobol"
    assert open_results(out / "screen").attrs["kind"] == "morris"
    assert json.loads(open_results(out / "quantify").attrs["screening"]) == record
    page = (out / "report.html").read_text()
    assert 'class="morris"' in page and "quantify" in page
    res = CliRunner().invoke(app, ["screen", str(cfg), "--out", str(out), "--cutoff", "2"])
    assert res.exit_code == 2 and "must be a share of the leader's mu_star" in res.output

"""The embedded default: its configs, and that a finished demo study is reused only when unchanged."""

import numpy as np
import pytest

import augsens.demo
from augsens.demo import (
    DEMO_CHECKPOINTS,
    QUICK_CHECKPOINTS,
    QUICK_NAME,
    _same_study,
    demo_configs,
    quick_config,
    run_demo,
)
from augsens.results import open_results


def test_demo_covers_both_sets_and_both_measures():
    cfgs = demo_configs(n=64, device="cpu")
    assert sorted(cfgs) == ["set1-shapley", "set1-sobol", "set2-shapley", "set2-sobol"]
    for name, cfg in cfgs.items():
        assert cfg.model.name == "efficientnet_lite0" and cfg.model.checkpoints == DEMO_CHECKPOINTS
        assert cfg.images.source == "bundled"
        assert cfg.study.kind == name.split("-")[1] and cfg.study.augmentations == name.split("-")[0]


def test_finished_study_is_reused_only_with_the_same_settings():
    cfg = demo_configs(n=64)["set1-sobol"]
    attrs = {"config": cfg.to_json()}
    assert _same_study(attrs, cfg)
    assert _same_study(attrs, demo_configs(n=64, device="cpu")["set1-sobol"])  # run section may differ
    assert not _same_study(attrs, demo_configs(n=128)["set1-sobol"])


def test_quick_demo_is_one_sobol_study_of_hue_flip_and_rotation():
    cfg = quick_config(device="cpu")
    assert cfg.model.name == "efficientnet_lite0" and cfg.model.checkpoints == QUICK_CHECKPOINTS
    assert cfg.study.kind == "sobol" and cfg.study.augmentations == ["hue", "hflip", "rotation"]
    assert set(QUICK_CHECKPOINTS) <= set(DEMO_CHECKPOINTS) and QUICK_CHECKPOINTS[-1] == "classifier"
    assert cfg.study.precision > 0 and cfg.study.replicates == 4  # a precision target, 64 points per net


@pytest.mark.slow
def test_quick_demo_end_to_end_at_a_small_size(tmp_path, monkeypatch):
    """The quick demo's path, with its sample size cut down: one results folder and the explorer page."""
    monkeypatch.setattr(augsens.demo, "QUICK_SIZE", {"n": 8, "precision": 0.01, "max_n": 16})
    report = run_demo(tmp_path, device="cpu", progress=False)
    assert report == tmp_path / "report.html"
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [QUICK_NAME]
    tree = open_results(tmp_path / QUICK_NAME)
    assert list(tree.children) == QUICK_CHECKPOINTS and tree.attrs["base_samples_done"] == 16
    assert tree.attrs["stop_reason"] == "max_n reached" and tree.attrs["precision"] > 0.01
    assert "quick-sobol</b>: sobol on efficientnet_lite0" in report.read_text()


@pytest.mark.slow
def test_small_demo_end_to_end(tmp_path):
    """The real default model on the bundled photos, at a small n: four results folders and the report."""
    report = run_demo(tmp_path, full=True, n=8, device="cpu", progress=False)
    assert report == tmp_path / "report.html" and report.stat().st_size > 50_000
    for name in ("set1-sobol", "set1-shapley", "set2-sobol", "set2-shapley"):
        tree = open_results(tmp_path / name)
        assert list(tree.children) == DEMO_CHECKPOINTS
        probs = tree["classifier"].dataset["mean"].values
        np.testing.assert_allclose(probs.sum(), 1.0, atol=1e-5)  # class probabilities
    # a second run reuses the finished studies
    before = (tmp_path / "set1-sobol" / "results.zarr").stat().st_mtime_ns
    run_demo(tmp_path, full=True, n=8, device="cpu", progress=False)
    assert (tmp_path / "set1-sobol" / "results.zarr").stat().st_mtime_ns == before

"""End to end: config -> design -> images -> augment -> forward -> accumulators -> results tree."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from augsens.config import ConfigError, StudyConfig
from augsens.data import ImageCache, bundled_photos
from augsens.engine.study import Study
from augsens.interrupts import StudyInterrupted
from augsens.models import load
from augsens.results import open_results


class LeftHalf(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., : x.shape[-1] // 2]


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(3, 4, 3, stride=4),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(4, 6, 3, stride=2),
            relu2=nn.ReLU(),
            pool=nn.AdaptiveAvgPool2d(4),
            flat=nn.Flatten(),
            fc=nn.Linear(96, 5),
        )
    )


def one_image(
    left: tuple[float, float, float], right: tuple[float, float, float], size: int = 48
) -> ImageCache:
    # small images keep the CPU tests fast; the ops and the engine do not assume 224 x 224
    img = torch.empty(1, 3, size, size)
    img[..., : size // 2] = torch.tensor(left).view(1, 3, 1, 1)
    img[..., size // 2 :] = torch.tensor(right).view(1, 3, 1, 1)
    return ImageCache((img * 255).round().to(torch.uint8), torch.zeros(1), ["synthetic"], ["synthetic"])


def config(batch_size: int = 48, **study) -> StudyConfig:
    return StudyConfig.from_dict(
        {"study": {"seed": 0, **study}, "run": {"batch_size": batch_size, "device": "cpu"}}, source="test"
    )


@pytest.fixture(scope="module")
def photos() -> ImageCache:
    return bundled_photos()


@pytest.fixture(scope="module")
def tiny():
    return load(tiny_cnn(), checkpoints=["relu1", "relu2", "fc"], classifier="fc")


def test_sobol_results_schema(tiny, photos, tmp_path):
    tree = Study(
        config(kind="sobol", augmentations="set1", n=16, replicates=2),
        model=tiny,
        images=photos,
        progress=False,
    ).run(tmp_path)
    back = open_results(tmp_path)
    assert list(back.children) == ["relu1", "relu2", "fc"]
    factors = ["erasing", "sharpness", "rolling", "grayscale", "gaussian_blur", "order", "image"]
    conv, fc = back["relu1"].dataset, back["fc"].dataset
    assert conv["S1"].dims == ("factor", "channel", "y", "x") and conv["S1"].shape == (7, 4, 56, 56)
    assert fc["ST"].dims == ("factor", "unit") and list(fc["factor"].values) == factors
    for name in ("S1", "ST", "S1_conf", "ST_conf", "mean", "var", "cov", "S1_channel", "ST_checkpoint"):
        assert name in conv, name
    assert conv["S1_channel"].dims == ("factor", "channel")
    assert conv["ST_checkpoint"].dims == ("factor",)
    live = fc["var"].values > 0
    assert np.isfinite(fc["ST"].values[:, live]).all()
    assert (fc["ST"].values[:, live] >= 0).all()
    assert np.all(np.abs(fc["S1"].values[:, live]) < 2)
    # classifier outputs are probabilities (softmax applied at capture)
    np.testing.assert_allclose(fc["mean"].values.sum(), 1.0, atol=1e-6)
    attrs = back.attrs
    assert attrs["kind"] == "sobol" and attrs["n"] == 16 and attrs["forwards"] == 16 * 9
    assert "torch" in attrs["versions"] and attrs["skipped_images"] == 0
    xr_equal = tree["fc"].dataset["ST"].values
    np.testing.assert_array_equal(xr_equal, fc["ST"].values)


def test_shapley_effects_sum_to_one(tiny, photos, tmp_path):
    cfg = config(kind="shapley", augmentations=["hue", "hflip"], n=8, shapley_method="exact")
    tree = Study(cfg, model=tiny, images=photos, progress=False).run(tmp_path)
    sh = tree["relu2"].dataset["shapley"].values
    # constant outputs (dead ReLUs) have no variance to share: NaN by design
    live = np.isfinite(sh).all(axis=0)
    assert live.mean() > 0.5
    np.testing.assert_allclose(sh.sum(axis=0)[live], 1.0, atol=1e-8)
    assert tree.attrs["rows_per_sample"] == 2**4  # hue, hflip, order, image


def test_single_factor_model_gets_all_variance(tmp_path):
    """Global mean colour depends on the hue shift only: rolling is circular, and the one image is fixed."""
    model = load(
        nn.Sequential(OrderedDict(pool=nn.AdaptiveAvgPool2d(1))),
        checkpoints=["pool"],
        mean=(0, 0, 0),
        std=(1, 1, 1),
    )
    cfg = config(kind="sobol", augmentations=["hue", "rolling"], n=256, replicates=4)
    images = one_image((0.9, 0.1, 0.1), (0.1, 0.1, 0.8))
    ds = Study(cfg, model=model, images=images, progress=False).run(tmp_path)["pool"].dataset
    s1, st = ds["S1"].sel(factor="hue").values, ds["ST"].sel(factor="hue").values
    np.testing.assert_allclose(s1, 1.0, atol=0.1)
    np.testing.assert_allclose(st, 1.0, atol=0.1)
    for other in ("rolling", "order", "image"):
        np.testing.assert_allclose(
            ds["ST"].sel(factor=other).values, 0.0, atol=1e-6
        )  # float32 activations: rounding only
        np.testing.assert_allclose(
            ds["S1"].sel(factor=other).values, 0.0, atol=1e-6
        )  # float32 activations: rounding only


def test_two_factor_interaction_shows_in_st_minus_s1(tmp_path):
    """Left-half mean = brightness factor x (which half is left after hflip): a product interaction."""
    model = load(
        nn.Sequential(OrderedDict(crop=LeftHalf(), pool=nn.AdaptiveAvgPool2d(1))),
        checkpoints=["pool"],
        mean=(0, 0, 0),
        std=(1, 1, 1),
    )
    cfg = config(kind="sobol", augmentations=["brightness", "hflip"], n=512, replicates=4)
    ds = (
        Study(cfg, model=model, images=one_image((0.4, 0.4, 0.4), (0.05, 0.05, 0.05)), progress=False)
        .run(tmp_path)["pool"]
        .dataset
    )
    gap = (ds["ST"] - ds["S1"]).sel(factor=["brightness", "hflip"]).values
    assert (gap > 0.05).all(), gap
    np.testing.assert_allclose(ds["ST"].sel(factor="order").values, 0.0, atol=1e-9)


def test_resume_equals_uninterrupted(tiny, photos, tmp_path):
    cfg = config(kind="sobol", augmentations="set2", n=16, replicates=2)
    whole = Study(cfg, model=tiny, images=photos, progress=False).run(tmp_path / "whole")
    part = Study(cfg, model=tiny, images=photos, progress=False)
    assert part.run(tmp_path / "part", stop_after=6) is None
    assert (tmp_path / "part" / "state" / "state.pt").is_file()
    with pytest.raises(FileExistsError, match="--resume"):
        part.run(tmp_path / "part")
    resumed = Study(cfg, model=tiny, images=photos, progress=False).run(tmp_path / "part", resume=True)
    assert not (tmp_path / "part" / "state").exists()
    for c in ("relu1", "fc"):
        for v in ("S1", "ST", "S1_conf", "mean", "var"):
            np.testing.assert_allclose(resumed[c].dataset[v], whole[c].dataset[v], rtol=1e-12, atol=1e-12)
    again = Study(cfg, model=tiny, images=photos, progress=False).run(tmp_path / "again")
    np.testing.assert_array_equal(again["fc"].dataset["ST"], whole["fc"].dataset["ST"])  # same seed


def test_ctrl_c_saves_state(tiny, photos, tmp_path, monkeypatch):
    cfg = config(kind="moments", augmentations=["hflip"], n=32, design="iid", replicates=1)
    study = Study(cfg, model=tiny, images=photos, progress=False)
    calls = {"n": 0}
    original = study.forward

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(study, "forward", flaky)
    with pytest.raises(StudyInterrupted, match="--resume"):
        study.run(tmp_path)
    tree = study.run(tmp_path, resume=True)
    assert tree.attrs["base_samples_done"] == 32 and "S1" not in tree["fc"].dataset


def test_resume_refuses_a_changed_config(tiny, photos, tmp_path):
    Study(
        config(kind="sobol", augmentations=["hue"], n=8, replicates=1, batch_size=8),
        model=tiny,
        images=photos,
        progress=False,
    ).run(tmp_path, stop_after=4)
    with pytest.raises(ValueError, match=r"config changed.*study\.n"):
        Study(
            config(kind="sobol", augmentations=["hue"], n=16, replicates=1),
            model=tiny,
            images=photos,
            progress=False,
        ).run(tmp_path, resume=True)


def test_bad_inputs_fail_with_one_clear_message(tiny, photos):
    cfg = StudyConfig.from_dict({"model": {"checkpoints": ["relu3"]}, "run": {"device": "cpu"}})
    with pytest.raises(KeyError, match="relu"):
        Study(cfg, model=tiny, images=photos, progress=False)
    with pytest.raises(ConfigError, match="power of 2"):
        config(kind="sobol", n=12)
    with pytest.raises(KeyError, match="brightness"):
        Study(
            config(augmentations=["brightnes"], n=8, replicates=1), model=tiny, images=photos, progress=False
        )


@pytest.mark.parametrize("kind", ["sobol", "shapley-song"])
def test_paper_mode_runs_every_quirk(tiny, photos, tmp_path, kind):
    """Paper mode: per-row image redraw, min-max rescale, Sobol-family switches, song-type Shapley."""
    # the Song-type design has its own size keys: it reads no n and no replicates
    song = {"song_permutations": 2, "song_outer": 2, "song_inner": 2}
    study = song if kind == "shapley-song" else {"n": 8, "replicates": 2}
    cfg = config(kind=kind, augmentations="set2", mode="paper", **study)
    s = Study(cfg, model=tiny, images=photos, progress=False)
    if kind == "sobol":
        # the authors' Sobol family: switches only on augmentations without parameters
        assert [g for g in s.factors.factor_names if f"{g}.on" in s.factors.problem.names] == ["hflip"]
    tree = s.run(tmp_path)
    measure = "S1" if kind == "sobol" else "shapley"
    values = tree["relu2"].dataset[measure].values
    assert np.isfinite(values).mean() > 0.5
    if kind == "shapley-song":
        live = np.isfinite(values).all(axis=0)
        np.testing.assert_allclose(values.sum(axis=0)[live], 1.0, atol=1e-9)
        assert "mean" in tree["relu2"].dataset  # moments pass kept for the Song estimator


def test_bf16_channels_last_agrees_with_fp32(photos, tmp_path):
    """Autocast bf16 + channels_last changes rounding, not the answer (aggregated indices)."""
    out = {}
    for dtype in ("float32", "bfloat16"):
        cfg = StudyConfig.from_dict(
            {
                "study": {"kind": "sobol", "augmentations": ["grayscale", "hflip"], "n": 32, "replicates": 2},
                "run": {
                    "device": "cpu",
                    "dtype": dtype,
                    "channels_last": dtype == "bfloat16",
                    "batch_size": 64,
                },
            }
        )
        model = load(tiny_cnn(), checkpoints=["relu2", "fc"], classifier="fc")
        out[dtype] = Study(cfg, model=model, images=photos, progress=False).run(tmp_path / dtype)
    a = out["float32"]["relu2"].dataset["ST_checkpoint"].values
    b = out["bfloat16"]["relu2"].dataset["ST_checkpoint"].values
    np.testing.assert_allclose(b, a, atol=0.05)


def test_ctrl_c_mid_batch_finishes_the_batch_then_saves(tiny, photos, tmp_path, monkeypatch):
    """A real SIGINT arriving inside a batch: the batch completes, the whole state is saved, and the
    resumed run equals an uninterrupted one."""
    import os
    import signal

    cfg = config(kind="sobol", augmentations=["hue", "hflip"], n=16, replicates=2, batch_size=16)
    whole = Study(cfg, model=tiny, images=photos, progress=False).run(tmp_path / "whole")
    study = Study(cfg, model=tiny, images=photos, progress=False)
    original = study.forward
    calls = {"n": 0}

    def forward_then_signal(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # lands mid-batch
        return original(*args)

    monkeypatch.setattr(study, "forward", forward_then_signal)
    with pytest.raises(StudyInterrupted, match="state saved"):
        study.run(tmp_path / "part")
    monkeypatch.undo()
    resumed = Study(cfg, model=tiny, images=photos, progress=False).run(tmp_path / "part", resume=True)
    np.testing.assert_allclose(resumed["fc"].dataset["ST"], whole["fc"].dataset["ST"], rtol=1e-12, atol=1e-12)


def test_interrupt_inside_an_update_keeps_the_last_save(tiny, photos, tmp_path, monkeypatch):
    cfg = config(kind="sobol", augmentations=["hue"], n=8, replicates=1, batch_size=8)
    study = Study(cfg, model=tiny, images=photos, progress=False)
    study.run(tmp_path, stop_after=2)  # a saved state at 2 base samples
    from augsens.core.estimate import SobolAccumulator

    def broken_update(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(SobolAccumulator, "update", broken_update)
    with pytest.raises(StudyInterrupted, match="last periodic save"):
        Study(cfg, model=tiny, images=photos, progress=False).run(tmp_path, resume=True)
    blob = torch.load(tmp_path / "state" / "state.pt", weights_only=True)
    assert blob["position"] == 2  # the half-updated state was not written


@pytest.mark.parametrize("method", ["exact", "permutation"])
def test_shapley_studies_report_confidence_half_widths(tiny, photos, tmp_path, method):
    cfg = config(kind="shapley", augmentations=["hue", "hflip"], n=32, shapley_method=method, replicates=4)
    ds = Study(cfg, model=tiny, images=photos, progress=False).run(tmp_path)["relu2"].dataset
    live = np.isfinite(ds["shapley"].values).all(axis=0)  # dead units have no variance to share
    conf = ds["shapley_conf"].values[:, live]
    assert live.mean() > 0.5
    # sparse ReLUs may not vary within a replicate of 8 base samples: those replicates are left out
    assert np.isfinite(conf).mean() > 0.8 and (conf[np.isfinite(conf)] >= 0).all() and np.nanmax(conf) > 0


def test_sobol_method_option_reaches_the_estimator(tiny, photos, tmp_path):
    cfg = config(kind="sobol", augmentations=["hue"], n=8, replicates=2, sobol_method="janon_2014")
    node = Study(cfg, model=tiny, images=photos, progress=False).run(tmp_path)["fc"]
    assert node.attrs["first_order_method"] == "janon_2014"
    assert node.attrs["total_order_method"] == "jansen_1999"

"""Memory known before the run: the estimate equals the state a run builds, it is printed at start, and a
study that cannot fit is refused before any image is decoded, with the figure and the options."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import augsens.data.sources
from augsens.config import StudyConfig
from augsens.core import loop
from augsens.engine import memory
from augsens.engine.memory import GIB, _nbytes
from augsens.engine.study import Study
from augsens.errors import UserInputError

KINDS = {
    "sobol": {"kind": "sobol", "n": 8, "replicates": 2},
    "sobol-second-order": {"kind": "sobol", "n": 8, "replicates": 4, "second_order": True},
    "shapley": {"kind": "shapley", "n": 8, "replicates": 2},
    "shapley-song": {"kind": "shapley-song", "song_permutations": 2, "song_outer": 2, "song_inner": 2},
    "moments": {"kind": "moments", "n": 8},
}


def _config(source: str = "bundled", **study) -> StudyConfig:
    return StudyConfig.from_dict(
        {
            "model": {"name": "augsens.testing:tiny_cnn", "checkpoints": ["conv", "fc"]},
            "images": {"source": source},
            "study": {"augmentations": ["hflip", "grayscale"], **study},
            "run": {"batch_size": 24, "device": "cpu"},
        },
        source="test",
    )


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_estimated_state_is_the_state_a_run_builds(kind: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = Study(_config(**KINDS[kind]), progress=False)
    est = study.memory
    assert est is not None and est.elements == {c: int(np.prod(s)) for c, s in study.shapes.items()}
    state = study.new_state()
    study.step(state, next(loop.batches(study.plan.method, 24 * study.plan.rows)))
    blob = study.export_state(state)
    actual = _nbytes(blob["acc"]) + _nbytes(blob["moments"])
    # per-element sizes are measured on the method itself: only a few constant bytes per accumulator differ
    assert abs(est.state - actual) <= 256, (est.state, actual)
    tree = study.finalize(state)
    written = sum(tree[c].dataset.nbytes for c in study.checkpoints)
    assert 0.9 * written <= est.results <= 1.1 * written


def _folder(root: Path, classes: int = 2, per_class: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
                root / f"c{c}" / f"{i}.png"
            )
    return root


def test_the_estimate_is_printed_at_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Study(_config(str(_folder(tmp_path / "imgs")), **KINDS["sobol"]), progress=True)
    err = capsys.readouterr().err
    assert "memory: peak" in err and "images 0.00 GiB" in err and "state" in err and "free on the host" in err


def test_a_study_that_does_not_fit_is_refused_with_the_figure_and_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _folder(tmp_path / "imgs")
    cfg = _config(str(root), **KINDS["sobol-second-order"])
    first = Study(cfg, progress=False)
    est = memory.for_study(cfg, first.model, first.shapes, [[3, 3]], torch.device("cpu"), decoded=False)
    # just too little memory for the state in float64, enough for float32 or for one checkpoint at a time
    free = est.host_peak - est.state // 3
    monkeypatch.setattr(memory, "available", lambda device: (free, free))

    def no_decoding(*args, **kwargs):
        raise AssertionError("images were decoded before the memory check")

    monkeypatch.setattr(augsens.data.sources, "decode_files", no_decoding)
    with pytest.raises(UserInputError) as info:
        Study(cfg, progress=False)
    message = str(info.value)
    assert f"needs about {est.host_peak / GIB:.2f} GiB of host memory but {free / GIB:.2f} GiB" in message
    assert '[run] state_dtype = "float32"' in message and "[study] replicates = " in message
    assert "images" in message


def test_the_suggested_checkpoint_groups_each_fit() -> None:
    cfg = _config(**KINDS["sobol"])
    model = Study(cfg, progress=False).model
    shapes = {"conv": (8, 224, 224), "act": (8, 224, 224), "pool": (8, 112, 112), "fc": (10,)}
    est = memory.for_study(cfg, model, shapes, [[1] * 10], torch.device("cpu"), decoded=True)
    # room for about two of the big checkpoints at once, not four
    est.available_host = est.available_device = int(est.host_peak * 0.6)
    with pytest.raises(UserInputError, match="runs of their own") as info:
        memory.check(est)
    groups = memory._groups(est, lambda e: e.shortfall() is None)
    assert groups is not None and len(groups) > 1
    assert [c for g in groups for c in g] == list(shapes)  # every checkpoint once, in model order
    for g in groups:
        assert memory._subset(est, g).shortfall() is None
        assert repr(g) in str(info.value)
    assert f"{len(groups)} x {est.forwards:,} forwards" in str(info.value)


PRESETS = sorted((Path(__file__).parents[2] / "configs" / "paper").glob("*.toml"))
# a few base samples per kind, as tests/engine/test_paper_presets.py runs them
SMALL = {
    "moments": {"study.n": 4, "study.replicates": 1},
    "sobol": {"study.n": 8},
    "shapley-song": {"study.song_permutations": 1, "study.song_outer": 1, "study.song_inner": 2},
}


@pytest.mark.slow
def test_every_paper_preset_fits_24_gib_at_small_n_or_says_why() -> None:
    """On a 24 GiB machine (22 GiB free beside torch and the network), with ILSVRC's 1000 classes at each
    preset's images per class, every preset at a small n is either estimated to fit or refused at once,
    before decoding, with the images as the option that makes it fit."""
    from augsens.config import load_config
    from augsens.models import load

    models, verdicts = {}, {}
    for preset in PRESETS:
        shipped = load_config(preset)
        cfg = load_config(preset, overrides={"model.weights": "random", **SMALL[shipped.study.kind]})
        name = cfg.model.name
        if name not in models:
            m = load(name, weights="random", device="cpu")
            models[name] = (m, m.output_shapes())
        model, shapes = models[name]
        counts = [[cfg.images.per_class] * 1000] + ([[50] * 1000] if cfg.images.partition2 else [])
        est = memory.for_study(cfg, model, shapes, counts, torch.device("cpu"), decoded=False)
        est.available_host = est.available_device = 22 * GIB
        try:
            memory.check(est)
            verdicts[preset.stem] = "fits"
        except UserInputError as exc:
            assert str(exc).split("Options: ")[1].startswith("fewer images"), str(exc)
            verdicts[preset.stem] = "refused"
            # without the images (fewer per class), the rest of the study fits
            assert memory.dataclasses.replace(est, images=0).shortfall() is None, preset.stem
    assert set(verdicts) == {p.stem for p in PRESETS}

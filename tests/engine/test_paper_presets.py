"""Every preset in ``configs/paper/`` runs as shipped, only smaller.

Each preset keeps its own network, kind, mode, augmentation set, switch model and second order; the
command line's ``--set`` shrinks it to a few base samples, random weights, two checkpoints and a tiny
ILSVRC-like dataset (two class folders of small JPEGs for train and for val) made here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import augsens.data.cache
import augsens.data.sources
from augsens.cli import app
from augsens.config import load_config
from augsens.engine.factors import resolve_augmentations
from augsens.results import open_results

PRESETS = sorted((Path(__file__).parents[2] / "configs" / "paper").glob("*.toml"))

# Images are decoded at 64 x 64 instead of 224 x 224 (a twelfth of the forward cost; AlexNet needs at
# least 63).  Activation shapes are read off a 224 x 224 probe, so only checkpoints whose shape does not
# depend on the input size are analysed: the adaptive pool (per-channel aggregates where it is spatial)
# and the classifier (probabilities).
SIDE = 64
CHECKPOINTS = {
    "alexnet": ["avgpool", "classifier.6"],
    "vgg11": ["avgpool", "classifier.6"],
    "resnet18": ["avgpool", "fc"],
}

# a few base samples per kind (one per replicate for Sobol'); replicates must divide n, in moments
# studies too, where they play no part
SHRINK = {
    "moments": ["study.n=4", "study.replicates=1"],
    "sobol": ["study.n=2", "study.replicates=2"],
    "shapley-song": ["study.song_permutations=1", "study.song_outer=1", "study.song_inner=2"],
}

MEASURES = {
    "moments": {"mean", "var", "cov"},
    "sobol": {"S1", "ST", "S1_conf", "ST_conf", "S1_checkpoint", "ST_checkpoint", "mean", "var"},
    "shapley-song": {"shapley", "shapley_raw", "shapley_checkpoint", "mean", "var"},
}


def test_every_preset_is_covered():
    assert len(PRESETS) == 24
    kinds = {load_config(p).study.kind for p in PRESETS}
    assert kinds == set(SHRINK)


@pytest.fixture(scope="module")
def ilsvrc_like(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``train/<wnid>/*.JPEG`` (3 per class) and ``val/<wnid>/*.JPEG`` (2 per class), 40 x 32 pixels."""
    root = tmp_path_factory.mktemp("ilsvrc")
    rng = np.random.default_rng(0)
    for part, count in (("train", 3), ("val", 2)):
        for wnid in ("n01440764", "n01443537"):
            (root / part / wnid).mkdir(parents=True)
            for k in range(count):
                pixels = rng.integers(0, 256, size=(32, 40, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / part / wnid / f"{wnid}_{k}.JPEG", quality=90)
    return root / "train", root / "val"


@pytest.fixture
def small_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decode image folders to ``SIDE x SIDE`` (resize the shorter side to ``SIDE * 8 / 7``, then crop)."""
    monkeypatch.setattr(augsens.data.cache, "RESIZE", SIDE * 8 // 7)
    monkeypatch.setattr(augsens.data.cache, "SIZE", SIDE)
    monkeypatch.setattr(augsens.data.sources, "SIZE", SIDE)


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
@pytest.mark.usefixtures("small_images")
def test_paper_preset_runs(preset: Path, ilsvrc_like: tuple[Path, Path], tmp_path: Path) -> None:
    shipped = load_config(preset)
    study = shipped.study
    train, val = ilsvrc_like
    checkpoints = CHECKPOINTS[shipped.model.name]
    overrides = [
        f"images.source={train}",
        f"images.partition2={val}",
        "images.per_class=2",
        "model.weights=random",
        f"model.checkpoints={json.dumps(checkpoints)}",
        "run.batch_size=32",
        *SHRINK[study.kind],
    ]
    args = ["run", str(preset), "--out", str(tmp_path), "--quiet", "--no-report"]
    result = CliRunner().invoke(app, args + [a for item in overrides for a in ("--set", item)])
    assert result.exit_code == 0, result.output

    tree = open_results(tmp_path)
    ran = json.loads(tree.attrs["config"])["study"]
    assert tree.attrs["kind"] == study.kind and tree.attrs["mode"] == study.mode == "paper"
    for key in ("augmentations", "switches", "second_order", "seed"):
        assert ran[key] == getattr(study, key), key
    factors = [*resolve_augmentations(study.augmentations), "order", "partition", "image"]
    assert json.loads(tree.attrs["factors"]) == factors
    assert tree.attrs["model"] == shipped.model.name and tree.attrs["images"] == 8
    assert list(tree.children) == checkpoints
    expected = MEASURES[study.kind] | ({"S2", "S2_checkpoint"} if study.second_order else set())
    for name in checkpoints:
        node = tree[name].dataset
        assert expected <= set(node.data_vars), (name, expected - set(node.data_vars))
        if study.kind != "moments":
            assert list(node["factor"].values) == factors
        if study.second_order:
            assert list(node["factor2"].values) == factors
    probabilities = tree[checkpoints[-1]].dataset["mean"]
    assert probabilities.dims == ("unit",) and probabilities.size == 1000
    np.testing.assert_allclose(float(probabilities.sum()), 1.0, rtol=1e-4)
    assert tree[checkpoints[0]].dataset["mean"].dims == ("channel", "y", "x")
    assert tree.attrs["forwards"] == tree.attrs["base_samples_done"] * tree.attrs["rows_per_sample"] > 0

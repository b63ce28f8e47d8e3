"""Every study kind end to end on a toy network whose outputs depend on known factors.

The network is :func:`augsens.testing.image_statistics` (channel means, left-minus-right difference,
channel extremes) seen through no normalisation, on a two-tone image (dark left half, bright right
half, grey so that colour ops act alike on every channel).  Brightness scales every pixel (no clipping:
0.3 x 2.5 < 1) and hflip swaps the halves, so:

* ``mean`` depends on brightness only (hflip permutes pixels, the order of two commuting ops and the
  one image cannot matter);
* ``left_right`` = ``±(brightness factor) x (left - right)``: hflip carries most of its variance;
* in paper mode the min-max rescale maps the image to ``{0, 1}`` per channel before the network, so
  ``mean`` is the constant 0.5 (undefined indices), ``left_right`` is ``±1`` by hflip alone and
  ``extremes`` is exactly ``(0, 1)``.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from augsens.config import StudyConfig
from augsens.core.design import QMCSmallSampleWarning
from augsens.data import ImageCache
from augsens.engine.study import Study
from augsens.models import load
from augsens.plot.report import write_report
from augsens.results import open_results
from augsens.testing import image_statistics

SIDE = 16
DARK, BRIGHT = 0.1, 0.3

# kind -> (study keys, main measure, tolerance of the index that must be 1, of the ones that must be 0).
# Pick-freeze and chain estimators give exactly 0 (to rounding) for a factor that changes nothing; the
# Sobol' total of the one factor that matters carries sampling error; exact Shapley effects are normalised
# by the variance they sum to.  The Song-type double loop estimates every effect from independent inner
# draws, so all of its values carry noise.
KINDS = {
    "sobol": ({"kind": "sobol"}, "ST", 0.15, 1e-6),
    "sobol-second-order": ({"kind": "sobol", "second_order": True}, "ST", 0.15, 1e-6),
    "shapley-exact": ({"kind": "shapley", "shapley_method": "exact"}, "shapley", 1e-6, 1e-6),
    "shapley-permutation": ({"kind": "shapley", "shapley_method": "permutation"}, "shapley", 1e-6, 1e-6),
    "shapley-song": (
        {"kind": "shapley-song", "song_permutations": 64, "song_outer": 8, "song_inner": 4},
        "shapley",
        0.05,
        0.05,
    ),
}


def two_tone(left: list[float], right: list[float], side: int = SIDE) -> torch.Tensor:
    """uint8 images ``[B, 3, side, side]``: grey ``left[b]`` on the left half, ``right[b]`` on the right."""
    img = torch.empty(len(left), 3, side, side)
    img[..., : side // 2] = torch.tensor(left).view(-1, 1, 1, 1)
    img[..., side // 2 :] = torch.tensor(right).view(-1, 1, 1, 1)
    return (img * 255).round().to(torch.uint8)


def cache(images: torch.Tensor, labels: list[int] | None = None) -> ImageCache:
    labels = labels if labels is not None else [0] * len(images)
    classes = [f"c{k}" for k in range(max(labels) + 1)]
    return ImageCache(images, torch.tensor(labels), classes, [f"img{i}" for i in range(len(images))])


def config(**study) -> StudyConfig:
    size = {} if study.get("kind") == "shapley-song" else {"n": 256}
    return StudyConfig.from_dict(
        {
            "model": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
            # the Song-type design has its own size keys: it reads no n
            "study": {"augmentations": ["brightness", "hflip"], "seed": 0, **size, **study},
            "run": {"batch_size": 1024, "device": "cpu"},
        },
        source="test",
    )


@pytest.fixture(scope="module")
def statistics():
    return load(image_statistics(), mean=(0, 0, 0), std=(1, 1, 1))


@pytest.fixture(scope="module")
def one_image() -> ImageCache:
    return cache(two_tone([DARK], [BRIGHT]))


def run(cfg: StudyConfig, model, images, out) -> tuple[Study, object]:
    study = Study(cfg, model=model, images=images, progress=False)
    return study, study.run(out)


@pytest.mark.parametrize("mode", ["clean", "paper"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_finds_the_factor_that_must_matter(statistics, one_image, tmp_path, kind, mode):
    study_keys, measure, one, nothing = KINDS[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no xarray alignment warning (second order), no other
        # except the announced one: these toy designs have fewer points per replicate than a study should
        warnings.simplefilter("ignore", QMCSmallSampleWarning)
        study, tree = run(config(mode=mode, **study_keys), statistics, one_image, tmp_path)
    factors = study.factors.factor_names
    assert factors == ["brightness", "hflip", "order", "image"]
    back = open_results(tmp_path)
    assert back.attrs["kind"] == study_keys["kind"] and back.attrs["mode"] == mode
    assert json.loads(back.attrs["factors"]) == factors
    mean, lr = back["mean"].dataset, back["left_right"].dataset
    assert list(mean["factor"].values) == factors
    lr_index = lr[measure].mean("unit")
    if mode == "clean":
        m = mean[measure].mean("unit")
        assert m.idxmax("factor").item() == "brightness"
        np.testing.assert_allclose(m.sel(factor="brightness"), 1.0, atol=one)
        np.testing.assert_allclose(m.sel(factor=["hflip", "order", "image"]), 0.0, atol=nothing)
        assert lr_index.idxmax("factor").item() == "hflip"
        assert float(lr_index.sel(factor="brightness")) > max(0.01, nothing)  # the interaction
    else:
        # min-max rescale inside the engine: every channel spans exactly [0, 1] before the network
        np.testing.assert_array_equal(back["extremes"].dataset["mean"].values, [[0.0, 1.0]] * 3)
        np.testing.assert_array_equal(back["extremes"].dataset["var"].values, 0.0)
        assert np.isnan(mean[measure].values).all()  # the mean is the constant 0.5: no variance to share
        np.testing.assert_allclose(mean["mean"].values, 0.5)
        assert lr_index.idxmax("factor").item() == "hflip"
        np.testing.assert_allclose(lr_index.sel(factor="hflip"), 1.0, atol=one)
        np.testing.assert_allclose(lr_index.sel(factor=["brightness", "order", "image"]), 0.0, atol=nothing)
    if measure == "ST":
        # per-checkpoint aggregates carry the same factor labels
        assert list(lr["ST_checkpoint"]["factor"].values) == factors
    if "second_order" in study_keys:
        s2 = lr["S2"]
        assert s2.dims == ("factor", "factor2", "unit")
        assert list(s2["factor2"].values) == factors  # design order, not alphabetical
        off = ~np.eye(len(factors), dtype=bool)
        assert np.isfinite(s2.values[off]).all() and np.isnan(s2.values[~off]).all()
        agg = lr["S2_checkpoint"]
        assert agg.dims == ("factor", "factor2") and np.isfinite(agg.values[off]).all()
        # the only interaction is brightness x hflip
        np.testing.assert_allclose(s2.sel(factor="order", factor2="image"), 0.0, atol=1e-6)
        assert float(agg.sel(factor="brightness", factor2="hflip")) > (0.01 if mode == "clean" else -1e-6)


@pytest.mark.parametrize("mode", ["clean", "paper"])
def test_moments_kind(statistics, one_image, tmp_path, mode):
    _, tree = run(config(kind="moments", mode=mode, n=128), statistics, one_image, tmp_path)
    mean, lr, ext = (tree[c].dataset for c in ("mean", "left_right", "extremes"))
    assert "S1" not in mean and tree.attrs["forwards"] == 128
    grey = one_image.images.float() / 255
    dark, bright = float(grey[0, 0, 0, 0]), float(grey[0, 0, 0, -1])
    if mode == "clean":
        # brightness switched on with p = 1/2, factor ~ U(0.1, 2.5): E[f] = 1.15, E[f^2] = 1.585
        np.testing.assert_allclose(mean["mean"].values, 1.15 * (dark + bright) / 2, rtol=0.03)
        np.testing.assert_allclose(lr["mean"].values, 0.0, atol=0.02)
        np.testing.assert_allclose(lr["var"].values, 1.585 * (dark - bright) ** 2, rtol=0.1)
        assert (ext["var"].values[:, 1] > 0).all()  # the brightest pixel moves with brightness
    else:
        np.testing.assert_array_equal(mean["mean"].values, 0.5)
        np.testing.assert_array_equal(mean["var"].values, 0.0)
        np.testing.assert_allclose(lr["var"].values, 1.0, rtol=0.1)  # ±1 by hflip, p = 1/2
        np.testing.assert_array_equal(ext["mean"].values, [[0.0, 1.0]] * 3)


def test_paper_mode_redraws_the_image_within_its_class(statistics, tmp_path):
    """One class of four images whose boundary sits at different columns (so they differ even after the
    min-max rescale): in clean mode the image factor explains the channel mean; in paper mode every row
    gets its own image of the class, so no factor explains it and hflip, which cannot change a mean,
    shows a total index near 1."""
    columns = [4, 6, 10, 12]
    images = two_tone([DARK] * 4, [BRIGHT] * 4)
    for b, col in enumerate(columns):
        images[b, :, :, :col] = round(DARK * 255)
        images[b, :, :, col:] = round(BRIGHT * 255)
    ds = {}
    for mode in ("clean", "paper"):
        cfg = config(kind="sobol", mode=mode, augmentations=["hflip"], n=128)
        ds[mode] = run(cfg, statistics, cache(images), tmp_path / mode)[1]["mean"].dataset.mean("unit")
    clean, paper = ds["clean"], ds["paper"]
    np.testing.assert_allclose(clean["S1"].sel(factor="image"), 1.0, atol=0.1)
    np.testing.assert_allclose(clean["ST"].sel(factor="hflip"), 0.0, atol=1e-6)
    assert float(paper["S1"].sel(factor="image")) < 0.3
    assert float(paper["ST"].sel(factor="hflip")) > 0.6


def _write_class_folders(root, tones: dict[str, list[float]]) -> None:
    """``root/<class>/<k>.png``: two-tone grey images, dark left half, ``tone`` on the right."""
    for cls, right in tones.items():
        (root / cls).mkdir(parents=True)
        for k, tone in enumerate(right):
            img = two_tone([DARK], [tone], side=32)[0].permute(1, 2, 0).numpy()
            Image.fromarray(img).save(root / cls / f"{k}.png")


def test_partition2_and_per_class(statistics, tmp_path):
    """Train images are darker than val images, and all images within a partition are alike: the
    partition factor explains the mean, the image factor and hflip / grayscale (grey images) cannot."""
    _write_class_folders(tmp_path / "train", {"a": [0.3, 0.3, 0.3], "b": [0.3, 0.3, 0.3]})
    _write_class_folders(tmp_path / "val", {"a": [0.7, 0.7], "b": [0.7, 0.7]})
    cfg = StudyConfig.from_dict(
        {
            "model": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
            "images": {
                "source": str(tmp_path / "train"),
                "partition2": str(tmp_path / "val"),
                "per_class": 2,
            },
            "study": {"kind": "sobol", "augmentations": ["hflip", "grayscale"], "n": 64},
            "run": {"batch_size": 1024, "device": "cpu"},
        }
    )
    study, tree = run(cfg, statistics, None, tmp_path / "out")
    assert study.factors.factor_names == ["hflip", "grayscale", "order", "partition", "image"]
    assert tree.attrs["images"] == 4 + 4  # two per class in each partition
    st = tree["mean"].dataset["ST"].mean("unit")
    assert st.idxmax("factor").item() == "partition"
    np.testing.assert_allclose(st.sel(factor="partition"), 1.0, atol=0.05)
    np.testing.assert_allclose(st.sel(factor=["hflip", "grayscale", "order", "image"]), 0.0, atol=1e-4)


def test_segments(tmp_path):
    """HSV segments of a small CNN: the value branch follows brightness, the hue branch the hue shift."""
    spec = [
        {
            "unit_name": "first",
            "module_type": "sequential",
            "modules_names": ["conv"],
            "neurons": {"conv": {"0": [], "1": []}},
        }
    ]
    (tmp_path / "segments.json").write_text(json.dumps(spec))
    cfg = StudyConfig.from_dict(
        {
            "model": {
                "name": "augsens.testing:tiny_cnn",
                "segments": str(tmp_path / "segments.json"),
                "segment_channels": ["hue", "value"],
            },
            "study": {"kind": "sobol", "augmentations": ["brightness", "hue"], "n": 64},
            "run": {"batch_size": 1024, "device": "cpu"},
        }
    )
    # 224 x 224: a study reads activation shapes off a 224 x 224 probe, and the segment keeps positions
    colour = torch.tensor([0.3, 0.15, 0.05]).view(1, 3, 1, 1).expand(1, 3, 224, 224)
    images = cache((colour * 255).round().to(torch.uint8))
    study, tree = run(cfg, None, images, tmp_path / "out")
    assert study.checkpoints == ["first_hue", "first_value"]
    hue = tree["first_hue"].dataset["ST_checkpoint"]
    value = tree["first_value"].dataset["ST_checkpoint"]
    assert hue.idxmax("factor").item() == "hue" and value.idxmax("factor").item() == "brightness"
    np.testing.assert_allclose(hue.sel(factor="brightness"), 0.0, atol=1e-3)
    np.testing.assert_allclose(value.sel(factor="hue"), 0.0, atol=1e-3)


def test_float32_state_agrees_with_float64(statistics, one_image, tmp_path):
    out = {}
    for dtype in ("float64", "float32"):
        cfg = config(kind="sobol")
        cfg.run.state_dtype = dtype
        out[dtype] = run(cfg, statistics, one_image, tmp_path / dtype)[1]["left_right"]
    assert out["float32"].attrs["state_dtype"] == "torch.float32"
    for name in ("S1", "ST", "mean", "var"):
        np.testing.assert_allclose(out["float32"].dataset[name], out["float64"].dataset[name], atol=1e-5)
    assert out["float32"].dataset["ST"].sel(factor="hflip").min() > 0.5


class _Probe(torch.nn.Module):
    """Channel means, turned NaN (channel 0) or inf (channel 1) when bright; channel 2 never finite."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(-2, -1))
        bright = m > 0.35
        return torch.stack(
            [
                torch.where(bright[:, 0], torch.nan, m[:, 0]),
                torch.where(bright[:, 1], torch.inf, m[:, 1]),
                torch.full_like(m[:, 2], torch.nan),
            ],
            dim=1,
        )


@pytest.mark.parametrize("kind", ["sobol", "moments"])
def test_nonfinite_outputs_are_counted_and_reported(one_image, tmp_path, kind):
    model = load(torch.nn.Sequential(_Probe()), checkpoints=["0"], mean=(0, 0, 0), std=(1, 1, 1))
    _, tree = run(config(kind=kind, augmentations=["brightness"]), model, one_image, tmp_path)
    ds = tree["0"].dataset
    counted = json.loads(open_results(tmp_path).attrs["nonfinite"])["0"]
    assert counted == int(ds["nonfinite"].sum()) and counted > 0
    assert ds["nonfinite"].values[2] == ds["nonfinite"].values.max()  # never finite: every sample
    assert np.isnan(ds["mean"].values[2]) and np.isnan(ds["var"].values[2])  # no value, no moments
    assert np.isfinite(ds["mean"].values[:2]).all()
    if kind == "sobol":
        assert np.isfinite(ds["ST"].values[:, :2]).all()
    html = write_report(tmp_path).read_text()
    assert f"<tr><td>0</td><td>{counted}</td></tr>" in html  # the provenance table of the report

"""Guided masking: mask semantics, the shared-prefix batched forward, profile statistics, the report."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from scipy import stats
from torch import nn

from augsens.analysis.masking import (
    GuidedMasking,
    MaskConfig,
    MaskSet,
    cluster_profiles,
    guided_masking_report,
    mask_configs,
    mask_multiplier,
    spearman_profiles,
)
from augsens.analysis.single_class import jaccard_index, top_sensitive_classes

CHECKPOINTS = {"act1": (4, 16, 16), "act2": (6, 8, 8)}


def _net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(3, 4, 3, padding=1),
            act1=nn.ReLU(),
            conv2=nn.Conv2d(4, 6, 3, stride=2, padding=1),
            act2=nn.ReLU(),
            pool=nn.AdaptiveAvgPool2d(2),
            flat=nn.Flatten(),
            fc=nn.Linear(24, 10),
        )
    )


def _maps(n_maps: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    # Values slightly outside [0, 1] exercise the clip.
    return {name: torch.rand(n_maps, *shape, generator=g) * 1.2 - 0.1 for name, shape in CHECKPOINTS.items()}


def _images(n: int = 5, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def _reference(net: nn.Module, x: torch.Tensor, maps, configs) -> torch.Tensor:
    """Every (map, config) row run on its own, with a hook per checkpoint built from mask_multiplier."""
    outs = []
    n_maps = next(iter(maps.values())).shape[0]
    for g in range(n_maps):
        for config in configs:
            handles = [
                getattr(net, name).register_forward_hook(
                    lambda _m, _a, out, mult=mask_multiplier(maps[name][g], config): out * mult
                )
                for name in maps
            ]
            try:
                with torch.no_grad():
                    outs.append(net(x))
            finally:
                for h in handles:
                    h.remove()
    return torch.stack(outs)


def test_mask_configs_are_the_papers_17():
    configs = mask_configs()
    assert len(configs) == 17
    assert [c.name for c in configs[:5]] == [f"alpha=0.00_q={q:.2f}" for q in (0.5, 0.6, 0.7, 0.8, 0.9)]
    assert configs[14].name == "alpha=1.50_q=0.90"
    assert [c.name for c in configs[15:]] == ["soft", "soft_inverted"]


def test_quantile_mask_selects_the_elements_at_or_above_the_quantile():
    s = torch.arange(10.0) / 10  # 0.0 .. 0.9
    # Linear interpolation: the 0.5-quantile is 0.45, the 0.9-quantile 0.81, the 0.0-quantile 0.0.
    expected = {0.5: [5, 6, 7, 8, 9], 0.9: [9], 0.0: list(range(10))}
    for q, selected in expected.items():
        mult = mask_multiplier(s, MaskConfig("quantile", quantile=q, alpha=0.0))
        assert torch.nonzero(mult == 0).flatten().tolist() == selected
        assert bool((mult[[i for i in range(10) if i not in selected]] == 1).all())
    # "At or above": a tie at the quantile is selected (the 0.5-quantile of [0, 0, 0, 1] is 0).
    tie = mask_multiplier(torch.tensor([0.0, 0.0, 0.0, 1.0]), MaskConfig("quantile", quantile=0.5, alpha=1.5))
    assert tie.tolist() == [1.5, 1.5, 1.5, 1.5]
    # The quantile is taken over the whole (C, H, W) map, not per channel.
    s3 = torch.tensor([[[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.6], [0.7, 0.8]]])
    mult3 = mask_multiplier(s3, MaskConfig("quantile", quantile=0.5, alpha=0.5))
    assert torch.equal(mult3, torch.tensor([[[1.0, 1.0], [1.0, 1.0]], [[0.5, 0.5], [0.5, 0.5]]]))


def test_soft_masks_clip_and_treat_nan_as_zero():
    s = torch.tensor([-0.2, 0.25, 1.3, float("nan")])
    assert mask_multiplier(s, MaskConfig("soft")).tolist() == [0.0, 0.25, 1.0, 0.0]
    assert mask_multiplier(s, MaskConfig("soft", invert=True)).tolist() == [1.0, 0.75, 0.0, 1.0]


def test_maskset_rows_match_the_single_mask_reference():
    maps = _maps(3)
    labels = [("S1", "a"), ("S1", "b"), ("ST", "a")]
    masks = MaskSet(maps, labels)
    assert len(masks) == 3 * 17
    for r, (measure, factor, config) in enumerate(masks.rows):
        g = labels.index((measure, factor))
        for name in CHECKPOINTS:
            torch.testing.assert_close(
                masks.multipliers(name, r, r + 1)[0], mask_multiplier(maps[name][g], config)
            )


def test_identity_masks_leave_predictions_unchanged():
    net, x = _net(), _images()
    maps = _maps(2)
    maps_zero = {name: torch.zeros_like(m) for name, m in maps.items()}
    plain = net(x).detach()
    alpha_one = mask_configs(alphas=[1.0], soft=False)
    for mask_maps, configs in ((maps, alpha_one), (maps_zero, [MaskConfig("soft", invert=True)])):
        masks = MaskSet(mask_maps, [("S1", "a"), ("S1", "b")], configs)
        out = GuidedMasking(net, masks).predict(x)
        assert out.shape == (len(masks), 5, 10)
        torch.testing.assert_close(out, plain.expand_as(out), rtol=1e-5, atol=1e-6)
        top = GuidedMasking(net, masks).predict(x, top_k=3)
        assert torch.equal(top, plain.topk(3).indices.expand_as(top))


@pytest.mark.parametrize("configs_per_forward", [None, 5, 1])
def test_shared_prefix_forward_equals_each_configuration_run_separately(configs_per_forward):
    net, x = _net(), _images()
    maps = _maps(2, seed=3)
    masks = MaskSet(maps, [("S1", "a"), ("shapley", "a")])
    expected = _reference(net, x, maps, masks.configs)
    masking = GuidedMasking(net, masks)
    shared = masking.predict(x, configs_per_forward=configs_per_forward)
    repeated = masking.predict(x, configs_per_forward=configs_per_forward, shared_prefix=False)
    torch.testing.assert_close(shared, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(repeated, expected, rtol=1e-5, atol=1e-6)
    # The masks do change the outputs (otherwise the comparison proves nothing).
    assert (expected - net(x).detach()).abs().amax() > 1e-2


def test_normalize_is_applied_before_masking():
    net, x = _net(), _images()
    masks = MaskSet(_maps(1), [("S1", "a")], [MaskConfig("soft")])
    expected = _reference(net, 2 * x - 1, _maps(1), masks.configs)
    out = GuidedMasking(net, masks, normalize=lambda t: 2 * t - 1).predict(x)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(GuidedMasking(net, masks).predict(2 * x - 1, normalized=True), expected)


def test_hooks_removed_and_training_flags_restored_even_on_error():
    net = _net()
    net.train()
    net.conv2.eval()  # a mixed state must come back exactly
    flags = [m.training for m in net.modules()]
    masks = MaskSet(_maps(1), [("S1", "a")])
    GuidedMasking(net, masks).predict(_images())
    assert [m.training for m in net.modules()] == flags
    assert all(not m._forward_hooks for m in net.modules())
    with pytest.raises(ValueError, match=r"outputs \(4, 8, 8\) per image but its map is \(4, 16, 16\)"):
        GuidedMasking(net, masks).predict(torch.rand(2, 3, 8, 8))
    assert [m.training for m in net.modules()] == flags
    assert all(not m._forward_hooks for m in net.modules())


def test_errors_name_the_problem():
    net = _net()
    masks = MaskSet(_maps(1), [("S1", "a")])
    with pytest.raises(KeyError, match=r"unknown module 'act3'\. Did you mean \['act2', 'act1'\]"):
        GuidedMasking(net, MaskSet({"act3": torch.rand(1, 4, 16, 16)}, [("S1", "a")]))
    with pytest.raises(ValueError, match="configs_per_forward=0 must be a positive integer"):
        GuidedMasking(net, masks).predict(_images(), configs_per_forward=0)
    with pytest.raises(TypeError, match="must be an augsens LoadedModel or a torch.nn.Module"):
        GuidedMasking(object(), masks)
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\] for a quantile mask"):
        MaskConfig("quantile", quantile=1.5, alpha=0.0)
    with pytest.raises(ValueError, match="first axis must have one map per label"):
        MaskSet({"act1": torch.rand(2, 4, 16, 16)}, [("S1", "a")])
    shared = nn.ReLU()
    reused = nn.Sequential(
        OrderedDict(conv=nn.Conv2d(3, 3, 1), act=shared, conv2=nn.Conv2d(3, 3, 1), act2=shared)
    )
    with pytest.raises(ValueError, match="runs more than once per forward"):
        GuidedMasking(reused, MaskSet({"act": torch.rand(1, 3, 4, 4)}, [("S1", "a")])).predict(
            torch.rand(1, 3, 4, 4)
        )


def test_amplifying_a_unit_that_feeds_one_class_biases_top_k_towards_it():
    torch.manual_seed(0)
    net = nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(3, 4, 3, padding=1),
            act=nn.ReLU(),
            pool=nn.AdaptiveAvgPool2d(1),
            flat=nn.Flatten(),
            fc=nn.Linear(4, 10),
        )
    )
    with torch.no_grad():
        net.conv.bias[0] = 0.5  # channel 0 is active on every image
        net.fc.weight[:, 0] = 0.0
        net.fc.weight[3, 0] = 2.0  # ... and feeds class 3 only
    x = torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        # Put class 3 just below the top 3 (0.1 under the third-best other class on average); amplifying
        # channel 0 by 1.5 adds 2 * 0.5 * its mean activation (about 0.45) to class 3.
        logits = net(x)
        third = logits[:, [c for c in range(10) if c != 3]].topk(3).values[:, 2].mean()
        net.fc.bias[3] -= logits[:, 3].mean() - third + 0.1
    # Factor "f" moves channel 0 most: its values (1.0) are exactly the top quarter of the map.
    sens = torch.rand(1, 4, 8, 8, generator=torch.Generator().manual_seed(1)) * 0.5
    sens[0, 0] = 1.0
    masks = MaskSet({"act": sens}, [("S1", "f")], [MaskConfig("quantile", quantile=0.75, alpha=1.5)])
    assert masks.multipliers("act").eq(1.5).sum() == 64  # only channel 0 amplified
    # At the classifier, class 3 is the one most sensitive to "f".
    classifier_sens = np.linspace(0.0, 0.1, 10)[None, :]
    classifier_sens[0, 3] = 0.9
    candidates = torch.from_numpy(top_sensitive_classes(classifier_sens, k=3))  # [1, 3], class 3 first
    assert candidates[0, 0] == 3

    plain = net(x).detach()
    masked = GuidedMasking(net, masks).predict(x)[0]
    others = [c for c in range(10) if c != 3]
    torch.testing.assert_close(masked[:, others], plain[:, others])  # no other class moves
    assert bool((masked[:, 3] > plain[:, 3]).all())
    plain_top, masked_top = plain.topk(3).indices, masked.topk(3).indices
    in_plain, in_masked = (plain_top == 3).any(1).sum().item(), (masked_top == 3).any(1).sum().item()
    assert in_masked >= in_plain + 32, (in_plain, in_masked)
    j_plain = jaccard_index(plain_top, candidates).double().mean().item()
    j_masked = jaccard_index(masked_top, candidates).double().mean().item()
    assert j_masked > j_plain + 0.1, (j_plain, j_masked)


def test_spearman_matches_hand_values_and_scipy():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    assert spearman_profiles(a, np.array([1.0, 3.0, 2.0, 4.0])) == pytest.approx(0.8)
    assert spearman_profiles(a, a[::-1]) == pytest.approx(-1.0)
    # Ties take average ranks: [1.5, 1.5, 3, 4] vs [1, 2, 3, 4] -> 4.5 / sqrt(4.5 * 5).
    assert spearman_profiles(np.array([1.0, 1.0, 2.0, 3.0]), a) == pytest.approx(4.5 / np.sqrt(22.5))
    assert np.isnan(spearman_profiles(np.ones(4), a))
    rng = np.random.default_rng(0)
    p, r = rng.random((3, 5, 17)), rng.random((5, 17))
    rho = spearman_profiles(p, r)
    assert rho.shape == (3, 5)
    assert rho[2, 4] == pytest.approx(stats.spearmanr(p[2, 4], r[4]).statistic)


def test_clustering_matches_hand_computed_average_linkage():
    profiles = np.array([[1, 2, 3, 4], [4, 3, 2, 1], [1, 3, 2, 4], [2, 1, 4, 3]], dtype=float)
    result = cluster_profiles(profiles)
    # rho(0,1) = -1 -> d = 0; rho(0,2) = 0.8, rho(1,2) = -0.8 -> sqrt(0.2); rho(0,3) = 0.6 -> sqrt(0.4);
    # rho(2,3) = 0 -> 1.
    d = result.distance
    assert d[0, 1] == pytest.approx(0.0)
    assert d[0, 2] == pytest.approx(np.sqrt(0.2)) and d[1, 2] == pytest.approx(np.sqrt(0.2))
    assert d[0, 3] == pytest.approx(np.sqrt(0.4)) and d[2, 3] == pytest.approx(1.0)
    # Average linkage: {0,1} at 0; + 2 at sqrt(0.2); + 3 at (2 sqrt(0.4) + 1) / 3.
    np.testing.assert_allclose(result.linkage[:, 2], [0.0, np.sqrt(0.2), (2 * np.sqrt(0.4) + 1) / 3])
    labels = result.labels
    assert labels[0] == labels[1] and len({labels[0], labels[2], labels[3]}) == 3


# --- the report on a synthetic results folder --------------------------------------------------------


class _Model:
    """The parts of LoadedModel the report uses."""

    def __init__(self) -> None:
        self.module = _net()
        self.classifier = "fc"
        self.categories = [f"class {i}" for i in range(10)]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 0.5) / 0.5


class _Images:
    """The parts of ImageCache the report uses."""

    def __init__(self, n: int = 6) -> None:
        self.images = _images(n, seed=7)
        self.classes = [f"c{i}" for i in range(10)]
        self.labels = torch.arange(n) % 10

    def __len__(self) -> int:
        return len(self.images)

    def gather(self, index: torch.Tensor) -> torch.Tensor:
        return self.images[index]


def _results_dir(root: Path, factors: list[str], measures=("S1", "shapley")) -> Path:
    rng = np.random.default_rng(0)
    nodes = {"/": xr.Dataset(attrs={"config": "{}"})}
    for name, shape in CHECKPOINTS.items():
        data = {m: (("factor", "channel", "y", "x"), rng.random((len(factors), *shape))) for m in measures}
        nodes[name] = xr.Dataset(data, coords={"factor": factors})
    data = {m: (("factor", "unit"), rng.random((len(factors), 10))) for m in measures}
    nodes["fc"] = xr.Dataset(data, coords={"factor": factors})
    xr.DataTree.from_dict(nodes).to_zarr(root / "results.zarr", zarr_format=2, consolidated=True)
    return root


@pytest.mark.parametrize("labels", ["auto", None])
def test_report_writes_tables_figures_and_html(tmp_path, labels):
    pytest.importorskip("augsens.augment")
    factors = ["brightness", "hflip", "order"]
    results = _results_dir(tmp_path / "study", factors)
    out = tmp_path / "out"
    report = guided_masking_report(
        [results], _Model(), _Images(), out, quantiles=(0.5, 0.9), alphas=(0.0, 1.0),
        draws=2, batch_size=4, configs_per_forward=7, labels=labels, repeats=10_000,
    )  # fmt: skip
    acc = pd.read_csv(report.tables["accuracy"])
    n_rows = 2 * 3 * 6  # measures x factors x (4 quantile + 2 soft) configs
    inputs = ["original", "brightness", "hflip"]  # "order" is not an augmentation
    assert list(dict.fromkeys(acc["input"])) == inputs
    assert len(acc) == len(inputs) * (1 + n_rows)
    # Counts: 6 images; brightness has 2 draws per image, parameter-free hflip one.
    assert acc.groupby("input")["n"].first().to_dict() == {"original": 6, "brightness": 12, "hflip": 6}
    unmasked = acc[acc["config"] == "none"].set_index("input")
    masked = acc[acc["config"] != "none"]
    assert ((masked["jaccard"] >= 0) & (masked["jaccard"] <= 1)).all()
    identity = masked[masked["config"].str.startswith("alpha=1.00")]
    for name in inputs:  # alpha = 1 changes nothing, whatever the input
        rows = identity[identity["input"] == name]
        assert np.allclose(rows["top1"], unmasked.loc[name, "top1"])
        assert np.allclose(rows["top5"], unmasked.loc[name, "top5"])
    if labels is None:
        assert (acc["label_source"] == "unmasked_top1").all()
        assert unmasked.loc["original", "top1"] == 1.0
    else:
        assert (acc["label_source"] == "labels").all()
    spearman = pd.read_csv(report.tables["spearman"])
    assert len(spearman) == 2 * 2 * 3  # measures x augmented inputs x mask factors
    clusters = pd.read_csv(report.tables["clusters"])
    assert len(clusters) == 2 * 3 * 3  # measures x inputs x mask factors
    classes = pd.read_csv(report.tables["class_sensitivity"])
    assert set(classes["measure"]) == {"S1", "shapley"} and classes["name"].str.startswith("class ").all()
    tau = report.thresholds["study"].tau
    candidates = pd.read_csv(report.tables["jaccard_candidates"])
    assert (candidates["jaccard"] > tau).all()
    assert set(report.figures) == {
        "study_spearman_S1", "study_spearman_shapley", "study_dendrogram_S1", "study_dendrogram_shapley",
        "study_class_decay",
    }  # fmt: skip
    assert all(p.is_file() and p.stat().st_size > 1000 for p in report.figures.values())
    assert report.html.startswith('<section class="augsens-guided-masking">')
    assert 'src="study_spearman_S1.png"' in report.html and f"{tau:.5f}" in report.html


def test_report_draws_are_counter_based():
    from augsens.analysis.masking.run import _draw_params

    augment = pytest.importorskip("augsens.augment")
    spec = augment.AUGMENTATIONS["erasing"]
    full = _draw_params(spec, np.arange(6), 3, seed=5)
    part = _draw_params(spec, np.array([4, 5]), 3, seed=5)
    for p in spec.params:
        assert torch.equal(full[p.name].reshape(3, 6)[:, 4:], part[p.name].reshape(3, 2))
        assert bool(((full[p.name] >= p.low) & (full[p.name] <= p.high)).all())
        assert len(set(full[p.name].tolist())) > 12  # draws and images differ
    assert torch.equal(full["center_y"], full["center_y"].round())  # integer parameter
    other = _draw_params(spec, np.arange(6), 3, seed=6)
    assert not torch.equal(full["scale"], other["scale"])


def test_report_refuses_bad_input(tmp_path):
    results = _results_dir(tmp_path / "study", ["brightness"], measures=("S1",))
    with pytest.raises(
        KeyError, match="measure 'ST' is not available at every checkpoint; available: \\['S1'\\]"
    ):
        guided_masking_report([results], _Model(), _Images(), tmp_path / "out", measures=["ST"])
    with pytest.raises(ValueError, match="draws=0 must be a positive integer"):
        guided_masking_report([results], _Model(), _Images(), tmp_path / "out", draws=0)
    with pytest.raises(FileNotFoundError, match="is not an augsens results folder"):
        guided_masking_report([tmp_path], _Model(), _Images(), tmp_path / "out")

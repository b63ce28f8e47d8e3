"""Contrast statistics against SciPy and their definitions; the block-pass study end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.stats
import torch
import xarray as xr
from torch import nn

from augsens.analysis.contrast import contrast_report
from augsens.core.draws import counter_uniform
from augsens.core.estimate import MomentsAccumulator
from augsens.core.paired import benjamini_yekutieli, point_biserial, rank_biserial, wilcoxon_zsplit
from augsens.engine.contrast import _AugPlan, _moments, contrast_study


@pytest.fixture(scope="module")
def differences() -> np.ndarray:
    """[n=40, 7] paired differences: ties, zeros, one all-zero and one shifted element."""
    rng = np.random.default_rng(3)
    d = np.round(rng.normal(size=(40, 7)), 1)  # rounding makes ties and exact zeros
    d[:5, 1] = 0.0
    d[:, 2] = 0.0
    d[:, 3] += 0.8
    d[::3, 4] = 0.5  # a large tie group
    return d


def test_wilcoxon_matches_scipy(differences: np.ndarray) -> None:
    res = wilcoxon_zsplit(torch.from_numpy(differences))
    assert (differences == 0).any(axis=0)[:3].all()
    for j in range(differences.shape[1]):
        ref = scipy.stats.wilcoxon(
            differences[:, j],
            zero_method="zsplit",
            correction=True,
            alternative="two-sided",
            method="asymptotic",
        )
        assert res.statistic[j].item() == pytest.approx(ref.statistic, rel=1e-12)
        assert res.p_value[j].item() == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
        assert -abs(res.z[j].item()) == pytest.approx(ref.zstatistic, rel=1e-9)
    assert res.p_value[2].item() == 1.0  # no difference at all: R+ = R- = n(n+1)/4


def test_wilcoxon_any_dim_and_float32(differences: np.ndarray) -> None:
    d32 = torch.from_numpy(differences).float()
    a = wilcoxon_zsplit(d32)
    b = wilcoxon_zsplit(d32.T.contiguous(), dim=1)
    assert a.statistic.dtype == torch.float64
    assert torch.allclose(a.p_value, b.p_value, rtol=1e-12)
    ref = wilcoxon_zsplit(d32.double())
    assert torch.allclose(a.statistic, ref.statistic)  # ranks do not depend on the dtype


def test_wilcoxon_marks_non_finite_elements() -> None:
    d = torch.randn(20, 3, dtype=torch.float64)
    d[4, 1] = float("nan")
    res = wilcoxon_zsplit(d)
    assert torch.isnan(res.p_value[1]) and torch.isfinite(res.p_value[[0, 2]]).all()


def test_rank_biserial_definition(differences: np.ndarray) -> None:
    res = wilcoxon_zsplit(torch.from_numpy(differences))
    n = differences.shape[0]
    for j in range(differences.shape[1]):
        d = differences[:, j]
        ranks = scipy.stats.rankdata(np.abs(d))
        r_plus = ranks[d > 0].sum() + ranks[d == 0].sum() / 2
        r_minus = ranks[d < 0].sum() + ranks[d == 0].sum() / 2
        expected = (r_plus - r_minus) / (n * (n + 1) / 2)
        signed = rank_biserial(res.r_plus, res.r_minus, res.n)[j].item()
        unsigned = rank_biserial(res.r_plus, res.r_minus, res.n, signed=False)[j].item()
        assert signed == pytest.approx(expected, abs=1e-12)
        # the authors' 4 |T - (R+ + R-)/2| / (n (n + 1)) with T = min(R+, R-)
        t = min(r_plus, r_minus)
        assert unsigned == pytest.approx(4 * abs(t - (r_plus + r_minus) / 2) / (n * (n + 1)), abs=1e-12)
    assert rank_biserial(res.r_plus, res.r_minus, res.n)[3] > 0.5  # shifted element: augmentation raises it


def test_point_biserial_streams_to_definition() -> None:
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(12, 5))
    x1 = rng.normal(loc=0.7, size=(30, 5))
    x0[:, 4] = x1[:, 4] = 2.0  # constant element
    m0, m1 = MomentsAccumulator(), MomentsAccumulator()
    m0.update(torch.from_numpy(x0))
    for chunk in np.array_split(x1, 4):  # streamed in unequal batches
        m1.update(torch.from_numpy(chunk))
    r = point_biserial(*_moments(m0), *_moments(m1)).numpy()
    labels = np.r_[np.zeros(12), np.ones(30)]
    for j in range(4):
        values = np.r_[x0[:, j], x1[:, j]]
        # definition: (m1 - m0) sqrt(p0 p1) / s_pooled with the population std of both groups together
        by_hand = (x1[:, j].mean() - x0[:, j].mean()) * np.sqrt(12 * 30 / 42**2) / values.std()
        assert r[j] == pytest.approx(by_hand, rel=1e-10)
        assert r[j] == pytest.approx(scipy.stats.pointbiserialr(labels, values).statistic, rel=1e-10)
    assert r[4] == 0.0


def test_benjamini_yekutieli_is_scipy() -> None:
    p = np.random.default_rng(1).uniform(size=50) ** 3
    p[[3, 17]] = np.nan
    adj = benjamini_yekutieli(p)
    ok = np.isfinite(p)
    np.testing.assert_allclose(adj[ok], scipy.stats.false_discovery_control(p[ok], method="by"), rtol=1e-14)
    assert np.isnan(adj[[3, 17]]).all()
    assert (adj[ok] >= p[ok]).all()


def test_counter_uniform_is_addressable() -> None:
    rows = np.arange(100)
    full = counter_uniform(7, 3, rows, 4)
    again = counter_uniform(7, 3, rows[::-1][:10], 4)
    np.testing.assert_array_equal(again, full[::-1][:10])
    assert not np.array_equal(counter_uniform(8, 3, rows, 4), full)
    assert not np.array_equal(counter_uniform(7, 4, rows, 4), full)
    assert 0.0 <= full.min() and full.max() < 1.0 and abs(full.mean() - 0.5) < 0.05
    with pytest.raises(ValueError, match="non-negative"):
        counter_uniform(-1, 0, rows, 1)


def test_integer_parameters_stay_in_bounds() -> None:
    p = _AugPlan("rolling", 10).parameters(0, np.arange(2000), torch.device("cpu"))
    for key in ("shift_y", "shift_x"):  # the authors' integers on [-44, 44)
        assert p[key].min() >= -44 and p[key].max() <= 43
        assert torch.equal(p[key], p[key].round())
    sigma = _AugPlan("gaussian_blur", 10).parameters(0, np.arange(2000), torch.device("cpu"))["sigma"]
    assert sigma.min() >= 0.1 and sigma.max() <= 2.0 and not torch.equal(sigma, sigma.round())


# ----------------------------------------------------------------------------- end to end


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


@pytest.fixture(scope="module")
def tiny():
    from augsens.data import ImageCache
    from augsens.models import load

    model = load(_Tiny(), checkpoints=["conv", "pool", "fc"], mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (4, 3, 12, 12), dtype=torch.uint8, generator=g)
    cache = ImageCache(images, torch.zeros(4, dtype=torch.long), ["a"], [f"im{i}" for i in range(4)])
    return model, cache


AUGS = ["brightness", "hflip", "contrast"]


def test_contrast_study_blocks_equal_one_pass(tiny, tmp_path) -> None:
    model, cache = tiny
    one = contrast_study(model, cache, augmentations=AUGS, draws=3, pairing="draw", batch_size=8)
    blocks = contrast_study(
        model,
        cache,
        augmentations=AUGS,
        draws=3,
        pairing="draw",
        batch_size=5,
        block_elements=37,
        out=tmp_path,
    )
    assert one.attrs["n_passes"] == 1 and blocks.attrs["n_passes"] > 5
    for c in ("conv", "pool", "fc"):
        for v in ("wilcoxon_stat", "p_value", "p_value_by", "rank_biserial", "point_biserial"):
            # ranks are identical; the moments see float32 activations of other batch sizes (last-bit noise)
            xr.testing.assert_allclose(one[c][v], blocks[c][v], rtol=1e-6, atol=1e-6)
    assert one["conv"]["p_value"].dims == ("augmentation", "channel", "y", "x")
    assert one["fc"]["p_value"].dims == ("augmentation", "unit")
    assert one["conv"]["n_pairs"].values.tolist() == [12, 4, 12]  # hflip has no parameters: one copy
    back = xr.open_datatree(tmp_path / "results.zarr", engine="zarr")
    xr.testing.assert_allclose(back["pool"]["rank_biserial"], blocks["pool"]["rank_biserial"])
    assert json.loads(back.attrs["config"])["augmentations"] == AUGS


def test_contrast_study_matches_direct_computation(tiny) -> None:
    from augsens.augment import apply

    model, cache = tiny
    tree = contrast_study(model, cache, augmentations=["brightness"], draws=3, pairing="draw", seed=5)
    plan = _AugPlan("brightness", 3)
    x = cache.gather(torch.arange(4))
    params = plan.parameters(5, np.arange(12), torch.device("cpu"))
    with torch.no_grad():
        a0 = model.capture(x, checkpoints=["pool"])["pool"].reshape(4, -1).double()
        a1 = model.capture(apply("brightness", x.repeat_interleave(3, 0), **params), checkpoints=["pool"])
    a1 = a1["pool"].reshape(12, -1).double()
    d = (a1 - a0.repeat_interleave(3, 0)).numpy()
    ref = scipy.stats.wilcoxon(d, zero_method="zsplit", correction=True, method="asymptotic", axis=0)
    np.testing.assert_allclose(tree["pool"]["p_value"].values.reshape(-1), ref.pvalue, rtol=1e-5)
    pb = [
        scipy.stats.pointbiserialr(np.r_[np.zeros(4), np.ones(12)], np.r_[a0[:, j], a1[:, j]]).statistic
        for j in range(d.shape[1])
    ]
    np.testing.assert_allclose(tree["pool"]["point_biserial"].values.reshape(-1), pb, rtol=1e-6)
    p = tree["pool"]["p_value"].values.reshape(-1)
    allp = np.concatenate([tree[c]["p_value"].values.reshape(-1) for c in ("conv", "pool", "fc")])
    by = scipy.stats.false_discovery_control(allp, method="by")
    np.testing.assert_allclose(
        tree["pool"]["p_value_by"].values.reshape(-1), by[64 : 64 + p.size], rtol=1e-12
    )


def test_image_pairing_and_paper_swap(tiny, tmp_path) -> None:
    model, cache = tiny
    clean = contrast_study(model, cache, augmentations=["brightness"], draws=3, n_images=3)
    assert clean["conv"]["n_pairs"].item() == 3
    paper = contrast_study(
        model, cache, augmentations=["brightness"], draws=3, n_images=3, mode="paper", swap_effect_names=True
    )
    assert paper["conv"]["n_pairs"].item() == 9
    assert json.loads(paper.attrs["config"])["swap_effect_names"] is True
    # the swapped "point_biserial" holds the authors' unsigned rank-biserial value
    assert (paper["conv"]["point_biserial"] >= 0).all()
    with pytest.raises(ValueError, match="needs mode='paper'"):
        contrast_study(model, cache, augmentations=["brightness"], swap_effect_names=True)
    with pytest.raises(KeyError, match="unknown augmentation 'brightnes'"):
        contrast_study(model, cache, augmentations=["brightnes"])
    with pytest.raises(ValueError, match=r"n_images must be an integer in \[1, 4\]"):
        contrast_study(model, cache, augmentations=["hflip"], n_images=9)
    contrast_study(model, cache, augmentations=["brightness", "hflip"], draws=2, out=tmp_path / "study")
    files = contrast_report([tmp_path / "study"], tmp_path / "report")
    assert files[0].name == "contrast_summary.csv" and all(f.exists() for f in files)
    assert len(files) == 4


def test_paired_statistics_stay_in_the_core_layer() -> None:
    """The statistics load without torchvision, PIL or any study, model, image or augmentation code."""
    import subprocess
    import sys

    code = (
        "import sys, augsens.core.paired\n"
        "bad = ('torchvision', 'PIL', 'timm', 'augsens.models', 'augsens.augment', 'augsens.data', "
        "'augsens.engine')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in bad or m.startswith(bad)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

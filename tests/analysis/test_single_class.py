"""Single-class analysis: top sensitive classes, Jaccard index, hypergeometric threshold, tables, plots."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from scipy import stats

from augsens.analysis.single_class import (
    jaccard_index,
    jaccard_threshold,
    plot_sensitivity_decay,
    sensitivity_table,
    top_sensitive_classes,
)


def test_top_sensitive_classes_orders_and_breaks_ties_by_index():
    s = np.array([[0.1, 0.5, 0.3, 0.5, np.nan], [np.nan, 0.0, 0.2, 0.2, 0.9]])
    np.testing.assert_array_equal(top_sensitive_classes(s, k=3), [[1, 3, 2], [4, 2, 3]])
    da = xr.DataArray(s, dims=("factor", "unit"))
    np.testing.assert_array_equal(top_sensitive_classes(da, k=1), [[1], [4]])
    with pytest.raises(ValueError, match="k=6 must lie in \\[1, 5\\]"):
        top_sensitive_classes(s, k=6)
    with pytest.raises(ValueError, match="sensitivity must be 2-D"):
        top_sensitive_classes(s[0])


def test_jaccard_index_hand_values_numpy_and_torch():
    assert jaccard_index(np.array([1, 2, 3]), np.array([3, 4, 5])) == pytest.approx(1 / 5)
    assert jaccard_index(np.array([1, 2, 3]), np.array([3, 2, 1])) == 1.0
    assert jaccard_index(np.array([1, 2]), np.array([3, 4, 5])) == 0.0
    # 2 shared of |A| + |B| - 2 = 5 + 3 - 2 = 6 distinct.
    assert jaccard_index(np.array([0, 1, 2, 3, 4]), np.array([4, 0, 9])) == pytest.approx(2 / 6)
    predictions = torch.tensor([[[1, 2, 3], [7, 8, 9]], [[3, 4, 5], [1, 7, 0]]])  # [configs, images, k]
    targets = torch.tensor([[1, 2, 7], [5, 6, 3]])[:, None, :]  # one target set per config
    expected = torch.tensor([[2 / 4, 1 / 5], [2 / 4, 0.0]])
    torch.testing.assert_close(jaccard_index(predictions, targets).float(), expected)


def test_threshold_reproduces_the_papers_values():
    # 10**6 simulated means per case (~0.3 s each) fix tau to about +-2e-6.
    ilsvrc = jaccard_threshold(1000, 1000 * 50, k=5, repeats=1_000_000, seed=0)
    assert ilsvrc.expected == pytest.approx(0.00278, abs=5e-6)
    assert ilsvrc.mean == pytest.approx(ilsvrc.expected, abs=2e-6)
    assert ilsvrc.tau == pytest.approx(0.00300, abs=1e-5)
    places = jaccard_threshold(365, 365 * 100, k=5, repeats=1_000_000, seed=0)
    assert places.mean == pytest.approx(0.00765, abs=1e-5)
    assert places.tau == pytest.approx(0.00806, abs=1e-5)
    # tau does not depend on the seed beyond the simulation noise.
    assert jaccard_threshold(1000, 50_000, repeats=200_000, seed=1).tau == pytest.approx(ilsvrc.tau, abs=1e-5)


def test_threshold_multinomial_shortcut_matches_direct_hypergeometric_draws():
    n_classes, n_samples, k, repeats = 12, 40, 3, 20_000
    rng = np.random.default_rng(3)
    overlap = rng.hypergeometric(k, n_classes - k, k, size=(repeats, n_samples))
    direct = (overlap / (2 * k - overlap)).mean(axis=1)
    q1, q3 = np.quantile(direct, [0.25, 0.75])
    result = jaccard_threshold(n_classes, n_samples, k=k, repeats=repeats, seed=4)
    assert result.mean == pytest.approx(direct.mean(), rel=5e-3)
    assert result.tau == pytest.approx(q3 + 1.5 * (q3 - q1), rel=2e-2)
    assert (result.q1, result.q3) == pytest.approx((q1, q3), rel=2e-2)
    # Exact expectation: E[K / (2k - K)] with the hypergeometric pmf.
    pmf = stats.hypergeom(n_classes, k, k).pmf(np.arange(k + 1))
    assert result.expected == pytest.approx(float(pmf @ (np.arange(k + 1) / (2 * k - np.arange(k + 1)))))


def test_threshold_refuses_bad_sizes():
    with pytest.raises(ValueError, match="n_samples=0 must be a positive integer"):
        jaccard_threshold(1000, 0)
    with pytest.raises(ValueError, match="k=6 must not exceed n_classes=5"):
        jaccard_threshold(5, 100, k=6)


def _classifier_map() -> xr.DataArray:
    values = np.array([[0.1, 0.7, 0.3, 0.0], [0.5, 0.2, 0.9, 0.4]])
    return xr.DataArray(values, dims=("factor", "unit"), coords={"factor": ["brightness", "hue"]})


def test_sensitivity_table_lists_top_classes_with_names():
    table = sensitivity_table(_classifier_map(), top=2, categories=["cat", "dog", "fox", "owl"])
    assert table.to_dict("list") == {
        "factor": ["brightness", "brightness", "hue", "hue"],
        "rank": [1, 2, 1, 2],
        "class": [1, 2, 2, 0],
        "name": ["dog", "fox", "fox", "cat"],
        "value": [0.7, 0.3, 0.9, 0.5],
    }
    with pytest.raises(ValueError, match="categories has 2 names but the map has 4 classes"):
        sensitivity_table(_classifier_map(), categories=["a", "b"])
    with pytest.raises(ValueError, match="dims \\('factor', 'unit'\\)"):
        sensitivity_table(_classifier_map().T)


def test_decay_plot_draws_the_sorted_top_values():
    fig = plot_sensitivity_decay({"S1": _classifier_map(), "shapley": _classifier_map() / 2}, top=3)
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["S1", "shapley"]
    lines = axes[0].get_lines()
    assert len(lines) == 2
    np.testing.assert_allclose(lines[1].get_ydata(), [0.9, 0.5, 0.4])
    with pytest.raises(ValueError, match="maps is empty"):
        plot_sensitivity_decay({})

"""Moments read off a sensitivity accumulator's state equal a moments pass over the same rows."""

import numpy as np
import torch

from augsens.core.estimate import MomentsAccumulator, ShapleyAccumulator, SobolAccumulator


def _ds(acc, dims=("o",)):
    return acc.finalize([], dims=dims)


def test_sobol_pooled_moments_equal_a_moments_pass_over_all_rows():
    g = torch.Generator().manual_seed(0)
    D, R = 3, 5
    acc = SobolAccumulator(D, replicates=2)
    ref = MomentsAccumulator(rows_per_sample=R)
    for rep in (0, 1, 1, 0):
        y = torch.randn(6, R, 7, generator=g) * 3 + 10
        acc.update(y, replicate=rep)
        ref.update(y)
    got, want = _ds(acc.pooled_moments()), _ds(ref)
    for v in ("mean", "var", "cov"):
        np.testing.assert_allclose(got[v].values, want[v].values, rtol=1e-12)


def test_exact_shapley_pooled_moments_use_the_full_row():
    g = torch.Generator().manual_seed(1)
    D = 2
    acc = ShapleyAccumulator(D)
    ref = MomentsAccumulator()
    for _ in range(3):
        y = torch.randn(5, 1 << D, 4, generator=g)
        acc.update(y)
        ref.update(y[:, -1])  # row 2^D - 1 is x
    got, want = _ds(acc.pooled_moments()), _ds(ref)
    np.testing.assert_allclose(got["var"].values, want["var"].values, rtol=1e-12)
    np.testing.assert_allclose(got["mean"].values, want["mean"].values, rtol=1e-12)


def test_replicates_without_variance_are_left_out_of_the_interval():
    """Element 1 is constant in replicate 0: its half-width comes from replicates 1 and 2 alone."""
    from scipy import stats

    g = torch.Generator().manual_seed(2)
    acc = SobolAccumulator(2, replicates=3)
    for rep in range(3):
        y = torch.randn(16, 4, 2, generator=g)
        if rep == 0:
            y[..., 1] = 3.0
        acc.update(y, replicate=rep)
    ds = acc.finalize(["a", "b"], dims=("o",))
    per = [acc_one.finalize(["a", "b"], dims=("o",))["ST"].values[:, 1] for acc_one in _split(acc)]
    assert np.isnan(per[0]).all()
    want = stats.t.ppf(0.975, 1) * np.std(per[1:], axis=0, ddof=1) / np.sqrt(2)
    np.testing.assert_allclose(ds["ST_conf"].values[:, 1], want, rtol=1e-6)  # k = 2 replicates, not 3
    assert np.isfinite(ds["ST_conf"].values).all()


def _split(acc):
    """One single-replicate accumulator per replicate slot of ``acc``."""
    out = []
    for r in range(acc.replicates):
        one = SobolAccumulator(acc.D)
        one.allocate(acc.out_shape, acc.count.device)
        one.count[0], one.mean[0], one.comoment[0] = acc.count[r], acc.mean[r], acc.comoment[r]
        one.seen = [acc.seen[r]]
        out.append(one)
    return out

"""Moments read off a sensitivity accumulator's state equal a moments pass over the same rows."""

import numpy as np
import torch

from augsens.estimate import MomentsAccumulator, ShapleyAccumulator, SobolAccumulator


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

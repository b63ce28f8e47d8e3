"""Outputs at the edges: no finite value, constant up to their own dtype's rounding, invalid orders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augsens.core.api import moments, shapley, sobol
from augsens.core.estimate import MomentsAccumulator, PermutationShapleyAccumulator, SobolAccumulator
from augsens.core.factors import Problem, Uniform
from augsens.errors import UserInputError

PROBLEM = Problem([Uniform("x1", 0, 1), Uniform("x2", 0, 1)])


def _half_nan(x: torch.Tensor) -> torch.Tensor:
    """Output 0 never finite, output 1 = x1 + 2 x2 (mean 1.5, variance 5/12)."""
    live = x[:, 0] + 2 * x[:, 1]
    return torch.stack([torch.full_like(live, torch.nan), live], dim=1)


def test_moments_of_an_output_without_a_finite_value_are_nan():
    ds = moments(_half_nan, PROBLEM, n=2**10)
    for name in ("mean", "var", "cov"):
        assert np.isnan(ds[name].values[0]), name
    np.testing.assert_allclose(ds["mean"].values[1], 1.5, atol=1e-3)
    np.testing.assert_allclose(ds["var"].values[1], 5 / 12, atol=1e-2)
    assert ds["nonfinite"].values.tolist() == [2**10, 0]
    acc = MomentsAccumulator()
    acc.update(_half_nan(torch.rand(64, 2, dtype=torch.float64)))
    # an element without data is left out of an aggregate instead of pulling its mean to 0
    agg = acc.aggregate(torch.zeros(2, dtype=torch.int64), 1)
    np.testing.assert_allclose(agg["mean"].values, acc.finalize()["mean"].values[1:], rtol=1e-12)


def test_pooled_moments_of_an_output_without_a_finite_value_are_nan():
    """Sobol and Shapley studies take their moments from the estimator's state: same rule."""
    ds = sobol(_half_nan, PROBLEM, n=2**6, replicates=2)
    assert np.isnan(ds["S1"].values[:, 0]).all() and np.isfinite(ds["S1"].values[:, 1]).all()
    acc = SobolAccumulator(2)
    y = _half_nan(torch.rand(32 * 4, 2, dtype=torch.float64)).reshape(32, 4, 2)
    acc.update(y)
    pooled = acc.pooled_moments().finalize()
    assert np.isnan(pooled["mean"].values[0]) and np.isnan(pooled["var"].values[0])
    assert np.isfinite(pooled["mean"].values[1])


def _rounding_case(dtype: torch.dtype):
    """Outputs in ``dtype``: 0 = 0.3 perturbed by about one unit in the last place of ``dtype`` (a
    constant up to rounding), 1 = a small but genuinely varying output (1e-6 scale, x1 dominates)."""
    eps = torch.finfo(dtype).eps

    def f(x: torch.Tensor) -> torch.Tensor:
        constant = 0.3 * (1 + eps * (2 * x[:, 0] - 1))
        small = 1e-6 * (1 + 0.5 * x[:, 0] + 0.1 * x[:, 1])
        return torch.stack([constant, small], dim=1).to(dtype)

    return f


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_constant_up_to_its_dtype_rounding_has_no_indices(dtype):
    f = _rounding_case(dtype)
    values = f(torch.rand(256, 2, dtype=torch.float64)).double()[:, 0]
    assert values.unique().numel() > 1  # rounding really leaves a spread, the guard has work to do
    for ds, main in (
        (sobol(f, PROBLEM, n=2**8, replicates=2), "S1"),
        (shapley(f, PROBLEM, n=2**8, replicates=2), "shapley"),
        (shapley(f, PROBLEM, n=2**8, replicates=2, method="permutation"), "shapley"),
    ):
        assert np.isnan(ds[main].values[:, 0]).all(), (main, ds[main].values[:, 0])
        small = ds[main].values[:, 1]
        assert np.isfinite(small).all() and small[0] > 0.8, (main, small)


def test_input_dtype_survives_state_round_trip_and_merge():
    f = _rounding_case(torch.float32)
    y = f(torch.rand(64 * 4, 2, dtype=torch.float64)).reshape(64, 4, 2)
    acc = SobolAccumulator(2)
    acc.update(y[:32])
    back = SobolAccumulator.from_state_dict(acc.state_dict())
    back.update(y[32:])
    assert np.isnan(back.finalize()["S1"].values[:, 0]).all()
    # a float64 shard merged with a float32 one: the coarser rounding decides
    fine = SobolAccumulator(2)
    fine.update(y[32:].double())
    assert np.isnan(fine.merge(back).finalize()["S1"].values[:, 0]).all()


@pytest.mark.parametrize(
    "perms",
    [
        torch.tensor([[0, 1, 2], [0, 0, 1]]),  # a repeated group
        torch.tensor([[0, 1, 2], [0, 1, 3]]),  # a group that does not exist
        torch.tensor([[0, 1, 2], [-1, 1, 2]]),
    ],
)
def test_permutation_shapley_refuses_rows_that_are_not_permutations(perms):
    acc = PermutationShapleyAccumulator(3)
    with pytest.raises(UserInputError, match=r"row 1 of perms .* is not a permutation of 0\.\.2"):
        acc.update(torch.zeros(2, 4, 5), perms)
    acc.update(torch.randn(2, 4, 5), torch.tensor([[2, 0, 1], [1, 2, 0]]))  # valid orders pass
    assert acc.n == 2

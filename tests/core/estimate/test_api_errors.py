"""Public estimators: output layout and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augsens.core.api import moments, shapley, sobol
from augsens.core.factors import Problem, Uniform

PROBLEM = Problem([Uniform("x1", 0, 1), Uniform("x2", 0, 1)])


def _field(x: torch.Tensor) -> torch.Tensor:
    """A [B, 3, 4] output: element (c, p) = (c + 1) x1 + p x2."""
    c = torch.arange(1, 4, dtype=torch.float64)[:, None, None]
    p = torch.arange(4, dtype=torch.float64)[None, :, None]
    return (c * x[:, 0] + p * x[:, 1]).permute(2, 0, 1)


def test_output_dims_and_values():
    ds = sobol(_field, PROBLEM, n=2**10, batch_size=100)
    assert ds["S1"].dims == ("factor", "dim_0", "dim_1") and ds["S1"].shape == (2, 3, 4)
    c, p = np.arange(1, 4)[:, None], np.arange(4)[None, :]
    np.testing.assert_allclose(ds["S1"].sel(factor="x1").values, c**2 / (c**2 + p**2), atol=5e-3)
    assert ds.attrs["n"] == 2**10 and ds.attrs["seed"] == 0
    sh = shapley(_field, PROBLEM, n=2**10, method="permutation")
    np.testing.assert_allclose(sh["shapley"].sum("factor").values, 1.0, atol=1e-12)
    mo = moments(_field, PROBLEM, n=2**10)
    assert set(mo.data_vars) >= {"mean", "var", "cov"} and mo["mean"].dims == ("dim_0", "dim_1")
    np.testing.assert_allclose(mo["mean"].values, (c + p) / 2, atol=1e-3)


def test_seed_and_arguments_change_results():
    a = sobol(_field, PROBLEM, n=2**6, seed=0)["S1"].values
    assert not np.array_equal(a, sobol(_field, PROBLEM, n=2**6, seed=1)["S1"].values)
    np.testing.assert_allclose(
        a, sobol(_field, PROBLEM, n=2**6, seed=0, batch_size=7)["S1"].values, atol=1e-12
    )
    assert not np.array_equal(a, sobol(_field, PROBLEM, n=2**6, method="janon_2014")["S1"].values)


def test_nan_outputs_are_counted_not_propagated():
    def f(x):
        y = x[:, 0] + 2 * x[:, 1]
        return torch.where(x[:, 0] > 0.9, torch.nan, y)[:, None].expand(-1, 2).clone()

    ds = sobol(f, PROBLEM, n=2**10)
    assert ds.attrs["nonfinite_total"] > 0 and np.isfinite(ds["S1"].values).all()


def test_zero_variance_output_is_nan():
    ds = sobol(lambda x: torch.ones(x.shape[0], 2), PROBLEM, n=2**6)
    assert np.isnan(ds["S1"].values).all() and np.isnan(ds["ST"].values).all()
    mo = moments(lambda x: torch.zeros(x.shape[0]), PROBLEM, n=2**6)
    assert float(mo["var"]) == 0 and float(mo["cov"]) == 0


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: sobol(_field, PROBLEM, n=1000), ValueError, "use n=512 or n=1024"),
        (lambda: sobol(_field, PROBLEM, n=2**10, replicates=3), ValueError, "not divisible by replicates=3"),
        (lambda: sobol(_field, PROBLEM, n=2**10, method="sobol"), ValueError, "method='sobol' is not valid"),
        (lambda: sobol(_field, PROBLEM, n=2**10, design="lhs"), ValueError, "design='lhs' is not a design"),
        (lambda: sobol("f", PROBLEM, n=64), TypeError, "f must be a callable"),
        (lambda: sobol(_field, [Uniform("x", 0, 1)], n=64), TypeError, "problem must be an augsens Problem"),
        (lambda: sobol(_field, PROBLEM, n=64, batch_size=0), ValueError, "batch_size must be a positive"),
        (lambda: sobol(lambda x: x.tolist(), PROBLEM, n=64), TypeError, "must return a torch.Tensor"),
        (lambda: sobol(lambda x: x[:-1], PROBLEM, n=64), ValueError, r"the first dim must be the batch"),
        (lambda: sobol(lambda x: x.sum(), PROBLEM, n=64), ValueError, r"f returned shape \(\)"),
        (lambda: sobol(lambda x: x[:, 5], PROBLEM, n=64), RuntimeError, "f raised IndexError"),
        (lambda: shapley(_field, PROBLEM, n=64, method="song"), ValueError, "method='song' is not valid"),
        (
            lambda: shapley(_field, Problem([Uniform(f"x{i}", 0, 1) for i in range(13)]), n=64),
            ValueError,
            "at most 12 allowed",
        ),
        (lambda: moments(_field, PROBLEM, n=100), ValueError, "use n=64 or n=128"),
        (lambda: Problem([]), ValueError, "empty list"),
        (lambda: Problem([Uniform("a", 0, 1)], groups={"g": ["b"]}), KeyError, "unknown parameter 'b'"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()

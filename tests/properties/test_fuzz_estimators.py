"""Fuzzed keywords and outputs of the one-call estimators: a clear ValueError / TypeError, or a result
that does not depend on how the rows were batched (streaming equals batch), NaN outputs counted."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from augsens.core.api import moments, shapley, sobol
from augsens.core.factors import Problem, Uniform

PROBLEM = Problem([Uniform("a", 0, 1), Uniform("b", -1, 2)])
ESTIMATORS = {"sobol": sobol, "shapley": shapley, "moments": moments}


def _f(x: torch.Tensor) -> torch.Tensor:
    """A [B, 2] output: an additive and an interacting element."""
    return torch.stack([x[:, 0] + 2 * x[:, 1], x[:, 0] * x[:, 1]], dim=1)


keyword_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.floats(-1, 2),
    st.just(float("nan")),
    st.sampled_from(["sobol", "sobol-lms", "iid", "sobel", "exact", "permutation", "janon_2014", ""]),
)


@given(
    st.sampled_from(list(ESTIMATORS)),
    st.integers(-2, 300),
    st.dictionaries(
        st.sampled_from(
            ["replicates", "design", "seed", "method", "second_order", "precision", "batch_size"]
        ),
        keyword_values,
        max_size=3,
    ),
)
def test_any_keywords_give_a_clear_error_or_a_batching_independent_result(
    name: str, n: int, kw: dict
) -> None:
    estimate = ESTIMATORS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = estimate(_f, PROBLEM, n=n, **kw)
        except (ValueError, TypeError) as exc:  # the API's user errors (UserInputError is a ValueError)
            text = str(exc)
            assert text and "\n" not in text
            return
        other = estimate(_f, PROBLEM, n=n, **{**kw, "batch_size": 7})
    for v in ds.data_vars:
        np.testing.assert_allclose(ds[v].values, other[v].values, rtol=1e-9, atol=1e-12, err_msg=v)
    assert ds.attrs["n"] == n  # the budget asked for, not another


@given(st.integers(0, 2**31 - 1), st.floats(0, 1))
def test_non_finite_outputs_are_counted_never_raised(seed: int, share: float) -> None:
    gen = torch.Generator().manual_seed(seed)

    def f(x: torch.Tensor) -> torch.Tensor:
        y = _f(x)
        bad = torch.rand(y.shape, generator=gen, dtype=torch.float64) < share
        return y.masked_fill(bad, float("nan"))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = sobol(f, PROBLEM, n=64, replicates=2)
    assert ds["S1"].shape == (2, 2)
    dropped = int(ds["nonfinite"].sum()) if "nonfinite" in ds else int(ds.attrs.get("nonfinite_total", 0))
    assert dropped >= 0
    if share == 0:
        assert np.isfinite(ds["S1"].values).all()

"""The one-call estimators speak of their own keywords, suggest only valid values, and take an ``f``
whose output carries an autograd graph."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch

from augsens.core.api import moments, shapley, sobol
from augsens.core.design import QMCSmallSampleWarning
from augsens.core.factors import Problem, Uniform

PROBLEM = Problem([Uniform("x1", 0, 1), Uniform("x2", 0, 1)])


def _linear(x: torch.Tensor) -> torch.Tensor:
    return x[:, 0] + 2.0 * x[:, 1]


@pytest.mark.parametrize("estimate", [sobol, shapley, moments])
def test_a_misspelt_design_names_the_design_keyword(estimate) -> None:
    with pytest.raises(ValueError, match=r"^design='sobel' is not a design\. Did you mean design='sobol'\?"):
        estimate(_linear, PROBLEM, n=64, design="sobel")


@pytest.mark.parametrize("n, replicates", [(64, 3), (1024, 3), (100, 8), (256, 6)])
def test_suggested_sizes_and_replicates_are_accepted(n: int, replicates: int) -> None:
    with pytest.raises(ValueError, match="not divisible by replicates") as info:
        sobol(_linear, PROBLEM, n=n, replicates=replicates)
    message = str(info.value)
    sizes = [int(v) for v in re.findall(r"n=(\d+)", message.split("use", 1)[1])]
    others = [int(v) for v in re.findall(r"replicates=(\d+)", message.split("use", 1)[1])]
    assert sizes and others
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QMCSmallSampleWarning)
        for m in sizes:
            sobol(_linear, PROBLEM, n=m, replicates=replicates, batch_size=4096)
        for r in others:
            sobol(_linear, PROBLEM, n=n, replicates=r, batch_size=4096)


def test_an_output_that_requires_grad_is_estimated_as_its_values() -> None:
    weight = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)

    def f(x: torch.Tensor) -> torch.Tensor:
        return x @ weight  # carries an autograd graph

    ds = sobol(f, PROBLEM, n=256)
    reference = sobol(_linear, PROBLEM, n=256)
    np.testing.assert_array_equal(ds["S1"].values, reference["S1"].values)
    assert weight.grad is None

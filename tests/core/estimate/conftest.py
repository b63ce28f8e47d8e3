"""Analytic test functions with known Sobol' indices and Shapley effects."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

from augsens.core.factors import Problem, Uniform


@dataclass
class Analytic:
    """A test function with its problem and exact indices (per group, in ``problem.group_names`` order)."""

    f: Any
    problem: Problem
    S1: np.ndarray
    ST: np.ndarray
    shapley: np.ndarray


def _ishigami(a: float = 7.0, b: float = 0.1) -> Analytic:
    # Saltelli et al. (2008), Global Sensitivity Analysis: The Primer, sec. 4.7 (V13 corrected as in scipy):
    # V1 = (1 + b pi^4/5)^2 / 2, V2 = a^2/8, V13 = b^2 pi^8 (1/18 - 1/50), V = V1 + V2 + V13.
    v1 = 0.5 * (1 + b * math.pi**4 / 5) ** 2
    v2 = a**2 / 8
    v13 = b**2 * math.pi**8 * (1 / 18 - 1 / 50)
    v = v1 + v2 + v13

    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x[:, 0]) + a * torch.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * torch.sin(x[:, 0])

    problem = Problem([Uniform(f"x{i}", -math.pi, math.pi) for i in (1, 2, 3)])
    return Analytic(
        f,
        problem,
        S1=np.array([v1, v2, 0.0]) / v,
        ST=np.array([v1 + v13, v2, v13]) / v,
        shapley=np.array([v1 + v13 / 2, v2, v13 / 2]) / v,
    )


def _product_shapley(partial: np.ndarray) -> np.ndarray:
    """Shapley effects of a product model, where sigma2_u = prod_{i in u} V_i (Owen 2014)."""
    d = len(partial)
    sh = np.zeros(d)
    for size in range(1, d + 1):
        for u in itertools.combinations(range(d), size):
            s2 = np.prod(partial[list(u)])
            for j in u:
                sh[j] += s2 / size
    return sh


def _g_function(a: tuple[float, ...] = (0.0, 1.0, 4.5, 9.0)) -> Analytic:
    # Sobol' g-function on [0, 1]^d: V_i = 1 / (3 (1 + a_i)^2), V = prod(1 + V_i) - 1.
    av = np.array(a)
    partial = 1 / (3 * (1 + av) ** 2)
    v = np.prod(1 + partial) - 1
    st = np.array([partial[i] * np.prod(np.delete(1 + partial, i)) for i in range(len(a))]) / v
    coef = torch.tensor(a, dtype=torch.float64)

    def f(x: torch.Tensor) -> torch.Tensor:
        return ((torch.abs(4 * x - 2) + coef) / (1 + coef)).prod(dim=1)

    problem = Problem([Uniform(f"x{i}", 0, 1) for i in range(len(a))])
    return Analytic(f, problem, S1=partial / v, ST=st, shapley=_product_shapley(partial) / v)


def _linear(c: tuple[float, ...] = (1.0, 2.0, -3.0, 0.5)) -> Analytic:
    # Additive model with U(0, 1) inputs: V_i = c_i^2 / 12; S1 = ST = Shapley = V_i / V.
    cv = np.array(c)
    s = cv**2 / np.sum(cv**2)
    coef = torch.tensor(c, dtype=torch.float64)
    problem = Problem([Uniform(f"x{i}", 0, 1) for i in range(len(c))])
    return Analytic(lambda x: x @ coef, problem, S1=s, ST=s, shapley=s)


def _grouped() -> Analytic:
    # y = x1 + x2 + x1 x3 + 2 x4, x_i ~ U(-1, 1) (variance 1/3), groups g12 = {x1, x2}, x3, x4.
    # Components: x1 1/3, x2 1/3, x1x3 1/9, x4 4/3; V = 19/9.
    problem = Problem(
        [Uniform(f"x{i}", -1, 1) for i in (1, 2, 3, 4)], groups={"g12": ["x1", "x2"]}
    )  # groups: g12, x3, x4

    def f(x: torch.Tensor) -> torch.Tensor:
        return x[:, 0] + x[:, 1] + x[:, 0] * x[:, 2] + 2 * x[:, 3]

    return Analytic(
        f,
        problem,
        S1=np.array([6, 0, 12]) / 19,
        ST=np.array([7, 1, 12]) / 19,
        shapley=np.array([6.5, 0.5, 12]) / 19,
    )


@pytest.fixture(scope="session")
def ishigami() -> Analytic:
    return _ishigami()


@pytest.fixture(scope="session", params=["g_function", "linear", "grouped"])
def analytic(request: pytest.FixtureRequest) -> Analytic:
    return {"g_function": _g_function, "linear": _linear, "grouped": _grouped}[request.param]()

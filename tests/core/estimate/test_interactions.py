"""Pairwise interaction maps of the exact Shapley design (``S2``, ``shapley_interaction``) against
analytic values, the combinatorial definition, the Saltelli design's ``S2`` and a hand computation of
the aggregates; and the accumulators' memory table against their real state."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
import torch

import augsens.core.estimate as estimate
from augsens.core.api import shapley, sobol
from augsens.core.estimate import (
    MomentsAccumulator,
    PermutationShapleyAccumulator,
    ShapleyAccumulator,
    SobolAccumulator,
)
from augsens.core.estimate.shapley import grabisch_roubens_1999, mobius_inverse
from augsens.core.factors import Problem, Uniform

# ---------------------------------------------------------------------------------------------------------
# y = a x1 + b x2 x3 + c x2 x3 x4 with independent x_i ~ U(-1, 1) (mean 0, variance 1/3).
#
# Each term is a product of zero-mean independent factors, so it is one pure ANOVA component:
#   sigma2_{1} = a^2 / 3,  sigma2_{23} = b^2 / 9,  sigma2_{234} = c^2 / 27,  every other sigma2_u = 0,
#   V = a^2/3 + b^2/9 + c^2/27.
# Second-order Sobol' indices (the interaction of a pair alone): S2_{23} = b^2 / (9 V), all others 0.
# Pairwise Shapley interaction I_{jk} = sum_{u >= {j,k}} sigma2_u / (|u| - 1):
#   I_{23} = b^2/9 + (c^2/27)/2,  I_{24} = I_{34} = (c^2/27)/2,  I_{1k} = 0.
# With a, b, c = 1, 2, 3: V = 10/9, S2_{23} = 0.4, I_{23} = 0.55, I_{24} = I_{34} = 0.15: the three-way
# term is invisible to S2 and shared by the pairs inside it in I.
# ---------------------------------------------------------------------------------------------------------
A, B, C = 1.0, 2.0, 3.0
PRODUCT_V = A**2 / 3 + B**2 / 9 + C**2 / 27
PRODUCT_S2 = {(1, 2): B**2 / 9 / PRODUCT_V}
PRODUCT_I = {
    (1, 2): (B**2 / 9 + C**2 / 54) / PRODUCT_V,
    (1, 3): C**2 / 54 / PRODUCT_V,
    (2, 3): C**2 / 54 / PRODUCT_V,
}
PRODUCT = Problem([Uniform(f"x{i}", -1, 1) for i in (1, 2, 3, 4)])


def product(x: torch.Tensor) -> torch.Tensor:
    return A * x[:, 0] + B * x[:, 1] * x[:, 2] + C * x[:, 1] * x[:, 2] * x[:, 3]


def _matrix(entries: dict[tuple[int, int], float], d: int) -> np.ndarray:
    """Symmetric ``[d, d]`` with the given upper entries, 0 elsewhere and NaN on the diagonal."""
    m = np.zeros((d, d))
    for (j, k), v in entries.items():
        m[j, k] = m[k, j] = v
    np.fill_diagonal(m, np.nan)
    return m


def test_product_model_analytic_values():
    assert math.isclose(PRODUCT_V, 10 / 9) and math.isclose(PRODUCT_S2[1, 2], 0.4)
    assert math.isclose(PRODUCT_I[1, 2], 0.55) and math.isclose(PRODUCT_I[1, 3], 0.15)
    ds = shapley(product, PRODUCT, n=2**12, seed=0)
    for name, want in (("S2", PRODUCT_S2), ("shapley_interaction", PRODUCT_I)):
        got = ds[name]
        assert got.dims == ("factor", "factor2") and list(got["factor2"].values) == ["x1", "x2", "x3", "x4"]
        # measured: S2 max error 0.013, shapley_interaction 0.014 (n = 4096 in 4 replicates)
        np.testing.assert_allclose(got.values, _matrix(want, 4), atol=0.03, err_msg=name)
        np.testing.assert_array_equal(got.values, got.values.T)
        assert np.isfinite(ds[f"{name}_conf"].values[~np.eye(4, dtype=bool)]).all()
    # x1 enters additively: its hybrids cancel exactly, so its pairs are 0 to rounding, not just noise
    np.testing.assert_allclose(ds["S2"].values[0, 1:], 0.0, atol=1e-12)
    np.testing.assert_allclose(ds["shapley_interaction"].values[0, 1:], 0.0, atol=1e-12)
    # a row of I sums to the factor's whole interaction share, ST - S1, for the estimates too
    rows = np.nansum(ds["shapley_interaction"].values, axis=1)
    np.testing.assert_allclose(rows, ds["ST"].values - ds["S1"].values, atol=1e-12)


def test_ishigami_s2_equals_the_saltelli_designs(ishigami):
    """Ishigami's only interaction is x1-x3 (V13 / V = ST3 = 0.2437), with no third-order component, so
    ``S2`` and the pairwise Shapley interaction agree; the Saltelli (2002) design estimates the same
    ``S2`` with its own rows."""
    exact = shapley(ishigami.f, ishigami.problem, n=2**13, seed=0)
    saltelli = sobol(ishigami.f, ishigami.problem, n=2**13, seed=0, second_order=True)
    want = _matrix({(0, 2): ishigami.ST[2]}, 3)
    assert exact["S2"].dims == saltelli["S2"].dims == ("factor", "factor2")
    # measured max errors: exact 0.0014, Saltelli 0.0057 from the analytic matrix, 0.0049 between them
    np.testing.assert_allclose(exact["S2"].values, want, atol=0.01)
    np.testing.assert_allclose(saltelli["S2"].values, want, atol=0.02)
    np.testing.assert_allclose(exact["shapley_interaction"].values, want, atol=0.01)
    np.testing.assert_allclose(exact["S2"].values, saltelli["S2"].values, atol=0.02)


def _g_function_reference(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobol' g-function: ``sigma2_u = prod_{i in u} V_i`` with ``V_i = 1 / (3 (1 + a_i)^2)``, every
    subset a component; returns (S2, I) normalised by ``V = prod(1 + V_i) - 1``."""
    d, part = len(a), 1 / (3 * (1 + a) ** 2)
    v = np.prod(1 + part) - 1
    s2, inter = np.zeros((d, d)), np.zeros((d, d))
    for size in range(2, d + 1):
        for u in itertools.combinations(range(d), size):
            sigma2 = np.prod(part[list(u)])
            for j, k in itertools.permutations(u, 2):
                inter[j, k] += sigma2 / (size - 1)
                if size == 2:
                    s2[j, k] = sigma2
    np.fill_diagonal(s2, np.nan)
    np.fill_diagonal(inter, np.nan)
    return s2 / v, inter / v


def test_g_function_interactions_of_every_order():
    """Components of orders 2 to 4: the ``1 / (|u| - 1)`` weights of higher orders are exercised."""
    a = np.array([-0.5, -0.4, 0.0, 1.0])  # a_i < 0: large V_i, large components of high order
    coef = torch.tensor(a)
    problem = Problem([Uniform(f"x{i}", 0, 1) for i in range(4)])

    def g(x: torch.Tensor) -> torch.Tensor:
        return ((torch.abs(4 * x - 2) + coef) / (1 + coef)).prod(dim=1)

    s2, inter = _g_function_reference(a)
    assert np.nanmax(inter - s2) > 0.04  # the higher-order share (0.049) is far above the tolerance
    ds = shapley(g, problem, n=2**13, seed=0)
    # measured max errors over seeds 0, 1, 2: S2 0.0054, 0.0090, 0.0080; shapley_interaction 0.0038,
    # 0.0068, 0.0112
    np.testing.assert_allclose(ds["S2"].values, s2, atol=0.02)
    np.testing.assert_allclose(ds["shapley_interaction"].values, inter, atol=0.02)


def _closed(sigma2: np.ndarray, d: int) -> np.ndarray:
    """tau_u = sum_{w subset of u} sigma2_w (the zeta transform)."""
    return np.array([sum(sigma2[w] for w in range(1 << d) if w & ~u == 0) for u in range(1 << d)])


def _by_definition(game: np.ndarray, d: int, j: int, k: int) -> float:
    """Grabisch & Roubens (1999): sum over S not holding j, k of (d-s-2)! s! / (d-1)! Delta_jk v(S)."""
    total = 0.0
    for s_mask in range(1 << d):
        if s_mask >> j & 1 or s_mask >> k & 1:
            continue
        s = bin(s_mask).count("1")
        weight = math.factorial(d - s - 2) * math.factorial(s) / math.factorial(d - 1)
        jk = s_mask | 1 << j | 1 << k
        total += weight * (game[jk] - game[s_mask | 1 << j] - game[s_mask | 1 << k] + game[s_mask])
    return total


def test_grabisch_roubens_is_the_interaction_index_of_the_closed_game():
    d = 4
    gen = np.random.default_rng(0)
    sigma2 = gen.random((1 << d, 3))
    sigma2[0] = 0.0
    tau = _closed(sigma2, d)
    np.testing.assert_allclose(mobius_inverse(torch.from_numpy(tau), d).numpy(), sigma2, atol=1e-12)
    got = grabisch_roubens_1999(torch.from_numpy(sigma2), d).numpy()
    full = (1 << d) - 1
    dual = np.array([tau[full] - tau[full ^ u] for u in range(1 << d)])  # v*(u) = E Var(Y | X_-u)
    for j, k in itertools.permutations(range(d), 2):
        want = [_by_definition(tau[:, o], d, j, k) for o in range(3)]
        np.testing.assert_allclose(got[j, k], want, atol=1e-12)
        # the dual game has the same Shapley values but the opposite pairwise index
        np.testing.assert_allclose(
            [_by_definition(dual[:, o], d, j, k) for o in range(3)], -got[j, k], atol=1e-12
        )
    assert np.isnan(got[range(d), range(d)]).all()


def test_aggregates_are_numerators_over_variances_by_hand():
    """Per element and aggregated ``S2`` and ``shapley_interaction`` recomputed from the raw outputs with
    numpy: ``tau_u = mean((y_full - mean y_full)(y_u - y_0))``, Möbius inversion by inclusion-exclusion,
    then ``sum_o num_o / sum_o V_o`` over each group of elements."""
    d, n, out = 3, 200, 5
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(n, 1 << d, d, generator=gen, dtype=torch.float64)
    scale = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.5], dtype=torch.float64)
    # outputs with interactions of every order, scaled differently per element; element 4 is constant
    base = x[..., 0] + x[..., 1] * x[..., 2] + 0.5 * x[..., 0] * x[..., 1] * x[..., 2]
    y = 7.0 + base[..., None] * scale * torch.linspace(1, 2, out, dtype=torch.float64)
    y[..., 4] = 7.0
    acc = ShapleyAccumulator(d)
    acc.update(y[:120])
    acc.update(y[120:])  # two batches: Chan's merge on the way
    per = acc.finalize([f"g{j}" for j in range(d)])
    ids = torch.tensor([0, 1, 1, 0, 1])
    agg = acc.aggregate(ids, 2)

    yy = y.numpy()
    full = (1 << d) - 1
    tau = np.array(
        [np.mean((yy[:, full] - yy[:, full].mean(0)) * (yy[:, u] - yy[:, 0]), axis=0) for u in range(1 << d)]
    )
    sigma2 = np.array(
        [
            sum(
                (-1) ** (bin(u).count("1") - bin(w).count("1")) * tau[w] for w in range(1 << d) if w & ~u == 0
            )
            for u in range(1 << d)
        ]
    )
    num = {"S2": np.full((d, d, out), np.nan), "shapley_interaction": np.full((d, d, out), np.nan)}
    for j, k in itertools.permutations(range(d), 2):
        pair = 1 << j | 1 << k
        num["S2"][j, k] = sigma2[pair]
        num["shapley_interaction"][j, k] = sum(
            sigma2[u] / (bin(u).count("1") - 1) for u in range(1 << d) if u & pair == pair
        )
    var = tau[full]
    assert var[4] == 0.0  # the constant element: NaN indices, nothing added to its group
    for name, numerator in num.items():
        with np.errstate(invalid="ignore", divide="ignore"):
            want = np.where(var > 0, numerator / var, np.nan)
        np.testing.assert_allclose(per[name].values, want, rtol=1e-9, atol=1e-12, err_msg=name)
        for g in (0, 1):
            members = ids.numpy() == g
            want_g = numerator[..., members].sum(-1) / var[members].sum()
            np.testing.assert_allclose(
                agg[name].values[..., g], want_g, rtol=1e-9, err_msg=f"{name} group {g}"
            )
    assert agg["S2"].dims == ("factor", "factor2", "group")


def test_half_widths_shrink_and_cover():
    """Over 24 seeds at n = 2^9 (8 replicates of 64), the 95 % half-widths of the non-zero pairs of the
    product model cover the analytic values (measured: S2 0.986, shapley_interaction 0.958; over 200
    other seeds 0.955 and 0.952); at n = 2^13 the mean half-width is at least 4x smaller (measured: 9.2x
    and 14x; 4x is the Monte Carlo rate, randomised QMC does better)."""
    pairs = [(1, 2), (1, 3), (2, 3)]
    want = {"S2": _matrix(PRODUCT_S2, 4), "shapley_interaction": _matrix(PRODUCT_I, 4)}
    hits = dict.fromkeys(want, 0)
    widths = {name: [] for name in want}
    seeds = range(24)
    for seed in seeds:
        ds = shapley(product, PRODUCT, n=2**9, seed=seed, replicates=8)
        for name, ref in want.items():
            for j, k in pairs:
                hits[name] += int(abs(ds[name].values[j, k] - ref[j, k]) <= ds[f"{name}_conf"].values[j, k])
                widths[name].append(ds[f"{name}_conf"].values[j, k])
    large = shapley(product, PRODUCT, n=2**13, seed=0, replicates=8)
    for name in want:
        coverage = hits[name] / (len(seeds) * len(pairs))
        assert 0.8 <= coverage <= 1.0, (name, coverage)
        small_width = np.mean(widths[name])
        large_width = np.mean([large[f"{name}_conf"].values[j, k] for j, k in pairs])
        assert large_width < small_width / 4, (name, small_width, large_width)


# ---------------------------------------------------------------------------------------------------------
# The memory table of augsens.core.estimate, read from its docstring and checked against the real state.
# ---------------------------------------------------------------------------------------------------------


def _memory_table() -> dict[str, str]:
    """``{row label: "numbers per element" formula}`` from the module docstring's table."""
    lines = estimate.__doc__.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("=====")]
    spans = [m.span() for m in re.finditer(r"=+", lines[rules[0]])]
    table = {}
    for line in lines[rules[1] + 1 : rules[2]]:
        label = line[: spans[0][1]].strip()
        formula = line[spans[2][0] :].strip()
        if label and formula:
            table[label] = formula
    return table


def _evaluate(formula: str, D: int) -> int:
    python = re.sub(r"(\d)D", r"\1*D", formula).replace("D(", "D*(").replace("^", "**")
    return int(eval(python, {"__builtins__": {}}, {"D": D}))  # noqa: S307 - a formula from our own docstring


def _numbers_per_element(acc) -> int:
    """Numbers in the state, per output element and replicate slot."""
    state = acc.state_dict()
    elements = math.prod(int(s) for s in state["out_shape"])
    total = sum(state[k].numel() for k in ("count", "mean", "comoment"))
    return total // (elements * acc.replicates)


@pytest.mark.parametrize("D", [1, 2, 3, 5])
def test_memory_table_matches_the_state(D):
    table = _memory_table()
    cases = {
        ":class:`MomentsAccumulator`": (MomentsAccumulator(), None),
        ":class:`SobolAccumulator`": (SobolAccumulator(D, replicates=2), D + 2),
        "``second_order=True``": (SobolAccumulator(D, second_order=True, replicates=2), 2 * D + 2),
        ":class:`ShapleyAccumulator`": (ShapleyAccumulator(D, replicates=2), 1 << D),
        ":class:`PermutationShapleyAccumulator`": (PermutationShapleyAccumulator(D, replicates=2), D + 1),
    }
    assert set(table) == set(cases)
    for label, (acc, rows) in cases.items():
        shape = (4, 3) if rows is None else (4, rows, 2, 3)
        y = torch.randn(*shape, dtype=torch.float64)
        if isinstance(acc, PermutationShapleyAccumulator):
            acc.update(y, torch.stack([torch.randperm(D) for _ in range(4)]))
        else:
            acc.update(y)
        assert _numbers_per_element(acc) == _evaluate(table[label], D), (label, table[label])

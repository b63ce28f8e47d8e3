"""Morris elementary effects: SALib on identical trajectories, analytic values, streaming, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from SALib.analyze import morris as salib_morris

from augsens.core.api import morris
from augsens.core.estimate import MorrisAccumulator
from augsens.core.factors import Problem, Switch, Uniform
from augsens.core.trajectories import MorrisDesign, morris_step
from augsens.errors import UserInputError

# float64 state, effects of O(1) values divided by a step of O(1): rounding well below this
TOL = 1e-10


def _g(x: torch.Tensor) -> torch.Tensor:
    """Sobol's g-function with a = (0, 1, 4.5, 9) on [0, 1]^4: non-monotonic, interacting factors."""
    a = torch.tensor([0.0, 1.0, 4.5, 9.0], dtype=torch.float64)
    return ((torch.abs(4 * x - 2) + a) / (1 + a)).prod(dim=1)


def _run(design: MorrisDesign, f, *, batch: int) -> tuple[MorrisAccumulator, np.ndarray, np.ndarray]:
    """Feed the whole design to one accumulator in batches; also return the rows and outputs."""
    acc = MorrisAccumulator(design.D, delta=design.delta, replicates=design.replicates)
    xs, ys = [], []
    for r, start, count in design.batches(batch):
        rows, order, sign = design.rows_and_steps(start, count)
        y = f(design.problem.decode(rows.reshape(-1, design.k)))
        acc.update(y.reshape(count, design.D + 1, *y.shape[1:]), order, sign, replicate=r)
        xs.append(rows.reshape(-1, design.k).numpy())
        ys.append(y.numpy())
    return acc, np.concatenate(xs), np.concatenate(ys)


@pytest.mark.parametrize("levels", [4, 8])
def test_equals_salib_on_identical_trajectories(levels: int) -> None:
    problem = Problem([Uniform(f"x{i}", 0, 1) for i in range(4)])
    design = MorrisDesign(problem, 48, levels=levels, method="iid", replicates=3, seed=5)
    acc, x, y = _run(design, _g, batch=7)
    ds = acc.finalize(problem.group_names)
    spec = {"num_vars": 4, "names": problem.group_names, "bounds": [[0, 1]] * 4}
    ref = salib_morris.analyze(spec, x, y, num_levels=levels, seed=0)
    for name in ("mu", "mu_star", "sigma"):
        np.testing.assert_allclose(ds[name].values, np.asarray(ref[name]), rtol=TOL, atol=TOL)


def test_groups_equal_salib_where_salib_defines_them() -> None:
    # an augmentation-like group (a switch and a parameter) moves as one factor
    problem = Problem(
        [Switch("on", 0.5), Uniform("level", -1, 1), Uniform("x", 0, 1), Uniform("z", 0, 1)],
        groups={"aug": ["on", "level"]},
    )

    def f(v: torch.Tensor) -> torch.Tensor:
        return v[:, 0] * v[:, 1] ** 2 + torch.sin(3 * v[:, 2]) + v[:, 2] * v[:, 3]

    design = MorrisDesign(problem, 64, levels=4, method="sobol", seed=2)
    acc, x, y = _run(design, f, batch=64)
    ds = acc.finalize(problem.group_names)
    spec = {
        "num_vars": 4,
        "names": ["on", "level", "x", "z"],
        "bounds": [[0, 1]] * 4,
        "groups": ["aug", "aug", "x", "z"],
    }
    ref = salib_morris.analyze(spec, x, y, num_levels=4, seed=0)
    assert list(ref["names"]) == problem.group_names
    np.testing.assert_allclose(ds["mu"].values, np.asarray(ref["mu"]), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(ds["mu_star"].values, np.asarray(ref["mu_star"]), rtol=TOL, atol=TOL)
    # SALib leaves sigma undefined for a group of several parameters; single ones agree
    np.testing.assert_allclose(ds["sigma"].values[1:], np.asarray(ref["sigma"])[1:], rtol=TOL, atol=TOL)
    assert np.isnan(ref["sigma"][0]) and np.isfinite(ds["sigma"].values[0])


def test_additive_function_gives_the_exact_level_averages() -> None:
    # f = sum_j g_j(x_j): EE_j = (g_j(x* + Δ) - g_j(x*)) / Δ whatever the direction, with x* the start
    # level.  A Sobol' design with n a multiple of p/2 puts every start level equally often, so mu,
    # mu_star and sigma are the averages over the levels, exactly.
    levels, n = 8, 64
    g = [lambda t: t**2, lambda t: -3 * t, lambda t: torch.sin(2 * math.pi * t), lambda t: 0 * t]
    problem = Problem([Uniform(f"x{i}", 0, 1) for i in range(4)])
    ds = morris(
        lambda x: sum(gj(x[:, j]) for j, gj in enumerate(g)), problem, n=n, levels=levels, replicates=1
    )
    delta = morris_step(levels)
    low = torch.arange(levels // 2, dtype=torch.float64) / (levels - 1)
    for j, gj in enumerate(g):
        ee = ((gj(low + delta) - gj(low)) / delta).repeat(n // len(low))
        want = [ee.mean(), ee.abs().mean(), ee.std(correction=1)]
        got = [ds[m].values[j] for m in ("mu", "mu_star", "sigma")]
        np.testing.assert_allclose(got, [float(w) for w in want], rtol=1e-9, atol=1e-9)


def test_streaming_merging_and_state_equal_one_pass() -> None:
    problem = Problem([Uniform(f"x{i}", 0, 1) for i in range(4)])
    design = MorrisDesign(problem, 32, levels=4, replicates=2, seed=1)

    def f(v: torch.Tensor) -> torch.Tensor:  # two outputs per row
        return torch.stack([_g(v), v.sum(1) ** 2], dim=1)

    def feed(acc: MorrisAccumulator, start: int, stop: int, batch: int) -> None:
        for r, s, c in design.batches(batch, start, stop):
            rows, order, sign = design.rows_and_steps(s, c)
            acc.update(f(rows.reshape(-1, 4)).reshape(c, 5, 2), order, sign, replicate=r)

    whole = MorrisAccumulator(4, delta=design.delta, replicates=2)
    feed(whole, 0, 32, 32)
    first, second = (MorrisAccumulator(4, delta=design.delta, replicates=2) for _ in range(2))
    feed(first, 0, 20, 3)
    feed(second, 20, 32, 5)
    restored = MorrisAccumulator.from_state_dict(first.state_dict())
    merged = restored.merge(second).finalize()
    one = whole.finalize()
    for name in ("mu", "mu_star", "sigma", "mu_conf", "mu_star_conf", "sigma_conf"):
        np.testing.assert_allclose(merged[name].values, one[name].values, rtol=1e-12, atol=1e-12)


def test_half_widths_are_student_t_over_replicates_and_aggregates_are_means() -> None:
    problem = Problem([Uniform(f"x{i}", 0, 1) for i in range(4)])
    design = MorrisDesign(problem, 64, levels=4, replicates=4, seed=3)

    def f(v: torch.Tensor) -> torch.Tensor:
        return torch.stack([_g(v), 3 * _g(v.flip(1))], dim=1)

    acc, _, _ = _run(design, f, batch=16)
    ds = acc.finalize()
    per = []
    for r in range(4):  # one accumulator per replicate block
        one = MorrisAccumulator(4, delta=design.delta)
        for rep, s, c in design.batches(16):
            if rep == r:
                rows, order, sign = design.rows_and_steps(s, c)
                one.update(f(rows.reshape(-1, 4)).reshape(c, 5, 2), order, sign)
        per.append(one.finalize()["mu_star"].values)
    per_arr = np.stack(per)
    from scipy import stats

    half = stats.t.ppf(0.975, 3) * per_arr.std(axis=0, ddof=1) / 2
    np.testing.assert_allclose(ds["mu_star_conf"].values, half, rtol=1e-10)
    agg = acc.aggregate(torch.zeros(2, dtype=torch.int64), 1)
    np.testing.assert_allclose(agg["mu_star"].values[:, 0], ds["mu_star"].values.mean(1), rtol=1e-12)
    rms = np.sqrt((ds["sigma"].values ** 2).mean(1))
    np.testing.assert_allclose(agg["sigma"].values[:, 0], rms, rtol=1e-12)


def test_nonfinite_trajectories_are_left_out_per_element() -> None:
    problem = Problem([Uniform(f"x{i}", 0, 1) for i in range(2)])
    design = MorrisDesign(problem, 8, levels=4, method="iid")
    rows, order, sign = design.rows_and_steps(0, 8)
    y = torch.stack([rows.sum(-1), rows[..., 0]], dim=-1)  # [8, 3, 2]
    y[0, 1, 0] = math.nan
    acc = MorrisAccumulator(2, delta=design.delta)
    acc.update(y, order, sign)
    ds = acc.finalize()
    assert ds["nonfinite"].values.tolist() == [1, 0]
    # y = x0 + x1 has effects 1 and 1, whatever trajectories remain
    np.testing.assert_allclose(ds["mu"].values[:, 0], [1.0, 1.0], rtol=1e-12)


def test_bad_input_is_refused_with_a_message() -> None:
    problem = Problem([Uniform(f"x{i}", 0, 1) for i in range(3)])
    with pytest.raises(ValueError, match="levels=5 must be an even integer"):
        MorrisDesign(problem, 8, levels=5)
    acc = MorrisAccumulator(3, delta=2 / 3)
    y = torch.zeros(2, 4)
    with pytest.raises(UserInputError, match="is not a permutation of 0..2"):
        acc.update(y, torch.tensor([[0, 1, 1], [0, 1, 2]]), torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"order and sign must be \[batch, D\] = \[2, 3\]"):
        acc.update(y, torch.tensor([[0, 1, 2]]), torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"delta \(the step in unit-cube coordinates\) must lie in"):
        MorrisAccumulator(3, delta=0.0)
    with pytest.raises(TypeError, match="keeps elementary effects"):
        acc.pooled_moments()


@pytest.mark.parametrize("D", [1, 4])
def test_state_holds_one_plus_three_d_numbers_per_element(D: int) -> None:
    acc = MorrisAccumulator(D, delta=0.5, replicates=2)
    order = torch.stack([torch.randperm(D) for _ in range(3)])
    acc.update(torch.randn(3, D + 1, 5, dtype=torch.float64), order, torch.ones(3, D))
    count, mean, comoment = acc.state_tensors()
    per_element = (count.numel() + mean.numel() + comoment.numel()) // (2 * 5)
    assert per_element == 1 + 3 * D

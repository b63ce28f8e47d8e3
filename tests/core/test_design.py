"""Designs: row structure, addressable ranges, replicates, balance, and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from augsens.core.design import IIDDesign, PermutationShapleyDesign, ShapleyDesign, SobolDesign
from augsens.core.factors import Problem, Uniform


@pytest.fixture(scope="module")
def problem() -> Problem:
    # groups: g = {a, c}, b, d  (non-contiguous columns on purpose)
    return Problem([Uniform(x, 0, 1) for x in "abcd"], groups={"g": ["a", "c"]})


CLASSES = [SobolDesign, ShapleyDesign, PermutationShapleyDesign, IIDDesign]


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("method", ["sobol", "iid"])
def test_any_range_equals_the_same_range_of_a_full_run(problem, cls, method):
    design = cls(problem, 64, seed=3, method=method, replicates=4)
    full = design.unit_rows(0, 64)
    assert full.shape == (64, design.rows_per_sample, 4) and full.dtype == torch.float64
    assert len(design.labels) == design.rows_per_sample
    assert ((full >= 0) & (full < 1)).all()
    for start, count in [(0, 1), (5, 7), (15, 2), (16, 16), (30, 34), (63, 1), (7, 0)]:
        assert torch.equal(design.unit_rows(start, count), full[start : start + count]), (start, count)
    again = cls(problem, 64, seed=3, method=method, replicates=4).unit_rows(20, 9)
    assert torch.equal(again, full[20:29])
    other = cls(problem, 64, seed=4, method=method, replicates=4).unit_rows(0, 64)
    assert not torch.equal(other, full)


def test_sobol_rows_swap_whole_groups(problem):
    design = SobolDesign(problem, 16, second_order=True)
    assert design.labels == ["A", "B", "AB_g", "AB_b", "AB_d", "BA_g", "BA_b", "BA_d"]
    rows = design.unit_rows(0, 16)
    a, b = design.base(0, 16)
    assert torch.equal(rows[:, 0], a) and torch.equal(rows[:, 1], b)
    for j, cols in enumerate(problem.group_members):
        other = [c for c in range(4) if c not in cols]
        assert torch.equal(rows[:, 2 + j, cols], b[:, cols]) and torch.equal(
            rows[:, 2 + j, other], a[:, other]
        )
        assert torch.equal(rows[:, 5 + j, cols], a[:, cols]) and torch.equal(
            rows[:, 5 + j, other], b[:, other]
        )


def test_shapley_rows_follow_bit_masks(problem):
    design = ShapleyDesign(problem, 8)
    assert design.rows_per_sample == 8 and design.labels[0] == "{}" and design.labels[5] == "{g,d}"
    rows = design.unit_rows(0, 8)
    a, b = design.base(0, 8)
    assert torch.equal(rows[:, 0], b) and torch.equal(rows[:, 7], a)
    for u in range(8):
        for j, cols in enumerate(problem.group_members):
            src = a if u >> j & 1 else b
            assert torch.equal(rows[:, u, cols], src[:, cols])


def test_permutation_rows_switch_groups_in_order(problem):
    design = PermutationShapleyDesign(problem, 4096, method="iid")
    rows, perms = design.rows_and_permutations(0, 4096)
    assert torch.equal(perms, design.permutations(0, 4096))
    assert torch.equal(torch.sort(perms, dim=1).values, torch.arange(3).expand(4096, 3))
    a, b = design.base(0, 4096)
    assert torch.equal(rows[:, 0], b) and torch.equal(rows[:, 3], a)
    i = 11
    for r in range(4):
        switched = set(perms[i, :r].tolist())
        for j, cols in enumerate(problem.group_members):
            assert torch.equal(rows[i, r, cols], (a if j in switched else b)[i, cols])
    # uniform over the 3! orders: each order about 1/6 of 4096 (binomial sd ~ 24)
    codes = perms[:, 0] * 9 + perms[:, 1] * 3 + perms[:, 2]
    counts = torch.bincount(codes)[codes.unique()]
    assert len(counts) == 6 and (counts - 4096 / 6).abs().max() < 120


def test_replicates_are_independent_scrambles_with_balance(problem):
    design = SobolDesign(problem, 64, replicates=4)
    assert [design.replicate_of(i) for i in (0, 15, 16, 63)] == [0, 0, 1, 3]
    assert design.split(10, 30) == [(0, 10, 6), (1, 16, 16), (2, 32, 8)]
    assert design.batches(10)[:3] == [(0, 0, 10), (0, 10, 6), (1, 16, 10)]
    a, _ = design.base(0, 64)
    for r in range(4):
        col = a[16 * r : 16 * (r + 1), 0].numpy()
        # a 2^m scrambled Sobol' block puts one point in each of the 2^m strata of every coordinate
        assert sorted(np.floor(col * 16).astype(int)) == list(range(16))
    assert not torch.equal(a[:16], a[16:32])
    with pytest.raises(IndexError, match="outside 0..63"):
        design.replicate_of(64)
    with pytest.raises(IndexError, match="outside the design"):
        design.unit_rows(60, 5)


def test_design_errors(problem):
    with pytest.raises(ValueError, match=r"n to be a power of 2, got n=1000; use n=512 or n=1024"):
        SobolDesign(problem, 1000)
    with pytest.raises(ValueError, match=r"n // replicates to be a power of 2.*use n=64 or n=128"):
        SobolDesign(problem, 80, replicates=2)
    with pytest.raises(ValueError, match="not divisible by replicates=3"):
        SobolDesign(problem, 64, replicates=3)
    IIDDesign(problem, 1000, method="iid")  # any n for i.i.d. rows
    with pytest.raises(ValueError, match="method='qmc' is not a design method"):
        SobolDesign(problem, 64, method="qmc")
    with pytest.raises(ValueError, match="positive integer"):
        SobolDesign(problem, 0)
    with pytest.raises(TypeError, match="augsens Problem"):
        SobolDesign({"x": 1}, 64)
    big = Problem([Uniform(f"x{i}", 0, 1) for i in range(13)])
    with pytest.raises(ValueError, match=r"D=13 groups \(at most 12 allowed\); use PermutationShapleyDesign"):
        ShapleyDesign(big, 64)
    assert PermutationShapleyDesign(big, 64).unit_rows(0, 2).shape == (2, 14, 13)
    assert math.isclose(IIDDesign(big, 64).unit_rows(0, 64).mean().item(), 0.5, abs_tol=0.05)

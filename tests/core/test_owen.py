"""Nested uniform (Owen) scrambling, design rounds and the small-net warning."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.stats import qmc

from augsens.core.design import (
    MIN_QMC_POINTS,
    IIDDesign,
    PermutationShapleyDesign,
    QMCSmallSampleWarning,
    ShapleyDesign,
    SobolDesign,
    owen_scramble,
)
from augsens.core.factors import Problem, Uniform


def _keys(seed: int, dims: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**63, size=(dims, 33), dtype=np.uint64)


def _sobol_digits(m: int, dims: int) -> np.ndarray:
    return (qmc.Sobol(dims, scramble=False, bits=32).random(2**m) * 2.0**32).astype(np.uint64)


def _one_point_per_box(x: np.ndarray, m: int) -> bool:
    """Every elementary box of volume 2^-m (2^a x 2^(m-a) cells) holds exactly one of the 2^m points."""
    for a in range(m + 1):
        cell = np.floor(x[:, 0] * 2**a).astype(np.int64) * 2 ** (m - a) + np.floor(x[:, 1] * 2 ** (m - a))
        if len(np.unique(cell)) != 2**m:
            return False
    return True


def test_owen_scrambling_keeps_the_0_m_2_net():
    # Sobol' dimensions 0 and 1 form a (0, m, 2)-net: nested scrambling must keep every box filled once
    digits = _sobol_digits(8, 2)
    for seed in range(5):
        assert _one_point_per_box(owen_scramble(digits, _keys(seed, 2)), 8)
    # and the check can fail: i.i.d. points do not fill every box once
    assert not _one_point_per_box(np.random.default_rng(0).random((256, 2)), 8)


def test_owen_scrambling_keeps_common_prefixes_and_is_uniform():
    gen = np.random.default_rng(1)
    x = gen.integers(0, 2**32, size=(2000, 1), dtype=np.uint64)
    y = x ^ (
        gen.integers(1, 2**32, size=(2000, 1), dtype=np.uint64)
        >> gen.integers(0, 32, size=(2000, 1)).astype(np.uint64)
    )
    keys = _keys(2, 1)
    sx, sy = (np.floor(owen_scramble(v, keys) * 2.0**32).astype(np.uint64) for v in (x, y))
    # nested: two points share exactly as many leading digits after scrambling as before
    lead = lambda a, b: 32 - np.array([int(v).bit_length() for v in (a ^ b).ravel()])  # noqa: E731
    np.testing.assert_array_equal(lead(sx, sy), lead(x, y))
    # uniform: one fixed point under 500 independent scrambles follows U(0, 1)
    point = np.array([[123456789]], dtype=np.uint64)
    draws = [owen_scramble(point, _keys(s, 1))[0, 0] for s in range(500)]
    assert stats.kstest(draws, "uniform").pvalue > 1e-3


@pytest.fixture(scope="module")
def problem() -> Problem:
    return Problem([Uniform(x, 0, 1) for x in "abc"])


def test_a_and_b_columns_of_a_sobol_design_are_scrambled_nets(problem):
    # A holds Sobol' dimensions 0..k-1: (A_0, A_1) are dimensions 0 and 1, a (0, m, 2)-net; every column
    # of A and B is a one-dimensional net (one point per 1/256 stratum)
    design = SobolDesign(problem, 256, seed=5)
    a, b = design.base(0, 256)
    assert _one_point_per_box(a[:, :2].numpy(), 8)
    for col in torch.cat([a, b], dim=1).T:
        assert sorted(np.floor(col.numpy() * 256).astype(int)) == list(range(256))
    # the layouts: for Sobol' indices A_j is Sobol' dimension j and B_j dimension 2k - 1 - j (mirrored),
    # for Shapley effects A_j, B_j are dimensions 2j, 2j + 1 (adjacent), of one Owen-scrambled net
    raw = owen_scramble(_sobol_digits(8, 6), design._owen_keys(0))
    np.testing.assert_array_equal(a.numpy(), raw[:, :3])
    np.testing.assert_array_equal(b.numpy(), raw[:, [5, 4, 3]])
    for cls in (ShapleyDesign, PermutationShapleyDesign):
        a, b = cls(problem, 256, seed=5).base(0, 256)
        np.testing.assert_array_equal(a.numpy(), raw[:, [0, 2, 4]])
        np.testing.assert_array_equal(b.numpy(), raw[:, [1, 3, 5]])


def test_rounds_extend_every_replicate_and_keep_ranges_addressable(problem):
    design = SobolDesign(problem, 1024, replicates=4, first=256, seed=2)
    one_round = SobolDesign(problem, 256, replicates=4, seed=2)
    assert design.round_ends == [256, 512, 1024]
    full = design.unit_rows(0, 1024)
    torch.testing.assert_close(full[:256], one_round.unit_rows(0, 256), rtol=0, atol=0)
    for start, count in [(250, 20), (500, 100), (700, 324)]:
        torch.testing.assert_close(
            design.unit_rows(start, count), full[start : start + count], rtol=0, atol=0
        )
    a, _ = design.base(0, 1024)
    for end in design.round_ends:
        # after every round each replicate holds a 2^m net: one point per stratum of each coordinate
        reps = torch.tensor([design.replicate_of(i) for i in range(end)])
        for r in range(4):
            col = a[:end][reps == r, 0].numpy()
            assert sorted(np.floor(col * len(col)).astype(int)) == list(range(len(col)))
    assert [design.replicate_of(i) for i in (0, 63, 64, 256, 319, 320, 512, 639, 640)] == [
        0,
        0,
        1,
        0,
        0,
        1,
        0,
        0,
        1,
    ]
    with pytest.raises(ValueError, match="first=384 must divide n=1024 by a power of 2"):
        SobolDesign(problem, 1024, replicates=4, first=384)


def test_small_nets_warn_and_others_do_not(problem):
    with pytest.warns(QMCSmallSampleWarning, match=r"32 points per replicate .* below 64.*use n >= 256"):
        SobolDesign(problem, 128, replicates=4)
    with pytest.warns(QMCSmallSampleWarning, match=r"512 points per replicate .* 'sobol-lms' design"):
        ShapleyDesign(problem, 512, method="sobol-lms")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SobolDesign(problem, MIN_QMC_POINTS["sobol"] * 4, replicates=4)
        SobolDesign(problem, MIN_QMC_POINTS["sobol-lms"], method="sobol-lms")
        SobolDesign(problem, 64, replicates=4, method="iid")
        IIDDesign(problem, 16, method="iid")


def test_the_small_net_warning_points_at_the_callers_line(problem):
    """Built deep inside ag.sobol (method -> design), the warning still names the user's file and line."""
    import augsens as ag

    with pytest.warns(QMCSmallSampleWarning) as record:
        line = sys._getframe().f_lineno + 1
        ag.sobol(lambda x: x[:, 0], problem, n=32)
    assert [(w.filename, w.lineno) for w in record] == [(__file__, line)]

"""The authors' Song-type Shapley double loop (study kind shapley-song) on analytic references."""

import math

import numpy as np
import pytest
import torch

import augsens as ag
from augsens.core.design import SongShapleyDesign
from augsens.core.estimate import SongShapleyAccumulator
from augsens.errors import UserInputError

ISHIGAMI_SHAPLEY = np.array([0.4357, 0.4424, 0.1218])


def ishigami(x: torch.Tensor, a: float = 7.0, b: float = 0.1) -> torch.Tensor:
    return torch.sin(x[:, 0]) + a * torch.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * torch.sin(x[:, 0])


@pytest.fixture
def problem():
    return ag.Problem([ag.Uniform(f"x{i}", -math.pi, math.pi) for i in (1, 2, 3)])


def run(problem, design, acc, batch=7):
    for start in range(0, design.n, batch):
        count = min(batch, design.n - start)
        unit = design.unit_rows(start, count)
        y = ishigami(problem.decode(unit.reshape(-1, problem.k))).reshape(count, design.rows_per_sample)
        acc.update(y, *design.blocks(start, count))
    return acc


def test_song_shapley_matches_ishigami(problem):
    design = SongShapleyDesign(problem, permutations=120, outer=48, inner=8, seed=1)
    acc = run(problem, design, SongShapleyAccumulator(problem.D, 48, 8))
    ds = acc.finalize(problem.group_names)
    np.testing.assert_allclose(ds["shapley"].values, ISHIGAMI_SHAPLEY, atol=0.03)
    # raw effects sum to the variance (13.8446 for a = 7, b = 0.1)
    assert ds["shapley_raw"].values.sum() == pytest.approx(13.8446, rel=0.05)
    assert ds["shapley"].values.sum() == pytest.approx(1.0)


def test_blocks_replay_and_row_structure(problem):
    design = SongShapleyDesign(problem, permutations=3, outer=4, inner=5, seed=2)
    full = design.unit_rows(0, design.n)
    assert torch.equal(full[4:7], design.unit_rows(4, 3))
    perms, pos = design.blocks(0, design.n)
    for j in range(design.n):
        rows = full[j].reshape(4, 5, 3)
        fixed = perms[j, int(pos[j]) + 1 :]
        redrawn = perms[j, : int(pos[j]) + 1]
        # players after position i are constant within an outer draw, the others vary
        assert torch.all(rows[:, :, fixed] == rows[:, :1, fixed])
        assert torch.all(rows[:, 1:, redrawn] != rows[:, :1, redrawn])


def test_state_resume_equals_uninterrupted(problem, tmp_path):
    design = SongShapleyDesign(problem, permutations=4, outer=6, inner=3, seed=3)
    whole = run(problem, design, SongShapleyAccumulator(problem.D, 6, 3), batch=design.n)
    part = SongShapleyAccumulator(problem.D, 6, 3)
    unit = design.unit_rows(0, 5)
    part.update(ishigami(problem.decode(unit.reshape(-1, 3))).reshape(5, 18), *design.blocks(0, 5))
    torch.save(part.state_dict(), tmp_path / "s.pt")
    back = SongShapleyAccumulator.from_state_dict(torch.load(tmp_path / "s.pt", weights_only=True))
    unit = design.unit_rows(5, design.n - 5)
    back.update(
        ishigami(problem.decode(unit.reshape(-1, 3))).reshape(-1, 18), *design.blocks(5, design.n - 5)
    )
    np.testing.assert_allclose(
        back.finalize(["a", "b", "c"])["shapley"], whole.finalize(["a", "b", "c"])["shapley"]
    )


def test_bad_sizes(problem):
    with pytest.raises(ValueError, match="inner >= 2"):
        SongShapleyDesign(problem, permutations=2, outer=2, inner=1)
    with pytest.raises(ValueError, match="no complete permutation"):
        SongShapleyAccumulator(3, 2, 2).finalize(["a", "b", "c"])


def _blocks_output(problem, design):
    unit = design.unit_rows(0, design.n)
    return ishigami(problem.decode(unit.reshape(-1, 3))).reshape(design.n, design.rows_per_sample)


def test_nonfinite_blocks_are_dropped_per_element_and_counted(problem):
    design = SongShapleyDesign(problem, permutations=40, outer=8, inner=4, seed=4)
    y = _blocks_output(problem, design)
    clean = SongShapleyAccumulator(problem.D, 8, 4)
    clean.update(y[:, :, None].expand(-1, -1, 2), *design.blocks(0, design.n))
    bad = y[:, :, None].repeat(1, 1, 2)
    bad[5, 3, 0] = torch.nan  # one row of block 5, element 0 only
    bad[17, 0, 0] = torch.inf
    acc = SongShapleyAccumulator(problem.D, 8, 4)
    for start in range(0, design.n, 7):
        count = min(7, design.n - start)
        acc.update(bad[start : start + count], *design.blocks(start, count))
    ds, ref = acc.finalize(["a", "b", "c"], dims=["unit"]), clean.finalize(["a", "b", "c"], dims=["unit"])
    assert np.isfinite(ds["shapley"].values).all()
    np.testing.assert_allclose(ds["shapley"].values[:, 1], ref["shapley"].values[:, 1], rtol=1e-12)
    assert not np.allclose(ds["shapley"].values[:, 0], ref["shapley"].values[:, 0], rtol=1e-12)
    assert ds["nonfinite"].values.tolist() == [2, 0] and ds.attrs["nonfinite_total"] == 2
    np.testing.assert_allclose(ds["shapley"].values[:, 0], ISHIGAMI_SHAPLEY, atol=0.08)


def test_merge_refuses_another_configuration_and_returns_self(problem):
    design = SongShapleyDesign(problem, permutations=2, outer=2, inner=2, seed=5)
    a, b = SongShapleyAccumulator(3, 2, 2), SongShapleyAccumulator(3, 2, 2)
    a.update(_blocks_output(problem, design)[:3], *design.blocks(0, 3))
    b.update(_blocks_output(problem, design)[3:], *design.blocks(3, 3))
    assert a.merge(b) is a and a.n == 6
    with pytest.raises(UserInputError, match=r"cannot merge .*inner.: 3.* configuration must match"):
        a.merge(SongShapleyAccumulator(3, 2, 3))
    with pytest.raises(UserInputError, match="configuration must match"):
        a.merge(SongShapleyAccumulator(2, 2, 2))


def test_aggregate_leaves_out_negative_ids(problem):
    design = SongShapleyDesign(problem, permutations=6, outer=4, inner=3, seed=6)
    y = _blocks_output(problem, design)
    acc = SongShapleyAccumulator(3, 4, 3)
    acc.update(torch.stack([y, 2 * y, -y], dim=-1), *design.blocks(0, design.n))
    agg = acc.aggregate(torch.tensor([0, -1, -1]), 1, factors=["a", "b", "c"])
    whole = acc.finalize(["a", "b", "c"])
    assert list(agg["factor"].values) == ["a", "b", "c"]
    np.testing.assert_allclose(agg["shapley"].values[:, 0], whole["shapley"].values[:, 0], rtol=1e-12)
    with pytest.raises(ValueError, match="n_groups=1"):
        acc.aggregate(torch.tensor([0, 1, 1]), 1)

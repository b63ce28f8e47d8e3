"""The authors' Song-type Shapley double loop (study kind shapley-song) on analytic references."""

import math

import numpy as np
import pytest
import torch

import augsens as ag
from augsens.song import SongShapleyAccumulator, SongShapleyDesign

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

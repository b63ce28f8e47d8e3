"""Method objects and the one loop: every kind through the same walk, the Song-type double loop equal to
its pinned results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from augsens.config import StudyConfig
from augsens.core import loop
from augsens.core.budget import Budget
from augsens.core.design import SongShapleyDesign
from augsens.core.estimate import SongShapleyAccumulator
from augsens.core.methods import METHODS, Batch, SongShapley
from augsens.engine.plan import method_name
from augsens.engine.study import Study
from goldens.song_reference import ANALYTIC, SHARDS, STUDY, STUDY_FAN_IN, analytic_outputs, problem, spoil
from goldens.tolerance import assert_matches_golden

GOLDEN = np.load(Path(__file__).parents[1] / "goldens" / "song_reference.npz")


def _song_analytic() -> SongShapley:
    a = ANALYTIC
    return SongShapley(
        problem(), seed=a["seed"], permutations=a["permutations"], outer=a["outer"], inner=a["inner"]
    )


def test_song_through_the_loop_equals_its_pinned_results():
    method = _song_analytic()
    p = method.problem
    acc = method.accumulator()
    rows = method.rows_per_sample
    for batch in loop.batches(method, ANALYTIC["batch"] * rows):
        y = spoil(analytic_outputs(p, batch.unit), batch.start)
        method.update(acc, y.reshape(batch.count * rows, 2), batch)
    ds = method.finalize(acc, dims=["unit"])
    for v in ("shapley", "shapley_raw", "nonfinite"):
        np.testing.assert_allclose(ds[v].values, GOLDEN[f"analytic/{v}"], rtol=0, atol=1e-12, err_msg=v)
    agg = acc.aggregate(torch.tensor([0, 0]), 1)["shapley"].values
    np.testing.assert_allclose(agg, GOLDEN["analytic/aggregate"], rtol=0, atol=1e-12)


def _assert_tree_equals_golden(tree, label: str) -> None:
    for c in STUDY["model"]["checkpoints"]:
        node = tree[c].dataset
        keys = sorted(k.split("/")[-1] for k in GOLDEN.files if k.startswith(f"{label}/{c}/"))
        assert sorted(node.data_vars) == keys
        for v in keys:
            name = f"{label}/{c}/{v}"
            assert_matches_golden(node[v].values, GOLDEN[name], torch.float32, STUDY_FAN_IN, name)


@pytest.fixture(scope="module")
def song_study() -> Study:
    return Study(StudyConfig.from_dict(STUDY), progress=False)


def test_song_study_equals_its_pinned_results_whole_and_sharded(song_study):
    study = song_study
    assert study.plan.method.granularity == study.factors.problem.D == 4
    whole = study.new_state()
    study.accumulate(whole, 0, study.plan.n)
    _assert_tree_equals_golden(study.finalize(whole), "whole")
    shards = []
    for lo, hi in SHARDS:
        state = study.new_state()
        study.accumulate(state, lo, hi)
        shards.append(study.import_state(study.export_state(state)))
    _assert_tree_equals_golden(study.finalize(study.merge_states(shards)), "sharded")


def test_song_states_refuse_a_merge_inside_a_permutation(song_study):
    study = song_study
    part = study.new_state()
    study.accumulate(part, 0, 2)  # half a permutation of D = 4 blocks
    with pytest.raises(ValueError, match="permutation boundaries"):
        study.merge_states([part])


@pytest.mark.parametrize(
    ("study", "name"),
    [
        ({"kind": "sobol"}, "sobol"),
        ({"kind": "shapley", "shapley_method": "exact"}, "shapley-exact"),
        ({"kind": "shapley", "shapley_method": "permutation"}, "shapley-permutation"),
        ({"kind": "shapley-song"}, "shapley-song"),
        ({"kind": "moments"}, "moments"),
    ],
)
def test_every_study_kind_names_a_registered_method(study, name):
    size = {} if study["kind"] == "shapley-song" else {"n": 16}  # the Song-type design has its own size keys
    cfg = StudyConfig.from_dict({"study": {**size, **study}})
    assert method_name(cfg) == name and METHODS[name].name == name


@pytest.mark.parametrize("name", sorted(METHODS))
def test_the_walk_covers_the_design_once_in_order_with_the_rows_the_method_draws(name):
    p = problem()
    method = METHODS[name](p, Budget.of(16, replicates=2 if name != "moments" else 1), design="iid", seed=5)
    batches = list(loop.batches(method, 3 * method.rows_per_sample))
    starts = [b.start for b in batches]
    assert starts == sorted(starts) and sum(b.count for b in batches) == method.n
    assert all(b.count <= 3 for b in batches)
    ends = [b.start + b.count for b in batches]
    assert starts[1:] == ends[:-1] and ends[-1] == method.n
    for b in batches:
        assert b.unit.shape == (b.count, method.rows_per_sample, p.k)
        unit, extra = method.rows(b.start, b.count)
        assert torch.equal(unit, b.unit) and all(
            torch.equal(x, y) for x, y in zip(extra, b.extra, strict=True)
        )
        assert method.design.split(b.start, b.count) == [(b.replicate, b.start, b.count)]


def test_the_song_update_refuses_a_replicate_it_does_not_have():
    design = SongShapleyDesign(problem(), permutations=1, outer=2, inner=2)
    acc = SongShapleyAccumulator(3, 2, 2)
    with pytest.raises(ValueError, match="one replicate slot"):
        acc.update(torch.zeros(3, 4), *design.blocks(0, 3), replicate=1)


def test_a_batch_flattens_its_rows_in_output_order():
    unit = torch.arange(24, dtype=torch.float64).reshape(2, 4, 3)
    batch = Batch(start=6, count=2, replicate=1, unit=unit)
    assert batch.rows.shape == (8, 3) and torch.equal(batch.rows[5], unit[1, 1])

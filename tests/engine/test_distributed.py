"""Ray sharding: a sharded run equals the single-process run, also when a shard fails and is retried."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from augsens.config import StudyConfig
from augsens.engine.distributed import RayNotInstalledError, ShardFailedError, run_distributed, shard_ranges
from augsens.engine.study import Study
from augsens.results import open_results

ray = pytest.importorskip("ray")


def _config() -> StudyConfig:
    return StudyConfig.from_dict(
        {
            "model": {"name": "augsens.testing:tiny_cnn", "checkpoints": ["conv", "pool", "fc"]},
            "study": {"kind": "sobol", "augmentations": "set1", "n": 16, "replicates": 2},
            "run": {"device": "cpu", "batch_size": 32, "state_dtype": "float64"},
        }
    )


def _assert_same(a: xr.DataTree, b: xr.DataTree) -> None:
    """Every variable of every checkpoint node agrees to 1e-10."""
    checkpoints = [name for name in a.children]
    assert checkpoints == ["conv", "pool", "fc"]
    assert sorted(b.children) == sorted(checkpoints)
    for c in checkpoints:
        da, db = a[c].to_dataset(), b[c].to_dataset()
        assert sorted(da.data_vars) == sorted(db.data_vars)
        assert len(da.data_vars) > 5
        for v in da.data_vars:
            x, y = da[v].values, db[v].values
            assert x.shape == y.shape, (c, v)
            np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-10, equal_nan=True, err_msg=f"{c}/{v}")
    assert a.attrs["base_samples_done"] == b.attrs["base_samples_done"]
    assert a.attrs["forwards"] == b.attrs["forwards"]


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster with 2 CPU workers, shared by the tests of this module."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def reference():
    """The single-process result over the whole design."""
    study = Study(_config(), progress=False)
    state = study.new_state()
    study.accumulate(state, 0, study.plan.n)
    return study.finalize(state)


def test_shard_ranges_cover_in_order():
    assert shard_ranges(16, 3) == [(0, 6), (6, 11), (11, 16)]
    assert shard_ranges(4, 10) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    # shapley-song: boundaries on permutations of D = 7 blocks
    r = shard_ranges(5 * 7, 3, granularity=7)
    assert r == [(0, 14), (14, 28), (28, 35)]
    with pytest.raises(ValueError, match="multiple"):
        shard_ranges(10, 2, granularity=3)


@pytest.mark.parametrize("fail", [None, "raise", "exit"])
def test_sharded_run_equals_single_process(cluster, reference, tmp_path, fail):
    hook = None if fail is None else (1, str(tmp_path / "failed-once"), fail)
    tree = run_distributed(_config(), tmp_path / "out", shards=3, progress=False, _fail_once=hook)
    if fail is not None:
        assert (tmp_path / "failed-once").exists()  # the shard did fail once, and was retried
    assert tree.attrs["ray_workers"] == 2 and tree.attrs["ray_shards"] == 3
    assert tree.attrs["base_samples_done"] == 16
    _assert_same(reference, tree)
    _assert_same(reference, open_results(tmp_path / "out"))


def test_shard_failing_without_retries_is_reported(cluster, tmp_path):
    hook = (0, str(tmp_path / "failed-once"), "raise")
    with pytest.raises(ShardFailedError, match=r"shard 0 \(base samples 0\.\.7\).*injected failure"):
        run_distributed(_config(), tmp_path / "out", shards=2, max_retries=0, progress=False, _fail_once=hook)
    assert not (tmp_path / "out" / "results.zarr").exists()


def test_without_ray_the_message_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail as if not installed
    with pytest.raises(RayNotInstalledError, match=r"pip install \"augsens\[ray\]\""):
        run_distributed(_config(), tmp_path)
    assert issubclass(RayNotInstalledError, ModuleNotFoundError)


def test_song_sharded_run_equals_its_pinned_results(cluster, tmp_path):
    """Shards of whole permutations (granularity D blocks, from the method) merge to the pinned results."""
    from goldens.song_reference import SHARDS, STUDY, STUDY_FAN_IN
    from goldens.tolerance import assert_matches_golden

    golden = np.load(Path(__file__).parents[1] / "goldens" / "song_reference.npz")
    tree = run_distributed(StudyConfig.from_dict(STUDY), tmp_path / "out", shards=3, progress=False)
    assert tree.attrs["ray_shards"] == len(SHARDS) and tree.attrs["base_samples_done"] == SHARDS[-1][1]
    for c in STUDY["model"]["checkpoints"]:
        node = tree[c].to_dataset()
        keys = sorted(k.split("/")[-1] for k in golden.files if k.startswith(f"sharded/{c}/"))
        assert sorted(node.data_vars) == keys
        for v in keys:
            name = f"sharded/{c}/{v}"
            assert_matches_golden(node[v].values, golden[name], torch.float32, STUDY_FAN_IN, name)


def test_study_from_python_on_ray_equals_single_process(cluster, reference, tmp_path):
    import augsens as ag

    tree = ag.study(
        "augsens.testing:tiny_cnn", "bundled", augmentations="set1", n=16, replicates=2,
        checkpoints=["conv", "pool", "fc"], device="cpu", batch_size=32, state_dtype="float64",
        out=tmp_path / "out", progress=False, ray="local", shards=3,
    )  # fmt: skip
    _assert_same(reference, tree)
    with pytest.raises(ValueError, match="pass out="):
        ag.study("augsens.testing:tiny_cnn", "bundled", n=16, replicates=2, device="cpu", ray="local")

"""A full disk: refused before the run when the state cannot fit; met during a save or the results write
with the last good state kept, no partial file left, and a message saying how much is needed."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

import augsens.engine.space as space
import augsens.engine.study as study_module
from augsens.config import StudyConfig
from augsens.data import ImageCache
from augsens.engine.space import DiskFullError, is_disk_full, size, state_nbytes
from augsens.engine.study import Study
from augsens.models import load
from augsens.testing import tiny_cnn


def _study(**run) -> Study:
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (3, 3, 224, 224), generator=gen, dtype=torch.uint8)
    cfg = StudyConfig.from_dict(
        {
            "study": {"kind": "sobol", "augmentations": ["hflip", "brightness"], "n": 8, "replicates": 2},
            "run": {"device": "cpu", "batch_size": 4, **run},
        }
    )
    images = ImageCache(x, torch.zeros(3), ["synthetic"], ["a", "b", "c"])
    return Study(cfg, model=load(tiny_cnn(), checkpoints=["act", "fc"]), images=images, progress=False)


def _enospc() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> xr.DataTree:
    return _study().run(tmp_path_factory.mktemp("whole") / "o")


def test_the_state_size_is_known_before_the_first_forward(tmp_path):
    s = _study()
    assert s.run(tmp_path / "o", stop_after=4) is None
    on_disk = (tmp_path / "o" / "state" / "state.pt").stat().st_size
    estimate = state_nbytes(s)
    assert on_disk <= estimate <= on_disk + 64 * 1024  # the tensors exactly, plus a bound on the rest


def test_a_run_whose_state_cannot_fit_is_refused_before_it_starts(tmp_path, monkeypatch):
    s = _study()
    need = state_nbytes(s)
    monkeypatch.setattr(space, "free_bytes", lambda folder: need - 1)
    calls = []
    monkeypatch.setattr(s, "forward", lambda *a: calls.append(a))
    with pytest.raises(DiskFullError, match=rf"state alone needs {size(need)}.*free at least 1 B") as info:
        s.run(tmp_path / "o")
    assert "out= (--out)" in str(info.value)
    assert calls == [] and not (tmp_path / "o").exists()  # no forward, no folder left


def _full_disk_save(obj, f, *args, **kwargs):
    f.write(b"x" * 1000)  # part of the file is written, then the disk is full
    raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos") from _enospc()


def _full_disk_zarr(self, store, *args, **kwargs):
    Path(store).mkdir(parents=True, exist_ok=True)
    (Path(store) / "partial").write_bytes(b"x" * 1000)
    raise _enospc()


@pytest.fixture
def stopped(tmp_path):
    """A run stopped after 4 of its 8 base samples, and its saved state's bytes."""
    out = tmp_path / "o"
    assert _study().run(out, stop_after=4) is None
    return out, (out / "state" / "state.pt").read_bytes()


def test_enospc_in_a_periodic_save_keeps_the_last_good_state(stopped, monkeypatch, whole):
    out, good = stopped
    with monkeypatch.context() as m:
        m.setattr(study_module.torch, "save", _full_disk_save)
        with pytest.raises(DiskFullError, match=r"last good state \(4 of 8 base samples\) is kept") as info:
            _study(checkpoint_every=0.001).run(out, resume=True)  # a save after every batch
    assert "resume=True (--resume)" in str(info.value) and "the partial file was removed" in str(info.value)
    state = out / "state" / "state.pt"
    assert state.read_bytes() == good and not state.with_suffix(".tmp").exists()
    resumed = _study().run(out, resume=True)
    np.testing.assert_array_equal(resumed["fc"].dataset["ST"], whole["fc"].dataset["ST"])


def test_no_room_for_the_final_state_writes_the_results_instead(stopped, monkeypatch, whole):
    out, _ = stopped
    monkeypatch.setattr(study_module.torch, "save", _full_disk_save)
    tree = _study().run(out, resume=True)  # every forward runs, the state does not fit, the results do
    np.testing.assert_array_equal(tree["fc"].dataset["ST"], whole["fc"].dataset["ST"])
    assert sorted(p.name for p in out.iterdir()) == ["results.zarr"]


def test_no_room_for_state_nor_results_keeps_the_last_good_state(stopped, monkeypatch):
    out, good = stopped
    monkeypatch.setattr(study_module.torch, "save", _full_disk_save)
    monkeypatch.setattr(xr.DataTree, "to_zarr", _full_disk_zarr)
    with pytest.raises(DiskFullError, match=r"\(4 of 8 base samples\) is kept.*failed too"):
        _study().run(out, resume=True)
    assert sorted(p.name for p in out.iterdir()) == ["state"]  # no partial results, no partial state
    assert (out / "state" / "state.pt").read_bytes() == good
    assert [p.name for p in (out / "state").iterdir()] == ["state.pt"]


def test_enospc_writing_the_results_keeps_every_sample(tmp_path, monkeypatch, whole):
    out = tmp_path / "o"
    real = xr.DataTree.to_zarr

    def full_disk(self, store, *args, **kwargs):
        real(self, store, *args, **kwargs)  # the store is there, then its last file hits the limit
        raise _enospc()

    monkeypatch.setattr(xr.DataTree, "to_zarr", full_disk)
    with pytest.raises(DiskFullError, match=r"to write the results \(up to .* uncompressed") as info:
        _study().run(out)
    assert "all 8 base samples are saved" in str(info.value)
    assert sorted(p.name for p in out.iterdir()) == ["state"]  # no partial results.zarr.tmp
    monkeypatch.setattr(xr.DataTree, "to_zarr", real)
    resumed = _study().run(out, resume=True)
    np.testing.assert_array_equal(resumed["fc"].dataset["ST"], whole["fc"].dataset["ST"])


def test_only_a_full_disk_or_quota_counts_as_one():
    try:
        try:
            raise _enospc()
        except OSError:
            raise RuntimeError("basic_ios::clear: iostream error")  # noqa: B904 - the context is the point
    except RuntimeError as exc:
        assert is_disk_full(exc)
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(RuntimeError("iostream error"))

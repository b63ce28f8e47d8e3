"""Results on disk are checked against the manifest written with them: a damaged store is named
precisely (deleted chunk files, deleted checkpoint folder, changed chunk), never read as NaN; the
report writes only where it may; a folder's results.zarr and an unfinished run are understood."""

from __future__ import annotations

import errno
import json
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from augsens.config import StudyConfig
from augsens.data import ImageCache
from augsens.engine.study import Study
from augsens.errors import MissingFileError, UserInputError
from augsens.manifest import MANIFEST_NAME, DamagedResultsError
from augsens.models import load
from augsens.results import open_results
from augsens.testing import tiny_cnn
from cli_battery import run_inprocess


def _study() -> Study:
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (3, 3, 224, 224), generator=gen, dtype=torch.uint8)
    cfg = StudyConfig.from_dict(
        {
            "study": {"kind": "sobol", "augmentations": ["hflip", "brightness"], "n": 8, "replicates": 2},
            "run": {"device": "cpu", "batch_size": 4},
        }
    )
    images = ImageCache(x, torch.zeros(3), ["synthetic"], ["a", "b", "c"])
    return Study(cfg, model=load(tiny_cnn(), checkpoints=["act", "fc"]), images=images, progress=False)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "o"
    _study().run(out)
    return out


@pytest.fixture
def copy(finished: Path, tmp_path: Path) -> Path:
    out = tmp_path / "o"
    shutil.copytree(finished, out)
    return out


def test_the_manifest_lists_every_node_variable_and_file(finished):
    manifest = json.loads((finished / "results.zarr" / MANIFEST_NAME).read_text())
    tree = open_results(finished, verify="full")
    assert set(manifest["nodes"]) == {"/", "/act", "/fc"}
    assert manifest["nodes"]["/act"]["ST"] == list(tree["act"].dataset["ST"].shape)
    on_disk = {
        p.relative_to(finished / "results.zarr").as_posix()
        for p in (finished / "results.zarr").rglob("*")
        if p.is_file() and p.name != MANIFEST_NAME
    }
    assert set(manifest["files"]) == on_disk


def test_deleted_chunk_files_are_named_not_read_as_nan(copy):
    for chunk in (copy / "results.zarr" / "act" / "S1").glob("[0-9]*"):
        chunk.unlink()
    with pytest.raises(DamagedResultsError, match=r"variable 'S1' of node 'act': 1 file missing \(act/S1/0"):
        open_results(copy)
    code, output, escaped = run_inprocess(["report", str(copy)])
    assert (code, escaped) == (2, False) and "variable 'S1' of node 'act'" in output, output
    assert "--overwrite" in output and not (copy / "report.html").exists()


def test_a_deleted_checkpoint_folder_is_named(copy):
    shutil.rmtree(copy / "results.zarr" / "fc")
    with pytest.raises(DamagedResultsError, match="checkpoint node 'fc' is missing") as info:
        open_results(copy)
    assert "overwrite=True (--overwrite)" in str(info.value)  # the API's words


def test_a_changed_chunk_is_found_by_the_full_check_and_the_report(copy):
    chunk = next((copy / "results.zarr" / "fc" / "ST").glob("[0-9]*"))
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only a checksum sees it
    chunk.write_bytes(bytes(data))
    open_results(copy)  # the quick check looks at sizes only
    with pytest.raises(DamagedResultsError, match=r"variable 'ST' of node 'fc': 1 file changed"):
        open_results(copy, verify="full")
    for argv in (["verify", str(copy)], ["report", str(copy)]):
        code, output, escaped = run_inprocess(argv)
        assert (code, escaped) == (2, False) and "fc/ST/" in output, (argv, output)
    code, output, _ = run_inprocess(["verify", "--quick", str(copy)])
    assert code == 0 and "sizes match" in output, output


def test_verify_reports_a_sound_store(finished):
    code, output, _ = run_inprocess(["verify", str(finished)])
    files = len(json.loads((finished / "results.zarr" / MANIFEST_NAME).read_text())["files"])
    assert code == 0 and f"2 nodes, {files} files, sizes and checksums match" in output, output


def test_results_zarr_given_for_its_folder_is_understood(finished, tmp_path):
    tree = open_results(finished / "results.zarr")
    assert list(tree.children) == ["act", "fc"]
    page = tmp_path / "page.html"
    code, output, _ = run_inprocess(["report", str(finished / "results.zarr"), "--out", str(page)])
    assert code == 0 and page.is_file(), output


def test_an_unfinished_run_points_to_its_state_and_resume(tmp_path):
    out = tmp_path / "o"
    assert _study().run(out, stop_after=4) is None
    with pytest.raises(MissingFileError, match=r"unfinished run.*state\.pt.*resume=True \(--resume\)"):
        open_results(out)
    code, output, _ = run_inprocess(["report", str(out)])
    assert code == 2 and "state.pt" in output and "--resume" in output and "resume=True" not in output


def test_report_writes_only_where_it_may(copy, tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system", str(copy))

    with monkeypatch.context() as m:  # the results folder is read-only
        m.setattr(tempfile, "TemporaryFile", read_only)
        code, output, escaped = run_inprocess(["report", str(copy)])
    assert (code, escaped) == (2, False), output
    assert "cannot write the report" in output and "--out FILE" in output and "Read-only" in output
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, output, escaped = run_inprocess(["report", str(copy), "--out", str(blocker / "r.html")])
    assert (code, escaped) == (2, False) and "cannot write the report" in output, output
    code, output, _ = run_inprocess(["report", str(copy), "--out", str(tmp_path / "new" / "r.html")])
    assert code == 0 and f"report: {tmp_path / 'new' / 'r.html'}" in output.replace("\n", "")


def test_a_bad_verify_value_is_refused():
    with pytest.raises(UserInputError, match="verify='fast'"):
        open_results("anything", verify="fast")  # type: ignore[arg-type]

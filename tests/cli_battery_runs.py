"""Fault cases of whole runs: two runs into one folder, a killed run resumed, settings changed on resume,
checkpoints without data, damaged results, a report that may not write, a full disk, an unfinished run
read as results, and an empty ``--out``.

The cases use :class:`cli_battery.Case`; those that need something happening while the command runs
(a process holding the folder, a disk simulated full) give it as ``Case.during``.
``tests/cli/test_cli_faults_runs.py`` checks each and ``benchmarks/cli_faults.py`` counts them with the rest
of the battery.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO
from unittest import mock

from cli_battery import Case, _run, full_run, partial_run, tiny_config

# ------------------------------------------------------------------ two runs into one folder
_FIRST_RUN = """
import sys, time
from augsens.config import load_config
from augsens.engine.study import Study
from augsens.outlock import own_out
with own_out(sys.argv[2]):  # the whole study, then the folder stays held (as while a report is drawn)
    Study(load_config(sys.argv[1]), progress=False).run(sys.argv[2])
    print("held", flush=True)
    time.sleep(120)
"""


def _pid(d: Path) -> int:
    return int((d / "first.pid").read_text())


@contextlib.contextmanager
def _first_run_holds(d: Path) -> Iterator[None]:
    """A first run in another process has written its results into ``d/out`` and still holds it."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "OMP_NUM_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
    }
    argv = [sys.executable, "-c", _FIRST_RUN, str(d / "c.toml"), str(d / "out")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held", "the first run failed"
        (d / "first.pid").write_text(str(proc.pid))
        (d / "first.json").write_text(json.dumps(_values(d / "out")))
        yield
    finally:
        proc.kill()
        proc.wait()


def _values(out: Path) -> dict[str, list[float]]:
    from augsens.results import open_results

    tree = open_results(out, verify="full")
    return {c: tree[c].dataset["ST"].values.ravel().tolist() for c in tree.children}


def _second_run(d: Path) -> list[str]:
    return _run(d, tiny_config(d), "--overwrite")


def _first_kept_and_named(d: Path, output: str) -> bool:
    named = f"process {_pid(d)}" in output
    return named and _values(d / "out") == json.loads((d / "first.json").read_text())


# ------------------------------------------------------------------ kill -9, then --resume
def _killed(d: Path) -> list[str]:
    """A run killed with SIGKILL after its first saved state; its lock file names the dead process."""
    cfg = tiny_config(d, n=128, extra="checkpoint_every = 0.001\n")  # a save after every batch
    full_run(cfg, d / "whole")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    cli = "import sys; from augsens.cli import app; sys.argv[0] = 'augsens'; app()"
    argv = [sys.executable, "-c", cli, *_run(d, cfg)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = d / "out" / "state" / "state.pt"
    while proc.poll() is None and not state.is_file():
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state.is_file() and not (d / "out" / "results.zarr").exists(), "the run ended before the kill"
    return _run(d, cfg, "--resume")


def _equal_to_whole(d: Path, _: str) -> bool:
    return _values(d / "out") == _values(d / "whole")


# ------------------------------------------------------------------ settings changed on resume
def _resume_with(*sets: str) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        cfg = tiny_config(d)
        partial_run(cfg, d / "out")
        return _run(d, cfg, "--resume", *[a for s in sets for a in ("--set", s)])

    return setup


def _state_kept(d: Path, _: str) -> bool:
    return (d / "out" / "state" / "state.pt").is_file() and not (d / "out" / "results.zarr").exists()


def _two_parts(d: Path, _: str) -> bool:
    from augsens.results import open_results

    history = json.loads(open_results(d / "out").attrs["run_history"])
    # channels_last = "auto" ran the convolutional network in NHWC on the CPU; the resume asked for NCHW
    return [(h["batch_size"], h["channels_last"]) for h in history] == [(24, True), (8, False)]


# ------------------------------------------------------------------ checkpoints without data
NAN_MODELS = """
from torch import nn


class _AllNaN(nn.Module):
    def forward(self, x):
        return x * float("nan")


def all_nan():
    net = nn.Sequential()
    net.add_module("conv", nn.Conv2d(3, 4, 8, stride=8))
    net.add_module("nan", _AllNaN())
    net.add_module("pool", nn.AdaptiveAvgPool2d(2))
    return net
"""


def _nan_model(d: Path) -> list[str]:
    module = f"nan_models_{abs(hash(str(d)))}"
    (d / f"{module}.py").write_text(NAN_MODELS)
    sys.path.insert(0, str(d))
    cfg = tiny_config(d)
    text = cfg.read_text().replace('"augsens.testing:tiny_cnn"', f'"{module}:all_nan"')
    cfg.write_text(text.replace('checkpoints = ["conv", "fc"]', 'checkpoints = ["nan", "pool"]'))
    return ["run", str(cfg), "--out", str(d / "out"), "-q"]  # with the report: its summary is judged


@contextlib.contextmanager
def _warnings_shown(d: Path) -> Iterator[None]:
    """Warnings printed as a user's terminal prints them (the battery and pytest otherwise hold them)."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


def _no_conclusion(d: Path, _: str) -> bool:
    return "No conclusion" in (d / "out" / "report.html").read_text()


# ------------------------------------------------------------------ damaged results
def _finished(d: Path) -> Path:
    full_run(tiny_config(d), d / "out")
    return d / "out" / "results.zarr"


def _delete_chunks(d: Path) -> None:
    for chunk in (_finished(d) / "conv" / "S1").glob("[0-9]*"):
        chunk.unlink()


def _delete_node(d: Path) -> None:
    shutil.rmtree(_finished(d) / "fc")


def _change_chunk(d: Path) -> None:
    chunk = next((_finished(d) / "fc" / "ST").glob("[0-9]*"))
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only a checksum sees it
    chunk.write_bytes(bytes(data))


def _on_damaged(command: str, damage: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        damage(d)
        return [command, str(d / "out")]

    return setup


def _no_report(d: Path, _: str) -> bool:
    return not (d / "out" / "report.html").exists()


# ------------------------------------------------------------------ a report that may not write
def _report(*more: str) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        _finished(d)
        return ["report", str(d / "out"), *[m.replace("{d}", str(d)) for m in more]]

    return setup


@contextlib.contextmanager
def _read_only(d: Path) -> Iterator[None]:
    """The results folder on a read-only filesystem (root ignores permission bits, so the probe write
    is refused the way a read-only mount refuses it)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EROFS, "Read-only file system", str(d / "out"))

    with mock.patch.object(tempfile, "TemporaryFile", refuse):
        yield


def _blocked_out(d: Path) -> list[str]:
    (d / "file").write_text("")  # a folder of --out that is a file: unwritable for root as well
    return _report("--out", "{d}/file/r.html")(d)


# ------------------------------------------------------------------ a full disk
@contextlib.contextmanager
def _disk_too_small_for_the_state(d: Path) -> Iterator[None]:
    """A filesystem with 1 KiB free; a forward (Study.forward) would be a failure of the check."""
    import augsens.engine.space as space
    from augsens.engine.study import Study

    def forward(*args: object) -> None:
        raise AssertionError("a forward ran although the state cannot be saved")

    with (
        mock.patch.object(space, "free_bytes", lambda folder: 1024),
        mock.patch.object(Study, "forward", forward),
    ):
        yield


def _nothing_left(d: Path, _: str) -> bool:
    return not (d / "out").exists()


@contextlib.contextmanager
def _no_room_for_results(d: Path) -> Iterator[None]:
    """The results store is written, then its last file hits a full disk (ENOSPC)."""
    import xarray as xr

    real = xr.DataTree.to_zarr

    def full_disk(self: xr.DataTree, store: object, *args: object, **kwargs: object) -> None:
        real(self, store, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    with mock.patch.object(xr.DataTree, "to_zarr", full_disk):
        yield


def _only_state(d: Path, _: str) -> bool:
    return sorted(p.name for p in (d / "out").iterdir()) == ["state"] and _state_kept(d, _)


def _resume_after_full_disk(d: Path) -> list[str]:
    from cli_battery import run_inprocess

    argv = _run(d, tiny_config(d))
    with _no_room_for_results(d):
        code, output, _ = run_inprocess(argv)
    assert code == 2 and _only_state(d, output), output
    full_run(tiny_config(d), d / "whole")
    return [*argv, "--resume"]


# ------------------------------------------------------------------ unfinished runs, folders, empty --out
def _report_unfinished(d: Path) -> list[str]:
    partial_run(tiny_config(d), d / "out")
    return ["report", str(d / "out")]


def _api_says_resume(d: Path, output: str) -> bool:
    """``ag.open_results`` on the same folder says the same in the API's words."""
    import augsens as ag
    from augsens.errors import UserInputError

    try:
        ag.open_results(d / "out")
    except UserInputError as exc:
        text = str(exc)
        return "state.pt" in text and "resume=True (--resume)" in text and "resume=True" not in output
    return False


def _report_written_beside(d: Path, _: str) -> bool:
    return (d / "out" / "report.html").is_file() and not (d / "out" / "results.zarr" / "report.html").exists()


@contextlib.contextmanager
def _in(d: Path) -> Iterator[None]:
    cwd = Path.cwd()
    os.chdir(d)
    try:
        yield
    finally:
        os.chdir(cwd)


RUN_CASES: list[Case] = [
    Case(
        "two runs into one --out at once",
        _second_run,
        words=("in use by another augsens run", "--out"),
        check=_first_kept_and_named,
        during=_first_run_holds,
    ),
    Case("kill -9 mid-run, then --resume", _killed, code=0, check=_equal_to_whole, slow=True),
    Case(
        "--resume with another dtype",
        _resume_with('run.dtype="bfloat16"'),
        words=('run.dtype: "float32" -> "bfloat16"', "--overwrite"),
        check=_state_kept,
    ),
    Case(
        "--resume with another state_dtype",
        _resume_with('run.state_dtype="float32"'),
        words=('run.state_dtype: "mixed" -> "float32"', "--overwrite"),
        check=_state_kept,
    ),
    Case(
        "--resume with another batch size and layout",
        _resume_with("run.batch_size=8", "run.channels_last=false"),
        code=0,
        check=_two_parts,
    ),
    Case(
        "every checkpoint all NaN",
        _nan_model,
        code=0,
        check=lambda d, out: "every checkpoint 'nan', 'pool'" in out and _no_conclusion(d, out),
        during=_warnings_shown,
    ),
    Case(
        "report with chunk files of a variable deleted",
        _on_damaged("report", _delete_chunks),
        words=("variable 'S1' of node 'conv'", "missing", "--overwrite"),
        check=_no_report,
    ),
    Case(
        "verify with chunk files of a variable deleted",
        _on_damaged("verify", _delete_chunks),
        words=("variable 'S1' of node 'conv'", "missing"),
    ),
    Case(
        "report with a checkpoint folder deleted",
        _on_damaged("report", _delete_node),
        words=("checkpoint node 'fc' is missing", "--overwrite"),
        check=_no_report,
    ),
    Case(
        "verify with a checkpoint folder deleted",
        _on_damaged("verify", _delete_node),
        words=("checkpoint node 'fc' is missing",),
    ),
    Case(
        "report with a chunk changed at the same size",
        _on_damaged("report", _change_chunk),
        words=("variable 'ST' of node 'fc'", "changed", "fc/ST/"),
        check=_no_report,
    ),
    Case(
        "verify with a chunk changed at the same size",
        _on_damaged("verify", _change_chunk),
        words=("variable 'ST' of node 'fc'", "changed", "fc/ST/"),
    ),
    Case(
        "report on a read-only results folder",
        _report(),
        words=("cannot write the report", "--out FILE", "Read-only"),
        check=_no_report,
        during=_read_only,
    ),
    Case("report --out unwritable", _blocked_out, words=("cannot write the report", "r.html")),
    Case(
        "--out too small for the state",
        lambda d: _run(d, tiny_config(d)),
        words=("state alone needs", "free at least", "--out"),
        check=_nothing_left,
        during=_disk_too_small_for_the_state,
    ),
    Case(
        "--out with room for the state, not the results",
        lambda d: _run(d, tiny_config(d)),
        words=("to write the results", "all 8 base samples are saved", "--resume"),
        check=_only_state,
        during=_no_room_for_results,
    ),
    Case(
        "--resume after the results did not fit",
        _resume_after_full_disk,
        code=0,
        check=lambda d, _: not (d / "out" / "state").exists() and _equal_to_whole(d, _),
    ),
    Case(
        "report on an unfinished run",
        _report_unfinished,
        words=("unfinished", "state.pt", "--resume"),
        check=_api_says_resume,
    ),
    Case(
        "report on OUT/results.zarr",
        lambda d: ["report", str(_finished(d))],
        code=0,
        check=_report_written_beside,
    ),
    Case(
        "--out empty",
        lambda d: ["run", str(tiny_config(d)), "--out", "", "-q"],
        words=("--out is empty",),
        check=lambda d, _: sorted(p.name for p in d.iterdir()) == ["c.toml"],
        during=_in,
    ),
]

"""A run owns its output folder: a second run into it is refused naming the holder; a killed holder's
lock is taken over; a folder the run created and left empty is removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from augsens.errors import UserInputError
from augsens.outlock import LOCK_NAME, OutFolderLockedError, lock_holder, own_out
from cli_battery import run_inprocess, tiny_config

_HOLDER = """
import sys, time
from augsens.outlock import own_out
with own_out(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path: Path):
    """Another process holding ``tmp_path/out`` until killed."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(out)], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield out, proc
    finally:
        proc.kill()
        proc.wait()


def test_a_second_process_is_refused_naming_the_holder_and_a_killed_holder_is_taken_over(holder):
    out, proc = holder
    with pytest.raises(OutFolderLockedError, match=rf"in use by another augsens run \(process {proc.pid}\b"):
        with own_out(out):
            pass
    assert lock_holder(out)["pid"] == proc.pid
    proc.send_signal(signal.SIGKILL)  # no clean-up runs: the lock file stays behind, naming the dead run
    proc.wait()
    assert (out / LOCK_NAME).is_file() and lock_holder(out)["pid"] == proc.pid
    with own_out(out):
        assert lock_holder(out)["pid"] == os.getpid()
    assert not (out / LOCK_NAME).exists()


def test_the_cli_refuses_a_folder_held_by_a_running_study_at_once(holder, tmp_path):
    out, proc = holder
    (out / "state").mkdir()
    (out / "state" / "state.pt").write_bytes(b"another run's state")
    code, output, escaped = run_inprocess(
        ["run", str(tiny_config(tmp_path)), "--out", str(out), "--overwrite", "-q", "--no-report"]
    )
    assert (code, escaped) == (2, False), output
    assert f"process {proc.pid}" in output and "--out" in output and "out=" not in output
    # --overwrite would discard the state: the running study's files are untouched
    assert (out / "state" / "state.pt").read_bytes() == b"another run's state"


def test_another_thread_is_refused_and_the_same_thread_reenters(tmp_path):
    out = tmp_path / "out"
    errors: list[BaseException] = []

    def other() -> None:
        try:
            with own_out(out):
                pass
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            errors.append(exc)

    with own_out(out), own_out(out):  # re-entrant: Study.run inside ag.study inside the CLI
        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert (out / LOCK_NAME).is_file()
    assert len(errors) == 1 and isinstance(errors[0], OutFolderLockedError)
    assert "another thread of this process" in str(errors[0]) and "out= (--out)" in str(errors[0])
    assert not out.exists()  # created by the lock, nothing went in: removed with it


def test_a_folder_with_content_stays_and_loses_only_the_lock(tmp_path):
    out = tmp_path / "out"
    with own_out(out):
        (out / "kept.txt").write_text("x")
    assert sorted(p.name for p in out.iterdir()) == ["kept.txt"]


def test_empty_out_is_refused_in_the_callers_words(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserInputError, match=r"out= \(--out\) is empty"):
        with own_out(""):
            pass
    code, output, _ = run_inprocess(["run", str(tiny_config(tmp_path)), "--out", "", "-q"])
    assert code == 2 and "--out is empty" in output, output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]  # nothing written into the cwd


@pytest.mark.slow
def test_kill_9_mid_run_leaves_a_stale_lock_that_resume_takes_over_with_equal_results(tmp_path):
    import numpy as np

    from augsens.results import open_results
    from cli_battery import full_run

    cfg = tiny_config(tmp_path, n=128, extra="checkpoint_every = 0.001\n")  # a save after every batch
    full_run(cfg, tmp_path / "whole")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    cli = "import sys; from augsens.cli import app; sys.argv[0] = 'augsens'; app()"
    argv = [sys.executable, "-c", cli, "run", str(cfg), "--out", str(out), "-q", "--no-report"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "state" / "state.pt"
    while proc.poll() is None and not state.is_file():
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state.is_file() and not (out / "results.zarr").exists(), "the run ended before the kill"
    assert lock_holder(out)["pid"] == proc.pid  # the lock file of the dead run is still there
    code, output, escaped = run_inprocess(
        ["run", str(cfg), "--out", str(out), "--resume", "-q", "--no-report"]
    )
    assert (code, escaped) == (0, False), output
    assert not (out / LOCK_NAME).exists()
    a, b = open_results(out), open_results(tmp_path / "whole")
    for node in a.children:
        for v in ("S1", "ST", "mean", "var"):
            np.testing.assert_array_equal(a[node].dataset[v].values, b[node].dataset[v].values)

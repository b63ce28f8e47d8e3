"""The command line under bad input and faults: one clear message, nothing lost, nothing mixed.

The cases live in ``cli_battery.py`` (shared with ``benchmarks/cli_faults.py``).  Each in-process case
asserts the exit code, the key words of the message, that no traceback escapes, and what is left on disk;
the signal cases run real subprocesses that receive SIGTERM or SIGINT at startup, mid-study, during
finalisation and while writing, then resume and compare with an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from augsens.results import open_results
from cli_battery import (
    CASES,
    Case,
    assert_one_clear_answer,
    full_run,
    judge_signal,
    run_inprocess,
    run_signal_jobs,
    tiny_config,
)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault_gives_one_clear_answer(case: Case, tmp_path: Path) -> None:
    assert_one_clear_answer(case, tmp_path, no_new_folder=True)


def _assert_same_results(a: Path, b: Path) -> None:
    ta, tb = open_results(a), open_results(b)
    assert list(ta.children) == list(tb.children)
    for node in ta.children:
        da, db = ta[node].dataset, tb[node].dataset
        assert set(da.data_vars) == set(db.data_vars)
        for v in da.data_vars:
            np.testing.assert_allclose(da[v].values, db[v].values, rtol=1e-12, atol=1e-12, err_msg=v)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted tiny run (n = 16) to compare resumed runs with."""
    d = tmp_path_factory.mktemp("reference")
    full_run(tiny_config(d, n=16), d / "out")
    return d / "out"


@pytest.mark.slow
def test_signals_at_every_phase_leave_a_resumable_state_or_complete_results(
    tmp_path: Path, reference: Path
) -> None:
    plan = [
        ("startup", "SIGTERM"),
        ("mid-study", "SIGTERM"),
        ("mid-study", "SIGINT"),
        ("finalisation", "SIGTERM"),
        ("finalisation", "SIGINT"),
        ("writing", "SIGTERM"),
    ]
    folders = []
    jobs = []
    for i, (phase, sig) in enumerate(plan):
        d = tmp_path / f"{i}-{phase}-{sig}"
        d.mkdir()
        folders.append(d)
        jobs.append(
            (phase, sig, ["run", str(tiny_config(d, n=16)), "--out", str(d / "out"), "-q", "--no-report"])
        )
    answers = run_signal_jobs(jobs)
    for (phase, sig), d, (code, output) in zip(plan, folders, answers, strict=True):
        verdict, facts = judge_signal(d, code, output)
        assert verdict == "clear", (phase, sig, code, output, facts)
        assert "Traceback" not in output
        assert code == 128 + getattr(signal, sig), (phase, sig, code, output)
        if phase == "startup":
            assert not (d / "out").exists() and "nothing was computed" in output
        elif phase == "writing":  # the results were complete before the stop took effect
            assert facts["results"] and not facts["state"]
            _assert_same_results(d / "out", reference)
        else:
            assert facts["state"] and not facts["results"] and "--resume" in output
            if phase == "finalisation":
                assert "all 16 base samples are done" in output
            argv = ["run", str(d / "c.toml"), "--out", str(d / "out"), "-q", "--no-report", "--resume"]
            code, output, escaped = run_inprocess(argv)
            assert code == 0 and not escaped, output
            assert not (d / "out" / "state").exists()
            _assert_same_results(d / "out", reference)  # resumed == uninterrupted, to 1e-12


@pytest.mark.slow
def test_sigterm_from_outside_keeps_the_run(tmp_path: Path) -> None:
    """A scheduler's SIGTERM while the study runs: the run says what it kept, and resumes to the same
    results as an uninterrupted run."""
    cfg = tiny_config(tmp_path, n=64)
    full_run(cfg, tmp_path / "whole")
    cli = "from augsens.cli import app; app(prog_name='augsens')"
    cmd = [sys.executable, "-c", cli, "run", str(cfg), "--out", str(tmp_path / "out"), "-q", "--no-report"]
    # a state save after every batch, so that its file shows the loop is running
    save_often = ["--set", "run.checkpoint_every=0.001"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [*cmd, *save_often], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    state = tmp_path / "out" / "state" / "state.pt"
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    verdict, facts = judge_signal(tmp_path, proc.returncode, output)
    assert verdict == "clear" and proc.returncode == 143, (proc.returncode, output, facts)
    if facts["state"]:  # the usual case: stopped mid-study (or while finalising)
        code, output, escaped = run_inprocess([*cmd[3:], "--resume"])
        assert code == 0 and not escaped, output
    _assert_same_results(tmp_path / "out", tmp_path / "whole")


def test_cli_answers_a_bad_config_without_importing_torch(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[run]\nbatchsize = 4\n")
    code = (
        "import sys\n"
        "from augsens.cli import app\n"
        f"try:\n    app(['run', {str(cfg)!r}, '--out', {str(tmp_path / 'o')!r}])\n"
        "except SystemExit as exc:\n    assert exc.code == 2, exc.code\n"
        "heavy = sorted(m for m in ('torch', 'xarray', 'timm', 'scipy') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "[run]" in res.stderr and "'batchsize'" in res.stderr


def test_debug_shows_the_traceback_of_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("[study]\nn = 3\n")
    code, output, escaped = run_inprocess(
        ["--debug", "run", str(tmp_path / "c.toml"), "--out", str(tmp_path)]
    )
    assert escaped and "ConfigError" in output and "power of 2" in output


def test_an_internal_error_keeps_its_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug (here a ValueError from inside the engine) is never disguised as bad input."""
    import augsens.engine.study

    def broken(self, state):
        raise ValueError("internal: shapes do not line up")

    monkeypatch.setattr(augsens.engine.Study, "finalize", broken)
    argv = ["run", str(tiny_config(tmp_path)), "--out", str(tmp_path / "out"), "-q", "--no-report"]
    code, output, escaped = run_inprocess(argv)
    assert escaped and code == 1 and "Traceback" in output and "shapes do not line up" in output

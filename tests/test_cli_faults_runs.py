"""The command line under run-level faults (``cli_battery_runs.py``): one clear message or a correct run."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from cli_battery import Case, run_inprocess
from cli_battery_runs import RUN_CASES

# the kill -9 case starts a real run in a subprocess and resumes it: slow, as its test in test_outlock.py
_PARAMS = [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if c.slow else []) for c in RUN_CASES]


@pytest.mark.parametrize("case", _PARAMS)
def test_run_fault_gives_one_clear_answer(case: Case, tmp_path: Path) -> None:
    argv = case.setup(tmp_path)
    with case.during(tmp_path) if case.during is not None else contextlib.nullcontext():
        code, output, escaped = run_inprocess(argv)
    assert not escaped and "Traceback" not in output, output
    assert code == case.code, output
    for word in case.words:
        assert word.lower() in output.lower(), (word, output)
    if case.check is not None:
        assert case.check(tmp_path, output), output
    if code != 0:
        errors = [line for line in output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, output  # one message, not a wall of text

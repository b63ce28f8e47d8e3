"""The command line under run-level faults (``cli_battery_runs.py``): one clear message or a correct run."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_battery import Case, assert_one_clear_answer
from cli_battery_runs import RUN_CASES

# the kill -9 case starts a real run in a subprocess and resumes it: slow, as its test in test_outlock.py
_PARAMS = [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if c.slow else []) for c in RUN_CASES]


@pytest.mark.parametrize("case", _PARAMS)
def test_run_fault_gives_one_clear_answer(case: Case, tmp_path: Path) -> None:
    assert_one_clear_answer(case, tmp_path)

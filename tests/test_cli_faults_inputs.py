"""The command line under odd inputs (``cli_battery_inputs.py``): one clear message or a correct run."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_battery import Case, run_inprocess
from cli_battery_inputs import INPUT_CASES


@pytest.mark.parametrize("case", INPUT_CASES, ids=[c.name for c in INPUT_CASES])
def test_input_fault_gives_one_clear_answer(case: Case, tmp_path: Path) -> None:
    argv = case.setup(tmp_path)
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

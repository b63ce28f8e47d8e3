"""The command line under odd inputs (``cli_battery_inputs.py``): one clear message or a correct run."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_battery import Case, assert_one_clear_answer
from cli_battery_inputs import INPUT_CASES


@pytest.mark.parametrize("case", INPUT_CASES, ids=[c.name for c in INPUT_CASES])
def test_input_fault_gives_one_clear_answer(case: Case, tmp_path: Path) -> None:
    assert_one_clear_answer(case, tmp_path)

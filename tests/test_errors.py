"""The shared error helpers: torch's out-of-memory error recognised without importing torch."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from augsens.errors import is_out_of_memory, unknown_name_message


def test_out_of_memory_recognised() -> None:
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert not is_out_of_memory(RuntimeError("CUDA out of memory"))  # only the type counts, not the text
    assert not is_out_of_memory(MemoryError())


def test_out_of_memory_without_torch_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch")
    assert not is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))


def test_errors_module_does_not_import_torch() -> None:
    code = "import sys, augsens.errors; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_name_message_suggests_close_names() -> None:
    known = ["features.3", *(f"unit{i}" for i in range(25))]
    msg = unknown_name_message("checkpoint", "feature.3", known, "Name one of them.")
    assert msg.startswith("unknown checkpoint 'feature.3'. Did you mean ['features.3']? Available: [")
    assert "'unit18'] ..." in msg and "unit19" not in msg  # the first 20 names only
    assert msg.endswith(" Name one of them.")

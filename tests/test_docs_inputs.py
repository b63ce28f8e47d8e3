"""The Python examples of docs/inputs.md run as written (the study at a smaller n)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from augsens.augment.checks import check_augmentation

DOC = Path(__file__).resolve().parents[1] / "docs" / "inputs.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.mark.filterwarnings("ignore:.*points per replicate")
def test_the_signal_study_example_runs():
    (block,) = [b for b in _blocks() if "as_samples" in b]
    small = block.replace(
        "n=256,", 'n=16, replicates=2, checkpoints=["conv1", "fc"], device="cpu", progress=False,'
    )
    assert small != block
    scope: dict = {}
    exec(compile(small, str(DOC), "exec"), scope)  # noqa: S102 - the documentation's own example
    tree = scope["tree"]
    assert tree["conv1"].dataset["ST"].dims == ("factor", "channel", "time")
    assert tree["conv1"].dataset["ST_time"].dims == ("factor", "time")


def test_the_own_perturbation_example_follows_the_protocol():
    (block,) = [b for b in _blocks() if "def clip" in b]
    scope: dict = {}
    exec(compile(block, str(DOC), "exec"), scope)  # noqa: S102
    probe = torch.randn(4, 2, 64, generator=torch.Generator().manual_seed(0))
    check_augmentation(scope["clipping"], probe)
    out = scope["clipping"](probe, level=torch.full((4,), 0.5))
    assert float(out.abs().max()) == 0.5

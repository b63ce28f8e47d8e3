"""The run loop's failure paths: out of memory in the forward pass keeps the state of the batches done."""

from __future__ import annotations

import pytest
import torch

from augsens.config import StudyConfig
from augsens.engine.study import Study


def test_out_of_memory_in_the_forward_saves_the_state_and_resume_finishes(tmp_path, monkeypatch):
    cfg = StudyConfig.from_dict(
        {
            "model": {"name": "augsens.testing:tiny_cnn", "checkpoints": ["fc"]},
            "study": {"kind": "moments", "augmentations": ["hflip"], "n": 8, "design": "iid"},
            "run": {"device": "cpu", "batch_size": 2},
        }
    )
    study = Study(cfg, progress=False)
    original = study.forward
    calls = {"n": 0}

    def forward_then_oom(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return original(*args)

    monkeypatch.setattr(study, "forward", forward_then_oom)
    with pytest.raises(torch.OutOfMemoryError):
        study.run(tmp_path)
    blob = torch.load(tmp_path / "state" / "state.pt", weights_only=True)
    assert blob["position"] == 4  # two whole batches of 2 base samples, none of the failed one
    tree = Study(cfg, progress=False).run(tmp_path, resume=True)
    assert tree.attrs["base_samples_done"] == 8

"""Resume refuses every changed setting that changes the numbers, naming it; batch size, device and
channels_last may change, and the results record what each part of the run used."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from augsens.config import StudyConfig
from augsens.data import ImageCache
from augsens.engine.study import Study
from augsens.errors import UserInputError
from augsens.models import load
from augsens.testing import tiny_cnn


def _images() -> ImageCache:
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (3, 3, 224, 224), generator=gen, dtype=torch.uint8)
    return ImageCache(x, torch.zeros(3), ["synthetic"], ["a", "b", "c"])


def _config(**run) -> StudyConfig:
    return StudyConfig.from_dict(
        {
            "study": {"kind": "sobol", "augmentations": ["hflip", "brightness"], "n": 16, "replicates": 2},
            "run": {"device": "cpu", "batch_size": 32, **run},
        },
        source="test",
    )


@pytest.fixture(scope="module")
def inputs():
    return load(tiny_cnn(), checkpoints=["act", "fc"]), _images()


def _study(inputs, **run) -> Study:
    model, images = inputs
    return Study(_config(**run), model=model, images=images, progress=False)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"dtype": "bfloat16"}, 'run.dtype: "float32" -> "bfloat16"'),
        ({"state_dtype": "float32"}, 'run.state_dtype: "mixed" -> "float32"'),
    ],
)
def test_resume_refuses_a_setting_that_changes_the_numbers(inputs, tmp_path, change, named):
    assert _study(inputs).run(tmp_path, stop_after=8) is None
    saved = (tmp_path / "state" / "state.pt").read_bytes()
    with pytest.raises(UserInputError, match="cannot resume") as info:
        _study(inputs, **change).run(tmp_path, resume=True)
    assert named in str(info.value) and "overwrite=True (--overwrite)" in str(info.value)
    assert (tmp_path / "state" / "state.pt").read_bytes() == saved  # nothing lost


def test_resume_may_change_batch_size_and_layout_and_records_them(inputs, tmp_path):
    whole = _study(inputs, channels_last=False).run(tmp_path / "whole")
    assert _study(inputs, channels_last=False).run(tmp_path / "part", stop_after=8) is None
    resumed = _study(inputs, batch_size=8, channels_last=True).run(tmp_path / "part", resume=True)
    history = json.loads(resumed.attrs["run_history"])
    assert [(h["from_sample"], h["batch_size"], h["channels_last"]) for h in history] == [
        (0, 32, False),
        (8, 8, True),
    ]
    assert all(h["device"] == "cpu" and h["fold_batchnorm"] for h in history)
    assert json.loads(whole.attrs["run_history"]) == [
        {"from_sample": 0, "batch_size": 32, "channels_last": False, "fold_batchnorm": True, "device": "cpu"}
    ]
    for c in ("act", "fc"):
        # fp32 forwards: another batch split may move the last bits of a matmul, not more
        tol = 10 * torch.finfo(torch.float32).eps
        np.testing.assert_allclose(resumed[c].dataset["ST"], whole[c].dataset["ST"], rtol=tol, atol=tol)


def test_the_cli_names_the_changed_dtype_in_its_own_words(tmp_path):
    from augsens.config import load_config
    from cli_battery import run_inprocess, tiny_config

    cfg = tiny_config(tmp_path, n=16)
    assert Study(load_config(cfg), progress=False).run(tmp_path / "o", stop_after=4) is None
    argv = ["run", str(cfg), "--out", str(tmp_path / "o"), "--resume", "-q", "--set", 'run.dtype="bfloat16"']
    code, output, escaped = run_inprocess(argv)
    assert (code, escaped) == (2, False), output
    assert 'run.dtype: "float32" -> "bfloat16"' in output and "--overwrite" in output
    assert "overwrite=True" not in output
    assert (tmp_path / "o" / "state" / "state.pt").is_file()


def _normed_cnn() -> torch.nn.Module:
    """tiny_cnn with a batch norm (statistics far from the identity) after its convolution."""
    base = tiny_cnn()
    net = torch.nn.Sequential()
    for name, module in base.named_children():
        net.add_module(name, module)
        if name == "conv":
            net.add_module("bn", torch.nn.BatchNorm2d(4))
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        net.bn.running_mean.copy_(torch.rand(4, generator=gen) - 0.5)
        net.bn.running_var.copy_(0.5 + torch.rand(4, generator=gen))
        net.bn.weight.copy_(0.5 + torch.rand(4, generator=gen))
    return net.eval()


def test_resume_may_toggle_batchnorm_folding_which_changes_rounding_only(tmp_path):
    model, images = load(_normed_cnn(), checkpoints=["act", "fc"]), _images()
    folded = Study(_config(), model=model, images=images, progress=False)
    plain = Study(_config(fold_batchnorm=False), model=model, images=images, progress=False)
    assert folded.model is not model and plain.model is model  # the given model is not changed
    assert folded.fingerprint()["weights"] == plain.fingerprint()["weights"]  # the weights as given
    whole = folded.run(tmp_path / "whole")
    assert plain.run(tmp_path / "part", stop_after=8) is None
    resumed = Study(_config(), model=model, images=images, progress=False).run(tmp_path / "part", resume=True)
    history = json.loads(resumed.attrs["run_history"])
    assert [h["fold_batchnorm"] for h in history] == [False, True]
    for c in ("act", "fc"):
        # float32 forwards of the folded and the plain network differ in their last bits
        tol = 1e3 * torch.finfo(torch.float32).eps
        np.testing.assert_allclose(resumed[c].dataset["ST"], whole[c].dataset["ST"], rtol=tol, atol=tol)

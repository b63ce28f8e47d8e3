"""``[run] dtype = "auto"`` (bf16 autocast only on a CPU that computes bf16 natively) and ``[run]
channels_last = "auto"`` (NHWC for a convolutional network on a CPU, and under bf16 anywhere; NCHW when
the network's own code cannot take it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from augsens.config import StudyConfig
from augsens.data import ImageCache
from augsens.engine.plan import native_bf16, resolve_dtype, resolve_layout
from augsens.engine.study import Study
from augsens.errors import UserInputError
from augsens.models import load
from augsens.testing import image_statistics, tiny_cnn


def _config(**run) -> StudyConfig:
    return StudyConfig.from_dict({"run": {"device": "cpu", **run}}, source="test")


def test_native_bf16_follows_the_cpu_flags():
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():  # Linux: the kernel's view of the same CPUID bits torch probes
        flags = set(cpuinfo.read_text().split())
        assert native_bf16(torch.device("cpu")) == bool({"amx_tile", "avx512_bf16"} & flags)
    assert not native_bf16(torch.device("cuda"))  # the default concerns CPUs only


def test_auto_dtype_resolves_per_device_and_leaves_the_config_alone():
    cfg = _config(dtype="auto")
    cpu = resolve_dtype(cfg, torch.device("cpu"))
    assert cpu.run.dtype == ("bfloat16" if native_bf16(torch.device("cpu")) else "float32")
    assert cpu.run.channels_last == "auto"  # the layout is resolved apart, with the network known
    assert resolve_dtype(cfg, torch.device("cuda")).run.dtype == "float32"
    assert cfg.run.dtype == "auto"  # a copy was resolved
    fixed = _config(dtype="float32")
    assert resolve_dtype(fixed, torch.device("cpu")) is fixed


@pytest.mark.parametrize(
    ("device", "dtype", "network", "nhwc"),
    [
        ("cpu", "float32", tiny_cnn, True),
        ("cpu", "bfloat16", tiny_cnn, True),
        ("cpu", "float32", image_statistics, False),  # no convolution: nothing to gain
        ("cuda", "float32", tiny_cnn, False),  # float32 NHWC on a GPU was not measured
        ("cuda", "bfloat16", tiny_cnn, True),
    ],
)
def test_auto_layout_per_device_dtype_and_network(device, dtype, network, nhwc):
    cfg = _config(dtype=dtype)
    assert cfg.run.channels_last == "auto"  # the default
    resolved = resolve_layout(cfg, torch.device(device), network())
    assert resolved.run.channels_last is nhwc and cfg.run.channels_last == "auto"
    fixed = _config(channels_last=False)
    assert resolve_layout(fixed, torch.device(device), network()) is fixed


class _ViewHead(nn.Module):
    """A network whose code flattens an activation with .view(), which NHWC strides do not allow."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=8, stride=8)
        self.fc = nn.Linear(4 * 28 * 28, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.fc(y.view(y.shape[0], -1))


def _images() -> ImageCache:
    x = torch.randint(0, 256, (2, 3, 224, 224), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    return ImageCache(x, torch.zeros(2), ["synthetic"], ["a", "b"])


def _study_config(**run) -> StudyConfig:
    return StudyConfig.from_dict(
        {
            "study": {"kind": "sobol", "augmentations": ["hflip"], "n": 8, "replicates": 2},
            "run": {"device": "cpu", **run},
        },
        source="test",
    )


def test_a_network_that_cannot_take_nhwc_runs_nchw_under_auto_and_is_named_when_forced():
    model = load(_ViewHead().eval(), checkpoints=["conv", "fc"])
    study = Study(_study_config(), model=model, images=_images(), progress=False)
    assert study.config.run.channels_last is False
    assert study.model.module.conv.weight.is_contiguous()  # back to NCHW weights
    with pytest.raises(UserInputError, match=r"channels_last = true, but the network fails on NHWC"):
        Study(_study_config(channels_last=True), model=model, images=_images(), progress=False)
    assert model.module.conv.weight.is_contiguous()  # the given network is left as it was


def test_a_convolutional_network_runs_nhwc_under_auto_on_the_cpu():
    model = load(tiny_cnn(), checkpoints=["act", "fc"])
    study = Study(_study_config(), model=model, images=_images(), progress=False)
    assert study.config.run.channels_last is True
    assert study.model.module.conv.weight.is_contiguous(memory_format=torch.channels_last)

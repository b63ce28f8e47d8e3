"""``[run] dtype = "auto"``: bf16 autocast + channels_last only on a CPU that computes bf16 natively."""

from __future__ import annotations

from pathlib import Path

import torch

from augsens.config import StudyConfig
from augsens.engine.plan import native_bf16, resolve_dtype


def _auto() -> StudyConfig:
    return StudyConfig.from_dict({"run": {"dtype": "auto", "device": "cpu"}}, source="test")


def test_native_bf16_follows_the_cpu_flags():
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():  # Linux: the kernel's view of the same CPUID bits torch probes
        flags = set(cpuinfo.read_text().split())
        assert native_bf16(torch.device("cpu")) == bool({"amx_tile", "avx512_bf16"} & flags)
    assert not native_bf16(torch.device("cuda"))  # the default concerns CPUs only


def test_auto_resolves_per_device_and_leaves_the_config_alone():
    cfg = _auto()
    cpu = resolve_dtype(cfg, torch.device("cpu"))
    if native_bf16(torch.device("cpu")):
        assert (cpu.run.dtype, cpu.run.channels_last) == ("bfloat16", True)
    else:
        assert (cpu.run.dtype, cpu.run.channels_last) == ("float32", False)
    gpu = resolve_dtype(cfg, torch.device("cuda"))
    assert (gpu.run.dtype, gpu.run.channels_last) == ("float32", False)
    assert cfg.run.dtype == "auto"  # a copy was resolved
    fixed = StudyConfig.from_dict({"run": {"dtype": "float32"}}, source="test")
    assert resolve_dtype(fixed, torch.device("cpu")) is fixed

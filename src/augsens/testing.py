"""Helpers for tests and benchmarks: small networks that build fast and run fast on a CPU.

They are importable by name (``model.name = "augsens.testing:tiny_cnn"`` in a study config), so Ray
workers and subprocesses can build the same network as the driver.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["tiny_cnn"]


def tiny_cnn() -> nn.Module:
    """A 3-layer CNN for ``[B, 3, 224, 224]`` inputs with 5 logits; weights drawn with seed 0.

    Checkpoints (its top-level children): ``conv`` (4 x 28 x 28 after a stride-8 convolution), ``act``,
    ``pool`` (4 x 4 x 4), ``flat``, ``fc`` (5 units).  The weights are fixed by seed 0 so that every process
    building it gets the same network, without touching the caller's global random state.
    """
    gen = torch.Generator().manual_seed(0)
    net = nn.Sequential()
    net.add_module("conv", nn.Conv2d(3, 4, kernel_size=8, stride=8))
    net.add_module("act", nn.ReLU())
    net.add_module("pool", nn.AdaptiveAvgPool2d(4))
    net.add_module("flat", nn.Flatten())
    net.add_module("fc", nn.Linear(64, 5))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return net.eval()

"""Helpers for tests and benchmarks: small networks that build fast and run fast on a CPU.

They are importable by name (``model.name = "augsens.testing:tiny_cnn"`` in a study config), so Ray
workers and subprocesses can build the same network as the driver.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["tiny_cnn", "image_statistics"]


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


class _ChannelMean(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(-2, -1))


class _LeftMinusRight(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        return x[..., :half].mean(dim=(-2, -1)) - x[..., -half:].mean(dim=(-2, -1))


class _ChannelExtremes(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x.amin(dim=(-2, -1)), x.amax(dim=(-2, -1))], dim=-1)


class _ImageStatistics(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mean = _ChannelMean()
        self.left_right = _LeftMinusRight()
        self.extremes = _ChannelExtremes()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.mean(x), self.left_right(x), self.extremes(x).flatten(1)], dim=1)


def image_statistics() -> nn.Module:
    """A parameter-free "network" whose outputs depend on known augmentations: studies with a known answer.

    Use it with ``mean = [0, 0, 0]`` and ``std = [1, 1, 1]`` so that it sees the augmented image itself.
    Checkpoints (its children), for a ``[B, 3, H, W]`` input:

    ``mean`` ``[3]``
        Channel means.  Brightness-type ops (brightness, contrast, ...) change them; pixel permutations
        (hflip, rolling) cannot.  In paper mode the min-max rescale maps a two-tone image to ``{0, 1}``,
        so brightness no longer shows.
    ``left_right`` ``[3]``
        Mean of the left half minus mean of the right half: changed by hflip, rolling and rotation (and
        scaled by brightness); its sign says which half is which.
    ``extremes`` ``[3, 2]``
        Channel minimum and maximum: exactly ``(0, 1)`` after the paper's min-max rescale of any image
        that is not constant.
    """
    return _ImageStatistics().eval()

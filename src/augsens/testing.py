"""Helpers for tests and benchmarks: small networks that build fast and run fast on a CPU.

They are importable by name (``model.name = "augsens.testing:tiny_cnn"`` in a study config), so Ray
workers and subprocesses can build the same network as the driver.

Beside the image networks: :func:`cifar_cnn`, a network that takes 32 x 32 images only, and a system
that is not about images at all -- :func:`tiny_conv1d`, a 1-D convolutional classifier, and
:func:`sinusoid_signals`, the synthetic signals it is studied on.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["tiny_cnn", "image_statistics", "cifar_cnn", "tiny_conv1d", "sinusoid_signals"]


def _seeded(net: nn.Module) -> nn.Module:
    """Weights drawn from N(0, 0.3^2) with seed 0, without touching the caller's global random state."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return net.eval()


def tiny_cnn() -> nn.Module:
    """A 3-layer CNN for ``[B, 3, 224, 224]`` inputs with 5 logits; weights drawn with seed 0.

    Checkpoints (its top-level children): ``conv`` (4 x 28 x 28 after a stride-8 convolution), ``act``,
    ``pool`` (4 x 4 x 4), ``flat``, ``fc`` (5 units).  The weights are fixed by seed 0 so that every process
    building it gets the same network, without touching the caller's global random state.
    """
    net = nn.Sequential()
    net.add_module("conv", nn.Conv2d(3, 4, kernel_size=8, stride=8))
    net.add_module("act", nn.ReLU())
    net.add_module("pool", nn.AdaptiveAvgPool2d(4))
    net.add_module("flat", nn.Flatten())
    net.add_module("fc", nn.Linear(64, 5))
    return _seeded(net)


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


def cifar_cnn() -> nn.Module:
    """A small CNN for CIFAR-size ``[B, 3, 32, 32]`` inputs with 10 logits; weights drawn with seed 0.

    Its classifier reads a flattened 8 x 8 x 8 map, so it takes 32 x 32 images and nothing else (a
    224 x 224 input fails in ``fc``).  Checkpoints: ``conv1`` (8 x 32 x 32), ``act1``, ``pool1``
    (8 x 16 x 16), ``conv2`` (8 x 16 x 16), ``act2``, ``pool2`` (8 x 8 x 8), ``flat``, ``fc`` (10 units).
    """
    net = nn.Sequential()
    net.add_module("conv1", nn.Conv2d(3, 8, kernel_size=3, padding=1))
    net.add_module("act1", nn.ReLU())
    net.add_module("pool1", nn.MaxPool2d(2))
    net.add_module("conv2", nn.Conv2d(8, 8, kernel_size=3, padding=1))
    net.add_module("act2", nn.ReLU())
    net.add_module("pool2", nn.MaxPool2d(2))
    net.add_module("flat", nn.Flatten())
    net.add_module("fc", nn.Linear(8 * 8 * 8, 10))
    return _seeded(net)


def tiny_conv1d(channels: int = 2, classes: int = 3) -> nn.Module:
    """A 1-D convolutional classifier for signals ``[B, channels, T]`` (T >= 16); weights drawn with seed 0.

    Checkpoints (its top-level children): ``conv1`` (8 channels x ``(T - 8) // 2 + 1`` time steps: kernel 9,
    stride 2), ``act1``, ``conv2`` (8 x about T / 4: kernel 5, stride 2), ``act2``, ``pool`` (8 x 1, the
    mean over time), ``flat`` (8 units), ``fc`` (``classes`` logits).  Activations of ``conv1`` .. ``pool``
    are labelled ``(channel, time)`` in a study's results.
    """
    net = nn.Sequential()
    net.add_module("conv1", nn.Conv1d(channels, 8, kernel_size=9, stride=2))
    net.add_module("act1", nn.ReLU())
    net.add_module("conv2", nn.Conv1d(8, 8, kernel_size=5, stride=2))
    net.add_module("act2", nn.ReLU())
    net.add_module("pool", nn.AdaptiveAvgPool1d(1))
    net.add_module("flat", nn.Flatten())
    net.add_module("fc", nn.Linear(8, classes))
    return _seeded(net)


def sinusoid_signals(
    per_class: int = 4,
    *,
    classes: int = 3,
    channels: int = 2,
    length: int = 256,
    noise: float = 0.1,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic labelled signals: sums of sinusoids with noise, the same for the same arguments.

    Class ``k`` oscillates at ``f_k = 4 (k + 1)`` cycles per signal, with its second harmonic at half the
    amplitude; every sample draws its own phase per channel and sinusoid (uniform), an amplitude in
    ``[0.8, 1.2]`` per channel, and white Gaussian noise of standard deviation ``noise``:
    ``x_c(t) = A_c [sin(2 pi f_k t / T + phi_c1) + 0.5 sin(4 pi f_k t / T + phi_c2)] + noise * e_c(t)``.
    Everything comes from one ``torch.Generator`` seeded with ``seed`` on the CPU, in float64, so the
    values do not depend on the machine's random state (returned in float32).

    Returns
    -------
    signals : Tensor [classes * per_class, channels, length], float32
        Class 0's samples first.
    labels : Tensor [classes * per_class], int64
    """
    gen = torch.Generator().manual_seed(seed)
    n = classes * per_class
    labels = torch.arange(classes).repeat_interleave(per_class)
    t = torch.arange(length, dtype=torch.float64) / length
    freq = (4.0 * (labels + 1)).to(torch.float64).view(n, 1, 1)
    phase = torch.rand(n, channels, 2, generator=gen, dtype=torch.float64) * (2 * math.pi)
    amp = 0.8 + 0.4 * torch.rand(n, channels, 1, generator=gen, dtype=torch.float64)
    wave = torch.sin(2 * math.pi * freq * t + phase[..., :1]) + 0.5 * torch.sin(
        4 * math.pi * freq * t + phase[..., 1:]
    )
    x = amp * wave + noise * torch.randn(n, channels, length, generator=gen, dtype=torch.float64)
    return x.float(), labels

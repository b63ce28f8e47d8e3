"""Batch norms folded into the convolutions before them: the same network to rounding (checked in
float64), module names kept, checkpoints and anything ambiguous left alone, the given model untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from augsens.models import load
from augsens.models.fold import FoldedNorm, fold_batchnorm
from augsens.models.registry import _specs, seeded_build

EPS64 = torch.finfo(torch.float64).eps


def _randomise_norms(module: nn.Module, seed: int = 0) -> nn.Module:
    """Statistics and affine parameters far from the identity, so that a missed or wrong fold shows."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.rand(c, generator=gen) - 0.5)
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=gen))
                m.weight.copy_(0.5 + torch.rand(c, generator=gen))
                m.bias.copy_(torch.rand(c, generator=gen) - 0.5)
    return module.eval()


def _network(name: str, checkpoints: list[str]):
    module = _randomise_norms(seeded_build(_specs()[name].build)).double()
    return load(module, checkpoints=checkpoints)


def _x(model) -> torch.Tensor:
    return torch.rand(3, 3, 224, 224, generator=torch.Generator().manual_seed(5), dtype=torch.float64)


def _largest_relative(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k] - b[k]).abs().max() / a[k].abs().max()) for k in a)


@pytest.mark.parametrize(
    ("name", "checkpoints", "folded"),
    [
        ("resnet18", ["layer1", "layer3", "fc"], 20),  # every conv -> bn, the downsampling ones too
        ("efficientnet_lite0", ["blocks.1", "blocks.5", "classifier"], 49),  # timm's BatchNormAct2d
    ],
)
def test_the_folded_network_computes_the_same_outputs_in_float64(name, checkpoints, folded):
    model = _network(name, checkpoints)
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    out = fold_batchnorm(model, checkpoints)
    assert out.refused is None and len(out.pairs) == folded
    assert out.model is not model and out.model.module_names == model.module_names
    norms = [out.model.module.get_submodule(norm) for _, norm in out.pairs]
    assert all(isinstance(n, FoldedNorm) for n in norms)
    x = _x(model)
    with torch.no_grad():
        want = model.capture(x, checkpoints, softmax=False)
        got = out.model.capture(x, checkpoints, softmax=False)
    # one extra float64 rounding per folded weight, carried through the network
    assert _largest_relative(want, got) < 1e6 * EPS64
    after = model.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the given model is not changed


def test_a_checkpoint_at_either_side_of_a_pair_keeps_that_pair():
    model = _network("resnet18", ["conv1", "layer1.0.bn2", "fc"])
    out = fold_batchnorm(model, ["conv1", "layer1.0.bn2", "fc"])
    names = {n for pair in out.pairs for n in pair}
    assert len(out.pairs) == 18 and not names & {"conv1", "bn1", "layer1.0.conv2", "layer1.0.bn2"}
    x = _x(model)
    with torch.no_grad():
        want = model.capture(x, ["conv1", "layer1.0.bn2"], softmax=False)
        got = out.model.capture(x, ["conv1", "layer1.0.bn2"], softmax=False)
    assert torch.equal(want["conv1"], got["conv1"])  # the first layer's weights are the originals
    assert _largest_relative(want, got) < 1e6 * EPS64


class _PreNormSkip(nn.Module):
    """A convolution whose output is normalised and also added back unnormalised: folding is wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.pool = nn.AdaptiveAvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.pool(self.bn(y) + y)


def test_a_fold_that_changes_the_outputs_is_refused_and_the_model_kept():
    model = load(_randomise_norms(_PreNormSkip()), checkpoints=["pool"])
    out = fold_batchnorm(model, ["pool"])
    assert out.model is model and out.pairs == ()
    assert "folding changed 'pool'" in (out.refused or "")


def test_training_mode_and_shared_modules_are_left_alone():
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4), nn.ReLU()
    )
    model = load(_randomise_norms(net), checkpoints=["5"])
    model.module[4].train()  # batch statistics: nothing to fold
    assert fold_batchnorm(model, ["5"]).pairs == (("0", "1"),)

    class Twice(nn.Module):  # one convolution called twice, its norm after the second call only
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn, self.act = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(self.bn(self.conv(self.conv(x))))

    twice = load(_randomise_norms(Twice()), checkpoints=["act"])
    assert fold_batchnorm(twice, ["act"]).pairs == ()

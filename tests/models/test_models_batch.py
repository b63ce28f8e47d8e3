"""The dry forward sees real batches: a checkpoint whose output mixes the images of a batch, drops or
reshapes the batch dim, or is a scalar is refused before any study, naming the checkpoint."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from augsens.errors import UserInputError
from augsens.models import load


class _Head(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class Net(nn.Module):
    """conv -> per-channel mean -> fc -> head (the head is where a model goes wrong, or not)."""

    def __init__(self, head) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=8)
        self.fc = nn.Linear(4, 5)
        self.head = _Head(head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.fc(self.conv(x).mean((2, 3))))


@pytest.mark.parametrize(
    "head, words",
    [
        (lambda y: y - y.mean(0), "output of image 0 changed"),  # centred over the batch
        (lambda y: y / y.norm(dim=0), "output of image 0 changed"),  # normalised across the batch
        (lambda y: y.mean(0, keepdim=True), r"shape \(1, 5\) for a batch of 1 image and \(1, 5\)"),
        (lambda y: y.sum(), r"shape \(\) for a batch of 1"),  # a scalar
        (lambda y: y.reshape(-1), r"\(5,\) for a batch of 1 image and \(15,\)"),  # the batch folded in
        (lambda y: y.reshape(1, -1), r"\(1, 5\) for a batch of 1 image and \(1, 15\)"),
        (lambda y: y.roll(1, dims=0).roll(1, dims=0), "output of image 0 changed"),  # not the identity
    ],
    ids=["centred", "batch-norm", "batch-mean", "scalar", "flattened", "one-row", "rolled-twice"],
)
def test_a_checkpoint_that_depends_on_the_batch_is_refused_by_name(head, words: str) -> None:
    m = load(Net(head), device="cpu")
    with pytest.raises(UserInputError, match=rf"model 'Net', checkpoint 'head': .*{words}"):
        m.output_shapes()
    assert m.output_shapes(["conv", "fc"]) == {"conv": (4, 28, 28), "fc": (5,)}  # the rest is fine


def test_a_model_that_treats_images_alone_passes_with_its_shapes() -> None:
    m = load(Net(torch.tanh), device="cpu")
    assert m.output_shapes() == {"conv": (4, 28, 28), "fc": (5,), "head": (5,)}


def test_batchnorm_is_judged_in_evaluation_mode() -> None:
    """BatchNorm mixes images only in training mode; the dry forward runs in eval mode, as studies do."""
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=8), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(3))
    net.train()
    m = load(net, device="cpu")
    assert m.output_shapes()["3"] == (3,)

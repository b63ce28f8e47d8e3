"""LoadedModel.capture / predict: names, early stop, softmax, autocast, memory format, caller state."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from augsens.models import UnknownModuleError, load


@pytest.fixture(scope="module")
def resnet():
    return load("resnet18", weights="random")


@pytest.fixture(scope="module")
def x():
    return torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))


def _hooks_left(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in module.modules())


def test_unknown_module_fails_before_forward(resnet, x):
    calls = []
    handle = resnet.module.conv1.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        expected = r"'layer2.0.conv3'.*Close matches: \['layer2.0.conv2', 'layer2.0.conv1'"
        with pytest.raises(UnknownModuleError, match=expected):
            resnet.capture(x, ["layer1", "layer2.0.conv3"])
        with pytest.raises(ValueError, match=r"m\.module_names"):  # also a ValueError
            resnet.capture(x, "lyer1")
    finally:
        handle.remove()
    assert calls == []


def test_capture_order_dtype_and_softmax(resnet, x):
    acts = resnet.capture(x, ["fc", "layer1", "maxpool"])
    assert list(acts) == ["maxpool", "layer1", "fc"]  # model order, not request order
    assert acts["layer1"].shape == (2, 64, 56, 56)
    assert acts["fc"].dtype == torch.float32
    torch.testing.assert_close(acts["fc"].sum(-1), torch.ones(2))
    assert bool((acts["fc"] >= 0).all())
    logits = resnet.capture(x, ["fc"], softmax=False)["fc"]
    assert not torch.allclose(logits.sum(-1), torch.ones(2))
    torch.testing.assert_close(torch.softmax(logits, -1), acts["fc"])
    torch.testing.assert_close(resnet.predict(x), acts["fc"])
    assert _hooks_left(resnet.module) == 0


def test_default_checkpoints_and_normalization(resnet, x):
    acts = resnet.capture(x)
    assert list(acts) == resnet.checkpoints
    pre = resnet.capture(resnet.normalize(x), ["layer2"], normalized=True)["layer2"]
    torch.testing.assert_close(pre, acts["layer2"])
    mean = torch.tensor(resnet.mean).view(1, 3, 1, 1)
    std = torch.tensor(resnet.std).view(1, 3, 1, 1)
    torch.testing.assert_close(resnet.normalize(x), (x - mean) / std)


def test_forward_stops_after_last_checkpoint(resnet, x):
    ran = []
    handles = [resnet.module.get_submodule(n).register_forward_pre_hook(lambda *a, n=n: ran.append(n))
               for n in ("layer1", "layer2", "layer3", "fc")]  # fmt: skip
    try:
        resnet.capture(x[:1], ["layer1"])
    finally:
        for h in handles:
            h.remove()
    assert ran == ["layer1"]


def test_bf16_autocast_and_channels_last(resnet, x):
    ref = resnet.capture(x, ["layer3", "fc"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        acts = resnet.capture(x.contiguous(memory_format=torch.channels_last), ["layer3", "fc"])
    assert acts["layer3"].dtype == torch.bfloat16
    assert acts["fc"].dtype == torch.float32
    torch.testing.assert_close(acts["fc"].sum(-1), torch.ones(2))
    # bfloat16 keeps 8 bits of mantissa: compare in relative L2 norm
    error = (acts["layer3"].float() - ref["layer3"]).norm() / ref["layer3"].norm()
    assert error < 0.02, error
    cl = resnet.capture(x.contiguous(memory_format=torch.channels_last), ["layer3"])["layer3"]
    torch.testing.assert_close(cl, ref["layer3"], atol=1e-4, rtol=1e-4)


def test_training_flags_restored(x):
    m = load("resnet18", weights="random")
    ref = m.capture(x, ["layer1"])["layer1"]
    m.module.train()
    m.module.layer2.eval()  # a mixed state must come back as it was
    got = m.capture(x, ["layer1"])["layer1"]
    torch.testing.assert_close(got, ref)  # batch norm ran in eval mode
    assert m.module.training and m.module.layer1.training and not m.module.layer2.training
    assert m.module.bn1.running_mean.abs().sum() == 0  # no statistics update happened


def test_output_overwritten_in_place_is_recovered():
    # AlexNet's features.1 is ReLU(inplace=True): it overwrites the conv output captured at features.0.
    m = load("alexnet", weights="random")
    x = torch.rand(1, 3, 224, 224)
    acts = m.capture(x, ["features.0", "features.1"])
    assert bool((acts["features.0"] < 0).any())
    torch.testing.assert_close(acts["features.1"], acts["features.0"].clamp_min(0))
    again = m.capture(x, ["features.0"])["features.0"]  # stops at features.0, nothing to overwrite
    torch.testing.assert_close(again, acts["features.0"])


def test_hooks_removed_after_error_and_unrun_module():
    class TupleOut(nn.Module):
        def forward(self, x):
            return x, x

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.pair = TupleOut()
            self.unused = nn.Linear(2, 2)

        def forward(self, x):
            return self.pair(self.conv(x))[0]

    m = load(Net())
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(TypeError, match="module 'pair' returns tuple"):
        m.capture(x, ["conv", "pair"])
    assert _hooks_left(m.module) == 0
    with pytest.raises(ValueError, match=r"\['unused'\] did not run"):
        m.capture(x, ["conv", "unused"])
    assert _hooks_left(m.module) == 0


def test_input_checks(resnet):
    with pytest.raises(TypeError, match="x.float\\(\\) / 255"):
        resnet.capture(torch.zeros(1, 3, 224, 224, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"shape \[B, 3, H, W\]"):
        resnet.capture(torch.zeros(3, 224, 224))
    with pytest.raises(ValueError, match="more than once"):
        resnet.capture(torch.zeros(1, 3, 224, 224), ["fc", "fc"])

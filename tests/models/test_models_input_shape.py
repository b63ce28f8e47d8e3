"""Networks probed with the input they take: 32 x 32 images, 1-D signals labelled (channel, time)."""

from __future__ import annotations

import pytest
import torch

from augsens.errors import UserInputError
from augsens.models import load
from augsens.models.layout import checkpoint_layouts
from augsens.results import output_dims
from augsens.testing import cifar_cnn, sinusoid_signals, tiny_conv1d


def test_a_cifar_network_is_probed_at_its_size():
    m = load(cifar_cnn())
    assert m.input_shape == (3, 224, 224)
    with pytest.raises(UserInputError, match=r"\(1, 3, 224, 224\) \(RGB, 224 x 224.*\[images\] size"):
        m.output_shapes(["fc"])
    m.input_shape = (3, 32, 32)
    assert m.output_shapes(["conv2", "fc"]) == {"conv2": (8, 16, 16), "fc": (10,)}
    lay = checkpoint_layouts(m, ["pool2", "flat", "fc"])
    assert lay["pool2"].dims == ("channel", "y", "x") and lay["pool2"].shape == (8, 8, 8)
    assert lay["fc"].depth == 1.0


def test_changing_the_input_shape_forgets_the_shapes_found():
    m = load(tiny_conv1d(), input_shape=(2, 64))
    assert m.output_shapes(["conv1"]) == {"conv1": (8, 28)}
    m.input_shape = (2, 128)
    assert m.output_shapes(["conv1"]) == {"conv1": (8, 60)}


def test_signal_network_dims_are_channel_and_time():
    m = load(tiny_conv1d(), input_shape=(2, 256))
    # inputs that are not images are not normalised unless told: mean 0, std 1
    assert (m.mean, m.std) == ((0.0,), (1.0,))
    lay = checkpoint_layouts(m, m.checkpoints)
    assert {c: lay[c].dims for c in m.checkpoints} == {
        "conv1": ("channel", "time"),
        "act1": ("channel", "time"),
        "conv2": ("channel", "time"),
        "act2": ("channel", "time"),
        "pool": ("channel", "time"),
        "flat": ("unit",),
        "fc": ("unit",),
    }
    assert lay["conv1"].shape == (8, 124) and lay["conv2"].shape == (8, 60)
    x, _ = sinusoid_signals(2)
    acts = m.capture(x, ["conv2", "fc"])
    assert acts["conv2"].shape == (6, 8, 60) and acts["fc"].shape == (6, 3)


def test_signal_inputs_are_checked_against_the_input_shape():
    m = load(tiny_conv1d(), input_shape=(2, 256))
    with pytest.raises(ValueError, match=r"inputs must have shape \[B, 2, T\], got \(4, 3, 256\)"):
        m.capture(torch.zeros(4, 3, 256))
    with pytest.raises(TypeError, match=r"inputs must be a float tensor, got dtype torch.int64"):
        m.capture(torch.zeros(4, 2, 256, dtype=torch.int64))
    # per-channel normalisation over time
    m2 = load(tiny_conv1d(), input_shape=(2, 16), mean=(1.0, 2.0), std=(2.0, 4.0))
    x = torch.ones(1, 2, 16)
    assert m2.normalize(x)[0, :, 0].tolist() == [0.0, -0.25]


def test_normalisation_constants_must_fit_the_channels():
    with pytest.raises(UserInputError, match=r"mean and std need 2 values \(one per input channel\)"):
        load(tiny_conv1d(), input_shape=(2, 64), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    m = load(tiny_conv1d())  # ImageNet's constants by default, for images
    with pytest.raises(UserInputError, match=r"need 2 values.*mean=\(0\.485"):
        m.input_shape = (2, 64)
    with pytest.raises(UserInputError, match=r"input_shape \(64,\) must be one sample's shape"):
        m.input_shape = (64,)


def test_output_dims_name_the_sequence_axis():
    assert output_dims((16, 250), "first", sequence="time") == ("channel", "time")
    assert output_dims((250, 16), "last", sequence="time") == ("time", "channel")
    assert output_dims((197, 192), "last") == ("token", "channel")
    assert output_dims((16, 250)) == ("dim_0", "dim_1")

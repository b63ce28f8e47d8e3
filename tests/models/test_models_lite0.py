"""EfficientNet-Lite0 with the packaged ImageNet weights: the embedded default model."""

from __future__ import annotations

import math

import pytest
import torch

from augsens.data import bundled_photos
from augsens.models import load

LITE0_SHAPES = {
    "bn1": (32, 112, 112),
    "blocks.0": (16, 112, 112),
    "blocks.1": (24, 56, 56),
    "blocks.2": (40, 28, 28),
    "blocks.3": (80, 14, 14),
    "blocks.4": (112, 14, 14),
    "blocks.5": (192, 7, 7),
    "blocks.6": (320, 7, 7),
    "global_pool": (1280,),
    "classifier": (1000,),
}
CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


@pytest.fixture(scope="module")
def lite0():
    return load("efficientnet_lite0")


@pytest.fixture(scope="module")
def photos():
    return bundled_photos()


def test_defaults(lite0):
    assert lite0.mean == (0.5, 0.5, 0.5) and lite0.std == (0.5, 0.5, 0.5)
    assert lite0.classifier == "classifier" and lite0.num_classes == 1000
    assert lite0.output_shapes() == LITE0_SHAPES
    assert sum(math.prod(s) for s in LITE0_SHAPES.values()) == 773_736


def test_real_weights_recognise_bundled_photos(lite0, photos):
    which = [photos.classes.index("chelsea"), photos.classes.index("coffee")]
    probs = lite0.predict(photos.gather(torch.tensor(which)))
    top5 = [[lite0.categories[i] for i in row] for row in probs.topk(5).indices.tolist()]
    assert CATS & set(top5[0]), top5[0]
    assert "espresso" in top5[1][:2], top5[1]


def test_random_weights_differ(lite0):
    r = load("efficientnet_lite0", weights="random")
    assert not torch.equal(r.module.conv_stem.weight, lite0.module.conv_stem.weight)

"""A vision transformer and a ResNet through ag.study: named dims, per-channel / per-token aggregates and a
depth profile (timm networks with random weights: nothing is downloaded)."""

import json

import numpy as np
import pytest
import timm
import torch

import augsens as ag

SMALL = dict(
    augmentations=["hflip", "brightness"], order=False, n=4, replicates=2, device="cpu", progress=False
)


@pytest.fixture(scope="module")
def images():
    return torch.randint(
        0, 256, (2, 3, 224, 224), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )


def _depths(tree):
    depth = json.loads(tree.attrs["depth"])
    return [depth[c] for c in json.loads(tree.attrs["checkpoints"])]


def test_vision_transformer(images):
    net = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    tree = ag.study(net, images, checkpoints=["patch_embed", "blocks.0", "blocks.11", "head"], **SMALL)
    patch, first, last, head = (tree[c].dataset for c in ("patch_embed", "blocks.0", "blocks.11", "head"))
    assert patch["ST"].dims == ("factor", "token", "channel") and patch.sizes["token"] == 196
    assert first.sizes["token"] == 197 and first.sizes["channel"] == 192  # the class token is a token
    assert head["ST"].dims == ("factor", "unit")
    for ds in (first, last):
        assert ds["ST_token"].dims == ("factor", "token") and ds["ST_channel"].dims == ("factor", "channel")
        assert ds["ST_conf_token"].shape == ds["ST_token"].shape
        assert np.isfinite(ds["ST_checkpoint"].values).all()
    depth = _depths(tree)
    assert depth == sorted(depth) and 0 < depth[0] < 0.05 and depth[-1] == 1.0
    assert list(first["factor"].values) == ["hflip", "brightness", "image"]


def test_resnet(images):
    net = timm.create_model("resnet18", pretrained=False)
    tree = ag.study(net, images, checkpoints=["layer1", "layer4", "global_pool", "fc"], **SMALL)
    layer1, layer4, pool = (tree[c].dataset for c in ("layer1", "layer4", "global_pool"))
    assert layer1["ST"].dims == ("factor", "channel", "y", "x") and layer1.sizes["channel"] == 64
    assert layer4["ST_channel"].dims == ("factor", "channel") and "ST_token" not in layer4
    assert pool["ST"].dims == ("factor", "unit") and "ST_channel" not in pool
    depth = _depths(tree)
    assert depth == sorted(depth) and depth[-1] == 1.0 and depth[1] == depth[2]  # pooling has no weights

"""A study's inputs from its config sections: the network or its HSV segment bank, and the images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from augsens.config import ImagesConfig, ModelConfig
from augsens.engine.inputs import load_images, load_model
from augsens.models.segments import SegmentModel, load_segments
from augsens.testing import tiny_cnn

CPU = torch.device("cpu")


def test_load_model_network_and_segment_bank(tmp_path) -> None:
    spec = [{"unit_name": "first", "modules_names": ["conv"], "neurons": {"conv": {"0": [], "3": []}}}]
    (tmp_path / "segments.json").write_text(json.dumps(spec))
    network = load_model(ModelConfig(name="augsens.testing:tiny_cnn", mean=[0.5] * 3), device=CPU)
    assert network.checkpoints == ["conv", "act", "pool", "flat", "fc"] and network.mean == (0.5, 0.5, 0.5)
    config = ModelConfig(
        name="augsens.testing:tiny_cnn",
        mean=[0.5] * 3,
        segments=str(tmp_path / "segments.json"),
        segment_channels=["hue", "value"],
    )
    bank = load_model(config, device=CPU, mode="paper")
    assert bank.checkpoints == ["first_hue", "first_value"]
    assert bank.mean == (0.0, 0.0, 0.0) and bank.std == (1.0, 1.0, 1.0)  # segments take [0, 1] images
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    # the paper-mode branch normalises with the network's own mean before its colour conversion
    (spec_,) = load_segments(tmp_path / "segments.json")
    expected = SegmentModel(tiny_cnn(), spec_, "value", mode="paper", mean=(0.5,) * 3, std=network.std)
    with torch.no_grad():
        torch.testing.assert_close(bank.capture(x)["first_value"], expected(x), rtol=0, atol=0)


def test_load_images_folders_and_partitions(tmp_path) -> None:
    for part in ("train", "val"):
        for i, cls in enumerate(("cat", "dog", "dog")):
            (tmp_path / part / cls).mkdir(parents=True, exist_ok=True)
            pixels = np.random.default_rng(i).integers(0, 256, (40, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / part / cls / f"{part}{i}.png")
    one = load_images(ImagesConfig(source=str(tmp_path / "train")), device=CPU)
    assert len(one) == 3 and one.partitions == [[1, 2]]
    subset = load_images(ImagesConfig(source=str(tmp_path / "train"), per_class=1), device=CPU)
    assert len(subset) == 2
    two = load_images(
        ImagesConfig(source=str(tmp_path / "train"), partition2=str(tmp_path / "val")), device=CPU
    )
    assert two.partitions == [[1, 2], [1, 2]] and torch.equal(two.images[:3], one.images)
    with pytest.raises(ValueError, match="partition2 needs a folder source"):
        load_images(ImagesConfig(partition2=str(tmp_path / "val")), device=CPU)

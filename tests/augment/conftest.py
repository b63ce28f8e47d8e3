"""Shared fixtures of the augmentation tests: real photos after the authors' pre-processing."""

from __future__ import annotations

import pytest
import skimage.data
import torch
import torchvision.transforms.v2.functional as F


def _photo(image, size: int) -> torch.Tensor:
    t = torch.from_numpy(image).permute(2, 0, 1)
    t = F.center_crop(F.resize(t, size + size // 7), size)  # Resize(256) + CenterCrop(224) at 224
    return t.float() / 255


@pytest.fixture(scope="session")
def photos() -> torch.Tensor:
    """Four real photos, float [4, 3, 224, 224] in [0, 1] (the size the parameter bounds refer to)."""
    return torch.stack(
        [
            _photo(f(), 224)
            for f in (skimage.data.astronaut, skimage.data.chelsea, skimage.data.coffee, skimage.data.rocket)
        ]
    )


@pytest.fixture(scope="session")
def small_photos() -> torch.Tensor:
    """Three real photos at 64 x 64, for the composition tests (speed)."""
    return torch.stack(
        [_photo(f(), 64) for f in (skimage.data.astronaut, skimage.data.chelsea, skimage.data.coffee)]
    )

"""The gallery figure (paper Figure 2) is written as a PNG."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from augsens.plot.gallery import _load, gallery


def test_gallery_writes_png(tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray(skimage.data.chelsea()).save(photo)
    out = gallery(photo, tmp_path / "figs" / "gallery.png", mode="paper", seed=1)
    data = out.read_bytes()
    assert out == tmp_path / "figs" / "gallery.png"
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000


def test_gallery_input_is_resized_and_center_cropped():
    x = _load(skimage.data.coffee())  # 400 x 600 uint8
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    assert torch.equal(_load(skimage.data.coffee() / 255.0), x)
    with pytest.raises(ValueError, match=r"image array must be"):
        _load(np.zeros((4, 4, 5)))


def test_gallery_reports_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="image file not found"):
        gallery(tmp_path / "nope.jpg", tmp_path / "g.png")

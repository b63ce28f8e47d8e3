"""Post-processing, RGB <-> HSV and the uint8 grid."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.v2.functional as F

from augsens.augment import hsv_to_rgb, paper_rgb_to_hsv, postprocess, quantize_uint8, rgb_to_hsv
from augsens.augment.ops import hue


def test_postprocess_normalises_and_minmax_undoes_affine_maps(small_photos):
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    torch.testing.assert_close(postprocess(small_photos, mean, std), F.normalize(small_photos, mean, std))
    # Per-channel min-max rescale makes brightness <= 1 invisible (docs/paper.md §3).
    dim = small_photos * 0.4
    torch.testing.assert_close(
        postprocess(dim, minmax=True), postprocess(small_photos, minmax=True), atol=1e-5, rtol=0
    )
    x = postprocess(small_photos, 0.0, 1.0, minmax=True)
    assert torch.allclose(x.amin(dim=(-2, -1)), torch.zeros(3, 3)) and torch.allclose(
        x.amax(dim=(-2, -1)), torch.ones(3, 3)
    )


def test_postprocess_flat_channel_divides_by_one():
    x = torch.full((1, 3, 4, 4), 0.7)
    x[0, 0, 0, 0] = 0.7 + 5e-7  # range below 1e-6: shifted to 0, not stretched
    y = postprocess(x, 0.0, 1.0, minmax=True)
    assert y.abs().max().item() < 1e-6
    with pytest.raises(ValueError, match=r"mean must be a scalar or have 3 entries"):
        postprocess(x, (0.5, 0.5), 1.0)


def test_hsv_round_trip_and_torchvision_hue_agree(small_photos):
    hsv = rgb_to_hsv(small_photos)
    assert hsv.shape == small_photos.shape and 0 <= hsv.min() and hsv.max() <= 1
    torch.testing.assert_close(hsv_to_rgb(hsv), small_photos, atol=1e-5, rtol=0)
    pure = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]]).T.reshape(1, 3, 1, 4)
    torch.testing.assert_close(rgb_to_hsv(pure)[0, 0, 0], torch.tensor([0.0, 1 / 3, 2 / 3, 1 / 6]))
    f = torch.tensor([0.3, -0.3, 0.5])
    ref = torch.stack([F.adjust_hue(small_photos[i], f[i].item()) for i in range(3)])
    torch.testing.assert_close(hue(small_photos, factor=f), ref, atol=1e-5, rtol=0)


def test_paper_hsv_follows_the_authors_formula():
    # min = B -> H = 60 (1 + (G - R) / d) / 360; S = (max - min) / max; V = max.
    x = torch.tensor([0.9, 0.5, -0.3]).view(1, 3, 1, 1)
    h, s, v = paper_rgb_to_hsv(x).flatten().tolist()
    assert h == pytest.approx(60 * (1 + (0.5 - 0.9) / 1.2) / 360)
    assert s == pytest.approx(1.2 / 0.9) and v == pytest.approx(0.9)


def test_quantize_uint8_truncates_like_to_pil_image():
    x = torch.tensor([0.0, 0.5, 0.999, 1.0, 10.6 / 255])
    assert torch.equal(quantize_uint8(x) * 255, x.mul(255).byte().float())
    assert torch.equal(quantize_uint8(x, rounding=True) * 255, x.mul(255).round())

"""The paper's pixel bounds follow the image size: positions and lengths scale with their axis, filter
widths, angles and factors do not; at 224 x 224 nothing changes."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as F

from augsens.augment import AUGMENTATIONS, apply, spec
from augsens.augment.scaling import PIXEL_PARAMS, at_size
from augsens.engine.factors import AugmentationFactors
from augsens.errors import UserInputError


def test_nothing_changes_at_224():
    for s in AUGMENTATIONS.values():
        assert at_size(s, 224, 224) is s


@pytest.mark.parametrize(("height", "width"), [(32, 32), (64, 96), (448, 448)])
def test_pixel_bounds_scale_with_their_axis(height, width):
    for name, s in AUGMENTATIONS.items():
        scaled = at_size(s, height, width)
        assert scaled.name == name and scaled.constants == s.constants
        for old, new in zip(s.params, scaled.params, strict=True):
            axis = PIXEL_PARAMS.get((name, old.name))
            factor = 1.0 if axis is None else (height if axis == "y" else width) / 224
            assert (new.low, new.high) == pytest.approx((old.low * factor, old.high * factor), rel=1e-12)
            assert new.identity == old.identity and new.integer == old.integer


def test_the_geometry_is_the_same_share_of_the_image():
    small = {
        (s, p.name): (p.low, p.high)
        for s in ("rolling", "erasing", "elliptic_local_blur")
        for p in at_size(spec(s), 32, 32).params
    }
    # the paper's 224 bounds times 32 / 224 = 1/7: shifts up to 44/224 of the side (about a fifth),
    # erasing centres in [44/224, 180/224] of it, ellipse half-axes from 10/224 to 32/224 of it
    assert small[("rolling", "shift_y")] == pytest.approx((-44 / 7, 44 / 7))
    assert small[("erasing", "center_x")] == pytest.approx((44 / 7, 180 / 7))
    assert small[("elliptic_local_blur", "a")] == pytest.approx((10 / 7, 32 / 7))
    assert small[("elliptic_local_blur", "shift_y")] == pytest.approx((-32 / 7, 32 / 7))
    assert small[("elliptic_local_blur", "angle")] == (-15.0, 15.0)
    # what has no unit of length is not touched
    assert at_size(spec("gaussian_blur"), 32, 32) is spec("gaussian_blur")
    assert at_size(spec("rotation"), 32, 32) is spec("rotation")
    assert {p.name: (p.low, p.high) for p in at_size(spec("erasing"), 32, 32).params}["scale"] == (0.02, 0.33)


def test_only_the_papers_declared_bounds_are_scaled():
    """A user's augmentation, or a built-in whose ranges were set, is in pixels of the user's images."""
    narrowed = spec("rolling").with_ranges({"shift_x": (-4.0, 4.0)})
    assert at_size(narrowed, 32, 32) is narrowed
    own = dataclasses.replace(spec("rolling"), source="user")
    assert at_size(own, 32, 32) is own
    # in a study, the scaled defaults come first and the study's ranges override them
    factors = AugmentationFactors(
        ["rolling"],
        [[4]],
        switches="none",
        image_size=(32, 32),
        ranges={"rolling.shift_x": {"low": -2, "high": 2}},
    )
    bounds = {r["parameter"]: (r["low"], r["high"]) for r in factors.describe()}
    assert bounds["rolling.shift_x"] == (-2.0, 2.0)
    assert bounds["rolling.shift_y"] == pytest.approx((-44 / 7, 44 / 7))


def test_bad_sizes_are_refused():
    with pytest.raises(UserInputError, match="image height 0 must be a positive number of pixels"):
        at_size(spec("rolling"), 0, 32)


def test_study_factors_draw_from_the_scaled_bounds():
    factors = AugmentationFactors(["rolling", "erasing"], [[4]], switches="none", image_size=(32, 64))
    bounds = {r["parameter"]: (r["low"], r["high"]) for r in factors.describe()}
    assert bounds["rolling.shift_y"] == pytest.approx((-44 / 7, 44 / 7))
    assert bounds["rolling.shift_x"] == pytest.approx((-88 / 7, 88 / 7))
    assert bounds["erasing.scale"] == (0.02, 0.33)
    unit = torch.rand(256, factors.problem.k, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rows = factors.decode(unit)
    shift = rows.params["rolling"]["shift_y"]
    assert float(shift.abs().max()) <= 44 / 7 + 1e-6 and float(shift.abs().max()) > 5.0
    # paper mode's integer draws on [low, high) of the scaled bounds
    paper = AugmentationFactors(
        ["rolling"], [[4]], switches="none", mode="paper", integer_params=True, image_size=(32, 32)
    )
    assert {r["parameter"]: r["low"] for r in paper.describe()}["rolling.shift_x"] == -6
    # the default is the paper's 224 x 224
    default = {r["parameter"]: r["high"] for r in AugmentationFactors(["rolling"], [[4]]).describe()}
    assert default["rolling.shift_x"] == 44


def _elb_reference(im, a, b, sx, sy, angle):
    """Gaussian blur (sigma 3, 19 taps) of the whole image inside the rotated ellipse."""
    h, w = im.shape[-2:]
    blurred = F.gaussian_blur(im, [19, 19], [3.0, 3.0])
    rows, cols = np.mgrid[:h, :w]
    phi = math.radians(-angle)
    dx, dy = cols - (w // 2 + round(sx)), rows - (h // 2 + round(sy))
    u = dx * math.cos(phi) + dy * math.sin(phi)
    v = -dx * math.sin(phi) + dy * math.cos(phi)
    inside = torch.from_numpy((u / round(a)) ** 2 + (v / round(b)) ** 2 <= 1)
    return torch.where(inside, blurred, im)


def test_elliptic_blur_window_grows_with_the_scaled_axes():
    """At 448 x 448 the scaled half-axes reach 64 px: the blurred window must hold the whole ellipse
    (a 65 px window of the 224 setting would cut it)."""
    x = torch.rand(2, 3, 448, 448, generator=torch.Generator().manual_seed(1))
    bounds = {p.name: p.high for p in at_size(spec("elliptic_local_blur"), 448, 448).params}
    assert bounds["a"] == 64 and bounds["shift_x"] == 64
    p = {
        "a": torch.tensor([64.0, 40.0]),
        "b": torch.tensor([60.0, 64.0]),
        "shift_x": torch.tensor([20.0, -64.0]),
        "shift_y": torch.tensor([-10.0, 64.0]),
        "angle": torch.tensor([10.0, -15.0]),
    }
    y = apply("elliptic_local_blur", x, validate=False, **p)
    ref = torch.stack([_elb_reference(x[i], *(float(v[i]) for v in p.values())) for i in range(2)])
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=0)
    assert int((y != x).any(dim=1).sum(dim=(-2, -1)).min()) > math.pi * 40 * 60 * 0.9

"""The twelve augmentations as batched tensor ops with per-sample parameters.

Every op takes ``x`` float ``[B, 3, H, W]`` in [0, 1], its parameters as tensors ``[B]`` already on
``x``'s device (float64 if ``x`` is float64, else float32), its constants (from
:data:`augsens.augment.registry.AUGMENTATIONS`) as keywords, and ``mode``.  It returns a new tensor of
the same shape, dtype and device and never draws randomness.  Validation, switches and dtype handling
of the parameters live in :func:`augsens.augment.apply`; call that, not these.

Each op matches the torchvision functional op named in its docstring, image by image, with the same
parameter (tests assert 1e-5).  Paper-mode variants (``mode="paper"``) reproduce the authors' code
where it differs (``docs/paper.md`` §5): uint8 truncation and nearest-neighbour rotation,
truncation in the elliptic local blur, and the erasing no-op rule.  The uint8 grid is represented in
the float dtype (values k/255), so dtype and range are invariants in both modes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias

from .pipeline import hsv_to_rgb, quantize_uint8, rgb_to_hsv

__all__ = [
    "erasing",
    "sharpness",
    "rolling",
    "grayscale",
    "gaussian_blur",
    "brightness",
    "contrast",
    "saturation",
    "hue",
    "hflip",
    "rotation",
    "elliptic_local_blur",
    "rotation_margin",
    "OPS",
]

#: image side the constants are set for (``max_half_axis``: see elliptic_local_blur)
_REFERENCE_SIDE = 224

# torchvision's rgb_to_grayscale weights (ITU-R 601-2 luma, as in PIL's "L" conversion).
_LUMA = (0.2989, 0.587, 0.114)


def _col(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-sample [B] value as a [B, 1, 1, 1] tensor in x's dtype, to broadcast over an image."""
    return t.to(x.dtype).view(-1, 1, 1, 1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(dim=-3)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(-3)


def _gaussian_taps(sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """torchvision's ``_get_gaussian_kernel1d`` per sample: [B] sigmas -> [B, kernel_size] weights.

    sigma = 0 (the identity value) gives the unit impulse: the tiny floor turns every off-centre weight
    into exp(-inf) = 0 instead of 0/0.
    """
    half = (kernel_size - 1) * 0.5
    t = torch.linspace(-half, half, kernel_size, dtype=sigma.dtype, device=sigma.device)
    pdf = torch.exp(-0.5 * (t / sigma.clamp_min(1e-12).unsqueeze(1)) ** 2)
    return pdf / pdf.sum(dim=1, keepdim=True)


def _separable_conv(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """'Valid' separable convolution of each sample with its own 1-D kernel (rows, then columns).

    One depthwise conv over ``B * C`` groups, so every sample gets its own kernel in a single call.

    Shape: x ``[B, C, H, W]``, taps ``[B, k]`` -> ``[B, C, H - k + 1, W - k + 1]``.
    """
    b, c, h, w = x.shape
    k = taps.shape[1]
    weight = taps.to(x.dtype).repeat_interleave(c, dim=0)  # [B*C, k]
    y = F.conv2d(x.reshape(1, b * c, h, w), weight.view(b * c, 1, 1, k), groups=b * c)
    y = F.conv2d(y, weight.view(b * c, 1, k, 1), groups=b * c)
    return y.view(b, c, h - k + 1, w - k + 1)


# --------------------------------------------------------------------------------------- set 1


def erasing(
    x: torch.Tensor,
    *,
    center_y: torch.Tensor,
    center_x: torch.Tensor,
    scale: torch.Tensor,
    log_ratio: torch.Tensor,
    value: float,
    mode: str = "clean",
) -> torch.Tensor:
    """Fill a rectangle around (center_y, center_x) with ``value`` (torchvision ``F.erase``).

    Height and width: ``hh = round(sqrt(H W scale e^log_ratio))``, ``ww = round(sqrt(H W scale /
    e^log_ratio))``; top-left ``(max(0, cy - hh // 2), max(0, cx - ww // 2))`` with rounded centres.
    Clean mode clips the rectangle to the image (``F.erase`` slicing).  Paper mode applies it only if
    ``top + hh < H`` and ``left + ww < W`` and otherwise leaves the image unchanged (about 16 % of draws
    under the default bounds; docs/paper.md §5).  ``scale = 0`` erases nothing.

    Shape
    -----
    ``[B, 3, H, W]`` and ``[B]`` parameters -> ``[B, 3, H, W]``
    """
    _, _, h, w = x.shape
    area = h * w * scale
    ratio = torch.exp(log_ratio)
    hh = torch.round(torch.sqrt(area * ratio))
    ww = torch.round(torch.sqrt(area / ratio))
    top = (torch.round(center_y) - torch.div(hh, 2, rounding_mode="floor")).clamp_min(0)
    left = (torch.round(center_x) - torch.div(ww, 2, rounding_mode="floor")).clamp_min(0)
    bottom, right = top + hh, left + ww
    if mode == "paper":
        inside = (bottom < h) & (left + ww < w)
        bottom = torch.where(inside, bottom, top)  # an empty rectangle: the authors' no-op
    rows = torch.arange(h, device=x.device, dtype=top.dtype)
    cols = torch.arange(w, device=x.device, dtype=top.dtype)
    in_rows = (rows >= top[:, None]) & (rows < bottom[:, None])  # [B, H]
    in_cols = (cols >= left[:, None]) & (cols < right[:, None])  # [B, W]
    mask = (in_rows[:, :, None] & in_cols[:, None, :]).unsqueeze(1)
    return x.masked_fill(mask, value)


def sharpness(x: torch.Tensor, *, sharpness_factor: float, mode: str = "clean") -> torch.Tensor:
    """torchvision ``F.adjust_sharpness(img, sharpness_factor)``.

    Blend with the 3 x 3 smoothed image (kernel ones with 5 in the centre, / 13); the one-pixel border
    keeps its values, as in torchvision.  Both modes are the same.

    Shape
    -----
    ``[B, 3, H, W] -> [B, 3, H, W]``
    """
    if x.shape[-2] <= 2 or x.shape[-1] <= 2:
        return x.clone()
    inner = x[..., 1:-1, 1:-1]
    rows = x[..., :-2, :] + x[..., 1:-1, :] + x[..., 2:, :]
    box = rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]  # 3 x 3 sums of the interior pixels
    smooth = (box + 4.0 * inner) / 13.0
    out = x.clone()
    out[..., 1:-1, 1:-1] = (inner + (1.0 - sharpness_factor) * (smooth - inner)).clamp_(0.0, 1.0)
    return out


def rolling(
    x: torch.Tensor, *, shift_y: torch.Tensor, shift_x: torch.Tensor, mode: str = "clean"
) -> torch.Tensor:
    """Circular shift, ``torch.roll(img, (round(shift_y), round(shift_x)), dims=(-2, -1))`` per sample.

    One gather over the flattened H * W plane: output pixel (i, j) reads ``((i - dy) mod H, (j - dx)
    mod W)``.  Both modes are the same.

    Shape
    -----
    ``[B, 3, H, W]`` and ``[B]`` shifts -> ``[B, 3, H, W]``
    """
    b, c, h, w = x.shape
    dy = torch.round(shift_y).long()
    dx = torch.round(shift_x).long()
    rows = torch.remainder(torch.arange(h, device=x.device) - dy[:, None], h)  # [B, H]
    cols = torch.remainder(torch.arange(w, device=x.device) - dx[:, None], w)  # [B, W]
    index = (rows[:, :, None] * w + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return x.reshape(b, c, h * w).gather(2, index).view(b, c, h, w)


def grayscale(x: torch.Tensor, *, mode: str = "clean") -> torch.Tensor:
    """torchvision ``F.rgb_to_grayscale(img, num_output_channels=3)`` (0.2989 R + 0.587 G + 0.114 B).

    Shape
    -----
    ``[B, 3, H, W] -> [B, 3, H, W]``
    """
    return _gray(x).expand_as(x).contiguous()


def gaussian_blur(
    x: torch.Tensor, *, sigma: torch.Tensor, kernel_size: int, mode: str = "clean"
) -> torch.Tensor:
    """torchvision ``F.gaussian_blur(img, [kernel_size] * 2, [sigma] * 2)``: reflect padding.

    Separable, each sample with its own 1-D kernel; ``sigma = 0`` is the identity.

    Shape
    -----
    ``[B, 3, H, W]`` and ``[B]`` sigmas -> ``[B, 3, H, W]``
    """
    k = int(kernel_size)
    pad = k // 2
    padded = F.pad(x, [pad, pad, pad, pad], mode="reflect")
    return _separable_conv(padded, _gaussian_taps(sigma, k))


# --------------------------------------------------------------------------------------- set 2


def brightness(x: torch.Tensor, *, factor: torch.Tensor, mode: str = "clean") -> torch.Tensor:
    """torchvision ``F.adjust_brightness(img, factor)``: ``clamp(factor * img, 0, 1)``.

    Shape
    -----
    ``[B, 3, H, W]`` and ``[B]`` factors -> ``[B, 3, H, W]``
    """
    return (x * _col(factor, x)).clamp_(0.0, 1.0)


def contrast(x: torch.Tensor, *, factor: torch.Tensor, mode: str = "clean") -> torch.Tensor:
    """torchvision ``F.adjust_contrast(img, factor)``: blend with the image's mean grey level, clamped.

    Shape
    -----
    ``[B, 3, H, W]`` and ``[B]`` factors -> ``[B, 3, H, W]``
    """
    f = _col(factor, x)
    mean = _gray(x).mean(dim=(-3, -2, -1), keepdim=True)
    return (f * x + (1.0 - f) * mean).clamp_(0.0, 1.0)


def saturation(x: torch.Tensor, *, factor: torch.Tensor, mode: str = "clean") -> torch.Tensor:
    """torchvision ``F.adjust_saturation(img, factor)``: blend with the grayscale image, clamped.

    Shape
    -----
    ``[B, 3, H, W]`` and ``[B]`` factors -> ``[B, 3, H, W]``
    """
    f = _col(factor, x)
    return (f * x + (1.0 - f) * _gray(x)).clamp_(0.0, 1.0)


def hue(x: torch.Tensor, *, factor: torch.Tensor, mode: str = "clean") -> torch.Tensor:
    """torchvision ``F.adjust_hue(img, factor)``: shift the HSV hue by ``factor`` turns (mod 1).

    Rows with ``factor == 0`` are returned unchanged.

    Shape
    -----
    ``[B, 3, H, W]`` and ``[B]`` factors -> ``[B, 3, H, W]``
    """
    h, s, v = rgb_to_hsv(x).unbind(dim=-3)
    h = torch.remainder(h + factor.to(x.dtype).view(-1, 1, 1), 1.0)
    out = hsv_to_rgb(torch.stack((h, s, v), dim=-3))
    # The HSV round trip is exact only up to rounding; make the identity value exact.
    return torch.where((factor == 0).view(-1, 1, 1, 1), x, out)


def hflip(x: torch.Tensor, *, mode: str = "clean") -> torch.Tensor:
    """torchvision ``F.hflip(img)``.

    Shape
    -----
    ``[B, 3, H, W] -> [B, 3, H, W]``
    """
    return x.flip(-1)


def rotation_margin(angle: torch.Tensor, size: int) -> torch.Tensor:
    """Border cropped after a rotation: ``round(c (size - size t))``, t = |tan angle|, c = t / (1 - t^2).

    The authors' ``custom_rotation`` (docs/paper.md §5): 1 degree -> 4 px, 5 -> 18, 10 -> 34 at size 224.

    Shape
    -----
    ``[B]`` degrees -> ``[B]`` pixels (float, integral values)
    """
    t = torch.tan(torch.deg2rad(angle)).abs()
    return torch.round(t / (1.0 - t * t) * (size - size * t))


def _rotation_grid(angle: torch.Tensor, h: int, w: int, dtype: torch.dtype) -> torch.Tensor:
    """torchvision's ``rotate`` sampling grid per sample, built with the same float operations.

    torchvision takes the inverse matrix of a counter-clockwise rotation from Python floats, rescales it
    by the half sizes in ``dtype`` and multiplies pixel-centre coordinates with ``bmm``
    (``_affine_grid``).  The same steps are used here (a float32 grid carries ~1e-5 px of rounding, so
    any other arrangement of the arithmetic would differ from torchvision by that much).

    Shape: ``[B]`` degrees -> ``[B, H, W, 2]`` normalised (x, y) for ``grid_sample(align_corners=False)``.
    """
    b, dev = angle.shape[0], angle.device
    rot = torch.deg2rad(-angle.to(torch.float64))
    cos, sin, zero = torch.cos(rot), torch.sin(rot), torch.zeros_like(rot)
    theta = torch.stack((cos, sin, zero, -sin, cos, zero), dim=1).to(dtype).view(b, 2, 3)
    theta = theta.transpose(1, 2) / torch.tensor([0.5 * w, 0.5 * h], dtype=dtype, device=dev)
    base = torch.empty(h, w, 3, dtype=dtype, device=dev)
    base[..., 0].copy_(torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w, dtype=dtype, device=dev))
    base[..., 1].copy_(
        torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h, dtype=dtype, device=dev)[:, None]
    )
    base[..., 2].fill_(1.0)
    return base.view(1, h * w, 3).expand(b, h * w, 3).bmm(theta).view(b, h, w, 2)


def _upsample_taps(margin: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices and weight of bilinear resizing of ``[margin, size - margin)`` back to ``size``.

    PyTorch's ``upsample_bilinear2d`` (align_corners=False) per sample: source ``(i + 0.5) * crop / size
    - 0.5`` clamped at 0, the next index clamped at the crop's last pixel.  Indices are absolute.

    Shape: ``[B]`` margins -> two ``[B, size]`` long index tensors and ``[B, size]`` weights.
    """
    crop = (size - 2.0 * margin).view(-1, 1)
    dst = torch.arange(size, dtype=margin.dtype, device=margin.device) + 0.5
    src = (crop / size * dst - 0.5).clamp_min(0.0)
    i0 = torch.floor(src)
    lam = src - i0
    i1 = torch.where(i0 < crop - 1.0, i0 + 1.0, i0)
    m = margin.view(-1, 1)
    return (i0 + m).long(), (i1 + m).long(), lam


def _crop_resize(x: torch.Tensor, margin_y: torch.Tensor, margin_x: torch.Tensor) -> torch.Tensor:
    """Crop ``margin`` pixels from each side of each sample and resize back bilinearly, as gathers.

    Equals ``F.resize(img[..., my:H-my, mx:W-mx], [H, W], bilinear)`` per sample (upsampling, where
    antialiasing changes nothing).  Expanded (stride-0) index tensors keep the gathers allocation-free.

    Shape: ``[B, C, H, W]`` and ``[B]`` margins -> ``[B, C, H, W]``
    """
    b, c, h, w = x.shape
    r0, r1, ly = _upsample_taps(margin_y, h)
    c0, c1, lx = _upsample_taps(margin_x, w)
    ly = ly.to(x.dtype).view(b, 1, h, 1)
    lx = lx.to(x.dtype).view(b, 1, 1, w)

    def rows(i: torch.Tensor) -> torch.Tensor:
        return x.gather(2, i.view(b, 1, h, 1).expand(b, c, h, w))

    y = (1.0 - ly) * rows(r0) + ly * rows(r1)

    def cols(i: torch.Tensor) -> torch.Tensor:
        return y.gather(3, i.view(b, 1, 1, w).expand(b, c, h, w))

    return (1.0 - lx) * cols(c0) + lx * cols(c1)


def rotation(x: torch.Tensor, *, angle: torch.Tensor, mode: str = "clean") -> torch.Tensor:
    """Rotate about the centre, crop the black corners and resize back (authors' ``custom_rotation``).

    Two resampling steps, each equal to torchvision's:

    1. ``F.rotate(img, angle)`` counter-clockwise, no expand, zero fill: bilinear in clean mode;
       nearest-neighbour on the uint8-truncated image (``floor(255 x) / 255``) in paper mode, because
       the authors' positional ``False`` selected NEAREST after a ``to_pil_image`` round-trip;
    2. crop :func:`rotation_margin` pixels from every side (rows use H, columns W) and
       ``F.resize(..., [H, W], bilinear)``; paper mode rounds the result to the uint8 grid, as
       torchvision's resize of the authors' uint8 tensor did.

    The crop is part of the augmentation (it removes most of the black corners), so clean mode keeps it.
    Rows with ``angle == 0`` are returned unchanged in clean mode (torchvision's fast path).  Paper-mode
    nearest matches torchvision's tensor ``F.rotate(..., NEAREST)``; PIL's own nearest rotation (the
    authors' path) can pick the other neighbour on ties.

    Shape
    -----
    ``[B, 3, H, W]`` and ``[B]`` degrees -> ``[B, 3, H, W]``
    """
    b, _, h, w = x.shape
    src = quantize_uint8(x) if mode == "paper" else x
    rotated = F.grid_sample(
        src,
        _rotation_grid(angle, h, w, x.dtype),
        mode="nearest" if mode == "paper" else "bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    out = _crop_resize(rotated, rotation_margin(angle, h), rotation_margin(angle, w))
    if mode == "paper":
        return quantize_uint8(out, rounding=True)
    return torch.where((angle == 0).view(b, 1, 1, 1), x, out)


def _reflect(i: torch.Tensor, n: int) -> torch.Tensor:
    """Index into a reflect-padded axis of length n (PyTorch 'reflect': the edge is not repeated)."""
    i = torch.where(i < 0, -i, i)
    return torch.where(i >= n, 2 * (n - 1) - i, i)


def _ellipse_mask(
    dy: torch.Tensor, dx: torch.Tensor, a: torch.Tensor, b: torch.Tensor, angle: torch.Tensor
) -> torch.Tensor:
    """Inside test of the filled ellipse the authors drew with ``cv2.ellipse(angle=-angle)``.

    ``dy`` ``[B, h]`` and ``dx`` ``[B, w]`` are pixel offsets from the centre; the half-axis ``a`` lies
    along x before rotation, and the rotation is counter-clockwise on screen (y points down, cv2's
    angle is clockwise).  Empty when either half-axis is 0.
    """
    phi = torch.deg2rad(-angle).view(-1, 1, 1)
    cos, sin = torch.cos(phi), torch.sin(phi)
    dy, dx = dy[:, :, None], dx[:, None, :]
    u = dx * cos + dy * sin
    v = -dx * sin + dy * cos
    a2, b2 = (a * a).view(-1, 1, 1), (b * b).view(-1, 1, 1)
    return (u * u * b2 + v * v * a2 <= a2 * b2) & (a2 > 0) & (b2 > 0)


def elliptic_local_blur(
    x: torch.Tensor,
    *,
    a: torch.Tensor,
    b: torch.Tensor,
    shift_x: torch.Tensor,
    shift_y: torch.Tensor,
    angle: torch.Tensor,
    sigma: float,
    kernel_size: int,
    max_half_axis: int,
    mode: str = "clean",
) -> torch.Tensor:
    """Blur inside a rotated ellipse (authors' ``local_blur.elliptic_local_blur``).

    Ellipse: centre ``(H // 2 + round(shift_y), W // 2 + round(shift_x))``, half-axes ``round(a)``
    (along x) and ``round(b)``, rotated counter-clockwise by ``angle`` degrees; the analytic inside test
    ``(u / a)^2 + (v / b)^2 <= 1`` replaces cv2's polygon rasterisation.  Inside it, the image is
    replaced by its Gaussian blur (``sigma``, ``kernel_size`` taps, reflect padding at the image border
    -- torchvision ``F.gaussian_blur``); outside, it is unchanged.  The authors blurred with PIL's
    ``GaussianBlur(radius=3)``, an extended box blur; a true Gaussian is used in both modes.

    Only a window of side ``2 max_half_axis + 1`` around each sample's ellipse is blurred (the ellipse
    fits in it when ``a, b <= max_half_axis``, guaranteed by the bounds; larger axes are cut to the
    window), gathered with its ``kernel_size // 2`` halo, so the work is about 1/8 of a whole-image
    blur at 224 x 224.  Images smaller than the window are blurred whole.  ``max_half_axis`` is set for
    224 x 224 images; on larger ones the window grows with the longer side, as the axes' bounds do
    (:mod:`augsens.augment.scaling`).

    Paper mode truncates the input to the uint8 grid first and rounds the blurred pixels to it, as the
    authors' PIL round-trip did.

    Shape
    -----
    ``[B, 3, H, W]`` and ``[B]`` parameters -> ``[B, 3, H, W]``
    """
    bsz, c, h, w = x.shape
    k = int(kernel_size) // 2
    # the axes' bounds scale with the side (augsens.augment.scaling), so the window does on larger images
    radius = max(int(max_half_axis), math.ceil(max_half_axis * max(h, w) / _REFERENCE_SIDE))
    src = quantize_uint8(x) if mode == "paper" else x
    ar, br = torch.round(a), torch.round(b)
    cy = torch.round(shift_y).long() + h // 2
    cx = torch.round(shift_x).long() + w // 2
    taps = _gaussian_taps(torch.full_like(a, float(sigma)), 2 * k + 1)
    if h < 2 * radius + 1 or w < 2 * radius + 1 or k >= min(h, w):
        blurred = _separable_conv(F.pad(src, [k, k, k, k], mode="reflect"), taps)
        if mode == "paper":
            blurred = quantize_uint8(blurred, rounding=True)
        dy = torch.arange(h, device=x.device)[None, :] - cy[:, None]
        dx = torch.arange(w, device=x.device)[None, :] - cx[:, None]
        mask = _ellipse_mask(dy.to(a.dtype), dx.to(a.dtype), ar, br, angle)
        return torch.where(mask.unsqueeze(1), blurred, src)
    # The window centre is kept inside the image so the window is; the ellipse, clipped to the image,
    # still lies within it.
    wy = cy.clamp(radius, h - 1 - radius)
    wx = cx.clamp(radius, w - 1 - radius)
    reach = torch.arange(-radius - k, radius + k + 1, device=x.device)
    rows = _reflect(wy[:, None] + reach, h)  # [B, S] with the halo, reflected like the padding
    cols = _reflect(wx[:, None] + reach, w)
    bidx = torch.arange(bsz, device=x.device).view(bsz, 1, 1)
    patch = src[bidx, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # [B, C, S, S]
    blurred = _separable_conv(patch, taps)  # [B, C, 2R+1, 2R+1]
    if mode == "paper":
        blurred = quantize_uint8(blurred, rounding=True)
    inner = patch[..., k : patch.shape[-2] - k, k : patch.shape[-1] - k]
    rows_in, cols_in = rows[:, k:-k] if k else rows, cols[:, k:-k] if k else cols
    mask = _ellipse_mask(
        (rows_in - cy[:, None]).to(a.dtype), (cols_in - cx[:, None]).to(a.dtype), ar, br, angle
    )
    out = src.clone()
    out[bidx, :, rows_in[:, :, None], cols_in[:, None, :]] = torch.where(
        mask.unsqueeze(1), blurred, inner
    ).permute(0, 2, 3, 1)
    return out


#: Op of every augmentation, by name.
OPS: dict[str, Callable[..., torch.Tensor]] = {
    "erasing": erasing,
    "sharpness": sharpness,
    "rolling": rolling,
    "grayscale": grayscale,
    "gaussian_blur": gaussian_blur,
    "brightness": brightness,
    "contrast": contrast,
    "saturation": saturation,
    "hue": hue,
    "hflip": hflip,
    "rotation": rotation,
    "elliptic_local_blur": elliptic_local_blur,
}

"""Common corruptions (ImageNet-C) as batched tensor ops with a continuous, per-sample severity.

Hendrycks & Dietterich (2019), "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR, arXiv:1903.12261.  The reference implementation is the ``imagecorruptions``
package (Michaelis et al. 2019, arXiv:1907.07484), which applies each corruption to one uint8 image
at one of five integer severities.  Here every op takes float images ``x [B, 3, H, W]`` in [0, 1] on
any device and one value per sample for each parameter (tensors ``[B]``), and returns a new tensor of
the same shape, dtype and device, in [0, 1].

Continuous severity
-------------------
``severity`` is a real number in ``[0, 5]`` (clamped there).  The reference's settings at severities
1..5 are the anchors, severity 0 is the identity, and between anchors:

* where the reference's setting is a continuous parameter with an identity value (noise scale, salt
  and pepper fraction, elastic alpha, fog strength and decay, pixelation factor), the *parameter* is
  interpolated linearly (for shot noise its inverse photon count ``1 / c``, the noise variance per
  unit intensity);
* where it is not (a disk or motion kernel whose size jumps between levels, a JPEG quality), the
  *kernels* of the two neighbouring levels are blended linearly (for blurs this equals blending the
  two blurred images; the identity kernel is level 0), and JPEG interpolates its quantisation tables
  between levels 1..5 and fades the level-1 result in from the input below 1.

So every op equals the reference's setting exactly at the integer severities and is the identity at 0;
it is continuous in the severity pathwise for the blurs and Gaussian / speckle noise, in law for the
discrete draws of shot and impulse noise, and step by step (one pixel of size) for pixelation.

Randomness
----------
A random corruption is a deterministic function of its parameters: it takes a per-sample integer
``seed`` and draws its noise from a counter-based generator, SplitMix64 keyed by
``(seed, corruption)`` and indexed by the element's position (:func:`augsens.core.draws.
splitmix64_keyed`).  A design row therefore replays the same image in any batch, order or device.
The reference's own random choices that are really parameters (the motion-blur direction) are
parameters here.

:data:`CORRUPTIONS` holds them as :class:`~augsens.augment.protocol.Augmentation` instances, known by
name like the paper's twelve; ``augmentations = "corruptions"`` studies them all.  ``docs/corruptions.md``
lists the agreement with the reference per severity and the speed.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from functools import cache

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias

from augsens.core.draws import splitmix64_keyed

from .protocol import Augmentation, ParamSpec

__all__ = [
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "speckle_noise",
    "defocus_blur",
    "motion_blur",
    "elastic_transform",
    "fog",
    "pixelate",
    "jpeg_compression",
    "jpeg",
    "jpeg_quant_tables",
    "CORRUPTIONS",
    "SEVERITY_MAX",
]

#: Highest severity (ImageNet-C's five levels).
SEVERITY_MAX = 5
#: Largest seed: seeds travel as float32 design values, exact up to 2**24.
_SEED_MAX = 2**24


# --------------------------------------------------------------------------------------------------
# severity anchors and per-sample helpers


def _level(severity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Severity ``[B]`` -> (lower level ``i`` in 0..4 as int64, fraction ``t`` in [0, 1]) with s = i + t."""
    s = severity.clamp(0, SEVERITY_MAX)
    i = s.floor().clamp(max=SEVERITY_MAX - 1)
    return i.to(torch.int64), s - i


def _interp(anchors: tuple[float, ...], severity: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Piecewise-linear value through ``anchors`` at severities 0..5, per sample, in ``dtype``."""
    table = torch.tensor(anchors, dtype=dtype, device=severity.device)
    i, t = _level(severity.to(dtype))
    return table[i] + t * (table[i + 1] - table[i])


def _col(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.to(x.dtype).view(-1, 1, 1, 1)


def _stream(name: str) -> int:
    # one key per corruption, so two corruptions with the same seed draw independent noise
    return zlib.crc32(name.encode())


def _bits(seed: torch.Tensor, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """64 hashed bits per element of a per-sample array ``shape``: int64 ``[B, *shape]``.

    Element ``(b, k)`` is SplitMix64 output number ``k`` (flat index) of the stream keyed by
    ``(seed[b], name)``: a pure function of those, whatever the batch.
    """
    key = seed.round().to(torch.int64) * 0x1_0000_0000 + _stream(name)
    counter = torch.arange(math.prod(shape), device=seed.device)
    return splitmix64_keyed(key.view(-1, 1), counter).view(-1, *shape)


def _unit(bits: torch.Tensor, which: int, dtype: torch.dtype) -> torch.Tensor:
    """A uniform on the open interval (0, 1) from 23 of the 64 bits (``which`` = 0 or 1 picks them).

    ``(k + 1/2) / 2**23`` for the 23-bit integer ``k``: never 0 or 1, exact in float32 and float64.
    """
    k = (bits >> (41 if which == 0 else 9)) & 0x7FFFFF
    return (k.to(dtype) + 0.5) * 2.0**-23


def _normal(bits: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Standard normal draws by the inverse CDF of a 23-bit uniform (``|z| <= 5.3``), in ``dtype``.

    Computed in float32 at least: a half-precision uniform would collapse the tails.
    """
    work = torch.float64 if dtype == torch.float64 else torch.float32
    return (math.sqrt(2.0) * torch.erfinv(2.0 * _unit(bits, 0, work) - 1.0)).to(dtype)


# --------------------------------------------------------------------------------------------------
# noise


def gaussian_noise(x: torch.Tensor, severity: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    """Additive Gaussian noise ``clip(x + sigma z, 0, 1)``, ``z ~ N(0, 1)`` per pixel and channel.

    ``sigma`` = 0.08, 0.12, 0.18, 0.26, 0.38 at severities 1..5 (the reference), 0 at severity 0.

    Shape: ``x [B, 3, H, W]``, ``severity [B]``, ``seed [B]`` -> ``[B, 3, H, W]``.

    Examples
    --------
    >>> x = torch.full((2, 3, 8, 8), 0.5)
    >>> severity, seed = torch.tensor([0.0, 2.5]), torch.tensor([0.0, 7.0])
    >>> y = gaussian_noise(x, severity, seed)
    >>> bool(torch.equal(y[0], x[0])), bool(torch.equal(y, gaussian_noise(x, severity, seed)))
    (True, True)
    >>> abs(float((y[1] - x[1]).std()) - 0.15) < 0.03  # sigma = 0.15, halfway between 0.12 and 0.18
    True
    """
    sigma = _interp((0.0, 0.08, 0.12, 0.18, 0.26, 0.38), severity, x.dtype)
    z = _normal(_bits(seed, "gaussian_noise", tuple(x.shape[1:])), x.dtype)
    return (x + _col(sigma, x) * z).clamp(0, 1)


def speckle_noise(x: torch.Tensor, severity: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    """Multiplicative Gaussian noise ``clip(x + x sigma z, 0, 1)``.

    ``sigma`` = 0.15, 0.2, 0.35, 0.45, 0.6 at severities 1..5, 0 at severity 0.
    """
    sigma = _interp((0.0, 0.15, 0.2, 0.35, 0.45, 0.6), severity, x.dtype)
    z = _normal(_bits(seed, "speckle_noise", tuple(x.shape[1:])), x.dtype)
    return (x + x * _col(sigma, x) * z).clamp(0, 1)


#: Up to this mean the Poisson draw is exact (inverse CDF): every pixel at integer severities (c <= 60).
_POISSON_EXACT = 60.0
#: Inverse-CDF steps covering Poisson(60) up to the largest uniform, 1 - 2**-24 (quantile 105).
_POISSON_STEPS = 106


def _poisson(lam: torch.Tensor, u: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Poisson(``lam``) draws from a uniform ``u`` (used below :data:`_POISSON_EXACT`) and a normal ``z``.

    Means up to 60: the exact inverse CDF, ``k = #{j : F(j) < u}``, summing the pmf by its recursion
    ``p(j) = p(j - 1) lam / j`` for a fixed number of steps (no data-dependent loop).  Larger means
    (only below severity 1, where ``c > 60``): the Cornish-Fisher quantile
    ``floor(lam + sqrt(lam) z + (z**2 - 1) / 6 + 1/2)``, whose law lies within total variation 4e-4 of
    Poisson(lam) for lam > 60 (less for larger lam; checked in the tests).
    """
    small = lam.clamp(max=_POISSON_EXACT)
    p = torch.exp(-small)
    cdf = p.clone()
    k = torch.zeros_like(small)
    below = torch.empty_like(u, dtype=torch.bool)
    for j in range(1, _POISSON_STEPS + 1):  # in place: memory-bound over the whole batch
        k.add_(torch.gt(u, cdf, out=below))
        cdf.add_(p.mul_(small).div_(j))
    normal = torch.floor(lam + lam.sqrt() * z + (z * z - 1.0) / 6.0 + 0.5).clamp_min(0)
    return torch.where(lam <= _POISSON_EXACT, k, normal)


def shot_noise(x: torch.Tensor, severity: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    """Photon (Poisson) noise: ``clip(Poisson(c x) / c, 0, 1)``.

    ``c`` = 60, 25, 12, 5, 3 photons at full intensity for severities 1..5; ``1 / c`` (the noise
    variance per unit intensity) is interpolated, with ``1 / c = 0`` (no noise) at severity 0.
    Computed in float64 (a uniform near 1 must stay below the CDF's partial sums).
    """
    inv_c = _interp((0.0, 1 / 60, 1 / 25, 1 / 12, 1 / 5, 1 / 3), severity, torch.float64)
    bits = _bits(seed, "shot_noise", tuple(x.shape[1:]))
    u = _unit(bits, 0, torch.float64)
    z = math.sqrt(2.0) * torch.erfinv(2.0 * _unit(bits, 1, torch.float64) - 1.0)
    scale = inv_c.view(-1, 1, 1, 1)
    lam = x.to(torch.float64) / scale.clamp_min(1e-12)
    y = (_poisson(lam, u, z) * scale).clamp(0, 1).to(x.dtype)
    return torch.where(scale > 0, y, x)


def impulse_noise(x: torch.Tensor, severity: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    """Salt-and-pepper noise: a fraction ``amount`` of the values (per channel) set to 0 or 1, half each.

    ``amount`` = 0.03, 0.06, 0.09, 0.17, 0.27 at severities 1..5, 0 at severity 0 (the reference's
    ``skimage.util.random_noise(mode="s&p")``).
    """
    amount = _interp((0.0, 0.03, 0.06, 0.09, 0.17, 0.27), severity, torch.float64)
    bits = _bits(seed, "impulse_noise", tuple(x.shape[1:]))
    hit = _unit(bits, 0, torch.float64) < amount.view(-1, 1, 1, 1)
    salt = (_unit(bits, 1, torch.float32) < 0.5).to(x.dtype)
    return torch.where(hit, salt, x)


# --------------------------------------------------------------------------------------------------
# blurs


def _gaussian_1d(size: int, sigma: float) -> torch.Tensor:
    # OpenCV's getGaussianKernel for sigma > 0: exp(-x^2 / (2 sigma^2)), normalised
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def _disk(radius: int, alias_blur: float) -> torch.Tensor:
    """The reference's anti-aliased disk kernel (``imagecorruptions.corruptions.disk``), float64.

    An aliased disk on a grid of half-width ``max(8, radius)``, normalised, then blurred by a 3 x 3
    (radius <= 8) or 5 x 5 Gaussian of ``alias_blur`` with OpenCV's default border (reflect-101).
    """
    half, ksize = (8, 3) if radius <= 8 else (radius, 5)
    grid = torch.arange(-half, half + 1, dtype=torch.float64)
    aliased = ((grid.view(-1, 1) ** 2 + grid.view(1, -1) ** 2) <= radius**2).to(torch.float64)
    aliased /= aliased.sum()
    g = _gaussian_1d(ksize, alias_blur)
    pad = ksize // 2
    k = F.pad(aliased.view(1, 1, *aliased.shape), (pad, pad, pad, pad), mode="reflect")
    k = F.conv2d(k, g.view(1, 1, 1, -1))
    return F.conv2d(k, g.view(1, 1, -1, 1))[0, 0]


#: (radius, alias_blur) of the disk at severities 1..5.
_DEFOCUS = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))
_DEFOCUS_HALF = 10


@cache
def _defocus_kernels() -> torch.Tensor:
    """Anchor kernels ``[6, 21, 21]`` float64: the unit impulse (severity 0), then the five disks."""
    size = 2 * _DEFOCUS_HALF + 1
    out = torch.zeros(SEVERITY_MAX + 1, size, size, dtype=torch.float64)
    out[0, _DEFOCUS_HALF, _DEFOCUS_HALF] = 1.0
    for level, (radius, alias) in enumerate(_DEFOCUS, start=1):
        k = _disk(radius, alias)
        p = (size - k.shape[0]) // 2
        out[level, p : p + k.shape[0], p : p + k.shape[1]] = k
    return out


def defocus_blur(x: torch.Tensor, severity: torch.Tensor) -> torch.Tensor:
    """Defocus: correlation with an anti-aliased disk of radius 3, 4, 6, 8, 10 px (severities 1..5).

    Between levels the two disks are blended (the identity kernel at level 0).  Borders reflect
    without repeating the edge pixel (OpenCV's default, ``BORDER_REFLECT_101``), as the reference's
    ``cv2.filter2D``.  One grouped convolution with a ``21 x 21`` kernel per sample.
    """
    b, c, h, w = x.shape
    i, t = _level(severity.to(torch.float64))
    kernels = _defocus_kernels().to(device=x.device)
    k = kernels[i] + t.view(-1, 1, 1) * (kernels[i + 1] - kernels[i])  # [B, 21, 21]
    weight = k.to(x.dtype).repeat_interleave(c, dim=0).unsqueeze(1)  # [B*C, 1, 21, 21]
    r = _DEFOCUS_HALF
    padded = F.pad(x.reshape(1, b * c, h, w), (r, r, r, r), mode="reflect")
    return F.conv2d(padded, weight, groups=b * c).view(b, c, h, w).clamp(0, 1)


#: (radius, sigma) of the motion kernel at severities 1..5: ``2 radius + 1`` Gaussian taps.
_MOTION = ((10, 3.0), (15, 5.0), (15, 8.0), (15, 12.0), (20, 15.0))
_MOTION_TAPS = 2 * max(r for r, _ in _MOTION) + 1


@cache
def _motion_weights() -> torch.Tensor:
    """Tap weights ``[6, 41]`` float64 per level: the unit impulse, then one-sided Gaussians."""
    out = torch.zeros(SEVERITY_MAX + 1, _MOTION_TAPS, dtype=torch.float64)
    out[0, 0] = 1.0
    for level, (radius, sigma) in enumerate(_MOTION, start=1):
        width = 2 * radius + 1
        out[level, :width] = _gaussian_1d(2 * width - 1, sigma)[width - 1 :]  # exp(-i^2/2s^2), i >= 0
        out[level] /= out[level].sum()
    return out


def motion_blur(x: torch.Tensor, severity: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Linear motion blur: a weighted sum of copies shifted along direction ``angle``.

    Tap ``i`` (``i = 0 .. 2 radius``) has weight ``exp(-i**2 / (2 sigma**2))`` (normalised) and moves the
    image by ``(dx, dy) = (ceil(i cos a - 1/2), ceil(i sin a - 1/2))`` px towards the left / top, with
    the edge pixels repeated -- the reference's ``_motion_blur``.  ``(radius, sigma)`` = (10, 3),
    (15, 5), (15, 8), (15, 12), (20, 15) at severities 1..5; between them the tap weights are blended.
    The reference draws ``angle`` uniformly in [-45, 45] degrees; here it is a parameter.

    One gather per tap over the whole batch (41 taps), each sample with its own offsets.
    """
    b, c, h, w = x.shape
    i, t = _level(severity.to(torch.float64))
    table = _motion_weights().to(device=x.device)
    weights = (table[i] + t.view(-1, 1) * (table[i + 1] - table[i])).to(x.dtype)  # [B, 41]
    a = torch.deg2rad(angle.to(torch.float64))
    taps = torch.arange(_MOTION_TAPS, dtype=torch.float64, device=x.device)
    dy = -torch.ceil(taps * torch.sin(a).view(-1, 1) - 0.5).to(torch.int64)  # [B, 41]
    dx = -torch.ceil(taps * torch.cos(a).view(-1, 1) - 0.5).to(torch.int64)
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    flat = x.reshape(b, c, h * w)
    out = torch.zeros_like(flat)
    for k in range(_MOTION_TAPS):
        src_y = (rows.view(1, -1) - dy[:, k : k + 1]).clamp(0, h - 1)  # [B, H]
        src_x = (cols.view(1, -1) - dx[:, k : k + 1]).clamp(0, w - 1)  # [B, W]
        index = (src_y.unsqueeze(2) * w + src_x.unsqueeze(1)).view(b, 1, h * w).expand(b, c, h * w)
        out += weights[:, k].view(-1, 1, 1) * flat.gather(2, index)
    return out.view(b, c, h, w).clamp(0, 1)


# --------------------------------------------------------------------------------------------------
# elastic


def _symmetric_index(i: torch.Tensor, n: int) -> torch.Tensor:
    """Indices reflected about the half-sample edges (``d c b a | a b c d``; scipy's ``"reflect"``)."""
    i = torch.remainder(i, 2 * n)
    return torch.where(i >= n, 2 * n - 1 - i, i)


def _smooth(field: torch.Tensor, sigma: float, dim: int) -> torch.Tensor:
    """scipy's ``gaussian_filter1d(mode="reflect", truncate=3)`` along ``dim`` (-1 or -2) of ``[B, H, W]``."""
    radius = int(3 * sigma + 0.5)
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64, device=field.device)
    w = torch.exp(-0.5 * (taps / sigma) ** 2)
    w = (w / w.sum()).to(field.dtype)
    n = field.shape[dim]
    index = _symmetric_index(torch.arange(-radius, n + radius, device=field.device), n)
    padded = field.index_select(dim, index)
    if dim == -1:
        return F.conv1d(padded.reshape(-1, 1, padded.shape[-1]), w.view(1, 1, -1)).view(field.shape)
    cols = padded.transpose(-1, -2)
    return (
        F.conv1d(cols.reshape(-1, 1, cols.shape[-1]), w.view(1, 1, -1))
        .view(field.shape[0], field.shape[2], field.shape[1])
        .transpose(-1, -2)
    )


def _reflect_coordinate(c: torch.Tensor, n: int) -> torch.Tensor:
    """A real coordinate folded into ``[-1/2, n - 1/2]`` by half-sample symmetric reflection."""
    c = torch.remainder(c + 0.5, 2 * n) - 0.5
    return torch.where(c > n - 0.5, 2 * n - 1 - c, c)


def _elastic_warp(
    x: torch.Tensor, noise_y: torch.Tensor, noise_x: torch.Tensor, alpha: torch.Tensor
) -> torch.Tensor:
    """The reference's ``elastic_transform`` for given uniform fields ``noise_* [B, H, W]``.

    Displacements ``d = alpha * gaussian_filter(noise, sigma = 0.01 * side, truncate = 3)`` (reflecting
    borders), then bilinear sampling of ``x`` at ``(row + d_y, col + d_x)`` with reflecting borders
    (``scipy.ndimage.map_coordinates(order=1, mode="reflect")``).
    """
    b, c, h, w = x.shape
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    a = alpha.to(work).view(-1, 1, 1)
    dy = a * _smooth(_smooth(noise_y.to(work), 0.01 * h, -2), 0.01 * w, -1)
    dx = a * _smooth(_smooth(noise_x.to(work), 0.01 * h, -2), 0.01 * w, -1)
    rows = torch.arange(h, dtype=work, device=x.device).view(1, -1, 1)
    cols = torch.arange(w, dtype=work, device=x.device).view(1, 1, -1)
    sy, sx = _reflect_coordinate(rows + dy, h), _reflect_coordinate(cols + dx, w)
    y0, x0 = sy.floor(), sx.floor()
    fy, fx = (sy - y0).to(x.dtype), (sx - x0).to(x.dtype)
    y0, x0 = y0.to(torch.int64), x0.to(torch.int64)
    flat = x.reshape(b, c, h * w)
    out = torch.zeros_like(flat)
    for oy, ox, weight in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
        iy, ix = _symmetric_index(y0 + oy, h), _symmetric_index(x0 + ox, w)
        index = (iy * w + ix).view(b, 1, h * w).expand(b, c, h * w)
        out += weight.view(b, 1, h * w) * flat.gather(2, index)
    return out.view(b, c, h, w).clamp(0, 1)


def elastic_transform(x: torch.Tensor, severity: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    """Elastic deformation: pixels displaced by a smoothed random field (Simard et al. 2003).

    Uniform noise in ``[-0.005 H, 0.005 H]`` per pixel and direction, smoothed by a Gaussian of
    ``sigma = 0.01`` of the side and scaled by ``alpha`` = 12.5, 16.25, 21.25, 25, 30 at severities
    1..5 (0 at severity 0), displaces each pixel; bilinear sampling with reflecting borders, as the
    reference's ``elastic_transform``.
    """
    b, _, h, w = x.shape
    alpha = _interp((0.0, 12.5, 16.25, 21.25, 25.0, 30.0), severity, torch.float64)
    bits = _bits(seed, "elastic_transform", (h, w))
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    max_d = 0.005 * h  # the reference scales both directions by the height
    noise_y = (2 * _unit(bits, 0, work) - 1) * max_d
    noise_x = (2 * _unit(bits, 1, work) - 1) * max_d
    return torch.where(_col(alpha, x) > 0, _elastic_warp(x, noise_y, noise_x, alpha), x)


# --------------------------------------------------------------------------------------------------
# fog


def _plasma_sizes(map_size: int) -> list[int]:
    """Grid side of each diamond-square level: 1, 2, 4, ... map_size / 2 (three fills per level)."""
    return [map_size // step for step in (map_size >> k for k in range(map_size.bit_length() - 1))]


def _plasma(draws: list[torch.Tensor], decay: torch.Tensor, map_size: int) -> torch.Tensor:
    """The reference's ``plasma_fractal`` (diamond-square), batched: ``[B, map_size, map_size]`` in [0, 1].

    ``draws`` holds the uniforms on [-1, 1] of each fill in the reference's order (per level: squares,
    diamonds of the rows, diamonds of the columns), ``[B, n, n]`` with ``n`` the level's grid side.
    The reference adds ``wibble * uniform(-wibble, wibble)`` with ``wibble = 100 / decay**level``.
    """
    b = decay.shape[0]
    m = torch.zeros(b, map_size, map_size, dtype=draws[0].dtype, device=decay.device)
    wibble = torch.full_like(decay, 100.0).view(-1, 1, 1).to(m.dtype)
    step, k = map_size, 0
    while step >= 2:
        half = step // 2
        corner = m[:, 0::step, 0::step]
        squares = corner + torch.roll(corner, -1, 1)
        squares = squares + torch.roll(squares, -1, 2)
        m[:, half::step, half::step] = squares / 4 + wibble * wibble * draws[k]
        centre = m[:, half::step, half::step]
        corner = m[:, 0::step, 0::step]
        rows = centre + torch.roll(centre, 1, 1) + corner + torch.roll(corner, -1, 2)
        m[:, 0::step, half::step] = rows / 4 + wibble * wibble * draws[k + 1]
        cols = centre + torch.roll(centre, 1, 2) + corner + torch.roll(corner, -1, 1)
        m[:, half::step, 0::step] = cols / 4 + wibble * wibble * draws[k + 2]
        step, k = half, k + 3
        wibble = wibble / decay.view(-1, 1, 1).to(m.dtype)
    m = m - m.amin(dim=(1, 2), keepdim=True)
    return m / m.amax(dim=(1, 2), keepdim=True)


def _fog(x: torch.Tensor, strength: torch.Tensor, plasma: torch.Tensor) -> torch.Tensor:
    """``clip((x + strength * plasma) * max / (max + strength))``, ``max`` the sample's largest value."""
    h, w = x.shape[-2:]
    top = x.amax(dim=(1, 2, 3), keepdim=True)
    c = _col(strength, x)
    return ((x + c * plasma[:, None, :h, :w].to(x.dtype)) * top / (top + c)).clamp(0, 1)


def fog(x: torch.Tensor, severity: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    """Fog: a diamond-square plasma fractal added, the image dimmed to keep its maximum.

    Strength 1.5, 2, 2.5, 2.5, 3 and fractal decay 2, 2, 1.7, 1.5, 1.4 at severities 1..5 (strength 0,
    the identity, at severity 0); the fractal is ``next_power_of_2(max(H, W))`` wide, cropped to the image.
    """
    b, _, h, w = x.shape
    strength = _interp((0.0, 1.5, 2.0, 2.5, 2.5, 3.0), severity, torch.float64)
    decay = _interp((2.0, 2.0, 2.0, 1.7, 1.5, 1.4), severity, torch.float64)
    map_size = 1 << (max(h, w, 3) - 1).bit_length()
    sizes = [n for n in _plasma_sizes(map_size) for _ in range(3)]
    bits = _bits(seed, "fog", (sum(n * n for n in sizes),))
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    u = 2 * _unit(bits, 0, work) - 1
    draws = [d.view(b, n, n) for d, n in zip(u.split([n * n for n in sizes], 1), sizes, strict=True)]
    return torch.where(_col(strength, x) > 0, _fog(x, strength, _plasma(draws, decay, map_size)), x)


# --------------------------------------------------------------------------------------------------
# pixelate


def _pixelate_matrix(size: int, n: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Per-sample ``[B, size, size]`` matrix of Pillow's BOX downscale to ``n`` then NEAREST upscale.

    Pillow's BOX filter (``Resample.c``, ``precompute_coeffs``): output pixel ``j`` averages the input
    pixels ``k`` in ``[xmin, xmax)`` whose centre offset ``(k + 1/2 - centre) / scale`` lies in
    ``(-1/2, 1/2]``, with ``centre = (j + 1/2) scale``, ``scale = size / n``.  NEAREST upscaling takes
    output pixel ``i`` from ``j = floor((i + 1/2) n / size)`` (Pillow's affine nearest).
    """
    nf = n.to(torch.float64).view(-1, 1, 1)
    scale = size / nf
    i = torch.arange(size, dtype=torch.float64, device=n.device).view(1, -1, 1)
    k = torch.arange(size, dtype=torch.float64, device=n.device).view(1, 1, -1)
    j = torch.floor((i + 0.5) * nf / size)
    centre = (j + 0.5) * scale
    xmin = torch.floor(centre - 0.5 * scale + 0.5).clamp_min(0)
    xmax = torch.floor(centre + 0.5 * scale + 0.5).clamp(max=size)
    offset = (k + 0.5 - centre) / scale
    inside = (k >= xmin) & (k < xmax) & (offset > -0.5) & (offset <= 0.5)
    m = inside.to(torch.float64)
    return (m / m.sum(dim=2, keepdim=True)).to(dtype)


def pixelate(x: torch.Tensor, severity: torch.Tensor) -> torch.Tensor:
    """Pixelation: box-average down to ``floor(f H) x floor(f W)``, then nearest-neighbour back up.

    ``f`` = 0.6, 0.5, 0.4, 0.3, 0.25 at severities 1..5, interpolated, 1 (identity) at severity 0; the
    size is an integer, so the op is a step function of the severity, one step per pixel of size.
    Pillow's BOX and NEAREST resampling (the reference's ``PIL.Image.resize``) as two per-sample
    matrices: ``y = M_H x M_W^T``, one batched matrix product each way.
    """
    b, c, h, w = x.shape
    factor = _interp((1.0, 0.6, 0.5, 0.4, 0.3, 0.25), severity, torch.float64)
    m_h = _pixelate_matrix(h, torch.floor(factor * h).clamp_min(1), x.dtype)
    m_w = m_h if w == h else _pixelate_matrix(w, torch.floor(factor * w).clamp_min(1), x.dtype)
    return (m_h.unsqueeze(1) @ x @ m_w.unsqueeze(1).transpose(-1, -2)).clamp(0, 1)


# --------------------------------------------------------------------------------------------------
# JPEG

# ITU-T T.81 Annex K tables (libjpeg's std_luminance_quant_tbl / std_chrominance_quant_tbl), row-major.
_LUMA_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
_CHROMA_TABLE = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
) + ((99,) * 8,) * 4

#: JPEG quality at severities 1..5.
_JPEG_QUALITY = (25, 18, 15, 10, 7)


def jpeg_quant_tables(quality: torch.Tensor) -> torch.Tensor:
    """libjpeg's quantisation tables for integer qualities: ``[B]`` -> float64 ``[B, 2, 8, 8]`` (Y, CbCr).

    ``jpeg_quality_scaling``: ``s = 5000 / q`` below 50, else ``200 - 2 q``; each entry
    ``clamp((base s + 50) // 100, 1, 255)`` (baseline).  ``quality`` is rounded and clamped to 1..100.
    """
    q = quality.to(torch.float64).round().clamp(1, 100).view(-1, 1, 1, 1)
    scale = torch.where(q < 50, torch.floor(5000 / q), 200 - 2 * q)
    base = torch.tensor((_LUMA_TABLE, _CHROMA_TABLE), dtype=torch.float64, device=quality.device)
    return torch.floor((base * scale + 50) / 100).clamp(1, 255)


def _fix(v: float) -> int:
    # libjpeg's FIX(): 16-bit fixed point
    return int(v * 65536 + 0.5)


def _rgb_to_ycc(rgb: torch.Tensor) -> torch.Tensor:
    """libjpeg's ``rgb_ycc_convert`` on int64 samples ``[B, 3, H, W]`` (fixed point, exact)."""
    r, g, b = rgb.unbind(1)
    half = 1 << 15
    y = (_fix(0.299) * r + _fix(0.587) * g + _fix(0.114) * b + half) >> 16
    cb = (-_fix(0.16874) * r - _fix(0.33126) * g + _fix(0.5) * b + (128 << 16) + half - 1) >> 16
    cr = (_fix(0.5) * r - _fix(0.41869) * g - _fix(0.08131) * b + (128 << 16) + half - 1) >> 16
    return torch.stack((y, cb, cr), 1)


def _ycc_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    """libjpeg's ``ycc_rgb_convert`` on int64 samples (fixed point, exact), clamped to 0..255."""
    y, cb, cr = ycc.unbind(1)
    half = 1 << 15
    cb, cr = cb - 128, cr - 128
    r = y + ((_fix(1.402) * cr + half) >> 16)
    g = y + ((-_fix(0.34414) * cb - _fix(0.71414) * cr + half) >> 16)
    b = y + ((_fix(1.772) * cb + half) >> 16)
    return torch.stack((r, g, b), 1).clamp(0, 255)


def _downsample(plane: torch.Tensor) -> torch.Tensor:
    """libjpeg's ``h2v2_downsample``: 2 x 2 sums plus a bias alternating 1, 2 along the row, ``>> 2``."""
    s = plane[..., 0::2, 0::2] + plane[..., 1::2, 0::2] + plane[..., 0::2, 1::2] + plane[..., 1::2, 1::2]
    bias = 1 + (torch.arange(s.shape[-1], device=s.device) % 2)
    return (s + bias) >> 2


def _upsample(plane: torch.Tensor) -> torch.Tensor:
    """libjpeg's ``h2v2_fancy_upsample`` (triangle filter, weights 3/4 and 1/4), int64 ``[..., h, w]``.

    Each output row mixes its own input row (3) with the nearer neighbour row (1), edge rows repeated;
    then each output column the same way along the row, rounding by ``+8`` / ``+7`` before ``>> 4``.
    """
    up = torch.cat((plane[..., :1, :], plane[..., :-1, :]), -2)
    down = torch.cat((plane[..., 1:, :], plane[..., -1:, :]), -2)
    rows = torch.stack((3 * plane + up, 3 * plane + down), -2).flatten(-3, -2)  # [..., 2h, w]
    left = torch.cat((rows[..., :1], rows[..., :-1]), -1)
    right = torch.cat((rows[..., 1:], rows[..., -1:]), -1)
    even = (3 * rows + left + 8) >> 4
    odd = (3 * rows + right + 7) >> 4
    return torch.stack((even, odd), -1).flatten(-2)


def _blocks(plane: torch.Tensor) -> torch.Tensor:
    *lead, h, w = plane.shape
    return plane.reshape(*lead, h // 8, 8, w // 8, 8).transpose(-3, -2)


def _unblocks(blocks: torch.Tensor) -> torch.Tensor:
    *lead, bh, bw, _, _ = blocks.shape
    return blocks.transpose(-3, -2).reshape(*lead, bh * 8, bw * 8)


# libjpeg's "islow" integer DCT (jfdctint.c / jidctint.c, Loeffler, Ligtenberg & Moschytz 1989):
# 13-bit fixed-point constants, 2 extra bits between the passes.  Emulated in float64, where every
# intermediate is an exact integer (below 2**53), so the rounding is libjpeg's to the bit.
_CONST_BITS, _PASS1_BITS = 13, 2
_C = {
    k: int(v * (1 << _CONST_BITS) + 0.5)
    for k, v in {
        "0.298631336": 0.298631336,
        "0.390180644": 0.390180644,
        "0.541196100": 0.541196100,
        "0.765366865": 0.765366865,
        "0.899976223": 0.899976223,
        "1.175875602": 1.175875602,
        "1.501321110": 1.501321110,
        "1.847759065": 1.847759065,
        "1.961570560": 1.961570560,
        "2.053119869": 2.053119869,
        "2.562915447": 2.562915447,
        "3.072711026": 3.072711026,
    }.items()
}


def _descale(v: torch.Tensor, n: int) -> torch.Tensor:
    # DESCALE: add half, arithmetic shift right by n (floor division)
    return torch.floor((v + 2.0 ** (n - 1)) * 2.0**-n)


def _odd(t4: torch.Tensor, t5: torch.Tensor, t6: torch.Tensor, t7: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The odd part shared by the forward and inverse islow DCT (libjpeg's variable names)."""
    z1, z2, z3, z4 = t4 + t7, t5 + t6, t4 + t6, t5 + t7
    z5 = (z3 + z4) * _C["1.175875602"]
    t4, t5 = t4 * _C["0.298631336"], t5 * _C["2.053119869"]
    t6, t7 = t6 * _C["3.072711026"], t7 * _C["1.501321110"]
    z1, z2 = z1 * -_C["0.899976223"], z2 * -_C["2.562915447"]
    z3, z4 = z3 * -_C["1.961570560"] + z5, z4 * -_C["0.390180644"] + z5
    return t4 + z1 + z3, t5 + z2 + z4, t6 + z2 + z3, t7 + z1 + z4


def _fdct_pass(v: torch.Tensor, first: bool) -> torch.Tensor:
    """One pass of ``jpeg_fdct_islow`` along the last axis (8 points); output scaled by sqrt(8)."""
    d = v.unbind(-1)
    t0, t7 = d[0] + d[7], d[0] - d[7]
    t1, t6 = d[1] + d[6], d[1] - d[6]
    t2, t5 = d[2] + d[5], d[2] - d[5]
    t3, t4 = d[3] + d[4], d[3] - d[4]
    t10, t13, t11, t12 = t0 + t3, t0 - t3, t1 + t2, t1 - t2
    shift = _CONST_BITS - _PASS1_BITS if first else _CONST_BITS + _PASS1_BITS
    if first:
        out0, out4 = (t10 + t11) * 2.0**_PASS1_BITS, (t10 - t11) * 2.0**_PASS1_BITS
    else:
        out0, out4 = _descale(t10 + t11, _PASS1_BITS), _descale(t10 - t11, _PASS1_BITS)
    z1 = (t12 + t13) * _C["0.541196100"]
    out2 = _descale(z1 + t13 * _C["0.765366865"], shift)
    out6 = _descale(z1 - t12 * _C["1.847759065"], shift)
    o7, o5, o3, o1 = (_descale(o, shift) for o in _odd(t4, t5, t6, t7))
    return torch.stack((out0, o1, out2, o3, out4, o5, out6, o7), -1)


def _idct_pass(v: torch.Tensor, first: bool) -> torch.Tensor:
    """One pass of ``jpeg_idct_islow`` along the last axis; the second also removes the 8x scale."""
    d = v.unbind(-1)
    z1 = (d[2] + d[6]) * _C["0.541196100"]
    t2 = z1 - d[6] * _C["1.847759065"]
    t3 = z1 + d[2] * _C["0.765366865"]
    t0 = (d[0] + d[4]) * 2.0**_CONST_BITS
    t1 = (d[0] - d[4]) * 2.0**_CONST_BITS
    t10, t13, t11, t12 = t0 + t3, t0 - t3, t1 + t2, t1 - t2
    o0, o1, o2, o3 = _odd(d[7], d[5], d[3], d[1])
    shift = _CONST_BITS - _PASS1_BITS if first else _CONST_BITS + _PASS1_BITS + 3
    out = (t10 + o3, t11 + o2, t12 + o1, t13 + o0, t13 - o0, t12 - o1, t11 - o2, t10 - o3)
    return torch.stack([_descale(o, shift) for o in out], -1)


def _quantise(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Level shift, islow DCT, quantise, dequantise, islow inverse DCT, clamp: one component.

    ``plane`` int64 ``[B, ..., H, W]``; ``table`` float64 ``[B, 8, 8]`` broadcast over blocks.  The
    forward DCT is scaled by 8, so a coefficient ``w`` quantises to ``floor((|w| + 4 Q) / (8 Q))`` with
    its sign (libjpeg's ``quantize``); a non-integer ``Q`` (interpolated tables) uses the same rule.
    """
    blocks = _blocks(plane.to(torch.float64) - 128)
    w = _fdct_pass(_fdct_pass(blocks, True).transpose(-1, -2), False).transpose(-1, -2)
    q = table.view(table.shape[0], *([1] * (w.dim() - 3)), 8, 8)
    coef = torch.sign(w) * torch.floor((w.abs() + 4 * q) / (8 * q)) * q
    pixels = _idct_pass(_idct_pass(coef.transpose(-1, -2), True).transpose(-1, -2), False)
    return (_unblocks(pixels) + 128).clamp(0, 255).to(torch.int64)


def _extend(t: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    """Repeat the last row (``dim=-2``) or column (``dim=-1``) of ``t`` until it has ``size`` of them."""
    index = torch.arange(size, device=t.device).clamp(max=t.shape[dim] - 1)
    return t.index_select(dim, index)


def _ceil_to(n: int, m: int) -> int:
    return -(-n // m) * m


def _jpeg_round_trip(x: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
    """Baseline JPEG (4:2:0, libjpeg's arithmetic) encode + decode of ``x`` with per-sample tables.

    Edges as libjpeg pads them (``jcprepare.c``, ``jcsample.c``): columns repeated to whole MCUs before
    subsampling, rows to an even count; each plane's last row repeated to whole blocks after it.
    """
    _, _, h, w = x.shape
    rgb = torch.round(x.to(torch.float64) * 255).to(torch.int64)
    rgb = _extend(_extend(rgb, -1, _ceil_to(w, 16)), -2, _ceil_to(h, 2))
    ycc = _rgb_to_ycc(rgb)
    luma = _quantise(_extend(ycc[:, 0], -2, _ceil_to(h, 8)), tables[:, 0])[..., :h, :w]
    chroma = _downsample(ycc[:, 1:])
    chroma = _quantise(_extend(chroma, -2, _ceil_to(chroma.shape[-2], 8)), tables[:, 1])
    # the decoder upsamples the chroma planes' real samples only, repeating their last row and column
    chroma = _upsample(chroma[..., : -(-h // 2), : -(-w // 2)])[..., :h, :w]
    out = _ycc_to_rgb(torch.cat((luma.unsqueeze(1), chroma), 1))
    return out.to(x.dtype) / 255


def jpeg(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Baseline JPEG compression and decompression at a per-sample integer ``quality`` (1..100).

    A tensor implementation of what Pillow's ``Image.save(format="JPEG", quality=q)`` and decode do
    with libjpeg's defaults: 8-bit samples, fixed-point RGB -> YCbCr, 4:2:0 chroma subsampling (2 x 2
    averages), the Annex K tables scaled by ``quality``, libjpeg's integer ("islow") 8 x 8 DCT and
    inverse DCT with their roundings, fancy (triangle) chroma upsampling and fixed-point
    YCbCr -> RGB.  The output lies on the uint8 grid (k / 255).

    Shape: ``x [B, 3, H, W]``, ``quality [B]`` -> ``[B, 3, H, W]``.

    Examples
    --------
    >>> x = torch.linspace(0, 1, 3 * 16 * 16).view(1, 3, 16, 16)
    >>> y = jpeg(x, torch.tensor([10]))
    >>> bool(torch.equal(y * 255, (y * 255).round())), float((y - x).abs().max()) > 0
    (True, True)
    """
    return _jpeg_round_trip(x, jpeg_quant_tables(quality))


@cache
def _jpeg_anchor_tables() -> torch.Tensor:
    # [5, 2, 8, 8]: the tables at the qualities of severities 1..5
    return jpeg_quant_tables(torch.tensor(_JPEG_QUALITY, dtype=torch.float64))


def jpeg_compression(x: torch.Tensor, severity: torch.Tensor) -> torch.Tensor:
    """JPEG artefacts at quality 25, 18, 15, 10, 7 (severities 1..5), continuous in the severity.

    Between levels 1..5 the quantisation tables are interpolated linearly (libjpeg's own tables at
    the integer levels).  No JPEG quality leaves an image unchanged, so below severity 1 the level-1
    result is faded in from the input: ``x + s (jpeg_1(x) - x)``.
    """
    s = severity.to(torch.float64).clamp(0, SEVERITY_MAX)
    anchors = _jpeg_anchor_tables().to(x.device)
    i = (s.floor() - 1).clamp(0, SEVERITY_MAX - 2).to(torch.int64)  # lower level - 1, in 0..3
    t = (s - 1 - i).clamp(0, 1).view(-1, 1, 1, 1)
    tables = anchors[i] + t * (anchors[i + 1] - anchors[i])
    y = _jpeg_round_trip(x, tables)
    fade = _col(s.clamp(max=1), x)
    return x + fade * (y - x)


# --------------------------------------------------------------------------------------------------
# the catalogue

_SEVERITY = ParamSpec("severity", 0.0, float(SEVERITY_MAX), 0.0, False, "ImageNet-C severity (continuous)")
# any seed leaves the image unchanged at severity 0, so 0 serves as the identity value
_SEED = ParamSpec("seed", 0.0, float(_SEED_MAX - 1), 0.0, True, "noise seed (integer; any value replays)")
_ANGLE = ParamSpec("angle", -45.0, 45.0, 0.0, False, "blur direction (degrees, counter-clockwise from +x)")


def _entry(fn: Callable[..., torch.Tensor], params: tuple[ParamSpec, ...], doc: str) -> Augmentation:
    return Augmentation(
        fn.__name__,
        params,
        fn,
        doc=doc,
        input_shape="[B, 3, H, W]",
        source="augsens (common corruptions)",
    )


_ALL = (
    _entry(gaussian_noise, (_SEVERITY, _SEED), "clip(x + sigma z): additive Gaussian noise (ImageNet-C)."),
    _entry(shot_noise, (_SEVERITY, _SEED), "Poisson(c x) / c: photon noise (ImageNet-C)."),
    _entry(impulse_noise, (_SEVERITY, _SEED), "Salt and pepper on a fraction of the values (ImageNet-C)."),
    _entry(speckle_noise, (_SEVERITY, _SEED), "clip(x + x sigma z): multiplicative noise (ImageNet-C)."),
    _entry(defocus_blur, (_SEVERITY,), "Correlation with an anti-aliased disk (ImageNet-C)."),
    _entry(motion_blur, (_SEVERITY, _ANGLE), "Weighted copies shifted along a direction (ImageNet-C)."),
    _entry(elastic_transform, (_SEVERITY, _SEED), "Displacement by a smoothed random field (ImageNet-C)."),
    _entry(fog, (_SEVERITY, _SEED), "A plasma fractal added, the image dimmed (ImageNet-C)."),
    _entry(pixelate, (_SEVERITY,), "Box-average down, nearest-neighbour up (ImageNet-C)."),
    _entry(jpeg_compression, (_SEVERITY,), "Baseline JPEG (4:2:0) at a low quality (ImageNet-C)."),
)

#: The corruptions by name, in ImageNet-C's order: ordinary augmentations (``augmentations =
#: "corruptions"`` in a study takes them all).
CORRUPTIONS: dict[str, Augmentation] = {a.name: a for a in _ALL}

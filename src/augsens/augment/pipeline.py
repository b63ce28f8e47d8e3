"""Post-processing before the network, colour-space conversions and the paper's uint8 quantisation.

Decoding and ``Resize(256) + CenterCrop(224)`` belong to :mod:`augsens.data`; this module takes over after
augmentation: optional per-channel min-max rescale (paper mode, ``docs/paper.md`` §3) and
mean/std normalisation, batched RGB <-> HSV (torchvision's formulas, used by the hue op and the
single-channel experiments), and the authors' HSV of the *normalised* tensor (docs/paper.md §10).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = [
    "postprocess",
    "rgb_to_hsv",
    "hsv_to_rgb",
    "paper_rgb_to_hsv",
    "quantize_uint8",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

#: ImageNet channel means and standard deviations of torchvision's classifiers (the authors' Normalize).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: Below this channel range the min-max rescale divides by 1 (the authors' ``img_normalize`` eps).
_MINMAX_EPS = 1e-6
#: The authors' additive guard in ``rgb2hsv`` (docs/paper.md §10).
_PAPER_HSV_EPS = 1e-20


def _check_image(x: torch.Tensor, what: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{what} must be a floating-point tensor in [0, 1], got dtype {x.dtype}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{what} must have shape [B, 3, H, W], got {list(x.shape)}")


def _check_batch(x: torch.Tensor) -> None:
    """Images ``[B, 3, H, W]`` (the same checks as the augmentations), or other inputs ``[B, C, ...]``."""
    if isinstance(x, torch.Tensor) and x.ndim >= 3 and x.is_floating_point() and x.ndim != 4:
        return  # not an image: [B, C, T] signals and the like
    _check_image(x)


def _channel_vector(v: float | Sequence[float] | torch.Tensor, name: str, x: torch.Tensor) -> torch.Tensor:
    channels = x.shape[1]
    t = torch.as_tensor(v, dtype=x.dtype, device=x.device)
    if t.ndim == 0 or t.shape == (1,):
        t = t.reshape(()).expand(channels)
    if t.shape != (channels,):
        raise ValueError(
            f"{name} must be a scalar or have {channels} entries (one per channel), got shape {list(t.shape)}"
        )
    return t.view(1, channels, *([1] * (x.ndim - 2)))


def postprocess(
    x: torch.Tensor,
    mean: float | Sequence[float] | torch.Tensor = IMAGENET_MEAN,
    std: float | Sequence[float] | torch.Tensor = IMAGENET_STD,
    *,
    minmax: bool = False,
) -> torch.Tensor:
    """Prepare an augmented batch for the network: optional min-max rescale, then ``(x - mean) / std``.

    Parameters
    ----------
    x : torch.Tensor
        Augmented images ``[B, 3, H, W]``, float in [0, 1]; or other inputs ``[B, C, ...]`` (signals
        ``[B, C, T]``), any float values.
    mean, std : float, sequence of C floats or tensor [C]
        Per-channel normalisation (default ImageNet's; EfficientNet-Lite0 uses 0.5 and 0.5).
    minmax : bool
        Paper mode: first rescale every channel of every image to [0, 1] by its own min and max over
        H and W (over all positions for other inputs); where ``max - min < 1e-6`` the divisor is 1
        (``img_normalize(eps=1e-6)``).  This undoes any per-channel positive affine map, so brightness
        and contrast with factor <= 1 become invisible (docs/paper.md §3) -- which is why clean mode
        leaves it off.

    Returns
    -------
    torch.Tensor
        Normalised batch, same dtype and device.

    Shape
    -----
    ``[B, 3, H, W] -> [B, 3, H, W]``; ``[B, C, ...] -> [B, C, ...]``

    Examples
    --------
    >>> x = torch.full((1, 3, 4, 4), 0.5)
    >>> postprocess(x, 0.5, 0.5).abs().max().item()
    0.0
    >>> postprocess(torch.ones(2, 2, 8), [1.0, 0.0], [1.0, 2.0])[0, :, 0].tolist()
    [0.0, 0.5]
    """
    _check_batch(x)
    if minmax:
        positions = tuple(range(2, x.ndim))
        lo = x.amin(dim=positions, keepdim=True)
        span = x.amax(dim=positions, keepdim=True) - lo
        span = torch.where(span < _MINMAX_EPS, torch.ones_like(span), span)
        x = (x - lo) / span
    return (x - _channel_vector(mean, "mean", x)) / _channel_vector(std, "std", x)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """Batched RGB -> HSV with torchvision's formulas (Pillow's algorithm).

    Parameters
    ----------
    x : torch.Tensor
        RGB float in [0, 1].

    Returns
    -------
    torch.Tensor
        Channels (H, S, V), each in [0, 1]; hue is in turns (H = 0 red, 1/3 green, 2/3 blue) and is 0
        where the pixel is grey.

    Shape
    -----
    ``[..., 3, H, W] -> [..., 3, H, W]``
    """
    r, g, _ = x.unbind(dim=-3)
    minc, maxc = torch.aminmax(x, dim=-3)
    # Grey pixels (max == min) would divide by zero in S and H; any denominator works there because the
    # three hue terms sum to a whole number of turns.
    eqc = maxc == minc
    ones = torch.ones_like(maxc)
    span = maxc - minc
    s = span / torch.where(eqc, ones, maxc)
    rc, gc, bc = ((maxc.unsqueeze(-3) - x) / torch.where(eqc, ones, span).unsqueeze(-3)).unbind(dim=-3)
    max_is_r = maxc == r
    max_is_g = (maxc == g) & ~max_is_r
    max_is_b = ~max_is_r & ~max_is_g
    h = (bc - gc) * max_is_r + (2.0 + rc - bc) * max_is_g + (4.0 + gc - rc) * max_is_b
    h = torch.fmod(h / 6.0 + 1.0, 1.0)
    return torch.stack((h, s, maxc), dim=-3)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Batched HSV -> RGB, the inverse of :func:`rgb_to_hsv` (torchvision-equivalent).

    Uses the closed form ``c = v - v s clamp(min(k, 4 - k), 0, 1)`` with ``k = (n + 6 h) mod 6`` and
    n = 5, 3, 1 for R, G, B, which equals torchvision's sector table (``i = floor(6h)`` choosing among
    v, p, q, t) without a gather, so it runs as a few fused elementwise kernels.

    Parameters
    ----------
    x : torch.Tensor
        Channels (H, S, V) in [0, 1]; hue in turns, taken mod 1.

    Returns
    -------
    torch.Tensor
        RGB in [0, 1].

    Shape
    -----
    ``[..., 3, H, W] -> [..., 3, H, W]``
    """
    h, s, v = x.split(1, dim=-3)
    n = torch.tensor([5.0, 3.0, 1.0], dtype=x.dtype, device=x.device).view(3, 1, 1)
    k = torch.remainder(n + 6.0 * h, 6.0)
    w = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return (v - v * s * w).clamp_(0.0, 1.0)


def paper_rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """The authors' ``rgb2hsv``, applied to the *normalised* network input (paper mode, docs/paper.md §10).

    With ``max``/``min`` over channels and ``d = max - min + 1e-20``: V = max,
    S = (max - min + 1e-20) / (max + 1e-20), and H from the channel holding the minimum:
    min = R -> 60 (3 + (B - G) / d), min = G -> 60 (5 + (R - B) / d), min = B -> 60 (1 + (G - R) / d),
    then divided by 360.  The input is not in [0, 1] (it is ImageNet-normalised), so S and V are not
    the usual HSV ranges; this is reproduced as the authors ran it.  The guard inside ``d`` is the same
    1e-20 as in S (the spec does not record the divisor's guard); it only matters for grey pixels.

    Parameters
    ----------
    x : torch.Tensor
        Normalised RGB batch (output of :func:`postprocess`).

    Returns
    -------
    torch.Tensor
        Channels (H, S, V).

    Shape
    -----
    ``[B, 3, H, W] -> [B, 3, H, W]``
    """
    r, g, b = x.unbind(dim=-3)
    minc, argmin = x.min(dim=-3)
    maxc = x.amax(dim=-3)
    d = maxc - minc + _PAPER_HSV_EPS
    h = torch.where(
        argmin == 0,
        60.0 * (3.0 + (b - g) / d),
        torch.where(argmin == 1, 60.0 * (5.0 + (r - b) / d), 60.0 * (1.0 + (g - r) / d)),
    )
    s = (maxc - minc + _PAPER_HSV_EPS) / (maxc + _PAPER_HSV_EPS)
    return torch.stack((h / 360.0, s, maxc), dim=-3)


def quantize_uint8(x: torch.Tensor, *, rounding: bool = False) -> torch.Tensor:
    """Snap [0, 1] values to the uint8 grid k/255 while keeping the float dtype.

    ``rounding=False`` truncates like ``tensor.mul(255).byte()`` in ``to_pil_image`` (the authors'
    tensor -> PIL step); ``rounding=True`` rounds like torchvision's resize of a uint8 tensor and PIL's
    filters.

    Shape
    -----
    ``[...] -> [...]``
    """
    y = x * 255.0
    y = torch.round(y) if rounding else torch.floor(y)
    return y.clamp_(0.0, 255.0).div_(255.0)

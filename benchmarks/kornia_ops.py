"""Our batched augmentation ops against kornia's equivalents: same batch, same per-sample parameters.

For every op of :mod:`augsens.augment.ops` that kornia covers, the script applies ours and kornia's to one
random ``[B, 3, H, W]`` float32 batch with the same per-sample parameters (drawn within the registry
bounds), and prints

* the max abs difference of each against torchvision's functional op applied image by image (the
  reference our tests pin the ops to, at 1e-5), and between the two;
* the median time of each and the ratio kornia / ours, timed in one process in alternating rounds, so
  that other load on the machine hits both alike.

kornia is not a dependency of augsens; install it to run this (``pip install kornia``).  The kornia call
used for each op is the closest the library offers (named in the table); ``rolling`` (circular shift)
and ``elliptic_local_blur`` have no kornia counterpart.

    python benchmarks/kornia_ops.py [--batch 64] [--size 224] [--threads 2] [--rounds 7] [--device cpu]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import torch
import torchvision
import torchvision.transforms.v2.functional as TF

from augsens.augment import spec
from augsens.augment.ops import OPS, rotation_margin

try:
    import kornia
    import kornia.augmentation as KA
    from kornia.color import rgb_to_grayscale as k_gray
    from kornia.enhance import (
        adjust_brightness_accumulative,
        adjust_contrast_with_mean_subtraction,
        adjust_hue,
        adjust_saturation_with_gray_subtraction,
        sharpness,
    )
    from kornia.filters import gaussian_blur2d
    from kornia.geometry.transform import crop_and_resize
    from kornia.geometry.transform import hflip as k_hflip
    from kornia.geometry.transform import rotate as k_rotate
except ImportError as exc:  # not a dependency: say how to get it
    raise SystemExit(
        f"this benchmark needs kornia, which augsens does not install ({exc}): pip install kornia"
    ) from exc

Params = dict[str, torch.Tensor]
#: torchvision's grayscale weights; kornia's default is (0.299, 0.587, 0.114), so a port would pass these.
LUMA = (0.2989, 0.587, 0.114)
#: The ops' constants, from the registry.
SHARPNESS = float(spec("sharpness").constants["sharpness_factor"])
BLUR_TAPS = int(spec("gaussian_blur").constants["kernel_size"])


def _draw(name: str, batch: int, gen: torch.Generator) -> Params:
    """Per-sample parameters uniform within the registry bounds, float32 (the ops' dtype for float32 x)."""
    return {p.name: p.low + (p.high - p.low) * torch.rand(batch, generator=gen) for p in spec(name).params}


def _erase_box(p: Params, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top, left, height, width of the erased rectangle, as in :func:`augsens.augment.ops.erasing`."""
    area, ratio = h * w * p["scale"], torch.exp(p["log_ratio"])
    hh, ww = torch.round(torch.sqrt(area * ratio)), torch.round(torch.sqrt(area / ratio))
    top = (torch.round(p["center_y"]) - torch.div(hh, 2, rounding_mode="floor")).clamp_min(0)
    left = (torch.round(p["center_x"]) - torch.div(ww, 2, rounding_mode="floor")).clamp_min(0)
    return top, left, hh, ww


def _k_erasing(x: torch.Tensor, p: Params) -> torch.Tensor:
    # kornia's RandomErasing separates drawing from applying: apply_transform takes the boxes as data.
    # Its box spans [xs, xs + width) x [ys, ys + height), clipped to the image (F.erase slicing).
    top, left, hh, ww = _erase_box(p, x.shape[-2], x.shape[-1])
    aug = KA.RandomErasing(p=1.0)
    params = {"xs": left, "ys": top, "widths": ww, "heights": hh, "values": torch.zeros(x.shape[0])}
    return aug.apply_transform(x, params, aug.flags)


def _k_rotation(x: torch.Tensor, p: Params) -> torch.Tensor:
    # Same two steps as ours: rotate (bilinear, zero fill, pixel-centre convention of torchvision), then
    # crop the margin from each side and resize back.  kornia's crop_and_resize maps the box corners'
    # pixel centres onto the output's (its only convention), which differs from F.resize's half-pixel one.
    b, _, h, w = x.shape
    rotated = k_rotate(x, p["angle"], align_corners=False)
    my, mx = rotation_margin(p["angle"], h), rotation_margin(p["angle"], w)
    x0, y0, x1, y1 = mx, my, w - 1 - mx, h - 1 - my
    boxes = torch.stack((torch.stack((x0, y0), 1), torch.stack((x1, y0), 1)), 1)
    boxes = torch.cat((boxes, torch.stack((torch.stack((x1, y1), 1), torch.stack((x0, y1), 1)), 1)), 1)
    return crop_and_resize(rotated, boxes, (h, w), align_corners=False)


#: Per op: kornia's call (batched, per-sample parameters), its label, and torchvision's per-image reference.
KORNIA: dict[str, tuple[str, Callable[[torch.Tensor, Params], torch.Tensor]]] = {
    "brightness": (
        "enhance.adjust_brightness_accumulative",
        lambda x, p: adjust_brightness_accumulative(x, p["factor"]),
    ),
    "contrast": (
        "enhance.adjust_contrast_with_mean_subtraction",
        lambda x, p: adjust_contrast_with_mean_subtraction(x, p["factor"]),
    ),
    "saturation": (
        "enhance.adjust_saturation_with_gray_subtraction",
        lambda x, p: adjust_saturation_with_gray_subtraction(x, p["factor"]),
    ),
    "hue": ("enhance.adjust_hue (radians)", lambda x, p: adjust_hue(x, 2 * math.pi * p["factor"])),
    "sharpness": ("enhance.sharpness", lambda x, p: sharpness(x, SHARPNESS)),
    "grayscale": (
        "color.rgb_to_grayscale (torchvision weights)",
        lambda x, p: k_gray(x, torch.tensor(LUMA)).expand_as(x).contiguous(),
    ),
    "gaussian_blur": (
        "filters.gaussian_blur2d (reflect)",
        lambda x, p: gaussian_blur2d(
            x, (BLUR_TAPS, BLUR_TAPS), p["sigma"].view(-1, 1).expand(-1, 2), "reflect"
        ),
    ),
    "hflip": ("geometry.transform.hflip", lambda x, p: k_hflip(x)),
    "rotation": ("geometry.transform.rotate + crop_and_resize", _k_rotation),
    "erasing": ("augmentation.RandomErasing.apply_transform", _k_erasing),
}


def _tv_one(name: str, im: torch.Tensor, p: dict[str, float]) -> torch.Tensor:
    """torchvision's functional op on one image (as in tests/augment/test_augment_ops.py)."""
    if name in ("brightness", "contrast", "saturation", "hue"):
        return getattr(TF, f"adjust_{name}")(im, p["factor"])
    if name == "sharpness":
        return TF.adjust_sharpness(im, SHARPNESS)
    if name == "grayscale":
        return TF.rgb_to_grayscale(im, num_output_channels=3)
    if name == "gaussian_blur":
        return TF.gaussian_blur(im, [BLUR_TAPS] * 2, [p["sigma"]] * 2)
    if name == "hflip":
        return TF.hflip(im)
    if name == "rotation":
        h, w = im.shape[-2:]
        my = int(rotation_margin(torch.tensor([p["angle"]]), h))
        mx = int(rotation_margin(torch.tensor([p["angle"]]), w))
        bilinear = TF.InterpolationMode.BILINEAR
        r = TF.rotate(im, p["angle"], interpolation=bilinear)[..., my : h - my, mx : w - mx]
        return TF.resize(r, [h, w], interpolation=bilinear)
    box = _erase_box({k: torch.tensor([v]) for k, v in p.items()}, *im.shape[-2:])
    top, left, hh, ww = (int(v) for v in box)
    return TF.erase(im, top, left, hh, ww, torch.tensor(0.0))


def _ours(name: str) -> Callable[[torch.Tensor, Params], torch.Tensor]:
    op, constants = OPS[name], dict(spec(name).constants)
    return lambda x, p: op(x, **p, **constants)


def _seconds(fn: Callable[[], torch.Tensor], device: torch.device, min_time: float = 0.3) -> float:
    """Mean seconds per call over at least ``min_time`` (after a warm-up call)."""
    fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (CPU)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating timing rounds per op (median)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 3, args.size, args.size, generator=gen)
    print(
        f"device {device}, batch {args.batch}, {args.size} x {args.size}, float32, "
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"kornia {kornia.__version__}, threads {torch.get_num_threads()}, median of {args.rounds} rounds"
    )
    head = ("op", "kornia call", "ours-tv", "kornia-tv", "kornia-ours", "ours ms", "kornia ms", "kornia/ours")
    print(f"| {' | '.join(head)} |\n|{'---|' * len(head)}")
    for name, (label, k_fn) in KORNIA.items():
        p = _draw(name, args.batch, gen)
        ref = torch.stack(
            [_tv_one(name, x[i], {k: v[i].item() for k, v in p.items()}) for i in range(args.batch)]
        )
        xd, pd = x.to(device), {k: v.to(device) for k, v in p.items()}
        o_fn = _ours(name)
        ours, theirs = o_fn(xd, pd).cpu(), k_fn(xd, pd).cpu()
        t_ours, t_k = [], []
        for _ in range(args.rounds):
            t_ours.append(_seconds(lambda o_fn=o_fn, pd=pd, xd=xd: o_fn(xd, pd), device))
            t_k.append(_seconds(lambda k_fn=k_fn, pd=pd, xd=xd: k_fn(xd, pd), device))
        ratios = [k / o for k, o in zip(t_k, t_ours, strict=True)]
        row = (
            name,
            label,
            f"{(ours - ref).abs().max().item():.1e}",
            f"{(theirs - ref).abs().max().item():.1e}",
            f"{(theirs - ours).abs().max().item():.1e}",
            f"{1e3 * statistics.median(t_ours):.1f}",
            f"{1e3 * statistics.median(t_k):.1f}",
            f"{statistics.median(ratios):.2f}",
        )
        print(f"| {' | '.join(row)} |", flush=True)
    print("| rolling | none (kornia's translate pads, it does not wrap) | | | | | | |")
    print("| elliptic_local_blur | none | | | | | | |")


if __name__ == "__main__":
    main()

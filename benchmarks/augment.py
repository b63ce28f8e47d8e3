"""Throughput of the batched augmentation chains vs torchvision applied image by image.

Full set-1 and set-2 chains, random per-sample parameters, switches all on, random per-sample orders,
on 224 x 224 images; the reference applies torchvision's functional ops (plus torch.roll and the
authors' crop-and-resize rotation) to one image at a time in a Python loop, which is how a per-sample
parameter pipeline runs without batching.  Prints images/s of each and the ratio; no assertions.

    python benchmarks/augment.py [--device cuda] [--batch 256] [--iters 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torchvision.transforms.v2.functional as F

from augsens.augment import SET1, SET2, compose, spec
from augsens.augment.ops import rotation_margin


def _params(names, batch: int, gen: torch.Generator) -> dict[str, dict[str, torch.Tensor]]:
    return {
        name: {p.name: p.low + (p.high - p.low) * torch.rand(batch, generator=gen) for p in spec(name).params}
        for name in names
    }


def _torchvision_one(name: str, im: torch.Tensor, p: dict[str, float]) -> torch.Tensor:
    if name == "erasing":
        h, w = im.shape[-2:]
        area, ratio = h * w * p["scale"], math.exp(p["log_ratio"])
        hh, ww = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
        top, left = max(0, round(p["center_y"]) - hh // 2), max(0, round(p["center_x"]) - ww // 2)
        return F.erase(im, top, left, hh, ww, torch.tensor(0.0, device=im.device))
    if name == "sharpness":
        return F.adjust_sharpness(im, 1.5)
    if name == "rolling":
        return torch.roll(im, (round(p["shift_y"]), round(p["shift_x"])), dims=(-2, -1))
    if name == "grayscale":
        return F.rgb_to_grayscale(im, num_output_channels=3)
    if name == "gaussian_blur":
        return F.gaussian_blur(im, [7, 7], [p["sigma"]] * 2)
    if name in ("brightness", "contrast", "saturation", "hue"):
        return getattr(F, f"adjust_{name}")(im, p["factor"])
    if name == "hflip":
        return F.hflip(im)
    if name == "rotation":
        h = im.shape[-1]
        m = int(rotation_margin(torch.tensor([p["angle"]]), h))
        r = F.rotate(im, p["angle"], interpolation=F.InterpolationMode.BILINEAR)[..., m : h - m, m : h - m]
        return F.resize(r, [h, h], interpolation=F.InterpolationMode.BILINEAR)
    # elliptic local blur: whole-image blur + analytic ellipse mask, as a per-image pipeline would do it
    h = im.shape[-1]
    blurred = F.gaussian_blur(im, [19, 19], [3.0, 3.0])
    ys, xs = torch.meshgrid(
        torch.arange(h, device=im.device), torch.arange(h, device=im.device), indexing="ij"
    )
    phi = math.radians(-p["angle"])
    dx, dy = xs - (h // 2 + round(p["shift_x"])), ys - (h // 2 + round(p["shift_y"]))
    u, v = dx * math.cos(phi) + dy * math.sin(phi), -dx * math.sin(phi) + dy * math.cos(phi)
    inside = (u / round(p["a"])) ** 2 + (v / round(p["b"])) ** 2 <= 1
    return torch.where(inside, blurred, im)


def _torchvision_chain(x, names, params, order) -> torch.Tensor:
    out = []
    for b in range(x.shape[0]):
        im = x[b]
        for k in order[b].tolist():
            name = names[k]
            im = _torchvision_one(name, im, {p: v[b].item() for p, v in params[name].items()})
        out.append(im)
    return torch.stack(out)


def _time(fn, iters: int, device: torch.device) -> float:
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 3, 224, 224, generator=gen).to(device)
    print(
        f"device {device}, batch {args.batch}, 224 x 224, float32, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}"
    )
    print(f"{'chain':<8} {'batched img/s':>14} {'torchvision img/s':>18} {'ratio':>7}")
    for label, names in (("set 1", SET1), ("set 2", SET2)):
        params = _params(names, args.batch, gen)
        order = torch.stack([torch.randperm(len(names), generator=gen) for _ in range(args.batch)])
        dev_params = {n: {p: v.to(device) for p, v in ps.items()} for n, ps in params.items()}

        def batched(names=names, dev_params=dev_params, order=order):
            return compose(x, names, dev_params, order=order, validate=False)

        def loop(names=names, params=params, order=order):
            return _torchvision_chain(x, names, params, order)

        t_batched = _time(batched, args.iters, device)
        t_loop = _time(loop, max(1, args.iters // 3), device)
        ratio = t_loop / t_batched
        print(f"{label:<8} {args.batch / t_batched:>14.0f} {args.batch / t_loop:>18.0f} {ratio:>6.1f}x")


if __name__ == "__main__":
    main()

"""Cost of the per-sample adapter: a batched op against the same op wrapped per image.

Three forms of the same operations, with one random parameter per sample, side by side in one process:

* ``batched``: the built-in batched op (augsens.augment.ops: brightness, contrast, hue), one call per batch;
* ``per_image``: torchvision's functional op (adjust_brightness, adjust_contrast, adjust_hue) wrapped by
  :func:`augsens.augment.adapters.torchvision_op`, one call per sample;
* ``batched adapter``: a plain-tensor brightness through :func:`augsens.augment.adapters.batched`, to show
  that the adapter itself costs nothing where the op takes per-sample tensors.

Prints images/s of each form and the ratio of times per-image / batched at several batch sizes (for the
last row: batched adapter / built-in); no assertions (times depend on the machine; the ratio is the
result).

    python benchmarks/per_image_adapter.py [--device cuda] [--size 224] [--iters 5] [--threads 0]
"""

from __future__ import annotations

import argparse
import time

import torch
import torchvision.transforms.v2.functional as F

from augsens.augment import Augmentation, ParamSpec, spec
from augsens.augment.adapters import batched, torchvision_op


def _timed(
    aug: Augmentation, x: torch.Tensor, values: torch.Tensor, device: torch.device, iters: int
) -> float:
    """Seconds per call of ``aug`` on ``x`` with parameter ``factor = values`` (no value checks)."""

    def fn() -> torch.Tensor:
        return aug(x, factor=values, validate=False)

    fn()  # warm-up (allocations, kernels)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / iters


def _brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (x * factor).clamp(0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--batches", default="1,16,64,256")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    pairs = {
        "brightness": (F.adjust_brightness, "brightness_factor"),
        "contrast": (F.adjust_contrast, "contrast_factor"),
        "hue": (F.adjust_hue, "hue_factor"),
    }
    print(f"device {device}, images 3 x {args.size} x {args.size}, float32, {args.iters} iterations")
    print(f"{'op':<12}{'batch':>6}{'batched/s':>12}{'per-image/s':>13}{'ratio':>8}")
    for batch in (int(b) for b in args.batches.split(",")):
        x = torch.rand(batch, 3, args.size, args.size, generator=gen).to(device)
        for name, (op, keyword) in pairs.items():
            native = spec(name)
            p = native.params[0]
            values = (p.low + (p.high - p.low) * torch.rand(batch, generator=gen)).to(device)
            adapted = torchvision_op(
                op,
                [ParamSpec("factor", p.low, p.high, identity=p.identity)],
                name=f"tv_{name}",
                keywords={"factor": keyword},
            )
            t_native = _timed(native, x, values, device, args.iters)
            t_adapted = _timed(adapted, x, values, device, args.iters)
            print(
                f"{name:<12}{batch:>6}{batch / t_native:>12.0f}{batch / t_adapted:>13.0f}"
                f"{t_adapted / t_native:>8.2f}"
            )
        plain = batched(
            "plain_brightness", _brightness, [ParamSpec("factor", 0.1, 2.5, identity=1.0)], broadcast=True
        )
        values = (0.1 + 2.4 * torch.rand(batch, generator=gen)).to(device)
        t_plain = _timed(plain, x, values, device, args.iters)
        t_builtin = _timed(spec("brightness"), x, values, device, args.iters)
        print(
            f"{'batched ad.':<12}{batch:>6}{batch / t_builtin:>12.0f}{batch / t_plain:>13.0f}"
            f"{t_plain / t_builtin:>8.2f}"
        )


if __name__ == "__main__":
    main()

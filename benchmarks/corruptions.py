"""Throughput of the batched corruptions vs the reference (``imagecorruptions``) applied image by image.

Each op runs on a batch of real photos at 224 x 224 with per-sample severities (uniform on [1, 5]) and
seeds; the reference runs its function on one uint8 image at a time, at the nearest integer severity,
as ``imagecorruptions.corrupt`` does (``np.uint8`` of the result included).  JPEG is also timed through
torchvision's ``encode_jpeg`` / ``decode_jpeg`` on the batch (libjpeg on CPU, one call per distinct
quality): the other batched route.  Prints images/s of each and the ratio, measured in one process;
no assertions.  ``--agreement`` prints instead the agreement with the reference at severities 1..5 on
three photos (the table of docs/corruptions.md; tests/augment/test_corruptions.py asserts it).

    python benchmarks/corruptions.py [--batch 64] [--iters 3] [--threads 1] [--device cpu] [--agreement]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torchvision.io as tio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "augment"))
from corruption_reference import corruptions as reference_module  # noqa: E402
from corruption_reference import motion_angle, photos, reference, to_tensor  # noqa: E402
from PIL import Image  # noqa: E402
from scipy import stats  # noqa: E402

from augsens.augment.corruptions import (  # noqa: E402
    _JPEG_QUALITY,
    CORRUPTIONS,
    _elastic_warp,
    _fog,
    _plasma,
    _plasma_sizes,
)


def _best(fn: Callable[[], object], iters: int, sync: Callable[[], None]) -> float:
    fn()  # warm-up (kernel caches, lazily built tables)
    sync()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def agreement() -> None:
    """Per severity: max and mean |ours - reference| (levels of 255) or the KS statistic of the change.

    Noise: the change ``y - x`` to 1e-3 of a level, ours vs the reference's, two-sample KS.  The
    elastic transform's and the fog's changes are spatially correlated (no KS), so they are compared
    per pixel for the reference's own random draws.
    """
    images = photos()
    x = to_tensor(images)
    b = len(images)
    head = f"{'corruption':<18}{'sev':>4}  {'max |d|':>9}{'mean |d|':>10}"
    print(f"{head}   noise: KS D (p), mean change ours / ref")
    for name, aug in CORRUPTIONS.items():
        for level in range(1, 6):
            kwargs = {"severity": torch.full((b,), float(level))}
            run = reference(name)
            if name == "elastic_transform":  # per pixel, given the reference's own noise fields
                ref = np.stack([run(im, level, seed=level) for im in images])
                rs = np.random.RandomState(level)
                side = images.shape[1]
                nx, ny = (
                    torch.from_numpy(rs.uniform(-0.005 * side, 0.005 * side, (side, side))) for _ in "xy"
                )
                alpha = torch.full((b,), (12.5, 16.25, 21.25, 25.0, 30.0)[level - 1])
                ours = _elastic_warp(x, ny.expand(b, -1, -1), nx.expand(b, -1, -1), alpha)
                d = np.abs(ours.permute(0, 2, 3, 1).double().numpy() * 255 - ref)
                print(f"{name:<18}{level:>4}  {d.max():>9.2g}{d.mean():>10.2g}   (for the reference's noise)")
                continue
            if name == "fog":  # per pixel, given the reference's own fractal draws
                ref = np.stack([run(im, level, seed=level) for im in images])
                strength, decay = ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))[level - 1]
                rs, wibble, draws = np.random.RandomState(level), 100.0, []
                for n in _plasma_sizes(256):
                    draws += [torch.from_numpy(rs.uniform(-wibble, wibble, (n, n)) / wibble) for _ in "abc"]
                    wibble /= decay
                plasma = _plasma(
                    [d.expand(b, -1, -1) for d in draws], torch.full((b,), decay, dtype=torch.float64), 256
                )
                x64 = torch.from_numpy(images).permute(0, 3, 1, 2).double() / 255
                ours = _fog(x64, torch.full((b,), strength), plasma)
                d = np.abs(ours.permute(0, 2, 3, 1).numpy() * 255 - ref)
                print(f"{name:<18}{level:>4}  {d.max():>9.2g}{d.mean():>10.2g}   (for the reference's noise)")
                continue
            if "seed" in aug.param_names:
                ref = np.stack([run(im, level, seed=100 * level + i) for i, im in enumerate(images)])
                kwargs["seed"] = 1000.0 * level + torch.arange(b, dtype=torch.float32)
            elif name == "motion_blur":
                ref = np.stack([run(im, level, seed=level) for im in images])
                kwargs["angle"] = torch.full((b,), motion_angle(level))
            else:
                ref = np.stack([run(im, level) for im in images])
            ours = aug.fn(x, **kwargs).permute(0, 2, 3, 1).double().numpy() * 255
            if "seed" in aug.param_names:
                a, c = np.round(ours - images, 3).ravel(), np.round(ref - images, 3).ravel()
                ks = stats.ks_2samp(a, c)
                print(
                    f"{name:<18}{level:>4}  {'':>9}{'':>10}   "
                    f"{ks.statistic:.4f} ({ks.pvalue:.2g}), {a.mean():+.2f} / {c.mean():+.2f}"
                )
            else:
                d = np.abs(ours - ref)
                print(f"{name:<18}{level:>4}  {d.max():>9.2g}{d.mean():>10.2g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (0: leave as is)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--agreement", action="store_true", help="print the agreement table instead")
    args = parser.parse_args()
    if args.threads:
        import cv2

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    if args.agreement:
        agreement()
        return
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    base = photos()
    images = np.concatenate([base] * -(-args.batch // len(base)))[: args.batch]  # uint8 [B, H, W, 3]
    x = torch.from_numpy(images).permute(0, 3, 1, 2).to(device, torch.float32) / 255
    gen = torch.Generator().manual_seed(0)
    severity = (1 + 4 * torch.rand(args.batch, generator=gen)).to(device)
    levels = severity.round().int().tolist()
    params = {
        "seed": torch.arange(args.batch, dtype=torch.float32, device=device),
        "angle": (90 * torch.rand(args.batch, generator=gen) - 45).to(device),
    }

    print(f"batch {args.batch} x 3 x 224 x 224, device {device}, torch threads {torch.get_num_threads()}")
    print(f"{'corruption':<18}{'batched img/s':>15}{'reference img/s':>17}{'ratio':>8}")
    for name, aug in CORRUPTIONS.items():
        kwargs = {p.name: params[p.name] for p in aug.params[1:]}
        ours = _best(lambda aug=aug, kwargs=kwargs: aug.fn(x, severity=severity, **kwargs), args.iters, sync)
        ref_fn = getattr(reference_module, name)

        def reference(ref_fn=ref_fn) -> None:
            for im, level in zip(images, levels, strict=True):
                np.uint8(ref_fn(Image.fromarray(im), level))

        ref = _best(reference, max(1, args.iters - 1), lambda: None)
        print(f"{name:<18}{args.batch / ours:>15.1f}{args.batch / ref:>17.1f}{ref / ours:>8.2f}")

    # JPEG by torchvision's libjpeg bindings on the batch, at the integer quality of each sample
    quality = torch.tensor([_JPEG_QUALITY[level - 1] for level in levels])
    planes = [im for im in torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()]

    def torchvision_jpeg() -> None:
        for q in quality.unique().tolist():
            idx = (quality == q).nonzero().flatten().tolist()
            tio.decode_jpeg(tio.encode_jpeg([planes[i] for i in idx], quality=q))

    ours = _best(lambda: CORRUPTIONS["jpeg_compression"].fn(x, severity=severity), args.iters, sync)
    tv = _best(torchvision_jpeg, args.iters, lambda: None)
    print(f"{'jpeg: torchvision':<18}{args.batch / tv:>15.1f}{'':>17}{tv / ours:>8.2f}  (ratio: ours vs it)")


if __name__ == "__main__":
    main()

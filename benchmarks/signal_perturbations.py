"""Throughput of the batched signal perturbations vs the same ops applied signal by signal.

Each of augsens.augment.signals' four perturbations (and the chain of all four) runs on a batch of
signals ``[B, C, T]`` with random per-sample parameters, once batched (one call per batch) and once in a
Python loop over the samples (one call per signal, as a per-sample pipeline without batching runs).
Prints signals/s of each and the ratio, measured side by side in this process; no assertions.

    python benchmarks/signal_perturbations.py [--device cuda] [--batch 512] [--channels 2] [--length 1024]
"""

from __future__ import annotations

import argparse
import time

import torch

from augsens.augment.signals import SIGNAL_PERTURBATIONS


def _params(batch: int, gen: torch.Generator, device: torch.device) -> dict[str, dict[str, torch.Tensor]]:
    return {
        a.name: {
            p.name: (p.low + (p.high - p.low) * torch.rand(batch, generator=gen, dtype=torch.float64))
            .round()
            .float()
            .to(device)
            if p.integer
            else (p.low + (p.high - p.low) * torch.rand(batch, generator=gen)).to(device)
            for p in a.params
        }
        for a in SIGNAL_PERTURBATIONS
    }


def _timed(fn, iters: int, device: torch.device) -> float:
    fn()  # warm-up (FFT plans, allocator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.channels, args.length, generator=gen).to(device)
    params = _params(args.batch, gen, device)
    shape = f"[{args.channels}, {args.length}]"
    print(f"{args.batch} signals {shape} on {device}, {torch.get_num_threads()} threads")
    print(f"{'op':>16} {'batched /s':>12} {'per signal /s':>14} {'ratio':>7}")

    def chain(batched: bool) -> None:
        if batched:
            y = x
            for a in SIGNAL_PERTURBATIONS:
                y = a.run(y, params[a.name])
            return
        for b in range(args.batch):
            y = x[b : b + 1]
            for a in SIGNAL_PERTURBATIONS:
                y = a.run(y, {k: v[b : b + 1] for k, v in params[a.name].items()})

    for a in SIGNAL_PERTURBATIONS:
        p = params[a.name]
        batched = _timed(lambda a=a, p=p: a.run(x, p), args.iters, device)
        looped = _timed(
            lambda a=a, p=p: [
                a.run(x[b : b + 1], {k: v[b : b + 1] for k, v in p.items()}) for b in range(args.batch)
            ],
            max(1, args.iters // 2),
            device,
        )
        print(
            f"{a.name:>16} {args.batch / batched:12.0f} {args.batch / looped:14.0f} {looped / batched:7.1f}"
        )
    batched = _timed(lambda: chain(True), args.iters, device)
    looped = _timed(lambda: chain(False), max(1, args.iters // 2), device)
    print(
        f"{'all four':>16} {args.batch / batched:12.0f} {args.batch / looped:14.0f} {looped / batched:7.1f}"
    )


if __name__ == "__main__":
    main()

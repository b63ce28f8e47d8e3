"""One accumulator update, the current implementation against the previous one, side by side.

Usage::

    python benchmarks/accumulate_update.py [--outputs 773736] [--factors 7] [--batch 32 128]
                                           [--dtype bfloat16|float32] [--chunk-mb 1 4 16] [--rounds 7]
                                           [--threads K]

Per accumulator kind (as in ``benchmarks/throughput.py``'s roofline: Sobol with and without second order,
exact and permutation Shapley, moments), per engine batch size (``b = batch // R`` base samples per update,
at least 1; moments: ``batch`` rows) and per path (float64 state; float32 blocks beside it), the same
random activations go through

- **previous**: the update as it was before the one-pass form -- the batch centred on its own mean
  (two passes), Chan's correction appended as a pseudo-sample, ``b + 1`` in-place products per pair block
  on chunks of 1 MB (kept here as a reference copy, :class:`_Previous`);
- **current**: :meth:`augsens.core.estimate._base.CoMomentAccumulator._chan_update` as it is, with
  ``CHUNK_BYTES`` and ``SQUARES_CHUNK_BYTES`` as shipped and, for ``--chunk-mb``, both as given.

All variants run in alternating rounds in one process (so load from other processes hits them alike); the
median time per update and the ratio previous / current are printed, with the largest relative difference
of the co-moments between the two (the float64 path agrees to rounding).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

import augsens.core.estimate._base as base

sys.path.insert(0, str(Path(__file__).parent))
from throughput import KINDS, copy_bandwidth, update_cases  # noqa: E402

__all__ = ["main"]

_PREVIOUS_CHUNK_BYTES = 1 << 20
_PREVIOUS_LOOP_SAMPLES = 8


class _Previous:
    """The previous update (reference copy): centre the batch, append Chan's correction as a pseudo-sample
    ``sqrt(n_a n_b / n) δ``, accumulate ``b + 1`` products per block on 1 MB chunks."""

    def _chan_update(
        self: Any,
        count: torch.Tensor,
        mean: torch.Tensor,
        comoment: torch.Tensor,
        v: torch.Tensor,
        finite: torch.Tensor,
        shift: torch.Tensor | None = None,
    ) -> None:
        b, m, size = v.shape
        per_element = v.element_size() * ((b + 1) * m + m + len(self._left))
        step = size if v.device.type != "cpu" else max(256, _PREVIOUS_CHUNK_BYTES // per_element)
        for lo in range(0, size, step):
            c = slice(lo, lo + step)
            self._previous_chunk(
                count[c], mean[:, c], comoment[:, c], v[..., c], finite[:, c],
                None if shift is None else shift[:, c],
            )  # fmt: skip

    def _previous_chunk(
        self: Any,
        count: torch.Tensor,
        mean: torch.Tensor,
        com: torch.Tensor,
        v: torch.Tensor,
        finite: torch.Tensor,
        shift: torch.Tensor | None,
    ) -> None:
        b = v.shape[0]
        dtype = v.dtype
        n_b = finite.sum(0)
        d = torch.empty((b + 1, *v.shape[1:]), dtype=dtype, device=v.device)
        keep = finite[:, None, :]
        torch.where(keep, v if shift is None else v - shift, v.new_zeros(()), out=d[:b])
        mean_b = d[:b].sum(0) / n_b.clamp_min(1).to(dtype)
        d[:b].sub_(mean_b).mul_(keep)
        n_a = count
        n = n_a + n_b
        frac = torch.where(n > 0, n_b.to(dtype) / n.clamp_min(1).to(dtype), 0.0)
        delta = mean_b.sub_(mean)
        mean.addcmul_(delta, frac)
        torch.mul(delta, (n_a.to(dtype) * frac).sqrt_(), out=d[b])
        for anchor, partners, pair_ids in self._blocks:
            target = com[pair_ids]
            if b + 1 <= _PREVIOUS_LOOP_SAMPLES:
                for i in range(b + 1):
                    part = d[i, partners]
                    target.addcmul_(part if anchor is None else d[i, anchor], part)
            else:
                part = d[:, partners]
                target.add_((part * (part if anchor is None else d[:, anchor, None])).sum(0))
            if isinstance(pair_ids, list):
                com[pair_ids] = target
        count.copy_(n)


def _previous_class(cls: type) -> type:
    return type(f"_Previous{cls.__name__}", (_Previous, cls), {})


def _time(acc: Any, y: torch.Tensor, extra: tuple[Any, ...], chunk: int | None) -> float:
    saved = base.CHUNK_BYTES, base.SQUARES_CHUNK_BYTES
    if chunk is not None:
        base.CHUNK_BYTES = base.SQUARES_CHUNK_BYTES = chunk
    try:
        t = time.perf_counter()
        acc.update(y, *extra)
        return time.perf_counter() - t
    finally:
        base.CHUNK_BYTES, base.SQUARES_CHUNK_BYTES = saved


def run(
    outputs: int,
    factors: int,
    batches: list[int],
    act_dtype: torch.dtype,
    chunk_mb: list[float],
    rounds: int,
    max_state_mb: float = 512.0,
    kinds: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Median milliseconds per update for every kind (or those in ``kinds``), batch, path and variant
    (see the module docstring),
    with the roofline floor of ``benchmarks/throughput.py`` (activations in, one float64 replicate state in
    and out, at the copy bandwidth measured here) and the current update's fraction of it."""
    bandwidth = copy_bandwidth(torch.device("cpu"))
    print(f"copy bandwidth {bandwidth:.1f} GB/s (read + write)", flush=True)
    rows_out = []
    for case in update_cases(factors, outputs, max_state_mb, kinds):
        cls, kw = case.cls, case.keywords
        for batch in batches:
            b, y, extra = case.batch(batch, act_dtype, torch.device("cpu"))
            for path, work in (("float64", None), ("float32 blocks", torch.float32)):
                variants: dict[str, tuple[Any, int | None]] = {
                    "previous": (_previous_class(cls)(**kw, work_dtype=work), None),
                    "current": (cls(**kw, work_dtype=work), None),
                }
                for mb in chunk_mb:
                    variants[f"current, {mb:g} MB chunks"] = (cls(**kw, work_dtype=work), int(mb * 2**20))
                for acc, chunk in variants.values():  # allocation and first touch, untimed
                    _time(acc, y, extra, chunk)
                times: dict[str, list[float]] = {k: [] for k in variants}
                for _ in range(rounds):
                    for name, (acc, chunk) in variants.items():
                        times[name].append(_time(acc, y, extra, chunk))
                rel = _difference(variants["previous"][0], variants["current"][0])
                med = {k: 1e3 * statistics.median(v) for k, v in times.items()}
                floor_ms = 1e3 * (y.numel() * y.element_size() + 2 * case.state_bytes) / (bandwidth * 1e9)
                rows_out.append(
                    {
                        "kind": case.kind,
                        "batch": batch,
                        "b": b,
                        "outputs": case.outputs,
                        "path": path,
                        "ms": med,
                        "ratio": {k: med["previous"] / v for k, v in med.items() if k != "previous"},
                        "max_rel_diff": rel,
                        "floor_ms": floor_ms,
                        "fraction_of_floor": floor_ms / med["current"],
                    }
                )
                print(_line(rows_out[-1]), flush=True)
    return rows_out


def _difference(a: Any, b: Any) -> float:
    """Largest difference of the co-moments ``C_ij`` of two accumulators, relative to ``sqrt(M2_i M2_j)``
    (a cross co-moment of independent outputs is near 0: its own size is no scale)."""
    com_a, com_b = a.comoment, b.comoment
    diag = {int(i): p for p, (i, j) in enumerate(zip(a._left, a._right, strict=True)) if i == j}
    if len(diag) < a._n_vars:  # Shapley kinds track the squares of one variable only: scale by it
        scale = com_a[:, [next(iter(diag.values()))]].abs()
    else:
        m2_left = com_a[:, [diag[int(i)] for i in a._left]]
        m2_right = com_a[:, [diag[int(j)] for j in a._right]]
        scale = (m2_left * m2_right).abs().sqrt()
    return float(((com_a - com_b).abs() / scale.clamp_min(1e-300)).max())


def _line(r: dict[str, Any]) -> str:
    ms = "  ".join(f"{k} {v:8.1f}" for k, v in r["ms"].items())
    ratio = "  ".join(f"{v:5.2f}x" for v in r["ratio"].values())
    return (
        f"{r['kind']:21s} batch {r['batch']:4d} (b {r['b']:3d}, {r['outputs']:,} outputs) {r['path']:14s} "
        f"ms: {ms}   previous/current: {ratio}   floor {r['floor_ms']:.1f} ms, current "
        f"{r['fraction_of_floor']:.3f} of it   max rel diff {r['max_rel_diff']:.1e}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--outputs", type=int, default=773_736, help="output elements (Lite0's checkpoints)")
    p.add_argument("--factors", type=int, default=7, help="D, the number of groups")
    p.add_argument("--batch", type=int, nargs="+", default=[32, 128], help="engine batch sizes (forwards)")
    p.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16", help="activations")
    p.add_argument("--chunk-mb", type=float, nargs="*", default=[], help="also run the current update "
                   "with these CHUNK_BYTES (MB)")  # fmt: skip
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, help="CPU threads of torch (default: torch's choice)")
    p.add_argument("--kinds", nargs="*", choices=list(KINDS), help="only these kinds")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    act = torch.bfloat16 if a.dtype == "bfloat16" else torch.float32
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, activations {a.dtype}, "
        f"D = {a.factors}, CHUNK_BYTES {base.CHUNK_BYTES / 2**20:g} MB, "
        f"SQUARES_CHUNK_BYTES {base.SQUARES_CHUNK_BYTES / 2**20:g} MB "
        f"(previous: {_PREVIOUS_CHUNK_BYTES / 2**20:g} MB); "
        f"medians of {a.rounds} alternating rounds"
    )
    run(a.outputs, a.factors, a.batch, act, a.chunk_mb, a.rounds, kinds=a.kinds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

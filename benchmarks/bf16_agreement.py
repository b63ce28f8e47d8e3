"""Indices from bfloat16 autocast + channels_last against float32 on the same design, relative to their
95 % half-widths.

Usage::

    python benchmarks/bf16_agreement.py [MODEL ...] [--n 256] [--threads K] [--json FILE]

For each MODEL (default: ``efficientnet_lite0`` with its real weights, the quick demo study, and
``resnet18`` with random weights on the same study) the script runs the quick demo study (Sobol, hue,
horizontal flip, rotation and the image; 4 replicates; ``n`` base samples, no precision target and no
time limit) twice on the same design and seed: float32 NCHW, then bfloat16 autocast + channels_last.
It compares, per element and per checkpoint (the ``*_checkpoint`` aggregates), the bf16 indices with the
float32 ones in units of the float32 95 % half-width ``*_conf``:

* ``|S_bf16 - S_f32| / conf_f32``: median, 99th percentile and maximum over the elements where both are
  defined, and the share above 1 (outside the half-width);
* elements defined in float32 but NaN in bf16: their spread is below bf16's rounding level of their mean
  (the zero-variance rule of :mod:`augsens.core.estimate`), so bf16 cannot resolve them.

Differences well inside the half-widths (99th percentile far below 1) mean bf16 changes the answer less
than the Monte Carlo error already does.  Also printed: the forwards per second of each run (noisy on a
shared machine; ``benchmarks/throughput.py`` measures speed side by side).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from augsens.config import StudyConfig
from augsens.demo import QUICK_AUGMENTATIONS, QUICK_CHECKPOINTS
from augsens.engine.study import Study

__all__ = ["compare", "main"]

_INDICES = ("S1", "ST")


def _config(model: str, n: int, dtype: str) -> StudyConfig:
    lite0 = model == "efficientnet_lite0"
    return StudyConfig.from_dict(
        {
            "model": {
                "name": model,
                "weights": "default" if lite0 else "random",
                **({"checkpoints": QUICK_CHECKPOINTS} if lite0 else {}),
            },
            "images": {"source": "bundled"},
            "study": {
                "kind": "sobol",
                "augmentations": QUICK_AUGMENTATIONS,
                "replicates": 4,
                "seed": 0,
                "n": n,
            },
            "run": {
                "batch_size": 32,
                "device": "cpu",
                "dtype": dtype,
                "channels_last": dtype == "bfloat16",
                "state_dtype": "float64",
            },
        },
        source="benchmark",
    )


def _ratios(low: xr.DataArray, ref: xr.DataArray, conf: xr.DataArray) -> dict[str, float]:
    a, b, c = (np.asarray(x.values, dtype=np.float64).ravel() for x in (low, ref, conf))
    both = np.isfinite(a) & np.isfinite(b) & np.isfinite(c) & (c > 0)
    r = np.abs(a[both] - b[both]) / c[both]
    lost = np.isfinite(b) & ~np.isfinite(a)
    return {
        "elements": int(both.sum()),
        "median": float(np.median(r)) if r.size else float("nan"),
        "p99": float(np.quantile(r, 0.99)) if r.size else float("nan"),
        "max": float(r.max()) if r.size else float("nan"),
        "outside": float((r > 1).mean()) if r.size else float("nan"),
        "nan_in_bf16_only": int(lost.sum()),
        "max_abs_diff": float(np.abs(a[both] - b[both]).max()) if r.size else float("nan"),
    }


def compare(model: str, n: int = 256) -> dict[str, Any]:
    """Run the study in both dtypes and compare its indices; returns the figures by checkpoint."""
    trees, rates = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("float32", "bfloat16"):
            tree = Study(_config(model, n, dtype), progress=False).run(Path(tmp) / dtype)
            assert tree is not None
            trees[dtype] = tree
            rates[dtype] = float(tree.attrs["forwards_per_s"])
    ref, low = trees["float32"], trees["bfloat16"]
    out: dict[str, Any] = {"model": model, "n": n, "forwards_per_s": rates, "checkpoints": {}}
    for c in ref.children:
        a, b = low[c].dataset, ref[c].dataset
        row = {}
        for name in _INDICES:
            row[name] = _ratios(a[name], b[name], b[f"{name}_conf"])
            row[f"{name}_checkpoint"] = _ratios(
                a[f"{name}_checkpoint"], b[f"{name}_checkpoint"], b[f"{name}_conf_checkpoint"]
            )
        out["checkpoints"][c] = row
    return out


def _report(r: dict[str, Any]) -> str:
    rates = r["forwards_per_s"]
    lines = [
        f"{r['model']}: n = {r['n']}, forwards/s float32 {rates['float32']:.1f}, "
        f"bf16 + channels_last {rates['bfloat16']:.1f}",
        f"  {'checkpoint':14s} {'index':15s} {'elements':>9s} {'median':>7s} {'p99':>7s} {'max':>7s} "
        f"{'>1':>7s} {'NaN bf16':>9s}   (|S_bf16 - S_f32| / half-width_f32)",
    ]
    for c, row in r["checkpoints"].items():
        for name, s in row.items():
            lines.append(
                f"  {c:14s} {name:15s} {s['elements']:9d} {s['median']:7.3f} {s['p99']:7.3f} {s['max']:7.3f} "
                f"{100 * s['outside']:6.2f}% {s['nan_in_bf16_only']:9d}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="*", default=["efficientnet_lite0", "resnet18"])
    p.add_argument("--n", type=int, default=256, help="base samples (a power of 2)")
    p.add_argument("--threads", type=int, help="CPU threads of torch (default: torch's choice)")
    p.add_argument("--json", help="also write the figures to this JSON file")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    results = []
    for model in a.models:
        r = compare(model, a.n)
        print(_report(r), flush=True)
        results.append(r)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

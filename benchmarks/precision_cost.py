"""Forwards each study kind needs for a per-element precision on EfficientNet-Lite0 (set 2).

For each kind, a study of ``n`` and one of ``2 n`` base samples (bundled photos, set 2, the quick demo's
checkpoints, ``R`` replicates) give the precision of :data:`augsens.core.precision.PRECISION_RULE` (the
95th percentile over elements and factors of the 95 % half-widths) and the median half-width.  Half-widths
shrink as ``1/√n``, so the base samples for a target ``h`` are ``n (p_n / h)^2``, extrapolated from the
larger run, and the forwards are that times the rows per base sample.  The ratio ``p_n / p_2n`` (ideally
``√2 = 1.41``) says how well the law holds at these sizes.

Usage: ``python benchmarks/precision_cost.py [--n 16] [--kinds sobol shapley-permutation]
[--targets 0.1 0.05] [--json FILE]`` (minutes on two CPU cores).
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np

from augsens.config import StudyConfig
from augsens.core.design import QMCSmallSampleWarning
from augsens.core.precision import precision_of
from augsens.demo import QUICK_CHECKPOINTS
from augsens.engine.study import Study

KINDS = {
    "sobol": {"kind": "sobol"},
    "shapley-permutation": {"kind": "shapley", "shapley_method": "permutation"},
    "shapley-exact": {"kind": "shapley", "shapley_method": "exact"},
}
MEASURES = ("S1", "ST", "shapley")


def run(kind: str, n: int, replicates: int, batch: int) -> dict[str, float]:
    cfg = StudyConfig.from_dict(
        {
            "model": {"name": "efficientnet_lite0", "checkpoints": QUICK_CHECKPOINTS},
            "study": {"augmentations": "set2", "n": n, "replicates": replicates, **KINDS[kind]},
            "run": {"device": "cpu", "batch_size": batch},
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QMCSmallSampleWarning)
        study = Study(cfg, progress=False)
        t0 = time.monotonic()
        state = study.new_state()
        study.accumulate(state, 0, study.plan.n)
        seconds = time.monotonic() - t0
    tree = study.finalize(state)
    nodes = [tree[c].dataset for c in study.checkpoints]
    halves = np.concatenate(
        [ds[f"{m}_conf"].values.reshape(-1) for ds in nodes for m in MEASURES if f"{m}_conf" in ds]
    )
    halves = halves[np.isfinite(halves)]
    return {
        "n": n,
        "rows": study.plan.rows,
        "forwards": n * study.plan.rows,
        "precision": float(precision_of(nodes)),
        "median": float(np.median(halves)),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--replicates", type=int, default=4)
    parser.add_argument("--kinds", nargs="+", default=["sobol", "shapley-permutation"], choices=list(KINDS))
    parser.add_argument("--targets", type=float, nargs="+", default=[0.1, 0.05])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out = {}
    for kind in args.kinds:
        small, large = (run(kind, n, args.replicates, args.batch_size) for n in (args.n, 2 * args.n))
        need = {}
        for target in args.targets:
            base = math.ceil(large["n"] * (large["precision"] / target) ** 2)
            need[str(target)] = {"n": base, "forwards": base * large["rows"]}
        out[kind] = {
            "small": small,
            "large": large,
            "law_ratio": round(small["precision"] / large["precision"], 3),
            "needed": need,
        }
        print(json.dumps({kind: out[kind]}, indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

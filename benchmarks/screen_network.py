"""Screen, then quantify, on EfficientNet-Lite0: forwards spent and leading factors kept.

Runs, on the bundled photos and the paper's twelve augmentations (sets 1 and 2):

1. a full Sobol' study of all factors (``n`` base samples, ``n (D + 2)`` forwards);
2. ``augsens screen``'s workflow (:func:`augsens.engine.screen.screen_then_quantify`): a Morris
   screening of ``r`` trajectories (``r (D + 1)`` forwards), then the same Sobol' study on the
   augmentations that pass the cut-off.

and prints, per checkpoint, the augmentation with the largest aggregated total index (``ST_checkpoint``)
in each, whether the full study separates it from the runner-up (95 % intervals), the screening's own
ranking (``mu_star_checkpoint``: leader, top three, Spearman correlation with the full study's ``ST``,
ratios to the leader) and the forwards of both routes.  When every augmentation is kept, the
quantification has the full study's config and seed, and its results are the full study's.  The JSON
written to ``--out/summary.json`` holds every number the docs quote.

Usage: ``python benchmarks/screen_network.py --out /tmp/screen-bench [--n 32] [--trajectories 16]``
(several minutes on two CPU cores; a GPU makes larger ``n`` affordable).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import stats

from augsens.augment.registry import SET1, SET2
from augsens.config import StudyConfig
from augsens.core.design import QMCSmallSampleWarning
from augsens.demo import QUICK_CHECKPOINTS
from augsens.engine.inputs import load_images, load_model
from augsens.engine.quick import run_study
from augsens.engine.screen import screen_then_quantify


def leaders(tree: xr.DataTree, augmentations: list[str]) -> dict[str, dict[str, object]]:
    """Per checkpoint: the augmentation with the largest ST_checkpoint, its value, the runner-up and
    whether their 95 % intervals are apart."""
    out = {}
    for c in json.loads(tree.attrs["checkpoints"]):
        ds = tree[c].dataset
        st = ds["ST_checkpoint"].sel(factor=augmentations)
        conf = ds["ST_conf_checkpoint"].sel(factor=augmentations)
        order = np.argsort(-np.nan_to_num(st.values, nan=-np.inf))
        a, b = order[0], order[1]
        out[c] = {
            "leader": augmentations[a],
            "ST": round(float(st.values[a]), 4),
            "conf": round(float(conf.values[a]), 4),
            "runner_up": augmentations[b],
            "separated": bool(st.values[a] - conf.values[a] > st.values[b] + conf.values[b]),
            "top3": [augmentations[i] for i in order[:3]],
        }
    return out


def screening_ranks(screened: xr.DataTree, full: xr.DataTree, augmentations: list[str]) -> dict[str, object]:
    """Per checkpoint: the screening's leader and top three by ``mu_star_checkpoint``, and the Spearman
    correlation of ``mu_star_checkpoint`` with the full study's ``ST_checkpoint`` over the augmentations."""
    out = {}
    for c in json.loads(full.attrs["checkpoints"]):
        st = full[c].dataset["ST_checkpoint"].sel(factor=augmentations).values
        mu = screened[c].dataset["mu_star_checkpoint"].sel(factor=augmentations).values
        order = np.argsort(-mu)
        out[c] = {
            "leader": augmentations[order[0]],
            "top3": [augmentations[i] for i in order[:3]],
            "spearman_with_full_ST": round(float(stats.spearmanr(st, mu).statistic), 3),
            "ratio_to_leader": {
                a: round(float(m / mu.max()), 3) for a, m in zip(augmentations, mu, strict=True)
            },
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--trajectories", type=int, default=16)
    parser.add_argument("--replicates", type=int, default=4)
    parser.add_argument("--cutoff", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    warnings.simplefilter("ignore", QMCSmallSampleWarning)  # small n is the point: minutes on a CPU
    augmentations = [*SET1, *SET2]
    cfg = StudyConfig.from_dict(
        {
            "model": {"name": "efficientnet_lite0", "checkpoints": QUICK_CHECKPOINTS},
            "study": {
                "kind": "sobol",
                "augmentations": augmentations,
                "n": args.n,
                "replicates": args.replicates,
            },
            "run": {"device": "cpu", "batch_size": args.batch_size},
        }
    )
    model = load_model(cfg.model, device=cfg.run.device, mode="clean")
    images = load_images(cfg.images, device=cfg.run.device)
    t0 = time.monotonic()
    full = run_study(cfg, args.out / "full", model=model, images=images, overwrite=True, progress=False)
    t_full = time.monotonic() - t0
    t0 = time.monotonic()
    screened, quantified = screen_then_quantify(
        cfg,
        args.out / "two-step",
        trajectories=args.trajectories,
        cutoff=args.cutoff,
        model=model,
        images=images,
        overwrite=True,
        progress=False,
    )
    t_two = time.monotonic() - t0
    record = json.loads(quantified.attrs["screening"])
    kept = record["kept"]
    full_lead, two_lead = leaders(full, augmentations), leaders(quantified, kept)
    summary = {
        "n": args.n,
        "trajectories": args.trajectories,
        "replicates": args.replicates,
        "full_forwards": int(full.attrs["forwards"]),
        "full_seconds": round(t_full, 1),
        "two_step_forwards": record["forwards"],
        "two_step_seconds": round(t_two, 1),
        "screen_forwards": record["screen_forwards"],
        "quantify_forwards": record["quantify_forwards"],
        "kept": kept,
        "dropped": record["dropped"],
        "ratio": record["ratio"],
        "full": full_lead,
        "two_step": two_lead,
        "same_leader": {c: full_lead[c]["leader"] == two_lead[c]["leader"] for c in full_lead},
        "screening": screening_ranks(screened, full, augmentations),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

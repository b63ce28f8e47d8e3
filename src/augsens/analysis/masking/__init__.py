"""Guided masking: scale a network's activations by its own sensitivity maps and watch the predictions.

For a sensitivity measure (``S1``, ``ST`` or ``shapley``) and a factor ``v``, the map of ``v`` at each
convolutional checkpoint becomes a multiplicative mask of that checkpoint's output.  All checkpoints
are masked at once, through forward hooks.  Seventeen configurations per (measure, factor), as in the
paper's experiment 3a (``docs/paper.md`` §11):

* **quantile masks** (15): activations whose sensitivity is at or above the ``q``-quantile of the
  checkpoint's whole map are multiplied by ``alpha``, the others are left alone;
  ``q`` in {0.5, ..., 0.9}, ``alpha`` in {0, 0.5, 1.5};
* **soft masks** (2): every activation is multiplied by its sensitivity ``S``, or by ``1 - S``.

Sensitivities are clipped to [0, 1] (NaN, the index of an activation that never varied, counts as 0),
as the authors clipped theirs.  Thresholds are computed once per map, not per forward.

The masked predictions then feed three analyses: accuracy per (input augmentation, measure, mask
factor, configuration); the Spearman correlation between each 17-configuration accuracy profile and
the profile on the original input, with a hierarchical clustering of all profiles; and the single-class
Jaccard indices of :mod:`augsens.analysis.single_class`.

Contents
--------
:mod:`.masks`      mask algebra: MaskConfig and mask_configs (one configuration, and the standard 17),
                   mask_multiplier (one mask on one map), MaskSet (stacked masks for several checkpoints:
                   one row per (measure, factor, config))
:mod:`.guided`     GuidedMasking: predictions under every row of a MaskSet through forward hooks, sharing
                   the unmasked prefix
:mod:`.profiles`   spearman_profiles (Spearman correlation along the configuration axis) and
                   cluster_profiles (average-linkage clustering on sqrt(1 - |rho|))
:mod:`.run`        run_masking: masked predictions on the original and augmented images of one folder
:mod:`.report`     guided_masking_report: the whole analysis on results folders as CSV tables, PNG
                   figures and an HTML section

The public names of masks, guided, profiles and report are importable from ``augsens.analysis.masking``.

References
----------
Kharyuk, Matveev & Oseledets, arXiv:2503.03283, sections on guided masking and single-class analysis.
"""

from augsens.analysis.masking.guided import GuidedMasking
from augsens.analysis.masking.masks import (
    ALPHAS,
    MEASURES,
    QUANTILES,
    MaskConfig,
    MaskRow,
    MaskSet,
    mask_configs,
    mask_multiplier,
)
from augsens.analysis.masking.profiles import ProfileClusters, cluster_profiles, spearman_profiles
from augsens.analysis.masking.report import MaskingReport, guided_masking_report

__all__ = [
    "MEASURES",
    "QUANTILES",
    "ALPHAS",
    "MaskConfig",
    "MaskRow",
    "mask_configs",
    "mask_multiplier",
    "MaskSet",
    "GuidedMasking",
    "spearman_profiles",
    "ProfileClusters",
    "cluster_profiles",
    "MaskingReport",
    "guided_masking_report",
]

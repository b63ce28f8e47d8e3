"""Screen, then quantify: elementary effects of every augmentation, then Sobol or Shapley on the ones that
matter.

A Sobol' study costs ``n (D + 2)`` forwards and an exact Shapley study ``n 2^D``; a Morris screening
costs ``r (D + 1)`` for ``r`` trajectories.  :func:`screen_then_quantify` runs the screening
(``kind = "morris"``, the config's augmentations, ``r`` trajectories) into ``OUT/screen``, keeps the
augmentations that pass the cut-off (:func:`select`) and runs the config's own study on them alone into
``OUT/quantify``; the others are not applied there (fixed at the identity, as a screened-out factor is
fixed at a nominal value).  The auxiliary factors (image, composition order, partition) are never
screened out.

The cut-off (:data:`RULE`): an augmentation is kept when, at some checkpoint, the upper end of the 95 %
interval of its aggregated ``mu_star`` reaches ``cutoff`` times the largest augmentation's ``mu_star``
there.  ``mu_star`` ranks factors as the total Sobol' index does (Campolongo, Cariboni & Saltelli 2007),
and for an effect linear in the factor ``ST_j / ST_lead = (mu_star_j / mu_star_lead)^2``: the default
``cutoff = 0.1`` drops augmentations whose total index is under about 1 % of the leader's at every
checkpoint.  The upper end of the interval (not the point estimate) decides, so an augmentation is
dropped only when the screening is confident it is small.  The rule, the cut-off, each augmentation's
largest ratio and the forwards of both steps are written into both results (root attribute
``screening``, JSON) and ``OUT/screening.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from augsens.config import ConfigError, StudyConfig
from augsens.core.kinds import KINDS, foreign_keys, kinds_where, or_list
from augsens.data import ImageCache
from augsens.models import LoadedModel
from augsens.schema import ResultsInfo

__all__ = ["screen_then_quantify", "select", "RULE", "DEFAULT_CUTOFF", "DEFAULT_TRAJECTORIES"]

#: Augmentations kept below this share of the leader's mu_star (upper 95 % end) at every checkpoint
#: are dropped: about 1 % of its total index for linear effects (module docstring).
DEFAULT_CUTOFF = 0.1
#: Trajectories of the screening by default (``r``: the screening costs ``r (D + 1)`` forwards).
DEFAULT_TRAJECTORIES = 32
#: The cut-off rule, recorded in the results.
RULE = (
    "keep an augmentation if, at some checkpoint, (mu_star + its 95 % half-width) / (largest augmentation "
    "mu_star) >= cutoff, with mu_star aggregated over the checkpoint's activations; mu_star ranks factors "
    "as the total Sobol index does (Campolongo et al. 2007) and, for a linear effect, "
    "ST_j / ST_lead = (mu_star_j / mu_star_lead)^2, so cutoff 0.1 drops augmentations below about 1 % of "
    "the leader's total index everywhere; auxiliary factors (image, order, partition) are always kept"
)


def select(tree: xr.DataTree, augmentations: Sequence[str], cutoff: float) -> dict[str, Any]:
    """Apply the cut-off to a Morris study's aggregated ``mu_star``.

    Parameters
    ----------
    tree : xarray.DataTree
        Results of a ``kind = "morris"`` study (``mu_star_checkpoint`` per checkpoint).
    augmentations : sequence of str
        The screened factors (the study's augmentations); other factors are not judged.
    cutoff : float
        Share of the leading augmentation's ``mu_star`` (in ``(0, 1]``).

    Returns
    -------
    dict
        ``kept`` and ``dropped`` (augmentation names, in study order), ``ratio`` (per augmentation, the
        largest ratio of the upper 95 % end of its ``mu_star`` to the leader's over the checkpoints),
        ``leaders`` (per checkpoint, the augmentation with the largest ``mu_star``), ``cutoff`` and
        ``rule``.
    """
    if not 0 < cutoff <= 1:
        raise ConfigError(f"cutoff = {cutoff!r} must be a share of the leader's mu_star in (0, 1], e.g. 0.1")
    names = list(augmentations)
    best = dict.fromkeys(names, 0.0)
    leaders = {}
    checkpoints = [
        c for c in ResultsInfo.from_attrs(tree.attrs).checkpoints if "mu_star_checkpoint" in tree[c].dataset
    ]
    if not checkpoints:
        raise ConfigError("the screening results hold no mu_star_checkpoint: not a kind = 'morris' study")
    for c in checkpoints:
        ds = tree[c].dataset
        mu = ds["mu_star_checkpoint"].sel(factor=names).values
        conf = (
            ds["mu_star_conf_checkpoint"].sel(factor=names).values
            if "mu_star_conf_checkpoint" in ds
            else None
        )
        upper = mu + (np.nan_to_num(conf) if conf is not None else 0.0)
        lead = np.nanmax(mu) if np.isfinite(mu).any() else np.nan
        if not np.isfinite(lead) or lead <= 0:
            continue  # nothing moves this checkpoint: no augmentation can be ranked there
        leaders[c] = names[int(np.nanargmax(mu))]
        for name, u in zip(names, upper, strict=True):
            if np.isfinite(u):
                best[name] = max(best[name], float(u / lead))
    kept = [a for a in names if best[a] >= cutoff]
    return {
        "rule": RULE,
        "cutoff": cutoff,
        "kept": kept,
        "dropped": [a for a in names if a not in kept],
        "ratio": {a: round(best[a], 6) for a in names},
        "leaders": leaders,
    }


def _with_study(config: StudyConfig, **study: Any) -> StudyConfig:
    """A validated copy of ``config`` with some ``[study]`` keys replaced."""
    data = config.to_dict()
    data["study"].update(study)
    return StudyConfig.from_dict(data, source="screen")


def _run_or_reuse(config: StudyConfig, folder: Path, *, overwrite: bool, **run: Any) -> xr.DataTree:
    """The results of ``config`` in ``folder``: read back when a finished run of the same config is
    there, else run (resuming an interrupted run of it; a different one only with ``overwrite``)."""
    from augsens.engine.quick import run_study
    from augsens.engine.state import comparable_config
    from augsens.preflight import STATE_DIR
    from augsens.results import is_results_dir, open_results

    # the results hold the config as it ran ([run] channels_last = "auto" resolved, for one)
    same = (
        is_results_dir(folder)
        and not (folder / STATE_DIR).exists()
        and comparable_config(open_results(folder).attrs.get("config", "{}"))
        == comparable_config(config.to_json())
    )
    if same and not overwrite:
        return open_results(folder).load()
    return run_study(config, folder, resume="auto", overwrite=overwrite, **run)


def _record(folder: Path, screening: dict[str, Any]) -> None:
    """Write the screening record into the root attributes of ``folder``'s results (rewritten whole)."""
    from augsens.results import open_results, write_results

    tree = open_results(folder).load()
    tree.attrs["screening"] = json.dumps(screening)
    write_results(tree, folder)


def screen_then_quantify(
    config: StudyConfig,
    out: str | os.PathLike,
    *,
    trajectories: int = DEFAULT_TRAJECTORIES,
    cutoff: float = DEFAULT_CUTOFF,
    model: LoadedModel | None = None,
    images: ImageCache | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> tuple[xr.DataTree, xr.DataTree]:
    """Screen the config's augmentations with elementary effects, then run its study on those kept.

    Parameters
    ----------
    config : StudyConfig
        The study to run on the augmentations that matter (``kind`` sobol or shapley; its ``n``,
        ``replicates``, seed, model, images...).  The screening uses the same config with
        ``kind = "morris"`` and ``n = trajectories``.
    out : path
        Folder: ``out/screen`` and ``out/quantify`` (results folders) and ``out/screening.json``.
    trajectories : int, default 32
        Trajectories ``r`` of the screening (a multiple of ``replicates``; with the Sobol' design,
        ``r / replicates`` a power of 2).
    cutoff : float, default 0.1
        See :func:`select` and the module docstring.
    model, images : optional
        Loaded once and used by both steps (otherwise each step loads them from the config).
    overwrite : bool, default False
        Replace results already in ``out/screen`` and ``out/quantify``; without it an interrupted step
        resumes, and a finished screening is reused when its config is the same.
    progress : bool, default True

    Returns
    -------
    (DataTree, DataTree)
        The screening and the quantification results, each with the root attribute ``screening``.

    Raises
    ------
    ConfigError
        ``kind`` is not sobol or shapley, a bad cut-off or number of trajectories.
    """
    from augsens.engine.factors import resolve_augmentations
    from augsens.results import open_results

    if not KINDS[config.study.kind].rounds:
        raise ConfigError(
            f"screen: [study] kind = {config.study.kind!r}; the study after the screening must be "
            + or_list(kinds_where(rounds=True))
        )
    if not 0 < cutoff <= 1:
        raise ConfigError(f"cutoff = {cutoff!r} must be a share of the leader's mu_star in (0, 1], e.g. 0.1")
    augmentations = list(resolve_augmentations(config.study.augmentations))
    defaults = type(config.study)()
    # the screening has no precision target and its own size, and no key only other kinds read; every
    # other key is the study's
    unread = [*foreign_keys("morris", "study"), "precision", "max_n", "time_limit"]
    screen_cfg = _with_study(
        config, kind="morris", n=trajectories, **{key: getattr(defaults, key) for key in unread}
    )
    root = Path(out)
    screen_dir, quantify_dir = root / "screen", root / "quantify"
    run: dict[str, Any] = {"model": model, "images": images, "overwrite": overwrite, "progress": progress}
    screened = _run_or_reuse(screen_cfg, screen_dir, **run)
    choice = select(screened, augmentations, cutoff)
    quantify_cfg = _with_study(config, augmentations=choice["kept"])
    quantified = _run_or_reuse(quantify_cfg, quantify_dir, **run)
    record = {
        **choice,
        "trajectories": trajectories,
        "screen_forwards": int(screened.attrs["forwards"]),
        "quantify_forwards": int(quantified.attrs["forwards"]),
        "quantify_kind": config.study.kind,
        "screened": augmentations,
    }
    record["forwards"] = record["screen_forwards"] + record["quantify_forwards"]
    for folder in (screen_dir, quantify_dir):
        _record(folder, record)
    (root / "screening.json").write_text(json.dumps(record, indent=2) + "\n")
    return open_results(screen_dir), open_results(quantify_dir)

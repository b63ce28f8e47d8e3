"""Several studies side by side: depth profiles on a shared relative-depth axis, which factor dominates
where, and per-checkpoint differences between runs with their uncertainty.

The runs may differ in network, weights, images or mode.  Each checkpoint sits at its relative depth
(0 = input, 1 = output: the share of the network's weighted layers run before it, recorded by the study;
results written before that was recorded get evenly spaced depths ``(i + 1) / k``), so networks of
different lengths share one axis.  The quantities compared are the aggregated indices of whole checkpoints
(``<measure>_checkpoint``: summed numerators over summed variances) with their 95 % half-widths
(``<measure>_conf_checkpoint``, from the study's independent replicates).

Two independent runs' estimates at a shared checkpoint differ by ``d = a - b`` with half-width
``sqrt(h_a^2 + h_b^2)``: the half-widths are t-quantiles times standard errors, and the variances of
independent estimates add (exact when both runs have the same number of replicates, close otherwise).
A difference whose interval excludes 0 is marked ``significant``.  Runs on the *same* network and images
with the same seed are not independent; their intervals are then conservative.

Examples
--------
>>> import torch, augsens as ag
>>> kw = dict(augmentations=["hflip", "grayscale"], n=8, replicates=2, checkpoints=["act", "fc"])
>>> kw.update(device="cpu", progress=False)
>>> a = ag.study("augsens.testing:tiny_cnn", torch.rand(3, 3, 224, 224), **kw)
>>> b = ag.study("augsens.testing:tiny_cnn", torch.rand(3, 3, 224, 224), seed=1, **kw)
>>> result = ag.compare([a, b], labels=["a", "b"])
>>> sorted(result.profiles.columns)
['checkpoint', 'conf', 'depth', 'factor', 'measure', 'run', 'value']
>>> sorted(set(result.differences["checkpoint"]))
['act', 'fc']
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from augsens.errors import MissingFileError, UserInputError
from augsens.schema import Results, ResultsInfo, find_results, read_results

if TYPE_CHECKING:
    from augsens.plot.sections import Section

__all__ = ["compare", "Comparison", "MEASURES"]

#: sensitivity measures compared, in this order
MEASURES = ("S1", "ST", "shapley")


@dataclass
class Comparison:
    """What :func:`compare` found.

    Attributes
    ----------
    runs : dict of str to DataTree
        The results trees, by label.
    profiles : pandas.DataFrame
        One row per run, checkpoint, measure and factor: ``depth`` (relative, 0 = input, 1 = output),
        ``value`` (the aggregated index) and ``conf`` (its 95 % half-width; NaN without replicates).
    dominance : pandas.DataFrame
        One row per run, checkpoint and measure: the ``factor`` with the largest aggregated index, its
        ``value``, the ``runner_up`` and its value, ``separated``: whether the two intervals are
        disjoint (so the ranking is not noise), and the strongest ``augmentation`` with its
        ``augmentation_value`` (auxiliary factors such as ``image`` and ``order`` left out).
    differences : pandas.DataFrame
        One row per pair of runs, shared checkpoint, measure and shared factor: ``value_a``, ``value_b``,
        ``difference`` (a - b), its 95 % half-width ``conf`` and ``significant`` (interval excludes 0).
    files : list of Path
        CSV tables and PNG figures written (empty without ``out``).
    page : Path or None
        The HTML page (``out/compare.html``), or None without ``out``.
    section : Section or None
        The comparison as a report section (what ``compare.html`` shows), or None without ``out``.
    """

    runs: dict[str, xr.DataTree]
    profiles: pd.DataFrame
    dominance: pd.DataFrame
    differences: pd.DataFrame
    files: list[Path] = field(default_factory=list)
    page: Path | None = None
    section: Section | None = None

    @property
    def infos(self) -> dict[str, ResultsInfo]:
        """Each run's root attributes, decoded."""
        return {run: ResultsInfo.from_attrs(tree.attrs) for run, tree in self.runs.items()}


def _trees(
    results: Sequence[str | os.PathLike | xr.DataTree], labels: Sequence[str] | None
) -> dict[str, xr.DataTree]:
    found: list[tuple[str, xr.DataTree]] = []
    for item in results:
        if isinstance(item, xr.DataTree):
            found.append((read_results(item).name, item))
            continue
        folders = find_results(Path(item))
        if not folders:
            raise MissingFileError(
                f"no augsens results in {os.fspath(item)!r} (expected results.zarr in it or its "
                "sub-folders): give folders written by `augsens run` or ag.study(..., out=...)"
            )
        found += [(d.name, read_results(d).tree) for d in folders]
    if len(found) < 2:
        raise UserInputError(f"compare needs at least two results, got {len(found)}: give two or more")
    if labels is not None:
        if len(labels) != len(found):
            raise UserInputError(
                f"{len(labels)} labels for {len(found)} results: give one label per results tree "
                f"(found {[name for name, _ in found]!r})"
            )
        names = [str(label) for label in labels]
    else:
        names = [name for name, _ in found]
    # the same name twice (two runs of one model): number them in order
    counts = {n: names.count(n) for n in names}
    seen: dict[str, int] = {}
    unique = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        unique.append(f"{n} ({seen[n]})" if counts[n] > 1 else n)
    return {n: tree for n, (_, tree) in zip(unique, found, strict=True)}


def _checkpoints(tree: xr.DataTree) -> list[str]:
    return list(Results.of(tree).checkpoints)


def relative_depths(tree: xr.DataTree) -> dict[str, float]:
    """Relative depth of each checkpoint: recorded by the study, else evenly spaced ``(i + 1) / k``."""
    return Results.of(tree).depths()


def _profiles(runs: dict[str, xr.DataTree], measures: Sequence[str]) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for run, tree in runs.items():
        depth = relative_depths(tree)
        for c in _checkpoints(tree):
            ds = tree[c].dataset
            for m in measures:
                key = f"{m}_checkpoint"
                if key not in ds:
                    continue
                conf = ds.get(f"{m}_conf_checkpoint")
                for f in ds["factor"].values:
                    h = float(conf.sel(factor=f)) if conf is not None else np.nan
                    value = float(ds[key].sel(factor=f))
                    rows.append(
                        dict(
                            run=run,
                            checkpoint=c,
                            depth=depth[c],
                            measure=m,
                            factor=str(f),
                            value=value,
                            conf=h,
                        )
                    )
    return pd.DataFrame(rows, columns=["run", "checkpoint", "depth", "measure", "factor", "value", "conf"])


def _dominance(profiles: pd.DataFrame, runs: dict[str, xr.DataTree]) -> pd.DataFrame:
    augmentations = {run: set(ResultsInfo.from_attrs(t.attrs).augmentations) for run, t in runs.items()}
    rows = []
    for (run, checkpoint, measure), g in profiles.groupby(["run", "checkpoint", "measure"], sort=False):
        ranked = g.sort_values("value", ascending=False)
        top = ranked.iloc[0]
        second = ranked.iloc[1] if len(ranked) > 1 else None
        separated = bool(
            second is not None
            and np.isfinite(top["conf"])
            and np.isfinite(second["conf"])
            and top["value"] - top["conf"] > second["value"] + second["conf"]
        )
        # the image factor often dominates everywhere; the strongest augmentation says more about the network
        augs = ranked[ranked["factor"].isin(augmentations[run])]
        rows.append(
            dict(
                run=run,
                checkpoint=checkpoint,
                depth=top["depth"],
                measure=measure,
                factor=top["factor"],
                value=top["value"],
                runner_up=None if second is None else second["factor"],
                runner_up_value=np.nan if second is None else second["value"],
                separated=separated,
                augmentation=augs["factor"].iloc[0] if len(augs) else None,
                augmentation_value=augs["value"].iloc[0] if len(augs) else np.nan,
            )
        )
    return pd.DataFrame(rows)


def _differences(profiles: pd.DataFrame, runs: Sequence[str]) -> pd.DataFrame:
    columns = ["run_a", "run_b", "checkpoint", "measure", "factor", "value_a", "value_b", "difference"]
    frames = []
    for a, b in itertools.combinations(runs, 2):
        left = profiles[profiles["run"] == a]
        right = profiles[profiles["run"] == b]
        both = left.merge(right, on=["checkpoint", "measure", "factor"], suffixes=("_a", "_b"))
        if both.empty:
            continue
        both = both.assign(
            run_a=a,
            run_b=b,
            difference=both["value_a"] - both["value_b"],
            conf=np.sqrt(both["conf_a"] ** 2 + both["conf_b"] ** 2),
        )
        both["significant"] = both["difference"].abs() > both["conf"]  # False where conf is NaN
        frames.append(both[[*columns, "conf", "significant", "depth_a"]].rename(columns={"depth_a": "depth"}))
    if not frames:
        return pd.DataFrame(columns=[*columns, "conf", "significant", "depth"])
    return pd.concat(frames, ignore_index=True)


def compare(
    results: Sequence[str | os.PathLike | xr.DataTree],
    out: str | os.PathLike | None = None,
    *,
    labels: Sequence[str] | None = None,
    measures: Sequence[str] | None = None,
) -> Comparison:
    """Compare two or more studies: depth profiles, dominant factors, per-checkpoint differences.

    Parameters
    ----------
    results : sequence of path or DataTree
        Results folders (``augsens run`` / ``ag.study(..., out=...)``; a folder of results folders adds
        each of them) or results trees (``ag.study(...)``).
    out : path, optional
        Folder for ``compare.html`` (self-contained: figures embedded as PNG), the PNG figures and the CSV
        tables ``profiles.csv``, ``dominance.csv``, ``differences.csv``.  ``None``: tables only.
    labels : sequence of str, optional
        One name per run (default: folder names, or model and kind for trees).
    measures : sequence of str, optional
        Measures to compare among ``S1``, ``ST``, ``shapley`` (default: every one a run has; each is
        compared among the runs that have it).

    Returns
    -------
    Comparison

    Raises
    ------
    UserInputError
        Fewer than two runs, a label count that does not match, a measure no run has.
    FileNotFoundError
        A path that holds no results.
    """
    runs = _trees(results, labels)
    # a measure any run has is compared among the runs that have it (Sobol runs beside Shapley runs)
    available = [m for m in MEASURES if any(f"{m}_checkpoint" in _first(t) for t in runs.values())]
    if measures is None:
        chosen = available
    else:
        chosen = list(measures)
        missing = [m for m in chosen if m not in available]
        if missing:
            raise UserInputError(f"no run has the measures {missing!r}; these runs have {available!r}")
    if not chosen:
        raise UserInputError(
            "these results hold no aggregated sensitivity measure (S1, ST or shapley): compare sobol or "
            "shapley studies (moments studies have no indices)"
        )
    profiles = _profiles(runs, chosen)
    result = Comparison(runs, profiles, _dominance(profiles, runs), _differences(profiles, list(runs)))
    if out is not None:
        from augsens.plot.compare import write_comparison

        result.section, result.page = write_comparison(result, Path(out))
        result.files = list(result.section.files)
    return result


def _first(tree: xr.DataTree) -> xr.Dataset:
    cps = _checkpoints(tree)
    return tree[cps[0]].dataset if cps else xr.Dataset()

"""The guided-masking report: masking runs of results folders written as CSV tables, PNG figures and an
HTML section."""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from scipy.cluster import hierarchy

from augsens.analysis.masking.masks import ALPHAS, QUANTILES, MaskSet, mask_configs
from augsens.analysis.masking.profiles import ProfileClusters, cluster_profiles, spearman_profiles
from augsens.analysis.masking.run import MaskingRun, run_masking
from augsens.analysis.single_class import (
    JaccardThreshold,
    jaccard_threshold,
    plot_sensitivity_decay,
    sensitivity_table,
)
from augsens.errors import UserInputError
from augsens.plot.figures import save_figure
from augsens.schema import open_tree

__all__ = ["MaskingReport", "guided_masking_report"]

_DPI = 110  # resolution of the PNG figures


@dataclass
class MaskingReport:
    """What :func:`guided_masking_report` wrote.

    Attributes
    ----------
    tables : dict of str to Path
        CSV files by name (``accuracy``, ``jaccard_unmasked``, ``spearman``, ``clusters``,
        ``class_sensitivity``, ``jaccard_candidates``).
    figures : dict of str to Path
        PNG files by name.
    thresholds : dict of str to JaccardThreshold
        The single-class significance threshold per results folder label.
    html : str
        An HTML fragment (one ``<section>``) for the report; image paths are relative to ``out``.
    """

    tables: dict[str, Path] = field(default_factory=dict)
    figures: dict[str, Path] = field(default_factory=dict)
    thresholds: dict[str, JaccardThreshold] = field(default_factory=dict)
    html: str = ""


def guided_masking_report(
    results_dirs: Sequence[str | Path],
    model: Any,
    images: Any,
    out: str | Path,
    *,
    measures: Sequence[str] | None = None,
    quantiles: Sequence[float] = QUANTILES,
    alphas: Sequence[float] = ALPHAS,
    soft: bool = True,
    checkpoints: Sequence[str] | None = None,
    draws: int = 3,
    seed: int = 0,
    batch_size: int = 16,
    configs_per_forward: int | None = None,
    labels: Literal["auto"] | Sequence[int] | np.ndarray | None = "auto",
    k: int = 5,
    repeats: int = 1_000_000,
) -> MaskingReport:
    """Guided masking and single-class analysis of results folders on an image source.

    For each results folder: masks from every (measure, factor) at every convolutional checkpoint
    (:meth:`MaskSet.from_results`); predictions on the original images and on each augmentation that is
    a factor of the study, with ``draws`` parameter draws per image (counter-based: a draw depends only
    on ``(seed, augmentation, image index, draw)``); accuracy tables, Spearman heatmaps, profile
    clustering, and the single-class Jaccard analysis at the model's classifier checkpoint.

    Parameters
    ----------
    results_dirs : sequence of path
        Results folders (each holding ``results.zarr``) computed with this model.
    model : augsens.models.LoadedModel
        Needs ``.module`` and ``.normalize``; ``.classifier`` and ``.categories`` are used if present.
    images : augsens.data.ImageCache
        Needs ``len()``, ``.gather(idx) -> [b, 3, H, W]`` float in [0, 1]; ``.labels`` and ``.classes``
        are used for accuracy (see ``labels``).
    out : path
        Folder for the CSV tables and PNG figures (created).
    measures : sequence of str, optional
        Among :data:`MEASURES`.  Default: all present in each folder.
    quantiles, alphas, soft
        Mask configurations, see :func:`mask_configs`.  Default: the paper's 17.
    checkpoints : sequence of str, optional
        Checkpoints to mask.  Default: every convolutional checkpoint of each folder.
    draws : int
        Parameter draws per image and augmentation (1 for parameter-free ones).  Default: 3.
    seed : int
        Seed of the draws and of the tau simulation, >= 0.  Default: 0.
    batch_size : int
        Images per step; a forward then holds ``batch_size * draws * configs_per_forward`` rows after the
        first masked checkpoint.  Default: 16.
    configs_per_forward : int, optional
        See :meth:`GuidedMasking.predict`.  Default: all mask rows in one forward.
    labels : "auto", sequence of int, or None
        Class index (model output) of every image.  ``"auto"``: ``images.labels`` mapped through
        ``images.classes`` by name when those are model categories, or taken as is when the image
        source has exactly as many classes as the model has outputs (an ImageFolder of the model's own
        classes in its order); otherwise none.  None: no labels; accuracy is then agreement with the
        unmasked prediction on the original image.  Default: "auto".
    k : int
        Size of the top-sensitive class sets and of the prediction sets for Jaccard.  Default: 5.
    repeats : int
        Simulated means for tau (:func:`~augsens.analysis.single_class.jaccard_threshold`).
        Default: 10**6.

    Returns
    -------
    MaskingReport

    Raises
    ------
    ValueError
        Bad sizes or labels; see also :meth:`MaskSet.from_results` and :meth:`GuidedMasking.predict`.
    FileNotFoundError
        A folder holds no results.

    Notes
    -----
    Files in ``out`` (tables gather all folders, with a ``results`` column = the folder's name):

    * ``masking_accuracy.csv``: top-1 / top-5 per (input, measure, mask factor, config); ``config="none"``
      rows are unmasked; ``jaccard`` compares the top-``k`` predictions with the top-``k`` classes of the
      row's own (measure, factor) map; ``label_source`` is ``labels`` or ``unmasked_top1``;
    * ``masking_jaccard_unmasked.csv``: unmasked predictions vs every map's top classes;
    * ``masking_spearman.csv`` and ``<folder>_spearman_<measure>.png``: rho between each augmented
      input's top-1 profile over the configurations and the original input's, per mask factor;
    * ``masking_clusters.csv`` and ``<folder>_dendrogram_<measure>.png``: :func:`cluster_profiles` of all
      (input, mask factor) profiles, the original input included;
    * ``masking_class_sensitivity.csv`` and ``<folder>_class_decay.png``: top classes per factor;
    * ``masking_jaccard_candidates.csv``: every mean Jaccard above tau.

    Cost: per image, ``1 + sum over augmentations of draws`` inputs, each through the prefix once per
    chunk and through the rest of the network once per mask row.
    """
    for name, value in (("draws", draws), ("batch_size", batch_size), ("k", k)):
        if not isinstance(value, int) or value < 1:
            raise UserInputError(f"{name}={value!r} must be a positive integer.")
    if not isinstance(seed, (int, np.integer)) or seed < 0:  # numpy's SeedSequence takes seeds >= 0 only
        raise UserInputError(f"seed={seed!r} must be a non-negative integer, e.g. 0.")
    if len(images) == 0:
        raise UserInputError("images is empty: pass an image source with at least one image.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    configs = mask_configs(quantiles, alphas, soft=soft)
    report = MaskingReport()
    frames: dict[str, list[pd.DataFrame]] = {}
    sections = []
    for label, path in _labelled(results_dirs):
        tree = open_tree(path)
        masks = MaskSet.from_results(tree, measures=measures, checkpoints=checkpoints, configs=configs)
        run = run_masking(
            tree,
            masks,
            model,
            images,
            labels=labels,
            draws=draws,
            seed=seed,
            batch_size=batch_size,
            configs_per_forward=configs_per_forward,
            k=k,
        )
        threshold = jaccard_threshold(
            run.n_outputs, len(images), k=min(k, run.n_outputs), repeats=repeats, seed=seed
        )
        report.thresholds[label] = threshold
        tables = _tables(label, run, threshold)
        for name, frame in tables.items():
            frames.setdefault(name, []).append(frame)
        figures = _figures(label, run, tables, out)
        report.figures.update(figures)
        sections.append(_html_section(label, run, tables, threshold, figures, out))
    for name, parts in frames.items():
        path = out / f"masking_{name}.csv"
        pd.concat(parts, ignore_index=True).to_csv(path, index=False)
        report.tables[name] = path
    report.html = (
        '<section class="augsens-guided-masking">\n<h2>Guided masking and single-class analysis</h2>\n'
        + "\n".join(sections)
        + "\n</section>\n"
    )
    return report


# --- tables, figures, HTML ---------------------------------------------------------------------------


def _tables(label: str, run: MaskingRun, threshold: JaccardThreshold) -> dict[str, pd.DataFrame]:
    masks, n = run.masks, run.n
    rows = []
    for i, name in enumerate(run.inputs):
        rows.append(
            {
                "results": label,
                "input": name,
                "measure": "",
                "mask_factor": "",
                "config": "none",
                "top1": run.plain[i, 0] / n[i],
                "top5": run.plain[i, 1] / n[i],
                "jaccard": np.nan,
                "n": int(n[i]),
                "label_source": run.label_source,
            }
        )
        for r, (m, f, c) in enumerate(masks.rows):
            jac = run.masked_jaccard[i, r] / n[i] if m in run.classifier_maps else np.nan
            rows.append(
                {
                    "results": label,
                    "input": name,
                    "measure": m,
                    "mask_factor": f,
                    "config": c.name,
                    "top1": run.masked[i, r, 0] / n[i],
                    "top5": run.masked[i, r, 1] / n[i],
                    "jaccard": jac,
                    "n": int(n[i]),
                    "label_source": run.label_source,
                }
            )
    accuracy = pd.DataFrame(rows)
    jaccard_rows = [
        {
            "results": label,
            "input": name,
            "measure": m,
            "factor": f,
            "jaccard": run.plain_jaccard[i, g] / n[i],
        }
        for i, name in enumerate(run.inputs)
        for g, (m, f) in enumerate(masks.labels)
        if m in run.classifier_maps
    ]
    jaccard_unmasked = pd.DataFrame(
        jaccard_rows, columns=["results", "input", "measure", "factor", "jaccard"]
    )
    spearman, clusters = [], []
    for m in dict.fromkeys(m for m, _ in masks.labels):
        profiles, factors = _profiles(run, m)
        rho = spearman_profiles(profiles, profiles[:1])  # [I, F] vs the original input's profile
        spearman += [
            {"results": label, "measure": m, "input": name, "mask_factor": f, "rho": rho[i, j]}
            for i, name in enumerate(run.inputs[1:], start=1)
            for j, f in enumerate(factors)
        ]
        flat = profiles.reshape(-1, profiles.shape[-1])
        if flat.shape[0] >= 2:
            result = cluster_profiles(flat)
            clusters += [
                {
                    "results": label,
                    "measure": m,
                    "input": name,
                    "mask_factor": f,
                    "cluster": int(result.labels[i * len(factors) + j]),
                }
                for i, name in enumerate(run.inputs)
                for j, f in enumerate(factors)
            ]
    class_rows = [
        sensitivity_table(da, top=10, categories=_categories_for(run, da)).assign(results=label, measure=m)
        for m, da in run.classifier_maps.items()
    ]
    class_sensitivity = (
        pd.concat(class_rows, ignore_index=True)
        if class_rows
        else pd.DataFrame(columns=["factor", "rank", "class", "name", "value", "results", "measure"])
    )
    masked = accuracy[accuracy["config"] != "none"][
        ["results", "input", "measure", "mask_factor", "config", "jaccard"]
    ]
    unmasked = jaccard_unmasked.rename(columns={"factor": "mask_factor"}).assign(config="none")
    candidates = pd.concat([unmasked, masked], ignore_index=True)
    candidates = candidates[candidates["jaccard"] > threshold.tau].assign(tau=threshold.tau)
    return {
        "accuracy": accuracy,
        "jaccard_unmasked": jaccard_unmasked,
        "spearman": pd.DataFrame(spearman, columns=["results", "measure", "input", "mask_factor", "rho"]),
        "clusters": pd.DataFrame(clusters, columns=["results", "measure", "input", "mask_factor", "cluster"]),
        "class_sensitivity": class_sensitivity,
        "jaccard_candidates": candidates.sort_values("jaccard", ascending=False, ignore_index=True),
    }


def _categories_for(run: MaskingRun, da: xr.DataArray) -> Sequence[str] | None:
    cats = run.categories
    return cats if cats is not None and len(cats) == da.sizes["unit"] else None


def _profiles(run: MaskingRun, measure: str) -> tuple[np.ndarray, list[str]]:
    """Top-1 profiles ``[inputs, factors, configs]`` of one measure (row 0 = the original input)."""
    masks = run.masks
    g_index = [g for g, (m, _) in enumerate(masks.labels) if m == measure]
    factors = [masks.labels[g][1] for g in g_index]
    nc = len(masks.configs)
    rows = np.concatenate([np.arange(g * nc, (g + 1) * nc) for g in g_index])
    top1 = run.masked[:, rows, 0] / run.n[:, None]
    return top1.reshape(len(run.inputs), len(factors), nc), factors


def _figures(label: str, run: MaskingRun, tables: dict[str, pd.DataFrame], out: Path) -> dict[str, Path]:
    figures = {}
    spearman = tables["spearman"]
    for m in dict.fromkeys(m for m, _ in run.masks.labels):
        part = spearman[spearman["measure"] == m]
        if not part.empty:
            grid = part.pivot(index="input", columns="mask_factor", values="rho")
            grid = grid.loc[
                [i for i in run.inputs if i in grid.index],
                [f for f in dict.fromkeys(f for _, f in run.masks.labels) if f in grid.columns],
            ]
            figures[f"{label}_spearman_{m}"] = save_figure(
                _heatmap(grid, f"{label}: Spearman rho vs original ({m})"),
                out / f"{label}_spearman_{m}.png",
                dpi=_DPI,
            )
        profiles, factors = _profiles(run, m)
        flat = profiles.reshape(-1, profiles.shape[-1])
        if flat.shape[0] >= 2:
            names = [f"{i} | {f}" for i in run.inputs for f in factors]
            figures[f"{label}_dendrogram_{m}"] = save_figure(
                _dendrogram(cluster_profiles(flat), names, f"{label} ({m})"),
                out / f"{label}_dendrogram_{m}.png",
                dpi=_DPI,
            )
    if run.classifier_maps:
        figures[f"{label}_class_decay"] = save_figure(
            plot_sensitivity_decay(run.classifier_maps), out / f"{label}_class_decay.png", dpi=_DPI
        )
    return figures


def _heatmap(grid: pd.DataFrame, title: str) -> Figure:
    fig = Figure(figsize=(3.5 + 0.55 * grid.shape[1], 2.5 + 0.4 * grid.shape[0]), layout="constrained")
    ax = fig.subplots()
    values = grid.to_numpy(dtype=float)
    image = ax.imshow(values, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6)
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=60, ha="right")
    ax.set_yticks(range(grid.shape[0]), grid.index)
    ax.set_xlabel("mask factor")
    ax.set_ylabel("input augmentation")
    ax.set_title(title, fontsize="small")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def _dendrogram(result: ProfileClusters, names: Sequence[str], title: str) -> Figure:
    fig = Figure(figsize=(7.0, 1.0 + 0.16 * len(names)), layout="constrained")
    ax = fig.subplots()
    hierarchy.dendrogram(
        result.linkage,
        labels=list(names),
        orientation="left",
        color_threshold=result.cut,
        leaf_font_size=6,
        ax=ax,
    )
    ax.axvline(result.cut, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("distance sqrt(1 - |rho|)")
    ax.set_title(f"{title}: average linkage, cut at {result.cut}", fontsize="medium")
    return fig


def _html_section(
    label: str,
    run: MaskingRun,
    tables: dict[str, pd.DataFrame],
    threshold: JaccardThreshold,
    figures: dict[str, Path],
    out: Path,
) -> str:
    acc = tables["accuracy"]
    plain = acc[acc["config"] == "none"][["input", "top1", "top5", "n"]]
    what = (
        "accuracy"
        if run.label_source == "true"
        else "agreement with the unmasked prediction on the original image"
    )
    parts = [
        f"<h3>{html.escape(label)}</h3>",
        f"<p>{len(run.masks)} mask rows ({len(run.masks.labels)} maps x {len(run.masks.configs)} "
        f"configurations) at checkpoints {html.escape(', '.join(run.masks.checkpoints))}; "
        f"top-1/top-5 {html.escape(what)}.</p>",
        plain.to_html(index=False, float_format="{:.3f}".format, classes="augsens-table"),
    ]
    for name, path in figures.items():
        parts.append(
            f'<figure><img src="{html.escape(path.relative_to(out).as_posix())}" alt="{html.escape(name)}">'
            f"<figcaption>{html.escape(name)}</figcaption></figure>"
        )
    if run.classifier_maps:
        candidates = tables["jaccard_candidates"].head(20)
        parts.append(
            f"<p>Single-class significance threshold tau = {threshold.tau:.5f} (chance mean Jaccard "
            f"{threshold.expected:.5f}; {threshold.n_classes} classes, {threshold.n_samples} images, "
            f"top-{threshold.k}, {threshold.repeats} simulated means). "
            f"{len(tables['jaccard_candidates'])} entries exceed it; the largest:</p>"
        )
        parts.append(candidates.to_html(index=False, float_format="{:.4f}".format, classes="augsens-table"))
    return "\n".join(parts)


def _labelled(results_dirs: Sequence[str | Path]) -> Iterator[tuple[str, Path]]:
    if isinstance(results_dirs, (str, Path)) or not results_dirs:
        raise UserInputError(
            f"results_dirs={results_dirs!r} must be a non-empty sequence of results folders."
        )
    seen: dict[str, int] = {}
    for path in map(Path, results_dirs):
        name = path.resolve().name or "results"
        seen[name] = seen.get(name, 0) + 1
        yield (name if seen[name] == 1 else f"{name}-{seen[name]}"), path

"""Linear discriminant analysis of sensitivity maps (the paper's notebook 6; ``docs/paper.md`` §12).

Can a factor be recognised from the *shape* of a channel's sensitivity map?  Samples are (factor, channel)
pairs, features the channel's flattened ``H x W`` map of that factor, the target is the factor.  A linear
discriminant (sklearn ``LinearDiscriminantAnalysis(solver="svd")``) is cross-validated with repeated
k-fold (5 folds x 100 repeats by default, the authors' setting).  Accuracy near ``1 / n_factors`` means the
factors' maps are indistinguishable; near 1, every factor leaves its own spatial signature.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import RepeatedKFold

from augsens.analysis.correlation import plot_heatmap
from augsens.analysis.factor_maps import as_factor_maps
from augsens.analysis.protocol import (
    LIST_HELP,
    Analysis,
    OutOption,
    ResultsArgument,
    list_values,
    register,
    require_results,
)
from augsens.errors import UnknownNameError, UserInputError
from augsens.plot.figures import save_figure
from augsens.schema import read_results

__all__ = ["lda_analysis", "plot_lda_projection", "lda_report"]

#: The authors' LDA settings (docs/paper.md §12).
LDA_TOL = 1e-4


def _design_matrix(
    maps: xr.DataArray, factors: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    da = as_factor_maps(maps)
    if "channel" not in da.dims or da.ndim < 3:
        raise UserInputError(
            f"LDA needs spatial maps with dims ('factor', 'channel', 'y', 'x'), got {da.dims!r}: "
            "a fully connected checkpoint has one value per unit, so no map to classify (skip it)"
        )
    if factors is not None:
        missing = [f for f in factors if f not in set(da["factor"].values)]
        if missing:
            raise UnknownNameError(
                f"factors {missing!r} not in the maps; available: {list(da['factor'].values)!r}"
            )
        da = da.sel(factor=list(factors))
    names = [str(f) for f in da["factor"].values]
    if len(names) < 2:
        raise UserInputError(
            f"LDA needs at least two factors to tell apart, got {names!r}: name two or more factors"
        )
    n_factor, n_channel = da.shape[:2]
    x = da.values.reshape(n_factor * n_channel, -1).astype(np.float64)
    y = np.repeat(np.arange(n_factor), n_channel)
    return x, y, names


def lda_analysis(
    maps: xr.DataArray,
    *,
    factors: Sequence[str] | None = None,
    n_splits: int = 5,
    n_repeats: int = 100,
    seed: int = 0,
) -> xr.Dataset:
    """Cross-validated LDA of factors from their per-channel sensitivity maps.

    Parameters
    ----------
    maps : xarray.DataArray
        Sensitivities, dims ``("factor", "channel", "y", "x")`` (``"augmentation"`` also accepted for
        ``"factor"``).
    factors : sequence of str, optional
        Factors (classes) to use. Default: all.
    n_splits, n_repeats : int
        ``RepeatedKFold`` folds and repeats. Default: 5 and 100.
    seed : int
        ``random_state`` of the folds, in [0, 2**32). Default: 0.

    Returns
    -------
    xarray.Dataset
        ``train_accuracy``, ``validation_accuracy`` (means over all folds) and their ``_std``; ``chance``
        (``1 / n_factors``); ``confusion`` (dims ``factor``, ``predicted``): validation confusion matrices
        summed over folds, then row-normalised; ``projection`` (dims ``sample``, ``component``) of every
        (factor, channel) sample by an LDA fitted on all samples, with ``sample_factor`` (dim ``sample``).
        Attribute ``non_finite``: map values that were not finite and were set to 0 (an element without
        output variance has no index).

    Raises
    ------
    ValueError
        Maps without spatial dims, fewer than two factors, or too few channels for ``n_splits``.
    KeyError
        A requested factor is absent.
    """
    x, y, names = _design_matrix(maps, factors)
    for label, value in (("n_splits", n_splits), ("n_repeats", n_repeats)):
        if int(value) != value or value < (2 if label == "n_splits" else 1):
            raise UserInputError(
                f"{label} must be an integer >= {2 if label == 'n_splits' else 1}, got {value!r}"
            )
    if int(seed) != seed or not 0 <= seed < 2**32:  # RepeatedKFold's random_state range
        raise UserInputError(f"seed must be an integer in [0, 2**32), got {seed!r}; pass e.g. 0")
    if n_splits > len(y):
        raise UserInputError(
            f"n_splits={n_splits!r} exceeds the {len(y)} samples (factors x channels); lower it"
        )
    non_finite = int((~np.isfinite(x)).sum())
    x = np.where(np.isfinite(x), x, 0.0)
    k = len(names)
    confusion = np.zeros((k, k))
    train_acc, val_acc = [], []
    folds = RepeatedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    for train, val in folds.split(x):
        lda = LinearDiscriminantAnalysis(solver="svd", tol=LDA_TOL)
        lda.fit(x[train], y[train])
        train_acc.append(float((lda.predict(x[train]) == y[train]).mean()))
        pred = lda.predict(x[val])
        val_acc.append(float((pred == y[val]).mean()))
        confusion += confusion_matrix(y[val], pred, labels=np.arange(k))
    rows = confusion.sum(axis=1, keepdims=True)
    confusion = np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
    n_components = max(1, min(2, k - 1, x.shape[1]))
    projection = LinearDiscriminantAnalysis(
        solver="svd", tol=LDA_TOL, n_components=n_components
    ).fit_transform(x, y)
    return xr.Dataset(
        {
            "train_accuracy": float(np.mean(train_acc)),
            "train_accuracy_std": float(np.std(train_acc)),
            "validation_accuracy": float(np.mean(val_acc)),
            "validation_accuracy_std": float(np.std(val_acc)),
            "chance": 1.0 / k,
            "confusion": (("factor", "predicted"), confusion),
            "projection": (("sample", "component"), projection),
            "sample_factor": ("sample", np.asarray(names)[y]),
        },
        coords={"factor": names, "predicted": names},
        attrs={"n_splits": n_splits, "n_repeats": n_repeats, "seed": seed, "non_finite": non_finite},
    )


def plot_lda_projection(result: xr.Dataset, *, title: str = "") -> Figure:
    """Scatter of the LDA projection of :func:`lda_analysis`, one colour per factor.

    Parameters
    ----------
    result : xarray.Dataset
        Output of :func:`lda_analysis`.
    title : str
        Axes title (the accuracies are appended).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(figsize=(6, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    proj = result["projection"].values
    labels = result["sample_factor"].values
    second = proj[:, 1] if proj.shape[1] > 1 else np.zeros(len(proj))
    for f in result["factor"].values:
        sel = labels == f
        ax.scatter(proj[sel, 0], second[sel], s=8, alpha=0.7, label=str(f))
    ax.set_xlabel("LD1")
    ax.set_ylabel("LD2" if proj.shape[1] > 1 else "")
    ax.legend(fontsize=7, markerscale=2, loc="best")
    acc = (
        f"train {float(result['train_accuracy']):.2f}, validation {float(result['validation_accuracy']):.2f}"
    )
    ax.set_title(f"{title} ({acc})", fontsize=9)
    fig.tight_layout()
    return fig


def lda_report(
    results_dirs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    measures: Sequence[str] = ("shapley", "S1", "ST"),
    factors: Sequence[str] | None = None,
    n_splits: int = 5,
    n_repeats: int = 100,
    seed: int = 0,
) -> list[Path]:
    """LDA of every spatial checkpoint and measure of one or more results folders.

    Parameters
    ----------
    results_dirs : sequence of str or Path
        Results folders (each holding ``results.zarr``).
    out_dir : str or Path
        Output folder (created).
    measures : sequence of str
        Variables analysed where present. Default: ``("shapley", "S1", "ST")``.
    factors : sequence of str, optional
        Factors used as classes. Default: all of each measure.
    n_splits, n_repeats, seed : int
        As in :func:`lda_analysis`.

    Returns
    -------
    list of Path
        ``lda_summary.csv`` (study, checkpoint, measure, accuracies, chance), then per study, checkpoint and
        measure a confusion-matrix heatmap and a projection scatter (PNG).  Checkpoints without spatial
        maps are skipped.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, written = [], []
    for rdir in results_dirs:
        results = read_results(rdir)
        study = results.name
        for c, ds in results.nodes():
            for m in measures:
                if m not in ds.data_vars or "channel" not in ds[m].dims or ds[m].ndim < 3:
                    continue
                res = lda_analysis(ds[m], factors=factors, n_splits=n_splits, n_repeats=n_repeats, seed=seed)
                rows.append(
                    {
                        "study": study,
                        "checkpoint": c,
                        "measure": m,
                        "train_accuracy": float(res["train_accuracy"]),
                        "validation_accuracy": float(res["validation_accuracy"]),
                        "validation_accuracy_std": float(res["validation_accuracy_std"]),
                        "chance": float(res["chance"]),
                        "non_finite": res.attrs["non_finite"],
                    }
                )
                stem = f"lda_{study}_{c.replace('/', '_')}_{m}"
                acc = float(res["validation_accuracy"])
                fig = plot_heatmap(
                    res["confusion"], title=f"{c} {m}: acc={acc:.2f}", vmin=0.0, vmax=1.0, cmap="gist_heat"
                )
                written.append(save_figure(fig, out / f"{stem}_confusion.png", dpi=120))
                projection = plot_lda_projection(res, title=f"{c} {m}")
                written.append(save_figure(projection, out / f"{stem}_projection.png", dpi=120))
    if not rows:
        raise UserInputError(
            f"no spatial maps of {list(measures)!r} in {[str(d) for d in results_dirs]!r}: "
            "LDA needs conv checkpoints with dims ('factor', 'channel', 'y', 'x'): pass results of a "
            "sobol or shapley study with a convolutional checkpoint, and measures they hold"
        )
    csv = out / "lda_summary.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return [csv, *written]


def _run(
    results: ResultsArgument,
    out: OutOption,
    measures: Annotated[
        list[str] | None, typer.Option(help="Measures (default shapley,S1,ST)." + LIST_HELP)
    ] = None,
    factors: Annotated[list[str] | None, typer.Option(help="Factors (default: all)." + LIST_HELP)] = None,
    splits: int = 5,
    repeats: Annotated[int, typer.Option(help="Repeats of the k-fold split.")] = 100,
    seed: int = 0,
) -> list[Path]:
    """Linear discriminant analysis: can a unit's sensitivity map tell which factor it belongs to?"""
    require_results(results)
    return lda_report(
        results,
        out,
        measures=list_values(measures or "shapley,S1,ST") or (),
        factors=list_values(factors),
        n_splits=splits,
        n_repeats=repeats,
        seed=seed,
    )


ANALYSIS = register(
    Analysis(
        "lda",
        "Linear discriminant analysis",
        "Samples are (unit, factor) pairs, features the unit's flattened sensitivity map, the target the "
        "factor: validation accuracy well above chance means factors leave distinct spatial signatures.",
        _run,
    )
)

"""Single-class sensitivity analysis: which classes an augmentation moves most, and whether masking
pushes the predictions towards them.

At the classifier checkpoint (one unit per class, softmax probabilities) each factor's sensitivity map
ranks the classes.  The top-``k`` classes of factor ``v`` form the candidate set ``T_v``; the Jaccard
index between ``T_v`` and the network's top-``k`` predictions, averaged over images (and parameter
draws), says whether predictions drift towards the classes the factor moves most.  Chance level comes
from a hypergeometric null (:func:`jaccard_threshold`).

Functions
---------
top_sensitive_classes   indices of the ``k`` most sensitive classes per factor
jaccard_index           Jaccard index between label sets, batched (NumPy or torch)
jaccard_threshold       significance threshold tau = Q3 + 1.5 IQR of the simulated null mean Jaccard
sensitivity_table       top classes per factor as a table (class id, name, value)
plot_sensitivity_decay  the largest class sensitivities per factor, in descending order

References
----------
Kharyuk, Matveev & Oseledets, "Exploring specialization and sensitivity of convolutional neural
networks in the context of simultaneous image augmentations", arXiv:2503.03283, section 6 and
appendix (tau for ILSVRC: 0.00300; Places365: 0.00806).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd
import torch
import xarray as xr
from matplotlib.figure import Figure
from scipy import stats

from augsens.errors import UserInputError

__all__ = [
    "top_sensitive_classes",
    "jaccard_index",
    "JaccardThreshold",
    "jaccard_threshold",
    "sensitivity_table",
    "plot_sensitivity_decay",
]

_Array = TypeVar("_Array", np.ndarray, torch.Tensor)

# Repeats are simulated in blocks so that 10**7 repeats stay within a few hundred MB.
_BLOCK = 1_000_000


def top_sensitive_classes(sensitivity: xr.DataArray | np.ndarray, k: int = 5) -> np.ndarray:
    """Indices of the ``k`` classes most sensitive to each factor.

    Parameters
    ----------
    sensitivity : xarray.DataArray or numpy.ndarray, shape (factor, classes)
        Sensitivity of each class output to each factor (e.g. ``S1`` of the classifier checkpoint,
        dims ``("factor", "unit")``).  NaN counts as the lowest value.
    k : int
        Size of each candidate set, ``1 <= k <= classes``.  Default: 5 (the paper's).

    Returns
    -------
    numpy.ndarray of int64, shape (factor, k)
        Class indices in descending order of sensitivity; ties go to the lower class index.

    Raises
    ------
    ValueError
        ``sensitivity`` is not 2-D, or ``k`` is out of range.

    Examples
    --------
    >>> top_sensitive_classes(np.array([[0.1, 0.5, 0.3], [0.9, 0.0, 0.2]]), k=2)
    array([[1, 2],
           [0, 2]])
    """
    values = np.asarray(sensitivity, dtype=np.float64)
    if values.ndim != 2:
        raise UserInputError(
            f"sensitivity must be 2-D (factor, classes), got shape {values.shape!r}; select the classifier "
            "checkpoint's map, e.g. tree['fc']['S1']."
        )
    if not 1 <= k <= values.shape[1]:
        raise UserInputError(f"k={k!r} must lie in [1, {values.shape[1]}] (the number of classes).")
    keys = np.where(np.isnan(values), -np.inf, values)
    # A stable sort on the negated values keeps the lower class index first among ties.
    return np.argsort(-keys, axis=1, kind="stable")[:, :k].astype(np.int64)


def jaccard_index(a: _Array, b: _Array) -> _Array:
    """Jaccard index ``|A ∩ B| / |A ∪ B|`` between label sets, batched over leading dims.

    Parameters
    ----------
    a : numpy.ndarray or torch.Tensor of int, shape (..., ka)
        Label sets, one per trailing row; labels within a row must be distinct (top-k indices are).
    b : same type as ``a``, shape (..., kb)
        Label sets; the leading dims broadcast against ``a``'s.

    Returns
    -------
    numpy.ndarray or torch.Tensor of float, shape (broadcast leading dims)
        Values in [0, 1].

    Examples
    --------
    >>> jaccard_index(np.array([1, 2, 3]), np.array([3, 4, 5]))  # 1 shared of 5 distinct
    np.float64(0.2)
    """
    shared = (a[..., :, None] == b[..., None, :]).any(-1).sum(-1)
    union = a.shape[-1] + b.shape[-1] - shared
    return shared / union


@dataclass(frozen=True)
class JaccardThreshold:
    """Result of :func:`jaccard_threshold`.

    Attributes
    ----------
    tau : float
        Significance threshold ``Q3 + 1.5 * IQR`` of the simulated mean Jaccard under the null.
    mean, q1, q3 : float
        Mean and quartiles of the simulated mean-Jaccard distribution.
    expected : float
        Exact expectation ``E[J]`` of one Jaccard index under the null.
    n_classes, n_samples, k, repeats, seed : int
        The simulation's settings.
    """

    tau: float
    mean: float
    q1: float
    q3: float
    expected: float
    n_classes: int
    n_samples: int
    k: int
    repeats: int
    seed: int


def jaccard_threshold(
    n_classes: int, n_samples: int, *, k: int = 5, repeats: int = 1_000_000, seed: int = 0
) -> JaccardThreshold:
    """Significance threshold for a mean Jaccard index between two top-``k`` class sets.

    Under the null, the candidate set and the prediction set are two independent uniformly random
    ``k``-subsets of ``n_classes`` classes, so their overlap is ``K ~ Hypergeometric(n_classes, k, k)``
    and ``J = K / (2k - K)``.  The statistic of interest is the mean of ``J`` over ``n_samples`` images;
    its null distribution is simulated ``repeats`` times and ``tau = Q3 + 1.5 * IQR`` (the upper Tukey
    fence, as in the paper).

    Parameters
    ----------
    n_classes : int
        Number of classes ``N`` (1000 for ILSVRC, 365 for Places365).
    n_samples : int
        Number of Jaccard values averaged, ``N * s`` with ``s`` images per class (50,000 for ILSVRC
        validation: N = 1000, s = 50).
    k : int
        Size of both sets, ``1 <= k <= n_classes``.  Default: 5.
    repeats : int
        Number of simulated means.  Default: 10**6 (about 3 significant digits of tau, in about 1 s;
        the paper used 10**7).
    seed : int
        Seed of the NumPy generator.  Default: 0.

    Returns
    -------
    JaccardThreshold

    Raises
    ------
    ValueError
        A size is not a positive integer, or ``k > n_classes``.

    Notes
    -----
    Drawing ``n_samples`` hypergeometric overlaps and averaging their ``J`` only depends on how many
    draws gave each overlap ``0..k``; those counts follow ``Multinomial(n_samples, pmf)`` with the
    hypergeometric pmf.  Sampling the counts (``Generator.multinomial``) therefore gives exactly the
    same distribution of the mean as ``Generator.hypergeometric`` per image, at a cost independent of
    ``n_samples``.

    References
    ----------
    Kharyuk, Matveev & Oseledets, arXiv:2503.03283 (v2): tau = 0.00300 for N = 1000, s = 50, k = 5;
    tau = 0.00806 for N = 365, s = 100.

    Examples
    --------
    >>> t = jaccard_threshold(1000, 50_000, repeats=100_000)
    >>> round(t.expected, 5), round(t.tau, 4)
    (0.00278, 0.003)
    """
    for name, value in (("n_classes", n_classes), ("n_samples", n_samples), ("k", k), ("repeats", repeats)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise UserInputError(f"{name}={value!r} must be a positive integer.")
    if k > n_classes:
        raise UserInputError(
            f"k={k!r} must not exceed n_classes={n_classes!r}: a top-k set needs k distinct classes."
        )
    overlaps = np.arange(k + 1)
    pmf = stats.hypergeom(n_classes, k, k).pmf(overlaps)
    pmf = pmf / pmf.sum()
    jaccard = overlaps / (2 * k - overlaps)
    rng = np.random.default_rng(seed)
    means = np.empty(repeats)
    for start in range(0, repeats, _BLOCK):
        stop = min(start + _BLOCK, repeats)
        counts = rng.multinomial(n_samples, pmf, size=stop - start)
        means[start:stop] = counts @ jaccard / n_samples
    q1, q3 = np.quantile(means, [0.25, 0.75])
    return JaccardThreshold(
        tau=float(q3 + 1.5 * (q3 - q1)),
        mean=float(means.mean()),
        q1=float(q1),
        q3=float(q3),
        expected=float(pmf @ jaccard),
        n_classes=int(n_classes),
        n_samples=int(n_samples),
        k=int(k),
        repeats=int(repeats),
        seed=int(seed),
    )


def sensitivity_table(
    sensitivity: xr.DataArray, *, top: int = 10, categories: Sequence[str] | None = None
) -> pd.DataFrame:
    """The ``top`` most sensitive classes of every factor, as a long table.

    Parameters
    ----------
    sensitivity : xarray.DataArray, dims ("factor", "unit")
        A classifier-checkpoint map (one unit per class), e.g. ``tree["fc"]["shapley"]``.
    top : int
        Classes listed per factor.  Default: 10.
    categories : sequence of str, optional
        Class names by index (``LoadedModel.categories``).  Default: None (names left empty).

    Returns
    -------
    pandas.DataFrame
        Columns ``factor``, ``rank`` (1 = most sensitive), ``class`` (index), ``name``, ``value``.

    Raises
    ------
    ValueError
        ``sensitivity`` does not have dims ``("factor", "unit")``, or ``categories`` has the wrong length.
    """
    _check_classifier_map(sensitivity)
    n_classes = sensitivity.sizes["unit"]
    if categories is not None and len(categories) != n_classes:
        raise UserInputError(
            f"categories has {len(categories)} names but the map has {n_classes} classes; pass the "
            "model's categories for this classifier checkpoint."
        )
    top = min(top, n_classes)
    index = top_sensitive_classes(sensitivity.values, k=top)
    rows = []
    for f, factor in enumerate(sensitivity["factor"].values):
        for rank, cls in enumerate(index[f], start=1):
            rows.append(
                {
                    "factor": str(factor),
                    "rank": rank,
                    "class": int(cls),
                    "name": "" if categories is None else str(categories[cls]),
                    "value": float(sensitivity.values[f, cls]),
                }
            )
    return pd.DataFrame(rows, columns=["factor", "rank", "class", "name", "value"])


def plot_sensitivity_decay(maps: Mapping[str, xr.DataArray], *, top: int = 20) -> Figure:
    """Plot the ``top`` largest class sensitivities of each factor in descending order.

    Parameters
    ----------
    maps : mapping of str to xarray.DataArray, each with dims ("factor", "unit")
        One classifier-checkpoint map per panel, keyed by its title (e.g. ``{"S1": ..., "shapley": ...}``).
    top : int
        Number of values per curve.  Default: 20 (the paper's).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per map, one line per factor (rank on x, sensitivity on y).

    Raises
    ------
    ValueError
        ``maps`` is empty or a map does not have dims ``("factor", "unit")``.
    """
    if not maps:
        raise UserInputError(
            "maps is empty: pass at least one classifier-checkpoint map, e.g. {'S1': tree['fc']['S1']}."
        )
    fig = Figure(figsize=(4.2 * len(maps), 3.6), layout="constrained")
    axes = fig.subplots(1, len(maps), squeeze=False)[0]
    for ax, (title, sensitivity) in zip(axes, maps.items(), strict=True):
        _check_classifier_map(sensitivity)
        values = np.nan_to_num(np.asarray(sensitivity.values, dtype=np.float64), nan=-np.inf)
        n = min(top, values.shape[1])
        ranked = -np.sort(-values, axis=1)[:, :n]
        for f, factor in enumerate(sensitivity["factor"].values):
            ax.plot(
                np.arange(1, n + 1),
                np.where(np.isfinite(ranked[f]), ranked[f], np.nan),
                marker=".",
                label=str(factor),
            )
        ax.set_title(title)
        ax.set_xlabel("rank")
        ax.set_ylabel("class sensitivity")
    axes[-1].legend(fontsize="small", loc="upper right")
    return fig


def _check_classifier_map(sensitivity: xr.DataArray) -> None:
    if not isinstance(sensitivity, xr.DataArray) or sensitivity.dims != ("factor", "unit"):
        dims = getattr(sensitivity, "dims", type(sensitivity).__name__)
        raise UserInputError(
            f"expected a classifier-checkpoint map with dims ('factor', 'unit'), got {dims!r}; select it "
            "from the results tree, e.g. tree['fc']['S1']."
        )

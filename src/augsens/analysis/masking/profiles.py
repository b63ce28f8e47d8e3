"""Statistics of masked-accuracy profiles: Spearman correlation along the configuration axis and
average-linkage clustering on ``sqrt(1 - |rho|)``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform
from scipy.stats import rankdata

from augsens.errors import UserInputError

__all__ = ["spearman_profiles", "ProfileClusters", "cluster_profiles"]


def spearman_profiles(profiles: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Spearman rank correlation along the last axis (average ranks for ties).

    Parameters
    ----------
    profiles : numpy.ndarray, shape (..., n)
    reference : numpy.ndarray, shape (..., n), broadcastable against ``profiles``

    Returns
    -------
    numpy.ndarray, shape (broadcast leading dims)
        rho in [-1, 1]; NaN where a profile is constant (its ranks carry no order).

    Examples
    --------
    >>> float(spearman_profiles(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0])))
    0.8
    """
    a = rankdata(np.asarray(profiles, dtype=np.float64), axis=-1)
    b = rankdata(np.asarray(reference, dtype=np.float64), axis=-1)
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (a * b).sum(-1) / denominator
    return np.where(denominator > 0, rho, np.nan)


@dataclass(frozen=True)
class ProfileClusters:
    """Result of :func:`cluster_profiles`.

    Attributes
    ----------
    rho : numpy.ndarray, shape (rows, rows)
        Spearman correlation between profiles (NaN where one is constant).
    distance : numpy.ndarray, shape (rows, rows)
        ``sqrt(1 - |rho|)``, with NaN correlations counted as 0 (distance 1).
    linkage : numpy.ndarray, shape (rows - 1, 4)
        SciPy average-linkage matrix.
    labels : numpy.ndarray of int, shape (rows,)
        Flat clusters (1-based) from cutting the tree at ``cut``.
    cut : float
    """

    rho: np.ndarray
    distance: np.ndarray
    linkage: np.ndarray
    labels: np.ndarray
    cut: float


def cluster_profiles(profiles: np.ndarray, *, cut: float = 0.025) -> ProfileClusters:
    """Average-linkage hierarchical clustering of profiles on the distance ``sqrt(1 - |rho|)``.

    Parameters
    ----------
    profiles : numpy.ndarray, shape (rows, n)
        One accuracy profile per row (e.g. per (input augmentation, mask factor)), over n configurations.
    cut : float
        Distance at which the tree is cut into flat clusters.  Default: 0.025 (the paper's).

    Returns
    -------
    ProfileClusters

    Raises
    ------
    ValueError
        Fewer than 2 rows, or not 2-D.

    Notes
    -----
    ``|rho|`` makes perfectly anti-correlated profiles as close as identical ones, as in the paper.
    """
    p = np.asarray(profiles, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 2:
        raise UserInputError(f"profiles must be 2-D with at least 2 rows, got shape {p.shape!r}.")
    rho = spearman_profiles(p[:, None, :], p[None, :, :])
    distance = np.sqrt(np.clip(1.0 - np.abs(np.nan_to_num(rho, nan=0.0)), 0.0, None))
    np.fill_diagonal(distance, 0.0)
    linkage = hierarchy.linkage(squareform(distance, checks=False), method="average")
    labels = hierarchy.fcluster(linkage, t=cut, criterion="distance")
    return ProfileClusters(rho=rho, distance=distance, linkage=linkage, labels=labels, cut=cut)

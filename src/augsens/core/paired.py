"""Paired treatment–control statistics of tensors, element by element.

For paired observations (an activation with and without an augmentation, say) and two groups:

* :func:`wilcoxon_zsplit`: the two-sided Wilcoxon signed-rank test with zeros split between the signed
  rank sums ("zsplit"), continuity correction and the normal approximation, vectorised over elements on
  the tensor's device;
* :func:`rank_biserial`: the matched-pairs rank-biserial correlation ``(R+ - R-) / (n (n + 1) / 2)``
  (Kerby 2014), from the test's rank sums;
* :func:`point_biserial`: the point-biserial correlation of two groups from their streamed moments;
* :func:`benjamini_yekutieli`: Benjamini–Yekutieli adjusted p-values over one family.

The treatment–control study (:mod:`augsens.engine.contrast`) computes its maps with these.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import scipy.stats
import torch

__all__ = ["WilcoxonResult", "wilcoxon_zsplit", "rank_biserial", "point_biserial", "benjamini_yekutieli"]


class WilcoxonResult(NamedTuple):
    """Per-element Wilcoxon signed-rank results (float64 tensors, one value per element).

    Attributes
    ----------
    statistic : torch.Tensor
        ``min(R+, R-)``, scipy's two-sided statistic.
    z : torch.Tensor
        Continuity-corrected normal score of ``R+`` (positive where augmentation raises the activation).
    p_value : torch.Tensor
        Two-sided p-value from the normal approximation.
    r_plus, r_minus : torch.Tensor
        Rank sums of positive and negative differences, half of the zeros' ranks added to each.
    n : int
        Number of pairs (zeros included, as "zsplit" counts them).
    """

    statistic: torch.Tensor
    z: torch.Tensor
    p_value: torch.Tensor
    r_plus: torch.Tensor
    r_minus: torch.Tensor
    n: int


def wilcoxon_zsplit(d: torch.Tensor, *, dim: int = 0, correction: bool = True) -> WilcoxonResult:
    """Two-sided Wilcoxon signed-rank test with split zeros, vectorised over elements.

    Equal to ``scipy.stats.wilcoxon(d, zero_method="zsplit", correction=correction,
    alternative="two-sided", method="asymptotic", axis=dim)`` element by element, computed on ``d``'s device.

    Parameters
    ----------
    d : torch.Tensor
        Paired differences, any float dtype; ``dim`` indexes the pairs, the other dims are elements.
    dim : int
        Dimension of the pairs. Default: 0.
    correction : bool
        Continuity correction of 0.5 towards the mean of the statistic. Default: True.

    Returns
    -------
    WilcoxonResult
        Each tensor has ``d``'s shape without ``dim`` and dtype float64.  An element whose differences
        are not all finite gets NaN everywhere.

    Notes
    -----
    Ranks of ``|d|`` are average ranks over ties (zeros included) from one sort per element: a tie group
    occupying sorted positions ``a..b`` (1-based) gets rank ``(a + b) / 2``.  With ``n`` pairs,

    .. math::

        \\mu = n(n+1)/4, \\qquad
        \\sigma^2 = \\frac{n(n+1)(2n+1) - \\tfrac12 \\sum_g (t_g^3 - t_g)}{24}, \\qquad
        z = \\frac{R_+ - \\mu - \\tfrac12 \\operatorname{sign}(R_+ - \\mu)}{\\sigma},

    summed over tie groups ``g`` of size ``t_g``, and ``p = erfc(|z| / sqrt 2)``.  When every difference
    is zero, ``R+ = R- = mu`` and ``p = 1``.

    References
    ----------
    Wilcoxon, F. (1945). Individual comparisons by ranking methods. Biometrics Bulletin 1(6), 80-83.
    doi:10.2307/3001968
    """
    if not torch.is_floating_point(d):
        raise TypeError(f"d must be a floating-point tensor, got dtype {d.dtype}")
    d = d.movedim(dim, 0)
    n = d.shape[0]
    if n == 0:
        raise ValueError("d has no pairs along dim; the test needs at least one pair")
    finite = torch.isfinite(d).all(dim=0)
    order = torch.argsort(d.abs(), dim=0)
    sorted_abs = d.abs().gather(0, order)
    sign = torch.sign(d).gather(0, order)
    del order
    new_group = torch.ones_like(sorted_abs, dtype=torch.bool)
    new_group[1:] = sorted_abs[1:] != sorted_abs[:-1]
    ends_group = torch.ones_like(new_group)
    ends_group[:-1] = new_group[1:]
    del sorted_abs
    pos = torch.arange(1, n + 1, device=d.device, dtype=torch.float64).view(-1, *([1] * (d.dim() - 1)))
    pos = pos.expand(new_group.shape)
    start = torch.where(new_group, pos, 0.0).cummax(dim=0).values
    end = torch.where(ends_group, pos, float(n + 1)).flip(0).cummin(dim=0).values.flip(0)
    rank = (start + end) / 2
    half_zero = (rank * (sign == 0)).sum(dim=0) / 2
    r_plus = (rank * (sign > 0)).sum(dim=0) + half_zero
    r_minus = (rank * (sign < 0)).sum(dim=0) + half_zero
    # Summing t^2 - 1 over the t positions of a tie group gives that group's t^3 - t.
    size = end - start + 1
    ties = (size * size - 1).sum(dim=0)
    mean = n * (n + 1) / 4
    se = torch.sqrt((n * (n + 1) * (2 * n + 1) - ties / 2) / 24)
    z = (r_plus - mean) / se
    if correction:
        z = z - torch.sign(z) * 0.5 / se
    p = torch.special.erfc(z.abs() / math.sqrt(2)).clamp(max=1.0)
    statistic = torch.minimum(r_plus, r_minus)
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=d.device)
    statistic, z, p, r_plus, r_minus = (
        torch.where(finite, t, nan) for t in (statistic, z, p, r_plus, r_minus)
    )
    return WilcoxonResult(statistic, z, p, r_plus, r_minus, n=n)


def rank_biserial(
    r_plus: torch.Tensor, r_minus: torch.Tensor, n: int, *, signed: bool = True
) -> torch.Tensor:
    """Matched-pairs rank-biserial correlation ``(R+ - R-) / (n (n + 1) / 2)``.

    Parameters
    ----------
    r_plus, r_minus : torch.Tensor
        Signed rank sums from :func:`wilcoxon_zsplit` (zeros split).
    n : int
        Number of pairs.
    signed : bool
        Keep the sign (positive where the treatment raises the value). ``False`` gives the authors' unsigned
        ``4 |T - (R+ + R-)/2| / (n (n + 1))``, which equals the absolute value. Default: True.

    Returns
    -------
    torch.Tensor
        Values in ``[-1, 1]`` (``[0, 1]`` when unsigned).

    References
    ----------
    Kerby, D. S. (2014). The simple difference formula: an approach to teaching nonparametric correlation.
    Comprehensive Psychology 3, 11.IT.3.1. doi:10.2466/11.IT.3.1
    """
    r = (r_plus - r_minus) / (n * (n + 1) / 2)
    return r if signed else r.abs()


def point_biserial(
    n0: float | torch.Tensor,
    mean0: torch.Tensor,
    m2_0: torch.Tensor,
    n1: float | torch.Tensor,
    mean1: torch.Tensor,
    m2_1: torch.Tensor,
) -> torch.Tensor:
    """Point-biserial correlation of two groups from their streamed moments.

    Parameters
    ----------
    n0, n1 : float or torch.Tensor
        Sizes of the control (original) and treatment (augmented) groups: scalars, or per element
        where non-finite values were dropped.
    mean0, mean1 : torch.Tensor
        Group means per element.
    m2_0, m2_1 : torch.Tensor
        Centred sums of squares per element, ``sum (x - mean)^2``.

    Returns
    -------
    torch.Tensor
        ``(m1 - m0) sqrt(p0 p1) / s``, with ``p_g = n_g / (n0 + n1)`` and ``s`` the population standard
        deviation of both groups pooled (the Pearson correlation between the 0/1 group label and the
        value).  Elements whose pooled variance is zero (an activation no image or augmentation moves)
        get 0: there is no association, and the authors' ``+1e-20`` gave the same.
    """
    n = n0 + n1
    delta = mean1 - mean0
    total_m2 = m2_0 + m2_1 + delta * delta * (n0 * n1 / n)
    p0p1 = (n0 / n) * (n1 / n)
    sd = torch.sqrt(total_m2.clamp(min=0) / n)
    r = delta * torch.sqrt(torch.as_tensor(p0p1, dtype=delta.dtype, device=delta.device)) / sd
    return torch.where(sd > 0, r, torch.zeros_like(r))


def benjamini_yekutieli(p: np.ndarray) -> np.ndarray:
    """Benjamini–Yekutieli adjusted p-values over one family (all finite entries of ``p``).

    A thin wrapper of ``scipy.stats.false_discovery_control(p, method="by")`` that leaves NaN entries
    (elements without a test) as NaN and out of the family.

    Parameters
    ----------
    p : numpy.ndarray
        p-values of any shape.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, same shape, float64.

    References
    ----------
    Benjamini, Y. & Yekutieli, D. (2001). The control of the false discovery rate in multiple testing under
    dependency. Annals of Statistics 29(4), 1165-1188. doi:10.1214/aos/1013699998
    """
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = scipy.stats.false_discovery_control(p[ok], method="by")
    return out

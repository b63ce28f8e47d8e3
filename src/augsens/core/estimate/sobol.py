"""Streaming Sobol' indices from pick-freeze rows ``A, B, AB_1..AB_D[, BA_1..BA_D]``.

Each estimator below is a function of the running means and centred co-moments kept by
:class:`SobolAccumulator`; the docstrings give the sample formula (means over the ``n`` base samples)
and the identity that turns it into co-moments.  Outputs are centred by the pooled mean
``m = (mean(f_A) + mean(f_B)) / 2`` and the variance is the pooled ``var([f_A, f_B])`` (``ddof=0``), as in
:func:`scipy.stats.sobol_indices` (Sobol' & Levitan 1999 for the centring), so both agree to rounding.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import torch

from augsens.core.estimate._base import Ratio, finite_rows
from augsens.core.estimate.moments import OutputRowsAccumulator

__all__ = ["SobolAccumulator", "saltelli_2010", "jansen_1999", "janon_2014", "saltelli_2002"]


class _SobolStats(NamedTuple):
    """Named views of the state for one set of statistics (leading dims ``[...]``, elements ``O``)."""

    n: torch.Tensor  # [..., 1, O]
    mean_a: torch.Tensor  # [..., 1, O]
    mean_b: torch.Tensor
    mean_ab: torch.Tensor  # [..., D, O]
    mean_ba: torch.Tensor | None  # [..., D, O]
    m2_a: torch.Tensor  # [..., 1, O]
    m2_b: torch.Tensor
    c_a_b: torch.Tensor
    m2_ab: torch.Tensor  # [..., D, O]
    c_a_ab: torch.Tensor
    c_b_ab: torch.Tensor
    c_ba_ab: torch.Tensor | None  # [..., D, D, O], upper triangle j < k filled

    @property
    def centre(self) -> torch.Tensor:
        return (self.mean_a + self.mean_b) / 2

    @property
    def variance(self) -> torch.Tensor:
        """``var([f_A, f_B])`` over the 2n pooled values, ``ddof=0`` (scipy, SALib)."""
        delta = self.mean_a - self.mean_b
        return (self.m2_a + self.m2_b + self.n * delta.square() / 2) / (2 * self.n)


def saltelli_2010(s: _SobolStats) -> torch.Tensor:
    r"""First-order numerator of Saltelli et al. (2010), Table 2 (b).

    .. math:: V_j = \frac{1}{n}\sum_i f(B)_i\,\bigl(f(A_B^{(j)})_i - f(A)_i\bigr)

    with outputs centred by ``m``: ``mean((B - m)(AB_j - A)) = (C_{B,AB_j} - C_{B,A})/n
    + (mean_B - m)(mean_{AB_j} - mean_A)``.  ``S_j = V_j / V``.

    References: Saltelli, A. et al. (2010), Comput. Phys. Commun. 181, 259-270,
    doi:10.1016/j.cpc.2009.09.018.
    """
    return (s.c_b_ab - s.c_a_b) / s.n + (s.mean_b - s.centre) * (s.mean_ab - s.mean_a)


def jansen_1999(s: _SobolStats) -> torch.Tensor:
    r"""Total-effect numerator of Jansen (1999) (Saltelli et al. 2010, Table 2 (f)).

    .. math:: V_{Tj} = \frac{1}{2n}\sum_i \bigl(f(A)_i - f(A_B^{(j)})_i\bigr)^2

    ``= ½[(M2_A + M2_{AB_j} - 2 C_{A,AB_j})/n + (mean_A - mean_{AB_j})²]``; non-negative by
    construction.  ``ST_j = V_{Tj} / V``.

    References: Jansen, M. J. W. (1999), Comput. Phys. Commun. 117, 35-43,
    doi:10.1016/S0010-4655(98)00154-4.
    """
    return 0.5 * ((s.m2_a + s.m2_ab - 2 * s.c_a_ab) / s.n + (s.mean_a - s.mean_ab).square())


def janon_2014(s: _SobolStats) -> tuple[torch.Tensor, torch.Tensor]:
    r"""First-order index of Janon et al. (2014), eq. (6): numerator and its own denominator.

    With ``y = f(B)`` and ``y^j = f(A_B^{(j)})`` (they share only group ``j``) and
    ``μ_j = mean((y + y^j)/2)``:

    .. math:: S_j = \frac{\overline{y\,y^j} - \mu_j^2}{\overline{(y^2 + (y^j)^2)/2} - \mu_j^2}

    In co-moments: numerator ``C_{B,AB_j}/n - (mean_B - mean_{AB_j})²/4``, denominator
    ``(M2_B + M2_{AB_j})/(2n) + (mean_B - mean_{AB_j})²/4``.  Asymptotically efficient among
    pick-freeze estimators of ``S_j``.

    References: Janon, A. et al. (2014), ESAIM: Probab. Stat. 18, 342-364, doi:10.1051/ps/2013040.
    """
    gap = (s.mean_b - s.mean_ab).square() / 4
    return s.c_b_ab / s.n - gap, (s.m2_b + s.m2_ab) / (2 * s.n) + gap


def saltelli_2002(s: _SobolStats, first: torch.Tensor) -> torch.Tensor:
    r"""Second-order numerator of Saltelli (2002), eq. (12), as in SALib.

    .. math:: V_{jk} = \frac{1}{n}\sum_i f(B_A^{(j)})_i f(A_B^{(k)})_i - f(A)_i f(B)_i,\qquad
              S_{jk} = (V_{jk} - V_j - V_k) / V

    with centred outputs and ``V_j`` from :func:`saltelli_2010` (``first``, ``[..., D, O]``).  Returns
    ``[..., D, D, O]``, symmetric, NaN on the diagonal.

    References: Saltelli, A. (2002), Comput. Phys. Commun. 145, 280-297,
    doi:10.1016/S0010-4655(02)00280-1.
    """
    assert s.c_ba_ab is not None and s.mean_ba is not None
    m = s.centre
    # [..., j, k, O]: C_{BA_j, AB_k}/n + (mean_{BA_j} - m)(mean_{AB_k} - m), valid for j < k
    cross = s.c_ba_ab / s.n.unsqueeze(-2) + (s.mean_ba - m).unsqueeze(-2) * (s.mean_ab - m).unsqueeze(-3)
    base = s.c_a_b / s.n + (s.mean_a - m) * (s.mean_b - m)  # [..., 1, O]
    v_jk = cross - base.unsqueeze(-2)
    s2 = v_jk - first.unsqueeze(-2) - first.unsqueeze(-3)
    d = s2.shape[-2]
    upper = torch.triu(torch.ones(d, d, dtype=torch.bool, device=s2.device), diagonal=1)[..., None]
    s2 = torch.where(upper, s2, s2.transpose(-2, -3))
    eye = torch.eye(d, dtype=torch.bool, device=s2.device)[..., None]
    return torch.where(eye, torch.nan, s2)


class SobolAccumulator(OutputRowsAccumulator):
    """Streaming first-order, total and (optionally) second-order Sobol' indices.

    Parameters
    ----------
    D : int
        Number of groups (factors of the analysis).
    second_order : bool, default False
        Expect ``2D + 2`` rows (``BA_j`` blocks) and report ``S2`` (Saltelli 2002).
    replicates : int, default 1
        Replicate slots (independent randomisations of the design); ``> 1`` gives ``*_conf``.
    method : {"saltelli_2010", "janon_2014"}, default "saltelli_2010"
        First-order estimator.  Totals are always Jansen (1999).
    dtype : torch.dtype, default torch.float64
        State dtype (``torch.float32`` halves memory).
    work_dtype : torch.dtype, optional
        Per-batch arithmetic for float32 or narrower outputs (default: the state dtype);
        ``torch.float32`` beside a float64 state merges batches into a float32 block first
        (:mod:`augsens.core.estimate._base`).
    device : torch.device or str, optional
        Where the state lives (default: the device of the first batch).

    Notes
    -----
    State per output element and replicate: ``count``, means of the ``D + 2`` rows (``2D + 2`` with second
    order), and co-moments ``M2_A, M2_B, C_{A,B}`` and per group ``M2_{AB_j}, C_{A,AB_j}, C_{B,AB_j}``:
    **6 + 4D numbers** (plus ``D`` means and ``D(D-1)/2`` co-moments ``C_{BA_j,AB_k}`` with second order),
    independent of ``n``.
    """

    def __init__(
        self,
        D: int,
        *,
        second_order: bool = False,
        replicates: int = 1,
        method: Literal["saltelli_2010", "janon_2014"] = "saltelli_2010",
        dtype: torch.dtype = torch.float64,
        work_dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if isinstance(D, bool) or not isinstance(D, int) or D < 1:
            raise ValueError(f"D (number of groups) must be a positive integer, got {D!r}")
        if method not in ("saltelli_2010", "janon_2014"):
            raise ValueError(
                f"method={method!r} is not a first-order estimator; use 'saltelli_2010' or 'janon_2014'"
            )
        self.D = D
        self.second_order = bool(second_order)
        #: the first-order estimator (the ``method`` keyword)
        self.estimator = method
        # variables: 0 = A, 1 = B, 2..D+1 = AB_j, D+2..2D+1 = BA_j
        ab = range(2, 2 + D)
        # order: squares of A, B, AB_j; A against B, AB_j; B against AB_j (contiguous blocks)
        pairs = [(0, 0), (1, 1)] + [(j, j) for j in ab]
        pairs += [(0, 1)] + [(0, j) for j in ab] + [(1, j) for j in ab]
        if self.second_order:
            pairs += [(2 + D + j, 2 + k) for j in range(D) for k in range(j + 1, D)]
        self._rows = 2 * D + 2 if self.second_order else D + 2
        self.conf_names = ("S1", "ST", "S2") if self.second_order else ("S1", "ST")
        super().__init__(
            self._rows, pairs, replicates=replicates, dtype=dtype, work_dtype=work_dtype, device=device
        )

    def _config(self) -> dict[str, Any]:
        return {
            "D": self.D,
            "second_order": self.second_order,
            "replicates": self.replicates,
            "method": self.estimator,
        }

    def update(self, y: torch.Tensor, replicate: int = 0) -> None:
        """Add a batch of outputs ``y`` ``[b, R, *out]`` (rows in
        :class:`~augsens.core.design.SobolDesign` order).

        A base sample with a non-finite value in any of its rows at an element is left out for that
        element only (counted in ``nonfinite``).
        """
        v = self._check_batch(y, replicate)
        self._accumulate(v, finite_rows(v), replicate)

    def _stats(self, n: torch.Tensor, mean: torch.Tensor, com: torch.Tensor) -> _SobolStats:
        D = self.D
        n = n.unsqueeze(-2)
        c_ba_ab = None
        if self.second_order:
            tri = com[..., 3 + 3 * D :, :]
            c_ba_ab = tri.new_zeros(tri.shape[:-2] + (D, D, tri.shape[-1]))
            j, k = torch.triu_indices(D, D, offset=1, device=tri.device)
            c_ba_ab[..., j, k, :] = tri
        return _SobolStats(
            n=n,
            mean_a=mean[..., 0:1, :],
            mean_b=mean[..., 1:2, :],
            mean_ab=mean[..., 2 : 2 + D, :],
            mean_ba=mean[..., 2 + D :, :] if self.second_order else None,
            m2_a=com[..., 0:1, :],
            m2_b=com[..., 1:2, :],
            m2_ab=com[..., 2 : 2 + D, :],
            c_a_b=com[..., 2 + D : 3 + D, :],
            c_a_ab=com[..., 3 + D : 3 + 2 * D, :],
            c_b_ab=com[..., 3 + 2 * D : 3 + 3 * D, :],
            c_ba_ab=c_ba_ab,
        )

    def _estimates(self, n: torch.Tensor, mean: torch.Tensor, com: torch.Tensor) -> dict[str, Ratio]:
        s = self._stats(n, mean, com)
        var = s.variance
        first = saltelli_2010(s)
        if self.estimator == "janon_2014":
            num, den = janon_2014(s)
            out = {"S1": Ratio(num, den, ("factor",))}
        else:
            out = {"S1": Ratio(first, var, ("factor",))}
        out["ST"] = Ratio(jansen_1999(s), var, ("factor",))
        if self.second_order:
            out["S2"] = Ratio(saltelli_2002(s, first), var.unsqueeze(-2), ("factor", "factor2"))
        return out

    def _attrs(self) -> dict[str, Any]:
        return {
            "first_order_method": self.estimator,
            "total_order_method": "jansen_1999",
            **({"second_order_method": "saltelli_2002"} if self.second_order else {}),
        }

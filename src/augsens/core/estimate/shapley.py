"""Streaming Shapley effects (Owen 2014) for independent groups: exact (2^D hybrids) and permutation.

Both estimators use the closed index ``τ_u = Var(E[Y | X_u]) = E[(f(x) - m)(f(z^u) - f(x'))]`` where
``z^u`` takes the groups in ``u`` from ``x`` and the rest from ``x'``.  Centring by ``m = mean f(x)``
makes the sample version a plain covariance, ``τ_u = Cov(f(x), f(z^u) - f(x'))``, kept as running
co-moments.  Effects are normalised by the variance estimate they sum to, so ``Σ_j Sh_j / V = 1`` holds
exactly for every output element.
"""

from __future__ import annotations

from typing import Any

import torch

from augsens.core.design import MAX_EXACT_SHAPLEY_GROUPS
from augsens.core.estimate._base import Ratio, finite_rows
from augsens.core.estimate.moments import OutputRowsAccumulator
from augsens.errors import UserInputError

__all__ = [
    "ShapleyAccumulator",
    "PermutationShapleyAccumulator",
    "mobius_inverse",
    "owen_2014",
    "pair_subsets",
    "grabisch_roubens_1999",
]


def _check_groups(D: int, limit: int | None = None) -> None:
    if isinstance(D, bool) or not isinstance(D, int) or D < 1:
        raise ValueError(f"D (number of groups) must be a positive integer, got {D!r}")
    if limit is not None and D > limit:
        raise ValueError(
            f"exact Shapley effects keep 2^D = {2**D} co-moments per output for D={D} (at most {limit} "
            "groups allowed); use PermutationShapleyAccumulator (method='permutation')"
        )


def check_orders(perms: torch.Tensor, D: int) -> None:
    """Refuse rows of ``perms`` ``[b, D]`` that are not permutations of ``0..D-1``: the scatter in
    :meth:`PermutationShapleyAccumulator.update` would leave some groups' steps unwritten (memory never
    initialised) and count others twice."""
    ok = perms.sort(dim=1).values == torch.arange(D, device=perms.device)
    if not bool(ok.all()):
        row = int((~ok.all(dim=1)).nonzero()[0, 0])
        raise UserInputError(
            f"row {row} of perms ({perms[row].tolist()!r}) is not a permutation of 0..{D - 1}: each base "
            f"sample needs an order of all {D} groups, each once (as PermutationShapleyDesign draws them)"
        )


def mobius_inverse(tau: torch.Tensor, D: int) -> torch.Tensor:
    r"""Möbius inversion over subsets (fast subset transform), along axis ``-2`` of size ``2^D``.

    .. math:: \sigma^2_u = \sum_{w \subseteq u} (-1)^{|u| - |w|} \tau_w

    ``D`` passes of ``hi -= lo`` over the bit axes: ``O(D 2^D)`` per element instead of ``O(3^D)``.
    Subset ``u`` is the bit mask with bit ``j`` for group ``j``.
    """
    lead, size = tau.shape[:-2], tau.shape[-1]
    t = tau.reshape(lead + (2,) * D + (size,)).clone()
    for j in range(D):
        axis = len(lead) + D - 1 - j  # bit 0 is the fastest-varying (last) subset axis
        t.select(axis, 1).sub_(t.select(axis, 0))
    return t.reshape(tau.shape)


def owen_2014(sigma2: torch.Tensor, D: int) -> torch.Tensor:
    r"""Shapley effects from ANOVA component variances (Owen 2014, eq. (5)).

    .. math:: \mathrm{Sh}_j = \sum_{u \ni j} \sigma^2_u / |u|

    ``sigma2`` is ``[..., 2^D, O]``; returns ``[..., D, O]`` (unnormalised).

    References: Owen, A. B. (2014), SIAM/ASA J. Uncertain. Quantif. 2, 245-251, doi:10.1137/130936233.
    """
    u = torch.arange(1 << D, device=sigma2.device)
    bits = ((u[None, :] >> torch.arange(D, device=sigma2.device)[:, None]) & 1).to(sigma2.dtype)  # [D, 2^D]
    weight = bits / bits.sum(0).clamp_min(1)
    return torch.einsum("ju,...uo->...jo", weight, sigma2)


def pair_subsets(D: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Bit masks ``[D, D]`` of the pairs ``{j, k}`` (entry ``(j, k)`` = ``2^j | 2^k``; ``2^j`` on the
    diagonal), to index the subset axis of closed indices or component variances."""
    bit = 1 << torch.arange(D, device=device)
    return bit[:, None] | bit[None, :]


def _nan_diagonal(x: torch.Tensor) -> torch.Tensor:
    """``x`` ``[..., D, D, O]`` with NaN on the diagonal (a pair of a factor with itself is undefined)."""
    d = x.shape[-2]
    eye = torch.eye(d, dtype=torch.bool, device=x.device)[..., None]
    return torch.where(eye, torch.nan, x)


def grabisch_roubens_1999(sigma2: torch.Tensor, D: int) -> torch.Tensor:
    r"""Pairwise Shapley interaction index of the closed-index game (Grabisch & Roubens 1999), from the
    ANOVA component variances.

    For a game ``v`` on the groups with Möbius transform ``m``, the Shapley interaction index of a
    pair is ``I_{jk} = Σ_{S ⊆ N∖{j,k}} (D-|S|-2)! |S|! / (D-1)! · Δ_{jk} v(S)``, with
    ``Δ_{jk} v(S) = v(S ∪ {j,k}) - v(S ∪ {j}) - v(S ∪ {k}) + v(S)``, or equivalently
    ``I_{jk} = Σ_{T ⊇ {j,k}} m(T) / (|T| - 1)`` (Grabisch & Roubens 1999, Möbius representation; Grabisch,
    Marichal & Roubens 2000).  For the closed-index game ``v(u) = τ_u`` of Owen (2014), with independent
    groups, the Möbius transform is ``m(u) = σ²_u`` (the ANOVA component variances), so

    .. math:: I_{jk} = \sum_{u \supseteq \{j, k\}} \frac{\sigma^2_u}{|u| - 1}

    the interaction index that Rabitti & Borgonovo (2019) bring to sensitivity analysis (their
    Shapley–Owen effect), here with independent groups.  Every component that involves both ``j`` and
    ``k`` is shared equally among the ``|u| - 1`` pairs it forms with ``j``, so a row sums to the whole
    interaction variance of ``j``: ``Σ_{k≠j} I_{jk} = Σ_{u∋j, |u|≥2} σ²_u = V (ST_j - S1_j)``.  Each term is
    a variance, so ``I_{jk} >= 0`` up to noise, and ``I_{jk} = σ²_{jk}`` when no component of order three
    or more involves the pair.  (The dual game ``v*(u) = E Var(Y | X_{-u})`` has the same Shapley values
    but the opposite sign for pairs, so the closed-index game is the one that reads "more interaction,
    larger index".)

    ``sigma2`` is ``[..., 2^D, O]``; returns ``[..., D, D, O]`` (unnormalised), symmetric, NaN on the
    diagonal.

    References: Grabisch, M. & Roubens, M. (1999), An axiomatic approach to the concept of interaction
    among players in cooperative games, Int. J. Game Theory 28, 547-565; Grabisch, M., Marichal, J.-L. &
    Roubens, M. (2000), Equivalent representations of set functions, Math. Oper. Res. 25, 157-178;
    Rabitti, G. & Borgonovo, E. (2019), A Shapley-Owen index for interaction quantification, SIAM/ASA J.
    Uncertain. Quantif. 7(3), 1060-1075.
    """
    u = torch.arange(1 << D, device=sigma2.device)
    size = torch.zeros_like(u)
    for j in range(D):
        size += (u >> j) & 1
    pairs = pair_subsets(D, sigma2.device).reshape(-1, 1)  # [D*D, 1]
    contains = (u[None, :] & pairs) == pairs  # [D*D, 2^D]: u ⊇ {j, k}
    weight = torch.where(contains & (size >= 2), 1.0 / (size - 1).clamp_min(1), 0.0).to(sigma2.dtype)
    out = torch.einsum("pu,...uo->...po", weight, sigma2)
    return _nan_diagonal(out.reshape(out.shape[:-2] + (D, D, out.shape[-1])))


class ShapleyAccumulator(OutputRowsAccumulator):
    """Exact-design Shapley effects from all ``2^D`` hybrids of each base pair ``(x, x')``.

    Parameters
    ----------
    D : int
        Number of groups, at most :data:`~augsens.core.design.MAX_EXACT_SHAPLEY_GROUPS`.
    replicates : int, default 1
        Replicate slots; ``> 1`` gives ``*_conf`` (Student-t over replicates).
    dtype, device
        State dtype (float64 default) and device (default: that of the first batch).
    work_dtype : torch.dtype, optional
        Per-batch arithmetic for float32 or narrower outputs (default: the state dtype);
        ``torch.float32`` beside a float64 state merges batches into a float32 block first
        (:mod:`augsens.core.estimate._base`).

    Notes
    -----
    Rows come in :class:`~augsens.core.design.ShapleyDesign` order (row ``u`` = groups ``u`` from ``x``).
    Per element: the ``2^D`` row means and the co-moments ``C(f(x), f(z^u))``, i.e. ``2^{D+1}`` numbers.
    ``finalize`` computes ``τ_u = (C_{x,z^u} - C_{x,x'})/n``, ``σ²_u`` by :func:`mobius_inverse` and
    ``Sh_j`` by :func:`owen_2014`; ``V = τ_{all}``.  Byproducts at no extra cost: ``S1_j = τ_{{j}}/V`` and
    ``ST_j = 1 - τ_{-j}/V``, and the pairwise interaction maps (dims ``("factor", "factor2", ...)``,
    symmetric, NaN on the diagonal):

    * ``S2`` – the second-order Sobol' index ``σ²_{jk}/V = (τ_{jk} - τ_j - τ_k)/V``: the share of variance
      owed to the interaction of ``j`` and ``k`` alone, the quantity the Saltelli design's ``S2``
      (:func:`~augsens.core.estimate.sobol.saltelli_2002`) estimates.  The closed second-order index
      ``τ_{jk}/V`` (the share explained by the pair together) is ``S1_j + S1_k + S2_{jk}`` exactly, so it
      is not stored again;
    * ``shapley_interaction`` – the pairwise Shapley interaction index ``I_{jk}/V``
      (:func:`grabisch_roubens_1999`): every component involving both ``j`` and ``k``, shared among the
      pairs of its members.

    All are linear in the closed indices, so their aggregates are numerators summed over variances as
    for every other index, and their ``*_conf`` half-widths come from the replicates in the same way.
    """

    conf_names = ("shapley", "S1", "ST", "S2", "shapley_interaction")
    _rows: int  # 2^D, set in __init__

    def __init__(
        self,
        D: int,
        *,
        replicates: int = 1,
        dtype: torch.dtype = torch.float64,
        work_dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        _check_groups(D, MAX_EXACT_SHAPLEY_GROUPS)
        self.D = D
        self._rows = 1 << D
        full = self._rows - 1
        super().__init__(
            self._rows,
            [(full, u) for u in range(self._rows)],
            replicates=replicates,
            dtype=dtype,
            work_dtype=work_dtype,
            device=device,
        )

    def _config(self) -> dict[str, Any]:
        return {"D": self.D, "replicates": self.replicates}

    def update(self, y: torch.Tensor, replicate: int = 0) -> None:
        """Add outputs ``y`` ``[b, 2^D, *out]``; non-finite base samples are dropped per element."""
        v = self._check_batch(y, replicate)
        self._accumulate(v, finite_rows(v), replicate)

    def _estimates(self, n: torch.Tensor, mean: torch.Tensor, com: torch.Tensor) -> dict[str, Ratio]:
        D, full = self.D, self._rows - 1
        tau = (com - com[..., 0:1, :]) / n.unsqueeze(-2)  # [..., 2^D, O]
        var = tau[..., full : full + 1, :]
        singles = tau[..., [1 << j for j in range(D)], :]
        complements = tau[..., [full ^ (1 << j) for j in range(D)], :]
        sigma2 = mobius_inverse(tau, D)
        pairs = pair_subsets(D, tau.device)
        pair_var = var.unsqueeze(-2)  # [..., 1, 1, O]
        pair_dims = ("factor", "factor2")
        return {
            "shapley": Ratio(owen_2014(sigma2, D), var, ("factor",)),
            "S1": Ratio(singles, var, ("factor",)),
            "ST": Ratio(var - complements, var, ("factor",)),
            # σ²_{jk} (Möbius inversion): τ_{jk} - τ_j - τ_k, since τ_∅ = 0 exactly
            "S2": Ratio(_nan_diagonal(sigma2[..., pairs, :]), pair_var, pair_dims),
            "shapley_interaction": Ratio(grabisch_roubens_1999(sigma2, D), pair_var, pair_dims),
        }

    def _attrs(self) -> dict[str, Any]:
        return {
            "shapley_method": "exact (Owen 2014, Möbius inversion of closed indices)",
            "interaction_method": (
                "S2: Möbius inversion of closed indices; shapley_interaction: Grabisch & Roubens 1999"
            ),
        }


class PermutationShapleyAccumulator(OutputRowsAccumulator):
    """Shapley effects from one random order of groups per base sample (Goda 2021, one loop).

    Parameters
    ----------
    D : int
        Number of groups (any).
    replicates, dtype, device
        As :class:`ShapleyAccumulator`.
    work_dtype : torch.dtype, optional
        Per-batch arithmetic for float32 or narrower outputs (default: the state dtype);
        ``torch.float32`` beside a float64 state merges batches into a float32 block first
        (:mod:`augsens.core.estimate._base`).

    Notes
    -----
    Base sample ``i`` brings a chain ``z_0 = x', z_1, ..., z_D = x`` where ``z_k`` switches group
    ``π(k)`` from ``x'`` to ``x`` (:class:`~augsens.core.design.PermutationShapleyDesign`).  Goda (2021)'s
    estimator adds ``(f(x) - m)(f(z_k) - f(z_{k-1}))`` to ``Sh_{π(k)}``; because the predecessor sets of a
    uniform random order carry the Shapley weights it is unbiased, and the terms telescope to
    ``(f(x) - m)(f(x) - f(x'))``, so efficiency holds sample by sample.  Here ``Δ_j = f(z_k) - f(z_{k-1})``
    for ``π(k) = j`` is formed per sample and ``Sh_j = Cov(f(x), Δ_j)`` kept as co-moments (``m`` = the
    running mean of ``f(x)``): ``2D + 2`` numbers per element.

    References: Goda, T. (2021), Reliab. Eng. Syst. Saf. 213, 107702, doi:10.1016/j.ress.2021.107702.
    """

    conf_names = ("shapley",)
    _rows: int  # D + 1, set in __init__

    def __init__(
        self,
        D: int,
        *,
        replicates: int = 1,
        dtype: torch.dtype = torch.float64,
        work_dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        _check_groups(D)
        self.D = D
        self._rows = D + 1
        pairs = [(0, 0)] + [(0, 1 + j) for j in range(D)]
        super().__init__(
            D + 1, pairs, replicates=replicates, dtype=dtype, work_dtype=work_dtype, device=device
        )

    def _config(self) -> dict[str, Any]:
        return {"D": self.D, "replicates": self.replicates}

    def update(self, y: torch.Tensor, perms: torch.Tensor, replicate: int = 0) -> None:
        """Add outputs ``y`` ``[b, D+1, *out]`` (chain order) with their group orders ``perms`` ``[b, D]``.

        Every row of ``perms`` must be a permutation of ``0..D-1`` (checked with one sort and one
        comparison; for ``perms`` on an accelerator that comparison is the one device-to-host
        synchronisation of the update, so pass them on the CPU where they are drawn).

        Raises
        ------
        UserInputError
            A row of ``perms`` repeats or misses a group.
        """
        y = self._check_batch(y, replicate)
        if (
            not isinstance(perms, torch.Tensor)
            or perms.shape != (y.shape[0], self.D)
            or perms.is_floating_point()
        ):
            raise ValueError(
                f"perms must be an integer tensor [{y.shape[0]}, {self.D}] (a group order per base sample), "
                f"got {getattr(perms, 'shape', type(perms).__name__)}"
            )
        check_orders(perms, self.D)
        v = y.reshape(y.shape[0], self._rows, -1)
        steps = v[:, 1:] - v[:, :-1]  # step k switches group perms[:, k]
        index = perms.to(device=v.device, dtype=torch.int64)[:, :, None].expand_as(steps)
        deltas = torch.empty_like(steps).scatter_(1, index, steps)
        self._accumulate(torch.cat([v[:, -1:], deltas], dim=1), finite_rows(v), replicate)

    def _estimates(self, n: torch.Tensor, mean: torch.Tensor, com: torch.Tensor) -> dict[str, Ratio]:
        shapley = com[..., 1:, :] / n.unsqueeze(-2)
        return {"shapley": Ratio(shapley, shapley.sum(-2, keepdim=True), ("factor",))}

    def _attrs(self) -> dict[str, Any]:
        return {"shapley_method": "permutation (Goda 2021)"}

"""Streaming elementary effects (Morris 1991; Campolongo et al. 2007) from trajectories of ``D + 1`` rows.

A trajectory (:class:`~augsens.core.trajectories.MorrisDesign`) moves one group per step, by ``±Δ`` in
unit-cube coordinates.  The elementary effect of the group moved between rows ``r`` and ``r + 1`` is

.. math:: EE_j = s_j \\, \\frac{f(x^{(r+1)}) - f(x^{(r)})}{\\Delta}

with ``s_j = ±1`` the direction of the step (for a group of several columns, the mean direction of its
columns, as in SALib).  Per base sample every group has one effect, so the effects are ``D`` variables
per element and the absolute effects ``|f(x^{(r+1)}) - f(x^{(r)})| / Δ`` ``D`` more; the running means
and the centred sums of squares of the signed effects give the three screening measures.
"""

from __future__ import annotations

from typing import Any

import torch

from augsens.core.estimate._base import CoMomentAccumulator, Ratio, finite_rows
from augsens.core.estimate.shapley import check_orders

__all__ = ["MorrisAccumulator", "morris_1991", "campolongo_2007"]


def morris_1991(n: torch.Tensor, mean: torch.Tensor, m2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Mean and variance of the elementary effects (Morris 1991, section 3).

    .. math:: \mu_j = \frac1r \sum_t EE_j^{(t)}, \qquad
              \sigma_j^2 = \frac{1}{r - 1} \sum_t \bigl(EE_j^{(t)} - \mu_j\bigr)^2

    over the ``r`` trajectories ``t``: the running mean and ``M2 / (r - 1)`` (``ddof = 1``, as SALib).
    A large ``σ_j`` marks a factor whose effect depends on where the others are: interactions or
    curvature.

    References: Morris, M. D. (1991), Technometrics 33(2), 161-174, doi:10.1080/00401706.1991.10484804.
    """
    return mean, m2 / (n - 1).clamp_min(1)


def campolongo_2007(mean_abs: torch.Tensor) -> torch.Tensor:
    r"""Mean absolute elementary effect (Campolongo, Cariboni & Saltelli 2007, eq. (5)).

    .. math:: \mu^*_j = \frac1r \sum_t \bigl|EE_j^{(t)}\bigr|

    Effects of opposite signs do not cancel in ``μ*``, so it ranks factors as the total Sobol' index
    does (ibid., section 3); for a group it is the one measure with a plain meaning.

    References: Campolongo, F., Cariboni, J. & Saltelli, A. (2007), Environ. Model. Softw. 22(10),
    1509-1518, doi:10.1016/j.envsoft.2006.10.004.
    """
    return mean_abs


class MorrisAccumulator(CoMomentAccumulator):
    """Streaming ``mu``, ``mu_star`` and ``sigma`` of the elementary effects of every output element.

    Parameters
    ----------
    D : int
        Number of groups (one elementary effect per group and trajectory).
    delta : float
        The step ``Δ`` of the design in unit-cube coordinates
        (:func:`~augsens.core.trajectories.morris_step`).
    replicates : int, default 1
        Replicate slots (independent randomisations of the design); ``> 1`` gives ``*_conf``.
    dtype : torch.dtype, default torch.float64
        State dtype.
    work_dtype : torch.dtype, optional
        Per-batch dtype for float32 outputs (float32 blocks merged into the state; see
        :mod:`augsens.core.estimate._base`).  Default: ``dtype``.
    device : torch.device or str, optional
        Where the state lives (default: the device of the first batch).

    Notes
    -----
    State per output element and replicate: ``count``, the means of the ``D`` signed and ``D`` absolute
    effects and the ``D`` centred sums of squares of the signed ones: **1 + 3D numbers**.

    ``aggregate`` over a group of elements (a channel, a checkpoint) averages ``mu`` and ``mu_star`` over
    its elements and reports the root mean square of their ``sigma``: numerators (the per-element
    measures, ``sigma²``) summed, divided by the number of elements.  The measures keep the units of the
    output, so the elements of larger activations weigh more, as the variances do in aggregated Sobol'
    indices.  An element with no finite trajectory (two for ``sigma``) is left out.
    """

    def __init__(
        self,
        D: int,
        *,
        delta: float,
        replicates: int = 1,
        dtype: torch.dtype = torch.float64,
        work_dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if isinstance(D, bool) or not isinstance(D, int) or D < 1:
            raise ValueError(f"D (number of groups) must be a positive integer, got {D!r}")
        if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 < delta <= 1:
            raise ValueError(f"delta (the step in unit-cube coordinates) must lie in (0, 1], got {delta!r}")
        self.D = D
        self.delta = float(delta)
        self._rows = D + 1
        self.conf_names = ("mu", "mu_star", "sigma")
        # variables: 0..D-1 signed effects per group, D..2D-1 absolute effects; pairs: squares of the first
        super().__init__(
            2 * D,
            [(j, j) for j in range(D)],
            replicates=replicates,
            dtype=dtype,
            work_dtype=work_dtype,
            device=device,
        )

    def _config(self) -> dict[str, Any]:
        return {"D": self.D, "delta": self.delta, "replicates": self.replicates}

    def update(self, y: torch.Tensor, order: torch.Tensor, sign: torch.Tensor, replicate: int = 0) -> None:
        """Add a batch of trajectories.

        Parameters
        ----------
        y : Tensor ``[b, D + 1, *out]``
            Outputs on the rows of each trajectory, in design order.
        order : LongTensor ``[b, D]``
            The group moved at each step (:meth:`~augsens.core.trajectories.MorrisDesign.rows_and_steps`),
            a permutation of ``0..D-1`` per trajectory (checked on the host, before it is moved).
        sign : Tensor ``[b, D]``
            Direction of each step, in ``[-1, 1]``.
        replicate : int, default 0
        """
        if order.shape != (y.shape[0], self.D) or sign.shape != (y.shape[0], self.D):
            raise ValueError(
                f"order and sign must be [batch, D] = [{y.shape[0]}, {self.D}], got {tuple(order.shape)} and "
                f"{tuple(sign.shape)}"
            )
        check_orders(order, self.D)
        v = self._check_batch(y, replicate)  # [b, D + 1, O]
        b, size = v.shape[0], v.shape[-1]
        step = v[:, 1:] - v[:, :-1]  # [b, D, O] in step order
        index = order.to(v.device)[:, :, None].expand(b, self.D, size)
        # in the batch's working dtype (a float32 block under state_dtype "mixed", else the state's)
        scale = (sign.to(v.device, v.dtype) / self.delta)[:, :, None]
        effects = torch.empty(b, 2 * self.D, size, dtype=v.dtype, device=v.device)
        effects[:, : self.D].scatter_(1, index, step * scale)
        effects[:, self.D :].scatter_(1, index, step.abs_().div_(self.delta))
        self._accumulate(effects, finite_rows(v), replicate)

    def _estimates(self, n: torch.Tensor, mean: torch.Tensor, com: torch.Tensor) -> dict[str, Ratio]:
        D = self.D
        n = n.unsqueeze(-2)
        mu, var = morris_1991(n, mean[..., :D, :], com)
        mu_star = campolongo_2007(mean[..., D:, :])
        # one per element that has the measure, 0 elsewhere: the aggregate of a group of elements is
        # the mean over those that have it, and an element without is NaN (0 / 0)
        seen, spread = (n > 0).to(self.dtype), (n > 1).to(self.dtype)
        return {
            "mu": Ratio(mu * seen, seen, ("factor",), guard=False),
            "mu_star": Ratio(mu_star * seen, seen, ("factor",), guard=False),
            "sigma": Ratio(var * spread, spread, ("factor",), guard=False),
        }

    def _derived(
        self, values: dict[str, torch.Tensor], dims: dict[str, tuple[str, ...]]
    ) -> tuple[dict[str, torch.Tensor], dict[str, tuple[str, ...]]]:
        # "sigma" holds the (mean) variance until here
        return {**values, "sigma": values["sigma"].sqrt()}, dims

    def pooled_moments(self) -> Any:
        """Not available: the state holds elementary effects, not outputs (a study keeps a moments pass)."""
        raise TypeError(
            "MorrisAccumulator keeps elementary effects, not the outputs' moments: use a "
            "MomentsAccumulator beside it"
        )

    def _attrs(self) -> dict[str, Any]:
        return {
            "elementary_effects": "morris_1991",
            "absolute_effects": "campolongo_2007",
            "step": self.delta,
        }

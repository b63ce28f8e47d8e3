"""Morris trajectories: ``D + 1`` rows per base sample, each moving one group by a fixed step.

The elementary-effects design of Morris (1991) with groups (Campolongo, Cariboni & Saltelli 2007): on
the grid of ``p`` levels ``{0, 1/(p-1), ..., 1}`` of the unit cube, a base sample is a *trajectory*
that starts at a grid point and moves the groups one at a time, in a random order, each of its columns
by ``±Δ`` with ``Δ = p / (2 (p - 1))`` (the step of Morris 1991, with which every level is reached equally
often).  Per column: a level ``x*`` of the lower half ``{0, ..., 1 - Δ}``, a direction ``d = ±1``;
the column starts at ``x*`` (``d = +1``) or ``x* + Δ`` (``d = -1``) and moves once, when its group's
turn comes.  This is the construction of SALib's ``morris.sample`` (its ``B*`` matrix), so
``SALib.analyze.morris`` reads the rows of this design as its own.

The grid level comes from the base point ``A`` (``floor(A_c p / 2)``, so a Sobol' design stratifies
the starting levels), the direction from ``B`` (``d = +1`` where ``B_c >= 1/2``), the order of the
groups from a counter-based stream, as in :class:`~augsens.core.design.PermutationShapleyDesign`: any
range of trajectories is regenerated on its own, bit for bit.

References
----------
Morris, M. D. (1991). Factorial sampling plans for preliminary computational experiments.
Technometrics 33(2), 161-174. doi:10.1080/00401706.1991.10484804
Campolongo, F., Cariboni, J. & Saltelli, A. (2007). An effective screening design for sensitivity
analysis of large models. Environ. Model. Softw. 22(10), 1509-1518. doi:10.1016/j.envsoft.2006.10.004
"""

from __future__ import annotations

import torch

from augsens.core.design import BasePointDesign, DesignName
from augsens.core.factors import Problem

__all__ = ["MorrisDesign", "DEFAULT_LEVELS", "morris_step"]

#: Grid levels by default.  A categorical factor (the image, the composition order) decodes to at most
#: ``p`` distinct values on the grid, so a study needs more than the 4 levels usual for continuous
#: inputs; 16 levels give a step of 8/15.
DEFAULT_LEVELS = 16


def morris_step(levels: int) -> float:
    """The step ``Δ = p / (2 (p - 1))`` of a ``p``-level grid (SALib's ``_compute_delta``)."""
    return levels / (2 * (levels - 1))


def _check_levels(levels: object) -> int:
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2 or levels % 2:
        raise ValueError(
            f"levels={levels!r} must be an even integer >= 2 (the Morris grid has p levels and a step of "
            "p / (2 (p - 1)) grid units); e.g. 4 or 16"
        )
    return levels


class MorrisDesign(BasePointDesign):
    """Morris trajectories of groups: ``R = D + 1`` rows per base sample (one trajectory).

    Row ``r`` has moved the groups ``order[:r]``; row 0 is the start, row ``D`` the end.

    Parameters
    ----------
    problem : Problem
        Factors and groups; a group's columns move together (one elementary effect per group).
    n : int
        Trajectories (``r`` in Morris 1991); ``f`` is evaluated ``n (D + 1)`` times.
    levels : int, default 16
        Grid levels ``p`` (even); the step is :func:`morris_step`.
    seed, method, replicates, first
        As :class:`~augsens.core.design.SobolDesign` (``method`` draws the starting levels and
        directions).

    Examples
    --------
    >>> import augsens.core.factors as fa
    >>> p = fa.Problem([fa.Uniform(f"x{i}", 0, 1) for i in range(3)])
    >>> d = MorrisDesign(p, 8, levels=4, method="iid")
    >>> rows, order, sign = d.rows_and_steps(0, 2)
    >>> tuple(rows.shape), tuple(order.shape)
    ((2, 4, 3), (2, 3))
    >>> steps = (rows[:, 1:] - rows[:, :-1]).abs().sum(-1)  # one column moves per step, by 2/3
    >>> bool(torch.allclose(steps, torch.tensor(2 / 3, dtype=torch.float64)))
    True
    """

    #: the starting levels use one digit of each coordinate (``p / 2`` cells); the pick-freeze
    #: measurements behind :data:`~augsens.core.design.MIN_QMC_POINTS` do not apply
    _small_sample_warning = False

    def __init__(
        self,
        problem: Problem,
        n: int,
        *,
        levels: int = DEFAULT_LEVELS,
        seed: int = 0,
        method: DesignName = "sobol",
        replicates: int = 1,
        first: int | None = None,
    ) -> None:
        self.levels = _check_levels(levels)
        self.delta = morris_step(self.levels)
        super().__init__(problem, n, seed=seed, method=method, replicates=replicates, first=first)
        self.labels = [f"step_{r}" for r in range(self.D + 1)]
        self.rows_per_sample = self.D + 1
        # [D, k] share of group j made of column c, for the mean direction of a group's step
        cols = self._group_cols.to(torch.float64)
        self._member_mean = cols / cols.sum(1, keepdim=True)

    def rows_and_steps(self, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Trajectories ``start..start+count-1``: rows, group orders and step signs.

        Returns
        -------
        rows : Tensor ``[count, D + 1, k]`` float64 in ``[0, 1]``
        order : LongTensor ``[count, D]``
            ``order[i, r]``: the group moved between rows ``r`` and ``r + 1``.
        sign : Tensor ``[count, D]`` float64 in ``[-1, 1]``
            Mean direction of the columns of that group (``±1`` for a group of one column; SALib's
            convention for groups, whose ``mu`` averages the members' signed effects).
        """
        a, b = self.base(start, count)
        half = self.levels // 2
        low = torch.clamp(torch.floor(a * half), max=half - 1) / (self.levels - 1)  # [count, k]
        up = b >= 0.5
        direction = torch.where(up, 1.0, -1.0).to(torch.float64)
        begin = torch.where(up, low, low + self.delta)
        order = self._permutations(start, count)
        position = torch.argsort(order, dim=1)[:, self.problem.group_index]  # [count, k]
        moved = position[:, None, :] < torch.arange(self.D + 1)[None, :, None]  # [count, D + 1, k]
        rows = begin[:, None, :] + moved * (direction * self.delta)[:, None, :]
        sign = (direction @ self._member_mean.T).gather(1, order)  # [count, D] in step order
        return rows, order, sign

    def unit_rows(self, start: int, count: int) -> torch.Tensor:
        return self.rows_and_steps(start, count)[0]

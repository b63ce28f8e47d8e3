"""Public one-call estimators: ``sobol``, ``shapley``, ``morris`` and ``moments`` of any function of the
factors.

Each validates its arguments, builds a method (:mod:`augsens.core.methods`: a design and its
accumulator), then runs the one loop (:mod:`augsens.core.loop`): unit rows -> :meth:`Problem.decode` ->
``f`` -> ``update``.  ``f`` is evaluated batch by batch, so outputs of any size stream through without being
stored.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr

import augsens.display  # noqa: F401  (registers the .augsens summary accessor on results)
from augsens.core import loop
from augsens.core.budget import Budget
from augsens.core.design import DESIGNS
from augsens.core.factors import Problem
from augsens.core.methods import METHODS
from augsens.core.precision import PRECISION_RULE
from augsens.core.trajectories import DEFAULT_LEVELS

__all__ = ["sobol", "shapley", "morris", "moments"]

Function = Callable[[torch.Tensor], "torch.Tensor | np.ndarray"]

#: Default cap on the rows passed to ``f`` in one call.
DEFAULT_BATCH_SIZE = 8192

#: Default number of independent randomisations (``docs/statistics.md``: at equal cost fewer, larger
#: replicates are more accurate, and 4 still give honest Student-t half-widths).
DEFAULT_REPLICATES = 4


def _check_common(
    f: Any, problem: Any, batch_size: Any, choices: dict[str, tuple[Any, tuple[Any, ...]]]
) -> Problem:
    """The validated arguments' problem (a SALib problem dict becomes a :class:`Problem`)."""
    if not callable(f):
        raise TypeError(
            f"f must be a callable taking values [B, k] and returning a Tensor or array [B, ...], got {f!r}"
        )
    if isinstance(problem, Mapping):
        problem = Problem.from_salib(problem)
    if not isinstance(problem, Problem):
        raise TypeError(
            "problem must be an augsens Problem (e.g. Problem([Uniform('x', 0, 1)])) or a SALib problem "
            f"dict, got {type(problem).__name__}"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer (rows per call of f), got {batch_size!r}")
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise ValueError(f"{name}={value!r} is not valid; choose one of {list(allowed)!r}")
    return problem


def _evaluate(f: Function, values: torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    rows = values.shape[0]
    x = values if device is None else values.to(device)
    try:
        y = f(x)
    except Exception as exc:
        raise RuntimeError(
            f"f raised {type(exc).__name__} on a batch of {rows} rows of factor values: {exc}"
        ) from exc
    if isinstance(
        y, np.ndarray
    ):  # a numpy function (SALib's test functions): its rows, on the values' device
        y = torch.from_numpy(np.ascontiguousarray(y)).to(x.device)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"f must return a torch.Tensor or numpy array [B, *out], got {type(y).__name__}")
    # the estimators reduce the outputs in place; an autograd graph (f built with parameters that require
    # grad) has no use here, so the values are taken without it
    y = y.detach()
    if y.dim() == 0 or y.shape[0] != rows:
        raise ValueError(
            f"f returned shape {tuple(y.shape)} for {rows} input rows: the first dim must be the batch "
            f"({rows}); return [B] for a scalar output"
        )
    return y


def _estimate(
    name: str,
    f: Function,
    problem: Problem,
    n: Any,
    *,
    replicates: Any = 1,
    precision: Any = None,
    max_n: Any = None,
    time_limit: Any = None,
    batch_size: int,
    device: torch.device | str | None,
    **keywords: Any,
) -> xr.Dataset:
    """Method ``name`` (:data:`~augsens.core.methods.METHODS`) on ``f`` within the validated budget:
    the shared loop (:func:`augsens.core.loop.run`) with ``f`` as the evaluation, then ``finalize``."""
    budget = Budget.of(n, replicates=replicates, precision=precision, max_n=max_n, time_limit=time_limit)
    design = keywords.get("design")
    if design not in DESIGNS:  # the design's own check speaks of its `method`, not of `design=`
        close = difflib.get_close_matches(str(design), DESIGNS, n=1)
        hint = f" Did you mean design={close[0]!r}?" if close else ""
        raise ValueError(
            f"design={design!r} is not a design.{hint} Use 'sobol' (Owen-scrambled QMC), 'sobol-lms' "
            "(scipy's linear matrix scramble) or 'iid'"
        )
    method = METHODS[name](problem, budget, device=device, **keywords)
    hooks = loop.OneAccumulator(method, lambda batch: _evaluate(f, problem.decode(batch.rows), device))
    out = loop.run(method, hooks, budget, batch_rows=batch_size)
    ds = method.finalize(hooks.accumulator)
    ds.attrs.update(method.attrs())
    if method.sensitivity:
        ds.attrs.update(
            precision=out.precision,
            precision_target=budget.precision,
            precision_rule=PRECISION_RULE,
            stop_reason=out.stop_reason,
            max_n=budget.max_n,
        )
    return ds


def sobol(
    f: Function,
    problem: Problem | Mapping[str, Any],
    *,
    n: int,
    seed: int = 0,
    second_order: bool = False,
    method: Literal["saltelli_2010", "janon_2014"] = "saltelli_2010",
    design: Literal["sobol", "sobol-lms", "iid"] = "sobol",
    replicates: int = DEFAULT_REPLICATES,
    precision: float | None = None,
    max_n: int | None = None,
    time_limit: float | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> xr.Dataset:
    r"""First-order and total Sobol' indices of every output of ``f``, per factor group.

    Parameters
    ----------
    f : callable
        ``f(values)`` with ``values`` ``[B, k]`` float64 factor values (columns in ``problem`` order, on
        ``device`` if given) returning a Tensor ``[B, *out]`` (any float dtype, any device) or a numpy
        array (a function written for numpy takes ``values.numpy()``: ``lambda x: g(x.numpy())``).
    problem : Problem or dict
        Independent factors and their groups; indices are reported per group.  A SALib problem dict
        (``names``, ``bounds``, optionally ``groups``) is read by :meth:`Problem.from_salib`.
    n : int
        Base samples; ``f`` is evaluated on ``n (D + 2)`` rows (``n (2D + 2)`` with ``second_order``).
        With a Sobol' design, ``n / replicates`` must be a power of 2, and at least
        :data:`~augsens.core.design.MIN_QMC_POINTS` (64 for ``"sobol"``) to beat i.i.d. sampling (fewer
        warn).  With ``precision``: the base samples of the first round.
    seed : int, default 0
        Seeds the scrambles (one independent scramble per replicate).
    second_order : bool, default False
        Also return ``S2`` (Saltelli 2002), at about twice the cost.
    method : {"saltelli_2010", "janon_2014"}, default "saltelli_2010"
        First-order estimator; totals are always Jansen (1999).
    design : {"sobol", "sobol-lms", "iid"}, default "sobol"
        Sobol' base points with nested uniform (Owen) scrambling, Sobol' with scipy's linear matrix
        scramble and digital shift, or i.i.d. points (:mod:`augsens.core.design`).
    replicates : int, default 4
        Independent randomisations of the design, used for the confidence half-widths; the point
        estimate pools them.  ``1`` gives NaN half-widths.
    precision : float, optional
        Target for the 95 % half-widths (:data:`augsens.core.precision.PRECISION_RULE`, e.g. ``0.02``): after
        the first ``n`` base samples, rounds that double them are added until the target is met or the
        budget is spent.  Default: no target, ``n`` base samples.
    max_n : int, optional
        Budget of a precision run in base samples: ``n`` times a power of 2 (default ``16 n``).
    time_limit : float, optional
        Seconds: with a precision target, no round is started that is predicted to end later.
    batch_size : int, default 8192
        Most rows passed to ``f`` in one call (whole base samples; at least one).
    dtype : torch.dtype, default torch.float64
        Accumulator state dtype.
    device : torch.device or str, optional
        Device of the values passed to ``f`` and of the accumulator state.

    Returns
    -------
    xarray.Dataset
        ``S1``, ``ST``, ``S1_conf``, ``ST_conf`` with dims ``("factor", "dim_0", ...)`` (``"factor"``
        coordinates: group names), ``S2`` and ``S2_conf`` with dims ``("factor", "factor2", ...)``
        when asked (symmetric, NaN diagonal),
        ``nonfinite`` (dropped base samples per output).  Attributes record ``n`` (base samples used),
        ``seed``, methods, ``precision`` (the summary of the half-widths reached), ``precision_target``
        (0: none), ``precision_rule``, ``stop_reason`` (``"precision reached"``, ``"max_n reached"``,
        ``"time limit"`` or ``"n reached"``) and ``max_n``.

    Raises
    ------
    ValueError
        ``n`` not usable by the design, a bad ``method`` / ``design``, ``f`` returning the wrong batch size.
    TypeError
        ``f`` not callable or not returning a Tensor or array; ``problem`` neither a :class:`Problem` nor a
        SALib problem dict.

    Notes
    -----
    With ``A``, ``B`` two independent base draws and ``A_B^{(j)}`` = ``A`` with group ``j`` from ``B``:

    .. math::
        S_j = \frac{\frac1n\sum f(B)\,(f(A_B^{(j)}) - f(A))}{V}, \qquad
        S_{Tj} = \frac{\frac1{2n}\sum (f(A) - f(A_B^{(j)}))^2}{V},

    with ``V`` the variance of the pooled ``f(A), f(B)``: ``V_j = Var(E[Y | X_j])`` and
    ``V_{Tj} = E[Var(Y | X_{-j})]`` (Sobol' 1993).  The ``*_conf`` half-widths are Student-t intervals
    (95 %) over the replicates.  Outputs with zero variance get NaN indices.

    .. warning:: Factors must be independent.  Small negative indices are sampling noise.

    References
    ----------
    .. [1] Saltelli, A. et al. (2010). Variance based sensitivity analysis of model output. Comput.
       Phys. Commun. 181, 259-270. doi:10.1016/j.cpc.2009.09.018
    .. [2] Jansen, M. J. W. (1999). Analysis of variance designs for model output. Comput. Phys.
       Commun. 117, 35-43. doi:10.1016/S0010-4655(98)00154-4
    .. [3] Janon, A. et al. (2014). Asymptotic normality and efficiency of two Sobol index estimators.
       ESAIM: Probab. Stat. 18, 342-364. doi:10.1051/ps/2013040
    .. [4] Saltelli, A. (2002). Making best use of model evaluations to compute sensitivity indices.
       Comput. Phys. Commun. 145, 280-297. doi:10.1016/S0010-4655(02)00280-1

    Examples
    --------
    The Ishigami function, whose indices are ``S1 = (0.314, 0.442, 0)`` and
    ``ST = (0.558, 0.442, 0.244)``: ``x3`` acts only through its interaction with ``x1``.

    >>> import math, torch
    >>> from augsens.core.factors import Problem, Uniform
    >>> from augsens.core.api import sobol
    >>> problem = Problem([Uniform(f"x{i}", -math.pi, math.pi) for i in (1, 2, 3)])
    >>> def ishigami(x):
    ...     return torch.sin(x[:, 0]) + 7 * torch.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * torch.sin(x[:, 0])
    >>> ds = sobol(ishigami, problem, n=2**14, seed=0)
    >>> ds["S1"].round(3)
    <xarray.DataArray 'S1' (factor: 3)> Size: 24B
    array([ 0.313,  0.443, -0.001])
    Coordinates:
      * factor   (factor) <U2 24B 'x1' 'x2' 'x3'
    >>> ds["ST"].values.round(2)
    array([0.56, 0.44, 0.24])
    >>> bool((ds["S1_conf"] < 0.01).all())  # 95 % half-widths over the 4 replicates
    True

    The same with a SALib problem dict and SALib's numpy Ishigami function:

    >>> from SALib.test_functions import Ishigami
    >>> salib = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-math.pi, math.pi]] * 3}
    >>> same = sobol(lambda x: Ishigami.evaluate(x.numpy()), salib, n=2**14, seed=0)
    >>> bool(abs(same["S1"] - ds["S1"]).max() < 1e-12)
    True

    With a precision target, rounds double ``n`` until the half-widths are small enough:

    >>> ds = sobol(ishigami, problem, n=1024, precision=0.02, seed=0)
    >>> ds.attrs["stop_reason"], ds.attrs["precision"] <= 0.02, ds.attrs["n"] > 1024
    ('precision reached', True, True)
    """
    problem = _check_common(f, problem, batch_size, {"method": (method, ("saltelli_2010", "janon_2014"))})
    return _estimate(
        "sobol",
        f,
        problem,
        n,
        replicates=replicates,
        precision=precision,
        max_n=max_n,
        time_limit=time_limit,
        batch_size=batch_size,
        device=device,
        seed=seed,
        design=design,
        dtype=dtype,
        second_order=second_order,
        estimator=method,
    )


def shapley(
    f: Function,
    problem: Problem | Mapping[str, Any],
    *,
    n: int,
    seed: int = 0,
    method: Literal["exact", "permutation"] = "exact",
    design: Literal["sobol", "sobol-lms", "iid"] = "sobol",
    replicates: int = DEFAULT_REPLICATES,
    precision: float | None = None,
    max_n: int | None = None,
    time_limit: float | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> xr.Dataset:
    r"""Shapley effects of every output of ``f``, per factor group, normalised to sum to 1.

    Parameters
    ----------
    f, problem, seed, design, replicates, precision, max_n, time_limit, batch_size, dtype, device
        As in :func:`sobol` (the precision rule reads the Shapley effects' and, exact method, ``ST``'s
        half-widths).
    n : int
        Base samples; ``f`` is evaluated on ``n 2^D`` rows (exact) or ``n (D + 1)`` (permutation).
    method : {"exact", "permutation"}, default "exact"
        ``"exact"``: all ``2^D`` hybrids of each base pair, closed indices, Möbius inversion (``D <= 12``).
        ``"permutation"``: one random order of groups per base sample (Goda 2021), any ``D``.

    Returns
    -------
    xarray.Dataset
        ``shapley`` and ``shapley_conf`` with dims ``("factor", "dim_0", ...)``, summing to 1 over
        ``"factor"``; the exact method adds the byproducts ``S1``, ``ST`` and the pairwise interaction
        maps ``S2`` and ``shapley_interaction`` (dims ``("factor", "factor2", "dim_0", ...)``,
        symmetric, NaN on the diagonal), each with its ``_conf``.

    Raises
    ------
    ValueError
        ``method="exact"`` with more than 12 groups; otherwise as :func:`sobol`.

    Notes
    -----
    With the closed index :math:`\tau_u = \mathrm{Var}(E[Y \mid X_u])` and the ANOVA component variances
    :math:`\sigma^2_u = \sum_{w \subseteq u} (-1)^{|u|-|w|}\tau_w`, the Shapley effect of group ``j`` is
    (Owen 2014)

    .. math:: \mathrm{Sh}_j = \sum_{u \ni j} \frac{\sigma^2_u}{|u|}, \qquad \sum_j \mathrm{Sh}_j = V.

    Reported values are :math:`\mathrm{Sh}_j / V`.  Unlike ``S1`` or ``ST`` they split interactions
    equally among their members, so they always add up.

    The exact method also reports, for every pair of groups, the second-order index
    :math:`S_{jk} = \sigma^2_{jk} / V` (``S2``, the interaction alone; what :func:`sobol` with
    ``second_order=True`` estimates; the closed index of the pair together, :math:`\tau_{jk} / V`, is
    ``S1_j + S1_k + S2_jk``) and the pairwise Shapley interaction index (Grabisch & Roubens 1999)

    .. math:: I_{jk} = \sum_{u \supseteq \{j, k\}} \frac{\sigma^2_u}{|u| - 1}, \qquad
              \sum_{k \ne j} I_{jk} = V (S_{Tj} - S_j),

    divided by :math:`V` (``shapley_interaction``): every interaction of order three or more is shared
    among the pairs inside it, so the map of a network's activations shows which augmentations act
    together however many others join in.

    References
    ----------
    .. [1] Owen, A. B. (2014). Sobol' indices and Shapley value. SIAM/ASA J. Uncertain. Quantif. 2,
       245-251. doi:10.1137/130936233
    .. [2] Goda, T. (2021). A simple algorithm for global sensitivity analysis with Shapley effects.
       Reliab. Eng. Syst. Saf. 213, 107702. doi:10.1016/j.ress.2021.107702
    .. [3] Grabisch, M. & Roubens, M. (1999). An axiomatic approach to the concept of interaction
       among players in cooperative games. Int. J. Game Theory 28, 547-565.

    Examples
    --------
    Ishigami: ``Sh = (0.436, 0.442, 0.122)``, half of the ``x1``-``x3`` interaction goes to each.

    >>> import math, torch
    >>> from augsens.core.factors import Problem, Uniform
    >>> from augsens.core.api import shapley
    >>> problem = Problem([Uniform(f"x{i}", -math.pi, math.pi) for i in (1, 2, 3)])
    >>> def ishigami(x):
    ...     return torch.sin(x[:, 0]) + 7 * torch.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * torch.sin(x[:, 0])
    >>> ds = shapley(ishigami, problem, n=2**14, seed=0)
    >>> ds["shapley"].values.round(2), round(float(ds["shapley"].sum()), 12)
    (array([0.44, 0.44, 0.12]), 1.0)

    The ``x1``-``x3`` interaction (``V_{13} / V = 0.244``; with no third-order component, the pairwise
    Shapley interaction equals ``S2``):

    >>> pair = dict(factor="x1", factor2="x3")
    >>> [round(float(ds[name].sel(pair)), 2) for name in ("shapley_interaction", "S2")]
    [0.24, 0.24]
    """
    problem = _check_common(f, problem, batch_size, {"method": (method, ("exact", "permutation"))})
    return _estimate(
        f"shapley-{method}",
        f,
        problem,
        n,
        replicates=replicates,
        precision=precision,
        max_n=max_n,
        time_limit=time_limit,
        batch_size=batch_size,
        device=device,
        seed=seed,
        design=design,
        dtype=dtype,
    )


def morris(
    f: Function,
    problem: Problem,
    *,
    n: int,
    seed: int = 0,
    levels: int = DEFAULT_LEVELS,
    design: Literal["sobol", "sobol-lms", "iid"] = "sobol",
    replicates: int = DEFAULT_REPLICATES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> xr.Dataset:
    r"""Morris screening: the elementary effects of every factor group on every output of ``f``.

    Parameters
    ----------
    f, problem, seed, replicates, batch_size, dtype, device
        As in :func:`sobol`.
    n : int
        Trajectories ``r``; ``f`` is evaluated on ``n (D + 1)`` rows.  With a Sobol' design (which
        stratifies the starting levels) ``n / replicates`` must be a power of 2; ``design="iid"`` takes
        any multiple of ``replicates``.
    levels : int, default 16
        Grid levels ``p`` (even); each step moves a group's columns by ``Δ = p / (2 (p - 1))`` of their
        unit range (:class:`~augsens.core.trajectories.MorrisDesign`).
    design : {"sobol", "sobol-lms", "iid"}, default "sobol"
        How the starting levels and step directions are drawn.

    Returns
    -------
    xarray.Dataset
        ``mu``, ``mu_star``, ``sigma`` and their ``*_conf`` 95 % half-widths over the replicates, dims
        ``("factor", "dim_0", ...)``, in units of the output per unit-cube step; ``nonfinite``.
        Attributes: ``n``, ``levels``, ``step``, ``seed``.

    Notes
    -----
    A trajectory moves one group at a time by ``±Δ``; the elementary effect of group ``j`` is
    ``EE_j = s_j (f(x + Δ e_j) - f(x)) / Δ`` with ``s_j`` the direction of the step (the mean direction
    of the group's columns).  Over the trajectories (Morris 1991; Campolongo et al. 2007):

    .. math:: \mu_j = \overline{EE_j}, \qquad \mu^*_j = \overline{|EE_j|}, \qquad
              \sigma_j = \mathrm{sd}(EE_j).

    ``μ*`` screens (it ranks factors as the total Sobol' index does); ``σ`` large beside ``μ*``
    means interactions or curvature; ``|μ| < μ*`` means effects of both signs.  The cost, ``D + 1``
    evaluations per trajectory, grows linearly with the number of groups.

    References
    ----------
    .. [1] Morris, M. D. (1991). Factorial sampling plans for preliminary computational experiments.
       Technometrics 33(2), 161-174. doi:10.1080/00401706.1991.10484804
    .. [2] Campolongo, F., Cariboni, J. & Saltelli, A. (2007). An effective screening design for
       sensitivity analysis of large models. Environ. Model. Softw. 22(10), 1509-1518.
       doi:10.1016/j.envsoft.2006.10.004

    Examples
    --------
    A linear function ``y = 2 x1 - x2`` (inputs on ``[0, 1]``) has constant effects ``2`` and ``-1``:

    >>> import torch
    >>> from augsens.core.factors import Problem, Uniform
    >>> from augsens.core.api import morris
    >>> problem = Problem([Uniform("x1", 0, 1), Uniform("x2", 0, 1), Uniform("x3", 0, 1)])
    >>> ds = morris(lambda x: 2 * x[:, 0] - x[:, 1], problem, n=64, levels=4)
    >>> ds["mu"].values.round(6), ds["mu_star"].values.round(6), ds["sigma"].values.round(6)
    (array([ 2., -1.,  0.]), array([2., 1., 0.]), array([0., 0., 0.]))
    """
    _check_common(f, problem, batch_size, {})
    return _estimate(
        "morris",
        f,
        problem,
        n,
        replicates=replicates,
        batch_size=batch_size,
        device=device,
        seed=seed,
        design=design,
        dtype=dtype,
        levels=levels,
    )


def moments(
    f: Function,
    problem: Problem | Mapping[str, Any],
    *,
    n: int,
    seed: int = 0,
    design: Literal["sobol", "sobol-lms", "iid"] = "sobol",
    batch_size: int = DEFAULT_BATCH_SIZE,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> xr.Dataset:
    r"""Mean, variance and coefficient of variation of every output of ``f`` over the factors.

    Parameters
    ----------
    f, problem, seed, design, batch_size, dtype, device
        As in :func:`sobol`.
    n : int
        Number of evaluations of ``f`` (a power of 2 for ``design="sobol"``).

    Returns
    -------
    xarray.Dataset
        ``mean``, ``var`` (``ddof=1``) and ``cov`` with dims ``("dim_0", ...)`` (no ``"factor"``),
        ``nonfinite`` (dropped evaluations per output).

    Notes
    -----
    .. math:: \mathrm{cov} = \frac{\sqrt{\mathrm{var}}}{|\mathrm{mean}| + 10^{-5}}

    (the constant keeps all-zero units finite).  Running means and centred sums of squares are merged
    batch by batch (Welford 1962; Chan, Golub & LeVeque 1983).

    References
    ----------
    .. [1] Chan, T. F., Golub, G. H. & LeVeque, R. J. (1983). Algorithms for computing the sample
       variance: analysis and recommendations. Am. Stat. 37, 242-247. doi:10.1080/00031305.1983.10483115

    Examples
    --------
    >>> import torch
    >>> from augsens.core.factors import Problem, Uniform
    >>> from augsens.core.api import moments
    >>> problem = Problem([Uniform("x", 0, 1)])
    >>> ds = moments(lambda x: torch.stack([x[:, 0], 2 * x[:, 0]], dim=1), problem, n=2**12)
    >>> ds["mean"].values.round(3), ds["var"].values.round(3)  # 1/2 and 1/12 for U(0, 1)
    (array([0.5, 1. ]), array([0.083, 0.333]))
    """
    problem = _check_common(f, problem, batch_size, {})
    return _estimate(
        "moments", f, problem, n, batch_size=batch_size, device=device, seed=seed, design=design, dtype=dtype
    )

"""Unit-cube designs: which rows of ``[0, 1)^k`` the model is evaluated on, base sample by base sample.

Every design draws, per base sample ``i``, two independent points ``x = A_i`` and ``x' = B_i`` of the
unit cube (one ``2k``-dimensional point; :class:`IIDDesign` needs only ``A``) and builds ``R`` rows from
them by swapping whole groups of columns (:attr:`augsens.core.factors.Problem.group_members`):

================================  =====  ========================================================
class                             ``R``  rows of base sample ``i``, in this order
================================  =====  ========================================================
:class:`SobolDesign`              D+2    ``A, B, AB_1..AB_D`` (``AB_j``: ``A``, group j from ``B``)
  ``second_order=True``           2D+2   ``..., BA_1..BA_D`` (``BA_j``: ``B``, group j from ``A``)
:class:`ShapleyDesign`            2^D    row ``u`` (bit j = group j): groups in ``u`` from ``A``
:class:`PermutationShapleyDesign` D+1    row ``r``: groups ``perm[:r]`` from ``A``, rest from ``B``
:class:`IIDDesign`                1      ``A``
================================  =====  ========================================================

:class:`SongShapleyDesign` (the authors' double loop) builds its rows otherwise: blocks of ``No x Ni``
rows, one per (permutation, position), drawn i.i.d. per block.  Every design is walked the same way
(:meth:`Design.batches`): base samples in design order, cut at replicate blocks and into batches.

Base points come from a Sobol' sequence in ``2k`` dimensions with nested uniform (Owen 1995) scrambling
(``method="sobol"``, the default; :func:`owen_scramble`), from the same sequence with scipy's linear
matrix scramble and digital shift (``method="sobol-lms"``, :class:`scipy.stats.qmc.Sobol`), or from a
counter-based Philox generator (``method="iid"``).  All are *addressable*: :meth:`unit_rows(start, count)
<BasePointDesign.unit_rows>` regenerates any range of base samples on its own, bit for bit equal to the same
range of a full run, so shards, resumed runs and GPUs need no shared random state.

Replicates (for randomised-QMC confidence intervals) are independent randomisations of the same point
set: replicate ``r`` uses its own scramble (or Philox key) derived from
``numpy.random.SeedSequence(seed, spawn_key=(r, stream))``.  A design runs in *rounds*: the first holds
``first`` base samples, each later one as many as all before it, up to ``n`` (``first = n``, the default,
is one round).  Every round gives each replicate the next block of its own sequence, so after every
round each replicate holds ``2^m`` consecutive points of its net, and a run may stop at any round's end
(precision targets, :mod:`augsens.core.precision`).  The Sobol' designs need ``first // replicates`` to be a
power of 2 (balance properties: Owen 1997; scipy refuses the same in ``Sobol.random_base2``).  Below
:data:`MIN_QMC_POINTS` points per replicate (64 for ``"sobol"``) a Sobol' design was measured to be
*less* accurate than i.i.d. sampling (``benchmarks/design_quality.py``, ``docs/statistics.md``), and the
design warns.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Literal

import numpy as np
import torch
from scipy.stats import qmc

from augsens.core.budget import check_doubling
from augsens.core.draws import mix64, philox, philox_uniform, seed_sequence
from augsens.core.factors import Problem

__all__ = [
    "Design",
    "BasePointDesign",
    "SobolDesign",
    "ShapleyDesign",
    "PermutationShapleyDesign",
    "IIDDesign",
    "SongShapleyDesign",
    "MAX_EXACT_SHAPLEY_GROUPS",
    "MIN_QMC_POINTS",
    "DESIGNS",
    "owen_scramble",
    "QMCSmallSampleWarning",
]

#: Design generators: Owen-scrambled Sobol', scipy's LMS + digital shift Sobol', i.i.d. (Philox).
DESIGNS = ("sobol", "sobol-lms", "iid")

#: Fewest points per replicate at which each Sobol' design was not less accurate than i.i.d. sampling
#: on the test battery of ``benchmarks/design_quality.py`` (``docs/statistics.md``); fewer give a warning.
#: scipy's layout (``B`` on the second half of the dimensions) leaked interactions up to 512 points.
MIN_QMC_POINTS = {"sobol": 64, "sobol-lms": 1024}

#: Largest number of groups for the exact (2^D rows per base sample) Shapley design.
MAX_EXACT_SHAPLEY_GROUPS = 12

# SeedSequence spawn-key streams: one per use of randomness, so adding a use never shifts another.
_STREAM_SOBOL, _STREAM_IID, _STREAM_PERMUTATION, _STREAM_OWEN = 0, 1, 2, 3

#: Leading digits of each coordinate scrambled by the nested tree (the net has 2^32 points at most);
#: the 21 digits below them, down to float64 resolution, are uniform fill.
_OWEN_DIGITS = 32
_FILL_DIGITS = 53 - _OWEN_DIGITS


def owen_scramble(digits: np.ndarray, keys: np.ndarray) -> np.ndarray:
    r"""Nested uniform (Owen) scrambling of base-2 points given as 32-bit integers.

    Digit ``l`` (``l = 1`` the most significant) of coordinate ``c`` is flipped by a random bit that
    depends on the coordinate, the level and the *unscrambled* leading digits ``a_1 .. a_{l-1}``:
    the permutation :math:`\pi_{c, a_1 \dots a_{l-1}}` of Owen (1995), one independent random bit per
    node of the binary tree.  The bit is a hash of (node, key) rather than a stored tree, so any point
    is scrambled on its own (hash-based Owen scrambling: Burley 2020; Laine & Karras 2011), which keeps
    designs addressable by range.  Below digit 32 every point is alone in its cell, where nested
    scrambling draws i.i.d. uniform digits: 21 more hashed bits fill the float64 mantissa.

    Parameters
    ----------
    digits : ndarray ``[count, d]`` uint64
        Unscrambled points times ``2^32`` (integers below ``2^32``).
    keys : ndarray ``[d, 33]`` uint64
        Independent random keys per coordinate: one per level, and one for the fill.

    Returns
    -------
    ndarray ``[count, d]`` float64 in ``[0, 1)``
        Scrambled points; every point is uniform on ``[0, 1)^d``, and a ``(t, m, d)``-net stays one.

    References
    ----------
    Owen, A. B. (1995). Randomly permuted (t,m,s)-nets and (t,s)-sequences. In *Monte Carlo and
    Quasi-Monte Carlo Methods in Scientific Computing*, LNS 106, 299-317. doi:10.1007/978-1-4612-2552-2_19
    Burley, B. (2020). Practical hash-based Owen scrambling. J. Comput. Graph. Tech. 9(4), 1-20.

    Examples
    --------
    >>> import numpy as np
    >>> keys = np.random.default_rng(0).integers(0, 2**63, size=(1, 33), dtype=np.uint64)
    >>> x = owen_scramble(np.arange(8, dtype=np.uint64)[:, None] << np.uint64(29), keys)
    >>> sorted((x[:, 0] * 8).astype(int).tolist())  # one point in each eighth, as before scrambling
    [0, 1, 2, 3, 4, 5, 6, 7]
    """
    scrambled = digits.copy()
    one = np.uint64(1)
    for level in range(_OWEN_DIGITS):
        # the node of the tree: the leading `level` digits (none at the root: the shift by 32 gives 0)
        prefix = digits >> np.uint64(_OWEN_DIGITS - level)
        flip = mix64(prefix ^ keys[:, level]) >> np.uint64(63)
        scrambled ^= (flip & one) << np.uint64(_OWEN_DIGITS - 1 - level)
    fill = mix64(digits ^ keys[:, _OWEN_DIGITS]) >> np.uint64(64 - _FILL_DIGITS)
    return ((scrambled << np.uint64(_FILL_DIGITS)) | fill).astype(np.float64) * 2.0**-53


DesignName = Literal["sobol", "sobol-lms", "iid"]


def _outside_augsens() -> int:
    """The ``stacklevel`` of the first caller outside the package: a warning points at the user's line
    (``ag.sobol(...)``, ``ag.study(...)``), however deep in augsens the design was built."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


class QMCSmallSampleWarning(UserWarning):
    """A Sobol' design with fewer points per replicate than :data:`MIN_QMC_POINTS`."""


def _nearest_powers_of_2(n: int) -> tuple[int, int]:
    low = 1 << max(n.bit_length() - 1, 0)
    return low, low * 2


class Design:
    """What every design is: base samples ``[0, n)`` regenerable by range (:meth:`unit_rows`), and the one
    walk over them, in order, cut into pieces that each lie in one replicate block (:meth:`split`), then
    into batches (:meth:`batches`)."""

    n: int
    seed: int
    replicates: int
    #: how the points are drawn ("sobol", "sobol-lms" or "iid": the ``method`` keyword of the constructors)
    design_name: DesignName
    #: rows per base sample, and their names
    rows_per_sample: int
    labels: list[str]
    #: base samples done at the end of each round; a run may stop at any of them
    round_ends: list[int]

    def unit_rows(self, start: int, count: int) -> torch.Tensor:
        """Design rows ``[count, R, k]`` float64 in ``[0, 1)`` of base samples ``start..start+count-1``."""
        raise NotImplementedError  # pragma: no cover - abstract

    def split(self, start: int, count: int) -> list[tuple[int, int, int]]:
        """Base samples ``start..start+count-1`` as consecutive ``(replicate, start, count)`` pieces."""
        raise NotImplementedError  # pragma: no cover - abstract

    def batches(self, batch: int, start: int = 0, stop: int | None = None) -> list[tuple[int, int, int]]:
        """Base samples ``[start, stop)`` (default all) as ``(replicate, start, count)`` pieces of at most
        ``batch`` samples, in design order."""
        if batch < 1:
            raise ValueError(f"batch must be a positive number of base samples, got {batch!r}")
        stop = self.n if stop is None else min(stop, self.n)
        out: list[tuple[int, int, int]] = []
        for r, s, c in self.split(start, max(0, stop - start)):
            out.extend((r, b, min(batch, s + c - b)) for b in range(s, s + c, batch))
        return out

    def _check_range(self, start: int, count: int) -> None:
        if start < 0 or count < 0 or start + count > self.n:
            raise IndexError(
                f"base samples {start}..{start + count - 1} are outside the design's 0..{self.n - 1}"
            )


class BasePointDesign(Design):
    """The designs built from base points ``(A, B)`` per base sample: drawing them, replicate blocks,
    rounds, row assembly (subclasses say which rows, in ``_from_a``)."""

    _pair: bool = True  # whether base samples need B as well as A
    #: whether fewer than MIN_QMC_POINTS points per replicate warn (measured for pick-freeze estimators)
    _small_sample_warning: bool = True
    # which Sobol' dimensions hold A and B with method="sobol" (see base()): "mirrored" or "adjacent"
    _layout = "mirrored"

    def __init__(
        self,
        problem: Problem,
        n: int,
        *,
        seed: int = 0,
        method: DesignName = "sobol",
        replicates: int = 1,
        first: int | None = None,
    ) -> None:
        if not isinstance(problem, Problem):
            raise TypeError(f"problem must be an augsens Problem, got {type(problem).__name__}")
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n (number of base samples) must be a positive integer, got {n!r}")
        if isinstance(replicates, bool) or not isinstance(replicates, int | np.integer) or replicates < 1:
            raise ValueError(f"replicates must be a positive integer, got {replicates!r}")
        if method not in DESIGNS:
            raise ValueError(
                f"method={method!r} is not a design method; use 'sobol' (Owen-scrambled QMC), 'sobol-lms' "
                "(scipy's linear matrix scramble) or 'iid'"
            )
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        n, replicates = int(n), int(replicates)
        first = n if first is None else int(first)
        check_doubling(first, n)
        if first % replicates:
            if method == "iid":
                low = first - first % replicates
                sizes = [m for m in (low, low + replicates) if m > 0]
            else:  # n // replicates must be a power of 2 as well: n = replicates x 2^k
                k = max(first // replicates, 1).bit_length() - 1
                sizes = [replicates << k, replicates << (k + 1)]
            divisors = [r for r in range(1, min(first, 64) + 1) if first % r == 0]
            if method != "iid":
                divisors = [r for r in divisors if not (first // r) & (first // r - 1)]
            near = sorted(sorted(divisors, key=lambda r: (abs(r - replicates), r))[:2])
            raise ValueError(
                f"n={first} is not divisible by replicates={replicates}: each replicate needs the same "
                f"number of base samples; use n={sizes[0]} or n={sizes[-1]}, or replicates="
                + " or replicates=".join(str(r) for r in near)
            )
        per = first // replicates
        if method != "iid" and per & (per - 1):
            if replicates == 1:
                low, high = _nearest_powers_of_2(first)
                raise ValueError(
                    f"The balance properties of Sobol' points require n to be a power of 2, got n={first}; "
                    f"use n={low} or n={high}, or design='iid'"
                )
            low, high = _nearest_powers_of_2(per)
            raise ValueError(
                f"The balance properties of Sobol' points require n // replicates to be a power of 2, got "
                f"n={first}, replicates={replicates} (n // replicates = {per}); use n={low * replicates} or "
                f"n={high * replicates}, or design='iid'"
            )
        least = MIN_QMC_POINTS.get(method, 0)
        if per < least and self._small_sample_warning:
            warnings.warn(
                f"{per} points per replicate (n={first}, replicates={replicates}) is below {least}: with "
                f"so few points the {method!r} design was measured to be less accurate than i.i.d. "
                f"sampling (docs/statistics.md); use n >= {least * replicates}, fewer replicates, or "
                "design='iid'",
                QMCSmallSampleWarning,
                stacklevel=_outside_augsens(),
            )
        self.problem = problem
        self.n = n
        self.seed = int(seed)
        self.design_name = method
        self.replicates = replicates
        self.first = first
        #: where each round ends (base samples done); a run may stop at any of them
        self.round_ends = [first << s for s in range((n // first).bit_length())]
        self.D = problem.D
        self.k = problem.k
        self._dims = 2 * self.k if self._pair else self.k
        if method != "iid" and self._dims > qmc.Sobol.MAXDIM:
            raise ValueError(
                f"a Sobol' design needs {self._dims} dimensions, scipy's Sobol' supports {qmc.Sobol.MAXDIM}; "
                "use design='iid'"
            )
        self._engines: dict[int, qmc.Sobol] = {}
        self._keys: dict[int, np.ndarray] = {}
        # [D, k] bool: column c belongs to group j
        self._group_cols = problem.group_index[None, :] == torch.arange(self.D)[:, None]
        self._setup()

    def _setup(self) -> None:
        """Set ``labels`` and ``rows_per_sample`` (designs whose rows need no extra arguments)."""

    # -- replicate bookkeeping -------------------------------------------------------------------
    def _locate(self, i: int) -> tuple[int, int, int]:
        """``(replicate, local index in its sequence, last global sample of the same block)`` of sample i."""
        s = max(0, (i // self.first).bit_length())  # round of sample i: round s ends at first * 2^s
        begin = 0 if s == 0 else self.first << (s - 1)
        block = (self.first if s == 0 else begin) // self.replicates  # per replicate in round s
        r, offset = divmod(i - begin, block)
        return r, (0 if s == 0 else begin // self.replicates) + offset, begin + (r + 1) * block - 1

    def replicate_of(self, i: int) -> int:
        """Replicate of base sample ``i`` (``i // (n // replicates)`` for a design of one round)."""
        if not 0 <= i < self.n:
            raise IndexError(f"base sample {i} is outside 0..{self.n - 1}")
        return self._locate(i)[0]

    def _pieces(self, start: int, count: int) -> list[tuple[int, int, int, int]]:
        """``(replicate, start, count, local start)`` pieces of samples ``start..``, each inside one
        replicate block of one round."""
        self._check_range(start, count)
        pieces = []
        i, end = start, start + count
        while i < end:
            r, local, last = self._locate(i)
            stop = min(end, last + 1)
            pieces.append((r, i, stop - i, local))
            i = stop
        return pieces

    def split(self, start: int, count: int) -> list[tuple[int, int, int]]:
        """Split base samples ``start..start+count-1`` at replicate (and round) boundaries.

        Returns
        -------
        list of (replicate, start, count)
            Consecutive pieces, each inside one replicate block; ``start`` is global.
        """
        return [(r, i, c) for r, i, c, _ in self._pieces(start, count)]

    # -- base points -----------------------------------------------------------------------------
    def _engine(self, replicate: int) -> qmc.Sobol:
        """scipy's Sobol' engine: scrambled (LMS + shift) per replicate, or one unscrambled for Owen."""
        key = replicate if self.design_name == "sobol-lms" else -1
        if key not in self._engines:
            if self.design_name == "sobol-lms":
                rng = np.random.default_rng(seed_sequence(self.seed, replicate, _STREAM_SOBOL))
                try:
                    engine = qmc.Sobol(self._dims, scramble=True, rng=rng)
                except TypeError:  # scipy < 1.15 names the keyword `seed`
                    engine = qmc.Sobol(self._dims, scramble=True, seed=rng)
            else:
                engine = qmc.Sobol(self._dims, scramble=False, bits=_OWEN_DIGITS)
            self._engines[key] = engine
        return self._engines[key]

    def _owen_keys(self, replicate: int) -> np.ndarray:
        if replicate not in self._keys:
            seq = seed_sequence(self.seed, replicate, _STREAM_OWEN)
            state = seq.generate_state(self._dims * (_OWEN_DIGITS + 1), np.uint64)
            self._keys[replicate] = state.reshape(self._dims, _OWEN_DIGITS + 1)
        return self._keys[replicate]

    def _base_points(self, replicate: int, local: int, count: int) -> np.ndarray:
        if self.design_name == "iid":
            seq = seed_sequence(self.seed, replicate, _STREAM_IID)
            return philox_uniform(seq, local, count, self._dims)
        engine = self._engine(replicate).reset()
        if local:
            engine.fast_forward(local)
        with warnings.catch_warnings():
            # scipy warns when a *first* draw is not 2^m points; our ranges are pieces of a 2^m set.
            warnings.filterwarnings("ignore", message="The balance properties", category=UserWarning)
            points = engine.random(count)
        if self.design_name == "sobol-lms":
            return points
        # unscrambled points are multiples of 2^-32 below 1: exact integers after scaling
        digits = (points * 2.0**_OWEN_DIGITS).astype(np.uint64)
        return owen_scramble(digits, self._owen_keys(replicate))

    def base(self, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Base points ``A, B`` ``[count, k]`` float64 in ``[0, 1)`` of base samples ``start..``.

        With ``method="sobol"`` the Sobol' dimensions of ``A_j`` and ``B_j`` depend on the estimator, as
        measured best (``benchmarks/design_quality.py``, ``docs/statistics.md``): :class:`SobolDesign`
        puts ``A_j`` on dimension ``j`` and ``B_j`` on ``2k - 1 - j`` (mirrored), the Shapley designs
        put them on ``2j`` and ``2j + 1`` (adjacent).  Estimators integrate products of outputs on
        hybrids of ``A`` and ``B``, so projections of the net onto columns such as ``(A_j, B_j, A_l,
        B_l)`` decide how much an interaction leaks into an index.  The two halves (``B_j`` on ``k + j``,
        which ``"sobol-lms"`` keeps) leaked interactions into S1 up to 512 points per replicate; the
        mirrored layout gave the best first-order indices from 64 points on, the adjacent one the best
        Shapley effects (mirrored Shapley effects were up to 1.3 times less accurate than i.i.d. ones).
        """
        parts = [self._base_points(r, local, c) for r, _, c, local in self._pieces(start, count)]
        pts = torch.from_numpy(np.concatenate(parts) if parts else np.empty((0, self._dims)))
        if self.design_name == "sobol" and self._pair:
            if self._layout == "adjacent":
                return pts[:, 0::2], pts[:, 1::2]
            return pts[:, : self.k], pts[:, self.k :].flip(1)
        return pts[:, : self.k], pts[:, self.k :]

    def _permutations(self, start: int, count: int) -> torch.Tensor:
        parts = []
        for r, _, c, local in self._pieces(start, count):
            seq = seed_sequence(self.seed, r, _STREAM_PERMUTATION)
            # argsort of i.i.d. uniforms is a uniformly random order (ties have probability ~0)
            parts.append(np.argsort(philox_uniform(seq, local, c, self.D), axis=1))
        perms = np.concatenate(parts) if parts else np.empty((0, self.D), dtype=np.int64)
        return torch.from_numpy(perms.astype(np.int64))

    def unit_rows(self, start: int, count: int) -> torch.Tensor:
        """Design rows ``[count, R, k]`` float64 in ``[0, 1)`` of base samples ``start..start+count-1``."""
        a, b = self.base(start, count)
        return torch.where(self._from_a(start, count), a[:, None, :], b[:, None, :])

    def _from_a(self, start: int, count: int) -> torch.Tensor:
        """Bool mask ``[R, k]`` or ``[count, R, k]``: True where a row's column is taken from ``A``."""
        raise NotImplementedError  # pragma: no cover - abstract

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(D={self.D}, k={self.k}, n={self.n}, R={self.rows_per_sample}, "
            f"method={self.design_name!r}, replicates={self.replicates}, seed={self.seed}"
            + (f", first={self.first})" if self.first != self.n else ")")
        )


class SobolDesign(BasePointDesign):
    """Pick-freeze design for Sobol' indices: rows ``A, B, AB_1..AB_D[, BA_1..BA_D]``.

    Parameters
    ----------
    problem : Problem
        Factors and groups; ``AB_j`` swaps all columns of group ``j``.
    n : int
        Number of base samples (a power of 2 times ``replicates`` for ``method="sobol"``).
    second_order : bool, default False
        Add the ``BA_j`` rows (Saltelli 2002 second-order indices): ``R = 2D + 2`` instead of ``D + 2``.
    seed : int, default 0
    method : {"sobol", "sobol-lms", "iid"}, default "sobol"
        Sobol' QMC with nested uniform (Owen) scrambling, Sobol' with scipy's linear matrix scramble and
        digital shift, or i.i.d. (Philox) base points.
    replicates : int, default 1
        Independent randomisations; each round gives every replicate a block of its own sequence.
    first : int, optional
        Base samples of the first round (default ``n``: one round); later rounds double the total, so
        ``n / first`` must be a power of 2.

    Examples
    --------
    >>> import augsens.core.factors as fa
    >>> p = fa.Problem([fa.Uniform("x1", 0, 1), fa.Uniform("x2", 0, 1)])
    >>> d = SobolDesign(p, 8)
    >>> d.rows_per_sample, d.labels
    (4, ['A', 'B', 'AB_x1', 'AB_x2'])
    >>> tuple(d.unit_rows(0, 3).shape)
    (3, 4, 2)
    """

    def __init__(
        self,
        problem: Problem,
        n: int,
        *,
        second_order: bool = False,
        seed: int = 0,
        method: DesignName = "sobol",
        replicates: int = 1,
        first: int | None = None,
    ) -> None:
        super().__init__(problem, n, seed=seed, method=method, replicates=replicates, first=first)
        self.second_order = bool(second_order)
        names = problem.group_names
        self.labels = (
            ["A", "B"] + [f"AB_{g}" for g in names] + ([f"BA_{g}" for g in names] if second_order else [])
        )
        self.rows_per_sample = len(self.labels)
        cols = self._group_cols
        ones = torch.ones(1, self.k, dtype=torch.bool)
        blocks = [ones, ~ones, ~cols] + ([cols] if second_order else [])
        self._mask = torch.cat(blocks)

    def _from_a(self, start: int, count: int) -> torch.Tensor:
        return self._mask


class ShapleyDesign(BasePointDesign):
    """All ``2^D`` hybrids of ``x = A`` and ``x' = B``, for exact Shapley effects (Owen 2014).

    Row ``u`` (bit ``j`` of ``u`` stands for group ``j``) takes the groups in ``u`` from ``x`` and the
    others from ``x'``; row 0 is ``x'``, row ``2^D - 1`` is ``x``.  Parameters as :class:`SobolDesign`.

    Raises
    ------
    ValueError
        More than :data:`MAX_EXACT_SHAPLEY_GROUPS` groups (``2^D`` rows per base sample).
    """

    _layout = "adjacent"

    def __init__(
        self,
        problem: Problem,
        n: int,
        *,
        seed: int = 0,
        method: DesignName = "sobol",
        replicates: int = 1,
        first: int | None = None,
    ) -> None:
        if isinstance(problem, Problem) and problem.D > MAX_EXACT_SHAPLEY_GROUPS:
            raise ValueError(
                f"exact Shapley effects need 2^D = {2**problem.D} model evaluations per base sample for "
                f"D={problem.D} groups (at most {MAX_EXACT_SHAPLEY_GROUPS} allowed); use "
                "PermutationShapleyDesign (method='permutation'), which needs D+1"
            )
        super().__init__(problem, n, seed=seed, method=method, replicates=replicates, first=first)
        size = 1 << self.D
        names = problem.group_names
        self.labels = [
            "{" + ",".join(g for j, g in enumerate(names) if u >> j & 1) + "}" for u in range(size)
        ]
        self.rows_per_sample = size
        bits = (torch.arange(size)[:, None] >> torch.arange(self.D)[None, :]) & 1  # [2^D, D]
        self._mask = bits[:, problem.group_index].bool()  # [2^D, k]

    def _from_a(self, start: int, count: int) -> torch.Tensor:
        return self._mask


class PermutationShapleyDesign(BasePointDesign):
    """Permutation chains for the one-loop Shapley estimator (Goda 2021): ``R = D + 1`` rows.

    Each base sample draws a uniformly random order ``perm`` of the groups (counter-based, reproducible
    per range whatever ``method``).  Row ``r`` switches groups ``perm[:r]`` from ``x' = B`` to ``x = A``;
    row 0 is ``x'`` and row ``D`` is ``x``.  Parameters as :class:`SobolDesign`.
    """

    _layout = "adjacent"

    def _setup(self) -> None:
        self.labels = [f"z_{r}" for r in range(self.D + 1)]
        self.rows_per_sample = self.D + 1

    def permutations(self, start: int, count: int) -> torch.Tensor:
        """Group orders ``[count, D]`` (int64) of base samples ``start..start+count-1``."""
        return self._permutations(start, count)

    def _from_a(self, start: int, count: int) -> torch.Tensor:
        return self._mask_for(self.permutations(start, count))

    def _mask_for(self, perms: torch.Tensor) -> torch.Tensor:
        position = torch.argsort(perms, dim=1)  # position[i, g]: place of group g in sample i's order
        pos_col = position[:, self.problem.group_index]  # [count, k]
        return pos_col[:, None, :] < torch.arange(self.D + 1)[None, :, None]

    def rows_and_permutations(self, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Design rows ``[count, D+1, k]`` and their orders ``[count, D]`` in one call."""
        perms = self.permutations(start, count)
        a, b = self.base(start, count)
        return torch.where(self._mask_for(perms), a[:, None, :], b[:, None, :]), perms


class IIDDesign(BasePointDesign):
    """One row per base sample (``R = 1``): independent draws for moments.  Parameters as above."""

    _pair = False

    def _setup(self) -> None:
        self.labels = ["x"]
        self.rows_per_sample = 1

    def base(self, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, _ = super().base(start, count)
        return a, a

    def _from_a(self, start: int, count: int) -> torch.Tensor:
        return torch.ones(1, self.k, dtype=torch.bool)


class SongShapleyDesign(Design):
    """The authors' double loop (Song, Nelson & Staum 2016): ``Np * D`` blocks of ``No x Ni`` rows.

    Block ``j`` ("base sample" ``j``) is permutation ``j // D`` at position ``i = j % D``.  Its rows are
    ordered outer-major: row ``o * Ni + q`` takes the players ``π[:i+1]`` from inner draw ``(o, q)`` and
    the others from outer draw ``o``.  Draws are i.i.d. (Philox, one stream per block), with no
    replicates and one round.

    Parameters
    ----------
    problem : Problem
        Factors; the players are its groups.
    permutations, outer, inner : int
        ``Np >= 1`` random permutations, ``No >= 1`` outer and ``Ni >= 2`` inner draws per block.
    seed : int, default 0

    Raises
    ------
    ValueError
        A size below its minimum.
    """

    replicates = 1
    design_name: DesignName = "iid"  # every block draws from its own Philox stream

    def __init__(self, problem: Problem, permutations: int, outer: int, inner: int, *, seed: int = 0) -> None:
        if min(permutations, outer) < 1 or inner < 2:
            raise ValueError(
                f"shapley-song needs permutations >= 1, outer >= 1 and inner >= 2; got "
                f"{permutations}, {outer}, {inner}"
            )
        self.problem = problem
        self.n_permutations, self.outer, self.inner, self.seed = permutations, outer, inner, seed
        self.D = problem.D
        self.n = permutations * self.D
        self.round_ends = [self.n]
        self.rows_per_sample = outer * inner
        self.labels = [f"o{o}q{q}" for o in range(outer) for q in range(inner)]

    def split(self, start: int, count: int) -> list[tuple[int, int, int]]:
        """One piece, replicate 0 (the double loop has no randomised copies of its design)."""
        self._check_range(start, count)
        return [(0, start, count)] if count else []

    def permutation(self, p: int) -> torch.Tensor:
        """Order of the players ``[D]`` for permutation ``p``."""
        return torch.from_numpy(philox(self.seed, p).permutation(self.D)).to(torch.int64)

    def blocks(self, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Permutations ``[count, D]`` and positions ``[count]`` of blocks ``start .. start+count-1``."""
        j = np.arange(start, start + count)
        perms = torch.stack([self.permutation(int(p)) for p in j // self.D])
        return perms, torch.from_numpy(j % self.D).to(torch.int64)

    def unit_rows(self, start: int, count: int) -> torch.Tensor:
        """Unit-cube rows ``[count, No * Ni, k]`` (float64) of blocks ``start .. start+count-1``."""
        k, No, Ni = self.problem.k, self.outer, self.inner
        gi = self.problem.group_index
        out = torch.empty(count, No * Ni, k, dtype=torch.float64)
        perms, pos = self.blocks(start, count)
        for b in range(count):  # a loop over blocks of No x Ni rows, each drawn in one call
            j = start + b
            rng = philox(self.seed, j // self.D, j % self.D, 1)
            outer = torch.from_numpy(rng.random((No, 1, k))).expand(No, Ni, k)
            inner = torch.from_numpy(rng.random((No, Ni, k)))
            redrawn = torch.isin(gi, perms[b, : int(pos[b]) + 1])  # [k] columns of players π[:i+1]
            out[b] = torch.where(redrawn, inner, outer).reshape(No * Ni, k)
        return out

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(D={self.D}, permutations={self.n_permutations}, outer={self.outer}, "
            f"inner={self.inner}, seed={self.seed})"
        )

"""Unit-cube designs: which rows of ``[0, 1)^k`` the model is evaluated on, base sample by base sample.

Every design draws, per base sample ``i``, two independent points ``x = A_i`` and ``x' = B_i`` of the
unit cube (one ``2k``-dimensional point; :class:`IIDDesign` needs only ``A``) and builds ``R`` rows from
them by swapping whole groups of columns (:attr:`augsens.factors.Problem.group_members`):

================================  =====  ========================================================
class                             ``R``  rows of base sample ``i``, in this order
================================  =====  ========================================================
:class:`SobolDesign`              D+2    ``A, B, AB_1..AB_D`` (``AB_j``: ``A``, group j from ``B``)
  ``second_order=True``           2D+2   ``..., BA_1..BA_D`` (``BA_j``: ``B``, group j from ``A``)
:class:`ShapleyDesign`            2^D    row ``u`` (bit j = group j): groups in ``u`` from ``A``
:class:`PermutationShapleyDesign` D+1    row ``r``: groups ``perm[:r]`` from ``A``, rest from ``B``
:class:`IIDDesign`                1      ``A``
================================  =====  ========================================================

Base points come from a scrambled Sobol' sequence (``method="sobol"``, the default; Owen-scrambled by
:class:`scipy.stats.qmc.Sobol`) or from a counter-based Philox generator (``method="iid"``).  Both are
*addressable*: :meth:`unit_rows(start, count) <_Design.unit_rows>` regenerates any range of base samples on
its own, bit for bit equal to the same range of a full run, so shards, resumed runs and GPUs need no
shared random state.

Replicates (for randomised-QMC confidence intervals) split the ``n`` base samples into ``replicates``
consecutive blocks of ``n // replicates``; block ``r`` uses its own scramble (or Philox key) derived from
``numpy.random.SeedSequence(seed, spawn_key=(r, stream))``, so the blocks are independent randomisations
of the same point set.  The Sobol' method needs ``n // replicates`` to be a power of 2 (balance
properties: Owen 1997; scipy refuses the same in ``Sobol.random_base2``).
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import torch
from scipy.stats import qmc

from augsens.factors import Problem

__all__ = [
    "SobolDesign",
    "ShapleyDesign",
    "PermutationShapleyDesign",
    "IIDDesign",
    "MAX_EXACT_SHAPLEY_GROUPS",
]

#: Largest number of groups for the exact (2^D rows per base sample) Shapley design.
MAX_EXACT_SHAPLEY_GROUPS = 12

# SeedSequence spawn-key streams: one per use of randomness, so adding a use never shifts another.
_STREAM_SOBOL, _STREAM_IID, _STREAM_PERMUTATION = 0, 1, 2


def _seed_sequence(seed: int, replicate: int, stream: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(replicate, stream))


def _philox_uniform(seq: np.random.SeedSequence, start: int, count: int, width: int) -> np.ndarray:
    """Uniforms ``[count, width]`` for samples ``start..start+count-1`` of a counter-based stream.

    Philox yields 4 uint64 per counter step and one double per uint64; padding each sample to a
    multiple of 4 doubles makes sample ``i`` start exactly at counter ``i * width4 / 4``, so ``advance``
    jumps to any sample without generating the ones before it.
    """
    width4 = -(-width // 4) * 4
    bitgen = np.random.Philox(key=seq.generate_state(2, np.uint64))
    bitgen.advance(start * (width4 // 4))
    return np.random.Generator(bitgen).random((count, width4))[:, :width]


def _nearest_powers_of_2(n: int) -> tuple[int, int]:
    low = 1 << max(n.bit_length() - 1, 0)
    return low, low * 2


class _Design:
    """Shared machinery: base points ``(A, B)`` per base sample, replicate blocks, row assembly."""

    rows_per_sample: int
    labels: list[str]
    _pair: bool = True  # whether base samples need B as well as A

    def __init__(
        self,
        problem: Problem,
        n: int,
        *,
        seed: int = 0,
        method: Literal["sobol", "iid"] = "sobol",
        replicates: int = 1,
    ) -> None:
        if not isinstance(problem, Problem):
            raise TypeError(f"problem must be an augsens Problem, got {type(problem).__name__}")
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n (number of base samples) must be a positive integer, got {n!r}")
        if isinstance(replicates, bool) or not isinstance(replicates, int | np.integer) or replicates < 1:
            raise ValueError(f"replicates must be a positive integer, got {replicates!r}")
        if method not in ("sobol", "iid"):
            raise ValueError(
                f"method={method!r} is not a design method; use 'sobol' (scrambled QMC) or 'iid'"
            )
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        n, replicates = int(n), int(replicates)
        if n % replicates:
            raise ValueError(
                f"n={n} is not divisible by replicates={replicates}: each replicate needs the same number "
                f"of base samples; use n={n - n % replicates or replicates} or "
                f"n={n - n % replicates + replicates}"
            )
        per = n // replicates
        if method == "sobol" and per & (per - 1):
            if replicates == 1:
                low, high = _nearest_powers_of_2(n)
                raise ValueError(
                    f"The balance properties of Sobol' points require n to be a power of 2, got n={n}; "
                    f"use n={low} or n={high}, or method='iid'"
                )
            low, high = _nearest_powers_of_2(per)
            raise ValueError(
                f"The balance properties of Sobol' points require n // replicates to be a power of 2, got "
                f"n={n}, replicates={replicates} (n // replicates = {per}); use n={low * replicates} or "
                f"n={high * replicates}, or method='iid'"
            )
        self.problem = problem
        self.n = n
        self.seed = int(seed)
        self.method = method
        self.replicates = replicates
        self.per_replicate = per
        self.D = problem.D
        self.k = problem.k
        self._dims = 2 * self.k if self._pair else self.k
        if method == "sobol" and self._dims > qmc.Sobol.MAXDIM:
            raise ValueError(
                f"a Sobol' design needs {self._dims} dimensions, scipy's Sobol' supports {qmc.Sobol.MAXDIM}; "
                "use method='iid'"
            )
        self._engines: dict[int, qmc.Sobol] = {}
        # [D, k] bool: column c belongs to group j
        self._group_cols = problem.group_index[None, :] == torch.arange(self.D)[:, None]
        self._setup()

    def _setup(self) -> None:
        """Set ``labels`` and ``rows_per_sample`` (designs whose rows need no extra arguments)."""

    # -- replicate bookkeeping -------------------------------------------------------------------
    def replicate_of(self, i: int) -> int:
        """Replicate of base sample ``i`` (``i // (n // replicates)``)."""
        if not 0 <= i < self.n:
            raise IndexError(f"base sample {i} is outside 0..{self.n - 1}")
        return i // self.per_replicate

    def split(self, start: int, count: int) -> list[tuple[int, int, int]]:
        """Split base samples ``start..start+count-1`` at replicate boundaries.

        Returns
        -------
        list of (replicate, start, count)
            Consecutive pieces, each inside one replicate; ``start`` is global.
        """
        self._check_range(start, count)
        pieces = []
        i, end = start, start + count
        while i < end:
            r = i // self.per_replicate
            stop = min(end, (r + 1) * self.per_replicate)
            pieces.append((r, i, stop - i))
            i = stop
        return pieces

    def batches(self, batch: int) -> list[tuple[int, int, int]]:
        """All base samples as ``(replicate, start, count)`` pieces of at most ``batch`` samples."""
        if batch < 1:
            raise ValueError(f"batch must be a positive number of base samples, got {batch!r}")
        out: list[tuple[int, int, int]] = []
        for r in range(self.replicates):
            lo, hi = r * self.per_replicate, (r + 1) * self.per_replicate
            out.extend((r, s, min(batch, hi - s)) for s in range(lo, hi, batch))
        return out

    def _check_range(self, start: int, count: int) -> None:
        if start < 0 or count < 0 or start + count > self.n:
            raise IndexError(
                f"base samples {start}..{start + count - 1} are outside the design's 0..{self.n - 1}"
            )

    # -- base points -----------------------------------------------------------------------------
    def _engine(self, replicate: int) -> qmc.Sobol:
        if replicate not in self._engines:
            rng = np.random.default_rng(_seed_sequence(self.seed, replicate, _STREAM_SOBOL))
            try:
                engine = qmc.Sobol(self._dims, scramble=True, rng=rng)
            except TypeError:  # scipy < 1.15 names the keyword `seed`
                engine = qmc.Sobol(self._dims, scramble=True, seed=rng)
            self._engines[replicate] = engine
        return self._engines[replicate]

    def _base_points(self, replicate: int, local: int, count: int) -> np.ndarray:
        if self.method == "iid":
            seq = _seed_sequence(self.seed, replicate, _STREAM_IID)
            return _philox_uniform(seq, local, count, self._dims)
        engine = self._engine(replicate).reset()
        if local:
            engine.fast_forward(local)
        with warnings.catch_warnings():
            # scipy warns when a *first* draw is not 2^m points; our ranges are pieces of a 2^m set.
            warnings.filterwarnings("ignore", message="The balance properties", category=UserWarning)
            return engine.random(count)

    def base(self, start: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Base points ``A, B`` ``[count, k]`` float64 in ``[0, 1)`` of base samples ``start..``."""
        parts = [self._base_points(r, s - r * self.per_replicate, c) for r, s, c in self.split(start, count)]
        pts = torch.from_numpy(np.concatenate(parts) if parts else np.empty((0, self._dims)))
        return pts[:, : self.k], pts[:, self.k :]

    def _permutations(self, start: int, count: int) -> torch.Tensor:
        parts = []
        for r, s, c in self.split(start, count):
            seq = _seed_sequence(self.seed, r, _STREAM_PERMUTATION)
            # argsort of i.i.d. uniforms is a uniformly random order (ties have probability ~0)
            parts.append(np.argsort(_philox_uniform(seq, s - r * self.per_replicate, c, self.D), axis=1))
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
            f"method={self.method!r}, replicates={self.replicates}, seed={self.seed})"
        )


class SobolDesign(_Design):
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
    method : {"sobol", "iid"}, default "sobol"
        Scrambled Sobol' QMC or i.i.d. (Philox) base points.
    replicates : int, default 1
        Independent randomisations, consecutive blocks of ``n // replicates`` base samples.

    Examples
    --------
    >>> import augsens.factors as fa
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
        method: Literal["sobol", "iid"] = "sobol",
        replicates: int = 1,
    ) -> None:
        super().__init__(problem, n, seed=seed, method=method, replicates=replicates)
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


class ShapleyDesign(_Design):
    """All ``2^D`` hybrids of ``x = A`` and ``x' = B``, for exact Shapley effects (Owen 2014).

    Row ``u`` (bit ``j`` of ``u`` stands for group ``j``) takes the groups in ``u`` from ``x`` and the
    others from ``x'``; row 0 is ``x'``, row ``2^D - 1`` is ``x``.  Parameters as :class:`SobolDesign`.

    Raises
    ------
    ValueError
        More than :data:`MAX_EXACT_SHAPLEY_GROUPS` groups (``2^D`` rows per base sample).
    """

    def __init__(
        self,
        problem: Problem,
        n: int,
        *,
        seed: int = 0,
        method: Literal["sobol", "iid"] = "sobol",
        replicates: int = 1,
    ) -> None:
        if isinstance(problem, Problem) and problem.D > MAX_EXACT_SHAPLEY_GROUPS:
            raise ValueError(
                f"exact Shapley effects need 2^D = {2**problem.D} model evaluations per base sample for "
                f"D={problem.D} groups (at most {MAX_EXACT_SHAPLEY_GROUPS} allowed); use "
                "PermutationShapleyDesign (method='permutation'), which needs D+1"
            )
        super().__init__(problem, n, seed=seed, method=method, replicates=replicates)
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


class PermutationShapleyDesign(_Design):
    """Permutation chains for the one-loop Shapley estimator (Goda 2021): ``R = D + 1`` rows.

    Each base sample draws a uniformly random order ``perm`` of the groups (counter-based, reproducible
    per range whatever ``method``).  Row ``r`` switches groups ``perm[:r]`` from ``x' = B`` to ``x = A``;
    row 0 is ``x'`` and row ``D`` is ``x``.  Parameters as :class:`SobolDesign`.
    """

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


class IIDDesign(_Design):
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

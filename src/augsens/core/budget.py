"""The budget of a run: how many base samples, in which rounds, until which precision or time.

A run without a precision target evaluates its ``n`` base samples in one round.  With a target
(:mod:`augsens.core.precision`), ``n`` is the first round and each later round doubles the base samples
done, up to ``max_n`` (``n`` times a power of 2), unless the target is met or the time limit would be
passed first.  :meth:`Budget.of` checks these rules once, where a budget is built (the one-call API's
arguments, a study config's ``[study]`` section), and names the settings as the caller spells them
(:class:`Spelling`); the design, the loop and the results receive the :class:`Budget` as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Budget", "Spelling", "ARGUMENTS", "DEFAULT_DOUBLINGS", "default_max_n", "check_doubling"]

#: Rounds a precision run may add by default: ``max_n = n * 2^DEFAULT_DOUBLINGS``.
DEFAULT_DOUBLINGS = 4


def default_max_n(n: int) -> int:
    """Budget of base samples when none is given: four doublings of the first round (``16 n``)."""
    return n << DEFAULT_DOUBLINGS


def _is_doubling(n: int, max_n: int) -> bool:
    """Whether ``max_n`` is ``n`` times a power of 2 (``n >= 1``)."""
    ratio = max_n // n if max_n >= n else 0
    return bool(ratio) and not max_n % n and not ratio & (ratio - 1)


def check_doubling(first: int, n: int) -> None:
    """Refuse a design of ``n`` base samples whose rounds, from a first of ``first``, do not double
    (:class:`ValueError`, in the design's own argument names)."""
    if first < 1 or not _is_doubling(first, n):
        raise ValueError(
            f"first={first} must divide n={n} by a power of 2 (each round doubles the base samples)"
        )


@dataclass(frozen=True)
class Spelling:
    """How messages about a budget name its settings, and the error they raise.

    ``keywords``: as Python keywords (``max_n=3000``), else as a config file's keys (``max_n = 3000``);
    ``where`` is put before every message (a config file's name and section).
    """

    keywords: bool = True
    where: str = ""
    error: type[Exception] = ValueError

    def assign(self, key: str, value: Any) -> str:
        """One setting as the user wrote it."""
        return f"{key}={value!r}" if self.keywords else f"{key} = {value!r}"

    def fail(self, message: str) -> Exception:
        """The error to raise for ``message``."""
        return self.error(f"{self.where}{message}")


#: The one-call API's keywords (:mod:`augsens.core.api`).
ARGUMENTS = Spelling()


@dataclass(frozen=True)
class Budget:
    """Base samples and stop rule of one run, as validated by :meth:`of`.

    Attributes
    ----------
    n : int
        Base samples of the first round (of the whole run without a precision target).
    max_n : int
        Base samples of the design: ``n`` without a target, else ``n`` times a power of 2.
    precision : float
        The precision target (0: none; :func:`augsens.core.precision.stop_reason`).
    time_limit : float
        Seconds; no round is started that would end later (0: none).
    replicates : int
        Independent randomisations of the design (half-widths need 2 or more).
    """

    n: int
    max_n: int
    precision: float = 0.0
    time_limit: float = 0.0
    replicates: int = 1

    @property
    def first(self) -> int | None:
        """The first round when the design runs in rounds (a precision target), else ``None``."""
        return self.n if self.precision else None

    @classmethod
    def of(
        cls,
        n: Any,
        *,
        replicates: Any = 1,
        precision: Any = None,
        max_n: Any = None,
        time_limit: Any = None,
        spelling: Spelling = ARGUMENTS,
    ) -> Budget:
        """The validated budget; ``None`` for ``precision``, ``max_n`` or ``time_limit`` leaves it unset.

        Raises
        ------
        ValueError or ``spelling.error``
            ``max_n`` or ``time_limit`` without a precision target, a target outside (0, 1), fewer than
            2 replicates with a target, ``max_n`` not ``n`` times a power of 2, a negative time limit.
        """
        s, kw = spelling, spelling.keywords
        if precision is None:
            if max_n is not None or time_limit is not None:
                raise s.fail(
                    "max_n and time_limit bound a run with a precision target; "
                    + (
                        f"pass precision=... as well (got max_n={max_n!r}, time_limit={time_limit!r})"
                        if kw
                        else "set [study] precision (e.g. 0.02) or remove them"
                    )
                )
            return cls(n, n, replicates=replicates)
        if isinstance(precision, bool) or not isinstance(precision, int | float) or not 0 < precision < 1:
            raise s.fail(
                f"precision must be a half-width in (0, 1), e.g. 0.02, got {precision!r}"
                if kw
                else f"precision = {precision!r} must be a half-width in (0, 1), e.g. 0.02 (0 = no target)"
            )
        if isinstance(replicates, int) and replicates < 2:
            why = "half-widths come from the spread of the replicates"
            raise s.fail(
                f"a precision target needs replicates >= 2 ({why}), got replicates={replicates!r}"
                if kw
                else f"precision needs replicates >= 2 ({why}), got {replicates}"
            )
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise s.fail(f"n (base samples of the first round) must be a positive integer, got {n!r}")
        budget = default_max_n(n) if max_n is None else max_n
        if isinstance(budget, bool) or not isinstance(budget, int) or not _is_doubling(n, budget):
            example = f"max_n={default_max_n(n)}" if kw else f"{default_max_n(n)}; 0 = 16 n"
            raise s.fail(
                f"{s.assign('max_n', max_n)} must be {s.assign('n', n)} times a power of 2 (each round "
                f"doubles the base samples), e.g. {example}"
            )
        limit = 0.0 if time_limit is None else time_limit
        if isinstance(limit, bool) or not isinstance(limit, int | float) or limit < 0:
            raise s.fail(
                f"time_limit must be a number of seconds >= 0, got {time_limit!r}"
                if kw
                else "time_limit must be >= 0 seconds (0 = none)"
            )
        return cls(n, budget, float(precision), float(limit), replicates)

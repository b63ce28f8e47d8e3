"""The one loop: a method's batches in design order, outputs fed to its accumulators, round by round.

:func:`run` owns the round logic once for every caller: when a round ends, the precision there, and
the stop rule (:func:`augsens.core.precision.stop_reason`: precision target, time limit, design used
up).  What differs between callers is supplied as :class:`Hooks`:

* evaluate a batch (:meth:`Hooks.evaluate`, then :meth:`Hooks.add` to the accumulators): a function of
  factor values for :func:`augsens.core.api.sobol` and friends, a network's captured activations for
  the study engine (:mod:`augsens.engine.runner`);
* before and after a batch (:meth:`Hooks.before_batch`, :meth:`Hooks.after_batch`): checkpoint saves,
  deferred signals, progress, a stop after so many base samples;
* between rounds (:meth:`Hooks.precision`, :meth:`Hooks.elapsed`, :meth:`Hooks.round_end`): what the stop
  rule reads and who is told its verdict;
* or a whole round evaluated elsewhere (:meth:`Hooks.evaluate_round`): the Ray driver's shards
  (:mod:`augsens.engine.distributed`), when :func:`run` is given no ``batch_rows``.

The walk over base samples is the design's (:meth:`augsens.core.design.Design.batches`), its rows and
update calls are the method's (:mod:`augsens.core.methods`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from augsens.core.budget import Budget
from augsens.core.methods import Batch, Method
from augsens.core.precision import precision_of, stop_reason

__all__ = ["batches", "feed", "walk", "run", "Hooks", "OneAccumulator", "Outcome"]


def batches(method: Method, batch_rows: int, start: int = 0, stop: int | None = None) -> Iterator[Batch]:
    """Base samples ``[start, stop)`` (default: to the end) as batches of at most ``batch_rows`` rows.

    A batch holds whole base samples (at least one) of one replicate block; its rows are drawn when the
    iterator reaches it.
    """
    per_batch = max(1, batch_rows // method.rows_per_sample)
    for replicate, first, count in method.design.batches(per_batch, start, stop):
        unit, extra = method.rows(first, count)
        yield Batch(first, count, replicate, unit, extra)


def feed(
    method: Method, accumulators: Mapping[Any, Any], outputs: Mapping[Any, torch.Tensor], batch: Batch
) -> None:
    """Add ``outputs[key]`` (``[count * R, *out]``) to ``accumulators[key]`` for every accumulator."""
    for key, acc in accumulators.items():
        method.update(acc, outputs[key], batch)


class Hooks:
    """What the caller of :func:`walk` and :func:`run` supplies; subclass and override.

    :meth:`evaluate` and :meth:`add` are needed when the loop walks batches; the rest default to doing
    nothing (no stop before a batch, no precision, the time since the hooks were made).
    """

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def evaluate(self, batch: Batch) -> Any:
        """The outputs of ``batch``'s rows (``[count * R, *out]``, or such a tensor per accumulator)."""
        raise NotImplementedError

    def add(self, outputs: Any, batch: Batch) -> None:
        """Add the outputs of ``batch`` to the accumulators (in place)."""
        raise NotImplementedError

    def before_batch(self, batch: Batch) -> bool:
        """Whether to evaluate ``batch``; ``False`` ends the loop there (``Outcome.stop_reason`` None)."""
        return True

    def after_batch(self, batch: Batch, done: int) -> None:
        """Called once ``batch`` is added; ``done`` base samples are now in the accumulators."""

    def evaluate_round(self, start: int, stop: int) -> None:
        """Add base samples ``[start, stop)`` (a whole round) at once; used when :func:`run` has no
        ``batch_rows``."""
        raise NotImplementedError

    def precision(self) -> float:
        """The precision of the accumulators now (:func:`augsens.core.precision.precision_of`)."""
        return math.nan

    def elapsed(self) -> float:
        """Seconds the time limit is compared with."""
        return time.monotonic() - self._t0

    def round_end(self, done: int, precision: float, reason: str | None) -> None:
        """A round ended at ``done`` base samples with ``precision``; ``reason``: why the run stops there,
        ``None`` when the next round runs."""


class OneAccumulator(Hooks):
    """Hooks that evaluate a batch with ``evaluate(batch) -> outputs`` into one accumulator of ``method``
    (:attr:`accumulator`): a function of the factors (:mod:`augsens.core.api`), the contrast study's
    images and copies; the precision is the accumulator's for a sensitivity method."""

    def __init__(self, method: Method, evaluate: Callable[[Batch], torch.Tensor]):
        super().__init__()
        self.method, self._evaluate = method, evaluate
        self.accumulator = method.accumulator()

    def evaluate(self, batch: Batch) -> torch.Tensor:
        return self._evaluate(batch)

    def add(self, outputs: torch.Tensor, batch: Batch) -> None:
        self.method.update(self.accumulator, outputs, batch)

    def precision(self) -> float:
        return precision_of([self.accumulator]) if self.method.sensitivity else math.nan


@dataclass
class Outcome:
    """What :func:`run` ends with: base samples done, why it stopped, the precision at the last round end.

    ``stop_reason`` is one of :data:`augsens.core.precision.STOP_REASONS`, or ``None`` when
    :meth:`Hooks.before_batch` stopped the loop."""

    done: int
    stop_reason: str | None
    precision: float


def walk(
    method: Method, hooks: Hooks, batch_rows: int, start: int, stop: int | None = None
) -> tuple[int, bool]:
    """Evaluate base samples ``[start, stop)`` batch by batch through ``hooks``; no round logic.

    Returns the base samples done and whether :meth:`Hooks.before_batch` stopped the walk early."""
    done = start
    for batch in batches(method, batch_rows, start, stop):
        if not hooks.before_batch(batch):
            return done, True
        hooks.add(hooks.evaluate(batch), batch)
        done = batch.start + batch.count
        hooks.after_batch(batch, done)
    return done, False


def run(method: Method, hooks: Hooks, budget: Budget, *, batch_rows: int | None, start: int = 0) -> Outcome:
    """Evaluate the method's design round by round from base sample ``start`` until the stop rule says so.

    At every round end (:attr:`Method.round_ends`, also when ``start`` is one: a resumed run checks
    before it goes on) the precision (:meth:`Hooks.precision`) is compared with ``budget.precision`` and
    the time (:meth:`Hooks.elapsed`) with ``budget.time_limit``
    (:func:`augsens.core.precision.stop_reason`); the run stops at the first round end that meets
    either, or at the end of the design.  Rounds are walked batch by batch (:func:`walk`), or handed
    whole to :meth:`Hooks.evaluate_round` when ``batch_rows`` is ``None``.
    """
    ends = method.round_ends
    done, precision = start, math.nan
    while True:
        if done > 0 and done in ends:  # a round ended: the stop rule before the next one
            elapsed = hooks.elapsed()
            precision = hooks.precision()
            reason = stop_reason(
                precision,
                budget.precision,
                done=done,
                total=method.n,
                elapsed=elapsed,
                time_limit=budget.time_limit,
            )
            hooks.round_end(done, precision, reason)
            if reason is not None:  # always at the end of the design
                return Outcome(done, reason, precision)
        end = next(e for e in ends if e > done)
        if batch_rows is None:
            hooks.evaluate_round(done, end)
            done = end
            continue
        done, stopped = walk(method, hooks, batch_rows, done, end)
        if stopped:
            return Outcome(done, None, precision)

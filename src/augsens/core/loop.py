"""The one loop: a method's batches in design order, outputs fed to its accumulators, round by round.

Whoever evaluates the rows supplies ``evaluate(batch) -> outputs``: a function of factor values for
:func:`augsens.core.api.sobol` and friends, a network's captured activations for the study engine, which
calls :func:`batches` and :func:`feed` from its own run loop (checkpoints, signals, progress) and from its
Ray shards.  The walk over base samples is the design's (:meth:`augsens.core.design.Design.batches`), its
rows and update calls are the method's (:mod:`augsens.core.methods`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from augsens.core.methods import Batch, Method
from augsens.core.precision import precision_of, stop_reason

__all__ = ["batches", "feed", "run", "Outcome"]


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


@dataclass
class Outcome:
    """What :func:`run` ends with: the accumulator, base samples done, why it stopped, the precision."""

    accumulator: Any
    done: int
    stop_reason: str
    precision: float


def run(
    method: Method,
    evaluate: Callable[[Batch], torch.Tensor],
    *,
    batch_rows: int,
    target: float = 0.0,
    time_limit: float = 0.0,
) -> Outcome:
    """Evaluate the method's design round by round into one accumulator.

    After each round of a sensitivity method the precision (:func:`augsens.core.precision.precision_of`)
    is compared with ``target`` and the time with ``time_limit`` (0: none); the run stops at the first
    round end that meets either, or at the end of the design.
    """
    acc = method.accumulator()
    t0 = time.monotonic()
    done, reason, precision = 0, "n reached", math.nan
    for end in method.round_ends:
        for batch in batches(method, batch_rows, done, end):
            method.update(acc, evaluate(batch), batch)
        done = end
        if not method.sensitivity:
            continue
        precision = precision_of([acc])
        why = stop_reason(
            precision, target, done=done, total=method.n, elapsed=time.monotonic() - t0, time_limit=time_limit
        )
        if why is not None:
            reason = why
            break
    return Outcome(acc, done, reason, precision)

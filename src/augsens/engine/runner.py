"""The hot path of a study and its run loop: rows -> images -> forward with capture -> accumulators.

Per batch of base samples::

    unit rows [b, R, k] (CPU, float64, from (seed, start, count))
      -> decode: parameters, switches, orders, image indices  (host -> device copy, small)
      -> gather uint8 images from the device cache -> compose augmentations per sample
      -> post-process -> forward with capture (fp32 or bf16 autocast, channels_last)
      -> accumulator updates on the device (:func:`augsens.core.loop.feed`)

No device -> host copy happens per batch: progress counts rows on the host, and non-finite values are
counted on the device.  :func:`run` walks the design (:func:`augsens.core.loop.batches`), checks the
precision at round ends, saves the state atomically every ``checkpoint_every`` seconds and on Ctrl-C or
SIGTERM (deferred to the end of the batch), and keeps the last save when an update fails half-way.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import xarray as xr

from augsens.augment import compose, postprocess
from augsens.core import loop
from augsens.core.methods import Batch
from augsens.core.precision import precision_of, stop_reason
from augsens.engine.results import warn_no_data
from augsens.engine.space import (
    DiskFullError,
    check_room,
    free_bytes,
    is_disk_full,
    size,
    state_nbytes,
    tree_nbytes,
)
from augsens.engine.state import StudyState, run_segment
from augsens.errors import is_out_of_memory
from augsens.interrupts import StudyInterrupted, deferred_signals
from augsens.outlock import own_out
from augsens.preflight import STATE_DIR, STATE_NAME, prepare_out
from augsens.progress import forwards_bar
from augsens.results import write_results
from augsens.wording import run_again

if TYPE_CHECKING:
    from augsens.engine.study import Study

__all__ = ["images_for", "forward", "step", "accumulate", "round_check", "run"]


def images_for(study: Study, unit: torch.Tensor, first_row: int) -> torch.Tensor:
    """Post-processed model inputs for unit rows ``[N, k]`` whose global row ids start at first_row."""
    sc = study.config.study
    row_ids = torch.arange(first_row, first_row + unit.shape[0], dtype=torch.int64)
    rows = study.factors.decode(unit, device=study.device, row_ids=row_ids, seed=sc.seed)
    x = study.images.gather(rows.image)
    x = compose(
        x,
        study.factors.specs,
        rows.params,
        order=rows.order,
        on=rows.on,
        mode=sc.mode,
        validate=False,
    )
    x = postprocess(x, study._mean, study._std, minmax=sc.mode == "paper")
    if study.config.run.channels_last and x.ndim == 4:  # NHWC exists for 4-D batches only
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def forward(study: Study, unit: torch.Tensor, first_row: int) -> dict[str, torch.Tensor]:
    """Captured activations ``{checkpoint: [N, *out]}`` for unit rows ``[N, k]``, in forward chunks."""
    bs = study.config.run.batch_size
    autocast = (
        torch.autocast(device_type=study.device.type, dtype=torch.bfloat16)
        if study.config.run.dtype == "bfloat16"
        else contextlib.nullcontext()
    )
    parts: dict[str, list[torch.Tensor]] = {c: [] for c in study.checkpoints}
    for lo in range(0, unit.shape[0], bs):  # one forward per chunk of rows, not per sample
        x = images_for(study, unit[lo : lo + bs], first_row + lo)
        with torch.no_grad(), autocast:  # not inference_mode: capture checks in-place overwrites
            acts = study.model.capture(x, study.checkpoints, normalized=True)
        for c in study.checkpoints:
            parts[c].append(acts[c])
    return {c: v[0] if len(v) == 1 else torch.cat(v) for c, v in parts.items()}


def step(study: Study, state: StudyState, batch: Batch) -> None:
    """Forward one batch and add its activations to ``state`` (the position is the caller's)."""
    R = study.plan.rows
    acts = study._forward(batch.rows, batch.start * R)
    # From here on the state changes in place: an exception now leaves it half updated, so it must
    # not be saved (run() keeps the last saved state instead).
    study._updating = True
    for c, m in state.moments.items():
        m.update(acts[c])
    loop.feed(study.plan.method, state.acc, acts, batch)
    study._updating = False


def accumulate(
    study: Study, state: StudyState, start: int, stop: int, advance: Callable[[int], None] | None = None
) -> StudyState:
    """Add base samples ``[start, stop)`` to ``state`` (a shard of the design; used by Ray workers)."""
    t0 = time.monotonic()
    for batch in loop.batches(study.plan.method, study.config.run.batch_size, start, stop):
        study._step(state, batch)
        state.position += batch.count
        if advance is not None:
            advance(batch.count * study.plan.rows)
    state.elapsed += time.monotonic() - t0
    return state


def round_check(study: Study, state: StudyState, elapsed: float | None = None) -> str | None:
    """At the end of a round: the precision reached (kept in ``state``) and why to stop, if so.

    ``elapsed`` (default ``state.elapsed``) is the time the time limit is compared with."""
    sc = study.config.study
    state.precision = precision_of(state.acc.values())
    state.stop_reason = stop_reason(
        state.precision,
        sc.precision,
        done=state.position,
        total=study.plan.n,
        elapsed=state.elapsed if elapsed is None else elapsed,
        time_limit=sc.time_limit,
    )
    return state.stop_reason


def run(
    study: Study, out: Path, *, resume: bool, overwrite: bool, stop_after: int | None
) -> xr.DataTree | None:
    """:meth:`augsens.engine.Study.run`: the run loop with checkpoints, signals and OOM handling, in an
    output folder this run holds (:func:`augsens.outlock.own_out`)."""
    with own_out(out):
        return _run(study, out, resume=resume, overwrite=overwrite, stop_after=stop_after)


def _run(
    study: Study, out: Path, *, resume: bool, overwrite: bool, stop_after: int | None
) -> xr.DataTree | None:
    state_path = out / STATE_DIR / STATE_NAME
    prepare_out(out, resume=resume, overwrite=overwrite)
    need = state_nbytes(study)
    check_room(out, need)  # before the first forward: a run that cannot save its state does not start
    state = study._load_state(state_path) if resume else study.new_state()
    saved_at = state.position if resume else None  # base samples in the last good state on disk
    # what this (re)start uses of the settings a resume may change: the results list every one
    state.history.append(run_segment(state.position, study.config.to_dict()["run"], str(study.device)))
    n, R = study.plan.n, study.plan.rows
    target = study.config.study.precision or None
    ends = study.round_ends
    every = study.config.run.checkpoint_every
    last_save = time.monotonic()
    t0 = time.monotonic() - state.elapsed

    unsaved: DiskFullError | None = None  # the final save found no room (see below)

    def save() -> None:
        nonlocal saved_at
        state.elapsed = time.monotonic() - t0
        try:
            study._save_state(state_path, state)  # removes its partial file when it fails
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            kept = (
                f"the last good state ({saved_at} of {n} base samples) is kept in {str(state_path)!r}. "
                f"Free at least {size(need)}. {run_again()}"
                if saved_at is not None
                else f"no state had been saved yet. Free at least {size(need)} and run it again"
            )
            raise DiskFullError(
                f"no space left on the device of {str(out)!r} to save the run's state ({size(need)} "
                f"needed, {size(free_bytes(out))} free): the partial file was removed and {kept}"
            ) from exc
        saved_at = state.position

    def round_end(position: int) -> int:
        return next(e for e in ends if e > position) if position < n else n

    with deferred_signals() as pending:
        try:
            with forwards_bar(
                study.progress,
                total=(round_end(state.position) if target else n) * R,
                done=state.position * R,
                label=study._label(),
                target=target,
            ) as advance:
                for batch in loop.batches(study.plan.method, study.config.run.batch_size, state.position):
                    start = batch.start
                    if start > 0 and start in ends:  # a round ended: check the precision before the next
                        state.elapsed = time.monotonic() - t0
                        if round_check(study, state) is not None:
                            advance(0, precision=state.precision)  # the bar ends on it
                            break
                        advance(0, total=round_end(start) * R, precision=state.precision)
                    if stop_after is not None and start >= stop_after:
                        save()
                        return None
                    study._step(state, batch)
                    state.position = start + batch.count
                    advance(batch.count * R)
                    if pending():
                        raise KeyboardInterrupt
                    if time.monotonic() - last_save > every:
                        save()
                        last_save = time.monotonic()
                if state.position >= n:
                    state.elapsed = time.monotonic() - t0
                    round_check(study, state)
                    advance(0, precision=state.precision)
            # every sample is done: keep them on disk until the results are, so that a stop while
            # the results are assembled or written loses no forward pass
            try:
                save()
            except DiskFullError as exc:
                unsaved = exc  # no room for the state: the results, often smaller, may still fit
        except KeyboardInterrupt as exc:
            if not study._updating:
                save()
            signum = pending() or getattr(exc, "signum", int(signal.SIGINT))
            raise StudyInterrupted(
                state_path, state.position, n, saved=not study._updating, signum=signum
            ) from None
        except Exception as exc:
            if is_out_of_memory(exc) and not study._updating:  # in the forward pass: the state is intact
                save()
            raise
        try:
            tree = study.finalize(state)
            if pending():
                raise KeyboardInterrupt
            try:
                written = write_results(tree, out)  # atomic: a temporary sibling, then renamed
            except Exception as exc:
                if not is_disk_full(exc):
                    raise
                if unsaved is not None:
                    raise DiskFullError(
                        f"{unsaved}. Writing the results instead (up to {size(tree_nbytes(tree))} "
                        "uncompressed) failed too, and its partial files were removed"
                    ) from exc
                raise DiskFullError(
                    f"no space left on the device of {str(out)!r} to write the results (up to "
                    f"{size(tree_nbytes(tree))} uncompressed, {size(free_bytes(out))} free): the partial "
                    f"results were removed and all {n} base samples are saved in {str(state_path)!r}. "
                    f"Free space. {run_again()} to write them (no forward pass is repeated)"
                ) from exc
        except KeyboardInterrupt as exc:
            if unsaved is not None:  # the samples were not saved: say what was kept
                raise unsaved from None
            signum = pending() or getattr(exc, "signum", int(signal.SIGINT))
            raise StudyInterrupted(state_path, state.position, n, signum=signum, phase="finalising") from None
        state_path.unlink(missing_ok=True)  # none when the last save found no room
        with contextlib.suppress(OSError):
            state_path.parent.rmdir()
        warn_no_data(tree, stacklevel=5)  # the results are safe; a checkpoint without data is named
        if pending():
            raise StudyInterrupted(
                state_path, state.position, n, signum=pending(), phase="written", results=written
            )
    return tree

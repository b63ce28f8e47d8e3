"""The hot path of a study and the hooks that run it: rows -> images -> forward with capture -> accumulators.

Per batch of base samples::

    unit rows [b, R, k] (CPU, float64, from (seed, start, count))
      -> decode: parameters, switches, orders, image indices  (host -> device copy, small)
      -> gather uint8 images from the device cache -> compose augmentations per sample
      -> post-process -> forward with capture (fp32 or bf16 autocast, channels_last)
      -> accumulator updates on the device (:func:`augsens.core.loop.feed`)

No device -> host copy happens per batch: progress counts rows on the host, and non-finite values are
counted on the device.  The rounds and the stop rule are the one loop's (:func:`augsens.core.loop.run`);
:func:`run` supplies its hooks: after a batch it saves the state atomically every ``checkpoint_every``
seconds and on Ctrl-C or SIGTERM (deferred to the end of the batch), and it keeps the last save when an
update fails half-way.  Everything here reads a study through its public members
(:class:`augsens.engine.parts.StudyParts`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import torch
import xarray as xr

from augsens.augment import compose, postprocess
from augsens.core import loop
from augsens.core.methods import Batch
from augsens.core.precision import precision_of
from augsens.engine.parts import StudyParts
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
from augsens.engine.state import STATE_KEYS, StudyState, run_segment
from augsens.errors import UserInputError, is_out_of_memory
from augsens.fingerprint import compare
from augsens.interrupts import StudyInterrupted, deferred_signals
from augsens.outlock import own_out
from augsens.preflight import STATE_DIR, STATE_NAME, prepare_out
from augsens.progress import forwards_bar
from augsens.results import write_results
from augsens.wording import option, run_again

__all__ = [
    "images_for",
    "forward",
    "StudyHooks",
    "step",
    "accumulate",
    "save_state",
    "load_state",
    "run",
]


def images_for(study: StudyParts, unit: torch.Tensor, first_row: int) -> torch.Tensor:
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
    x = postprocess(x, study.input_mean, study.input_std, minmax=sc.mode == "paper")
    if study.config.run.channels_last and x.ndim == 4:  # NHWC exists for 4-D batches only
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def forward(study: StudyParts, unit: torch.Tensor, first_row: int) -> dict[str, torch.Tensor]:
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


class StudyHooks(loop.Hooks):
    """The loop's hooks that add a study's batches to ``state``: evaluate is the study's forward pass
    (:meth:`augsens.engine.Study.forward`), add updates the moments and the method's accumulators.

    ``updating`` is true while the state is changed in place: an exception then leaves it half updated,
    so it must not be saved."""

    def __init__(self, study: StudyParts, state: StudyState) -> None:
        super().__init__()
        self.study, self.state = study, state
        self.updating = False

    def evaluate(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self.study.forward(batch.rows, batch.start * self.study.plan.rows)

    def add(self, outputs: dict[str, torch.Tensor], batch: Batch) -> None:
        self.updating = True
        for c, m in self.state.moments.items():
            m.update(outputs[c])
        loop.feed(self.study.plan.method, self.state.acc, outputs, batch)
        self.updating = False


def step(study: StudyParts, state: StudyState, batch: Batch) -> None:
    """Forward one batch and add its activations to ``state`` (the position is the caller's)."""
    hooks = StudyHooks(study, state)
    hooks.add(hooks.evaluate(batch), batch)


class _ShardHooks(StudyHooks):
    """A shard of the design: the position counts the base samples held, ``advance`` the rows."""

    def __init__(self, study: StudyParts, state: StudyState, advance: Callable[[int], None] | None) -> None:
        super().__init__(study, state)
        self.advance = advance

    def after_batch(self, batch: Batch, done: int) -> None:
        self.state.position += batch.count
        if self.advance is not None:
            self.advance(batch.count * self.study.plan.rows)


def accumulate(
    study: StudyParts,
    state: StudyState,
    start: int,
    stop: int,
    advance: Callable[[int], None] | None = None,
) -> StudyState:
    """Add base samples ``[start, stop)`` to ``state`` (a shard of the design; used by Ray workers)."""
    t0 = time.monotonic()
    loop.walk(study.plan.method, _ShardHooks(study, state, advance), study.config.run.batch_size, start, stop)
    state.elapsed += time.monotonic() - t0
    return state


def save_state(study: StudyParts, path: Path, state: StudyState) -> None:
    """Write ``state`` to ``path`` atomically, with the study's fingerprint (a resume must read the same
    images and weights)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    blob = {**study.export_state(state), "fingerprint": study.fingerprint()}
    try:
        # through a Python file, so that a full disk surfaces as OSError(ENOSPC), not as the C++
        # writer's "iostream error"
        with open(tmp, "wb") as f:
            torch.save(blob, f)
    except BaseException:
        tmp.unlink(missing_ok=True)  # never leave a partial file filling the disk
        raise
    os.replace(tmp, path)  # atomic: a crash leaves the previous state intact


def _first_line(exc: BaseException) -> str:
    return next(iter(str(exc).splitlines()), "")


def load_state(study: StudyParts, path: Path) -> StudyState:
    """The state saved in ``path``; refused when unreadable or made with other inputs or config."""
    fix = f"Restore the file, or start over with {option('overwrite')} (the work it held is lost)"
    try:
        blob = torch.load(path, map_location=study.device, weights_only=True)
    except Exception as exc:  # torch.load raises many types on a cut-short or foreign file
        raise UserInputError(
            f"state file {str(path)!r} cannot be read ({type(exc).__name__}: {_first_line(exc)}): "
            f"it was cut short or is not an augsens state. {fix}"
        ) from exc
    if not isinstance(blob, dict) or any(k not in blob for k in STATE_KEYS):
        raise UserInputError(f"state file {str(path)!r} is not an augsens run state. {fix}")
    changes = compare(blob.get("fingerprint", {}), study.fingerprint()) if "fingerprint" in blob else []
    if changes:
        raise UserInputError(
            f"cannot resume from {str(path)!r}: the inputs changed since it was saved: "
            f"{'; '.join(changes)}. Restore them, or start over with {option('overwrite')} (or another "
            f"{option('out', '')})"
        )
    return study.import_state(blob, source=repr(str(path)))


class _RunHooks(StudyHooks):
    """The hooks of :func:`run`: a stop after ``stop_after`` base samples, progress, deferred signals and
    periodic saves after each batch, the precision kept in the state at each round end."""

    def __init__(
        self,
        study: StudyParts,
        state: StudyState,
        *,
        save: Callable[[], None],
        advance: Callable[..., None],
        pending: Callable[[], int | None],
        stop_after: int | None,
        t0: float,
    ) -> None:
        super().__init__(study, state)
        self.save, self.advance, self.pending = save, advance, pending
        self.stop_after, self.t0 = stop_after, t0
        self.last_save = time.monotonic()

    def before_batch(self, batch: Batch) -> bool:
        return self.stop_after is None or batch.start < self.stop_after

    def after_batch(self, batch: Batch, done: int) -> None:
        self.state.position = done
        self.advance(batch.count * self.study.plan.rows)
        if self.pending():
            raise KeyboardInterrupt
        if time.monotonic() - self.last_save > self.study.config.run.checkpoint_every:
            self.save()
            self.last_save = time.monotonic()

    def precision(self) -> float:
        return precision_of(self.state.acc.values())

    def elapsed(self) -> float:
        self.state.elapsed = time.monotonic() - self.t0
        return self.state.elapsed

    def round_end(self, done: int, precision: float, reason: str | None) -> None:
        self.state.precision, self.state.stop_reason = precision, reason
        if reason is not None:
            self.advance(0, precision=precision)  # the bar ends on it
        else:
            self.advance(0, total=_next_end(self.study, done) * self.study.plan.rows, precision=precision)


def _next_end(study: StudyParts, position: int) -> int:
    """The end of the round that base sample ``position`` is in (``n`` once done)."""
    n = study.plan.n
    return next(e for e in study.plan.method.round_ends if e > position) if position < n else n


def run(
    study: StudyParts, out: Path, *, resume: bool, overwrite: bool, stop_after: int | None
) -> xr.DataTree | None:
    """:meth:`augsens.engine.Study.run`: the one loop with checkpoints, signals and OOM handling, in an
    output folder this run holds (:func:`augsens.outlock.own_out`)."""
    with own_out(out):
        return _run(study, out, resume=resume, overwrite=overwrite, stop_after=stop_after)


def _run(
    study: StudyParts, out: Path, *, resume: bool, overwrite: bool, stop_after: int | None
) -> xr.DataTree | None:
    state_path = out / STATE_DIR / STATE_NAME
    prepare_out(out, resume=resume, overwrite=overwrite)
    need = state_nbytes(study)
    check_room(out, need)  # before the first forward: a run that cannot save its state does not start
    state = load_state(study, state_path) if resume else study.new_state()
    saved_at = state.position if resume else None  # base samples in the last good state on disk
    # what this (re)start uses of the settings a resume may change: the results list every one
    state.history.append(run_segment(state.position, study.config.to_dict()["run"], str(study.device)))
    n, R = study.plan.n, study.plan.rows
    budget = study.plan.budget
    t0 = time.monotonic() - state.elapsed

    unsaved: DiskFullError | None = None  # the final save found no room (see below)

    def save() -> None:
        nonlocal saved_at
        state.elapsed = time.monotonic() - t0
        try:
            save_state(study, state_path, state)  # removes its partial file when it fails
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

    with deferred_signals() as pending:
        hooks: _RunHooks | None = None
        try:
            with forwards_bar(
                study.progress,
                total=(_next_end(study, state.position) if budget.precision else n) * R,
                done=state.position * R,
                label=study.label,
                target=budget.precision or None,
            ) as advance:
                hooks = _RunHooks(
                    study, state, save=save, advance=advance, pending=pending, stop_after=stop_after, t0=t0
                )
                outcome = loop.run(
                    study.plan.method,
                    hooks,
                    budget,
                    batch_rows=study.config.run.batch_size,
                    start=state.position,
                )
            if outcome.stop_reason is None:  # stop_after: a partial run, its state saved as on Ctrl-C
                save()
                return None
            # every sample is done: keep them on disk until the results are, so that a stop while
            # the results are assembled or written loses no forward pass
            try:
                save()
            except DiskFullError as exc:
                unsaved = exc  # no room for the state: the results, often smaller, may still fit
        except KeyboardInterrupt as exc:
            updating = hooks is not None and hooks.updating
            if not updating:
                save()
            signum = pending() or getattr(exc, "signum", int(signal.SIGINT))
            raise StudyInterrupted(state_path, state.position, n, saved=not updating, signum=signum) from None
        except Exception as exc:
            if is_out_of_memory(exc) and not (hooks is not None and hooks.updating):
                save()  # in the forward pass: the state is intact
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

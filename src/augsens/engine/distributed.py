"""Run one study on a Ray cluster: the design's base samples in shards, one worker per GPU (or CPU).

The design rows are a pure function of ``(seed, start, count)``, so any range of base samples can be
computed anywhere.  :func:`run_distributed` cuts ``[0, n)`` into shards, hands them to long-lived Ray
actors (each loads the model and the image cache once and then processes shard after shard), and merges
the returned accumulator states **in shard order** on the driver, so the result does not depend on which
worker finished first.  A shard whose task raises, or whose worker process dies, is run again from
scratch (a shard's state only leaves the worker once it is complete), so retries never count a sample
twice and the merged result is the same.

Ray is optional: ``pip install "augsens[ray]"``.

Examples
--------
>>> from augsens.config import load_config
>>> from augsens.engine.distributed import run_distributed
>>> tree = run_distributed(load_config("study.toml"), "out", address="local", workers=4)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import xarray as xr

from augsens.config import StudyConfig
from augsens.core import loop
from augsens.core.precision import precision_of
from augsens.engine.state import StudyState
from augsens.engine.study import Study
from augsens.errors import UserInputError
from augsens.progress import forwards_bar
from augsens.results import write_results

__all__ = [
    "run_distributed",
    "shard_ranges",
    "RayNotInstalledError",
    "RayConnectionError",
    "ShardFailedError",
]

_INSTALL_HINT = 'pip install "augsens[ray]"  (or: pip install "ray>=2.30")'


class RayNotInstalledError(ModuleNotFoundError, UserInputError):
    """Ray is needed for distributed runs but is not installed; the message says how to install it."""


class RayConnectionError(ConnectionError, UserInputError):
    """No Ray cluster answers at the address given; the message says how to start one."""


class ShardFailedError(RuntimeError):
    """A shard still failed after all its retries; the message names the shard and the last error."""


def _import_ray() -> ModuleType:
    try:
        import ray
    except ImportError as exc:
        raise RayNotInstalledError(
            f"distributed runs need Ray, which is not installed ({exc}). Install it with {_INSTALL_HINT}, "
            "or run without --ray on one device"
        ) from None
    return ray


def shard_ranges(n: int, shards: int, granularity: int = 1) -> list[tuple[int, int]]:
    """Split base samples ``[0, n)`` into at most ``shards`` contiguous ranges of nearly equal size.

    Parameters
    ----------
    n : int
        Base samples of the design.
    shards : int
        Wanted number of shards (fewer are returned when ``n // granularity`` is smaller).
    granularity : int, default 1
        Every boundary is a multiple of it (shapley-song states merge only at permutation boundaries,
        every ``D`` blocks).  ``n`` must be a multiple of it.

    Returns
    -------
    list of (start, stop)
        Ranges covering ``[0, n)`` in order, none empty.

    Examples
    --------
    >>> shard_ranges(10, 3)
    [(0, 4), (4, 7), (7, 10)]
    >>> shard_ranges(12, 5, granularity=4)
    [(0, 4), (4, 8), (8, 12)]
    """
    if n < 1 or shards < 1 or granularity < 1:
        raise ValueError(f"shard_ranges needs n, shards, granularity >= 1, got {n}, {shards}, {granularity}")
    if n % granularity:
        raise ValueError(f"n = {n} is not a multiple of the shard granularity {granularity}")
    units = n // granularity
    k = min(shards, units)
    # the first (units % k) shards get one unit more: sizes differ by at most one unit
    bounds = [granularity * (i * (units // k) + min(i, units % k)) for i in range(k + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor moved to the CPU (state dicts travel through Ray's object store)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _with_device(config: StudyConfig, device: str) -> StudyConfig:
    """A copy of ``config`` that runs on ``device`` (the run section is not part of a state's identity)."""
    out = copy.deepcopy(config)
    out.run = dataclasses.replace(out.run, device=device)
    return out


class _InjectedFailure(RuntimeError):
    """Raised by the testing hook of :func:`run_distributed`."""


def _maybe_fail(index: int, fail_once: tuple[int, str, str] | None) -> None:
    """Testing hook: fail shard ``fail_once[0]`` the first time it runs (marker file ``fail_once[1]``).

    ``fail_once[2]`` is ``"raise"`` (an exception in the task) or ``"exit"`` (the worker process dies).
    """
    if fail_once is None or index != fail_once[0]:
        return
    try:
        with open(fail_once[1], "x"):  # exclusive create: exactly one attempt sees the file missing
            pass
    except FileExistsError:
        return
    if fail_once[2] == "exit":
        os._exit(1)
    raise _InjectedFailure(f"injected failure of shard {index} (testing hook)")


class _ShardWorker:
    """One Ray actor: builds the study (model + image cache) once and runs shard after shard."""

    def __init__(self, config: StudyConfig) -> None:
        if config.run.device == "cpu":
            import ray

            # torch may have sized its thread pool before Ray set OMP_NUM_THREADS: use the CPUs given
            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
            torch.set_num_threads(max(1, int(cpus)))
        self.study = Study(config, progress=False)

    def run_shard(
        self, index: int, start: int, stop: int, fail_once: tuple[int, str, str] | None = None
    ) -> dict[str, Any]:
        """Accumulate base samples ``[start, stop)`` into a fresh state; returns it exported, on the CPU."""
        state = self.study.new_state()
        self.study.accumulate(state, start, stop)
        _maybe_fail(index, fail_once)  # after the work: a retried shard must not count anything twice
        return _to_cpu(self.study.export_state(state))


@contextlib.contextmanager
def _connect(ray: ModuleType, address: str, workers: int | None) -> Iterator[None]:
    """Connect to (or start) a cluster; disconnect at the end only if this call connected."""
    if ray.is_initialized():  # e.g. a cluster the caller (or a test) already started: leave it running
        yield
        return
    quiet = dict(include_dashboard=False, logging_level=logging.WARNING)
    if address == "local":
        ray.init(num_cpus=workers, **quiet)
    else:
        try:
            ray.init(address=address, logging_level=logging.WARNING)
        except ConnectionError as exc:
            raise RayConnectionError(
                f"cannot connect to a Ray cluster at {address!r}: {exc}. Start one with `ray start --head`, "
                "or use --ray local to start one on this machine"
            ) from exc
    try:
        yield
    finally:
        ray.shutdown()


def run_distributed(
    config: StudyConfig,
    out: str | os.PathLike,
    *,
    address: str = "local",
    workers: int | None = None,
    shards: int | None = None,
    max_retries: int = 3,
    progress: bool = True,
    _fail_once: tuple[int, str, str] | None = None,
) -> xr.DataTree:
    """Run a study on a Ray cluster and write ``out/results.zarr``.

    Parameters
    ----------
    config : StudyConfig
        The study (:func:`augsens.config.load_config`).  Workers run it on one GPU each when the cluster
        has GPUs and ``[run] device`` is not ``"cpu"``, else on one CPU each.
    out : path
        Results folder (created).
    address : str, default "local"
        ``"local"``: start a Ray cluster on this machine (``workers`` CPUs; all when ``None``) and stop it
        at the end; ``"auto"``: connect to the cluster this machine belongs to (``ray start``); anything
        else: a cluster address such as ``"ray://head:10001"`` or ``"10.0.0.1:6379"``.  When Ray is already
        initialised in this process, that connection is used and left open.
    workers : int, optional
        Number of worker actors (one GPU or one CPU each).  Default: every GPU (or CPU) of the cluster.
    shards : int, optional
        Number of shards (default: 4 per worker, so fast workers take over the work of slow ones and the
        progress bar moves).  Fewer when the design has fewer base samples (for shapley-song, fewer
        permutations).
    max_retries : int, default 3
        How often a shard is run again after its task raised or its worker died (a dead worker is
        restarted as often).
    progress : bool, default True
        Show a progress bar of shards and forwards done across the cluster.
    _fail_once : (int, str, str), optional
        **Testing hook, not part of the API.**  ``(shard, marker_path, how)``: shard ``shard`` fails once,
        after computing its state, the first time it runs on a machine where ``marker_path`` does not
        exist; ``how`` is ``"raise"`` (exception) or ``"exit"`` (the worker process exits).

    Returns
    -------
    DataTree
        The results tree, equal (to float rounding) to that of :meth:`augsens.engine.Study.run`; its root
        attributes add ``ray_workers``, ``ray_shards`` and ``worker_elapsed_s`` (the summed compute time),
        and ``elapsed_s`` / ``forwards_per_s`` are wall-clock figures of the whole run.

    Raises
    ------
    RayNotInstalledError
        Ray is not installed (a :class:`ModuleNotFoundError`; the message says how to install it).
    ConnectionError
        No cluster at ``address``.
    ShardFailedError
        A shard failed more than ``max_retries`` times (the message names it and carries the error).
    ValueError, ConfigError
        Bad arguments or config.
    """
    ray = _import_ray()
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if shards is not None and shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")
    t0 = time.monotonic()
    # The driver only merges and finalises: on the CPU, so it never competes with a worker for a GPU.
    # Building it first also reports config, model and image errors here, before any worker starts.
    driver = Study(_with_device(config, "cpu"), progress=False)
    plan = driver.plan
    granularity = plan.method.granularity  # whole permutations for the Song-type double loop

    with _connect(ray, address, workers):
        resources = ray.cluster_resources()
        use_gpu = resources.get("GPU", 0) >= 1 and config.run.device != "cpu"
        slots = int(resources.get("GPU", 0) if use_gpu else resources.get("CPU", 1))
        k = max(1, min(workers or slots, slots))
        # one set of shards per round (a precision target runs rounds until it is met; else one round)
        starts = [0, *driver.round_ends[:-1]]
        rounds = [
            [(a + lo, b + lo) for a, b in shard_ranges(hi - lo, shards or 4 * k, granularity)]
            for lo, hi in zip(starts, driver.round_ends, strict=True)
        ]
        k = min(k, max(len(r) for r in rounds))
        actor_cls = ray.remote(_ShardWorker).options(
            num_cpus=1,
            num_gpus=1 if use_gpu else 0,
            max_restarts=max_retries,
            max_task_retries=max_retries,
        )
        worker_config = _with_device(config, "cuda" if use_gpu else "cpu")
        actors = [actor_cls.remote(worker_config) for _ in range(k)]
        hooks = _RoundHooks(ray, actors, rounds, driver, progress, _fail_once, max_retries, t0)
        try:
            loop.run(plan.method, hooks, plan.budget, batch_rows=None)
        finally:
            for actor in actors:
                ray.kill(actor)
    merged = hooks.merged
    assert merged is not None  # there is at least one round

    tree = driver.finalize(merged)
    forwards = merged.position * plan.rows
    wall = time.monotonic() - t0
    tree.attrs.update(
        config=config.to_json(),  # the user's config, not the driver's CPU copy
        device=f"{k} x {'cuda' if use_gpu else 'cpu'} (Ray)",
        elapsed_s=round(wall, 3),
        forwards_per_s=round(forwards / max(wall, 1e-9), 2),
        worker_elapsed_s=round(merged.elapsed, 3),
        ray_workers=k,
        ray_shards=hooks.shards,
    )
    write_results(tree, Path(out))
    return tree


class _RoundHooks(loop.Hooks):
    """The one loop's hooks on the driver: a round is evaluated as shards on the workers and merged into
    the state in shard order; the time limit is on the wall clock of the whole run (from ``t0``), not the
    workers' summed time."""

    def __init__(
        self,
        ray: ModuleType,
        actors: list[Any],
        rounds: list[list[tuple[int, int]]],
        driver: Study,
        progress: bool,
        fail_once: tuple[int, str, str] | None,
        max_retries: int,
        t0: float,
    ) -> None:
        super().__init__()
        self.ray, self.actors, self.driver = ray, actors, driver
        self.progress, self.fail_once, self.max_retries, self.t0 = progress, fail_once, max_retries, t0
        self.shard_ranges = {ranges[0][0]: ranges for ranges in rounds}  # by the round's first sample
        self.merged: StudyState | None = None
        self.shards = 0

    def evaluate_round(self, start: int, stop: int) -> None:
        ranges = self.shard_ranges[start]
        part = _schedule(
            self.ray, self.actors, ranges, self.driver, self.progress, self.fail_once, self.max_retries
        )
        self.merged = part if self.merged is None else self.driver.merge_states([self.merged, part])
        self.shards += len(ranges)

    def precision(self) -> float:
        assert self.merged is not None  # a round was merged
        return precision_of(self.merged.acc.values())

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def round_end(self, done: int, precision: float, reason: str | None) -> None:
        assert self.merged is not None
        self.merged.precision, self.merged.stop_reason = precision, reason


def _schedule(
    ray: ModuleType,
    actors: list[Any],
    ranges: list[tuple[int, int]],
    driver: Study,
    progress: bool,
    fail_once: tuple[int, str, str] | None,
    max_retries: int,
) -> StudyState:
    """Hand shards to idle actors, merge finished states in shard order; returns the merged state."""
    rows = driver.plan.rows
    todo = deque(range(len(ranges)))
    pending: dict[Any, tuple[int, Any]] = {}

    def submit(actor: Any) -> None:
        i = todo.popleft()
        # retry_exceptions: an exception inside run_shard is retried like a dead worker (max_task_retries)
        ref = actor.run_shard.options(retry_exceptions=True).remote(i, *ranges[i], fail_once)
        pending[ref] = (i, actor)

    for actor in actors:
        if todo:
            submit(actor)
    done: dict[int, StudyState] = {}
    merged: StudyState | None = None
    next_merge = 0
    total = sum(b - a for a, b in ranges) * rows
    label = f"{driver.config.study.kind} on {len(actors)} Ray workers"
    with forwards_bar(progress, total=total, shards=len(ranges), label=label) as advance:
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            i, actor = pending.pop(ref)
            try:
                blob = ray.get(ref)
            except ray.exceptions.RayError as exc:
                start, stop = ranges[i]
                # the user's exception without Ray's remote-traceback banner; the chain keeps all of it
                cause = getattr(exc, "cause", None)
                reason = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
                raise ShardFailedError(
                    f"shard {i} (base samples {start}..{stop - 1}) failed after {max_retries} retries: "
                    f"{reason}"
                ) from exc
            if todo:
                submit(actor)
            done[i] = driver.import_state(blob, source=f"shard {i}")
            advance((ranges[i][1] - ranges[i][0]) * rows)
            # merge as soon as the next shard in order is there: holds few states at a time, and a fixed
            # order makes the floating-point result independent of which worker finished first
            while next_merge in done:
                state = done.pop(next_merge)
                merged = state if merged is None else driver.merge_states([merged, state])
                next_merge += 1
    assert merged is not None  # ranges is never empty
    return merged

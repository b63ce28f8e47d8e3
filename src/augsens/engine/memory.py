"""The memory a study needs, known before its first forward, and the choice it leaves when that is more
than the machine has.

The state of a study grows with the number of captured output elements ``E`` (all checkpoints together)::

    state   = E x s x b_state (+ E x 8 B of counts per replicate)   s = numbers per element, all replicates
    results = E x r x 8 B                                           r = result numbers per element (float64)
    batch   = rows x E x (b_act + 2 b_state)                        one batch's activations and copies

``s`` and ``r`` are not tabulated here but measured: the study's own method accumulates one batch of
random outputs for a one-element and a two-element probe and finalises them, so every kind, option and
replicate count is counted by the code that will run (``docs/performance.md`` lists the formulas, e.g.
``5 + 4 D`` numbers per replicate for Sobol' indices, ``D + D (D - 1) / 2`` more with second order).

Peaks: while the study runs the device holds the state and one batch; finalising, it holds the state
and the results of one checkpoint, while the host gathers the results of every checkpoint before they
are written.  On a CPU run host and device are the same memory.  The model and the decoded images are
already loaded when the estimate is made, so the memory available excludes them.

When the peak does not fit, the run is refused before anything is written, with the figure and the
options that fit: float32 state, fewer replicates, or the checkpoints in groups, one run each (each
group is one more pass over the design: its forwards again).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from augsens.core import loop
from augsens.errors import UserInputError

if TYPE_CHECKING:
    from augsens.config import StudyConfig
    from augsens.models import LoadedModel

__all__ = [
    "MemoryEstimate",
    "PerElement",
    "per_element",
    "estimate",
    "available",
    "for_study",
    "check",
    "gib",
]

GIB = 1024**3


def gib(nbytes: float) -> str:
    """``nbytes`` in GiB, as printed (``"1.25 GiB"``)."""
    return f"{nbytes / GIB:.2f} GiB"


@dataclass(frozen=True)
class PerElement:
    """Bytes per captured output element: the state (float part and integer counts) and the results."""

    state_float: float  # numbers in the state's float dtype, per element (all replicates)
    state_int_bytes: float  # bytes of integer counts per element
    state_bytes: float
    result_bytes: float


def _nbytes(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, Mapping):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(_nbytes(v) for v in obj)
    return 0


def _float_numbers(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() if obj.is_floating_point() else 0
    if isinstance(obj, Mapping):
        return sum(_float_numbers(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(_float_numbers(v) for v in obj)
    return 0


def per_element(
    method: Any,
    factors: Sequence[str],
    dtype: torch.dtype,
    pooled_pass: bool,
    work_dtype: torch.dtype | None = None,
) -> PerElement:
    """Measure the state and result bytes per output element of ``method`` (any study kind).

    One batch of random outputs goes into fresh accumulators for a one-element and a two-element
    output; the difference of their sizes (state dicts, finalised datasets) is the cost of one element.

    Parameters
    ----------
    method : augsens.core.methods.Method
        The study's method (design, replicates, options), as the plan built it.
    factors : sequence of str
        The factor names the results are labelled with.
    dtype : torch.dtype
        The state's float dtype.
    pooled_pass : bool
        Whether the study keeps a moments pass beside the method's accumulator.
    work_dtype : torch.dtype, optional
        The accumulators' per-batch dtype (float32 blocks beside a float64 state for ``"mixed"``).
    """
    from augsens.core.estimate import MomentsAccumulator

    # one whole shard unit (a permutation of blocks for the Song-type method), so that it finalises
    batch = next(loop.batches(method, method.granularity * method.rows_per_sample))
    rows = batch.count * method.rows_per_sample
    gen = torch.Generator().manual_seed(0)
    sizes = []
    for elements in (1, 2):
        # float32 outputs, as a network gives them: with state_dtype "mixed" they open the float32 block
        # that a run keeps (and saves) beside the float64 state
        y = torch.randn(rows, elements, generator=gen, dtype=torch.float64).to(method.device, torch.float32)
        state: list[Any] = []
        results = 0
        if method.sensitivity:
            acc = method.accumulator()
            if work_dtype is not None and hasattr(acc, "work_dtype"):  # as engine.state.new_state sets it
                acc.work_dtype = work_dtype
            method.update(acc, y, batch)
            state.append(acc.state_dict())
            results += method.finalize(acc, factors).nbytes
            if not pooled_pass:
                results += acc.pooled_moments().finalize(factors).nbytes
        if pooled_pass:
            moments = MomentsAccumulator(dtype=dtype, work_dtype=work_dtype, device=method.device)
            moments.update(y)
            state.append(moments.state_dict())
            results += moments.finalize(factors).nbytes
        sizes.append((_float_numbers(state), _nbytes(state), results))
    (f1, b1, r1), (f2, b2, r2) = sizes
    float_numbers = f2 - f1
    state_bytes = b2 - b1
    item = torch.empty((), dtype=dtype).element_size()
    return PerElement(float_numbers, state_bytes - float_numbers * item, state_bytes, r2 - r1)


@dataclass
class MemoryEstimate:
    """Peak memory of a study on its device and on the host, in bytes (module docstring).

    Attributes
    ----------
    device : str
        Where the state lives.
    elements : dict of str to int
        Captured output elements per checkpoint, in model order.
    per : PerElement
        Bytes per element (measured by :func:`per_element`).
    replicates : int
    state_dtype : str
    rows : int
        Rows of one batch (whole base samples).
    act_bytes : int
        Bytes of one captured activation (4 for float32, 2 under bfloat16 autocast).
    network : int
        Bytes of the network's own activations for one batch (its largest layer output, in and out).
    images : int
        Bytes of the decoded images still to be decoded (0 when they are already in memory).
    forwards : int
        Forwards of one pass over the design (what each extra group of checkpoints costs).
    available_device, available_host : int or None
        Free memory found (``None`` where it cannot be read).
    """

    device: str
    elements: dict[str, int]
    per: PerElement
    replicates: int
    state_dtype: str
    rows: int
    act_bytes: int
    network: int = 0
    images: int = 0
    #: bytes of one decoded input in the cache (uint8, the model's input shape)
    image_bytes: int = 0
    forwards: int = 0
    available_device: int | None = None
    available_host: int | None = None

    @property
    def total_elements(self) -> int:
        return sum(self.elements.values())

    @property
    def on_cpu(self) -> bool:
        return self.device == "cpu"

    @property
    def state(self) -> int:
        return int(self.total_elements * self.per.state_bytes)

    @property
    def batch(self) -> int:
        """One batch's transient: the network's activations, the captured outputs and their copies in
        the state's dtype, and the update's temporaries (about one replicate's state)."""
        item = 8 if self.state_dtype == "float64" else 4
        captured = self.rows * self.total_elements * (self.act_bytes + 2 * item)
        return self.network + captured + 2 * self.state // max(self.replicates, 1)

    @property
    def results(self) -> int:
        return int(self.total_elements * self.per.result_bytes)

    @property
    def largest_results(self) -> int:
        return int(max(self.elements.values(), default=0) * self.per.result_bytes)

    @property
    def device_peak(self) -> int:
        """Running: state + one batch; finalising: state + the results of one checkpoint (on a CPU run
        also every checkpoint's results gathered before writing)."""
        if self.on_cpu:
            return self.images + self.state + max(self.batch, self.results + self.largest_results)
        return self.images + self.state + max(self.batch, 2 * self.largest_results)

    @property
    def host_peak(self) -> int:
        if self.on_cpu:
            return self.device_peak
        # the images are decoded on the host first; later every checkpoint's results, plus a
        # checkpoint's state copied while the state file is written
        later = self.results + int(max(self.elements.values(), default=0) * self.per.state_bytes)
        return max(self.images, later)

    def shortfall(self) -> tuple[str, int, int] | None:
        """``(where, needed, available)`` of the first memory that is too small, or ``None``."""
        if self.on_cpu:
            if self.available_host is not None and self.host_peak > self.available_host:
                return "host", self.host_peak, self.available_host
            return None
        if self.available_device is not None and self.device_peak > self.available_device:
            return self.device, self.device_peak, self.available_device
        if self.available_host is not None and self.host_peak > self.available_host:
            return "host", self.host_peak, self.available_host
        return None

    def summary(self) -> str:
        """One line: the peaks, the state's make-up and what is free."""
        numbers = self.per.state_float / max(self.replicates, 1)
        state = (
            f"state {gib(self.state)} ({self.replicates} replicates x {numbers:.0f} {self.state_dtype} "
            f"numbers x {self.total_elements / 1e6:.3g} M output elements)"
        )
        free = []
        if not self.on_cpu and self.available_device is not None:
            free.append(f"{gib(self.available_device)} free on {self.device}")
        if self.available_host is not None:
            free.append(f"{gib(self.available_host)} free on the host")
        where = (
            f"peak {gib(self.host_peak)} (cpu)"
            if self.on_cpu
            else f"peak {gib(self.device_peak)} on {self.device}, {gib(self.host_peak)} on the host"
        )
        images = f"images {gib(self.images)}, " if self.images else ""
        return (
            f"memory: {where}; {images}{state}, one batch {gib(self.batch)}, results {gib(self.results)}"
            + (f"; {', '.join(free)}" if free else "")
        )


def network_bytes(model: Any, batch_size: int, act_bytes: int) -> int:
    """The network's own activations for a batch: its largest module output, as input and output of the
    next layer (no-grad forwards free the others), for ``batch_size`` images; one forward of one image.

    Parameters
    ----------
    model : augsens.models.LoadedModel
    batch_size : int
        Images per forward.
    act_bytes : int
        Bytes per activation.
    """
    largest = 0

    def hook(_module: Any, _inputs: Any, output: Any) -> None:
        nonlocal largest
        if isinstance(output, torch.Tensor):
            largest = max(largest, output.numel())

    leaves = [m for m in model.module.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            model.module.eval()
            model.module(model.example_input())
    except Exception:  # a model the dry forward accepted through its hooks only: no estimate of this part
        largest = 0
    finally:
        for h in handles:
            h.remove()
    return 2 * largest * batch_size * act_bytes


def estimate(
    method: Any,
    shapes: Mapping[str, Sequence[int]],
    *,
    factors: Sequence[str],
    device: torch.device | str,
    state_dtype: torch.dtype,
    batch_size: int,
    autocast: bool,
    pooled_pass: bool,
    network: int = 0,
    per: PerElement | None = None,
) -> MemoryEstimate:
    """The memory of a study with ``method`` capturing outputs of ``shapes`` (module docstring).

    Parameters
    ----------
    method : augsens.core.methods.Method
    shapes : mapping of str to shape
        Per-sample output shape of each checkpoint.
    factors : sequence of str
    device : torch.device or str
        Where the state lives.
    state_dtype : torch.dtype
    batch_size : int
        Rows per forward.
    autocast : bool
        Activations in bfloat16 (2 B) instead of float32 (4 B).
    pooled_pass : bool
        A moments pass is kept beside the method's accumulator.
    network : int
        Bytes of the network's own activations per batch (:func:`network_bytes`). Default: 0.
    per : PerElement, optional
        Bytes per element, when already measured.

    Returns
    -------
    MemoryEstimate
        Without the available memory (see :func:`available`).
    """
    per = per if per is not None else per_element(method, factors, state_dtype, pooled_pass)
    R = method.rows_per_sample
    return MemoryEstimate(
        str(torch.device(device)),
        {c: math.prod(int(s) for s in shape) for c, shape in shapes.items()},
        per,
        int(getattr(method, "replicates", 1)),
        str(state_dtype).removeprefix("torch."),
        rows=max(batch_size // R, 1) * R,
        act_bytes=2 if autocast else 4,
        network=network,
    )


def _cgroup_available() -> int | None:
    """Memory left under this process's cgroup limit (v2 or v1), page cache counted as free."""
    v2 = Path("/sys/fs/cgroup/memory.max")
    try:
        if v2.is_file():
            limit_text = v2.read_text().strip()
            if limit_text == "max":
                return None
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            stat = Path("/sys/fs/cgroup/memory.stat").read_text().split()
            cache = int(stat[stat.index("inactive_file") + 1]) if "inactive_file" in stat else 0
            return int(limit_text) - used + cache
        v1 = Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")
        if v1.is_file():
            limit = int(v1.read_text())
            if limit >= 1 << 60:  # no limit
                return None
            used = int(Path("/sys/fs/cgroup/memory/memory.usage_in_bytes").read_text())
            return limit - used
    except (OSError, ValueError):
        return None
    return None


def host_available() -> int | None:
    """Host memory available to this process: ``MemAvailable`` and the cgroup limit, whichever is less."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    group = _cgroup_available()
    if group is not None:
        found.append(group)
    if not found and hasattr(os, "sysconf"):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError):
            pass
    return max(min(found), 0) if found else None


def available(device: torch.device | str) -> tuple[int | None, int | None]:
    """``(free on the device, free on the host)`` in bytes; ``None`` where it cannot be read."""
    dev = torch.device(device)
    host = host_available()
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        # memory torch holds in its cache but does not use is free for the state as well
        cached = torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
        return int(free + cached), host
    if dev.type == "cpu":
        return host, host
    return None, host


_MEASURED: dict[tuple[str, str, str, tuple[str, ...]], PerElement] = {}


def for_study(
    config: StudyConfig,
    model: LoadedModel,
    shapes: Mapping[str, Sequence[int]],
    partitions: Sequence[Sequence[int]],
    device: torch.device,
    *,
    decoded: bool,
) -> MemoryEstimate:
    """The estimate of a study about to run, with the memory available now.

    Parameters
    ----------
    config : StudyConfig
    model : LoadedModel
        The network, loaded (its activations per batch are measured by one forward of one image).
    shapes : mapping of str to shape
        The checkpoints' per-sample output shapes.
    partitions : sequence of sequence of int
        Images per class of each partition.
    device : torch.device
    decoded : bool
        The images are already in memory (else their cache is counted).
    """
    from augsens.engine.plan import plan, state_dtype, work_dtype

    planned = plan(config, partitions, device)
    method = planned.method
    act_bytes = 2 if config.run.dtype == "bfloat16" else 4
    factors = planned.factors.factor_names
    dtype = state_dtype(config)
    pooled_pass = not (method.sensitivity and method.pooled_moments)
    # the bytes per element depend on the method, its options, factors and dtype only: measured once
    work = work_dtype(config)
    study = json.dumps(dataclasses.asdict(config.study), sort_keys=True)
    key = (study, str(dtype), str(work), tuple(factors))
    if key not in _MEASURED:
        _MEASURED[key] = per_element(method, factors, dtype, pooled_pass, work)
    est = estimate(
        method,
        shapes,
        factors=factors,
        device=device,
        state_dtype=dtype,
        batch_size=config.run.batch_size,
        autocast=config.run.dtype == "bfloat16",
        pooled_pass=pooled_pass,
        network=network_bytes(model, config.run.batch_size, act_bytes),
        per=_MEASURED[key],
    )
    est.forwards = method.n * method.rows_per_sample
    if not decoded:
        est.image_bytes = math.prod(model.input_shape)
        est.images = sum(sum(p) for p in partitions) * est.image_bytes
    est.available_device, est.available_host = available(device)
    return est


def _groups(est: MemoryEstimate, limit: Callable[[MemoryEstimate], bool]) -> list[list[str]] | None:
    """Checkpoints in model order, split into the fewest consecutive groups that each fit."""
    groups: list[list[str]] = []
    current: list[str] = []
    for name in est.elements:
        trial = current + [name]
        if limit(_subset(est, trial)):
            current = trial
            continue
        if not current:
            return None  # one checkpoint alone does not fit
        groups.append(current)
        current = [name]
        if not limit(_subset(est, current)):
            return None
    if current:
        groups.append(current)
    return groups


def _subset(est: MemoryEstimate, names: Sequence[str]) -> MemoryEstimate:
    """The estimate of the same study capturing only ``names``."""
    return dataclasses.replace(est, elements={c: est.elements[c] for c in names})


def check(est: MemoryEstimate) -> None:
    """Refuse a study whose peak does not fit, naming the figure and the options that do.

    Parameters
    ----------
    est : MemoryEstimate
        With the memory available filled in.

    Raises
    ------
    UserInputError
        The study needs more memory than is available; the message gives both figures and the options.
    """
    short = est.shortfall()
    if short is None:
        return
    place, needed, free = short
    forwards = est.forwards

    def fits(e: MemoryEstimate) -> bool:
        return e.shortfall() is None

    options = []
    per = est.per
    if est.state_dtype == "float64":
        half = PerElement(
            per.state_float,
            per.state_int_bytes,
            per.state_float * 4 + per.state_int_bytes,
            per.result_bytes,
        )
        e32 = dataclasses.replace(est, per=half, state_dtype="float32")
        options.append(
            f'[run] state_dtype = "float32" (state {gib(e32.state)}, '
            f"{'fits' if fits(e32) else 'still too much'})"
        )
    if est.replicates > 1:
        for r in sorted({1 << k for k in range(est.replicates.bit_length()) if (1 << k) < est.replicates}):
            scale = r / est.replicates
            fewer = PerElement(
                per.state_float * scale,
                per.state_int_bytes * scale,
                per.state_bytes * scale,
                per.result_bytes,
            )
            if fits(dataclasses.replace(est, per=fewer, replicates=r)) or r == 1:
                options.append(
                    f"[study] replicates = {r} (state {gib(per.state_bytes * scale * est.total_elements)})"
                )
                break
    groups = _groups(est, fits) if len(est.elements) > 1 else None
    if groups is not None and len(groups) > 1:
        shown = "; ".join(f"{g!r}" for g in groups[:4]) + (" ..." if len(groups) > 4 else "")
        options.append(
            f"fewer checkpoints: the checkpoints in {len(groups)} runs of their own (--set "
            f"model.checkpoints=[...] each, {len(groups)} passes over the design: "
            f"{len(groups)} x {forwards:,} forwards instead of {forwards:,}): {shown}"
        )
    else:
        options.append("fewer checkpoints ([model] checkpoints)")
    if est.batch > est.state:
        options.append(f"a smaller [run] batch_size (one batch holds {gib(est.batch)})")
    if est.images:
        per_image = est.image_bytes
        room = free - (needed - est.images)
        count = est.images // per_image
        fit = max(room // per_image, 0)
        options.insert(
            0,
            f"fewer images: the {count:,} decoded images take {gib(est.images)}; at most {fit:,} fit "
            "(lower [images] per_class)",
        )
    raise UserInputError(
        f"the study needs about {gib(needed)} of {place} memory but {gib(free)} is available, so it "
        f"would be killed: {est.summary()}. Options: {'; '.join(options)}"
    )

"""Engine throughput against the raw forward pass of the same network, measured side by side.

Usage::

    python benchmarks/throughput.py MODEL [--batch 64] [--dtype float32|bfloat16] [--device auto]
                                          [--channels-last auto|true|false] [--no-fold] [--seconds 20]
                                          [--threads K] [--json FILE]

MODEL is a registry name (``efficientnet_lite0``, ``alexnet``, ``vgg11``, ``resnet18``, ... built with random
weights: the speed does not depend on them) or ``package.module:factory`` (e.g. ``augsens.testing:tiny_cnn``).

Three figures, in one process on one device, in alternating rounds so that load from other processes hits
all alike:

- **raw**: the engine's own network (batch norms folded, NHWC where ``[run] channels_last`` resolved so)
  on a random ``[batch, 3, 224, 224]`` batch under ``torch.inference_mode`` (bf16 autocast as asked): the
  ceiling;
- **as given**: the network as loaded, NCHW and not folded, same dtype: what the engine is faster than;
- **engine**: :meth:`augsens.engine.Study.accumulate` of a Sobol study of augmentation set 1 (``R = D + 2``
  forwards per base sample; all default checkpoints captured; float64 state), after a warm-up: design rows,
  decoding, image gather, augmentation, forward with capture and accumulator updates.

The ratio engine / raw is the figure of merit (targets: >= 0.7 on CPU, >= 0.8 on GPU).  A second, timed
pass splits the engine's time into design, decode, augmentation (gather + compose + post-processing),
forward with capture and accumulation (each stage timed by wrapping the engine's own calls, with a device
synchronisation on GPU; "other" is the Python glue in between).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

import augsens.engine.runner as runner
from augsens.config import StudyConfig
from augsens.core.estimate import (
    MomentsAccumulator,
    PermutationShapleyAccumulator,
    ShapleyAccumulator,
    SobolAccumulator,
)
from augsens.core.estimate._base import BLOCK_SAMPLES
from augsens.engine.inputs import load_model
from augsens.engine.state import StudyState
from augsens.engine.study import Study
from augsens.models import available_models
from augsens.models.fold import FoldedNorm

__all__ = ["main", "measure"]

_STAGES = ("design", "decode", "augment", "forward+capture", "accumulate")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _config(
    model: str,
    batch: int,
    dtype: str,
    device: str,
    channels_last: bool | str,
    state_dtype: str = "mixed",
    fold_batchnorm: bool = True,
) -> StudyConfig:
    # a design much longer than what is timed: every timed batch is full and never crosses a replicate
    weights = "random" if model in available_models() else "default"
    return StudyConfig.from_dict(
        {
            "model": {"name": model, "weights": weights},
            "study": {"kind": "sobol", "augmentations": "set1", "n": 1 << 24, "replicates": 1},
            "run": {
                "batch_size": batch,
                "device": device,
                "dtype": dtype,
                "channels_last": channels_last,
                "fold_batchnorm": fold_batchnorm,
                "state_dtype": state_dtype,
            },
        }
    )


class _Engine:
    """Runs whole engine batches from an advancing design position."""

    def __init__(self, study: Study) -> None:
        self.study = study
        self.state = study.new_state()
        self.per_step = max(1, study.config.run.batch_size // study.plan.rows)  # base samples per forward
        self.rows = self.per_step * study.plan.rows
        self.pos = 0

    def steps(self, k: int) -> float:
        """Run ``k`` engine batches; seconds taken."""
        _sync(self.study.device)
        t = time.perf_counter()
        self.study.accumulate(self.state, self.pos, self.pos + k * self.per_step)
        _sync(self.study.device)
        self.pos += k * self.per_step
        return time.perf_counter() - t


class _Raw:
    """A bare network on a random batch: by default the engine's own (as the study prepared it: batch
    norms folded, NHWC where chosen); ``module`` another, e.g. the network as given, NCHW."""

    def __init__(self, study: Study, batch: int, module: torch.nn.Module | None = None) -> None:
        self.device = study.device
        self.module = study.model.module if module is None else module
        x = torch.rand(batch, 3, 224, 224, device=self.device)
        if module is None and study.config.run.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.x = x
        self.bf16 = study.config.run.dtype == "bfloat16"

    def steps(self, k: int) -> float:
        autocast = (
            torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
            if self.bf16
            else contextlib.nullcontext()
        )
        _sync(self.device)
        t = time.perf_counter()
        with torch.inference_mode(), autocast:
            for _ in range(k):
                self.module(self.x)
        _sync(self.device)
        return time.perf_counter() - t


@contextlib.contextmanager
def _timed_stages(study: Study, state: StudyState) -> Iterator[dict[str, float]]:
    """Wrap the engine's calls of each stage with timers; yields ``{stage: seconds}``."""
    times = dict.fromkeys(_STAGES, 0.0)
    device = study.device
    undo: list[Callable[[], None]] = []

    def timed(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            _sync(device)
            t = time.perf_counter()
            out = fn(*args, **kwargs)
            _sync(device)
            times[stage] += time.perf_counter() - t
            return out

        return wrapper

    def patch(obj: Any, name: str, stage: str) -> None:
        had_own = name in vars(obj)  # an instance attribute (or module global) to restore, else a method
        old = getattr(obj, name)
        setattr(obj, name, timed(stage, old))
        undo.append((lambda: setattr(obj, name, old)) if had_own else (lambda: delattr(obj, name)))

    patch(study.plan.method.design, "unit_rows", "design")
    patch(study.factors, "decode", "decode")
    patch(study.images, "gather", "augment")
    patch(runner, "compose", "augment")
    patch(runner, "postprocess", "augment")
    patch(study.model, "capture", "forward+capture")
    for accumulators in (state.acc, state.moments):
        for acc in accumulators.values():
            patch(acc, "update", "accumulate")
    try:
        yield times
    finally:
        for fn in reversed(undo):
            fn()


# -- roofline of the accumulate stage -------------------------------------------------------------------

#: the accumulator kinds of the roofline: (label, class, keywords, rows per base sample for D)
KINDS: dict[str, tuple[Any, dict[str, Any], Callable[[int], int | None]]] = {
    "sobol": (SobolAccumulator, {}, lambda d: d + 2),
    "sobol, second order": (SobolAccumulator, {"second_order": True}, lambda d: 2 * d + 2),
    "shapley, exact": (ShapleyAccumulator, {}, lambda d: 1 << d),
    "shapley, permutation": (PermutationShapleyAccumulator, {}, lambda d: d + 1),
    "moments": (MomentsAccumulator, {}, lambda d: None),
}


@dataclass(frozen=True)
class UpdateCase:
    """One accumulator kind of the roofline for ``D`` factors: its class and keywords, the rows per base
    sample (``None``: moments, one row each) and the output elements timed, cut down so that one float64
    replicate state stays within ``max_state_mb`` (:func:`update_cases`)."""

    kind: str
    cls: Any
    keywords: dict[str, Any]
    rows: int | None
    factors: int
    outputs: int

    @property
    def state_bytes(self) -> int:
        """One float64 replicate state: a count (int64), ``m`` means and ``P`` co-moments per element."""
        probe = self.cls(**self.keywords)
        return self.outputs * (8 + 8 * (probe._n_vars + len(probe._left)))

    def batch(
        self, batch: int, dtype: torch.dtype, device: torch.device
    ) -> tuple[int, torch.Tensor, tuple[Any, ...]]:
        """``(b, y, extra)`` for an engine batch of ``batch`` forwards: ``b`` base samples (``batch //
        R``, at least 1; moments: ``batch`` rows), random outputs ``y`` and the update's extra arguments
        (the permutations of permutation Shapley)."""
        b = batch if self.rows is None else max(1, batch // self.rows)
        shape = (b, self.outputs) if self.rows is None else (b, self.rows, self.outputs)
        gen = torch.Generator(device=device).manual_seed(0)
        y = (1 + torch.randn(shape, generator=gen, device=device)).to(dtype)
        extra: tuple[Any, ...] = ()
        if self.cls is PermutationShapleyAccumulator:
            order = torch.rand(b, self.factors, generator=torch.Generator().manual_seed(1))
            extra = (torch.argsort(order, dim=1),)
        return b, y, extra


def update_cases(
    factors: int, outputs: int, max_state_mb: float = 512.0, kinds: list[str] | None = None
) -> list[UpdateCase]:
    """The :data:`KINDS` (or those named in ``kinds``) for ``factors`` factors and up to ``outputs``
    elements each."""
    cases = []
    for label, (cls, keywords, rows_of) in KINDS.items():
        if kinds and label not in kinds:
            continue
        kw = dict(keywords)
        if cls is not MomentsAccumulator:
            kw["D"] = factors
        full = UpdateCase(label, cls, kw, rows_of(factors), factors, outputs)
        size = int(min(outputs, max_state_mb * 2**20 * outputs // full.state_bytes))
        cases.append(dataclasses.replace(full, outputs=size))
    return cases


def copy_bandwidth(device: torch.device, megabytes: int = 512, repeats: int = 5) -> float:
    """Memory bandwidth in GB/s (bytes read + bytes written per second) of the best of ``repeats`` copies
    of a ``megabytes`` buffer: the roofline's ceiling, measured in the same process."""
    src = torch.ones(megabytes << 18, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    best = math.inf
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * src.numel() * src.element_size() / best / 1e9


def roofline(
    outputs: int,
    factors: int,
    batch: int,
    act_dtype: torch.dtype,
    device: torch.device,
    *,
    bandwidth: float,
    max_state_mb: float = 512.0,
    rounds: int = 5,
) -> list[dict[str, Any]]:
    """Time one accumulate step per kind against the bytes it must move, float64 path and float32 blocks.

    Per kind the update sees ``b`` base samples per batch (``batch // R``, at least 1; moments: ``batch``
    rows) of ``O`` outputs in the activations' dtype.  Its floor moves the activations in once and one
    replicate's float64 state in and out once: ``b R O s_act + 2 (8 + 8 (m + P)) O`` bytes, ``m`` means and
    ``P`` co-moments per element.  The achieved rate is those bytes over the measured time; the
    fraction of the floor is ``floor time / measured time`` (above 1 is possible for the block path,
    which touches a float32 block per batch and the float64 state once per block).  ``O`` is the
    study's output count, cut down for kinds whose state would exceed ``max_state_mb``.
    Both paths run in alternating rounds; the median of ``rounds`` is kept, plus, for the block path,
    its share of one merge of the block into the float64 state.
    """
    out = []
    for case in update_cases(factors, outputs, max_state_mb):
        b, y, extra = case.batch(batch, act_dtype, device)
        cls, kw = case.cls, case.keywords
        paths = {"float64": cls(**kw), "float32 blocks": cls(**kw, work_dtype=torch.float32)}
        times: dict[str, list[float]] = {k: [] for k in paths}
        for acc in paths.values():  # allocation and first touch, untimed
            acc.update(y, *extra)
            acc.state_tensors()
        for _ in range(rounds):
            for name, acc in paths.items():
                _sync(device)
                t = time.perf_counter()
                acc.update(y, *extra)
                _sync(device)
                times[name].append(time.perf_counter() - t)
        # the block path merges into the float64 state once per BLOCK_SAMPLES base samples: time one
        # merge (of the rounds' pending block) and charge each update its share
        merge_s = {}
        for name, acc in paths.items():
            _sync(device)
            t = time.perf_counter()
            acc.state_tensors()
            _sync(device)
            merge_s[name] = (time.perf_counter() - t) * min(1.0, b / BLOCK_SAMPLES)
        state = case.state_bytes
        floor_bytes = y.numel() * y.element_size() + 2 * state
        floor_s = floor_bytes / (bandwidth * 1e9)
        row: dict[str, Any] = {
            "kind": case.kind,
            "outputs": case.outputs,
            "base_samples_per_batch": b,
            "state_mb_per_replicate": state / 2**20,
            "floor_mb_per_batch": floor_bytes / 2**20,
            "floor_ms": 1e3 * floor_s,
        }
        for name, ts in times.items():
            ts = [t + merge_s[name] for t in ts]
            med = statistics.median(ts)
            row[name] = {
                "ms": 1e3 * med,
                "ms_spread": [1e3 * min(ts), 1e3 * max(ts)],
                "gb_per_s": floor_bytes / med / 1e9,
                "fraction_of_floor": floor_s / med,
            }
        out.append(row)
    return out


def measure(
    model: str,
    *,
    batch: int = 64,
    dtype: str = "float32",
    device: str = "auto",
    channels_last: bool | str = "auto",
    fold_batchnorm: bool = True,
    seconds: float = 20.0,
    rounds: int = 3,
    state_dtype: str = "mixed",
    roofline_rounds: int = 5,
) -> dict[str, Any]:
    """Measure raw and engine forwards/s and the engine's time per stage.

    Parameters
    ----------
    model : str
        Registry name or ``package.module:factory``.
    batch, dtype, device, channels_last, fold_batchnorm
        As in the ``[run]`` section of a study config.
    seconds : float, default 20
        Rough total time of the timed rounds (raw + engine); the stage breakdown adds about a quarter.
    rounds : int, default 3
        Alternating raw / engine rounds.
    state_dtype : {"mixed", "float64", "float32"}, default "mixed"
        The engine's ``[run] state_dtype``.
    roofline_rounds : int, default 5
        Rounds of the accumulate roofline per kind (0: none).

    Returns
    -------
    dict
        ``raw_fps`` (the engine's network), ``given_fps`` (the network as given: NCHW, not folded, same
        dtype), ``engine_fps``, ``ratio`` (engine / raw), ``stages`` (seconds per stage over the
        breakdown pass, ``other`` and ``total`` included), the settings as resolved and versions.
    """
    cfg = _config(model, batch, dtype, device, channels_last, state_dtype, fold_batchnorm)
    study = Study(cfg, progress=False)
    given = load_model(cfg.model, device=study.device)
    eng, raw, plain = _Engine(study), _Raw(study, batch), _Raw(study, batch, given.module)
    # warm-up: allocator, kernels, lazy caches, first-use costs of the design generator
    for contestant in (raw, plain, eng):
        contestant.steps(2)
    per_raw, per_plain, per_eng = raw.steps(1), plain.steps(1), eng.steps(1)
    budget = seconds / (3 * rounds)
    k_raw = max(1, round(budget / per_raw))
    k_plain = max(1, round(budget / per_plain))
    k_eng = max(1, round(budget / per_eng))
    raw_t = plain_t = eng_t = 0.0
    for _ in range(rounds):
        raw_t += raw.steps(k_raw)
        plain_t += plain.steps(k_plain)
        eng_t += eng.steps(k_eng)
    raw_fps = rounds * k_raw * batch / raw_t
    given_fps = rounds * k_plain * batch / plain_t
    eng_fps = rounds * k_eng * eng.rows / eng_t

    k_bd = max(1, round(seconds / 4 / per_eng))
    with _timed_stages(study, eng.state) as times:
        total = eng.steps(k_bd)
    stages = dict(times)
    stages["other"] = max(0.0, total - sum(times.values()))
    stages["total"] = total
    # what the same rows would cost in the bare network: the rest of forward+capture is hooks + softmax
    stages["raw forward (same rows)"] = k_bd * eng.rows / raw_fps
    outputs = sum(int(torch.Size(s).numel()) for s in study.shapes.values())
    bandwidth = copy_bandwidth(study.device)
    act_dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float32
    roof = (
        roofline(
            outputs,
            study.factors.problem.D,
            batch,
            act_dtype,
            study.device,
            bandwidth=bandwidth,
            rounds=roofline_rounds,
        )
        if roofline_rounds
        else []
    )
    return {
        "model": model,
        "device": _device_name(study.device),
        "batch": batch,
        "engine_rows_per_forward": eng.rows,
        "rows_per_sample": study.plan.rows,
        "factors": study.factors.problem.D,
        "checkpoints": len(study.checkpoints),
        "outputs": outputs,
        "dtype": dtype,
        "state_dtype": state_dtype,
        "channels_last": study.config.run.channels_last,
        "folded_batchnorms": sum(isinstance(m, FoldedNorm) for m in study.model.module.modules()),
        "threads": torch.get_num_threads(),
        "raw_fps": raw_fps,
        "given_fps": given_fps,
        "engine_fps": eng_fps,
        "ratio": eng_fps / raw_fps,
        "stages": stages,
        "copy_gb_per_s": bandwidth,
        "roofline": roof,
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
    }


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _report(r: dict[str, Any]) -> str:
    lines = [
        f"model {r['model']}  device {r['device']}  batch {r['batch']} (engine forwards "
        f"{r['engine_rows_per_forward']} rows: {r['rows_per_sample']} per base sample)  dtype {r['dtype']}"
        f"{'  channels_last' if r['channels_last'] else ''}  {r['folded_batchnorms']} batch norms folded",
        f"checkpoints {r['checkpoints']} ({r['outputs']:,} outputs), D = {r['factors']}, "
        f"torch {r['versions']['torch']}, python {r['versions']['python']}",
        f"raw forward   {r['raw_fps']:10.1f} images/s  (the engine's network)",
        f"as given      {r['given_fps']:10.1f} images/s  (NCHW, not folded)",
        f"engine        {r['engine_fps']:10.1f} forwards/s",
        f"ratio         {r['ratio']:10.3f}  (engine / raw; engine / as given "
        f"{r['engine_fps'] / r['given_fps']:.2f})",
        "engine time by stage:",
    ]
    total = r["stages"]["total"]
    for name, t in r["stages"].items():
        if name != "total":
            lines.append(f"  {name:24s} {t:8.3f} s  {100 * t / total:5.1f} %")
    lines.append(f"  {'total':24s} {total:8.3f} s")
    lines.append(
        f"accumulate roofline (copy bandwidth {r['copy_gb_per_s']:.1f} GB/s read + write; floor = "
        "activations in + one float64 replicate state in and out per batch; GB/s = floor bytes / time):"
    )
    lines.append(
        f"  {'kind':22s} {'outputs':>9s} {'b':>3s} {'floor MB':>9s} {'floor ms':>9s} "
        f"{'float64 ms':>11s} {'GB/s':>6s} {'of floor':>8s} "
        f"{'f32 blocks ms':>14s} {'GB/s':>6s} {'of floor':>8s}"
    )
    for k in r["roofline"]:
        a, b = k["float64"], k["float32 blocks"]
        lines.append(
            f"  {k['kind']:22s} {k['outputs']:9,d} {k['base_samples_per_batch']:3d} "
            f"{k['floor_mb_per_batch']:9.1f} {k['floor_ms']:9.1f} "
            f"{a['ms']:11.1f} {a['gb_per_s']:6.2f} {a['fraction_of_floor']:8.3f} "
            f"{b['ms']:14.1f} {b['gb_per_s']:6.2f} {b['fraction_of_floor']:8.3f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="registry name (random weights) or package.module:factory")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument(
        "--channels-last", choices=("auto", "true", "false"), default="auto", help="[run] channels_last"
    )
    p.add_argument("--no-fold", action="store_true", help="[run] fold_batchnorm = false")
    p.add_argument("--seconds", type=float, default=20.0, help="rough length of the timed rounds")
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads of torch (default: torch's choice); 1 gives stable figures on a shared machine",
    )
    p.add_argument(
        "--state-dtype", choices=("mixed", "float64", "float32"), default="mixed", help="[run] state_dtype"
    )
    p.add_argument("--roofline-rounds", type=int, default=5, help="rounds per kind of the roofline (0: none)")
    p.add_argument("--json", help="also write the figures to this JSON file")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    r = measure(
        a.model,
        batch=a.batch,
        dtype=a.dtype,
        device=a.device,
        channels_last=a.channels_last if a.channels_last == "auto" else a.channels_last == "true",
        fold_batchnorm=not a.no_fold,
        seconds=a.seconds,
        state_dtype=a.state_dtype,
        roofline_rounds=a.roofline_rounds,
    )
    print(_report(r))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

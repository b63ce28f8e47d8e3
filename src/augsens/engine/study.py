"""The study engine: design rows -> images -> augment -> forward with capture -> accumulators.

One :class:`Study` turns a validated :class:`~augsens.config.StudyConfig` into sensitivity maps.  The
hot path, per batch of base samples, is::

    unit rows [b, R, k] (CPU, float64, from (seed, start, count))
      -> decode: parameters, switches, orders, image indices  (host -> device copy, small)
      -> gather uint8 images from the device cache -> compose augmentations per sample
      -> post-process -> forward with capture (fp32 or bf16 autocast, channels_last)
      -> accumulator updates on the device

Nothing but the final maps is written.  No device -> host copy happens per batch: progress counts rows
on the host, and non-finite values are counted on the device.  Accumulator state and the design position
are saved atomically every ``checkpoint_every`` seconds and on Ctrl-C; ``resume=True`` continues from
there and gives results equal to an uninterrupted run (the design rows are a pure function of
``(seed, start, count)``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import torch
import xarray as xr

from augsens.augment import compose, postprocess
from augsens.config import StudyConfig
from augsens.core import design as designs
from augsens.core import estimate
from augsens.core.precision import PRECISION_RULE, default_max_n, precision_of, stop_reason
from augsens.core.song import SongShapleyAccumulator, SongShapleyDesign
from augsens.data import ImageCache, bundled_photos, image_folder
from augsens.engine.aggregates import named_aggregates
from augsens.engine.factors import AugmentationFactors
from augsens.errors import UserInputError
from augsens.fingerprint import compare, fingerprint
from augsens.interrupts import StudyInterrupted, deferred_signals
from augsens.models import LoadedModel, load
from augsens.models.layout import checkpoint_layouts
from augsens.preflight import STATE_DIR, STATE_NAME, prepare_out
from augsens.progress import forwards_bar
from augsens.results import versions, write_results

__all__ = ["Study", "StudyInterrupted", "resolve_device", "STATE_NAME"]

_STATE_VERSION = 1
_STATE_KEYS = ("version", "config", "position", "elapsed", "acc", "moments")


# torch >= 2.5 names it torch.OutOfMemoryError; older releases only have the CUDA one
_OOM: type[BaseException] = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is checked and returned."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise UserInputError(
            f"[run] device = {device!r} is not a device name (try 'cpu', 'cuda', 'auto')"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"[run] device = {device!r} but no CUDA GPU is available; use 'cpu' or 'auto'")
    return dev


def _first_line(exc: BaseException) -> str:
    return next(iter(str(exc).splitlines()), "")


@dataclass
class _Plan:
    """How a study kind maps onto a design and accumulators."""

    design: Any
    n: int  # base samples (blocks for shapley-song)
    rows: int  # rows per base sample (R)
    make: Callable[[], Any]  # new sensitivity accumulator for one checkpoint (None for moments studies)


class Study:
    """A configured study, ready to run.

    Parameters
    ----------
    config : StudyConfig
        Validated configuration (:func:`augsens.config.load_config`).
    model : LoadedModel, optional
        A model already loaded (otherwise loaded from ``config.model``).
    images : ImageCache, optional
        Images already decoded (otherwise from ``config.images``).
    progress : bool
        Show a progress bar (rows done, forwards/s, ETA).

    Examples
    --------
    >>> import tempfile
    >>> from augsens.config import StudyConfig
    >>> cfg = StudyConfig.from_dict({
    ...     "model": {"name": "augsens.testing:tiny_cnn", "checkpoints": ["act", "fc"]},
    ...     "study": {"kind": "sobol", "augmentations": ["hflip", "grayscale"], "n": 8, "replicates": 2},
    ...     "run": {"device": "cpu"},
    ... })
    >>> tree = Study(cfg, progress=False).run(tempfile.mkdtemp())
    >>> tree["act"].dataset["ST"].dims, tree["act"].dataset["factor"].values.tolist()
    (('factor', 'channel', 'y', 'x'), ['hflip', 'grayscale', 'order', 'image'])
    """

    def __init__(
        self,
        config: StudyConfig,
        *,
        model: LoadedModel | None = None,
        images: ImageCache | None = None,
        progress: bool = True,
    ) -> None:
        config.validate()
        self.config = config
        self.progress = progress
        self._updating = False  # True while accumulators are changed in place (see _step)
        self.device = resolve_device(config.run.device)
        mc, sc = config.model, config.study
        if model is None:
            model = load(
                mc.name,
                weights=mc.weights,
                checkpoints=None if mc.segments else mc.checkpoints or None,
                mean=mc.mean or None,
                std=mc.std or None,
                categories=mc.categories or None,
                device=self.device,
            )
            if mc.segments:
                model = self._segment_bank(model)
        else:
            model = model.to(self.device)
        if config.run.channels_last:
            # weights in NHWC too, or every convolution converts its input back (in place, like .to())
            model.module.to(memory_format=torch.channels_last)
        self.model = model
        # normalisation constants on the device once per run, not copied from the host every batch
        self._mean = torch.tensor(model.mean, dtype=torch.float32, device=self.device)
        self._std = torch.tensor(model.std, dtype=torch.float32, device=self.device)
        self.checkpoints = list(mc.checkpoints or model.checkpoints)
        self.shapes = model.output_shapes(self.checkpoints)
        self.layouts = checkpoint_layouts(model, self.checkpoints)  # dims and relative depth
        if images is None:
            images = self._load_images()
        self.images = images.to(self.device)
        switches = sc.switches
        if switches == "default":
            # the authors' switch models per family (spec 2.4); clean mode switches every augmentation
            switches = "nonparametric" if (sc.mode == "paper" and sc.kind in ("sobol", "moments")) else "all"
        self.factors = AugmentationFactors(
            sc.augmentations if isinstance(sc.augmentations, str) else list(sc.augmentations),
            self.images.partitions,
            switches=switches,
            p=sc.switch_p,
            mode=sc.mode,
            integer_params=sc.mode == "paper" and sc.kind.startswith("shapley"),
            order=sc.order,
        )
        self.plan = self._plan()

    # ------------------------------------------------------------------ setup
    def _segment_bank(self, network: LoadedModel) -> LoadedModel:
        """The network's HSV single-channel segments as one model (one checkpoint per segment x channel)."""
        from augsens.models.segments import HSV_CHANNELS, SegmentBank, example_segments, load_segments

        mc = self.config.model
        shipped = cast(Literal["alexnet", "resnet18"], mc.segments)  # used only when it is one of the two
        path = example_segments(shipped) if mc.segments in ("alexnet", "resnet18") else mc.segments
        bank = SegmentBank(
            network.module,
            load_segments(path),
            channels=mc.segment_channels or HSV_CHANNELS,
            mode=self.config.study.mode,
            mean=network.mean,
            std=network.std,
        )
        # the segments convert [0, 1] RGB to HSV themselves: no normalisation in front of them
        return load(
            bank, checkpoints=mc.checkpoints or None, mean=(0, 0, 0), std=(1, 1, 1), device=self.device
        )

    def _load_images(self) -> ImageCache:
        ic = self.config.images
        if ic.source == "bundled":
            if ic.partition2:
                raise UserInputError("[images] partition2 needs a folder source, not 'bundled'")
            return bundled_photos(device=self.device)
        kw: dict[str, Any] = dict(
            per_class=ic.per_class or None, seed=ic.seed, strict=ic.strict, device=self.device
        )
        first = image_folder(ic.source, **kw)
        if not ic.partition2:
            return first
        second = image_folder(ic.partition2, **kw)
        return ImageCache.concatenate([first, second])

    def _plan(self) -> _Plan:
        sc, rc = self.config.study, self.config.run
        problem = self.factors.problem
        D = problem.D
        dtype = torch.float64 if rc.state_dtype == "float64" else torch.float32
        # every kind but the Song-type double loop splits n into independently scrambled replicates
        # (confidence half-widths); memory grows with them.  A precision target makes the design the
        # budget, run in rounds that double the first n (augsens.core.precision).
        common: dict[str, Any] = dict(seed=sc.seed, method=sc.design, replicates=sc.replicates)
        size = sc.n
        if sc.precision:
            size = sc.max_n or default_max_n(sc.n)
            common["first"] = sc.n
        reps: dict[str, Any] = dict(replicates=sc.replicates, dtype=dtype, device=self.device)
        d: designs._Design | SongShapleyDesign
        if sc.kind == "sobol":
            d = designs.SobolDesign(problem, size, second_order=sc.second_order, **common)
            return _Plan(
                d,
                size,
                d.rows_per_sample,
                lambda: estimate.SobolAccumulator(
                    D, second_order=sc.second_order, method=sc.sobol_method, **reps
                ),
            )
        if sc.kind == "shapley" and sc.shapley_method == "exact":
            d = designs.ShapleyDesign(problem, size, **common)
            return _Plan(
                d,
                size,
                d.rows_per_sample,
                lambda: estimate.ShapleyAccumulator(D, **reps),
            )
        if sc.kind == "shapley":
            d = designs.PermutationShapleyDesign(problem, size, **common)
            return _Plan(
                d,
                size,
                d.rows_per_sample,
                lambda: estimate.PermutationShapleyAccumulator(D, **reps),
            )
        if sc.kind == "shapley-song":
            d = SongShapleyDesign(problem, sc.song_permutations, sc.song_outer, sc.song_inner, seed=sc.seed)
            return _Plan(
                d,
                d.n,
                d.rows_per_sample,
                lambda: SongShapleyAccumulator(
                    D, sc.song_outer, sc.song_inner, dtype=dtype, device=self.device
                ),
            )
        if sc.kind == "moments":
            d = designs.IIDDesign(problem, sc.n, seed=sc.seed, method=sc.design)
            return _Plan(d, sc.n, 1, lambda: None)
        raise ValueError(f"[study] kind = {sc.kind!r} is not supported by this engine")

    # ------------------------------------------------------------------ state
    def new_state(self) -> dict[str, Any]:
        """Empty accumulators for every checkpoint, at design position 0."""
        dtype = torch.float64 if self.config.run.state_dtype == "float64" else torch.float32
        acc = {c: self.plan.make() for c in self.checkpoints}
        # mean/var/cov come free from the Sobol and Shapley states (pooled_moments); a separate pass
        # over every row is kept only for moments studies and the Song-type estimator
        mom = {
            c: estimate.MomentsAccumulator(dtype=dtype, device=self.device)
            for c in self.checkpoints
            if not hasattr(acc[c], "pooled_moments")
        }
        return {"position": 0, "elapsed": 0.0, "acc": acc, "moments": mom}

    def export_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """State as plain tensors and numbers (versioned, with the config): for files and Ray transfers."""
        return {
            "version": _STATE_VERSION,
            "config": self.config.to_json(),
            "position": state["position"],
            "elapsed": state["elapsed"],
            "acc": {c: a.state_dict() for c, a in state["acc"].items() if a is not None},
            "moments": {c: m.state_dict() for c, m in state["moments"].items()},
        }

    def import_state(self, blob: dict[str, Any], *, source: str = "state") -> dict[str, Any]:
        """Inverse of :meth:`export_state`; refuses a state made under a different study config."""
        if blob.get("version") != _STATE_VERSION:
            raise UserInputError(
                f"{source}: state format {blob.get('version')!r} is not {_STATE_VERSION} (saved by another "
                "version of augsens): finish it with that version, or start over with --overwrite"
            )
        saved = json.loads(blob["config"])
        now = json.loads(self.config.to_json())
        # the run section (batch size, device, checkpoint interval) may change on resume; nothing else
        saved.pop("run", None)
        now.pop("run", None)
        if saved != now:
            diff = [f"{s}.{k}" for s in now for k in now[s] if saved.get(s, {}).get(k) != now[s][k]]
            raise UserInputError(
                f"cannot resume from {source}: the config changed since it was saved ({', '.join(diff)}); "
                "restore it, or start over with --overwrite (or another --out)"
            )
        state = self.new_state()
        state["position"] = int(blob["position"])
        state["elapsed"] = float(blob["elapsed"])
        for c in self.checkpoints:
            if c in blob["acc"]:
                state["acc"][c] = type(state["acc"][c]).from_state_dict(blob["acc"][c]).to(self.device)
            if c in state["moments"]:
                moments = estimate.MomentsAccumulator.from_state_dict(blob["moments"][c])
                state["moments"][c] = moments.to(self.device)
        return state

    def merge_states(self, states: list[dict[str, Any]]) -> dict[str, Any]:
        """Merge shard states in the given order (a fixed order makes the result independent of
        scheduling).  ``position`` becomes the number of base samples covered, ``elapsed`` the sum."""
        merged = self.new_state()
        for st in states:
            for c in self.checkpoints:
                if merged["acc"][c] is not None:
                    merged["acc"][c].merge(st["acc"][c])
                if c in merged["moments"]:
                    merged["moments"][c].merge(st["moments"][c])
            merged["position"] += st["position"]
            merged["elapsed"] += st["elapsed"]
        return merged

    def fingerprint(self) -> dict[str, Any]:
        """Hashes of this study's decoded images and model weights (see :mod:`augsens.fingerprint`)."""
        if not hasattr(self, "_fingerprint"):
            self._fingerprint = fingerprint(self.images, self.model.module)
        return self._fingerprint

    def _save_state(self, path: Path, state: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        # the fingerprint goes only into files: a resumed run must read the same images and weights
        torch.save({**self.export_state(state), "fingerprint": self.fingerprint()}, tmp)
        os.replace(tmp, path)  # atomic: a crash leaves the previous state intact

    def _load_state(self, path: Path) -> dict[str, Any]:
        fix = "Restore the file, or start over with --overwrite (the work it held is lost)"
        try:
            blob = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:  # torch.load raises many types on a cut-short or foreign file
            raise UserInputError(
                f"state file {str(path)!r} cannot be read ({type(exc).__name__}: {_first_line(exc)}): "
                f"it was cut short or is not an augsens state. {fix}"
            ) from exc
        if not isinstance(blob, dict) or any(k not in blob for k in _STATE_KEYS):
            raise UserInputError(f"state file {str(path)!r} is not an augsens run state. {fix}")
        changes = compare(blob.get("fingerprint", {}), self.fingerprint()) if "fingerprint" in blob else []
        if changes:
            raise UserInputError(
                f"cannot resume from {str(path)!r}: the inputs changed since it was saved: "
                f"{'; '.join(changes)}. Restore them, or start over with --overwrite (or another --out)"
            )
        return self.import_state(blob, source=repr(str(path)))

    # ------------------------------------------------------------------ hot path
    @property
    def round_ends(self) -> list[int]:
        """Base samples done at the end of each round (one round, ``[n]``, without a precision target)."""
        design = self.plan.design
        return list(design.round_ends) if isinstance(design, designs._Design) else [self.plan.n]

    def batches(self, start: int, stop: int | None = None) -> Iterator[tuple[int, int, int]]:
        """(start, count, replicate) ranges of base samples in ``[start, stop)``, never straddling a
        replicate block (each Sobol replicate is its own scrambled sequence and accumulator slot)."""
        n, R = self.plan.n, self.plan.rows
        stop = n if stop is None else min(stop, n)
        per_batch = max(1, self.config.run.batch_size // R)
        design = self.plan.design
        if isinstance(design, designs._Design):
            for rep, pos, count in design.batches(per_batch, start, stop):
                yield pos, count, rep
            return
        for pos in range(start, stop, per_batch):  # the Song-type design has no replicates
            yield pos, min(per_batch, stop - pos), 0

    def _round_check(self, state: dict[str, Any], elapsed: float | None = None) -> str | None:
        """At the end of a round: the precision reached (kept in ``state``) and why to stop, if so.

        ``elapsed`` (default ``state["elapsed"]``) is the time the time limit is compared with."""
        sc = self.config.study
        state["precision"] = precision_of(a for a in state["acc"].values() if a is not None)
        reason = stop_reason(
            state["precision"],
            sc.precision,
            done=state["position"],
            total=self.plan.n,
            elapsed=state["elapsed"] if elapsed is None else elapsed,
            time_limit=sc.time_limit,
        )
        state["stop_reason"] = reason
        return reason

    def accumulate(
        self, state: dict[str, Any], start: int, stop: int, advance: Callable[[int], None] | None = None
    ) -> dict[str, Any]:
        """Add base samples ``[start, stop)`` to ``state`` (a shard of the design; used by Ray workers).

        ``state["position"]`` counts the base samples this state holds."""
        t0 = time.monotonic()
        for b_start, count, rep in self.batches(start, stop):
            self._step(state, b_start, count, rep)
            state["position"] += count
            if advance is not None:
                advance(count * self.plan.rows)
        state["elapsed"] += time.monotonic() - t0
        return state

    def _images_for(self, unit: torch.Tensor, first_row: int) -> torch.Tensor:
        """Post-processed model inputs for unit rows ``[N, k]`` whose global row ids start at first_row."""
        sc = self.config.study
        row_ids = torch.arange(first_row, first_row + unit.shape[0], dtype=torch.int64)
        rows = self.factors.decode(unit, device=self.device, row_ids=row_ids, seed=sc.seed)
        x = self.images.gather(rows.image)
        x = compose(
            x,
            self.factors.augmentations,
            rows.params,
            order=rows.order,
            on=rows.on,
            mode=sc.mode,
            validate=False,
        )
        x = postprocess(x, self._mean, self._std, minmax=sc.mode == "paper")
        if self.config.run.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _forward(self, unit: torch.Tensor, first_row: int) -> dict[str, torch.Tensor]:
        """Captured activations ``{checkpoint: [N, *out]}`` for unit rows ``[N, k]``, in forward chunks."""
        bs = self.config.run.batch_size
        autocast = (
            torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
            if self.config.run.dtype == "bfloat16"
            else contextlib.nullcontext()
        )
        parts: dict[str, list[torch.Tensor]] = {c: [] for c in self.checkpoints}
        for lo in range(0, unit.shape[0], bs):  # one forward per chunk of rows, not per sample
            x = self._images_for(unit[lo : lo + bs], first_row + lo)
            with torch.no_grad(), autocast:  # not inference_mode: capture checks in-place overwrites
                acts = self.model.capture(x, self.checkpoints, normalized=True)
            for c in self.checkpoints:
                parts[c].append(acts[c])
        return {c: v[0] if len(v) == 1 else torch.cat(v) for c, v in parts.items()}

    def _step(self, state: dict[str, Any], start: int, count: int, replicate: int) -> None:
        R = self.plan.rows
        design = self.plan.design
        extra: tuple[torch.Tensor, ...] = ()
        if isinstance(design, designs.PermutationShapleyDesign):
            # the orders are drawn once, on the host, where the accumulator checks them without a
            # device-to-host synchronisation (it moves them to the device itself)
            unit, perms = design.rows_and_permutations(start, count)
            extra = (perms,)
        else:
            unit = design.unit_rows(start, count)  # [count, R, k]
            if isinstance(design, SongShapleyDesign):
                extra = design.blocks(start, count)
        acts = self._forward(unit.reshape(count * R, -1), start * R)
        kind = self.config.study.kind
        # From here on the state changes in place: an exception now leaves it half updated, so it must
        # not be saved (run() keeps the last saved state instead).
        self._updating = True
        for c, a in acts.items():
            y = a.reshape(count, R, *a.shape[1:])
            if c in state["moments"]:
                state["moments"][c].update(a)
            acc = state["acc"][c]
            if acc is None:
                continue
            if kind == "shapley-song":
                acc.update(y, *extra)
            else:
                acc.update(y, *extra, replicate=replicate)
        self._updating = False

    # ------------------------------------------------------------------ run
    def run(
        self,
        out: str | Path,
        *,
        resume: bool = False,
        overwrite: bool = False,
        stop_after: int | None = None,
    ) -> xr.DataTree | None:
        """Run the study and write ``out/results.zarr``.

        Parameters
        ----------
        out : path
            Results folder (created).  Resume state lives in ``out/state/``.
        resume : bool
            Continue from ``out/state/state.pt``; refused when the images or model weights differ from
            the saved run's.  Without it (and without ``overwrite``) an existing state or results folder
            is an error, so a finished or partial run is never overwritten by accident.
        overwrite : bool
            Start afresh in a folder holding another run: its state is discarded, its results are
            replaced once the new ones are written.
        stop_after : int, optional
            Stop (saving state, as on Ctrl-C) once this many base samples are done; for tests and for
            splitting long runs.

        Returns
        -------
        DataTree or None
            The results tree, or ``None`` when stopped by ``stop_after`` (state saved).

        Raises
        ------
        UserInputError
            ``out`` cannot hold the run (see :func:`augsens.preflight.prepare_out`), or the saved state
            is unreadable or was made with other images, weights or config.
        StudyInterrupted
            On Ctrl-C or SIGTERM: after saving the state, or (the signal came while the results were
            written) once they are complete.
        """
        out = Path(out)
        state_path = out / STATE_DIR / STATE_NAME
        prepare_out(out, resume=resume, overwrite=overwrite)
        state = self._load_state(state_path) if resume else self.new_state()
        n, R = self.plan.n, self.plan.rows
        target = self.config.study.precision or None
        ends = self.round_ends
        every = self.config.run.checkpoint_every
        last_save = time.monotonic()
        t0 = time.monotonic() - state["elapsed"]

        def save() -> None:
            state["elapsed"] = time.monotonic() - t0
            self._save_state(state_path, state)

        def round_end(position: int) -> int:
            return next(e for e in ends if e > position) if position < n else n

        with deferred_signals() as pending:
            try:
                with forwards_bar(
                    self.progress,
                    total=(round_end(state["position"]) if target else n) * R,
                    done=state["position"] * R,
                    label=self._label(),
                    target=target,
                ) as advance:
                    for start, count, rep in self.batches(state["position"]):
                        if start > 0 and start in ends:  # a round ended: check the precision before the next
                            state["elapsed"] = time.monotonic() - t0
                            if self._round_check(state) is not None:
                                advance(0, precision=state["precision"])  # the bar ends on it
                                break
                            advance(0, total=round_end(start) * R, precision=state["precision"])
                        if stop_after is not None and start >= stop_after:
                            save()
                            return None
                        self._step(state, start, count, rep)
                        state["position"] = start + count
                        advance(count * R)
                        if pending():
                            raise KeyboardInterrupt
                        if time.monotonic() - last_save > every:
                            save()
                            last_save = time.monotonic()
                    if state["position"] >= n:
                        state["elapsed"] = time.monotonic() - t0
                        self._round_check(state)
                        advance(0, precision=state["precision"])
                # every sample is done: keep them on disk until the results are, so that a stop while
                # the results are assembled or written loses no forward pass
                save()
            except KeyboardInterrupt as exc:
                if not self._updating:
                    save()
                signum = pending() or getattr(exc, "signum", int(signal.SIGINT))
                raise StudyInterrupted(
                    state_path, state["position"], n, saved=not self._updating, signum=signum
                ) from None
            except _OOM:
                if not self._updating:  # out of memory in the forward pass: the state is intact
                    save()
                raise
            try:
                tree = self.finalize(state)
                if pending():
                    raise KeyboardInterrupt
                written = write_results(tree, out)  # atomic: a temporary sibling, then renamed
            except KeyboardInterrupt as exc:
                signum = pending() or getattr(exc, "signum", int(signal.SIGINT))
                raise StudyInterrupted(
                    state_path, state["position"], n, signum=signum, phase="finalising"
                ) from None
            state_path.unlink()
            with contextlib.suppress(OSError):
                state_path.parent.rmdir()
            if pending():
                raise StudyInterrupted(
                    state_path, state["position"], n, signum=pending(), phase="written", results=written
                )
        return tree

    def _label(self) -> str:
        sc = self.config.study
        aug = (
            sc.augmentations
            if isinstance(sc.augmentations, str)
            else f"{len(sc.augmentations)} augmentations"
        )
        return f"{sc.kind} {aug}"

    # ------------------------------------------------------------------ results
    def finalize(self, state: dict[str, Any]) -> xr.DataTree:
        """The results tree of a (complete or partial) state: one node per checkpoint + provenance."""
        factors = self.factors.factor_names
        nodes: dict[str, xr.Dataset] = {}
        nonfinite: dict[str, int] = {}
        for c in self.checkpoints:
            shape = tuple(self.shapes[c])
            dims = self.layouts[c].dims
            acc = state["acc"][c]
            moments = state["moments"][c] if c in state["moments"] else acc.pooled_moments()
            ds = moments.finalize(factors, dims=dims)
            if acc is not None:
                # node attributes: the estimator's own provenance (methods, replicates, counts)
                ds = xr.merge(
                    [acc.finalize(factors, dims=dims), ds], compat="override", combine_attrs="override"
                )
                ds = xr.merge([ds, self._aggregates(acc, factors, shape, dims)], combine_attrs="override")
            nonfinite[c] = int(ds.attrs.get("nonfinite_total", 0))
            nodes[c] = ds
        sc = self.config.study
        forwards = state["position"] * self.plan.rows
        reason = state.get("stop_reason") or (
            ("max_n reached" if sc.precision else "n reached")
            if state["position"] >= self.plan.n
            else "stopped"
        )
        root = xr.Dataset(
            attrs={
                "augsens_results": 1,
                "kind": sc.kind,
                "mode": sc.mode,
                "model": self.model.name,
                "checkpoints": json.dumps(self.checkpoints),
                "depth": json.dumps({c: self.layouts[c].depth for c in self.checkpoints}),
                "factors": json.dumps(factors),
                "parameters": json.dumps(self.factors.describe()),
                "augmentations": json.dumps(list(self.factors.augmentations)),
                "config": self.config.to_json(),
                "versions": json.dumps(versions()),
                "seed": sc.seed,
                "n": sc.n if sc.precision else self.plan.n,
                "base_samples_done": state["position"],
                "rows_per_sample": self.plan.rows,
                "forwards": forwards,
                "elapsed_s": round(state["elapsed"], 3),
                "forwards_per_s": round(forwards / max(state["elapsed"], 1e-9), 2),
                "device": str(self.device),
                "images": len(self.images),
                "skipped_images": len(getattr(self.images, "skipped", [])),
                "skipped_files": json.dumps([s[0] for s in getattr(self.images, "skipped", [])]),
                "nonfinite": json.dumps(nonfinite),
                # the precision reached (NaN without replicate intervals), its rule and why the run stopped
                "precision": precision_of(nodes.values()),
                "precision_target": sc.precision,
                "precision_rule": PRECISION_RULE,
                "stop_reason": reason,
                "max_n": self.plan.n,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        )
        tree = xr.DataTree.from_dict({"/": root, **nodes})
        return tree

    def _aggregates(
        self, acc: Any, factors: list[str], shape: tuple[int, ...], dims: tuple[str, ...]
    ) -> xr.Dataset:
        """Per-checkpoint, per-channel and per-token indices: sums of numerators over sums of variances."""
        return named_aggregates(acc, factors, dims, shape, self.device)

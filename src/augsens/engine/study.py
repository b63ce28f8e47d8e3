"""The study engine's facade: :class:`Study` turns a validated config into sensitivity maps.

The work is split by job: :mod:`augsens.engine.plan` (config -> augmentation factors and the
sensitivity method), :mod:`augsens.engine.state` (the typed run state, exported, imported and merged),
:mod:`augsens.engine.runner` (the hot path and the hooks of the one loop: checkpoints, signals, OOM)
and :mod:`augsens.engine.results` (the results tree).  :class:`Study` is data: it loads the model (or
its segment bank) and images through :mod:`augsens.engine.inputs`, as every command does, and holds
what those modules read through its public members (:class:`augsens.engine.parts.StudyParts`); its
methods are what the CLI, ``ag.study`` and Ray workers call.

Nothing but the final maps is written.  Accumulator state and the design position are saved atomically
every ``checkpoint_every`` seconds and on Ctrl-C; ``resume=True`` continues from there and gives results
equal to an uninterrupted run (the design rows are a pure function of ``(seed, start, count)``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import xarray as xr

import augsens.engine.memory as memory
import augsens.engine.results as results
import augsens.engine.runner as runner
import augsens.engine.state as study_state
from augsens.augment.checks import PROBE_SIZE, check_augmentations
from augsens.config import StudyConfig
from augsens.core.methods import Batch
from augsens.data import SampleCache
from augsens.engine.inputs import image_counts, load_images, load_model
from augsens.engine.plan import StudyPlan, plan, resolve_dtype, resolve_layout, state_dtype, work_dtype
from augsens.engine.state import StudyState
from augsens.errors import UserInputError
from augsens.fingerprint import fingerprint, weights_digest
from augsens.models import LoadedModel
from augsens.models.fold import fold_batchnorm
from augsens.models.layout import checkpoint_layouts

__all__ = ["Study", "resolve_device"]


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else Apple's MPS when available, else CPU; anything else is checked
    and returned."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise UserInputError(
            f"[run] device = {device!r} is not a device name (try 'cpu', 'cuda', 'auto')"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"[run] device = {device!r} but no CUDA GPU is available; use 'cpu' or 'auto'")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise UserInputError(
            f"[run] device = {device!r} but Apple's MPS is not available; use 'cpu' or 'auto'"
        )
    return dev


def _nhwc_failure(model: LoadedModel) -> str | None:
    """Why the network's forward fails on an NHWC input with NHWC weights, or None when it runs."""
    x = model.example_input().contiguous(memory_format=torch.channels_last)
    try:
        with torch.no_grad():
            model.module(x)
    except RuntimeError as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


class Study:
    """A configured study, ready to run.

    Parameters
    ----------
    config : StudyConfig
        Validated configuration (:func:`augsens.config.load_config`).
    model : LoadedModel, optional
        A model already loaded (otherwise loaded from ``config.model``).
    images : SampleCache, optional
        Images already decoded (otherwise from ``config.images``), or other inputs
        (:func:`augsens.data.inputs.as_samples`).
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
        images: SampleCache | None = None,
        progress: bool = True,
    ) -> None:
        config.validate()
        self.config = config
        self.progress = progress
        self.device = resolve_device(config.run.device)
        config = self.config = resolve_dtype(config, self.device)
        mc = config.model
        if model is None:
            # inputs given here may be other than images: their shape sets the model's defaults
            shape = images.sample_shape if images is not None else None
            model = load_model(mc, device=self.device, mode=config.study.mode, input_shape=shape)
        else:
            model = model.to(self.device)
        self.model = model
        self.checkpoints = list(mc.checkpoints or model.checkpoints)
        # the memory the run needs is known before the images are decoded: a run that cannot fit is
        # refused now, not killed later (the image cache alone may be what does not fit)
        self.memory: memory.MemoryEstimate | None = None
        side = config.images.side
        counts = image_counts(config.images) if images is None and side is not None else None
        if side is not None and counts and all(part and all(part) for part in counts):
            model.input_shape = (3, side, side)
            self.shapes = model.output_shapes(self.checkpoints)
            self.memory = self._check_memory(counts, decoded=False)
        if images is None:
            images = load_images(config.images, device=self.device)
        self.images = images.to(self.device)
        # the network is probed (output shapes, dims, depth) with inputs of the images' own shape
        model.input_shape = self.images.sample_shape
        model.output_shapes(self.checkpoints)  # a network that refuses these inputs is named first
        self._weights: str | None = None  # digest of the weights as given, when the run folds them
        self.model = model = self._prepare(model)
        config = self.config
        # normalisation constants on the device once per run, not copied from the host every batch
        self.input_mean = torch.tensor(model.mean, dtype=torch.float32, device=self.device)
        self.input_std = torch.tensor(model.std, dtype=torch.float32, device=self.device)
        self.plan: StudyPlan = plan(
            config, self.images.partitions, self.device, sample_shape=self.images.sample_shape
        )
        self.factors = self.plan.factors
        # every augmentation against the protocol's rules, on the study's own inputs, before any forward
        probe = self.images.gather(torch.arange(PROBE_SIZE) % len(self.images))
        check_augmentations(self.factors.specs, probe, mode=config.study.mode)
        self.shapes = model.output_shapes(self.checkpoints)
        self.layouts = checkpoint_layouts(model, self.checkpoints)  # dims and relative depth
        if self.memory is None:
            self.memory = self._check_memory(self.images.partitions, decoded=True)

    def _prepare(self, model: LoadedModel) -> LoadedModel:
        """The network as it runs: eval batch norms folded into their convolutions (``[run]
        fold_batchnorm``, on a copy: the given model is not changed) and NHWC weights (``[run]
        channels_last``, in place like ``.to()``).  Both change float32 rounding only; the fingerprint
        keeps the weights as given."""
        run = self.config.run
        if run.fold_batchnorm:
            folding = fold_batchnorm(model, self.checkpoints)
            if folding.pairs:
                self._weights = weights_digest(model.module)
            elif folding.refused and self.progress:
                from rich.console import Console

                Console(stderr=True).print(f"batch norms not folded: {folding.refused}", markup=False)
            model = folding.model
        auto = run.channels_last == "auto"
        self.config = resolve_layout(self.config, self.device, model.module)
        if self.config.run.channels_last:
            # weights in NHWC too, or every convolution converts its input back
            model.module.to(memory_format=torch.channels_last)
            failure = _nhwc_failure(model)
            if failure:  # e.g. a .view() of an activation: NCHW, as the network's code assumes
                model.module.to(memory_format=torch.contiguous_format)
                self.config.run.channels_last = False
            if failure and not auto:
                raise UserInputError(
                    f"[run] channels_last = true, but the network fails on NHWC inputs ({failure}): "
                    'set [run] channels_last = false (or "auto", which falls back to NCHW by itself)'
                )
        return model

    def _check_memory(self, partitions: list[list[int]], *, decoded: bool) -> memory.MemoryEstimate:
        """Estimate the run's peak memory (:mod:`augsens.engine.memory`), print it, refuse what does not
        fit."""
        est = memory.for_study(self.config, self.model, self.shapes, partitions, self.device, decoded=decoded)
        if self.progress:
            from rich.console import Console

            Console(stderr=True).print(est.summary(), highlight=False, markup=False)
        memory.check(est)
        return est

    # ------------------------------------------------------------------ state
    def new_state(self) -> StudyState:
        """Empty accumulators for every checkpoint, at design position 0."""
        return study_state.new_state(
            self.plan.method,
            self.checkpoints,
            state_dtype(self.config),
            self.device,
            work_dtype=work_dtype(self.config),
        )

    def export_state(self, state: StudyState) -> dict[str, Any]:
        """State as plain tensors and numbers (versioned, with the config): for files and Ray transfers."""
        return study_state.export_state(state, self.config.to_json())

    def import_state(self, blob: dict[str, Any], *, source: str = "state") -> StudyState:
        """Inverse of :meth:`export_state`; refuses a state made under a different study config."""
        return study_state.import_state(
            blob, self.new_state(), self.config.to_json(), self.device, source=source
        )

    def merge_states(self, states: list[StudyState]) -> StudyState:
        """Merge shard states in the given order (a fixed order makes the result independent of
        scheduling).  ``position`` becomes the number of base samples covered, ``elapsed`` the sum."""
        return study_state.merge_states(states, self.new_state())

    def fingerprint(self) -> dict[str, Any]:
        """Hashes of this study's decoded images, model weights and augmentations' code and declarations
        (see :mod:`augsens.fingerprint`)."""
        if not hasattr(self, "_fingerprint"):
            weights = self._weights or self.model.module
            self._fingerprint = fingerprint(self.images, weights, self.factors.specs)
        return self._fingerprint

    # ------------------------------------------------------------------ hot path
    @property
    def round_ends(self) -> list[int]:
        """Base samples done at the end of each round (one round, ``[n]``, without a precision target)."""
        return self.plan.method.round_ends

    def accumulate(
        self, state: StudyState, start: int, stop: int, advance: Callable[[int], None] | None = None
    ) -> StudyState:
        """Add base samples ``[start, stop)`` to ``state`` (a shard of the design; used by Ray workers).

        ``state.position`` counts the base samples this state holds."""
        return runner.accumulate(self, state, start, stop, advance)

    def forward(self, unit: torch.Tensor, first_row: int) -> dict[str, torch.Tensor]:
        """Captured activations ``{checkpoint: [N, *out]}`` for unit rows ``[N, k]`` whose global row ids
        start at ``first_row``, in forward chunks (:func:`augsens.engine.runner.forward`)."""
        return runner.forward(self, unit, first_row)

    def step(self, state: StudyState, batch: Batch) -> None:
        """Forward one batch and add its activations to ``state`` (its position is the caller's)."""
        runner.step(self, state, batch)

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
        return runner.run(self, Path(out), resume=resume, overwrite=overwrite, stop_after=stop_after)

    @property
    def label(self) -> str:
        """A short name of the study for progress bars: its kind and augmentations."""
        sc = self.config.study
        aug = (
            sc.augmentations
            if isinstance(sc.augmentations, str)
            else f"{len(sc.augmentations)} augmentations"
        )
        return f"{sc.kind} {aug}"

    # ------------------------------------------------------------------ results
    def finalize(self, state: StudyState) -> xr.DataTree:
        """The results tree of a (complete or partial) state: one node per checkpoint + provenance."""
        return results.results_tree(self, state)

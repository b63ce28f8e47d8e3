"""The state of a study run: design position, time spent and accumulators per checkpoint.

A state is what a run saves every ``checkpoint_every`` seconds and on Ctrl-C, what a Ray shard returns
and what shards merge into.  On disk (and through Ray) it is a plain, versioned dict of tensors and
numbers together with the study config (:func:`export_state`), which :func:`import_state` checks on the
way back.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from augsens.core.estimate import Accumulator, MomentsAccumulator
from augsens.core.methods import Method
from augsens.errors import UserInputError
from augsens.wording import option

__all__ = [
    "StudyState",
    "STATE_VERSION",
    "STATE_KEYS",
    "RESUMABLE_RUN_KEYS",
    "comparable_config",
    "run_segment",
    "new_state",
    "export_state",
    "import_state",
    "merge_states",
]

#: format of an exported state; a file of another version is refused
STATE_VERSION = 1
#: keys every exported state holds
STATE_KEYS = ("version", "config", "position", "elapsed", "acc", "moments")
#: ``[run]`` keys a resumed run may change: they set how fast, where and how often the run goes, not its
#: numbers; every other key (``dtype``, ``state_dtype`` and all of ``[study]``, ``[model]``,
#: ``[images]``) is the same on resume or the run is refused
RESUMABLE_RUN_KEYS = ("batch_size", "device", "channels_last", "fold_batchnorm", "checkpoint_every")


@dataclass
class StudyState:
    """Accumulated results of base samples ``[0, position)`` (or, for a shard, of ``position`` samples).

    Attributes
    ----------
    acc : dict of str to accumulator
        The method's accumulator per checkpoint (none for moments studies).
    moments : dict of str to MomentsAccumulator
        A moments pass per checkpoint, where the method's accumulator gives no pooled moments.
    position : int
        Base samples done (for a shard: held).
    elapsed : float
        Seconds of computation so far.
    precision : float
        The precision at the last round end (NaN before one, or without half-widths).
    stop_reason : str or None
        Why the run stopped at a round end (``None`` while running, or when stopped otherwise).
    history : list of dict
        One entry per start or resume of the run: the first base sample it computed and the settings
        of :data:`RESUMABLE_RUN_KEYS` it used (see :func:`run_segment`).
    """

    acc: dict[str, Accumulator]
    moments: dict[str, MomentsAccumulator]
    position: int = 0
    elapsed: float = 0.0
    precision: float = math.nan
    stop_reason: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def comparable_config(config_json: str) -> dict[str, Any]:
    """A config (JSON) without the ``[run]`` keys of :data:`RESUMABLE_RUN_KEYS`: batch size, device,
    layout, batch-norm folding and save interval change no number beyond rounding, so two runs whose
    comparable configs are equal are the same study."""
    cfg = json.loads(config_json)
    for key in RESUMABLE_RUN_KEYS:
        cfg.get("run", {}).pop(key, None)
    return cfg


def run_segment(position: int, run: dict[str, Any], device: str) -> dict[str, Any]:
    """A :attr:`StudyState.history` entry: a (re)start at base sample ``position`` with the ``[run]``
    settings ``run`` (the resolved ``device`` in place of ``"auto"``)."""
    seg: dict[str, Any] = {"from_sample": position}
    seg.update({k: run[k] for k in RESUMABLE_RUN_KEYS if k != "checkpoint_every"})
    seg["device"] = device
    return seg


def new_state(
    method: Method,
    checkpoints: list[str],
    dtype: torch.dtype,
    device: torch.device,
    *,
    work_dtype: torch.dtype | None = None,
) -> StudyState:
    """Empty accumulators for every checkpoint, at design position 0; ``work_dtype`` (default: the state
    dtype) is the accumulators' per-batch arithmetic dtype (``[run] state_dtype = "mixed"``)."""
    acc = {c: method.accumulator() for c in checkpoints} if method.sensitivity else {}
    if work_dtype is not None:
        for a in acc.values():
            if hasattr(a, "work_dtype"):  # the co-moment accumulators; Song-type Shapley keeps sums
                a.work_dtype = work_dtype
    # mean/var/cov come free from the Sobol and Shapley states (pooled_moments); a separate pass over
    # every row is kept only where the method's accumulator gives none (moments, Song-type Shapley)
    moments = (
        {}
        if method.sensitivity and method.pooled_moments
        else {c: MomentsAccumulator(dtype=dtype, work_dtype=work_dtype, device=device) for c in checkpoints}
    )
    return StudyState(acc, moments)


def export_state(state: StudyState, config_json: str) -> dict[str, Any]:
    """``state`` as plain tensors and numbers (versioned, with the config): for files and Ray transfers."""
    return {
        "version": STATE_VERSION,
        "config": config_json,
        "position": state.position,
        "elapsed": state.elapsed,
        "acc": {c: a.state_dict() for c, a in state.acc.items()},
        "moments": {c: m.state_dict() for c, m in state.moments.items()},
        "history": json.dumps(state.history),
    }


def import_state(
    blob: dict[str, Any], empty: StudyState, config_json: str, device: torch.device, *, source: str = "state"
) -> StudyState:
    """Inverse of :func:`export_state`, filling ``empty`` (from :func:`new_state`).

    Raises
    ------
    UserInputError
        The state has another format version, or was made under a different study config (the ``[run]``
        section, which a resumed run may change, aside).
    """
    if blob.get("version") != STATE_VERSION:
        raise UserInputError(
            f"{source}: state format {blob.get('version')!r} is not {STATE_VERSION} (saved by another "
            f"version of augsens): finish it with that version, or start over with {option('overwrite')}"
        )
    saved, now = comparable_config(blob["config"]), comparable_config(config_json)
    if saved != now:
        diff = [
            f"{s}.{k}: {_short(saved.get(s, {}).get(k))} -> {_short(now.get(s, {}).get(k))}"
            for s in sorted(set(saved) | set(now))
            for k in sorted(set(saved.get(s, {})) | set(now.get(s, {})))
            if saved.get(s, {}).get(k) != now.get(s, {}).get(k)
        ]
        raise UserInputError(
            f"cannot resume from {source}: the config changed since it was saved ({'; '.join(diff)}), "
            "and these settings change the results; restore them, or start over with "
            f"{option('overwrite')} (or another {option('out', '')}). On resume only "
            f"[run] {', '.join(RESUMABLE_RUN_KEYS)} may change"
        )
    state = empty
    state.position = int(blob["position"])
    state.elapsed = float(blob["elapsed"])
    state.history = json.loads(blob.get("history", "[]"))  # absent from states of earlier versions
    for c, acc in state.acc.items():
        if c in blob["acc"]:
            state.acc[c] = type(acc).from_state_dict(blob["acc"][c]).to(device)
    for c in state.moments:
        moments = MomentsAccumulator.from_state_dict(blob["moments"][c]).to(device)
        assert isinstance(moments, MomentsAccumulator)  # from_state_dict refuses other classes
        state.moments[c] = moments
    return state


def _short(value: Any) -> str:
    """A config value as a message shows it (JSON, cut to 60 characters)."""
    text = "(absent)" if value is None else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def merge_states(states: list[StudyState], into: StudyState) -> StudyState:
    """Merge shard states into ``into`` (from :func:`new_state`) in the given order (a fixed order makes
    the result independent of scheduling).  ``position`` becomes the number of base samples covered,
    ``elapsed`` the sum."""
    for st in states:
        for c, acc in into.acc.items():
            acc.merge(st.acc[c])
        for c, moments in into.moments.items():
            moments.merge(st.moments[c])
        into.position += st.position
        into.elapsed += st.elapsed
    return into

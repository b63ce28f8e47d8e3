"""The state of a study run: design position, time spent and accumulators per checkpoint.

A state is what a run saves every ``checkpoint_every`` seconds and on Ctrl-C, what a Ray shard returns
and what shards merge into.  On disk (and through Ray) it is a plain, versioned dict of tensors and
numbers together with the study config (:func:`export_state`), which :func:`import_state` checks on the
way back.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import torch

from augsens.core.estimate import MomentsAccumulator
from augsens.core.methods import Method
from augsens.errors import UserInputError

__all__ = [
    "StudyState",
    "STATE_VERSION",
    "STATE_KEYS",
    "new_state",
    "export_state",
    "import_state",
    "merge_states",
]

#: format of an exported state; a file of another version is refused
STATE_VERSION = 1
#: keys every exported state holds
STATE_KEYS = ("version", "config", "position", "elapsed", "acc", "moments")


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
    """

    acc: dict[str, Any]
    moments: dict[str, MomentsAccumulator]
    position: int = 0
    elapsed: float = 0.0
    precision: float = math.nan
    stop_reason: str | None = None


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
            "version of augsens): finish it with that version, or start over with --overwrite"
        )
    saved = json.loads(blob["config"])
    now = json.loads(config_json)
    # the run section (batch size, device, checkpoint interval) may change on resume; nothing else
    saved.pop("run", None)
    now.pop("run", None)
    if saved != now:
        diff = [f"{s}.{k}" for s in now for k in now[s] if saved.get(s, {}).get(k) != now[s][k]]
        raise UserInputError(
            f"cannot resume from {source}: the config changed since it was saved ({', '.join(diff)}); "
            "restore it, or start over with --overwrite (or another --out)"
        )
    state = empty
    state.position = int(blob["position"])
    state.elapsed = float(blob["elapsed"])
    for c, acc in state.acc.items():
        if c in blob["acc"]:
            state.acc[c] = type(acc).from_state_dict(blob["acc"][c]).to(device)
    for c in state.moments:
        moments = MomentsAccumulator.from_state_dict(blob["moments"][c]).to(device)
        assert isinstance(moments, MomentsAccumulator)  # from_state_dict refuses other classes
        state.moments[c] = moments
    return state


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

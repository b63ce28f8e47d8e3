"""The results tree of a study state: one node per checkpoint (indices, moments, aggregates) + provenance."""

from __future__ import annotations

import json
import math
import time
import warnings

import numpy as np
import torch
import xarray as xr

from augsens.core.precision import PRECISION_RULE, precision_of
from augsens.engine.aggregates import named_aggregates
from augsens.engine.parts import StudyParts
from augsens.engine.state import StudyState, run_segment
from augsens.schema import results_tree as results_tree_of
from augsens.schema import versions

__all__ = ["results_tree", "NoDataWarning", "warn_no_data"]


class NoDataWarning(UserWarning):
    """Checkpoints of a finished study had no finite activation: their maps support no conclusion."""


def warn_no_data(tree: xr.DataTree, stacklevel: int = 2) -> None:
    """Warn, naming them, when checkpoints of ``tree`` had no finite activation in any sample."""
    empty = json.loads(tree.attrs.get("no_data_checkpoints", "[]"))
    if not empty:
        return
    every = len(empty) == len(json.loads(tree.attrs["checkpoints"]))
    warnings.warn(
        f"{'every checkpoint' if every else 'checkpoints'} {', '.join(map(repr, empty))}: no finite "
        "activation in any sample (all NaN or inf), so their indices are NaN and say nothing. Check the "
        "model there (an overflow in a low-precision dtype, a division by zero, its input normalisation); "
        "the counts are in the results' 'nonfinite' attribute",
        NoDataWarning,
        stacklevel=stacklevel,
    )


def _node(study: StudyParts, state: StudyState, checkpoint: str) -> xr.Dataset:
    """A checkpoint's per-element indices and moments, and its per-checkpoint/channel/token aggregates."""
    factors = study.factors.factor_names
    shape = tuple(study.shapes[checkpoint])
    dims = study.layouts[checkpoint].dims
    acc = state.acc.get(checkpoint)
    if acc is None:  # a moments study
        ds = state.moments[checkpoint].finalize(factors, dims=dims)
        ds.attrs["no_data_elements"] = int((~np.isfinite(ds["mean"].values)).sum())
        return ds
    moments = state.moments[checkpoint] if checkpoint in state.moments else acc.pooled_moments()
    ds = moments.finalize(factors, dims=dims)
    # elements with no finite sample (their mean is NaN): left out of the aggregates, and counted
    no_data = ~np.isfinite(ds["mean"].values)
    # node attributes: the estimator's own provenance (methods, replicates, counts)
    indices = study.plan.method.finalize(acc, factors, dims=dims)
    ds = xr.merge([indices, ds], compat="override", combine_attrs="override")
    leave_out = torch.from_numpy(no_data) if no_data.any() else None
    aggregates = named_aggregates(acc, factors, dims, shape, study.device, leave_out=leave_out)
    ds = xr.merge([ds, aggregates], combine_attrs="override")
    ds.attrs["no_data_elements"] = int(no_data.sum())
    return ds


def results_tree(study: StudyParts, state: StudyState) -> xr.DataTree:
    """The results tree of a (complete or partial) state: one node per checkpoint + provenance."""
    nodes = {c: _node(study, state, c) for c in study.checkpoints}
    nonfinite = {c: int(ds.attrs.get("nonfinite_total", 0)) for c, ds in nodes.items()}
    # checkpoints where no element had a single finite sample: their maps hold no information
    no_data = [c for c, ds in nodes.items() if ds.attrs["no_data_elements"] == math.prod(study.shapes[c])]
    sc, budget = study.config.study, study.plan.budget
    n, rows = study.plan.n, study.plan.rows
    forwards = state.position * rows
    reason = state.stop_reason or (
        ("max_n reached" if budget.precision else "n reached") if state.position >= n else "stopped"
    )
    factors = study.factors.factor_names
    root = {
        "augsens_results": 1,
        "kind": sc.kind,
        "mode": sc.mode,
        "model": study.model.name,
        "checkpoints": json.dumps(study.checkpoints),
        "depth": json.dumps({c: study.layouts[c].depth for c in study.checkpoints}),
        "factors": json.dumps(factors),
        "parameters": json.dumps(study.factors.describe()),
        "augmentations": json.dumps(list(study.factors.augmentations)),
        # each augmentation as run: source, parameters with their ranges or distributions, code hash
        "augmentation_specs": json.dumps([a.describe() for a in study.factors.specs]),
        "config": study.config.to_json(),
        "versions": json.dumps(versions()),
        "seed": sc.seed,
        # the budget as it was set; a Song-type design's size is its blocks, not the budget's n
        "n": budget.n if budget.precision else n,
        "base_samples_done": state.position,
        "rows_per_sample": rows,
        "forwards": forwards,
        "elapsed_s": round(state.elapsed, 3),
        "forwards_per_s": round(forwards / max(state.elapsed, 1e-9), 2),
        "device": str(study.device),
        # one entry per start or resume: the first base sample and the batch size, device and
        # layout used from there (the settings a resume may change)
        "run_history": json.dumps(
            state.history or [run_segment(0, study.config.to_dict()["run"], str(study.device))]
        ),
        "images": len(study.images),
        # skipped folders (links into loops, results folders) end in "/" and are no images
        "skipped_images": sum(not s[0].endswith("/") for s in getattr(study.images, "skipped", [])),
        "skipped_files": json.dumps([s[0] for s in getattr(study.images, "skipped", [])]),
        "nonfinite": json.dumps(nonfinite),
        "no_data_checkpoints": json.dumps(no_data),
        # the precision reached (NaN without replicate intervals), its rule and why the run stopped
        "precision": precision_of(nodes.values()),
        "precision_target": budget.precision,
        "precision_rule": PRECISION_RULE,
        "stop_reason": reason,
        "max_n": n,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return results_tree_of(root, nodes)  # the schema's layout: root attributes, checkpoints in order

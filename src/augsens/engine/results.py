"""The results tree of a study state: one node per checkpoint (indices, moments, aggregates) + provenance."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import xarray as xr

from augsens.core.precision import PRECISION_RULE, precision_of
from augsens.engine.aggregates import named_aggregates
from augsens.engine.state import StudyState
from augsens.results import versions

if TYPE_CHECKING:
    from augsens.engine.study import Study

__all__ = ["results_tree"]


def _node(study: Study, state: StudyState, checkpoint: str) -> xr.Dataset:
    """A checkpoint's per-element indices and moments, and its per-checkpoint/channel/token aggregates."""
    factors = study.factors.factor_names
    shape = tuple(study.shapes[checkpoint])
    dims = study.layouts[checkpoint].dims
    acc = state.acc.get(checkpoint)
    if acc is None:  # a moments study
        return state.moments[checkpoint].finalize(factors, dims=dims)
    moments = state.moments[checkpoint] if checkpoint in state.moments else acc.pooled_moments()
    ds = moments.finalize(factors, dims=dims)
    # node attributes: the estimator's own provenance (methods, replicates, counts)
    indices = study.plan.method.finalize(acc, factors, dims=dims)
    ds = xr.merge([indices, ds], compat="override", combine_attrs="override")
    aggregates = named_aggregates(acc, factors, dims, shape, study.device)
    return xr.merge([ds, aggregates], combine_attrs="override")


def results_tree(study: Study, state: StudyState) -> xr.DataTree:
    """The results tree of a (complete or partial) state: one node per checkpoint + provenance."""
    nodes = {c: _node(study, state, c) for c in study.checkpoints}
    nonfinite = {c: int(ds.attrs.get("nonfinite_total", 0)) for c, ds in nodes.items()}
    sc = study.config.study
    n, rows = study.plan.n, study.plan.rows
    forwards = state.position * rows
    reason = state.stop_reason or (
        ("max_n reached" if sc.precision else "n reached") if state.position >= n else "stopped"
    )
    factors = study.factors.factor_names
    root = xr.Dataset(
        attrs={
            "augsens_results": 1,
            "kind": sc.kind,
            "mode": sc.mode,
            "model": study.model.name,
            "checkpoints": json.dumps(study.checkpoints),
            "depth": json.dumps({c: study.layouts[c].depth for c in study.checkpoints}),
            "factors": json.dumps(factors),
            "parameters": json.dumps(study.factors.describe()),
            "augmentations": json.dumps(list(study.factors.augmentations)),
            "config": study.config.to_json(),
            "versions": json.dumps(versions()),
            "seed": sc.seed,
            "n": sc.n if sc.precision else n,
            "base_samples_done": state.position,
            "rows_per_sample": rows,
            "forwards": forwards,
            "elapsed_s": round(state.elapsed, 3),
            "forwards_per_s": round(forwards / max(state.elapsed, 1e-9), 2),
            "device": str(study.device),
            "images": len(study.images),
            # skipped folders (links into loops, results folders) end in "/" and are no images
            "skipped_images": sum(not s[0].endswith("/") for s in getattr(study.images, "skipped", [])),
            "skipped_files": json.dumps([s[0] for s in getattr(study.images, "skipped", [])]),
            "nonfinite": json.dumps(nonfinite),
            # the precision reached (NaN without replicate intervals), its rule and why the run stopped
            "precision": precision_of(nodes.values()),
            "precision_target": sc.precision,
            "precision_rule": PRECISION_RULE,
            "stop_reason": reason,
            "max_n": n,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    return xr.DataTree.from_dict({"/": root, **nodes})

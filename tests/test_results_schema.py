"""The results schema: root attributes decoded once into typed fields, checkpoints in model order."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from augsens.errors import UserInputError
from augsens.results import open_results, write_results
from augsens.schema import JSON_ATTRS, Results, ResultsInfo, read_results


def _tree() -> xr.DataTree:
    attrs = {
        "kind": "sobol",
        "model": "tiny",
        "checkpoints": json.dumps(["z_first", "a_last"]),  # model order is not the alphabetical one
        "depth": json.dumps({"z_first": 0.25, "a_last": 1.0}),
        "factors": json.dumps(["hue", "image"]),
        "augmentations": json.dumps(["hue"]),
        "config": json.dumps({"study": {"n": 8}}),
        "run_history": json.dumps([{"from_sample": 0, "batch_size": 4}]),
        "nonfinite": json.dumps({"z_first": 0, "a_last": 3}),
        "n": 8,
        "stop_reason": "n reached",
    }
    node = xr.Dataset({"ST": (("factor", "unit"), np.ones((2, 3)))}, coords={"factor": ["hue", "image"]})
    return xr.DataTree.from_dict({"/": xr.Dataset(attrs=attrs), "a_last": node, "z_first": node})


def test_attributes_are_decoded_into_typed_fields():
    info = ResultsInfo.from_attrs(_tree().attrs)
    assert info.kind == "sobol" and info.model == "tiny"
    assert info.checkpoints == ("z_first", "a_last") and info.depth == {"z_first": 0.25, "a_last": 1.0}
    assert info.factors == ("hue", "image") and info.augmentations == ("hue",)
    assert info.config == {"study": {"n": 8}} and info.run_history == ({"from_sample": 0, "batch_size": 4},)
    assert info.nonfinite == {"z_first": 0, "a_last": 3}
    assert info.get("n") == 8 and info.get("checkpoints") == ["z_first", "a_last"]
    assert info.get("missing", "default") == "default"


def test_attributes_round_trip_and_json_fields_stay_text():
    attrs = _tree().attrs
    info = ResultsInfo.from_attrs(attrs)
    written = info.to_attrs()
    assert ResultsInfo.from_attrs(written) == info
    for key in JSON_ATTRS:
        if key in written:
            assert isinstance(written[key], str), key
    assert written["n"] == 8 and written["stop_reason"] == "n reached"


def test_missing_attributes_take_empty_defaults():
    info = ResultsInfo.from_attrs({})
    assert info.kind == "" and info.checkpoints == () and info.config == {} and info.versions == {}


def test_results_read_checkpoints_in_model_order(tmp_path):
    write_results(_tree(), tmp_path / "run")
    assert list(open_results(tmp_path / "run").children) == ["z_first", "a_last"]
    res = read_results(tmp_path / "run")
    assert isinstance(res, Results) and res.name == "run"
    assert res.checkpoints == ("z_first", "a_last") and res.measures() == ["ST"]
    assert [c for c, _ in res.nodes()] == ["z_first", "a_last"]
    assert res.depths() == {"z_first": 0.25, "a_last": 1.0}
    assert res.node("a_last")["ST"].shape == (2, 3)
    with pytest.raises(UserInputError, match=r"'nope'.*\['z_first', 'a_last'\]"):
        res.node("nope")


def test_unrecorded_depths_are_evenly_spaced_and_unlisted_nodes_come_last():
    tree = _tree()
    tree.attrs = {"checkpoints": json.dumps(["a_last"])}
    res = Results.of(tree)
    assert res.checkpoints == ("a_last", "z_first")
    assert res.depths() == {"a_last": 0.5, "z_first": 1.0}

"""Results are written atomically: a failure while writing leaves the previous results whole."""

import pytest
import xarray as xr

from augsens.results import RESULTS_NAME, open_results, write_results


def _tree(value: float) -> xr.DataTree:
    root = xr.Dataset(attrs={"checkpoints": '["a"]', "value": value})
    return xr.DataTree.from_dict({"/": root, "a": xr.Dataset({"S1": ("unit", [value, value])})})


def test_a_failed_write_keeps_the_previous_results(tmp_path, monkeypatch):
    write_results(_tree(1.0), tmp_path)
    original = xr.DataTree.to_zarr

    def dies_half_way(self, store, **kwargs):
        original(self, store, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(xr.DataTree, "to_zarr", dies_half_way)
    with pytest.raises(OSError, match="disk full"):
        write_results(_tree(2.0), tmp_path)
    monkeypatch.undo()
    assert open_results(tmp_path).attrs["value"] == 1.0
    write_results(_tree(3.0), tmp_path)  # the leftover temporary folder is cleared
    assert open_results(tmp_path).attrs["value"] == 3.0
    assert sorted(p.name for p in tmp_path.iterdir()) == [RESULTS_NAME]

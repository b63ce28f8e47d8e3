"""Results on disk: an ``xarray.DataTree`` in Zarr, one node per checkpoint, with provenance.

A results folder ``DIR`` holds ``DIR/results.zarr``; :func:`open_results` reads it back with the
checkpoint nodes in model order (Zarr lists groups alphabetically).  Root attributes carry the study
config (JSON), package versions, seed, n, rows done, timings, and counts of skipped images and
non-finite values.  Only final maps are written: nothing here ever sees an activation.

The layout and the attributes are defined in one place, :mod:`augsens.schema` (its typed reader
:class:`~augsens.schema.Results` decodes the attributes once); this module is the public face of it and
registers the ``.augsens`` summary accessor (:mod:`augsens.display`) on what it opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import xarray as xr

import augsens.display  # noqa: F401  (registers the .augsens summary accessor on results)
from augsens.schema import (
    RESULTS_NAME,
    Results,
    ResultsInfo,
    find_results,
    is_results_dir,
    json_attr,
    open_tree,
    output_dims,
    read_results,
    results_folder,
    unfinished_run,
    versions,
    write_results,
)

__all__ = [
    "json_attr",
    "open_results",
    "write_results",
    "output_dims",
    "versions",
    "RESULTS_NAME",
    "is_results_dir",
    "find_results",
    "unfinished_run",
    "results_folder",
    "read_results",
    "Results",
    "ResultsInfo",
]


def open_results(directory: str | Path, *, verify: Literal["quick", "full", "none"] = "quick") -> xr.DataTree:
    """Open a results folder as a ``DataTree`` (checkpoint nodes in model order).

    Parameters
    ----------
    directory : path
        The results folder (the ``out`` of a run); its ``results.zarr`` itself is understood too.
    verify : {"quick", "full", "none"}, default "quick"
        Compare the store with the manifest written beside its data (:mod:`augsens.manifest`):
        ``"quick"`` checks that every node, variable and file is there with its size (a ``stat`` per
        file); ``"full"`` also reads every file and checks its checksum; ``"none"`` skips both.

    Raises
    ------
    MissingFileError
        ``directory`` holds no ``results.zarr`` (the message names a saved state to resume, or lists
        results sub-folders if any).
    DamagedResultsError
        The store differs from its manifest: the message names the nodes, variables and files.
    UserInputError
        ``results.zarr`` is incomplete (no ``.zmetadata``: its writing never finished) or unreadable.

    See Also
    --------
    augsens.schema.read_results : the same folder as a typed :class:`~augsens.schema.Results`.
    """
    return open_tree(directory, verify=verify)

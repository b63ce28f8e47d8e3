"""Indices aggregated over named groups of a checkpoint's elements: the whole checkpoint, each channel,
each token (of a transformer on images), each time step (of a network on 1-D signals).

An aggregated index is the sum of the elements' index numerators over the sum of their variances
(Gamboa et al. 2014, arXiv:1311.1797): the share of the group's whole activation variance owed to a factor.
Confidence half-widths come from the aggregated per-replicate estimates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr

__all__ = ["named_aggregates", "AGGREGATE_DIMS"]

#: element dims that get per-group aggregates, and the suffix of their variables (``ST_channel``)
AGGREGATE_DIMS = ("channel", "token", "time")


def named_aggregates(
    acc: Any,
    factors: Sequence[str],
    dims: Sequence[str],
    shape: Sequence[int],
    device: torch.device,
    leave_out: torch.Tensor | None = None,
) -> xr.Dataset:
    """``<measure>_checkpoint`` (dims ``factor``) and, where the output has such a dim beside others,
    ``<measure>_channel``, ``<measure>_token`` and ``<measure>_time`` (dims ``factor, channel`` /
    ``factor, token`` / ``factor, time``).

    Parameters
    ----------
    acc : accumulator
        A Sobol or Shapley accumulator with ``aggregate(group_ids, n_groups)``.
    factors : sequence of str
        Factor names.
    dims, shape : sequence
        The checkpoint's per-sample dim names and sizes (:func:`augsens.results.output_dims`).
    device : torch.device
        Where the accumulator lives.
    leave_out : BoolTensor ``[*shape]``, optional
        Elements to leave out of every group: those with no finite sample, whose NaN would otherwise
        make the whole group's index NaN.  A group with no element left is NaN (no data).
    """
    shape = tuple(int(s) for s in shape)
    skip = None if leave_out is None else leave_out.to(device=device, dtype=torch.bool).reshape(shape)

    def ids_of(ids: torch.Tensor) -> torch.Tensor:
        return ids if skip is None else torch.where(skip, -1, ids)  # negative ids are left out

    # factor names go in here, so that every factor dim (factor2 of S2 too) is labelled in design order
    whole = acc.aggregate(
        ids_of(torch.zeros(shape, dtype=torch.int64, device=device)), 1, factors=list(factors)
    )
    out = {f"{k}_checkpoint": v.isel(group=0, drop=True) for k, v in whole.data_vars.items()}
    for name in AGGREGATE_DIMS:
        if name not in dims or math.prod(shape) == shape[list(dims).index(name)]:
            continue  # a vector of channels (or tokens) alone: its per-element indices are the aggregate
        axis = list(dims).index(name)
        view = [1] * len(shape)
        view[axis] = shape[axis]
        ids = torch.arange(shape[axis], device=device).view(view).expand(shape).contiguous()
        per = acc.aggregate(ids_of(ids), shape[axis], factors=list(factors))
        out.update({f"{k}_{name}": v.rename(group=name) for k, v in per.data_vars.items()})
    ds = xr.Dataset(out)
    if "factor" in ds.dims:
        ds = ds.assign_coords(factor=np.asarray(factors))
    return ds

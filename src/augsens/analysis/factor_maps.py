"""Sensitivity maps as the analyses read them: one factor dim, then the observations, then positions.

A results tree stores a study's maps with dims ``("factor", "channel", "y", "x")`` for a convolutional
checkpoint and ``("factor", "unit")`` for a fully connected one; a contrast study's maps have an
``"augmentation"`` dim in place of ``"factor"``.  :func:`as_factor_maps` puts any of these in the one
layout the correlation, LDA and segment analyses compute on.
"""

from __future__ import annotations

import xarray as xr

from augsens.errors import UserInputError

__all__ = ["FACTOR_DIMS", "SAMPLE_DIMS", "as_factor_maps"]

#: Names a map's factor dim may have: ``factor`` (Sobol, Shapley) or ``augmentation`` (contrast).
FACTOR_DIMS = ("factor", "augmentation")
#: Names of the observation dim: ``channel`` (convolutional checkpoint) or ``unit`` (fully connected).
SAMPLE_DIMS = ("channel", "unit")


def _factor_dim(da: xr.DataArray) -> str:
    for d in FACTOR_DIMS:
        if d in da.dims:
            return d
    raise UserInputError(
        f"maps {da.name!r} have dims {da.dims!r}, without a factor dim: expected one of {FACTOR_DIMS!r} "
        "(results of a Sobol, Shapley or contrast study)"
    )


def _sample_dim(da: xr.DataArray) -> str:
    for d in SAMPLE_DIMS:
        if d in da.dims:
            return d
    raise UserInputError(
        f"maps {da.name!r} have dims {da.dims!r}; need a 'channel' or 'unit' dim (the observations): pass "
        "sensitivity maps of a network checkpoint from an augsens results tree"
    )


def as_factor_maps(da: xr.DataArray) -> xr.DataArray:
    """The maps with their factor dim named ``factor`` and dims ordered (factor, channel/unit, positions...).

    Parameters
    ----------
    da : xarray.DataArray
        Maps with a factor dim (one of :data:`FACTOR_DIMS`) and an observation dim (one of
        :data:`SAMPLE_DIMS`), e.g. ``S1`` of a checkpoint, dims ``("factor", "channel", "y", "x")``.

    Returns
    -------
    xarray.DataArray
        The same values, dims ``("factor", "channel" or "unit", ...)``.

    Raises
    ------
    ValueError
        No factor dim or no observation dim (the message names the dims found).

    Examples
    --------
    >>> import numpy as np
    >>> da = xr.DataArray(np.zeros((2, 3, 4)), dims=("channel", "y", "augmentation"))
    >>> as_factor_maps(da).dims
    ('factor', 'channel', 'y')
    """
    fdim = _factor_dim(da)
    if fdim != "factor":
        da = da.rename({fdim: "factor"})
    return da.transpose("factor", _sample_dim(da), ...)

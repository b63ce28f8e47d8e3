"""Any augsens result as one tidy long pandas table: one row per value, one column per coordinate.

:func:`to_dataframe` reads what :func:`augsens.sobol`, :func:`augsens.shapley` and :func:`augsens.moments`
return (an ``xarray.Dataset``), a study's results tree (:func:`augsens.study`, :func:`augsens.open_results`,
or the path of a results folder) and a single ``DataArray``.  Each variable becomes rows with its
``measure`` (``S1``, ``ST``, ``shapley``, ``mean``...), its ``level`` (``"element"``, or the aggregate:
``"checkpoint"``, ``"channel"``, ``"token"``), its coordinates (``factor``, ``factor2``, ``channel``,
``y``, ``x``, ``dim_0``...), the ``value`` and, where the result has one, the 95 % half-width ``conf``.
Such a table goes straight into ``groupby``, seaborn or a CSV file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import pandas as pd
import xarray as xr

from augsens.schema import open_tree

__all__ = ["to_dataframe", "AGGREGATE_LEVELS"]

#: Suffixes of the aggregated variables of a study (``ST_checkpoint``, ``S1_channel``...).
AGGREGATE_LEVELS = ("checkpoint", "channel", "token")

_FIRST = ["checkpoint", "measure", "level", "factor", "factor2"]


def _split(name: str) -> tuple[str, str]:
    """``"S1_conf_checkpoint"`` -> ``("S1_conf", "checkpoint")``; ``"ST"`` -> ``("ST", "element")``."""
    for level in AGGREGATE_LEVELS:
        if name.endswith(f"_{level}"):
            return name.removesuffix(f"_{level}"), level
    return name, "element"


def _frame(da: xr.DataArray, column: str) -> pd.DataFrame:
    if da.ndim == 0:
        return pd.DataFrame({column: [da.item()]})
    return da.drop_vars([c for c in da.coords if c not in da.dims]).to_dataframe(name=column).reset_index()


def _dataset_rows(ds: xr.Dataset, measures: set[str] | None) -> list[pd.DataFrame]:
    frames = []
    for name in ds.data_vars:
        base, level = _split(str(name))
        if base.endswith("_conf") or (measures is not None and base not in measures):
            continue
        df = _frame(ds[name], "value")
        conf = f"{base}_conf" + ("" if level == "element" else f"_{level}")
        if conf in ds.data_vars and ds[conf].dims == ds[name].dims:
            df["conf"] = _frame(ds[conf], "conf")["conf"].to_numpy()
        df.insert(0, "level", level)
        df.insert(0, "measure", base)
        frames.append(df)
    return frames


def to_dataframe(
    result: Any, *, measures: Iterable[str] | None = None, checkpoints: Iterable[str] | None = None
) -> pd.DataFrame:
    """A result as a tidy long table.

    Parameters
    ----------
    result : xarray.Dataset, xarray.DataArray, xarray.DataTree, str or path
        What :func:`augsens.sobol` / :func:`augsens.shapley` / :func:`augsens.moments` return, a study's
        results tree, or a results folder (opened with :func:`augsens.open_results`).
    measures : iterable of str, optional
        Keep only these measures (``"S1"``, ``"ST"``, ``"shapley"``, ``"mean"``...). Default: all.
    checkpoints : iterable of str, optional
        Keep only these checkpoints of a study. Default: all.

    Returns
    -------
    pandas.DataFrame
        Columns ``checkpoint`` (studies only), ``measure``, ``level``, then the coordinates the result
        has (``factor``, ``factor2``, ``channel``, ``y``, ``x``, ``dim_0``...), ``value`` and ``conf`` (NaN
        where a measure has no half-width).  Rows of variables without a coordinate have NaN there.

    Raises
    ------
    TypeError
        ``result`` is none of the above.

    Examples
    --------
    >>> import torch, augsens as ag
    >>> problem = ag.Problem([ag.Uniform("a", 0, 1), ag.Uniform("b", 0, 1)])
    >>> ds = ag.sobol(lambda x: x[:, 0] + 2 * x[:, 1], problem, n=1024)
    >>> table = to_dataframe(ds, measures=["S1", "ST"])  # analytic: 1/5 and 4/5
    >>> print(table[["measure", "factor", "value"]].round(2).to_string(index=False))
    measure factor  value
         S1      a    0.2
         S1      b    0.8
         ST      a    0.2
         ST      b    0.8
    >>> list(table.columns)
    ['measure', 'level', 'factor', 'value', 'conf']
    """
    keep = None if measures is None else set(measures)
    if isinstance(result, str | os.PathLike):
        result = open_tree(os.fspath(result))
    if isinstance(result, xr.DataArray):
        result = result.to_dataset(name=str(result.name or "value"))
    if isinstance(result, xr.Dataset):
        frames = _dataset_rows(result, keep)
    elif isinstance(result, xr.DataTree):
        wanted = None if checkpoints is None else set(checkpoints)
        frames = []
        for node in result.subtree:
            name = node.path.strip("/")
            if not name or not node.has_data or (wanted is not None and name not in wanted):
                continue
            for df in _dataset_rows(node.to_dataset(inherit=False), keep):
                df.insert(0, "checkpoint", name)
                frames.append(df)
    else:
        raise TypeError(
            "to_dataframe reads an xarray Dataset / DataArray (ag.sobol, ag.shapley, ag.moments), a results "
            f"tree (ag.study, ag.open_results) or a results folder, got {type(result).__name__}"
        )
    if not frames:
        return pd.DataFrame(columns=["measure", "level", "value", "conf"])
    table = pd.concat(frames, ignore_index=True, sort=False)
    if "conf" not in table:
        table["conf"] = float("nan")
    first = [c for c in _FIRST if c in table]
    middle = [c for c in table.columns if c not in first and c not in ("value", "conf")]
    for column in middle:  # positions and channels stay integers where other variables lack them (NaN)
        values = table[column]
        if values.dtype.kind == "f" and values.isna().any() and (values.dropna() % 1 == 0).all():
            table[column] = values.astype("Int64")
    return table[[*first, *middle, "value", "conf"]]

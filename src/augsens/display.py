"""Results in a Jupyter notebook: a readable summary, and the explorer inline.

* :func:`summary` — what a result says at a glance: for :func:`augsens.sobol` / :func:`augsens.shapley` /
  :func:`augsens.moments` a table of the indices per factor (the mean over outputs when ``f`` has several,
  with the 95 % half-widths), for a study's results tree the whole-checkpoint index of every factor at
  every checkpoint in model order, each under the run's provenance (size, method, precision, stop reason).
  It shows as an HTML table in Jupyter (``_repr_html_``) and as text elsewhere.
* The ``.augsens`` accessor on every ``xarray.Dataset`` and ``DataTree``: ``ds.augsens`` displays that
  summary, ``ds.augsens.to_dataframe()`` is :func:`augsens.to_dataframe`.
* :func:`show` — displays a result in the notebook: a results tree or folder as the interactive explorer
  (the page ``augsens report`` writes, inline), a Dataset as its summary, a matplotlib figure as a PNG.
"""

from __future__ import annotations

import html
import os
from typing import Any

import numpy as np
import xarray as xr

from augsens.schema import Results, open_tree

__all__ = ["Summary", "summary", "show"]

#: Measures summarised, in order of preference (the first present is a study's headline measure).
_MEASURES = ("shapley", "ST", "S1", "rank_biserial", "mean", "var")


class Summary:
    """A titled table of a result, shown as HTML in Jupyter and as text elsewhere.

    Attributes
    ----------
    title : str
    facts : list of (str, str)
        Provenance lines (name, value).
    columns : list of str
    rows : list of list of str
        Formatted cells, one list per row (the first cell is the row's label).
    """

    def __init__(
        self, title: str, facts: list[tuple[str, str]], columns: list[str], rows: list[list[str]]
    ) -> None:
        self.title, self.facts, self.columns, self.rows = title, facts, columns, rows

    def __repr__(self) -> str:
        widths = [max(len(r[i]) for r in [self.columns, *self.rows]) for i in range(len(self.columns))]
        lines = [self.title, *(f"  {k}: {v}" for k, v in self.facts)]
        for row in [self.columns, *self.rows]:
            lines.append("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        facts = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in self.facts)
        head = "".join(f"<th>{esc(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in self.rows)
        return (
            f'<div class="augsens-summary"><p><b>{esc(self.title)}</b></p><ul>{facts}</ul>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
        )


def _fmt(value: float, conf: float | None = None) -> str:
    if not np.isfinite(value):
        return "–"
    text = f"{value:.3f}"
    return text if conf is None or not np.isfinite(conf) else f"{text} ± {conf:.3f}"


def _mean(da: xr.DataArray, keep: str) -> xr.DataArray:
    return da.mean([d for d in da.dims if d != keep]) if da.ndim > 1 else da


def _facts(attrs: dict[str, Any], keys: tuple[str, ...]) -> list[tuple[str, str]]:
    def text(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    return [(k, text(attrs[k])) for k in keys if k in attrs and text(attrs[k]) not in ("", "0")]


def _dataset_summary(ds: xr.Dataset) -> Summary:
    facts = _facts(
        {str(k): v for k, v in ds.attrs.items()},
        ("n", "replicates", "first_order_method", "total_order_method", "precision", "stop_reason"),
    )
    measures = [m for m in ("S1", "ST", "shapley") if m in ds.data_vars and "factor" in ds[m].dims]
    if measures:
        outputs = int(np.prod([ds.sizes[d] for d in ds[measures[0]].dims if d != "factor"]))
        title = "sensitivity indices" + (f" (mean over {outputs:,} outputs)" if outputs > 1 else "")
        rows = []
        for i, factor in enumerate(ds["factor"].values):
            row = [str(factor)]
            for m in measures:
                value = float(_mean(ds[m], "factor")[i])
                conf = float(_mean(ds[f"{m}_conf"], "factor")[i]) if f"{m}_conf" in ds else None
                row.append(_fmt(value, conf))
            rows.append(row)
        return Summary(title, facts, ["factor", *measures], rows)
    moments = [m for m in ("mean", "var", "cov") if m in ds.data_vars]
    rows = [
        [m, _fmt(float(ds[m].min())), _fmt(float(ds[m].mean())), _fmt(float(ds[m].max()))] for m in moments
    ]
    return Summary("moments over the outputs", facts, ["measure", "min", "mean", "max"], rows)


def _tree_summary(tree: xr.DataTree) -> Summary:
    results = Results.of(tree)
    facts = _facts(
        dict(results.info.attrs),
        ("kind", "model", "mode", "n", "base_samples_done", "forwards", "elapsed_s", "device", "precision",
         "stop_reason"),
    )  # fmt: skip
    order = list(results.checkpoints)
    depth = results.info.depth
    nodes = [results.node(c) for c in order]
    found = [m for m in _MEASURES if nodes and f"{m}_checkpoint" in nodes[0].data_vars]
    if not found:  # no whole-checkpoint aggregate: one line per checkpoint
        rows = [[c, f"{depth.get(c, float('nan')):.2f}", ", ".join(map(str, n.data_vars))] for c, n in
                zip(order, nodes, strict=False)]  # fmt: skip
        return Summary(
            f"augsens results: {len(nodes)} checkpoints", facts, ["checkpoint", "depth", "variables"], rows
        )
    measure = found[0]
    factors = [str(f) for f in nodes[0][f"{measure}_checkpoint"]["factor"].values]
    rows = []
    for c, node in zip(order, nodes, strict=False):
        values = node[f"{measure}_checkpoint"]
        conf = node.get(f"{measure}_conf_checkpoint")
        cells = [
            _fmt(float(values.sel(factor=f)), None if conf is None else float(conf.sel(factor=f)))
            for f in factors
        ]
        rows.append([c, f"{depth.get(c, float('nan')):.2f}", *cells])
    title = f"augsens results: {measure} of each whole checkpoint (± 95 % half-width)"
    return Summary(title, facts, ["checkpoint", "depth", *factors], rows)


def summary(result: Any) -> Summary:
    """A readable summary of a result (see the module docstring).

    Parameters
    ----------
    result : xarray.Dataset, xarray.DataTree, str or path
        What :func:`augsens.sobol` / :func:`augsens.shapley` / :func:`augsens.moments` return, a
        study's results tree, or a results folder.

    Returns
    -------
    Summary
        Displays as an HTML table in Jupyter; ``print`` gives the text form.

    Examples
    --------
    >>> import augsens as ag
    >>> problem = ag.Problem([ag.Uniform("a", 0, 1), ag.Uniform("b", 0, 1)])
    >>> print(summary(ag.sobol(lambda x: x[:, 0] + 2 * x[:, 1], problem, n=1024)))  # doctest: +ELLIPSIS
    sensitivity indices
      n: 1024
      replicates: 4
      ...
      factor             S1             ST
           a  0.201 ± 0.002  0.200 ± 0.001
           b  0.799 ± 0.004  0.798 ± 0.002
    """
    if isinstance(result, str | os.PathLike):
        result = open_tree(os.fspath(result))
    if isinstance(result, xr.DataTree):
        return _tree_summary(result)
    if isinstance(result, xr.Dataset):
        return _dataset_summary(result)
    raise TypeError(
        f"summary reads a Dataset (ag.sobol, ag.shapley, ag.moments), a results tree or folder, got "
        f"{type(result).__name__}"
    )


class _Inline:
    """An HTML page shown in a sandboxed frame of the notebook (the explorer is a whole document)."""

    def __init__(self, page: str, height: int) -> None:
        self.page, self.height = page, height

    def _repr_html_(self) -> str:
        return (
            f'<iframe srcdoc="{html.escape(self.page, quote=True)}" style="width:100%;height:{self.height}px;'
            'border:1px solid #ddd" sandbox="allow-scripts"></iframe>'
        )


class _Png:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def _repr_png_(self) -> bytes:
        return self.data


def show(result: Any, *, height: int = 720) -> Any:
    """Show a result in the notebook and return the displayed object.

    Parameters
    ----------
    result : DataTree, str, path, sequence of them, Dataset or matplotlib Figure
        A results tree or folder (or several, side by side) is shown as the interactive explorer; a
        Dataset as its :func:`summary`; a figure as a PNG.
    height : int, default 720
        Height in pixels of the explorer's frame.

    Returns
    -------
    object
        What was displayed (it has ``_repr_html_`` or ``_repr_png_``); outside IPython nothing is shown and
        the object is only returned.
    """
    shown: Any
    if isinstance(result, xr.Dataset):
        shown = summary(result)
    elif hasattr(result, "savefig"):
        from augsens.plot.figures import png_bytes

        shown = _Png(png_bytes(result, dpi=100))
    else:
        from augsens.plot.explorer import explorer_html

        items = result if isinstance(result, list | tuple) else [result]
        trees = []
        for i, item in enumerate(items):
            if isinstance(item, str | os.PathLike):
                trees.append((os.fspath(item), open_tree(os.fspath(item))))
            elif isinstance(item, xr.DataTree):
                trees.append((str(item.attrs.get("model", f"study {i + 1}")), item))
            else:
                raise TypeError(
                    f"show takes results trees or folders, a Dataset or a figure, got {type(item).__name__}"
                )
        shown = _Inline(explorer_html(trees), height)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return shown
    if get_ipython() is not None:
        display(shown)
    return shown


@xr.register_dataset_accessor("augsens")
class _DatasetAccessor:
    """``ds.augsens``: the summary of an :func:`augsens.sobol` / ``shapley`` / ``moments`` result."""

    def __init__(self, ds: xr.Dataset | xr.DataTree) -> None:
        self._obj = ds

    def summary(self) -> Summary:
        return summary(self._obj)

    def to_dataframe(self, **kwargs: Any) -> Any:
        from augsens.tables import to_dataframe

        return to_dataframe(self._obj, **kwargs)

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def __repr__(self) -> str:
        return repr(self.summary())


@xr.register_datatree_accessor("augsens")
class _TreeAccessor(_DatasetAccessor):  # the same methods: summary and to_dataframe read trees too
    """``tree.augsens``: the summary of a study's results tree."""

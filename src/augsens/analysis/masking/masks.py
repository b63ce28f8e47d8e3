"""Mask algebra: sensitivity maps turned into multipliers of a checkpoint's output.

A :class:`MaskConfig` says how one map ``S`` (clipped to [0, 1]) becomes a multiplier: by ``alpha`` at or
above a quantile of the map, or softly by ``S`` or ``1 - S``.  :func:`mask_configs` gives the paper's 17;
:class:`MaskSet` stacks every (measure, factor, configuration) row for several checkpoints, with
thresholds computed once per map.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import torch
import xarray as xr

from augsens.errors import UnknownNameError, UserInputError, unknown_name_message

__all__ = [
    "MEASURES",
    "QUANTILES",
    "ALPHAS",
    "MaskConfig",
    "MaskRow",
    "mask_configs",
    "mask_multiplier",
    "MaskSet",
]

#: Sensitivity measures a mask can come from (variables of the results tree).
MEASURES: tuple[str, ...] = ("S1", "ST", "shapley")
#: The paper's quantile levels.
QUANTILES: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
#: The paper's multipliers for the activations at or above the quantile.
ALPHAS: tuple[float, ...] = (0.0, 0.5, 1.5)

_CONV_DIMS = ("factor", "channel", "y", "x")


@dataclass(frozen=True)
class MaskConfig:
    """One way of turning a sensitivity map ``S`` (values in [0, 1]) into a multiplier.

    Parameters
    ----------
    kind : {"quantile", "soft"}
        ``"quantile"``: multiply by ``alpha`` where ``S >= quantile(S, q)``, by 1 elsewhere.
        ``"soft"``: multiply by ``S`` (or by ``1 - S`` when ``invert``).
    quantile : float, optional
        ``q`` in [0, 1]; required for ``"quantile"``, None for ``"soft"``.
    alpha : float, optional
        Finite multiplier; required for ``"quantile"``, None for ``"soft"``.
    invert : bool
        For ``"soft"`` only: use ``1 - S``.  Default: False.

    Raises
    ------
    ValueError
        The fields do not match ``kind``, or a value is out of range.
    """

    kind: Literal["quantile", "soft"]
    quantile: float | None = None
    alpha: float | None = None
    invert: bool = False

    def __post_init__(self) -> None:
        if self.kind == "quantile":
            if self.quantile is None or not 0.0 <= self.quantile <= 1.0:
                raise UserInputError(
                    f"quantile={self.quantile!r} must lie in [0, 1] for a quantile mask: give quantile "
                    "levels such as 0.5 or 0.9."
                )
            if self.alpha is None or not np.isfinite(self.alpha):
                raise UserInputError(
                    f"alpha={self.alpha!r} must be a finite number for a quantile mask: give multipliers "
                    "such as 0 (switch off) or 1.5 (amplify)."
                )
            if self.invert:
                raise UserInputError(
                    "invert=True applies to soft masks only; leave it False for kind='quantile'."
                )
        elif self.kind == "soft":
            if self.quantile is not None or self.alpha is not None:
                raise UserInputError(
                    f"a soft mask takes no quantile or alpha (got quantile={self.quantile!r}, "
                    f"alpha={self.alpha!r}); use kind='quantile' for those."
                )
        else:
            raise UserInputError(f"kind={self.kind!r} is not one of ('quantile', 'soft'); pass one of those.")

    @property
    def name(self) -> str:
        """Short label, e.g. ``"alpha=1.50_q=0.90"``, ``"soft"`` or ``"soft_inverted"``."""
        if self.kind == "soft":
            return "soft_inverted" if self.invert else "soft"
        return f"alpha={self.alpha:.2f}_q={self.quantile:.2f}"


class MaskRow(NamedTuple):
    """One row of a :class:`MaskSet`: the map it comes from and how it is applied."""

    measure: str
    factor: str
    config: MaskConfig


def mask_configs(
    quantiles: Sequence[float] = QUANTILES, alphas: Sequence[float] = ALPHAS, *, soft: bool = True
) -> tuple[MaskConfig, ...]:
    """The standard configurations: every (alpha, q) quantile mask, then the two soft masks.

    Parameters
    ----------
    quantiles : sequence of float
        Quantile levels in [0, 1].  Default: :data:`QUANTILES`.
    alphas : sequence of float
        Multipliers.  Default: :data:`ALPHAS`.
    soft : bool
        Append the soft masks ``S`` and ``1 - S``.  Default: True.

    Returns
    -------
    tuple of MaskConfig
        Alpha-major order (``alpha_0 q_0, alpha_0 q_1, ...``), then ``soft``, ``soft_inverted``:
        17 configurations with the defaults, the paper's feature order.

    Examples
    --------
    >>> [c.name for c in mask_configs([0.5], [0.0, 1.5])]
    ['alpha=0.00_q=0.50', 'alpha=1.50_q=0.50', 'soft', 'soft_inverted']
    """
    configs = [MaskConfig("quantile", quantile=float(q), alpha=float(a)) for a in alphas for q in quantiles]
    if soft:
        configs += [MaskConfig("soft"), MaskConfig("soft", invert=True)]
    if not configs:
        raise UserInputError("no mask configurations: pass non-empty quantiles and alphas, or soft=True.")
    return tuple(configs)


def _clean(sensitivity: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Float32 copy with NaN -> 0 and values clipped to [0, 1] (the authors' clip)."""
    s = torch.as_tensor(np.asarray(sensitivity, dtype=np.float32))
    return torch.nan_to_num(s, nan=0.0, posinf=1.0, neginf=0.0).clamp_(0.0, 1.0)


def _thresholds(flat: torch.Tensor, quantiles: Sequence[float]) -> torch.Tensor:
    """Per-map thresholds ``[G, Q]``: the smallest map value at or above each linear-interpolation quantile.

    Returning an element of the map (rather than the interpolated level) makes ``s >= t`` select exactly
    the elements at or above the level in any float precision.  ``numpy.quantile`` in float64 has no size
    limit (``torch.quantile`` refuses inputs above 2**24 elements).
    """
    values = flat.double().numpy()
    levels = np.quantile(values, np.asarray(quantiles, dtype=np.float64), axis=1).T  # [G, Q]
    ordered = np.sort(values, axis=1)
    out = np.empty_like(levels)
    for g in range(values.shape[0]):
        pos = np.searchsorted(ordered[g], levels[g], side="left")
        # Rounding of the interpolation can put the level a hair above the largest value.
        out[g] = ordered[g][np.minimum(pos, values.shape[1] - 1)]
    return torch.from_numpy(out.astype(np.float32))


def mask_multiplier(sensitivity: torch.Tensor | np.ndarray, config: MaskConfig) -> torch.Tensor:
    """The multiplier that ``config`` applies to a checkpoint output, from that checkpoint's map.

    Parameters
    ----------
    sensitivity : torch.Tensor or numpy.ndarray, shape (C, H, W) or any
        One factor's map at one checkpoint.  Clipped to [0, 1]; NaN counts as 0.
    config : MaskConfig

    Returns
    -------
    torch.Tensor of float32, same shape
        ``alpha`` where ``S >= quantile(S, q)`` (over all elements, linear interpolation) and 1
        elsewhere; or ``S``; or ``1 - S``.

    Examples
    --------
    >>> s = torch.arange(10.0) / 10  # 0.0 .. 0.9; the 0.5-quantile is 0.45
    >>> mask_multiplier(s, MaskConfig("quantile", quantile=0.5, alpha=0.0))
    tensor([1., 1., 1., 1., 1., 0., 0., 0., 0., 0.])
    """
    s = _clean(sensitivity)
    if config.kind == "soft":
        return 1.0 - s if config.invert else s
    assert config.quantile is not None  # MaskConfig.__post_init__ requires it for kind="quantile"
    threshold = _thresholds(s.reshape(1, -1), [config.quantile])[0, 0]
    return torch.where(
        s >= threshold, torch.tensor(config.alpha, dtype=s.dtype), torch.ones((), dtype=s.dtype)
    )


class MaskSet:
    """Masks for several checkpoints, stacked: one row per (measure, factor, configuration).

    Row ``r`` applies configuration ``configs[r % len(configs)]`` of map ``labels[r // len(configs)]``
    at every checkpoint simultaneously.  Multipliers are built on demand for a range of rows, from the
    clipped maps and thresholds computed once at construction.

    Parameters
    ----------
    maps : mapping of str to tensor or array, each shaped (G, *shape)
        Per checkpoint (module name), the G sensitivity maps; ``shape`` is the checkpoint's output
        shape without the batch dim, e.g. (C, H, W).
    labels : sequence of (measure, factor)
        Names of the G maps, in the order of the first axis of every map.
    configs : sequence of MaskConfig
        Default: :func:`mask_configs` () (the paper's 17).

    Raises
    ------
    ValueError
        ``maps`` is empty, a map's first axis does not match ``labels``, labels repeat, or ``configs``
        is empty.

    Examples
    --------
    >>> maps = {"conv": torch.rand(2, 4, 3, 3)}
    >>> ms = MaskSet(maps, [("S1", "brightness"), ("S1", "contrast")])
    >>> len(ms), ms.rows[17].factor, ms.rows[17].config.name
    (34, 'contrast', 'alpha=0.00_q=0.50')
    >>> ms.multipliers("conv", 0, 5).shape
    torch.Size([5, 4, 3, 3])
    """

    def __init__(
        self,
        maps: Mapping[str, torch.Tensor | np.ndarray],
        labels: Sequence[tuple[str, str]],
        configs: Sequence[MaskConfig] | None = None,
    ) -> None:
        self.configs: tuple[MaskConfig, ...] = tuple(mask_configs() if configs is None else configs)
        if not self.configs:
            raise UserInputError("configs is empty: pass at least one MaskConfig, e.g. mask_configs().")
        if not maps:
            raise UserInputError(
                "maps is empty: pass at least one checkpoint's maps, {module_name: [G, C, H, W]}."
            )
        self.labels: tuple[tuple[str, str], ...] = tuple((str(m), str(f)) for m, f in labels)
        if len(set(self.labels)) != len(self.labels):
            raise UserInputError(f"labels repeat: {self.labels!r}; each (measure, factor) may appear once.")
        # kind="quantile" <=> quantile is set (MaskConfig.__post_init__)
        quantiles = sorted({c.quantile for c in self.configs if c.quantile is not None})
        self._sens: dict[str, torch.Tensor] = {}
        self._thr: dict[str, torch.Tensor] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        for name, m in maps.items():
            s = _clean(m)
            if s.ndim < 1 or s.shape[0] != len(self.labels):
                raise UserInputError(
                    f"maps[{name!r}] has shape {tuple(s.shape)!r}; its first axis must have one map per "
                    f"label ({len(self.labels)})."
                )
            flat = s.reshape(len(self.labels), -1)
            self._shapes[name] = tuple(s.shape[1:])
            self._sens[name] = flat
            self._thr[name] = _thresholds(flat, quantiles) if quantiles else torch.zeros(len(self.labels), 0)
        # Per-configuration tables, so a range of rows is built with a few vectorised ops.
        q_index: dict[float | None, int] = {q: i for i, q in enumerate(quantiles)}
        self._is_soft = torch.tensor([c.kind == "soft" for c in self.configs])
        self._invert = torch.tensor([c.invert for c in self.configs])
        self._alpha = torch.tensor([1.0 if c.alpha is None else c.alpha for c in self.configs])
        self._q_index = torch.tensor([q_index.get(c.quantile, 0) for c in self.configs])
        self._on_device: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_results(
        cls,
        results: xr.DataTree | str | Path,
        *,
        measures: Sequence[str] | None = None,
        factors: Sequence[str] | None = None,
        checkpoints: Sequence[str] | None = None,
        configs: Sequence[MaskConfig] | None = None,
    ) -> MaskSet:
        """Masks from a results tree (or folder): every convolutional checkpoint by default.

        Parameters
        ----------
        results : xarray.DataTree or path
            A results tree, or a results folder holding ``results.zarr``.
        measures : sequence of str, optional
            Variables to take maps from, among :data:`MEASURES`.  Default: those of :data:`MEASURES`
            present at every selected checkpoint.
        factors : sequence of str, optional
            Factors to mask with.  Default: all, in the tree's order.
        checkpoints : sequence of str, optional
            Checkpoint nodes to mask.  Default: every node whose maps have dims
            ``("factor", "channel", "y", "x")`` (the paper masks convolutional checkpoints only).
        configs : sequence of MaskConfig, optional
            Default: :func:`mask_configs` ().

        Returns
        -------
        MaskSet
            Labels in measure-major order: ``(m0, f0), (m0, f1), ..., (m1, f0), ...``.

        Raises
        ------
        KeyError
            A requested checkpoint, measure or factor is not in the tree (the message lists what is).
        ValueError
            The tree has no convolutional checkpoint.
        """
        tree = _open_tree(results)
        nodes = {name: node.to_dataset(inherit=False) for name, node in tree.children.items()}
        if checkpoints is None:
            checkpoints = [
                n for n, ds in nodes.items() if any(ds[v].dims == _CONV_DIMS for v in MEASURES if v in ds)
            ]
            if not checkpoints:
                raise UserInputError(
                    f"no convolutional checkpoint in the results (nodes: {sorted(nodes)!r}); masking needs "
                    f"maps with dims {_CONV_DIMS!r}: use the results of a sobol or shapley study with a "
                    "convolutional checkpoint among model.checkpoints."
                )
        for name in checkpoints:
            if name not in nodes:
                raise UnknownNameError(
                    unknown_name_message("checkpoint", name, nodes, "Name checkpoints of these results.")
                )
        available = [m for m in MEASURES if all(m in nodes[c] for c in checkpoints)]
        if measures is None:
            measures = available
            if not measures:
                raise UnknownNameError(
                    f"the results hold none of the measures {MEASURES!r} at checkpoints {checkpoints!r}: "
                    "use the results of a sobol or shapley study."
                )
        for m in measures:
            if m not in available:
                raise UnknownNameError(
                    f"measure {m!r} is not available at every checkpoint; available: {available!r} "
                    f"(known measures: {MEASURES!r})."
                )
        all_factors = [str(f) for f in nodes[checkpoints[0]][measures[0]]["factor"].values]
        if factors is None:
            factors = all_factors
        for f in factors:
            if f not in all_factors:
                raise UnknownNameError(
                    unknown_name_message("factor", f, all_factors, "Name factors of these results.")
                )
        maps = {}
        for name in checkpoints:
            stacked = []
            for m in measures:
                da = nodes[name][m]
                if da.dims[0] != "factor":
                    raise UserInputError(
                        f"{name!r}/{m!r} has dims {da.dims!r}; expected 'factor' first: use the "
                        "results.zarr written by an augsens study."
                    )
                stacked.append(da.sel(factor=list(factors)).values)
            maps[name] = np.concatenate(stacked, axis=0)
        labels = [(m, f) for m in measures for f in factors]
        return cls(maps, labels, configs)

    @property
    def checkpoints(self) -> tuple[str, ...]:
        """Masked checkpoints (module names)."""
        return tuple(self._sens)

    @property
    def rows(self) -> tuple[MaskRow, ...]:
        """Every row, in order: ``rows[r] = (measure, factor, config)``."""
        return tuple(MaskRow(m, f, c) for m, f in self.labels for c in self.configs)

    def shape(self, checkpoint: str) -> tuple[int, ...]:
        """Output shape of ``checkpoint`` without the batch dim, e.g. ``(C, H, W)``."""
        return self._shapes[checkpoint]

    def __len__(self) -> int:
        return len(self.labels) * len(self.configs)

    def multipliers(
        self,
        checkpoint: str,
        start: int = 0,
        stop: int | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Multipliers of rows ``start .. stop - 1`` at ``checkpoint``.

        Parameters
        ----------
        checkpoint : str
            One of :attr:`checkpoints`.
        start, stop : int
            Row range; ``stop`` defaults to ``len(self)``.
        device : torch.device or str, optional
            Default: CPU.
        dtype : torch.dtype
            Default: float32.

        Returns
        -------
        torch.Tensor, shape (stop - start, *shape(checkpoint))

        Raises
        ------
        KeyError
            Unknown checkpoint.
        ValueError
            Empty or out-of-range row range.
        """
        if checkpoint not in self._sens:
            raise UnknownNameError(unknown_name_message("checkpoint", checkpoint, self._sens))
        stop = len(self) if stop is None else stop
        if not 0 <= start < stop <= len(self):
            raise UserInputError(f"rows {start!r}..{stop!r} must satisfy 0 <= start < stop <= {len(self)}.")
        device = torch.device("cpu") if device is None else torch.device(device)
        key = (checkpoint, str(device))
        if key not in self._on_device:
            self._on_device[key] = (self._sens[checkpoint].to(device), self._thr[checkpoint].to(device))
        sens, thr = self._on_device[key]
        rows = torch.arange(start, stop, device=device)
        g, c = rows // len(self.configs), (rows % len(self.configs)).cpu()
        s = sens[g]  # [n, F]
        cd = c.to(device)
        t = thr[g, self._q_index[c].to(device)] if thr.shape[1] else torch.zeros(len(rows), device=device)
        quantile = torch.where(s >= t[:, None], self._alpha.to(device)[cd][:, None], 1.0)
        soft = torch.where(self._invert.to(device)[cd][:, None], 1.0 - s, s)
        out = torch.where(self._is_soft.to(device)[cd][:, None], soft, quantile)
        return out.reshape(len(rows), *self._shapes[checkpoint]).to(dtype)


def _open_tree(results: xr.DataTree | str | Path) -> xr.DataTree:
    if isinstance(results, xr.DataTree):
        return results
    from augsens.schema import open_tree

    return open_tree(results)

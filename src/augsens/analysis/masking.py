"""Guided masking: scale a network's activations by its own sensitivity maps and watch the predictions.

For a sensitivity measure (``S1``, ``ST`` or ``shapley``) and a factor ``v``, the map of ``v`` at each
convolutional checkpoint becomes a multiplicative mask of that checkpoint's output.  All checkpoints
are masked at once, through forward hooks.  Seventeen configurations per (measure, factor), as in the
paper's experiment 3a (``authors-code-spec.md`` section 7):

* **quantile masks** (15): activations whose sensitivity is at or above the ``q``-quantile of the
  checkpoint's whole map are multiplied by ``alpha``, the others are left alone;
  ``q`` in {0.5, ..., 0.9}, ``alpha`` in {0, 0.5, 1.5};
* **soft masks** (2): every activation is multiplied by its sensitivity ``S``, or by ``1 - S``.

Sensitivities are clipped to [0, 1] (NaN, the index of an activation that never varied, counts as 0),
as the authors clipped theirs.  Thresholds are computed once per map, not per forward.

The masked predictions then feed three analyses: accuracy per (input augmentation, measure, mask
factor, configuration); the Spearman correlation between each 17-configuration accuracy profile and
the profile on the original input, with a hierarchical clustering of all profiles; and the single-class
Jaccard indices of :mod:`augsens.analysis.single_class`.

Contents
--------
MaskConfig, mask_configs   one configuration, and the standard 17
mask_multiplier            reference implementation of one mask on one map
MaskSet                    stacked masks for several checkpoints: one row per (measure, factor, config)
GuidedMasking              predictions under every row of a MaskSet, sharing the unmasked prefix
spearman_profiles          Spearman correlation along the configuration axis
cluster_profiles           average-linkage clustering on sqrt(1 - |rho|)
guided_masking_report      the whole analysis on results folders: CSV tables, PNG figures, HTML

References
----------
Kharyuk, Matveev & Oseledets, arXiv:2503.03283, sections on guided masking and single-class analysis.
"""

from __future__ import annotations

import contextlib
import difflib
import html
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import torch
import xarray as xr
from matplotlib.figure import Figure
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform
from scipy.stats import rankdata
from torch import nn

from augsens.analysis.single_class import (
    JaccardThreshold,
    jaccard_index,
    jaccard_threshold,
    plot_sensitivity_decay,
    sensitivity_table,
    top_sensitive_classes,
)
from augsens.augment.draws import single_draws
from augsens.errors import UnknownNameError, UserInputError, UserTypeError

__all__ = [
    "MEASURES",
    "QUANTILES",
    "ALPHAS",
    "MaskConfig",
    "MaskRow",
    "mask_configs",
    "mask_multiplier",
    "MaskSet",
    "GuidedMasking",
    "spearman_profiles",
    "ProfileClusters",
    "cluster_profiles",
    "MaskingReport",
    "guided_masking_report",
]

#: Sensitivity measures a mask can come from (variables of the results tree).
MEASURES: tuple[str, ...] = ("S1", "ST", "shapley")
#: The paper's quantile levels.
QUANTILES: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
#: The paper's multipliers for the activations at or above the quantile.
ALPHAS: tuple[float, ...] = (0.0, 0.5, 1.5)

_CONV_DIMS = ("factor", "channel", "y", "x")
_CLASSIFIER_DIMS = ("factor", "unit")
_ORIGINAL = "original"


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
                    _unknown("checkpoint", name, nodes, "Name checkpoints of these results.")
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
                raise UnknownNameError(_unknown("factor", f, all_factors, "Name factors of these results."))
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
            raise UnknownNameError(_unknown("checkpoint", checkpoint, self._sens))
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


class GuidedMasking:
    """Predictions of a network under every row of a :class:`MaskSet`.

    The network runs unmasked up to the first masked checkpoint once per input batch (per chunk of
    ``configs_per_forward`` rows); a hook there expands its output to ``[n_rows * B, ...]`` (row-major:
    batch row ``r * B + b`` is image ``b`` under mask row ``r``) and each later masked checkpoint
    multiplies by its stacked ``[n_rows, 1, ...]`` multiplier.  Hooks are removed and the training flags
    of all submodules restored when the call returns, even on error.

    Parameters
    ----------
    model : augsens.models.LoadedModel or torch.nn.Module
        A ``LoadedModel`` (its ``.module`` and ``.normalize`` are used) or a plain module taking
        network-ready input.
    masks : MaskSet
        Its checkpoints must be module names of the network, each run once per forward.
    normalize : callable, optional
        ``[B, 3, H, W]`` in [0, 1] -> network input.  Default: ``model.normalize`` if the model has one,
        else none.

    Raises
    ------
    TypeError
        ``model`` is neither a module nor has a ``.module``.
    KeyError
        A masked checkpoint is not a module name of the network (close names suggested).
    """

    def __init__(
        self,
        model: Any,
        masks: MaskSet,
        *,
        normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        module = getattr(model, "module", model)
        if not isinstance(module, nn.Module):
            raise UserTypeError(
                f"model must be an augsens LoadedModel or a torch.nn.Module, got {type(model).__name__!r}."
            )
        self.module = module
        self.masks = masks
        self.normalize = normalize if normalize is not None else getattr(model, "normalize", None)
        named = dict(module.named_modules())
        for name in masks.checkpoints:
            if name not in named:
                raise UnknownNameError(
                    _unknown(
                        "module",
                        name,
                        [n for n in named if n],
                        "The sensitivity maps were computed at this checkpoint, which the network lacks: "
                        "pass the model the results were computed with.",
                    )
                )
        self._targets = {name: named[name] for name in masks.checkpoints}

    def predict(
        self,
        x: torch.Tensor,
        *,
        top_k: int | None = None,
        configs_per_forward: int | None = None,
        shared_prefix: bool = True,
        normalized: bool = False,
    ) -> torch.Tensor:
        """Network outputs for every mask row and image.

        Parameters
        ----------
        x : torch.Tensor, shape (B, 3, H, W), float in [0, 1]
            Images (network-ready input when ``normalized``).  Moved to the network's device.
        top_k : int, optional
            Return the indices of the ``top_k`` largest outputs instead of the outputs.  Default: None.
        configs_per_forward : int, optional
            Largest number of mask rows per forward pass (like Captum's ``perturbations_per_eval``); the
            unmasked prefix runs once per chunk.  Default: None (all rows in one forward).
        shared_prefix : bool
            Expand the batch at the first masked checkpoint (True), or repeat the input and run the whole
            network per row (False: slower, but correct for networks that reuse a tensor from before the
            first masked checkpoint after it).  Default: True.
        normalized : bool
            ``x`` is already network-ready.  Default: False.

        Returns
        -------
        torch.Tensor
            ``[n_rows, B, n_outputs]`` outputs (logits for torchvision classifiers), or
            ``[n_rows, B, top_k]`` int64 class indices in descending order of output.

        Raises
        ------
        ValueError
            Bad ``x``, ``top_k`` or ``configs_per_forward``; a checkpoint's output shape differs from its
            map's; a checkpoint runs twice per forward or never.
        """
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            raise UserInputError(
                f"x must be a [B, C, H, W] tensor, got {getattr(x, 'shape', type(x).__name__)!r}."
            )
        n_rows = len(self.masks)
        chunk = n_rows if configs_per_forward is None else configs_per_forward
        if not isinstance(chunk, int) or chunk < 1:
            raise UserInputError(
                f"configs_per_forward={configs_per_forward!r} must be a positive integer or None."
            )
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise UserInputError(f"top_k={top_k!r} must be a positive integer or None.")
        x = x.to(_device_of(self.module))
        pieces = []
        with _eval_mode(self.module), torch.no_grad():
            if not normalized and self.normalize is not None:
                x = self.normalize(x)
            for start in range(0, n_rows, chunk):
                out = self._forward(x, start, min(start + chunk, n_rows), shared_prefix)
                pieces.append(out.topk(top_k, dim=-1).indices if top_k is not None else out)
        return torch.cat(pieces)

    def unmasked(self, x: torch.Tensor, *, normalized: bool = False) -> torch.Tensor:
        """Outputs without any mask, ``[B, n_outputs]`` (same preprocessing as :meth:`predict`)."""
        x = x.to(_device_of(self.module))
        with _eval_mode(self.module), torch.no_grad():
            if not normalized and self.normalize is not None:
                x = self.normalize(x)
            return self.module(x)

    def _forward(self, x: torch.Tensor, start: int, stop: int, shared_prefix: bool) -> torch.Tensor:
        n, batch = stop - start, x.shape[0]
        state = {"expanded": not shared_prefix}
        calls = dict.fromkeys(self._targets, 0)

        def make_hook(name: str) -> Callable[..., torch.Tensor]:
            def hook(_module: nn.Module, _args: Any, out: Any) -> torch.Tensor:
                if not isinstance(out, torch.Tensor):
                    raise UserInputError(
                        f"checkpoint {name!r} returns {type(out).__name__}, not a tensor; mask a module "
                        "whose output is a single tensor."
                    )
                calls[name] += 1
                if calls[name] > 1:
                    raise UserInputError(
                        f"checkpoint {name!r} runs more than once per forward (a reused module, e.g. a "
                        "shared ReLU); mask a module that runs once, such as the enclosing block."
                    )
                shape = self.masks.shape(name)
                if tuple(out.shape[1:]) != shape:
                    raise UserInputError(
                        f"checkpoint {name!r} outputs {tuple(out.shape[1:])!r} per image but its map is "
                        f"{shape!r}: pass the model the results were computed with, and images of the size "
                        "the sensitivity study used."
                    )
                mult = self.masks.multipliers(
                    name, start, stop, device=out.device, dtype=out.dtype
                ).unsqueeze(1)
                if state["expanded"]:
                    return (out.reshape(n, batch, *shape) * mult).reshape(n * batch, *shape)
                state["expanded"] = True
                # Broadcasting [1, B, ...] * [n, 1, ...] expands and masks in one op.
                return (out.unsqueeze(0) * mult).reshape(n * batch, *shape)

            return hook

        handles = [m.register_forward_hook(make_hook(name)) for name, m in self._targets.items()]
        try:
            inputs = x if shared_prefix else x.repeat(n, *([1] * (x.ndim - 1)))
            try:
                y = self.module(inputs)
            except RuntimeError as exc:
                if not shared_prefix or isinstance(exc, torch.OutOfMemoryError):
                    raise
                raise UserInputError(
                    "the forward failed after the batch was expanded at the first masked checkpoint; if the "
                    "network reuses a tensor computed before that checkpoint after it (a skip connection "
                    "around it), pass shared_prefix=False."
                ) from exc
        finally:
            for h in handles:
                h.remove()
        never = [name for name, count in calls.items() if count == 0]
        if never:
            raise UserInputError(
                f"checkpoints {never!r} did not run in the forward; mask modules on the output path."
            )
        if not isinstance(y, torch.Tensor) or y.shape[0] != n * batch:
            raise UserInputError(
                f"the network returned {getattr(y, 'shape', type(y).__name__)!r}; expected a tensor with "
                f"{n * batch} rows ({n} mask rows x {batch} images)."
            )
        return y.reshape(n, batch, *y.shape[1:])


def spearman_profiles(profiles: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Spearman rank correlation along the last axis (average ranks for ties).

    Parameters
    ----------
    profiles : numpy.ndarray, shape (..., n)
    reference : numpy.ndarray, shape (..., n), broadcastable against ``profiles``

    Returns
    -------
    numpy.ndarray, shape (broadcast leading dims)
        rho in [-1, 1]; NaN where a profile is constant (its ranks carry no order).

    Examples
    --------
    >>> float(spearman_profiles(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0])))
    0.8
    """
    a = rankdata(np.asarray(profiles, dtype=np.float64), axis=-1)
    b = rankdata(np.asarray(reference, dtype=np.float64), axis=-1)
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (a * b).sum(-1) / denominator
    return np.where(denominator > 0, rho, np.nan)


@dataclass(frozen=True)
class ProfileClusters:
    """Result of :func:`cluster_profiles`.

    Attributes
    ----------
    rho : numpy.ndarray, shape (rows, rows)
        Spearman correlation between profiles (NaN where one is constant).
    distance : numpy.ndarray, shape (rows, rows)
        ``sqrt(1 - |rho|)``, with NaN correlations counted as 0 (distance 1).
    linkage : numpy.ndarray, shape (rows - 1, 4)
        SciPy average-linkage matrix.
    labels : numpy.ndarray of int, shape (rows,)
        Flat clusters (1-based) from cutting the tree at ``cut``.
    cut : float
    """

    rho: np.ndarray
    distance: np.ndarray
    linkage: np.ndarray
    labels: np.ndarray
    cut: float


def cluster_profiles(profiles: np.ndarray, *, cut: float = 0.025) -> ProfileClusters:
    """Average-linkage hierarchical clustering of profiles on the distance ``sqrt(1 - |rho|)``.

    Parameters
    ----------
    profiles : numpy.ndarray, shape (rows, n)
        One accuracy profile per row (e.g. per (input augmentation, mask factor)), over n configurations.
    cut : float
        Distance at which the tree is cut into flat clusters.  Default: 0.025 (the paper's).

    Returns
    -------
    ProfileClusters

    Raises
    ------
    ValueError
        Fewer than 2 rows, or not 2-D.

    Notes
    -----
    ``|rho|`` makes perfectly anti-correlated profiles as close as identical ones, as in the paper.
    """
    p = np.asarray(profiles, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 2:
        raise UserInputError(f"profiles must be 2-D with at least 2 rows, got shape {p.shape!r}.")
    rho = spearman_profiles(p[:, None, :], p[None, :, :])
    distance = np.sqrt(np.clip(1.0 - np.abs(np.nan_to_num(rho, nan=0.0)), 0.0, None))
    np.fill_diagonal(distance, 0.0)
    linkage = hierarchy.linkage(squareform(distance, checks=False), method="average")
    labels = hierarchy.fcluster(linkage, t=cut, criterion="distance")
    return ProfileClusters(rho=rho, distance=distance, linkage=linkage, labels=labels, cut=cut)


@dataclass
class MaskingReport:
    """What :func:`guided_masking_report` wrote.

    Attributes
    ----------
    tables : dict of str to Path
        CSV files by name (``accuracy``, ``jaccard_unmasked``, ``spearman``, ``clusters``,
        ``class_sensitivity``, ``jaccard_candidates``).
    figures : dict of str to Path
        PNG files by name.
    thresholds : dict of str to JaccardThreshold
        The single-class significance threshold per results folder label.
    html : str
        An HTML fragment (one ``<section>``) for the report; image paths are relative to ``out``.
    """

    tables: dict[str, Path] = field(default_factory=dict)
    figures: dict[str, Path] = field(default_factory=dict)
    thresholds: dict[str, JaccardThreshold] = field(default_factory=dict)
    html: str = ""


def guided_masking_report(
    results_dirs: Sequence[str | Path],
    model: Any,
    images: Any,
    out: str | Path,
    *,
    measures: Sequence[str] | None = None,
    quantiles: Sequence[float] = QUANTILES,
    alphas: Sequence[float] = ALPHAS,
    soft: bool = True,
    checkpoints: Sequence[str] | None = None,
    draws: int = 3,
    seed: int = 0,
    batch_size: int = 16,
    configs_per_forward: int | None = None,
    labels: Literal["auto"] | Sequence[int] | np.ndarray | None = "auto",
    k: int = 5,
    repeats: int = 1_000_000,
) -> MaskingReport:
    """Guided masking and single-class analysis of results folders on an image source.

    For each results folder: masks from every (measure, factor) at every convolutional checkpoint
    (:meth:`MaskSet.from_results`); predictions on the original images and on each augmentation that is
    a factor of the study, with ``draws`` parameter draws per image (counter-based: a draw depends only
    on ``(seed, augmentation, image index, draw)``); accuracy tables, Spearman heatmaps, profile
    clustering, and the single-class Jaccard analysis at the model's classifier checkpoint.

    Parameters
    ----------
    results_dirs : sequence of path
        Results folders (each holding ``results.zarr``) computed with this model.
    model : augsens.models.LoadedModel
        Needs ``.module`` and ``.normalize``; ``.classifier`` and ``.categories`` are used if present.
    images : augsens.data.ImageCache
        Needs ``len()``, ``.gather(idx) -> [b, 3, H, W]`` float in [0, 1]; ``.labels`` and ``.classes``
        are used for accuracy (see ``labels``).
    out : path
        Folder for the CSV tables and PNG figures (created).
    measures : sequence of str, optional
        Among :data:`MEASURES`.  Default: all present in each folder.
    quantiles, alphas, soft
        Mask configurations, see :func:`mask_configs`.  Default: the paper's 17.
    checkpoints : sequence of str, optional
        Checkpoints to mask.  Default: every convolutional checkpoint of each folder.
    draws : int
        Parameter draws per image and augmentation (1 for parameter-free ones).  Default: 3.
    seed : int
        Seed of the draws and of the tau simulation, >= 0.  Default: 0.
    batch_size : int
        Images per step; a forward then holds ``batch_size * draws * configs_per_forward`` rows after the
        first masked checkpoint.  Default: 16.
    configs_per_forward : int, optional
        See :meth:`GuidedMasking.predict`.  Default: all mask rows in one forward.
    labels : "auto", sequence of int, or None
        Class index (model output) of every image.  ``"auto"``: ``images.labels`` mapped through
        ``images.classes`` by name when those are model categories, or taken as is when the image
        source has exactly as many classes as the model has outputs (an ImageFolder of the model's own
        classes in its order); otherwise none.  None: no labels; accuracy is then agreement with the
        unmasked prediction on the original image.  Default: "auto".
    k : int
        Size of the top-sensitive class sets and of the prediction sets for Jaccard.  Default: 5.
    repeats : int
        Simulated means for tau (:func:`~augsens.analysis.single_class.jaccard_threshold`).
        Default: 10**6.

    Returns
    -------
    MaskingReport

    Raises
    ------
    ValueError
        Bad sizes or labels; see also :meth:`MaskSet.from_results` and :meth:`GuidedMasking.predict`.
    FileNotFoundError
        A folder holds no results.

    Notes
    -----
    Files in ``out`` (tables gather all folders, with a ``results`` column = the folder's name):

    * ``masking_accuracy.csv``: top-1 / top-5 per (input, measure, mask factor, config); ``config="none"``
      rows are unmasked; ``jaccard`` compares the top-``k`` predictions with the top-``k`` classes of the
      row's own (measure, factor) map; ``label_source`` is ``labels`` or ``unmasked_top1``;
    * ``masking_jaccard_unmasked.csv``: unmasked predictions vs every map's top classes;
    * ``masking_spearman.csv`` and ``<folder>_spearman_<measure>.png``: rho between each augmented
      input's top-1 profile over the configurations and the original input's, per mask factor;
    * ``masking_clusters.csv`` and ``<folder>_dendrogram_<measure>.png``: :func:`cluster_profiles` of all
      (input, mask factor) profiles, the original input included;
    * ``masking_class_sensitivity.csv`` and ``<folder>_class_decay.png``: top classes per factor;
    * ``masking_jaccard_candidates.csv``: every mean Jaccard above tau.

    Cost: per image, ``1 + sum over augmentations of draws`` inputs, each through the prefix once per
    chunk and through the rest of the network once per mask row.
    """
    for name, value in (("draws", draws), ("batch_size", batch_size), ("k", k)):
        if not isinstance(value, int) or value < 1:
            raise UserInputError(f"{name}={value!r} must be a positive integer.")
    if not isinstance(seed, (int, np.integer)) or seed < 0:  # numpy's SeedSequence takes seeds >= 0 only
        raise UserInputError(f"seed={seed!r} must be a non-negative integer, e.g. 0.")
    if len(images) == 0:
        raise UserInputError("images is empty: pass an image source with at least one image.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    configs = mask_configs(quantiles, alphas, soft=soft)
    report = MaskingReport()
    frames: dict[str, list[pd.DataFrame]] = {}
    sections = []
    for label, path in _labelled(results_dirs):
        tree = _open_tree(path)
        masks = MaskSet.from_results(tree, measures=measures, checkpoints=checkpoints, configs=configs)
        run = _run_masking(
            tree,
            masks,
            model,
            images,
            labels=labels,
            draws=draws,
            seed=seed,
            batch_size=batch_size,
            configs_per_forward=configs_per_forward,
            k=k,
        )
        threshold = jaccard_threshold(
            run.n_outputs, len(images), k=min(k, run.n_outputs), repeats=repeats, seed=seed
        )
        report.thresholds[label] = threshold
        tables = _tables(label, run, threshold)
        for name, frame in tables.items():
            frames.setdefault(name, []).append(frame)
        figures = _figures(label, run, tables, out)
        report.figures.update(figures)
        sections.append(_html_section(label, run, tables, threshold, figures, out))
    for name, parts in frames.items():
        path = out / f"masking_{name}.csv"
        pd.concat(parts, ignore_index=True).to_csv(path, index=False)
        report.tables[name] = path
    report.html = (
        '<section class="augsens-guided-masking">\n<h2>Guided masking and single-class analysis</h2>\n'
        + "\n".join(sections)
        + "\n</section>\n"
    )
    return report


# --- the masking run -------------------------------------------------------------------------------


@dataclass
class _Run:
    """Sums over images of one results folder's masking run."""

    masks: MaskSet
    inputs: list[str]
    label_source: str
    n_outputs: int
    n: np.ndarray  # [I] predictions counted per input (images x draws)
    plain: np.ndarray  # [I, 2] top-1 / top-5 hits without mask
    masked: np.ndarray  # [I, R, 2] top-1 / top-5 hits per mask row
    plain_jaccard: np.ndarray  # [I, G] Jaccard of unmasked predictions vs each map's top classes
    masked_jaccard: np.ndarray  # [I, R] Jaccard of masked predictions vs the row's own map's top classes
    classifier_maps: dict[str, xr.DataArray]  # measure -> [factor, unit]; empty without a classifier node
    categories: Sequence[str] | None


def _run_masking(
    tree: xr.DataTree,
    masks: MaskSet,
    model: Any,
    images: Any,
    *,
    labels: Any,
    draws: int,
    seed: int,
    batch_size: int,
    configs_per_forward: int | None,
    k: int,
) -> _Run:
    from augsens.augment import AUGMENTATIONS, apply  # the augment package may be absent at import time

    masking = GuidedMasking(model, masks)
    factors = list(dict.fromkeys(f for _, f in masks.labels))
    inputs = [_ORIGINAL] + [f for f in factors if f in AUGMENTATIONS]
    categories = getattr(model, "categories", None)
    classifier_maps = _classifier_maps(tree, getattr(model, "classifier", None), [m for m, _ in masks.labels])
    device = _device_of(masking.module)
    n_rows, n_labels = len(masks), len(masks.labels)
    targets = None
    if classifier_maps:
        # Candidate sets per (measure, factor); labels without a classifier map get -1 (never predicted).
        sets = np.full((n_labels, k), -1, dtype=np.int64)
        for g, (m, f) in enumerate(masks.labels):
            if m in classifier_maps:
                sets[g] = top_sensitive_classes(classifier_maps[m].sel(factor=[f]).values, k=k)[0]
        targets = torch.from_numpy(sets).to(device)
    run: _Run | None = None
    true_labels = None
    for begin in range(0, len(images), batch_size):
        index = torch.arange(begin, min(begin + batch_size, len(images)))
        x = images.gather(index).to(device)
        reference = masking.unmasked(x)
        if run is None:
            n_outputs = reference.shape[-1]
            true_labels = _resolve_labels(labels, images, categories, n_outputs)
            top = min(max(k, 5), n_outputs)
            run = _Run(
                masks=masks,
                inputs=inputs,
                label_source="labels" if true_labels is not None else "unmasked_top1",
                n_outputs=n_outputs,
                n=np.zeros(len(inputs)),
                plain=np.zeros((len(inputs), 2)),
                masked=np.zeros((len(inputs), n_rows, 2)),
                plain_jaccard=np.zeros((len(inputs), n_labels)),
                masked_jaccard=np.zeros((len(inputs), n_rows)),
                classifier_maps=classifier_maps,
                categories=categories,
            )
        if true_labels is not None:
            y = torch.as_tensor(true_labels[index.numpy()], device=device)
        else:
            y = reference.argmax(-1)
        for i, name in enumerate(inputs):
            if name == _ORIGINAL:
                xs, ys, plain = x, y, reference
            else:
                spec = AUGMENTATIONS[name]
                n_draws = draws if spec.params else 1
                params = _draw_params(spec, index.numpy(), n_draws, seed)
                xs = apply(
                    name,
                    x.repeat(n_draws, 1, 1, 1),
                    mode="clean",
                    validate=True,
                    **{p: v.to(device) for p, v in params.items()},
                )
                ys = y.repeat(n_draws)
                plain = masking.unmasked(xs)
            plain_top = plain.topk(top, dim=-1).indices  # [b, top]
            masked_top = masking.predict(
                xs, top_k=top, configs_per_forward=configs_per_forward
            )  # [R, b, top]
            run.n[i] += len(ys)
            run.plain[i] += _hits(plain_top, ys)
            run.masked[i] += _hits(masked_top, ys)
            if targets is not None:
                run.plain_jaccard[i] += (
                    jaccard_index(plain_top[:, None, :k], targets[None]).sum(0).double().cpu().numpy()
                )
                row_targets = targets.repeat_interleave(len(masks.configs), dim=0)  # [R, k]
                run.masked_jaccard[i] += (
                    jaccard_index(masked_top[..., :k], row_targets[:, None, :]).sum(1).double().cpu().numpy()
                )
    if run is None:  # unreachable: len(images) > 0 was checked
        raise ValueError("images is empty.")
    return run


def _hits(top: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Top-1 and top-5 hit counts; ``top [..., b, t]``, ``y [b]`` -> ``[..., 2]``."""
    match = top == y[:, None]
    return torch.stack([match[..., 0].sum(-1), match[..., :5].any(-1).sum(-1)], dim=-1).double().cpu().numpy()


def _classifier_maps(
    tree: xr.DataTree, classifier: str | None, measures: Sequence[str]
) -> dict[str, xr.DataArray]:
    if classifier is None or classifier not in tree.children:
        return {}
    ds = tree.children[classifier].to_dataset(inherit=False)
    return {m: ds[m] for m in dict.fromkeys(measures) if m in ds and ds[m].dims == _CLASSIFIER_DIMS}


def _resolve_labels(
    labels: Any, images: Any, categories: Sequence[str] | None, n_outputs: int
) -> np.ndarray | None:
    if labels is None:
        return None
    if isinstance(labels, str):
        if labels != "auto":
            raise UserInputError(f"labels={labels!r} must be 'auto', None, or one class index per image.")
        raw, classes = getattr(images, "labels", None), getattr(images, "classes", None)
        if raw is None or classes is None:
            return None
        raw = np.asarray(torch.as_tensor(raw).cpu(), dtype=np.int64)
        classes = [str(c) for c in classes]
        if categories is not None and all(c in categories for c in classes):
            lookup = {c: i for i, c in enumerate(categories)}
            return np.asarray([lookup[c] for c in classes], dtype=np.int64)[raw]
        return raw if len(classes) == n_outputs else None
    out = np.asarray(labels, dtype=np.int64)
    if out.shape != (len(images),) or out.min() < 0 or out.max() >= n_outputs:
        raise UserInputError(
            f"labels must hold one class index in [0, {n_outputs}) per image ({len(images)} images), "
            f"got shape {out.shape!r}; pass labels='auto' or None to skip accuracy against labels."
        )
    return out


def _draw_params(spec: Any, index: np.ndarray, draws: int, seed: int) -> dict[str, torch.Tensor]:
    """Parameters of ``spec`` for images ``index``, ``draws`` each, flattened draw-major: ``[draws * b]``.

    Keyed like the contrast study (row ``image * draws + draw``), so both see the same augmented images.
    """
    rows = (np.asarray(index, dtype=np.int64)[None, :] * draws + np.arange(draws)[:, None]).ravel()
    return single_draws(spec, rows, seed)


# --- tables, figures, HTML ---------------------------------------------------------------------------


def _tables(label: str, run: _Run, threshold: JaccardThreshold) -> dict[str, pd.DataFrame]:
    masks, n = run.masks, run.n
    rows = []
    for i, name in enumerate(run.inputs):
        rows.append(
            {
                "results": label,
                "input": name,
                "measure": "",
                "mask_factor": "",
                "config": "none",
                "top1": run.plain[i, 0] / n[i],
                "top5": run.plain[i, 1] / n[i],
                "jaccard": np.nan,
                "n": int(n[i]),
                "label_source": run.label_source,
            }
        )
        for r, (m, f, c) in enumerate(masks.rows):
            jac = run.masked_jaccard[i, r] / n[i] if m in run.classifier_maps else np.nan
            rows.append(
                {
                    "results": label,
                    "input": name,
                    "measure": m,
                    "mask_factor": f,
                    "config": c.name,
                    "top1": run.masked[i, r, 0] / n[i],
                    "top5": run.masked[i, r, 1] / n[i],
                    "jaccard": jac,
                    "n": int(n[i]),
                    "label_source": run.label_source,
                }
            )
    accuracy = pd.DataFrame(rows)
    jaccard_rows = [
        {
            "results": label,
            "input": name,
            "measure": m,
            "factor": f,
            "jaccard": run.plain_jaccard[i, g] / n[i],
        }
        for i, name in enumerate(run.inputs)
        for g, (m, f) in enumerate(masks.labels)
        if m in run.classifier_maps
    ]
    jaccard_unmasked = pd.DataFrame(
        jaccard_rows, columns=["results", "input", "measure", "factor", "jaccard"]
    )
    spearman, clusters = [], []
    for m in dict.fromkeys(m for m, _ in masks.labels):
        profiles, factors = _profiles(run, m)
        rho = spearman_profiles(profiles, profiles[:1])  # [I, F] vs the original input's profile
        spearman += [
            {"results": label, "measure": m, "input": name, "mask_factor": f, "rho": rho[i, j]}
            for i, name in enumerate(run.inputs[1:], start=1)
            for j, f in enumerate(factors)
        ]
        flat = profiles.reshape(-1, profiles.shape[-1])
        if flat.shape[0] >= 2:
            result = cluster_profiles(flat)
            clusters += [
                {
                    "results": label,
                    "measure": m,
                    "input": name,
                    "mask_factor": f,
                    "cluster": int(result.labels[i * len(factors) + j]),
                }
                for i, name in enumerate(run.inputs)
                for j, f in enumerate(factors)
            ]
    class_rows = [
        sensitivity_table(da, top=10, categories=_categories_for(run, da)).assign(results=label, measure=m)
        for m, da in run.classifier_maps.items()
    ]
    class_sensitivity = (
        pd.concat(class_rows, ignore_index=True)
        if class_rows
        else pd.DataFrame(columns=["factor", "rank", "class", "name", "value", "results", "measure"])
    )
    masked = accuracy[accuracy["config"] != "none"][
        ["results", "input", "measure", "mask_factor", "config", "jaccard"]
    ]
    unmasked = jaccard_unmasked.rename(columns={"factor": "mask_factor"}).assign(config="none")
    candidates = pd.concat([unmasked, masked], ignore_index=True)
    candidates = candidates[candidates["jaccard"] > threshold.tau].assign(tau=threshold.tau)
    return {
        "accuracy": accuracy,
        "jaccard_unmasked": jaccard_unmasked,
        "spearman": pd.DataFrame(spearman, columns=["results", "measure", "input", "mask_factor", "rho"]),
        "clusters": pd.DataFrame(clusters, columns=["results", "measure", "input", "mask_factor", "cluster"]),
        "class_sensitivity": class_sensitivity,
        "jaccard_candidates": candidates.sort_values("jaccard", ascending=False, ignore_index=True),
    }


def _categories_for(run: _Run, da: xr.DataArray) -> Sequence[str] | None:
    cats = run.categories
    return cats if cats is not None and len(cats) == da.sizes["unit"] else None


def _profiles(run: _Run, measure: str) -> tuple[np.ndarray, list[str]]:
    """Top-1 profiles ``[inputs, factors, configs]`` of one measure (row 0 = the original input)."""
    masks = run.masks
    g_index = [g for g, (m, _) in enumerate(masks.labels) if m == measure]
    factors = [masks.labels[g][1] for g in g_index]
    nc = len(masks.configs)
    rows = np.concatenate([np.arange(g * nc, (g + 1) * nc) for g in g_index])
    top1 = run.masked[:, rows, 0] / run.n[:, None]
    return top1.reshape(len(run.inputs), len(factors), nc), factors


def _figures(label: str, run: _Run, tables: dict[str, pd.DataFrame], out: Path) -> dict[str, Path]:
    figures = {}
    spearman = tables["spearman"]
    for m in dict.fromkeys(m for m, _ in run.masks.labels):
        part = spearman[spearman["measure"] == m]
        if not part.empty:
            grid = part.pivot(index="input", columns="mask_factor", values="rho")
            grid = grid.loc[
                [i for i in run.inputs if i in grid.index],
                [f for f in dict.fromkeys(f for _, f in run.masks.labels) if f in grid.columns],
            ]
            figures[f"{label}_spearman_{m}"] = _save(
                _heatmap(grid, f"{label}: Spearman rho vs original ({m})"), out / f"{label}_spearman_{m}.png"
            )
        profiles, factors = _profiles(run, m)
        flat = profiles.reshape(-1, profiles.shape[-1])
        if flat.shape[0] >= 2:
            names = [f"{i} | {f}" for i in run.inputs for f in factors]
            figures[f"{label}_dendrogram_{m}"] = _save(
                _dendrogram(cluster_profiles(flat), names, f"{label} ({m})"),
                out / f"{label}_dendrogram_{m}.png",
            )
    if run.classifier_maps:
        figures[f"{label}_class_decay"] = _save(
            plot_sensitivity_decay(run.classifier_maps), out / f"{label}_class_decay.png"
        )
    return figures


def _heatmap(grid: pd.DataFrame, title: str) -> Figure:
    fig = Figure(figsize=(3.5 + 0.55 * grid.shape[1], 2.5 + 0.4 * grid.shape[0]), layout="constrained")
    ax = fig.subplots()
    values = grid.to_numpy(dtype=float)
    image = ax.imshow(values, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6)
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=60, ha="right")
    ax.set_yticks(range(grid.shape[0]), grid.index)
    ax.set_xlabel("mask factor")
    ax.set_ylabel("input augmentation")
    ax.set_title(title, fontsize="small")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def _dendrogram(result: ProfileClusters, names: Sequence[str], title: str) -> Figure:
    fig = Figure(figsize=(7.0, 1.0 + 0.16 * len(names)), layout="constrained")
    ax = fig.subplots()
    hierarchy.dendrogram(
        result.linkage,
        labels=list(names),
        orientation="left",
        color_threshold=result.cut,
        leaf_font_size=6,
        ax=ax,
    )
    ax.axvline(result.cut, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("distance sqrt(1 - |rho|)")
    ax.set_title(f"{title}: average linkage, cut at {result.cut}", fontsize="medium")
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    return path


def _html_section(
    label: str,
    run: _Run,
    tables: dict[str, pd.DataFrame],
    threshold: JaccardThreshold,
    figures: dict[str, Path],
    out: Path,
) -> str:
    acc = tables["accuracy"]
    plain = acc[acc["config"] == "none"][["input", "top1", "top5", "n"]]
    what = (
        "accuracy"
        if run.label_source == "true"
        else "agreement with the unmasked prediction on the original image"
    )
    parts = [
        f"<h3>{html.escape(label)}</h3>",
        f"<p>{len(run.masks)} mask rows ({len(run.masks.labels)} maps x {len(run.masks.configs)} "
        f"configurations) at checkpoints {html.escape(', '.join(run.masks.checkpoints))}; "
        f"top-1/top-5 {html.escape(what)}.</p>",
        plain.to_html(index=False, float_format="{:.3f}".format, classes="augsens-table"),
    ]
    for name, path in figures.items():
        parts.append(
            f'<figure><img src="{html.escape(path.relative_to(out).as_posix())}" alt="{html.escape(name)}">'
            f"<figcaption>{html.escape(name)}</figcaption></figure>"
        )
    if run.classifier_maps:
        candidates = tables["jaccard_candidates"].head(20)
        parts.append(
            f"<p>Single-class significance threshold tau = {threshold.tau:.5f} (chance mean Jaccard "
            f"{threshold.expected:.5f}; {threshold.n_classes} classes, {threshold.n_samples} images, "
            f"top-{threshold.k}, {threshold.repeats} simulated means). "
            f"{len(tables['jaccard_candidates'])} entries exceed it; the largest:</p>"
        )
        parts.append(candidates.to_html(index=False, float_format="{:.4f}".format, classes="augsens-table"))
    return "\n".join(parts)


# --- small helpers -----------------------------------------------------------------------------------


def _open_tree(results: xr.DataTree | str | Path) -> xr.DataTree:
    if isinstance(results, xr.DataTree):
        return results
    from augsens.results import open_results

    return open_results(results)


def _labelled(results_dirs: Sequence[str | Path]) -> Iterator[tuple[str, Path]]:
    if isinstance(results_dirs, (str, Path)) or not results_dirs:
        raise UserInputError(
            f"results_dirs={results_dirs!r} must be a non-empty sequence of results folders."
        )
    seen: dict[str, int] = {}
    for path in map(Path, results_dirs):
        name = path.resolve().name or "results"
        seen[name] = seen.get(name, 0) + 1
        yield (name if seen[name] == 1 else f"{name}-{seen[name]}"), path


def _unknown(what: str, name: str, known: Any, fix: str = "") -> str:
    known = list(known)
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=3)
    hint = f" Did you mean {close!r}?" if close else ""
    more = " ..." if len(known) > 20 else ""
    return f"unknown {what} {name!r}.{hint} Available: {known[:20]!r}{more}.{' ' + fix if fix else ''}"


def _device_of(module: nn.Module) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    for buffer in module.buffers():
        return buffer.device
    return torch.device("cpu")


@contextlib.contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode for the call; every submodule's own training flag restored afterwards."""
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag

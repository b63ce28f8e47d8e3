"""Single-channel (HSV) segments: pieces of a network run alone on the hue, saturation or value channel.

Experimental series 3 of the paper (``authors-code-spec.md`` section 6, ``paper-notes.md`` section 7).  A
*segment* is a consecutive run of a network's modules (e.g. AlexNet ``features.3``-``features.5``) with a
few selected output channels.  It is fed one HSV channel of the augmented image, repeated to the
in-channels of the segment's first convolution, at full image resolution, whatever depth the segment has
in the network.  :class:`SegmentModel` is that computation as an ``nn.Module``; :class:`SegmentBank`
holds every segment x channel branch so one forward runs them all.  Wrapped with
``augsens.models.load(bank, mean=(0, 0, 0), std=(1, 1, 1))`` (the segment converts colours itself and
expects images in ``[0, 1]``), a bank runs through any study kind like a user model; its checkpoints are
the branch names ``"<segment>_<channel>"``.

:func:`segment_comparison` then compares the correlation pattern of the factors' sensitivities *across
the pixels of each unit* between the HSV segments and the same units inside the full network (the
paper's Figure 5, notebook 5-2).

Segment files are JSON in the authors' layout (a list of entries, or ``{"segments": [...]}``)::

    {"unit_name": "conv2", "module_type": "sequential",
     "modules_names": ["features.3", "features.4", "features.5"],
     "neurons": {"features.3": {"10": [], "45": []}}}

``neurons`` maps the module where channels are selected to ``{channel: reasons}`` (reasons are free-form
notes, kept but not used).  See :func:`example_segments` for the files shipped with augsens.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
import scipy.stats
import torch
import xarray as xr
from torch import nn

from augsens.analysis.correlation import _as_factor_maps, plot_heatmap, save_figure
from augsens.augment import IMAGENET_MEAN, IMAGENET_STD, paper_rgb_to_hsv, postprocess, rgb_to_hsv
from augsens.errors import MissingFileError, UnknownNameError, UserInputError

__all__ = [
    "HSV_CHANNELS",
    "SegmentSpec",
    "load_segments",
    "example_segments",
    "SegmentModel",
    "SegmentBank",
    "pixel_correlation",
    "segment_comparison",
    "layer_comparison",
    "segment_report",
]

HSV_CHANNELS = ("hue", "saturation", "value")
_Channel = Literal["hue", "saturation", "value"]
_Pair = tuple[int, int]
_EXAMPLES = {"alexnet": "segments_alexnet.json", "resnet18": "segments_resnet18.json"}


@dataclass(frozen=True)
class SegmentSpec:
    """One segment: consecutive modules of a network and the output channels kept.

    Parameters
    ----------
    name : str
        Segment name (``unit_name``).
    modules : tuple of str
        Dotted module names of the full network, run in this order.
    select_module : str
        The module (one of ``modules``) after which only ``channels`` are kept.
    channels : tuple of int
        Selected channel indices of ``select_module``'s output.
    module_type : {"sequential", "residual"}
        The authors' label: ``sequential`` sliced the selected Conv2d's filters, ``residual`` took
        ``output[:, channels]``.  Both give the same numbers; a selected Conv2d is always sliced (cheaper).
    reasons : Mapping
        ``{channel: reasons}`` as found in the file (not used by the computation).
    """

    name: str
    modules: tuple[str, ...]
    select_module: str
    channels: tuple[int, ...]
    module_type: Literal["sequential", "residual"] = "sequential"
    reasons: Mapping[str, Any] = field(default_factory=dict)

    @property
    def output_module(self) -> str:
        """The network module whose output the segment reproduces (its last module)."""
        return self.modules[-1]


def _parse_entry(entry: Mapping[str, Any], where: str) -> SegmentSpec:
    required = ("unit_name", "modules_names", "neurons")
    missing = [k for k in required if k not in entry]
    if missing:
        raise UserInputError(
            f"{where}: segment entry lacks keys {missing!r}; each entry needs {list(required)!r}"
        )
    modules = tuple(str(m) for m in entry["modules_names"])
    neurons = entry["neurons"]
    if not modules or not isinstance(neurons, Mapping) or len(neurons) != 1:
        raise UserInputError(
            f"{where}: segment {entry['unit_name']!r} needs a non-empty 'modules_names' list and 'neurons' "
            f"naming exactly one module, got modules {list(modules)!r} and neurons keys "
            f"{list(neurons) if isinstance(neurons, Mapping) else neurons!r}"
        )
    ((select, chans),) = neurons.items()
    if select not in modules:
        raise UserInputError(
            f"{where}: segment {entry['unit_name']!r} selects channels at {select!r}, "
            f"which is not one of its modules {list(modules)!r}"
        )
    module_type = entry.get("module_type", "sequential")
    if module_type not in ("sequential", "residual"):
        raise UserInputError(f"{where}: module_type must be 'sequential' or 'residual', got {module_type!r}")
    try:
        channels = tuple(int(c) for c in chans)
    except (TypeError, ValueError) as exc:
        raise UserInputError(
            f"{where}: channel keys of {select!r} must be integers, got {list(chans)!r}"
        ) from exc
    if not channels or len(set(channels)) != len(channels) or min(channels) < 0:
        raise UserInputError(
            f"{where}: channels of {select!r} must be distinct non-negative integers, got {channels!r}"
        )
    reasons = dict(chans) if isinstance(chans, Mapping) else {}
    return SegmentSpec(str(entry["unit_name"]), modules, str(select), channels, module_type, reasons)


def load_segments(path: str | Path) -> list[SegmentSpec]:
    """Read a segment JSON file (the authors' layout; see the module docstring).

    Parameters
    ----------
    path : str or Path
        JSON file: a list of entries or an object with a ``"segments"`` list.

    Returns
    -------
    list of SegmentSpec

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Malformed JSON or entries (the message names the entry and key), or duplicate segment names.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(
            f"segment file {str(path)!r} does not exist: pass a segment JSON file, or one of the bundled "
            f"examples {sorted(_EXAMPLES)!r} (example_segments() gives their paths, a template to copy)"
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserInputError(f"segment file {str(path)!r} is not valid JSON: {exc}") from exc
    entries = data.get("segments") if isinstance(data, Mapping) else data
    if not isinstance(entries, list) or not entries:
        raise UserInputError(
            f"segment file {str(path)!r} must hold a non-empty list of segments (or {{'segments': [...]}})"
        )
    specs = [_parse_entry(e, f"{path.name} entry {i}") for i, e in enumerate(entries)]
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserInputError(f"segment file {str(path)!r} names segments {dupes!r} more than once")
    return specs


def example_segments(model: Literal["alexnet", "resnet18"] = "alexnet") -> Path:
    """Path of the segment file shipped with augsens for torchvision's ``alexnet`` or ``resnet18``.

    The channels are illustrative (a few per segment, chosen to span each layer), not the authors' lists.
    """
    if model not in _EXAMPLES:
        raise UserInputError(f"no example segments for {model!r}; available: {sorted(_EXAMPLES)!r}")
    return Path(str(resources.files("augsens.examples").joinpath(_EXAMPLES[model])))


class _SelectChannels(nn.Module):
    """``output[:, channels]`` of a wrapped module (the authors' ``SelectSubsetOutput``)."""

    def __init__(self, module: nn.Module, channels: Sequence[int]) -> None:
        super().__init__()
        self.module = module
        self.register_buffer("channels", torch.as_tensor(list(channels), dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x).index_select(1, self.channels)


def _sliced_conv(conv: nn.Conv2d, channels: Sequence[int]) -> nn.Conv2d:
    """A Conv2d computing only ``channels`` of ``conv``'s output (same weights)."""
    if conv.groups != 1:
        raise UserInputError(
            f"cannot slice a grouped convolution ({conv!r}): select channels at a module after it instead"
        )
    idx = torch.as_tensor(list(channels), dtype=torch.long, device=conv.weight.device)
    # Conv2d holds 2-tuples here; torch annotates the attributes as tuple[int, ...]
    out = nn.Conv2d(
        conv.in_channels,
        len(channels),
        cast(_Pair, conv.kernel_size),
        stride=cast(_Pair, conv.stride),
        padding=cast("str | _Pair", conv.padding),
        dilation=cast(_Pair, conv.dilation),
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    with torch.no_grad():
        out.weight.copy_(conv.weight.index_select(0, idx))
        if conv.bias is not None:
            assert out.bias is not None  # built with bias=True above
            out.bias.copy_(conv.bias.index_select(0, idx))
    return out


class SegmentModel(nn.Module):
    """A network segment run on one HSV channel of the image.

    Parameters
    ----------
    network : torch.nn.Module
        The full network (its modules are copied; the network is not modified).
    spec : SegmentSpec
        Which modules and channels.
    channel : {"hue", "saturation", "value"}
        The HSV channel fed to the segment.
    mode : {"clean", "paper"}
        ``"clean"``: HSV of the ``[0, 1]`` RGB image (torchvision's formulas, hue in turns).
        ``"paper"``: the authors' ``rgb2hsv`` of the *normalised* image (``(x - mean) / std`` after the
        per-channel min-max rescale), as they ran it. Default: ``"clean"``.
    mean, std : sequence of 3 float
        Normalisation used in paper mode. Default: ImageNet's.

    Notes
    -----
    The single channel is repeated to the ``in_channels`` of the segment's first ``Conv2d``.  The only
    child module is ``body``, so ``augsens.models.load`` captures the segment output under ``"body"``.
    A grey image has S = 0 and H = 0 everywhere (no division by zero), so such inputs give finite,
    constant channels; their outputs have zero variance across augmentations, which
    :func:`pixel_correlation` reports as ``constant`` instead of a correlation.

    Shape
    -----
    ``[B, 3, H, W]`` float in [0, 1] -> ``[B, len(spec.channels), H', W']``
    """

    def __init__(
        self,
        network: nn.Module,
        spec: SegmentSpec,
        channel: _Channel,
        *,
        mode: Literal["clean", "paper"] = "clean",
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        if channel not in HSV_CHANNELS:
            raise UnknownNameError(f"unknown HSV channel {channel!r}: choose one of {HSV_CHANNELS!r}")
        if mode not in ("clean", "paper"):
            raise UserInputError(f"mode must be 'clean' or 'paper', got {mode!r}")
        named = dict(network.named_modules())
        missing = [m for m in spec.modules if m not in named]
        if missing:
            import difflib

            hints = {m: difflib.get_close_matches(m, list(named), n=3) for m in missing}
            raise UnknownNameError(
                f"segment {spec.name!r}: modules {missing!r} are not in the network (close: {hints!r}); "
                "name modules of this network in the segment file (see its module_names)"
            )
        layers = []
        for name in spec.modules:
            module = copy.deepcopy(named[name])
            if name == spec.select_module:
                if isinstance(module, nn.Conv2d):
                    self._check_channels(spec, module.out_channels)
                    module = _sliced_conv(module, spec.channels)
                else:
                    module = _SelectChannels(module, spec.channels)
            layers.append(module)
        self.body = nn.Sequential(*layers)
        first = next((m for m in self.body.modules() if isinstance(m, nn.Conv2d)), None)
        if first is None:
            raise UserInputError(
                f"segment {spec.name!r} has no Conv2d, so its input channel count is unknown: start its "
                "modules_names at a convolution"
            )
        self.in_channels = first.in_channels
        self.spec = spec
        self.channel = channel
        self.channel_index = HSV_CHANNELS.index(channel)
        self.mode = mode
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)

    @staticmethod
    def _check_channels(spec: SegmentSpec, available: int) -> None:
        bad = [c for c in spec.channels if c >= available]
        if bad:
            raise UserInputError(
                f"segment {spec.name!r}: channels {bad!r} of {spec.select_module!r} do not exist "
                f"(it has {available} output channels): list channels in [0, {available})"
            )

    def hsv_input(self, x: torch.Tensor) -> torch.Tensor:
        """The segment's input: one HSV channel of ``x`` repeated to ``in_channels``, ``[B, C_in, H, W]``."""
        if self.mode == "paper":
            hsv = paper_rgb_to_hsv(postprocess(x, self.mean, self.std, minmax=True))
        else:
            hsv = rgb_to_hsv(x)
        return hsv[:, self.channel_index : self.channel_index + 1].expand(-1, self.in_channels, -1, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.hsv_input(x))


class SegmentBank(nn.Module):
    """Every segment x HSV channel as one module; child ``"<segment>_<channel>"`` is a :class:`SegmentModel`.

    Parameters
    ----------
    network : torch.nn.Module
        The full network.
    specs : sequence of SegmentSpec
        Segments, e.g. from :func:`load_segments`.
    channels : sequence of str
        HSV channels. Default: all three.
    mode, mean, std
        As in :class:`SegmentModel`.

    Notes
    -----
    ``forward`` returns ``{branch: output}``.  The top-level children are the branches, so
    ``augsens.models.load(bank, mean=(0, 0, 0), std=(1, 1, 1))`` analyses every branch output by default.
    """

    def __init__(
        self,
        network: nn.Module,
        specs: Sequence[SegmentSpec],
        *,
        channels: Sequence[str] = HSV_CHANNELS,
        mode: Literal["clean", "paper"] = "clean",
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        if not specs:
            raise UserInputError("specs is empty: give at least one segment (see load_segments)")
        for spec in specs:
            for ch in channels:
                self.add_module(
                    f"{spec.name}_{ch}",
                    # SegmentModel refuses a channel outside HSV_CHANNELS by name
                    SegmentModel(network, spec, cast(_Channel, ch), mode=mode, mean=mean, std=std),
                )

    @property
    def checkpoints(self) -> list[str]:
        """Branch names, in order."""
        return [name for name, _ in self.named_children()]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: branch(x) for name, branch in self.named_children()}


def _spearman_over_pixels(values: np.ndarray) -> np.ndarray:
    """Spearman matrix between the rows of ``values`` [F, P] (observations = columns); NaN if constant."""
    ranks = scipy.stats.rankdata(values, axis=1)
    ranks -= ranks.mean(axis=1, keepdims=True)
    norm = np.sqrt((ranks * ranks).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = ranks / norm[:, None]
    z[norm == 0] = np.nan
    return np.clip(z @ z.T, -1.0, 1.0)


def pixel_correlation(maps: xr.DataArray, var: xr.DataArray | None = None) -> xr.Dataset:
    """Per unit, the Spearman correlation between factors with the unit's pixels as observations.

    Parameters
    ----------
    maps : xarray.DataArray
        Sensitivities, dims ``("factor", "channel", "y", "x")``.
    var : xarray.DataArray, optional
        Output variance, dims ``("channel", "y", "x")``.  Pixels with zero variance carry no sensitivity
        and are left out; a unit with zero variance at every pixel is constant.

    Returns
    -------
    xarray.Dataset
        ``rho`` (dims ``channel``, ``factor``, ``factor2``), NaN for constant units; ``constant``
        (``channel``, bool): the unit's output never varies (zero variance everywhere) or no factor
        varies across its valid pixels; ``n_pixels`` (``channel``): pixels used (finite in every factor,
        non-zero variance).  A factor constant across the pixels of an otherwise varying unit gives NaN
        in its row and column only.
    """
    da = _as_factor_maps(maps)
    if "channel" not in da.dims:
        raise UserInputError(
            f"pixel_correlation needs maps with a 'channel' dim and pixels, got dims {da.dims!r}: end each "
            "segment at a convolutional module (dims ('factor', 'channel', 'y', 'x'))"
        )
    n_factor, n_channel = da.shape[:2]
    values = da.values.reshape(n_factor, n_channel, -1).astype(np.float64)
    usable = np.asarray(np.isfinite(values).all(axis=0))
    if var is not None:
        usable &= var.transpose("channel", ...).values.reshape(n_channel, -1) > 0
    rho = np.full((n_channel, n_factor, n_factor), np.nan)
    constant = np.zeros(n_channel, dtype=bool)
    for c in range(n_channel):
        v = values[:, c, usable[c]]
        if v.shape[1] < 2 or np.all(v == v[:, :1]):
            constant[c] = True
            continue
        rho[c] = _spearman_over_pixels(v)
    names = da["factor"].values
    return xr.Dataset(
        {
            "rho": (("channel", "factor", "factor2"), rho),
            "constant": ("channel", constant),
            "n_pixels": ("channel", usable.sum(axis=1)),
        },
        coords={"channel": da["channel"].values, "factor": names, "factor2": names},
    )


def _summary(rho: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware mean and std (ddof=1) over ``axis`` without warnings for all-NaN slices."""
    valid = np.isfinite(rho)
    n = valid.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid, rho, 0.0).sum(axis=axis) / n
        dev = np.where(valid, rho - np.expand_dims(mean, axis), 0.0)
        std = np.sqrt((dev * dev).sum(axis=axis) / (n - 1))
    return mean, std


def segment_comparison(
    segment_results: xr.DataTree,
    network_results: xr.DataTree,
    specs: Sequence[SegmentSpec],
    *,
    measures: Sequence[str] = ("shapley", "S1", "ST"),
    channels: Sequence[str] = HSV_CHANNELS,
) -> xr.DataTree:
    """Compare per-unit correlation patterns of HSV segments with the same units in the full network.

    Parameters
    ----------
    segment_results : xarray.DataTree
        Results of a study run on a :class:`SegmentBank` (checkpoints ``"<segment>_<channel>"``).
    network_results : xarray.DataTree
        Results of the same study on the full network, with each segment's :attr:`SegmentSpec.output_module`
        among its checkpoints.
    specs : sequence of SegmentSpec
        The segments of the bank.
    measures : sequence of str
        Sensitivity variables compared (where present in both). Default: ``("shapley", "S1", "ST")``.
    channels : sequence of str
        HSV channels of the bank. Default: all three.

    Returns
    -------
    xarray.DataTree
        ``/<segment>/<measure>`` Datasets with ``rho`` (dims ``source``, ``unit``, ``factor``, ``factor2``;
        sources = the HSV channels then ``"network"``), ``constant`` (``source``, ``unit``), ``mean_rho`` and
        ``std_rho`` (``source``, ``factor``, ``factor2``; over non-constant units, std with ddof=1),
        ``abs_diff_mean`` and ``abs_diff_std`` (``channel``, ``factor``, ``factor2``): ``|rho_HSV -
        rho_network|`` over units, and ``n_units`` (``source``) entering the means.

    Raises
    ------
    KeyError
        A branch or network checkpoint is missing from the results, or a channel is not an HSV channel.
    ValueError
        A segment ends at a checkpoint without a ``channel`` dim, or selects channels it does not have.
    """
    if not channels:
        raise UserInputError(f"channels is empty: name at least one of {HSV_CHANNELS!r}")
    unknown = [c for c in channels if c not in HSV_CHANNELS]
    if unknown:
        raise UnknownNameError(f"unknown HSV channels {unknown!r}: choose among {HSV_CHANNELS!r}")
    nodes: dict[str, xr.Dataset] = {}
    for spec in specs:
        net_node = spec.output_module
        if net_node not in network_results.children:
            raise UnknownNameError(
                f"segment {spec.name!r}: network results lack checkpoint {net_node!r} "
                f"(the segment's last module); available: {list(network_results.children)!r}. Pass the "
                "results of a study on the network with that module among its checkpoints"
            )
        net_ds = network_results[net_node].to_dataset()
        if "channel" not in net_ds.dims:
            raise UserInputError(
                f"segment {spec.name!r} ends at {net_node!r}, whose results have no 'channel' dim (dims "
                f"{tuple(net_ds.dims)!r}): end each segment at a convolutional module"
            )
        size = net_ds.sizes["channel"]
        beyond = [c for c in spec.channels if c >= size]
        if beyond:
            raise UserInputError(
                f"segment {spec.name!r}: channels {beyond!r} are beyond the {size} channels "
                f"of {net_node!r} in the network results: list channels of that module, or pass the results "
                "of the network the segment file was written for"
            )
        net_ds = net_ds.isel(channel=list(spec.channels))
        for m in measures:
            per_source = {}
            for ch in channels:
                branch = f"{spec.name}_{ch}"
                if branch not in segment_results.children:
                    raise UnknownNameError(
                        f"segment results lack branch {branch!r}; "
                        f"available: {list(segment_results.children)!r}. Pass the results of the study on "
                        "the segment bank built from this segment file, with these channels"
                    )
                ds = segment_results[branch].to_dataset()
                if m in ds.data_vars:
                    per_source[ch] = pixel_correlation(ds[m], ds["var"] if "var" in ds.data_vars else None)
            if m not in net_ds.data_vars or not per_source:
                continue
            per_source["network"] = pixel_correlation(
                net_ds[m], net_ds["var"] if "var" in net_ds.data_vars else None
            )
            sources = list(per_source)
            net_factors = [str(f) for f in per_source["network"]["factor"].values]
            for s in sources[:-1]:
                own = [str(f) for f in per_source[s]["factor"].values]
                if own != net_factors:
                    raise UserInputError(
                        f"segment {spec.name!r} ({s}, {m}): the segment results have factors {own!r}, the "
                        f"network results {net_factors!r}: compare the same study (augmentations, kind) "
                        "run on the segment bank and on the network"
                    )
            rho = np.stack([per_source[s]["rho"].values for s in sources])
            constant = np.stack([per_source[s]["constant"].values for s in sources])
            mean, std = _summary(rho, axis=1)
            diff = np.abs(rho[:-1] - rho[-1:])
            dmean, dstd = _summary(diff, axis=1)
            factor = per_source["network"]["factor"].values
            nodes[f"{spec.name}/{m}"] = xr.Dataset(
                {
                    "rho": (("source", "unit", "factor", "factor2"), rho),
                    "constant": (("source", "unit"), constant),
                    "mean_rho": (("source", "factor", "factor2"), mean),
                    "std_rho": (("source", "factor", "factor2"), std),
                    "abs_diff_mean": (("channel", "factor", "factor2"), dmean),
                    "abs_diff_std": (("channel", "factor", "factor2"), dstd),
                    "n_units": ("source", (~constant).sum(axis=1)),
                },
                coords={
                    "source": sources,
                    "channel": sources[:-1],
                    "unit": list(spec.channels),
                    "factor": factor,
                    "factor2": factor,
                },
            )
    return xr.DataTree.from_dict(nodes)


def layer_comparison(comparison: xr.DataTree, measure: str) -> xr.Dataset:
    """Layer x layer comparison of mean correlation patterns (HSV vs HSV and HSV vs network).

    Every (segment, source) pattern is the upper triangle of its ``mean_rho``.  Two patterns are compared
    by the mean absolute difference of their coefficients and by the Spearman correlation between them.

    Parameters
    ----------
    comparison : xarray.DataTree
        Output of :func:`segment_comparison`.
    measure : str
        Measure to compare.

    Returns
    -------
    xarray.Dataset
        ``mean_abs_diff`` and ``spearman`` (dims ``pattern``, ``pattern2``; labels ``"<segment>:<source>"``).
    """
    patterns: dict[str, np.ndarray] = {}
    for seg, node in comparison.children.items():
        if measure not in node.children:
            continue
        mean = cast(xr.DataArray, node[measure]["mean_rho"])
        iu = np.triu_indices(mean.sizes["factor"], k=1)
        for s in mean["source"].values:
            patterns[f"{seg}:{s}"] = mean.sel(source=s).values[iu]
    if not patterns:
        raise UnknownNameError(
            f"measure {measure!r} is in no segment of the comparison; name a measure of both results"
        )
    labels = list(patterns)
    k = len(labels)
    diff = np.full((k, k), np.nan)
    rho = np.full((k, k), np.nan)
    for i, a in enumerate(labels):
        for j, b in enumerate(labels):
            pa, pb = patterns[a], patterns[b]
            ok = np.isfinite(pa) & np.isfinite(pb)
            if ok.sum() >= 1:
                diff[i, j] = float(np.abs(pa[ok] - pb[ok]).mean())
            if ok.sum() >= 2 and np.ptp(pa[ok]) > 0 and np.ptp(pb[ok]) > 0:
                rho[i, j] = float(scipy.stats.spearmanr(pa[ok], pb[ok]).statistic)
    return xr.Dataset(
        {"mean_abs_diff": (("pattern", "pattern2"), diff), "spearman": (("pattern", "pattern2"), rho)},
        coords={"pattern": labels, "pattern2": labels},
    )


def segment_report(
    segment_dir: str | Path,
    network_dir: str | Path,
    segments: str | Path,
    out_dir: str | Path,
    *,
    measures: Sequence[str] = ("shapley", "S1", "ST"),
    channels: Sequence[str] = HSV_CHANNELS,
) -> list[Path]:
    """Figures and tables of :func:`segment_comparison` and :func:`layer_comparison`.

    Parameters
    ----------
    segment_dir, network_dir : str or Path
        Results folders of the study on the segment bank and on the full network.
    segments : str or Path
        The segment JSON file the bank was built from.
    out_dir : str or Path
        Output folder (created).
    measures, channels : sequence of str
        As in :func:`segment_comparison`.

    Returns
    -------
    list of Path
        ``segments_summary.csv`` (segment, measure, source, factor pair, mean and std of rho, mean |diff| to
        the network, units used), then heatmaps: mean rho per segment x measure x source, and the layer
        comparison per measure.
    """
    from augsens.results import open_results

    specs = load_segments(segments)
    comparison = segment_comparison(
        open_results(segment_dir), open_results(network_dir), specs, measures=measures, channels=channels
    )
    if not comparison.children:  # otherwise an empty table and no figure, without a word
        raise UserInputError(
            f"none of the measures {list(measures)!r} is in both the segment and the network results: "
            "name measures both studies computed, e.g. S1 and ST of a sobol study"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, written = [], []
    for seg, node in comparison.children.items():
        for m, leaf in node.children.items():
            ds = leaf.to_dataset()
            factors = [str(f) for f in ds["factor"].values]
            for s in ds["source"].values:
                for i, f in enumerate(factors):
                    for j in range(i + 1, len(factors)):
                        row = {
                            "segment": seg,
                            "measure": m,
                            "source": str(s),
                            "factor": f,
                            "factor2": factors[j],
                            "mean_rho": float(ds["mean_rho"].sel(source=s).values[i, j]),
                            "std_rho": float(ds["std_rho"].sel(source=s).values[i, j]),
                            "n_units": int(ds["n_units"].sel(source=s)),
                        }
                        if s != "network":
                            row["abs_diff_to_network"] = float(
                                ds["abs_diff_mean"].sel(channel=s).values[i, j]
                            )
                        rows.append(row)
                fig = plot_heatmap(
                    ds["mean_rho"].sel(source=s), title=f"{seg} {m} ({s}): mean Spearman over units"
                )
                written.append(save_figure(fig, out / f"segments_{seg}_{m}_{s}.png"))
    for m in measures:
        try:
            lc = layer_comparison(comparison, m)
        except KeyError:
            continue
        fig = plot_heatmap(lc["spearman"], title=f"{m}: Spearman between mean correlation patterns")
        written.append(save_figure(fig, out / f"segments_layers_{m}_spearman.png"))
        fig = plot_heatmap(
            lc["mean_abs_diff"],
            title=f"{m}: mean |difference| of patterns",
            vmin=0.0,
            vmax=1.0,
            cmap="viridis",
        )
        written.append(save_figure(fig, out / f"segments_layers_{m}_abs_diff.png"))
    csv = out / "segments_summary.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return [csv, *written]

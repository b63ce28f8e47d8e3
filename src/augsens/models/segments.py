"""Single-channel (HSV) segments: pieces of a network run alone on the hue, saturation or value channel.

Experimental series 3 of the paper (``docs/paper.md`` §10).  A
*segment* is a consecutive run of a network's modules (e.g. AlexNet ``features.3``-``features.5``) with a
few selected output channels.  It is fed one HSV channel of the augmented image, repeated to the
in-channels of the segment's first convolution, at full image resolution, whatever depth the segment has
in the network.  :class:`SegmentModel` is that computation as an ``nn.Module``; :class:`SegmentBank`
holds every segment x channel branch so one forward runs them all.  Wrapped with
``augsens.models.load(bank, mean=(0, 0, 0), std=(1, 1, 1))`` (the segment converts colours itself and
expects images in ``[0, 1]``), a bank runs through any study kind like a user model; its checkpoints are
the branch names ``"<segment>_<channel>"``.  The comparison of their sensitivities with the full
network's is :mod:`augsens.analysis.segments`.

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

import torch
from torch import nn

from augsens.augment import IMAGENET_MEAN, IMAGENET_STD, paper_rgb_to_hsv, postprocess, rgb_to_hsv
from augsens.errors import MissingFileError, UnknownNameError, UserInputError

__all__ = [
    "HSV_CHANNELS",
    "SegmentSpec",
    "load_segments",
    "example_segments",
    "SegmentModel",
    "SegmentBank",
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
    :func:`augsens.analysis.segments.pixel_correlation` reports as ``constant`` instead of a correlation.

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

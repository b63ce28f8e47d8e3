"""What each checkpoint's output holds: its shape, named dims, and its relative depth in the network.

A conv map ``[C, H, W]``, a transformer block's ``[tokens, C]`` (with or without a class token), a 1-D
sequence and a vector all reach the results with meaningful dims (:func:`augsens.results.output_dims`).
Which axis holds the features is read from the network itself, not guessed from the shape: one dummy
forward records, for every checkpoint, the most recent layer with weights to finish before it (a conv
puts its ``out_channels`` first, a linear layer or layer norm puts its features last) and looks for that
feature count at the two ends of the checkpoint's shape.

The same forward gives each checkpoint a **relative depth**: the share of the network's weighted layers
(modules with parameters of their own, each call counted) that have run when the checkpoint's output is
produced -- 0 at the input, 1 at the output.  Depth profiles of different networks share this axis.

Examples
--------
>>> from augsens.models import load
>>> from augsens.models.layout import checkpoint_layouts
>>> lay = checkpoint_layouts(load("resnet18", weights="random"), ["layer1", "fc"])
>>> lay["layer1"].dims, lay["fc"].dims, lay["fc"].depth
(('channel', 'y', 'x'), ('unit',), 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from augsens.models.capture import LoadedModel, select_output, split_checkpoint
from augsens.results import output_dims

__all__ = ["CheckpointLayout", "checkpoint_layouts"]


@dataclass(frozen=True)
class CheckpointLayout:
    """One checkpoint's output, per sample.

    Attributes
    ----------
    shape : tuple of int
        Per-sample shape for an input of the model's ``input_shape``.
    dims : tuple of str
        Dimension names (:func:`augsens.results.output_dims`).
    depth : float
        Relative depth in [0, 1] (module docstring).
    """

    shape: tuple[int, ...]
    dims: tuple[str, ...]
    depth: float


def _features(module: nn.Module) -> tuple[int, Literal["first", "last"]] | None:
    """Feature count of a weighted layer's output and the axis it sits on (None: not a feature layer)."""
    if isinstance(module, nn.modules.conv._ConvNd):
        return int(module.out_channels), "first"
    if isinstance(module, nn.modules.batchnorm._BatchNorm | nn.modules.instancenorm._InstanceNorm):
        return int(module.num_features), "first"
    if isinstance(module, nn.GroupNorm):
        return int(module.num_channels), "first"
    weight = module._parameters.get("weight")
    if isinstance(weight, torch.Tensor) and weight.ndim >= 1:
        # nn.Linear ([out, in]) and nn.LayerNorm ([features]): features on the last axis
        return int(weight.shape[0] if weight.ndim == 2 else weight.shape[-1]), "last"
    return None


def _channel_axis(
    shape: tuple[int, ...], features: tuple[int, Literal["first", "last"]] | None
) -> Literal["first", "last"] | None:
    if features is None or len(shape) < 2:
        return None
    count, preferred = features
    first, last = shape[0] == count, shape[-1] == count
    if first and last:
        return preferred
    if first:
        return "first"
    if last:
        return "last"
    return None


def checkpoint_layouts(model: LoadedModel, checkpoints: Sequence[str]) -> dict[str, CheckpointLayout]:
    """Shape, dims and relative depth of each checkpoint, from one full dummy forward (batch 1, an input of
    the model's ``input_shape``: 224 x 224 images unless set).

    The positions of a 2-D channels-first or channels-last output are ``token`` in a network on images
    (a transformer's patch tokens) and ``time`` in one on 1-D signals (``input_shape`` ``(C, T)``).

    Parameters
    ----------
    model : LoadedModel
        The network (left as found: hooks removed, training flags restored).
    checkpoints : sequence of str
        Checkpoint names (module names, with an element selector such as ``"blocks.3[0]"`` where the
        module returns a tuple or dict).

    Returns
    -------
    dict of str to CheckpointLayout
        In the order of ``checkpoints``.
    """
    names = list(checkpoints)
    weighted = {
        n: m for n, m in model.module.named_modules() if n and any(True for _ in m.parameters(recurse=False))
    }
    done = 0
    latest: tuple[int, Literal["first", "last"]] | None = None
    seen: dict[str, tuple[tuple[int, ...], tuple[int, Literal["first", "last"]] | None, int]] = {}

    def count(module: nn.Module, _inputs: Any, _output: Any) -> None:
        nonlocal done, latest
        done += 1
        latest = _features(module) or latest

    def make_capture(targets: list[tuple[str, tuple[int | str, ...]]]) -> Any:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            for name, keys in targets:
                if name not in seen:  # a module called twice keeps its first call, as capture() does
                    seen[name] = (tuple(select_output(name, output, keys).shape[1:]), latest, done)

        return hook

    by_module: dict[str, list[tuple[str, tuple[int | str, ...]]]] = {}
    for n in names:
        module_name, keys = split_checkpoint(n)
        by_module.setdefault(module_name, []).append((n, keys))
    modules = dict(model.module.named_modules())
    handles = []
    flags = [(m, m.training) for m in model.module.modules()]
    try:
        # counting hooks first: a weighted checkpoint counts itself before its capture hook reads the count
        handles += [m.register_forward_hook(count) for m in weighted.values()]
        handles += [modules[m].register_forward_hook(make_capture(t)) for m, t in by_module.items()]
        model.module.eval()
        with torch.no_grad():
            model.module(model.example_input())
    finally:
        for h in handles:
            h.remove()
        for m, f in flags:
            m.training = f
    missing = [n for n in names if n not in seen]
    if missing:
        raise ValueError(
            f"modules {missing!r} did not run during the forward pass, so they have no output to "
            "capture: choose modules that the model's forward calls (see m.checkpoints)"
        )
    total = max(done, 1)
    sequence: Literal["token", "time"] = "time" if len(model.input_shape) == 2 else "token"
    out = {}
    for n in names:
        shape, features, at = seen[n]
        dims = output_dims(shape, _channel_axis(shape, features), sequence=sequence)
        out[n] = CheckpointLayout(shape, dims, at / total)
    return out

"""Batch normalisation folded into the convolution before it, for inference speed.

In eval mode a ``BatchNorm2d`` that directly follows a ``Conv2d`` is an affine map per channel, so it can
be folded into that convolution's weights and bias (Ioffe & Szegedy 2015, sec. 3)::

    s = gamma / sqrt(running_var + eps),    W' = W * s,    b' = (b - running_mean) * s + beta

(torch's ``fuse_conv_bn_weights``), after which the normalisation layer does no arithmetic.  On a CPU
that removes one pass over every normalised activation: EfficientNet-Lite0 in float32 + channels_last
ran 1.3-1.5x faster with its 49 normalisations folded (``docs/performance.md``).  The values change by
float32 rounding only.

Pairs are found from one forward pass, not from the model's code: a normalisation whose input is the very
tensor a convolution returned.  A pair is left alone when either module is a checkpoint (its output must
stay what the unfolded network computes), when a module runs more than once per forward, or when the
normalisation is in training mode or of a class whose forward is not known.  The folded copy is then
checked against the original on a random batch at every checkpoint; if any output differs by more than
rounding (the convolution's output was also used elsewhere, say), the original is kept.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from augsens.models.capture import LoadedModel, split_checkpoint

__all__ = ["FoldedNorm", "Folding", "fold_batchnorm"]

# largest difference at a checkpoint, relative to its largest magnitude, still taken as rounding: three
# orders above float32's epsilon (measured: 5e-7 on EfficientNet-Lite0), far below what a wrong fold
# changes (the whole normalisation)
_TOLERANCE = 1e3 * torch.finfo(torch.float32).eps


class FoldedNorm(nn.Module):
    """A normalisation folded into the convolution before it: what is left of its forward (identity,
    or the dropout and activation of timm's ``BatchNormAct2d``, kept under their own names)."""

    def __init__(self, drop: nn.Module | None = None, act: nn.Module | None = None) -> None:
        super().__init__()
        self.drop = drop
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop is not None:
            x = self.drop(x)
        if self.act is not None:
            x = self.act(x)
        return x


@dataclass(frozen=True)
class Folding:
    """The outcome of :func:`fold_batchnorm`: the model to run, the ``(conv, norm)`` pairs folded and, when
    the fold was refused after the check, why."""

    model: LoadedModel
    pairs: tuple[tuple[str, str], ...]
    refused: str | None = None


def _foldable(norm: nn.Module) -> bool:
    if norm.training or not getattr(norm, "track_running_stats", False) or norm.running_var is None:
        return False
    if type(norm) is nn.BatchNorm2d:
        return True
    # timm's BatchNormAct2d: batch_norm, then self.drop, then self.act (timm.layers.norm_act)
    return type(norm).__name__ == "BatchNormAct2d" and type(norm).__module__.startswith("timm.")


def _pairs(model: LoadedModel, x: torch.Tensor, keep: set[str]) -> list[tuple[str, str]]:
    """``(conv, norm)`` names where the norm's input is the tensor the conv returned, from one forward."""
    # the conv outputs are held (not only their id()) so that no later tensor can reuse an id
    produced: dict[int, tuple[str, torch.Tensor]] = {}
    calls: Counter[str] = Counter()
    found: list[tuple[str, str]] = []
    handles = []

    def on_conv(name: str) -> Callable[[nn.Module, object, torch.Tensor], None]:
        def hook(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
            calls[name] += 1
            produced[id(out)] = (name, out)

        return hook

    def on_norm(name: str) -> Callable[[nn.Module, tuple[object, ...]], None]:
        def hook(_m: nn.Module, args: tuple[object, ...]) -> None:
            calls[name] += 1
            source = produced.get(id(args[0])) if args else None
            if source is not None:
                found.append((source[0], name))

        return hook

    for name, mod in model.module.named_modules():
        if isinstance(mod, nn.Conv2d):
            handles.append(mod.register_forward_hook(on_conv(name)))
        elif isinstance(mod, nn.BatchNorm2d):
            handles.append(mod.register_forward_pre_hook(on_norm(name)))
    try:
        with torch.no_grad():
            model.module(x)
    finally:
        for h in handles:
            h.remove()
    modules = dict(model.module.named_modules())
    return [
        (c, b)
        for c, b in found
        if calls[c] == 1 and calls[b] == 1 and c not in keep and b not in keep and _foldable(modules[b])
    ]


def _fold_pair(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> None:
    # torch's own fold, on float64 copies: the folded weights carry one rounding to their dtype
    def wide(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.detach().double()

    assert norm.running_mean is not None and norm.running_var is not None  # checked by _foldable
    dtype = conv.weight.dtype
    weight, bias = fuse_conv_bn_weights(
        conv.weight.detach().double(),
        wide(conv.bias),
        norm.running_mean.double(),
        norm.running_var.double(),
        norm.eps,
        wide(norm.weight),
        wide(norm.bias),
    )
    conv.weight = nn.Parameter(weight.to(dtype), requires_grad=False)
    conv.bias = nn.Parameter(bias.to(dtype), requires_grad=False)


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


def fold_batchnorm(model: LoadedModel, checkpoints: Sequence[str], *, seed: int = 0) -> Folding:
    """A copy of ``model`` with its eval-mode batch normalisations folded into the convolutions before
    them, or ``model`` itself when there is nothing to fold or the check refused the fold.

    Parameters
    ----------
    model : LoadedModel
        The network (not modified), with its :attr:`~LoadedModel.input_shape` set to the inputs' shape.
    checkpoints : sequence of str
        The modules whose outputs the study reads: neither side of a pair may be one, and the folded copy
        must reproduce every one of them on a random batch to float32 rounding.
    seed : int
        Seed of that random batch.

    Returns
    -------
    Folding
        The model to run and the pairs folded (none when ``refused`` says why the original is kept).
    """
    keep = {split_checkpoint(c)[0] for c in checkpoints}
    gen = torch.Generator().manual_seed(seed)
    dtype = next((p.dtype for p in model.module.parameters() if p.is_floating_point()), torch.float32)
    x = torch.rand(2, *model.input_shape, generator=gen, dtype=dtype).to(model.device)
    pairs = _pairs(model, x, keep)
    if not pairs:
        return Folding(model, ())
    folded = copy.deepcopy(model)
    modules = dict(folded.module.named_modules())
    for conv_name, norm_name in pairs:
        conv, norm = modules[conv_name], modules[norm_name]
        assert isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)  # as _pairs found them
        _fold_pair(conv, norm)
        tail = FoldedNorm(getattr(norm, "drop", None), getattr(norm, "act", None))
        _replace(folded.module, norm_name, tail)
    folded.reindex()
    with torch.no_grad():
        want = model.capture(x, list(checkpoints), softmax=False)
        got = folded.capture(x, list(checkpoints), softmax=False)
    for name, ref in want.items():
        scale = float(ref.detach().abs().max())
        diff = float((got[name] - ref).abs().max())
        if not diff <= _TOLERANCE * max(scale, torch.finfo(torch.float32).tiny):
            return Folding(
                model,
                (),
                refused=f"folding changed {name!r} by {diff:.3g} (largest magnitude {scale:.3g}): "
                "a convolution's output is used beyond its normalisation",
            )
    return Folding(folded, tuple(pairs))

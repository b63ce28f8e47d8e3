"""Adapters: the ecosystem's ops as :class:`~augsens.augment.protocol.Augmentation` objects.

* :func:`batched` -- an op that already takes per-sample parameter tensors (kornia's functional style,
  ``op(x, factor)`` with ``factor`` ``[B]``, or plain tensor arithmetic): called once per batch, at the
  speed of the op itself;
* :func:`per_image` -- any callable on one sample with scalar parameters (a PIL-free numpy or torch
  function, an op of your own augmentation policy): called once per sample;
* :func:`torchvision_op` -- a ``torchvision.transforms.v2.functional`` op (``adjust_gamma``,
  ``adjust_sharpness``, ``posterize``, ...): these take a batch but one Python number per parameter, so
  per-sample values need one call per sample, as :func:`per_image` does.

Cost of a per-sample adapter
----------------------------
A per-sample op is called ``B`` times per batch instead of once: the work is the same, but each call
pays Python and dispatch overhead (a few microseconds on a CPU, tens on a GPU, where every call also
launches its own small kernels, and single images leave most of the GPU idle), and the parameters
cross to the host once per batch (one ``tolist()`` per parameter, a device sync).  ``benchmarks/
per_image_adapter.py`` measures it side by side: the batched built-in op against torchvision's same op
wrapped per image, at several batch sizes.  Where an op has a batched form (or can be written with
per-sample tensors broadcast as ``[B, 1, ..., 1]``), :func:`batched` avoids the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from augsens.errors import UserInputError

from .protocol import Augmentation, ParamSpec

__all__ = ["batched", "per_image", "torchvision_op"]


def _op_name(op: Callable[..., Any]) -> str:
    return str(getattr(op, "__name__", type(op).__name__))


def _label(fn: Callable[..., Any], op: Callable[..., Any], kind: str) -> None:
    """Name the adapter after the op, and point at the op for the code hash (``__augsens_wraps__``; not
    ``__wrapped__``, which would make ``inspect.signature`` report the op's keywords, not the adapter's)."""
    fn.__name__ = fn.__qualname__ = f"{kind}({_op_name(op)})"
    fn.__augsens_wraps__ = op  # type: ignore[attr-defined]


def _check(op: object, params: Sequence[ParamSpec]) -> tuple[ParamSpec, ...]:
    if not callable(op):
        raise UserInputError(f"an adapter wraps a callable, got {op!r}")
    specs = tuple(params)
    for p in specs:
        if not isinstance(p, ParamSpec):
            raise UserInputError(f"adapter parameters must be ParamSpec objects, got {p!r}")
    return specs


def batched(
    name: str,
    op: Callable[..., torch.Tensor],
    params: Sequence[ParamSpec],
    *,
    keywords: Mapping[str, str] | None = None,
    broadcast: bool = False,
    constants: Mapping[str, Any] | None = None,
    doc: str = "",
    input_shape: str | None = None,
) -> Augmentation:
    """An augmentation from an op that takes per-sample parameter tensors: ``op(x, **{kw: tensor [B]})``.

    Parameters
    ----------
    name : str
        The augmentation's name.
    op : callable
        ``op(x, **parameters, **constants) -> tensor like x``, each parameter a tensor ``[B]`` (or
        ``[B, 1, ..., 1]`` with ``broadcast``).
    params : sequence of ParamSpec
        Its parameters, ranges and identity values.
    keywords : mapping, optional
        ``{parameter name: op's keyword}`` where they differ.
    broadcast : bool
        Pass each parameter as ``[B, 1, ..., 1]`` (``x.ndim`` dimensions), for ops written with plain
        broadcasting arithmetic.
    constants, doc, input_shape
        As in :class:`~augsens.augment.protocol.Augmentation`.

    Examples
    --------
    >>> import torch
    >>> def blend(img, alpha):  # a batched op of one's own: alpha [B, 1, 1]
    ...     return alpha * img + (1 - alpha) * img.mean(dim=(-1, -2), keepdim=True)
    >>> op = batched("blend", blend, [ParamSpec("alpha", 0.5, 1.5, identity=1.0)], broadcast=True)
    >>> op(torch.arange(4.0).view(1, 2, 2), alpha=torch.tensor([0.5]))
    tensor([[[0.7500, 1.2500],
             [1.7500, 2.2500]]])
    """
    specs = _check(op, params)
    rename = dict(keywords or {})

    def fn(x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        args = {}
        for p in specs:
            value = kwargs.pop(p.name)
            if broadcast:
                value = value.to(x.dtype).view(-1, *[1] * (x.ndim - 1))
            args[rename.get(p.name, p.name)] = value
        return op(x, **args, **kwargs)

    _label(fn, op, "batched")
    return Augmentation(
        name, specs, fn, constants or {}, doc or f"batched {_op_name(op)}", input_shape=input_shape
    )


def per_image(
    name: str,
    op: Callable[..., torch.Tensor],
    params: Sequence[ParamSpec],
    *,
    keywords: Mapping[str, str] | None = None,
    constants: Mapping[str, Any] | None = None,
    doc: str = "",
    input_shape: str | None = None,
) -> Augmentation:
    """An augmentation from a callable on one sample with scalar parameters, applied sample by sample.

    ``op(x[b], **{keyword: python number}, **constants)`` for each sample ``b`` (``int`` for ``integer``
    parameters, ``float`` otherwise); the results are stacked.  See the cost model in the module
    docstring.

    Parameters
    ----------
    name : str
        The augmentation's name.
    op : callable
        ``op(sample, **parameters, **constants) -> tensor like sample`` (``sample`` is ``x[b]``, e.g.
        ``[C, H, W]``).
    params : sequence of ParamSpec
        Its parameters, ranges and identity values.
    keywords : mapping, optional
        ``{parameter name: op's keyword}`` where they differ.
    constants, doc, input_shape
        As in :class:`~augsens.augment.protocol.Augmentation`.

    Examples
    --------
    >>> import torch
    >>> op = per_image("scale", lambda s, k: s * k, [ParamSpec("k", 0.5, 2.0, identity=1.0)])
    >>> op(torch.ones(2, 3), k=torch.tensor([0.5, 2.0])).tolist()
    [[0.5, 0.5, 0.5], [2.0, 2.0, 2.0]]
    """
    specs = _check(op, params)
    rename = dict(keywords or {})

    def fn(x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        # one host copy per parameter and batch: the op takes Python numbers
        values = {p.name: kwargs.pop(p.name).tolist() for p in specs}
        samples = []
        for b in range(x.shape[0]):  # per sample: the op has no form with per-sample parameters
            args = {
                rename.get(p.name, p.name): int(values[p.name][b]) if p.integer else float(values[p.name][b])
                for p in specs
            }
            samples.append(op(x[b], **args, **kwargs))
        return torch.stack(samples) if samples else x.clone()

    _label(fn, op, "per_image")
    return Augmentation(
        name, specs, fn, constants or {}, doc or f"{_op_name(op)} per sample", input_shape=input_shape
    )


def torchvision_op(
    op: Callable[..., torch.Tensor],
    params: Sequence[ParamSpec],
    *,
    name: str | None = None,
    keywords: Mapping[str, str] | None = None,
    constants: Mapping[str, Any] | None = None,
    doc: str = "",
) -> Augmentation:
    """An augmentation from a ``torchvision.transforms.v2.functional`` op, applied per sample.

    The op takes an image batch but one number per parameter, so each sample is its own call
    (:func:`per_image`; the cost model is in the module docstring).  ``name`` defaults to the op's name
    without ``adjust_`` (``adjust_gamma`` -> ``gamma``).  Images are ``[B, 3, H, W]``.

    Examples
    --------
    >>> import torch, torchvision.transforms.v2.functional as F
    >>> gamma = torchvision_op(F.adjust_gamma, [ParamSpec("gamma", 0.5, 2.0, identity=1.0)])
    >>> x = torch.full((2, 3, 4, 4), 0.25)
    >>> gamma(x, gamma=torch.tensor([1.0, 2.0]))[:, 0, 0, 0].tolist()
    [0.25, 0.0625]
    """
    base = _op_name(op)
    label = name or base.removeprefix("adjust_")
    return per_image(
        label,
        op,
        params,
        keywords=keywords,
        constants=constants,
        doc=doc or f"torchvision {base}, per sample",
        input_shape="[B, 3, H, W]",
    )

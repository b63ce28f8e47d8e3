"""Apply one augmentation, or a set of them in a per-sample order, with per-sample switches.

Parameters are data: every value is a tensor ``[B]`` made by the design/decode steps, and nothing here
draws randomness, so any design row replays exactly.  Every augmentation -- the paper's twelve, a
plugin's, a user's -- goes through the same path: :meth:`Augmentation.run
<augsens.augment.protocol.Augmentation.run>` on inputs checked and prepared by the augmentation itself
(:meth:`~augsens.augment.protocol.Augmentation.prepare`; rules in :mod:`augsens.augment.protocol`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .protocol import Augmentation, Mode, check_input, check_mode, check_switch
from .registry import spec

__all__ = ["apply", "compose"]

#: Rows per chunk when composing on CPU (cache blocking; see compose).
_CPU_CHUNK = 16


def apply(
    name: str | Augmentation,
    x: torch.Tensor,
    *,
    on: torch.Tensor | None = None,
    mode: Mode = "clean",
    validate: bool = True,
    **params: torch.Tensor,
) -> torch.Tensor:
    """Apply one augmentation to a batch, each sample with its own parameters.

    Parameters
    ----------
    name : str or Augmentation
        An augmentation: a name of :func:`augsens.augment.available` (close matches are suggested), a
        ``"package.module:name"`` reference or an :class:`~augsens.augment.protocol.Augmentation`.
    x : torch.Tensor
        A float batch ``[B, ...]`` (any float dtype) on any device, of the shape the augmentation declares:
        images ``[B, 3, H, W]`` in [0, 1] for the paper's twelve.
    on : torch.Tensor, optional
        Bool ``[B]`` switch: rows with ``False`` are returned exactly unchanged.  ``None`` = all on.
        With no row on, ``x`` itself is returned; with all on, no copy of ``x`` is made.
    mode : {"clean", "paper"}
        ``"paper"`` selects the authors' variants where they differ (rotation: nearest neighbour and
        uint8 truncation; elliptic local blur: uint8 truncation; erasing: the no-op rule); other ops
        are the same in both modes.  See :mod:`augsens.augment.ops`.
    validate : bool
        Check parameter shapes, dtypes and bounds (a device -> host sync per parameter).  Pass
        ``False`` when the values are in bounds by construction (the engine does); keyword names and
        tensor types are always checked.
    **params : torch.Tensor
        The augmentation's parameters, each a tensor ``[B]`` (float or integer; parameters marked
        integer are rounded, half to even, before the op sees them).  A value is valid inside the
        parameter's bounds (its range, or its distribution's truncated support) or equal to its identity
        value.

    Returns
    -------
    torch.Tensor
        Augmented images, same shape, dtype and device as ``x``, values in [0, 1].

    Raises
    ------
    KeyError
        Unknown augmentation name.
    TypeError
        Wrong type or dtype of ``x``, ``on`` or a parameter; missing or unexpected keywords.
    ValueError
        Wrong shape, out-of-bounds or non-finite parameter value, unknown mode.

    Shape
    -----
    ``x [B, 3, H, W]``, parameters ``[B]``, ``on [B]`` -> ``[B, 3, H, W]``

    Examples
    --------
    >>> x = torch.full((2, 3, 8, 8), 0.5)
    >>> y = apply("brightness", x, factor=torch.tensor([1.0, 2.0]))
    >>> y[:, 0, 0, 0].tolist()
    [0.5, 1.0]
    >>> apply("hflip", x, on=torch.tensor([False, False])) is x
    True
    """
    return spec(name)(x, on=on, mode=mode, validate=validate, **params)


def _check_order(order: object, batch: int, n: int, validate: bool) -> torch.Tensor:
    if not isinstance(order, torch.Tensor):
        raise TypeError(f"order must be an integer tensor [B, {n}], got {type(order).__name__}")
    if order.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"order must have an integer dtype (torch.long), got {order.dtype}")
    if order.shape != (batch, n):
        raise ValueError(f"order must have shape [B, n] = [{batch}, {n}], got {list(order.shape)}")
    order = order.cpu().long()
    if validate and n:
        expected = torch.arange(n)
        bad = ~(order.sort(dim=1).values == expected).all(dim=1)
        if bool(bad.any()):
            row = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"order[{row}] = {order[row].tolist()} is not a permutation of 0..{n - 1} "
                "(order[b, k] is the index into names of the augmentation applied at step k)"
            )
    return order


def compose(
    x: torch.Tensor,
    names: Sequence[str | Augmentation],
    params: Mapping[str, Mapping[str, torch.Tensor]],
    *,
    order: torch.Tensor | None = None,
    on: Mapping[str, torch.Tensor] | None = None,
    mode: Mode = "clean",
    validate: bool = True,
) -> torch.Tensor:
    """Apply a set of augmentations to every sample, each sample in its own order and with its switches.

    ``order[b, k]`` is the index into ``names`` of the augmentation applied at step ``k`` to sample
    ``b`` (the authors' permutation variable, docs/paper.md §6).  There is no loop over samples: for each step
    and each augmentation the op runs once on the sub-batch whose step-k augmentation it is (docs/paper.md
    §6), so a batch costs at most ``n^2`` op calls on sub-batches that sum to ``n`` full batches.

    Parameters
    ----------
    x : torch.Tensor
        Images ``[B, 3, H, W]``, float in [0, 1].
    names : sequence of str or Augmentation
        Distinct augmentations (names, references or objects), e.g. :data:`augsens.augment.SET1`.
    params : mapping
        ``{name: {keyword: tensor [B]}}`` by augmentation name; parameter-free augmentations may be left
        out.
    order : torch.Tensor, optional
        Integer ``[B, len(names)]``, each row a permutation of ``0 .. len(names) - 1``.  ``None``: every
        sample in the order of ``names``.
    on : mapping, optional
        ``{name: bool tensor [B]}``; a missing name is on for every sample.
    mode : {"clean", "paper"}
        See :func:`apply`.
    validate : bool
        Check parameter values and that ``order`` rows are permutations (device -> host syncs).

    Returns
    -------
    torch.Tensor
        Augmented images, same shape, dtype and device as ``x``.

    Notes
    -----
    The schedule (``order`` and ``on``) is read on the host once per call; pass them as CPU tensors (the
    design lives there) and the only device syncs left are the value checks of ``validate=True``.

    Shape
    -----
    ``x [B, 3, H, W]``, parameters ``[B]``, ``order [B, n]``, switches ``[B]`` -> ``[B, 3, H, W]``

    Examples
    --------
    >>> x = torch.rand(2, 3, 16, 16)
    >>> p = {"brightness": {"factor": torch.tensor([0.5, 2.0])}}
    >>> y = compose(x, ["hflip", "brightness"], p, order=torch.tensor([[0, 1], [1, 0]]))
    >>> torch.equal(y[1], apply("hflip", apply("brightness", x[1:], factor=p["brightness"]["factor"][1:]))[0])
    True
    """
    check_mode(mode)
    specs = [spec(n) for n in names]
    check_input(x, {s.name: s.input_shape for s in specs})
    labels = [s.name for s in specs]
    if len(set(labels)) != len(labels):
        dup = sorted({n for n in labels if labels.count(n) > 1})
        raise ValueError(f"names must be distinct, got {', '.join(dup)} more than once")
    for key in params:
        if key not in labels:
            raise ValueError(f"params has an entry for {key!r}, which is not in names {labels}")
    on = dict(on or {})
    for key in on:
        if key not in labels:
            raise ValueError(f"on has a switch for {key!r}, which is not in names {labels}")
    batch, n = x.shape[0], len(names)
    prepared = [s.prepare(x, params.get(s.name, {}), validate) for s in specs]
    switches = [
        check_switch(on[s.name], batch, f"on[{s.name!r}]").cpu() if s.name in on else None for s in specs
    ]
    order_cpu = _check_order(order, batch, n, validate) if order is not None else None

    if x.device.type == "cpu" and batch > _CPU_CHUNK:
        # On CPU, chunks of a few images keep each op's working set in cache (about 2x faster for set 1
        # than whole-batch passes over memory); every op is per-sample, so the result is identical.
        return torch.cat(
            [
                _compose_rows(
                    x[i : i + _CPU_CHUNK],
                    specs,
                    [{p: v[i : i + _CPU_CHUNK] for p, v in pr.items()} for pr in prepared],
                    [None if sw is None else sw[i : i + _CPU_CHUNK] for sw in switches],
                    None if order_cpu is None else order_cpu[i : i + _CPU_CHUNK],
                    mode,
                )
                for i in range(0, batch, _CPU_CHUNK)
            ]
        )
    return _compose_rows(x, specs, prepared, switches, order_cpu, mode)


def _compose_rows(
    x: torch.Tensor,
    specs: list[Augmentation],
    prepared: list[dict[str, torch.Tensor]],
    switches: list[torch.Tensor | None],
    order_cpu: torch.Tensor | None,
    mode: str,
) -> torch.Tensor:
    """The step x augmentation loop of :func:`compose` on checked, prepared inputs."""
    n = len(specs)
    out = x
    for k in range(n):
        for j, s in enumerate(specs):
            if order_cpu is None:
                if k != j:
                    continue
                sel = switches[j]
            else:
                sel = order_cpu[:, k] == j
                sw = switches[j]
                if sw is not None:
                    sel &= sw
            if sel is None or bool(sel.all()):
                out = s.run(out, prepared[j], mode)
                continue
            if not bool(sel.any()):
                continue
            idx = sel.nonzero().squeeze(1).to(x.device, non_blocking=True)
            sub = s.run(
                out.index_select(0, idx), {p: v.index_select(0, idx) for p, v in prepared[j].items()}, mode
            )
            # The first partial step copies x (never modified); later ones write into that working copy.
            out = out.index_copy(0, idx, sub) if out is x else out.index_copy_(0, idx, sub)
    return out

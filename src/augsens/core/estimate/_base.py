"""The shared engine of every accumulator: per-element centred co-moments merged by Chan's formula.

An accumulator sees, per base sample, ``m`` *variables* per output element (design rows, or per-sample
linear combinations of them) and keeps, per replicate slot and element,

* ``count``  – base samples accepted (all rows finite at that element),
* ``mean``   – ``[m]`` running means,
* ``comoment`` – ``[P]`` centred co-moments ``C_ij = Σ (v_i - mean_i)(v_j - mean_j)`` for a fixed list of
  pairs ``(i, j)`` (diagonal pairs are ``M2``).

A batch is reduced to the same three statistics (one vectorised pass over the batch axis) and merged
(Chan, Golub & LeVeque 1983; Pébay 2008 for co-moments)::

    n = n_a + n_b,  δ = mean_b - mean_a,  mean = mean_a + δ n_b / n,
    C_ij = C_ij,a + C_ij,b + δ_i δ_j n_a n_b / n

so a batch update, a merge of shards and a resumed run are one formula.  Raw power sums (Σy²) are never
formed: centred sums keep full precision for activations with large means.

**Working precision.**  With ``work_dtype=torch.float32`` beside a float64 state, batches of float32 or
narrower outputs (bfloat16 under autocast) are merged into a float32 *block* of the same three statistics
for one replicate slot, and the block is merged into the float64 state by the same formula every
:data:`BLOCK_SAMPLES` base samples (and whenever the state is read).  Per batch only the block, half the
bytes of the state, is touched; the float64 totals see one merge per block.  The block's centred sums
over at most :data:`BLOCK_SAMPLES` samples carry float32 rounding of a few ``eps_32`` relative to the
block's own spread, far below the statistical error of any index (``docs/performance.md`` gives the
measured agreement with the float64 path).  Outputs in float64 always work in float64.

**Memory traffic.**  A batch is reduced about a reference point (the running mean) in one pass: one
subtraction, one sum and the in-place products per pair block, with no centring pass and no correction
term of its own (:meth:`_Accumulator._chan_update`).  On the CPU the update walks the outputs in chunks of
about :data:`CHUNK_BYTES` of working data: large enough that per-operation costs, which dominated with
1 MB chunks, stay small; small enough that each in-place product works on cache-resident data
(``docs/performance.md`` gives the measurements).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple, Self, cast

import torch
import xarray as xr
from scipy import stats

__all__ = [
    "CoMomentAccumulator",
    "Ratio",
    "chan_merge",
    "finite_rows",
    "group_sum",
    "BLOCK_SAMPLES",
    "CHUNK_BYTES",
]

FORMAT_VERSION = 1

_DTYPES = {"float64": torch.float64, "float32": torch.float32}

#: base samples merged into a float32 block before it is merged into the float64 state
BLOCK_SAMPLES = 64
#: working data (batch copy, means, co-moments) per chunk of output elements in a CPU update: 16 MB keeps
#: each in-place product on a block of co-moments in L2 while making few enough operations per batch
#: (1 MB chunks made hundreds per batch; docs/performance.md gives the measurements)
CHUNK_BYTES = 1 << 24
#: the same for the sums of squares of one variable (moments): a few operations per chunk over many
#: samples, bound by bytes, so chunks that stay in cache were measured faster
SQUARES_CHUNK_BYTES = 1 << 23
#: up to this many samples per batch the co-moments are updated by in-place products (measured faster
#: than one product and one sum for large chunks), beyond it by one product and one sum
_LOOP_SAMPLES = 32


class Ratio(NamedTuple):
    """One reported quantity ``num / den``; ``num`` is ``[..., *factor dims, O]``, ``den`` broadcasts."""

    num: torch.Tensor
    den: torch.Tensor
    factor_dims: tuple[str, ...]
    guard: bool = True  # NaN where den is a zero variance


def chan_merge(
    n_a: torch.Tensor,
    mean_a: torch.Tensor,
    com_a: torch.Tensor,
    n_b: torch.Tensor,
    mean_b: torch.Tensor,
    com_b: torch.Tensor,
    left: torch.Tensor,
    right: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Chan, Golub & LeVeque (1983) pairwise merge.

    ``n`` is ``[..., O]`` (integer), means ``[..., m, O]``, co-moments ``[..., P, O]``.
    """
    n = n_a + n_b
    dtype = mean_a.dtype
    frac = torch.where(n > 0, n_b.to(dtype) / n.clamp_min(1).to(dtype), 0.0)
    delta = mean_b - mean_a
    mean = mean_a + delta * frac.unsqueeze(-2)
    weight = (n_a.to(dtype) * frac).unsqueeze(-2)  # n_a n_b / n
    com = com_a + com_b + delta[..., left, :] * delta[..., right, :] * weight
    return n, mean, com


class _Block:
    """Count, means and co-moments of the batches of one replicate slot not yet merged into the state.

    The block's values are shifted by ``shift`` ``[m, O]``, one base sample of its first batch: float32
    then carries the outputs' spread, not their mean (a float32 mean of 1e3 ± 1 would round at 6e-5 of
    the spread); the subtraction is exact for values within a factor 2 of the shift (Sterbenz).
    """

    def __init__(self, replicate: int, n_vars: int, n_pairs: int, size: int, dtype: torch.dtype, device: Any):
        self.replicate = replicate
        self.samples = 0  # base samples offered since the last merge
        self.count = torch.zeros(size, dtype=torch.int64, device=device)
        self.mean = torch.zeros(n_vars, size, dtype=dtype, device=device)
        self.comoment = torch.zeros(n_pairs, size, dtype=dtype, device=device)
        self.shift = torch.zeros(n_vars, size, dtype=dtype, device=device)

    def clear(self) -> None:
        self.samples = 0
        self.count.zero_()
        self.mean.zero_()
        self.comoment.zero_()


def _chunk(device: torch.device, bytes_per_element: int, size: int, budget: int | None = None) -> int:
    """Output elements per chunk of an update: ``budget`` bytes (default :data:`CHUNK_BYTES`) on the
    CPU, everything at once elsewhere (an accelerator streams from its own memory; more kernel launches
    would only cost)."""
    if device.type != "cpu":
        return max(size, 1)
    return max(256, (CHUNK_BYTES if budget is None else budget) // max(bytes_per_element, 1))


class CoMomentAccumulator:
    """State handling shared by the accumulators that keep centred co-moments: the
    :class:`~augsens.core.estimate.Accumulator` protocol on count, means and co-moments (module docstring).

    A subclass chooses its variables and pairs, reduces a batch to them in ``update`` and reads its
    quantities from the pooled state in ``_estimates`` (a :class:`Ratio` each)."""

    #: rows per base sample expected by :meth:`update` (``None``: no row axis)
    _rows: int | None
    _registry: ClassVar[dict[str, type[CoMomentAccumulator]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        CoMomentAccumulator._registry[cls.__name__] = cls

    def __init__(
        self,
        n_vars: int,
        pairs: Sequence[tuple[int, int]],
        *,
        replicates: int = 1,
        dtype: torch.dtype = torch.float64,
        work_dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1:
            raise ValueError(f"replicates must be a positive integer, got {replicates!r}")
        if dtype not in (torch.float64, torch.float32):
            raise TypeError(f"state dtype must be torch.float64 or torch.float32, got {dtype!r}")
        work = dtype if work_dtype is None else work_dtype
        if work not in (torch.float64, torch.float32) or torch.finfo(work).eps < torch.finfo(dtype).eps:
            raise TypeError(
                f"work_dtype must be torch.float32 or torch.float64 and not finer than the state dtype "
                f"{dtype}, got {work_dtype!r}"
            )
        self.replicates = replicates
        self.dtype = dtype
        #: dtype of the per-batch arithmetic for outputs of float32 or narrower dtypes (float64 outputs
        #: always work in float64); coarser than ``dtype``: batches go through a block (module docstring)
        self.work_dtype = work
        self.device = torch.device(device) if device is not None else None
        self._n_vars = n_vars
        self._pairs = [(int(i), int(j)) for i, j in pairs]
        # pair index tensors, moved to the state's device with it (no host-to-device copy per merge)
        self._left = torch.tensor([p[0] for p in pairs], dtype=torch.int64)
        self._right = torch.tensor([p[1] for p in pairs], dtype=torch.int64)
        # Pair sums are computed block by block: one block of squares (pairs (i, i)) and one block per
        # "anchor" variable against all its partners -- a loop over anchors (<= D + 1), never over
        # samples.  Subclasses order pairs so that blocks are contiguous: slices need no index copies.
        diag = [(p, i) for p, (i, j) in enumerate(pairs) if i == j]
        anchors: dict[int, list[int]] = {}
        for p, (i, j) in enumerate(pairs):
            if i != j:
                anchors.setdefault(i, []).append(p)
        blocks: list[tuple[int | None, list[int], list[int]]] = (
            [(None, [i for _, i in diag], [p for p, _ in diag])] if diag else []
        )
        blocks += [(a, [pairs[p][1] for p in ids], ids) for a, ids in anchors.items()]
        self._blocks = [(a, _selector(vs), _selector(ps)) for a, vs, ps in blocks]
        self.out_shape: tuple[int, ...] | None = None
        self._count: torch.Tensor | None = None  # [Rep, O] int64
        self._mean: torch.Tensor | None = None  # [Rep, m, O]
        self._comoment: torch.Tensor | None = None  # [Rep, P, O]
        self._block: _Block | None = None  # batches in a coarser work dtype, not yet in the state
        self.seen = [0] * replicates  # samples (in count units) offered per replicate, finite or not
        #: the coarsest float dtype the outputs arrived in (``None`` before the first update): its
        #: rounding, not the state's, sets the level below which a variance counts as zero
        self.input_dtype: torch.dtype | None = None

    # -- configuration, to be provided by subclasses ---------------------------------------------
    def _config(self) -> dict[str, Any]:
        raise NotImplementedError  # pragma: no cover - abstract

    def _estimates(self, n: torch.Tensor, mean: torch.Tensor, com: torch.Tensor) -> dict[str, Ratio]:
        raise NotImplementedError  # pragma: no cover - abstract

    def _attrs(self) -> dict[str, Any]:
        return {}

    # -- properties ------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Base samples seen (finite or not), all replicates together."""
        return sum(self.seen) // (self._rows_flattened or 1)

    #: rows flattened into samples (MomentsAccumulator with a row axis), for :attr:`n`
    _rows_flattened: int | None = None
    #: quantities that get a ``<name>_conf`` half-width (:meth:`half_widths`)
    conf_names: tuple[str, ...] = ()

    # The state as read from outside: any pending block is merged first, so every reader (results,
    # merges, pooled moments, tests) sees all samples.  The merge changes no value, only the rounding
    # of later additions.
    @property
    def count(self) -> torch.Tensor | None:
        """``[Rep, O]`` int64: base samples accepted per replicate slot and element."""
        self._flush()
        return self._count

    @property
    def mean(self) -> torch.Tensor | None:
        """``[Rep, m, O]``: running means of the variables."""
        self._flush()
        return self._mean

    @property
    def comoment(self) -> torch.Tensor | None:
        """``[Rep, P, O]``: centred co-moments of the tracked pairs."""
        self._flush()
        return self._comoment

    def state_tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(count [Rep, O], mean [Rep, m, O], comoment [Rep, P, O])`` of an allocated accumulator
        (:attr:`out_shape` set), any pending block merged first."""
        self._flush()
        return self._raw_state()

    def _raw_state(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        count, mean, comoment = self._count, self._mean, self._comoment
        assert count is not None and mean is not None and comoment is not None, "state is not allocated"
        return count, mean, comoment

    # -- update ----------------------------------------------------------------------------------
    def _check_batch(self, y: torch.Tensor, replicate: int) -> torch.Tensor:
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"{type(self).__name__}.update expects a torch.Tensor, got {type(y).__name__}")
        if not y.is_floating_point():
            y = y.to(self.dtype)
        if (
            isinstance(replicate, bool)
            or not isinstance(replicate, int)
            or not 0 <= replicate < self.replicates
        ):
            raise ValueError(
                f"replicate={replicate!r} is outside 0..{self.replicates - 1} (the accumulator was built "
                f"with replicates={self.replicates})"
            )
        if self._rows is not None:
            if y.dim() < 2 or y.shape[1] != self._rows:
                raise ValueError(
                    f"{type(self).__name__}.update expects outputs [batch, {self._rows}, *out] in design row "
                    f"order, got shape {tuple(y.shape)}"
                )
            out = tuple(y.shape[2:])
        else:
            if y.dim() < 1:
                raise ValueError(f"{type(self).__name__}.update expects [batch, *out], got a scalar")
            out = tuple(y.shape[1:])
        if self.out_shape is None:
            self.allocate(out, y.device)
        elif out != self.out_shape:
            raise ValueError(
                f"output shape {out} differs from the shape {self.out_shape} this accumulator "
                "was started with"
            )
        self._note_input_dtype(y.dtype)
        # one pass into the working dtype and element order: NHWC activations (channels_last) are
        # reordered here rather than by the reshape below, which would be a second pass (measured 2-3x
        # slower for bf16 activations)
        y = y.to(device=self.device, dtype=self._work_for(y.dtype), memory_format=torch.contiguous_format)
        return y.reshape(y.shape[0], self._rows or 1, math.prod(out))  # [b, R, O], also for b = 0

    def _work_for(self, dtype: torch.dtype) -> torch.dtype:
        """The per-batch arithmetic dtype for outputs of ``dtype``: :attr:`work_dtype`, or float64 for
        float64 outputs (never coarser than the outputs themselves)."""
        return self.dtype if dtype == torch.float64 else self.work_dtype

    def _note_input_dtype(self, dtype: torch.dtype | None) -> None:
        """Keep the coarsest input dtype seen (a host-side comparison, no device work)."""
        if dtype is not None and (
            self.input_dtype is None or torch.finfo(dtype).eps > torch.finfo(self.input_dtype).eps
        ):
            self.input_dtype = dtype

    def allocate(self, out: tuple[int, ...], device: torch.device, *, pending_block: bool = False) -> None:
        """Zero state for outputs of shape ``out`` on :attr:`device` (``device`` if none was set): what the
        first update or merge does.  On the ``meta`` device it sizes a state without memory; with
        ``pending_block``, a state in a coarser :attr:`work_dtype` also holds the block that a saved state
        may carry (marked as holding one sample, so that :meth:`state_dict` includes it)."""
        if self.device is None:
            self.device = device
        size = math.prod(out)
        self.out_shape = out
        dev = self.device
        self._count = torch.zeros(self.replicates, size, dtype=torch.int64, device=dev)
        self._mean = torch.zeros(self.replicates, self._n_vars, size, dtype=self.dtype, device=dev)
        self._comoment = torch.zeros(self.replicates, len(self._left), size, dtype=self.dtype, device=dev)
        self._left, self._right = self._left.to(dev), self._right.to(dev)
        self._block = None
        if pending_block and self.work_dtype != self.dtype:
            self._block_for(0, self.work_dtype).samples = 1

    def _accumulate(self, v: torch.Tensor, finite: torch.Tensor, replicate: int) -> None:
        """Merge the batch statistics of variables ``v`` ``[b, m, O]`` (``finite`` ``[b, O]``) into the
        state of slot ``replicate``, or into the block when ``v`` is coarser than the state."""
        b, r = v.shape[0], replicate
        if v.dtype == self.dtype:
            count, mean, comoment = self.state_tensors()  # a pending block of a coarser dtype goes first
            self._chan_update(count[r], mean[r], comoment[r], v, finite)
        else:
            block = self._block_for(r, v.dtype)
            if block.samples == 0 and b > 0:
                torch.nan_to_num(v[0], nan=0.0, posinf=0.0, neginf=0.0, out=block.shift)
            self._chan_update(block.count, block.mean, block.comoment, v, finite, block.shift)
            block.samples += b
            if block.samples >= BLOCK_SAMPLES:
                self._flush()
        self.seen[r] += b

    def _block_for(self, replicate: int, dtype: torch.dtype) -> _Block:
        """The block of ``replicate`` in ``dtype`` (another slot's pending block is merged first)."""
        block = self._block
        if block is not None and (block.replicate != replicate or block.mean.dtype != dtype):
            self._flush()
            if block.mean.dtype != dtype:
                block = None
        count = self._raw_state()[0]
        if block is None:
            block = _Block(replicate, self._n_vars, len(self._left), count.shape[-1], dtype, count.device)
        block.replicate = replicate
        self._block = block
        return block

    def _flush(self) -> None:
        """Merge the pending block into the state (Chan's formula, chunk by chunk) and clear it."""
        block = self._block
        if block is None or block.samples == 0:
            return
        count, mean, comoment = self._raw_state()
        r = block.replicate
        dev = count.device
        left, right = self._left, self._right
        size = count.shape[-1]
        step = _chunk(dev, 3 * (self._n_vars + len(left)) * mean.element_size(), size)
        for lo in range(0, size, step):
            c = slice(lo, lo + step)
            n, m, com = chan_merge(
                count[r, c], mean[r, :, c], comoment[r, :, c],
                block.count[c], block.mean[:, c].to(self.dtype) + block.shift[:, c],
                block.comoment[:, c].to(self.dtype),
                left, right,
            )  # fmt: skip
            count[r, c] = n
            mean[r, :, c] = m
            comoment[r, :, c] = com
        block.clear()

    def _chan_update(
        self,
        count: torch.Tensor,
        mean: torch.Tensor,
        comoment: torch.Tensor,
        v: torch.Tensor,
        finite: torch.Tensor,
        shift: torch.Tensor | None = None,
    ) -> None:
        """Chan's merge of the batch ``v`` ``[b, m, O]`` (minus ``shift`` ``[m, O]``, if given) into
        ``(count [O], mean [m, O], comoment [P, O])`` in place, chunk by chunk along the outputs.

        The batch is taken relative to a reference point ``K`` per element -- the running mean where the
        state already holds samples, else the batch's first sample -- and reduced in one pass to sums
        ``S_i = Σ (v_i - K_i)`` and products ``Σ (v_i - K_i)(v_j - K_j)``.  With ``K = mean_a`` Chan's
        merge becomes

            mean = K + S / n,   C_ij = C_ij,a + Σ (v_i - K_i)(v_j - K_j) - S_i S_j / n

        (``n = n_a + n_b``; for ``n_a = 0`` the same with ``C_a = 0``): no centring pass over the batch and
        no correction pseudo-sample.  The values are spread about ``K`` by the outputs' spread plus the
        drift of the batch mean from the running mean, so the sums lose no more than the two-pass form.
        """
        b, m, size = v.shape
        if b == 0:
            return
        per_element = v.element_size() * (b * m + 2 * m + len(self._left))
        step = _chunk(v.device, per_element, size, SQUARES_CHUNK_BYTES if m == 1 else None)
        # Values at non-finite base samples are zeroed; on the CPU the common all-finite batch skips that
        # pass (one host-side test per batch; on an accelerator it would be a synchronisation).
        masked = v.device.type != "cpu" or not bool(finite.all())
        for lo in range(0, size, step):
            c = slice(lo, lo + step)
            self._chan_chunk(
                count[c], mean[:, c], comoment[:, c], v[..., c], finite[:, c],
                None if shift is None else shift[:, c], masked,
            )  # fmt: skip

    def _chan_chunk(
        self,
        count: torch.Tensor,
        mean: torch.Tensor,
        com: torch.Tensor,
        v: torch.Tensor,
        finite: torch.Tensor,
        shift: torch.Tensor | None,
        masked: bool,
    ) -> None:
        b = v.shape[0]
        dtype = v.dtype
        n_b = finite.sum(0)  # [c]
        n = count + n_b
        if shift is None:
            # an element without samples yet has mean 0: take its first finite sample as reference (a mean
            # of 1e3 ± 1 would otherwise cost the sums three digits); still 0 where none is finite
            ref = torch.where(count > 0, mean, torch.where(finite[0], v[0], 0.0))
            d = v - ref
        else:
            # a block's values are already shifted by one of its samples; its mean is the reference
            ref = mean
            d = v - (mean + shift)
        if masked:
            d.masked_fill_(~finite[:, None, :], 0.0)
        s1 = d.sum(0)  # [m, c]
        g = s1 * (1 / n.clamp_min(1).to(dtype))  # S / n: the move of the mean
        for anchor, partners, pair_ids in self._blocks:
            target = com[pair_ids]  # a view: subclasses order pairs in contiguous blocks
            if anchor is None and d.shape[1] == 1:  # squares of one variable (moments): square in place
                target.add_(d.square_().sum(0))
            elif b <= _LOOP_SAMPLES:  # in-place products on cache-resident data
                for i in range(b):
                    part = d[i, partners]
                    target.addcmul_(part if anchor is None else d[i, anchor], part)
            else:  # many samples: one product, one sum
                part = d[:, partners]
                target.add_((part * (part if anchor is None else d[:, anchor, None])).sum(0))
            target.addcmul_(g[partners] if anchor is None else g[anchor], s1[partners], value=-1.0)
            if isinstance(pair_ids, list):  # not a view: write back
                com[pair_ids] = target
        if ref is mean:
            mean.add_(g)
        else:
            mean.copy_(ref.add_(g))
        count.copy_(n)

    def pooled_moments(self) -> CoMomentAccumulator:
        """The outputs' moments from the state; only a state that tracks output rows holds them
        (:class:`augsens.core.estimate.moments.OutputRowsAccumulator`)."""
        raise TypeError(f"{type(self).__name__} keeps no output rows: use a MomentsAccumulator beside it")

    # -- merge and state -------------------------------------------------------------------------
    def merge(self, other: Self) -> Self:
        """Add ``other``'s samples to this accumulator (in place, per replicate slot); returns ``self``."""
        if type(other) is not type(self) or other._config() != self._config():
            raise ValueError(
                f"cannot merge {type(other).__name__}({other._config()}) into "
                f"{type(self).__name__}({self._config()}): class and configuration must match"
            )
        if other.out_shape is None:
            return self
        o_count, o_mean, o_comoment = other.state_tensors()
        if self.out_shape is None:
            self.allocate(other.out_shape, o_count.device if self.device is None else self.device)
        elif other.out_shape != self.out_shape:
            raise ValueError(f"cannot merge output shape {other.out_shape} into {self.out_shape}")
        dev = self.device
        self._count, self._mean, self._comoment = chan_merge(
            *self.state_tensors(),
            o_count.to(dev), o_mean.to(dev, self.dtype), o_comoment.to(dev, self.dtype),
            self._left, self._right,
        )  # fmt: skip
        self.seen = [a + b for a, b in zip(self.seen, other.seen, strict=True)]
        self._note_input_dtype(other.input_dtype)
        return self

    def state_dict(self) -> dict[str, Any]:
        """Plain, versioned state: tensors, ints and strings only (``torch.load(weights_only=True)`` safe).

        A pending block is saved as it is (``block_*`` entries), not merged: a run saved and resumed
        merges its blocks at the same samples as one that never stopped, so both agree bit for bit.
        """
        state: dict[str, Any] = {
            "class": type(self).__name__,
            "format_version": FORMAT_VERSION,
            "config": self._config(),
            "dtype": str(self.dtype).removeprefix("torch."),
            "work_dtype": str(self.work_dtype).removeprefix("torch."),
            "seen": torch.tensor(self.seen, dtype=torch.int64),
        }
        if self.input_dtype is not None:
            state["input_dtype"] = str(self.input_dtype).removeprefix("torch.")
        if self.out_shape is not None:
            state["out_shape"] = torch.tensor(self.out_shape, dtype=torch.int64)
            state["count"], state["mean"], state["comoment"] = self._raw_state()
            block = self._block
            if block is not None and block.samples > 0:
                state["block_replicate"] = block.replicate
                state["block_samples"] = block.samples
                state["block_count"] = block.count
                state["block_mean"] = block.mean
                state["block_comoment"] = block.comoment
                state["block_shift"] = block.shift
        return state

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any], device: torch.device | str | None = None) -> Self:
        """Rebuild an accumulator from :meth:`state_dict` (on ``device``, default: where it was saved)."""
        name = state.get("class")
        target = CoMomentAccumulator._registry.get(str(name))
        if target is None or (cls is not CoMomentAccumulator and not issubclass(target, cls)):
            raise ValueError(f"state is for class {name!r}, which is not a {cls.__name__}")
        if state.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"state format version {state.get('format_version')!r} is not supported "
                f"(this augsens writes and reads version {FORMAT_VERSION})"
            )
        dtype = _DTYPES[state["dtype"]]
        work = _DTYPES[state.get("work_dtype", state["dtype"])]
        # target is cls or a subclass of it (checked above); CoMomentAccumulator.from_state_dict reads any
        obj = cast(Self, target(**dict(state["config"]), dtype=dtype, work_dtype=work, device=device))
        obj.seen = [int(s) for s in state["seen"]]
        if "input_dtype" in state:
            obj.input_dtype = getattr(torch, str(state["input_dtype"]))
        if "out_shape" in state:
            dev = device if device is not None else state["mean"].device
            obj.allocate(tuple(int(s) for s in state["out_shape"]), torch.device(dev))
            count, mean, comoment = obj._raw_state()
            count.copy_(state["count"])
            mean.copy_(state["mean"])
            comoment.copy_(state["comoment"])
            if "block_mean" in state:
                block = obj._block_for(int(state["block_replicate"]), state["block_mean"].dtype)
                block.samples = int(state["block_samples"])
                block.count.copy_(state["block_count"])
                block.mean.copy_(state["block_mean"])
                block.comoment.copy_(state["block_comoment"])
                block.shift.copy_(state["block_shift"])
        return obj

    def to(self, device: torch.device | str) -> Self:
        """Move the state to ``device`` (in place); returns ``self``."""
        self.device = torch.device(device)
        if self.out_shape is not None:
            self._count, self._mean, self._comoment = (t.to(self.device) for t in self._raw_state())
            self._left, self._right = self._left.to(self.device), self._right.to(self.device)
            block = self._block
            if block is not None:  # moved as it is, not merged (see state_dict)
                block.count, block.mean, block.comoment, block.shift = (
                    t.to(self.device) for t in (block.count, block.mean, block.comoment, block.shift)
                )
        return self

    # -- results ---------------------------------------------------------------------------------
    def _pooled(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All replicate slots merged at once (the multi-way form of Chan's merge)."""
        counts, means, comoment = self.state_tensors()
        count = counts.sum(0)
        w = counts.to(self.dtype)
        mean = (w[:, None] * means).sum(0) / count.clamp_min(1).to(self.dtype)
        dev = means - mean
        com = comoment.sum(0) + (w[:, None] * dev[:, self._left] * dev[:, self._right]).sum(0)
        return count, mean, com

    def _ratios(
        self, n: torch.Tensor, mean: torch.Tensor, com: torch.Tensor, group: tuple[torch.Tensor, int] | None
    ) -> tuple[dict[str, torch.Tensor], dict[str, tuple[str, ...]]]:
        """Finished quantities and their factor dims, optionally summed over element groups first."""
        est = self._estimates(n.to(self.dtype), mean, com)
        # An output whose spread is at the rounding level of its mean is constant: its indices are 0/0.
        level = (self._zero_spread() * mean.abs().amax(dim=-2)).square()
        values, dims = {}, {}
        for name, r in est.items():
            nf = len(r.factor_dims)
            num, den = r.num, r.den.expand_as(r.num)
            lev = level.reshape(level.shape[:-1] + (1,) * nf + level.shape[-1:]).expand_as(num)
            if group is not None:
                num, den, lev = (group_sum(t, *group) for t in (num, den, lev))
            value = num / den
            values[name] = torch.where(den <= lev, torch.nan, value) if r.guard else value
            dims[name] = r.factor_dims
        return self._derived(values, dims)

    def _zero_spread(self) -> float:
        """Relative spread ``sd / |mean|`` at or below which an output counts as constant.

        Two sources of rounding: the outputs' own dtype (a constant computed in float32 or bfloat16 comes
        out within about one unit in the last place of its value, so ``2 eps_in`` of margin) and the
        state arithmetic (centred sums in ``self.dtype``, ``64 eps_state``).  The larger one decides; a
        spread above it is real variation, however small the output.  A float32 block adds no third
        term: its values are shifted by one of its samples, so a constant is exactly 0 there.
        """
        state = 64 * torch.finfo(self.dtype).eps
        if self.input_dtype is None:
            return state
        return max(state, 2 * torch.finfo(self.input_dtype).eps)

    def _derived(
        self, values: dict[str, torch.Tensor], dims: dict[str, tuple[str, ...]]
    ) -> tuple[dict[str, torch.Tensor], dict[str, tuple[str, ...]]]:
        """Quantities computed from finished ratios (e.g. the coefficient of variation)."""
        return values, dims

    def _results(
        self, group: tuple[torch.Tensor, int] | None
    ) -> tuple[dict[str, torch.Tensor], dict[str, tuple[str, ...]]]:
        if self.out_shape is None:
            raise ValueError(f"{type(self).__name__} has seen no samples: call update() first")
        values, dims = self._ratios(*self._pooled(), group)
        per, _ = self._ratios(*self.state_tensors(), group)
        # Student-t quantiles for k = 0..R usable replicates (NaN below 2), looked up per element
        t_table = torch.tensor(
            [math.nan, math.nan] + [float(stats.t.ppf(0.975, k - 1)) for k in range(2, self.replicates + 1)],
            dtype=self.dtype,
        )
        for name in self.conf_names:
            # 95 % Student-t half-width over independent randomisations (replicates).  A replicate in
            # which the element never varied has no index; it is left out, and the interval uses the
            # k replicates that remain (NaN when fewer than 2 do).
            est = per[name]
            ok = torch.isfinite(est)
            k = ok.sum(dim=0)
            zeroed = torch.where(ok, est, 0.0)
            mean = zeroed.sum(dim=0) / k.clamp_min(1)
            var = torch.where(ok, est - mean, 0.0).square().sum(dim=0) / (k - 1).clamp_min(1)
            t = t_table.to(est.device)[k.clamp_max(self.replicates)]
            values[f"{name}_conf"], dims[f"{name}_conf"] = t * var.sqrt() / k.clamp_min(1).sqrt(), dims[name]
        return values, dims

    def half_widths(self) -> dict[str, torch.Tensor]:
        """95 % half-widths ``[*factor dims, O]`` of the quantities in :attr:`conf_names` (NaN with one
        replicate); empty before the first update."""
        if not self.conf_names or self.out_shape is None:
            return {}
        values, _ = self._results(None)
        return {name: values[f"{name}_conf"] for name in self.conf_names}

    def finalize(
        self,
        factors: Sequence[str] | None = None,
        dims: Sequence[str] | None = None,
        coords: Mapping[str, Any] | None = None,
    ) -> xr.Dataset:
        """Indices per output element as an :class:`xarray.Dataset` (float64 numpy).

        Parameters
        ----------
        factors : sequence of str
            Group names, one per factor (length ``D``); coordinates of the ``"factor"`` dim.
        dims : sequence of str, optional
            Names of the output dims (default ``"dim_0", "dim_1", ...``).
        coords : mapping, optional
            Extra coordinates for the output dims.

        Returns
        -------
        xarray.Dataset
            Variables with dims ``("factor", *dims)`` (``("factor", "factor2", *dims)`` for ``S2``), the
            ``*_conf`` 95 % half-widths (NaN with one replicate) and ``nonfinite`` (base samples dropped
            per element because a row was NaN or inf).  Attributes: ``n``, ``replicates``, estimator
            names, ``nonfinite_total``.
        """
        values, vdims = self._results(None)  # raises ValueError before any sample was seen
        out_shape = self.out_shape
        assert out_shape is not None
        out_dims = self._out_dims(dims)
        ds = self._dataset(values, vdims, factors, out_dims, out_shape)
        dropped = (sum(self.seen) - self.state_tensors()[0].sum(0)).reshape(out_shape)
        ds["nonfinite"] = (out_dims, dropped.cpu().numpy())
        if coords:
            ds = ds.assign_coords({k: v for k, v in coords.items()})
        ds.attrs.update(self._common_attrs())
        ds.attrs["nonfinite_total"] = int(dropped.sum())
        return ds

    def aggregate(
        self, group_ids: torch.Tensor, n_groups: int, factors: Sequence[str] | None = None
    ) -> xr.Dataset:
        """Indices aggregated over groups of output elements (dims ``("factor", "group")``).

        For each group of elements, numerators and variances are summed before dividing
        (Gamboa et al. 2014, arXiv:1311.1797): ``S_j^agg = Σ_o V_{j,o} / Σ_o V_o``.  Confidence
        half-widths come from the aggregated per-replicate estimates.

        Parameters
        ----------
        group_ids : LongTensor ``[*out]``
            Group id in ``0..n_groups-1`` per output element (Captum-style integer mask): all zeros for
            one whole checkpoint, the channel index (broadcast over positions) for per-channel indices.
            Elements with a negative id are left out.
        n_groups : int
        factors : sequence of str, optional
            Factor names (default ``"0", "1", ...``).
        """
        if self.out_shape is None:
            raise ValueError(f"{type(self).__name__} has seen no samples: call update() before aggregate()")
        ids = torch.as_tensor(group_ids)
        if ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            raise TypeError(f"group_ids must be an integer tensor, got dtype {ids.dtype}")
        try:
            ids = torch.broadcast_to(ids, self.out_shape).reshape(-1)
        except RuntimeError as exc:
            raise ValueError(
                f"group_ids of shape {tuple(ids.shape)} does not broadcast to the output shape "
                f"{self.out_shape}"
            ) from exc
        if ids.numel() and int(ids.max()) >= n_groups:
            raise ValueError(f"group_ids holds id {int(ids.max())}, but n_groups={n_groups}")
        values, vdims = self._results((ids.to(self.device), int(n_groups)))
        ds = self._dataset(values, vdims, factors, ("group",), (int(n_groups),))
        ds.attrs.update(self._common_attrs())
        return ds

    # -- helpers ---------------------------------------------------------------------------------
    def _out_dims(self, dims: Sequence[str] | None) -> tuple[str, ...]:
        assert self.out_shape is not None
        if dims is None:
            return tuple(f"dim_{i}" for i in range(len(self.out_shape)))
        dims = tuple(dims)
        if len(dims) != len(self.out_shape):
            raise ValueError(f"dims={dims!r} names {len(dims)} dims, the outputs have shape {self.out_shape}")
        return dims

    def _dataset(
        self,
        values: dict[str, torch.Tensor],
        vdims: dict[str, tuple[str, ...]],
        factors: Sequence[str] | None,
        out_dims: tuple[str, ...],
        out_shape: tuple[int, ...],
    ) -> xr.Dataset:
        variables = {}
        n_factors = None
        for name, value in values.items():
            fdims = vdims[name]
            arr = value.reshape(value.shape[: len(fdims)] + tuple(out_shape))
            if fdims:
                n_factors = arr.shape[0]
            variables[name] = (fdims + out_dims, arr.detach().to("cpu", torch.float64).numpy())
        coords = {}
        if n_factors is not None:
            names = [str(i) for i in range(n_factors)] if factors is None else [str(f) for f in factors]
            if len(names) != n_factors:
                raise ValueError(
                    f"factors={list(names)!r} has {len(names)} names, the accumulator has {n_factors}"
                )
            coords["factor"] = names
            if any("factor2" in d for d in vdims.values()):
                coords["factor2"] = names
        return xr.Dataset(variables, coords=coords)

    def _common_attrs(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "replicates": self.replicates,
            "state_dtype": str(self.dtype),
            "work_dtype": str(self.work_dtype),
            **self._attrs(),
        }

    def __repr__(self) -> str:
        shape = "unallocated" if self.out_shape is None else f"out={self.out_shape}"
        return f"{type(self).__name__}({self._config()}, n={self.n}, {shape})"


def finite_rows(v: torch.Tensor) -> torch.Tensor:
    """``[b, O]``: all rows of a base sample finite at an element.

    One reduction over rows then one test (4x cheaper than testing every value): NaN and ±inf
    propagate through the sum.  Only a sum of finite values overflowing the state dtype (|y| ~ 1e307
    in float64) would be flagged wrongly.
    """
    return torch.isfinite(v.sum(1))


def _selector(indices: list[int]) -> slice | list[int]:
    """A slice for consecutive indices (a view, no copy), else the list."""
    if indices and indices == list(range(indices[0], indices[0] + len(indices))):
        return slice(indices[0], indices[0] + len(indices))
    return indices


def group_sum(x: torch.Tensor, ids: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Sum the last axis of ``x`` by group id (negative ids dropped)."""
    keep = ids >= 0
    out = x.new_zeros(x.shape[:-1] + (n_groups,))
    return out.index_add_(-1, ids[keep], x[..., keep])

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
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import torch
import xarray as xr
from scipy import stats

__all__: list[str] = []

FORMAT_VERSION = 1

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


class _Ratio(NamedTuple):
    """One reported quantity ``num / den``; ``num`` is ``[..., *factor dims, O]``, ``den`` broadcasts."""

    num: torch.Tensor
    den: torch.Tensor
    factor_dims: tuple[str, ...]
    guard: bool = True  # NaN where den is a zero variance


def _merge(
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


class _Accumulator:
    """Protocol and state handling shared by all accumulators (see :mod:`augsens.core.estimate`)."""

    #: rows per base sample expected by :meth:`update` (``None``: no row axis)
    _rows: int | None
    _registry: ClassVar[dict[str, type[_Accumulator]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _Accumulator._registry[cls.__name__] = cls

    def __init__(
        self,
        n_vars: int,
        pairs: Sequence[tuple[int, int]],
        *,
        replicates: int = 1,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1:
            raise ValueError(f"replicates must be a positive integer, got {replicates!r}")
        if dtype not in (torch.float64, torch.float32):
            raise TypeError(f"state dtype must be torch.float64 or torch.float32, got {dtype!r}")
        self.replicates = replicates
        self.dtype = dtype
        self.device = torch.device(device) if device is not None else None
        self._n_vars = n_vars
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
        self._index_cache: dict[str, torch.Tensor] | None = None
        self.out_shape: tuple[int, ...] | None = None
        self.count: torch.Tensor | None = None  # [Rep, O] int64
        self.mean: torch.Tensor | None = None  # [Rep, m, O]
        self.comoment: torch.Tensor | None = None  # [Rep, P, O]
        self.seen = [0] * replicates  # samples (in count units) offered per replicate, finite or not
        #: the coarsest float dtype the outputs arrived in (``None`` before the first update): its
        #: rounding, not the state's, sets the level below which a variance counts as zero
        self.input_dtype: torch.dtype | None = None

    # -- configuration, to be provided by subclasses ---------------------------------------------
    def _config(self) -> dict[str, Any]:
        raise NotImplementedError  # pragma: no cover - abstract

    def _estimates(self, n: torch.Tensor, mean: torch.Tensor, com: torch.Tensor) -> dict[str, _Ratio]:
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
    #: quantities that get a ``<name>_conf`` half-width
    _conf_names: tuple[str, ...] = ()

    def _state(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(count, mean, comoment)`` of an allocated accumulator (callers know :attr:`out_shape` is set)."""
        count, mean, comoment = self.count, self.mean, self.comoment
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
            self._allocate(out, y.device)
        elif out != self.out_shape:
            raise ValueError(
                f"output shape {out} differs from the shape {self.out_shape} this accumulator "
                "was started with"
            )
        self._note_input_dtype(y.dtype)
        y = y.to(device=self.device, dtype=self.dtype)
        return y.reshape(y.shape[0], self._rows or 1, math.prod(out))  # [b, R, O], also for b = 0

    def _note_input_dtype(self, dtype: torch.dtype | None) -> None:
        """Keep the coarsest input dtype seen (a host-side comparison, no device work)."""
        if dtype is not None and (
            self.input_dtype is None or torch.finfo(dtype).eps > torch.finfo(self.input_dtype).eps
        ):
            self.input_dtype = dtype

    def _allocate(self, out: tuple[int, ...], device: torch.device) -> None:
        if self.device is None:
            self.device = device
        size = math.prod(out)
        self.out_shape = out
        dev = self.device
        self.count = torch.zeros(self.replicates, size, dtype=torch.int64, device=dev)
        self.mean = torch.zeros(self.replicates, self._n_vars, size, dtype=self.dtype, device=dev)
        self.comoment = torch.zeros(self.replicates, len(self._left), size, dtype=self.dtype, device=dev)

    def _accumulate(self, v: torch.Tensor, finite: torch.Tensor, replicate: int) -> None:
        """Merge the batch statistics of variables ``v`` ``[b, m, O]`` (``finite`` ``[b, O]``).

        Chan's merge done in place, with one pass over the state per pair block: the correction term
        ``δ_i δ_j n_a n_b / n`` is added as one extra pseudo-sample ``sqrt(n_a n_b / n) δ`` appended to
        the centred batch, so each block's batch co-moment and correction land in a single ``+=``.
        """
        b = v.shape[0]
        r = replicate
        count, mean, comoment = self._state()
        n_b = finite.sum(0)  # [O]
        d = torch.empty((b + 1, *v.shape[1:]), dtype=self.dtype, device=v.device)
        d[:b].copy_(v).masked_fill_(~finite[:, None, :], 0.0)
        mean_b = d[:b].sum(0) / n_b.clamp_min(1).to(self.dtype)
        d[:b].sub_(mean_b).mul_(finite[:, None, :])
        n_a = count[r]
        n = n_a + n_b
        frac = torch.where(n > 0, n_b.to(self.dtype) / n.clamp_min(1).to(self.dtype), 0.0)
        delta = mean_b.sub_(mean[r])  # [m, O]: batch mean minus running mean
        mean[r].addcmul_(delta, frac)
        torch.mul(delta, (n_a.to(self.dtype) * frac).sqrt_(), out=d[b])
        com = comoment[r]
        for anchor, partners, pair_ids in self._blocks:
            part = d[:, partners]
            if anchor is None:
                com[pair_ids] += torch.einsum("bpo,bpo->po", part, part)
            else:
                com[pair_ids] += torch.einsum("bo,bpo->po", d[:, anchor], part)
        count[r] = n
        self.seen[r] += b

    def pooled_moments(self) -> Any:
        """Mean and variance of the outputs over every row whose ``M2`` this accumulator tracks, all
        replicates pooled, as a :class:`~augsens.core.estimate.MomentsAccumulator` (no extra pass over the
        outputs: Sobol tracks rows A, B and AB_j; the Shapley accumulators the full row x).

        Rows of one base sample are correlated, so the variance pools ``Σ_r M2_r + n Σ_r (mean_r -
        mean)²`` over ``R n - 1`` degrees of freedom: consistent, with an O(1/n) bias.
        """
        from augsens.core.estimate.moments import MomentsAccumulator

        out = MomentsAccumulator(dtype=self.dtype, device=self.device)
        out.input_dtype = self.input_dtype
        if self.out_shape is None:
            return out
        left, right = self._left.tolist(), self._right.tolist()
        diag = [p for p, (i, j) in enumerate(zip(left, right, strict=True)) if i == j]
        rows = [left[p] for p in diag]
        count, means, comoment = self._state()
        k = torch.arange(len(rows), device=count.device)
        n, mean, m2 = count[0], means[0, rows], comoment[0, diag]
        for r in range(1, self.replicates):  # replicate slots (a handful), never samples
            n, mean, m2 = _merge(n, mean, m2, count[r], means[r, rows], comoment[r, diag], k, k)
        grand = mean.mean(0)
        n_f = n.to(self.dtype)
        out._allocate(self.out_shape, count.device)
        out_count, out_mean, out_comoment = out._state()
        out_count[0] = n * len(rows)
        out_mean[0, 0] = grand
        out_comoment[0, 0] = m2.sum(0) + n_f * (mean - grand).square().sum(0)
        out.seen = [sum(self.seen) * len(rows)]
        return out

    def _indices(self, device: torch.device) -> dict[str, torch.Tensor]:
        """Pair index tensors on ``device``, built once (no host-to-device copy per batch)."""
        if self._index_cache is None or self._index_cache["left"].device != device:
            self._index_cache = {"left": self._left.to(device), "right": self._right.to(device)}
        return self._index_cache

    # -- merge and state -------------------------------------------------------------------------
    def merge(self, other: _Accumulator) -> _Accumulator:
        """Add ``other``'s samples to this accumulator (in place, per replicate slot); returns ``self``."""
        if type(other) is not type(self) or other._config() != self._config():
            raise ValueError(
                f"cannot merge {type(other).__name__}({other._config()}) into "
                f"{type(self).__name__}({self._config()}): class and configuration must match"
            )
        if other.out_shape is None:
            return self
        o_count, o_mean, o_comoment = other._state()
        if self.out_shape is None:
            self._allocate(other.out_shape, o_count.device if self.device is None else self.device)
        elif other.out_shape != self.out_shape:
            raise ValueError(f"cannot merge output shape {other.out_shape} into {self.out_shape}")
        dev = self.device
        left, right = self._left.to(dev), self._right.to(dev)
        self.count, self.mean, self.comoment = _merge(
            *self._state(),
            o_count.to(dev), o_mean.to(dev, self.dtype), o_comoment.to(dev, self.dtype),
            left, right,
        )  # fmt: skip
        self.seen = [a + b for a, b in zip(self.seen, other.seen, strict=True)]
        self._note_input_dtype(other.input_dtype)
        return self

    def state_dict(self) -> dict[str, Any]:
        """Plain, versioned state: tensors, ints and strings only (``torch.load(weights_only=True)`` safe)."""
        state: dict[str, Any] = {
            "class": type(self).__name__,
            "format_version": FORMAT_VERSION,
            "config": self._config(),
            "dtype": str(self.dtype).removeprefix("torch."),
            "seen": torch.tensor(self.seen, dtype=torch.int64),
        }
        if self.input_dtype is not None:
            state["input_dtype"] = str(self.input_dtype).removeprefix("torch.")
        if self.out_shape is not None:
            state["out_shape"] = torch.tensor(self.out_shape, dtype=torch.int64)
            state["count"] = self.count
            state["mean"] = self.mean
            state["comoment"] = self.comoment
        return state

    @classmethod
    def from_state_dict(
        cls, state: Mapping[str, Any], device: torch.device | str | None = None
    ) -> _Accumulator:
        """Rebuild an accumulator from :meth:`state_dict` (on ``device``, default: where it was saved)."""
        name = state.get("class")
        target = _Accumulator._registry.get(str(name))
        if target is None or (cls is not _Accumulator and not issubclass(target, cls)):
            raise ValueError(f"state is for class {name!r}, which is not a {cls.__name__}")
        if state.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"state format version {state.get('format_version')!r} is not supported "
                f"(this augsens writes and reads version {FORMAT_VERSION})"
            )
        dtype = _DTYPES[state["dtype"]]
        obj = target(**dict(state["config"]), dtype=dtype, device=device)
        obj.seen = [int(s) for s in state["seen"]]
        if "input_dtype" in state:
            obj.input_dtype = getattr(torch, str(state["input_dtype"]))
        if "out_shape" in state:
            dev = device if device is not None else state["mean"].device
            obj._allocate(tuple(int(s) for s in state["out_shape"]), torch.device(dev))
            count, mean, comoment = obj._state()
            count.copy_(state["count"])
            mean.copy_(state["mean"])
            comoment.copy_(state["comoment"])
        return obj

    def to(self, device: torch.device | str) -> _Accumulator:
        """Move the state to ``device`` (in place); returns ``self``."""
        self.device = torch.device(device)
        if self.out_shape is not None:
            self.count, self.mean, self.comoment = (t.to(self.device) for t in self._state())
        return self

    # -- results ---------------------------------------------------------------------------------
    def _pooled(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All replicate slots merged at once (the multi-way form of Chan's merge)."""
        counts, means, comoment = self._state()
        count = counts.sum(0)
        w = counts.to(self.dtype)
        mean = (w[:, None] * means).sum(0) / count.clamp_min(1).to(self.dtype)
        dev = means - mean
        left, right = self._left.to(dev.device), self._right.to(dev.device)
        com = comoment.sum(0) + (w[:, None] * dev[:, left] * dev[:, right]).sum(0)
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
                num, den, lev = (_group_sum(t, *group) for t in (num, den, lev))
            value = num / den
            values[name] = torch.where(den <= lev, torch.nan, value) if r.guard else value
            dims[name] = r.factor_dims
        return self._derived(values, dims)

    def _zero_spread(self) -> float:
        """Relative spread ``sd / |mean|`` at or below which an output counts as constant.

        Two sources of rounding: the outputs' own dtype (a constant computed in float32 or bfloat16 comes
        out within about one unit in the last place of its value, so ``2 eps_in`` of margin) and the
        state arithmetic (centred sums in ``self.dtype``, ``64 eps_state``).  The larger one decides; a
        spread above it is real variation, however small the output.
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
        per, _ = self._ratios(*self._state(), group)
        # Student-t quantiles for k = 0..R usable replicates (NaN below 2), looked up per element
        t_table = torch.tensor(
            [math.nan, math.nan] + [float(stats.t.ppf(0.975, k - 1)) for k in range(2, self.replicates + 1)],
            dtype=self.dtype,
        )
        for name in self._conf_names:
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
        dropped = (sum(self.seen) - self._state()[0].sum(0)).reshape(out_shape)
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
        return {"n": self.n, "replicates": self.replicates, "state_dtype": str(self.dtype), **self._attrs()}

    def __repr__(self) -> str:
        shape = "unallocated" if self.out_shape is None else f"out={self.out_shape}"
        return f"{type(self).__name__}({self._config()}, n={self.n}, {shape})"


def _finite_rows(v: torch.Tensor) -> torch.Tensor:
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


def _group_sum(x: torch.Tensor, ids: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Sum the last axis of ``x`` by group id (negative ids dropped)."""
    keep = ids >= 0
    out = x.new_zeros(x.shape[:-1] + (n_groups,))
    return out.index_add_(-1, ids[keep], x[..., keep])

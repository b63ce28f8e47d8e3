"""The augmentation protocol: what an augmentation is, for the paper's twelve and for anyone else's.

An augmentation is an :class:`Augmentation`: a name, its parameters (:class:`ParamSpec`, each with a
range or a distribution, an identity value and an integer flag), fixed constants and a batched function
``fn``.  The paper's twelve (:data:`augsens.augment.AUGMENTATIONS`) are ordinary instances; a user's
augmentation, an installed plugin's or an adapted torchvision op (:mod:`augsens.augment.adapters`) is
used in exactly the same way: ``ag.study(..., augmentations=[my_op, "hue"])``, ``"package.module:name"``
in a TOML config, :func:`augsens.augment.apply` and :func:`augsens.augment.compose`.

Rules of ``fn``
---------------
``fn(x, **params, **constants)`` (plus ``mode=`` when its signature has a ``mode`` keyword) must:

1. take ``x``, a float tensor ``[B, ...]`` (any float dtype) on any device -- images are
   ``[B, 3, H, W]`` in [0, 1], but nothing in the protocol assumes images; ``input_shape`` declares the
   per-sample shape an op needs (``"[B, 3, H, W]"``), checked before it is called;
2. take each parameter as a tensor ``[B]`` -- one value per sample -- on ``x``'s device, float32
   (float64 when ``x`` is float64).  Parameters marked ``integer`` hold whole numbers (rounded half to
   even before ``fn`` is called);
3. take each constant as a keyword (fixed settings such as a kernel size: recorded in provenance, never
   literals inside ``fn``) and, if it declares one, ``mode`` (``"clean"`` or ``"paper"``, the study's
   fidelity mode);
4. return a new tensor with ``x``'s shape, dtype and device, finite everywhere, leaving ``x`` unchanged;
5. treat every sample alone: output row ``b`` depends on ``x[b]`` and row ``b`` of each parameter only
   (:func:`augsens.augment.compose` runs an op on the sub-batch whose turn it is);
6. draw no randomness of its own: the same inputs give the same output, so every design row replays
   exactly and a resumed run sees the same inputs.  An op that needs noise takes it from a parameter
   (e.g. a seed drawn by the design);
7. leave ``x`` unchanged (to ``rtol = atol = 1e-4``) when every parameter is at its identity value
   (``identity=None``: the parameter has none, and that check is skipped);
8. depend on every parameter it declares.

:func:`augsens.augment.checks.check_augmentation` tests rules 1-8 on a probe batch before a study's
first forward, and refuses a failing augmentation with one message naming the rule (exit code 2 on the
command line).

Parameters: ranges and distributions
------------------------------------
A parameter is drawn uniformly on ``[low, high]`` unless it has a ``distribution`` (any ``scipy.stats``
distribution, continuous or discrete, drawn through its inverse CDF and truncated to ``[low, high]``:
:class:`augsens.core.factors.ScipyDistribution`).  :meth:`Augmentation.with_ranges` returns a copy
with other ranges or distributions (a study's ``ranges=`` / ``[augment.NAME]``); the declared ones
are the defaults.  ``integer`` parameters are drawn as discrete uniforms on ``[low, high)`` by the
authors' Shapley and contrast samplers (paper mode) and continuously elsewhere, then rounded.

Identity and provenance
-----------------------
:meth:`Augmentation.describe` (name, source, parameters with their ranges or distributions, constants,
code hash) goes into every results tree; :attr:`Augmentation.code_hash` hashes the source of ``fn``
(and of the op an adapter or a ``functools.wraps`` decorator wraps; not of helpers ``fn`` calls) and
is saved with a run's state, so ``--resume`` refuses a run whose operation changed and names it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import torch

from augsens.errors import UserInputError

if TYPE_CHECKING:
    from augsens.core.factors import Parameter

__all__ = ["ParamSpec", "Augmentation", "RangeSpec", "Mode", "check_input", "check_mode", "check_switch"]

#: The fidelity mode of an op: torchvision-equal (``"clean"``) or the authors' variants (``"paper"``).
Mode = Literal["clean", "paper"]
_MODES = ("clean", "paper")

#: A range as a study gives it: ``(low, high)``, a scipy.stats distribution, or a table
#: ``{"low", "high", "distribution", "tail", <distribution keywords>}`` (the TOML form).
RangeSpec = Any

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ParamSpec:
    """One scalar parameter of an augmentation.

    Parameters
    ----------
    name : str
        Keyword of the augmentation's ``fn`` (a Python identifier).
    low, high : float
        Sampling bounds: the uniform range, or the truncation of ``distribution`` (inclusive for
        validation; ``high`` is exclusive for the authors' integer draws).
    identity : float or None
        Value at which the augmentation leaves its input unchanged; may lie outside ``[low, high]``.
        ``None``: no such value.
    integer : bool
        Whole-number parameter: rounded half to even before ``fn`` sees it; drawn as a discrete uniform on
        ``[low, high)`` by the authors' Shapley / contrast samplers.
    doc : str
        Meaning and units.
    distribution : scipy.stats distribution, optional
        Draw the parameter from this distribution (inverse CDF) truncated to ``[low, high]`` instead of
        uniformly.  ``low``/``high`` may then be infinite where ``tail`` truncates.
    tail : float, optional
        With ``distribution``: truncate at the quantiles ``tail`` and ``1 - tail`` instead.
    """

    name: str
    low: float
    high: float
    identity: float | None = None
    integer: bool = False
    doc: str = ""
    distribution: Any = None
    tail: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise UserInputError(
                f"parameter name {self.name!r} must be a Python identifier (a keyword of fn)"
            )
        if self.distribution is None:
            lo, hi = float(self.low), float(self.high)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise UserInputError(
                    f"parameter {self.name!r}: need finite low < high, got low={self.low!r}, "
                    f"high={self.high!r}"
                )
        else:
            self.factor(self.name)  # refuses an infinite support without truncation, with its message

    def factor(self, name: str, *, integer_draws: bool = False) -> Parameter:
        """The core factor that draws this parameter, named ``name`` (e.g. ``"hue.factor"``).

        ``integer_draws``: an ``integer`` parameter becomes a discrete uniform on ``[low, high)`` (the
        authors' Shapley and contrast samplers).
        """
        from augsens.core.factors import Integer, ScipyDistribution, Uniform

        if self.distribution is not None:
            try:
                low = None if math.isinf(self.low) else self.low
                high = None if math.isinf(self.high) else self.high
                return ScipyDistribution(
                    name, self.distribution, low=low, high=high, tail=self.tail, identity=self.identity
                )
            except ValueError as exc:
                raise UserInputError(str(exc)) from exc
        if integer_draws and self.integer:
            return Integer(name, int(self.low), int(self.high), identity=self.identity)
        return Uniform(name, self.low, self.high, identity=self.identity)

    def bounds(self) -> tuple[float, float]:
        """Smallest and largest value a draw can take."""
        return self.factor(self.name).bounds() if self.distribution is not None else (self.low, self.high)

    def describe(self) -> dict[str, Any]:
        """JSON-ready record: name, range or distribution, identity, integer."""
        out: dict[str, Any] = {"name": self.name, "identity": self.identity, "integer": self.integer}
        if self.distribution is None:
            return {**out, "low": self.low, "high": self.high, "distribution": "uniform"}
        return {**out, **self.factor(self.name).describe()}  # type: ignore[attr-defined]

    def with_range(self, value: RangeSpec, *, where: str = "") -> ParamSpec:
        """A copy drawn from ``value``: ``(low, high)``, a scipy.stats distribution or a range table."""
        where = where or self.name
        if isinstance(value, tuple | list):
            if len(value) != 2:
                raise UserInputError(f"range of {where}: give (low, high), got {value!r}")
            return self._replace(where, low=_number(value[0], where), high=_number(value[1], where))
        if hasattr(value, "ppf"):
            return self._replace(where, distribution=value, low=-math.inf, high=math.inf, tail=None)
        if isinstance(value, Mapping):
            return self._from_table(value, where)
        raise UserInputError(
            f"range of {where}: give (low, high), a scipy.stats distribution or a table with low/high or "
            f"distribution, got {value!r}"
        )

    def _from_table(self, table: Mapping[str, Any], where: str) -> ParamSpec:
        table = dict(table)
        low = _number(table.pop("low"), f"{where} low") if "low" in table else None
        high = _number(table.pop("high"), f"{where} high") if "high" in table else None
        tail = _number(table.pop("tail"), f"{where} tail") if "tail" in table else None
        dist_name = table.pop("distribution", None)
        if dist_name is None:
            if table or tail is not None:
                keys = sorted(table) + (["tail"] if tail is not None else [])
                raise UserInputError(
                    f"range of {where}: {', '.join(keys)} need a distribution = '...' (a scipy.stats name); "
                    "a uniform range takes only low and high"
                )
            return self._replace(
                where,
                low=self.low if low is None else low,
                high=self.high if high is None else high,
                distribution=None,
                tail=None,
            )
        dist = _scipy_distribution(dist_name, table, where)
        return self._replace(
            where,
            distribution=dist,
            low=-math.inf if low is None else low,
            high=math.inf if high is None else high,
            tail=tail,
        )

    def _replace(self, where: str, **changes: Any) -> ParamSpec:
        try:
            return dataclasses.replace(self, **changes)
        except UserInputError as exc:
            raise UserInputError(f"range of {where}: {exc}") from exc


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserInputError(f"{where} must be a number, got {value!r}")
    return float(value)


def _scipy_distribution(name: Any, keywords: Mapping[str, Any], where: str) -> Any:
    """``scipy.stats.<name>(**keywords)``, every mistake a message naming the fix."""
    import scipy.stats

    cls = getattr(scipy.stats, str(name), None)
    if not isinstance(cls, scipy.stats.rv_continuous | scipy.stats.rv_discrete):
        import difflib

        kinds = (scipy.stats.rv_continuous, scipy.stats.rv_discrete)
        known = [n for n in dir(scipy.stats) if isinstance(getattr(scipy.stats, n), kinds)]
        close = difflib.get_close_matches(str(name), known, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UserInputError(
            f"range of {where}: distribution = {name!r} is not a scipy.stats distribution.{hint}"
        )
    for key, value in keywords.items():
        _number(value, f"{where} {key}")
    try:
        frozen = cls(**keywords)
        frozen.support()  # checks the shape keywords
    except TypeError as exc:
        then = "loc" if isinstance(cls, scipy.stats.rv_discrete) else "loc, scale"
        raise UserInputError(
            f"range of {where}: scipy.stats.{name} does not take {sorted(keywords)}: {exc} (its shape "
            f"keywords: {cls.shapes or 'none'}, then {then})"
        ) from exc
    return frozen


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


def _pattern(shape: str | None) -> tuple[int | None, ...] | None:
    """``"[B, 3, H, W]"`` -> ``(3, None, None)``: the per-sample shape, ``None`` where any size goes."""
    if shape is None:
        return None
    tokens = [t.strip() for t in shape.strip("[] ").split(",")]
    if len(tokens) < 1 or tokens[0] != "B":
        raise UserInputError(
            f"input_shape {shape!r} must start with the batch: '[B, ...]', e.g. '[B, 3, H, W]'"
        )
    return tuple(int(t) if t.isdigit() else None for t in tokens[1:])


def check_mode(mode: str) -> None:
    """Refuse a fidelity mode other than ``"clean"`` and ``"paper"``."""
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")


def check_switch(on: object, batch: int, what: str) -> torch.Tensor:
    """``on`` if it is a bool switch tensor ``[batch]`` (``what`` names it in the message)."""
    if not isinstance(on, torch.Tensor):
        raise TypeError(f"{what} must be a bool tensor [B], got {type(on).__name__}")
    if on.dtype != torch.bool:
        raise TypeError(f"{what} must have dtype torch.bool, got {on.dtype}")
    if on.shape != (batch,):
        raise ValueError(f"{what} must have shape [B] = [{batch}], got {list(on.shape)}")
    return on


def _param_dtype(x: torch.Tensor) -> torch.dtype:
    # Geometry (angles, grids, rectangle sizes) needs at least float32 even for half-precision images.
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def check_input(x: object, shapes: Mapping[str, str | None] | None = None, what: str = "x") -> None:
    """Refuse what no augmentation can take: not a float tensor ``[B, ...]``, or (``shapes``: name ->
    ``input_shape``) not the per-sample shape an augmentation declares."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{what} must be a floating-point tensor [B, ...], got dtype {x.dtype}")
    if x.ndim < 1:
        raise ValueError(f"{what} must have a batch dimension [B, ...], got a scalar")
    for shape in dict.fromkeys(s for s in (shapes or {}).values() if s is not None):
        pattern = _pattern(shape)
        assert pattern is not None  # noqa: S101 - filtered above
        if x.ndim != len(pattern) + 1 or any(
            p is not None and p != n for p, n in zip(pattern, x.shape[1:], strict=True)
        ):
            raise ValueError(f"{what} must have shape {shape}, got {list(x.shape)}")


def _takes(fn: Callable[..., Any], keyword: str) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: assume it takes keywords
        return True
    params = sig.parameters
    return keyword in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _code_of(fn: Callable[..., Any]) -> str:
    """The source text of ``fn`` and of every callable it wraps (an adapter's op, ``__wrapped__``);
    bytecode where the source cannot be read (a function typed into a REPL)."""
    parts = []
    seen: set[int] = set()
    current: Any = fn
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        target = current if inspect.isroutine(current) or inspect.isclass(current) else type(current)
        try:
            parts.append(inspect.getsource(target))
        except (OSError, TypeError):
            code = getattr(target, "__code__", None)
            parts.append(
                code.co_code.hex() + repr(code.co_consts)
                if code is not None
                else getattr(target, "__qualname__", "")
            )
        current = getattr(current, "__augsens_wraps__", None) or getattr(current, "__wrapped__", None)
    return "\n".join(parts)


@dataclass(frozen=True, eq=False)
class Augmentation:
    """An augmentation: a name, its parameters, its constants and a batched function (module docstring).

    Parameters
    ----------
    name : str
        Factor name in studies and results (a Python identifier; unique among a study's augmentations).
    params : tuple of ParamSpec
        Per-sample parameters in keyword order; empty for an op without parameters (it then has only
        an on/off switch in a study).
    fn : callable
        ``fn(x, **params, **constants[, mode=])`` -> tensor like ``x`` (the rules in the module docstring).
    constants : mapping of str to object
        Fixed keywords of ``fn`` (recorded in provenance).
    doc : str
        One-line description.
    set : int, optional
        The paper's set (1 or 2) for the built-in twelve; ``None`` otherwise.
    input_shape : str, optional
        Shape ``fn`` needs, e.g. ``"[B, 3, H, W]"`` (digits fixed, letters free); ``None``: any ``[B, ...]``.
    source : str
        Where it comes from (``augsens``, a plugin's entry point, ``package.module:name``); set by the
        registry, shown by ``augsens info`` and recorded in provenance.

    Examples
    --------
    >>> import torch
    >>> def gain(x, *, g):
    ...     return x * g.view(-1, *[1] * (x.ndim - 1))
    >>> op = Augmentation("gain", (ParamSpec("g", 0.5, 2.0, identity=1.0),), gain)
    >>> op(torch.ones(2, 5), g=torch.tensor([0.5, 2.0]))[:, 0].tolist()
    [0.5, 2.0]
    >>> op.with_ranges({"g": (0.9, 1.1)}).params[0].high
    1.1
    """

    name: str
    params: tuple[ParamSpec, ...]
    fn: Callable[..., torch.Tensor]
    constants: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    doc: str = ""
    set: int | None = None
    input_shape: str | None = None
    source: str = "user"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise UserInputError(
                f"augmentation name {self.name!r} must be a Python identifier (letters, digits, _): it names "
                "a factor of the study"
            )
        params = tuple(self.params)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "constants", _frozen(self.constants))
        for p in params:
            if not isinstance(p, ParamSpec):
                raise UserInputError(
                    f"augmentation {self.name!r}: parameters must be ParamSpec objects, got {p!r}"
                )
        names = [p.name for p in params]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise UserInputError(f"augmentation {self.name!r} declares parameter(s) {', '.join(dup)} twice")
        if not callable(self.fn):
            raise UserInputError(f"augmentation {self.name!r}: fn must be callable, got {self.fn!r}")
        for key in (*names, *self.constants):
            if not _takes(self.fn, key):
                raise UserInputError(
                    f"augmentation {self.name!r}: its fn {getattr(self.fn, '__name__', self.fn)!r} has no "
                    f"keyword {key!r}; fn(x, **params, **constants) must accept every parameter and constant "
                    "by name"
                )
        if set(names) & set(self.constants):
            raise UserInputError(f"augmentation {self.name!r}: a parameter and a constant share a name")
        _pattern(self.input_shape)

    @property
    def param_names(self) -> tuple[str, ...]:
        """Parameter keywords in order."""
        return tuple(p.name for p in self.params)

    @property
    def identity(self) -> dict[str, float | None]:
        """Parameter values that leave the input unchanged (empty for parameter-free ops)."""
        return {p.name: p.identity for p in self.params}

    @property
    def takes_mode(self) -> bool:
        """Whether ``fn`` receives the study's fidelity mode (it has a ``mode`` keyword)."""
        try:
            return "mode" in inspect.signature(self.fn).parameters
        except (TypeError, ValueError):
            return False

    @property
    def code_hash(self) -> str:
        """blake2b of ``fn``'s source (and of what it wraps): changes when the operation's code does."""
        return hashlib.blake2b(_code_of(self.fn).encode(), digest_size=8).hexdigest()

    def run(self, x: torch.Tensor, params: Mapping[str, torch.Tensor], mode: str = "clean") -> torch.Tensor:
        """Call ``fn`` on prepared inputs: the one place every augmentation is applied."""
        extra = {"mode": mode} if self.takes_mode else {}
        return self.fn(x, **params, **self.constants, **extra)

    def __call__(
        self,
        x: torch.Tensor,
        *,
        on: torch.Tensor | None = None,
        mode: str = "clean",
        validate: bool = True,
        **params: torch.Tensor,
    ) -> torch.Tensor:
        """Apply this augmentation to a batch, each sample with its own parameters (rows with ``on`` False
        unchanged): :func:`augsens.augment.apply` of an augmentation object."""
        check_mode(mode)
        check_input(x, {self.name: self.input_shape})
        prepared = self.prepare(x, params, validate)
        if on is None:
            return self.run(x, prepared, mode)
        check_switch(on, x.shape[0], "on")
        on = on.to(x.device, non_blocking=True)
        count = int(on.sum())  # one sync: choose between the no-op, whole-batch and sub-batch cases
        if count == 0:
            return x
        if count == x.shape[0]:
            return self.run(x, prepared, mode)
        idx = on.nonzero().squeeze(1)
        sub = self.run(x.index_select(0, idx), {k: v.index_select(0, idx) for k, v in prepared.items()}, mode)
        return x.index_copy(0, idx, sub)

    def prepare(
        self, x: torch.Tensor, params: Mapping[str, object], validate: bool = True
    ) -> dict[str, torch.Tensor]:
        """The parameters of a call on ``x``: keywords checked (always: cheap) and values (if ``validate``),
        moved to ``x``'s device and dtype, integer parameters rounded (half to even)."""
        names = self.param_names
        unknown = sorted(set(params) - set(names))
        if unknown:
            expected = ", ".join(names) if names else "no parameters"
            raise TypeError(
                f"{self.name}() got unexpected parameter(s) {', '.join(unknown)}; it takes {expected}"
            )
        missing = [n for n in names if n not in params]
        if missing:
            raise TypeError(
                f"{self.name}() is missing parameter(s) {', '.join(missing)}; it takes {', '.join(names)}"
            )
        batch = x.shape[0]
        out = {}
        for p in self.params:
            t = params[p.name]
            what = f"{self.name}.{p.name}"
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{what} must be a tensor [B], got {type(t).__name__}")
            if validate:
                if t.dtype == torch.bool or t.is_complex():
                    raise TypeError(f"{what} must be a real float or integer tensor, got dtype {t.dtype}")
                if t.shape != (batch,):
                    raise ValueError(f"{what} must have shape [B] = [{batch}], got {list(t.shape)}")
                # Compare in the tensor's own float dtype: float32(0.01) < 0.01 is not out of bounds.
                v = t.detach() if t.is_floating_point() else t.detach().to(torch.float64)
                lo, hi = p.bounds()
                low, high = (torch.tensor(b, dtype=v.dtype, device=v.device) for b in (lo, hi))
                ok = (v >= low) & (v <= high)
                if p.identity is not None:
                    ok |= v == torch.tensor(p.identity, dtype=v.dtype, device=v.device)
                ok &= torch.isfinite(v)
                if not bool(ok.all()):
                    bad = v[~ok][0].item()
                    ident = "" if p.identity is None else f" (or the identity value {p.identity:g})"
                    raise ValueError(f"{what} = {bad!r} is out of bounds [{lo:g}, {hi:g}]{ident}")
            t = t.to(device=x.device, dtype=_param_dtype(x), non_blocking=True)
            out[p.name] = torch.round(t) if p.integer else t  # half to even, as the ops always rounded
        return out

    def with_ranges(self, ranges: Mapping[str, RangeSpec]) -> Augmentation:
        """A copy whose parameters ``ranges`` names are drawn from new ranges or distributions.

        ``ranges`` maps a parameter name to ``(low, high)``, a ``scipy.stats`` distribution or a table
        (``{"low": .., "high": ..}``, ``{"distribution": "norm", "loc": 0, "scale": 2, "tail": 1e-6}``).
        """
        unknown = sorted(set(ranges) - set(self.param_names))
        if unknown:
            takes = ", ".join(self.param_names) or "no parameters"
            raise UserInputError(
                f"range for unknown parameter(s) {', '.join(f'{self.name}.{u}' for u in unknown)}; "
                f"{self.name} takes {takes}"
            )
        params = tuple(
            p.with_range(ranges[p.name], where=f"{self.name}.{p.name}") if p.name in ranges else p
            for p in self.params
        )
        return dataclasses.replace(self, params=params)

    def describe(self) -> dict[str, Any]:
        """JSON-ready record for provenance: name, source, parameters, constants, code hash."""
        return {
            "name": self.name,
            "source": self.source,
            "parameters": [p.describe() for p in self.params],
            "constants": {k: _plain(v) for k, v in self.constants.items()},
            "code_hash": self.code_hash,
        }

    def declaration_hash(self) -> str:
        """blake2b of :meth:`describe` minus the source: changes with any parameter, range or constant."""
        record = {k: v for k, v in self.describe().items() if k != "source"}
        return hashlib.blake2b(json.dumps(record, sort_keys=True).encode(), digest_size=8).hexdigest()

    def __repr__(self) -> str:
        return f"Augmentation({self.name!r}, params={list(self.param_names)}, source={self.source!r})"


def _plain(value: Any) -> Any:
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return repr(value)

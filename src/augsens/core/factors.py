"""Factors: the independent random inputs of a study and how unit-cube values map onto them.

A :class:`Problem` is an ordered list of :class:`Parameter` objects, optionally gathered into named
groups (an augmentation's parameters plus its on/off switch form one group).  Designs
(:mod:`augsens.core.design`) produce rows of the unit cube ``[0, 1)^k``; :meth:`Problem.decode` turns them
into parameter values, column by column.  Every parameter is one column, so a pick-freeze design can
swap whole groups of columns between two base rows.

All decoding happens in float64 on the CPU or on the tensor's own device, without randomness: a value
depends only on its unit-cube coordinate, which is what makes any design row replayable.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "Parameter",
    "Uniform",
    "Integer",
    "ScipyDistribution",
    "Switch",
    "Permutation",
    "Categorical",
    "ImageFactor",
    "Problem",
    "lehmer_decode",
]


def _check_unit(u: torch.Tensor) -> torch.Tensor:
    if not isinstance(u, torch.Tensor):
        raise TypeError(f"unit-cube values must be a torch.Tensor, got {type(u).__name__}")
    return u.to(torch.float64)


class Parameter:
    """One scalar factor, decoded from one unit-cube column.

    Subclasses implement :meth:`decode`.  ``identity`` is the value at which the parameter leaves an
    image unchanged (``None`` where no such value exists); it is bookkeeping for augmentations.
    """

    kind: str = "parameter"

    def __init__(self, name: str, identity: float | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a parameter name must be a non-empty string, got {name!r}")
        self.name = name
        self.identity = identity

    def decode(self, u: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def bounds(self) -> tuple[float, float]:
        """Smallest and largest value :meth:`decode` can return."""
        raise NotImplementedError  # pragma: no cover - abstract

    def __repr__(self) -> str:
        lo, hi = self.bounds()
        return f"{type(self).__name__}({self.name!r}, {lo!r}, {hi!r})"


class Uniform(Parameter):
    """Continuous uniform on ``[low, high]``: ``low + u (high - low)``."""

    kind = "uniform"

    def __init__(self, name: str, low: float, high: float, identity: float | None = None) -> None:
        super().__init__(name, identity)
        low, high = float(low), float(high)
        if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
            raise ValueError(f"Uniform {name!r}: need finite low < high, got low={low!r}, high={high!r}")
        self.low, self.high = low, high

    def decode(self, u: torch.Tensor) -> torch.Tensor:
        u = _check_unit(u)
        return self.low + u * (self.high - self.low)

    def bounds(self) -> tuple[float, float]:
        return self.low, self.high


class Integer(Parameter):
    """Discrete uniform on ``{low, ..., high - 1}`` (upper bound exclusive, like ``numpy.integers``)."""

    kind = "integer"

    def __init__(self, name: str, low: int, high: int, identity: float | None = None) -> None:
        super().__init__(name, identity)
        if int(low) != low or int(high) != high or not int(low) < int(high):
            raise ValueError(f"Integer {name!r}: need integers low < high, got low={low!r}, high={high!r}")
        self.low, self.high = int(low), int(high)

    def decode(self, u: torch.Tensor) -> torch.Tensor:
        u = _check_unit(u)
        n = self.high - self.low
        return self.low + torch.clamp(torch.floor(u * n), 0, n - 1)

    def bounds(self) -> tuple[float, float]:
        return float(self.low), float(self.high - 1)


class ScipyDistribution(Parameter):
    """Any ``scipy.stats`` distribution, continuous or discrete, by its inverse CDF: ``F^{-1}(u)``.

    With truncation bounds ``[low, high]`` the value is ``F^{-1}(F(low^-) + u (F(high) - F(low^-)))``, the
    inverse CDF of the distribution conditioned on ``[low, high]`` (``F(low^-)`` is ``F(low - 1)`` for a
    discrete distribution).  ``tail`` truncates at the quantiles ``tail`` and ``1 - tail`` instead.  A
    distribution with an infinite support needs one of the two: the design's unit values reach 0, where
    an untruncated normal would give ``-inf``.

    Parameters
    ----------
    name : str
        Parameter name.
    dist : scipy.stats frozen distribution
        E.g. ``scipy.stats.norm(0, 2)``, ``scipy.stats.poisson(3)``; anything with ``ppf``, ``cdf`` and
        ``support`` (``scipy.stats.rv_histogram`` for an empirical distribution).
    low, high : float, optional
        Truncation bounds (inclusive).  Default: the support's ends.
    tail : float, optional
        Truncate at the quantiles ``tail`` and ``1 - tail`` (``0 < tail < 0.5``); not with ``low``/``high``.
    identity : float, optional
        See :class:`Parameter`.

    Raises
    ------
    ValueError
        Not a distribution, an infinite support without truncation, empty truncation interval, bad ``tail``.

    Notes
    -----
    Inverse-transform sampling keeps the design's structure: a scrambled Sobol' point set mapped column by
    column through ``F^{-1}`` is a QMC design for the distribution (Owen 1997), and pick-freeze rows still
    share the frozen columns' values.  ``ppf`` runs in numpy on the host, on the float64 design.

    Examples
    --------
    >>> import scipy.stats, torch
    >>> d = ScipyDistribution("x", scipy.stats.norm(0.0, 2.0), tail=1e-9)
    >>> round(float(d.decode(torch.tensor([0.5]))[0]), 12), d.discrete
    (0.0, False)
    >>> ScipyDistribution("k", scipy.stats.poisson(3.0), high=10).bounds()
    (0.0, 10.0)
    """

    kind = "distribution"

    def __init__(
        self,
        name: str,
        dist: Any,
        *,
        low: float | None = None,
        high: float | None = None,
        tail: float | None = None,
        identity: float | None = None,
    ) -> None:
        super().__init__(name, identity)
        if not all(hasattr(dist, a) for a in ("ppf", "cdf", "support")):
            raise ValueError(
                f"ScipyDistribution {name!r}: expected a scipy.stats distribution (e.g. "
                f"scipy.stats.norm(0, 1)), got {dist!r}"
            )
        self.dist = dist
        self.discrete = _is_discrete(dist)
        lo_s, hi_s = (float(v) for v in dist.support())
        if tail is not None:
            if low is not None or high is not None:
                raise ValueError(f"ScipyDistribution {name!r}: give tail or low/high, not both")
            if not 0.0 < float(tail) < 0.5:
                raise ValueError(f"ScipyDistribution {name!r}: tail must lie in (0, 0.5), got {tail!r}")
            low, high = float(dist.ppf(float(tail))), float(dist.ppf(1.0 - float(tail)))
        low = lo_s if low is None else max(float(low), lo_s)
        high = hi_s if high is None else min(float(high), hi_s)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(
                f"ScipyDistribution {name!r}: {_dist_name(dist)} has the infinite support [{lo_s}, {hi_s}]; "
                "truncate it with low=/high= (values) or tail= (a probability, e.g. 1e-6)"
            )
        if not low < high:
            raise ValueError(
                f"ScipyDistribution {name!r}: the truncation [{low!r}, {high!r}] leaves no interval of the "
                f"support [{lo_s}, {hi_s}]"
            )
        self.low, self.high, self.tail = low, high, tail
        self._cdf_low = float(dist.cdf(low - 1.0 if self.discrete else low))
        self._cdf_high = float(dist.cdf(high))
        if not self._cdf_high > self._cdf_low:
            raise ValueError(f"ScipyDistribution {name!r}: no probability mass in [{low!r}, {high!r}]")

    def decode(self, u: torch.Tensor) -> torch.Tensor:
        u = _check_unit(u)
        q = self._cdf_low + u.detach().cpu().numpy() * (self._cdf_high - self._cdf_low)
        # ppf at a CDF value computed in floating point can step one past a bound (a discrete ppf(F(k))
        # may return k + 1 after rounding): the clip keeps every value inside [low, high].
        values = np.clip(np.asarray(self.dist.ppf(q), dtype=np.float64), self.low, self.high)
        return torch.from_numpy(values).to(u.device)

    def bounds(self) -> tuple[float, float]:
        return self.low, self.high

    def describe(self) -> dict[str, Any]:
        """Name, keywords and truncation of the distribution (JSON-ready, for provenance)."""
        return {
            "distribution": _dist_name(self.dist),
            **dist_keywords(self.dist),
            "low": self.low,
            "high": self.high,
        }

    def __repr__(self) -> str:
        return (
            f"ScipyDistribution({self.name!r}, {_dist_name(self.dist)}, low={self.low!r}, high={self.high!r})"
        )


def _is_discrete(dist: Any) -> bool:
    import scipy.stats

    return isinstance(getattr(dist, "dist", dist), scipy.stats.rv_discrete)


def _dist_name(dist: Any) -> str:
    return str(getattr(getattr(dist, "dist", dist), "name", type(dist).__name__))


def dist_keywords(dist: Any) -> dict[str, float]:
    """The shape, loc and scale keywords of a frozen scipy distribution, by name."""
    inner = getattr(dist, "dist", None)
    if inner is None:  # not frozen (e.g. rv_histogram): no keywords to name
        return {}
    shapes = [s.strip() for s in (inner.shapes or "").split(",") if s.strip()]
    names = shapes + ["loc"] + ([] if _is_discrete(dist) else ["scale"])
    out = {k: float(v) for k, v in zip(names, getattr(dist, "args", ()), strict=False)}
    out.update({k: float(v) for k, v in getattr(dist, "kwds", {}).items()})
    return out


class Switch(Parameter):
    """On/off switch, on with probability ``p``: 1 where ``u >= 1 - p`` else 0.

    This is the authors' Shapley-family convention (``0 if u < 1 - p else 1``).
    """

    kind = "switch"

    def __init__(self, name: str, p: float = 0.5) -> None:
        super().__init__(name, identity=0.0)
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"Switch {name!r}: probability p must lie in [0, 1], got {p!r}")
        self.p = float(p)

    def decode(self, u: torch.Tensor) -> torch.Tensor:
        u = _check_unit(u)
        return (u >= 1.0 - self.p).to(torch.float64)

    def bounds(self) -> tuple[float, float]:
        return 0.0, 1.0

    def __repr__(self) -> str:
        return f"Switch({self.name!r}, p={self.p!r})"


def lehmer_decode(index: torch.Tensor, n: int) -> torch.Tensor:
    """Decode permutation indices in ``[0, n!)`` into orders ``[B, n]`` (factorial number system).

    Digit ``k`` (most significant first) picks the ``k``-th of the items not yet used, so index 0 is the
    identity order and index ``n! - 1`` the reversed one.
    """
    idx = index.to(torch.int64).clone()
    b = idx.shape[0]
    remaining = torch.arange(n, device=idx.device).expand(b, n).clone()
    out = torch.empty(b, n, dtype=torch.int64, device=idx.device)
    for k in range(n):  # n is the number of augmentations (<= 12): a loop over positions, not samples
        base = math.factorial(n - 1 - k)
        digit = idx // base
        idx = idx - digit * base
        out[:, k] = remaining.gather(1, digit[:, None]).squeeze(1)
        keep = torch.ones_like(remaining, dtype=torch.bool)
        keep.scatter_(1, digit[:, None], False)
        remaining = remaining[keep].view(b, n - 1 - k)
    return out


class Permutation(Parameter):
    """Order of ``n`` items from one uniform: index ``floor(u n!)`` decoded by :func:`lehmer_decode`.

    :meth:`decode` returns the index (as float64, exact for n <= 18); :meth:`orders` the orders.
    """

    kind = "permutation"

    def __init__(self, name: str, n: int) -> None:
        super().__init__(name, identity=0.0)
        if int(n) != n or not 1 <= int(n) <= 18:
            raise ValueError(f"Permutation {name!r}: n must be an integer in [1, 18], got {n!r}")
        self.n = int(n)
        self.count = math.factorial(self.n)

    def decode(self, u: torch.Tensor) -> torch.Tensor:
        u = _check_unit(u)
        return torch.clamp(torch.floor(u * self.count), 0, self.count - 1)

    def orders(self, values: torch.Tensor) -> torch.Tensor:
        """Orders ``[B, n]`` (int64) from decoded permutation indices ``[B]``."""
        return lehmer_decode(values, self.n)

    def bounds(self) -> tuple[float, float]:
        return 0.0, float(self.count - 1)

    def __repr__(self) -> str:
        return f"Permutation({self.name!r}, n={self.n})"


class Categorical(Parameter):
    """One of ``n`` categories with equal probability: ``floor(u n)``."""

    kind = "categorical"

    def __init__(self, name: str, n: int) -> None:
        super().__init__(name)
        if int(n) != n or int(n) < 1:
            raise ValueError(f"Categorical {name!r}: n must be a positive integer, got {n!r}")
        self.n = int(n)

    def decode(self, u: torch.Tensor) -> torch.Tensor:
        u = _check_unit(u)
        return torch.clamp(torch.floor(u * self.n), 0, self.n - 1)

    def bounds(self) -> tuple[float, float]:
        return 0.0, float(self.n - 1)

    def __repr__(self) -> str:
        return f"Categorical({self.name!r}, n={self.n})"


class ImageFactor(Parameter):
    """Class, then image within class, from one uniform; decodes to a global image index.

    ``c = floor(u C)`` picks the class (each class has probability 1/C whatever its size); the
    fractional remainder ``v = u C - c`` picks image ``floor(v n_c)`` of that class.  Images are
    numbered class by class (class 0's images first), as in an ImageFolder.  Because the image depends
    only on ``u``, pick-freeze rows that keep this factor see the same image.
    """

    kind = "image"

    def __init__(self, name: str, class_sizes: Sequence[int]) -> None:
        super().__init__(name)
        sizes = [int(s) for s in class_sizes]
        if not sizes or min(sizes) < 1:
            raise ValueError(f"ImageFactor {name!r}: every class needs at least one image, got {sizes!r}")
        self.class_sizes = sizes
        self.n_classes = len(sizes)
        self._sizes = torch.tensor(sizes, dtype=torch.float64)
        self._offsets = torch.tensor([0] + sizes[:-1], dtype=torch.float64).cumsum(0)

    @property
    def n_images(self) -> int:
        return int(sum(self.class_sizes))

    def classes(self, u: torch.Tensor) -> torch.Tensor:
        """Class index ``[B]`` (float64) of each unit value."""
        u = _check_unit(u)
        return torch.clamp(torch.floor(u * self.n_classes), 0, self.n_classes - 1)

    def decode(self, u: torch.Tensor) -> torch.Tensor:
        u = _check_unit(u)
        c = self.classes(u)
        v = torch.clamp(u * self.n_classes - c, 0.0, 1.0)
        sizes = self._sizes.to(u.device)[c.long()]
        within = torch.minimum(torch.floor(v * sizes), sizes - 1)
        return self._offsets.to(u.device)[c.long()] + within

    def bounds(self) -> tuple[float, float]:
        return 0.0, float(self.n_images - 1)

    def __repr__(self) -> str:
        return f"ImageFactor({self.name!r}, classes={self.n_classes}, images={self.n_images})"


class Problem:
    """Independent factors, gathered into named groups.

    Parameters
    ----------
    parameters : sequence of Parameter
        One unit-cube column each, in this order.  Names must be unique.
    groups : mapping of str to list of str, optional
        Group name -> member parameter names.  Sensitivity indices are reported per group.  Parameters
        named in no group become groups of their own (named after the parameter), after the listed
        groups.  ``None`` (default) makes every parameter its own group.

    Raises
    ------
    ValueError
        Empty problem, duplicate names, a parameter in two groups, an empty group.
    KeyError
        A group member that is not a parameter name (the message suggests close names).

    Examples
    --------
    >>> import math, augsens as ag
    >>> p = ag.Problem([ag.Uniform("x1", -math.pi, math.pi), ag.Uniform("x2", -math.pi, math.pi)],
    ...                groups={"both": ["x1", "x2"]})
    >>> p.group_names, p.k, p.D
    (['both'], 2, 1)
    """

    def __init__(
        self, parameters: Sequence[Parameter], groups: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        params = list(parameters)
        if not params:
            raise ValueError("a Problem needs at least one parameter, got an empty list")
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"Problem parameters must be augsens Parameter objects, got {p!r}")
        names = [p.name for p in params]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate parameter names {dupes!r}: every parameter needs its own name")
        self.parameters = params
        self.names = names
        index = {n: i for i, n in enumerate(names)}

        members: list[list[int]] = []
        group_names: list[str] = []
        seen: dict[str, str] = {}
        for gname, gmembers in (groups or {}).items():
            gm = list(gmembers)
            if not gm:
                raise ValueError(f"group {gname!r} is empty: list at least one parameter name")
            cols = []
            for m in gm:
                if m not in index:
                    close = difflib.get_close_matches(str(m), names, n=3)
                    hint = f" Did you mean {close!r}?" if close else f" Known parameters: {names!r}."
                    raise KeyError(f"group {gname!r} names unknown parameter {m!r}.{hint}")
                if m in seen:
                    raise ValueError(f"parameter {m!r} is in two groups: {seen[m]!r} and {gname!r}")
                seen[m] = gname
                cols.append(index[m])
            group_names.append(str(gname))
            members.append(cols)
        for n in names:
            if n not in seen:
                if n in group_names:
                    raise ValueError(f"parameter {n!r} is ungrouped but a group has the same name")
                group_names.append(n)
                members.append([index[n]])
        self.group_names = group_names
        self.group_members = members
        gi = torch.empty(len(params), dtype=torch.int64)
        for g, cols in enumerate(members):
            gi[cols] = g
        self.group_index = gi

    @property
    def k(self) -> int:
        """Number of parameters (unit-cube columns)."""
        return len(self.parameters)

    @property
    def D(self) -> int:
        """Number of groups (players of the sensitivity analysis)."""
        return len(self.group_names)

    def __getitem__(self, name: str) -> Parameter:
        try:
            return self.parameters[self.names.index(name)]
        except ValueError:
            close = difflib.get_close_matches(name, self.names, n=3)
            raise KeyError(f"no parameter {name!r}; close names: {close!r}") from None

    def column(self, name: str) -> int:
        """Column of parameter ``name`` in unit-cube rows and decoded values."""
        self[name]
        return self.names.index(name)

    def decode(self, unit: torch.Tensor) -> torch.Tensor:
        """Map unit-cube rows ``[..., k]`` to parameter values ``[..., k]`` (float64)."""
        unit = _check_unit(unit)
        if unit.shape[-1] != self.k:
            raise ValueError(f"unit-cube rows have {unit.shape[-1]} columns, the problem has k={self.k}")
        cols = [p.decode(unit[..., i]) for i, p in enumerate(self.parameters)]
        return torch.stack(cols, dim=-1)

    def __repr__(self) -> str:
        pairs = zip(self.group_names, self.group_members, strict=True)
        groups = {g: [self.names[i] for i in m] for g, m in pairs}
        return f"Problem({self.parameters!r}, groups={groups!r})"

    @classmethod
    def from_salib(cls, problem: Mapping[str, Any]) -> Problem:
        """The problem described by a SALib problem dict.

        Parameters
        ----------
        problem : mapping
            SALib's format: ``names`` (k strings), ``bounds`` (k ``[low, high]`` pairs), optionally
            ``num_vars`` (must equal k), ``groups`` (k group names, one per variable; groups are ordered
            by first appearance, as SALib orders them) and ``dists`` (only ``"unif"``, SALib's default).

        Returns
        -------
        Problem
            One :class:`Uniform` per variable, grouped as ``groups`` says.

        Raises
        ------
        ValueError
            A missing or malformed key, a ``num_vars`` that disagrees with ``names``, a distribution
            other than ``"unif"``.

        Examples
        --------
        >>> p = Problem.from_salib({"num_vars": 3, "names": ["a", "b", "c"],
        ...                         "bounds": [[0, 1], [0, 2], [-1, 1]], "groups": ["g", "g", "c"]})
        >>> p.group_names, p["b"].bounds()
        (['g', 'c'], (0.0, 2.0))
        >>> Problem.from_salib(p.to_salib()).to_salib() == p.to_salib()
        True
        """
        if not isinstance(problem, Mapping):
            raise TypeError(f"a SALib problem is a dict, got {type(problem).__name__}")
        unknown = sorted(set(problem) - {"num_vars", "names", "bounds", "groups", "dists", "outputs"})
        missing = [key for key in ("names", "bounds") if key not in problem]
        if missing or unknown:
            raise ValueError(
                f"a SALib problem dict needs 'names' and 'bounds' (optionally 'num_vars', 'groups', "
                f"'dists'); missing {missing!r}, unknown {unknown!r}"
            )
        names = [str(n) for n in problem["names"]]
        bounds = [list(b) for b in problem["bounds"]]
        k = problem.get("num_vars", len(names))
        for key, values in (
            ("bounds", bounds),
            ("groups", problem.get("groups")),
            ("dists", problem.get("dists")),
        ):
            if values is not None and len(values) != len(names):
                raise ValueError(f"SALib problem: {key!r} has {len(values)} entries for {len(names)} names")
        if k != len(names):
            raise ValueError(f"SALib problem: num_vars={k!r} but {len(names)} names")
        dists = problem.get("dists") or ["unif"] * len(names)
        other = sorted({d for d in dists if d != "unif"})
        if other:
            raise ValueError(
                f"SALib problem: distributions {other!r} are not supported; augsens factors are uniform on "
                "their bounds ('unif'), or give a Problem of augsens factors"
            )
        for name, b in zip(names, bounds, strict=True):
            if len(b) != 2:
                raise ValueError(f"SALib problem: bounds of {name!r} must be [low, high], got {b!r}")
        params: list[Parameter] = [Uniform(n, lo, hi) for n, (lo, hi) in zip(names, bounds, strict=True)]
        groups: dict[str, list[str]] | None = None
        if problem.get("groups") is not None:
            groups = {}
            for name, group in zip(names, problem["groups"], strict=True):
                groups.setdefault(str(group), []).append(name)
        return cls(params, groups=groups)

    def to_salib(self) -> dict[str, Any]:
        """This problem as a SALib problem dict (``num_vars``, ``names``, ``bounds``, ``groups``).

        ``groups`` is given when some group is not a single parameter of the same name.

        Raises
        ------
        ValueError
            A parameter that is not :class:`Uniform` (SALib's ``"unif"``): switches, integers,
            permutations, categories and images have no SALib counterpart.

        Examples
        --------
        >>> Problem([Uniform("x", 0, 1), Uniform("y", -1, 1)]).to_salib()
        {'num_vars': 2, 'names': ['x', 'y'], 'bounds': [[0.0, 1.0], [-1.0, 1.0]]}
        """
        other = [p.name for p in self.parameters if type(p) is not Uniform]
        if other:
            raise ValueError(
                f"parameters {other!r} are not Uniform: a SALib problem describes uniform variables only"
            )
        out: dict[str, Any] = {
            "num_vars": self.k,
            "names": list(self.names),
            "bounds": [list(p.bounds()) for p in self.parameters],
        }
        group_of = {
            self.names[i]: g for g, m in zip(self.group_names, self.group_members, strict=True) for i in m
        }
        if any(group_of[n] != n for n in self.names):
            out["groups"] = [group_of[n] for n in self.names]
        return out

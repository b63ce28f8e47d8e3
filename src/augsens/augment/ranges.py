"""A study's ranges and distributions for augmentation parameters: ``ranges=`` and ``[augment.NAME]``.

In TOML, one table per augmentation (its single parameter) or per parameter::

    [augment.hue]                      # hue has one parameter: factor
    low = -0.1
    high = 0.1

    [augment.erasing.scale]            # one parameter of a several-parameter augmentation
    low = 0.05
    high = 0.2

    [augment.rotation]                 # any scipy.stats distribution, by name and keywords,
    distribution = "norm"              # truncated to [low, high] or at the quantiles tail, 1 - tail
    loc = 0.0
    scale = 3.0
    tail = 1e-6

In Python (``ag.study(..., ranges=...)``), keys ``"hue"`` or ``"erasing.scale"`` and values
``(low, high)``, a frozen ``scipy.stats`` distribution (``scipy.stats.norm(0, 3)``) or the same tables.
:func:`to_config` turns the Python form into the TOML one, so both give the same config and the same
results.  Parameters a study does not name keep their declared ranges (the paper's, for the twelve).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from augsens.errors import UserInputError

from .protocol import Augmentation, RangeSpec

__all__ = ["normalize", "to_config", "apply_ranges"]


def _is_range_table(value: Mapping[str, Any]) -> bool:
    return not any(isinstance(v, Mapping) for v in value.values())


def normalize(table: Mapping[str, Any], source: str = "config") -> dict[str, dict[str, Any]]:
    """The ``[augment]`` table, flattened to ``{"aug" or "aug.param": range table}`` and checked for form.

    Raises :class:`UserInputError` naming the key for anything that is not a table of numbers (and a
    distribution name).  Whether the augmentations and parameters exist is checked by
    :func:`apply_ranges`, once the study's augmentations are known.
    """
    if not isinstance(table, Mapping):
        raise UserInputError(f"{source}: [augment] must be a table of [augment.NAME] tables, got {table!r}")
    out: dict[str, dict[str, Any]] = {}
    for name, value in table.items():
        where = f"{source}: [augment.{name}]"
        if not isinstance(value, Mapping):
            raise UserInputError(
                f"{where} must be a table (low = ..., high = ...), got {value!r}; write [augment.{name}] "
                "then low and high on their own lines"
            )
        if _is_range_table(value):
            out[str(name)] = _checked(value, where)
            continue
        for param, sub in value.items():
            if not isinstance(sub, Mapping) or not _is_range_table(sub):
                raise UserInputError(
                    f"{where} mixes range keys and parameter tables: give either low/high (a one-parameter "
                    f"augmentation) or one [augment.{name}.PARAMETER] table per parameter"
                )
            out[f"{name}.{param}"] = _checked(sub, f"{source}: [augment.{name}.{param}]")
    return out


def _checked(value: Mapping[str, Any], where: str) -> dict[str, Any]:
    table = dict(value)
    if not table:
        raise UserInputError(f"{where} is empty: give low and high, or a distribution")
    for key, v in table.items():
        if key == "distribution":
            if not isinstance(v, str):
                raise UserInputError(
                    f"{where} distribution must be a scipy.stats name such as 'norm', got {v!r}"
                )
        elif isinstance(v, bool) or not isinstance(v, int | float):
            raise UserInputError(f"{where} {key} must be a number, got {v!r}")
    if "distribution" not in table:
        extra = sorted(set(table) - {"low", "high"})
        if extra:
            raise UserInputError(
                f"{where}: unknown key(s) {', '.join(extra)}; a uniform range takes low and high, a "
                "distribution needs distribution = '<scipy.stats name>' and its keywords"
            )
    return table


def to_config(ranges: Mapping[str, RangeSpec] | None) -> dict[str, Any]:
    """Python ranges (``{"hue": (-0.1, 0.1), "rotation": scipy.stats.norm(0, 3)}``) -> the TOML table."""
    out: dict[str, Any] = {}
    for key, value in (ranges or {}).items():
        if not isinstance(key, str) or not key:
            raise UserInputError(f"ranges: keys are 'augmentation' or 'augmentation.parameter', got {key!r}")
        name, _, param = key.partition(".")
        table = _table(value, f"ranges[{key!r}]")
        if param:
            out.setdefault(name, {})[param] = table
        else:
            out[name] = table
    return out


def _table(value: RangeSpec, where: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise UserInputError(f"{where}: give (low, high), got {value!r}")
        return {"low": _float(value[0], where), "high": _float(value[1], where)}
    inner = getattr(value, "dist", None)
    if hasattr(value, "ppf") and inner is not None and getattr(inner, "name", None):
        from augsens.core.factors import dist_keywords

        return {"distribution": inner.name, **dist_keywords(value)}
    if hasattr(value, "ppf"):
        raise UserInputError(
            f"{where}: a distribution in a study's config must be a frozen scipy.stats distribution named in "
            f"scipy.stats (e.g. scipy.stats.norm(0, 2)), got {value!r}; an empirical one can be used with "
            "ag.Problem and ag.ScipyDistribution"
        )
    raise UserInputError(f"{where}: give (low, high), a scipy.stats distribution or a table, got {value!r}")


def _float(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
        raise UserInputError(f"{where}: bounds must be finite numbers, got {value!r}")
    return float(value)


def apply_ranges(
    augmentations: Sequence[Augmentation], ranges: Mapping[str, Mapping[str, Any]] | None
) -> tuple[Augmentation, ...]:
    """The study's augmentations with the ranges of :func:`normalize`'s table applied.

    Raises :class:`UserInputError` for a range of an augmentation the study does not apply, of an
    unknown parameter, or without a parameter name on a several-parameter augmentation.
    """
    by_name = {a.name: a for a in augmentations}
    per_aug: dict[str, dict[str, Any]] = {}
    for key, table in (ranges or {}).items():
        name, _, param = key.partition(".")
        if name not in by_name:
            raise UserInputError(
                f"[augment.{name}] sets a range, but {name!r} is not among the study's augmentations "
                f"({', '.join(by_name)})"
            )
        aug = by_name[name]
        if not param:
            if len(aug.params) != 1:
                takes = ", ".join(aug.param_names) or "no parameters"
                raise UserInputError(
                    f"[augment.{name}] needs a parameter: {name} takes {takes}; write "
                    f"[augment.{name}.PARAMETER] (ranges={{'{name}.PARAMETER': ...}})"
                )
            param = aug.params[0].name
        per_aug.setdefault(name, {})[param] = table
    return tuple(a.with_ranges(per_aug[a.name]) if a.name in per_aug else a for a in augmentations)

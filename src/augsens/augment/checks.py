"""The protocol's rules, checked once per augmentation on a probe batch before a study's first forward.

:func:`check_augmentation` calls an augmentation's ``fn`` a few times on a small batch of the study's own
inputs (the probe) and refuses it, with one :class:`AugmentationCheckError` naming the rule broken and
the fix, when (the rules of :mod:`augsens.augment.protocol`):

======================  ===================================================================
kind                    what is wrong
======================  ===================================================================
``input``               the study's inputs do not have the shape the augmentation declares
``exception``           ``fn`` raised an exception
``not_a_tensor``        ``fn`` returned something other than a tensor
``device``              the output is on another device than the input
``shape``               the output's shape differs from the input's
``dtype``               the output's dtype differs from the input's
``in_place``            ``fn`` modified its input
``non_finite``          the output holds NaN or infinity
``random``              two calls with the same inputs differ (randomness of its own)
``identity``            the identity values do not leave the input unchanged
``other_parameters``    a sample's output depends on another sample's parameters
``other_samples``       a sample's output depends on the other samples or the batch size
``ignored_parameter``   a declared parameter has no effect, on the probe nor on random inputs
======================  ===================================================================

An augmentation that leaves every probe input unchanged at its probe values (pixel ranges meant for
larger inputs, a no-op rule) cannot show whether it uses its parameters: a ``UserWarning`` says so and
the check passes.  The command line prints a refusal's message and exits with code 2, as for every user
error; nothing has been computed yet, and a saved state or results are left as they were.
Tolerances: ``rtol = atol = 1e-4`` (:data:`TOLERANCE`; far below a uint8 grey level, 1/255, and above
the rounding of float32 ops), except the ignored-parameter check, which needs outputs bit for bit equal.
A result is kept per augmentation, code, probe shape, dtype, device and mode, so an augmentation is
checked once per process.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from augsens.errors import UserInputError

from .protocol import Augmentation, check_input

__all__ = [
    "AugmentationCheckError",
    "check_augmentation",
    "check_augmentations",
    "probe_parameters",
    "TOLERANCE",
]

#: Relative and absolute tolerance of the comparisons (``torch.allclose``).
TOLERANCE = 1e-4
#: Samples in a probe batch (at least 2: the per-sample checks change one sample and watch the others).
PROBE_SIZE = 2

_CHECKED: set[tuple[Any, ...]] = set()
_PHI = 0.6180339887498949  # 1 / golden ratio: parameter k's quantiles are shifted by k / phi


class AugmentationCheckError(UserInputError):
    """An augmentation breaks a rule of the protocol on the probe batch; ``kind`` names the rule."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(torch.allclose(a, b, rtol=TOLERANCE, atol=TOLERANCE))


def probe_parameters(
    aug: Augmentation,
    batch: int,
    like: torch.Tensor,
    *,
    only: str | None = None,
    at: float = 0.5,
) -> dict[str, torch.Tensor]:
    """Parameter tensors ``[batch]`` for a probe, drawn through each parameter's own factor.

    Sample ``b`` has parameter ``k`` at the quantile ``frac((b + 0.5) / batch + k / phi)`` (phi, the
    golden ratio): every sample has its own values, and no two parameters move together (an ellipse
    with equal axes would hide its angle).  With ``only``, that parameter is at quantile ``at`` in
    every sample.
    """
    spread = (torch.arange(batch, dtype=torch.float64) + 0.5) / batch
    dtype = torch.float64 if like.dtype == torch.float64 else torch.float32
    out = {}
    for k, p in enumerate(aug.params):
        q = (
            torch.full((batch,), float(at), dtype=torch.float64)
            if p.name == only
            else (spread + k * _PHI) % 1
        )
        value = p.factor(p.name).decode(q).to(device=like.device, dtype=dtype)
        out[p.name] = torch.round(value) if p.integer else value
    return out


def _fail(aug: Augmentation, x: torch.Tensor, kind: str, problem: str, fix: str) -> AugmentationCheckError:
    where = f"a probe batch {list(x.shape)} {str(x.dtype).replace('torch.', '')} on {x.device}"
    return AugmentationCheckError(
        f"augmentation {aug.name!r} ({aug.source}) fails its check on {where}: {problem}. {fix}", kind
    )


def _call(aug: Augmentation, x: torch.Tensor, params: Mapping[str, torch.Tensor], mode: str) -> torch.Tensor:
    """``fn`` on the probe, with the checks every call gets (exception, type, device, shape, dtype, input
    left alone, finite output)."""
    before = x.clone()
    try:
        y = aug.run(x, params, mode)
    except Exception as exc:  # any exception of a user's op is the user's to fix: say which
        first = next(iter(str(exc).splitlines()), "")
        raise _fail(
            aug,
            x,
            "exception",
            f"fn raised {type(exc).__name__}: {first}",
            "Fix fn so that it runs on a batch [B, ...] with one value per sample [B] for each parameter",
        ) from exc
    if not isinstance(y, torch.Tensor):
        raise _fail(
            aug,
            x,
            "not_a_tensor",
            f"fn returned {type(y).__name__}, not a torch.Tensor",
            "Return the augmented batch as a tensor like x",
        )
    if y.device != x.device:
        raise _fail(
            aug,
            x,
            "device",
            f"fn returned a tensor on {y.device}, its input is on {x.device}",
            "Compute on x.device (make constants with device=x.device) and never move the result",
        )
    if y.shape != x.shape:
        raise _fail(
            aug,
            x,
            "shape",
            f"fn changed the shape from {list(x.shape)} to {list(y.shape)}",
            "Return a tensor of the input's shape (crop, pad or resize back inside fn)",
        )
    if y.dtype != x.dtype:
        raise _fail(
            aug,
            x,
            "dtype",
            f"fn changed the dtype from {x.dtype} to {y.dtype}",
            "Return the input's dtype (e.g. .to(x.dtype) at the end)",
        )
    if not torch.equal(x, before):
        raise _fail(
            aug,
            x,
            "in_place",
            "fn modified its input in place",
            "Work on a copy (x.clone(), or out-of-place ops): the input is shared with other steps",
        )
    finite = torch.isfinite(y)
    if not bool(finite.all()):
        count = int((~finite).sum())
        raise _fail(
            aug,
            x,
            "non_finite",
            f"fn returned {count} NaN or infinite value(s)",
            "Guard divisions and logarithms (clamp, eps) so that every output is finite",
        )
    return y


def check_augmentation(aug: Augmentation, probe: torch.Tensor, *, mode: str = "clean") -> None:
    """Check ``aug`` against the protocol's rules on ``probe`` (a float batch ``[B, ...]``, ``B >= 2``).

    Parameters
    ----------
    aug : Augmentation
        The augmentation, with the study's ranges.
    probe : torch.Tensor
        A few of the study's own inputs, as the augmentation will receive them (float, on the device).
    mode : {"clean", "paper"}
        The study's fidelity mode, passed to ``fn`` when it takes one.

    Raises
    ------
    AugmentationCheckError
        The first rule broken (module docstring), as one message naming the augmentation and the fix.
    """
    key = (
        aug.name,
        aug.source,
        aug.code_hash,
        aug.declaration_hash(),
        tuple(probe.shape),
        probe.dtype,
        str(probe.device),
        mode,
    )
    if key in _CHECKED:
        return
    try:
        check_input(probe, {aug.name: aug.input_shape}, what="the study's input")
    except (TypeError, ValueError) as exc:
        raise _fail(
            aug,
            probe,
            "input",
            str(exc),
            "Apply it to inputs of the shape it declares (input_shape), or declare the shape it takes",
        ) from exc
    if probe.shape[0] < 2:
        raise ValueError(f"a probe batch needs at least 2 samples, got {probe.shape[0]}")
    x, b = probe, probe.shape[0]
    params = probe_parameters(aug, b, x)
    y = _call(aug, x, params, mode)
    if not _close(y, _call(aug, x, params, mode)):
        raise _fail(
            aug,
            x,
            "random",
            "two calls with the same input and parameters gave different outputs",
            "Draw no randomness inside fn: take noise from a parameter (e.g. a seed drawn by the design) so "
            "that every design row replays exactly",
        )
    identity = aug.identity
    if aug.params and all(v is not None for v in identity.values()):
        ident = {
            name: torch.full((b,), float(v), dtype=params[name].dtype, device=x.device)  # type: ignore[arg-type]
            for name, v in identity.items()
        }
        if not _close(_call(aug, x, ident, mode), x):
            values = ", ".join(f"{k}={v:g}" for k, v in identity.items() if v is not None)
            raise _fail(
                aug,
                x,
                "identity",
                f"at its identity value(s) ({values}) the output differs from the input",
                "Declare the parameter values that leave the input unchanged (identity=..., or None where "
                "there is none)",
            )
    if aug.params:
        _check_per_sample(aug, x, params, y, mode)
        # the study's inputs may not show an effect (a vertical roll of an image of two vertical halves):
        # a parameter counts as ignored only if random inputs of the same shape do not show one either
        noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        noise = noise.to(device=x.device, dtype=x.dtype)
        if torch.equal(y, x) and torch.equal(_call(aug, noise, params, mode), noise):
            # nothing changes at all (pixel ranges meant for larger images, a no-op rule): no parameter can
            # show an effect, so there is nothing to refuse, only something to say
            warnings.warn(
                f"augmentation {aug.name!r} leaves the probe inputs {list(x.shape)} unchanged at its ranges "
                f"({mode} mode): are its ranges meant for inputs of another size?",
                UserWarning,
                stacklevel=3,
            )
            _CHECKED.add(key)
            return
        for p in aug.params:
            low = probe_parameters(aug, b, x, only=p.name, at=0.1)
            high = probe_parameters(aug, b, x, only=p.name, at=0.9)
            if all(torch.equal(_call(aug, z, low, mode), _call(aug, z, high, mode)) for z in (x, noise)):
                raise _fail(
                    aug,
                    x,
                    "ignored_parameter",
                    f"parameter {p.name!r} has no effect: {p.name} = {float(low[p.name][0]):g} and "
                    f"{float(high[p.name][0]):g} give the same output",
                    f"Use {p.name} in fn, or remove it from the declared parameters",
                )
    else:
        rest = _call(aug, x[1:], params, mode)
        if not _close(rest, y[1:]):
            raise _other_samples(aug, x)
    _CHECKED.add(key)


def _other_samples(aug: Augmentation, x: torch.Tensor) -> AugmentationCheckError:
    return _fail(
        aug,
        x,
        "other_samples",
        "a sample's output changed when the op ran on a smaller batch (it depends on the other samples, e.g. "
        "a batch mean, or on the batch size)",
        "Compute every sample from its own input and parameters only: studies apply an op to sub-batches",
    )


def _check_per_sample(
    aug: Augmentation, x: torch.Tensor, params: Mapping[str, torch.Tensor], y: torch.Tensor, mode: str
) -> None:
    """Sample 0's parameters changed -> samples 1.. unchanged; samples 1.. alone -> the same outputs."""
    moved = {}
    for p in aug.params:
        other = probe_parameters(aug, 1, x, only=p.name, at=0.95)[p.name]
        if bool(other[0] == params[p.name][0]):
            other = probe_parameters(aug, 1, x, only=p.name, at=0.05)[p.name]
        moved[p.name] = torch.cat([other, params[p.name][1:]])
    changed = _call(aug, x, moved, mode)
    if not _close(changed[1:], y[1:]):
        diff = (changed[1:] - y[1:]).flatten(1).abs().amax(dim=1)
        sample = 1 + int(diff.argmax())
        raise _fail(
            aug,
            x,
            "other_parameters",
            f"the output of sample {sample} changed when only sample 0's parameters changed",
            "Use parameter row b for sample b only (reshape a [B] parameter to [B, 1, ...] to broadcast), "
            "never params[0] or a batch statistic of a parameter",
        )
    rest = _call(aug, x[1:], {k: v[1:] for k, v in params.items()}, mode)
    if not _close(rest, y[1:]):
        raise _other_samples(aug, x)


def check_augmentations(
    augmentations: Iterable[Augmentation], probe: torch.Tensor, *, mode: str = "clean"
) -> None:
    """:func:`check_augmentation` for each augmentation of a study, in order (the first failure raises)."""
    for aug in augmentations:
        check_augmentation(aug, probe, mode=mode)

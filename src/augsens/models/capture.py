"""A loaded network and the capture of its named activations.

:class:`LoadedModel` wraps an ``nn.Module`` with what an augmentation study needs: its input normalisation,
its default checkpoints (the modules analysed), its class names and the module whose output are the logits.
:meth:`LoadedModel.capture` returns the outputs of named modules from one forward pass: hooks are registered
for that call only and removed in ``finally``, the forward stops right after the last requested module, and
the module's training flags are restored.

A module that returns a tuple, list or dict (an attention block returning ``(out, weights)``, a backbone
returning ``{"out": ..., "aux": ...}``) is captured by naming the element after the module name, as in
Python: ``"blocks.3[0]"``, ``"backbone['out']"``, ``"head[1]['logits']"``.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from augsens.errors import UserInputError

__all__ = [
    "LoadedModel",
    "UnknownModuleError",
    "OutputSelectionError",
    "split_checkpoint",
    "select_output",
    "eval_mode",
    "is_image_shape",
    "IMAGE_INPUT",
]


class UnknownModuleError(KeyError, UserInputError):
    """A checkpoint name that is not a module of the network (a ``KeyError`` and a ``ValueError``)."""

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0])


class OutputSelectionError(UserInputError, TypeError):
    """A checkpoint's output is not one tensor, or its element selector does not fit the output.

    A ``TypeError`` (the output has the wrong type) and a :class:`~augsens.errors.UserInputError`."""


# "name", "name[0]", "name['out']", "name[1][\"x\"]": the module name, then Python-style subscripts
_SELECTOR = re.compile(r"\[(?:-?\d+|'[^'\]]*'|\"[^\"\]]*\")\]")


def split_checkpoint(name: str) -> tuple[str, tuple[int | str, ...]]:
    """``"blocks.3[0]['out']"`` -> ``("blocks.3", (0, "out"))``: the module name and its output selectors.

    Examples
    --------
    >>> split_checkpoint("layer1"), split_checkpoint("encoder[0]['out']")
    (('layer1', ()), ('encoder', (0, 'out')))
    """
    keys: list[int | str] = []
    rest = name
    while rest.endswith("]"):
        found = [m for m in _SELECTOR.finditer(rest) if m.end() == len(rest)]
        if not found:
            break
        m = found[-1]
        keys.insert(0, ast.literal_eval(m.group()[1:-1]))
        rest = rest[: m.start()]
    return rest, tuple(keys)


def _describe(output: Any) -> str:
    """A short description of a module output: ``tuple of 2 (Tensor [1, 197, 192], NoneType)``."""
    if isinstance(output, torch.Tensor):
        return f"Tensor {list(output.shape)}"
    if isinstance(output, dict):
        inner = ", ".join(f"{k!r}: {_describe(v)}" for k, v in list(output.items())[:6])
        return f"dict with keys {{{inner}}}"
    if isinstance(output, tuple | list):
        inner = ", ".join(_describe(v) for v in output[:6])
        return f"{type(output).__name__} of {len(output)} ({inner})"
    return type(output).__name__


def _example_selector(name: str, output: Any) -> str:
    """A checkpoint name that picks the first tensor of a tuple / list / dict output, for messages."""
    if isinstance(output, dict):
        for k, v in output.items():
            if isinstance(v, torch.Tensor):
                return f"{name}[{k!r}]"
    elif isinstance(output, tuple | list):
        for i, v in enumerate(output):
            if isinstance(v, torch.Tensor):
                return f"{name}[{i}]"
    return f"{name}[0]"


def select_output(name: str, output: Any, keys: Sequence[int | str]) -> torch.Tensor:
    """The tensor that checkpoint ``name`` (module name + ``keys``) designates in a module's ``output``.

    Raises
    ------
    OutputSelectionError
        The output is not one tensor and no selector names an element, or a selector does not fit; the
        message describes the output and gives a checkpoint name that works.
    """
    module = split_checkpoint(name)[0]
    value = output
    for depth, key in enumerate(keys):
        if isinstance(value, torch.Tensor):  # indexing a tensor would pick a sample, not an element
            where = module + "".join(f"[{k!r}]" for k in keys[:depth])
            raise OutputSelectionError(
                f"checkpoint {name!r}: {where!r} returns one tensor, so there is no element to name: "
                f"use checkpoint {where!r}"
            )
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError) as exc:
            where = module + "".join(f"[{k!r}]" for k in keys[:depth])
            raise OutputSelectionError(
                f"checkpoint {name!r}: {where!r} returns {_describe(value)}, which has no element {key!r}; "
                f"name an existing one, e.g. {_example_selector(where, value)!r}"
            ) from exc
    if not isinstance(value, torch.Tensor):
        where = module + "".join(f"[{k!r}]" for k in keys)
        raise OutputSelectionError(
            f"module {where!r} returns {_describe(value)}, not a tensor: name the element to capture "
            f"after the module, e.g. checkpoint {_example_selector(where, value)!r}"
        )
    return value


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode for the duration of the block; every submodule's own training flag restored afterwards.

    Every module's flag is saved, not just the root's: a caller may have put only some submodules in train
    mode, and ``module.train(flag)`` would flatten that.  A module already in eval mode throughout is left
    untouched.

    Parameters
    ----------
    module : torch.nn.Module

    Examples
    --------
    >>> net = nn.Sequential(nn.Dropout(), nn.BatchNorm1d(2))
    >>> net[1].eval()  # doctest: +ELLIPSIS
    BatchNorm1d(...)
    >>> with eval_mode(net):
    ...     [m.training for m in net.modules()]
    [False, False, False]
    >>> [m.training for m in net.modules()]
    [True, True, False]
    """
    flags = [(m, m.training) for m in module.modules()]
    if not any(f for _, f in flags):
        yield
        return
    module.eval()
    try:
        yield
    finally:
        for m, f in flags:
            m.training = f


class _StopForward(Exception):
    """Raised from a hook once every requested module has run, to skip the rest of the forward."""


_LISTED = 40  # module names shown in full in an unknown-name message


def _unknown_module(name: object, known: Sequence[str]) -> UnknownModuleError:
    close = difflib.get_close_matches(str(name), known, n=5, cutoff=0.5)
    hint = f" Close matches: {close!r}." if close else ""
    shown = ", ".join(known[:_LISTED]) + (f", ... ({len(known)} in all)" if len(known) > _LISTED else "")
    return UnknownModuleError(
        f"no module named {name!r} in this network.{hint} Its modules: {shown} (listed in m.module_names; "
        "the default analysis list is m.checkpoints)."
    )


#: per-sample input shape a network is probed with unless told otherwise: the paper's RGB 224 x 224
IMAGE_INPUT = (3, 224, 224)


def _check_norm(
    mean: Sequence[float], std: Sequence[float], channels: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Normalisation constants: one value per input channel (or one for all)."""
    mean_t = tuple(float(v) for v in mean)
    std_t = tuple(float(v) for v in std)
    if len(mean_t) != len(std_t) or len(mean_t) not in (1, channels):
        what = "3 values (R, G, B)" if channels == 3 else f"{channels} values (one per input channel)"
        raise UserInputError(f"mean and std need {what}, got mean={mean!r}, std={std!r}")
    if min(std_t) <= 0:
        raise UserInputError(f"std values must be positive, got std={std!r}")
    return mean_t, std_t


def is_image_shape(shape: Sequence[int]) -> bool:
    """Whether a per-sample input shape is an RGB image ``(3, H, W)``."""
    return len(shape) == 3 and shape[0] == 3


class LoadedModel:
    """A network ready for activation capture.  Build it with :func:`augsens.models.load`.

    Attributes
    ----------
    name : str
        Registry name (``"resnet18"``, ``"efficientnet_lite0"``, ...) or the class name of a user module.
    module : torch.nn.Module
        The network, in eval mode, on :attr:`device`.
    checkpoints : list of str
        Modules analysed by default, in model order (with an element selector such as ``"blocks.3[0]"``
        where a module returns a tuple or dict; see the module docstring).
    module_names : list of str
        Every named module (``named_modules()`` order, the root excluded): the valid checkpoint names.
    mean, std : tuple of float
        Per-channel input normalisation: the network sees ``(x - mean) / std`` for ``x`` in [0, 1] (one
        value per input channel, or one for all).
    input_shape : tuple of int
        Shape of one input sample: ``(3, 224, 224)`` unless set (``(3, 32, 32)`` for a CIFAR-size
        network, ``(C, T)`` for a 1-D signal network).  Output shapes and checkpoint layouts are probed
        with a zero input of this shape; setting it forgets the shapes found before.
    categories : list of str or None
        Class names, in label order.
    classifier : str or None
        Module whose output are the logits; :meth:`capture` returns its softmax (float32) and
        :meth:`predict` reads it.  ``None``: the model output is taken as the logits by :meth:`predict`.
    device : torch.device
        Where the module lives; inputs must be there too.
    num_classes : int or None
        Number of classes (from the categories, else from the classifier's output shape).
    """

    def __init__(
        self,
        name: str,
        module: nn.Module,
        *,
        checkpoints: Sequence[str],
        mean: Sequence[float],
        std: Sequence[float],
        categories: Sequence[str] | None = None,
        classifier: str | None = None,
        device: str | torch.device = "cpu",
        num_classes: int | None = None,
        input_shape: Sequence[int] = IMAGE_INPUT,
    ) -> None:
        self.name = name
        self.module = module
        self._modules = dict(module.named_modules())
        self.module_names = [n for n in self._modules if n]
        self._index = {n: i for i, n in enumerate(self.module_names)}
        self._input_shape = self._check_shape(input_shape)
        self.mean, self.std = _check_norm(mean, std, self._input_shape[0])
        if classifier is not None and classifier not in self._index:
            raise _unknown_module(classifier, self.module_names)
        self.classifier = classifier
        self.checkpoints = self._resolve(checkpoints)
        self.categories = list(categories) if categories is not None else None
        if num_classes is None and self.categories is not None:
            num_classes = len(self.categories)
        self._num_classes = num_classes
        self.device = torch.device(device)
        self._norm_cache: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        # Modules whose output a later in-place op overwrote (e.g. a conv followed by ReLU(inplace=True)):
        # their captured output is cloned in the hook.  Learned on first sight, see capture().
        self._clone: set[str] = set()

    # ------------------------------------------------------------------ names
    def _resolve(self, checkpoints: Sequence[str] | str | None) -> list[str]:
        if checkpoints is None:
            return list(self.checkpoints)
        if isinstance(checkpoints, str):
            checkpoints = [checkpoints]
        names = list(checkpoints)
        if not names:
            raise UserInputError("checkpoints is empty: name at least one module (see m.module_names)")
        for n in names:
            if not isinstance(n, str) or split_checkpoint(n)[0] not in self._index:
                raise _unknown_module(n, self.module_names)
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise UserInputError(f"checkpoints names {dupes!r} more than once: list each module once")
        return sorted(names, key=lambda n: self._index[split_checkpoint(n)[0]])

    @property
    def num_classes(self) -> int | None:
        """Number of classes; found from one dummy forward when no categories were given."""
        if self._num_classes is None:
            target = self.classifier
            if target is not None:
                shape = self.output_shapes([target])[target]
            else:
                with torch.no_grad(), eval_mode(self.module):
                    shape = tuple(self.module(self._dummy()).shape[1:])
            self._num_classes = int(shape[-1]) if len(shape) == 1 else None
        return self._num_classes

    # ------------------------------------------------------------------ input
    @staticmethod
    def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
        out = tuple(int(s) for s in shape)
        if len(out) < 2 or min(out) < 1:
            raise UserInputError(
                f"input_shape {shape!r} must be one sample's shape with a channel dim first and positive "
                "sizes: (3, H, W) for images, (C, T) for 1-D signals"
            )
        return out

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input sample (see the class docstring)."""
        return self._input_shape

    @input_shape.setter
    def input_shape(self, shape: Sequence[int]) -> None:
        new = self._check_shape(shape)
        _check_norm(self.mean, self.std, new[0])  # the constants must fit the new channel count
        if new != self._input_shape:
            self._shapes.clear()
        self._input_shape = new

    @property
    def _layout(self) -> str:
        """The expected input, for messages: ``[B, 3, H, W]`` for images, else ``[B, C, T]``-like."""
        if is_image_shape(self._input_shape):
            return "[B, 3, H, W]"
        names = ["T"] if len(self._input_shape) == 2 else [f"D{i}" for i in range(1, len(self._input_shape))]
        return f"[B, {self._input_shape[0]}, {', '.join(names)}]"

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the network's normalisation.

        Parameters
        ----------
        x : Tensor [B, 3, H, W], float in [0, 1] (or [B, C, ...] for another :attr:`input_shape`)
            Inputs on :attr:`device`, any float dtype and memory format.

        Returns
        -------
        Tensor, same shape
            ``(x - mean) / std`` in ``x``'s dtype, per channel (dim 1).
        """
        self._check_input(x)
        key = (x.device, x.dtype)
        if key not in self._norm_cache:
            view = (1, len(self.mean)) + (1,) * (len(self._input_shape) - 1)
            mean = torch.tensor(self.mean, dtype=torch.float32).view(view).to(x.device, x.dtype)
            std = torch.tensor(self.std, dtype=torch.float32).view(view).to(x.device, x.dtype)
            self._norm_cache[key] = (mean, std)
        mean, std = self._norm_cache[key]
        return (x - mean) / std

    def _check_input(self, x: Any) -> None:
        image = is_image_shape(self._input_shape)
        what = "images" if image else "inputs"
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{what} must be a torch.Tensor {self._layout}, got {type(x).__name__}")
        if x.ndim != len(self._input_shape) + 1 or x.shape[1] != self._input_shape[0]:
            raise ValueError(f"{what} must have shape {self._layout}, got {tuple(x.shape)}")
        if not x.is_floating_point():
            fix = "convert uint8 images with x.float() / 255" if image else "convert them with x.float()"
            raise TypeError(
                f"{what} must be a float tensor{' in [0, 1]' * image}, got dtype {x.dtype}: {fix}"
            )
        if x.device != self.device and not (x.device.type == self.device.type and self.device.index is None):
            raise ValueError(
                f"{what} are on {x.device} but the model is on {self.device}: move them with x.to(m.device) "
                "or the model with m.to(device)"
            )

    def example_input(self) -> torch.Tensor:
        """A zero batch of one sample of :attr:`input_shape` on :attr:`device`, as shapes are probed."""
        return torch.zeros(1, *self._input_shape, device=self.device)

    def _dummy(self) -> torch.Tensor:
        return self.example_input()

    # ------------------------------------------------------------------ capture
    def capture(
        self,
        x: torch.Tensor,
        checkpoints: Sequence[str] | str | None = None,
        *,
        normalized: bool = False,
        softmax: bool = True,
    ) -> dict[str, torch.Tensor]:
        """Outputs of named modules from one forward pass.

        Parameters
        ----------
        x : Tensor [B, 3, H, W] (or [B, C, ...] for another :attr:`input_shape`)
            Images on :attr:`device`: float in [0, 1], or already normalised when ``normalized=True``.
            Any float dtype and memory format (channels_last works); ``torch.autocast`` applies.
        checkpoints : sequence of str or str, optional
            Module names (see :attr:`module_names`), each with an element selector (``"blocks.3[0]"``,
            ``"backbone['out']"``) where the module returns a tuple, list or dict.  Default:
            :attr:`checkpoints`.
        normalized : bool, default False
            ``x`` is already normalised; skip :meth:`normalize`.
        softmax : bool, default True
            Replace the :attr:`classifier` output (if requested) by its softmax over the last axis, in
            float32: the paper analyses probabilities.  No other output is changed.

        Returns
        -------
        dict of str to Tensor
            ``{name: [B, ...]}`` in the order the modules finished during the forward (model order), on the
            model's device, in the dtype the network produced them (e.g. bfloat16 under autocast).

        Raises
        ------
        UnknownModuleError
            A name is not a module (raised before any forward; the message lists close matches).
        ValueError
            A requested module did not run during the forward, or ``x`` is on another device.

        Notes
        -----
        The forward stops (a private exception raised from the last hook) as soon as every requested module
        has run, so nothing after the last checkpoint is computed.  A module that runs several times per
        forward (a shared activation) yields the output of its first call.  If a later in-place operation
        overwrites a captured tensor (``ReLU(inplace=True)`` after a captured conv), the forward is repeated
        once with that output cloned, and cloned from then on.
        """
        names = self._resolve(checkpoints)
        xin = x if normalized else self.normalize(x)
        if normalized:
            self._check_input(x)
        out, overwritten = self._forward(xin, names, softmax)
        if overwritten:
            self._clone |= overwritten
            out, _ = self._forward(xin, names, softmax)
        missing = [n for n in names if n not in out]
        if missing:
            raise UserInputError(
                f"modules {missing!r} did not run during the forward pass, so they have no output to "
                "capture: choose modules that the model's forward calls (see m.checkpoints)"
            )
        return out

    def _forward(
        self, x: torch.Tensor, names: list[str], softmax: bool
    ) -> tuple[dict[str, torch.Tensor], set[str]]:
        wanted = set(names)
        out: dict[str, torch.Tensor] = {}
        versions: dict[str, int] = {}
        modules = self._modules

        def make_hook(targets: list[tuple[str, tuple[int | str, ...]]]):
            def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
                for name, keys in targets:
                    if name in out:
                        continue
                    value = select_output(name, output, keys)
                    if softmax and name == self.classifier:
                        value = torch.softmax(value.float(), dim=-1)
                    elif name in self._clone:
                        value = value.clone()
                    out[name] = value
                    if not value.is_inference():  # inference tensors (torch.inference_mode) have no version
                        versions[name] = value._version
                if len(out) == len(wanted):
                    raise _StopForward

            return hook

        by_module: dict[str, list[tuple[str, tuple[int | str, ...]]]] = {}
        for n in names:
            module_name, keys = split_checkpoint(n)
            by_module.setdefault(module_name, []).append((n, keys))
        handles = []
        try:
            for module_name, targets in by_module.items():
                handles.append(modules[module_name].register_forward_hook(make_hook(targets)))
            with torch.no_grad(), eval_mode(self.module):
                try:
                    self.module(x)
                except _StopForward:
                    pass
        finally:
            for h in handles:
                h.remove()
        overwritten = {n for n, v in versions.items() if out[n]._version != v}
        return out, overwritten

    def predict(self, x: torch.Tensor, *, normalized: bool = False) -> torch.Tensor:
        """Class probabilities ``[B, classes]`` (float32, rows sum to 1).

        Parameters
        ----------
        x : Tensor [B, 3, H, W]
            Images as for :meth:`capture`.
        normalized : bool, default False
            ``x`` is already normalised.
        """
        if self.classifier is not None:
            return self.capture(x, [self.classifier], normalized=normalized, softmax=True)[self.classifier]
        xin = x if normalized else self.normalize(x)
        with torch.no_grad(), eval_mode(self.module):
            return torch.softmax(self.module(xin).float(), dim=-1)

    def output_shapes(self, checkpoints: Sequence[str] | str | None = None) -> dict[str, tuple[int, ...]]:
        """Per-sample output shapes ``{name: (C, H, W) or (F,)}`` for an input of :attr:`input_shape`.

        Found the first time a name is asked for, by a dry forward on real batches that also checks
        that every checkpoint gives one output per image, depending on that image only
        (:meth:`_probe`); cached afterwards.

        Raises
        ------
        UserInputError
            The model rejects 224 x 224 RGB batches, or a checkpoint's output mixes the images of a
            batch or does not follow the batch size (the message names the checkpoint).
        """
        names = self._resolve(checkpoints)
        todo = [n for n in names if n not in self._shapes]
        if todo:
            self._shapes.update(self._probe(todo))
        return {n: self._shapes[n] for n in names}

    def _dry_capture(self, x: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
        try:
            return self.capture(x, names, normalized=True, softmax=False)
        except UserInputError:
            raise
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:  # raised by the model's forward
            shape = self._input_shape
            if is_image_shape(shape):
                side = f"{shape[1]} x {shape[2]}"
                what, takes = f"RGB, {side}", f"3-channel {side} images"
            else:
                what, takes = f"{shape[0]} channels", f"inputs of shape {list(shape)}"
            raise UserInputError(
                f"model {self.name!r} rejects the input augsens gives it: a batch of shape "
                f"{tuple(x.shape)} ({what}, float32, normalised) made its forward raise "
                f"{type(exc).__name__}: {exc}. Wrap the network so that it takes {takes}, or give "
                "inputs of the size it takes ([images] size; run with --debug for the traceback)"
            ) from exc

    def _probe(self, names: list[str]) -> dict[str, tuple[int, ...]]:
        """Per-sample shapes of ``names``, from three dry forwards: ``[x0]``, ``[x0, x1, x2]`` and
        ``[x0, x3, x4]``.

        The estimators reduce each checkpoint's output row by row, so every output must have the batch
        as its first dim, the same per-sample shape at any batch size, and rows that depend on their own
        image only.  A batch of one cannot show any of this (a mean over the batch keeps its shape), so
        two batches of three share their first image and differ in the others: the first rows must agree
        (three, not two: a permutation of two rows applied twice would be the identity).
        """
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(5, *self._input_shape, generator=gen).to(self.device)  # normalised-looking inputs
        one = self._dry_capture(x[:1], names)
        pair = self._dry_capture(x[:3], names)
        other = self._dry_capture(x[[0, 3, 4]], names)
        fix = (
            "Wrap the network so that each image of a batch gives its own output, or choose another "
            "checkpoint (see m.checkpoints)"
        )
        for name in names:
            a, b, c = one[name], pair[name], other[name]
            if a.ndim == 0 or b.ndim == 0 or a.shape[0] != 1 or b.shape[0] != 3 or a.shape[1:] != b.shape[1:]:
                raise UserInputError(
                    f"model {self.name!r}, checkpoint {name!r}: its output has shape {tuple(a.shape)} for a "
                    f"batch of 1 image and {tuple(b.shape)} for a batch of 3; augsens needs the batch as "
                    "the first dim and the same shape per image at any batch size (no scalar, no mean or "
                    f"reshape over the batch). {fix}"
                )
            first, again = b[0].double(), c[0].double()
            if not torch.isfinite(first).all():
                continue  # non-finite outputs are counted per checkpoint by the study; no test possible
            scale = float(first.abs().max()) if first.numel() else 0.0
            # row 0 sees the same image and the same batch size in both batches, so only a model that
            # mixes images (or draws random numbers) changes it beyond rounding
            if not torch.allclose(first, again, rtol=1e-3, atol=1e-4 * scale + 1e-12):
                change = float((first - again).abs().max())
                raise UserInputError(
                    f"model {self.name!r}, checkpoint {name!r}: the output of image 0 changed (by up to "
                    f"{change:.3g}, of values up to {scale:.3g}) when only the other images of the batch "
                    "changed. "
                    "The model mixes the images of a batch (a mean or sum over dim 0, batch statistics "
                    "used at evaluation) or is not deterministic; augsens needs each image's output to "
                    f"depend on that image only. {fix}"
                )
        return {name: tuple(pair[name].shape[1:]) for name in names}

    def reindex(self) -> None:
        """Look the named modules up again after submodules of :attr:`module` were replaced (same names)."""
        modules = dict(self.module.named_modules())
        if [n for n in modules if n] != self.module_names:
            raise ValueError("reindex: the replaced modules changed the module names")
        self._modules = modules
        self._clone.clear()

    def to(self, device: str | torch.device) -> LoadedModel:
        """Move the network to ``device`` (in place) and return ``self``."""
        self.device = torch.device(device)
        self.module.to(self.device)
        self._norm_cache.clear()
        return self

    def __repr__(self) -> str:
        return (
            f"LoadedModel({self.name!r}, device={str(self.device)!r}, input_shape={self._input_shape!r}, "
            f"checkpoints={self.checkpoints!r}, "
            f"classifier={self.classifier!r}, num_classes={self._num_classes!r})"
        )

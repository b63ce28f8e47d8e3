"""Hook-based masking: a network's predictions under every row of a :class:`~.masks.MaskSet`.

The unmasked prefix of the network runs once per input batch; forward hooks expand the batch at the first
masked checkpoint and multiply each masked checkpoint's output by its stacked multipliers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from augsens.analysis.masking.masks import MaskSet
from augsens.errors import (
    UnknownNameError,
    UserInputError,
    UserTypeError,
    is_out_of_memory,
    unknown_name_message,
)
from augsens.models.capture import eval_mode

__all__ = ["GuidedMasking"]


class GuidedMasking:
    """Predictions of a network under every row of a :class:`MaskSet`.

    The network runs unmasked up to the first masked checkpoint once per input batch (per chunk of
    ``configs_per_forward`` rows); a hook there expands its output to ``[n_rows * B, ...]`` (row-major:
    batch row ``r * B + b`` is image ``b`` under mask row ``r``) and each later masked checkpoint
    multiplies by its stacked ``[n_rows, 1, ...]`` multiplier.  Hooks are removed and the training flags
    of all submodules restored when the call returns, even on error.

    Parameters
    ----------
    model : augsens.models.LoadedModel or torch.nn.Module
        A ``LoadedModel`` (its ``.module`` and ``.normalize`` are used) or a plain module taking
        network-ready input.
    masks : MaskSet
        Its checkpoints must be module names of the network, each run once per forward.
    normalize : callable, optional
        ``[B, 3, H, W]`` in [0, 1] -> network input.  Default: ``model.normalize`` if the model has one,
        else none.

    Raises
    ------
    TypeError
        ``model`` is neither a module nor has a ``.module``.
    KeyError
        A masked checkpoint is not a module name of the network (close names suggested).
    """

    def __init__(
        self,
        model: Any,
        masks: MaskSet,
        *,
        normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        module = getattr(model, "module", model)
        if not isinstance(module, nn.Module):
            raise UserTypeError(
                f"model must be an augsens LoadedModel or a torch.nn.Module, got {type(model).__name__!r}."
            )
        self.module = module
        self.masks = masks
        self.normalize = normalize if normalize is not None else getattr(model, "normalize", None)
        named = dict(module.named_modules())
        for name in masks.checkpoints:
            if name not in named:
                raise UnknownNameError(
                    unknown_name_message(
                        "module",
                        name,
                        [n for n in named if n],
                        "The sensitivity maps were computed at this checkpoint, which the network lacks: "
                        "pass the model the results were computed with.",
                    )
                )
        self._targets = {name: named[name] for name in masks.checkpoints}

    @property
    def device(self) -> torch.device:
        """Where the network's parameters (else buffers) are; CPU for a module without either."""
        return _device_of(self.module)

    def predict(
        self,
        x: torch.Tensor,
        *,
        top_k: int | None = None,
        configs_per_forward: int | None = None,
        shared_prefix: bool = True,
        normalized: bool = False,
    ) -> torch.Tensor:
        """Network outputs for every mask row and image.

        Parameters
        ----------
        x : torch.Tensor, shape (B, 3, H, W), float in [0, 1]
            Images (network-ready input when ``normalized``).  Moved to the network's device.
        top_k : int, optional
            Return the indices of the ``top_k`` largest outputs instead of the outputs.  Default: None.
        configs_per_forward : int, optional
            Largest number of mask rows per forward pass (like Captum's ``perturbations_per_eval``); the
            unmasked prefix runs once per chunk.  Default: None (all rows in one forward).
        shared_prefix : bool
            Expand the batch at the first masked checkpoint (True), or repeat the input and run the whole
            network per row (False: slower, but correct for networks that reuse a tensor from before the
            first masked checkpoint after it).  Default: True.
        normalized : bool
            ``x`` is already network-ready.  Default: False.

        Returns
        -------
        torch.Tensor
            ``[n_rows, B, n_outputs]`` outputs (logits for torchvision classifiers), or
            ``[n_rows, B, top_k]`` int64 class indices in descending order of output.

        Raises
        ------
        ValueError
            Bad ``x``, ``top_k`` or ``configs_per_forward``; a checkpoint's output shape differs from its
            map's; a checkpoint runs twice per forward or never.
        """
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            raise UserInputError(
                f"x must be a [B, C, H, W] tensor, got {getattr(x, 'shape', type(x).__name__)!r}."
            )
        n_rows = len(self.masks)
        chunk = n_rows if configs_per_forward is None else configs_per_forward
        if not isinstance(chunk, int) or chunk < 1:
            raise UserInputError(
                f"configs_per_forward={configs_per_forward!r} must be a positive integer or None."
            )
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise UserInputError(f"top_k={top_k!r} must be a positive integer or None.")
        x = x.to(self.device)
        pieces = []
        with eval_mode(self.module), torch.no_grad():
            if not normalized and self.normalize is not None:
                x = self.normalize(x)
            for start in range(0, n_rows, chunk):
                out = self._forward(x, start, min(start + chunk, n_rows), shared_prefix)
                pieces.append(out.topk(top_k, dim=-1).indices if top_k is not None else out)
        return torch.cat(pieces)

    def unmasked(self, x: torch.Tensor, *, normalized: bool = False) -> torch.Tensor:
        """Outputs without any mask, ``[B, n_outputs]`` (same preprocessing as :meth:`predict`)."""
        x = x.to(self.device)
        with eval_mode(self.module), torch.no_grad():
            if not normalized and self.normalize is not None:
                x = self.normalize(x)
            return self.module(x)

    def _forward(self, x: torch.Tensor, start: int, stop: int, shared_prefix: bool) -> torch.Tensor:
        n, batch = stop - start, x.shape[0]
        state = {"expanded": not shared_prefix}
        calls = dict.fromkeys(self._targets, 0)

        def make_hook(name: str) -> Callable[..., torch.Tensor]:
            def hook(_module: nn.Module, _args: Any, out: Any) -> torch.Tensor:
                if not isinstance(out, torch.Tensor):
                    raise UserInputError(
                        f"checkpoint {name!r} returns {type(out).__name__}, not a tensor; mask a module "
                        "whose output is a single tensor."
                    )
                calls[name] += 1
                if calls[name] > 1:
                    raise UserInputError(
                        f"checkpoint {name!r} runs more than once per forward (a reused module, e.g. a "
                        "shared ReLU); mask a module that runs once, such as the enclosing block."
                    )
                shape = self.masks.shape(name)
                if tuple(out.shape[1:]) != shape:
                    raise UserInputError(
                        f"checkpoint {name!r} outputs {tuple(out.shape[1:])!r} per image but its map is "
                        f"{shape!r}: pass the model the results were computed with, and images of the size "
                        "the sensitivity study used."
                    )
                mult = self.masks.multipliers(
                    name, start, stop, device=out.device, dtype=out.dtype
                ).unsqueeze(1)
                if state["expanded"]:
                    return (out.reshape(n, batch, *shape) * mult).reshape(n * batch, *shape)
                state["expanded"] = True
                # Broadcasting [1, B, ...] * [n, 1, ...] expands and masks in one op.
                return (out.unsqueeze(0) * mult).reshape(n * batch, *shape)

            return hook

        handles = [m.register_forward_hook(make_hook(name)) for name, m in self._targets.items()]
        try:
            inputs = x if shared_prefix else x.repeat(n, *([1] * (x.ndim - 1)))
            try:
                y = self.module(inputs)
            except RuntimeError as exc:
                if not shared_prefix or is_out_of_memory(exc):
                    raise
                raise UserInputError(
                    "the forward failed after the batch was expanded at the first masked checkpoint; if the "
                    "network reuses a tensor computed before that checkpoint after it (a skip connection "
                    "around it), pass shared_prefix=False."
                ) from exc
        finally:
            for h in handles:
                h.remove()
        never = [name for name, count in calls.items() if count == 0]
        if never:
            raise UserInputError(
                f"checkpoints {never!r} did not run in the forward; mask modules on the output path."
            )
        if not isinstance(y, torch.Tensor) or y.shape[0] != n * batch:
            raise UserInputError(
                f"the network returned {getattr(y, 'shape', type(y).__name__)!r}; expected a tensor with "
                f"{n * batch} rows ({n} mask rows x {batch} images)."
            )
        return y.reshape(n, batch, *y.shape[1:])


def _device_of(module: nn.Module) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    for buffer in module.buffers():
        return buffer.device
    return torch.device("cpu")

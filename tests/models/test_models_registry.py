"""Model registry and weights: paper network shapes, hub-cache files, Places365 checkpoints, user models."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn

from augsens.models import UnknownModuleError, available_models, load, read_categories
from augsens.models.weights import load_state_dict_into

# docs/paper.md §4: per-sample shapes of the hooked modules.
PAPER_SHAPES = {
    "alexnet": {
        "features.2": (64, 27, 27),
        "features.5": (192, 13, 13),
        "features.7": (384, 13, 13),
        "features.9": (256, 13, 13),
        "avgpool": (256, 6, 6),
        "classifier.2": (4096,),
        "classifier.5": (4096,),
        "classifier.6": (1000,),
    },
    "vgg11": {
        "features.2": (64, 112, 112),
        "features.5": (128, 56, 56),
        "features.10": (256, 28, 28),
        "features.15": (512, 14, 14),
        "avgpool": (512, 7, 7),
        "classifier.1": (4096,),
        "classifier.4": (4096,),
        "classifier.6": (1000,),
    },
    "resnet18": {
        "maxpool": (64, 56, 56),
        "layer1": (64, 56, 56),
        "layer2": (128, 28, 28),
        "layer3": (256, 14, 14),
        "avgpool": (512, 1, 1),
        "fc": (1000,),
    },
}
PAPER_TOTALS = {"alexnet": 205_672, "vgg11": 1_539_560, "resnet18": 553_448}


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A private torch hub cache; any download attempt fails the test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    assert torch.hub.get_dir() == str(tmp_path / "hub")
    return folder


def test_available_models():
    assert available_models() == sorted(
        ["alexnet", "vgg11", "resnet18", "alexnet_places365", "resnet18_places365", "efficientnet_lite0"]
    )


@pytest.mark.parametrize("name", ["alexnet", "vgg11", "resnet18"])
def test_paper_checkpoint_shapes(name):
    m = load(name, weights="random")
    assert m.checkpoints == list(PAPER_SHAPES[name])
    shapes = m.output_shapes()
    assert shapes == PAPER_SHAPES[name]
    assert sum(math.prod(s) for s in shapes.values()) == PAPER_TOTALS[name]
    assert m.num_classes == 1000 and len(m.categories) == 1000
    assert m.categories[281] == "tabby"
    assert m.mean == (0.485, 0.456, 0.406) and m.std == (0.229, 0.224, 0.225)
    assert not m.module.training
    assert not any(p.requires_grad for p in m.module.parameters())


def test_random_weights_are_reproducible_and_leave_global_rng():
    state = torch.random.get_rng_state()
    a = load("resnet18", weights="random").module.conv1.weight
    b = load("resnet18", weights="random").module.conv1.weight
    assert torch.equal(a, b)
    assert torch.equal(state, torch.random.get_rng_state())


def test_imagenet_weights_from_hub_cache(hub):
    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), hub / "resnet18-f37072fd.pth")
    m = load("resnet18", weights="imagenet")
    assert torch.equal(m.module.fc.weight, reference.fc.weight)
    # "default" means "imagenet" for the paper networks
    assert torch.equal(load("resnet18").module.conv1.weight, reference.conv1.weight)


def test_legacy_file_name_is_accepted(hub):
    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), hub / "resnet18-5c106cde.pth")
    assert torch.equal(load("resnet18").module.layer1[0].conv1.weight, reference.layer1[0].conv1.weight)


def test_missing_weights_file_is_immediate_clear_error(hub):
    expected = r"'alexnet-owt-7be5be79\.pth'.*hub.checkpoints.*weights='random'"
    with pytest.raises(FileNotFoundError, match=expected):
        load("alexnet")
    with pytest.raises(FileNotFoundError, match=r"vgg11-8a719046\.pth"):
        load("vgg11", weights="imagenet")
    with pytest.raises(FileNotFoundError, match=r"alexnet_places365\.pth\.tar"):
        load("alexnet_places365")


def test_weights_path_with_state_dict_key(tmp_path):
    reference = torchvision.models.alexnet(weights=None)
    sd = {f"module.{k}": v for k, v in reference.state_dict().items()}
    torch.save({"epoch": 3, "state_dict": sd}, tmp_path / "ckpt.pth")
    m = load("alexnet", weights=tmp_path / "ckpt.pth")
    assert torch.equal(m.module.features[0].weight, reference.features[0].weight)


def test_places365_checkpoint_with_module_prefix(hub):
    reference = torchvision.models.resnet18(weights=None, num_classes=365)
    sd = {f"module.{k}": v for k, v in reference.state_dict().items()}
    torch.save({"epoch": 90, "arch": "resnet18", "state_dict": sd, "best_prec1": 54.7},
               hub / "resnet18_places365.pth.tar")  # fmt: skip
    lines = ["/a/abbey 0", "/a/airfield 1"] + [f"/z/scene_{i} {i}" for i in range(2, 364)]
    lines.append("/a/apartment_building/outdoor 364")
    (hub / "categories_places365.txt").write_text("\n".join(lines) + "\n")
    m = load("resnet18_places365")
    assert torch.equal(m.module.fc.weight, reference.fc.weight)
    assert m.num_classes == 365
    assert m.categories[:2] == ["abbey", "airfield"] and m.categories[-1] == "apartment_building/outdoor"
    assert m.output_shapes(["fc"]) == {"fc": (365,)}


def test_places365_without_categories_file(hub):
    sd = torchvision.models.resnet18(weights=None, num_classes=365).state_dict()
    torch.save({"state_dict": sd}, hub / "resnet18_places365.pth.tar")
    m = load("resnet18_places365")
    assert m.categories is None and m.num_classes == 365


def test_dataparallel_component_inside_key_is_stripped():
    # CSAIL's AlexNet wrapped only `features` in DataParallel: keys look like "features.module.0.weight".
    net = nn.Sequential()
    net.features = nn.Sequential(nn.Conv2d(3, 4, 3))
    state = {f"features.module.{k}": v.clone() + 1 for k, v in net.features.state_dict().items()}
    load_state_dict_into(net, state, "test")
    assert torch.equal(net.features[0].bias, state["features.module.0.bias"])


def test_weights_of_another_architecture_are_refused(tmp_path):
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(ValueError, match=r"do not fit this network: \d+ missing keys"):
        load("alexnet", weights=tmp_path / "r18.pth")


def test_unknown_names():
    with pytest.raises(ValueError, match=r"unknown model 'resnet81'\. Did you mean \['resnet18'"):
        load("resnet81")
    with pytest.raises(ValueError, match=r"weights='imagnet' is not available.*Did you mean \['imagenet'\]"):
        load("resnet18", weights="imagnet")
    with pytest.raises(ValueError, match=r"weights='places365' is not available for model 'resnet18'"):
        load("resnet18", weights="places365")
    with pytest.raises(UnknownModuleError, match=r"no module named 'layer9'.*Close matches.*m\.module_names"):
        load("resnet18", weights="random", checkpoints=["layer1", "layer9"])
    with pytest.raises(TypeError, match="model must be a name"):
        load(18)


def test_user_module_and_factory():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(8, 5))  # fmt: skip
    m = load(net)
    assert m.checkpoints == ["0", "1", "2", "3", "4"]
    assert m.classifier is None and m.num_classes == 5
    assert m.mean == (0.485, 0.456, 0.406)
    p = m.predict(torch.rand(2, 3, 64, 64))
    torch.testing.assert_close(p.sum(-1), torch.ones(2))

    f = load("torchvision.models:resnet18", checkpoints=["layer4", "layer1"], classifier="fc",
             categories="imagenet")  # fmt: skip
    assert f.checkpoints == ["layer1", "layer4"]  # model order
    assert f.num_classes == 1000 and f.categories[0] == "tench"
    with pytest.raises(ValueError, match="cannot import module 'no_such_pkg.mod'"):
        load("no_such_pkg.mod:build")
    with pytest.raises(ValueError, match="not available for model"):
        load(net, weights="imagenet")


def test_read_categories_formats(tmp_path):
    (tmp_path / "plain.txt").write_text("cat\ndog\n")
    (tmp_path / "list.json").write_text('["cat", "dog"]')
    (tmp_path / "gap.txt").write_text("/c/cat 0\n/d/dog 2\n")
    assert read_categories(tmp_path / "plain.txt") == ["cat", "dog"]
    assert read_categories(tmp_path / "list.json") == ["cat", "dog"]
    with pytest.raises(ValueError, match="indices must be 0..1"):
        read_categories(tmp_path / "gap.txt")
    with pytest.raises(ValueError, match="got 2 category names for a model with 1000 classes"):
        load("resnet18", weights="random", categories=tmp_path / "plain.txt")

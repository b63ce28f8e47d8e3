"""The factor model of an augmentation study: groups, switches, decoding of design rows."""

import pytest
import torch

from augsens.augment import AUGMENTATIONS, SET1, SET2
from augsens.engine.factors import AugmentationFactors, resolve_augmentations


def test_set1_groups_with_all_switches():
    f = AugmentationFactors("set1", [[1] * 6])
    assert f.factor_names == [*SET1, "order", "image"]
    assert f.problem["erasing.on"].kind == "switch"
    assert [f.problem.names[i] for i in f.problem.group_members[0]] == [
        "erasing.on",
        *(f"erasing.{p.name}" for p in AUGMENTATIONS["erasing"].params),
    ]


def test_nonparametric_switch_model_and_partition():
    f = AugmentationFactors("set2", [[3, 3], [2, 2]], switches="nonparametric")
    assert f.factor_names == [*SET2, "order", "partition", "image"]
    with pytest.raises(KeyError):
        f.problem["brightness.on"]  # parametric: always applied
    assert f.problem["hflip.on"].kind == "switch"


def test_no_switch_no_parameter_means_no_factor():
    f = AugmentationFactors(["grayscale", "hue"], [[1, 1]], switches="none")
    assert f.constant == ("grayscale",)
    assert f.factor_names == ["hue", "order", "image"]


def test_decode_shapes_switches_and_images():
    f = AugmentationFactors("set1", [[2, 3]], switches="all")
    unit = torch.rand(64, f.problem.k, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    rows = f.decode(unit)
    assert rows.order.shape == (64, 5)
    assert torch.equal(rows.order.sort(dim=1).values, torch.arange(5).expand(64, 5))
    assert rows.params["rolling"]["shift_y"].dtype == torch.float32
    col = f.problem.column("erasing.on")
    assert torch.equal(rows.on["erasing"], unit[:, col] >= 0.5)
    assert rows.image.min() >= 0 and rows.image.max() <= 4
    # the image depends only on its own column: rows that share it see the same image
    unit2 = torch.rand_like(unit)
    unit2[:, f.problem.column("image")] = unit[:, f.problem.column("image")]
    assert torch.equal(f.decode(unit2).image, rows.image)


def test_two_partitions_offset_images():
    f = AugmentationFactors(["hflip"], [[2, 2], [1, 1, 1]])
    unit = torch.tensor([[0.9, 0.2, 0.0], [0.9, 0.7, 0.0], [0.9, 0.7, 0.99]], dtype=torch.float64)
    # columns: hflip.on, partition, image
    assert f.decode(unit).image.tolist() == [0, 4, 6]


def test_paper_mode_redraws_image_per_row():
    f = AugmentationFactors(["hflip"], [[50, 50]], mode="paper")
    unit = torch.full((200, f.problem.k), 0.3, dtype=torch.float64)
    with pytest.raises(ValueError, match="row_ids"):
        f.decode(unit)
    img = f.decode(unit, row_ids=torch.arange(200), seed=0).image
    assert img.unique().numel() > 10  # re-drawn per row ...
    assert torch.all(img < 50)  # ... within the class chosen by u = 0.3
    assert torch.equal(img, f.decode(unit, row_ids=torch.arange(200), seed=0).image)  # deterministic


def test_resolve_augmentations_errors():
    assert resolve_augmentations("set2") == tuple(SET2)
    with pytest.raises((KeyError, ValueError), match="brightnes"):
        resolve_augmentations(["brightnes"])
    with pytest.raises(ValueError, match="twice"):
        resolve_augmentations(["hue", "hue"])
    with pytest.raises(ValueError, match="empty"):
        resolve_augmentations([])

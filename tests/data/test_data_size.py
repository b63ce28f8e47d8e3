"""Image size: any side (shorter side round(s * 256 / 224), centre crop s) or the images' own size, and
inputs that are not images (a SampleCache of signals)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from augsens.config import ConfigError, StudyConfig
from augsens.data import SampleCache, bundled_photos, image_folder
from augsens.data.cache import decode_image, resized_side
from augsens.data.inputs import as_image_cache, as_samples
from augsens.engine.inputs import load_images
from augsens.errors import UserInputError


def _photo(path, seed, size):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def test_resized_side_keeps_the_papers_proportion():
    assert resized_side(224) == 256
    for side in (8, 32, 64, 96, 299, 512):
        # the crop keeps 224/256 of the shorter side, to the nearest pixel
        assert abs(resized_side(side) * 224 / 256 - side) <= 0.5 * 224 / 256 + 1e-9


def test_a_file_decodes_at_any_side_like_torchvision(tmp_path):
    _photo(tmp_path / "a.png", 0, (90, 70))
    ref = TF.pil_to_tensor(
        TF.center_crop(TF.resize(Image.open(tmp_path / "a.png").convert("RGB"), 37, antialias=True), 32)
    )
    assert torch.equal(decode_image(tmp_path / "a.png", 32), ref)
    kept = decode_image(tmp_path / "a.png", None)
    assert kept.shape == (3, 70, 90)
    assert torch.equal(kept, TF.pil_to_tensor(Image.open(tmp_path / "a.png").convert("RGB")))


def test_tensors_are_resized_to_the_side_or_kept():
    x = torch.rand(3, 3, 40, 48)
    cache = as_image_cache(x, size=32)
    u8 = (x * 255).round().to(torch.uint8)
    ref = TF.center_crop(TF.resize(u8, resized_side(32), antialias=True), 32)
    assert cache.sample_shape == (3, 32, 32) and torch.equal(cache.images, ref)
    # a batch already size x size is kept exactly; size=None keeps any size
    assert torch.equal(as_image_cache(u8[..., :32, :32], size=32).images, u8[..., :32, :32])
    assert as_image_cache(x, size=None).sample_shape == (3, 40, 48)
    # the default stays the paper's 224
    assert as_image_cache(x).sample_shape == (3, 224, 224)
    with pytest.raises(UserInputError, match=r"size = 0: give the side of the square images"):
        as_image_cache(x, size=0)


def test_keep_refuses_images_of_different_sizes(tmp_path):
    _photo(tmp_path / "a.png", 0, (40, 30))
    _photo(tmp_path / "b.png", 1, (30, 40))
    with pytest.raises(UserInputError, match=r"different sizes \(30 x 40 and 40 x 30.*size=None"):
        as_image_cache(tmp_path, size=None)
    assert as_image_cache(tmp_path, size=16).sample_shape == (3, 16, 16)
    with pytest.raises(UserInputError, match="bundled photos have different sizes"):
        bundled_photos(size=None)


def test_image_folder_at_a_side_and_at_its_own_size(tmp_path):
    for cls, sizes in (("cat", [(32, 32), (32, 32)]), ("dog", [(32, 32)])):
        (tmp_path / cls).mkdir()
        for i, wh in enumerate(sizes):
            _photo(tmp_path / cls / f"{i}.png", len(cls) + i, wh)
    kept = image_folder(tmp_path, size=None, progress=False)
    assert kept.sample_shape == (3, 32, 32) and kept.class_sizes == [2, 1]
    assert torch.equal(kept.images[0], decode_image(tmp_path / "cat" / "0.png", None))
    small = image_folder(tmp_path, size=8, progress=False)
    assert small.sample_shape == (3, 8, 8)
    _photo(tmp_path / "dog" / "1.png", 9, (40, 32))
    with pytest.raises(UserInputError, match=r'size = "keep" needs images of one size.*1\.png'):
        image_folder(tmp_path, size=None, progress=False)


def test_config_size_reaches_the_loader():
    cfg = StudyConfig.from_dict({"images": {"source": "bundled", "size": 32}})
    assert cfg.images.side == 32
    assert load_images(cfg.images, device=torch.device("cpu")).sample_shape == (3, 32, 32)
    assert StudyConfig.from_dict({"images": {"size": "keep"}}).images.side is None
    assert StudyConfig().images.side == 224
    with pytest.raises(ConfigError, match=r'\[images\] size = \'small\': give the side in pixels.*"keep"'):
        StudyConfig.from_dict({"images": {"size": "small"}})
    with pytest.raises(ConfigError, match=r"\[images\] size = -4: give the side in pixels"):
        StudyConfig.from_dict({"images": {"size": -4}})


def test_samples_are_kept_as_given():
    x = torch.randn(6, 2, 50, dtype=torch.float64)
    cache = as_samples(x, labels=["b", "a", "b", "a", "b", "a"], names=list("uvwxyz"))
    assert isinstance(cache, SampleCache) and cache.classes == ["a", "b"] and cache.class_sizes == [3, 3]
    # sorted class by class, stable within a class, values untouched (float64 stays float64)
    assert cache.names == ["v", "x", "z", "u", "w", "y"]
    assert torch.equal(cache.samples, x[[1, 3, 5, 0, 2, 4]])
    got = cache.gather(torch.tensor([0, 5]))
    assert got.dtype == torch.float32 and torch.equal(got, x[[1, 4]].float())
    assert cache.sample_shape == (2, 50)
    # a float tensor becomes float32; numpy arrays are accepted
    assert as_samples(np.zeros((2, 1, 8), np.float16)).samples.dtype == torch.float32


@pytest.mark.parametrize(
    ("samples", "kw", "message"),
    [
        (torch.zeros(4, 16), {}, r"shape \[N, C, \.\.\.\].*x\.unsqueeze\(1\)"),
        (torch.zeros(0, 1, 8), {}, "hold no sample"),
        (torch.full((2, 1, 4), float("nan")), {}, "8 NaN or infinite values"),
        (torch.zeros(2, 1, 4, dtype=torch.bool), {}, "dtype torch.bool"),
        (torch.zeros(2, 1, 4), {"labels": [0]}, "labels has 1 entries for 2 samples"),
        (torch.zeros(2, 1, 4), {"names": ["a"]}, "names has 1 entries for 2 samples"),
        ([[0.0]], {}, "samples of type list are not supported"),
    ],
)
def test_samples_errors_name_the_fix(samples, kw, message):
    with pytest.raises(UserInputError, match=message):
        as_samples(samples, **kw)


def test_a_signal_tensor_passed_as_images_points_to_as_samples():
    with pytest.raises(UserInputError, match=r"\[N, 3, H, W\], got \[4, 2, 64\].*as_samples\(x\)"):
        as_image_cache(torch.rand(4, 2, 64))


def test_sample_cache_partitions_and_repr():
    a = as_samples(torch.zeros(3, 1, 4), labels=[0, 1, 1])
    b = as_samples(torch.ones(2, 1, 4), labels=[0, 1])
    both = SampleCache.concatenate([a, b])
    assert both.partitions == [[1, 2], [1, 1]] and len(both) == 5
    assert torch.equal(both.gather(torch.tensor([4]))[0], torch.ones(1, 4))
    assert repr(both).startswith("SampleCache(5 samples of shape [1, 4], 2 classes, 2 partition(s)")
    with pytest.raises(ValueError, match=r"samples must be a float tensor \[N, \.\.\.\]"):
        SampleCache(torch.zeros(2, 1, 4, dtype=torch.uint8), torch.zeros(2), ["a"], ["x", "y"])

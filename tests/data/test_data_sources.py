"""Image sources: bundled photos, image folders (subsets, corrupt files, layouts), train/val partitions."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from augsens.data import ImageCache, bundled_photos, image_folder, train_val


def _photo(path, seed, size=(300, 260), mode="RGB"):
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(array).convert(mode).save(path)


@pytest.fixture
def folder(tmp_path):
    """root/{cat: 5 images, dog: 3 images + 2 corrupt files}."""
    root = tmp_path / "train"
    for cls, n in (("cat", 5), ("dog", 3)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            _photo(root / cls / f"{cls}_{i}.jpg", seed=10 * len(cls) + i)
    buf = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(buf, format="JPEG")
    (root / "dog" / "dog_truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (root / "dog" / "dog_zz_garbage.jpg").write_bytes(b"\xff\xd8\xffnot a jpeg at all")
    (root / "dog" / "notes.txt").write_text("not an image")
    return root


def test_bundled_photos():
    photos = bundled_photos()
    for name in ("astronaut", "chelsea", "coffee", "rocket", "china", "flower"):
        assert name in photos.classes
    assert photos.classes == sorted(photos.classes) and photos.names == photos.classes
    assert photos.class_sizes == [1] * len(photos.classes)
    assert photos.images.dtype == torch.uint8 and photos.images.shape[1:] == (3, 224, 224)
    assert photos.labels.tolist() == list(range(len(photos)))


def test_folder_decodes_like_torchvision_and_skips_corrupt_files(folder):
    with pytest.warns(UserWarning, match="skipped 2 unreadable image files"):
        cache = image_folder(folder, progress=True)
    assert cache.classes == ["cat", "dog"]
    assert cache.class_sizes == [5, 3]
    assert cache.labels.tolist() == [0] * 5 + [1] * 3
    assert sorted(f for f, _ in cache.skipped) == ["dog/dog_truncated.jpg", "dog/dog_zz_garbage.jpg"]
    assert all(reason for _, reason in cache.skipped)
    assert cache.names[5] == "dog/dog_0.jpg"

    reference = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor()])
    expected = reference(Image.open(folder / "dog" / "dog_1.jpg").convert("RGB"))
    got = cache.gather(torch.tensor([6]))[0]
    torch.testing.assert_close(got, expected, atol=0, rtol=0)
    assert cache.gather(torch.tensor([6]), dtype=torch.bfloat16).dtype == torch.bfloat16


def test_strict_raises_on_corrupt_file(folder):
    with pytest.raises(ValueError, match=r"2 unreadable image files.*strict=False"):
        image_folder(folder, strict=True, progress=False)


def test_class_balanced_subset_follows_authors_rule(folder):
    with pytest.warns(UserWarning) as record:
        cache = image_folder(folder, per_class=3, seed=7, progress=False)
    assert not any("fewer than per_class" in str(w.message) for w in record)  # dog has 5 files incl. corrupt
    keep = np.sort(np.random.default_rng(7).permutation(5)[:3])
    assert cache.names[:3] == [f"cat/cat_{i}.jpg" for i in keep]
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        other = image_folder(folder / ".." / "train", per_class=3, seed=7, progress=False)
    assert other.names == cache.names  # same seed, same subset


def test_nested_layout(tmp_path):
    root = tmp_path / "data_256"
    for rel in ("a/abbey", "a/apartment_building/outdoor", "b/beach"):
        (root / rel).mkdir(parents=True)
        _photo(root / rel / "00000001.jpg", seed=1, size=(256, 256))
    cache = image_folder(root, layout="nested", progress=False)
    assert cache.classes == ["a/abbey", "a/apartment_building/outdoor", "b/beach"]
    assert image_folder(root, progress=False).classes == ["a", "b"]  # ImageFolder: top-level folders


def test_grayscale_and_rgba_become_rgb(tmp_path):
    for mode in ("L", "RGBA"):
        (tmp_path / mode).mkdir()
        _photo(tmp_path / mode / "x.png", seed=2, mode=mode)
    cache = image_folder(tmp_path, progress=False)
    assert cache.images.shape == (2, 3, 224, 224)
    assert torch.equal(cache.images[0, 0], cache.images[0, 1])  # grey: R == G


def test_bad_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no class folders with images"):
        image_folder(tmp_path)
    (tmp_path / "empty_class").mkdir()
    _photo(tmp_path / "loose.jpg", seed=3)
    with pytest.raises(ValueError, match=r"\['empty_class'\].*hold no image files"):
        image_folder(tmp_path)
    (tmp_path / "empty_class" / "bad.png").write_bytes(b"junk")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="every image of classes"):
        image_folder(tmp_path, progress=False)
    with pytest.raises(ValueError, match="per_class must be a positive integer"):
        image_folder(tmp_path, per_class=0)


def test_train_val(tmp_path):
    for part, n in (("train", 3), ("val", 1)):
        for cls in ("cat", "dog"):
            (tmp_path / part / cls).mkdir(parents=True)
            for i in range(n):
                _photo(tmp_path / part / cls / f"{i}.png", seed=i, size=(240, 300))
    parts = train_val(tmp_path / "train", tmp_path / "val", per_class=(2, None), progress=False)
    assert parts.train.class_sizes == [2, 2] and parts.val.class_sizes == [1, 1]
    train, val = parts
    assert train.classes == val.classes
    both = ImageCache.concatenate(parts)
    assert both.partitions == [[2, 2], [1, 1]] and both.names[4:] == ["cat/0.png", "dog/0.png"]
    (tmp_path / "val" / "cow").mkdir()
    _photo(tmp_path / "val" / "cow" / "0.png", seed=0)
    with pytest.raises(ValueError, match=r"different classes.*only in val e\.g\. \['cow'\]"):
        train_val(tmp_path / "train", tmp_path / "val", progress=False)

"""Odd image inputs: link loops, 16-bit and float modes, unreadable files in every layout, results folders
inside an image folder, NaN in float images."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from augsens.data import image_folder
from augsens.data.cache import decode_pil, pil_to_rgb8
from augsens.data.inputs import as_image_cache, folder_layout
from augsens.errors import UserInputError


def _photo(path: Path, seed: int, size: tuple[int, int] = (40, 48)) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)).save(path)
    return path


def _two_classes(root: Path) -> Path:
    for c in ("a", "b"):
        for i in range(2):
            _photo(root / c / f"{i}.png", seed=10 * ord(c) + i)
    return root


def _truncated_jpeg(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:300])
    return path


# ------------------------------------------------------------------ links
def test_a_link_up_the_tree_is_not_followed_and_is_listed(tmp_path: Path) -> None:
    root = _two_classes(tmp_path / "imgs")
    os.symlink("..", root / "a" / "up")  # a/up/a/up/... and a/up/b/*: the whole tree again and again
    with pytest.warns(UserWarning, match="left out 1 folders"):
        cache = image_folder(root, progress=False)
    assert cache.classes == ["a", "b"] and cache.class_sizes == [2, 2]
    assert cache.names == ["a/0.png", "a/1.png", "b/0.png", "b/1.png"]
    assert [f for f, _ in cache.skipped] == ["a/up/"] and "loop" in cache.skipped[0][1]
    assert folder_layout(root) == "classes"


def test_a_link_to_another_class_is_not_read_twice(tmp_path: Path) -> None:
    root = _two_classes(tmp_path / "imgs")
    os.symlink(root / "a", root / "b" / "same_as_a")
    with pytest.warns(UserWarning, match="left out"):
        cache = image_folder(root, progress=False)
    assert cache.class_sizes == [2, 2] and [f for f, _ in cache.skipped] == ["b/same_as_a/"]


def test_a_link_to_a_folder_outside_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    _photo(tmp_path / "elsewhere" / "x.png", seed=1)
    _photo(root / "a" / "0.png", seed=2)
    os.symlink(tmp_path / "elsewhere", root / "a" / "more")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache = image_folder(root, progress=False)
    assert cache.names == ["a/0.png", "a/more/x.png"] and cache.skipped == []


def test_a_flat_folder_with_a_loop_is_flat(tmp_path: Path) -> None:
    _photo(tmp_path / "x.png", seed=3)
    (tmp_path / "sub").mkdir()
    os.symlink("..", tmp_path / "sub" / "up")
    assert folder_layout(tmp_path) == "flat"
    assert len(as_image_cache(tmp_path)) == 1


# ------------------------------------------------------------------ modes
GRADIENT = np.linspace(0, 65535, 64 * 64).reshape(64, 64)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.fromarray(GRADIENT.astype(np.uint16)),  # I;16
        lambda: Image.fromarray(GRADIENT.astype(np.int32)),  # I
        lambda: Image.fromarray((GRADIENT / 65535).astype(np.float32)),  # F
    ],
    ids=["I;16", "I", "F"],
)
def test_wide_modes_keep_their_dynamic_range(make) -> None:
    img = make()
    expected = np.rint(GRADIENT / 257.0)
    rgb = np.asarray(pil_to_rgb8(img)).astype(np.float64)
    assert rgb.shape == (64, 64, 3)
    np.testing.assert_allclose(rgb[..., 0], expected, atol=1)  # the range of the source, not white
    assert rgb.min() == 0 and rgb.max() == 255


def test_a_16_bit_png_decodes_like_its_8_bit_copy(tmp_path: Path) -> None:
    wide = GRADIENT.astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    Image.fromarray(np.rint(wide / 257.0).astype(np.uint8)).save(tmp_path / "narrow.png")
    with Image.open(tmp_path / "wide.png") as im:
        assert im.mode.startswith("I")
    cache = as_image_cache([tmp_path / "wide.png", tmp_path / "narrow.png"])
    difference = (cache.images[0].int() - cache.images[1].int()).abs()
    assert int(difference.max()) <= 1 and float(cache.images[0].float().mean()) < 200


def test_the_gallery_reads_16_bit_images_with_their_range(tmp_path: Path) -> None:
    from augsens.plot.gallery import _load

    Image.fromarray(GRADIENT.astype(np.uint16)).save(tmp_path / "wide.png")
    x = _load(tmp_path / "wide.png")
    assert 0.3 < float(x.mean()) < 0.7  # was 1.0: every 16-bit value clipped to white
    y = _load(GRADIENT.astype(np.uint16))
    torch.testing.assert_close(x, y)


@pytest.mark.parametrize(
    "img, words",
    [
        (Image.fromarray(np.full((8, 8), -5, np.int32)), "outside the 16-bit range"),
        (Image.fromarray(np.full((8, 8), 3.0, np.float32)), "only [0, 1]"),
        (Image.fromarray(np.full((8, 8), np.nan, np.float32)), "NaN"),
    ],
)
def test_a_mode_without_a_known_range_is_refused(img: Image.Image, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        decode_pil(img)


# ------------------------------------------------------------------ unreadable files in any layout
def test_a_truncated_jpeg_in_a_flat_folder_is_skipped_and_listed(tmp_path: Path) -> None:
    _photo(tmp_path / "good.png", seed=4)
    _truncated_jpeg(tmp_path / "bad.jpg")
    with pytest.warns(UserWarning, match="skipped 1 unreadable image files.*bad.jpg"):
        cache = as_image_cache(tmp_path)
    assert cache.names == ["good.png"] and [f for f, _ in cache.skipped] == ["bad.jpg"]
    assert "truncated" in cache.skipped[0][1].lower()
    with pytest.raises(UserInputError, match="1 unreadable image files.*bad.jpg.*strict"):
        as_image_cache(tmp_path, strict=True)


def test_a_truncated_jpeg_in_a_list_is_skipped_and_listed(tmp_path: Path) -> None:
    good = _photo(tmp_path / "good.png", seed=5)
    bad = _truncated_jpeg(tmp_path / "bad.jpg")
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        cache = as_image_cache([good, str(bad), Image.open(good)])
    assert len(cache) == 2 and [f for f, _ in cache.skipped] == [str(bad)]
    with pytest.raises(UserInputError, match="bad.jpg"):
        as_image_cache([good, bad], strict=True)
    with pytest.raises(UserInputError, match="every image file in the list of images is unreadable"):
        with pytest.warns(UserWarning):
            as_image_cache([bad])


def test_one_unreadable_file_is_refused_naming_it(tmp_path: Path) -> None:
    bad = _truncated_jpeg(tmp_path / "bad.jpg")
    with pytest.raises(UserInputError, match="(?i)bad.jpg.*unreadable.*truncated"):
        as_image_cache(bad)


def test_a_truncated_jpeg_in_a_class_folder_is_listed_the_same_way(tmp_path: Path) -> None:
    root = _two_classes(tmp_path / "imgs")
    _truncated_jpeg(root / "a" / "bad.jpg")
    with pytest.warns(UserWarning, match="skipped 1 unreadable image files"):
        cache = image_folder(root, progress=False)
    flat = tmp_path / "flat"
    _photo(flat / "good.png", seed=6)
    _truncated_jpeg(flat / "bad.jpg")
    with pytest.warns(UserWarning):
        other = as_image_cache(flat)
    assert cache.skipped[0][1] == other.skipped[0][1]  # the same reason, worded the same way


# ------------------------------------------------------------------ results folders
def test_a_results_folder_inside_the_image_folder_is_no_class(tmp_path: Path) -> None:
    root = _two_classes(tmp_path / "imgs")
    (root / "out" / "results.zarr").mkdir(parents=True)
    _photo(root / "out" / "figure.png", seed=7)  # a report's figure would make it a class of images
    with pytest.warns(UserWarning, match="results folder"):
        cache = image_folder(root, progress=False)
    assert cache.classes == ["a", "b"] and [f for f, _ in cache.skipped] == ["out/"]
    (root / "run2" / "state").mkdir(parents=True)
    with pytest.warns(UserWarning):
        assert image_folder(root, progress=False).classes == ["a", "b"]


def test_out_inside_the_image_folder_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    from augsens.config import StudyConfig
    from augsens.preflight import check_out_outside_images

    root = _two_classes(tmp_path / "imgs")
    cfg = StudyConfig.from_dict({"images": {"source": str(root)}})
    with pytest.raises(UserInputError, match=r"--out .*out.* inside the image folder \[images\] source"):
        check_out_outside_images(root / "out", cfg)
    with pytest.raises(UserInputError, match="out= .*inside"):
        check_out_outside_images(root / "a" / "deeper", cfg, flag="out=")
    check_out_outside_images(tmp_path / "out", cfg)  # beside it: fine
    assert not (root / "out").exists()


# ------------------------------------------------------------------ float images
def test_a_float_image_with_nan_is_told_about_the_nan(tmp_path: Path) -> None:
    x = torch.rand(2, 3, 32, 32)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(UserInputError, match="1 NaN or infinite values") as info:
        as_image_cache(x)
    assert "255" not in str(info.value)
    with pytest.raises(UserInputError, match=r"\[0, 1\].*x.float\(\) / 255"):
        as_image_cache(torch.full((1, 3, 8, 8), 200.0))  # a 0..255 float image still gets that advice


def test_the_study_call_refuses_out_inside_its_image_folder_in_its_own_words(tmp_path: Path) -> None:
    import augsens as ag

    root = _two_classes(tmp_path / "imgs")
    with pytest.raises(UserInputError, match=r"^out= .* inside the image folder"):
        ag.study("augsens.testing:tiny_cnn", images=root, out=root / "results", n=8, device="cpu")
    assert not (root / "results").exists()

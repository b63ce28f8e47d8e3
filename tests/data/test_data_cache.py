"""ImageCache.gather, the image factor over a cache, and paper mode's per-row re-draw."""

from __future__ import annotations

import pytest
import torch

from augsens.core.factors import ImageFactor
from augsens.data import ImageCache, redraw_within_class

SIZES = [2, 5, 1, 4]


@pytest.fixture
def cache():
    n = sum(SIZES)
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 8, 8).contiguous()
    labels = torch.repeat_interleave(torch.arange(len(SIZES)), torch.tensor(SIZES))
    return ImageCache(images, labels, ["a", "b", "c", "d"], [f"img{i}" for i in range(n)])


def test_gather(cache):
    x = cache.gather(torch.tensor([3, 0, 3]))
    assert x.shape == (3, 3, 8, 8) and x.dtype == torch.float32
    assert x[:, 0, 0, 0].tolist() == pytest.approx([3 / 255, 0.0, 3 / 255])
    assert cache.gather(torch.tensor([11.0], dtype=torch.float64))[0, 0, 0, 0] == pytest.approx(11 / 255)
    assert len(cache) == 12 and cache.class_sizes == SIZES
    with pytest.raises(TypeError, match="floating dtype"):
        cache.gather(torch.tensor([0]), dtype=torch.int32)


def test_cache_validation():
    img = torch.zeros(3, 3, 4, 4, dtype=torch.uint8)
    with pytest.raises(ValueError, match="sorted class by class"):
        ImageCache(img, torch.tensor([1, 0, 1]), ["a", "b"], ["x", "y", "z"])
    with pytest.raises(ValueError, match=r"\['c'\] have no image"):
        ImageCache(img, torch.tensor([0, 0, 1]), ["a", "b", "c"], ["x", "y", "z"])
    with pytest.raises(ValueError, match="uint8"):
        ImageCache(img.float(), torch.tensor([0, 0, 1]), ["a", "b"], ["x", "y", "z"])


def test_image_factor_over_cache(cache):
    factor = ImageFactor("image", cache.class_sizes)
    u = torch.rand(20_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    index = factor.decode(u)
    # the same unit value always gives the same image
    assert torch.equal(factor.decode(u[:100].clone()), index[:100])
    assert torch.equal(cache.gather(index[:100]), cache.gather(factor.decode(u[:100])))
    # classes in proportion (1/C each, whatever their size), images uniform within their class
    labels = cache.labels[index.long()]
    class_freq = torch.bincount(labels, minlength=4).double() / len(u)
    torch.testing.assert_close(class_freq, torch.full((4,), 0.25, dtype=torch.float64), atol=0.015, rtol=0)
    image_freq = torch.bincount(index.long(), minlength=len(cache)).double() / len(u)
    expected = torch.cat([torch.full((s,), 0.25 / s, dtype=torch.float64) for s in SIZES])
    torch.testing.assert_close(image_freq, expected, atol=0.012, rtol=0)
    # the decoded class is the cache's label of the decoded image
    assert torch.equal(factor.classes(u).long(), labels)


def _splitmix64_reference(z: int) -> int:
    mask = (1 << 64) - 1
    z &= mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def test_redraw_within_class_is_a_counter_based_hash():
    sizes = [3, 1000, 7]
    image = torch.tensor([0, 2, 3, 500, 1002, 1003, 1009])
    rows = torch.arange(100, 107)
    new = redraw_within_class(image, sizes, rows, seed=42)
    assert new.dtype == torch.int64
    # same (seed, row) -> same image, in any batch composition and order
    assert torch.equal(new, redraw_within_class(image, sizes, rows, seed=42))
    part = redraw_within_class(image[3:].flip(0), sizes, rows[3:].flip(0), seed=42)
    assert torch.equal(new[3:].flip(0), part)
    # stays in the class
    starts, ends = torch.tensor([0, 3, 1003]), torch.tensor([3, 1003, 1010])
    cls = torch.tensor([0, 0, 1, 1, 1, 2, 2])
    assert bool(((new >= starts[cls]) & (new < ends[cls])).all())
    # matches the unsigned SplitMix64 reference bit for bit
    gamma, base = 0x9E3779B97F4A7C15, _splitmix64_reference(42)
    for i, r in enumerate(rows.tolist()):
        h = _splitmix64_reference(base + (r + 1) * gamma)
        n_c = sizes[int(cls[i])]
        assert int(new[i]) == int(starts[cls[i]]) + ((h >> 11) * n_c >> 53)
    # a different seed re-draws differently; draws are uniform within a class
    assert not torch.equal(new, redraw_within_class(image, sizes, rows, seed=43))
    many = redraw_within_class(torch.full((70_000,), 1003), sizes, torch.arange(70_000), seed=0)
    freq = torch.bincount(many - 1003, minlength=7).double() / 70_000
    torch.testing.assert_close(freq, torch.full((7,), 1 / 7, dtype=torch.float64), atol=0.01, rtol=0)


def test_concatenate_partitions(cache):
    images = cache.images[:4].flip(0).clone()
    other = ImageCache(images, torch.tensor([0, 1, 2, 3]), cache.classes, list("wxyz"))
    both = ImageCache.concatenate([cache, other])
    assert len(both) == 16 and both.partitions == [SIZES, [1, 1, 1, 1]]
    assert both.class_sizes == [s + 1 for s in SIZES]
    assert both.labels[12:].tolist() == [0, 1, 2, 3] and both.names[12:] == list("wxyz")
    # partition 1 starts at offset 12: image k of partition 1 is global image 12 + k
    assert torch.equal(both.gather(torch.tensor([12])), other.gather(torch.tensor([0])))
    with pytest.raises(ValueError, match="partitions need the same classes"):
        ImageCache.concatenate([cache, ImageCache(cache.images[:1], torch.tensor([0]), ["z"], ["q"])])
    with pytest.raises(ValueError, match=r"partition 1: class sizes \[2, 1, 1, 0\] disagree"):
        ImageCache(both.images, both.labels, both.classes, both.names, partitions=[SIZES, [2, 1, 1, 0]])

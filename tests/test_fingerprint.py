"""Fingerprints of a run's inputs: what changed is said in words, nothing else is flagged."""

import torch

from augsens.data import ImageCache
from augsens.fingerprint import compare, fingerprint, weights_digest
from augsens.testing import tiny_cnn


def _cache(n: int, seed: int = 0) -> ImageCache:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=gen)
    names = [f"c/{i}.png" for i in range(n)]
    return ImageCache(images, torch.zeros(n, dtype=torch.int64), ["c"], names)


def test_same_inputs_same_fingerprint():
    net = tiny_cnn()
    assert compare(fingerprint(_cache(4), net), fingerprint(_cache(4), tiny_cnn())) == []


def test_added_removed_and_changed_images_are_named():
    net = tiny_cnn()
    saved = fingerprint(_cache(4), net)
    assert compare(saved, fingerprint(_cache(6), net)) == ["2 images added (c/4.png, c/5.png)"]
    assert compare(saved, fingerprint(_cache(3), net)) == ["1 image removed (c/3.png)"]
    edited = _cache(4)
    edited.images[1, 0, 0, 0] ^= 1  # one pixel, one bit
    assert compare(saved, fingerprint(edited, net)) == ["1 image changed (c/1.png)"]
    shuffled = _cache(4)
    shuffled.names.reverse()
    shuffled.images = shuffled.images.flip(0)
    assert compare(saved, fingerprint(shuffled, net)) == ["the images are in a different order"]


def test_any_weight_change_is_seen():
    net = tiny_cnn()
    before = weights_digest(net)
    with torch.no_grad():
        net.fc.bias[0] += 1e-7
    assert weights_digest(net) != before
    assert weights_digest(tiny_cnn().to(torch.bfloat16)) != before  # dtype is part of it

"""Fuzzed image folders and model outputs.

Folders: random trees of good images in any PIL mode, broken files, empty folders, link loops and results
folders.  Whatever the tree, reading it gives one clear UserInputError or a cache holding exactly the
decodable images reachable without a loop, each once, every broken file listed in ``skipped``.

Models: a checkpoint's output built from random per-image and batch-wide operations is refused, naming
the checkpoint, exactly when a batch-wide one is among them."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from torch import nn

from augsens.data.inputs import as_image_cache
from augsens.errors import UserInputError
from augsens.models import load

GOOD = {
    "RGB": lambda a: Image.fromarray(a),
    "L": lambda a: Image.fromarray(a[..., 0]),
    "RGBA": lambda a: Image.fromarray(np.dstack([a, a[..., :1]])),
    "I;16": lambda a: Image.fromarray(a[..., 0].astype(np.uint16) * 257),
    "P": lambda a: Image.fromarray(a).convert("P"),
}
BROKEN = {
    "text": lambda p: p.write_text("not an image"),
    "empty": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(_jpeg_bytes()[:120]),
}


def _jpeg_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 100, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


entries = st.lists(
    st.tuples(
        st.sampled_from(["", "a", "b", "a/deep"]),  # folder ("" = the root)
        st.one_of(st.sampled_from(list(GOOD)), st.sampled_from([f"broken:{k}" for k in BROKEN])),
    ),
    min_size=0,
    max_size=6,
)
extras = st.lists(st.sampled_from(["loop", "empty-dir", "results-folder"]), max_size=3, unique=True)


def _build(root: Path, files: list[tuple[str, str]], more: list[str]) -> None:
    rng = np.random.default_rng(0)
    for i, (folder, kind) in enumerate(files):
        d = root / folder
        d.mkdir(parents=True, exist_ok=True)
        if kind.startswith("broken:"):
            BROKEN[kind.split(":")[1]](d / f"{i}.jpg")
        else:
            GOOD[kind](rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(d / f"{i}.png")
    if "loop" in more and (root / "a").is_dir():
        os.symlink("..", root / "a" / "up")
    if "empty-dir" in more:
        (root / "c_empty").mkdir(exist_ok=True)
    if "results-folder" in more:
        (root / "out" / "results.zarr").mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "out" / "figure.png")


@given(entries, extras)
def test_any_image_folder_is_read_exactly_or_refused_in_one_line(files, more) -> None:
    root = Path(tempfile.mkdtemp(prefix="augsens-fuzz-"))
    try:
        _build(root, files, more)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cache = as_image_cache(root)
        except (UserInputError, FileNotFoundError) as exc:
            assert str(exc) and "\n" not in str(exc)
            return
        good = sum(not kind.startswith("broken") for _, kind in files)
        # flat: only the root's own files; classes: everything under class folders
        classes = any(folder for folder, _ in files)
        if classes and cache.classes != ["images"]:
            expected = sum(1 for folder, kind in files if folder and not kind.startswith("broken"))
        else:
            expected = sum(1 for folder, kind in files if not folder and not kind.startswith("broken"))
        assert len(cache) == expected <= good
        assert len(set(cache.names)) == len(cache.names)  # nothing read twice (no loop)
        skipped_files = [f for f, _ in cache.skipped if not f.endswith("/")]
        assert all(not name.endswith(".jpg") for name in cache.names)  # broken files are never images
        assert len(skipped_files) == sum(
            1
            for folder, kind in files
            if kind.startswith("broken") and (bool(folder) == (cache.classes != ["images"]))
        )
        assert int(cache.images.float().mean()) < 255 or not len(cache)  # 16-bit images not clipped white
    finally:
        shutil.rmtree(root)


PER_IMAGE = {
    "tanh": torch.tanh,
    "scale": lambda y: 3 * y + 1,
    "square": lambda y: y * y,
    "flip": lambda y: y.flip(-1),
}
BATCH_WIDE = {
    "centre": lambda y: y - y.mean(0),
    "roll": lambda y: y.roll(1, dims=0),
    "mean": lambda y: y.mean(0, keepdim=True),
    "flatten": lambda y: y.reshape(-1),
    "sum": lambda y: y.sum(),
    "normalise": lambda y: y / (y.norm(dim=0) + 1),
}


class _Ops(nn.Module):
    def __init__(self, ops: list[str]) -> None:
        super().__init__()
        self.ops = ops

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            y = {**PER_IMAGE, **BATCH_WIDE}[op](y)
        return y


class _Net(nn.Module):
    def __init__(self, ops: list[str]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 5, stride=16)
        self.head = _Ops(ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).flatten(1))


@given(st.lists(st.sampled_from([*PER_IMAGE, *BATCH_WIDE]), min_size=1, max_size=3))
def test_a_checkpoint_is_refused_exactly_when_its_output_depends_on_the_batch(ops: list[str]) -> None:
    torch.manual_seed(0)
    m = load(_Net(ops), checkpoints=["conv", "head"], device="cpu")
    mixes = any(op in BATCH_WIDE for op in ops)
    try:
        shapes = m.output_shapes()
    except UserInputError as exc:
        assert mixes, (ops, str(exc))
        # named by checkpoint, or (an op that cannot run on a scalar) as a forward the model refuses
        assert ("checkpoint 'head'" in str(exc) or "rejects the input" in str(exc)) and "\n" not in str(exc)
        return
    assert not mixes, ops
    assert shapes["head"] == (2 * 14 * 14,)

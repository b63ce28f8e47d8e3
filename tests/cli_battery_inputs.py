"""Fault cases of the command line's inputs: config encodings, image folders with links, wide modes and
results folders inside, keys a kind does not read, suggestions, models that mix the images of a batch,
and studies too large for memory.

The cases use :class:`cli_battery.Case`, so ``tests/cli/test_cli_faults_inputs.py`` checks each and
``benchmarks/cli_faults.py`` counts them with the rest of the battery.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cli_battery import Case, _run, image_folder, tiny_config

BATCH_MODELS = """
import torch
from torch import nn


class _Head(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _net(fn):
    return nn.Sequential(nn.Conv2d(3, 4, 5, stride=16), nn.Flatten(), nn.Linear(4 * 14 * 14, 3), _Head(fn))


def centred():
    return _net(lambda y: y - y.mean(0))


def scalar():
    return _net(lambda y: y.sum())


def batch_mean():
    return _net(lambda y: y.mean(0, keepdim=True))
"""


def _batch_model(factory: str) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        module = f"batch_models_{abs(hash(str(d)))}"
        (d / f"{module}.py").write_text(BATCH_MODELS)
        import sys

        sys.path.insert(0, str(d))
        cfg = tiny_config(d)
        text = cfg.read_text().replace('"augsens.testing:tiny_cnn"', f'"{module}:{factory}"')
        cfg.write_text(text.replace('checkpoints = ["conv", "fc"]', 'checkpoints = ["2", "3"]'))
        return _run(d, cfg)

    return setup


def _encoded(encode: Callable[[str], bytes]) -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        cfg = tiny_config(d)
        cfg.write_bytes(encode("# café\n" + cfg.read_text()))
        return _run(d, cfg)

    return setup


def _with_images(make: Callable[[Path], Path], *more: str, out: str = "out") -> Callable[[Path], list[str]]:
    def setup(d: Path) -> list[str]:
        cfg = tiny_config(d, source=str(make(d)))
        return ["run", str(cfg), "--out", str(d / out), "-q", "--no-report", *more]

    return setup


def _loop(d: Path) -> Path:
    root = image_folder(d)
    os.symlink("..", root / "c0" / "up")
    return root


def _sixteen_bit(d: Path) -> Path:
    from PIL import Image

    root = image_folder(d)
    ramp = np.linspace(0, 65535, 40 * 48).reshape(40, 48).astype(np.uint16)
    Image.fromarray(ramp).save(root / "c1" / "wide.png")
    return root


def _old_results_inside(d: Path) -> Path:
    root = image_folder(d)
    (root / "old-run" / "results.zarr").mkdir(parents=True)
    (root / "old-run" / "state").mkdir()
    return root


def _recorded(name: str, expect: Callable[[dict], bool]) -> Callable[[Path, str], bool]:
    def check(d: Path, _: str) -> bool:
        import json

        from augsens.results import open_results

        attrs = open_results(d / "out").attrs
        return expect({**attrs, "skipped_files": json.loads(attrs["skipped_files"])})

    check.__name__ = name
    return check


def _no_out(d: Path, _: str) -> bool:
    return not (d / "imgs" / "out").exists()


def _not_white(d: Path, _: str) -> bool:
    from PIL import Image

    with Image.open(d / "g.png") as im:
        return float(np.asarray(im.convert("L")).mean()) < 250


def _gallery_16_bit(d: Path) -> list[str]:
    from PIL import Image

    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(d / "wide.png")
    return ["gallery", str(d / "wide.png"), "--out", str(d / "g.png")]


def _too_large(d: Path) -> list[str]:
    # ResNet18, every default checkpoint, second-order Sobol' with 4096 replicates: terabytes of state
    cfg = tiny_config(d, n=4096)
    text = (
        cfg.read_text()
        .replace('"augsens.testing:tiny_cnn"', '"resnet18"')
        .replace('weights = "default"', 'weights = "random"')
    )
    text = text.replace('checkpoints = ["conv", "fc"]', "checkpoints = []").replace(
        "replicates = 2", "replicates = 4096"
    )
    cfg.write_text(text)
    return _run(d, cfg, "--set", "study.second_order=true")


INPUT_CASES: list[Case] = [
    # --------------------------------------------------------- config encodings and keys
    Case("config with a UTF-8 byte-order mark", _encoded(lambda t: codecs.BOM_UTF8 + t.encode()), code=0),
    Case("config saved as UTF-16", _encoded(lambda t: t.encode("utf-16")), code=0),
    Case(
        "config saved as Latin-1",
        _encoded(lambda t: t.encode("latin-1")),
        words=("c.toml", "not a UTF-8", "Latin-1", "line 1"),
    ),
    Case(
        "shapley-song with n",
        lambda d: _run(d, tiny_config(d), "--set", 'study.kind="shapley-song"', "--set", "study.n=16"),
        words=("[study] n = 16", "shapley-song", "song_permutations"),
    ),
    Case(
        "song keys with sobol",
        lambda d: _run(d, tiny_config(d), "--set", "study.song_outer=8"),
        words=("song_outer = 8", "shapley-song"),
    ),
    Case(
        "replicates suggestions are valid",
        lambda d: _run(d, tiny_config(d, n=64), "--set", "study.replicates=3"),
        words=("replicates = 3", "replicates = 2 or replicates = 4"),
        check=lambda d, out: "n = 63" not in out and "n = 66" not in out,
    ),
    # --------------------------------------------------------- image folders
    Case(
        "symlink loop in a class folder",
        _with_images(_loop),
        code=0,
        check=_recorded("loop", lambda a: a["images"] == 4 and a["skipped_files"] == ["c0/up/"]),
    ),
    Case(
        "16-bit PNG in a class folder",
        _with_images(_sixteen_bit),
        code=0,
        check=_recorded("wide", lambda a: a["images"] == 5 and a["skipped_images"] == 0),
    ),
    Case("gallery of a 16-bit PNG", _gallery_16_bit, code=0, check=_not_white),
    Case(
        "--out inside the image folder",
        _with_images(image_folder, out="imgs/out"),
        words=("--out", "inside the image folder", "[images] source"),
        check=_no_out,
    ),
    Case(
        "an old results folder inside the image folder",
        _with_images(_old_results_inside),
        code=0,
        check=_recorded("old", lambda a: a["images"] == 4 and a["skipped_files"] == ["old-run/"]),
    ),
    # --------------------------------------------------------- models checked on a real batch
    Case(
        "model centres over the batch",
        _batch_model("centred"),
        words=(":centred", "checkpoint '3'", "changed"),
    ),
    Case("model returns a scalar", _batch_model("scalar"), words=(":scalar", "checkpoint '3'", "shape ()")),
    Case(
        "model averages the batch",
        _batch_model("batch_mean"),
        words=(":batch_mean", "checkpoint '3'", "batch of 3"),
    ),
    # --------------------------------------------------------- memory
    Case(
        "state too large for memory",
        _too_large,
        words=("memory", "GiB", "is available", "Options", "replicates"),
        check=lambda d, _: not (d / "out").exists(),
    ),
]

"""A user's augmentation beside a corruption and the paper's: ag.study and TOML + augsens run agree,
resume names a changed op, and the example of docs/augmentations.md runs."""

from __future__ import annotations

import importlib
import json
import re
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

import augsens as ag
from cli_battery import image_folder, partial_run, run_inprocess

ROOT = Path(__file__).resolve().parents[2]

USER_MODULE = """
import torchvision.transforms.v2.functional as F

from augsens.augment import ParamSpec
from augsens.augment.adapters import per_image


def _gamma(img, gamma):
    return F.adjust_gamma(img, gamma)


gamma = per_image("gamma", _gamma, [ParamSpec("gamma", 0.5, 2.0, identity=1.0)], input_shape="[B, 3, H, W]")
"""

CONFIG = """
[model]
name = "augsens.testing:tiny_cnn"
checkpoints = ["act", "fc"]
[images]
source = "{images}"
[study]
augmentations = ["{module}:gamma", "gaussian_noise", "hue", "hflip"]
n = 8
replicates = 2
design = "iid"
[augment.hue]
low = -0.2
high = 0.2
[run]
device = "cpu"
"""


@pytest.fixture
def user_module(tmp_path: Path):
    """A module of the user's own, importable by name, with a gamma op wrapped per image."""
    name = f"user_ops_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    sys.path.insert(0, str(tmp_path))
    try:
        yield name, tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def test_python_and_toml_give_identical_results(user_module, tmp_path: Path):
    name, root = user_module
    images = image_folder(root)
    ops = importlib.import_module(name)
    tree = ag.study(
        "augsens.testing:tiny_cnn",
        images,
        augmentations=[ops.gamma, "gaussian_noise", "hue", "hflip"],
        ranges={"hue": (-0.2, 0.2)},
        n=8,
        replicates=2,
        design="iid",
        checkpoints=["act", "fc"],
        device="cpu",
        progress=False,
        out=tmp_path / "python",
    )
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG.format(images=images, module=name))
    code, output, escaped = run_inprocess(["run", str(cfg), "--out", str(tmp_path / "toml"), "--quiet"])
    assert code == 0 and not escaped, output
    toml = ag.open_results(tmp_path / "toml")
    assert json.loads(tree.attrs["config"]) == json.loads(toml.attrs["config"])
    assert tree.attrs["augmentation_specs"] == toml.attrs["augmentation_specs"]
    specs = {a["name"]: a for a in json.loads(toml.attrs["augmentation_specs"])}
    assert specs["gamma"]["source"] == f"{name}:gamma" and specs["hue"]["parameters"][0]["high"] == 0.2
    assert list(toml["act"].dataset["factor"].values) == [
        "gamma",
        "gaussian_noise",
        "hue",
        "hflip",
        "order",
        "image",
    ]
    for node in ("act", "fc"):
        a, b = tree[node].dataset, toml[node].dataset
        assert sorted(a.data_vars) == sorted(b.data_vars)
        for var in a.data_vars:
            np.testing.assert_array_equal(a[var].values, b[var].values, err_msg=f"{node}/{var}")


def test_resume_after_the_op_changed_is_refused_naming_it(user_module, tmp_path: Path):
    name, root = user_module
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG.format(images=image_folder(root), module=name))
    out = tmp_path / "out"
    partial_run(cfg, out, stop_after=4)
    state = (out / "state" / "state.pt").read_bytes()
    # the user edits the op: a different formula, same name, same declaration
    path = root / f"{name}.py"
    path.write_text(
        path.read_text().replace("F.adjust_gamma(img, gamma)", "F.adjust_gamma(img, gamma).clamp(0, 1)")
    )
    sys.modules.pop(name, None)
    code, output, escaped = run_inprocess(["run", str(cfg), "--out", str(out), "--resume", "--quiet"])
    assert code == 2 and not escaped, output
    flat = " ".join(output.split())
    assert re.search(
        r"cannot resume from .*the code of augmentation 'gamma' changed \(source hash \w+ -> \w+\)", flat
    )
    assert (out / "state" / "state.pt").read_bytes() == state  # the saved work is kept


def test_the_documented_example_runs():
    text = (ROOT / "docs" / "augmentations.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/augmentations.md has no python example"
    namespace: dict[str, object] = {"__name__": "augmentations_md"}
    exec(compile(blocks[0], "docs/augmentations.md", "exec"), namespace)  # noqa: S102 - the page's own example
    tree = namespace["tree"]
    assert list(tree["fc"].dataset["factor"].values)[:2] == ["vignette", "hue"]

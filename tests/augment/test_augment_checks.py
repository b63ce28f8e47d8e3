"""Bad augmentations are refused before any forward: one message and exit code 2 per broken rule."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import torch

from augsens.augment import AUGMENTATIONS, Augmentation, ParamSpec
from augsens.augment.checks import AugmentationCheckError, check_augmentation
from cli_battery import image_folder, run_inprocess

#: One op per rule of the protocol, each breaking that rule only where the checks look for it first.
BAD_OPS = """
import torch
from augsens.augment import Augmentation, ParamSpec

G = (ParamSpec("g", 0.5, 2.0, identity=1.0),)


def _g(x, g):
    return g.to(x.dtype).view(-1, *[1] * (x.ndim - 1))


def _raises(x, *, g):
    raise RuntimeError("the kernel is not ready")


def _numpy(x, *, g):
    return (x * _g(x, g)).numpy()


def _meta(x, *, g):
    return torch.empty(x.shape, dtype=x.dtype, device="meta")


def _shape(x, *, g):
    return (x * _g(x, g))[..., :-1]


def _dtype(x, *, g):
    return (x * _g(x, g)).to(torch.float64)


def _in_place(x, *, g):
    return x.mul_(_g(x, g))


def _nan(x, *, g):
    return x * _g(x, g) * float("nan")


def _random(x, *, g):
    return x * _g(x, g) + 0.01 * torch.randn_like(x)


def _identity(x, *, g):
    return x * _g(x, g) + 0.1


def _other_parameters(x, *, g):
    return x * g[0]


def _other_samples(x, *, g):
    return x * _g(x, g) + (_g(x, g) - 1) * x.mean(dim=0, keepdim=True)


def _ignored(x, *, g, h):
    return x * _g(x, g)


def _signal(x, *, g):
    return x * _g(x, g)


exception = Augmentation("exception", G, _raises)
not_a_tensor = Augmentation("not_a_tensor", G, _numpy)
device = Augmentation("device", G, _meta)
shape = Augmentation("shape", G, _shape)
dtype = Augmentation("dtype", G, _dtype)
in_place = Augmentation("in_place", G, _in_place)
non_finite = Augmentation("non_finite", G, _nan)
random = Augmentation("random", G, _random)
identity = Augmentation("identity", G, _identity)
other_parameters = Augmentation("other_parameters", G, _other_parameters)
other_samples = Augmentation("other_samples", G, _other_samples)
ignored_parameter = Augmentation("ignored_parameter", G + (ParamSpec("h", 0.0, 1.0, identity=0.0),), _ignored)
input = Augmentation("input", G, _signal, input_shape="[B, 1, T]")
"""

#: kind -> what its message must say
MESSAGES = {
    "exception": r"fn raised RuntimeError: the kernel is not ready",
    "not_a_tensor": r"fn returned ndarray, not a torch\.Tensor",
    "device": r"fn returned a tensor on meta, its input is on cpu",
    "shape": r"fn changed the shape from \[(\d), 3, 224, 224\] to \[\1, 3, 224, 223\]",
    "dtype": r"fn changed the dtype from torch\.float32 to torch\.float64",
    "in_place": r"fn modified its input in place",
    "non_finite": r"fn returned \d+ NaN or infinite value\(s\)",
    "random": r"two calls with the same input and parameters gave different outputs",
    "identity": r"at its identity value\(s\) \(g=1\) the output differs from the input",
    "other_parameters": r"the output of sample \d changed when only sample 0's parameters changed",
    "other_samples": r"changed when the op ran on a smaller batch \(it depends on the other samples",
    "ignored_parameter": r"parameter 'h' has no effect: h = 0\.1 and 0\.9 give the same output",
    "input": r"the study.s input must have shape \[B, 1, T\], got \[\d, 3, 224, 224\]",
}


@pytest.fixture(scope="module")
def bad_ops(tmp_path_factory: pytest.TempPathFactory):
    """The bad ops as an importable module (``<module>:<kind>`` references), and a small image folder."""
    root = tmp_path_factory.mktemp("bad_ops")
    module = f"bad_ops_{uuid.uuid4().hex[:8]}"
    (root / f"{module}.py").write_text(textwrap.dedent(BAD_OPS))
    image_folder(root)
    sys.path.insert(0, str(root))
    try:
        yield module, root
    finally:
        sys.path.remove(str(root))
        sys.modules.pop(module, None)


def _probe() -> torch.Tensor:
    return torch.rand(4, 3, 224, 224, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("kind", list(MESSAGES))
def test_each_broken_rule_is_named(bad_ops, kind: str) -> None:
    import importlib

    module, _ = bad_ops
    aug = getattr(importlib.import_module(module), kind)
    with pytest.raises(AugmentationCheckError, match=MESSAGES[kind]) as info:
        check_augmentation(aug, _probe())
    assert info.value.kind == kind
    assert f"augmentation {kind!r}" in str(info.value)


@pytest.mark.parametrize("kind", list(MESSAGES))
def test_cli_refuses_a_bad_augmentation_before_any_forward(bad_ops, kind: str, tmp_path: Path) -> None:
    module, root = bad_ops
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        textwrap.dedent(
            f"""
            [model]
            name = "augsens.testing:tiny_cnn"
            checkpoints = ["fc"]
            [images]
            source = "{root / "imgs"}"
            [study]
            augmentations = ["hflip", "{module}:{kind}"]
            n = 8
            replicates = 2
            design = "iid"
            [run]
            device = "cpu"
            """
        )
    )
    out = tmp_path / "out"
    code, output, escaped = run_inprocess(["run", str(cfg), "--out", str(out), "--quiet"])
    assert code == 2 and not escaped, output
    flat = " ".join(output.split())
    assert f"augmentation {kind!r} ({module}:{kind}) fails its check" in flat
    import re

    assert re.search(MESSAGES[kind], flat), flat
    # refused before the first forward: no state saved, no results written
    assert not (out / "state").exists() and not (out / "results.zarr").exists()


@pytest.mark.parametrize("mode", ["clean", "paper"])
@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_the_paper_twelve_pass_the_checks(photos, name: str, mode: str) -> None:
    """The rules hold for every built-in op, in both modes, on real photos on the uint8 grid."""
    check_augmentation(AUGMENTATIONS[name], (photos * 255).round() / 255, mode=mode)


def test_an_op_without_identity_skips_that_check_only() -> None:
    def shift(x, *, s):
        return x + s.view(-1, 1) + 1.0  # s = 0 is no identity: declared so

    check_augmentation(
        Augmentation("shift", (ParamSpec("s", 0.0, 1.0, identity=None),), shift), torch.rand(4, 7)
    )
    with pytest.raises(AugmentationCheckError, match="at its identity value"):
        check_augmentation(
            Augmentation("shift0", (ParamSpec("s", 0.0, 1.0, identity=0.0),), shift), torch.rand(4, 7)
        )


def test_a_contrast_study_checks_its_augmentations_too(bad_ops) -> None:
    import importlib

    import augsens as ag

    module, root = bad_ops
    with pytest.raises(AugmentationCheckError, match=MESSAGES["identity"]):
        ag.study(
            "augsens.testing:tiny_cnn",
            root / "imgs",
            kind="contrast",
            augmentations=[importlib.import_module(module).identity, "hflip"],
            draws=2,
            checkpoints=["fc"],
            device="cpu",
            progress=False,
        )

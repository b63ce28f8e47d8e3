"""The augmentation protocol: the paper's twelve as ordinary instances, users' ops, plugins, adapters."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torchvision.transforms.v2.functional as F
from typer.testing import CliRunner

from augsens.augment import (
    AUGMENTATIONS,
    Augmentation,
    ParamSpec,
    apply,
    available,
    compose,
    ops,
    register,
    registry,
    spec,
)
from augsens.augment.adapters import batched, per_image, torchvision_op
from augsens.augment.checks import check_augmentation
from augsens.errors import UserInputError


def _gain(x: torch.Tensor, *, g: torch.Tensor) -> torch.Tensor:
    return x * g.to(x.dtype).view(-1, *[1] * (x.ndim - 1))


GAIN = Augmentation("gain", (ParamSpec("g", 0.5, 2.0, identity=1.0),), _gain, doc="multiply by g")


def test_the_twelve_are_ordinary_instances(small_photos):
    x = small_photos
    for name, aug in AUGMENTATIONS.items():
        assert isinstance(aug, Augmentation) and aug.fn is getattr(ops, name) and aug.set in (1, 2)
        params = {p.name: torch.full((x.shape[0],), (p.low + p.high) / 2) for p in aug.params}
        # by name, by object and by calling the object: one path
        expected = apply(name, x, **params)
        assert torch.equal(apply(aug, x, **params), expected)
        assert torch.equal(aug(x, **params), expected)
    assert len(AUGMENTATIONS) == 12 and set(AUGMENTATIONS) <= set(available())


def test_a_user_op_composes_with_built_ins(small_photos):
    x = small_photos[:2]
    g = torch.tensor([0.5, 1.5])
    factor = torch.tensor([0.2, -0.3])
    order = torch.tensor([[0, 1], [1, 0]])
    y = compose(x, [GAIN, "hue"], {"gain": {"g": g}, "hue": {"factor": factor}}, order=order)
    first = apply("hue", GAIN(x[:1], g=g[:1]), factor=factor[:1])
    second = GAIN(apply("hue", x[1:], factor=factor[1:]), g=g[1:])
    torch.testing.assert_close(y, torch.cat([first, second]), rtol=0, atol=0)


def test_the_protocol_takes_any_batch_shape():
    signal = torch.linspace(0, 1, 2 * 2 * 50).view(2, 2, 50)
    y = GAIN(signal, g=torch.tensor([2.0, 0.5]))
    torch.testing.assert_close(y, signal * torch.tensor([2.0, 0.5]).view(2, 1, 1))
    check_augmentation(GAIN, torch.rand(4, 2, 50))
    with pytest.raises(ValueError, match=r"x must have shape \[B, 3, H, W\], got \[2, 2, 50\]"):
        compose(signal, [GAIN, "hflip"], {"gain": {"g": torch.ones(2)}})


def test_integer_parameters_reach_fn_rounded_half_to_even():
    seen = []

    def record(x, *, k):
        seen.append(k.clone())
        return x + 0 * k.view(-1, 1)

    op = Augmentation("rec", (ParamSpec("k", 0, 4, identity=0, integer=True),), record)
    op(torch.zeros(3, 2), k=torch.tensor([0.5, 1.5, 2.4]))
    assert seen[0].tolist() == [0.0, 2.0, 2.0]


def test_declaration_errors_name_the_fix():
    with pytest.raises(UserInputError, match=r"its fn '_gain' has no keyword 'gamma'"):
        Augmentation("bad", (ParamSpec("gamma", 0.5, 2.0, identity=1.0),), _gain)
    with pytest.raises(UserInputError, match=r"must be a Python identifier"):
        Augmentation("my op", (), _gain)
    with pytest.raises(UserInputError, match=r"declares parameter\(s\) g twice"):
        Augmentation("twice", (ParamSpec("g", 0, 1), ParamSpec("g", 0, 1)), _gain)
    with pytest.raises(UserInputError, match=r"need finite low < high, got low=2, high=1"):
        ParamSpec("g", 2, 1)
    with pytest.raises(UserInputError, match=r"range for unknown parameter\(s\) gain.q; gain takes g"):
        GAIN.with_ranges({"q": (0, 1)})


def test_references_and_registration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "my_ops_ref.py").write_text(
        "import torch\nfrom augsens.augment import Augmentation, ParamSpec\n"
        "def _f(x, *, a):\n    return x + a.view(-1, *[1] * (x.ndim - 1)) * 0 + x * 0\n"
        "shift = Augmentation('shift', (ParamSpec('a', 0.0, 1.0, identity=0.0),), _f)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    aug = spec("my_ops_ref:shift")
    assert aug.name == "shift" and aug.source == "my_ops_ref:shift"
    assert registry.reference(aug) == "my_ops_ref:shift"
    with pytest.raises(KeyError, match=r"module 'my_ops_ref' has no 'nothing'"):
        spec("my_ops_ref:nothing")
    with pytest.raises(KeyError, match=r"module 'no_such_module_xyz' cannot be imported"):
        spec("no_such_module_xyz:op")
    with pytest.raises(KeyError, match=r"unknown augmentation 'gian'.*'package\.module:name'"):
        spec("gian")
    local = Augmentation("local_gain", GAIN.params, _gain)
    monkeypatch.setattr(registry, "_REGISTERED", {})
    assert registry.reference(local) == "local_gain"  # not importable from here: registered by name
    assert spec("local_gain") is local and "local_gain" in available()
    with pytest.raises(UserInputError, match=r"name 'hue' is taken by augsens \(the paper's catalogue\)"):
        register(Augmentation("hue", GAIN.params, _gain))
    assert list(AUGMENTATIONS) == list(registry.SET1 + registry.SET2)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An installed package offering two augmentations through the entry-point group."""
    pkg = tmp_path / "augsens_plugin_demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            from augsens.augment import Augmentation, ParamSpec

            def _gain(x, *, g):
                return x * g.to(x.dtype).view(-1, *[1] * (x.ndim - 1))

            def catalogue():
                return [Augmentation("plugin_gain", (ParamSpec("g", 0.5, 2.0, identity=1.0),), _gain)]
            """
        )
    )
    info = tmp_path / "augsens_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: augsens-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[augsens.augmentations]\ndemo = augsens_plugin_demo:catalogue\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_PLUGINS", None)
    yield
    sys.modules.pop("augsens_plugin_demo", None)
    registry._PLUGINS = None


def test_plugins_by_entry_point_and_augsens_info(plugin):
    from augsens.cli import app

    aug = spec("plugin_gain")
    assert aug.source == "plugin augsens-plugin-demo (augsens_plugin_demo:catalogue)"
    res = CliRunner().invoke(app, ["info"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    row = next(row for row in res.output.splitlines() if "plugin_gain" in row)  # its table row
    assert "0.5" in row and "2" in row
    assert "from plugin augsens-plugin-demo (augsens_plugin_demo:catalogue): plugin_gain" in res.output
    assert "from augsens (the paper's catalogue): erasing, sharpness" in res.output  # built-ins say it too


def test_per_image_adapter_equals_torchvision_per_image(small_photos):
    gamma = torchvision_op(F.adjust_gamma, [ParamSpec("gamma", 0.5, 2.0, identity=1.0)])
    assert gamma.name == "gamma" and gamma.input_shape == "[B, 3, H, W]"
    g = torch.tensor([0.5, 1.0, 1.7])
    y = gamma(small_photos, gamma=g)
    for b in range(3):
        torch.testing.assert_close(y[b], F.adjust_gamma(small_photos[b], float(g[b])), rtol=0, atol=0)
    check_augmentation(gamma, small_photos[:3].repeat(2, 1, 1, 1)[:4])

    posterize = per_image(
        "posterize",
        lambda img, bits: F.posterize((img * 255).to(torch.uint8), bits).float() / 255,
        [ParamSpec("bits", 2, 8, identity=8, integer=True)],
    )
    z = posterize((small_photos * 255).round() / 255, bits=torch.tensor([2.0, 3.4, 8.0]))
    assert torch.equal(z[2], (small_photos[2] * 255).round() / 255)
    assert len(torch.unique(z[0])) <= 4  # 2 bits: at most 4 levels


def test_batched_adapter_passes_per_sample_tensors(small_photos):
    seen = {}

    def kornia_style(image, contrast_factor):  # per-sample factors [B], as kornia's functional ops take
        seen["shape"] = tuple(contrast_factor.shape)
        mean = image.mean(dim=(-3, -2, -1), keepdim=True)
        return ((image - mean) * contrast_factor.view(-1, 1, 1, 1) + mean).clamp(0, 1)

    op = batched(
        "contrast_k",
        kornia_style,
        [ParamSpec("c", 0.5, 1.5, identity=1.0)],
        keywords={"c": "contrast_factor"},
    )
    y = op(small_photos, c=torch.tensor([0.5, 1.0, 1.5]))
    assert seen["shape"] == (3,)
    torch.testing.assert_close(y[1], small_photos[1])
    check_augmentation(op, torch.cat([small_photos, small_photos[:1]]))


def test_code_hash_follows_the_wrapped_op():
    def a(img, k):
        return img * k

    def b(img, k):
        return img * k * 1.0

    pa = per_image("p", a, [ParamSpec("k", 0.5, 2.0, identity=1.0)])
    pb = per_image("p", b, [ParamSpec("k", 0.5, 2.0, identity=1.0)])
    assert pa.code_hash != pb.code_hash
    assert pa.code_hash == per_image("p", a, [ParamSpec("k", 0.1, 2.0, identity=1.0)]).code_hash
    assert (
        pa.declaration_hash()
        != per_image("p", a, [ParamSpec("k", 0.1, 2.0, identity=1.0)]).declaration_hash()
    )

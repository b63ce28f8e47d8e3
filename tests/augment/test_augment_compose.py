"""Composition with per-sample orders and switches; registry; error messages."""

from __future__ import annotations

import math

import pytest
import torch

from augsens.augment import AUGMENTATIONS, SET1, SET2, ParamSpec, apply, compose, spec


def random_params(names, batch: int, gen: torch.Generator) -> dict[str, dict[str, torch.Tensor]]:
    out = {}
    for name in names:
        s = spec(name)
        if s.params:
            out[name] = {
                p.name: p.low + (p.high - p.low) * torch.rand(batch, generator=gen) for p in s.params
            }
    return out


def test_registry_order_and_contents():
    assert SET1 == ("erasing", "sharpness", "rolling", "grayscale", "gaussian_blur")
    assert SET2 == ("brightness", "contrast", "saturation", "hue", "hflip", "rotation", "elliptic_local_blur")
    assert tuple(AUGMENTATIONS) == SET1 + SET2
    assert spec("elliptic_local_blur").param_names == ("a", "b", "shift_x", "shift_y", "angle")
    assert spec("erasing").param_names == ("center_y", "center_x", "scale", "log_ratio")
    assert spec("hue").params[0].identity == 0.0
    assert spec("sharpness").constants["sharpness_factor"] == 1.5
    assert spec("gaussian_blur").constants["kernel_size"] == 7
    assert spec("elliptic_local_blur").constants["sigma"] == 3.0
    assert spec("erasing").constants["value"] == 0.0
    log_ratio = spec("erasing").params[3]
    assert math.isclose(log_ratio.low, math.log(0.3)) and math.isclose(log_ratio.high, math.log(3.3))
    integers = {(s.name, p.name) for s in AUGMENTATIONS.values() for p in s.params if p.integer}
    assert integers == {
        ("erasing", "center_y"), ("erasing", "center_x"), ("rolling", "shift_y"), ("rolling", "shift_x"),
        ("elliptic_local_blur", "a"), ("elliptic_local_blur", "b"),
        ("elliptic_local_blur", "shift_x"), ("elliptic_local_blur", "shift_y"),
    }  # fmt: skip
    with pytest.raises(AttributeError):
        spec("hue").params[0].low = 0.0  # frozen
    assert isinstance(spec("hue").params[0], ParamSpec)


@pytest.mark.parametrize("names", [SET1, SET2], ids=["set1", "set2"])
@pytest.mark.parametrize("mode", ["clean", "paper"])
def test_mixed_orders_equal_each_sample_composed_alone(small_photos, names, mode):
    gen = torch.Generator().manual_seed(3)
    batch, n = 18, len(names)  # more than one CPU chunk of 16 rows
    x = small_photos.repeat(6, 1, 1, 1)
    params = random_params(names, batch, gen)
    order = torch.stack([torch.randperm(n, generator=gen) for _ in range(batch)])
    on = {name: torch.rand(batch, generator=gen) < 0.7 for name in names}
    y = compose(x, names, params, order=order, on=on, mode=mode, validate=False)
    for b in range(batch):
        z = x[b : b + 1]
        for k in order[b].tolist():
            name = names[k]
            if on[name][b]:
                z = apply(
                    name,
                    z,
                    mode=mode,
                    validate=False,
                    **{p: v[b : b + 1] for p, v in params.get(name, {}).items()},
                )
        assert torch.equal(y[b : b + 1], z), f"sample {b}"


def test_default_order_is_list_order_and_switches_off_is_identity(small_photos):
    gen = torch.Generator().manual_seed(4)
    params = random_params(SET2, 3, gen)
    y = compose(small_photos, SET2, params, validate=False)
    z = small_photos
    for name in SET2:
        z = apply(name, z, validate=False, **params.get(name, {}))
    assert torch.equal(y, z)
    off = {name: torch.zeros(3, dtype=torch.bool) for name in SET2}
    assert torch.equal(compose(small_photos, SET2, params, on=off, validate=False), small_photos)


def test_compose_does_not_modify_its_input(small_photos):
    x = small_photos.clone()
    gen = torch.Generator().manual_seed(5)
    on = {"grayscale": torch.tensor([True, False, True])}
    compose(
        x, SET1, random_params(SET1, 3, gen), on=on, order=torch.tensor([[4, 3, 2, 1, 0]] * 3), validate=False
    )
    assert torch.equal(x, small_photos)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(
        KeyError, match=r"unknown augmentation 'rotate'.*Did you mean 'rotation'.*Valid names"
    ):
        spec("rotate")
    with pytest.raises(KeyError, match="unknown augmentation 'gausian_blur'.*'gaussian_blur'"):
        apply("gausian_blur", torch.rand(1, 3, 8, 8), sigma=torch.ones(1))


def test_out_of_bounds_value_names_parameter_bound_and_value():
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"brightness\.factor = 3\.0 is out of bounds \[0\.1, 2\.5\]"):
        apply("brightness", x, factor=torch.tensor([1.0, 3.0]))
    with pytest.raises(ValueError, match=r"rotation\.angle = nan is out of bounds \[-10, 10\]"):
        apply("rotation", x, angle=torch.tensor([float("nan"), 0.0]))
    # The identity value is accepted outside the bounds; validate=False skips the value checks.
    assert torch.equal(apply("gaussian_blur", x, sigma=torch.zeros(2)), x)
    apply("brightness", x, factor=torch.tensor([1.0, 3.0]), validate=False)


def test_bad_shapes_dtypes_and_keywords():
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"brightness\.factor must have shape \[B\] = \[2\], got \[3\]"):
        apply("brightness", x, factor=torch.ones(3))
    with pytest.raises(TypeError, match=r"brightness\.factor must be a tensor \[B\], got float"):
        apply("brightness", x, factor=1.0)
    with pytest.raises(
        TypeError, match=r"brightness\.factor must be a real float or integer tensor, got dtype torch\.bool"
    ):
        apply("brightness", x, factor=torch.ones(2, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"rolling\(\) is missing parameter\(s\) shift_x"):
        apply("rolling", x, shift_y=torch.zeros(2))
    with pytest.raises(
        TypeError, match=r"hflip\(\) got unexpected parameter\(s\) angle; it takes no parameters"
    ):
        apply("hflip", x, angle=torch.zeros(2))
    with pytest.raises(TypeError, match=r"x must be a floating-point tensor .* got dtype torch\.uint8"):
        apply("hflip", (x * 255).byte())
    with pytest.raises(ValueError, match=r"x must have shape \[B, 3, H, W\], got \[3, 16, 16\]"):
        apply("hflip", x[0])
    with pytest.raises(TypeError, match=r"on must have dtype torch\.bool, got torch\.int64"):
        apply("hflip", x, on=torch.ones(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"on must have shape \[B\] = \[2\], got \[1\]"):
        apply("hflip", x, on=torch.ones(1, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mode must be one of \('clean', 'paper'\), got 'legacy'"):
        apply("hflip", x, mode="legacy")


def test_compose_errors():
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"order\[1\] = \[0, 0\] is not a permutation of 0\.\.1"):
        compose(x, ["hflip", "grayscale"], {}, order=torch.tensor([[1, 0], [0, 0]]))
    with pytest.raises(ValueError, match=r"order must have shape \[B, n\] = \[2, 2\], got \[2, 3\]"):
        compose(x, ["hflip", "grayscale"], {}, order=torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match=r"order must have an integer dtype"):
        compose(x, ["hflip", "grayscale"], {}, order=torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"names must be distinct, got hflip more than once"):
        compose(x, ["hflip", "hflip"], {})
    with pytest.raises(ValueError, match=r"params has an entry for 'hue', which is not in names"):
        compose(x, ["hflip"], {"hue": {"factor": torch.zeros(2)}})
    with pytest.raises(ValueError, match=r"on has a switch for 'hue', which is not in names"):
        compose(x, ["hflip"], {}, on={"hue": torch.ones(2, dtype=torch.bool)})
    with pytest.raises(TypeError, match=r"rotation\(\) is missing parameter\(s\) angle"):
        compose(x, ["rotation"], {})

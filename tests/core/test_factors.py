"""Factors: decoding from the unit cube, groups and the errors of Problem."""

from __future__ import annotations

import math

import pytest
import torch

from augsens.core.factors import (
    Categorical,
    ImageFactor,
    Integer,
    Permutation,
    Problem,
    Switch,
    Uniform,
    lehmer_decode,
)

U = torch.linspace(0, 1 - 1e-12, 1001, dtype=torch.float64)


def test_uniform_integer_switch_categorical_decode():
    assert torch.allclose(Uniform("x", -2, 2).decode(U), -2 + 4 * U)
    ints = Integer("i", 3, 7).decode(U)
    assert set(ints.tolist()) == {3.0, 4.0, 5.0, 6.0} and Integer("i", 3, 7).bounds() == (3.0, 6.0)
    sw = Switch("s", p=0.25).decode(U)
    assert sw.dtype == torch.float64 and math.isclose(sw.mean().item(), 0.25, abs_tol=0.01)
    assert Switch("s", p=0.0).decode(U).sum() == 0 and Switch("s", p=1.0).decode(U).min() == 1
    cat = Categorical("c", 5).decode(U)
    assert torch.equal(torch.bincount(cat.long()), torch.tensor([201, 200, 200, 200, 200]))
    assert Uniform("x", 0, 1).decode(torch.tensor([0.5], dtype=torch.float32)).dtype == torch.float64


def test_lehmer_decode_enumerates_all_orders():
    orders = lehmer_decode(torch.arange(24), 4)
    assert orders[0].tolist() == [0, 1, 2, 3] and orders[-1].tolist() == [3, 2, 1, 0]
    assert len({tuple(o) for o in orders.tolist()}) == 24
    assert torch.equal(torch.sort(orders, dim=1).values, torch.arange(4).expand(24, 4))
    perm = Permutation("order", 4)
    idx = perm.decode(U)
    assert idx.max() == 23 and idx.min() == 0 and perm.orders(idx).shape == (1001, 4)


def test_image_factor_picks_class_then_image():
    f = ImageFactor("image", [1, 3, 2])  # images 0 | 1 2 3 | 4 5
    assert f.n_images == 6 and f.bounds() == (0.0, 5.0)
    u = torch.tensor([0.0, 0.3, 1 / 3 + 1e-9, 0.5, 0.66, 0.7, 0.99], dtype=torch.float64)
    assert f.classes(u).tolist() == [0, 0, 1, 1, 1, 2, 2]
    assert f.decode(u).tolist() == [0, 0, 1, 2, 3, 4, 5]
    counts = torch.bincount(f.classes(U).long())
    assert (counts - 1001 / 3).abs().max() <= 1  # each class 1/3 whatever its size


def test_problem_groups_and_decode():
    p = Problem([Uniform("a", 0, 1), Uniform("b", 0, 2), Integer("c", 0, 4)], groups={"ac": ["a", "c"]})
    assert p.group_names == ["ac", "b"] and p.group_members == [[0, 2], [1]]
    assert p.group_index.tolist() == [0, 1, 0] and (p.k, p.D) == (3, 2)
    values = p.decode(torch.full((2, 5, 3), 0.5, dtype=torch.float64))
    assert values.shape == (2, 5, 3) and values[0, 0].tolist() == [0.5, 1.0, 2.0]
    assert p.column("c") == 2 and p["b"].high == 2
    assert Problem([Uniform("x", 0, 1)]).group_names == ["x"]


def test_problem_errors():
    with pytest.raises(ValueError, match="at least one parameter, got an empty list"):
        Problem([])
    with pytest.raises(ValueError, match=r"duplicate parameter names \['a'\]"):
        Problem([Uniform("a", 0, 1), Uniform("a", 0, 1)])
    with pytest.raises(KeyError, match=r"unknown parameter 'bb'.*Did you mean \['b'\]"):
        Problem([Uniform("a", 0, 1), Uniform("b", 0, 1)], groups={"g": ["a", "bb"]})
    with pytest.raises(ValueError, match="'a' is in two groups"):
        Problem([Uniform("a", 0, 1), Uniform("b", 0, 1)], groups={"g": ["a"], "h": ["a", "b"]})
    with pytest.raises(ValueError, match="group 'g' is empty"):
        Problem([Uniform("a", 0, 1)], groups={"g": []})
    with pytest.raises(ValueError, match="ungrouped but a group has the same name"):
        Problem([Uniform("a", 0, 1), Uniform("b", 0, 1)], groups={"b": ["a"]})
    with pytest.raises(TypeError, match="Parameter objects"):
        Problem(["a"])
    p = Problem([Uniform("a", 0, 1)])
    with pytest.raises(ValueError, match="have 2 columns, the problem has k=1"):
        p.decode(torch.zeros(3, 2))
    with pytest.raises(KeyError, match="no parameter 'z'"):
        p["z"]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Uniform("x", 1, 1), "finite low < high"),
        (lambda: Uniform("x", 0, math.inf), "finite low < high"),
        (lambda: Integer("i", 0.5, 3), "integers low < high"),
        (lambda: Switch("s", p=1.5), r"lie in \[0, 1\]"),
        (lambda: Permutation("o", 19), r"integer in \[1, 18\]"),
        (lambda: Categorical("c", 0), "positive integer"),
        (lambda: ImageFactor("im", [2, 0]), "at least one image"),
        (lambda: Uniform("", 0, 1), "non-empty string"),
    ],
)
def test_parameter_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()

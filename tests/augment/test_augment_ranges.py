"""Ranges and distributions for every parameter: scipy.stats factors in the core, [augment] in studies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch
from typer.testing import CliRunner

import augsens as ag
from augsens.config import ConfigError, load_config
from augsens.engine.factors import AugmentationFactors
from augsens.engine.quick import _config
from augsens.errors import UserInputError
from augsens.plot.gallery import gallery_values

ATOL = 0.01  # the analytic-index tolerance of tests/core/estimate at n = 2^14
TAIL = 1e-9


def _linear_case():
    """y = a . x, independent normal, normal and binomial x: S_i = a_i^2 var_i / sum_j a_j^2 var_j."""
    a = np.array([1.0, -0.5, 0.8])
    dists = [scipy.stats.norm(0.0, 1.0), scipy.stats.norm(1.0, 2.0), scipy.stats.binom(10, 0.3)]
    problem = ag.Problem(
        [
            ag.ScipyDistribution("x1", dists[0], tail=TAIL),
            ag.ScipyDistribution("x2", dists[1], tail=TAIL),
            ag.ScipyDistribution("x3", dists[2]),
        ]
    )
    # variances of the distributions as drawn: the normals truncated at their TAIL quantiles
    z = scipy.stats.norm.ppf(1 - TAIL)
    var = np.array(
        [
            scipy.stats.truncnorm(-z, z, loc=0.0, scale=1.0).var(),
            scipy.stats.truncnorm(-z, z, loc=1.0, scale=2.0).var(),
            dists[2].var(),  # 10 * 0.3 * 0.7: a finite support, not truncated
        ]
    )
    np.testing.assert_allclose(var, [1.0, 4.0, 2.1], rtol=1e-6)  # truncation at 1e-9 changes nothing visible
    share = a**2 * var / np.sum(a**2 * var)

    def f(values: torch.Tensor) -> torch.Tensor:
        return (values * torch.as_tensor(a, dtype=values.dtype, device=values.device)).sum(
            dim=1, keepdim=True
        )

    return problem, f, share


def test_linear_model_with_normal_and_discrete_inputs_sobol():
    problem, f, share = _linear_case()
    ds = ag.sobol(f, problem, n=2**14, seed=0)
    np.testing.assert_allclose(ds["S1"].values[:, 0], share, atol=ATOL)
    np.testing.assert_allclose(ds["ST"].values[:, 0], share, atol=ATOL)  # additive: no interactions


def test_linear_model_with_normal_and_discrete_inputs_shapley():
    problem, f, share = _linear_case()
    ds = ag.shapley(f, problem, n=2**13, seed=1)
    np.testing.assert_allclose(ds["shapley"].values[:, 0], share, atol=ATOL)


def test_inverse_cdf_draws_follow_the_truncated_distribution():
    pois = ag.ScipyDistribution("k", scipy.stats.poisson(3.0), high=6)
    u = (torch.arange(100_000, dtype=torch.float64) + 0.5) / 100_000
    k = pois.decode(u).numpy()
    assert k.min() == 0 and k.max() == 6 and np.all(k == np.round(k))
    pmf = scipy.stats.poisson(3.0).pmf(np.arange(7))
    np.testing.assert_allclose(np.bincount(k.astype(int), minlength=7) / k.size, pmf / pmf.sum(), atol=1e-4)
    lo = ag.ScipyDistribution("x", scipy.stats.norm(0, 1), low=-1.0, high=2.0)
    x = lo.decode(u).numpy()
    assert -1.0 <= x.min() and x.max() <= 2.0
    expected = scipy.stats.truncnorm(-1.0, 2.0).mean()
    assert abs(x.mean() - expected) < 1e-3


def test_distribution_errors_name_the_fix():
    with pytest.raises(
        ValueError, match=r"norm has the infinite support \[-inf, inf\]; truncate it with low=/high="
    ):
        ag.ScipyDistribution("x", scipy.stats.norm(0, 1))
    with pytest.raises(ValueError, match=r"give tail or low/high, not both"):
        ag.ScipyDistribution("x", scipy.stats.norm(0, 1), tail=0.01, low=0.0)
    with pytest.raises(ValueError, match=r"expected a scipy.stats distribution"):
        ag.ScipyDistribution("x", (0, 1))
    with pytest.raises(ValueError, match=r"leaves no interval"):
        ag.ScipyDistribution("x", scipy.stats.uniform(0, 1), low=2.0, high=3.0)


TOML_RANGES = """
[model]
name = "m"
[augment.hue]
low = -0.1
high = 0.1
[augment.erasing.scale]
low = 0.05
high = 0.2
[augment.rotation]
distribution = "norm"
loc = 0.0
scale = 3.0
tail = 1e-6
"""


def test_toml_and_python_ranges_give_one_config(tmp_path: Path):
    (tmp_path / "c.toml").write_text(TOML_RANGES)
    from_toml = load_config(tmp_path / "c.toml")
    from_python = _config(
        "m",
        "bundled",
        {},
        {
            "hue": (-0.1, 0.1),
            "erasing.scale": (0.05, 0.2),
            "rotation": {"distribution": "norm", "loc": 0.0, "scale": 3.0, "tail": 1e-6},
        },
    )
    assert from_toml == from_python
    frozen = _config("m", "bundled", {}, {"rotation": scipy.stats.norm(0.0, 3.0)})
    assert frozen.augment == {"rotation": {"distribution": "norm", "loc": 0.0, "scale": 3.0}}
    # a saved config validates again as written
    again = type(from_toml).from_dict(json.loads(from_toml.to_json()))
    assert again == from_toml


def test_ranges_reach_the_factors_and_their_draws():
    cfg = _config(
        "m",
        "bundled",
        {},
        {"hue": (-0.1, 0.1), "erasing.scale": (0.05, 0.2), "rotation": scipy.stats.norm(0, 3)},
    )
    with pytest.raises(Exception, match=r"norm has the infinite support"):
        AugmentationFactors(["hue", "erasing", "rotation"], [[2]], ranges=cfg.augment)
    cfg = _config(
        "m",
        "bundled",
        {},
        {
            "hue": (-0.1, 0.1),
            "erasing.scale": (0.05, 0.2),
            "rotation": {"distribution": "norm", "scale": 3.0, "tail": 1e-3},
        },
    )
    factors = AugmentationFactors(["hue", "erasing", "rotation", "hflip"], [[2]], ranges=cfg.augment)
    p = factors.problem
    assert p["hue.factor"].bounds() == (-0.1, 0.1) and p["erasing.scale"].bounds() == (0.05, 0.2)
    z = scipy.stats.norm.ppf(1 - 1e-3) * 3.0
    np.testing.assert_allclose(p["rotation.angle"].bounds(), (-z, z))
    assert p["erasing.center_x"].bounds() == (44.0, 180.0)  # not named: the paper's range
    rows = factors.decode(torch.rand(4096, p.k, generator=torch.Generator().manual_seed(0)))
    hue = rows.params["hue"]["factor"]
    assert hue.min() >= -0.1 and hue.max() <= 0.1 and hue.max() - hue.min() > 0.19
    angle = rows.params["rotation"]["angle"].double()
    assert abs(float(angle.std()) - 3.0) < 0.1  # normal, sd 3 (barely truncated)
    record = {r["parameter"]: r for r in factors.describe()}
    assert record["rotation.angle"]["distribution"]["distribution"] == "norm"
    assert record["hue.factor"]["low"] == -0.1


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"hue": (0.1, -0.1)}, r"hue.factor: parameter 'factor': need finite low < high"),
        ({"erasing": (0.1, 0.2)}, r"\[augment.erasing\] needs a parameter: erasing takes center_y, center_x"),
        ({"hue.shift": (0.0, 0.1)}, r"range for unknown parameter\(s\) hue.shift; hue takes factor"),
        ({"brightness": (0.5, 1.5)}, r"'brightness' is not among the study's augmentations \(hue, erasing\)"),
        ({"hue": {"distribution": "normal", "scale": 0.1}}, r"'normal' is not a scipy.stats distribution"),
        ({"hue": {"distribution": "norm", "scale": 0.1}}, r"infinite support .* truncate it"),
        ({"hue": {"low": -0.1, "width": 0.2}}, r"unknown key\(s\) width; a uniform range takes low and high"),
    ],
)
def test_range_mistakes_are_one_message(table, message):
    with pytest.raises(UserInputError, match=message):  # from the config's check or the factors'
        AugmentationFactors(["hue", "erasing"], [[2]], ranges=_config("m", "bundled", {}, table).augment)


def test_bad_range_tables_in_toml(tmp_path: Path):
    (tmp_path / "c.toml").write_text("[augment]\nhue = 0.1\n")
    with pytest.raises(ConfigError, match=r"\[augment.hue\] must be a table \(low = ..., high = ...\)"):
        load_config(tmp_path / "c.toml")
    (tmp_path / "c.toml").write_text('[augment.hue]\nlow = "a"\n')
    with pytest.raises(ConfigError, match=r"\[augment.hue\] low must be a number, got 'a'"):
        load_config(tmp_path / "c.toml")


def test_narrowed_range_narrows_the_study_record_the_report_and_the_gallery(tmp_path: Path):
    tree = ag.study(
        "augsens.testing:tiny_cnn",
        torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8),
        augmentations=["hue", "hflip"],
        ranges={"hue": (-0.1, 0.1)},
        n=8,
        replicates=2,
        checkpoints=["fc"],
        device="cpu",
        progress=False,
        out=tmp_path / "r",
    )
    params = {r["parameter"]: r for r in json.loads(tree.attrs["parameters"])}
    assert (params["hue.factor"]["low"], params["hue.factor"]["high"]) == (-0.1, 0.1)
    specs = {a["name"]: a for a in json.loads(tree.attrs["augmentation_specs"])}
    assert specs["hue"]["parameters"][0]["low"] == -0.1 and specs["hue"]["source"].startswith("augsens")
    assert json.loads(tree.attrs["config"])["augment"] == {"hue": {"low": -0.1, "high": 0.1}}
    from augsens.plot.report import write_report

    page = write_report(tmp_path / "r").read_text()
    assert "Augmentations and ranges" in page and "uniform [-0.1, 0.1]" in page

    paper = [v["factor"] for v in gallery_values(["hue"])["hue"]]
    narrow = [v["factor"] for v in gallery_values(["hue"], ranges={"hue": (-0.1, 0.1)})["hue"]]
    assert (min(paper), max(paper)) == (-0.5, 0.5) and (min(narrow), max(narrow)) == (-0.1, 0.1)


def test_gallery_command_draws_a_config_s_ranges(tmp_path: Path):
    import skimage.data
    from PIL import Image

    from augsens.cli import app

    Image.fromarray(skimage.data.astronaut()).save(tmp_path / "a.png")
    (tmp_path / "c.toml").write_text(
        '[study]\naugmentations = ["hue"]\n[augment.hue]\nlow = -0.1\nhigh = 0.1\n'
    )
    res = CliRunner().invoke(
        app,
        [
            "gallery",
            str(tmp_path / "a.png"),
            "--config",
            str(tmp_path / "c.toml"),
            "--out",
            str(tmp_path / "g.png"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "g.png").stat().st_size > 0

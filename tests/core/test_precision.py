"""Precision targets: honest half-widths at the defaults, runs that stop by themselves, and their budgets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from augsens.config import ConfigError, StudyConfig
from augsens.core.api import shapley, sobol
from augsens.core.factors import Problem, Uniform
from augsens.core.precision import PRECISION_RULE, precision_of, stop_reason
from augsens.data import ImageCache
from augsens.engine.study import Study
from augsens.results import open_results


def _ishigami_truth() -> dict[str, np.ndarray]:
    a, b, pi = 7.0, 0.1, math.pi
    v1, v2, v13 = 0.5 * (1 + b * pi**4 / 5) ** 2, a**2 / 8, b**2 * pi**8 * (1 / 18 - 1 / 50)
    v = v1 + v2 + v13
    return {
        "S1": np.array([v1, v2, 0.0]) / v,
        "ST": np.array([v1 + v13, v2, v13]) / v,
        "shapley": np.array([v1 + v13 / 2, v2, v13 / 2]) / v,
    }


@pytest.fixture(scope="module")
def ishigami():
    problem = Problem([Uniform(f"x{i}", -math.pi, math.pi) for i in (1, 2, 3)])

    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x[:, 0]) + 7 * torch.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * torch.sin(x[:, 0])

    return problem, f, _ishigami_truth()


@pytest.fixture(scope="module")
def linear():
    # y = x1 + 2 x2 + 3 x3 on U(0, 1)^3: S1 = ST = Sh = (1, 4, 9) / 14
    problem = Problem([Uniform(f"x{i}", 0, 1) for i in (1, 2, 3)])
    weights = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    truth = np.array([1.0, 4.0, 9.0]) / 14
    return problem, (lambda x: x @ weights), {"S1": truth, "ST": truth, "shapley": truth}


@pytest.mark.slow
def test_half_widths_cover_at_the_default_design(ishigami):
    """100 seeds at the default design and replicates with the study's default n = 1024 (4 replicates of
    256 points): the 95 % half-widths cover the analytic indices between 90 and 99 % of the time."""
    problem, f, truth = ishigami
    covered: dict[str, list[np.ndarray]] = {"S1": [], "ST": [], "shapley": []}
    for seed in range(100):
        ds = sobol(f, problem, n=1024, seed=seed)
        for name in ("S1", "ST"):
            covered[name].append(np.abs(ds[name].values - truth[name]) <= ds[f"{name}_conf"].values)
        ds = shapley(f, problem, n=1024, seed=seed)
        covered["shapley"].append(
            np.abs(ds["shapley"].values - truth["shapley"]) <= ds["shapley_conf"].values
        )
    rates = {name: float(np.mean(c)) for name, c in covered.items()}
    assert all(0.90 <= r <= 0.99 for r in rates.values()), rates


@pytest.mark.parametrize("estimator", ["sobol", "shapley"])
@pytest.mark.parametrize("function", ["ishigami", "linear"])
def test_a_stopped_run_is_within_its_target(request, estimator, function):
    problem, f, truth = request.getfixturevalue(function)
    target = 0.02
    run = sobol if estimator == "sobol" else shapley
    ds = run(f, problem, n=1024, precision=target, seed=1)
    assert ds.attrs["stop_reason"] == "precision reached"
    assert ds.attrs["precision"] <= target and ds.attrs["precision_target"] == target
    assert ds.attrs["precision_rule"] == PRECISION_RULE
    assert ds.attrs["n"] in (1024, 2048, 4096, 8192, 16384) and ds.attrs["max_n"] == 16 * 1024
    for name in ("S1", "ST") if estimator == "sobol" else ("shapley", "ST"):
        err = np.abs(ds[name].values - truth[name])
        assert err.max() <= target, (name, err)
        # the recorded precision bounds every half-width it summarises here (3 factors, 95th percentile)
        assert ds[f"{name}_conf"].values.max() <= ds.attrs["precision"] + 1e-12


def test_budget_and_time_limit_end_a_run(ishigami):
    problem, f, _ = ishigami
    ds = sobol(f, problem, n=1024, precision=1e-6, max_n=2048, seed=0)
    assert ds.attrs["stop_reason"] == "max_n reached" and ds.attrs["n"] == 2048
    assert ds.attrs["precision"] > 1e-6
    ds = sobol(f, problem, n=1024, precision=1e-6, time_limit=1e-9, seed=0)
    assert ds.attrs["stop_reason"] == "time limit" and ds.attrs["n"] == 1024
    fixed = sobol(f, problem, n=1024, seed=0)
    assert fixed.attrs["stop_reason"] == "n reached" and fixed.attrs["precision_target"] == 0.0
    # the first round of a precision run is the fixed-size run with the same seed
    np.testing.assert_array_equal(ds["S1"].values, fixed["S1"].values)
    assert fixed.attrs["precision"] == pytest.approx(precision_of([fixed]))


def test_precision_arguments_are_checked(ishigami):
    problem, f, _ = ishigami
    with pytest.raises(ValueError, match=r"precision must be a half-width in \(0, 1\), e.g. 0.02, got 2"):
        sobol(f, problem, n=1024, precision=2)
    with pytest.raises(ValueError, match=r"max_n=3000 must be n=1024 times a power of 2"):
        sobol(f, problem, n=1024, precision=0.02, max_n=3000)
    with pytest.raises(ValueError, match="needs replicates >= 2"):
        shapley(f, problem, n=1024, precision=0.02, replicates=1)
    with pytest.raises(ValueError, match="pass precision=... as well"):
        sobol(f, problem, n=1024, max_n=4096)


def test_stop_reason_rule():
    assert stop_reason(0.01, 0.02, done=8, total=64, elapsed=1.0, time_limit=0) == "precision reached"
    assert stop_reason(math.nan, 0.02, done=8, total=64, elapsed=1.0, time_limit=0) is None
    assert stop_reason(0.03, 0.02, done=64, total=64, elapsed=1.0, time_limit=0) == "max_n reached"
    assert stop_reason(0.03, 0.0, done=64, total=64, elapsed=1.0, time_limit=0) == "n reached"
    # the next round doubles the samples: 10 s done -> predicted end at 20 s
    assert stop_reason(0.03, 0.02, done=8, total=64, elapsed=10.0, time_limit=19.0) == "time limit"
    assert stop_reason(0.03, 0.02, done=8, total=64, elapsed=10.0, time_limit=21.0) is None


@pytest.mark.parametrize(
    ("study", "message"),
    [
        ({"precision": 0.02, "kind": "moments"}, "precision needs kind = 'sobol' or 'shapley'"),
        ({"precision": 0.02, "replicates": 1}, r"precision needs replicates >= 2"),
        ({"precision": 0.02, "max_n": 3000}, r"max_n = 3000 must be n = 1024 times a power of 2"),
        ({"precision": 1.5}, r"precision = 1.5 must be a half-width in \(0, 1\)"),
        ({"max_n": 4096}, "bound a run with a precision target"),
        ({"precision": 0.02, "time_limit": -1.0}, "time_limit must be >= 0"),
        ({"precision": "high"}, "precision must be a number"),
    ],
)
def test_precision_config_errors(study, message):
    with pytest.raises(ConfigError, match=message):
        StudyConfig.from_dict({"study": study})


@pytest.fixture(scope="module")
def small_images() -> ImageCache:
    gen = torch.Generator().manual_seed(0)
    pixels = (torch.rand(2, 3, 32, 32, generator=gen) * 255).to(torch.uint8)
    return ImageCache(pixels, torch.zeros(2), ["noise"], ["noise0", "noise1"])


@pytest.mark.filterwarnings("ignore::augsens.core.design.QMCSmallSampleWarning")  # tiny nets on purpose
def test_study_stops_by_itself_and_resumes_across_rounds(tmp_path, capsys, small_images):
    """A tiny-network study with a precision target adds rounds, stops by itself, and records why; a run
    interrupted in its third round and resumed gives the same maps."""
    cfg = StudyConfig.from_dict(
        {
            "model": {"name": "augsens.testing:tiny_cnn", "checkpoints": ["pool", "fc"]},
            "study": {"kind": "sobol", "augmentations": ["brightness", "hflip"], "n": 32, "replicates": 4,
                      "seed": 0, "precision": 0.5, "max_n": 512},
            "run": {"device": "cpu", "batch_size": 64},
        }
    )  # fmt: skip
    tree = Study(cfg, images=small_images, progress=True).run(tmp_path / "whole")
    attrs = tree.attrs
    assert attrs["stop_reason"] == "precision reached", attrs["precision"]
    assert attrs["precision"] <= 0.5 and attrs["precision_target"] == 0.5
    assert 32 < attrs["base_samples_done"] < 512 and attrs["max_n"] == 512 and attrs["n"] == 32
    assert attrs["precision_rule"] == PRECISION_RULE
    assert attrs["precision"] == pytest.approx(precision_of(tree[c].to_dataset() for c in ("pool", "fc")))
    assert "precision" in capsys.readouterr().out  # the progress bar shows it
    reopened = open_results(tmp_path / "whole")
    assert reopened.attrs["stop_reason"] == "precision reached"

    part = Study(cfg, images=small_images, progress=False)
    assert part.run(tmp_path / "part", stop_after=80) is None  # inside the third round (64..128)
    resumed = Study(cfg, images=small_images, progress=False).run(tmp_path / "part", resume=True)
    assert resumed.attrs["base_samples_done"] == attrs["base_samples_done"]
    for c in ("pool", "fc"):
        for v in ("S1", "ST", "ST_conf"):
            np.testing.assert_allclose(
                resumed[c].dataset[v].values,
                tree[c].dataset[v].values,
                rtol=1e-10,
                atol=1e-12,
                equal_nan=True,
            )

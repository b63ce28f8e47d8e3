"""The one loop and its hooks (core.loop.run), and the one budget (core.budget.Budget)."""

from __future__ import annotations

import math

import pytest
import torch

from augsens.config import ConfigError, StudyConfig
from augsens.core import loop
from augsens.core.api import sobol
from augsens.core.budget import Budget, Spelling
from augsens.core.factors import Problem, Uniform
from augsens.core.methods import METHODS, Batch
from augsens.core.precision import precision_of


def _problem() -> Problem:
    return Problem([Uniform(f"x{i}", -math.pi, math.pi) for i in (1, 2, 3)])


def _ishigami(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x[:, 0]) + 7 * torch.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * torch.sin(x[:, 0])


class _Recorder(loop.Hooks):
    """Ishigami's outputs into one Sobol accumulator; every hook call recorded in order."""

    def __init__(self, method, stop_at: int | None = None) -> None:
        super().__init__()
        self.method, self.acc, self.stop_at = method, method.accumulator(), stop_at
        self.problem = method.problem
        self.events: list[tuple] = []

    def evaluate(self, batch: Batch) -> torch.Tensor:
        self.events.append(("evaluate", batch.start))
        return _ishigami(self.problem.decode(batch.rows))

    def add(self, outputs: torch.Tensor, batch: Batch) -> None:
        self.method.update(self.acc, outputs, batch)

    def before_batch(self, batch: Batch) -> bool:
        return self.stop_at is None or batch.start < self.stop_at

    def after_batch(self, batch: Batch, done: int) -> None:
        self.events.append(("after", done))

    def precision(self) -> float:
        return precision_of([self.acc])

    def round_end(self, done: int, precision: float, reason: str | None) -> None:
        self.events.append(("round_end", done, reason))


def _method(budget: Budget):
    return METHODS["sobol"](_problem(), budget, design="iid", seed=3)


def test_the_stop_rule_runs_at_every_round_end_and_nowhere_else():
    budget = Budget.of(64, replicates=4, precision=1e-9, max_n=256)  # a target no round meets
    method = _method(budget)
    hooks = _Recorder(method)
    out = loop.run(method, hooks, budget, batch_rows=32 * method.rows_per_sample)
    ends = [e for e in hooks.events if e[0] == "round_end"]
    assert [e[1] for e in ends] == method.round_ends == [64, 128, 256]
    assert [e[2] for e in ends] == [None, None, "max_n reached"]
    assert (out.done, out.stop_reason) == (256, "max_n reached")
    # each round end comes after the last batch of its round and before the first of the next
    order = [e[1] for e in hooks.events if e[0] in ("after", "round_end")]
    assert order == sorted(order)


def test_a_run_started_at_a_round_end_checks_before_the_next_batch():
    budget = Budget.of(64, replicates=4, precision=0.9, max_n=256)  # met at the first round end (0.46)
    method = _method(budget)
    first = _Recorder(method)
    loop.walk(method, first, 32 * method.rows_per_sample, 0, 64)  # the first round, no rule
    resumed = _Recorder(method)
    resumed.acc = first.acc
    out = loop.run(method, resumed, budget, batch_rows=32 * method.rows_per_sample, start=64)
    assert resumed.events == [("round_end", 64, "precision reached")]  # no batch evaluated
    assert out.stop_reason == "precision reached" and out.precision <= 0.9


def test_before_batch_ends_the_loop_where_it_says():
    budget = Budget.of(128, replicates=4)
    method = _method(budget)
    hooks = _Recorder(method, stop_at=64)
    out = loop.run(method, hooks, budget, batch_rows=16 * method.rows_per_sample)
    assert (out.done, out.stop_reason) == (64, None)
    assert max(e[1] for e in hooks.events if e[0] == "evaluate") == 48
    assert not [e for e in hooks.events if e[0] == "round_end"]


def test_the_function_api_records_the_budget_as_it_was_built():
    budget = Budget.of(64, replicates=4, precision=1e-9, max_n=128)
    ds = sobol(_ishigami, _problem(), n=64, replicates=4, precision=1e-9, max_n=128, design="iid")
    assert (ds.attrs["max_n"], ds.attrs["precision_target"]) == (budget.max_n, budget.precision)
    assert ds.attrs["stop_reason"] == "max_n reached"


def test_one_validator_speaks_keywords_and_config_keys():
    with pytest.raises(ValueError, match=r"max_n=3000 must be n=1024 times a power of 2") as kw:
        Budget.of(1024, replicates=4, precision=0.02, max_n=3000)
    assert not isinstance(kw.value, ConfigError)
    spelling = Spelling(keywords=False, where="study.toml: [study] ", error=ConfigError)
    with pytest.raises(ConfigError, match=r"^study.toml: \[study\] max_n = 3000 must be n = 1024 times"):
        Budget.of(1024, replicates=4, precision=0.02, max_n=3000, spelling=spelling)
    cfg = StudyConfig.from_dict(
        {
            "model": {"name": "augsens.testing:tiny_cnn"},
            "study": {"kind": "sobol", "augmentations": ["hue"], "n": 64, "precision": 0.02},
        }
    )
    # the config's unset values (0) are the keywords' None: 16 n by default, n the first round
    assert cfg.budget() == Budget(64, 1024, precision=0.02, replicates=4)
    assert cfg.budget() == Budget.of(64, replicates=4, precision=0.02)

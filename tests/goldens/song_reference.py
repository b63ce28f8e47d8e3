"""Write ``song_reference.npz``: outputs of the Song-type Shapley estimator that later code must reproduce.

The file pins the results (fixed seeds) of the double loop on the Ishigami function and through the study
engine, whole and merged from three shards, as the estimator gave them before it was driven through
:mod:`augsens.core.methods` (commit fe31c81, with ``augsens.core.song``).  ``tests/core/test_methods.py`` and
``tests/engine/test_distributed.py`` check the code of today against it:

* the analytic case is float64 from end to end and is compared to 1e-12;
* the engine case runs ``tiny_cnn`` in float32, whose kernels round differently on different CPUs, and is
  compared within the bound of :mod:`goldens.tolerance` for float32 kernels of total fan-in
  :data:`STUDY_FAN_IN` (a few 1e-5 of each variable's scale; an algorithmic change moves it by far more).

Regenerate it only to pin a deliberate change of results, from the repository root:
``python tests/goldens/song_reference.py``; say in the commit which change of results it pins.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from augsens.config import StudyConfig
from augsens.core.design import SongShapleyDesign
from augsens.core.estimate import SongShapleyAccumulator
from augsens.core.factors import Problem, Uniform
from augsens.engine.study import Study

HERE = Path(__file__).parent

#: the analytic case: Ishigami outputs plus a copy with two non-finite rows
ANALYTIC = {"permutations": 5, "outer": 4, "inner": 3, "seed": 11, "batch": 7}

#: the engine case: a tiny network, 3 permutations of D = 4 players, 3 shards of one permutation each
STUDY = {
    "model": {"name": "augsens.testing:tiny_cnn", "checkpoints": ["pool", "fc"]},
    "study": {
        "kind": "shapley-song",
        "augmentations": ["hflip", "grayscale"],
        "song_permutations": 3,
        "song_outer": 2,
        "song_inner": 2,
        "seed": 3,
    },
    "run": {"device": "cpu", "batch_size": 16, "state_dtype": "float64"},
}
SHARDS = [(0, 4), (4, 8), (8, 12)]

#: longest chain of float32 sums behind an engine-case value: grayscale (3 channels), the 8 x 8 x 3
#: convolution, the 7 x 7 average pool and the 64-input linear layer of ``augsens.testing.tiny_cnn``
STUDY_FAN_IN = 3 + 8 * 8 * 3 + 7 * 7 + 64


def ishigami(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x[:, 0]) + 7 * torch.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * torch.sin(x[:, 0])


def analytic_outputs(problem: Problem, unit: torch.Tensor) -> torch.Tensor:
    """``[blocks, rows, 2]``: Ishigami and a copy with a NaN and an inf row (blocks 2 and 9)."""
    y = ishigami(problem.decode(unit.reshape(-1, problem.k))).reshape(unit.shape[0], unit.shape[1])
    return torch.stack([y, y], dim=-1)


def spoil(y: torch.Tensor, start: int) -> torch.Tensor:
    """Non-finite rows at global blocks 2 and 9, element 1 only."""
    y = y.clone()
    for block, value in ((2, torch.nan), (9, torch.inf)):
        if start <= block < start + y.shape[0]:
            y[block - start, 1, 1] = value
    return y


def problem() -> Problem:
    return Problem([Uniform(f"x{i}", -math.pi, math.pi) for i in (1, 2, 3)])


def main() -> None:
    out: dict[str, np.ndarray] = {}
    p = problem()
    a = ANALYTIC
    design = SongShapleyDesign(p, a["permutations"], a["outer"], a["inner"], seed=a["seed"])
    acc = SongShapleyAccumulator(p.D, a["outer"], a["inner"])
    for start in range(0, design.n, a["batch"]):
        count = min(a["batch"], design.n - start)
        y = spoil(analytic_outputs(p, design.unit_rows(start, count)), start)
        acc.update(y, *design.blocks(start, count))
    ds = acc.finalize(p.group_names, dims=["unit"])
    for v in ("shapley", "shapley_raw", "nonfinite"):
        out[f"analytic/{v}"] = ds[v].values
    out["analytic/aggregate"] = acc.aggregate(torch.tensor([0, 0]), 1)["shapley"].values

    cfg = StudyConfig.from_dict(STUDY)
    study = Study(cfg, progress=False)
    whole = study.new_state()
    study.accumulate(whole, 0, study.plan.n)
    shards = []
    for lo, hi in SHARDS:
        state = study.new_state()
        study.accumulate(state, lo, hi)
        shards.append(study.import_state(study.export_state(state)))
    for label, state in (("whole", whole), ("sharded", study.merge_states(shards))):
        tree = study.finalize(state)
        for c in STUDY["model"]["checkpoints"]:
            node = tree[c].dataset
            for v in sorted(node.data_vars):
                out[f"{label}/{c}/{v}"] = node[v].values
    np.savez_compressed(HERE / "song_reference.npz", **out)


if __name__ == "__main__":
    main()

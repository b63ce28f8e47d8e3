"""Design study: accuracy of S1, ST and Shapley effects per design, at equal numbers of evaluations.

For every test function with analytic indices, every candidate design and every number of points per
replicate ``p``, the indices are estimated over ``--seeds`` independent randomisations with ``R``
replicates (``n = R p`` base samples; Sobol' rows ``n (D + 2)``, exact Shapley rows ``n 2^D``, the same
for every design) by augsens' own accumulators, and compared with the analytic values.

Test functions (``x`` uniform):

* ``ishigami`` – ``sin x1 + 7 sin² x2 + 0.1 x3⁴ sin x1`` on ``[-π, π]³`` (Ishigami & Homma 1990);
* ``gfunc`` – Sobol' g-function ``Π (|4 x_j - 2| + a_j) / (1 + a_j)``, ``a = (0, 0.5, 3, 9, 99, 99)``,
  on ``[0, 1]⁶``;
* ``interaction`` – ``x1 + 2 x2 x3 + 3 x4 x5 x6 + 2 x1 x4`` on ``[-1, 1]⁶``: orthogonal terms of orders
  1..3, so first-order indices are exposed to every leak of an interaction;
* ``vector`` – ``y_k = a_k x1 + b_k x2 + c_k x1 x3`` on ``[-1, 1]³``, ``--outputs`` outputs with
  ``(a_k, b_k, c_k)`` standard normal (seed 0).

Candidate designs (all with ``R`` independent randomisations; ``A`` and ``B`` of a base sample are the
two halves of one ``2k``-dimensional point unless said otherwise):

* ``sobol-lms`` – scipy's Sobol' with linear matrix scramble + digital shift (the former default);
* ``sobol`` – augsens' default: nested uniform (Owen) scrambling (:func:`augsens.core.design.owen_scramble`),
  ``A_j`` and ``B_j`` on Sobol' dimensions ``j`` and ``2k - 1 - j`` (mirrored) for S1 and ST, on ``2j``
  and ``2j + 1`` (adjacent) for Shapley effects;
* ``owen-adjacent`` – Owen scrambling with ``A_j``, ``B_j`` on dimensions ``2j``, ``2j + 1`` (both);
* ``iid`` – i.i.d. uniform points;
* ``owen-halves`` – Owen scrambling with ``A`` on dimensions ``0..k-1`` and ``B`` on ``k..2k-1`` (the
  layout of ``sobol-lms``);
* ``owen-perm`` – Owen scrambling with a random assignment of Sobol' dimensions to the ``2k`` columns,
  drawn per replicate;
* ``owen-ab`` – ``A`` and ``B`` from two independently Owen-scrambled ``k``-dimensional Sobol' nets, ``B``
  in a random order (independent scrambles for ``A`` and ``B``; benchmark only);
* ``lhs`` – Latin hypercube in ``2k`` dimensions (scipy; benchmark only).

Columns: RMS error over seeds, factors and outputs; ``max``: the mean over seeds of the largest error
over factors and outputs; ``worst``: the largest over seeds too; ``cov``: the share of (seed, factor,
output) whose error is within the 95 % half-width (``*_conf``; S1, ST and Shapley together);
``S1max/iid``: ``max`` of S1 relative to i.i.d. at the same ``p``.

The default run (the default design against i.i.d., 50 seeds, ``R = 8``) takes several minutes on one
core, most of it for the vector model; ``--seeds``, ``--ppr``, ``--replicates``, ``--outputs``,
``--vector-max-ppr`` and ``--designs`` make it bigger or smaller.  The table in ``docs/statistics.md``
was made with ``--designs sobol iid sobol-lms owen-halves owen-adjacent owen-ab lhs --ppr 16 64 128 256
512 1024 4096`` (and ``--replicates 4`` for the rows with ``R = 4``).
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import qmc

from augsens.core.design import ShapleyDesign, SobolDesign, owen_scramble
from augsens.core.estimate import ShapleyAccumulator, SobolAccumulator
from augsens.core.factors import Problem, Uniform

DESIGNS = ("sobol-lms", "sobol", "iid", "owen-halves", "owen-adjacent", "owen-perm", "owen-ab", "lhs")


@dataclass
class TestFunction:
    name: str
    problem: Problem
    f: Callable[[torch.Tensor], torch.Tensor]  # [N, k] -> [N] or [N, O]
    S1: np.ndarray  # [D] or [D, O]
    ST: np.ndarray
    shapley: np.ndarray


def _anova(D: int, terms: dict[tuple[int, ...], np.ndarray]) -> tuple[np.ndarray, ...]:
    """S1, ST and Shapley effects from the variances of orthogonal ANOVA terms ``{subset: V_u}``."""
    total = sum(terms.values())
    s1 = np.stack([terms.get((j,), 0 * total) for j in range(D)]) / total
    st = np.stack([sum(v for u, v in terms.items() if j in u) for j in range(D)]) / total
    sh = np.stack([sum(v / len(u) for u, v in terms.items() if j in u) for j in range(D)]) / total
    return s1, st, sh


def ishigami() -> TestFunction:
    a, b, pi = 7.0, 0.1, math.pi
    # Ishigami & Homma (1990); the variance of x3's interaction with x1 is b² π⁸ (1/18 - 1/50)
    terms = {
        (0,): np.array(0.5 * (1 + b * pi**4 / 5) ** 2),
        (1,): np.array(a**2 / 8),
        (0, 2): np.array(b**2 * pi**8 * (1 / 18 - 1 / 50)),
    }
    problem = Problem([Uniform(f"x{i}", -pi, pi) for i in (1, 2, 3)])

    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x[:, 0]) + a * torch.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * torch.sin(x[:, 0])

    return TestFunction("ishigami", problem, f, *_anova(3, terms))


def gfunc() -> TestFunction:
    a = np.array([0.0, 0.5, 3.0, 9.0, 99.0, 99.0])
    v = 1 / (3 * (1 + a) ** 2)  # variance of each factor's term (its mean is 1)
    terms = {
        u: np.array(np.prod(v[list(u)])) for r in range(1, 7) for u in itertools.combinations(range(6), r)
    }
    problem = Problem([Uniform(f"x{i}", 0, 1) for i in range(1, 7)])
    at = torch.tensor(a)

    def f(x: torch.Tensor) -> torch.Tensor:
        return ((torch.abs(4 * x - 2) + at) / (1 + at)).prod(dim=1)

    return TestFunction("gfunc", problem, f, *_anova(6, terms))


def interaction() -> TestFunction:
    a, b, c, e = 1.0, 2.0, 3.0, 2.0
    # x ~ U(-1, 1): Var x = 1/3; products of distinct factors are orthogonal with variance (1/3)^order
    terms = {
        (0,): np.array(a**2 / 3),
        (1, 2): np.array(b**2 / 9),
        (3, 4, 5): np.array(c**2 / 27),
        (0, 3): np.array(e**2 / 9),
    }
    problem = Problem([Uniform(f"x{i}", -1, 1) for i in range(1, 7)])

    def f(x: torch.Tensor) -> torch.Tensor:
        return a * x[:, 0] + b * x[:, 1] * x[:, 2] + c * x[:, 3] * x[:, 4] * x[:, 5] + e * x[:, 0] * x[:, 3]

    return TestFunction("interaction", problem, f, *_anova(6, terms))


def vector(outputs: int) -> TestFunction:
    gen = np.random.default_rng(0)
    a, b, c = gen.standard_normal((3, outputs))
    terms = {(0,): a**2 / 3, (1,): b**2 / 3, (0, 2): c**2 / 9}
    problem = Problem([Uniform(f"x{i}", -1, 1) for i in (1, 2, 3)])
    coef = torch.from_numpy(np.stack([a, b, c]))  # [3, outputs]

    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x[:, 0], x[:, 1], x[:, 0] * x[:, 2]], dim=1) @ coef

    return TestFunction("vector", problem, f, *_anova(3, terms))


def base_points(
    design: str, k: int, ppr: int, replicates: int, seed: int, cls: type = SobolDesign
) -> np.ndarray:
    """Base points ``[replicates, ppr, 2k]`` (``A`` = first k columns, ``B`` = last k) of a design
    (``cls``: the augsens design class whose layout ``"sobol"`` takes)."""
    n = replicates * ppr
    if design in ("sobol-lms", "sobol", "iid", "owen-halves", "owen-adjacent", "owen-perm"):
        problem = Problem([Uniform(f"u{i}", 0, 1) for i in range(k)])
        method = "sobol" if design.startswith("owen") else design
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # small-sample warnings are what is measured here
            use = SobolDesign if design.startswith("owen") else cls
            d = use(problem, n, seed=seed, method=method, replicates=replicates)  # type: ignore[arg-type]
        a, b = d.base(0, n)
        pts = torch.cat([a, b], dim=1).numpy().reshape(replicates, ppr, 2 * k)
        if design.startswith("owen"):
            # back to Sobol' dimension order (undo SobolDesign's mirrored B), then the candidate's layout
            raw = np.concatenate([pts[..., :k], pts[..., k:][..., ::-1]], axis=-1)
            if design == "owen-halves":  # A_j, B_j = dims j, k + j
                pts = raw
            elif design == "owen-adjacent":  # A_j, B_j = dims 2j, 2j + 1
                pts = raw[..., [2 * j for j in range(k)] + [2 * j + 1 for j in range(k)]]
            elif design == "owen-perm":  # a random assignment of dimensions to columns, per replicate
                rng = np.random.default_rng([seed, DESIGNS.index(design)])
                pts = np.stack([p[:, rng.permutation(2 * k)] for p in raw])
        return pts
    rng = np.random.default_rng([seed, DESIGNS.index(design)])
    out = np.empty((replicates, ppr, 2 * k))
    for r in range(replicates):
        if design == "lhs":
            out[r] = qmc.LatinHypercube(2 * k, rng=rng).random(ppr)
        elif design == "owen-ab":
            digits = qmc.Sobol(k, scramble=False, bits=32).random(ppr) * 2.0**32
            for half in (0, 1):
                keys = rng.integers(0, 2**63, size=(k, 33), dtype=np.uint64)
                out[r, :, half * k : (half + 1) * k] = owen_scramble(digits.astype(np.uint64), keys)
            out[r, :, k:] = out[r, rng.permutation(ppr), k:]
        else:
            raise ValueError(f"unknown design {design!r}; choose from {DESIGNS}")
    return out


def estimate(
    tf: TestFunction, design: str, ppr: int, replicates: int, seed: int, batch_rows: int
) -> dict[str, np.ndarray]:
    """S1, ST (Sobol' design) and Shapley effects (exact design) with half-widths, for one seed."""
    problem = tf.problem
    k, D = problem.k, problem.D
    out: dict[str, np.ndarray] = {}
    for design_cls, acc in (
        (SobolDesign, SobolAccumulator(D, replicates=replicates)),
        (ShapleyDesign, ShapleyAccumulator(D, replicates=replicates)),
    ):
        base = base_points(design, k, ppr, replicates, seed, design_cls)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mask = design_cls(problem, 1, method="iid")._from_a(0, 1)  # [rows, k]: column from A?
        rows = mask.shape[0]
        step = max(1, batch_rows // rows)
        for r in range(replicates):
            for lo in range(0, ppr, step):
                pts = torch.from_numpy(base[r, lo : lo + step])
                unit = torch.where(mask, pts[:, None, :k], pts[:, None, k:])
                y = tf.f(problem.decode(unit).reshape(-1, k))
                acc.update(y.reshape(unit.shape[0], rows, *y.shape[1:]), replicate=r)
        ds = acc.finalize()
        names = ("S1", "ST") if isinstance(acc, SobolAccumulator) else ("shapley",)
        for name in names:
            out[name] = ds[name].values
            out[f"{name}_conf"] = ds[f"{name}_conf"].values
    return out


def study(
    tf: TestFunction, designs: list[str], ppr: int, replicates: int, seeds: int, batch_rows: int
) -> dict[str, dict[str, float]]:
    """Error summaries per design at one size."""
    table: dict[str, dict[str, float]] = {}
    for design in designs:
        err: dict[str, list[np.ndarray]] = {"S1": [], "ST": [], "shapley": []}
        covered, cases = 0, 0
        for seed in range(seeds):
            est = estimate(tf, design, ppr, replicates, seed, batch_rows)
            for name in err:
                e = np.abs(est[name] - getattr(tf, name))
                err[name].append(e)
                covered += int((e <= est[f"{name}_conf"]).sum())
                cases += e.size
        row: dict[str, float] = {}
        for name, es in err.items():
            stack = np.stack(es).reshape(seeds, -1)
            row[f"{name} rms"] = float(np.sqrt((stack**2).mean()))
            row[f"{name} max"] = float(stack.max(axis=1).mean())
            row[f"{name} worst"] = float(stack.max())
        row["cov"] = covered / cases
        table[design] = row
    return table


COLUMNS = ["S1 rms", "S1 max", "S1 worst", "ST rms", "ST max", "shapley rms", "shapley max", "cov"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50, help="independent randomisations (default 50)")
    parser.add_argument(
        "--ppr",
        type=int,
        nargs="+",
        default=[16, 64, 256, 1024],
        help="points per replicate (default 16 64 256 1024)",
    )
    parser.add_argument("--replicates", type=int, nargs="+", default=[8], help="replicates R (default 8)")
    parser.add_argument(
        "--designs",
        nargs="+",
        default=["sobol", "iid"],
        choices=DESIGNS,
        help="candidate designs (default: sobol iid; also sobol-lms, owen-halves, owen-adjacent, owen-perm, "
        "owen-ab, lhs)",
    )
    parser.add_argument(
        "--functions", nargs="+", default=["ishigami", "gfunc", "interaction", "vector"],
        choices=["ishigami", "gfunc", "interaction", "vector"],
    )  # fmt: skip
    parser.add_argument(
        "--outputs", type=int, default=2000, help="outputs of the vector model (default 2000)"
    )
    parser.add_argument(
        "--vector-max-ppr", type=int, default=256, help="largest ppr for the vector model (default 256)"
    )
    parser.add_argument("--batch-rows", type=int, default=1 << 15, help="rows per function call")
    args = parser.parse_args()
    torch.set_num_threads(1)
    makers = {
        "ishigami": ishigami,
        "gfunc": gfunc,
        "interaction": interaction,
        "vector": lambda: vector(args.outputs),
    }
    t0 = time.monotonic()
    print(f"{args.seeds} seeds; errors are absolute, on indices in [0, 1]")
    for fname in args.functions:
        tf = makers[fname]()
        for replicates in args.replicates:
            sizes = [p for p in args.ppr if fname != "vector" or p <= args.vector_max_ppr]
            print(f"\n## {fname} (D={tf.problem.D}), R={replicates} replicates")
            head = (
                f"{'ppr':>5} {'n':>6} {'design':>9} " + " ".join(f"{c:>11}" for c in COLUMNS) + "  S1max/iid"
            )
            print(head)
            for ppr in sizes:
                table = study(tf, args.designs, ppr, replicates, args.seeds, args.batch_rows)
                ref = table.get("iid", {}).get("S1 max", math.nan)
                for design, row in table.items():
                    cells = " ".join(f"{row[c]:>11.4f}" for c in COLUMNS)
                    print(f"{ppr:>5} {ppr * replicates:>6} {design:>9} {cells}  {row['S1 max'] / ref:>9.2f}")
            print(f"   ({time.monotonic() - t0:.0f} s so far)", flush=True)


if __name__ == "__main__":
    main()

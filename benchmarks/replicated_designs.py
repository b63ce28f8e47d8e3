"""First-order indices from two replicated Latin hypercubes, against the default Sobol' design at equal cost.

A replicated design (Mara & Joseph 2008; Tissot & Prieur 2015) evaluates two ``m``-point Latin
hypercubes ``X`` and ``X'`` whose columns hold the same values in other orders: for group ``j`` a
permutation ``π_j`` of the rows gives ``X'[i, cols_j] = X[π_j(i), cols_j]``, the other groups permuted
independently.  Rows ``π_j(i)`` of ``X`` and ``i`` of ``X'`` then share group ``j`` and nothing else, so
``y = f(X)[π_j]`` and ``y^j = f(X')`` are pick-freeze pairs for **every** group at once: ``2 m``
evaluations give all ``D`` first-order indices, where the Sobol' design spends ``m (D + 2)``.  Each
index is Janon et al.'s (2014) estimator on its pairs (the estimator of Tissot & Prieur 2015):

.. math:: S_j = \\frac{\\overline{y\\,y^j} - \\bar\\mu_j^2}{\\overline{(y^2 + (y^j)^2)/2} - \\bar\\mu_j^2},
          \\qquad \\bar\\mu_j = \\overline{(y + y^j)/2}.

Streamed, the design runs in blocks of ``m`` base samples (``X`` and ``X'`` rows): the pairs of a block
are known only once the block is complete, so the state holds one block of outputs, ``2 m`` numbers per
output element, besides the ``5 D`` running moments of the pairs.  Half-widths come from ``R``
independent replicates, as for every augsens kind.

The measurement, at equal forwards ``N = n (D + 2)``, ``n = R p`` (``p`` points per replicate of the
Sobol' design), over ``--seeds`` independent randomisations:

* ``sobol``: augsens' default (:func:`augsens.core.api.sobol`: Owen-scrambled Sobol', Saltelli 2010);
* ``rlhs``: two replicated Latin hypercubes per replicate, ``m = N / (2 R)`` rows each (one block).

Columns: RMS and mean-of-max S1 error over seeds and factors (and outputs), coverage of the 95 %
half-widths, the mean half-width, and ``hw sobol/rlhs``: how many times narrower the replicated design's
half-widths are.  Test functions: the battery of ``benchmarks/design_quality.py`` (``docs/statistics.md``)
and Sobol' g-functions with 7 and 12 factors.

``--network`` instead measures per-element S1 half-widths on EfficientNet-Lite0 (the bundled photos,
set 2) for both designs at equal forwards (see :func:`network`).

References
----------
Mara, T. A. & Joseph, O. R. (2008). Comparison of some efficient methods to evaluate the main effect of
computer model factors. J. Stat. Comput. Simul. 78(2), 167-178. doi:10.1080/10629360600964454
Tissot, J.-Y. & Prieur, C. (2015). A randomized orthogonal array-based procedure for the estimation of
first- and second-order Sobol' indices. J. Stat. Comput. Simul. 85(7), 1358-1381.
doi:10.1080/00949655.2014.971799
Janon, A. et al. (2014). Asymptotic normality and efficiency of two Sobol index estimators. ESAIM:
Probab. Stat. 18, 342-364. doi:10.1051/ps/2013040
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))
from augsens.core.api import sobol  # noqa: E402
from augsens.core.design import QMCSmallSampleWarning  # noqa: E402
from augsens.core.factors import Problem, Uniform  # noqa: E402
from design_quality import TestFunction, _anova, gfunc, interaction, ishigami, vector  # noqa: E402


def gfunc_d(a: list[float]) -> TestFunction:
    """Sobol' g-function with coefficients ``a`` on ``[0, 1]^d``."""
    d = len(a)
    av = np.array(a)
    v = 1 / (3 * (1 + av) ** 2)
    terms = {
        u: np.array(np.prod(v[list(u)])) for r in range(1, d + 1) for u in itertools.combinations(range(d), r)
    }
    at = torch.tensor(av)

    def f(x: torch.Tensor) -> torch.Tensor:
        return ((torch.abs(4 * x - 2) + at) / (1 + at)).prod(dim=1)

    return TestFunction(
        f"gfunc{d}", Problem([Uniform(f"x{i}", 0, 1) for i in range(d)]), f, *_anova(d, terms)
    )


def battery(outputs: int) -> list[TestFunction]:
    return [
        ishigami(),
        gfunc(),
        interaction(),
        vector(outputs),
        gfunc_d([0.0, 0.5, 1.0, 2.0, 4.5, 9.0, 99.0]),
        gfunc_d([0.0, 0.5, 1.0, 1.0, 2.0, 2.0, 4.5, 9.0, 9.0, 99.0, 99.0, 99.0]),
    ]


def replicated_lhs(problem: Problem, m: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``X``, ``X'`` ``[m, k]`` and the pairing ``[D, m]``: row ``pairs[j, i]`` of ``X`` shares group ``j``
    with row ``i`` of ``X'``."""
    k, D = problem.k, problem.D
    x = (np.argsort(rng.random((m, k)), axis=0) + rng.random((m, k))) / m  # a Latin hypercube
    perms = np.stack([rng.permutation(m) for _ in range(D)])  # [D, m]
    cols = problem.group_index.numpy()
    x2 = x[perms[cols].T, np.arange(k)]  # X'[i, c] = X[perms[group(c), i], c]
    return torch.from_numpy(x), torch.from_numpy(x2), torch.from_numpy(perms)


def janon_pairs(y: torch.Tensor, y2: torch.Tensor, pairs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Sums over the pairs of every group: ``(count, Σa, Σb, Σab, Σ(a²+b²)/2)``, ``a = y[pairs[j]]``,
    ``b = y2``; ``y``, ``y2`` ``[m, O]``, results ``[D, O]``."""
    a = y[pairs]  # [D, m, O]
    b = y2.unsqueeze(0).expand_as(a)
    return (
        torch.full(a.shape[::2], a.shape[1], dtype=y.dtype),
        a.sum(1),
        b.sum(1),
        (a * b).sum(1),
        ((a.square() + b.square()) / 2).sum(1),
    )


def janon_s1(sums: tuple[torch.Tensor, ...]) -> torch.Tensor:
    n, sa, sb, sab, ssq = sums
    mu = (sa + sb) / (2 * n)
    return (sab / n - mu.square()) / (ssq / n - mu.square())


def rlhs_s1(tf: TestFunction, total: int, replicates: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """S1 (pooled over replicates) and 95 % half-widths of the replicated design at ``total`` evaluations."""
    m = total // (2 * replicates)
    rng = np.random.default_rng([seed, 7])
    per, pooled = [], None
    for _ in range(replicates):
        x, x2, perms = replicated_lhs(tf.problem, m, rng)
        y = tf.f(tf.problem.decode(x)).reshape(m, -1)
        y2 = tf.f(tf.problem.decode(x2)).reshape(m, -1)
        sums = janon_pairs(y, y2, perms)
        per.append(janon_s1(sums))
        pooled = sums if pooled is None else tuple(p + s for p, s in zip(pooled, sums, strict=True))
    assert pooled is not None
    est = torch.stack(per).numpy()  # [R, D, O]
    half = stats.t.ppf(0.975, replicates - 1) * est.std(axis=0, ddof=1) / np.sqrt(replicates)
    return janon_s1(pooled).numpy(), half


def measure(tf: TestFunction, ppr: int, replicates: int, seeds: int) -> dict[str, dict[str, float]]:
    D = tf.problem.D
    n = ppr * replicates
    total = n * (D + 2)
    truth = tf.S1.reshape(D, -1)
    rows: dict[str, dict[str, list[float]]] = {
        d: {"err": [], "max": [], "cov": [], "hw": []} for d in ("sobol", "rlhs")
    }
    for seed in range(seeds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", QMCSmallSampleWarning)
            ds = sobol(tf.f, tf.problem, n=n, replicates=replicates, seed=seed)
        s_est = ds["S1"].values.reshape(D, -1)
        s_half = ds["S1_conf"].values.reshape(D, -1)
        r_est, r_half = rlhs_s1(tf, total, replicates, seed)
        for name, est, half in (
            ("sobol", s_est, s_half),
            ("rlhs", r_est.reshape(D, -1), r_half.reshape(D, -1)),
        ):
            err = np.abs(est - truth)
            rows[name]["err"].append(float(np.mean(err**2)))
            rows[name]["max"].append(float(err.max()))
            rows[name]["cov"].append(float(np.mean(err <= half)))
            rows[name]["hw"].append(float(np.mean(half)))
    out = {}
    for name, r in rows.items():
        out[name] = {
            "rms": float(np.sqrt(np.mean(r["err"]))),
            "max": float(np.mean(r["max"])),
            "cov": float(np.mean(r["cov"])),
            "hw": float(np.mean(r["hw"])),
        }
    out["forwards"] = {"total": total, "m": total // (2 * replicates)}
    return out


def network(
    n: int,
    replicates: int,
    seed: int,
    batch: int,
    sobol_method: str = "saltelli_2010",
    sobol_only: bool = False,
) -> dict[str, object]:
    """Per-element S1 half-widths on EfficientNet-Lite0, set 2, both designs at ``n (D + 2)`` forwards.

    The Sobol' numbers come from a study of ``n`` base samples (``kind = "sobol"``); the replicated
    design's from the same study's forward path (decode, augment, capture) on its ``2 m`` rows per
    replicate.  Reported per checkpoint: the median and the 95th percentile over elements and factors
    of the half-widths (the precision rule of :mod:`augsens.core.precision` uses the 95th), and their
    ratios.  ``sobol_method`` picks the Sobol' study's first-order estimator (``"janon_2014"`` is
    bounded like the replicated design's, Saltelli's is not); ``sobol_only`` skips the replicated design.
    """
    from augsens.config import StudyConfig
    from augsens.demo import QUICK_CHECKPOINTS
    from augsens.engine.study import Study

    cfg = StudyConfig.from_dict(
        {
            "model": {"name": "efficientnet_lite0", "checkpoints": QUICK_CHECKPOINTS},
            "study": {
                "kind": "sobol",
                "augmentations": "set2",
                "n": n,
                "replicates": replicates,
                "seed": seed,
                "sobol_method": sobol_method,
            },
            "run": {"device": "cpu", "batch_size": batch},
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QMCSmallSampleWarning)
        study = Study(cfg, progress=False)
        t0 = time.monotonic()
        state = study.new_state()
        study.accumulate(state, 0, study.plan.n)
        tree = study.finalize(state)
        t_sobol = time.monotonic() - t0
    problem = study.factors.problem
    D = problem.D
    total = n * (D + 2)
    m = total // (2 * replicates)
    rng = np.random.default_rng([seed, 11])
    t0 = time.monotonic()
    per: dict[str, list[torch.Tensor]] = {c: [] for c in study.checkpoints}
    for _ in range(0 if sobol_only else replicates):
        x, x2, perms = replicated_lhs(problem, m, rng)
        outs = []
        for unit in (x, x2):
            parts: dict[str, list[torch.Tensor]] = {c: [] for c in study.checkpoints}
            for lo in range(0, m, batch):
                acts = study.forward(unit[lo : lo + batch], 0)
                for c in study.checkpoints:
                    parts[c].append(acts[c].reshape(acts[c].shape[0], -1).to(torch.float64))
            outs.append({c: torch.cat(v) for c, v in parts.items()})
        for c in study.checkpoints:
            per[c].append(janon_s1(janon_pairs(outs[0][c], outs[1][c], perms)))
    t_rlhs = time.monotonic() - t0
    result: dict[str, object] = {
        "sobol_method": sobol_method,
        "n": n,
        "D": D,
        "forwards": total,
        "m": m,
        "replicates": replicates,
        "seconds_sobol": round(t_sobol, 1),
        "seconds_rlhs": round(t_rlhs, 1),
    }
    t = stats.t.ppf(0.975, replicates - 1)
    for c in study.checkpoints:
        s_half = tree[c].dataset["S1_conf"].values.reshape(-1)
        if sobol_only:
            s_half = s_half[np.isfinite(s_half)]
            result[c] = {
                "sobol_median": float(np.median(s_half)),
                "sobol_p95": float(np.percentile(s_half, 95)),
            }
            continue
        est = torch.stack(per[c]).numpy()
        r_half = (t * est.std(axis=0, ddof=1) / np.sqrt(replicates)).reshape(-1)
        s_half, r_half = s_half[np.isfinite(s_half)], r_half[np.isfinite(r_half)]
        q = {
            "sobol_median": float(np.median(s_half)),
            "sobol_p95": float(np.percentile(s_half, 95)),
            "rlhs_median": float(np.median(r_half)),
            "rlhs_p95": float(np.percentile(r_half, 95)),
        }
        q["ratio_median"] = q["sobol_median"] / q["rlhs_median"]
        q["ratio_p95"] = q["sobol_p95"] / q["rlhs_p95"]
        result[c] = {k: round(v, 4) for k, v in q.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--ppr", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--replicates", type=int, default=4)
    parser.add_argument("--outputs", type=int, default=64)
    parser.add_argument("--network", action="store_true", help="EfficientNet-Lite0, set 2, instead")
    parser.add_argument("--n", type=int, default=16, help="--network: Sobol' base samples")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sobol-method", default="saltelli_2010", choices=["saltelli_2010", "janon_2014"])
    parser.add_argument("--sobol-only", action="store_true", help="--network: skip the replicated design")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.network:
        result = network(args.n, args.replicates, 0, args.batch_size, args.sobol_method, args.sobol_only)
        print(json.dumps(result, indent=2))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return
    results = {}
    head = f"{'function':<12} {'D':>3} {'p':>5} {'N':>7} {'design':<6} {'rms':>7} {'max':>7} {'cov':>5}"
    head += f" {'hw':>7}"
    print(head + "  hw sobol/rlhs")
    for tf in battery(args.outputs):
        for ppr in args.ppr:
            t0 = time.monotonic()
            r = measure(tf, ppr, args.replicates, args.seeds)
            results[f"{tf.name}/{ppr}"] = r
            for name in ("sobol", "rlhs"):
                v = r[name]
                ratio = f"  {r['sobol']['hw'] / r['rlhs']['hw']:.2f}" if name == "rlhs" else ""
                print(
                    f"{tf.name:<12} {tf.problem.D:>3} {ppr:>5} {r['forwards']['total']:>7} {name:<6} "
                    f"{v['rms']:7.4f} {v['max']:7.4f} {v['cov']:5.2f} {v['hw']:7.4f}{ratio}"
                )
            print(f"  ({time.monotonic() - t0:.1f} s)", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

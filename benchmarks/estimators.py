"""Estimator benchmark: streaming SobolAccumulator vs scipy.stats.sobol_indices vs SALib, same evaluations.

Synthetic outputs (no model): ``O`` outputs of ``D`` unit-cube factors,
``y_o(x) = Σ_j W_jo sin(2π x_j) + v_o x_0 x_1``, evaluated on our scrambled Sobol' pick-freeze rows.
Only the estimator is timed; generating the outputs is excluded on every side.

* augsens: ``SobolAccumulator.update`` batch by batch over base samples (all outputs at once), then
  ``finalize`` (S1, ST and 95 % replicate intervals).
* scipy: ``sobol_indices(func={"f_A", "f_B", "f_AB"}, n=n)`` on chunks of outputs (it is vectorised over
  outputs and treats them independently, so the chunk times add up to the full time exactly; chunking only
  bounds memory).
* SALib: ``SALib.analyze.sobol.analyze`` takes one output at a time; a subset of outputs is timed and the
  time is extrapolated linearly to all outputs (printed as such).  Its default 100 bootstrap resamples for
  the confidence intervals are included, as a user would run it.

Prints times and ratios; asserts nothing.  ``python benchmarks/estimators.py --help`` for sizes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.stats import sobol_indices

from augsens.core.design import SobolDesign
from augsens.core.estimate import SobolAccumulator
from augsens.core.factors import Problem, Uniform


def _outputs(unit: torch.Tensor, w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``[rows, k]`` unit values -> ``[rows, O]`` outputs."""
    return torch.sin(2 * torch.pi * unit) @ w + (unit[:, 0] * unit[:, 1])[:, None] * v


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=int, default=100_000, help="number of outputs O (default 1e5)")
    parser.add_argument("--groups", type=int, default=10, help="number of factors D (default 10)")
    parser.add_argument("--log2n", type=int, default=10, help="base samples n = 2**log2n (default 10)")
    parser.add_argument("--batch", type=int, default=32, help="base samples per accumulator update")
    parser.add_argument("--chunk", type=int, default=5_000, help="outputs per scipy call")
    parser.add_argument("--salib-outputs", type=int, default=20, help="outputs timed with SALib")
    parser.add_argument("--replicates", type=int, default=8)
    args = parser.parse_args()

    n, D, O = 2**args.log2n, args.groups, args.outputs
    R = D + 2
    problem = Problem([Uniform(f"x{j}", 0, 1) for j in range(D)])
    design = SobolDesign(problem, n, seed=0, replicates=args.replicates)
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(D, O, generator=gen, dtype=torch.float64)
    v = torch.randn(O, generator=gen, dtype=torch.float64)
    unit = design.unit_rows(0, n)  # [n, R, D]
    flat = unit.reshape(n * R, D)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; D={D} groups, n={n} base samples, "
        f"O={O} outputs, {n * R} evaluations per output ({n * R * O / 1e9:.2f}e9 values)"
    )

    # -- augsens: streaming over base samples, all outputs at once ------------------------------------
    acc = SobolAccumulator(D, replicates=args.replicates)
    t_update = 0.0
    for replicate, start, count in design.batches(args.batch):
        y = _outputs(unit[start : start + count].reshape(count * R, D), w, v).reshape(count, R, O)
        t0 = time.perf_counter()
        acc.update(y, replicate=replicate)
        t_update += time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = acc.finalize(problem.group_names)
    t_final = time.perf_counter() - t0
    t_ours = t_update + t_final
    print(
        f"augsens  update {t_update:8.2f} s + finalize {t_final:6.2f} s = {t_ours:8.2f} s (S1, ST + 95 % CIs)"
    )

    # -- scipy: the same evaluations, chunks of outputs -----------------------------------------------
    t_scipy, worst = 0.0, 0.0
    for lo in range(0, O, args.chunk):
        hi = min(O, lo + args.chunk)
        y = _outputs(flat, w[:, lo:hi], v[lo:hi]).reshape(n, R, hi - lo).numpy()
        func = {"f_A": y[:, 0].T.copy(), "f_B": y[:, 1].T.copy(), "f_AB": y[:, 2:].transpose(1, 2, 0).copy()}
        t0 = time.perf_counter()
        res = sobol_indices(func=func, n=n)
        t_scipy += time.perf_counter() - t0
        worst = max(worst, float(np.abs(res.first_order.T - ours["S1"].values[:, lo:hi]).max()))
        worst = max(worst, float(np.abs(res.total_order.T - ours["ST"].values[:, lo:hi]).max()))
    print(f"scipy    sobol_indices (dict input)          {t_scipy:8.2f} s  (S1, ST; no CIs)")
    print(f"         max |augsens - scipy| over S1, ST: {worst:.2e}")

    # -- SALib: one output per call, subset timed and extrapolated -------------------------------------
    try:
        from SALib.analyze import sobol as salib_sobol
    except ImportError:
        salib_sobol = None
        print("SALib    not installed: skipped")
    if salib_sobol is not None:
        sal_problem = {"num_vars": D, "names": problem.names, "bounds": [[0.0, 1.0]] * D}
        k = min(args.salib_outputs, O)
        y = _outputs(flat, w[:, :k], v[:k]).reshape(n, R, k).numpy()
        # SALib's row order per base sample: A, AB_1..AB_D, B
        order = [0, *range(2, R), 1]
        t0 = time.perf_counter()
        for o in range(k):
            salib_sobol.analyze(sal_problem, y[:, order, o].reshape(-1), calc_second_order=False, seed=0)
        t_sub = time.perf_counter() - t0
        t_salib = t_sub * O / k
        print(
            f"SALib    sobol.analyze, {k} outputs in {t_sub:.2f} s, extrapolated to {O}: {t_salib:8.1f} s "
            "(S1, ST + 100-resample bootstrap CIs)"
        )

    print("ratios (time of the other / time of augsens, higher = augsens faster):")
    print(f"  scipy / augsens = {t_scipy / t_ours:6.2f}   (augsens update only: {t_scipy / t_update:6.2f})")
    if salib_sobol is not None:
        print(f"  SALib / augsens = {t_salib / t_ours:8.1f}  (extrapolated)")


if __name__ == "__main__":
    main()

"""The contrast method (``augsens.core.methods.contrast``) on outputs given as arrays: its passes over
element blocks equal one pass, and its maps equal SciPy's tests on the same differences."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from augsens.core import loop
from augsens.core.budget import Budget
from augsens.core.methods.contrast import Contrast, ContrastDesign

N, DRAWS, SIZES = 7, [3, 1], [5, 6]


def _outputs(seed: int = 0) -> torch.Tensor:
    """Outputs ``[N, R, E]`` float32: the original, then 3 copies of a shifting treatment and 1 of a
    noise-only one (a tied zero difference in element 0 of the second)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(N, 1 + sum(DRAWS), sum(SIZES), generator=g)
    y[:, 1:4] += 0.8
    y[:, 4, 0] = y[:, 0, 0]
    return y


def _run(y: torch.Tensor, block: int, rows: int, pairing: str = "draw", first_pass_bytes=None):
    method = Contrast(
        ["shift", "noise"],
        DRAWS,
        N,
        SIZES,
        block=block,
        pairing=pairing,
        signed=True,
        first_pass_bytes=first_pass_bytes,
    )

    def evaluate(batch):
        lo, hi = method.span(method.position(batch)[0])
        first = batch.start % N
        assert batch.start // N == 0 or hi - lo <= block  # later passes ask for their block only
        return y[first : first + batch.count, :, lo:hi].reshape(-1, hi - lo)

    hooks = loop.OneAccumulator(method, evaluate)
    budget = Budget(n=method.n, max_n=method.n)
    outcome = loop.run(method, hooks, budget, batch_rows=rows)  # every pass, batches cut at pass ends
    assert outcome.done == method.n and outcome.stop_reason == "n reached"
    return method, hooks.accumulator


def test_design_walks_one_pass_per_block_and_batches_never_straddle_a_pass():
    design = ContrastDesign(N, 3, 5, ["original"] * 5, seed=0)
    assert design.round_ends == [7, 14, 21] and design.unit_rows(0, 2).shape == (2, 5, 0)
    capped = ContrastDesign(N, 2, 5, ["original"] * 5, seed=0, first_pass_batch=2)
    assert capped.batches(3) == [
        (0, 0, 2),
        (0, 2, 2),
        (0, 4, 2),
        (0, 6, 1),
        (0, 7, 3),
        (0, 10, 3),
        (0, 13, 1),
    ]
    assert design.batches(3) == [(0, 0, 3), (0, 3, 3), (0, 6, 1), (0, 7, 3), (0, 10, 3), (0, 13, 1)] + [
        (0, 14, 3),
        (0, 17, 3),
        (0, 20, 1),
    ]


@pytest.mark.parametrize("pairing", ["draw", "image"])
def test_passes_over_blocks_equal_one_pass_and_scipy(pairing):
    y = _outputs()
    method, whole = _run(y, block=sum(SIZES), rows=10 * 5, pairing=pairing)
    # 4 elements per pass, and first-pass batches of one input: 5 rows x 11 elements x 4 bytes each
    blocked_method, blocked = _run(y, block=4, rows=2 * 5, pairing=pairing, first_pass_bytes=5 * 11 * 4)
    assert blocked_method.design.first_pass_batch == 1
    assert whole.passes_done == 1 and blocked.passes_done == 3
    for name, values in whole.maps.items():
        tol = 1e-12 if name != "point_biserial" else 1e-6  # moments of other batches: float32 rounding
        np.testing.assert_allclose(blocked.maps[name], values, rtol=tol, atol=tol, err_msg=name)
    yy = y.double().numpy()
    for a, (lo, d) in enumerate(((1, 3), (4, 1))):
        diff = yy[:, lo : lo + d] - yy[:, :1]
        diff = diff.reshape(-1, diff.shape[-1]) if pairing == "draw" else diff.mean(axis=1)
        ref = scipy.stats.wilcoxon(diff, zero_method="zsplit", correction=True, method="asymptotic", axis=0)
        np.testing.assert_allclose(whole.maps["p_value"][a], ref.pvalue, rtol=1e-5)
        labels = np.r_[np.zeros(N), np.ones(N * d)]
        pb = [
            scipy.stats.pointbiserialr(
                labels, np.r_[yy[:, 0, j], yy[:, lo : lo + d, j].reshape(-1)]
            ).statistic
            for j in range(sum(SIZES))
        ]
        # moments of float32 outputs against SciPy's float64 ones: float32 rounding of the sums
        np.testing.assert_allclose(whole.maps["point_biserial"][a], pb, rtol=1e-5, atol=1e-6)
    flat = method.finalize(whole)  # the protocol's call: one flat output
    assert flat["p_value"].dims == ("augmentation", "element") and flat.sizes["element"] == sum(SIZES)
    np.testing.assert_array_equal(flat["p_value"].values, whole.maps["p_value"])
    nodes = method.results(whole, {"a": ((5,), ("unit",)), "b": ((2, 3), ("y", "x"))})
    assert nodes["b"]["p_value"].dims == ("augmentation", "y", "x")
    assert nodes["a"]["n_pairs"].values.tolist() == whole.n_pairs
    np.testing.assert_array_equal(nodes["b"]["p_value"].values.reshape(2, -1), whole.maps["p_value"][:, 5:])
    by = np.concatenate([nodes[c]["p_value_by"].values.reshape(2, -1) for c in "ab"], axis=1)
    np.testing.assert_allclose(
        by[0], scipy.stats.false_discovery_control(whole.maps["p_value"][0], method="by")
    )

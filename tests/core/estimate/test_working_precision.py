"""float32 blocks merged into a float64 state (``work_dtype=torch.float32``) against the float64 path.

The float64 path is the reference: outputs in float32 are widened exactly to float64 and every batch is
merged into the float64 state.  The block path keeps the batches' centred sums in float32 for up to
``BLOCK_SAMPLES`` base samples per replicate slot before merging them into the same float64 state, so
its only extra error is float32 rounding of centred sums: a few ``eps_32`` relative to the spread of the
outputs, hence of the same order on indices (fractions of the variance).  The tolerance ``INDEX_TOL``
below allows that with a margin and is four orders of magnitude below the statistical error of any
index at these sample sizes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augsens.core import loop
from augsens.core.budget import Budget
from augsens.core.estimate import (
    MomentsAccumulator,
    PermutationShapleyAccumulator,
    ShapleyAccumulator,
    SobolAccumulator,
)
from augsens.core.estimate._base import BLOCK_SAMPLES
from augsens.core.methods import METHODS

EPS32 = torch.finfo(torch.float32).eps
#: |index_block - index_float64| allowed: float32 rounding of centred sums, with margin
INDEX_TOL = 64 * EPS32  # 7.6e-6

KINDS = {
    "sobol": ("sobol", {}),
    "sobol-second-order": ("sobol", {"second_order": True}),
    "shapley-exact": ("shapley-exact", {}),
    "shapley-permutation": ("shapley-permutation", {}),
    "moments": ("moments", {}),
}


def _run(kind: str, analytic, work_dtype: torch.dtype, batch_rows: int):
    name, options = KINDS[kind]
    method = METHODS[name](analytic.problem, Budget.of(2**9, replicates=4), seed=0, **options)
    acc = method.accumulator()
    acc.work_dtype = work_dtype
    for batch in loop.batches(method, batch_rows):
        # outputs as a network gives them: float32, with a large mean so that centring matters
        y = (100.0 + analytic.f(analytic.problem.decode(batch.rows))).to(torch.float32)
        method.update(acc, y, batch)
    return method.finalize(acc), acc


@pytest.mark.parametrize("kind", list(KINDS))
def test_float32_blocks_equal_the_float64_path_on_analytic_functions(kind, analytic):
    ref, ref_acc = _run(kind, analytic, torch.float64, batch_rows=96)
    got, acc = _run(kind, analytic, torch.float32, batch_rows=96)
    assert acc.n == ref_acc.n and got.attrs["work_dtype"] == "torch.float32"
    assert ref.attrs["work_dtype"] == "torch.float64"
    assert set(got.data_vars) == set(ref.data_vars)
    for name in got.data_vars:
        a, b = got[name].values, ref[name].values
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=name)
        if name in ("mean", "var", "cov"):  # moments: relative to their own size
            np.testing.assert_allclose(a, b, rtol=INDEX_TOL, atol=0, err_msg=name)
        else:
            np.testing.assert_allclose(a, b, rtol=0, atol=INDEX_TOL, err_msg=name)


@pytest.mark.parametrize("kind", ["sobol", "shapley-permutation"])
def test_float32_blocks_match_analytic_indices(kind, ishigami):
    got, _ = _run(kind, ishigami, torch.float32, batch_rows=64)
    name = "S1" if kind == "sobol" else "shapley"
    want = ishigami.S1 if kind == "sobol" else ishigami.shapley
    np.testing.assert_allclose(got[name].values, want, atol=0.05)  # n = 512: Monte Carlo error


def _outputs(n: int, rows: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    y = 1e3 + torch.randn(n, 1, 7, generator=gen) + torch.randn(n, rows, 7, generator=gen)
    return y.to(torch.float32)


def test_block_is_merged_every_block_samples_and_on_read():
    acc = SobolAccumulator(2, replicates=2, work_dtype=torch.float32)
    y = _outputs(BLOCK_SAMPLES + 8, 4)
    acc.update(y[: BLOCK_SAMPLES - 1])
    assert acc._block is not None and acc._block.samples == BLOCK_SAMPLES - 1
    assert int(acc._raw_state()[0].sum()) == 0  # nothing in the float64 state yet
    acc.update(y[BLOCK_SAMPLES - 1 : BLOCK_SAMPLES])  # the block is full: merged
    assert acc._block.samples == 0 and int(acc._raw_state()[0][0].min()) == BLOCK_SAMPLES
    acc.update(y[BLOCK_SAMPLES:], replicate=0)
    assert acc.count is not None and int(acc.count[0].min()) == BLOCK_SAMPLES + 8  # reading merges
    assert acc._block.samples == 0
    acc.update(y[:3], replicate=0)
    acc.update(y[3:5], replicate=1)  # another slot: the pending block of slot 0 goes in first
    assert int(acc._raw_state()[0][0].min()) == BLOCK_SAMPLES + 11 and acc._block.replicate == 1


def test_state_with_a_pending_block_resumes_bit_for_bit(tmp_path):
    y = _outputs(96, 4)
    ref = SobolAccumulator(2, work_dtype=torch.float32)
    for s in range(0, 96, 8):
        ref.update(y[s : s + 8])
    first = SobolAccumulator(2, work_dtype=torch.float32)
    for s in range(0, 40, 8):
        first.update(y[s : s + 8])
    torch.save(first.state_dict(), tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert state["work_dtype"] == "float32" and state["block_samples"] == 40  # saved, not merged
    resumed = SobolAccumulator.from_state_dict(state)
    for s in range(40, 96, 8):
        resumed.update(y[s : s + 8])
    a, b = resumed.finalize(), ref.finalize()
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_float64_outputs_never_work_in_float32():
    y = _outputs(32, 4).to(torch.float64) + torch.rand(32, 4, 7, dtype=torch.float64) * 1e-9
    acc = SobolAccumulator(2, work_dtype=torch.float32)
    acc.update(y)
    assert acc._block is None  # straight into the float64 state
    ref = SobolAccumulator(2)
    ref.update(y)
    for name, v in acc.finalize().data_vars.items():
        np.testing.assert_array_equal(v.values, ref.finalize()[name].values, err_msg=name)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SobolAccumulator(2, work_dtype=torch.float32),
        lambda: ShapleyAccumulator(2, work_dtype=torch.float32),
        lambda: PermutationShapleyAccumulator(2, work_dtype=torch.float32),
        lambda: MomentsAccumulator(work_dtype=torch.float32),
    ],
)
def test_blocks_keep_nonfinite_rules_and_merge(make):
    acc, ref = make(), make()
    ref.work_dtype = torch.float64
    rows = acc._rows or 1
    y = _outputs(48, rows)[:, :, :3]
    y[5, 0, 1] = float("nan")
    y[9, rows - 1, 2] = float("inf")
    y = y if acc._rows else y[:, 0]
    perms = torch.stack([torch.randperm(2, generator=torch.Generator().manual_seed(i)) for i in range(48)])
    args = (perms,) if isinstance(acc, PermutationShapleyAccumulator) else ()
    shard = make()
    for a, part in ((acc, slice(0, 48)), (ref, slice(0, 48)), (shard, slice(0, 24))):
        a.update(y[part], *(x[part] for x in args))
    other = make()
    other.update(y[24:], *(x[24:] for x in args))
    merged = shard.merge(other)  # both pending blocks are merged first
    got, want, both = acc.finalize(), ref.finalize(), merged.finalize()
    np.testing.assert_array_equal(got["nonfinite"].values, want["nonfinite"].values)
    assert int(got["nonfinite"].sum()) == (2 if acc._rows else 2)
    for name in want.data_vars:
        np.testing.assert_allclose(got[name].values, want[name].values, rtol=1e-5, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(both[name].values, want[name].values, rtol=1e-5, atol=1e-5, err_msg=name)


def test_work_dtype_is_checked():
    with pytest.raises(TypeError, match="work_dtype must be torch.float32 or torch.float64"):
        SobolAccumulator(2, dtype=torch.float32, work_dtype=torch.float64)
    with pytest.raises(TypeError, match="work_dtype must be torch.float32 or torch.float64"):
        SobolAccumulator(2, work_dtype=torch.bfloat16)

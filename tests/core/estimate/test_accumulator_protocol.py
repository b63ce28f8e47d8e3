"""The accumulator protocol: streaming = batch, merge, state round trip, devices, dtypes, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from augsens.core.estimate import (
    MomentsAccumulator,
    PermutationShapleyAccumulator,
    ShapleyAccumulator,
    SobolAccumulator,
)

D, N, OUT = 3, 96, (2, 5)


def _outputs(rows: int, seed: int = 0) -> torch.Tensor:
    """Correlated synthetic outputs [N, rows, *OUT] with large means (centring must matter)."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(N, 1, *OUT, generator=gen, dtype=torch.float64)
    noise = torch.randn(N, rows, *OUT, generator=gen, dtype=torch.float64)
    return 1e3 + base + 0.5 * noise * torch.linspace(0.5, 2, rows, dtype=torch.float64)[:, None, None]


def _perms(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.argsort(torch.rand(N, D, generator=gen), dim=1)


CASES = {
    "sobol": (lambda: SobolAccumulator(D, replicates=2), D + 2),
    "sobol2": (lambda: SobolAccumulator(D, second_order=True, replicates=2, method="janon_2014"), 2 * D + 2),
    "shapley": (lambda: ShapleyAccumulator(D, replicates=2), 2**D),
    "permutation": (lambda: PermutationShapleyAccumulator(D, replicates=2), D + 1),
    "moments": (lambda: MomentsAccumulator(), None),
}


def _feed(acc, y, perms, start, stop, step):
    for s in range(start, stop, step):
        e = min(s + step, stop)
        replicate = 0 if s < N // 2 else 1  # batches never straddle N // 2 for the steps used
        if isinstance(acc, PermutationShapleyAccumulator):
            acc.update(y[s:e], perms[s:e], replicate=replicate)
        elif isinstance(acc, MomentsAccumulator):
            acc.update(y[s:e])
        else:
            acc.update(y[s:e], replicate=replicate)
    return acc


def _data(rows):
    y = _outputs(rows if rows else 1)
    return (y if rows else y[:, 0]), _perms()


def _assert_same(a: xr.Dataset, b: xr.Dataset, atol: float = 1e-12, rtol: float = 1e-10) -> None:
    """Equal up to rounding: different batch boundaries change the order of float64 additions."""
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        np.testing.assert_allclose(a[name].values, b[name].values, rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("case", CASES)
def test_any_batch_size_gives_the_same_result(case):
    make, rows = CASES[case]
    y, perms = _data(rows)
    ref = _feed(make(), y, perms, 0, N, N // 2).finalize()
    for step in (1, 6, 16):  # divisors of N // 2, so batches stay inside one replicate
        _assert_same(_feed(make(), y, perms, 0, N, step).finalize(), ref)


@pytest.mark.parametrize("case", CASES)
def test_merged_shards_equal_one_run(case):
    make, rows = CASES[case]
    y, perms = _data(rows)
    ref = _feed(make(), y, perms, 0, N, 8).finalize()
    shard_a = _feed(make(), y, perms, 0, 40, 8)
    shard_b = _feed(make(), y, perms, 40, N, 8)
    merged = shard_a.merge(shard_b)
    assert merged.n == N
    _assert_same(merged.finalize(), ref)
    _assert_same(make().merge(_feed(make(), y, perms, 0, N, 8)).finalize(), ref)  # into an empty one


@pytest.mark.parametrize("case", CASES)
def test_save_reload_continue_equals_uninterrupted(case, tmp_path):
    make, rows = CASES[case]
    y, perms = _data(rows)
    ref = _feed(make(), y, perms, 0, N, 16).finalize()
    first = _feed(make(), y, perms, 0, 48, 16)
    torch.save(first.state_dict(), tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)  # plain tensors: no pickled objects
    assert state["class"] == type(first).__name__ and state["format_version"] == 1
    resumed = type(first).from_state_dict(state)
    _assert_same(_feed(resumed, y, perms, 48, N, 16).finalize(), ref, atol=0, rtol=0)  # bit for bit


def test_pooled_estimate_equals_single_replicate_accumulator():
    y = _outputs(D + 2)
    one = SobolAccumulator(D)
    one.update(y)
    four = SobolAccumulator(D, replicates=4)
    for r in range(4):
        four.update(y[r * 24 : (r + 1) * 24], replicate=r)
    a, b = one.finalize(), four.finalize()
    for name in ("S1", "ST"):
        np.testing.assert_allclose(a[name].values, b[name].values, rtol=0, atol=1e-12)
    assert np.isnan(a["S1_conf"].values).all() and np.isfinite(b["S1_conf"].values).all()


def test_float32_state_and_half_inputs():
    y = _outputs(D + 2)
    ref = SobolAccumulator(D)
    ref.update(y)
    acc = SobolAccumulator(D, dtype=torch.float32)
    acc.update(y.to(torch.float32))  # means of 1e3: centred float32 sums keep ~1e-5 accuracy
    acc.update(y[:0])  # an empty batch is a no-op
    np.testing.assert_allclose(acc.finalize()["ST"].values, ref.finalize()["ST"].values, atol=1e-4)
    assert acc.state_dict()["dtype"] == "float32" and acc.n == N
    half = SobolAccumulator(D)
    half.update((y - 1e3).to(torch.float16))  # any float input dtype is promoted to the state dtype
    np.testing.assert_allclose(half.finalize()["ST"].values, ref.finalize()["ST"].values, atol=0.01)


def test_finalize_dims_coords_and_attrs():
    y = _outputs(D + 2)
    acc = SobolAccumulator(D)
    acc.update(y)
    ds = acc.finalize(["a", "b", "c"], dims=("channel", "x"), coords={"channel": ["r", "g"]})
    assert ds["S1"].dims == ("factor", "channel", "x") and ds["S1"].dtype == np.float64
    assert list(ds["channel"].values) == ["r", "g"] and list(ds["factor"].values) == ["a", "b", "c"]
    assert ds.attrs["n"] == N and ds.attrs["total_order_method"] == "jansen_1999"
    with pytest.raises(ValueError, match="names 1 dims"):
        acc.finalize(["a", "b", "c"], dims=("x",))
    with pytest.raises(ValueError, match="has 2 names, the accumulator has 3"):
        acc.finalize(["a", "b"])


def test_nonfinite_values_are_dropped_per_element():
    y = _outputs(D + 2)
    bad = y.clone()
    bad[[3, 10, 50], 1, 0, 0] = torch.nan
    bad[7, 4, 0, 0] = torch.inf
    acc = SobolAccumulator(D)
    acc.update(bad[:40])
    acc.update(bad[40:])
    ds = acc.finalize()
    keep = torch.ones(N, dtype=torch.bool)
    keep[[3, 7, 10, 50]] = False
    ref = SobolAccumulator(D)
    ref.update(y[keep][:, :, 0, 0])
    np.testing.assert_allclose(ds["S1"].values[:, 0, 0], ref.finalize()["S1"].values, rtol=0, atol=1e-12)
    clean = SobolAccumulator(D)
    clean.update(y)
    np.testing.assert_allclose(ds["S1"].values[:, 1:], clean.finalize()["S1"].values[:, 1:], atol=1e-12)
    assert ds["nonfinite"].values[0, 0] == 4 and ds["nonfinite"].values.sum() == 4
    assert ds.attrs["nonfinite_total"] == 4


@pytest.mark.parametrize("case", ["sobol", "shapley", "permutation"])
def test_zero_variance_outputs_give_nan_not_inf(case):
    """Constant outputs (dead units, or constant but non-zero) have undefined indices: NaN, no warning."""
    make, rows = CASES[case]
    y, perms = _data(rows)
    y[..., 0, 0] = 0.0  # dead unit
    y[..., 0, 1] = 0.1  # constant, not exactly representable: variance at rounding level
    acc = _feed(make(), y, perms, 0, N, 8)
    with np.errstate(all="raise"):
        ds = acc.finalize()
    main = "shapley" if "shapley" in ds else "S1"
    assert np.isnan(ds[main].values[:, 0, :2]).all()
    assert np.isfinite(ds[main].values[:, 1]).all()
    assert not np.isinf(ds[main].values).any()
    agg = acc.aggregate(torch.zeros(OUT, dtype=torch.int64), 1)  # constant elements add 0 / 0
    assert np.isfinite(agg[main].values).all()


def test_aggregate_sums_numerators_and_variances():
    """Two linear outputs y0 = x1 (Var 1/12), y1 = 3 x2 (Var 9/12): the pooled S1 is (1/10, 9/10)."""
    from augsens.core.design import SobolDesign
    from augsens.core.factors import Problem, Uniform

    problem = Problem([Uniform("x1", 0, 1), Uniform("x2", 0, 1)])
    design = SobolDesign(problem, 2**12, replicates=4)
    acc = SobolAccumulator(2, replicates=4)
    for r, start, count in design.batches(512):
        x = problem.decode(design.unit_rows(start, count))
        acc.update(torch.stack([x[..., 0], 3 * x[..., 1], 2 * x[..., 0]], dim=-1), replicate=r)
    agg = acc.aggregate(torch.tensor([0, 0, 1]), 2, factors=problem.group_names)
    assert agg["S1"].dims == ("factor", "group")
    np.testing.assert_allclose(agg["S1"].values[:, 0], [0.1, 0.9], atol=1e-3)
    np.testing.assert_allclose(agg["S1"].values[:, 1], [1.0, 0.0], atol=1e-3)
    np.testing.assert_allclose(agg["ST"].values, agg["S1"].values, atol=1e-3)
    assert np.isfinite(agg["S1_conf"].values).all()
    per_element = acc.finalize()
    whole = acc.aggregate(torch.tensor(0), 1)  # a scalar id broadcasts: one whole checkpoint
    assert whole["S1"].shape == (2, 1)
    skip = acc.aggregate(torch.tensor([0, -1, -1]), 1)  # negative ids are left out
    np.testing.assert_allclose(skip["S1"].values[:, 0], per_element["S1"].values[:, 0], atol=1e-12)
    with pytest.raises(ValueError, match="n_groups=1"):
        acc.aggregate(torch.tensor([0, 1, 1]), 1)
    with pytest.raises(TypeError, match="integer tensor"):
        acc.aggregate(torch.zeros(3), 1)
    with pytest.raises(ValueError, match="does not broadcast"):
        acc.aggregate(torch.zeros(4, dtype=torch.int64), 1)


def test_moments_against_numpy():
    y = _outputs(3)
    acc = MomentsAccumulator(rows_per_sample=3)
    acc.update(y[:50])
    acc.update(y[50:])
    ds = acc.finalize(dims=("a", "b"))
    flat = y.reshape(-1, *OUT).numpy()
    np.testing.assert_allclose(ds["mean"].values, flat.mean(0), rtol=1e-13)
    np.testing.assert_allclose(ds["var"].values, flat.var(0, ddof=1), rtol=1e-10)
    np.testing.assert_allclose(
        ds["cov"].values, flat.std(0, ddof=1) / (np.abs(flat.mean(0)) + 1e-5), rtol=1e-10
    )
    assert ds["mean"].dims == ("a", "b") and acc.n == N
    dead = MomentsAccumulator()
    dead.update(torch.zeros(4, 3))
    assert (dead.finalize()["cov"].values == 0).all()
    agg = acc.aggregate(torch.zeros(OUT, dtype=torch.int64), 1)
    np.testing.assert_allclose(agg["mean"].values, [flat.mean()], rtol=1e-12)


def test_to_device_and_state_on_cpu():
    acc = SobolAccumulator(D)
    acc.update(_outputs(D + 2))
    assert acc.to("cpu") is acc and acc.mean.device.type == "cpu"
    ref = acc.finalize()
    other = SobolAccumulator.from_state_dict(acc.state_dict(), device="cpu")
    _assert_same(other.finalize(), ref, atol=0, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    y = _outputs(D + 2)
    cpu, gpu = SobolAccumulator(D), SobolAccumulator(D, device="cuda")
    cpu.update(y)
    gpu.update(y.cuda())
    assert gpu.mean.device.type == "cuda"
    _assert_same(gpu.finalize(), cpu.finalize(), atol=1e-12)


def test_bad_updates_and_merges():
    acc = SobolAccumulator(D, replicates=2)
    with pytest.raises(ValueError, match=r"expects outputs \[batch, 5, \*out\]"):
        acc.update(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="replicate=2 is outside 0..1"):
        acc.update(torch.zeros(4, 5), replicate=2)
    with pytest.raises(TypeError, match="expects a torch.Tensor"):
        acc.update(np.zeros((4, 5)))
    acc.update(torch.zeros(4, 5, 2))
    with pytest.raises(ValueError, match=r"output shape \(3,\) differs"):
        acc.update(torch.zeros(4, 5, 3))
    with pytest.raises(ValueError, match="cannot merge"):
        acc.merge(SobolAccumulator(D, replicates=1))
    with pytest.raises(ValueError, match="seen no samples"):
        SobolAccumulator(D).finalize()
    with pytest.raises(ValueError, match="method='bogus'"):
        SobolAccumulator(D, method="bogus")
    with pytest.raises(ValueError, match="at most 12 groups"):
        ShapleyAccumulator(13)
    with pytest.raises(ValueError, match="perms must be an integer tensor"):
        PermutationShapleyAccumulator(D).update(torch.zeros(4, D + 1), torch.zeros(4, D))
    with pytest.raises(ValueError, match="format version"):
        SobolAccumulator.from_state_dict({**acc.state_dict(), "format_version": 99})
    with pytest.raises(ValueError, match="not a ShapleyAccumulator"):
        ShapleyAccumulator.from_state_dict(acc.state_dict())

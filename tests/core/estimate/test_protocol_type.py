"""The public Accumulator type: every accumulator satisfies it, and its members do what it promises."""

from __future__ import annotations

import pytest
import torch

import augsens.core.estimate as estimate
from augsens.core.estimate import (
    Accumulator,
    MomentsAccumulator,
    MorrisAccumulator,
    PermutationShapleyAccumulator,
    ShapleyAccumulator,
    SobolAccumulator,
    SongShapleyAccumulator,
)

D = 3

ALL = {
    "moments": lambda: MomentsAccumulator(),
    "sobol": lambda: SobolAccumulator(D, replicates=3),
    "shapley": lambda: ShapleyAccumulator(D, replicates=3),
    "permutation": lambda: PermutationShapleyAccumulator(D, replicates=3),
    "song": lambda: SongShapleyAccumulator(D, 2, 2),
    "morris": lambda: MorrisAccumulator(D, delta=0.5, replicates=3),
}


def test_every_exported_accumulator_is_an_accumulator() -> None:
    exported = {name for name in estimate.__all__ if name.endswith("Accumulator") and name != "Accumulator"}
    built = {type(make()).__name__ for make in ALL.values()}
    assert exported == built  # the cases below cover every accumulator the package exports
    for name, make in ALL.items():
        assert isinstance(make(), Accumulator), name
    assert not isinstance(object(), Accumulator)


def test_half_widths_are_the_finalized_conf_variables() -> None:
    acc = SobolAccumulator(D, replicates=3)
    gen = torch.Generator().manual_seed(0)
    for r in range(3):
        acc.update(torch.randn(16, D + 2, 4, generator=gen, dtype=torch.float64), replicate=r)
    widths = acc.half_widths()
    assert sorted(widths) == ["S1", "ST"]
    ds = acc.finalize()
    for name, value in widths.items():
        assert torch.equal(
            value.reshape(ds[f"{name}_conf"].shape), torch.from_numpy(ds[f"{name}_conf"].values)
        )
    assert MomentsAccumulator().half_widths() == {}  # no quantity has a half-width
    assert SobolAccumulator(D).half_widths() == {}  # nothing seen yet


def test_pending_block_allocation_sizes_the_largest_saved_state() -> None:
    meta = torch.device("meta")
    plain = SobolAccumulator(D, work_dtype=torch.float32, device=meta)
    plain.allocate((5,), meta)
    mixed = SobolAccumulator(D, work_dtype=torch.float32, device=meta)
    mixed.allocate((5,), meta, pending_block=True)
    extra = set(mixed.state_dict()) - set(plain.state_dict())
    assert extra == {f"block_{k}" for k in ("replicate", "samples", "count", "mean", "comoment", "shift")}
    same = SobolAccumulator(D, device=meta)  # float64 work: no block to size
    same.allocate((5,), meta, pending_block=True)
    assert set(same.state_dict()) == set(plain.state_dict())


@pytest.mark.parametrize("name", ["song", "morris"])
def test_states_without_output_rows_refuse_pooled_moments(name: str) -> None:
    with pytest.raises(TypeError, match="MomentsAccumulator beside it"):
        ALL[name]().pooled_moments()

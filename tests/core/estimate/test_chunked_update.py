"""The CPU update walks the outputs in chunks: any chunking gives the same state, bit for bit."""

from __future__ import annotations

import pytest
import torch

import augsens.core.estimate._base as base
from augsens.core.estimate import MomentsAccumulator, PermutationShapleyAccumulator, SobolAccumulator


def _feed(acc, batches, extra):
    for y, e in zip(batches, extra, strict=True):
        acc.update(y, *e)
    return acc.count, acc.mean, acc.comoment


@pytest.mark.parametrize("work", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind", ["sobol", "permutation", "moments"])
def test_chunks_of_any_size_give_the_same_state(monkeypatch, kind, work):
    gen = torch.Generator().manual_seed(3)
    out, D = 1000, 3
    rows = {"sobol": D + 2, "permutation": D + 1, "moments": None}[kind]
    batches, extra = [], []
    for b in (3, 1, 40, 5):
        shape = (b, out) if rows is None else (b, rows, out)
        y = (100 + torch.randn(shape, generator=gen, dtype=torch.float64)).to(torch.float32)
        if b == 40:  # a non-finite value in one batch: the masked pass
            y.view(b, -1)[7, 11] = torch.nan
        batches.append(y)
        perms = torch.argsort(torch.rand(b, D, generator=gen), dim=1)
        extra.append((perms,) if kind == "permutation" else ())

    def build():
        if kind == "moments":
            return MomentsAccumulator(work_dtype=work)
        cls = SobolAccumulator if kind == "sobol" else PermutationShapleyAccumulator
        return cls(D, work_dtype=work)

    whole = _feed(build(), batches, extra)
    monkeypatch.setattr(base, "CHUNK_BYTES", 1)  # 256 elements per chunk, the smallest
    monkeypatch.setattr(base, "SQUARES_CHUNK_BYTES", 1)
    chunked = _feed(build(), batches, extra)
    for a, c in zip(whole, chunked, strict=True):
        assert torch.equal(a, c)
    assert int(whole[0].min()) == 48  # the element with the NaN lost one base sample (or row)
    assert int((whole[0] == 49).sum()) == out - 1

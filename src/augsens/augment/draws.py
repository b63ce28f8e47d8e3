"""Counter-based parameter draws for single augmentations (treatment-control and masking analyses).

A parameter value is a pure function of its address ``(seed, augmentation, image, draw, parameter)``:
:func:`augsens.core.draws.counter_uniform` (SplitMix64 of the counters), so any subset of
images, in any batch size or order, replays exactly -- what lets the contrast study regenerate its rows
block after block, and makes the masking analysis see the same augmented images as the contrast study
for the same seed.  The stream is keyed on the augmentation's *name*, so a subset of augmentations
replays the full study's images.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

from augsens.augment.protocol import Augmentation
from augsens.core.draws import counter_uniform

__all__ = ["single_draws"]


def single_draws(
    spec: Augmentation,
    rows: np.ndarray,
    seed: int,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """Parameters of augmentation ``spec`` for global rows ``image * draws + draw``.

    Each parameter is uniform on ``[low, high]``, or discrete uniform on ``[low, high)`` where the
    authors' samplers drew integers (``ParamSpec.integer``), or drawn from its ``distribution`` by the
    inverse CDF.  Returns ``{keyword: [len(rows)] float32}``
    (empty for augmentations without parameters).
    """
    if not spec.params:
        return {}
    u = counter_uniform(seed, zlib.crc32(spec.name.encode()), rows, len(spec.params))
    out = {}
    for j, p in enumerate(spec.params):
        if p.distribution is not None:
            value = p.factor(p.name).decode(torch.from_numpy(u[:, j])).numpy()
        elif p.integer:  # the authors' discrete uniform on [low, high), upper bound exclusive
            value = np.minimum(np.floor(p.low + u[:, j] * (p.high - p.low)), p.high - 1)
        else:
            value = p.low + u[:, j] * (p.high - p.low)
        out[p.name] = torch.as_tensor(value, dtype=torch.float32, device=device)
    return out

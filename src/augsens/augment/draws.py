"""Counter-based parameter draws for single augmentations (treatment-control and masking analyses).

A parameter value is a pure function of its address ``(seed, augmentation, image, draw, parameter)``:
SplitMix64 (Steele, Lea & Flood 2014, doi:10.1145/2714064.2660195) of the counters, so any subset of
images, in any batch size or order, replays exactly -- what lets the contrast study regenerate its rows
block after block, and makes the masking analysis see the same augmented images as the contrast study
for the same seed.  The stream is keyed on the augmentation's *name*, so a subset of augmentations
replays the full study's images.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

from augsens.augment.registry import AugmentationSpec

__all__ = ["counter_uniform", "single_draws"]

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    # the SplitMix64 finaliser: a bijective mix, so distinct counters give distinct outputs
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def counter_uniform(seed: int, stream: int, rows: np.ndarray, n_cols: int) -> np.ndarray:
    """Counter-based uniforms: entry ``(r, c)`` depends only on ``(seed, stream, rows[r], c)``.

    Parameters
    ----------
    seed, stream : int
        Non-negative keys (the study seed; one stream per augmentation).
    rows : numpy.ndarray
        Integer row counters, shape ``[m]``.
    n_cols : int
        Columns (one per parameter).

    Returns
    -------
    numpy.ndarray
        float64 ``[m, n_cols]`` in ``[0, 1)`` with 53 random bits each.

    Examples
    --------
    >>> u = counter_uniform(0, 1, np.arange(4), 2)
    >>> bool(np.array_equal(u[2:], counter_uniform(0, 1, np.array([2, 3]), 2)))
    True
    """
    if seed < 0 or stream < 0:
        raise ValueError(f"seed and stream must be non-negative, got seed={seed!r}, stream={stream!r}")
    key = _splitmix64(_splitmix64(np.array([seed], dtype=np.uint64)) ^ np.uint64(stream))
    rows = np.asarray(rows, dtype=np.uint64)[:, None]
    cols = np.arange(n_cols, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        h = _splitmix64(_splitmix64(key ^ rows) + cols)
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


def single_draws(
    spec: AugmentationSpec,
    rows: np.ndarray,
    seed: int,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """Parameters of augmentation ``spec`` for global rows ``image * draws + draw``.

    Each parameter is uniform on ``[low, high]``, or discrete uniform on ``[low, high)`` where the
    authors' samplers drew integers (``ParamSpec.integer``).  Returns ``{keyword: [len(rows)] float32}``
    (empty for augmentations without parameters).
    """
    if not spec.params:
        return {}
    u = counter_uniform(seed, zlib.crc32(spec.name.encode()), rows, len(spec.params))
    out = {}
    for j, p in enumerate(spec.params):
        if p.integer:  # the authors' discrete uniform on [low, high), upper bound exclusive
            value = np.minimum(np.floor(p.low + u[:, j] * (p.high - p.low)), p.high - 1)
        else:
            value = p.low + u[:, j] * (p.high - p.low)
        out[p.name] = torch.as_tensor(value, dtype=torch.float32, device=device)
    return out

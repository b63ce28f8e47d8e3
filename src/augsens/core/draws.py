"""Every random stream of augsens: counter-based, so any row, block or image replays on its own.

A design row, a Song block, an augmentation draw or a paper-mode image re-draw is a pure function of
its address (seed, stream, counter), never of what was generated before it.  That is what lets a run be
cut into any batches, Ray shards or resumed pieces and still give the same numbers.  Two generators
serve all of them:

* **SplitMix64** (Steele, Lea & Flood 2014, doi:10.1145/2714064.2660195): a bijective 64-bit mix, for
  hashes of counters -- in numpy (:func:`mix64`, :func:`splitmix64`, :func:`counter_uniform`) and in
  torch on any device (:func:`splitmix64_torch`, with signed int64 arithmetic giving the same bits).
* **Philox** (Salmon et al. 2011, doi:10.1145/2063384.2063405) through numpy: streams keyed by a
  :class:`numpy.random.SeedSequence` (:func:`philox`), and a counter-addressable uniform stream
  (:func:`philox_uniform`) that jumps straight to any sample.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "mix64",
    "splitmix64",
    "splitmix64_torch",
    "splitmix64_keyed",
    "uniform_from_bits",
    "counter_uniform",
    "seed_sequence",
    "philox",
    "philox_uniform",
]

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection of uint64 with full avalanche (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def splitmix64(x: np.ndarray) -> np.ndarray:
    """One SplitMix64 step of state ``x``: add the golden-ratio increment, then :func:`mix64`."""
    with np.errstate(over="ignore"):
        return mix64(x + _GAMMA)


def counter_uniform(seed: int, stream: int, rows: np.ndarray, n_cols: int) -> np.ndarray:
    """Counter-based uniforms: entry ``(r, c)`` depends only on ``(seed, stream, rows[r], c)``.

    Parameters
    ----------
    seed, stream : int
        Non-negative keys (e.g. the study seed and one stream per augmentation).
    rows : numpy.ndarray
        Integer row counters, shape ``[m]``.
    n_cols : int
        Columns (e.g. one per parameter).

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
    key = splitmix64(splitmix64(np.array([seed], dtype=np.uint64)) ^ np.uint64(stream))
    rows = np.asarray(rows, dtype=np.uint64)[:, None]
    cols = np.arange(n_cols, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        h = splitmix64(splitmix64(key ^ rows) + cols)
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _signed(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


# the constants as signed int64, so torch's wrapping int64 arithmetic computes the unsigned reference's bits
_T_GAMMA, _T_M1, _T_M2 = (_signed(int(c)) for c in (_GAMMA, _M1, _M2))


def _srl(z: torch.Tensor, s: int) -> torch.Tensor:
    # torch's >> on int64 is arithmetic; mask off the copied sign bits for a logical shift
    return (z >> s) & ((1 << (64 - s)) - 1)


def splitmix64_torch(counter: torch.Tensor, seed: int) -> torch.Tensor:
    """Hash of int64 counters under ``seed``, on the counters' device: ``mix64(mix64(seed) + (c+1) γ)``.

    Returns int64 tensors holding the 64 random bits (take :func:`uniform_from_bits` for ``[0, 1)``).

    Examples
    --------
    >>> bits = splitmix64_torch(torch.arange(3), seed=0)
    >>> ref = mix64(mix64(np.uint64(0)) + (np.arange(3, dtype=np.uint64) + np.uint64(1)) * _GAMMA)
    >>> bool((bits.numpy().view(np.uint64) == ref).all())
    True
    """
    base = _mix64_torch(torch.tensor(_signed(int(seed)), dtype=torch.int64)).item()
    return _mix64_torch((counter.to(torch.int64) + 1) * _T_GAMMA + base)


def splitmix64_keyed(key: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
    """Hash of int64 ``counter`` under a per-element int64 ``key``: ``mix64(mix64(key) + (c+1) γ)``.

    :func:`splitmix64_torch` with a tensor key, broadcast against the counters: one stream per key
    (e.g. a ``[B, 1]`` tensor of per-sample seeds against ``[N]`` element counters gives ``[B, N]``),
    every value a pure function of its (key, counter) on any device.

    Examples
    --------
    >>> bits = splitmix64_keyed(torch.tensor([[0], [5]]), torch.arange(3))
    >>> bool((bits[1] == splitmix64_torch(torch.arange(3), seed=5)).all())
    True
    """
    z = (counter.to(torch.int64) + 1) * _T_GAMMA + _mix64_torch(key.to(torch.int64))
    # _mix64_torch in place, one scratch tensor: the hash of a whole batch of images is memory-bound
    scratch = torch.empty_like(z)
    for shift, factor in ((30, _T_M1), (27, _T_M2), (31, None)):
        torch.bitwise_right_shift(z, shift, out=scratch)
        scratch.bitwise_and_((1 << (64 - shift)) - 1)
        z.bitwise_xor_(scratch)
        if factor is not None:
            z.mul_(factor)
    return z


def uniform_from_bits(bits: torch.Tensor) -> torch.Tensor:
    """float64 uniforms in ``[0, 1)`` from the top 53 of 64 hashed bits (exact in float64)."""
    return _srl(bits, 11).to(torch.float64) * 2.0**-53


def _mix64_torch(z: torch.Tensor) -> torch.Tensor:
    z = (z ^ _srl(z, 30)) * _T_M1
    z = (z ^ _srl(z, 27)) * _T_M2
    return z ^ _srl(z, 31)


def seed_sequence(seed: int, *key: int) -> np.random.SeedSequence:
    """The seed sequence of stream ``key`` (a tuple of counters) under ``seed``."""
    return np.random.SeedSequence(seed, spawn_key=key)


def philox(seed: int, *key: int) -> np.random.Generator:
    """A Philox generator of its own for block ``key`` (counters) under ``seed``: any block replays alone."""
    return np.random.Generator(np.random.Philox(np.random.SeedSequence([seed, *key])))


def philox_uniform(seq: np.random.SeedSequence, start: int, count: int, width: int) -> np.ndarray:
    """Uniforms ``[count, width]`` for samples ``start..start+count-1`` of a counter-based stream.

    Philox yields 4 uint64 per counter step and one double per uint64; padding each sample to a
    multiple of 4 doubles makes sample ``i`` start exactly at counter ``i * width4 / 4``, so ``advance``
    jumps to any sample without generating the ones before it.

    Examples
    --------
    >>> seq = seed_sequence(0, 0, 1)
    >>> bool(np.array_equal(philox_uniform(seq, 0, 5, 3)[2:], philox_uniform(seq, 2, 3, 3)))
    True
    """
    width4 = -(-width // 4) * 4
    bitgen = np.random.Philox(key=seq.generate_state(2, np.uint64))
    bitgen.advance(start * (width4 // 4))
    return np.random.Generator(bitgen).random((count, width4))[:, :width]

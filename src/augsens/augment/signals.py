"""Perturbations of 1-D signals ``[B, C, T]``: time shift, gain, additive noise, low-pass filter.

A study is not tied to images (Kharyuk, Matveev & Oseledets 2025, arXiv:2503.03283, propose the transfer
to other systems): these four perturbations let ``ag.study`` decompose the activations of a network on
signals -- a ``Conv1d`` classifier, labelled ``(channel, time)`` in the results -- as it does for images.
Each is an ordinary augmentation of the public protocol (:mod:`augsens.augment.protocol`), written the
way a user writes one: a batched function of ``x [B, C, T]`` and one parameter value per sample, run on
``x``'s device with no loop over samples, plus the parameters' ranges and identity values.

* :data:`time_shift` -- circular shift by ``shift`` samples (integer, ``[-16, 16]``, identity 0);
* :data:`gain` -- multiply by ``gain`` (``[0.5, 2]``, identity 1);
* :data:`additive_noise` -- add white Gaussian noise of standard deviation ``sigma`` (``[0, 0.5]``,
  identity 0) whose realisation is a parameter too: ``seed`` (integer, ``[0, 2^20)``) picks it,
  through a counter-based hash (splitmix64 of ``seed * C * T + element``, its two 32-bit halves turned
  into a normal by Box-Muller), so a design row
  replays the same noise on any device and a sample's noise does not depend on the rest of the batch;
* :data:`low_pass` -- zero-phase low-pass filter in the frequency domain with cut-off ``cutoff``
  (cycles per sample, ``[0.02, 0.5]``, identity 0.5 = Nyquist: nothing removed) and a raised-cosine
  transition of width ``transition`` (a constant, 0.02 cycles per sample) above it.

Use them by object (``augmentations=[signals.gain, signals.low_pass]``) or by name in a TOML config
(``"augsens.augment.signals:gain"``); :data:`SIGNAL_PERTURBATIONS` lists all four.  Their ranges are in
samples and cycles per sample, not tied to a signal length; narrow or widen them with ``ranges=``.

Examples
--------
>>> import torch
>>> x = torch.arange(8.0).view(1, 1, 8).expand(2, 1, 8)
>>> time_shift(x, shift=torch.tensor([0.0, 2.0]))[:, 0].tolist()
[[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], [6.0, 7.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]]
>>> [p.name for p in additive_noise.params], additive_noise.identity
(['sigma', 'seed'], {'sigma': 0.0, 'seed': 0.0})
"""

from __future__ import annotations

import math

import torch

from augsens.augment.protocol import Augmentation, ParamSpec
from augsens.core.draws import splitmix64_torch

__all__ = [
    "time_shift",
    "gain",
    "additive_noise",
    "low_pass",
    "SIGNAL_PERTURBATIONS",
    "shift_signal",
    "scale_signal",
    "add_noise",
    "low_pass_filter",
]

#: The per-sample shape every perturbation here takes: channels x time.
SIGNAL = "[B, C, T]"
#: Seeds of the additive noise are drawn from [0, NOISE_SEEDS): far more realisations than design rows.
NOISE_SEEDS = 2**20


def _per_sample(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A ``[B]`` parameter as ``[B, 1, ..., 1]`` in ``x``'s dtype, to broadcast over one sample."""
    return t.to(x.dtype).view(-1, *([1] * (x.ndim - 1)))


def shift_signal(x: torch.Tensor, *, shift: torch.Tensor) -> torch.Tensor:
    """Shift each signal circularly along time by its own ``shift`` samples (later: positive).

    ``y[b, c, t] = x[b, c, (t - round(shift_b)) mod T]``, as ``torch.roll`` per sample, in one gather.

    Shape
    -----
    ``x [B, C, T]``, ``shift [B]`` -> ``[B, C, T]``
    """
    length = x.shape[-1]
    steps = torch.round(shift).to(torch.int64)
    source = (torch.arange(length, device=x.device) - steps.view(-1, 1)) % length  # [B, T]
    return torch.gather(x, -1, source.view(x.shape[0], *([1] * (x.ndim - 2)), length).expand(x.shape))


def scale_signal(x: torch.Tensor, *, gain: torch.Tensor) -> torch.Tensor:
    """Multiply each signal by its own ``gain``: ``y = gain_b x``.

    Shape
    -----
    ``x [B, ...]``, ``gain [B]`` -> ``[B, ...]``
    """
    return x * _per_sample(gain, x)


def _gaussian_noise(seed: torch.Tensor, shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
    """Standard normal noise ``[B, *shape[1:]]``: sample ``b`` from its own ``seed_b`` alone.

    Element ``i`` of sample ``b`` hashes the counter ``seed_b n + i`` (``n`` elements per sample) with
    splitmix64; the high and low 32 bits of the hash are two uniforms on ``[0, 1)``, turned into one normal
    by Box-Muller (one hash per element: the cost of the op is the hash).
    """
    n = math.prod(shape[1:])
    counter = torch.round(seed).to(torch.int64).view(-1, 1) * n + torch.arange(
        n, device=seed.device, dtype=torch.int64
    )  # [B, n]
    bits = splitmix64_torch(counter, seed=0)
    low32 = 0xFFFFFFFF
    u1 = ((bits >> 32) & low32).to(torch.float64) * 2.0**-32  # arithmetic shift, masked: the high word
    u2 = (bits & low32).to(torch.float64) * 2.0**-32
    # 1 - u1 lies in (0, 1]: the logarithm is finite (|z| <= sqrt(2 ln 2^32) = 6.7)
    z = torch.sqrt(-2.0 * torch.log1p(-u1)) * torch.cos(2.0 * math.pi * u2)
    return z.to(dtype).view(shape)


def add_noise(x: torch.Tensor, *, sigma: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    """Add white Gaussian noise of standard deviation ``sigma_b``, its realisation picked by ``seed_b``.

    ``y = x + sigma_b z_b`` with ``z_b`` standard normal, a pure function of ``seed_b`` and the sample's
    shape (:func:`_gaussian_noise`): no random state, the same noise on CPU and GPU.

    Shape
    -----
    ``x [B, ...]``, ``sigma [B]``, ``seed [B]`` -> ``[B, ...]``
    """
    return x + _per_sample(sigma, x) * _gaussian_noise(seed.to(x.device), x.shape, x.dtype)


def low_pass_filter(x: torch.Tensor, *, cutoff: torch.Tensor, transition: float) -> torch.Tensor:
    """Zero-phase low-pass filter of each signal along time with its own ``cutoff`` (cycles per sample).

    In the frequency domain (``torch.fft.rfft`` over time, frequencies ``f = k / T``) each signal is
    multiplied by ``H_b(f) = 1`` for ``f <= cutoff_b``, ``(1 + cos(pi (f - cutoff_b) / transition)) / 2``
    up to ``cutoff_b + transition``, and 0 above: a raised-cosine edge, real and non-negative, so the
    phase is untouched.  ``cutoff = 0.5`` (Nyquist) keeps every frequency: the identity.

    Shape
    -----
    ``x [B, C, T]``, ``cutoff [B]`` -> ``[B, C, T]``
    """
    length = x.shape[-1]
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()  # the FFT needs float32/64
    spectrum = torch.fft.rfft(work, dim=-1)
    freq = torch.fft.rfftfreq(length, device=x.device, dtype=work.dtype)  # [F], 0 .. 0.5
    edge = ((freq - cutoff.to(work.dtype).view(-1, 1)) / transition).clamp(0.0, 1.0)  # [B, F]
    response = 0.5 * (1.0 + torch.cos(math.pi * edge))
    response = response.view(x.shape[0], *([1] * (x.ndim - 2)), -1)
    return torch.fft.irfft(spectrum * response, n=length, dim=-1).to(x.dtype)


time_shift = Augmentation(
    "time_shift",
    (
        ParamSpec(
            "shift", -16.0, 16.0, identity=0.0, integer=True, doc="circular shift later in time (samples)"
        ),
    ),
    shift_signal,
    doc="Circular shift along time by a whole number of samples (torch.roll per sample).",
    input_shape=SIGNAL,
    source="augsens.augment.signals:time_shift",
)

gain = Augmentation(
    "gain",
    (ParamSpec("gain", 0.5, 2.0, identity=1.0, doc="multiplier of the signal"),),
    scale_signal,
    doc="Multiply the signal by a gain.",
    source="augsens.augment.signals:gain",
)

additive_noise = Augmentation(
    "additive_noise",
    (
        ParamSpec("sigma", 0.0, 0.5, identity=0.0, doc="standard deviation of the white Gaussian noise"),
        ParamSpec(
            "seed",
            0.0,
            float(NOISE_SEEDS),
            identity=0.0,
            integer=True,
            doc="which realisation of the noise (a counter-based hash: the same on any device)",
        ),
    ),
    add_noise,
    doc="Add white Gaussian noise; its realisation is a parameter (seed), so every design row replays.",
    source="augsens.augment.signals:additive_noise",
)

low_pass = Augmentation(
    "low_pass",
    (
        ParamSpec(
            "cutoff", 0.02, 0.5, identity=0.5, doc="cut-off frequency (cycles per sample; 0.5 = Nyquist)"
        ),
    ),
    low_pass_filter,
    constants={"transition": 0.02},
    doc="Zero-phase low-pass filter (FFT, raised-cosine edge of width transition above the cut-off).",
    input_shape=SIGNAL,
    source="augsens.augment.signals:low_pass",
)

#: The four signal perturbations, in the order of this module's docstring.
SIGNAL_PERTURBATIONS: tuple[Augmentation, ...] = (time_shift, gain, additive_noise, low_pass)

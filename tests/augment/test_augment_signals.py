"""The 1-D signal perturbations: each against a per-sample reference (numpy / torch.roll), batched with
per-sample parameters, deterministic, and sample by sample independent of the rest of the batch."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from augsens.augment.signals import add_noise, low_pass_filter, scale_signal, shift_signal
from augsens.testing import sinusoid_signals


@pytest.fixture(scope="module")
def signals() -> torch.Tensor:
    return sinusoid_signals(2, classes=3, channels=2, length=128)[0].double()  # [6, 2, 128]


def test_shift_is_torch_roll_per_sample(signals):
    shift = torch.tensor([0.0, 1.0, -3.0, 16.0, -16.0, 2.6])
    y = shift_signal(signals, shift=shift)
    for b in range(6):
        assert torch.equal(y[b], torch.roll(signals[b], round(float(shift[b])), dims=-1))


def test_gain_per_sample(signals):
    gain = torch.linspace(0.5, 2.0, 6)
    torch.testing.assert_close(scale_signal(signals, gain=gain), signals * gain.double().view(6, 1, 1))


def _low_pass_reference(x: np.ndarray, cutoff: float, transition: float) -> np.ndarray:
    """numpy's rfft, the raised-cosine response written out per frequency bin, irfft."""
    spectrum = np.fft.rfft(x, axis=-1)
    freq = np.fft.rfftfreq(x.shape[-1])
    response = np.array(
        [
            1.0
            if f <= cutoff
            else 0.0
            if f >= cutoff + transition
            else 0.5 * (1 + np.cos(np.pi * (f - cutoff) / transition))
            for f in freq
        ]
    )
    return np.fft.irfft(spectrum * response, n=x.shape[-1], axis=-1)


def test_low_pass_matches_numpy_per_sample(signals):
    cutoff = torch.tensor([0.5, 0.2, 0.05, 0.02, 0.031, 0.3])
    y = low_pass_filter(signals, cutoff=cutoff, transition=0.02)
    for b in range(6):
        ref = _low_pass_reference(signals[b].numpy(), float(cutoff[b]), 0.02)
        np.testing.assert_allclose(y[b].numpy(), ref, atol=1e-12, rtol=0)
    # Nyquist keeps every frequency: the identity up to the FFT's rounding
    torch.testing.assert_close(y[0], signals[0], atol=1e-12, rtol=0)
    # a cut-off below the class-0 fundamental (4 cycles per 128 samples = 0.031) removes nearly all of it
    assert float(y[3].std()) < 0.25 * float(signals[3].std())


def test_low_pass_keeps_float32():
    x = torch.randn(3, 1, 64)
    y = low_pass_filter(x, cutoff=torch.tensor([0.1, 0.2, 0.5]), transition=0.02)
    assert y.dtype == torch.float32 and y.shape == x.shape
    torch.testing.assert_close(y[2], x[2], atol=1e-5, rtol=0)


def test_noise_is_gaussian_with_the_given_sigma_and_replays_from_its_seed():
    x = torch.zeros(4, 2, 4096, dtype=torch.float64)
    sigma = torch.tensor([0.0, 0.1, 1.0, 1.0])
    seed = torch.tensor([5.0, 5.0, 5.0, 6.0])
    y = add_noise(x, sigma=sigma, seed=seed)
    assert torch.equal(y[0], x[0])  # sigma 0: the identity
    torch.testing.assert_close(y[1] * 10, y[2])  # same seed, same realisation, scaled
    z = y[2].flatten().numpy()
    # standard normal by a Kolmogorov-Smirnov test (8192 draws), with moments near 0 and 1
    assert scipy.stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(z.mean()) < 4 / np.sqrt(z.size) and abs(z.var() - 1) < 0.1
    # another seed: an independent realisation
    assert abs(np.corrcoef(z, y[3].flatten().numpy())[0, 1]) < 4 / np.sqrt(z.size)


def test_noise_of_a_sample_depends_on_its_own_seed_only():
    x = torch.zeros(3, 1, 50)
    one = add_noise(x, sigma=torch.ones(3), seed=torch.tensor([1.0, 2.0, 3.0]))
    other = add_noise(x, sigma=torch.ones(3), seed=torch.tensor([9.0, 2.0, 7.0]))
    assert torch.equal(one[1], other[1]) and not torch.equal(one[0], other[0])
    alone = add_noise(x[1:2], sigma=torch.ones(1), seed=torch.tensor([2.0]))
    assert torch.equal(alone[0], one[1])

"""The common corruptions against their reference implementation, ``imagecorruptions``.

At the five integer severities, on three real photos at 224 x 224:

* deterministic ops per pixel, against the reference's float result (before ``corrupt`` truncates it
  to uint8), within a tolerance derived from what differs: float32 accumulation of the taps
  (defocus, motion blur), Pillow's two 8-bit resampling passes (pixelate), nothing (JPEG: bit-exact);
* random ops by the distribution of the change ``y - x`` (to 1e-3 of a level): a two-sample
  Kolmogorov-Smirnov test at level 0.001 per (op, severity) -- 20 tests, 2 % family-wise -- and the
  mean change within 5 standard errors.  The pixels are the same in both samples and only the noise
  is random, so the changes are a stratified sample and the test is conservative.

The reference's random draws are seeded (``np.random.seed``), ours by the ``seed`` parameter, so every
outcome here is reproducible.
"""

from __future__ import annotations

import inspect
import io
import math

import numpy as np
import pytest
import torch
from corruption_reference import motion_angle, photos, reference, to_tensor
from PIL import Image
from scipy import stats

from augsens.augment import corruptions as C

_EPS32 = float(torch.finfo(torch.float32).eps)
_SEVERITIES = (1, 2, 3, 4, 5)
_NOISE = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # the ops are batched already; intra-op threads only contend on a busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return photos()


@pytest.fixture(scope="module")
def x(images: np.ndarray) -> torch.Tensor:
    return to_tensor(images)


def _ours(name: str, x: torch.Tensor, severity: float, **params: float) -> np.ndarray:
    """The op at one severity; a ``seed`` is the first sample's, the others take the next integers."""
    b = x.shape[0]
    kwargs = {k: torch.full((b,), float(v)) for k, v in params.items()}
    if "seed" in kwargs:
        kwargs["seed"] += torch.arange(b)
    y = C.CORRUPTIONS[name].fn(x, severity=torch.full((b,), float(severity)), **kwargs)
    return y.permute(0, 2, 3, 1).double().numpy()


def _params(name: str, x: torch.Tensor, severity: torch.Tensor) -> dict[str, torch.Tensor]:
    out = {"severity": severity}
    for p in C.CORRUPTIONS[name].params[1:]:
        out[p.name] = (
            torch.linspace(p.low, p.high, x.shape[0]).round()
            if p.integer
            else torch.full((x.shape[0],), 0.5 * (p.low + p.high) + 7.0)
        )
    return out


# --------------------------------------------------------------------------------------------------
# the protocol every op keeps


def test_every_entry_declares_its_ops_keywords_severity_first():
    for name, spec in C.CORRUPTIONS.items():
        keywords = list(inspect.signature(spec.fn).parameters)[1:]
        assert keywords == list(spec.param_names), name
        assert spec.params[0].name == "severity" and spec.params[0].identity == 0.0


@pytest.mark.parametrize("name", list(C.CORRUPTIONS))
def test_severity_zero_is_the_identity_and_shape_dtype_range_are_kept(name, x):
    for dtype in (torch.float32, torch.float64):
        xx = x[:2, :, :96, :80].to(dtype)
        params = _params(name, xx, torch.zeros(2))
        assert torch.equal(C.CORRUPTIONS[name].fn(xx, **params), xx)
        y = C.CORRUPTIONS[name].fn(xx, **_params(name, xx, torch.tensor([2.5, 5.0])))
        assert y.shape == xx.shape and y.dtype == dtype
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
        assert not torch.equal(y[1], xx[1])


@pytest.mark.parametrize("name", list(C.CORRUPTIONS))
def test_each_sample_depends_only_on_its_own_parameters(name, x):
    """A row replays alone: the batch result equals the op applied to each sample by itself."""
    small = x[:, :, :64, :48]
    params = _params(name, small, torch.tensor([0.7, 3.0, 4.6]))
    batch = C.CORRUPTIONS[name].fn(small, **params)
    for i in range(3):
        alone = C.CORRUPTIONS[name].fn(small[i : i + 1], **{k: v[i : i + 1] for k, v in params.items()})
        torch.testing.assert_close(alone[0], batch[i], rtol=0, atol=4 * _EPS32)


@pytest.mark.parametrize("name", _NOISE)
def test_noise_is_a_function_of_the_seed(name, x):
    s = torch.full((2,), 3.0)
    a = C.CORRUPTIONS[name].fn(x[:2], severity=s, seed=torch.tensor([1.0, 2.0]))
    b = C.CORRUPTIONS[name].fn(x[:2], severity=s, seed=torch.tensor([1.0, 2.0]))
    c = C.CORRUPTIONS[name].fn(x[:2], severity=s, seed=torch.tensor([1.0, 3.0]))
    assert torch.equal(a, b)
    assert torch.equal(a[0], c[0]) and not torch.equal(a[1], c[1])
    other = C.CORRUPTIONS["gaussian_noise" if name != "gaussian_noise" else "speckle_noise"].fn
    assert not torch.equal(a - x[:2], other(x[:2], severity=s, seed=torch.tensor([1.0, 2.0])) - x[:2])


@pytest.mark.parametrize("name", ["gaussian_noise", "speckle_noise", "defocus_blur", "motion_blur"])
def test_continuous_in_the_severity(name, x):
    """A severity step of 1e-4 moves no pixel by more than 1e-2 (across an anchor too).

    Not shot or impulse noise, whose draws are discrete (a photon count, a hit or not): their law is
    continuous in the severity, a given pixel's value is a step function of it.
    """
    for s in (0.5, 2.0, 3.7):
        a = C.CORRUPTIONS[name].fn(x[:1], **_params(name, x[:1], torch.tensor([s])))
        b = C.CORRUPTIONS[name].fn(x[:1], **_params(name, x[:1], torch.tensor([s + 1e-4])))
        assert float((a - b).abs().max()) <= 1e-2, (name, s)


# --------------------------------------------------------------------------------------------------
# deterministic ops per pixel


@pytest.mark.parametrize("severity", _SEVERITIES)
def test_defocus_blur_matches_the_reference(severity, images, x):
    ref = np.stack([reference("defocus_blur")(im, severity) for im in images]) / 255
    # a 21 x 21 kernel: 441 float32 products summed, each side
    assert np.abs(_ours("defocus_blur", x, severity) - ref).max() <= 2 * 441 * _EPS32


@pytest.mark.parametrize("severity", _SEVERITIES)
def test_motion_blur_matches_the_reference_at_its_angle(severity, images, x):
    ref = np.stack([reference("motion_blur")(im, severity, seed=severity) for im in images]) / 255
    ours = _ours("motion_blur", x, severity, angle=motion_angle(severity))
    assert np.abs(ours - ref).max() <= 2 * C._MOTION_TAPS * _EPS32


@pytest.mark.parametrize("severity", _SEVERITIES)
def test_elastic_warp_matches_the_reference_for_its_noise(severity, images, x):
    """Given the reference's own uniform fields, smoothing and bilinear reflecting warp agree per pixel.

    float64: both compute in float64 but the reference rounds the displacements to float32 (ulp of a
    30 px displacement ~ 2e-6 px; the photos' gradients stay below 1 per px).  float32: coordinates near
    224 carry an ulp of 1.5e-5 px, the weights a few float32 ulps.
    """
    ref = np.stack([reference("elastic_transform")(im, severity, seed=severity) for im in images]) / 255
    rs = np.random.RandomState(severity)  # the reference draws dx, then dy, from the global state
    side = images.shape[1]
    noise_x, noise_y = (torch.from_numpy(rs.uniform(-0.005 * side, 0.005 * side, (side, side))) for _ in "xy")
    alpha = torch.full((len(images),), (12.5, 16.25, 21.25, 25.0, 30.0)[severity - 1])
    for dtype, tol in ((torch.float64, 1e-6), (torch.float32, 1e-4)):
        fields = (
            noise_y.expand(len(images), -1, -1).to(dtype),
            noise_x.expand(len(images), -1, -1).to(dtype),
        )
        ours = C._elastic_warp(x.to(dtype), *fields, alpha).permute(0, 2, 3, 1).double().numpy()
        assert np.abs(ours - ref).max() <= tol


def _reference_plasma_draws(seed: int, decay: float, map_size: int) -> list[torch.Tensor]:
    """The uniforms the reference's ``plasma_fractal`` draws after ``np.random.seed(seed)``, on [-1, 1]."""
    rs, wibble, out = np.random.RandomState(seed), 100.0, []
    for n in C._plasma_sizes(map_size):
        out += [torch.from_numpy(rs.uniform(-wibble, wibble, (n, n)) / wibble) for _ in range(3)]
        wibble /= decay
    return out


@pytest.mark.parametrize("severity", _SEVERITIES)
def test_fog_matches_the_reference_for_its_fractal_noise(severity, images):
    """Given the reference's own draws, the batched diamond-square fractal and the fog agree per pixel.

    The fractal reaches ~1e4 before its min-max normalisation: float64 keeps ~1e-12 of it, float32
    ~1e-3 absolute, i.e. ~1e-7 after normalisation, times the strength (<= 3).
    """
    strength, decay = ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))[severity - 1]
    ref = np.stack([reference("fog")(im, severity, seed=severity) for im in images]) / 255
    b = len(images)
    draws = [d.expand(b, -1, -1) for d in _reference_plasma_draws(severity, decay, 256)]
    for dtype, tol in ((torch.float64, 1e-9), (torch.float32, 1e-5)):
        plasma = C._plasma([d.to(dtype) for d in draws], torch.full((b,), decay, dtype=torch.float64), 256)
        xx = torch.from_numpy(images).permute(0, 3, 1, 2).to(dtype) / 255  # k / 255 rounded once, in dtype
        ours = C._fog(xx, torch.full((b,), strength), plasma).permute(0, 2, 3, 1).double().numpy()
        assert np.abs(ours - ref).max() <= tol


@pytest.mark.parametrize("name", ["elastic_transform", "fog"])
def test_spatial_noise_is_uniform(name):
    """The ops' own draws (scaled to the reference's intervals): uniform (KS test against the exact law)."""
    bits = C._bits(torch.tensor([3.0]), name, (224, 224))
    for which in (0, 1):
        u = C._unit(bits, which, torch.float64).flatten().numpy()
        assert stats.kstest(u, "uniform").pvalue > 1e-3


@pytest.mark.parametrize("severity", _SEVERITIES)
def test_pixelate_matches_the_reference(severity, images, x):
    ref = np.stack([reference("pixelate")(im, severity) for im in images]) / 255
    # Pillow resamples uint8 in two passes (rows, then columns), each rounding to the nearest level
    diff = np.abs(_ours("pixelate", x, severity) - ref)
    assert diff.max() <= 1 / 255 + 1e-6
    assert diff.mean() <= 0.5 / 255


@pytest.mark.parametrize("severity", _SEVERITIES)
def test_jpeg_compression_is_bit_exact_with_the_reference(severity, images, x):
    ref = np.stack([reference("jpeg_compression")(im, severity) for im in images])
    assert np.array_equal(np.round(_ours("jpeg_compression", x, severity) * 255), ref)


def _pillow_jpeg(image: np.ndarray, quality: int) -> tuple[np.ndarray, dict]:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    decoded = Image.open(buf)
    return np.asarray(decoded), decoded.quantization


@pytest.mark.parametrize("quality", [1, 7, 50, 95, 100])
def test_jpeg_matches_pillow_at_any_quality_and_size(quality, images):
    image = images[1, 3:64, 5:51]  # 61 x 46: partial MCUs at both edges
    expected, tables = _pillow_jpeg(image, quality)
    ours = C.jpeg(to_tensor(image[None]), torch.tensor([quality]))[0].permute(1, 2, 0)
    assert np.array_equal(np.round(ours.double().numpy() * 255), expected)
    mine = C.jpeg_quant_tables(torch.tensor([quality]))[0]
    assert mine[0].flatten().tolist() == list(tables[0]) and mine[1].flatten().tolist() == list(tables[1])


def test_jpeg_severity_interpolates_the_tables_and_fades_in_below_one(x):
    s = torch.tensor([0.25, 1.5])
    y = C.jpeg_compression(x[:2], s)
    first = C.jpeg(x[:1], torch.tensor([25]))
    torch.testing.assert_close(y[0], x[0] + 0.25 * (first[0] - x[0]))
    tables = 0.5 * (C.jpeg_quant_tables(torch.tensor([25]))[0] + C.jpeg_quant_tables(torch.tensor([18]))[0])
    torch.testing.assert_close(y[1:], C._jpeg_round_trip(x[1:2], tables[None]))


# --------------------------------------------------------------------------------------------------
# random ops by their distribution


@pytest.mark.parametrize("severity", _SEVERITIES)
@pytest.mark.parametrize("name", _NOISE)
def test_noise_has_the_reference_distribution(name, severity, images, x):
    ref = np.stack([reference(name)(im, severity, seed=100 * severity + i) for i, im in enumerate(images)])
    ours = _ours(name, x, severity, seed=1000 * severity) * 255
    # rounded to 1e-3 of a level: float noise of either side (1e-5 levels) is gone, but not ties such
    # as 255 k / 60 = 8.5 that rounding to whole levels would break by that noise's sign
    change_ref = np.round(ref - images, 3).ravel()
    change_ours = np.round(ours - images, 3).ravel()
    assert stats.ks_2samp(change_ref, change_ours).pvalue > 1e-3
    se = math.sqrt((change_ref.var() + change_ours.var()) / change_ref.size)
    assert abs(change_ref.mean() - change_ours.mean()) <= 5 * se


_U_EDGES = torch.tensor([0.5 * 2.0**-23, 1 - 0.5 * 2.0**-23], dtype=torch.float64)  # extremes of _unit


@pytest.mark.parametrize("lam", [0.0, 0.01, 0.7, 3.0, 7.5, 12.0, 31.3, 60.0])
def test_poisson_is_the_exact_inverse_cdf_up_to_sixty(lam):
    u = torch.cat((_U_EDGES, torch.linspace(1e-6, 1 - 1e-6, 20001, dtype=torch.float64)))
    k = C._poisson(torch.full_like(u, lam), u, torch.zeros_like(u))
    assert np.array_equal(k.numpy(), stats.poisson.ppf(u.numpy(), lam))


@pytest.mark.parametrize("lam", [60.5, 100.0, 500.0])
def test_poisson_above_sixty_is_within_total_variation_four_in_ten_thousand(lam):
    n = 400_000
    z = torch.special.ndtri((torch.arange(n, dtype=torch.float64) + 0.5) / n)  # z at its n quantiles
    k = C._poisson(torch.full((n,), lam, dtype=torch.float64), torch.zeros(n, dtype=torch.float64), z)
    values, counts = np.unique(k.numpy(), return_counts=True)
    support = np.arange(0, int(values.max()) + 60)
    law = np.zeros(support.size)
    law[values.astype(int)] = counts / n
    assert 0.5 * np.abs(law - stats.poisson.pmf(support, lam)).sum() <= 4e-4


# --------------------------------------------------------------------------------------------------
# ordinary augmentations: the protocol's checks, names, the "corruptions" study set


@pytest.mark.parametrize("name", list(C.CORRUPTIONS))
def test_each_corruption_passes_the_protocol_checks_and_resolves_by_name(name, x):
    from augsens.augment import spec
    from augsens.augment.checks import check_augmentation

    aug = C.CORRUPTIONS[name]
    assert spec(name) is aug and aug.source == "augsens (common corruptions)"
    check_augmentation(aug, x[:, :, :48, :40].contiguous())  # raises AugmentationCheckError on a broken rule


def test_the_corruptions_set_resolves_in_python_and_toml(tmp_path):
    from augsens.config import load_config
    from augsens.engine.factors import resolve_augmentations

    assert resolve_augmentations("corruptions") == tuple(C.CORRUPTIONS)
    cfg = tmp_path / "study.toml"
    cfg.write_text('[model]\nname = "augsens.testing:tiny_cnn"\n[study]\naugmentations = "corruptions"\n')
    assert resolve_augmentations(load_config(cfg).study.augmentations) == tuple(C.CORRUPTIONS)


@pytest.mark.slow
def test_a_sobol_study_of_the_corruptions_runs_like_set1(images):
    import json
    import warnings

    import augsens as ag

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n = 4: the small-sample design warning
        tree = ag.study(
            "augsens.testing:tiny_cnn",
            to_tensor(images[:, ::4, ::4]),
            augmentations="corruptions",
            n=4,
            replicates=1,
            checkpoints=["fc"],
            device="cpu",
            progress=False,
        )
    fc = tree["fc"].dataset
    assert list(fc["factor"].values) == [*C.CORRUPTIONS, "order", "image"]
    assert bool(np.isfinite(fc["ST"].values).all()) and bool(np.isfinite(fc["S1"].values).all())
    recorded = json.loads(tree.attrs["augmentation_specs"])
    assert [r["name"] for r in recorded] == list(C.CORRUPTIONS)
    assert {r["source"] for r in recorded} == {"augsens (common corruptions)"}
    assert recorded[0]["parameters"][0] == {
        "name": "severity",
        "identity": 0.0,
        "integer": False,
        "low": 0.0,
        "high": 5.0,
        "distribution": "uniform",
    }

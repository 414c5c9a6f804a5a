"""PSNR / SSIM follow METHODS.md (clamped [0, 1]; skimage SSIM, data_range 1, gaussian sigma 1.5); spectra."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from models.metrics import log_spectrum, psnr, psnr_from_mse, ssim


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _skimage_ssim(a, b):
    return structural_similarity(b, a, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, channel_axis=2 if a.ndim == 3 else None)


@pytest.mark.parametrize("shape", [(32, 32), (20, 24, 3), (500,)])
def test_psnr_matches_skimage_numpy(rng, shape):
    target = rng.random(shape)
    prediction = np.clip(target + rng.normal(0, 0.05, shape), 0, 1)
    expected = peak_signal_noise_ratio(target, prediction, data_range=1.0)
    assert psnr(prediction, target) == pytest.approx(expected, rel=1e-9)
    assert psnr(prediction.astype(np.float32), target.astype(np.float32)) == pytest.approx(expected, rel=1e-5)


def test_psnr_matches_skimage_torch(rng):
    target = rng.random((24, 24, 3))
    prediction = np.clip(target + rng.normal(0, 0.1, target.shape), 0, 1)
    expected = peak_signal_noise_ratio(target, prediction, data_range=1.0)
    value = psnr(torch.from_numpy(prediction).float(), torch.from_numpy(target).float())
    assert value == pytest.approx(expected, rel=1e-5)
    # float64 tensors give the same answer
    assert psnr(torch.from_numpy(prediction), torch.from_numpy(target)) == pytest.approx(expected, rel=1e-5)


def test_psnr_clamps_prediction_outside_unit_range(rng):
    target = rng.random((16, 16))
    prediction = target + rng.normal(0, 0.3, target.shape)  # well outside [0, 1] in places
    assert prediction.min() < 0 and prediction.max() > 1
    expected = peak_signal_noise_ratio(target, np.clip(prediction, 0, 1), data_range=1.0)
    assert psnr(prediction, target) == pytest.approx(expected, rel=1e-9)
    assert psnr(torch.from_numpy(prediction), torch.from_numpy(target)) == pytest.approx(expected, rel=1e-5)
    # clamping only helps: the unclamped PSNR is lower
    assert psnr(prediction, target) > -10 * math.log10(np.mean((prediction - target) ** 2))
    # a prediction that overshoots a saturated target costs nothing
    assert psnr(np.full((4, 4), 1.7), np.ones((4, 4))) == math.inf


def test_psnr_perfect_match_is_inf(rng):
    target = rng.random((8, 8))
    assert psnr(target, target) == math.inf
    t = torch.from_numpy(target).float()
    assert psnr(t, t.clone()) == math.inf
    assert psnr_from_mse(0.0) == math.inf
    assert psnr_from_mse(0.01) == pytest.approx(20.0)
    assert math.isnan(psnr_from_mse(float("nan")))


def test_psnr_accepts_mixed_tensor_and_array(rng):
    # the signature takes np.ndarray | torch.Tensor for each argument
    target = rng.random((8, 8))
    prediction = np.clip(target + 0.05, 0, 1)
    expected = peak_signal_noise_ratio(target, prediction, data_range=1.0)
    assert psnr(torch.from_numpy(prediction), target) == pytest.approx(expected, rel=1e-5)
    assert psnr(prediction, torch.from_numpy(target)) == pytest.approx(expected, rel=1e-5)


def test_ssim_matches_skimage_gray_and_rgb(rng):
    for shape in [(32, 32), (32, 40, 3)]:
        target = rng.random(shape)
        prediction = np.clip(target + rng.normal(0, 0.1, shape), 0, 1)
        assert ssim(prediction, target) == pytest.approx(_skimage_ssim(prediction, target), abs=1e-12)
        assert ssim(target, target) == pytest.approx(1.0)
    # the gaussian/sigma settings matter: the default uniform-window SSIM differs
    target = rng.random((32, 32))
    prediction = np.clip(target + rng.normal(0, 0.1, target.shape), 0, 1)
    uniform = structural_similarity(target, prediction, data_range=1.0)
    assert ssim(prediction, target) != pytest.approx(uniform, abs=1e-6)


def test_ssim_clamps_prediction_and_rejects_curves(rng):
    target = rng.random((24, 24))
    prediction = target + rng.normal(0, 0.3, target.shape)
    assert ssim(prediction, target) == pytest.approx(_skimage_ssim(np.clip(prediction, 0, 1), target), abs=1e-12)
    with pytest.raises(ValueError):
        ssim(rng.random(100), rng.random(100))


def test_log_spectrum_image_is_centred():
    h, w, k = 16, 24, 3
    x = np.arange(w) / w
    image = np.tile(0.5 + 0.4 * np.cos(2 * np.pi * k * x), (h, 1)).astype(np.float32)
    spectrum = log_spectrum(image)
    assert spectrum.shape == (h, w) and spectrum.dtype == np.float32
    peaks = {tuple(int(i) for i in np.unravel_index(j, spectrum.shape)) for j in np.argsort(spectrum.ravel())[-2:]}
    assert peaks == {(h // 2, w // 2 - k), (h // 2, w // 2 + k)}
    # mean removed: the DC bin (at the centre after fftshift) is ~0
    assert spectrum[h // 2, w // 2] < 1e-4
    assert np.all(spectrum >= 0)


def test_log_spectrum_rgb_averages_channels():
    rng = np.random.default_rng(1)
    gray = rng.random((12, 20)).astype(np.float32)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    assert log_spectrum(rgb).shape == (12, 20)
    assert np.allclose(log_spectrum(rgb), log_spectrum(gray), atol=1e-5)
    assert np.allclose(log_spectrum(np.full((8, 8), 0.3)), 0.0, atol=1e-4)


@pytest.mark.parametrize("n", [64, 101])
def test_log_spectrum_curve_is_one_sided(n):
    k = 5
    curve = np.sin(2 * np.pi * k * np.arange(n) / n)
    spectrum = log_spectrum(curve)
    assert spectrum.shape == (n // 2 + 1,) and spectrum.dtype == np.float32
    assert int(np.argmax(spectrum)) == k

"""Quality metrics and spectra, one convention for every lab (METHODS.md: PSNR on clamped [0, 1] values)."""
from __future__ import annotations

import functools

import math

import numpy as np
import torch


def psnr(prediction: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> float:
    """PSNR in dB of values in [0, 1]; the prediction is clamped to [0, 1] first. ``inf`` for a perfect match."""
    if isinstance(prediction, torch.Tensor) or isinstance(target, torch.Tensor):
        p = torch.as_tensor(prediction).detach().float()
        t = torch.as_tensor(target).detach().float().to(p.device)
        mse = torch.mean((p.clamp(0, 1) - t) ** 2).item()
    else:
        p = np.clip(np.asarray(prediction, dtype=np.float64), 0.0, 1.0)
        mse = float(np.mean((p - np.asarray(target, dtype=np.float64)) ** 2))
    return psnr_from_mse(mse)


def psnr_from_mse(mse: float) -> float:
    if not math.isfinite(mse):
        return float("nan")
    return float("inf") if mse <= 0 else -10.0 * math.log10(mse)


def ssim(prediction: np.ndarray, target: np.ndarray) -> float:
    """SSIM of [0, 1] images (HxW or HxWxC) via scikit-image: data_range 1, Gaussian weights, sigma 1.5."""
    from skimage.metrics import structural_similarity

    p = np.clip(np.asarray(prediction, dtype=np.float64), 0.0, 1.0)
    t = np.asarray(target, dtype=np.float64)
    if p.ndim == 1:
        raise ValueError("SSIM is defined for images, not curves")
    if min(p.shape[:2]) < 7:
        return float("nan")  # smaller than the smallest window scikit-image accepts
    win_size = 11 if min(p.shape[:2]) >= 11 else 7
    return float(structural_similarity(
        p, t, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, win_size=win_size,
        channel_axis=2 if p.ndim == 3 else None,
    ))


def log_spectrum(values: np.ndarray) -> np.ndarray:
    """log(1 + |FFT|) of an image (centred, channels averaged) or of a curve (one-sided), mean removed.

    Returned unnormalised so that views can use fixed levels derived from the target's spectrum.
    """
    v = np.asarray(values, dtype=np.float32)
    if v.ndim == 1:
        return np.log1p(np.abs(np.fft.rfft(v - v.mean()))).astype(np.float32)
    if v.ndim == 3:
        v = v.mean(axis=2)
    magnitude = np.abs(np.fft.fftshift(np.fft.fft2(v - v.mean())))
    return np.log1p(magnitude).astype(np.float32)


def radial_power_spectrum(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies in cycles per sample, mean power) of an image's 2D spectrum averaged over rings of
    equal radius (channels averaged, mean removed), or of a curve's 1D spectrum; 0 < f <= 0.5.

    Power is |FFT|^2 / number of samples, so that Parseval makes it comparable across sizes.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 3:
        v = v.mean(axis=2)
    v = v - v.mean()
    if v.ndim == 1:
        power = np.abs(np.fft.rfft(v)) ** 2 / v.size
        frequencies = np.fft.rfftfreq(v.size)
        return frequencies[1:].astype(np.float32), power[1:].astype(np.float32)
    h, w = v.shape
    power = np.abs(np.fft.fft2(v)) ** 2 / v.size
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    step = 1.0 / max(h, w)
    bins = np.rint(radius / step).astype(np.int64)
    top = int(round(0.5 / step))
    inside = (bins >= 1) & (bins <= top)
    sums = np.bincount(bins[inside], weights=power[inside], minlength=top + 1)
    counts = np.bincount(bins[inside], minlength=top + 1)
    used = counts[1:] > 0
    frequencies = (np.arange(1, top + 1) * step)[used]
    return frequencies.astype(np.float32), (sums[1:][used] / counts[1:][used]).astype(np.float32)


HF_CUTOFF = 0.125
"""Radial frequency (cycles per sample) above which ``high_frequency_energy`` counts power: a quarter of the
way to Nyquist (0.5), e.g. 32 cycles across a 256 px image."""


def high_frequency_energy(values: np.ndarray, cutoff: float = HF_CUTOFF) -> float:
    """Share of an image's (or curve's) spectral energy, mean removed, at radial frequencies above ``cutoff``
    cycles per sample (channels averaged; frequencies beyond Nyquist along the diagonal count as above)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 3:
        v = v.mean(axis=2)
    v = np.nan_to_num(v - np.nanmean(v))
    power = np.abs(np.fft.fftn(v)) ** 2
    total = float(power.sum())
    return float(power[_above(v.shape, cutoff)].sum() / total) if total > 0 else 0.0


@functools.lru_cache(maxsize=8)
def _above(shape: tuple[int, ...], cutoff: float) -> np.ndarray:
    """Mask of the FFT bins of ``shape`` whose radial frequency (cycles per sample) exceeds ``cutoff``."""
    grids = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")
    mask = np.sqrt(sum(g * g for g in grids)) > cutoff
    mask.setflags(write=False)
    return mask

"""Display-ready views of every width of a streamable field: what the width slider flips between.

A ``WidthView`` holds one width's reconstruction, the residual its stage added, both spectra, the radial
power spectrum and its metrics, all at display resolution, so that moving the slider only swaps arrays.
``WidthCache`` renders each trained (frozen) width once per run: its output can never change again, so
while later stages train only the stage in training is re-rendered. A 3D view can keep a mesh per width
in the same cache (one more field on WidthView, filled by the same renderer).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .growth import StageInfo
from .metrics import log_spectrum, psnr, radial_power_spectrum, ssim
from .signals import Signal


@dataclass(frozen=True)
class WidthView:
    """One width of a streamable field at one moment (arrays read-only)."""

    width: int
    params: int
    state: str
    """'trained' (final) or 'training'."""
    step: int
    """Update count of the weights that produced these arrays."""
    reconstruction: np.ndarray
    """[0, 1] display values, like RunSnapshot.reconstruction."""
    residual: np.ndarray
    """What this stage added, in display units: reconstruction_k - reconstruction_{k-1} before clipping,
    channels averaged (HxW or N); for the first stage, its output minus mid-grey (the zero output)."""
    residual_limit: float
    """A robust symmetric colour range for the residual: the 99.5th percentile of its magnitude (> 0)."""
    error: np.ndarray
    """|reconstruction - target|, channels averaged."""
    spectrum: np.ndarray
    residual_spectrum: np.ndarray
    radial_frequencies: np.ndarray
    """Cycles per sample of the radial power spectra below."""
    radial_power: np.ndarray
    residual_radial_power: np.ndarray
    psnr: float
    """PSNR on the part of the signal this width's target covers (all of it unless growing spatially)."""
    ssim: float
    revealed: int
    """Entries of the signal's last axis this width's target covers."""


def residual_display(signal: Signal, output: torch.Tensor, previous: torch.Tensor | None) -> np.ndarray:
    """What a stage added, in display units (half the value difference; channels averaged), shaped like the
    signal; for the first stage (``previous`` None) its output against the zero output."""
    raw = output.detach().float().cpu()
    before = previous.detach().float().cpu() if previous is not None else torch.zeros_like(raw)
    return ((raw - before) * 0.5).mean(dim=1).numpy().reshape(signal.shape).astype(np.float32)


def width_scores(signal: Signal, reconstruction: np.ndarray, target: np.ndarray, revealed: int) -> tuple[float, float]:
    """(PSNR, SSIM) of a width's display values on the part its target covers (SSIM is NaN for curves)."""
    part = (slice(None), slice(0, revealed)) if signal.kind == "image" else (slice(0, revealed),)
    shown, expected = reconstruction[part], target[part]
    return psnr(shown, expected), ssim(shown, expected) if signal.kind == "image" else float("nan")


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


class WidthCache:
    """Renders WidthViews, reusing those of trained widths; one cache per renderer, keyed per run."""

    def __init__(self, signal: Signal):
        self.signal = signal
        self.target = signal.target_display()
        self._views: dict[tuple[int, int, int], WidthView] = {}
        self._raw: dict[tuple[int, int, int], torch.Tensor] = {}

    def forget_other_generations(self, generation: int) -> None:
        for key in [k for k in self._views if k[0] != generation]:
            del self._views[key]
        for key in [k for k in self._raw if k[0] != generation]:
            del self._raw[key]

    def cached_outputs(self, generation: int, run: int, info: StageInfo) -> list[torch.Tensor] | None:
        """Raw outputs of every trained width before the current stage, if all are cached."""
        keys = [(generation, run, k) for k in range(info.stage)]
        if all(key in self._raw for key in keys):
            return [self._raw[key] for key in keys]
        return None

    def render(self, generation: int, run: int, info: StageInfo, outputs: list[torch.Tensor], step: int) -> tuple[WidthView, ...]:
        """Views of every allocated width from their raw outputs (one per allocated stage, in order)."""
        views = []
        for k, output in enumerate(outputs):
            key = (generation, run, k)
            state = info.states[k]
            if state == "trained" and key in self._views:
                views.append(self._views[key])
                continue
            previous = outputs[k - 1] if k else None
            view = self._render_width(k, info, output, previous, step)
            if state == "trained":
                self._views[key] = view
                self._raw[key] = output
            views.append(view)
        return tuple(views)

    def _render_width(self, k: int, info: StageInfo, output: torch.Tensor, previous: torch.Tensor | None,
                      step: int) -> WidthView:
        signal = self.signal
        reconstruction = signal.as_display(output)
        residual = residual_display(signal, output, previous)
        revealed = info.revealed[k]
        value, similarity = width_scores(signal, reconstruction, self.target, revealed)
        frequencies, power = radial_power_spectrum(reconstruction)
        _, residual_power = radial_power_spectrum(residual)
        limit = float(max(np.percentile(np.abs(residual), 99.5), 1e-4))
        error = np.abs(reconstruction - self.target)
        error = error.mean(axis=2) if error.ndim == 3 else error
        return WidthView(
            info.widths[k], info.params[k], info.states[k], step, _readonly(reconstruction), _readonly(residual),
            limit, _readonly(error), _readonly(log_spectrum(reconstruction)), _readonly(log_spectrum(residual)), _readonly(frequencies),
            _readonly(power), _readonly(residual_power), value, similarity, revealed)

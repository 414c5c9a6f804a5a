"""What the first layer of an activated field does: the part of its activation function the field actually
uses, and which frequencies its neurons carry (FINER++ paper, Figs. 1a, 4 and 8, made live).

The first layer sees the coordinates directly, so its pre-activations ``z = w . x + b`` over the signal's
grid say which stretch of the activation is in play: for FINER++ a bias range k pushes |z| out to where the
variable-periodic sine oscillates fastest. A neuron's effective frequency is how fast its output changes
across the domain: ``rate(z) |w| / (2 pi)`` cycles per unit length, with ``rate`` the activation's phase
rate (w0 for SIREN, w0 (2|z| + 1) for FINER++), averaged over the grid and reported per image width.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .activations import Activation

HISTOGRAM_BINS = 96
CURVE_POINTS = (1200, 24000)
"""Fewest and most samples of the activation curve (fast oscillations far from 0 need many)."""
NEURON_IMAGES = 4
"""Neurons shown at each end (lowest and highest effective frequency)."""
HISTOGRAM_VALUES = 32768
"""At most about this many pre-activations (grid points x neurons, an even subsample of the grid) feed the
histogram and the frequencies: the view is drawn for every member of a sweep at every snapshot."""


@dataclass(frozen=True)
class FirstLayerView:
    """Display-ready facts about a field's first layer (arrays read-only)."""

    activation: str
    """Label of the activation (e.g. 'FINER++ sine (w0 30)')."""
    edges: np.ndarray
    """Histogram bin edges of the first layer's pre-activations z over the signal's grid."""
    counts: np.ndarray
    """Histogram counts (share of all neuron x grid-point values per bin)."""
    used: tuple[float, float]
    """The 1st and 99th percentiles of z: the stretch of the activation the field uses."""
    curve_z: np.ndarray
    curve: np.ndarray
    """The activation over curve_z (real part for complex activations), spanning a bit more than the histogram."""
    frequencies: np.ndarray
    """Effective frequency of every neuron, cycles per image width, ascending."""
    low_images: np.ndarray
    """[n, H, W] outputs (real part) of the n neurons with the lowest effective frequencies."""
    high_images: np.ndarray
    """[n, H, W] the same for the highest."""
    low_frequencies: np.ndarray
    high_frequencies: np.ndarray


def phase_rate(activation: Activation, z: torch.Tensor) -> torch.Tensor:
    """d(phase)/dz of the activation's oscillation at z (for Gauss: its inverse width s0, not a frequency)."""
    name = activation.name
    if name == "siren":
        return torch.full_like(z, activation.w0)
    if name == "finer":
        return activation.w0 * (2.0 * z.abs() + 1.0)
    if name == "gauss":
        return torch.full_like(z, activation.s0)
    if name == "wire":
        return torch.full_like(z, activation.wavelet_omega)
    inner = activation.wf * (2.0 * z.abs() + 1.0)
    # exp(-(a sin u)^2) repeats every half period of u; the wavelet's carrier follows u itself
    return 2.0 * inner if name == "finer-gauss" else inner


def first_layer_view(activation: Activation, weight: torch.Tensor, bias: torch.Tensor, coords: torch.Tensor,
                     shape: tuple[int, ...], extent: float) -> FirstLayerView:
    """The view for a first layer ``act(coords @ weight.T + bias)`` over an image grid of ``shape`` (H, W)
    whose x coordinates span [-extent, extent]."""
    with torch.no_grad():
        weight, bias, coords = weight.float().cpu(), bias.float().cpu(), coords.float().cpu()
        step = max(1, coords.shape[0] * weight.shape[0] // HISTOGRAM_VALUES)
        z = torch.addmm(bias, coords[::step], weight.t())  # [sampled rows, neurons]
        sample = z.flatten().numpy()
        lo, hi = (float(v) for v in np.percentile(sample, [1.0, 99.0]))
        span = max(float(np.abs(sample).max()), 1e-3)
        counts, edges = np.histogram(sample, bins=HISTOGRAM_BINS, range=(-span, span))
        counts = counts.astype(np.float32) / max(1, sample.size)
        reach = 1.15 * span
        cycles = float(phase_rate(activation, torch.tensor([reach])).item()) * reach / (2 * math.pi)
        points = int(min(CURVE_POINTS[1], max(CURVE_POINTS[0], 2 * 16 * cycles)))  # ~16 points a period
        curve_z = np.linspace(-reach, reach, points)
        curve = activation.curve(curve_z).astype(np.float32)
        norms = weight.norm(dim=1)
        per_unit = (phase_rate(activation, z).mean(dim=0) * norms / (2 * math.pi)).numpy()
        frequencies = per_unit * 2.0 * extent  # cycles across the image width
        order = np.argsort(frequencies, kind="stable")
        n = min(NEURON_IMAGES, len(order))
        low, high = order[:n], order[::-1][:n]
        chosen = torch.as_tensor(np.concatenate([low, high]))
        outputs = activation(torch.addmm(bias[chosen], coords, weight[chosen].t()))
        outputs = (outputs.real if outputs.is_complex() else outputs).numpy().T.reshape(2 * n, *shape)
    return FirstLayerView(activation.describe(), _ro(edges.astype(np.float32)), _ro(counts), (lo, hi), _ro(curve_z.astype(np.float32)),
                          _ro(curve), _ro(np.sort(frequencies).astype(np.float32)), _ro(outputs[:n].astype(np.float32)),
                          _ro(outputs[n:].astype(np.float32)), _ro(frequencies[low].astype(np.float32)),
                          _ro(frequencies[high].astype(np.float32)))


def first_layer_of(model: torch.nn.Module) -> tuple[Activation, torch.Tensor, torch.Tensor] | None:
    """(activation, weight copy, bias copy) of a plain activated field's first layer; None for other fields."""
    hidden = getattr(model, "hidden", None)
    first = hidden[0] if hidden is not None and len(hidden) else None
    activation = getattr(first, "activation", None)
    if not isinstance(activation, Activation):
        return None
    return activation, first.linear.weight.detach().clone(), first.linear.bias.detach().clone()


def _ro(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array

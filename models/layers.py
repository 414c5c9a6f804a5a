"""Building blocks of coordinate networks: SIREN's weight init and Fourier-feature encodings (the activations
themselves are in models/activations.py)."""
from __future__ import annotations

import math

import torch
from torch import nn


def siren_weight_bound(fan_in: int, w0: float, is_first: bool) -> float:
    """Half-width of SIREN's uniform weight init (Sitzmann et al.; METHODS.md, common conventions).

    First layer: U(-1/fan_in, 1/fan_in). Later layers: U(-sqrt(6/fan_in)/w0, +sqrt(6/fan_in)/w0), so
    that pre-activations w0 * (W x + b) stay roughly unit-variance through depth.
    """
    if is_first:
        return 1.0 / fan_in
    return math.sqrt(6.0 / fan_in) / w0


class FourierFeatures(nn.Module):
    """Random Fourier features ``[cos(2 pi B v), sin(2 pi B v)]`` with ``B ~ N(0, sigma^2)``.

    Coordinates arrive in [-1, 1]; they are mapped to [0, 1] first so that ``sigma`` means what it
    means in Tancik et al. (frequencies per unit-length domain; sigma=10 is their image default).
    ``B`` is a persistent buffer: it is saved with the weights and never trained.
    """

    def __init__(self, in_features: int, num_frequencies: int, sigma: float, generator: torch.Generator | None = None):
        super().__init__()
        self.sigma = float(sigma)
        b = torch.randn(num_frequencies, in_features, generator=generator) * self.sigma
        self.register_buffer("B", b)

    @property
    def out_features(self) -> int:
        return 2 * self.B.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        unit = (x + 1.0) * 0.5
        phase = (2.0 * math.pi) * unit @ self.B.T
        return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)

    def extra_repr(self) -> str:
        return f"frequencies={self.B.shape[0]}, sigma={self.sigma}"

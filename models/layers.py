"""Building blocks of coordinate networks: sine layers (SIREN) and Fourier-feature encodings."""
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


def init_siren_linear_(linear: nn.Linear, w0: float, is_first: bool) -> None:
    """SIREN init of ``linear.weight`` in place; the bias keeps nn.Linear's default init."""
    bound = siren_weight_bound(linear.in_features, w0, is_first)
    with torch.no_grad():
        linear.weight.uniform_(-bound, bound)


class SineLayer(nn.Module):
    """``sin(w0 * (W x + b))`` with SIREN initialisation."""

    def __init__(self, in_features: int, out_features: int, w0: float = 30.0, is_first: bool = False):
        super().__init__()
        self.w0 = float(w0)
        self.is_first = is_first
        self.linear = nn.Linear(in_features, out_features)
        init_siren_linear_(self.linear, self.w0, is_first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # w0 folded into the matmul: one elementwise pass fewer, forward and backward
            return torch.sin(torch.addmm(self.linear.bias, x, self.linear.weight.t(), beta=self.w0, alpha=self.w0))
        return torch.sin(self.w0 * self.linear(x))

    def extra_repr(self) -> str:
        return f"w0={self.w0}, is_first={self.is_first}"


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


ACTIVATIONS = ("sine", "finer")
"""Periodic activations a block-structured field (the streamable one) can use."""


class BlockActivation:
    """``act(inp @ W.T + b)`` for one weight block: the affine map and the activation in one call.

    'sine': sin(w0 z) (SIREN), with w0 folded into the matmul. 'finer': FINER++'s variable-periodic sine
    sin(w0 (|z| + 1) z), where the factor |z| + 1 is treated as a constant in backward (as its reference does).
    """

    def __init__(self, name: str, w0: float):
        if name not in ACTIVATIONS:
            raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
        self.name, self.w0 = name, float(w0)

    def __call__(self, inp: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        if self.name == "sine":
            return torch.sin(torch.addmm(bias, inp, weight.t(), beta=self.w0, alpha=self.w0))
        z = torch.addmm(bias, inp, weight.t())
        return torch.sin(self.w0 * (z.abs().detach() + 1.0) * z)

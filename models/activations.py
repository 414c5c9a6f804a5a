"""Activations of coordinate networks: SIREN's sine, Gauss, WIRE's wavelet and their FINER++ variable-periodic
versions (papers/finer-plus-plus.txt, Eq. 5; METHODS.md).

One ``Activation`` says how a layer's pre-activation ``z = W x + b`` becomes its output and how that layer's
weights are initialised (learning rates per activation: models/scenes.DEFAULT_LR). Every field (plain MLP,
streamable, Local-Global, ResFields) applies the same object after its own affine map, so an activation
choice means the same thing everywhere. FINER++'s bias range k (first-layer biases ~ U(-k, k)) is a property of the field, not of the
activation: see ``init_first_bias_``.

Conventions (paper's parameterisation; the reference code's values follow from them):
- 'siren'          sin(w0 z)
- 'finer'          sin(w0 (|z| + 1) z)
- 'gauss'          exp(-(s0 z)^2)
- 'finer-gauss'    exp(-((s0 / wf) sin(wf (|z| + 1) z))^2)
- 'wire'           exp(j w0' z - |s0 z|^2)                       (complex hidden layers)
- 'finer-wavelet'  u = sin(wf (|z| + 1) z);  exp(j (w0'/wf) u - |(s0/wf) u|^2)   (complex hidden layers)
The factor |z| + 1 is a constant in backward (no gradient flows through it), as in the FINER reference; for
complex z it is taken separately for the real and imaginary parts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .layers import siren_weight_bound

ACTIVATION_NAMES = ("siren", "finer", "gauss", "finer-gauss", "wire", "finer-wavelet")
"""Every activation a field can use, classic ones first, each followed by its FINER++ version."""
ALIASES = {"sine": "siren"}
"""Older names still accepted in configs (checkpoints saved before the FINER++ lab)."""
COMPLEX_ACTIVATIONS = ("wire", "finer-wavelet")
"""Activations with complex-valued hidden layers (the field's output is the real part)."""
LABELS = {"siren": "SIREN", "finer": "FINER++ sine", "gauss": "Gauss", "finer-gauss": "FINER++ Gauss",
          "wire": "WIRE", "finer-wavelet": "FINER++ wavelet"}

DEFAULT_GAUSS_SCALE = 30.0
"""s0 of Gauss and FINER++ Gauss (reference: Gauss scale 30; FINER++ Gauss scale 10 = 30 / wf with wf = 3)."""
DEFAULT_WAVELET_SCALE = 10.0
"""s0 of WIRE and FINER++ wavelet (reference: WIRE scale 10; FINER++ wavelet scale 2 = 10 / wf with wf = 5)."""
DEFAULT_WAVELET_OMEGA = 20.0
"""w0' of WIRE and FINER++ wavelet (reference: WIRE omega_w 20; FINER++ wavelet omega_w 4 = 20 / wf)."""
DEFAULT_OMEGA_F = {"finer-gauss": 3.0, "finer-wavelet": 5.0}
"""wf, the frequency of the inner variable-periodic sine (reference code; the paper states 2.5)."""


def canonical_name(name: str, real_only: bool = False) -> str:
    """The activation's name as ACTIVATION_NAMES spells it; ``real_only`` for fields without complex layers."""
    name = ALIASES.get(name, name)
    if name not in ACTIVATION_NAMES:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATION_NAMES)}")
    if real_only and name in COMPLEX_ACTIVATIONS:
        real = [n for n in ACTIVATION_NAMES if n not in COMPLEX_ACTIVATIONS]
        raise ValueError(f"{LABELS[name]} needs complex-valued hidden layers, which only plain fields have so far; "
                         f"this field takes {', '.join(real)}")
    return name


def _variable_periodic(z: torch.Tensor) -> torch.Tensor:
    """(|z| + 1) z with the factor detached; real and imaginary parts separately for complex z."""
    if z.is_complex():
        factor = torch.complex(z.real.detach().abs() + 1.0, z.imag.detach().abs() + 1.0)
        return torch.complex(z.real * factor.real, z.imag * factor.imag)
    return z * (z.detach().abs() + 1.0)


@dataclass(frozen=True)
class Activation:
    """A pointwise activation with its parameters; ``act(z)`` applies it, ``fused`` adds the affine map."""

    name: str = "siren"
    w0: float = 30.0
    """Frequency factor of 'siren' and 'finer'."""
    scale: float | None = None
    """s0 of the Gauss and wavelet families (None: 30 for Gauss, 10 for wavelets)."""
    wavelet_omega: float = DEFAULT_WAVELET_OMEGA
    """w0' of the wavelet family."""
    omega_f: float | None = None
    """wf of 'finer-gauss' and 'finer-wavelet' (None: the reference's 3 and 5)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", canonical_name(self.name))
        for key in ("w0", "scale", "wavelet_omega", "omega_f"):
            value = getattr(self, key)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"activation {key} must be a positive finite number, got {value}")

    @property
    def is_complex(self) -> bool:
        return self.name in COMPLEX_ACTIVATIONS

    @property
    def variable_periodic(self) -> bool:
        return self.name.startswith("finer")

    @property
    def s0(self) -> float:
        if self.scale is not None:
            return float(self.scale)
        return DEFAULT_GAUSS_SCALE if "gauss" in self.name else DEFAULT_WAVELET_SCALE

    @property
    def wf(self) -> float:
        return float(self.omega_f) if self.omega_f is not None else DEFAULT_OMEGA_F.get(self.name, 1.0)

    @property
    def label(self) -> str:
        return LABELS[self.name]

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        name = self.name
        if name == "siren":
            return torch.sin(self.w0 * z)
        if name == "finer":
            return torch.sin(self.w0 * (z.detach().abs() + 1.0) * z)
        if name == "gauss":
            return torch.exp(-(self.s0 * z) ** 2)
        if name == "wire":
            return _gabor(z, self.wavelet_omega, self.s0)
        inner = torch.sin(self.wf * _variable_periodic(z))
        if name == "finer-gauss":
            return torch.exp(-((self.s0 / self.wf) * inner) ** 2)
        return _gabor(inner, self.wavelet_omega / self.wf, self.s0 / self.wf)

    def fused(self, inp: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``act(inp @ weight_t + bias)`` for [N, a] @ [a, b] or batched [K, N, a] @ [K, a, b] (bias [K, 1, b]).

        SIREN folds w0 into the matmul (one elementwise pass fewer, forward and backward)."""
        affine = torch.baddbmm if inp.dim() == 3 else torch.addmm
        if self.name == "siren":
            return torch.sin(affine(bias, inp, weight_t, beta=self.w0, alpha=self.w0))
        return self(affine(bias, inp, weight_t))

    def weight_bound(self, fan_in: int, is_first: bool) -> float:
        """Half-width of the uniform weight init of a layer followed by this activation (or of the output
        layer after it: ``is_first=False``).

        Sine family: SIREN's (first 1/fan_in; later sqrt(6/fan_in)/w0, where w0 is the factor the layer's
        output is multiplied by: w0, wf for FINER++ Gauss, w0' for wavelets). Gauss and WIRE: PyTorch's
        default nn.Linear init, 1/sqrt(fan_in), as their reference code keeps it.
        """
        if self.name in ("gauss", "wire"):
            return 1.0 / math.sqrt(fan_in)
        factor = {"siren": self.w0, "finer": self.w0, "finer-gauss": self.wf}.get(self.name, self.wavelet_omega)
        return siren_weight_bound(fan_in, factor, is_first)

    def curve(self, z: np.ndarray) -> np.ndarray:
        """The activation over real pre-activations (the real part for complex ones), for plots."""
        with torch.no_grad():
            values = self(torch.as_tensor(np.asarray(z, dtype=np.float64)))
        return (values.real if values.is_complex() else values).numpy()

    def describe(self) -> str:
        if self.name in ("siren", "finer"):
            return f"{self.label} (w0 {self.w0:g})"
        extra = f", wf {self.wf:g}" if self.variable_periodic else ""
        omega = f", w0 {self.wavelet_omega:g}" if self.is_complex else ""
        return f"{self.label} (s0 {self.s0:g}{omega}{extra})"


def _gabor(z: torch.Tensor, omega: float, scale: float) -> torch.Tensor:
    """WIRE's complex Gabor wavelet exp(j omega z - |scale z|^2); real z is promoted to complex."""
    if not z.is_complex():
        z = torch.complex(z, torch.zeros_like(z))
    return torch.exp(1j * omega * z - (scale * z).abs() ** 2)


def uniform_(tensor: torch.Tensor, bound: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """U(-bound, bound) in place; for complex tensors the real and imaginary parts are drawn independently."""
    with torch.no_grad():
        if tensor.is_complex():
            parts = torch.view_as_real(tensor)
            parts.copy_(torch.rand(parts.shape, generator=generator, dtype=parts.dtype) * (2 * bound) - bound)
        else:
            tensor.copy_(torch.rand(tensor.shape, generator=generator, dtype=tensor.dtype) * (2 * bound) - bound)
    return tensor


def init_first_bias_(bias: torch.Tensor, k: float, generator: torch.Generator | None = None) -> None:
    """FINER++'s bias init: U(-k, k) (k = 0 gives zero biases). The draws are those of U(-1, 1) scaled by k,
    so fields that differ only in k share every other number."""
    if not (math.isfinite(k) and k >= 0):
        raise ValueError(f"bias range k must be a finite number >= 0, got {k}")
    with torch.no_grad():
        uniform_(bias, 1.0, generator).mul_(k)

"""Coordinate networks (neural fields) and the config that fully describes one.

A field maps coordinates in [-1, 1]^d to values (targets are scaled to [-1, 1]). ``FieldConfig`` plus the
weights is everything needed to rebuild a field, which is what checkpoints store.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from .activations import ACTIVATION_NAMES, Activation, init_first_bias_, uniform_
from .layers import FourierFeatures

MODEL_KINDS = ACTIVATION_NAMES + ("relu", "fourier")
"""Activated networks (SIREN, FINER++, Gauss, WIRE: models/activations.py), then the ReLU baselines."""


@dataclass(frozen=True)
class FieldConfig:
    """Architecture of a coordinate MLP."""

    kind: str = "siren"
    """An activation of models/activations.py ('siren', 'finer', 'gauss', 'finer-gauss', 'wire',
    'finer-wavelet'), 'relu' (ReLU MLP on raw coordinates) or 'fourier' (random Fourier features followed by
    a ReLU MLP)."""
    in_features: int = 2
    """Coordinate dimension: 1 for curves, 2 for images."""
    out_features: int = 1
    """Value channels: 1 for grayscale and curves, 3 for RGB."""
    width: int = 128
    """Units per hidden layer."""
    depth: int = 3
    """Number of hidden (activated) layers; the network has depth + 1 linear layers."""
    w0: float = 30.0
    """Frequency factor of every sine layer (first and hidden) of 'siren' and 'finer'."""
    bias_range: float | None = None
    """FINER++'s k: first-layer biases ~ U(-k, k). None keeps nn.Linear's default U(-1/sqrt(in), 1/sqrt(in))
    (k = 0.707 for images). Applies to every activated kind, so classic activations can be swept too."""
    scale: float | None = None
    """s0 of the Gauss and wavelet activations (None: 30 for Gauss, 10 for wavelets)."""
    wavelet_omega: float = 20.0
    """w0 of the wavelet activations (WIRE's omega)."""
    omega_f: float | None = None
    """wf, the inner sine's frequency of FINER++ Gauss / wavelet (None: the reference's 3 / 5)."""
    fourier_sigma: float = 10.0
    """Standard deviation of the Fourier-feature frequencies (per unit-length domain)."""
    fourier_frequencies: int = 128
    """Number of Fourier frequencies m; the encoding has 2m features."""
    seed: int = 0
    """Seed for the initial weights (and the Fourier matrix)."""

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}; choose one of {', '.join(MODEL_KINDS)}")
        for name in ("in_features", "out_features", "width", "depth", "fourier_frequencies"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("w0", "fourier_sigma"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value}")
        if self.bias_range is not None and not (math.isfinite(self.bias_range) and self.bias_range >= 0):
            raise ValueError(f"bias range k must be a finite number >= 0, got {self.bias_range}")
        self.activation()  # validates the activation's own parameters

    def activation(self) -> Activation | None:
        """The activation of the hidden layers (None for the ReLU kinds)."""
        if self.kind not in ACTIVATION_NAMES:
            return None
        return Activation(self.kind, w0=self.w0, scale=self.scale, wavelet_omega=self.wavelet_omega,
                          omega_f=self.omega_f)

    @property
    def hidden_width(self) -> int:
        """Units per hidden layer: complex-valued networks (wavelets) use width / sqrt(2) complex units, so
        that their real parameter count matches a real network of ``width`` (as WIRE does)."""
        act = self.activation()
        return max(1, int(self.width / math.sqrt(2))) if act is not None and act.is_complex else self.width

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FieldConfig":
        return config_from_dict(cls, data, "field config")


def config_from_dict(cls, data: dict, what: str):
    """``cls(**data)`` for a config dataclass, naming any key it does not know (files from elsewhere)."""
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what} keys: {', '.join(sorted(unknown))}")
    return cls(**data)


class ActivatedLayer(nn.Module):
    """``act(W x + b)``; complex weights when the layer's input is complex (wavelet activations)."""

    def __init__(self, in_features: int, out_features: int, activation: Activation, is_first: bool):
        super().__init__()
        self.activation = activation
        self.is_first = is_first
        dtype = torch.cfloat if activation.is_complex and not is_first else None
        self.linear = nn.Linear(in_features, out_features, dtype=dtype)
        uniform_(self.linear.weight, activation.weight_bound(in_features, is_first))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and not x.is_complex():
            return self.activation.fused(x, self.linear.weight.t(), self.linear.bias)
        return self.activation(self.linear(x))

    def extra_repr(self) -> str:
        return f"{self.activation.describe()}, is_first={self.is_first}"


class CoordinateMLP(nn.Module):
    """An optional input encoding, ``depth`` activated hidden layers and a linear output layer."""

    def __init__(self, config: FieldConfig):
        super().__init__()
        self.config = config
        generator = torch.Generator().manual_seed(config.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.encoding, self.hidden, self.output = _build_layers(config, generator)
            if config.bias_range is not None and config.activation() is not None:
                # drawn last, so that fields differing only in k share every other initial weight
                init_first_bias_(self.hidden[0].linear.bias, config.bias_range)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        h = self.encoding(coords)
        for layer in self.hidden:
            h = layer(h)
        out = self.output(h)
        return out.real if out.is_complex() else out


def _build_layers(config: FieldConfig, generator: torch.Generator):
    width = config.hidden_width
    activation = config.activation()
    if activation is not None:
        encoding: nn.Module = nn.Identity()
        hidden = [ActivatedLayer(config.in_features, width, activation, is_first=True)]
        hidden += [ActivatedLayer(width, width, activation, is_first=False) for _ in range(config.depth - 1)]
        output = nn.Linear(width, config.out_features, dtype=torch.cfloat if activation.is_complex else None)
        uniform_(output.weight, activation.weight_bound(width, is_first=False))
        return encoding, nn.ModuleList(hidden), output

    if config.kind == "fourier":
        encoding = FourierFeatures(config.in_features, config.fourier_frequencies, config.fourier_sigma, generator)
        first_in = encoding.out_features
    else:
        encoding = nn.Identity()
        first_in = config.in_features
    dims = [first_in] + [width] * config.depth
    hidden = [nn.Sequential(nn.Linear(a, b), nn.ReLU()) for a, b in zip(dims[:-1], dims[1:])]
    return encoding, nn.ModuleList(hidden), nn.Linear(width, config.out_features)


def build_field(config: FieldConfig) -> CoordinateMLP:
    """A freshly initialised field; the same config (seed included) always gives the same weights."""
    return CoordinateMLP(config)


def evaluation_chunk_rows(device: torch.device) -> int:
    """Rows per chunk when evaluating a field: small enough on a CPU for the activations to stay in cache
    (2048 rows: ~3x faster than one 65536-row pass), large on GPUs."""
    return 2048 if device.type == "cpu" else 1 << 16


def evaluate_in_chunks(model: torch.nn.Module, coords: torch.Tensor) -> torch.Tensor:
    """``model(coords)`` without autograd, in row chunks sized for the device (evaluation_chunk_rows).

    A model with its own chunked evaluation (``evaluate_chunked``, e.g. partitioned fields) uses that."""
    own = getattr(model, "evaluate_chunked", None)
    if own is not None:
        return own(coords)
    chunk = evaluation_chunk_rows(coords.device)
    with torch.no_grad():
        outputs = [model(coords[i:i + chunk]) for i in range(0, coords.shape[0], chunk)]
    return torch.cat(outputs) if outputs else coords.new_empty(0, 0)


def count_parameters(module: nn.Module) -> int:
    """Trainable real numbers: a complex weight counts twice (buffers such as the Fourier matrix not at all)."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in module.parameters())

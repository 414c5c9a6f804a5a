"""ResFields (Mihajlovic et al.): coordinate MLPs whose chosen layers have time-dependent weights.

A ResField layer computes ``act((W + W(t)) x + b)`` with the low-rank residual ``W(t) = sum_r v(t)[r] M[r]``: the
spanning set M ([R, out, in]) and the base W are shared over time, the coefficients v are a [T, R] table whose
rows are looked up (nearest row) or linearly interpolated at t in [-1, 1]. Both factors start as 0.01 * randn, so
the initial field is the plain MLP up to a negligible change (the paper's init; zero would freeze M's gradient).

The time t is also an input coordinate (the last one), as in the paper: a plain SIREN on the same samples is the
baseline. Inputs are either flat ``[N, in]`` (rows grouped by their t internally) or grouped ``[G, n, in]`` where
every row of a group shares one t: then one weight matrix is built per group and applied with a batched matmul,
which is what keeps a training step close to a plain MLP's cost (see models/time_training.py).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .activations import Activation, canonical_name, init_first_bias_, uniform_
from .fields import config_from_dict

RESFIELD_ACTIVATIONS = ("siren", "finer")
TIME_MODES = ("interpolate", "lookup")
FACTOR_INIT_STD = 0.01
"""Standard deviation of the initial coefficients v and spanning set M (the paper's N(0, 0.01^2))."""


@dataclass(frozen=True)
class ResFieldConfig:
    """Architecture of a coordinate MLP with ResField layers."""

    kind: str = "siren"
    """Activation of every hidden layer: 'siren' or 'finer' (FINER++ variable-periodic sine)."""
    in_features: int = 3
    """Coordinates including time, t last: 3 for videos (x, y, t), 4 for moving shapes (x, y, z, t)."""
    out_features: int = 3
    width: int = 128
    """Units per hidden layer."""
    depth: int = 3
    """Activated layers; the network has depth + 1 linear layers, numbered 0 (input) to depth (output)."""
    w0: float = 30.0
    """Frequency factor of the sine layers."""
    bias_range: float | None = None
    """FINER++'s k: first-layer biases ~ U(-k, k); None keeps nn.Linear's default."""
    rank: int = 10
    """R: matrices in the spanning set M of each ResField layer."""
    time_rows: int = 24
    """T: rows of the coefficient table v (the number of frames, or fewer: then interpolation shares rows)."""
    layers: tuple[int, ...] | None = None
    """Linear layers with time-dependent weights (0 = input layer, depth = output layer); None: the middle
    ones, 1 .. depth-1 (the paper's choice), or layer 0 for a one-layer network."""
    mode: str = "interpolate"
    """'interpolate': v(t) blends the two nearest rows linearly; 'lookup': the nearest row."""
    seed: int = 0
    """Seed of the initial weights and factors."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", canonical_name(self.kind, real_only=True))
        if self.kind not in RESFIELD_ACTIVATIONS:
            raise ValueError(f"ResFields take a sine activation: choose one of {', '.join(RESFIELD_ACTIVATIONS)}, "
                             f"not {self.kind!r}")
        for name in ("in_features", "out_features", "width", "depth", "rank", "time_rows"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name.replace('_', ' ')} must be at least 1, got {getattr(self, name)}")
        if self.in_features < 2:
            raise ValueError("a temporal field needs at least one space coordinate besides t")
        if self.mode not in TIME_MODES:
            raise ValueError(f"unknown time mode {self.mode!r}; choose one of {', '.join(TIME_MODES)}")
        if not (math.isfinite(self.w0) and self.w0 > 0):
            raise ValueError(f"w0 must be a positive finite number, got {self.w0}")
        if self.layers is not None:
            layers = tuple(sorted({int(i) for i in self.layers}))
            bad = [i for i in layers if not 0 <= i <= self.depth]
            if bad or not layers:
                raise ValueError(f"ResField layers must be between 0 and {self.depth} (the output layer), got "
                                 f"{list(self.layers)}")
            object.__setattr__(self, "layers", layers)

    @property
    def resfield_layers(self) -> tuple[int, ...]:
        if self.layers is not None:
            return self.layers
        return tuple(range(1, self.depth)) if self.depth > 1 else (0,)

    def activation(self) -> Activation:
        return Activation(self.kind, w0=self.w0)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["layers"] = None if self.layers is None else list(self.layers)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "ResFieldConfig":
        data = dict(data)
        if data.get("layers") is not None:
            data["layers"] = tuple(data["layers"])
        return config_from_dict(cls, data, "ResField config")


def coefficient_weights(t: torch.Tensor, rows: int, mode: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lower row, upper row, blend) of times t in [-1, 1] over a table of ``rows`` rows spread evenly over [-1, 1].

    A time within 1e-4 rows of a row's own time snaps to it exactly, so that interpolation at a frame's time is
    bit-identical to looking that frame up."""
    position = (t.clamp(-1.0, 1.0) + 1.0) * 0.5 * (rows - 1)
    nearest = position.round()
    position = torch.where((position - nearest).abs() < 1e-4, nearest, position)
    if mode == "lookup":
        index = nearest.long()
        return index, index, torch.zeros_like(position)
    lower = position.floor().clamp(0, rows - 1)
    return lower.long(), (lower + 1).clamp(max=rows - 1).long(), position - lower


class ResFieldLayer(nn.Module):
    """``act((W + sum_r v(t)[r] M[r]) x + b)``, or without the activation for the output layer."""

    def __init__(self, in_features: int, out_features: int, activation: Activation | None, weight_bound: float,
                 rank: int = 0, rows: int = 1, mode: str = "interpolate"):
        super().__init__()
        self.activation = activation
        self.linear = nn.Linear(in_features, out_features)
        uniform_(self.linear.weight, weight_bound)
        self.rank, self.rows, self.mode = rank, rows, mode
        if rank:  # filled by ResFieldMLP after every base weight is drawn
            self.coefficients = nn.Parameter(torch.zeros(rows, rank))
            """v: [T, R], one row of coefficients per time row."""
            self.basis = nn.Parameter(torch.zeros(rank, out_features, in_features))
            """M: [R, out, in], the spanning set shared over time."""

    def coefficients_at(self, t: torch.Tensor) -> torch.Tensor:
        """v(t): [G, R] for times [G]."""
        lower, upper, blend = coefficient_weights(t, self.rows, self.mode)
        blend = blend.unsqueeze(-1).to(self.coefficients.dtype)
        return self.coefficients[lower] * (1.0 - blend) + self.coefficients[upper] * blend

    def weights_at(self, t: torch.Tensor) -> torch.Tensor:
        """W + W(t): [G, out, in] for times [G]."""
        v = self.coefficients_at(t)
        residual = (v @ self.basis.reshape(self.rank, -1)).reshape(-1, *self.basis.shape[1:])
        return self.linear.weight.unsqueeze(0) + residual

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None, weight: torch.Tensor | None = None) -> torch.Tensor:
        """x: [N, in] with one time t ([1] or scalar), or [G, n, in] with times t [G]; t None: the base weights.
        ``weight`` ([out, in], for 2D x): W + W(t) already built (see ResFieldMLP.frame_weights)."""
        if weight is None:
            weight = self._weight(x, t)
        bias = self.linear.bias if x.dim() == 2 else self.linear.bias.reshape(1, 1, -1)
        weight_t = weight.transpose(-1, -2)
        if self.activation is None:
            return torch.baddbmm(bias, x, weight_t) if x.dim() == 3 else torch.addmm(bias, x, weight_t)
        return self.activation.fused(x, weight_t, bias.expand(x.shape[0], 1, -1) if x.dim() == 3 else bias)

    def _weight(self, x: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
        """[out, in] for 2D x, [G, out, in] for grouped x."""
        if not self.rank or t is None:
            weight = self.linear.weight
            return weight.unsqueeze(0).expand(x.shape[0], -1, -1) if x.dim() == 3 else weight
        weight = self.weights_at(t.reshape(-1))
        return weight[0] if x.dim() == 2 else weight

    def extra_repr(self) -> str:
        kind = self.activation.describe() if self.activation is not None else "linear"
        return f"{kind}, rank={self.rank}, rows={self.rows}, mode={self.mode}"


class ResFieldMLP(nn.Module):
    """``depth`` activated layers and a linear output layer; the layers named by the config are ResField layers.

    Parameter names match models.fields.CoordinateMLP's (``hidden.i.linear.*``, ``output.linear.*`` aside), so a
    plain field's weights map onto the base weights one to one."""

    def __init__(self, config: ResFieldConfig):
        super().__init__()
        self.config = config
        activation = config.activation()
        chosen = set(config.resfield_layers)
        with torch.random.fork_rng(devices=[]):
            # the base weights are drawn exactly as models.fields.CoordinateMLP draws a SIREN's of the same seed,
            # the factors after them: at zero factors the field *is* that SIREN
            torch.manual_seed(config.seed)
            dims = [config.in_features] + [config.width] * config.depth
            self.hidden = nn.ModuleList(
                ResFieldLayer(a, b, activation, activation.weight_bound(a, is_first=i == 0),
                              rank=config.rank if i in chosen else 0, rows=config.time_rows, mode=config.mode)
                for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])))
            self.output = ResFieldLayer(config.width, config.out_features, None,
                                        activation.weight_bound(config.width, is_first=False),
                                        rank=config.rank if config.depth in chosen else 0, rows=config.time_rows,
                                        mode=config.mode)
            if config.bias_range is not None:
                init_first_bias_(self.hidden[0].linear.bias, config.bias_range)
            with torch.no_grad():
                for _, layer in self.resfield_layers():
                    layer.coefficients.normal_(0.0, FACTOR_INIT_STD)
                    layer.basis.normal_(0.0, FACTOR_INIT_STD)
        self.residual = True
        """False: every layer uses its base weights W alone (the paper's Fig. A.1, 'residual off')."""

    @property
    def layers(self) -> list[ResFieldLayer]:
        return [*self.hidden, self.output]

    def resfield_layers(self) -> list[tuple[int, ResFieldLayer]]:
        return [(i, layer) for i, layer in enumerate(self.layers) if layer.rank]

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """coords [N, in] (any mix of times, t in the last column) or [G, n, in] (one time per group)."""
        if coords.dim() == 3:
            return self._forward_groups(coords, coords[:, 0, -1])
        if coords.shape[0] == 0:
            return coords.new_zeros(0, self.config.out_features)
        times, inverse = torch.unique(coords[:, -1], return_inverse=True)
        if times.numel() == 1:
            return self._forward_groups(coords, times)
        out = coords.new_empty(coords.shape[0], self.config.out_features)
        for k in range(times.numel()):
            rows = torch.nonzero(inverse == k).reshape(-1)
            out[rows] = self._forward_groups(coords[rows], times[k:k + 1])
        return out

    def _forward_groups(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x [N, in] with one time t [1], or [G, n, in] with times t [G]."""
        t = t if self.residual else None
        for layer in self.layers:
            x = layer(x, t)
        return x

    @torch.no_grad()
    def frame_weights(self, t: float) -> list[torch.Tensor | None]:
        """Every layer's weight matrix at time t (None for layers without a residual, or with the residual off):
        built once, then reused by ``forward_with`` for every chunk of a frame (scrubbing renders whole frames)."""
        if not self.residual:
            return [None] * len(self.layers)
        times = torch.tensor([float(t)], device=self.output.linear.weight.device)
        return [layer.weights_at(times)[0] if layer.rank else None for layer in self.layers]

    def forward_with(self, x: torch.Tensor, weights: list[torch.Tensor | None]) -> torch.Tensor:
        """The field on rows x [N, in] that all share the time ``weights`` were built for."""
        for layer, weight in zip(self.layers, weights):
            x = layer(x, None, weight)
        return x

    def parameter_split(self) -> dict[str, int]:
        """Parameters shared over time (W, b and the spanning sets M) and per time (the coefficient tables v)."""
        per_time = sum(layer.coefficients.numel() for _, layer in self.resfield_layers())
        total = sum(p.numel() for p in self.parameters())
        return {"shared": total - per_time, "per_time": per_time, "total": total,
                "spanning_sets": sum(layer.basis.numel() for _, layer in self.resfield_layers())}

    def coefficient_tables(self) -> dict[int, torch.Tensor]:
        """v of every ResField layer ([T, R], detached copies), by linear-layer index."""
        return {i: layer.coefficients.detach().clone() for i, layer in self.resfield_layers()}


def resfield_parameters(width: int, depth: int, in_features: int, out_features: int, rank: int, rows: int,
                        layers: tuple[int, ...]) -> int:
    """Parameter count of a ResField MLP without building it."""
    dims = [in_features] + [width] * depth + [out_features]
    total = sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))
    return total + sum(rank * dims[i] * dims[i + 1] + rows * rank for i in layers)


def base_mlp_state(model: ResFieldMLP) -> dict[str, torch.Tensor]:
    """The base weights (W, b) under models.fields.CoordinateMLP's names, for comparisons with a plain field."""
    state = {}
    for i, layer in enumerate(model.hidden):
        state[f"hidden.{i}.linear.weight"] = layer.linear.weight.detach()
        state[f"hidden.{i}.linear.bias"] = layer.linear.bias.detach()
    state["output.weight"] = model.output.linear.weight.detach()
    state["output.bias"] = model.output.linear.bias.detach()
    return state

"""Streamable neural fields (Cho et al., ECCV 2022): one SIREN whose hidden width grows in stages.

Stage k adds ``widths[k] - widths[k-1]`` units to every hidden layer. Its parameters are stored as their
own tensors: the new units' rows of every layer (reading all units of the previous layer, old and new)
and their output columns. The block from new units into old units does not exist at all, so it cannot
drift from zero and is not counted, and the sub-network of width ``widths[k]`` is stages 0..k alone.

Every forward pass runs stage by stage, each stage's matmul reading the contiguous concatenation of the
earlier stages' activations. The arithmetic producing width k's output is therefore the same whatever
was added after it: earlier widths are reproduced bit for bit, not just closely.

Initialisation of a new stage (METHODS.md, Streamable): first-layer rows as SIREN's first layer (bias
optionally drawn from a per-stage range: the FINER++ streamable variant); lateral old -> new columns of
the hidden layers SIREN-initialised over the new layer width; new -> new columns zero; new output
columns zero, so that the output is unchanged when a stage starts and the stage learns the residual.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .fields import config_from_dict, evaluation_chunk_rows
from .activations import Activation, canonical_name


@dataclass(frozen=True)
class StreamableConfig:
    """Architecture of a streamable (width-growing) field."""

    in_features: int = 2
    """Coordinate dimension: 1 for curves, 2 for images."""
    out_features: int = 1
    """Value channels."""
    widths: tuple[int, ...] = (16, 32, 64, 128)
    """Hidden width after each stage, strictly increasing: every one is an executable sub-network."""
    depth: int = 3
    """Hidden (activated) layers, as in FieldConfig."""
    w0: float = 30.0
    """Frequency factor of every sine."""
    activation: str = "siren"
    """A real-valued activation of models/activations.py: 'siren', 'finer' (FINER++ variable-periodic sine,
    sin(w0 (|z|+1) z)), 'gauss' or 'finer-gauss' (with that module's default parameters)."""
    stage_bias_ranges: tuple = ()
    """Per stage, None or (lo, hi): the new units' first-layer biases are drawn from
    U(-hi, -lo) u U(lo, hi) (FINER++ section 5.4: larger ranges for later stages select higher
    frequencies). Missing entries use SIREN's default bias init."""
    seed: int = 0
    """Seed of the initial weights; stage k draws from its own stream (seed, k)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        ranges = tuple(None if r is None else (float(r[0]), float(r[1])) for r in self.stage_bias_ranges)
        object.__setattr__(self, "stage_bias_ranges", ranges)
        if not self.widths:
            raise ValueError("a streamable field needs at least one width")
        if self.widths[0] < 1 or any(b <= a for a, b in zip(self.widths, self.widths[1:])):
            raise ValueError(f"stage widths must be positive and strictly increasing, got {list(self.widths)}")
        for name in ("in_features", "out_features", "depth"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not (math.isfinite(self.w0) and self.w0 > 0):
            raise ValueError(f"w0 must be a positive finite number, got {self.w0}")
        object.__setattr__(self, "activation", canonical_name(self.activation, real_only=True))
        for r in ranges:
            if r is not None and not (0 <= r[0] <= r[1] and math.isfinite(r[1])):
                raise ValueError(f"a stage bias range needs 0 <= lo <= hi, got {r}")

    def activation_fn(self) -> Activation:
        return Activation(self.activation, w0=self.w0)

    def bias_range(self, stage: int):
        return self.stage_bias_ranges[stage] if stage < len(self.stage_bias_ranges) else None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["widths"] = list(self.widths)
        data["stage_bias_ranges"] = [None if r is None else list(r) for r in self.stage_bias_ranges]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "StreamableConfig":
        return config_from_dict(cls, data, "streamable config")


class Stage(nn.Module):
    """The parameters one growth stage adds (see the module docstring for the layout)."""

    def __init__(self, in_features: int, out_features: int, width_before: int, width_after: int, depth: int):
        super().__init__()
        units = width_after - width_before
        self.width_before, self.width_after = width_before, width_after
        self.first_weight = nn.Parameter(torch.empty(units, in_features))
        self.first_bias = nn.Parameter(torch.empty(units))
        self.hidden_weights = nn.ParameterList([nn.Parameter(torch.empty(units, width_after)) for _ in range(depth - 1)])
        self.hidden_biases = nn.ParameterList([nn.Parameter(torch.empty(units)) for _ in range(depth - 1)])
        self.output_weight = nn.Parameter(torch.empty(out_features, units))
        self.output_bias = nn.Parameter(torch.empty(out_features)) if width_before == 0 else None

    @property
    def units(self) -> int:
        return self.width_after - self.width_before


def init_stage_(stage: Stage, config: StreamableConfig, index: int) -> None:
    """The activation's init of a new stage (SIREN's for the sine family), deterministic in (config.seed, index)."""
    g = torch.Generator().manual_seed(config.seed * 1_000_003 + index)

    def uniform_(tensor: torch.Tensor, bound: float) -> None:
        tensor.copy_(torch.rand(tensor.shape, generator=g) * (2 * bound) - bound)

    bound = config.activation_fn().weight_bound
    with torch.no_grad():
        fan_in = config.in_features
        uniform_(stage.first_weight, bound(fan_in, is_first=True))
        bias_range = config.bias_range(index)
        if bias_range is None:
            uniform_(stage.first_bias, 1.0 / math.sqrt(fan_in))
        else:
            lo, hi = bias_range
            magnitude = lo + torch.rand(stage.units, generator=g) * (hi - lo)
            sign = torch.where(torch.rand(stage.units, generator=g) < 0.5, -1.0, 1.0)
            stage.first_bias.copy_(sign * magnitude)
        lateral = bound(stage.width_after, is_first=False)
        for weight, bias in zip(stage.hidden_weights, stage.hidden_biases):
            uniform_(weight, lateral)
            if stage.width_before > 0:
                weight[:, stage.width_before:] = 0.0
            uniform_(bias, 1.0 / math.sqrt(stage.width_after))
        if stage.output_bias is None:
            stage.output_weight.zero_()
        else:
            uniform_(stage.output_weight, bound(stage.units, is_first=False))
            uniform_(stage.output_bias, 1.0 / math.sqrt(stage.units))


class StreamableField(nn.Module):
    """A width-growing SIREN; ``forward(x, stage=k)`` runs the sub-network of width ``widths[k]``."""

    def __init__(self, config: StreamableConfig, stages: int = 1):
        super().__init__()
        self.config = config
        self.activation = config.activation_fn()
        self.stages = nn.ModuleList()
        for _ in range(stages):
            self.grow()

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def widths(self) -> tuple[int, ...]:
        """Widths of the allocated stages."""
        return self.config.widths[:self.num_stages]

    def grow(self) -> Stage:
        """Allocate the next planned stage (freshly initialised) and return it."""
        index = self.num_stages
        if index >= len(self.config.widths):
            raise ValueError(f"all {len(self.config.widths)} planned widths are already allocated; plan a wider one first")
        before = self.config.widths[index - 1] if index else 0
        c = self.config
        stage = Stage(c.in_features, c.out_features, before, c.widths[index], c.depth)
        init_stage_(stage, c, index)
        reference = next(self.parameters(), None)
        if reference is not None:
            stage.to(reference.device)
        self.stages.append(stage)
        return stage

    def plan_width(self, width: int) -> None:
        """Append a wider stage to the plan (it is allocated by the next ``grow``)."""
        self.config = StreamableConfig(**{**self.config.to_dict(), "widths": [*self.config.widths, int(width)]})

    def freeze_before(self, stage: int) -> None:
        """Stages before ``stage`` stop requiring gradients; ``stage`` and later ones are trainable."""
        for index, module in enumerate(self.stages):
            module.requires_grad_(index >= stage)

    def parameters_at(self, stage: int) -> int:
        """Parameter count of the sub-network of width ``widths[stage]`` (removed blocks are not counted)."""
        return sum(p.numel() for module in self.stages[:stage + 1] for p in module.parameters())

    def forward(self, coords: torch.Tensor, stage: int | None = None) -> torch.Tensor:
        return self.forward_widths(coords, stage)[-1]

    def forward_widths(self, coords: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Outputs of widths[0..upto] (default: every allocated stage) from a single pass."""
        upto = self.num_stages - 1 if upto is None else upto
        if not 0 <= upto < self.num_stages:
            raise ValueError(f"stage {upto} is not allocated (this field has {self.num_stages})")
        layers, output, outputs = None, None, []
        for index in range(upto + 1):
            layers, output = self.extend(coords, index, layers, output)
            outputs.append(output)
        return outputs

    def extend(self, coords: torch.Tensor, index: int, layers: list[torch.Tensor] | None, output: torch.Tensor | None):
        """Run stage ``index`` on top of the earlier stages' per-layer activations and output.

        ``layers[l]`` holds the concatenated activations of hidden layer l of stages < index (None for
        stage 0). Returns the same lists extended by this stage, and the output at this stage's width.
        """
        stage = self.stages[index]
        act = self.activation
        h = act.fused(coords, stage.first_weight.t(), stage.first_bias)
        new_layers = [h if layers is None else torch.cat([layers[0], h], dim=1)]
        for l_index, (weight, bias) in enumerate(zip(stage.hidden_weights, stage.hidden_biases)):
            h = act.fused(new_layers[-1], weight.t(), bias)
            new_layers.append(h if layers is None else torch.cat([layers[l_index + 1], h], dim=1))
        if output is None:
            output = torch.addmm(stage.output_bias, h, stage.output_weight.t())
        else:
            output = torch.addmm(output, h, stage.output_weight.t())
        return new_layers, output


def plain_siren_parameters(width: int, depth: int, in_features: int, out_features: int) -> int:
    """Parameter count of a plain SIREN (FieldConfig semantics: ``depth`` hidden layers)."""
    return in_features * width + width + (depth - 1) * (width * width + width) + out_features * width + out_features


def matched_plain_width(parameters: int, depth: int, in_features: int, out_features: int) -> int:
    """The plain-SIREN width whose parameter count is closest to ``parameters`` (the paper's 'individual')."""
    a = depth - 1
    b = in_features + 1 + (depth - 1) + out_features
    c = out_features - parameters
    guess = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a) if a else -c / b
    candidates = {max(1, math.floor(guess)), max(1, math.ceil(guess))}
    return min(candidates, key=lambda w: (abs(plain_siren_parameters(w, depth, in_features, out_features) - parameters), w))


def evaluate_widths_in_chunks(model: StreamableField, coords: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
    """``model.forward_widths`` without autograd, in fixed-size row chunks (the same chunks every call,
    so that a width's output is reproduced bit for bit)."""
    chunk = evaluation_chunk_rows(coords.device)
    pieces: list[list[torch.Tensor]] = []
    with torch.no_grad():
        for i in range(0, coords.shape[0], chunk):
            pieces.append(model.forward_widths(coords[i:i + chunk], upto))
    if not pieces:
        return []
    return [torch.cat([p[k] for p in pieces]) for k in range(len(pieces[0]))]

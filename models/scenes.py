"""Scenes: what a session trains, as plain data, and the trainers built from it (shared by GUI and CLI).

A scene is a signal plus a preset: 'image' trains one field; 'spectral-bias' trains a ReLU MLP, a
Fourier-feature MLP and a SIREN of the same size side by side on the same signal (the intro blog's lesson);
'growth' trains one streamable SIREN through width stages (models/growth.py), optionally next to separate
SIRENs of matched parameter counts (the paper's 'individual' baseline).
"""
from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field, replace

from .fields import FieldConfig
from .growth import GrowthConfig, GrowthTrainer
from .signals import Signal
from .streamable import StreamableConfig, matched_plain_width, plain_siren_parameters
from .training import TrainConfig, Trainer

PRESETS = ("image", "spectral-bias", "growth")

DEFAULT_LR = {"siren": 1e-3, "relu": 1e-3, "fourier": 1e-3}
"""Adam learning rates per model kind that converge on the default working sizes (see README)."""

MODEL_LABELS = {"siren": "SIREN", "relu": "ReLU MLP", "fourier": "Fourier features"}


def default_lr(kind: str) -> float:
    return DEFAULT_LR[kind]


@dataclass(frozen=True)
class Scene:
    """Everything needed to (re)build a session's trainers."""

    field: FieldConfig = dataclass_field(default_factory=FieldConfig)
    """Architecture; for 'spectral-bias' its kind is ignored and all three kinds are built."""
    train: TrainConfig = dataclass_field(default_factory=TrainConfig)
    """Optimisation; for 'spectral-bias' each kind gets its own default learning rate unless lr_override."""
    preset: str = "image"
    """'image', 'spectral-bias' or 'growth'."""
    lr_override: bool = True
    """Use train.lr for every run of a comparison (otherwise each kind's default learning rate)."""
    widths: tuple[int, ...] = (16, 32, 64, 128)
    """'growth': the stage widths (field.width is ignored; depth, w0 and seed apply)."""
    growth: GrowthConfig = dataclass_field(default_factory=GrowthConfig)
    """'growth': steps per stage, progressive or slimmable, plateau test, spatial growing."""
    activation: str = "sine"
    """'growth': 'sine' (SIREN) or 'finer' (FINER++ sine)."""
    stage_bias_ranges: tuple = ()
    """'growth': per stage, None or the (lo, hi) range of the new units' first-layer biases."""
    baseline: bool = False
    """'growth': also train separate SIRENs matching each width's parameter count, each for as many steps
    as the streamable field had trained when that width was finished."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.preset == "growth":
            self.streamable_config(1, 1)  # validates widths, activation and bias ranges
            if self.baseline and self.growth.spatial:
                raise ValueError("the separate-models baseline compares spectral growth; turn spatial growing off")

    def streamable_config(self, in_features: int, out_features: int) -> StreamableConfig:
        return StreamableConfig(in_features=in_features, out_features=out_features, widths=tuple(self.widths),
                                depth=self.field.depth, w0=self.field.w0, activation=self.activation,
                                stage_bias_ranges=tuple(self.stage_bias_ranges), seed=self.field.seed)

    def run_configs(self) -> list[tuple[str, FieldConfig, TrainConfig]]:
        if self.preset == "image":
            return [(run_label(self.field), self.field, self.train)]
        runs = []
        for kind in ("relu", "fourier", "siren"):
            config = replace(self.field, kind=kind)
            lr = self.train.lr if self.lr_override else default_lr(kind)
            runs.append((run_label(config), config, replace(self.train, lr=lr)))
        return runs

    def build(self, signal: Signal) -> list[tuple[str, Trainer]]:
        """Fresh trainers; calling it twice gives identical weights and batches (the seeds are in the configs)."""
        if self.preset == "growth":
            return self._build_growth(signal)
        return [(label, Trainer(signal, f, t)) for label, f, t in self.run_configs()]

    def _build_growth(self, signal: Signal) -> list[tuple[str, Trainer]]:
        config = self.streamable_config(signal.in_features, signal.channels)
        name = "FINER++ streamable" if self.activation == "finer" else "Streamable SIREN"
        label = f"{name} ({self.growth.mode}, widths {'/'.join(map(str, self.widths))})"
        runs: list[tuple[str, Trainer]] = [(label, GrowthTrainer(signal, config, self.train, self.growth))]
        if self.baseline:
            for label, field, steps in self.baseline_configs(signal.in_features, signal.channels):
                trainer = Trainer(signal, field, self.train)
                trainer.step_limit = steps
                runs.append((label, trainer))
        return runs

    def baseline_configs(self, in_features: int, out_features: int) -> list[tuple[str, FieldConfig, int]]:
        """Separate SIRENs matching each stage width's parameter count, with that width's step budget."""
        growth = GrowthTrainer.planned_parameters_of(self.streamable_config(in_features, out_features))
        runs = []
        for k, params in enumerate(growth):
            width = matched_plain_width(params, self.field.depth, in_features, out_features)
            field = replace(self.field, kind="siren", width=width, in_features=in_features, out_features=out_features)
            last = k if self.growth.mode == "progressive" else len(self.widths) - 1
            steps = self.growth.steps_until(last)
            count = plain_siren_parameters(width, self.field.depth, in_features, out_features)
            runs.append((f"separate SIREN w={width} ({count:,} params)", field, steps))
        return runs


DEFAULT_GROWTH_SCENE = Scene(field=FieldConfig(kind="siren", width=128, depth=3, w0=30.0),
                             train=TrainConfig(lr=1e-3, batch_size=16384), preset="growth",
                             growth=GrowthConfig(steps_per_stage=(100, 200, 300, 600)))
"""The growth lab's default: widths 16 -> 32 -> 64 -> 128 on the 256-px cameraman, 1200 steps in all,
more of them to the wider stages (narrow ones saturate early: see README, 'Spectral growth lab')."""

CURVE_GROWTH_SCENE = Scene(field=FieldConfig(kind="siren", width=40, depth=3, w0=30.0),
                           train=TrainConfig(lr=1e-3, batch_size=0), preset="growth", widths=(10, 20, 30, 40),
                           growth=GrowthConfig(stage_steps=150))
"""The paper's Fig. 5: the 1D sum of sinusoids, widths 10 -> 40, 150 full-batch steps per stage."""


def run_label(config: FieldConfig) -> str:
    if config.kind == "siren":
        return f"SIREN (w0={config.w0:g})"
    if config.kind == "fourier":
        return f"Fourier features (sigma={config.fourier_sigma:g})"
    return MODEL_LABELS[config.kind]


DEFAULT_SIGNAL = "camera"
DEFAULT_SIZE = 256
DEFAULT_FIELD = FieldConfig(kind="siren", width=128, depth=3, w0=30.0)
DEFAULT_TRAIN = TrainConfig(lr=default_lr("siren"), batch_size=16384, seed=0, device="auto")
"""The default scene: the 256-px cameraman fitted by a SIREN (tuned to feel alive on a laptop CPU)."""

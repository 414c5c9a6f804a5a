"""Scenes: what a session trains, as plain data, and the trainers built from it (shared by GUI and CLI).

A scene is a signal plus a preset: 'image' trains one field; 'spectral-bias' trains a ReLU MLP, a
Fourier-feature MLP and a SIREN of the same size side by side on the same signal (the intro blog's lesson).
"""
from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field, replace

from .fields import FieldConfig
from .signals import Signal
from .training import TrainConfig, Trainer

PRESETS = ("image", "spectral-bias")

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
    """'image' or 'spectral-bias'."""
    lr_override: bool = True
    """Use train.lr for every run of a comparison (otherwise each kind's default learning rate)."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")

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
        return [(label, Trainer(signal, f, t)) for label, f, t in self.run_configs()]


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

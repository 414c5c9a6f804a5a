"""Scenes: what a session trains, as plain data, and the trainers built from it (shared by GUI and CLI).

A scene is a signal plus a preset: 'image' trains one field; 'spectral-bias' trains a ReLU MLP, a
Fourier-feature MLP and a SIREN of the same size side by side on the same signal (the intro blog's lesson);
'growth' trains one streamable SIREN through width stages (models/growth.py), optionally next to separate
SIRENs of matched parameter counts (the paper's 'individual' baseline).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field as dataclass_field, replace

import torch

from .activations import LABELS, canonical_name
from .croppable import LocalGlobalTrainer, RegionTrainer
from .fields import FieldConfig
from .growth import GrowthConfig, GrowthTrainer
from .local_global import LocalGlobalConfig, partition_of, total_parameters
from .partitions import EXTENSION_INITS, auto_partition, partition_factors_for, partitions_in_box
from .signals import Signal
from .streamable import StreamableConfig, matched_plain_width, plain_siren_parameters
from .sweep import SweepSettings, build_sweep, member_label
from .time_training import TimeSettings, TimeTrainer
from .training import TrainConfig, Trainer

PRESETS = ("image", "spectral-bias", "growth", "crop", "sweep", "time")
PARTITIONED_MODELS = ("local-global", "siren-per-partition")
PARTITIONED_DEPTH = 4
"""Sine layers of the partitioned models by default: the paper's five-layer networks (4 sine + linear)."""
REGIONS = {"top": ((0.0, 0.0), (0.5, 1.0)), "bottom": ((0.5, 0.0), (1.0, 1.0)), "left": ((0.0, 0.0), (1.0, 0.5)),
           "right": ((0.0, 0.5), (1.0, 1.0)), "centre": ((0.25, 0.25), (0.75, 0.75))}
"""Named parts of an image to pre-train on before extending: (lower, upper) fractions of (rows, columns)."""

DEFAULT_3D_PARTITIONS = (4, 4, 4)
"""Partition factors of a croppable field on a 3D shape unless three are given."""

DEFAULT_LR = {"siren": 1e-3, "relu": 1e-3, "fourier": 1e-3, "finer": 1e-3, "gauss": 1e-2, "finer-gauss": 2e-3,
              "finer-wavelet": 2e-3, "wire": 5e-3}
"""Adam learning rates per model kind that converge on the default working sizes without a schedule (see
README). The activations run at twice the FINER++ reference scripts' rates (which decay over 5000 steps;
measured at 96 px, 150 steps: Gauss 27.0 dB at 1e-2 vs 26.1 at 5e-3, FINER++ Gauss 27.6 at 2e-3 vs 25.3 at
1e-3, FINER++ wavelet 39.0 at 2e-3 vs 36.1 at 1e-3), except WIRE, which stays at its 5e-3 (20.0 dB; 2e-3
gives 20.7, 1e-3 19.5)."""

MODEL_LABELS = {"relu": "ReLU MLP", "fourier": "Fourier features", **LABELS}


def default_lr(kind: str) -> float:
    return DEFAULT_LR[kind]


@dataclass(frozen=True)
class CropSettings:
    """The crop & extend lab: how the signal is partitioned, how big the field is, what it is compared to."""

    model: str = "local-global"
    """'local-global' (local sub-networks + global SIREN + merge) or 'siren-per-partition'."""
    partitions: tuple[int, ...] = (8, 8)
    """Parts per axis in array order (rows, columns); ignored when partition_size is set."""
    partition_size: int = 0
    """Automatic partitioning: samples per partition side (e.g. 32 px); 0 uses ``partitions``."""
    params: int = 67_000
    """Parameter budget that sets the local and global widths (paper, Appendix A); 0 uses the widths below."""
    global_ratio: float = 0.1
    """Wanted share of global weights (global SIREN + merge) under a budget; the paper recommends 5-15%."""
    local_width: int = 14
    """Local sub-network width when params is 0."""
    global_width: int = 84
    """Global SIREN width when params is 0."""
    baselines: bool = False
    """Also train a plain SIREN and the other partitioned model at a matched parameter count."""
    extend: bool = False
    """The extension experiment (paper Fig. 7): train on ``region`` first, then add the missing partitions
    at step ``extend_at``, next to a smaller SIREN fine-tuned on the whole signal and a new full-size SIREN."""
    region: str = "top"
    """Part trained before extending: top, bottom, left, right or centre."""
    extend_at: int = 300
    """Step at which the extension starts (the GUI can also start it earlier)."""
    extension_init: str = "copy"
    """How added partitions start: copy (the paper's), reflect or fresh (models/partitions.py)."""
    activation: str = "siren"
    """Every layer's activation: 'siren', 'finer', 'gauss' or 'finer-gauss' (models/activations.py)."""
    bias_range: float | None = None
    """FINER++'s k for the first layers (local and global): biases ~ U(-k, k); None: nn.Linear's default."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "partitions", tuple(int(c) for c in self.partitions))
        object.__setattr__(self, "activation", canonical_name(self.activation, real_only=True))
        if self.model not in PARTITIONED_MODELS:
            raise ValueError(f"unknown partitioned model {self.model!r}; choose one of {', '.join(PARTITIONED_MODELS)}")
        if self.region not in REGIONS:
            raise ValueError(f"unknown region {self.region!r}; choose one of {', '.join(REGIONS)}")
        if self.extension_init not in EXTENSION_INITS:
            raise ValueError(f"unknown extension init {self.extension_init!r}; choose one of {', '.join(EXTENSION_INITS)}")
        if self.extend_at < 0 or self.params < 0 or self.partition_size < 0:
            raise ValueError("extend_at, params and partition_size must not be negative")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["partitions"] = list(self.partitions)
        return data


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
    activation: str = "siren"
    """'growth': the streamable field's activation ('siren', 'finer', 'gauss', 'finer-gauss')."""
    stage_bias_ranges: tuple = ()
    """'growth': per stage, None or the (lo, hi) range of the new units' first-layer biases."""
    baseline: bool = False
    """'growth': also train separate SIRENs matching each width's parameter count, each for as many steps
    as the streamable field had trained when that width was finished."""
    crop: CropSettings = dataclass_field(default_factory=CropSettings)
    """'crop': the Local-Global lab's settings (field.depth, w0, seed apply; field.width does not)."""
    sweep: SweepSettings = dataclass_field(default_factory=SweepSettings)
    """'sweep': activations and bias ranges k trained side by side (field gives width, depth, w0, seed; train.lr
    is SIREN's learning rate, the others scale with their defaults unless sweep.lr_per_activation is off)."""
    time: TimeSettings = dataclass_field(default_factory=TimeSettings)
    """'time': the ResFields lab on a video or a moving shape (field gives width, depth, w0, k and seed)."""

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
        if self.preset == "crop":
            return self._build_crop(signal)
        if self.preset == "sweep":
            return self._build_sweep(signal)
        if self.preset == "time" or signal.time is not None:
            return self._build_time(signal)
        return [(label, Trainer(signal, f, t)) for label, f, t in self.run_configs()]

    def _build_time(self, signal: Signal) -> list[tuple[str, Trainer]]:
        """The ResField model (or a plain MLP), then what it is compared to; every run holds out the same pixels."""
        settings = self.time
        plain = replace(self.field, kind="siren" if settings.model == "resfield" else settings.model,
                        in_features=signal.in_features, out_features=signal.channels)
        if settings.model != "resfield":
            return [(f"{run_label(plain)} w={plain.width}", TimeTrainer(signal, plain, self.train, settings))]
        config = settings.resfield_config(self.field, signal)
        trainer = TimeTrainer(signal, config, self.train, settings)
        name = f"{MODEL_LABELS[config.kind]}+ResFields w={config.width}, rank {config.rank}"
        runs: list[tuple[str, Trainer]] = [(name, trainer)]
        if settings.compare in ("same-width", "matched"):
            runs.append((f"SIREN w={plain.width} (same width)", TimeTrainer(signal, plain, self.train, settings)))
        if settings.compare == "matched":
            width = matched_plain_width(trainer.params, self.field.depth, signal.in_features, signal.channels)
            wide = replace(plain, width=width)
            runs.append((f"SIREN w={width} (matched parameters)", TimeTrainer(signal, wide, self.train, settings)))
        return runs

    def sweep_members(self) -> list[tuple[FieldConfig, TrainConfig]]:
        """(field, optimisation) of every member of a 'sweep' scene, in display order."""
        runs = []
        for config in self.sweep.members(self.field):
            lr = self.train.lr
            if self.sweep.lr_per_activation:
                lr *= default_lr(config.kind) / default_lr("siren")
            runs.append((config, replace(self.train, lr=lr)))
        return runs

    def _build_sweep(self, signal: Signal) -> list[tuple[str, Trainer]]:
        members = self.sweep_members()
        trainers = build_sweep(signal, [f for f, _ in members], [t for _, t in members], self.sweep.strategy)
        return [(member_label(f), trainer) for (f, _), trainer in zip(members, trainers)]

    def _build_growth(self, signal: Signal) -> list[tuple[str, Trainer]]:
        config = self.streamable_config(signal.in_features, signal.channels)
        name = f"Streamable {config.activation_fn().label}"
        label = f"{name} ({self.growth.mode}, widths {'/'.join(map(str, self.widths))})"
        runs: list[tuple[str, Trainer]] = [(label, GrowthTrainer(signal, config, self.train, self.growth))]
        if self.baseline:
            for label, field, steps in self.baseline_configs(signal.in_features, signal.channels):
                trainer = Trainer(signal, field, self.train)
                trainer.step_limit = steps
                runs.append((label, trainer))
        return runs

    def partitioned_config(self, signal: Signal, model: str | None = None, params: int | None = None) -> LocalGlobalConfig:
        """The crop lab's field for ``signal``: partition factors (manual or from a partition size) and widths
        (given, or from the parameter budget and global ratio; siren-per-partition has no global weights)."""
        crop = self.crop
        model = model or crop.model
        if signal.kind == "sdf":  # a 3D shape: one factor per axis (the image defaults do not apply)
            factors = crop.partitions if len(crop.partitions) == 3 else DEFAULT_3D_PARTITIONS
        else:
            factors = partition_factors_for(signal.shape, crop.partition_size) if crop.partition_size else crop.partitions
        base = LocalGlobalConfig(in_features=signal.in_features, out_features=signal.channels, partitions=factors,
                                 extent=signal.extent, local_width=crop.local_width,
                                 global_width=crop.global_width if model == "local-global" else 0,
                                 depth=self.field.depth, w0=self.field.w0, seed=self.field.seed,
                                 activation=crop.activation, bias_range=crop.bias_range)
        budget = crop.params if params is None else params
        if budget:
            return auto_partition(base, budget, crop.global_ratio if model == "local-global" else 0.0)
        return base

    def region_partitions(self, config: LocalGlobalConfig) -> list[int]:
        lower, upper = REGIONS[self.crop.region]
        if len(config.partitions) != 2:
            raise ValueError("the extension experiment needs an image (2D partitions)")
        return partitions_in_box(config, lower, upper)

    def _build_crop(self, signal: Signal) -> list[tuple[str, Trainer]]:
        crop = self.crop
        config = self.partitioned_config(signal)
        name = "Local-Global SIREN" if crop.model == "local-global" else "SIREN per partition"
        grid = "x".join(map(str, config.partitions))
        if crop.extend:
            region = self.region_partitions(config)
            half = replace(config, present=tuple(region))
            trainer = LocalGlobalTrainer(signal, half, self.train, crop.extend_at, crop.extension_init)
            runs: list[tuple[str, Trainer]] = [(f"{name} {grid}, extended ({crop.extension_init})", trainer)]
            rows = torch.nonzero(torch.isin(partition_of(config, signal.coords), torch.tensor(region))).reshape(-1)
            small = self._matched_siren(signal, total_parameters(half))
            full = self._matched_siren(signal, total_parameters(config, config.num_partitions))
            runs.append((f"SIREN w={small.width}, fine-tuned", RegionTrainer(signal, small, self.train, rows, crop.extend_at)))
            runs.append((f"SIREN w={full.width}, from scratch", RegionTrainer(signal, full, self.train, None, crop.extend_at,
                                                                            from_scratch=True)))
            return runs
        runs = [(f"{name} {grid} ({config.local_width}/{config.global_width})",
                 LocalGlobalTrainer(signal, config, self.train))]
        if crop.baselines:
            other = "siren-per-partition" if crop.model == "local-global" else "local-global"
            other_config = self.partitioned_config(signal, other, total_parameters(config))
            other_name = "SIREN per partition" if other == "siren-per-partition" else "Local-Global SIREN"
            runs.append((f"{other_name} {grid} ({other_config.local_width}/{other_config.global_width})",
                         LocalGlobalTrainer(signal, other_config, self.train)))
            plain = self._matched_siren(signal, total_parameters(config))
            runs.append((f"SIREN w={plain.width} (matched)", Trainer(signal, plain, self.train)))
        return runs

    def _matched_siren(self, signal: Signal, params: int) -> FieldConfig:
        width = matched_plain_width(params, self.field.depth, signal.in_features, signal.channels)
        return replace(self.field, kind="siren", width=width, in_features=signal.in_features, out_features=signal.channels)

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


DEFAULT_CROP_SCENE = Scene(field=FieldConfig(kind="siren", depth=PARTITIONED_DEPTH, w0=30.0),
                           train=TrainConfig(lr=1e-3, batch_size=16384),
                           preset="crop", crop=CropSettings())
"""The crop lab's default: the 256-px cameraman, 8x8 partitions, ~67k parameters with 10% global weights."""

DEFAULT_EXTEND_SCENE = replace(DEFAULT_CROP_SCENE, train=replace(DEFAULT_CROP_SCENE.train, batch_size=0),
                               crop=CropSettings(extend=True))
"""The extension experiment: top half first, the bottom half's partitions added at step 300; full batch, as
the paper trains images (with minibatches of 16384 the extended field ends level with the fine-tuned SIREN
instead of ahead of both SIRENs: see README)."""


def run_label(config: FieldConfig) -> str:
    if config.kind == "siren":
        return f"SIREN (w0={config.w0:g})"
    if config.kind in LABELS:
        return member_label(config)
    if config.kind == "fourier":
        return f"Fourier features (sigma={config.fourier_sigma:g})"
    return MODEL_LABELS[config.kind]


DEFAULT_SIGNAL = "camera"
DEFAULT_SIZE = 256
DEFAULT_FIELD = FieldConfig(kind="siren", width=128, depth=3, w0=30.0)
DEFAULT_TRAIN = TrainConfig(lr=default_lr("siren"), batch_size=16384, seed=0, device="auto")
"""The default scene: the 256-px cameraman fitted by a SIREN (tuned to feel alive on a laptop CPU)."""

DEFAULT_SWEEP_SCENE = Scene(field=FieldConfig(kind="finer", width=64, depth=3, w0=30.0),
                            train=TrainConfig(lr=default_lr("siren"), batch_size=0, seed=0, device="auto"),
                            preset="sweep", sweep=SweepSettings())
DEFAULT_SWEEP_SIZE = 96
"""The FINER++ lab's default: six bias ranges of a 3x64 FINER++ field and a SIREN reference on the 96-px
cameraman, full batch (so every cell's snapshot reuses the step's forward pass). On one CPU core every cell
trains at ~5 steps/s and is redrawn ~2.5 times a second (at 128 px: 2.7 steps/s, 2.1 redraws/s)."""

DEFAULT_SDF_SIGNAL = "torus"
DEFAULT_SDF_SCENE = Scene(field=FieldConfig(kind="siren", width=64, depth=3, w0=20.0),
                          train=TrainConfig(lr=1e-3, batch_size=8192, seed=0, device="auto"))
"""The 3D lab's default: a 3x64 SIREN (w0 = 20) regressing signed distances, minibatches of 8192 of the 200k
near-surface + uniform samples. Measured on one CPU core: ~30 ms a step; after 400 steps Chamfer-L1 0.0048 on the
torus and 0.0067 on the bumpy sphere (w0 = 30 gave 0.015 on the torus: noisier surfaces), and a 64^3 narrow-band
mesh in ~0.2 s, so the live view refreshes about once a second (see README, '3D')."""

DEFAULT_SDF_GROWTH_SCENE = Scene(field=FieldConfig(kind="siren", width=64, depth=3, w0=20.0),
                                 train=TrainConfig(lr=1e-3, batch_size=8192, seed=0, device="auto"), preset="growth",
                                 widths=(8, 16, 32, 64), growth=GrowthConfig(steps_per_stage=(150, 150, 200, 300)))
"""Spectral growth in 3D: a streamable SIREN of widths 8 -> 16 -> 32 -> 64 on a signed distance field, each
trained width extracted once (frozen) and the one in training refreshed live."""

DEFAULT_SDF_CROP_SCENE = Scene(field=FieldConfig(kind="siren", depth=PARTITIONED_DEPTH, w0=20.0),
                               train=TrainConfig(lr=1e-3, batch_size=8192, seed=0, device="auto"), preset="crop",
                               crop=CropSettings(partitions=DEFAULT_3D_PARTITIONS, params=40_000))
"""The crop lab in 3D: a Local-Global SIREN with 4x4x4 partitions (~40k parameters, 10% global) on a signed
distance field; the partitions are boxes in the 3D view, and a click on the slice crops or restores one."""

DEFAULT_TIME_SCENE = Scene(field=FieldConfig(kind="siren", width=96, depth=3, w0=30.0),
                           train=TrainConfig(lr=1e-3, batch_size=8192, seed=0, device="auto", lr_decay_steps=1000),
                           preset="time", time=TimeSettings(rank=10, compare="same-width"))
"""The time lab's default: SIREN+ResFields (3x96, rank 10, one coefficient row per frame, layers 1-2) next to a plain
SIREN of the same width, on the synthesized 64-px 24-frame tour; batches of 8 frames x 1024 pixels, 10% of every
frame held out; the learning rate decays to 1e-4 over 1000 steps (held-out PSNR after 1000 steps: ResFields 25.95 dB
instead of 25.11 at a constant rate, the SIREN 23.00 instead of 21.45; see README, 'Time lab')."""

DEFAULT_SHAPE_TIME_SCENE = Scene(field=FieldConfig(kind="siren", width=64, depth=3, w0=20.0),
                                 train=TrainConfig(lr=1e-3, batch_size=8192, seed=0, device="auto", lr_decay_steps=2000),
                                 preset="time", time=TimeSettings(rank=10, compare="none"))
"""Moving shapes: SIREN+ResFields 3x64 (w0 20, as the static 3D lab), rank 10, MSE on the distances (the paper's MAPE
loss is an option: here it leaves floaters); the learning rate decays to 1e-4 over 2000 steps (at a constant 1e-3 the
bounce's loss jumps 300x near step 1100 and its mean Chamfer-L1 after 2000 steps is 0.0119 instead of 0.0045); its mesh
at the slider's time refreshes live."""

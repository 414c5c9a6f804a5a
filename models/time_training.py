"""Training on temporal signals (videos, moving shapes): batches grouped by frame, a held-out split, per-frame PSNR.

Every step draws ``frames_per_batch`` frames and the same number of training samples from each, as a grouped
``[F, n, in]`` batch: a ResField MLP builds one weight matrix per frame and runs batched matmuls (one of the two
things that make ResFields cheap, the other being the low rank), a plain field sees the same samples flattened.
A fixed share of every frame's samples (10% by default, the ResFields paper's protocol) is never trained on: the
held-out PSNR measures how well a model generalises between the pixels it saw, not just how well it memorises.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from .fields import FieldConfig, config_from_dict
from .metrics import psnr_from_mse
from .resfields import TIME_MODES, ResFieldConfig, ResFieldMLP
from .signals import TIME_KINDS, Signal
from .training import TrainConfig, Trainer

TIME_MODELS = ("resfield", "siren", "finer")
"""'resfield': a sine MLP with ResField layers; 'siren' / 'finer': a plain MLP (t as just another input)."""
COMPARISONS = ("none", "same-width", "matched")
"""What a ResField run is trained next to: nothing, a plain MLP of the same width, or that and a wider plain MLP
with the ResField model's parameter count (the paper's Siren-1024 vs Siren-512+ResFields)."""
LOSSES = ("mse", "mape")
HOLDOUT_SEED = 1234
"""The held-out split does not depend on the model's seeds: every run of a comparison holds out the same pixels."""


@dataclass(frozen=True)
class TimeSettings:
    """The time lab: which temporal model, how its batches are drawn, what it is compared to."""

    model: str = "resfield"
    """'resfield' (SIREN or FINER++ with ResField layers: ``activation``), 'siren' or 'finer' (plain MLPs)."""
    activation: str = "siren"
    """The ResField model's activation: 'siren' or 'finer'."""
    rank: int = 10
    """R: spanning-set size of each ResField layer."""
    time_rows: int = 0
    """T: coefficient rows; 0 = one per frame (the paper's default), fewer share rows by interpolation."""
    layers: tuple[int, ...] | None = None
    """ResField layers by linear-layer index (0 = input, depth = output); None: the middle ones."""
    mode: str = "interpolate"
    """'interpolate' or 'lookup' (nearest coefficient row)."""
    compare: str = "same-width"
    """'none', 'same-width' (plain SIREN of the same width) or 'matched' (also a wider SIREN with as many
    parameters as the ResField model: on a CPU it costs several times more per step)."""
    holdout: float = 0.1
    """Share of every frame's samples held out from training (videos; the paper's 10%). Temporal SDFs: 0."""
    holdout_frames: int = 0
    """k > 1: every k-th frame (never the first or the last) is never trained on at all, a test of interpolation in
    time (the paper's Tab. A.2: with one coefficient row per frame those rows never train; fewer rows interpolate);
    0: every frame is trained on."""
    frames_per_batch: int = 8
    """Frames per training step; the step's samples are split evenly among them."""
    loss: str = "mse"
    """'mse', or 'mape' (|p - g| / (|g| + 0.01), the ResFields paper's temporal-SDF loss). MSE for moving shapes too:
    measured on the morph (3x64, 600 steps), MAPE leaves floaters far from the surface, where its weight is small
    (mean Chamfer-L1 0.10 against 0.009 with MSE; see README, 'Time lab')."""

    def __post_init__(self) -> None:
        if self.model not in TIME_MODELS:
            raise ValueError(f"unknown time model {self.model!r}; choose one of {', '.join(TIME_MODELS)}")
        if self.compare not in COMPARISONS:
            raise ValueError(f"unknown comparison {self.compare!r}; choose one of {', '.join(COMPARISONS)}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if self.mode not in TIME_MODES:
            raise ValueError(f"unknown time mode {self.mode!r}; choose one of {', '.join(TIME_MODES)}")
        if not 0.0 <= self.holdout < 1.0:
            raise ValueError(f"the held-out share must lie in [0, 1), got {self.holdout}")
        if self.holdout_frames == 1 or self.holdout_frames < 0:
            raise ValueError(f"held-out frames: every k-th frame with k >= 2, or 0 for none; got {self.holdout_frames}")
        if self.rank < 1 or self.time_rows < 0 or self.frames_per_batch < 1:
            raise ValueError("rank and frames per batch must be at least 1, time rows at least 0")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))

    def holdout_for(self, signal: Signal) -> float:
        return self.holdout if signal.kind == "video" else 0.0

    def resfield_config(self, field: FieldConfig, signal: Signal) -> ResFieldConfig:
        rows = self.time_rows or signal.time.frames
        return ResFieldConfig(kind=self.activation, in_features=signal.in_features, out_features=signal.channels,
                              width=field.width, depth=field.depth, w0=field.w0, bias_range=field.bias_range,
                              rank=self.rank, time_rows=rows, layers=self.layers, mode=self.mode, seed=field.seed)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["layers"] = None if self.layers is None else list(self.layers)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "TimeSettings":
        return config_from_dict(cls, data, "time settings")


def unseen_frames(frames: int, every: int) -> tuple[int, ...]:
    """The frames held out entirely: every ``every``-th one, never the first or the last (none for every = 0)."""
    return tuple(range(every - 1, frames - 1, every)) if every > 1 else ()


def holdout_split(signal: Signal, share: float, seed: int = HOLDOUT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """(train rows [T, n_train], held-out rows [T, n_test]): the same share of every frame, drawn once."""
    axis = signal.time
    per_frame = axis.samples_per_frame
    n_test = int(round(share * per_frame)) if share > 0 else 0
    if n_test >= per_frame:
        raise ValueError(f"holding out {share:.0%} of {per_frame} samples per frame leaves nothing to train on")
    generator = torch.Generator().manual_seed(seed)
    order = torch.stack([torch.randperm(per_frame, generator=generator) for _ in range(axis.frames)])
    rows = order + (torch.arange(axis.frames) * per_frame).unsqueeze(1)
    return rows[:, n_test:].sort(dim=1).values, rows[:, :n_test].sort(dim=1).values


class TimeTrainer(Trainer):
    """A field (plain or ResField) on a temporal signal, trained on frame-grouped batches of its training rows."""

    def __init__(self, signal: Signal, field_config: FieldConfig | ResFieldConfig, train_config: TrainConfig,
                 settings: TimeSettings = TimeSettings()):
        if signal.time is None or signal.kind not in TIME_KINDS:
            raise ValueError(f"{signal.name} has no time axis: the time lab needs a video or a moving shape")
        self.settings = settings
        self.loss_kind = settings.loss
        super().__init__(signal, field_config, train_config)
        train_rows, test_rows = holdout_split(signal, settings.holdout_for(signal))
        self.frame_train_rows = train_rows.to(self.device)
        """[T, n_train]: every frame's training rows."""
        self.frame_test_rows = test_rows.to(self.device)
        """[T, n_test]: every frame's held-out rows (n_test = 0 without a held-out share)."""
        frames = signal.time.frames
        self.unseen_frames = unseen_frames(frames, settings.holdout_frames)
        """Frames never trained on (see TimeSettings.holdout_frames)."""
        unseen = set(self.unseen_frames)
        self.train_frames = torch.tensor([k for k in range(frames) if k not in unseen], device=self.device)
        """The frames batches are drawn from."""
        trained = self.frame_train_rows[self.train_frames]
        self.train_rows = trained.reshape(-1) if test_rows.numel() or unseen else None
        self.frames_per_batch = min(settings.frames_per_batch, len(self.train_frames))
        per_frame = train_rows.shape[1]
        wanted = self.batch_size if self.batch_size < self.coords.shape[0] else per_frame * frames
        self.samples_per_frame = max(1, min(per_frame, wanted // self.frames_per_batch))

    def _build_model(self) -> torch.nn.Module:
        if isinstance(self.field_config, ResFieldConfig):
            return ResFieldMLP(self.field_config)
        return super()._build_model()

    @property
    def is_resfield(self) -> bool:
        return isinstance(self.model, ResFieldMLP)

    def grouped_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This step's rows, [F, n]: F distinct random frames, n random training rows of each."""
        frames = self.train_frames
        if self.frames_per_batch < len(frames):
            order = torch.randperm(len(frames), device=self.device, generator=self.generator)
            frames = frames[order[:self.frames_per_batch]]
        rows = self.frame_train_rows[frames]
        if self.samples_per_frame < rows.shape[1]:
            picks = torch.randint(0, rows.shape[1], (rows.shape[0], self.samples_per_frame), device=self.device,
                                  generator=self.generator)
            rows = torch.gather(rows, 1, picks)
        return rows, self.coords[rows]

    def _loss(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        rows, coords = self.grouped_batch()
        targets = self.targets[rows]
        if self.is_resfield:
            prediction = self.model(coords)
        else:
            prediction = self.model(coords.reshape(-1, coords.shape[-1])).reshape(*rows.shape, -1)
        if self.loss_kind == "mape":
            loss = torch.mean((prediction - targets).abs() / (targets.abs() + 0.01))
        else:
            loss = torch.mean((prediction - targets) ** 2)
        return loss, None

    def frame_predictions(self) -> torch.Tensor:
        """The field on every sample, frame by frame ([T * P, C]; no autograd)."""
        axis = self.signal.time
        with torch.no_grad():
            outputs = [self.predict_frame(k) for k in range(axis.frames)]
        return torch.cat(outputs)

    def predict_frame(self, frame: int) -> torch.Tensor:
        rows = self.signal.time.rows(frame)
        return self.predict(self.coords[rows])

    def split_psnr(self, prediction: torch.Tensor | None = None) -> dict:
        """PSNR (dB, values mapped to [0, 1]) on the training and held-out rows, overall (over the trained frames)
        and per frame; and over every pixel of the frames never trained on ('unseen', None without any)."""
        prediction = self.frame_predictions() if prediction is None else prediction.to(self.device)
        result = {}
        trained = self.train_frames
        for name, rows in (("train", self.frame_train_rows), ("test", self.frame_test_rows)):
            if rows.numel() == 0:
                result[name], result[f"{name}_per_frame"] = None, []
                continue
            per_frame = self._frame_mse(prediction, rows)
            result[name] = psnr_from_mse(float(per_frame[trained].mean()))
            result[f"{name}_per_frame"] = [psnr_from_mse(float(m)) for m in per_frame]
        unseen = list(self.unseen_frames)
        if unseen:
            axis = self.signal.time
            every_pixel = torch.arange(axis.samples_per_frame, device=self.device)
            rows = torch.stack([every_pixel + k * axis.samples_per_frame for k in unseen])
            per_frame = self._frame_mse(prediction, rows)
            result["unseen"] = psnr_from_mse(float(per_frame.mean()))
            result["unseen_per_frame"] = {k: psnr_from_mse(float(m)) for k, m in zip(unseen, per_frame)}
        else:
            result["unseen"], result["unseen_per_frame"] = None, {}
        return result

    def _frame_mse(self, prediction: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        squared = ((prediction[rows].float().clamp(-1, 1) - self.targets[rows].float()) * 0.5) ** 2
        return squared.reshape(rows.shape[0], -1).mean(dim=1)

    def describe_parameters(self) -> dict:
        """Parameter count split into shared (W, b, M) and per-time (the coefficient tables v)."""
        if self.is_resfield:
            return self.model.parameter_split()
        return {"shared": self.params, "per_time": 0, "total": self.params, "spanning_sets": 0}

    def time_config(self) -> dict:
        """What a saved run needs besides its field config: the lab's settings and the split."""
        return {"settings": self.settings.to_dict(), "holdout_seed": HOLDOUT_SEED, "loss": self.loss_kind,
                "frames": self.signal.time.frames, "samples_per_frame": self.signal.time.samples_per_frame}

"""What the time lab draws, made on the snapshot thread: a temporal field at the time slider's t, first.

For a video: the frame at t (any t, between frames too), its error against the nearest frame, the ResField
model's base MLP alone ('residual off', the paper's Fig. A.1) and the difference of the two; the coefficient
curves v(t); and PSNR per frame on the training and held-out pixels. The per-frame PSNRs are refreshed a few
frames per snapshot (oldest first) after the slider's frame is drawn, and only while nothing newer waits, so that
scrubbing stays fast; each value remembers the step it was measured at. For a moving shape: the mesh at t through
a per-frame ``SdfRenderer`` (that frame's true shape gives the metrics), and the base MLP's mesh.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field as dataclass_field, replace
from typing import Callable

import numpy as np
import torch

from .fields import evaluate_in_chunks, evaluation_chunk_rows
from .metrics import psnr_from_mse
from .sdf_render import SdfRenderer, SdfView, SdfViewSettings, module_field, readonly
from .signals import Signal
from .time_training import holdout_split

class Superseded(Exception):
    """A newer request is waiting: drop this (second, slower) pass instead of finishing work nobody will see."""


REFRESH_BUDGET = 0.05
"""Seconds per snapshot spent refreshing other frames' PSNR after the slider's frame (at least one frame)."""


@dataclass(frozen=True)
class TimeViewSettings:
    """How the time lab wants its fields drawn; the GUI sends a new one (through the worker) as the slider moves."""

    t: float = -1.0
    """The time slider, in [-1, 1] (frames sit at evenly spaced times; anything between is interpolated)."""
    show_base: bool = True
    """Also draw ResField models with their residual weights off (the base MLP alone) and the difference."""
    sdf: SdfViewSettings = dataclass_field(default_factory=SdfViewSettings)
    """A moving shape: how its meshes and slices are drawn."""

    def __post_init__(self) -> None:
        if not -1.0 <= float(self.t) <= 1.0:
            raise ValueError(f"time must lie in [-1, 1], got {self.t}")


@dataclass(frozen=True)
class TimeView:
    """One temporal field at time t (arrays read-only, display-ready)."""

    t: float
    frame: float
    """t as a (fractional) frame position."""
    nearest: int
    """The frame the error and metrics compare against (t's own frame, or the nearest one between frames)."""
    reconstruction: np.ndarray | None
    """A video: the frame at t in [0, 1] (HxW or HxWx3)."""
    base: np.ndarray | None
    """A ResField video model with its residual weights off, at t (None for plain fields or when not asked)."""
    error: np.ndarray | None
    """|reconstruction - nearest frame|, channels averaged."""
    difference: np.ndarray | None
    """reconstruction - base (A - B), channels averaged: what the time-dependent residual adds at t."""
    psnr_at_t: float
    """PSNR of the frame at t against the nearest frame, every pixel (NaN for moving shapes)."""
    train_per_frame: np.ndarray
    """(T,) PSNR on every frame's training pixels (NaN: not measured yet)."""
    test_per_frame: np.ndarray
    """(T,) PSNR on every frame's held-out pixels (NaN: not measured yet or nothing held out)."""
    per_frame_steps: np.ndarray
    """(T,) the step each frame's PSNRs were measured at (-1: never)."""
    all_per_frame: np.ndarray
    """(T,) PSNR on every pixel of each frame (NaN: not measured yet); what frames never trained on are scored by."""
    unseen_frames: tuple
    coefficients: dict
    """Linear-layer index -> v, the [T_rows, R] coefficient table (ResField models; empty otherwise)."""
    parameters: dict
    """shared / per_time / total / spanning_sets parameter counts."""
    history: np.ndarray = dataclass_field(default_factory=lambda: np.zeros((0, 4)))
    """(K, 4): step, training PSNR and held-out-pixel PSNR over the trained frames, PSNR of the frames never trained
    on (NaN without any); rolling: each frame as last measured."""
    sdf: SdfView | None = None
    """A moving shape: the mesh, slice and metrics at t (against the nearest frame's true shape)."""
    sdf_base: SdfView | None = None
    """A moving shape, ResField model: the base MLP's mesh at t."""
    truth: object | None = None
    """A moving shape: the nearest frame's ground truth (models.sdf_signal.SdfTarget), for the overlay."""

    @property
    def between_frames(self) -> bool:
        return abs(self.frame - self.nearest) > 1e-4


def frame_coords(space_coords: torch.Tensor, t: float) -> torch.Tensor:
    """Space coordinates (N, d) with the time column t appended: the input of a temporal field at t."""
    return torch.cat([space_coords, torch.full((space_coords.shape[0], 1), float(t), dtype=space_coords.dtype)], dim=1)


@torch.no_grad()
def evaluate_at_time(model: torch.nn.Module, space_coords: torch.Tensor, t: float, residual: bool = True) -> torch.Tensor:
    """The field at time t on the given space coordinates (on the CPU), residual weights on or off."""
    device = next(model.parameters()).device
    coords = frame_coords(space_coords, t).to(device)
    with _residual(model, residual):
        if not hasattr(model, "frame_weights"):
            return evaluate_in_chunks(model, coords).cpu()
        weights = model.frame_weights(t)  # W(t) once per frame, not once per chunk
        chunk = evaluation_chunk_rows(coords.device)
        return torch.cat([model.forward_with(coords[i:i + chunk], weights)
                          for i in range(0, coords.shape[0], chunk)]).cpu()


def render_sequence(model: torch.nn.Module, space_coords: torch.Tensor, frame_shape: tuple[int, int], count: int,
                    residual: bool = True) -> list[np.ndarray]:
    """``count`` frames evenly spread over t in [-1, 1] (the frame times when ``count`` is the frame count), as RGB
    uint8 images of ``frame_shape`` (H, W)."""
    times = np.linspace(-1.0, 1.0, count) if count > 1 else np.zeros(1)
    frames = []
    for t in times:
        unit = ((evaluate_at_time(model, space_coords, float(t), residual).numpy() + 1.0) * 0.5).clip(0.0, 1.0)
        frames.append(rgb8(unit.reshape(*frame_shape, -1)))
    return frames


def rgb8(unit: np.ndarray) -> np.ndarray:
    """[0, 1] values (H, W), (H, W, 1) or (H, W, 3) as an RGB uint8 image."""
    image = np.clip(np.asarray(unit) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image


class AtTime(torch.nn.Module):
    """A temporal field at a fixed t, as a function of space alone (for meshing)."""

    def __init__(self, model: torch.nn.Module, t: float):
        super().__init__()
        self.model, self.t = model, float(t)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        column = torch.full((points.shape[0], 1), self.t, dtype=points.dtype, device=points.device)
        return self.model(torch.cat([points, column], dim=1))


@dataclass
class _FrameScores:
    steps: np.ndarray
    train_mse: np.ndarray
    test_mse: np.ndarray
    all_mse: np.ndarray


class TimeRenderer:
    """Frames, meshes and per-frame scores of the fields of one temporal signal; keeps caches between snapshots."""

    def __init__(self, signal: Signal):
        if signal.time is None:
            raise ValueError(f"{signal.name} has no time axis")
        self.signal = signal
        self.axis = signal.time
        self.is_video = signal.kind == "video"
        self.frame_shape = signal.shape[1:]
        self.targets = signal.values
        self.space_coords = signal.coords[self.axis.rows(0), :-1].clone() if self.is_video else None
        self._splits: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}
        self._scores: dict[tuple[int, int], _FrameScores] = {}
        self._frames: dict[tuple, np.ndarray] = {}
        self._sdf: dict[int, SdfRenderer] = {}
        self._history: dict[tuple[int, int], list[tuple[int, float, float]]] = {}

    def forget_other_generations(self, generation: int) -> None:
        self._scores = {k: v for k, v in self._scores.items() if k[0] == generation}
        self._frames = {k: v for k, v in self._frames.items() if k[0] == generation}
        self._history = {k: v for k, v in self._history.items() if k[0] == generation}
        for renderer in self._sdf.values():
            renderer.forget_other_generations(generation)

    def target_frame(self, frame: int) -> np.ndarray:
        rows = self.axis.rows(frame)
        return self._display(self.targets[rows])

    def _display(self, values: torch.Tensor) -> np.ndarray:
        unit = np.clip((values.detach().float().cpu().numpy() + 1.0) * 0.5, 0.0, 1.0)
        return unit.reshape(self.frame_shape) if self.signal.channels == 1 else unit.reshape(*self.frame_shape, -1)

    def split(self, holdout: float) -> tuple[torch.Tensor, torch.Tensor]:
        key = round(float(holdout), 6)
        if key not in self._splits:
            self._splits[key] = holdout_split(self.signal, holdout)
        return self._splits[key]

    # -- videos ------------------------------------------------------------------------------------------
    def frame_at(self, model: torch.nn.Module, t: float, key: tuple, residual: bool = True) -> np.ndarray:
        """The field at time t on the frame's pixel grid, [0, 1]; cached per (generation, run, step, t, residual)."""
        cache_key = (*key, round(float(t), 6), residual)
        cached = self._frames.get(cache_key)
        if cached is not None:
            return cached
        frame = readonly(self._display(evaluate_at_time(model, self.space_coords, t, residual)))
        if len(self._frames) > 256:
            self._frames.clear()
        self._frames[cache_key] = frame
        return frame

    def render_video(self, model: torch.nn.Module, settings: TimeViewSettings, *, generation: int, index: int,
                     step: int, holdout: float, parameters: dict, more_waiting: Callable[[], bool],
                     budget: float = REFRESH_BUDGET, quick: bool = False, unseen: tuple = ()) -> TimeView:
        """The frame at t (and the base MLP's), then per-frame scores refreshed within ``budget`` seconds (paused:
        pass math.inf, so that every frame is scored at the current step). ``quick``: the frame at t alone (the
        scores as last measured, no base), for a first answer to a scrub."""
        t = float(settings.t)
        frame = self.axis.frame_at(t)
        nearest = int(round(frame))
        key = (generation, index, step)
        reconstruction = self.frame_at(model, t, key)
        target = self.target_frame(nearest)
        error = _channel_mean(np.abs(reconstruction - target))
        resfield = hasattr(model, "residual")
        base = difference = None
        if not quick and more_waiting():
            raise Superseded()
        if resfield and settings.show_base and not quick:
            base = self.frame_at(model, t, key, residual=False)
            difference = readonly(_channel_mean(reconstruction - base))
        if quick:
            scores = self._scores_of(generation, index)
        else:
            scores = self._refresh_scores(model, generation, index, step, holdout, nearest, more_waiting, budget)
        mse = float(np.mean((np.clip(reconstruction, 0, 1) - target) ** 2))
        history = self._history.setdefault((generation, index), [])
        if not quick:
            while history and history[-1][0] >= step:
                history.pop()
            history.append((step, *self.video_scores(generation, index, unseen)))
        return TimeView(t, frame, nearest, reconstruction, base, readonly(error), difference, psnr_from_mse(mse),
                        *self._per_frame(scores, unseen), _coefficients(model), parameters,
                        readonly(np.asarray(history, dtype=np.float64).reshape(-1, 4)))

    def _refresh_scores(self, model, generation: int, index: int, step: int, holdout: float, nearest: int,
                        more_waiting: Callable[[], bool], budget: float) -> _FrameScores:
        """The nearest frame first (free when the slider sits on it), then the stalest frames within the budget."""
        frames = self.axis.frames
        scores = self._scores_of(generation, index)
        train_rows, test_rows = self.split(holdout)
        started = time.perf_counter()
        order = [nearest] + sorted((k for k in range(frames) if k != nearest), key=lambda k: scores.steps[k])
        for k in order:
            if scores.steps[k] == step:
                continue
            if more_waiting() or (k != nearest and time.perf_counter() - started > budget):
                break
            values = self.frame_at(model, float(self.axis.times()[k]), (generation, index, step))
            self._score_frame(scores, k, step, values, train_rows[k], test_rows[k])
        return scores

    def _scores_of(self, generation: int, index: int) -> _FrameScores:
        scores = self._scores.get((generation, index))
        if scores is None:
            frames = self.axis.frames
            scores = _FrameScores(np.full(frames, -1), *(np.full(frames, np.nan) for _ in range(3)))
            self._scores[(generation, index)] = scores
        return scores

    def _score_frame(self, scores: _FrameScores, k: int, step: int, values: np.ndarray, train_rows: torch.Tensor,
                     test_rows: torch.Tensor) -> None:
        flat = values.reshape(self.axis.samples_per_frame, -1)
        target = ((self.targets[self.axis.rows(k)].float().numpy() + 1.0) * 0.5).reshape(flat.shape)
        offset = k * self.axis.samples_per_frame
        squared = (flat - target) ** 2
        scores.train_mse[k] = float(squared[train_rows.numpy() - offset].mean())
        scores.test_mse[k] = float(squared[test_rows.numpy() - offset].mean()) if test_rows.numel() else np.nan
        scores.all_mse[k] = float(squared.mean())
        scores.steps[k] = step

    def _per_frame(self, scores: _FrameScores, unseen: tuple) -> tuple:
        """(train, held-out, steps, every pixel, unseen frames) per frame, for a TimeView."""
        train, test = scores.train_mse.copy(), scores.test_mse.copy()
        train[list(unseen)] = test[list(unseen)] = np.nan  # a frame never trained on has no train / test split
        return (_psnr_array(train), _psnr_array(test), readonly(scores.steps.copy()), _psnr_array(scores.all_mse),
                tuple(unseen))

    def video_scores(self, generation: int, index: int, unseen: tuple = ()) -> tuple[float, float, float]:
        """(train, held-out pixels) PSNR over the trained frames and PSNR of the frames never trained on, from every
        frame measured so far (mean MSE over frames; NaN where none)."""
        scores = self._scores.get((generation, index))
        if scores is None:
            return float("nan"), float("nan"), float("nan")
        trained = np.ones(self.axis.frames, dtype=bool)
        trained[list(unseen)] = False

        def mean_psnr(mse: np.ndarray) -> float:
            mse = mse[np.isfinite(mse)]
            return psnr_from_mse(float(mse.mean())) if mse.size else float("nan")

        return (mean_psnr(scores.train_mse[trained]), mean_psnr(scores.test_mse[trained]),
                mean_psnr(scores.all_mse[~trained]))

    # -- moving shapes -----------------------------------------------------------------------------------
    def sdf_renderer(self, frame: int) -> SdfRenderer:
        """A 3D renderer whose ground truth is frame ``frame``'s shape (built on first use)."""
        if frame not in self._sdf:
            truth = self.axis.frame_target(frame) if self.axis.frame_target is not None else self.signal.sdf
            self._sdf[frame] = SdfRenderer(replace(self.signal, sdf=truth))
        return self._sdf[frame]

    def render_shape(self, model: torch.nn.Module, settings: TimeViewSettings, *, still: bool, generation: int,
                     index: int, step: int, parameters: dict) -> TimeView:
        t = float(settings.t)
        frame = self.axis.frame_at(t)
        nearest = int(round(frame))
        renderer = self.sdf_renderer(nearest)
        device = next(model.parameters()).device
        tag = f"t {t:.6f}"
        view = renderer.render(module_field(AtTime(model, t), device), settings.sdf, still=still,
                               generation=generation, index=index, step=step, tag=tag)
        base = None
        if hasattr(model, "residual") and settings.show_base:
            with _residual(model, False):
                base = renderer.render(module_field(AtTime(model, t), device), settings.sdf, still=still,
                                       generation=generation, index=index, step=step, tag=f"{tag} base", record=False)
        empty = readonly(np.full(self.axis.frames, np.nan))
        return TimeView(t, frame, nearest, None, None, None, None, float("nan"), empty, empty,
                        readonly(np.full(self.axis.frames, -1)), empty, (), _coefficients(model), parameters,
                        sdf=view, sdf_base=base, truth=renderer.target)


class _residual:
    """Within the block, a ResField model uses its residual weights or not (plain fields are left alone)."""

    def __init__(self, model: torch.nn.Module, enabled: bool):
        self.model, self.enabled, self.before = model, enabled, getattr(model, "residual", None)

    def __enter__(self):
        if self.before is not None:
            self.model.residual = self.enabled

    def __exit__(self, *exc):
        if self.before is not None:
            self.model.residual = self.before


def _psnr_array(mse: np.ndarray) -> np.ndarray:
    return readonly(np.array([psnr_from_mse(m) for m in mse]))


def _coefficients(model: torch.nn.Module) -> dict:
    tables = getattr(model, "coefficient_tables", None)
    if tables is None:
        return {}
    return {i: readonly(v.float().cpu().numpy()) for i, v in tables().items()}


def _channel_mean(array: np.ndarray) -> np.ndarray:
    return array.mean(axis=2) if array.ndim == 3 else array



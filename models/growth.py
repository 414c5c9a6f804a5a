"""Training a streamable field through its width stages: progressive (the paper's method) or slimmable.

Progressive: stage k's parameters are the only ones in the optimiser (a fresh Adam per stage); earlier
stages are frozen tensors, so their gradients are not masked but never computed. Their activations do not
depend on anything trainable, so they run without autograd, and with full-batch training they are
computed once per stage and reused. Slimmable: every stage exists from the start and each step sums the
losses of all widths (one forward pass gives every width's output).

Spatial growing (paper Eq. 2): stage k's target is the signal on the first (k+1)/K of its last axis (image
columns, curve samples) and zero elsewhere, and the loss covers the zero region too.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace

import torch

from .metrics import psnr
from .signals import Signal
from .streamable import StreamableConfig, StreamableField, evaluate_widths_in_chunks
from .training import TrainConfig, Trainer, TrainingDiverged

GROWTH_MODES = ("progressive", "slimmable")
PLATEAU_WINDOW = 50
"""Steps per window of the plateau test."""
PLATEAU_GAIN = 0.01
"""A stage has plateaued when its mean loss over a window improved by less than this fraction."""
FROZEN_CACHE_BYTES = 512 << 20
"""Largest full-batch cache of frozen activations kept per stage."""


@dataclass(frozen=True)
class GrowthConfig:
    """How a streamable field is grown and trained."""

    stage_steps: int = 300
    """Optimisation steps per stage (a plateaued stage may end earlier)."""
    steps_per_stage: tuple[int, ...] = ()
    """Steps of each stage in order, overriding stage_steps (the last entry repeats for later stages).
    Narrow stages saturate early, so giving the later ones more of a fixed budget (e.g. 100, 200, 300, 600)
    raises the widest width's PSNR at the same total."""
    mode: str = "progressive"
    """'progressive' (train each stage with the earlier ones frozen) or 'slimmable' (all widths every step)."""
    plateau: bool = False
    """End a progressive stage early once its loss improves by less than 1% over 50 steps."""
    spatial: bool = False
    """Spatial growing: stage k reveals the first (k+1)/K of the signal (image columns, curve samples)."""

    def __post_init__(self) -> None:
        if self.mode not in GROWTH_MODES:
            raise ValueError(f"unknown growth mode {self.mode!r}; choose one of {', '.join(GROWTH_MODES)}")
        object.__setattr__(self, "steps_per_stage", tuple(int(n) for n in self.steps_per_stage))
        if self.stage_steps < 1 or any(n < 1 for n in self.steps_per_stage):
            raise ValueError(f"steps per stage must be at least 1, got {list(self.steps_per_stage) or self.stage_steps}")

    def steps_for(self, stage: int) -> int:
        """Steps of stage ``stage``."""
        if not self.steps_per_stage:
            return self.stage_steps
        return self.steps_per_stage[min(stage, len(self.steps_per_stage) - 1)]

    def steps_until(self, stage: int) -> int:
        """Total steps of stages 0..stage."""
        return sum(self.steps_for(k) for k in range(stage + 1))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["steps_per_stage"] = list(self.steps_per_stage)
        return data


@dataclass(frozen=True)
class StageInfo:
    """Where a growing field stands, for the views (immutable copy)."""

    widths: tuple[int, ...]
    """Planned widths, allocated or not."""
    states: tuple[str, ...]
    """Per width: 'trained' (frozen, final), 'training' or 'pending' (not allocated yet)."""
    params: tuple[int, ...]
    """Parameter count of each width's sub-network (planned ones included)."""
    revealed: tuple[int, ...]
    """Per width: how many entries of the signal's last axis its target covers (all, without spatial growing)."""
    stage: int
    """Index of the stage being trained (the last one once finished)."""
    mode: str
    structure: int
    """Bumped whenever parameters are added: the renderer rebuilds its copy of the architecture."""
    stage_end_steps: tuple[int, ...]
    """Step at which each finished stage ended."""
    finished: bool


class GrowthTrainer(Trainer):
    """A Trainer whose field grows through ``config.widths``; ``step()`` advances stages by itself."""

    def __init__(self, signal: Signal, config: StreamableConfig, train: TrainConfig, growth: GrowthConfig):
        self.growth = growth
        self.stage = 0
        self.steps_in_stage = 0
        self.finished = False
        self.structure = 0
        self.stage_end_steps: list[int] = []
        self._frozen_cache = None
        self._window_sum: torch.Tensor | None = None
        self._deferred_divergence: TrainingDiverged | None = None
        self._previous_window: float | None = None
        if growth.mode == "slimmable":
            self.stage = len(config.widths) - 1
        super().__init__(signal, config, train)
        self.params = self.model.parameters_at(self.stage) if growth.mode == "progressive" else self.params
        self._axis_index = self._last_axis_index()
        self._stage_targets: dict[int, torch.Tensor] = {}

    # -- construction ---------------------------------------------------------------------------------
    def _build_model(self) -> StreamableField:
        stages = len(self.field_config.widths) if self.growth.mode == "slimmable" else 1
        return StreamableField(self.field_config, stages=stages)

    def _build_optimizer(self) -> torch.optim.Optimizer:
        if self.growth.mode == "slimmable":
            return torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.model.freeze_before(self.stage)
        return torch.optim.Adam(self.model.stages[self.stage].parameters(), lr=self.lr)

    @property
    def widths(self) -> tuple[int, ...]:
        return self.field_config.widths

    @property
    def current_width(self) -> int:
        return self.widths[self.stage]

    def _last_axis_index(self) -> torch.Tensor:
        """Per sample, its index along the signal's last axis (image column, curve position)."""
        n, last = self.coords.shape[0], self.signal.shape[-1]
        return (torch.arange(n, device=self.device) % last)

    def revealed(self, stage: int) -> int:
        """Entries of the last axis that stage ``stage``'s target covers."""
        last = self.signal.shape[-1]
        if not self.growth.spatial:
            return last
        return max(1, math.ceil(last * (stage + 1) / len(self.widths)))

    def stage_target(self, stage: int) -> torch.Tensor:
        """The signal where stage ``stage`` reveals it, zero elsewhere (spatial growing, paper Eq. 2)."""
        if not self.growth.spatial:
            return self.targets
        if stage not in self._stage_targets:
            keep = (self._axis_index < self.revealed(stage)).unsqueeze(1)
            self._stage_targets[stage] = torch.where(keep, self.targets, torch.zeros_like(self.targets))
        return self._stage_targets[stage]

    # -- training -------------------------------------------------------------------------------------
    def step(self) -> None:
        if self.finished:
            return
        started = time.perf_counter()
        index = self._batch_index()
        coords = self.coords if index is None else self.coords[index]
        if self.growth.mode == "slimmable":
            outputs = self.model.forward_widths(coords)
            losses = [torch.mean((y - self._targets_for(k, index)) ** 2) for k, y in enumerate(outputs)]
            loss, prediction = torch.stack(losses).sum(), outputs[-1]
        else:
            layers, previous = self._frozen_part(coords, index)
            _, prediction = self.model.extend(coords, self.stage, layers, previous)
            loss = torch.mean((prediction - self._targets_for(self.stage, index)) ** 2)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if index is None:
            self._full_batch_prediction = (self.step_count, prediction.detach())
        self._pending_losses.append(loss.detach())
        self.step_count += 1
        self.steps_in_stage += 1
        self.seconds += time.perf_counter() - started
        if self._stage_done(loss.detach()):
            self.end_stage()

    def _targets_for(self, stage: int, index: torch.Tensor | None) -> torch.Tensor:
        target = self.stage_target(stage)
        return target if index is None else target[index]

    def _frozen_part(self, coords: torch.Tensor, index: torch.Tensor | None):
        """Activations and output of the frozen stages (no autograd; cached per stage in full batch)."""
        if self.stage == 0:
            return None, None
        if index is None and self._frozen_cache is not None:
            return self._frozen_cache
        with torch.no_grad():
            layers, output = None, None
            for k in range(self.stage):
                layers, output = self.model.extend(coords, k, layers, output)
        if index is None:
            size = sum(t.numel() for t in layers) * layers[0].element_size()
            if size <= FROZEN_CACHE_BYTES:
                self._frozen_cache = (layers, output)
        return layers, output

    def _stage_done(self, loss: torch.Tensor) -> bool:
        if self.growth.mode == "slimmable":  # one stage holding every width, for as many steps in total
            return self.steps_in_stage >= self.growth.steps_until(len(self.widths) - 1)
        if self.steps_in_stage >= self.growth.steps_for(self.stage):
            return True
        if not self.growth.plateau:
            return False
        self._window_sum = loss if self._window_sum is None else self._window_sum + loss
        if self.steps_in_stage % PLATEAU_WINDOW:
            return False
        mean = self._window_sum.item() / PLATEAU_WINDOW
        self._window_sum, previous, self._previous_window = None, self._previous_window, mean
        return previous is not None and math.isfinite(mean) and mean > previous * (1.0 - PLATEAU_GAIN)

    def end_stage(self) -> bool:
        """Finish the current stage now: freeze it and start the next planned one (or finish).

        Returns False (and changes nothing) when the last steps' losses were not finite: the next
        ``flush`` then restores the last good weights instead.
        """
        if self.finished or self.steps_in_stage == 0:
            return False
        if self._pending_losses and not bool(torch.isfinite(torch.stack(self._pending_losses)).all()):
            return False
        try:
            self.flush()
        except TrainingDiverged as exc:  # restored already: report it at the caller's next flush
            self._deferred_divergence = exc
            return False
        self.steps_in_stage = 0
        self._window_sum, self._previous_window = None, None
        if self.growth.mode == "slimmable":
            self.stage_end_steps = [self.step_count] * len(self.widths)
        else:
            self.stage_end_steps.append(self.step_count)
        if self.growth.mode == "slimmable" or self.stage + 1 >= len(self.widths):
            self.finished = True
            self.model.requires_grad_(False)
            return True
        self._start_next_stage()
        return True

    def _start_next_stage(self) -> None:
        """Allocate the next planned stage, freeze the others and give it a fresh Adam."""
        self.stage += 1
        self.model.grow()
        self.structure += 1
        self._frozen_cache = None
        self.optimizer = self._build_optimizer()
        self.params = self.model.parameters_at(self.stage)
        self._full_batch_prediction = None
        self._good_state = self._capture_state()

    def add_stage(self, width: int) -> None:
        """Plan one more, wider stage; a finished progressive field resumes training with it."""
        if self.growth.mode == "slimmable":
            raise ValueError("stages can be added to progressive growth only (slimmable trains a fixed set of widths)")
        if self.growth.spatial:
            raise ValueError("spatial growing splits the signal into as many parts as there are planned stages: "
                             "plan every stage before training")
        if width <= self.widths[-1]:
            raise ValueError(f"a new stage must be wider than {self.widths[-1]}, got {width}")
        self.model.plan_width(width)
        self.field_config = self.model.config
        if self.finished:
            self.finished = False
            self._start_next_stage()

    def set_stage_steps(self, steps: int) -> None:
        """Every stage from now on trains ``steps`` steps."""
        self.growth = replace(self.growth, stage_steps=steps, steps_per_stage=())

    # -- reading ---------------------------------------------------------------------------------------
    def planned_parameters(self) -> tuple[int, ...]:
        """Parameter count of every planned width, computed from the architecture."""
        return self.planned_parameters_of(self.field_config)

    @staticmethod
    def planned_parameters_of(c: StreamableConfig) -> tuple[int, ...]:
        counts, total, before = [], 0, 0
        for k, width in enumerate(c.widths):
            units = width - before
            total += units * c.in_features + units + (c.depth - 1) * (units * width + units) + c.out_features * units
            total += c.out_features if k == 0 else 0
            counts.append(total)
            before = width
        return tuple(counts)

    def stage_info(self) -> StageInfo:
        states = []
        for k in range(len(self.widths)):
            if self.growth.mode == "slimmable":
                states.append("trained" if self.finished else "training")
            elif k < self.stage or (k == self.stage and self.finished):
                states.append("trained")
            else:
                states.append("training" if k == self.stage else "pending")
        return StageInfo(self.widths, tuple(states), self.planned_parameters(),
                         tuple(self.revealed(k) for k in range(len(self.widths))), self.stage, self.growth.mode,
                         self.structure, tuple(self.stage_end_steps), self.finished)

    def predict_widths(self, coords: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Every allocated width's output at ``coords`` (default: every sample)."""
        return evaluate_widths_in_chunks(self.model, self.coords if coords is None else coords.to(self.device))

    def predict(self, coords: torch.Tensor | None = None) -> torch.Tensor:
        return self.predict_widths(coords)[self.stage]

    def evaluate(self, current: bool = False) -> tuple[int, torch.Tensor, float]:
        """Like Trainer.evaluate, for the current width; with spatial growing, PSNR on the revealed part."""
        cached = None if current else self.fresh_full_batch_prediction()
        step, prediction = cached if cached is not None else (self.step_count, self.predict())
        value = self.width_psnr(prediction, self.stage)
        if not self.psnr_steps or self.psnr_steps[-1] < step:
            self.psnr_steps.append(step)
            self.psnr_values.append(value)
        return step, prediction, value

    def width_psnr(self, prediction: torch.Tensor, stage: int) -> float:
        keep = self._axis_index < self.revealed(stage)
        return psnr((prediction[keep].float() + 1.0) * 0.5, (self.targets[keep].float() + 1.0) * 0.5)

    def flush(self) -> None:
        deferred, self._deferred_divergence = self._deferred_divergence, None
        if deferred is not None:
            raise deferred
        super().flush()

    def _capture_state(self) -> dict:
        state = super()._capture_state()
        state["structure"] = self.structure
        return state

    def _restore_good_state(self) -> int:
        if self._good_state.get("structure") != self.structure:  # cannot happen: growth captures a new state
            raise RuntimeError("cannot restore weights saved before the field grew")
        self._frozen_cache = None
        step = super()._restore_good_state()
        stage_start = self.stage_end_steps[-1] if self.stage_end_steps and self.growth.mode == "progressive" else 0
        self.steps_in_stage = max(0, step - stage_start)
        return step

"""The training worker: one thread per session owns the trainers; everyone else talks to it by message.

Commands go in through a queue and are applied between steps. Between steps the worker also hands cheap
copies of its state to a ``SnapshotRenderer`` (models/snapshots.py), which publishes display-ready,
immutable snapshots into ``worker.latest``: a GUI polls that slot on a timer, tests and scripts can too.
Nothing here knows about Qt.
"""
from __future__ import annotations

import copy
import queue
import threading
import time
import traceback
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from .fields import FieldConfig
from .first_layer import first_layer_of
from .signals import Signal
from .snapshots import ComputeShare, LatestSlot, RenderRequest, RunSnapshot, RunState, Snapshot, SnapshotRenderer, carry_news
from .timeline import Timeline
from .trainer_state import capture_runs, restore_runs
from .training import Trainer, TrainingDiverged

__all__ = ["TrainingWorker", "LatestSlot", "Snapshot", "RunSnapshot", "RunFactory"]

RunFactory = Callable[[], Sequence[tuple[str, Trainer]]]
"""Builds the session's labelled trainers; called in the worker thread, again on every reset."""


@dataclass
class _Command:
    name: str
    args: tuple = ()


class TrainingWorker:
    """Trains one or more fields in lockstep on a background thread.

    ``factory`` must build identical trainers every time it is called (same seeds), so that ``reset``
    reproduces a run exactly.
    """

    def __init__(self, signal: Signal, factory: RunFactory, *, start_running: bool = True,
                 max_steps: int | None = None, min_publish_interval: float = 0.1):
        self.signal = signal
        self.latest = LatestSlot(merge=carry_news)
        self._factory = factory
        self._commands: queue.Queue[_Command] = queue.Queue()
        self._running = start_running
        self._max_steps = max_steps
        self._min_interval = min_publish_interval
        self._thread = threading.Thread(target=self._main, name="fieldlab-training", daemon=True)
        self._renderer: SnapshotRenderer | None = None
        self._generation = 0
        self._trainers: list[tuple[str, Trainer]] = []
        self._evaluators: list = []
        self._structures: list = []
        self._rate = 0.0
        self._announced_finish = False
        self._view_settings = None
        self._time_settings = None
        self._pace = 0.0
        self._render_duty: float | None = None
        self._train_busy = 0.0
        self._budget_mark = (time.perf_counter(), 0.0, 0.0)
        self._last_share = ComputeShare(0.0, 0.0, 1 / 6)
        self.timeline = Timeline()
        self._late_news: list[str] = []
        """Past states to branch from (touched by the worker thread only; read ``snapshot.timeline`` elsewhere)."""

    # -- the caller's side: every method below only enqueues -------------------------------------------
    def start(self) -> "TrainingWorker":
        self._thread.start()
        return self

    def play(self) -> None:
        self._commands.put(_Command("play"))

    def pause(self) -> None:
        self._commands.put(_Command("pause"))

    def step(self, count: int = 1) -> None:
        self._commands.put(_Command("step", (int(count),)))

    def reset(self) -> None:
        self._commands.put(_Command("reset"))

    def set_lr(self, lr: float) -> None:
        self._commands.put(_Command("set_lr", (float(lr),)))

    def set_view(self, settings) -> None:
        """How a 3D signal's fields are drawn (models.sdf_render.SdfViewSettings); redraws at once."""
        self._commands.put(_Command("set_view", (settings,)))

    def set_time(self, settings) -> None:
        """The time lab's slider and options (models.time_render.TimeViewSettings); the frame at t is drawn next."""
        self._commands.put(_Command("set_time", (settings,)))

    def set_pace(self, milliseconds: float) -> None:
        """Slow motion: take at most one step per ``milliseconds`` and show each (0: as fast as possible)."""
        self._commands.put(_Command("set_pace", (max(0.0, float(milliseconds)),)))

    def set_render_share(self, duty: float | None) -> None:
        """The compute budget: the share of time (0.02-0.95) the views may take from training; None: the lab's default."""
        self._commands.put(_Command("set_render_share", (duty,)))

    def branch(self, step: int, lr: float | None = None, stage_steps: int | None = None) -> None:
        """Go back to training step ``step`` (restore the nearest kept state, replay to it exactly when no edit lies
        between) and continue from there with a new learning rate / growth steps per stage; the old future is
        dropped. The outcome is reported in the next snapshot's message."""
        self._commands.put(_Command("branch", (int(step), lr, stage_steps)))

    def extract_still(self) -> None:
        """Make a 3D field's fine mesh now, even while training."""
        self._commands.put(_Command("extract_still"))

    def call(self, function: Callable[[list[tuple[str, Trainer]]], str | None], edits: bool = True) -> None:
        """Run ``function(trainers)`` on the worker thread between steps (saving, lab-specific edits, ...).

        Its return value (a short text) or its exception is reported in the next snapshot. ``edits``: whether it
        may change the runs (then the timeline keeps the state after it; False for saving and exporting).
        """
        self._commands.put(_Command("call", (function, edits)))

    def stop(self, timeout: float = 10.0) -> bool:
        """Ask the thread to finish its current step and exit; True if it did within ``timeout``."""
        self._commands.put(_Command("stop"))
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the worker thread ----------------------------------------------------------------------------
    def _main(self) -> None:
        self._renderer = SnapshotRenderer(self.signal, self.latest)
        try:
            self._loop()
        finally:
            self._renderer.stop()
            # Free the models, optimisers and kept states here, on their own thread, by reference counting: left
            # to the cyclic garbage collector (this object and its thread refer to each other), they would be freed
            # on whatever thread collects next, e.g. the GUI's, in the middle of another session's work.
            self._trainers, self._evaluators, self._structures = [], [], []
            self.timeline.clear()

    def _loop(self) -> None:
        self._build(message="")
        pending_steps = 0
        last_publish = window_start = last_step = time.perf_counter()
        window_steps = 0
        while True:
            idle = not self._trainers or not (self._running or pending_steps)
            wait = 0.25 if idle else 0.0
            if not idle and self._pace:  # slow motion: wait out the rest of this step's slot, still taking commands
                wait = max(0.0, last_step + self._pace / 1000.0 - time.perf_counter())
            try:
                command = self._commands.get(timeout=wait) if wait > 0 else self._commands.get_nowait()
            except queue.Empty:
                command = None
                if not idle and wait > 0 and time.perf_counter() < last_step + self._pace / 1000.0:
                    continue
            if command is not None:
                if command.name == "stop":
                    return
                pending_steps = self._apply(command, pending_steps)
                window_start, window_steps = time.perf_counter(), 0
                continue
            if idle:
                continue
            error = ""
            last_step = time.perf_counter()
            try:
                for _, trainer in self._trainers:
                    trainer.step()
                window_steps += 1
                pending_steps = max(0, pending_steps - 1)
                if self._max_steps is not None and self._trainers[0][1].step_count >= self._max_steps:
                    self._running, pending_steps = False, 0
                if all(trainer.finished for _, trainer in self._trainers):
                    self._running, pending_steps = False, 0
            except Exception as exc:  # anything in a step must not kill the session
                self._running, pending_steps = False, 0
                error = _describe(exc)
            now = time.perf_counter()
            self._train_busy += now - last_step
            # the renderer shares the GUI's spare core: keep it busy at most ~1/6 of the time
            interval = max(self._min_interval, self._renderer.cost / self._renderer.duty)
            if now - last_publish >= interval or (not self._running and not pending_steps) or error or self._pace:
                self._rate = window_steps / (now - window_start) if now > window_start else 0.0
                window_start, window_steps = now, 0
                self._publish(message=self._finish_message(), error=error)
                self._record_timeline()
                last_publish = now

    def _finish_message(self) -> str:
        finished = bool(self._trainers) and all(trainer.finished for _, trainer in self._trainers)
        if finished and not self._announced_finish:
            self._announced_finish = True
            return "training finished" + (": every stage is trained" if self._trainers[0][1].stage_info() else "")
        self._announced_finish = finished
        return ""

    def _apply(self, command: _Command, pending_steps: int) -> int:
        if command.name == "play":
            finished = bool(self._trainers) and all(trainer.finished for _, trainer in self._trainers)
            self._running = bool(self._trainers) and not finished
            if finished:  # tell the GUI, whose play button is waiting for a snapshot to show the state
                growing = self._trainers[0][1].stage_info() is not None
                self._publish(message="training is finished" + (": add a stage, or reset" if growing else ": reset to train again"))
        elif command.name == "pause":
            self._running = False
            self._publish()
        elif command.name == "step":
            self._running = False
            pending_steps += command.args[0]
        elif command.name == "reset":
            self._build(message="reset: same seeds, same run")
            pending_steps = 0
        elif command.name == "call":
            try:
                result = command.args[0](list(self._trainers))
                if command.args[1]:
                    self._record_timeline(edit=True)
                self._publish(message=str(result or ""))
            except Exception as exc:
                self._publish(error=_describe(exc))
        elif command.name == "branch":
            self._running, pending_steps = False, 0
            try:
                self._publish(message=self._branch(*command.args))
            except Exception as exc:
                self._publish(error=f"could not branch: {_describe(exc)}")
        elif command.name == "set_view":
            self._view_settings = command.args[0]
            self._publish()
        elif command.name == "set_time":
            self._time_settings = command.args[0]
            self._publish()
        elif command.name == "set_pace":
            self._pace = command.args[0]
            self._publish(message=f"slow motion: one step per {self._pace:g} ms" if self._pace else "full speed")
        elif command.name == "set_render_share":
            self._render_duty = command.args[0]
            self._apply_render_duty()
            self._publish()
        elif command.name == "extract_still":
            self._publish(still=True)
        elif command.name == "set_lr":
            for _, trainer in self._trainers:
                trainer.set_lr(command.args[0])
            self._record_timeline(edit=True)
            self._publish(message=f"learning rate set to {command.args[0]:g}")
        return pending_steps

    def _record_timeline(self, edit: bool = False) -> None:
        """Keep the runs' state for the timeline: every timeline.every steps, and after every edit."""
        if not self._trainers:
            return
        step = self._trainers[0][1].step_count
        if edit or self.timeline.due(step):
            try:
                self.timeline.record(capture_runs(self._trainers), edit=edit)
            except TrainingDiverged as exc:  # restored already: the next snapshot says so
                self._late_news.append(str(exc))

    def _branch(self, step: int, lr: float | None, stage_steps: int | None) -> str:
        plan = self.timeline.plan(step)
        if plan is None:
            return f"nothing kept at or before step {step} to branch from"
        restore_runs(self._trainers, plan.entry.state)
        for _ in range(plan.replay):
            for _, trainer in self._trainers:
                trainer.step()
        for _, trainer in self._trainers:
            trainer.flush()
            if lr is not None:
                trainer.set_lr(lr)
            if stage_steps is not None and hasattr(trainer, "set_stage_steps"):
                trainer.set_stage_steps(stage_steps)
        reached = self._trainers[0][1].step_count
        self.timeline.forget_after(reached)
        self._record_timeline(edit=True)
        self._generation += 1  # views start their curves over from the restored histories
        self._evaluators = [copy.deepcopy(trainer.model).eval() for _, trainer in self._trainers]
        self._structures = [_structure(trainer) for _, trainer in self._trainers]
        self._announced_finish = all(trainer.finished for _, trainer in self._trainers)
        changes = []
        if lr is not None:
            changes.append(f"learning rate {lr:g}")
        if stage_steps is not None:
            changes.append(f"{stage_steps} steps per stage")
        note = f" ({plan.note})" if plan.note else ""
        return f"branched at step {reached}" + (f" with {', '.join(changes)}" if changes else "") + note

    def _apply_render_duty(self) -> None:
        if self._render_duty is not None:
            self._renderer.duty = min(0.95, max(0.02, float(self._render_duty)))
        else:
            self._renderer.duty = self._renderer.default_duty

    def _compute_share(self) -> ComputeShare:
        """Shares of the wall time since the last publish spent training and rendering."""
        now = time.perf_counter()
        then, trained, rendered = self._budget_mark
        elapsed = now - then
        if elapsed < 0.5:  # too short a window to measure shares: keep the last ones, with today's settings
            return replace(self._last_share, render_duty=self._renderer.duty, pace_ms=self._pace)
        share = ComputeShare(min(1.0, (self._train_busy - trained) / elapsed),
                             min(1.0, (self._renderer.busy - rendered) / elapsed), self._renderer.duty, self._pace)
        self._budget_mark = (now, self._train_busy, self._renderer.busy)
        self._last_share = share
        return share

    def _build(self, message: str) -> None:
        self._generation += 1
        self._rate = 0.0
        try:
            self._trainers = list(self._factory())
            self._evaluators = [copy.deepcopy(trainer.model).eval() for _, trainer in self._trainers]
            self._structures = [_structure(trainer) for _, trainer in self._trainers]
            self._announced_finish = False
            self.timeline.clear()
            self._publish(message=message)
            self._record_timeline()
        except Exception as exc:
            self._trainers, self._evaluators, self._structures = [], [], []
            self._running = False
            self._publish(error=f"could not build the model: {_describe(exc)}")

    def _publish(self, message: str = "", error: str = "", still: bool = False) -> None:
        """Check the losses (restoring after a divergence), then hand copies to the renderer."""
        diverged = []
        for label, trainer in self._trainers:
            try:
                trainer.flush()
            except TrainingDiverged as exc:
                self._running = False
                diverged.append(f"{label}: {exc}" if len(self._trainers) > 1 else str(exc))
        late, self._late_news = self._late_news, []
        message = "; ".join(m for m in (message, *late, *diverged) if m)
        for i, (_, trainer) in enumerate(self._trainers):
            if _structure(trainer) != self._structures[i]:  # the field grew: the renderer needs its new shape
                self._evaluators[i] = copy.deepcopy(trainer.model).eval()
                self._structures[i] = _structure(trainer)
        runs = [self._run_state(label, trainer, evaluator, paused=not self._running)
                for (label, trainer), evaluator in zip(self._trainers, self._evaluators)]
        device = str(self._trainers[0][1].device) if self._trainers else "-"
        step = self._trainers[0][1].step_count if self._trainers else 0
        self._renderer.submit(RenderRequest(self._generation, step, self._running, self._rate, device, runs,
                                            message, error, self._view_settings, still, self._time_settings,
                                            self._compute_share(), self.timeline.steps))

    @staticmethod
    def _run_state(label: str, trainer: Trainer, evaluator, paused: bool = False) -> RunState:
        stages = trainer.stage_info()
        cached = trainer.fresh_full_batch_prediction()
        if paused or trainer.finished or (stages is not None and stages.states[stages.stage] != "training"):
            cached = None  # paused or finished runs (and trained widths) are drawn from their current weights
        if cached is not None:
            step, prediction, weights = cached[0], cached[1], None
        else:
            step, prediction = trainer.step_count, None
        if cached is None or stages is not None or trainer.signal.sdf is not None or trainer.signal.time is not None:
            weights = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        loss = trainer.loss_values[-1] if trainer.loss_values else float("nan")
        history = np.column_stack([np.asarray(trainer.loss_steps, dtype=np.float64),
                                   np.asarray(trainer.loss_values, dtype=np.float64)])
        rows = trainer.scored_rows()
        scored = None
        if rows is not None and trainer.signal.time is None:  # temporal runs score their own split per frame
            scored = np.zeros(trainer.coords.shape[0], dtype=bool)
            scored[rows.cpu().numpy()] = True
            scored = scored.reshape(trainer.signal.shape)
        plain = stages is None and trainer.partition_info() is None and isinstance(trainer.field_config, FieldConfig)
        timed = trainer.signal.time is not None and hasattr(trainer, "describe_parameters")
        return RunState(label, trainer.params, step, evaluator, trainer.coords, weights, prediction, loss, history, stages,
                        trainer.partition_info(), trainer.extension_step, scored, trainer.waiting,
                        trainer.field_config if plain else None, first_layer_of(trainer.model) if plain else None,
                        trainer.settings.holdout_for(trainer.signal) if timed else 0.0,
                        trainer.describe_parameters() if timed else None, trainer.unseen_frames if timed else (),
                        trainer.seconds, (tuple(trainer.psnr_steps), tuple(trainer.psnr_values)) if trainer.psnr_steps
                        else None)


def _structure(trainer: Trainer) -> int:
    return trainer.structure


def _describe(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (in {last[0].name}, {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"

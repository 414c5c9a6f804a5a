"""The training worker: one thread per session owns the trainers; everyone else talks to it by message.

Commands go in through a queue and are applied between steps; the worker publishes immutable
``Snapshot`` objects (arrays already at display resolution) into a latest-wins ``LatestSlot``. A GUI polls
the slot on a timer; tests and scripts can do the same. Nothing here knows about Qt.
"""
from __future__ import annotations

import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .metrics import log_spectrum
from .signals import Signal
from .training import Trainer, TrainingDiverged


@dataclass(frozen=True)
class RunSnapshot:
    """What one trained field looks like at one moment (all arrays read-only, display-ready)."""

    label: str
    params: int
    step: int
    """Update count of the weights that produced ``reconstruction``."""
    reconstruction: np.ndarray
    """[0, 1]; HxW, HxWx3 or N (curves)."""
    error: np.ndarray
    """|reconstruction - target|, channels averaged: HxW or N."""
    spectrum: np.ndarray
    """log(1 + |FFT|) of the reconstruction (see metrics.log_spectrum)."""
    psnr: float
    loss: float
    psnr_history: np.ndarray
    """(K, 2): step, PSNR."""
    loss_history: np.ndarray
    """(K, 2): step, training loss."""


@dataclass(frozen=True)
class Snapshot:
    generation: int
    """Bumped by every reset, so views can drop curves of the previous run."""
    step: int
    running: bool
    steps_per_second: float
    device: str
    signal: Signal
    target: np.ndarray
    target_spectrum: np.ndarray
    runs: tuple[RunSnapshot, ...]
    message: str = ""
    """Something that happened and that the user should read (divergence recovered, ...)."""
    error: str = ""
    """An exception inside the worker, one paragraph; training is paused."""


class LatestSlot:
    """A one-item mailbox: ``put`` replaces, ``take`` empties. Readers never see a half-written value."""

    def __init__(self):
        self._lock = threading.Lock()
        self._value = None

    def put(self, value) -> None:
        with self._lock:
            self._value = value

    def take(self):
        with self._lock:
            value, self._value = self._value, None
            return value


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


@dataclass
class _Command:
    name: str
    args: tuple = ()


RunFactory = Callable[[], Sequence[tuple[str, Trainer]]]
"""Builds the session's labelled trainers; called in the worker thread, again on every reset."""


class TrainingWorker:
    """Trains one or more fields in lockstep on a background thread.

    ``factory`` must build identical trainers every time it is called (same seeds), so that ``reset``
    reproduces a run exactly.
    """

    def __init__(self, signal: Signal, factory: RunFactory, *, start_running: bool = True,
                 max_steps: int | None = None, min_publish_interval: float = 0.1):
        self.signal = signal
        self.latest = LatestSlot()
        self._factory = factory
        self._commands: queue.Queue[_Command] = queue.Queue()
        self._running = start_running
        self._max_steps = max_steps
        self._min_interval = min_publish_interval
        self._publish_cost = 0.0
        self._thread = threading.Thread(target=self._main, name="fieldlab-training", daemon=True)
        self._generation = 0
        self._trainers: list[tuple[str, Trainer]] = []
        self._target = _readonly(signal.target_display())
        self._target_spectrum = _readonly(log_spectrum(self._target))
        self.failed = threading.Event()

    # -- the GUI side: every method below only enqueues ------------------------------------------------
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

    def publish_now(self) -> None:
        self._commands.put(_Command("publish"))

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
        self._build(message="")
        pending_steps = 0
        last_publish = time.perf_counter()
        window_start, window_steps, rate = time.perf_counter(), 0, 0.0
        while True:
            idle = not self._trainers or not (self._running or pending_steps)
            try:
                command = self._commands.get(timeout=0.25) if idle else self._commands.get_nowait()
            except queue.Empty:
                command = None
            if command is not None:
                if command.name == "stop":
                    return
                pending_steps, message = self._apply(command, pending_steps)
                if command.name in ("reset", "pause", "publish", "set_lr"):
                    if command.name != "reset":
                        self._publish(rate, message=message)
                    last_publish = time.perf_counter()
                if command.name == "reset":
                    window_start, window_steps, rate, pending_steps = time.perf_counter(), 0, 0.0, 0
                continue
            if idle:
                continue
            message, error = "", ""
            try:
                for _, trainer in self._trainers:
                    trainer.step()
                window_steps += 1
                if pending_steps:
                    pending_steps -= 1
                if self._max_steps is not None and self._trainers[0][1].step_count >= self._max_steps:
                    self._running, pending_steps = False, 0
            except Exception as exc:  # anything in a step must not kill the session
                self._running, pending_steps = False, 0
                error = _describe(exc)
            now = time.perf_counter()
            interval = max(self._min_interval, 8.0 * self._publish_cost)
            finished_burst = not self._running and not pending_steps
            if now - last_publish >= interval or finished_burst or error:
                if now > window_start:
                    rate = window_steps / (now - window_start)
                window_start, window_steps = now, 0
                message = self._flush_all()
                self._publish(rate, message=message, error=error)
                last_publish = time.perf_counter()

    def _apply(self, command: _Command, pending_steps: int) -> tuple[int, str]:
        message = ""
        if command.name == "play":
            self._running = bool(self._trainers)
        elif command.name == "pause":
            self._running = False
            message = self._flush_all()
        elif command.name == "step":
            self._running = False
            pending_steps += command.args[0]
        elif command.name == "reset":
            self._build(message="reset: same seeds, same run")
        elif command.name == "set_lr":
            for _, trainer in self._trainers:
                trainer.set_lr(command.args[0])
        return pending_steps, message

    def _build(self, message: str) -> None:
        self._generation += 1
        try:
            self._trainers = list(self._factory())
            self._publish(0.0, message=message)
        except Exception as exc:
            self._trainers = []
            self._running = False
            self.failed.set()
            self._publish(0.0, error=f"could not build the model: {_describe(exc)}")

    def _flush_all(self) -> str:
        messages = []
        for label, trainer in self._trainers:
            try:
                trainer.flush()
            except TrainingDiverged as exc:
                self._running = False
                messages.append(f"{label}: {exc}" if len(self._trainers) > 1 else str(exc))
        return "; ".join(messages)

    def _publish(self, rate: float, message: str = "", error: str = "") -> None:
        started = time.perf_counter()
        runs = []
        for label, trainer in self._trainers:
            try:
                runs.append(self._run_snapshot(label, trainer))
            except Exception as exc:
                error = error or f"{label}: could not evaluate the field: {_describe(exc)}"
        device = str(self._trainers[0][1].device) if self._trainers else "-"
        step = self._trainers[0][1].step_count if self._trainers else 0
        self.latest.put(Snapshot(self._generation, step, self._running, rate, device, self.signal, self._target,
                                 self._target_spectrum, tuple(runs), message, error))
        self._publish_cost = time.perf_counter() - started

    def _run_snapshot(self, label: str, trainer: Trainer) -> RunSnapshot:
        step, prediction, psnr = trainer.evaluate()
        reconstruction = self.signal.as_display(prediction)
        error = np.abs(reconstruction - self._target)
        if error.ndim == 3:
            error = error.mean(axis=2)
        loss = trainer.loss_values[-1] if trainer.loss_values else float("nan")
        return RunSnapshot(
            label, trainer.params, step, _readonly(reconstruction), _readonly(error),
            _readonly(log_spectrum(reconstruction)), psnr, loss,
            _readonly(np.column_stack([trainer.psnr_steps, trainer.psnr_values]).reshape(-1, 2)),
            _readonly(np.column_stack([trainer.loss_steps, trainer.loss_values]).reshape(-1, 2)),
        )


def _describe(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (in {last[0].name}, {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"

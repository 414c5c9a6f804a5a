"""The two things being compared: a bare hand-written PyTorch loop, and the app's TrainingWorker.

``BareLoop`` builds the same model as the app (``build_field`` with the trainer's FieldConfig, so the same
weights) and draws the same minibatches (same sampler, same seed); its step is forward, MSE, zero_grad,
backward and the Adam step, nothing else. ``WorkerProbe`` runs the real ``TrainingWorker`` (with its
snapshot renderer thread) and timestamps every training step and every snapshot handed over.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn.functional as F

from models.fields import build_field
from models.metrics import psnr_from_mse
from models.scenes import Scene
from models.signals import Signal
from models.training import select_device
from models.worker import TrainingWorker


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so that wall-clock timings cover the work (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class BareLoop:
    """A hand-written training loop on the same model, data and batches as ``Trainer``."""

    def __init__(self, signal: Signal, scene: Scene):
        field = replace(scene.field, in_features=signal.in_features, out_features=signal.channels)
        self.device = select_device(scene.train.device)
        self.model = build_field(field).to(self.device)
        self.coords = signal.coords.to(self.device)
        self.targets = signal.values.to(self.device)
        n = self.coords.shape[0]
        batch = scene.train.batch_size
        self.batch_size = n if batch == 0 or batch >= n else batch
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=scene.train.lr)
        self.generator = torch.Generator(device=self.device).manual_seed(scene.train.seed)
        self.steps = 0

    def step(self) -> None:
        if self.batch_size == self.coords.shape[0]:
            coords, targets = self.coords, self.targets
        else:
            index = torch.randint(0, self.coords.shape[0], (self.batch_size,), device=self.device,
                                  generator=self.generator)
            coords, targets = self.coords[index], self.targets[index]
        loss = F.mse_loss(self.model(coords), targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.steps += 1

    @torch.no_grad()
    def psnr(self) -> float:
        """PSNR of the whole signal on clamped [0, 1] values, the same convention as Trainer.evaluate."""
        prediction = torch.cat([self.model(chunk) for chunk in self.coords.split(4096)])
        unit_prediction = ((prediction.float() + 1.0) * 0.5).clamp(0.0, 1.0)
        unit_target = (self.targets.float() + 1.0) * 0.5
        return psnr_from_mse(torch.mean((unit_prediction - unit_target) ** 2).item())


def run_for(step: Callable[[], None], seconds: float, device: torch.device) -> tuple[int, float]:
    """Call ``step`` until ``seconds`` have passed; (steps, elapsed seconds) with the device synchronised."""
    synchronize(device)
    start = time.perf_counter()
    steps = 0
    while time.perf_counter() - start < seconds:
        step()
        steps += 1
    synchronize(device)
    return steps, time.perf_counter() - start


def run_alternating(steps: dict[str, Callable[[], None]], seconds: float, device: torch.device,
                    block_seconds: float = 0.2) -> dict[str, tuple[int, float]]:
    """Take turns, a block of about ``block_seconds`` of steps each, until every one has run ``seconds``.

    Paired this finely, the loops share whatever load the machine has, so their ratio stays meaningful
    on a busy machine. Returns name -> (steps, seconds spent in its blocks).
    """
    totals = {name: (0, 0.0) for name in steps}
    block = dict.fromkeys(steps, 1)
    while min(elapsed for _, elapsed in totals.values()) < seconds:
        for name, step in steps.items():
            synchronize(device)
            started = time.perf_counter()
            for _ in range(block[name]):
                step()
            synchronize(device)
            elapsed = time.perf_counter() - started
            totals[name] = (totals[name][0] + block[name], totals[name][1] + elapsed)
            block[name] = max(1, round(block_seconds * block[name] / elapsed))
    return totals


def max_weight_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """Largest absolute difference between corresponding parameters of two same-shaped models."""
    return max(float((p.detach() - q.detach()).abs().max()) for p, q in zip(a.parameters(), b.parameters()))


@dataclass(frozen=True)
class Publish:
    """One snapshot as the worker handed it over: when, at which step, and its first run's PSNR."""

    time: float
    step: int
    running: bool
    psnr: float
    error: str


class RecordingSlot:
    """The worker's snapshot slot, wrapped: ``put`` and ``take`` behave as before.

    Every ``put`` is also timestamped: the moment a GUI could first see that snapshot.
    """

    def __init__(self, inner):
        self._inner = inner
        self.records: list[Publish] = []
        self._changed = threading.Condition()

    def put(self, value) -> None:
        now = time.perf_counter()
        self._inner.put(value)
        psnr = value.runs[0].psnr if value.runs else math.nan
        with self._changed:
            self.records.append(Publish(now, value.step, value.running, psnr, value.error))
            self._changed.notify_all()

    def take(self):
        return self._inner.take()

    def wait_for(self, predicate: Callable[[Publish], bool], start: int, timeout: float) -> tuple[int, Publish]:
        """Index and record of the first record at index >= ``start`` that satisfies ``predicate``."""
        deadline = time.perf_counter() + timeout
        index = start
        with self._changed:
            while True:
                while index < len(self.records):
                    record = self.records[index]
                    if record.error:
                        raise RuntimeError(f"the training worker failed: {record.error}")
                    if predicate(record):
                        return index, record
                    index += 1
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    raise TimeoutError(f"no matching snapshot from the worker within {timeout:.0f} s")
                self._changed.wait(remaining)


class WorkerProbe:
    """The real TrainingWorker, built as LiveSession builds it, with two probes.

    The first trainer's ``step`` is wrapped to timestamp the end of every training step (exact step
    boundaries on the worker thread), and the snapshot slot timestamps every snapshot handed over.
    """

    def __init__(self, signal: Signal, scene: Scene, running: bool):
        self.step_times: list[float] = []
        self.worker = TrainingWorker(signal, lambda: self._instrument(scene.build(signal)), start_running=running)
        self.slot = RecordingSlot(self.worker.latest)
        self.worker.latest = self.slot  # the worker thread hands this slot to its snapshot renderer on start
        self.started = time.perf_counter()
        self.worker.start()

    def _instrument(self, trainers):
        trainer = trainers[0][1]
        step = trainer.step

        def timed_step() -> None:
            step()
            self.step_times.append(time.perf_counter())

        trainer.step = timed_step
        return trainers

    def wait_built(self, timeout: float = 60.0) -> None:
        self.slot.wait_for(lambda r: True, 0, timeout)

    def measure(self, seconds: float, warmup_steps: int, timeout: float) -> tuple[int, float, int]:
        """Play for ``warmup_steps``, then for at least ``seconds`` of whole steps, then pause.

        Returns (steps, elapsed, snapshots handed over meanwhile). The window runs from the end of one
        step to the end of a later one, so whatever the worker does between steps is counted.
        """
        first = len(self.step_times)
        self.worker.play()
        self._wait(lambda: len(self.step_times) > first + warmup_steps, timeout)
        start = len(self.step_times) - 1
        started = self.step_times[start]
        time.sleep(seconds)
        self._wait(lambda: self.step_times[-1] - started >= seconds, timeout)
        end = len(self.step_times) - 1
        ended = self.step_times[end]
        mark = len(self.slot.records)
        self.worker.pause()
        self.slot.wait_for(lambda r: not r.running, mark, timeout)  # paused, and its last snapshot drawn
        snapshots = sum(1 for r in self.slot.records if started < r.time <= ended)
        return end - start, ended - started, snapshots

    def _wait(self, condition: Callable[[], bool], timeout: float, poll: float = 0.005) -> None:
        deadline = time.perf_counter() + timeout
        while not condition():
            failed = [r.error for r in self.slot.records if r.error]
            if failed:
                raise RuntimeError(f"the training worker failed: {failed[-1]}")
            if time.perf_counter() > deadline:
                raise TimeoutError(f"the training worker made no progress within {timeout:.0f} s")
            time.sleep(poll)

    def stop(self) -> None:
        if not self.worker.stop(timeout=60.0):
            raise RuntimeError("the training worker did not stop within 60 s")

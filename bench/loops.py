"""The two things being compared: a bare hand-written PyTorch loop, and the app's TrainingWorker.

``BareLoop`` builds the same model as the app (``build_field`` with the trainer's FieldConfig, so the same
weights) and draws the same minibatches (same sampler, same seed); its step is forward, MSE, zero_grad,
backward and the Adam step, nothing else. ``WorkerProbe`` runs the real ``TrainingWorker`` and timestamps
every snapshot it publishes, so throughput can be measured over whole step+publish cycles.
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
from models.worker import LatestSlot, TrainingWorker


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


def max_weight_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """Largest absolute difference between corresponding parameters of two same-shaped models."""
    return max(float((p - q).abs().max()) for p, q in zip(a.parameters(), b.parameters()))


@dataclass(frozen=True)
class Publish:
    """One snapshot as the worker handed it over: when, at which step, and its first run's PSNR."""

    time: float
    step: int
    running: bool
    psnr: float
    error: str


class RecordingSlot(LatestSlot):
    """A LatestSlot that also timestamps every ``put``: the moment a GUI could first see that snapshot."""

    def __init__(self):
        super().__init__()
        self.records: list[Publish] = []
        self._changed = threading.Condition()

    def put(self, value) -> None:
        now = time.perf_counter()
        super().put(value)
        psnr = value.runs[0].psnr if value.runs else math.nan
        with self._changed:
            self.records.append(Publish(now, value.step, value.running, psnr, value.error))
            self._changed.notify_all()

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
    """The real TrainingWorker, built as LiveSession builds it, with a timestamping snapshot slot."""

    def __init__(self, signal: Signal, scene: Scene, running: bool):
        self.worker = TrainingWorker(signal, lambda: scene.build(signal), start_running=running)
        self.slot = RecordingSlot()
        self.worker.latest = self.slot
        self.started = time.perf_counter()
        self.worker.start()

    def wait_built(self, timeout: float = 60.0) -> None:
        self.slot.wait_for(lambda r: True, 0, timeout)

    def measure(self, seconds: float, warmup_steps: int, min_cycles: int, timeout: float) -> tuple[int, float, int]:
        """Play for at least ``seconds`` and ``min_cycles`` whole step+publish cycles, then pause.

        Returns (steps, elapsed, cycles) counted from one publish to a later one, so the publish cost is
        included exactly as often as the app pays it.
        """
        mark = len(self.slot.records)
        self.worker.play()
        first_index, first = self.slot.wait_for(lambda r: r.running, mark, timeout)
        start_index, start = self.slot.wait_for(lambda r: r.running and r.step >= first.step + warmup_steps,
                                                first_index + 1, timeout)
        end_index, end = self.slot.wait_for(lambda r: r.time - start.time >= seconds,
                                            start_index + min_cycles, timeout + seconds)
        mark = len(self.slot.records)
        self.worker.pause()
        self.slot.wait_for(lambda r: not r.running, mark, timeout)
        return end.step - start.step, end.time - start.time, end_index - start_index

    def stop(self) -> None:
        if not self.worker.stop(timeout=60.0):
            raise RuntimeError("the training worker did not stop within 60 s")

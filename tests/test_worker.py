"""The Qt-free TrainingWorker thread: snapshots, pause/step/reset semantics, errors and stopping."""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import torch

from models.fields import FieldConfig
from models.metrics import psnr
from models.signals import load_signal
from models.scenes import Scene
from models.training import TrainConfig, Trainer
from models.worker import LatestSlot, Snapshot, TrainingWorker

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def camera():
    return load_signal("camera", 16)


@pytest.fixture
def workers():
    """Start workers through this; every one is stopped at teardown, even when a test fails."""
    started: list[TrainingWorker] = []

    def start(*args, **kwargs) -> TrainingWorker:
        worker = TrainingWorker(*args, **kwargs)
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        assert worker.stop(timeout=5.0), "worker thread did not stop"


def wait_for(worker: TrainingWorker, predicate, timeout: float = TIMEOUT, last: list | None = None) -> Snapshot:
    """Poll the worker's slot until a snapshot satisfies ``predicate``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        snapshot = worker.latest.take()
        if snapshot is not None:
            seen = snapshot
            if last is not None:
                last[:] = [snapshot]
            if predicate(snapshot):
                return snapshot
        time.sleep(0.005)
    pytest.fail(f"no matching snapshot within {timeout} s; last seen: "
                f"{None if seen is None else (seen.generation, seen.step, seen.running, seen.message, seen.error)}")


def wait_until(condition, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.005)
    pytest.fail(f"condition not met within {timeout} s")


def factory_for(signal, width=16, batch_size=0, trainer_cls=Trainer, made: list | None = None, runs=("field",)):
    def factory():
        trainers = [(label, trainer_cls(signal, FieldConfig(width=width, depth=2, seed=i),
                                        TrainConfig(lr=1e-3, batch_size=batch_size, seed=i, device="cpu")))
                    for i, label in enumerate(runs)]
        if made is not None:
            made.extend(t for _, t in trainers)
        return trainers
    return factory


def test_latest_slot_is_latest_wins():
    slot = LatestSlot()
    assert slot.take() is None
    slot.put(1)
    slot.put(2)
    assert slot.take() == 2
    assert slot.take() is None


@pytest.mark.parametrize("name", ["camera", "astronaut", "sinusoids"])
def test_snapshots_are_display_ready_and_read_only(workers, name):
    signal = load_signal(name, 16)
    worker = workers(signal, factory_for(signal), max_steps=20, min_publish_interval=0.02)
    snap = wait_for(worker, lambda s: s.step == 20 and not s.running)
    assert snap.error == "" and snap.generation == 1 and snap.device == "cpu"
    assert snap.signal is signal
    assert len(snap.runs) == 1
    run = snap.runs[0]
    if signal.kind == "curve":
        shape, error_shape, spectrum_shape = signal.shape, signal.shape, (signal.shape[0] // 2 + 1,)
    else:
        shape = signal.shape if signal.channels == 1 else (*signal.shape, 3)
        error_shape = spectrum_shape = signal.shape
    arrays = {"target": (snap.target, shape), "target_spectrum": (snap.target_spectrum, spectrum_shape),
              "reconstruction": (run.reconstruction, shape), "error": (run.error, error_shape),
              "spectrum": (run.spectrum, spectrum_shape)}
    for label, (array, expected) in arrays.items():
        assert isinstance(array, np.ndarray), label
        assert array.shape == expected, label
        assert array.dtype == np.float32, label
        assert not array.flags.writeable, label
        assert np.all(np.isfinite(array)), label
        with pytest.raises(ValueError):
            array.flat[0] = 0.5
    assert 0.0 <= run.reconstruction.min() and run.reconstruction.max() <= 1.0
    expected_error = np.abs(run.reconstruction - snap.target)
    if expected_error.ndim == 3:
        expected_error = expected_error.mean(axis=2)
    assert np.allclose(run.error, expected_error, atol=1e-6)
    assert math.isfinite(run.psnr) and math.isfinite(run.loss)
    assert run.psnr == pytest.approx(psnr(run.reconstruction, snap.target), rel=1e-6)
    assert run.params > 0 and run.step <= snap.step
    for history in (run.psnr_history, run.loss_history):
        assert history.ndim == 2 and history.shape[1] == 2 and history.shape[0] >= 1
        assert not history.flags.writeable
        assert np.all(np.diff(history[:, 0]) > 0)
        assert np.all(np.isfinite(history[:, 1]))
    assert run.loss_history[-1, 0] == snap.step - 1  # losses of updates 0 .. step-1
    assert run.psnr_history[-1, 0] == run.step and run.psnr_history[-1, 1] == pytest.approx(run.psnr)


def test_pause_stops_and_step_advances_exactly(workers, camera):
    made: list = []
    worker = workers(camera, factory_for(camera, made=made), start_running=True, min_publish_interval=0.02)
    wait_for(worker, lambda s: s.step >= 5)
    worker.pause()
    paused = wait_for(worker, lambda s: not s.running)
    trainer = made[0]
    assert paused.step == trainer.step_count
    time.sleep(0.3)
    assert trainer.step_count == paused.step
    late = worker.latest.take()
    assert late is None or late.step == paused.step
    worker.step(7)
    stepped = wait_for(worker, lambda s: s.step >= paused.step + 7)
    assert stepped.step == paused.step + 7 and not stepped.running
    time.sleep(0.2)
    assert trainer.step_count == paused.step + 7
    assert len(trainer.loss_values) == paused.step + 7  # every step's loss reached the history
    worker.play()
    wait_for(worker, lambda s: s.running and s.step > paused.step + 7)


def test_step_while_running_switches_to_exact_burst(workers, camera):
    worker = workers(camera, factory_for(camera), start_running=False, min_publish_interval=0.02)
    first = wait_for(worker, lambda s: True)
    assert first.step == 0 and not first.running
    worker.step(3)
    worker.step(4)
    snap = wait_for(worker, lambda s: s.step >= 7)
    assert snap.step == 7


def test_max_steps_stops_the_run(workers, camera):
    worker = workers(camera, factory_for(camera), max_steps=12, min_publish_interval=0.02)
    snap = wait_for(worker, lambda s: not s.running and s.step >= 12)
    assert snap.step == 12


@pytest.mark.parametrize("batch_size", [0, 48])
def test_reset_reproduces_the_run_exactly(workers, camera, batch_size):
    n = 15
    factory = factory_for(camera, batch_size=batch_size, runs=("a", "b"))
    worker = workers(camera, factory, start_running=False, min_publish_interval=0.02)
    wait_for(worker, lambda s: s.generation == 1)
    worker.step(n)
    before = wait_for(worker, lambda s: s.step >= n)
    assert before.step == n
    worker.reset()
    fresh = wait_for(worker, lambda s: s.generation == 2)
    assert fresh.step == 0 and "reset" in fresh.message
    worker.step(n)
    after = wait_for(worker, lambda s: s.generation == 2 and s.step >= n)
    assert after.step == n
    assert len(before.runs) == len(after.runs) == 2
    for a, b in zip(before.runs, after.runs):
        assert a.label == b.label and a.step == b.step
        assert np.array_equal(a.reconstruction, b.reconstruction)
        assert np.array_equal(a.loss_history, b.loss_history)
        assert a.psnr == b.psnr
    # the two runs of one session differ (different seeds), so the comparison above is not vacuous
    assert not np.array_equal(before.runs[0].reconstruction, before.runs[1].reconstruction)


def test_reset_reproduces_a_spectral_bias_scene(workers, camera):
    # the app's own factory: Scene.build with three model kinds side by side
    scene = Scene(field=FieldConfig(width=16, depth=2, fourier_frequencies=16), preset="spectral-bias",
                  train=TrainConfig(lr=1e-3, batch_size=100, seed=3, device="cpu"), lr_override=False)
    worker = workers(camera, lambda: scene.build(camera), start_running=False, min_publish_interval=0.02)
    wait_for(worker, lambda s: s.generation == 1)
    worker.step(6)
    before = wait_for(worker, lambda s: s.step >= 6)
    worker.reset()
    wait_for(worker, lambda s: s.generation == 2)
    worker.step(6)
    after = wait_for(worker, lambda s: s.generation == 2 and s.step >= 6)
    assert [r.label for r in before.runs] == [r.label for r in after.runs] and len(after.runs) == 3
    for a, b in zip(before.runs, after.runs):
        assert np.array_equal(a.reconstruction, b.reconstruction), a.label
        assert np.array_equal(a.loss_history, b.loss_history), a.label


def test_factory_error_is_reported_and_worker_still_stops(workers, camera):
    calls = []

    def broken():
        calls.append(1)
        raise ValueError("bad architecture")

    worker = workers(camera, broken, start_running=True)
    snap = wait_for(worker, lambda s: bool(s.error))
    assert "could not build the model" in snap.error and "bad architecture" in snap.error
    assert snap.runs == () and not snap.running
    worker.play()
    worker.step(3)
    worker.reset()
    wait_until(lambda: len(calls) == 2)
    assert worker.alive
    started = time.monotonic()
    assert worker.stop(timeout=5.0)
    assert time.monotonic() - started < 2.0


class RaisingTrainer(Trainer):
    fail_at = 3

    def step(self) -> None:
        if self.step_count >= self.fail_at:
            raise RuntimeError("kaboom in step")
        super().step()


def test_exception_inside_a_step_pauses_with_error(workers, camera):
    made: list = []
    worker = workers(camera, factory_for(camera, trainer_cls=RaisingTrainer, made=made), start_running=True,
                     min_publish_interval=0.02)
    snap = wait_for(worker, lambda s: bool(s.error))
    assert "RuntimeError" in snap.error and "kaboom in step" in snap.error
    assert not snap.running and snap.step == RaisingTrainer.fail_at
    assert len(snap.runs) == 1 and math.isfinite(snap.runs[0].psnr)
    assert worker.alive
    time.sleep(0.2)
    assert made[0].step_count == RaisingTrainer.fail_at  # paused: nothing more happens
    worker.play()  # fails again, the thread survives
    wait_for(worker, lambda s: bool(s.error))
    assert worker.alive
    started = time.monotonic()
    assert worker.stop(timeout=5.0)
    assert time.monotonic() - started < 2.0
    assert not worker.alive


class PoisonTrainer(Trainer):
    """Writes a NaN into its own weights at step 3 (in the worker thread, so no race with the test)."""

    poison_at = 3

    def step(self) -> None:
        if self.step_count == self.poison_at:
            with torch.no_grad():
                self.model.output.weight.fill_(float("nan"))
        super().step()


def test_divergence_during_training_is_reported(workers, camera):
    made: list = []
    worker = workers(camera, factory_for(camera, trainer_cls=PoisonTrainer, made=made), start_running=True,
                     min_publish_interval=0.02)
    snap = wait_for(worker, lambda s: bool(s.message) or bool(s.error))
    assert "restored" in snap.message and snap.error == ""
    assert not snap.running
    assert snap.step <= PoisonTrainer.poison_at
    assert all(torch.isfinite(p).all() for p in made[0].model.parameters())
    assert math.isfinite(snap.runs[0].psnr)


def test_divergence_found_when_pausing_is_reported(workers, camera):
    # with a long publish interval the NaN is only found by the flush that pause() triggers
    made: list = []
    worker = workers(camera, factory_for(camera, trainer_cls=PoisonTrainer, made=made), start_running=True,
                     min_publish_interval=60.0)
    wait_until(lambda: made and made[0].step_count > PoisonTrainer.poison_at + 2)
    worker.pause()
    snap = wait_for(worker, lambda s: not s.running)
    assert snap.step <= PoisonTrainer.poison_at  # the weights were restored ...
    assert all(torch.isfinite(p).all() for p in made[0].model.parameters())
    # ... and the user must be told why the step counter jumped back
    assert "restored" in snap.message or "restored" in snap.error


def test_set_lr_reaches_trainers(workers, camera):
    made: list = []
    worker = workers(camera, factory_for(camera, made=made), start_running=False)
    wait_for(worker, lambda s: True)
    worker.set_lr(3e-4)
    wait_until(lambda: all(g["lr"] == 3e-4 for g in made[0].optimizer.param_groups))


def test_call_runs_on_worker_and_reports(workers, camera):
    worker = workers(camera, factory_for(camera), start_running=False)
    wait_for(worker, lambda s: True)
    threads = []

    def probe(trainers):
        threads.append(threading.current_thread().name)
        return f"{len(trainers)} trainer at step {trainers[0][1].step_count}"

    worker.call(probe)
    assert wait_for(worker, lambda s: bool(s.message)).message == "1 trainer at step 0"
    assert threads == ["fieldlab-training"]

    def broken(trainers):
        raise OSError("disk full")

    worker.call(broken)
    snap = wait_for(worker, lambda s: bool(s.error))
    assert "disk full" in snap.error and "\n" not in snap.error
    assert worker.alive
    worker.step(2)
    assert wait_for(worker, lambda s: s.step >= 2).step == 2


def test_stop_is_prompt_while_training(workers, camera):
    worker = workers(camera, factory_for(camera, width=32), start_running=True, min_publish_interval=0.02)
    wait_for(worker, lambda s: s.step > 3 and s.running)
    started = time.monotonic()
    assert worker.stop(timeout=5.0)
    assert time.monotonic() - started < 1.0
    assert not worker.alive
    assert worker.stop()  # stopping twice is harmless
    assert not any(t.name == "fieldlab-training" and t is worker._thread for t in threading.enumerate())

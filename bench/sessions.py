"""Sessions and the training timeline: what saving, opening and keeping past states cost.

A. ``measure_session_io``: each lab's default scene (the app's sizes) trained a few steps, then
   ``capture_runs`` (copy every tensor), ``save_runs_session`` (zip + safetensors, atomic), ``open_session`` +
   ``restored_runs`` (read, reload the signal, rebuild, restore): times, state and file sizes, and whether the
   restored runs' weights are bit-identical.
B. ``measure_timeline_overhead``: the worker training the default image scene with the timeline keeping a state
   every 25 steps against the same worker with the timeline off, and a bare PyTorch loop (same model, Adam, full
   batch) in the same run; the loops take turns in blocks of a few seconds so that they share the machine's load.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import replace

import torch

from models import scenes
from models.sessions import SignalRef, open_session, restored_runs, save_runs_session, tensors_equal
from models.signals import load_signal
from models.trainer_state import capture_runs, state_bytes
from models.worker import TrainingWorker


def _lab_cases(quick: bool) -> list[tuple[str, scenes.Scene, SignalRef]]:
    from app.time_window import family_defaults

    image = scenes.Scene(field=scenes.DEFAULT_FIELD, train=replace(scenes.DEFAULT_TRAIN, lr=1e-3))
    size = 64 if quick else scenes.DEFAULT_SIZE
    return [
        ("image (SIREN 3x128)", image, SignalRef("camera", size)),
        ("spectral bias (3 runs)", replace(image, preset="spectral-bias"), SignalRef("camera", size)),
        ("growth (16..128)", scenes.DEFAULT_GROWTH_SCENE, SignalRef("camera", size)),
        ("crop (Local-Global 8x8)", scenes.DEFAULT_CROP_SCENE, SignalRef("camera", size)),
        ("FINER++ sweep (7 members)", scenes.DEFAULT_SWEEP_SCENE, SignalRef("camera", scenes.DEFAULT_SWEEP_SIZE)),
        ("time (ResFields + SIREN)", family_defaults("time-video"), SignalRef("tour", 64)),
        ("3D SDF (torus)", scenes.DEFAULT_SDF_SCENE, SignalRef("torus", None)),
    ]


def _weights(trainers) -> dict:
    return {f"{i}.{k}": v for i, (_, t) in enumerate(trainers) for k, v in t.model.state_dict().items()}


def measure_session_io(quick: bool, progress) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, scene, ref in _lab_cases(quick):
            progress(f"sessions: {name}")
            signal = ref.load()
            trainers = scene.build(signal)
            for _ in range(3 if quick else 10):
                for _, trainer in trainers:
                    trainer.step()
            started = time.perf_counter()
            state = capture_runs(trainers)
            captured = time.perf_counter() - started
            path = os.path.join(folder, "s.fieldlab")
            started = time.perf_counter()
            size = save_runs_session(path, scene, ref, signal, state)
            saved = time.perf_counter() - started
            started = time.perf_counter()
            opened = open_session(path)
            restored = restored_runs(opened)
            reopened = time.perf_counter() - started
            rows.append({"lab": name, "runs": len(trainers), "parameters": sum(t.params for _, t in trainers),
                         "state_mb": state_bytes(state) / 1e6, "file_mb": size / 1e6,
                         "capture_ms": captured * 1e3, "save_ms": saved * 1e3, "open_ms": reopened * 1e3,
                         "bit_identical": tensors_equal(_weights(trainers), _weights(restored))})
    return rows


def _worker_rate(scene, signal, seconds: float, every: int) -> float:
    worker = TrainingWorker(signal, lambda: scene.build(signal), start_running=False)
    worker.timeline.every = every
    worker.start()
    try:
        time.sleep(0.3)
        first = _latest_step(worker, 0)
        worker.play()
        started = time.perf_counter()
        time.sleep(seconds)
        worker.pause()
        elapsed = time.perf_counter() - started
        last = _latest_step(worker, first + 1)
    finally:
        worker.stop()
    return (last - first) / elapsed


def _latest_step(worker, at_least: int) -> int:
    deadline = time.monotonic() + 30
    step = -1
    while time.monotonic() < deadline:
        snapshot = worker.latest.take()
        if snapshot is not None:
            step = max(step, snapshot.step)
            if step >= at_least and not snapshot.running:
                return step
        time.sleep(0.02)
    return max(step, 0)


def _bare_rate(scene, signal, seconds: float) -> float:
    from models.fields import build_field

    model = build_field(replace(scene.field, in_features=signal.in_features, out_features=signal.channels))
    optimizer = torch.optim.Adam(model.parameters(), lr=scene.train.lr)
    coords, targets = signal.coords, signal.values
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        loss = torch.mean((model(coords) - targets) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        steps += 1
    return steps / (time.perf_counter() - started)


def measure_timeline_overhead(quick: bool, progress) -> dict:
    scene = scenes.Scene(field=replace(scenes.DEFAULT_FIELD, width=64), train=replace(scenes.DEFAULT_TRAIN, lr=1e-3))
    signal = load_signal("camera", 64 if quick else 128)
    seconds, rounds = (1.5, 2) if quick else (4.0, 3)
    rates: dict[str, list[float]] = {"timeline on": [], "timeline off": [], "bare loop": []}
    for round_ in range(rounds):
        progress(f"sessions: timeline overhead, round {round_ + 1}/{rounds}")
        rates["timeline on"].append(_worker_rate(scene, signal, seconds, every=25))
        rates["timeline off"].append(_worker_rate(scene, signal, seconds, every=10**9))
        rates["bare loop"].append(_bare_rate(scene, signal, seconds))
    median = {k: statistics.median(v) for k, v in rates.items()}
    return {"image": f"camera {signal.shape[0]}x{signal.shape[1]}", "model": "SIREN 3x64, full batch",
            "steps_per_s": median,
            "on_vs_off": median["timeline on"] / median["timeline off"],
            "on_vs_bare": median["timeline on"] / median["bare loop"]}


def measure_sessions(quick: bool, progress) -> dict:
    return {"io": measure_session_io(quick, progress), "timeline": measure_timeline_overhead(quick, progress)}


def render_sessions(results: dict) -> list[str]:
    lines = ["11. Sessions and the training timeline (bench/sessions.py)", "",
             "| Lab (default scene) | Runs | Parameters | State MB | File MB | Capture ms | Save ms | Open ms | Bit-identical |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in results["io"]:
        lines.append(f"| {row['lab']} | {row['runs']} | {row['parameters']:,} | {row['state_mb']:.2f} | "
                     f"{row['file_mb']:.2f} | {row['capture_ms']:.1f} | {row['save_ms']:.0f} | {row['open_ms']:.0f} | "
                     f"{'yes' if row['bit_identical'] else 'NO'} |")
    timeline = results["timeline"]
    rates = timeline["steps_per_s"]
    lines += ["", f"Timeline overhead ({timeline['model']}, {timeline['image']}): worker with the timeline "
                  f"{rates['timeline on']:.1f} steps/s, without {rates['timeline off']:.1f}, bare loop "
                  f"{rates['bare loop']:.1f}: on/off **{timeline['on_vs_off']:.2f}x**, on/bare "
                  f"**{timeline['on_vs_bare']:.2f}x**."]
    return lines

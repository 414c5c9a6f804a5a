"""Time to a target PSNR with the default scene: the real worker as the app runs it, and the bare loop.

The worker is timed from its start (model build included, as when the app opens) to the moment it hands
over the first snapshot at or above the target, i.e. when the window could first show it. The bare loop
is timed over its training steps only; its PSNR is evaluated every ``eval_every`` steps outside the clock.
"""
from __future__ import annotations

import math
import time

from models.scenes import DEFAULT_FIELD, DEFAULT_SIGNAL, DEFAULT_SIZE, DEFAULT_TRAIN, Scene
from models.signals import load_signal

from .loops import BareLoop, WorkerProbe, synchronize


def default_scene() -> Scene:
    return Scene(field=DEFAULT_FIELD, train=DEFAULT_TRAIN)


def worker_time_to_psnr(target_db: float, limit_s: float) -> dict:
    signal = load_signal(DEFAULT_SIGNAL, DEFAULT_SIZE)
    probe = WorkerProbe(signal, default_scene(), running=True)
    try:
        try:
            _, record = probe.slot.wait_for(lambda r: r.psnr >= target_db, 0, limit_s)
        except TimeoutError:
            record = None
    finally:
        probe.stop()
    seen = [r for r in probe.slot.records if math.isfinite(r.psnr) and (record is None or r.time <= record.time)]
    shown = record or seen[-1]
    return {"reached": record is not None, "limit_s": limit_s, "seconds": shown.time - probe.started,
            "steps": shown.step, "psnr": shown.psnr, "snapshots": len(seen)}


def bare_time_to_psnr(target_db: float, limit_s: float, eval_every: int = 25) -> dict:
    signal = load_signal(DEFAULT_SIGNAL, DEFAULT_SIZE)
    loop = BareLoop(signal, default_scene())
    training_seconds = 0.0
    psnr = loop.psnr()
    while psnr < target_db and training_seconds < limit_s:
        synchronize(loop.device)
        started = time.perf_counter()
        for _ in range(eval_every):
            loop.step()
        synchronize(loop.device)
        training_seconds += time.perf_counter() - started
        psnr = loop.psnr()
    return {"reached": psnr >= target_db, "limit_s": limit_s, "seconds": training_seconds, "steps": loop.steps,
            "psnr": psnr, "eval_every": eval_every}

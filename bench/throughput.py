"""Steps per second of the bare loop, of ``Trainer.step()`` alone and of the real worker, interleaved.

In each round the bare loop and ``Trainer.step()`` take turns in short blocks (same thread, same load),
and the worker runs just before or after them (the order flips every round, so a drifting background
load does not always hit the same side). Rounds are short (about 1.5 s a mode) and many, because the
shared machines here change speed within seconds; the median of the per-round ratios is reported.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, replace

from models.scenes import DEFAULT_FIELD, DEFAULT_SIZE, DEFAULT_TRAIN, Scene
from models.signals import load_signal
from models.training import Trainer

from .flops import hidden_layer_rate, step_flops
from .loops import BareLoop, WorkerProbe, max_weight_difference, run_alternating, run_for, synchronize

MODES = ("bare", "trainer_step", "worker")
MODE_LABELS = {"bare": "bare PyTorch loop", "trainer_step": "Trainer.step() only",
               "worker": "TrainingWorker (app)"}


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    signal: str
    size: int
    scene: Scene
    seconds: float
    """Minimum measured time per mode and round (rounded up to whole steps)."""
    rounds: int
    """Rounds in a full run (a quick run does a third of them)."""


def cases(quick: bool) -> list[Case]:
    scale = 0.35 if quick else 1.0
    full_batch = Scene(field=DEFAULT_FIELD, train=replace(DEFAULT_TRAIN, batch_size=0))
    result = [
        Case("default", f"camera {DEFAULT_SIZE} px, SIREN {DEFAULT_FIELD.width}x{DEFAULT_FIELD.depth}, "
                        f"batch {DEFAULT_TRAIN.batch_size}", "camera", DEFAULT_SIZE,
             Scene(field=DEFAULT_FIELD, train=DEFAULT_TRAIN), 1.5 * scale, 8),
        Case("full-batch", f"camera {DEFAULT_SIZE} px, SIREN {DEFAULT_FIELD.width}x{DEFAULT_FIELD.depth}, "
                           f"full batch ({DEFAULT_SIZE * DEFAULT_SIZE})", "camera", DEFAULT_SIZE, full_batch,
             3.0 * scale, 6),
    ]
    if not quick:
        result.append(Case("small", f"camera 64 px, SIREN {DEFAULT_FIELD.width}x{DEFAULT_FIELD.depth}, "
                                    "full batch (4096): per-step overhead", "camera", 64, full_batch, 1.0, 8))
    return [replace(case, rounds=max(1, case.rounds // 3)) for case in result] if quick else result


def measure_case(case: Case, peak_flops: float) -> dict:
    """Throughput of the three modes on one case; rates in steps/s, ratios against the bare loop."""
    signal = load_signal(case.signal, case.size)
    bare = BareLoop(signal, case.scene)
    trainer = Trainer(signal, case.scene.field, case.scene.train)
    device = trainer.device
    identical = _same_trajectory(signal, case.scene)
    warmup_seconds = max(0.5, case.seconds / 4)
    run_for(bare.step, warmup_seconds, device)
    run_for(trainer.step, warmup_seconds, device)
    trainer.flush()

    probe = WorkerProbe(signal, case.scene, running=False)
    per_round: list[dict] = []
    try:
        probe.wait_built()
        for index in range(case.rounds):
            measured = {}
            for part in (("loops", "worker") if index % 2 == 0 else ("worker", "loops")):
                if part == "loops":
                    timed = run_alternating({"bare": bare.step, "trainer_step": trainer.step}, case.seconds, device)
                    trainer.flush()
                    for mode, (steps, elapsed) in timed.items():
                        measured[mode] = {"steps": steps, "seconds": elapsed}
                else:
                    steps, elapsed, snapshots = probe.measure(case.seconds, warmup_steps=2, timeout=120.0)
                    measured["worker"] = {"steps": steps, "seconds": elapsed, "snapshots": snapshots}
            for values in measured.values():
                values["steps_per_s"] = values["steps"] / values["seconds"]
            per_round.append(measured)
    finally:
        probe.stop()

    rates = {mode: statistics.median(r[mode]["steps_per_s"] for r in per_round) for mode in MODES}
    per_round_ratios = {mode: [r[mode]["steps_per_s"] / r["bare"]["steps_per_s"] for r in per_round]
                        for mode in MODES if mode != "bare"}
    ratios = {mode: statistics.median(values) for mode, values in per_round_ratios.items()}
    flops_per_step = step_flops(trainer.model, trainer.batch_size)
    return {
        "name": case.name,
        "description": case.description,
        "samples": signal.coords.shape[0],
        "batch_size": trainer.batch_size,
        "params": trainer.params,
        "rounds_run": case.rounds,
        "device": str(device),
        "bare_matches_trainer_max_weight_diff": identical,
        "steps_per_s": rates,
        "ratio_to_bare": ratios,
        "ratio_range": {mode: (min(values), max(values)) for mode, values in per_round_ratios.items()},
        "flops_per_step": flops_per_step,
        "hidden_layer_matmul_flops": hidden_layer_rate(trainer.model, trainer.batch_size, device, seconds=0.3),
        "achieved_flops": {mode: rate * flops_per_step for mode, rate in rates.items()},
        "fraction_of_peak": {mode: rate * flops_per_step / peak_flops for mode, rate in rates.items()},
        "rounds": per_round,
    }


def _same_trajectory(signal, scene: Scene, steps: int = 2) -> float:
    """Max weight difference between a fresh Trainer and a fresh BareLoop after ``steps`` updates each.

    Zero (or float rounding) shows that both sides train the same model on the same batches.
    """
    bare = BareLoop(signal, scene)
    trainer = Trainer(signal, scene.field, scene.train)
    if max_weight_difference(bare.model, trainer.model) != 0.0:
        raise RuntimeError("the bare loop's model does not start from the trainer's weights")
    for _ in range(steps):
        bare.step()
        trainer.step()
    synchronize(trainer.device)
    return max_weight_difference(bare.model, trainer.model)

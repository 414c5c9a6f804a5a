"""FINER++ bias-range sweeps (models/sweep.py, models/activations.py): the issue's requirements.

A. ``measure_sweep_speed``: six FINER++ sine fields (k = 0, 0.5, 1, 2, 5, 10), width 64, depth 4, on the
   cameraman, full batch, on the CPU. The time of N steps of every member, four ways: (a) six ``Trainer``s
   trained one after another, N steps each; (b) the interleaved sweep (``build_sweep(..., 'interleaved')``,
   every member stepped in turn, N rounds); (c) the batched sweep (``build_sweep(..., 'batched')``: one
   vmapped model, one Adam); (d) a bare PyTorch loop of the same six networks written out here (nn.Linear,
   sin(w0 (|z| + 1) z) with the factor detached, Adam, full batch), one after another. Every mode is warmed
   up, then each repeat times all four (the order rotates between repeats). Ratios are medians of the
   per-repeat ratios.
B. ``measure_sweep_quality``: the issue's reference setting (the FINER reference code's 256-px cameraman,
   3 hidden layers + the first = depth 4, width 64, 300 full-batch steps, Adam lr 5e-4 decaying as
   0.1^(step / 300)): SIREN at its default bias init against FINER++ sine at k = default, 0, 0.5, 1, 2, 5,
   10, 20, trained as one interleaved sweep. PSNR, SSIM and the high-frequency energy share of every
   member (and of the target); then SIREN and the best k again with a constant lr.
C. ``measure_live_rate``: a headless ``TrainingWorker`` on ``DEFAULT_SWEEP_SCENE`` at ``DEFAULT_SWEEP_SIZE``;
   its ``latest`` slot is polled every 30 ms as the GUI's ``LiveSession`` polls it. Snapshots per second (each
   carries every cell), steps each cell advanced between snapshots, and the training rate.
"""
from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from itertools import pairwise

import numpy as np
import torch
from torch import nn

from models.fields import FieldConfig, build_field
from models.metrics import HF_CUTOFF, high_frequency_energy, ssim
from models.scenes import DEFAULT_SWEEP_SCENE, DEFAULT_SWEEP_SIZE
from models.signals import Signal, load_signal
from models.sweep import SweepSettings, build_sweep, member_label
from models.training import TrainConfig, Trainer, TrainingDiverged
from models.worker import TrainingWorker

from .loops import max_weight_difference, synchronize

SIGNAL = "camera"
SIZE = 256
WIDTH = 64
DEPTH = 4
"""Sine layers: the FINER reference's first layer + 3 hidden layers (then a linear output)."""
W0 = 30.0
LR = 5e-4
SPEED_KS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0)
QUALITY_KS = (None, 0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
SPEED_MODES = ("sequential", "interleaved", "batched", "bare")
SPEED_LABELS = {"sequential": "six Trainers, one after another", "interleaved": "interleaved sweep",
                "batched": "batched sweep (vmap)", "bare": "bare PyTorch loops, one after another"}
POLL_S = 0.030
"""The GUI's snapshot poll interval (app/session.py, LiveSession poll_ms)."""
FINER_TARGETS = {"interleaved_over_sequential_max": 1.1, "best_k_minus_siren_min_db": 1.0, "live_snapshot_min_hz": 2.0,
                 "gui_p95_max_ms": 50.0}
REFERENCE = {"finer_psnr_db": 29.3, "siren_psnr_db": 28.3,
             "note": "public FINER code on the 2-core machine: cameraman 256 px, 3x64 hidden (+ first), 300 full-batch "
                     "steps, lr 5e-4 decaying to 5e-5"}

Progress = Callable[[str], None]


def _field(kind: str = "finer", bias_range: float | None = None, signal: Signal | None = None) -> FieldConfig:
    config = FieldConfig(kind=kind, width=WIDTH, depth=DEPTH, w0=W0, bias_range=bias_range)
    if signal is not None:
        config = replace(config, in_features=signal.in_features, out_features=signal.channels)
    return config


def _k_text(k: float | None) -> str:
    return "default" if k is None else f"{k:g}"


# -- A. sweep speed on the CPU ------------------------------------------------------------------------------

class BareFiner(nn.Module):
    """A FINER++ sine MLP written out: nn.Linear layers, sin(w0 (|z| + 1) z) with |z| + 1 detached."""

    def __init__(self, in_features: int, out_features: int, width: int, depth: int, w0: float):
        super().__init__()
        dims = [in_features] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(dims))
        self.output = nn.Linear(width, out_features)
        self.w0 = w0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            z = layer(x)
            x = torch.sin(self.w0 * (z.detach().abs() + 1.0) * z)
        return self.output(x)


class BareFinerLoop:
    """One bare full-batch training loop; starts from ``build_field``'s weights for the same config."""

    def __init__(self, signal: Signal, config: FieldConfig, lr: float, device: torch.device):
        self.model = BareFiner(signal.in_features, signal.channels, config.width, config.depth, config.w0).to(device)
        reference = build_field(config)
        with torch.no_grad():
            for mine, theirs in zip(self.model.parameters(), reference.parameters(), strict=True):
                mine.copy_(theirs)
        self.coords = signal.coords.to(device)
        self.targets = signal.values.to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)

    def step(self) -> None:
        loss = torch.mean((self.model(self.coords) - self.targets) ** 2)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def speed_steps(quick: bool) -> tuple[int, int, int]:
    """(image size, timed steps per member, repeats)."""
    return (64, 10, 3) if quick else (SIZE, 10, 3)


def measure_sweep_speed(quick: bool, progress: Progress, warmup_steps: int = 2) -> dict:
    size, steps, repeats = speed_steps(quick)
    signal = load_signal(SIGNAL, size)
    device = torch.device("cpu")
    members = [_field(bias_range=k, signal=signal) for k in SPEED_KS]
    train = TrainConfig(lr=LR, batch_size=0, device="cpu")
    trains = [train] * len(members)
    sequential = [Trainer(signal, config, train) for config in members]
    interleaved = build_sweep(signal, members, trains, "interleaved")
    batched = build_sweep(signal, members, trains, "batched")
    bare = [BareFinerLoop(signal, config, LR, device) for config in members]
    trainers = sequential + interleaved + batched

    def run_sequential(count: int) -> None:
        for trainer in sequential:
            for _ in range(count):
                trainer.step()

    def run_rounds(sweep: list[Trainer]) -> Callable[[int], None]:
        def run(count: int) -> None:
            for _ in range(count):
                for trainer in sweep:
                    trainer.step()
        return run

    def run_bare(count: int) -> None:
        for loop in bare:
            for _ in range(count):
                loop.step()

    runs = {"sequential": run_sequential, "interleaved": run_rounds(interleaved), "batched": run_rounds(batched),
            "bare": run_bare}
    progress(f"finer speed: {len(members)} FINER++ members {WIDTH}x{DEPTH} at {size} px, full batch, CPU: warm-up "
             f"({warmup_steps} steps a mode)")
    for run in runs.values():
        run(warmup_steps)
    for trainer in trainers:
        trainer.flush()
    # two steps of the same weights: the bare loop and Trainer should train the same thing
    bare_diff = max(max_weight_difference(loop.model, trainer.model) for loop, trainer in zip(bare, sequential))
    per_repeat: list[dict] = []
    for r in range(repeats):
        order = SPEED_MODES[r % len(SPEED_MODES):] + SPEED_MODES[:r % len(SPEED_MODES)]
        progress(f"finer speed: repeat {r + 1}/{repeats}, {steps} steps a member, order {', '.join(order)}")
        timed = {}
        for mode in order:
            synchronize(device)
            started = time.perf_counter()
            runs[mode](steps)
            synchronize(device)
            timed[mode] = time.perf_counter() - started
            for trainer in trainers:
                trainer.flush()  # outside the clock
        per_repeat.append(timed)
    # every trainer took the same steps from the same weights: the strategies should agree
    agree = {name: max(max_weight_difference(a.model, b.model) for a, b in zip(sequential, sweep))
             for name, sweep in (("interleaved", interleaved), ("batched", batched))}
    agree["bare"] = max(max_weight_difference(loop.model, trainer.model) for loop, trainer in zip(bare, sequential))

    def spread(values: list[float]) -> dict:
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    seconds = {mode: spread([t[mode] for t in per_repeat]) for mode in SPEED_MODES}
    ratios = {key: spread([t[a] / t[b] for t in per_repeat])
              for key, a, b in (("interleaved/sequential", "interleaved", "sequential"),
                                ("batched/sequential", "batched", "sequential"),
                                ("sequential/bare", "sequential", "bare"),
                                ("interleaved/bare", "interleaved", "bare"))}
    return {"signal": SIGNAL, "size": size, "width": WIDTH, "depth": DEPTH, "w0": W0, "lr": LR, "batch": "full",
            "device": str(device), "torch_threads": torch.get_num_threads(), "ks": list(SPEED_KS),
            "members": len(members), "params_per_member": sequential[0].params,
            "steps_per_member": steps, "warmup_steps": warmup_steps, "repeats": repeats,
            "labels": SPEED_LABELS, "seconds": seconds,
            "s_per_step_per_member": {mode: seconds[mode]["median"] / (steps * len(members)) for mode in SPEED_MODES},
            "ratio": ratios, "bare_matches_trainer_after_warmup_max_weight_diff": bare_diff,
            "max_weight_diff_vs_sequential_at_end": agree, "repeats_seconds": per_repeat}


# -- B. quality at the reference setting --------------------------------------------------------------------

def _train_sweep(signal: Signal, members: list[FieldConfig], train: TrainConfig, steps: int, progress: Progress,
                 what: str) -> tuple[list[Trainer], dict[int, str], float]:
    """Every member ``steps`` full-batch steps as one interleaved sweep; (trainers, warnings, seconds)."""
    trainers = build_sweep(signal, members, [train] * len(members), "interleaved")
    warnings: dict[int, str] = {}
    every = max(1, steps // 5)
    started = time.perf_counter()
    for step in range(steps):
        for trainer in trainers:
            trainer.step()
        if (step + 1) % every == 0 or step + 1 == steps:
            for i, trainer in enumerate(trainers):
                try:
                    trainer.flush()
                except TrainingDiverged as exc:  # restored to its last good weights; report, go on
                    warnings[i] = str(exc)
            progress(f"finer quality ({what}): step {step + 1}/{steps}, {time.perf_counter() - started:.0f} s")
    return trainers, warnings, time.perf_counter() - started


def _score(signal: Signal, trainer: Trainer, config: FieldConfig, target: np.ndarray, schedule: str,
           warning: str | None) -> dict:
    _, prediction, value = trainer.evaluate(current=True)
    display = signal.as_display(prediction)
    entry = {"label": member_label(config), "kind": config.kind, "k": config.bias_range, "schedule": schedule,
             "psnr": value, "ssim": ssim(display, target), "hf_energy": high_frequency_energy(display),
             "params": trainer.params, "steps": trainer.step_count, "train_seconds": trainer.seconds}
    if warning:
        entry["warning"] = warning
    return entry


def quality_setup(quick: bool) -> tuple[int, int]:
    """(image size, steps)."""
    return (64, 60) if quick else (SIZE, 300)


def measure_sweep_quality(quick: bool, progress: Progress) -> dict:
    size, steps = quality_setup(quick)
    signal = load_signal(SIGNAL, size)
    target = signal.target_display()
    decay = TrainConfig(lr=LR, batch_size=0, lr_decay_steps=steps)
    members = SweepSettings(activations=("finer",), ks=QUALITY_KS, reference=True).members(_field(signal=signal))
    progress(f"finer quality: SIREN + FINER++ k = {', '.join(_k_text(k) for k in QUALITY_KS)} ({len(members)} members), "
             f"{WIDTH}x{DEPTH}, {steps} full-batch steps at {size} px, lr {LR:g} decaying to {LR / 10:g}")
    trainers, warnings, seconds = _train_sweep(signal, members, decay, steps, progress, "lr decay")
    runs = [_score(signal, t, c, target, "decay", warnings.get(i)) for i, (t, c) in enumerate(zip(trainers, members))]
    del trainers
    siren = next(run for run in runs if run["kind"] == "siren")
    finer = [run for run in runs if run["kind"] == "finer"]
    best = max(finer, key=lambda run: run["psnr"] if math.isfinite(run["psnr"]) else -math.inf)
    for run in runs:
        run["minus_siren_db"] = run["psnr"] - siren["psnr"]

    constant = TrainConfig(lr=LR, batch_size=0)
    pair = [_field("siren", signal=signal), _field(bias_range=best["k"], signal=signal)]
    progress(f"finer quality: SIREN and FINER++ k={_k_text(best['k'])} with a constant lr {LR:g}, {steps} steps")
    trainers, warnings, constant_seconds = _train_sweep(signal, pair, constant, steps, progress, "constant lr")
    constant_runs = [_score(signal, t, c, target, "constant", warnings.get(i))
                     for i, (t, c) in enumerate(zip(trainers, pair))]
    for run in constant_runs:
        run["minus_siren_db"] = run["psnr"] - constant_runs[0]["psnr"]
    return {"signal": SIGNAL, "size": size, "steps": steps, "width": WIDTH, "depth": DEPTH, "w0": W0, "lr": LR,
            "batch": "full", "lr_decay_steps": steps, "strategy": "interleaved", "ks": list(QUALITY_KS),
            "torch_threads": torch.get_num_threads(), "device": str(trainers[0].device),
            "target_hf_energy": high_frequency_energy(target), "hf_cutoff": HF_CUTOFF, "runs": runs,
            "best_k": best["k"], "best_psnr": best["psnr"], "siren_psnr": siren["psnr"],
            "best_minus_siren_db": best["psnr"] - siren["psnr"], "train_seconds": seconds,
            "constant_lr": {"runs": constant_runs, "best_minus_siren_db": constant_runs[1]["psnr"] - constant_runs[0]["psnr"],
                            "train_seconds": constant_seconds},
            "reference": REFERENCE, "matches_issue_setup": size == SIZE and steps == 300}


# -- C. live update rate of the FINER++ lab -----------------------------------------------------------------

def _stats(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    array = np.asarray(values, dtype=np.float64)
    return {"count": int(array.size), "median": float(np.median(array)), "p05": float(np.percentile(array, 5)),
            "p95": float(np.percentile(array, 95)), "min": float(array.min()), "max": float(array.max()),
            "mean": float(array.mean())}


def measure_live_rate(quick: bool, progress: Progress, timeout: float = 120.0) -> dict:
    """Poll a headless worker's ``latest`` slot every 30 ms (as LiveSession does) while it trains the lab's
    default sweep; every snapshot taken is one the GUI would draw."""
    seconds, warmup = (8.0, 2.0) if quick else (15.0, 3.0)
    scene, size = DEFAULT_SWEEP_SCENE, DEFAULT_SWEEP_SIZE
    signal = load_signal(SIGNAL, size)
    members = scene.sweep_members()
    progress(f"finer live rate: TrainingWorker on the default sweep scene ({len(members)} cells, "
             f"{scene.field.width}x{scene.field.depth}, {size} px, full batch), polled every {POLL_S * 1e3:.0f} ms "
             f"for {seconds:g} s after {warmup:g} s")
    worker = TrainingWorker(signal, lambda: scene.build(signal), start_running=True).start()
    taken: list[tuple[float, object]] = []
    """(time taken, snapshot) of every snapshot in the window, led by the last one before it (the baseline)."""
    error = ""
    window = (math.inf, math.inf)
    try:
        deadline = time.perf_counter() + timeout
        while True:
            now = time.perf_counter()
            if now >= window[1]:
                break
            if now > deadline:
                error = f"no running snapshot within {timeout:.0f} s"
                break
            snapshot = worker.latest.take()
            if snapshot is not None:
                if snapshot.error:
                    error = snapshot.error
                    break
                if window[0] == math.inf and snapshot.running and snapshot.step > 0:
                    window = (now + warmup, now + warmup + seconds)
                if window[0] != math.inf:
                    if now < window[0]:
                        taken[:] = [(now, snapshot)]  # the latest before the window
                    else:
                        taken.append((now, snapshot))
            time.sleep(max(0.0, POLL_S - (time.perf_counter() - now)))
    finally:
        stopped = worker.stop(timeout=60.0)
    result = {"scene": "DEFAULT_SWEEP_SCENE", "signal": SIGNAL, "size": size, "cells": len(members),
              "labels": [member_label(f) for f, _ in members], "width": scene.field.width, "depth": scene.field.depth,
              "batch": "full" if scene.train.batch_size == 0 else scene.train.batch_size,
              "strategy": scene.sweep.strategy, "poll_ms": POLL_S * 1e3, "warmup_s": warmup, "seconds": seconds,
              "torch_threads": torch.get_num_threads(), "worker_stopped": stopped}
    inside = [(t, s) for t, s in taken if window[0] <= t < window[1]]
    if error or not taken:
        result["error"] = error or "no snapshot"
        return result
    cells = len(members)
    steps = np.array([[run.step for run in s.runs] if len(s.runs) == cells else [np.nan] * cells for _, s in taken],
                     dtype=np.float64)
    advanced = np.diff(steps, axis=0)  # per snapshot in the window (from the one before), per cell
    times = [t for t, _ in taken]
    result.update({
        "device": taken[-1][1].device,
        "snapshots": len(inside),
        "snapshots_per_s": len(inside) / seconds,
        "all_cells_every_snapshot": bool(all(len(s.runs) == cells for _, s in inside)),
        "cells_in_lockstep": bool(np.all(steps == steps[:, :1])),
        "snapshot_interval_ms": _stats([1e3 * (b - a) for a, b in pairwise(times)]),
        "steps_per_snapshot_per_cell": _stats(advanced[:, 0].tolist()),
        "steps_per_snapshot_all_cells": _stats(advanced[np.isfinite(advanced)].ravel().tolist()),
        "steps_per_s_per_cell": float((steps[-1, 0] - steps[0, 0]) / (times[-1] - times[0])) if inside else math.nan,
        "worker_reported_steps_per_s": _stats([s.steps_per_second for _, s in inside]),
        "snapshots_not_running": sum(not s.running for _, s in inside),
    })
    return result


def measure_finer(quick: bool, skip_quality: bool, progress: Progress, gui_problem: str = "") -> dict:
    result = {"speed": measure_sweep_speed(quick, progress)}
    result["quality"] = {"skipped": "--skip-quality"} if skip_quality else measure_sweep_quality(quick, progress)
    result["live"] = measure_live_rate(quick, progress)
    if gui_problem:
        result["gui"] = {"skipped": gui_problem}
    else:
        from .gui_latency import measure_gui_latency

        progress(f"finer gui: the app's window on the default sweep ({DEFAULT_SWEEP_SIZE} px), event-loop probes")
        result["gui"] = measure_gui_latency(2.0 if quick else 5.0, 8.0 if quick else 15.0, DEFAULT_SWEEP_SCENE,
                                            DEFAULT_SWEEP_SIZE)
    return result


# -- targets and the printed tables (called from report.py) -------------------------------------------------

def check_finer_targets(finer: dict) -> dict:
    """The issue's criteria: interleaved sweep <= 1.1x sequential runs (CPU); best k >= 1 dB over SIREN at the
    reference setting; >= 2 snapshots/s in the lab (every snapshot carries every cell)."""
    checks = {}
    speed = finer["speed"]
    limit = FINER_TARGETS["interleaved_over_sequential_max"]
    checks[f"FINER++ interleaved sweep <= {limit:g}x six sequential runs ({speed['size']} px, CPU)"] = (
        speed["ratio"]["interleaved/sequential"]["median"] <= limit)
    quality = finer.get("quality", {})
    if "runs" in quality:
        minimum = FINER_TARGETS["best_k_minus_siren_min_db"]
        checks[f"FINER++ best k >= SIREN + {minimum:g} dB (256 px, 300 steps, lr decay)"] = (
            quality["best_minus_siren_db"] >= minimum if quality["matches_issue_setup"] else None)
    live = finer.get("live", {})
    minimum = FINER_TARGETS["live_snapshot_min_hz"]
    name = f"FINER++ lab snapshots >= {minimum:g} Hz (every cell, {live.get('size', '?')} px)"
    checks[name] = live["snapshots_per_s"] >= minimum and live["all_cells_every_snapshot"] if "snapshots_per_s" in live else False
    gui = finer.get("gui", {})
    if "timer_lateness" in gui:
        limit = FINER_TARGETS["gui_p95_max_ms"]
        checks[f"FINER++ lab in the window: redrawn >= {minimum:g} Hz, event-loop lateness p95 <= {limit:g} ms"] = (
            gui["snapshots_rendered_per_s"] >= minimum and gui["timer_lateness"].get("p95_ms", math.inf) <= limit)
    return checks


def render_finer(finer: dict) -> list[str]:
    """Section 8: FINER++ bias-range sweeps."""
    from .report import _table

    speed = finer["speed"]
    lines = [(f"8. FINER++ bias-range sweeps: {speed['signal']}, FINER++ sine {speed['width']}x{speed['depth']} "
              f"(w0 {speed['w0']:g}), full batch")]
    lines.append(f"8a. Sweep speed on the {speed['device'].upper()} ({speed['torch_threads']} torch thread(s)): "
                 f"{speed['members']} members (k = {', '.join(_k_text(k) for k in speed['ks'])}, "
                 f"{speed['params_per_member']:,} params each) at {speed['size']} px, {speed['steps_per_member']} steps "
                 f"a member after {speed['warmup_steps']} warm-up; {speed['repeats']} repeats (order rotated); "
                 "median (min-max); ratios = median of per-repeat ratios.")
    rows = []
    for mode in SPEED_MODES:
        s = speed["seconds"][mode]
        ratio = speed["ratio"].get(f"{mode}/sequential")
        rows.append([mode, speed["labels"][mode], f"{s['median']:.2f}", f"{s['min']:.2f}-{s['max']:.2f}",
                     f"{speed['s_per_step_per_member'][mode]:.4f}",
                     f"{ratio['median']:.3f} ({ratio['min']:.2f}-{ratio['max']:.2f})" if ratio else
                     ("1" if mode == "sequential" else "")])
    lines += _table(["mode", "what", "seconds", "range", "s/step/member", "x sequential"], rows)
    r = speed["ratio"]
    agree = speed["max_weight_diff_vs_sequential_at_end"]
    lines.append(f"   interleaved/sequential {r['interleaved/sequential']['median']:.3f} (target <= "
                 f"{FINER_TARGETS['interleaved_over_sequential_max']:g}); batched/sequential "
                 f"{r['batched/sequential']['median']:.3f}; sequential/bare {r['sequential/bare']['median']:.3f} "
                 f"({r['sequential/bare']['min']:.2f}-{r['sequential/bare']['max']:.2f}); max |weight diff| vs the "
                 f"sequential Trainers at the end: interleaved {agree['interleaved']:.1e}, batched {agree['batched']:.1e}, "
                 f"bare {agree['bare']:.1e}")

    quality = finer.get("quality", {})
    lines.append("")
    if "runs" in quality:
        ref = quality["reference"]
        lines.append(f"8b. Quality: {quality['size']} px, {quality['steps']} full-batch steps, lr {quality['lr']:g} "
                     f"decaying as 0.1^(step/{quality['lr_decay_steps']}) (the reference schedule), one interleaved "
                     f"sweep ({quality['train_seconds']:.0f} s); HF = share of spectral energy above {quality['hf_cutoff']:g} "
                     f"cycles/px; target's HF {quality['target_hf_energy']:.4f}. Reference (public FINER code, 256 px / "
                     f"300 steps): FINER {ref['finer_psnr_db']} dB vs SIREN {ref['siren_psnr_db']} dB.")
        rows = []
        for run in quality["runs"] + quality["constant_lr"]["runs"]:
            rows.append([run["label"], "decay" if run["schedule"] == "decay" else "constant", f"{run['psnr']:.2f}",
                         f"{run['ssim']:.4f}", f"{run['hf_energy']:.4f}", f"{run['minus_siren_db']:+.2f}",
                         f"{run['train_seconds']:.1f}" + (" (diverged once)" if "warning" in run else "")])
        lines += _table(["member", "lr", "PSNR dB", "SSIM", "HF energy", "- SIREN", "train s"], rows)
        lines.append(f"   best k = {_k_text(quality['best_k'])}: {quality['best_psnr']:.2f} dB, SIREN "
                     f"{quality['siren_psnr']:.2f} dB, best - SIREN {quality['best_minus_siren_db']:+.2f} dB (target >= "
                     f"{FINER_TARGETS['best_k_minus_siren_min_db']:g} dB at 256 px / 300 steps); with a constant lr: "
                     f"{quality['constant_lr']['best_minus_siren_db']:+.2f} dB ('- SIREN' of the constant rows is "
                     "against the constant-lr SIREN)")
    else:
        lines.append(f"8b. Quality: skipped ({quality.get('skipped', 'not run')})")

    live = finer.get("live", {})
    lines.append("")
    head = (f"8c. Live update rate: headless TrainingWorker on the default sweep scene ({live.get('cells', '?')} cells, "
            f"{live.get('width', '?')}x{live.get('depth', '?')}, {live.get('size', '?')} px, "
            f"{live.get('torch_threads', '?')} torch thread(s)), latest slot polled every {live.get('poll_ms', 30):.0f} ms "
            f"for {live.get('seconds', 0):g} s")
    if "snapshots_per_s" not in live:
        lines.append(f"{head}: error: {live.get('error', '?')}")
        return lines
    interval, per_snap = live["snapshot_interval_ms"], live["steps_per_snapshot_per_cell"]

    def num(stats: dict, key: str, digits: int) -> str:
        return f"{stats.get(key, math.nan):.{digits}f}"

    lines.append(head)
    lines += _table(["snapshots", "per s", "interval p50 ms", "p95 ms", "max ms", "steps/snapshot p50", "min-max",
                     "steps/s a cell", "worker's rate", "all cells", "lockstep"],
                    [[str(live["snapshots"]), f"{live['snapshots_per_s']:.2f}", num(interval, "median", 0),
                      num(interval, "p95", 0), num(interval, "max", 0), num(per_snap, "median", 1),
                      f"{num(per_snap, 'min', 0)}-{num(per_snap, 'max', 0)}", f"{live['steps_per_s_per_cell']:.2f}",
                      num(live["worker_reported_steps_per_s"], "median", 2), str(live["all_cells_every_snapshot"]),
                      str(live["cells_in_lockstep"])]])
    lines.append("   snapshot intervals and steps per snapshot count from the last snapshot before the window")
    lines.append(f"   target: >= {FINER_TARGETS['live_snapshot_min_hz']:g} snapshots/s, each with every cell")
    gui = finer.get("gui", {})
    if "skipped" in gui:
        lines.append(f"8d. The lab in the app's window: skipped ({gui['skipped']})")
    elif gui:
        lines.append(f"8d. The lab in the app's window (Qt {gui['qt_platform']}, {gui['seconds']:.0f} s, default sweep "
                     f"at {DEFAULT_SWEEP_SIZE} px): every snapshot drawn by the real SweepLabView")
        rows = [[name, str(stats.get("count", 0)), *(f"{stats.get(key, math.nan):.1f}" for key in ("p50_ms", "p95_ms", "max_ms"))]
                for name, stats in (("10 ms timer lateness", gui["timer_lateness"]),
                                    ("posted event delay", gui["posted_event_delay"]))]
        lines += _table(["probe", "samples", "p50 ms", "p95 ms", "max ms"], rows)
        lines.append(f"   snapshots drawn {gui['snapshots_rendered_per_s']:.2f}/s, training {gui['training_steps_per_s']:.2f} "
                     f"steps/s a cell, GUI thread busy {100 * gui['gui_thread_cpu_fraction']:.0f}% "
                     f"(target: >= {FINER_TARGETS['live_snapshot_min_hz']:g} Hz and p95 <= {FINER_TARGETS['gui_p95_max_ms']:g} ms)")
    return lines

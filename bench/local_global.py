"""Local-Global croppable fields (models/local_global.py, models/croppable.py): the issue's requirements.

A. ``measure_speed``: s/step on the 256-px cameraman, depth 4, lr 1e-3, full batch and minibatch 16384
   (Local-Global: 256 samples per partition), of five loops taking turns in short blocks
   (``run_alternating``): ``LocalGlobalTrainer`` with the paper's widths 14/84, with our automatic widths
   (``auto_partition``, 67k parameters, 10% global), SIREN-per-partition at the same budget, a plain SIREN
   ``Trainer`` of width 148 (~67k parameters) and a bare PyTorch loop of width 148. Ratios (plain/LG,
   bare/LG: how many times faster the partitioned step is) are medians of per-round ratios.
B. ``measure_quality``: PSNR after 300 full-batch steps of the four trained models (not the bare loop).
C. ``measure_crop_clicks``: the real MainWindow on the default crop scene at 256 px; a partition is
   clicked (crop), clicked again (restore), and so on. Per click: the time until the reconstruction panel
   shows the edit, and until a worker snapshot confirms it. Paused and while training.
D. ``measure_extension``: the paper's Fig. 7 (``DEFAULT_EXTEND_SCENE``): top half pre-trained, then the
   missing partitions added; training MSE ([0, 1] values) after K fine-tuning steps of the extended
   Local-Global field, a smaller SIREN fine-tuned on the whole image and a full-size SIREN from scratch,
   and of the extended field with each extension init (copy, reflect, fresh).
E. ``measure_bookkeeping``: parameter count and safetensors bytes before and after cropping half the
   partitions (``LocalGlobalField.cropped``), and whether the kept partitions' outputs stay bit-identical.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from models.checkpoint import WEIGHTS_FILE, save_field
from models.croppable import LocalGlobalTrainer
from models.fields import FieldConfig, count_parameters
from models.local_global import LocalGlobalConfig, LocalGlobalField, total_parameters
from models.partitions import EXTENSION_INITS, auto_partition
from models.scenes import DEFAULT_CROP_SCENE, DEFAULT_EXTEND_SCENE, Scene
from models.signals import Signal, load_signal
from models.training import TrainConfig, Trainer

from .growth import SpeedSettings
from .loops import BareLoop, run_alternating, run_for, synchronize

SIGNAL = "camera"
SIZE = 256
DEPTH = 4
LR = 1e-3
PARTITIONS = (8, 8)
BUDGET = 67_000
GLOBAL_RATIO = 0.1
PAPER_WIDTHS = (14, 84)
PLAIN_WIDTH = 148
MINIBATCH = 16384
PARTITIONED = ("lg_paper", "lg_auto", "spp")
LOOPS = (*PARTITIONED, "plain", "bare")
LABELS = {"lg_paper": "Local-Global (paper widths)", "lg_auto": "Local-Global (auto widths)",
          "spp": "SIREN per partition", "plain": f"plain SIREN w={PLAIN_WIDTH}", "bare": f"bare PyTorch w={PLAIN_WIDTH}"}
PAPER_REFERENCE = {"lg_s_per_step": 0.20, "plain_s_per_step": 0.61, "lg_psnr_db": 36.1, "plain_psnr_db": 35.7,
                   "note": "paper's public code on this machine: 256 px, 8x8, 14/84 vs SIREN 148, full batch, 300 steps"}

Progress = Callable[[str], None]


def speed_settings(quick: bool) -> SpeedSettings:
    return SpeedSettings(0.3, 2, 0.25) if quick else SpeedSettings(2.0, 5, 1.0)


def partitioned_configs(signal: Signal) -> dict[str, LocalGlobalConfig]:
    base = LocalGlobalConfig(in_features=signal.in_features, out_features=signal.channels, partitions=PARTITIONS,
                             extent=signal.extent, depth=DEPTH)
    return {"lg_paper": replace(base, local_width=PAPER_WIDTHS[0], global_width=PAPER_WIDTHS[1]),
            "lg_auto": auto_partition(base, BUDGET, GLOBAL_RATIO),
            "spp": auto_partition(base, BUDGET, 0.0)}


def plain_field() -> FieldConfig:
    return FieldConfig(kind="siren", width=PLAIN_WIDTH, depth=DEPTH)


def _trainers(signal: Signal, train: TrainConfig) -> dict[str, Trainer]:
    trainers: dict[str, Trainer] = {name: LocalGlobalTrainer(signal, config, train)
                                    for name, config in partitioned_configs(signal).items()}
    trainers["plain"] = Trainer(signal, plain_field(), train)
    return trainers


def _widths(trainer: Trainer) -> str:
    c = trainer.field_config
    return f"{c.local_width}/{c.global_width}" if isinstance(c, LocalGlobalConfig) else str(c.width)


def macs_per_sample(config: LocalGlobalConfig | FieldConfig, in_features: int = 2, out_features: int = 1) -> int:
    """Multiply-adds per sample of one forward pass (a step's matmul FLOPs are about 3 x 2 x batch x this)."""
    if isinstance(config, FieldConfig):
        w = config.width
        return in_features * w + (config.depth - 1) * w * w + w * out_features
    h, g, d = config.local_width, config.global_width, config.depth
    local = in_features * h + (d - 1) * h * h + h * out_features
    return local + (in_features * g + (d - 1) * g * g + d * (g + h) * h if g else 0)


# -- A. training step speed ---------------------------------------------------------------------------------

def _speed_case(signal: Signal, batch_size: int, settings: SpeedSettings) -> dict:
    train = TrainConfig(lr=LR, batch_size=batch_size)
    trainers = _trainers(signal, train)
    bare = BareLoop(signal, Scene(field=plain_field(), train=train))
    loops = {name: trainer.step for name, trainer in trainers.items()} | {"bare": bare.step}
    device = trainers["plain"].device
    for step in loops.values():
        run_for(step, settings.warmup_seconds, device)
    per_round = []
    for _ in range(settings.rounds):
        for trainer in trainers.values():
            trainer.flush()  # outside the clock
        timed = run_alternating(loops, settings.seconds, device)
        per_round.append({name: elapsed / steps for name, (steps, elapsed) in timed.items()})
    for trainer in trainers.values():
        trainer.flush()
    ratios, ranges = {}, {}
    for name in PARTITIONED:
        for reference in ("plain", "bare"):
            values = [r[reference] / r[name] for r in per_round]
            ratios[f"{reference}/{name}"] = statistics.median(values)
            ranges[f"{reference}/{name}"] = (min(values), max(values))
    plain_bare = [r["plain"] / r["bare"] for r in per_round]
    ratios["plain/bare"], ranges["plain/bare"] = statistics.median(plain_bare), (min(plain_bare), max(plain_bare))
    macs = {name: macs_per_sample(t.field_config, signal.in_features, signal.channels) for name, t in trainers.items()}
    macs["bare"] = macs["plain"]
    rows = {name: (t.rows.counts.numel() * max(1, t.batch_size // t.rows.counts.numel())
                   if isinstance(t, LocalGlobalTrainer) and not t.full_batch else t.batch_size)
            for name, t in trainers.items()}
    rows["bare"] = bare.batch_size
    return {
        "batch_size": batch_size or signal.coords.shape[0], "full_batch": batch_size == 0,
        "samples_per_step": rows,
        "widths": {name: _widths(t) for name, t in trainers.items()} | {"bare": str(PLAIN_WIDTH)},
        "params": {name: t.params for name, t in trainers.items()} | {"bare": count_parameters(bare.model)},
        "s_per_step": {name: statistics.median(r[name] for r in per_round) for name in loops},
        "ratio": ratios, "ratio_range": ranges,
        "flop_ratio_plain_over": {name: macs["plain"] * rows["plain"] / (macs[name] * rows[name]) for name in loops},
        "rounds": per_round,
    }


def measure_speed(quick: bool, progress: Progress) -> dict:
    settings = speed_settings(quick)
    signal = load_signal(SIGNAL, SIZE)
    cases = []
    for batch_size in (0, MINIBATCH):
        progress(f"crop speed: 5 loops at {SIZE} px, {'full batch' if batch_size == 0 else f'batch {batch_size}'}, "
                 f"{settings.rounds} rounds of {settings.seconds:g} s a loop")
        cases.append(_speed_case(signal, batch_size, settings))
    return {"signal": SIGNAL, "size": SIZE, "depth": DEPTH, "lr": LR, "partitions": list(PARTITIONS),
            "seconds_per_round": settings.seconds, "rounds": settings.rounds, "labels": LABELS,
            "reference": PAPER_REFERENCE, "cases": cases}


# -- B. quality after N full-batch steps --------------------------------------------------------------------

def measure_quality(quick: bool, progress: Progress) -> dict:
    size, steps = (64, 30) if quick else (SIZE, 300)
    signal = load_signal(SIGNAL, size)
    runs = {}
    for name, trainer in _trainers(signal, TrainConfig(lr=LR, batch_size=0)).items():
        progress(f"crop quality: {LABELS[name]} ({_widths(trainer)}, {trainer.params:,} params), {steps} steps at {size} px")
        while trainer.step_count < steps:
            trainer.step()
            if trainer.step_count % 100 == 0:
                trainer.flush()
        trainer.flush()
        synchronize(trainer.device)
        runs[name] = {"widths": _widths(trainer), "params": trainer.params, "psnr": trainer.evaluate(current=True)[2],
                      "train_seconds": trainer.seconds, "s_per_step": trainer.seconds / steps}
        del trainer
    for run in runs.values():
        run["minus_plain_db"] = run["psnr"] - runs["plain"]["psnr"]
    return {"signal": SIGNAL, "size": size, "steps": steps, "lr": LR, "batch": "full", "runs": runs,
            "matches_issue_setup": size == SIZE and steps == 300}


# -- C. crop latency in the window --------------------------------------------------------------------------

def measure_crop_clicks(clicks: int, size: int = SIZE, warm_steps: int = 10, partition: int = 27,
                        timeout: float = 60.0) -> dict:
    """Clicks alternate crop / restore on ``partition``, first paused, then while the worker trains."""
    from PySide6 import QtCore, QtWidgets

    from app.main_window import MainWindow

    from .gui_latency import percentiles_ms

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    window = MainWindow(load_signal(SIGNAL, size), DEFAULT_CROP_SCENE, size, running=False)
    window.show()
    view = window.crop_view

    def snapshot():
        return window.session.last_snapshot

    def pump_until(condition: Callable[[], bool], what: str) -> None:
        deadline = time.perf_counter() + timeout
        while not condition():
            if time.perf_counter() > deadline:
                raise TimeoutError(f"crop clicks: no {what} within {timeout:.0f} s")
            app.processEvents(QtCore.QEventLoop.AllEvents, 5)
            time.sleep(0.001)

    results = {"size_px": size, "partition": partition, "clicks_per_state": clicks, "qt_platform": app.platformName()}
    try:
        pump_until(lambda: snapshot() is not None and snapshot().runs and snapshot().runs[0].partitions is not None,
                   "first snapshot")
        window.session.worker.step(warm_steps)
        pump_until(lambda: snapshot().runs[0].step >= warm_steps and not snapshot().running, "warm-up steps")
        info = snapshot().runs[0].partitions
        results["model"] = f"{info.model} {'x'.join(map(str, info.partitions))}, {info.params:,} params"
        rows, cols = np.nonzero(info.pixel_partition == partition)
        x, y = float(cols.mean()) + 0.5, float(rows.mean()) + 0.5
        blank = info.pixel_partition == partition
        def shown(crop: bool) -> bool:  # the reconstruction panel shows the edit
            image = view.reconstruction.image.image[blank]
            return bool(np.isnan(image).all()) if crop else bool(np.isfinite(image).all())

        def confirmed(crop: bool) -> bool:  # the latest snapshot has it
            return (partition in snapshot().runs[0].partitions.present) != crop

        for state in ("paused", "running"):
            if state == "running":
                window.session.worker.play()
                pump_until(lambda: snapshot().running, "running snapshot")
            times = {"crop": ([], [], []), "restore": ([], [], [])}
            synchronous = True
            for i in range(clicks):
                crop = i % 2 == 0
                started = time.perf_counter()
                # the view paints the edited panels before the click handler returns (CropLabView._show_edit_now)
                view.reconstruction.view.clicked.emit(x, y, QtCore.Qt.NoModifier)
                now = time.perf_counter()
                seen = now if shown(crop) else None
                app.processEvents()
                settled = time.perf_counter() - started
                done = time.perf_counter() if confirmed(crop) else None
                synchronous &= seen is not None or not crop
                while seen is None or done is None:
                    if time.perf_counter() - started > timeout:
                        raise TimeoutError(f"crop clicks: the {'crop' if crop else 'restore'} did not show within "
                                           f"{timeout:.0f} s ({state})")
                    app.processEvents(QtCore.QEventLoop.AllEvents, 5)
                    time.sleep(0.001)
                    now = time.perf_counter()
                    seen = seen or (now if shown(crop) else None)
                    done = done or (now if confirmed(crop) else None)
                view_times, snapshot_times, settled_times = times["crop" if crop else "restore"]
                view_times.append(seen - started)
                snapshot_times.append(done - started)
                settled_times.append(settled)
            results[state] = {action: {"view": percentiles_ms(v), "snapshot": percentiles_ms(s),
                                       "events_settled": percentiles_ms(e)}
                              for action, (v, s, e) in times.items()}
            results[state]["crop_shown_synchronously"] = bool(synchronous)
        window.session.worker.pause()
    finally:
        window.close()
        app.processEvents()
    results["worker_stopped_on_close"] = window.session.worker is None
    results["last_error"] = window.last_error
    window.deleteLater()
    app.processEvents()
    return results


# -- D. extension (paper Fig. 7) ----------------------------------------------------------------------------

def _extend_run(label: str, trainer: Trainer, fine_steps: int, limit: int) -> dict:
    calls = 0
    while (trainer.extension_step is None or trainer.step_count - trainer.extension_step < fine_steps) and calls < limit:
        trainer.step()
        calls += 1
    trainer.flush()
    start = trainer.extension_step or 0
    losses = dict(zip(trainer.loss_steps, trainer.loss_values))
    return {"label": label, "params": trainer.params, "pre_steps": start,
            "fine_steps": trainer.step_count - start if trainer.extension_step is not None else 0,
            "mse_before_extension": losses[start - 1] / 4 if start - 1 in losses else None,
            "mse_first_fine_step": losses[start] / 4 if start in losses else None,
            "mse_after": trainer.loss_values[-1] / 4 if trainer.loss_values else None,
            "psnr_after": trainer.evaluate(current=True)[2], "train_seconds": trainer.seconds}


def measure_extension(quick: bool, progress: Progress) -> dict:
    # 256 px: at 128 px every model here has more parameters than pixels and the plain SIRENs memorise
    size, pre, fine = (64, 50, 50) if quick else (256, 300, 300)
    signal = load_signal(SIGNAL, size)
    scene = replace(DEFAULT_EXTEND_SCENE, crop=replace(DEFAULT_EXTEND_SCENE.crop, extend_at=pre))
    limit = 2 * (pre + fine) + 10
    runs = []
    for label, trainer in scene.build(signal):
        progress(f"crop extension: {label}, {pre} + {fine} steps at {size} px")
        runs.append(_extend_run(label, trainer, fine, limit))
    inits = {scene.crop.extension_init: runs[0]}
    for init in EXTENSION_INITS:
        if init not in inits:
            label, trainer = replace(scene, crop=replace(scene.crop, extension_init=init)).build(signal)[0]
            progress(f"crop extension: {label}")
            inits[init] = _extend_run(label, trainer, fine, limit)
    return {"signal": SIGNAL, "size": size, "region": scene.crop.region, "pre_steps": pre, "fine_steps": fine,
            "lr": scene.train.lr, "runs": runs, "inits": inits}


# -- E. crop bookkeeping ------------------------------------------------------------------------------------

def _saved_bytes(model: LocalGlobalField, folder: str) -> int:
    save_field(folder, model, model.config, {})
    return os.path.getsize(os.path.join(folder, WEIGHTS_FILE))


def measure_bookkeeping() -> dict:
    signal = load_signal(SIGNAL, SIZE)
    coords = signal.coords
    rows = []
    for name, config in partitioned_configs(signal).items():
        field = LocalGlobalField(config)
        gone = [p for p in field.present_list if p >= config.num_partitions // 2]  # the bottom half
        started = time.perf_counter()
        cropped = field.cropped(gone)
        crop_ms = 1e3 * (time.perf_counter() - started)
        with tempfile.TemporaryDirectory() as tmp:
            before = _saved_bytes(field, os.path.join(tmp, "before"))
            after = _saved_bytes(cropped, os.path.join(tmp, "after"))
        full, part = field.evaluate_chunked(coords), cropped.evaluate_chunked(coords)
        kept = torch.isfinite(part).all(dim=1)
        rows.append({"model": name, "widths": f"{config.local_width}/{config.global_width}",
                     "partitions_before": len(field.present_list), "partitions_after": len(cropped.present_list),
                     "params_before": count_parameters(field), "params_after": count_parameters(cropped),
                     "params_expected_after": total_parameters(config, config.num_partitions - len(gone)),
                     "bytes_before": before, "bytes_after": after, "cropped_ms": crop_ms,
                     "kept_outputs_identical": bool(torch.equal(full[kept], part[kept])),
                     "cropped_area_nan": bool(torch.isnan(part[~kept]).all()) and int((~kept).sum()) > 0})
    return {"size": SIZE, "cropped": "bottom half of the partitions", "runs": rows}


def measure_crop(quick: bool, skip_quality: bool, gui_problem: str, progress: Progress) -> dict:
    result = {"speed": measure_speed(quick, progress)}
    result["quality"] = {"skipped": "--skip-quality"} if skip_quality else measure_quality(quick, progress)
    result["extension"] = {"skipped": "--skip-quality"} if skip_quality else measure_extension(quick, progress)
    progress("crop bookkeeping: parameters and safetensors bytes before/after cropping half the partitions")
    result["bookkeeping"] = measure_bookkeeping()
    if gui_problem:
        result["clicks"] = {"skipped": gui_problem}
    else:
        progress(f"crop clicks: the real window, default crop scene at {SIZE} px, paused then training")
        try:
            result["clicks"] = measure_crop_clicks(clicks=10 if quick else 20)
        except (TimeoutError, RuntimeError) as exc:
            result["clicks"] = {"error": str(exc)}
    return result

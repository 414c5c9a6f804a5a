"""Temporal fields (ResFields): what a time-dependent low-rank layer costs to train and to scrub through.

A. ``measure_step_cost``: the synthesized ``tour`` video (64 px, 24 frames; without ``--quick`` also 128 px, 48
   frames), SIREN depth 3 of width 128 and 256, ResField layers 1 and 2 of rank 10 with one coefficient row per
   frame. Every step draws 8 frames x 1024 pixels (batch 8192, grouped by frame). Five loops take turns (each a
   block of a few steps, the order rotated every round, so that they share whatever load the machine has):
   ``TimeTrainer.step()`` with the ResField config and with a plain SIREN of the same width, a bare ResField loop
   (hand-written forward over the trainer model's weights: ``W + v[frame] @ M`` per frame and ``torch.baddbmm``
   for the ResField layers, ``torch.addmm`` on the flattened batch for the others, MSE, Adam), a bare plain-SIREN
   loop (the same, no residual) and the ablation: the bare ResField loop without grouping, every sample with its
   own weights through the low-rank trick ``W x + sum_r v_r(t) (M_r x)`` (one matmul against all of M, then an
   einsum over every sample). Cost ratios are medians of per-round ms/step ratios. The trainers' pending losses
   are flushed after each block, outside the clock (a flush also copies the weights, which the worker does per
   snapshot, not per step).
B. ``measure_scrub``: a new frame at 256 px: ``evaluate_at_time`` at distinct times (nothing cached) for an
   untrained ResField model (width 128, rank 10, 24 rows) and a plain SIREN of the same width, with 1 and 2 torch
   threads (the weights do not matter for the time).
C. ``measure_worker_scrub``: the real ``TrainingWorker`` on the 256-px video (the time preset with its default
   settings: the ResField model and a same-width SIREN, batch 8192): ``set_time`` until the first snapshot whose
   first run is drawn at the new t, paused first, then training. The frames the renderer evaluates meanwhile are
   counted (``time_render.evaluate_at_time`` is wrapped for the purpose, and restored): a snapshot draws every run.
"""
from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from models.fields import FieldConfig, build_field
from models.resfields import ResFieldConfig, ResFieldMLP
from models.scenes import Scene
from models.signals import Signal, load_signal
import models.time_render as time_render
from models.time_render import TimeRenderer, TimeViewSettings, evaluate_at_time
from models.time_training import TimeSettings, TimeTrainer
from models.training import TrainConfig
from models.worker import TrainingWorker

from .loops import synchronize
from .sdf import _percentiles_ms, torch_threads

Progress = Callable[[str], None]

SIGNAL = "tour"
DEPTH = 3
W0 = 30.0
RANK = 10
LAYERS = (1, 2)
FRAMES_PER_BATCH = 8
BATCH = 8192
LR = 1e-3
WIDTHS = (128, 256)
SPEED_SIGNALS = {True: ((64, 24),), False: ((64, 24), (128, 48))}
"""--quick -> (size px, frames) of the videos the step cost is measured on."""
SCRUB_SIZE, SCRUB_FRAMES, SCRUB_WIDTH = 256, 24, 128
LOOPS = ("resfield", "plain", "bare_resfield", "bare_plain", "per_sample")
LOOP_LABELS = {"resfield": "TimeTrainer.step(), ResField", "plain": "TimeTrainer.step(), plain SIREN",
               "bare_resfield": "bare ResField loop (grouped, bmm)", "bare_plain": "bare plain-SIREN loop",
               "per_sample": "bare ResField, per sample (einsum)"}
TIME_TARGETS = {"resfield_vs_plain_max": 1.5, "scrub_frame_max_ms": 100.0}


# -- A. training step cost ---------------------------------------------------------------------------------------

class BareTimeLoop:
    """A hand-written loop over a copy of a model's weights: random frames, random pixels of each, MSE, Adam.

    ``mode``: 'grouped' (one weight matrix per frame, batched matmuls), 'per_sample' (the low-rank residual of every
    sample on its own) or 'plain' (no residual: the plain SIREN's model)."""

    def __init__(self, signal: Signal, model: torch.nn.Module, mode: str, device: torch.device, seed: int = 0):
        self.mode, self.device = mode, device
        self.coords, self.targets = signal.coords.to(device), signal.values.to(device)
        self.frames, self.per_frame = signal.time.frames, signal.time.samples_per_frame
        self.n = BATCH // FRAMES_PER_BATCH
        self.layers = []  # (W, b, v or None, M or None)
        for layer in [*model.hidden, model.output]:
            linear = layer.linear if hasattr(layer, "linear") else layer
            v = getattr(layer, "coefficients", None) if getattr(layer, "rank", 0) else None
            m = getattr(layer, "basis", None) if v is not None else None
            self.layers.append(tuple(None if p is None else p.detach().clone().to(device).requires_grad_()
                                     for p in (linear.weight, linear.bias, v, m)))
        self.optimizer = torch.optim.Adam([p for layer in self.layers for p in layer if p is not None], lr=LR)
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        frames = torch.randperm(self.frames, device=self.device, generator=self.generator)[:FRAMES_PER_BATCH]
        pixels = torch.randint(0, self.per_frame, (FRAMES_PER_BATCH, self.n), device=self.device,
                               generator=self.generator)
        return frames, frames.unsqueeze(1) * self.per_frame + pixels

    def forward(self, x: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """x [F, n, in] -> [F, n, out]; frames [F] index the coefficient rows (one row per frame)."""
        f, n = x.shape[:2]
        last = len(self.layers) - 1
        h = x.reshape(f * n, -1)
        for i, (w, b, v, m) in enumerate(self.layers):
            scale = 1.0 if i == last else W0  # SIREN folds w0 into the matmul, as the models do
            if v is None or self.mode == "plain":
                h = torch.addmm(b, h, w.t(), beta=scale, alpha=scale)
            elif self.mode == "grouped":
                rank, out, inn = m.shape
                weights = w + (v[frames] @ m.reshape(rank, -1)).reshape(f, out, inn)
                h = torch.baddbmm(b.reshape(1, 1, -1), h.reshape(f, n, inn), weights.transpose(1, 2), beta=scale,
                                  alpha=scale).reshape(f * n, out)
            else:  # per sample: W x + sum_r v_r(t) (M_r x), every sample with its own coefficients
                rank, out, inn = m.shape
                mx = (h @ m.reshape(rank * out, inn).t()).reshape(-1, rank, out)
                coefficients = v[frames].repeat_interleave(n, dim=0)
                h = scale * (torch.addmm(b, h, w.t()) + torch.einsum("nr,nro->no", coefficients, mx))
            if i != last:
                h = torch.sin(h)
        return h.reshape(f, n, -1)

    def step(self) -> None:
        frames, rows = self.batch()
        loss = torch.mean((self.forward(self.coords[rows], frames) - self.targets[rows]) ** 2)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def _bare_difference(bare: BareTimeLoop, model: torch.nn.Module) -> float:
    """Largest |bare forward - model forward| on one grouped batch (before either trained)."""
    frames, rows = bare.batch()
    coords = bare.coords[rows]
    with torch.no_grad():
        ours = bare.forward(coords, frames)
        if isinstance(model, ResFieldMLP):
            theirs = model(coords)
        else:
            theirs = model(coords.reshape(-1, coords.shape[-1])).reshape(*rows.shape, -1)
    return float((ours - theirs).abs().max())


def _alternate(loops: dict[str, Callable[[], None]], steps: dict[str, int], rounds: int, device: torch.device,
               after: Callable[[], None]) -> list[dict]:
    """``rounds`` rounds; in each every loop runs its block of ``steps[name]`` steps, the order rotated per round.

    Returns per round name -> seconds per step; ``after`` runs after every block, off the clock."""
    names = list(loops)
    per_round = []
    for r in range(rounds):
        measured = {}
        for name in names[r % len(names):] + names[:r % len(names)]:
            synchronize(device)
            started = time.perf_counter()
            for _ in range(steps[name]):
                loops[name]()
            synchronize(device)
            measured[name] = (time.perf_counter() - started) / steps[name]
            after()
        per_round.append(measured)
    return per_round


def _median(values: list[float]) -> dict:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return {"median": math.nan, "min": math.nan, "max": math.nan}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure_case(signal: Signal, width: int, quick: bool) -> dict:
    field = FieldConfig(kind="siren", width=width, depth=DEPTH, w0=W0, in_features=signal.in_features,
                        out_features=signal.channels)
    train = TrainConfig(lr=LR, batch_size=BATCH)
    settings = TimeSettings(rank=RANK, layers=LAYERS, frames_per_batch=FRAMES_PER_BATCH, compare="none")
    resfield = TimeTrainer(signal, settings.resfield_config(field, signal), train, settings)
    plain = TimeTrainer(signal, field, train, settings)
    device = resfield.device
    bare = {"bare_resfield": BareTimeLoop(signal, resfield.model, "grouped", device),
            "bare_plain": BareTimeLoop(signal, plain.model, "plain", device),
            "per_sample": BareTimeLoop(signal, resfield.model, "per_sample", device)}
    differences = {"bare_resfield": _bare_difference(bare["bare_resfield"], resfield.model),
                   "bare_plain": _bare_difference(bare["bare_plain"], plain.model),
                   "per_sample": _bare_difference(bare["per_sample"], resfield.model)}
    loops = {"resfield": resfield.step, "plain": plain.step, **{name: loop.step for name, loop in bare.items()}}
    block, rounds = (3, 3) if quick else (6, 6)  # short blocks, many rounds: the machine's load changes fast
    steps = {name: 1 if name == "per_sample" else block for name in LOOPS}  # per sample: ~10x a step

    def flush() -> None:
        resfield.flush()
        plain.flush()

    for name, step in loops.items():  # warm-up: allocator, first-call overheads
        for _ in range(1 if name == "per_sample" else 2 if quick else 3):
            step()
    flush()
    per_round = _alternate(loops, steps, rounds, device, flush)
    ms = {name: _median([1e3 * r[name] for r in per_round]) for name in LOOPS}
    pairs = {"resfield/plain": ("resfield", "plain"), "bare_resfield/bare_plain": ("bare_resfield", "bare_plain"),
             "resfield/bare_resfield": ("resfield", "bare_resfield"), "plain/bare_plain": ("plain", "bare_plain"),
             "per_sample/bare_resfield": ("per_sample", "bare_resfield")}
    ratios = {key: _median([r[a] / r[b] for r in per_round]) for key, (a, b) in pairs.items()}
    return {"size": int(signal.shape[1]), "frames": signal.time.frames, "width": width, "depth": DEPTH, "rank": RANK,
            "layers": list(LAYERS), "time_rows": resfield.model.config.time_rows, "batch": BATCH,
            "frames_per_batch": resfield.frames_per_batch, "samples_per_frame": resfield.samples_per_frame,
            "params": {"resfield": resfield.params, "plain": plain.params}, "rounds": rounds, "steps_per_block": steps,
            "per_round_s_per_step": per_round, "ms_per_step": ms, "cost_ratio": ratios,
            "bare_vs_model_max_output_diff": differences}


def measure_step_cost(quick: bool, progress: Progress) -> dict:
    cases = []
    with torch_threads(1):
        for size, frames in SPEED_SIGNALS[quick]:
            progress(f"time: loading {SIGNAL} at {size} px, {frames} frames")
            signal = load_signal(SIGNAL, size, frames=frames)
            for width in WIDTHS:
                progress(f"time: step cost, {size} px x {frames} frames, width {width} (1 torch thread)")
                cases.append(measure_case(signal, width, quick))
    return {"threads": 1, "cases": cases}


# -- B. scrubbing: a new frame ----------------------------------------------------------------------------------

def _scrub_models(signal: Signal) -> dict[str, torch.nn.Module]:
    resfield = ResFieldMLP(ResFieldConfig(kind="siren", in_features=signal.in_features, out_features=signal.channels,
                                          width=SCRUB_WIDTH, depth=DEPTH, w0=W0, rank=RANK,
                                          time_rows=signal.time.frames)).eval()
    plain = build_field(FieldConfig(kind="siren", width=SCRUB_WIDTH, depth=DEPTH, w0=W0, in_features=signal.in_features,
                                    out_features=signal.channels)).eval()
    return {"resfield": resfield, "plain": plain}


def frame_flops(pixels: int, width: int, in_features: int = 3, out_features: int = 3) -> float:
    """Matmul FLOPs of one frame through a SIREN of depth DEPTH (a ResField layer adds only its [out, in] weight
    build per frame: negligible)."""
    return 2.0 * pixels * (in_features * width + (DEPTH - 1) * width * width + width * out_features)


def measure_scrub(signal: Signal, quick: bool, progress: Progress) -> dict:
    count = 10 if quick else 20
    space = TimeRenderer(signal).space_coords
    models = _scrub_models(signal)
    flops = frame_flops(int(space.shape[0]), SCRUB_WIDTH, signal.in_features, signal.channels)
    result: dict = {"size": int(signal.shape[1]), "pixels": int(space.shape[0]), "width": SCRUB_WIDTH, "rank": RANK,
                    "time_rows": signal.time.frames, "count": count, "flops_per_frame": flops, "threads": {}}
    offset = 0
    for threads in (1, 2):
        entry = {}
        with torch_threads(threads):
            progress(f"time: scrubbing at {SCRUB_SIZE} px, {count} new times per model, {threads} thread(s)")
            seconds: dict[str, list[float]] = {name: [] for name in models}
            for model in models.values():
                evaluate_at_time(model, space, 0.123)  # warm-up
            for k, t in enumerate(np.linspace(-0.97, 0.97, count)):
                names = list(models) if k % 2 == 0 else list(models)[::-1]  # taking turns: the same load for both
                for name in names:
                    offset += 1
                    started = time.perf_counter()
                    evaluate_at_time(models[name], space, float(t) + 1e-4 * offset)  # never a time seen before
                    seconds[name].append(time.perf_counter() - started)
            for name, values in seconds.items():
                entry[name] = _percentiles_ms(values)
                entry[name]["gflops_at_p50"] = flops / (entry[name]["p50_ms"] * 1e6)
        result["threads"][str(threads)] = entry
    return result


# -- C. scrubbing through the worker ----------------------------------------------------------------------------

def _wait_snapshot(worker: TrainingWorker, accept: Callable, timeout: float) -> object:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        snapshot = worker.latest.take()
        if snapshot is not None:
            if snapshot.error:
                raise RuntimeError(f"the training worker failed: {snapshot.error}")
            if accept(snapshot):
                return snapshot
        time.sleep(0.001)
    raise TimeoutError(f"no matching snapshot within {timeout:.0f} s")


@contextlib.contextmanager
def _counting_frames():
    """Within the block, every frame the time renderer evaluates (``time_render.evaluate_at_time``, which
    ``TimeRenderer.frame_at`` calls) is recorded as (end time, seconds): what a snapshot's latency is made of."""
    original, calls = time_render.evaluate_at_time, []

    def counted(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            calls.append((time.perf_counter(), time.perf_counter() - started))

    time_render.evaluate_at_time = counted
    try:
        yield calls
    finally:
        time_render.evaluate_at_time = original


def _scrubs(worker: TrainingWorker, times: list[float], running: bool, calls: list) -> dict:
    latencies, steps, rates, frames, frame_seconds = [], [], [], [], []
    for t in times:
        mark = len(calls)
        started = time.perf_counter()
        worker.set_time(TimeViewSettings(t=t))
        snapshot = _wait_snapshot(worker, lambda s, t=t: bool(s.runs) and s.runs[0].time is not None
                                  and s.runs[0].time.t == t, 60.0)
        arrived = time.perf_counter()
        latencies.append(arrived - started)
        inside = [seconds for end, seconds in calls[mark:] if started <= end <= arrived]
        frames.append(len(inside))
        frame_seconds += inside
        steps.append(snapshot.step)
        rates.append(snapshot.steps_per_second)
        time.sleep(0.05)  # a hand on a slider: not every millisecond
    entry = _percentiles_ms(latencies)
    entry.update({"latencies_ms": [1e3 * s for s in latencies], "running": running, "first_step": steps[0],
                  "last_step": steps[-1], "frames_evaluated": _median(frames),
                  "frame_evaluation": _percentiles_ms(frame_seconds)})
    if running:
        entry["worker_steps_per_s"] = _median([r for r in rates if r > 0])
    return entry


def measure_worker_scrub(signal: Signal, quick: bool, progress: Progress) -> dict:
    count = 8 if quick else 15
    scene = Scene(field=FieldConfig(kind="siren", width=SCRUB_WIDTH, depth=DEPTH, w0=W0),
                  train=TrainConfig(lr=LR, batch_size=BATCH), preset="time", time=TimeSettings(rank=RANK))
    result: dict = {"size": int(signal.shape[1]), "frames": signal.time.frames, "scrubs": count, "threads": 1}
    with torch_threads(1), _counting_frames() as calls:
        progress(f"time: worker on the {SCRUB_SIZE}-px video: building (paused)")
        started = time.perf_counter()
        worker = TrainingWorker(signal, lambda: scene.build(signal), start_running=False).start()
        try:
            first = _wait_snapshot(worker, lambda s: bool(s.runs), 120.0)
            result["first_snapshot_s"] = time.perf_counter() - started
            result["runs"] = [run.label for run in first.runs]
            times = list(np.linspace(-0.9, 0.9, 2 * count) + 0.0123)
            progress(f"time: worker scrubbing, paused ({count} scrubs)")
            result["paused"] = _scrubs(worker, [float(t) for t in times[0::2]], running=False, calls=calls)
            progress(f"time: worker scrubbing, training ({count} scrubs)")
            worker.play()
            _wait_snapshot(worker, lambda s: s.running and s.step >= 3, 60.0)
            result["running"] = _scrubs(worker, [float(t) for t in times[1::2]], running=True, calls=calls)
        except (RuntimeError, TimeoutError) as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            result["worker_stopped"] = worker.stop(timeout=60.0)
    return result


# -- the section ------------------------------------------------------------------------------------------------

def measure_time(quick: bool, progress: Progress) -> dict:
    started = time.perf_counter()
    result: dict = {"quick": quick, "cpu_count": os.cpu_count(), "torch_threads_default": torch.get_num_threads(),
                    "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    result["step_cost"] = measure_step_cost(quick, progress)
    progress(f"time: loading {SIGNAL} at {SCRUB_SIZE} px, {SCRUB_FRAMES} frames")
    loading = time.perf_counter()
    signal = load_signal(SIGNAL, SCRUB_SIZE, frames=SCRUB_FRAMES)
    result["scrub_signal_load_s"] = time.perf_counter() - loading
    result["scrub"] = measure_scrub(signal, quick, progress)
    result["worker"] = measure_worker_scrub(signal, quick, progress)
    result["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    result["seconds"] = time.perf_counter() - started
    return result


def check_time_targets(section: dict) -> dict:
    checks = {}
    limit = TIME_TARGETS["resfield_vs_plain_max"]
    for case in section["step_cost"]["cases"]:
        checks[f"ResFields step <= {limit:g}x plain SIREN ({case['size']} px x {case['frames']} frames, width "
               f"{case['width']})"] = case["cost_ratio"]["resfield/plain"]["median"] <= limit
    scrub, limit = section["scrub"]["threads"]["1"]["resfield"], TIME_TARGETS["scrub_frame_max_ms"]
    checks[f"ResFields new frame at {section['scrub']['size']} px <= {limit:g} ms (p95, 1 thread)"] = (
        scrub.get("p95_ms", math.inf) <= limit)
    return checks


def render_time(section: dict) -> list[str]:
    from .report import _table

    load = "/".join(f"{x:.2f}" for x in section["load_average_at_start"] or []) or "?"
    end = "/".join(f"{x:.2f}" for x in section["load_average_at_end"] or []) or "?"
    lines = [f"10. Temporal fields (ResFields) on the synthesized '{SIGNAL}' video ({section['seconds']:.0f} s; "
             f"{section['cpu_count']} logical CPUs, load average {load} at start, {end} at end)"]
    cost = section["step_cost"]
    lines.append(f"10a. Training step cost, {cost['threads']} torch thread: SIREN depth {DEPTH}, ResField layers "
                 f"{'/'.join(map(str, LAYERS))} of rank {RANK}, one coefficient row per frame; batch {BATCH} = "
                 f"{FRAMES_PER_BATCH} frames x {BATCH // FRAMES_PER_BATCH} px. Loops alternate in blocks; ms/step "
                 "median (min-max) over rounds; cost ratios = median of per-round ratios of ms/step.")
    rows = []
    for case in cost["cases"]:
        what = f"{case['size']}px x{case['frames']} w{case['width']}"
        for name in LOOPS:
            stats = case["ms_per_step"][name]
            rows.append([what if name == "resfield" else "", LOOP_LABELS[name], str(case["steps_per_block"][name]
                                                                                      * case["rounds"]),
                         f"{stats['median']:.1f}", f"{stats['min']:.1f}-{stats['max']:.1f}"])
    lines += _table(["case", "loop", "steps", "ms/step", "range"], rows)
    rows = []
    for case in cost["cases"]:
        r = case["cost_ratio"]
        cell = {key: f"{v['median']:.2f} ({v['min']:.2f}-{v['max']:.2f})" for key, v in r.items()}
        rows.append([f"{case['size']}px x{case['frames']} w{case['width']}",
                     f"{case['params']['resfield']:,} / {case['params']['plain']:,}", cell["resfield/plain"],
                     cell["bare_resfield/bare_plain"], cell["resfield/bare_resfield"], cell["plain/bare_plain"],
                     cell["per_sample/bare_resfield"],
                     f"{max(case['bare_vs_model_max_output_diff'].values()):.1e}"])
    lines += _table(["case", "params ResF / plain", "ResF/plain", "bare ResF/plain", "trainer/bare ResF",
                     "trainer/bare plain", "per-sample/grouped", "bare=model"], rows)
    lines.append(f"   target: ResF/plain <= {TIME_TARGETS['resfield_vs_plain_max']:g} (TimeTrainer, same width, same "
                 "batch); 'bare=model': largest |output difference| of the bare forwards vs the models' on one batch")

    scrub = section["scrub"]
    lines.append("")
    lines.append(f"10b. Scrubbing: evaluate_at_time, a new frame at {scrub['size']} px ({scrub['pixels']:,} pixels), "
                 f"untrained fields of width {scrub['width']} (ResField rank {scrub['rank']}, {scrub['time_rows']} rows), "
                 f"{scrub['count']} distinct times each; {scrub['flops_per_frame'] / 1e9:.1f} GFLOP a frame (matmuls). "
                 f"Video loaded in {section['scrub_signal_load_s']:.1f} s.")
    rows = []
    for threads, entry in scrub["threads"].items():
        for name, label in (("resfield", "ResField"), ("plain", "plain SIREN")):
            e = entry[name]
            rows.append([threads, label, f"{e['p50_ms']:.1f}", f"{e['p95_ms']:.1f}", f"{e['max_ms']:.1f}",
                         f"{e['gflops_at_p50']:.1f}"])
    lines += _table(["threads", "model", "p50 ms", "p95 ms", "max ms", "GFLOP/s at p50"], rows)
    lines.append(f"   target: a new frame <= {TIME_TARGETS['scrub_frame_max_ms']:g} ms")
    one, two = scrub["threads"].get("1", {}), scrub["threads"].get("2", {})
    if one and two and two["plain"]["p50_ms"] > one["plain"]["p50_ms"]:
        lines.append("   2 threads slower than 1: another process keeps a core busy (see the load average), and the "
                     "2 OpenMP threads wait for each other at every op")

    worker = section["worker"]
    lines.append("")
    lines.append(f"10c. Scrubbing through the TrainingWorker ({worker['size']} px, {worker['frames']} frames, "
                 f"{worker['threads']} torch thread; runs: {', '.join(worker.get('runs', []))}): set_time until a "
                 "snapshot whose first run is drawn at the new t; 'frames' = 256-px frames the renderer evaluated "
                 "meanwhile (median; every run at t, the ResField's base MLP too, per-frame PSNRs within its budget), "
                 "'frame ms' = their p50"
                 + (f"; first snapshot {worker['first_snapshot_s']:.1f} s after start" if "first_snapshot_s" in worker
                    else ""))
    if "error" in worker:
        lines.append(f"   error: {worker['error']}")
    rows = []
    for state in ("paused", "running"):
        if state in worker:
            e = worker[state]
            rate = e.get("worker_steps_per_s", {}).get("median")
            rows.append([state, str(e["count"]), f"{e['p50_ms']:.0f}", f"{e['p95_ms']:.0f}", f"{e['max_ms']:.0f}",
                         f"{e['frames_evaluated']['median']:.0f}", f"{e['frame_evaluation'].get('p50_ms', math.nan):.0f}",
                         f"{e['first_step']}-{e['last_step']}", "" if rate is None else f"{rate:.1f}"])
    if rows:
        lines += _table(["training", "scrubs", "p50 ms", "p95 ms", "max ms", "frames", "frame ms", "steps",
                         "steps/s"], rows)
    lines.append(f"   worker stopped: {worker.get('worker_stopped')}")
    return lines

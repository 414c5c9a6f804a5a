"""Streamable (width-growing) fields: stage-training speed, quality at equal steps, width-view rendering.

1. ``measure_stage_speed``: steps/s of ``GrowthTrainer.step()`` in each progressive stage (and in slimmable
   mode), next to a plain SIREN ``Trainer`` of the same total width and a bare PyTorch loop of that width,
   all in the same run. As in throughput.py, the three take turns in short blocks within each round
   (``run_alternating``: same thread, same load) and the median of the per-round ratios is reported. One
   growth trainer per batch mode walks through the stages: measured, then ``end_stage()`` into the next.
2. ``measure_quality``: the issue's criterion. A streamable SIREN trained progressively (full batch, a
   fixed number of steps per stage) against a plain SIREN of the widest width after as many steps as one
   stage and as all stages, and against separate plain SIRENs with matched parameter counts, each trained
   for as many steps as the streamable field had when that width was finished (the paper's comparison).
3. ``measure_width_views``: time for ``WidthCache.render`` to produce every ``WidthView`` (what the GUI's
   width slider flips between) of a 4-width field, cold and with the trained widths cached. No Qt here:
   the slider's own latency in the window is measured elsewhere.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from models.fields import FieldConfig
from models.growth import GrowthConfig, GrowthTrainer
from models.scenes import Scene
from models.signals import Signal, load_signal
from models.streamable import StreamableConfig, matched_plain_width
from models.training import TrainConfig, Trainer
from models.width_views import WidthCache

from .loops import BareLoop, run_alternating, run_for, synchronize

SIGNAL = "camera"
SPEED_SIZE = 256
SPEED_WIDTHS = (16, 32, 64, 128)
DEPTH = 3
LR = 1e-3
MINIBATCH = 16384
QUALITY_WIDTHS = (16, 32, 64)
SPEED_LOOPS = ("streamable", "plain", "bare")
SPEED_LABELS = {"streamable": "GrowthTrainer.step()", "plain": "plain SIREN Trainer.step()",
                "bare": "bare PyTorch loop"}
NEVER = 10 ** 9
"""Steps per stage while measuring speed: stages end only when the benchmark calls ``end_stage()``."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SpeedSettings:
    seconds: float
    """Minimum measured time per loop and round."""
    rounds: int
    warmup_seconds: float


def speed_settings(quick: bool) -> SpeedSettings:
    return SpeedSettings(0.3, 2, 0.25) if quick else SpeedSettings(1.0, 5, 0.5)


def _train_config(batch_size: int) -> TrainConfig:
    return TrainConfig(lr=LR, batch_size=batch_size)


def _streamable_config(signal: Signal, widths: tuple[int, ...]) -> StreamableConfig:
    return StreamableConfig(in_features=signal.in_features, out_features=signal.channels, widths=widths, depth=DEPTH)


def _plain_field(width: int) -> FieldConfig:
    return FieldConfig(kind="siren", width=width, depth=DEPTH)


# -- 1. stage-training speed ----------------------------------------------------------------------------------

def _layer_macs(widths: tuple[int, ...], stage: int, in_features: int, out_features: int) -> float:
    """Multiply-adds per sample of stage ``stage``'s own blocks (its new units' rows and output columns)."""
    before = widths[stage - 1] if stage else 0
    units = widths[stage] - before
    return units * in_features + (DEPTH - 1) * units * widths[stage] + units * out_features


def streamable_step_flops(widths: tuple[int, ...], stage: int, mode: str, batch: int, frozen_cached: bool,
                          in_features: int, out_features: int) -> float:
    """Matmul FLOPs of one GrowthTrainer step, counted as in flops.step_flops (backward = 2x forward).

    Progressive: the training stage's blocks forward and backward, plus the frozen stages' forward
    (no autograd) unless full-batch training reuses it from the per-stage cache. Slimmable: every stage
    forward and backward (one pass gives every width's output).
    """
    def forward(k: int) -> float:
        return 2.0 * batch * _layer_macs(widths, k, in_features, out_features)

    if mode == "slimmable":
        return 3.0 * sum(forward(k) for k in range(len(widths)))
    frozen = 0.0 if frozen_cached else sum(forward(k) for k in range(stage))
    return 3.0 * forward(stage) + frozen


def plain_step_flops(width: int, batch: int, in_features: int, out_features: int) -> float:
    return 3.0 * 2.0 * batch * (in_features * width + (DEPTH - 1) * width * width + width * out_features)


def _measure_rounds(loops: dict[str, Callable[[], None]], flush: Callable[[], None], settings: SpeedSettings,
                    device: torch.device) -> tuple[dict, dict, dict, list[dict]]:
    """Warm up every loop, then ``settings.rounds`` rounds of ``run_alternating``.

    Returns (median steps/s, median per-round ratio to 'plain' and to 'bare', ratio ranges, rounds).
    """
    for step in loops.values():
        run_for(step, settings.warmup_seconds, device)
    flush()
    per_round: list[dict] = []
    for _ in range(settings.rounds):
        timed = run_alternating(loops, settings.seconds, device)
        flush()  # outside the clock: it copies the weights and optimiser state (the last good state)
        per_round.append({name: {"steps": steps, "seconds": elapsed, "steps_per_s": steps / elapsed}
                          for name, (steps, elapsed) in timed.items()})
    rates = {name: statistics.median(r[name]["steps_per_s"] for r in per_round) for name in loops}
    ratios, ranges = {}, {}
    for name, reference in (("streamable", "plain"), ("streamable", "bare"), ("plain", "bare")):
        values = [r[name]["steps_per_s"] / r[reference]["steps_per_s"] for r in per_round]
        key = f"{name}/{reference}"
        ratios[key] = statistics.median(values)
        ranges[key] = (min(values), max(values))
    return rates, ratios, ranges, per_round


def _speed_case(signal: Signal, growth: GrowthTrainer, batch_size: int, settings: SpeedSettings,
                mode: str) -> dict:
    width = growth.current_width
    plain = Trainer(signal, _plain_field(width), _train_config(batch_size))
    bare = BareLoop(signal, Scene(field=_plain_field(width), train=_train_config(batch_size)))
    device = growth.device
    loops = {"streamable": growth.step, "plain": plain.step, "bare": bare.step}

    def flush() -> None:
        growth.flush()
        plain.flush()

    rates, ratios, ranges, per_round = _measure_rounds(loops, flush, settings, device)
    frozen_cached = growth.full_batch and growth._frozen_cache is not None
    batch = growth.batch_size
    streamable_flops = streamable_step_flops(growth.widths, growth.stage, mode, batch, frozen_cached,
                                             signal.in_features, signal.channels)
    plain_flops = plain_step_flops(width, batch, signal.in_features, signal.channels)
    return {
        "mode": mode,
        "stage": growth.stage,
        "width": width,
        "batch_size": batch,
        "params": {"streamable_trained": sum(p.numel() for p in growth.model.parameters() if p.requires_grad),
                   "streamable_total": growth.params, "plain": plain.params},
        "frozen_forward_cached": frozen_cached,
        "steps_per_s": rates,
        "ratio": ratios,
        "ratio_range": ranges,
        "flops_per_step": {"streamable": streamable_flops, "plain": plain_flops},
        "flop_ratio_plain_over_streamable": plain_flops / streamable_flops,
        "rounds_run": len(per_round),
        "rounds": per_round,
    }


def measure_stage_speed(quick: bool, progress: Progress) -> dict:
    """Steps/s per progressive stage and in slimmable mode, full batch and minibatch, vs plain and bare."""
    settings = speed_settings(quick)
    signal = load_signal(SIGNAL, SPEED_SIZE)
    config = _streamable_config(signal, SPEED_WIDTHS)
    cases = []
    for batch_size in (0, MINIBATCH):
        label = "full batch" if batch_size == 0 else f"batch {batch_size}"
        growth = GrowthTrainer(signal, config, _train_config(batch_size), GrowthConfig(stage_steps=NEVER))
        for stage in range(len(SPEED_WIDTHS)):
            if stage and not growth.end_stage():
                raise RuntimeError(f"could not end stage {growth.stage} (non-finite loss?)")
            progress(f"growth speed: progressive stage {stage} (width {growth.current_width}), {label}")
            cases.append(_speed_case(signal, growth, batch_size, settings, "progressive"))
        del growth
        progress(f"growth speed: slimmable (widths {'/'.join(map(str, SPEED_WIDTHS))}), {label}")
        slim = GrowthTrainer(signal, config, _train_config(batch_size),
                             GrowthConfig(stage_steps=NEVER, mode="slimmable"))
        cases.append(_speed_case(signal, slim, batch_size, settings, "slimmable"))
        del slim
    return {"signal": SIGNAL, "size": SPEED_SIZE, "widths": list(SPEED_WIDTHS), "depth": DEPTH, "lr": LR,
            "seconds_per_round": settings.seconds, "rounds": settings.rounds,
            "warmup_seconds": settings.warmup_seconds, "cases": cases}


# -- 2. quality at equal total steps ---------------------------------------------------------------------------

def _train_plain(signal: Signal, width: int, checkpoints: list[int], progress: Progress, label: str) -> dict:
    """A plain SIREN trained full batch; PSNR at each step count in ``checkpoints`` (ascending)."""
    trainer = Trainer(signal, _plain_field(width), _train_config(0))
    psnrs, every = {}, max(100, checkpoints[-1] // 3)
    for target in checkpoints:
        while trainer.step_count < target:
            trainer.step()
            if trainer.step_count % every == 0 and trainer.step_count < checkpoints[-1]:
                trainer.flush()
                progress(f"{label}: step {trainer.step_count}/{checkpoints[-1]}")
        trainer.flush()
        synchronize(trainer.device)
        psnrs[target] = trainer.evaluate(current=True)[2]
    return {"width": width, "params": trainer.params, "psnr_at": psnrs, "train_seconds": trainer.seconds}


def measure_quality(quick: bool, progress: Progress) -> dict:
    size, stage_steps = (128, 100) if quick else (256, 300)
    widths = QUALITY_WIDTHS
    total = stage_steps * len(widths)
    signal = load_signal(SIGNAL, size)
    config = _streamable_config(signal, widths)
    growth = GrowthTrainer(signal, config, _train_config(0), GrowthConfig(stage_steps=stage_steps))
    progress(f"growth quality: streamable {'/'.join(map(str, widths))}, {size} px, {stage_steps} steps a stage")
    while not growth.finished:
        stage = growth.stage
        growth.step()
        if growth.stage != stage or growth.finished:
            # the stage just ended (frozen from now on): its width's PSNR, for the progress line
            value = growth.width_psnr(growth.predict_widths()[stage], stage)
            progress(f"growth quality: streamable width {widths[stage]} done at step {growth.step_count}: "
                     f"{value:.2f} dB")
    growth.flush()
    outputs = growth.predict_widths()
    streamable = [{"width": w, "params": growth.model.parameters_at(k), "steps_when_finished": growth.stage_end_steps[k],
                   "psnr": growth.width_psnr(outputs[k], k)} for k, w in enumerate(widths)]
    widest = widths[-1]
    plain = _train_plain(signal, widest, [stage_steps, total], progress, f"growth quality: plain SIREN {widest}")
    separate = []
    for k, entry in enumerate(streamable):
        width = matched_plain_width(entry["params"], DEPTH, signal.in_features, signal.channels)
        steps = stage_steps * (k + 1)
        progress(f"growth quality: separate SIREN width {width} (matches {entry['params']:,} params), {steps} steps")
        run = _train_plain(signal, width, [steps], progress, f"growth quality: separate SIREN {width}")
        separate.append({"matches_width": entry["width"], "width": width, "params": run["params"],
                         "steps": steps, "psnr": run["psnr_at"][steps], "train_seconds": run["train_seconds"],
                         "streamable_minus_separate_db": entry["psnr"] - run["psnr_at"][steps]})
    top = streamable[-1]["psnr"]
    return {
        "signal": SIGNAL, "size": size, "widths": list(widths), "depth": DEPTH, "lr": LR, "batch": "full",
        "stage_steps": stage_steps, "total_steps": total,
        "streamable": streamable, "streamable_train_seconds": growth.seconds,
        "plain_widest": {"width": widest, "params": plain["params"], "train_seconds": plain["train_seconds"],
                         "psnr_at_stage_steps": plain["psnr_at"][stage_steps],
                         "psnr_at_total_steps": plain["psnr_at"][total]},
        "separate": separate,
        "gap_vs_plain_same_steps": top - plain["psnr_at"][total],
        "gap_vs_plain_stage_steps": top - plain["psnr_at"][stage_steps],
    }


def measure_default_scene_quality(quick: bool, progress: Progress) -> dict:
    """The growth lab's default scene (widths 16/32/64/128, minibatch 16384, steps 100/200/300/600) against
    a plain SIREN of the widest width on the same minibatches, at the same total steps and at the last
    stage's steps; wall-clock training time of each."""
    from dataclasses import replace

    from models.scenes import DEFAULT_GROWTH_SCENE

    scene = DEFAULT_GROWTH_SCENE
    size = 128 if quick else 256
    if quick:
        scene = replace(scene, growth=replace(scene.growth, steps_per_stage=tuple(
            max(1, n // 4) for n in scene.growth.steps_per_stage)))
    signal = load_signal(SIGNAL, size)
    growth = scene.build(signal)[0][1]
    progress(f"growth quality (default scene): streamable {'/'.join(map(str, scene.widths))}, {size} px, steps "
             f"{'/'.join(map(str, scene.growth.steps_per_stage))}, batch {scene.train.batch_size}")
    while not growth.finished:
        growth.step()
    growth.flush()
    outputs = growth.predict_widths()
    streamable = [{"width": w, "params": growth.model.parameters_at(k), "psnr": growth.width_psnr(outputs[k], k),
                   "steps_when_finished": growth.stage_end_steps[k]} for k, w in enumerate(scene.widths)]
    total, last = growth.step_count, scene.growth.steps_for(len(scene.widths) - 1)
    plain = Trainer(signal, _plain_field(scene.widths[-1]), scene.train)
    psnr_at = {}
    for target in sorted({last, total}):
        progress(f"growth quality (default scene): plain SIREN {scene.widths[-1]} to step {target}")
        while plain.step_count < target:
            plain.step()
        plain.flush()
        psnr_at[target] = plain.evaluate(current=True)[2]
        if target == last:
            seconds_at_last = plain.seconds
    top = streamable[-1]["psnr"]
    return {"size": size, "widths": list(scene.widths), "steps_per_stage": list(scene.growth.steps_per_stage),
            "batch": scene.train.batch_size, "streamable": streamable, "streamable_train_seconds": growth.seconds,
            "total_steps": total, "plain": {"width": scene.widths[-1], "params": plain.params,
                                            "psnr_at_total_steps": psnr_at[total], "psnr_at_last_stage_steps": psnr_at[last],
                                            "train_seconds": plain.seconds, "seconds_at_last_stage_steps": seconds_at_last},
            "gap_vs_plain_same_steps": top - psnr_at[total], "gap_vs_plain_last_stage_steps": top - psnr_at[last]}


# -- 3. width views (what the slider shows) --------------------------------------------------------------------

def _timed(call: Callable[[], object], device: torch.device) -> float:
    synchronize(device)
    started = time.perf_counter()
    call()
    synchronize(device)
    return time.perf_counter() - started


def _stats(values: list[float]) -> dict:
    return {"median_ms": 1e3 * statistics.median(values), "min_ms": 1e3 * min(values),
            "max_ms": 1e3 * max(values), "count": len(values)}


def measure_width_views(quick: bool, progress: Progress) -> dict:
    """Rendering every WidthView of a 4-width field: cold, and with the trained widths cached.

    Two states: 'finished' (all four widths trained: a re-render only looks up the cache) and 'training'
    (the last stage training: a re-render draws that width only). The field is trained only a few steps
    a stage (render cost does not depend on how good it is).
    """
    repeats = 3 if quick else 7
    signal = load_signal(SIGNAL, SPEED_SIZE)
    growth = GrowthTrainer(signal, _streamable_config(signal, SPEED_WIDTHS), _train_config(MINIBATCH),
                           GrowthConfig(stage_steps=NEVER))
    progress(f"growth width views: {len(SPEED_WIDTHS)} widths at {SPEED_SIZE} px, {repeats} repeats")
    results = {"signal": SIGNAL, "size": SPEED_SIZE, "widths": list(SPEED_WIDTHS), "repeats": repeats}
    for state in ("training", "finished"):
        while growth.stage < len(SPEED_WIDTHS) - 1 or (state == "finished" and not growth.finished):
            for _ in range(3):
                growth.step()
            growth.end_stage()
        info = growth.stage_info()
        forward, cold, warm = [], [], []
        outputs = growth.predict_widths()
        for _ in range(repeats):
            forward.append(_timed(growth.predict_widths, growth.device))
            render = partial(WidthCache(signal).render, 0, 0, info, outputs, growth.step_count)
            cold.append(_timed(render, growth.device))  # an empty cache: every width is drawn
            warm.append(_timed(render, growth.device))  # the same cache: trained widths are looked up
        results[state] = {"states": list(info.states), "widths_rendered_warm": sum(s != "trained" for s in info.states),
                          "evaluate_all_widths": _stats(forward), "render_first": _stats(cold),
                          "render_cached": _stats(warm)}
    return results


def measure_growth(quick: bool, skip_quality: bool, progress: Progress) -> dict:
    result = {"speed": measure_stage_speed(quick, progress)}
    result["width_views"] = measure_width_views(quick, progress)
    result["quality"] = {"skipped": "--skip-quality"} if skip_quality else measure_quality(quick, progress)
    result["default_scene_quality"] = ({"skipped": "--skip-quality"} if skip_quality
                                       else measure_default_scene_quality(quick, progress))
    return result

"""3D signed distance fields: what the 3D lab costs on its default scene.

The scene is ``DEFAULT_SDF_SCENE`` (SIREN 3x64, w0 20, minibatches of 8192 of the 200k samples, Adam lr 1e-3) on
``sdf_signal(DEFAULT_SDF_SIGNAL)`` (the torus). Everything runs on the CPU with one torch thread, as the app's
training thread gets on a 2-core machine (``configure_cpu_threads(leave_one_for_gui=True)``), and with two where
that is cheap.

A. ``measure_training_speed``: ``Trainer.step()`` against a bare hand-written loop (``BareLoop``: the same
   ``build_field`` model and weights, the same seeded minibatches of 8192, MSE, Adam), alternating in 0.2 s
   blocks within each round (``run_alternating``); at one thread also the real ``TrainingWorker`` (headless, its
   renderer thread drawing live 64^3 meshes as in the app; while paused between rounds its fine mesh is set to 64^3
   too, so that it is done quickly and off the clock). Ratios are medians of per-round ratios.
B. ``measure_renders``, live: a fresh ``Trainer`` trained 300 steps (``--quick``: 150); then
   ``SdfRenderer.render(..., still=False)`` at 64^3 (the lab's live grid), timed whole and split into the
   narrow-band mesh extraction (of which field queries), the surface metrics (Chamfer, normals, IoU) and the rest
   (per-vertex error, the slice plane). Field queries of the narrow band against a dense 65^3 grid.
C. ``measure_renders``, on demand: ``render(..., still=True)`` at ``still_resolution`` 256 (a new step each time so
   the still cache does not answer), split the same way; one dense extraction at 256 (``extract_dense``) of the same
   field, so the narrow band's saving is measured; narrow band against dense at 128 (and at 256): vertex and face
   counts and the largest distance from a vertex of one mesh to the nearest vertex of the other.
D. ``measure_gui`` (needs a display with GLX: ``xvfb-run``): the real ``MainWindow`` on the default 3D scene,
   training; every 16 ms a timer turns the turntable camera's azimuth by 3 degrees (what a drag does) and the
   canvas's draw events are counted (and timed) for 8 s (``--quick``: 3 s) once the field has trained 100 steps.
   Frames per second, training steps/s from the snapshots, and the interval between snapshots that brought a new
   mesh.
"""
from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from itertools import pairwise

import numpy as np
import torch

from models.meshing import MeshData, extract_dense, extract_narrow_band
from models.scenes import DEFAULT_SDF_SCENE, DEFAULT_SDF_SIGNAL, DEFAULT_SIZE
from models.sdf_render import (
    BAND,
    SdfRenderer,
    SdfViewSettings,
    default_level,
    module_field,
)
from models.sdf_signal import sdf_signal
from models.signals import Signal

from .loops import (
    BareLoop,
    WorkerProbe,
    max_weight_difference,
    run_alternating,
    run_for,
    synchronize,
)

Progress = Callable[[str], None]

LIVE_RESOLUTION = 64
STILL_RESOLUTION = 256
CHECK_RESOLUTION = 128
TRAIN_STEPS = 300
GUI_TICK_MS = 16
GUI_DEGREES = 3.0
GUI_WARM_STEPS = 100
"""The window's measurement starts once the field has trained this many steps: an untrained SIREN's level set is a
large tangle (~44k vertices at 64^3 at step 0, ~6k for the torus after 300 steps), not what one turns for minutes."""
SDF_TARGETS = {"trainer_vs_bare_min": 0.9, "live_max_ms": 300.0, "still_max_s": 3.0, "gui_min_fps": 30.0}


@contextlib.contextmanager
def torch_threads(count: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _spread(values: list[float]) -> dict:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return {"median": math.nan, "min": math.nan, "max": math.nan, "count": 0}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "count": len(values)}


def _percentiles_ms(seconds: list[float]) -> dict:
    if not seconds:
        return {"count": 0}
    values = np.asarray(seconds) * 1e3
    return {"count": int(values.size), "p50_ms": float(np.percentile(values, 50)),
            "p95_ms": float(np.percentile(values, 95)), "max_ms": float(values.max()), "mean_ms": float(values.mean())}


# -- A. training speed ------------------------------------------------------------------------------------------

def _settle(probe: WorkerProbe, quiet: float = 1.0, timeout: float = 60.0) -> None:
    """A paused 3D worker draws its live mesh, then the fine one: wait until no snapshot has come for ``quiet`` s, so
    that its renderer does not compete with the next loop being timed."""
    deadline = time.perf_counter() + timeout
    count, since = len(probe.slot.records), time.perf_counter()
    while time.perf_counter() < deadline:
        time.sleep(0.05)
        if len(probe.slot.records) != count:
            count, since = len(probe.slot.records), time.perf_counter()
        elif time.perf_counter() - since >= quiet:
            return


def measure_training_speed(signal: Signal, quick: bool, progress: Progress) -> dict:
    scene = DEFAULT_SDF_SCENE
    seconds = 1.0 if quick else 1.5
    rounds = {1: 2 if quick else 4, 2: 2 if quick else 3}
    worker_rounds = 1 if quick else 2
    bare = BareLoop(signal, scene)
    trainer = scene.build(signal)[0][1]
    device = trainer.device
    start_diff = max_weight_difference(bare.model, trainer.model)
    with torch_threads(1):
        for _ in range(2):  # same weights, same batches: the two should train the same thing
            bare.step()
            trainer.step()
        synchronize(device)
        two_step_diff = max_weight_difference(bare.model, trainer.model)
    result: dict = {"scene": "DEFAULT_SDF_SCENE", "signal": signal.name, "samples": int(signal.coords.shape[0]),
                    "batch_size": trainer.batch_size, "params": trainer.params, "device": str(device),
                    "field": {"kind": scene.field.kind, "width": scene.field.width, "depth": scene.field.depth,
                              "w0": scene.field.w0}, "lr": scene.train.lr, "seconds_per_mode_per_round": seconds,
                    "bare_vs_trainer_max_weight_diff": {"at_start": start_diff, "after_2_steps": two_step_diff},
                    "threads": {}}
    probe = None
    try:
        for threads in (1, 2):
            with torch_threads(threads):
                progress(f"3D speed: {threads} torch thread(s): warm-up")
                run_for(bare.step, 0.3, device)
                run_for(trainer.step, 0.3, device)
                trainer.flush()
                if threads == 1:
                    probe = WorkerProbe(signal, scene, running=False)
                    # paused, the worker also draws a fine mesh (256^3 by default: seconds for an untrained tangle);
                    # between rounds it only has to stay out of the way, so make that one 64^3 as well
                    probe.worker.set_view(SdfViewSettings(live_resolution=LIVE_RESOLUTION,
                                                          still_resolution=LIVE_RESOLUTION))
                    probe.wait_built()
                    _settle(probe)
                per_round = []
                for r in range(rounds[threads]):
                    with_worker = threads == 1 and r < worker_rounds
                    progress(f"3D speed: {threads} thread(s), round {r + 1}/{rounds[threads]}"
                             + (" (with the worker)" if with_worker else ""))
                    measured = {}
                    parts = ("loops", "worker") if r % 2 == 0 else ("worker", "loops")
                    for part in parts:
                        if part == "loops":
                            timed = run_alternating({"bare": bare.step, "trainer_step": trainer.step}, seconds, device)
                            trainer.flush()
                            for mode, (steps, elapsed) in timed.items():
                                measured[mode] = {"steps": steps, "seconds": elapsed, "steps_per_s": steps / elapsed}
                        elif with_worker:
                            steps, elapsed, snapshots = probe.measure(seconds + 0.5, warmup_steps=2, timeout=120.0)
                            _settle(probe)
                            measured["worker"] = {"steps": steps, "seconds": elapsed, "steps_per_s": steps / elapsed,
                                                  "snapshots": snapshots}
                    per_round.append(measured)
                if threads == 1 and probe is not None:
                    probe.stop()
                    probe = None
            rates = {mode: _spread([m[mode]["steps_per_s"] for m in per_round if mode in m])
                     for mode in ("bare", "trainer_step", "worker") if any(mode in m for m in per_round)}
            ratios = {f"{mode}/bare": _spread([m[mode]["steps_per_s"] / m["bare"]["steps_per_s"]
                                               for m in per_round if mode in m])
                      for mode in ("trainer_step", "worker") if any(mode in m for m in per_round)}
            result["threads"][str(threads)] = {"rounds": per_round, "steps_per_s": rates, "ratio": ratios}
    finally:
        if probe is not None:
            probe.stop()
    return result


# -- B and C. live and on-demand meshes --------------------------------------------------------------------------

def _timed_render(renderer: SdfRenderer, model: torch.nn.Module, settings: SdfViewSettings, still: bool,
                  step: int) -> tuple[dict, object]:
    """One ``render`` with its parts timed; the field function is wrapped to time every query batch."""
    base = module_field(model, torch.device("cpu"))
    calls: list[tuple[int, float]] = []

    def field(points: torch.Tensor) -> torch.Tensor:
        started = time.perf_counter()
        values = base(points)
        calls.append((int(points.shape[0]), time.perf_counter() - started))
        return values

    started = time.perf_counter()
    view = renderer.render(field, settings, still=still, generation=0, index=0, step=step, record=not still)
    total = time.perf_counter() - started
    mesh = view.mesh
    # render() queries the mesh grid first and the slice plane last
    slice_queries = settings.slice_size ** 2
    mesh_calls = calls[:-1] if calls and calls[-1][0] == slice_queries else calls
    metrics = view.metrics
    entry = {"total_s": total, "mesh_s": mesh.seconds, "mesh_field_queries_s": sum(s for _, s in mesh_calls),
             "metrics_s": float(metrics.get("seconds", math.nan)),
             "queries": int(mesh.queries), "dense_queries": int(mesh.dense_queries),
             "vertices": len(mesh.vertices), "faces": len(mesh.faces),
             "chamfer_l1": metrics.get("chamfer_l1"), "normal_consistency": metrics.get("normal_consistency"),
             "iou": metrics.get("iou"), "message": mesh.message}
    entry["other_s"] = total - entry["mesh_s"] - entry["metrics_s"]
    return entry, view


def _summarise(runs: list[dict]) -> dict:
    keys = ("total_s", "mesh_s", "mesh_field_queries_s", "metrics_s", "other_s")
    first = runs[0]
    return {"runs": runs, **{key: _spread([r[key] for r in runs]) for key in keys},
            "queries": first["queries"], "dense_queries": first["dense_queries"],
            "query_ratio": first["queries"] / first["dense_queries"], "vertices": first["vertices"],
            "faces": first["faces"], "chamfer_l1": first["chamfer_l1"], "iou": first["iou"],
            "normal_consistency": first["normal_consistency"]}


def compare_meshes(a: MeshData, b: MeshData) -> dict:
    """Counts, bit-identity, and the largest distance from a vertex of either mesh to the other's nearest vertex."""
    from scipy.spatial import cKDTree

    same_shape = a.vertices.shape == b.vertices.shape and a.faces.shape == b.faces.shape
    result = {"vertices": [len(a.vertices), len(b.vertices)], "faces": [len(a.faces), len(b.faces)],
              "identical": bool(same_shape and np.array_equal(a.vertices, b.vertices)
                                and np.array_equal(a.faces, b.faces)),
              "max_vertex_distance": math.nan, "max_vertex_distance_cells": math.nan}
    if len(a.vertices) and len(b.vertices):
        d_ab = cKDTree(b.vertices).query(a.vertices)[0].max()
        d_ba = cKDTree(a.vertices).query(b.vertices)[0].max()
        result["max_vertex_distance"] = float(max(d_ab, d_ba))
        result["max_vertex_distance_cells"] = result["max_vertex_distance"] / (2.0 / a.resolution)
    return result


def _extraction(mesh: MeshData, seconds: float) -> dict:
    return {"seconds": seconds, "queries": int(mesh.queries), "dense_queries": int(mesh.dense_queries),
            "vertices": len(mesh.vertices), "faces": len(mesh.faces)}


def measure_renders(signal: Signal, quick: bool, progress: Progress) -> dict:
    steps = 150 if quick else TRAIN_STEPS
    live_repeats = {1: 3 if quick else 7, 2: 3}
    still_repeats = {1: 1 if quick else 3, 2: 1}
    trainer = DEFAULT_SDF_SCENE.build(signal)[0][1]
    model = trainer.model
    progress(f"3D meshes: training a fresh field {steps} steps (1 torch thread)")
    with torch_threads(1):
        started = time.perf_counter()
        for _ in range(steps):
            trainer.step()
        trainer.flush()
        train_seconds = time.perf_counter() - started
    model.eval()
    renderer = SdfRenderer(signal)
    level = default_level(signal)
    live = SdfViewSettings(live_resolution=LIVE_RESOLUTION)
    still = SdfViewSettings(still_resolution=STILL_RESOLUTION)
    result: dict = {"train_steps": steps, "train_seconds": train_seconds, "final_loss": trainer.loss_values[-1],
                    "band_cell_diagonals": BAND, "level": level, "slice_size": live.slice_size,
                    "live_resolution": LIVE_RESOLUTION, "still_resolution": STILL_RESOLUTION, "live": {}, "still": {}}
    step = steps
    with torch.no_grad():
        with torch_threads(1):
            progress(f"3D meshes: first live render at {LIVE_RESOLUTION}^3 (ground-truth set-up included)")
            first, _ = _timed_render(renderer, model, live, False, step)
            result["first_live_render_s"] = first["total_s"]
        for threads in (1, 2):
            with torch_threads(threads):
                progress(f"3D meshes: live render at {LIVE_RESOLUTION}^3, {live_repeats[threads]} runs, "
                         f"{threads} thread(s)")
                runs = []
                for _ in range(live_repeats[threads]):
                    step += 1
                    runs.append(_timed_render(renderer, model, live, False, step)[0])
                result["live"][str(threads)] = _summarise(runs)
        still_view = None
        for threads in (1, 2):
            with torch_threads(threads):
                progress(f"3D meshes: on-demand render at {STILL_RESOLUTION}^3, {still_repeats[threads]} run(s), "
                         f"{threads} thread(s)")
                runs = []
                for _ in range(still_repeats[threads]):
                    step += 1  # a new step: the still cache must not answer
                    entry, view = _timed_render(renderer, model, still, True, step)
                    runs.append(entry)
                    still_view = still_view or view
                result["still"][str(threads)] = _summarise(runs)

        field = module_field(model, torch.device("cpu"))
        with torch_threads(1):
            progress(f"3D meshes: narrow band vs dense at {CHECK_RESOLUTION}^3")
            started = time.perf_counter()
            band_mesh = extract_narrow_band(field, CHECK_RESOLUTION, level=level, inside_below=renderer.inside_below,
                                            band=BAND, keep_volume=False)
            band_seconds = time.perf_counter() - started
            started = time.perf_counter()
            dense_mesh = extract_dense(field, CHECK_RESOLUTION, level=level, inside_below=renderer.inside_below,
                                       keep_volume=False)
            dense_seconds = time.perf_counter() - started
            result["check"] = {"resolution": CHECK_RESOLUTION, "narrow_band": _extraction(band_mesh, band_seconds),
                               "dense": _extraction(dense_mesh, dense_seconds),
                               "same_mesh": compare_meshes(band_mesh, dense_mesh)}
            if quick:
                result["dense_still"] = {"skipped": "--quick"}
            else:
                progress(f"3D meshes: one dense extraction at {STILL_RESOLUTION}^3 "
                         f"({(STILL_RESOLUTION + 1) ** 3:,} queries)")
                started = time.perf_counter()
                dense_still = extract_dense(field, STILL_RESOLUTION, level=level, inside_below=renderer.inside_below,
                                            keep_volume=False)
                dense = _extraction(dense_still, time.perf_counter() - started)
                dense["mesh_s"] = dense_still.seconds
                band = result["still"]["1"]
                dense["over_narrow_band_mesh"] = dense["seconds"] / band["mesh_s"]["median"]
                dense["over_narrow_band_render"] = dense["seconds"] / band["total_s"]["median"]
                dense["same_mesh_as_narrow_band"] = compare_meshes(still_view.mesh, dense_still)
                result["dense_still"] = dense
                del dense_still
    return result


# -- D. the window ---------------------------------------------------------------------------------------------

def gl_problem() -> str:
    """Why no OpenGL window can be opened here, or '' if it (probably) can."""
    from .gui_latency import display_problem

    problem = display_problem()
    if problem:
        return problem
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform.startswith(("offscreen", "minimal")):
        return f"QT_QPA_PLATFORM={platform}: no OpenGL window (run under xvfb-run with +extension GLX)"
    if not sys.platform.startswith("linux") or not os.environ.get("DISPLAY"):
        return ""
    import ctypes
    import ctypes.util

    try:
        x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
        gl = ctypes.CDLL(ctypes.util.find_library("GL") or "libGL.so.1")
    except OSError as exc:
        return f"no libX11/libGL: {exc}"
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    gl.glXQueryExtension.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    display = x11.XOpenDisplay(None)
    if not display:
        return f"cannot open the X display {os.environ.get('DISPLAY')!r}"
    try:
        has_glx = bool(gl.glXQueryExtension(display, None, None))
    finally:
        x11.XCloseDisplay(display)
    return "" if has_glx else (f"the X display {os.environ.get('DISPLAY')!r} has no GLX (xvfb-run -s "
                               "\"-screen 0 1280x1024x24 +extension GLX +render\")")


def measure_gui(seconds: float, warmup: float, progress: Progress, paused_seconds: float = 0.0,
                timeout: float = 120.0) -> dict:
    """Turn the camera of the real window's 3D view every 16 ms while it trains; count the canvas's draws."""
    from PySide6 import QtCore, QtWidgets

    from app.main_window import MainWindow

    from .gui_latency import closed_window_facts

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    signal = sdf_signal(DEFAULT_SDF_SIGNAL)
    window = MainWindow(signal, DEFAULT_SDF_SCENE, DEFAULT_SIZE, running=True)
    window.show()
    mesh_canvas = window.sdf_view.canvas
    draws: list[float] = []
    draw_ends: list[float] = []
    ticks: list[float] = []
    snapshots: list[tuple] = []
    """(time, step, running, worker's steps/s, mesh object or None, still, mesh seconds, vertices)"""

    def on_draw(_event) -> None:
        draws.append(time.perf_counter())

    def on_drawn(_event) -> None:
        draw_ends.append(time.perf_counter())

    def on_snapshot(snapshot) -> None:
        view = snapshot.runs[0].sdf if snapshot.runs else None
        mesh = view.mesh if view is not None else None
        snapshots.append((time.perf_counter(), snapshot.step, snapshot.running, snapshot.steps_per_second, mesh,
                          bool(view.still) if view is not None else None,
                          mesh.seconds if mesh is not None else math.nan,
                          len(mesh.vertices) if mesh is not None else 0))

    def tick() -> None:
        camera = mesh_canvas.view.camera
        camera.azimuth = camera.azimuth + GUI_DEGREES  # vispy wraps it into [-180, 180]
        ticks.append(time.perf_counter())

    def run_loop(duration: float) -> None:
        loop = QtCore.QEventLoop()
        QtCore.QTimer.singleShot(int(duration * 1000), loop.quit)
        loop.exec()

    mesh_canvas.canvas.events.draw.connect(on_draw, position="first")  # before the scene draws
    mesh_canvas.canvas.events.draw.connect(on_drawn, position="last")  # after it
    window.session.snapshotReady.connect(on_snapshot)
    timer = QtCore.QTimer(interval=GUI_TICK_MS, timerType=QtCore.Qt.PreciseTimer)
    timer.timeout.connect(tick)
    error = ""
    window_start = window_end = math.nan
    frames: list[float] = []
    frame_ends: list[float] = []
    tick_times: list[float] = []
    gui_cpu = 0.0
    renderer = ""
    paused: dict = {}
    spanned: list[tuple] = []
    try:
        deadline = time.perf_counter() + timeout
        while not any(s[4] is not None and len(s[4].faces) for s in snapshots):
            if time.perf_counter() > deadline:
                raise TimeoutError(f"no mesh in the 3D view within {timeout:.0f} s")
            if window.last_error:
                raise RuntimeError(window.last_error)
            app.processEvents(QtCore.QEventLoop.AllEvents, 50)
            time.sleep(0.005)
        try:
            from vispy.gloo import gl

            mesh_canvas.canvas.set_current()
            renderer = f"{gl.glGetParameter(gl.GL_RENDERER)}, OpenGL {gl.glGetParameter(gl.GL_VERSION)}"
        except Exception as exc:
            renderer = f"? ({type(exc).__name__}: {exc})"
        progress(f"3D gui ({renderer}): first mesh after {len(snapshots)} snapshot(s); turning the camera every "
                 f"{GUI_TICK_MS} ms, {seconds:g} s measured from step {GUI_WARM_STEPS}")
        timer.start()
        run_loop(warmup)
        while not any(s[1] >= GUI_WARM_STEPS for s in snapshots):
            if time.perf_counter() > deadline:
                raise TimeoutError(f"the window's field did not reach step {GUI_WARM_STEPS} within {timeout:.0f} s")
            run_loop(0.1)
        draws.clear()
        draw_ends.clear()
        ticks.clear()
        del snapshots[:-1]  # the last one before the window stays: the baseline
        window_start, cpu_start = time.perf_counter(), time.thread_time()
        run_loop(seconds)
        window_end, gui_cpu = time.perf_counter(), time.thread_time() - cpu_start
        frames, frame_ends, tick_times = list(draws), list(draw_ends), list(ticks)
        # snapshots are seconds apart here: keep turning until the first one after the window, so that the training
        # rate and the mesh refresh interval span the window
        extra = time.perf_counter() + 15.0
        while not any(s[0] > window_end for s in snapshots) and time.perf_counter() < extra:
            run_loop(0.05)
        spanned = list(snapshots)
        if paused_seconds > 0:  # the same turning with training paused, once the fine mesh is shown
            progress(f"3D gui: paused, waiting for the {SdfViewSettings().still_resolution}^3 mesh, then "
                     f"{paused_seconds:g} s more")
            window.controls.play.setChecked(False)
            extra = time.perf_counter() + 60.0
            while not (snapshots and snapshots[-1][5] and not snapshots[-1][2]) and time.perf_counter() < extra:
                run_loop(0.05)
            if snapshots and snapshots[-1][5]:
                run_loop(0.3)
                draws.clear()
                draw_ends.clear()
                started = time.perf_counter()
                run_loop(paused_seconds)
                paused = {"seconds": time.perf_counter() - started, "draws": len(draws),
                          "fps": len(draws) / (time.perf_counter() - started),
                          "draw_duration": _percentiles_ms([end - start for start, end in
                                                            zip(draws, draw_ends, strict=False) if end >= start]),
                          "vertices": snapshots[-1][7], "resolution": snapshots[-1][4].resolution}
            else:
                paused = {"skipped": "no fine mesh within 60 s of pausing"}
    except Exception as exc:  # a measurement, not a test: report it
        error = f"{type(exc).__name__}: {exc}"
    finally:
        timer.stop()
        window.session.snapshotReady.disconnect(on_snapshot)
        mesh_canvas.canvas.events.draw.disconnect(on_draw)
        mesh_canvas.canvas.events.draw.disconnect(on_drawn)
        window.close()
        app.processEvents()
    worker_stopped, platform, last_error = closed_window_facts(app, window)
    result = {"qt_platform": platform, "gl_renderer": renderer, "scene": "DEFAULT_SDF_SCENE", "signal": DEFAULT_SDF_SIGNAL,
              "torch_threads": torch.get_num_threads(), "tick_ms": GUI_TICK_MS, "degrees_per_tick": GUI_DEGREES,
              "warmup_s": warmup, "worker_stopped_on_close": worker_stopped, "last_error": last_error}
    if error:
        result["error"] = error
        return result
    elapsed = window_end - window_start
    snapshots = spanned
    inside = [s for s in snapshots if window_start <= s[0] <= window_end]
    running = [s for s in snapshots if s[2]]  # from the last one before the window to the first one after it
    steps_per_s = ((running[-1][1] - running[0][1]) / (running[-1][0] - running[0][0])
                   if len(running) >= 2 and running[-1][0] > running[0][0] else math.nan)
    # the baseline (the last snapshot before the window) brought a mesh too: intervals count from it
    changes = [snapshots[0][0]] if snapshots and snapshots[0][4] is not None else []
    changes += [s[0] for previous, s in pairwise(snapshots) if s[4] is not None and s[4] is not previous[4]]
    result.update({
        "seconds": elapsed,
        "draws": len(frames),
        "fps": len(frames) / elapsed,
        "ticks": len(tick_times),
        "ticks_per_s": len(tick_times) / elapsed,
        "draw_interval": _percentiles_ms(list(np.diff(frames))),
        "draw_duration": _percentiles_ms([end - start for start, end in zip(frames, frame_ends, strict=False)
                                          if end >= start]),
        "tick_interval": _percentiles_ms(list(np.diff(tick_times))),
        "gui_thread_cpu_fraction": gui_cpu / elapsed,
        "first_step": snapshots[0][1] if snapshots else 0,
        "snapshots": len(inside),
        "snapshots_spanned": len(snapshots),
        "rate_span_s": running[-1][0] - running[0][0] if len(running) >= 2 else math.nan,
        "training_steps_per_s": steps_per_s,
        "worker_reported_steps_per_s": _spread([s[3] for s in snapshots[1:] if s[2]]),
        "mesh_changes": max(0, len(changes) - 1),
        "mesh_refresh_interval": _percentiles_ms(list(np.diff(changes))),
        "live_mesh_seconds": _spread([s[6] for s in snapshots if s[5] is False]),
        "vertices": next((s[7] for s in reversed(snapshots) if s[4] is not None), 0),
        "paused": paused,
    })
    return result


# -- the section -----------------------------------------------------------------------------------------------

def measure_sdf(quick: bool, progress: Progress, gui_problem: str = "") -> dict:
    started = time.perf_counter()
    progress(f"3D: loading {DEFAULT_SDF_SIGNAL} (sdf_signal)")
    signal = sdf_signal(DEFAULT_SDF_SIGNAL)
    result: dict = {"signal": signal.name, "quick": quick}
    result["speed"] = measure_training_speed(signal, quick, progress)
    result["meshes"] = measure_renders(signal, quick, progress)
    problem = gui_problem or gl_problem()
    if problem:
        result["gui"] = {"skipped": problem}
    else:
        with torch_threads(1):
            result["gui"] = measure_gui(3.0 if quick else 8.0, 1.0, progress, paused_seconds=0.0 if quick else 3.0)
    result["seconds"] = time.perf_counter() - started
    return result


# -- targets and the printed tables -----------------------------------------------------------------------------

def check_sdf_targets(sdf: dict) -> dict:
    checks = {}
    ratio = sdf["speed"]["threads"]["1"]["ratio"]["trainer_step/bare"]["median"]
    checks[f"3D Trainer.step >= {SDF_TARGETS['trainer_vs_bare_min']:g}x bare (1 thread)"] = (
        ratio >= SDF_TARGETS["trainer_vs_bare_min"])
    meshes = sdf["meshes"]
    live = meshes["live"]["1"]["total_s"]["median"] * 1e3
    checks[f"3D live refresh at {meshes['live_resolution']}^3 <= {SDF_TARGETS['live_max_ms']:g} ms (1 thread)"] = (
        live <= SDF_TARGETS["live_max_ms"])
    still = meshes["still"]["1"]["total_s"]["median"]
    checks[f"3D on-demand {meshes['still_resolution']}^3 <= {SDF_TARGETS['still_max_s']:g} s (1 thread)"] = (
        still <= SDF_TARGETS["still_max_s"])
    gui = sdf.get("gui", {})
    if "fps" in gui:
        checks[f"3D view >= {SDF_TARGETS['gui_min_fps']:g} fps while training"] = gui["fps"] >= SDF_TARGETS["gui_min_fps"]
    return checks


def _ms(stats: dict) -> str:
    return f"{1e3 * stats['median']:.0f} ({1e3 * stats['min']:.0f}-{1e3 * stats['max']:.0f})"


def render_sdf(sdf: dict) -> list[str]:
    from .report import _table

    speed, meshes = sdf["speed"], sdf["meshes"]
    field = speed["field"]
    lines = [(f"9. 3D signed distance fields: {speed['signal']}, {field['kind'].upper()} {field['depth']}x{field['width']} "
              f"(w0 {field['w0']:g}), batch {speed['batch_size']} of {speed['samples']:,} samples, lr {speed['lr']:g} "
              f"({sdf['seconds']:.0f} s)")]
    lines.append(f"9a. Training speed on the {speed['device'].upper()}: bare loop and Trainer.step() alternate in 0.2 s "
                 f"blocks, {speed['seconds_per_mode_per_round']:g} s each a round; the headless TrainingWorker "
                 "(renderer thread drawing live meshes) in some rounds; median (min-max), ratios = median of per-round "
                 "ratios.")
    rows = []
    for threads, entry in speed["threads"].items():
        for mode, label in (("bare", "bare PyTorch loop"), ("trainer_step", "Trainer.step()"),
                            ("worker", "TrainingWorker (headless)")):
            if mode not in entry["steps_per_s"]:
                continue
            rate = entry["steps_per_s"][mode]
            ratio = entry["ratio"].get(f"{mode}/bare")
            rows.append([threads, label, str(rate["count"]), f"{rate['median']:.1f}",
                         f"{rate['min']:.1f}-{rate['max']:.1f}", f"{1e3 / rate['median']:.1f}",
                         f"{ratio['median']:.3f} ({ratio['min']:.2f}-{ratio['max']:.2f})" if ratio else "1"])
    lines += _table(["threads", "mode", "rounds", "steps/s", "range", "ms/step", "x bare"], rows)
    diff = speed["bare_vs_trainer_max_weight_diff"]
    lines.append(f"   bare vs Trainer: max |weight diff| {diff['at_start']:.1e} at start, {diff['after_2_steps']:.1e} "
                 f"after 2 steps")

    lines.append("")
    lines.append(f"9b/9c. Meshes of a field trained {meshes['train_steps']} steps ({meshes['train_seconds']:.1f} s, loss "
                 f"{meshes['final_loss']:.2e}), SdfRenderer.render; median (min-max) ms. 'mesh' = narrow-band "
                 f"extraction (band {meshes['band_cell_diagonals']:g} cell diagonals) incl. marching cubes, 'queries' "
                 "= its field evaluations, 'metrics' = Chamfer/normals/IoU, 'other' = vertex error + "
                 f"{meshes['slice_size']}^2 slice. First live render (ground-truth set-up): "
                 f"{1e3 * meshes['first_live_render_s']:.0f} ms.")
    rows = []
    for kind, resolution in (("live", meshes["live_resolution"]), ("still", meshes["still_resolution"])):
        for threads, entry in meshes[kind].items():
            rows.append([f"{resolution}^3 {'live' if kind == 'live' else 'on demand'}", threads,
                         str(entry["total_s"]["count"]), _ms(entry["total_s"]), _ms(entry["mesh_s"]),
                         _ms(entry["mesh_field_queries_s"]), _ms(entry["metrics_s"]), _ms(entry["other_s"]),
                         f"{entry['queries']:,} / {entry['dense_queries']:,} ({100 * entry['query_ratio']:.1f}%)",
                         f"{entry['vertices']:,}"])
    lines += _table(["render", "threads", "runs", "total", "mesh", "queries", "metrics", "other",
                     "field queries / dense", "vertices"], rows)
    live = meshes["live"]["1"]
    lines.append(f"   live mesh: Chamfer-L1 {live['chamfer_l1']:.4f}, normal consistency {live['normal_consistency']:.3f}, "
                 f"IoU {live['iou']:.4f}; targets: live <= {SDF_TARGETS['live_max_ms']:g} ms, on demand <= "
                 f"{SDF_TARGETS['still_max_s']:g} s (1 thread)")
    dense = meshes.get("dense_still", {})
    if "skipped" in dense:
        lines.append(f"   dense extraction at {meshes['still_resolution']}^3: skipped ({dense['skipped']})")
    elif dense:
        same = dense["same_mesh_as_narrow_band"]
        lines.append(f"   dense extraction at {meshes['still_resolution']}^3 (extract_dense, 1 thread, once): "
                     f"{dense['seconds']:.1f} s for {dense['queries']:,} queries = {dense['over_narrow_band_mesh']:.1f}x "
                     f"the narrow band's extraction ({dense['over_narrow_band_render']:.1f}x its whole render); same mesh: "
                     f"{same['vertices'][0]:,} vs {same['vertices'][1]:,} vertices, identical {same['identical']}, max "
                     f"vertex distance {same['max_vertex_distance']:.2e} ({same['max_vertex_distance_cells']:.3f} cells)")
    check = meshes["check"]
    same = check["same_mesh"]
    band, full = check["narrow_band"], check["dense"]
    lines.append(f"   narrow band vs dense at {check['resolution']}^3 (1 thread): {band['seconds']:.2f} s / "
                 f"{full['seconds']:.2f} s, {band['queries']:,} / {full['queries']:,} queries; vertices "
                 f"{same['vertices'][0]:,} / {same['vertices'][1]:,}, faces {same['faces'][0]:,} / {same['faces'][1]:,}, "
                 f"identical {same['identical']}, max vertex distance {same['max_vertex_distance']:.2e} "
                 f"({same['max_vertex_distance_cells']:.3f} cells)")

    gui = sdf.get("gui", {})
    lines.append("")
    if "skipped" in gui:
        lines.append(f"9d. The 3D view in the app's window: skipped ({gui['skipped']})")
    elif "error" in gui:
        lines.append(f"9d. The 3D view in the app's window: error: {gui['error']}")
    elif gui:
        lines.append(f"9d. The 3D view in the app's window (Qt {gui['qt_platform']}, {gui['gl_renderer']}; "
                     f"{gui['torch_threads']} torch thread(s), training from step {gui['first_step']}): the turntable "
                     f"camera turned {gui['degrees_per_tick']:g} deg every {gui['tick_ms']} ms for {gui['seconds']:.1f} s; "
                     "canvas draw events counted; 'draw ms' = time inside the canvas's draw handlers")
        draw, refresh, duration = gui["draw_interval"], gui["mesh_refresh_interval"], gui["draw_duration"]

        def num(stats: dict, key: str) -> str:
            return f"{stats.get(key, math.nan):.0f}"

        lines += _table(["fps", "ticks/s", "draw interval p50 ms", "p95", "max", "draw ms p50", "p95", "GUI busy",
                         "train steps/s", "snapshots", "mesh refresh p50 ms", "p95", "live mesh ms", "vertices"],
                        [[f"{gui['fps']:.1f}", f"{gui['ticks_per_s']:.1f}", num(draw, "p50_ms"), num(draw, "p95_ms"),
                          num(draw, "max_ms"), num(duration, "p50_ms"), num(duration, "p95_ms"),
                          f"{100 * gui['gui_thread_cpu_fraction']:.0f}%",
                          f"{gui['training_steps_per_s']:.1f}", str(gui["snapshots"]), num(refresh, "p50_ms"),
                          num(refresh, "p95_ms"), f"{1e3 * gui['live_mesh_seconds']['median']:.0f}",
                          f"{gui['vertices']:,}"]])
        lines.append(f"   'snapshots' arrived in the window; training rate, worker's own rate (median "
                     f"{gui['worker_reported_steps_per_s']['median']:.1f}) and mesh refresh span the last snapshot before "
                     f"it to the first after it ({gui['snapshots_spanned']} snapshots, {gui['rate_span_s']:.1f} s)")
        paused = gui.get("paused", {})
        if "fps" in paused:
            lines.append(f"   paused (training stopped, the {paused['resolution']}^3 mesh of {paused['vertices']:,} vertices "
                         f"shown): {paused['fps']:.1f} fps over {paused['seconds']:.1f} s, draw ms p50 "
                         f"{paused['draw_duration'].get('p50_ms', math.nan):.0f}, p95 "
                         f"{paused['draw_duration'].get('p95_ms', math.nan):.0f}")
        elif paused:
            lines.append(f"   paused: skipped ({paused['skipped']})")
        lines.append(f"   target: >= {SDF_TARGETS['gui_min_fps']:g} fps while training; worker stopped on close: "
                     f"{gui['worker_stopped_on_close']}")
    return lines


def insert_before_targets(text: str, lines: list[str]) -> str:
    """The report with this section placed before its 'Targets:' block (or at the end)."""
    marker = "\nTargets:"
    section = "\n".join(lines)
    if marker in text:
        head, tail = text.split(marker, 1)
        return f"{head.rstrip()}\n\n{section}\n{marker}{tail}"
    return f"{text.rstrip()}\n\n{section}"

"""Event-loop latency of the real MainWindow while the default scene trains.

Two probes run on the GUI thread: a 10 ms precise QTimer (how late each tick comes, against the one
before it) and a queued signal emitted from a plain Python thread every 20 ms (how long a posted event
waits before the GUI thread runs it). The window is the app's own, shown on whatever display Qt finds
(run under xvfb-run on a headless machine), and closed at the end, which stops its worker.
"""
from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np

TICK_MS = 10
POST_EVERY_S = 0.020


def display_problem() -> str:
    """Why a window cannot be opened here, or '' if it (probably) can."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                                                 or os.environ.get("QT_QPA_PLATFORM")):
        return "no display: run under xvfb-run (see bench/README.md) or pass --skip-gui"
    return ""


def percentiles_ms(samples: list[float]) -> dict:
    if not samples:
        return {"count": 0}
    values = np.asarray(samples) * 1e3
    return {"count": int(values.size), "p50_ms": float(np.percentile(values, 50)),
            "p95_ms": float(np.percentile(values, 95)), "max_ms": float(values.max()),
            "mean_ms": float(values.mean())}


def measure_gui_latency(warmup_s: float, seconds: float, scene=None, size: int | None = None) -> dict:
    """The probes on the app's window training ``scene`` at ``size`` px (default: the default scene)."""
    from PySide6 import QtCore, QtWidgets

    from app.main_window import MainWindow
    from models.scenes import DEFAULT_FIELD, DEFAULT_SIGNAL, DEFAULT_SIZE, DEFAULT_TRAIN, Scene
    from models.signals import load_signal

    class Probe(QtCore.QObject):
        posted = QtCore.Signal(float)

        def __init__(self):
            super().__init__()
            self.recording = False
            self.tick_lateness: list[float] = []
            self.post_delays: list[float] = []
            self.frames: list[tuple[float, int]] = []
            self._last_tick: float | None = None
            self.timer = QtCore.QTimer(self, interval=TICK_MS, timerType=QtCore.Qt.PreciseTimer)
            self.timer.timeout.connect(self._tick)
            self.posted.connect(self._received, QtCore.Qt.QueuedConnection)

        def _tick(self) -> None:
            now = time.perf_counter()
            if self.recording and self._last_tick is not None:
                self.tick_lateness.append(max(0.0, now - self._last_tick - TICK_MS / 1e3))
            self._last_tick = now

        def _received(self, posted_at: float) -> None:
            if self.recording:
                self.post_delays.append(time.perf_counter() - posted_at)

        def rendered(self, snapshot) -> None:
            if self.recording:
                self.frames.append((time.perf_counter(), snapshot.step))

    def post_forever(probe: Probe, stop: threading.Event) -> None:
        while not stop.wait(POST_EVERY_S):
            probe.posted.emit(time.perf_counter())

    def run_loop(seconds: float) -> None:
        loop = QtCore.QEventLoop()
        QtCore.QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    scene = scene or Scene(field=DEFAULT_FIELD, train=DEFAULT_TRAIN)
    size = size or DEFAULT_SIZE
    signal = load_signal(DEFAULT_SIGNAL, size)
    window = MainWindow(signal, scene, size, running=True)
    window.show()
    probe = Probe()
    window.session.snapshotReady.connect(probe.rendered)
    stop = threading.Event()
    poster = threading.Thread(target=post_forever, args=(probe, stop), name="bench-poster", daemon=True)
    probe.timer.start()
    poster.start()
    try:
        run_loop(warmup_s)
        probe.recording = True
        started, gui_cpu_started = time.perf_counter(), time.thread_time()
        run_loop(seconds)
        elapsed, gui_cpu = time.perf_counter() - started, time.thread_time() - gui_cpu_started
        probe.recording = False
    finally:
        stop.set()
        poster.join()
        probe.timer.stop()
        window.close()
        app.processEvents()
    worker_stopped, platform, last_error = closed_window_facts(app, window)

    frames = probe.frames
    steps_per_s = ((frames[-1][1] - frames[0][1]) / (frames[-1][0] - frames[0][0])
                   if len(frames) >= 2 and frames[-1][0] > frames[0][0] else float("nan"))
    return {
        "qt_platform": platform,
        "seconds": elapsed,
        "timer_interval_ms": TICK_MS,
        "post_interval_ms": round(POST_EVERY_S * 1000),
        "timer_lateness": percentiles_ms(probe.tick_lateness),
        "posted_event_delay": percentiles_ms(probe.post_delays),
        "snapshots_rendered_per_s": len(frames) / elapsed,
        "gui_thread_cpu_fraction": gui_cpu / elapsed,
        "training_steps_per_s": steps_per_s,
        "worker_stopped_on_close": worker_stopped,
        "last_error": last_error,
    }


def measure_width_slider(size: int = 256, stage_steps: int = 15, moves: int = 60) -> dict:
    """Slider change to pixels on screen in the growth lab: the time from setting the width slider to
    the end of a synchronous repaint of the lab's view (every panel and plot), at ``size`` px.

    The field is trained briefly (``stage_steps`` per stage, default widths 16/32/64/128) so that every
    width exists; then training is paused and the slider is moved back and forth ``moves`` times.
    """
    from dataclasses import replace

    from PySide6 import QtCore, QtWidgets

    from app.main_window import MainWindow
    from models.growth import GrowthConfig
    from models.scenes import DEFAULT_GROWTH_SCENE
    from models.signals import load_signal

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    scene = replace(DEFAULT_GROWTH_SCENE, growth=GrowthConfig(stage_steps=stage_steps))
    window = MainWindow(load_signal("camera", size), scene, size, running=True)
    window.show()
    view = window.growth_view
    deadline = time.perf_counter() + 300
    try:
        while time.perf_counter() < deadline:
            app.processEvents(QtCore.QEventLoop.AllEvents, 50)
            snapshot = window.session.last_snapshot
            if snapshot is not None and snapshot.runs and snapshot.runs[0].stages is not None \
                    and snapshot.runs[0].stages.finished and len(snapshot.runs[0].widths) == len(scene.widths):
                break
            time.sleep(0.01)
        else:
            raise RuntimeError("the growth scene did not finish training in time")
        view.slider.follow.setChecked(False)
        count = len(scene.widths)
        samples, whole_window = [], []
        for i in range(moves):
            target = (i + 1) % count
            started = time.perf_counter()
            view.slider.slider.setValue(target)
            view.repaint()
            samples.append(time.perf_counter() - started)
            started = time.perf_counter()
            window.repaint()
            whole_window.append(time.perf_counter() - started)
        shown = view.reconstruction.image.image
        correct = shown is not None and np.array_equal(shown, window.session.last_snapshot.runs[0].widths[target].reconstruction)
    finally:
        window.close()
        app.processEvents()
    window.deleteLater()
    app.processEvents()
    return {"size_px": size, "widths": list(scene.widths), "moves": moves,
            "slider_to_repainted_view": percentiles_ms(samples),
            "whole_window_repaint": percentiles_ms(whole_window),
            "last_view_matches_snapshot": bool(correct)}


def closed_window_facts(app, window) -> tuple[bool, str, str]:
    """After ``window.close()``: (its worker stopped, Qt platform, last error shown); then the window is deleted."""
    worker_stopped = window.session.worker is None
    platform, last_error = app.platformName(), window.last_error
    window.deleteLater()
    app.processEvents()
    return worker_stopped, platform, last_error

"""Open, train, close: many times in one process, and a few times in separate processes (issue 8).

One process opens a MainWindow, waits until it has trained at least one step, closes it and lets Qt delete it,
FIELDLAB_LIFECYCLE_CYCLES times (14 in the suite, two rounds of every lab: about a minute; the issue's 100 take
about 7: ``FIELDLAB_LIFECYCLE_CYCLES=100 ./scripts/test.sh tests/test_gui_lifecycle.py``), cycling through the labs (image, spectral bias, growth, crop, sweep, the time lab on the 'tour' video
and the 3D lab on the torus, all at their smallest). Afterwards no fieldlab-* thread may be left, no window, and
the resident memory may have grown only by a bounded amount after the first round (warm-up: imports, caches,
Mesa's shader cache, torch's allocator). ``scripts/open_train_close.py`` does the same with one process per cycle.

Measured on the shared 2-core test machine (commit 319741f, before the feature modules were plugged in): 100 cycles
in 400 s (3-4 s a cycle, 6 s for the 3D lab; building a MainWindow with all its views takes ~2.3 s of it), RSS
827 MB after the first round and 872 MB after the last, flat from the sixth round on.
"""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
import weakref

import pytest
from gui_helpers import wait_for

from models.fields import FieldConfig
from models.growth import GrowthConfig
from models.scenes import CropSettings, Scene
from models.signals import load_signal
from models.sweep import SweepSettings
from models.time_training import TimeSettings
from models.training import TrainConfig

pytestmark = [pytest.mark.gui, pytest.mark.gl, pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display with GLX (xvfb-run)")]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CYCLES = int(os.environ.get("FIELDLAB_LIFECYCLE_CYCLES", "14"))
RSS_GROWTH_LIMIT_MB = 300.0
"""Allowed growth of the resident set after the first round. Measured: +45 MB over the other 93 cycles, levelling off
(allocator arenas and caches). A leaked window keeps ~30 MB (2D labs) to ~140 MB (3D lab), so leaking every window
goes over this within two rounds; the weak-reference check after each round catches it after the first."""

TINY_FIELD = FieldConfig(kind="siren", width=8, depth=2, w0=30.0)
TINY_TRAIN = TrainConfig(lr=1e-3, batch_size=0, seed=0, device="cpu")
LABS = [  # (label, signal, size, scene): every lab at its smallest
    ("image", "camera", 16, Scene(field=TINY_FIELD, train=TINY_TRAIN, preset="image")),
    ("spectral-bias", "camera", 16, Scene(field=FieldConfig(kind="siren", width=8, depth=2, fourier_frequencies=8),
                                          train=TINY_TRAIN, preset="spectral-bias")),
    ("growth", "camera", 16, Scene(field=TINY_FIELD, train=TINY_TRAIN, preset="growth", widths=(4, 8),
                                   growth=GrowthConfig(stage_steps=5))),
    ("crop", "camera", 16, Scene(field=FieldConfig(kind="siren", width=8, depth=2), train=TINY_TRAIN, preset="crop",
                                 crop=CropSettings(partitions=(2, 2), params=0, local_width=4, global_width=8))),
    ("sweep", "camera", 16, Scene(field=FieldConfig(kind="finer", width=8, depth=2), train=TINY_TRAIN, preset="sweep",
                                  sweep=SweepSettings(activations=("finer",), ks=(0.0, 1.0), reference=False,
                                                      strategy="interleaved"))),
    ("time", "tour", 16, Scene(field=TINY_FIELD, train=TrainConfig(lr=1e-3, batch_size=256, device="cpu"),
                               preset="time", time=TimeSettings(rank=2, compare="none", frames_per_batch=2))),
    ("3d", "torus", 16, Scene(field=FieldConfig(kind="siren", width=8, depth=2, w0=20.0),
                              train=TrainConfig(lr=1e-3, batch_size=512, device="cpu"))),
]


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def fieldlab_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("fieldlab-") and t.is_alive()]


def close_and_delete(window) -> None:
    """Close as the user does, let Qt delete the window and everything it owns, then collect the Python garbage it
    left (reference cycles through Qt objects) here, on the GUI thread."""
    from PySide6 import QtCore, QtWidgets

    window.close()
    window.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.DeferredDelete)
    QtWidgets.QApplication.processEvents()
    gc.collect()
    QtWidgets.QApplication.processEvents()  # deletions that the collection handed back to the GUI thread


@pytest.fixture
def garbage_collected_on_the_gui_thread():
    """Automatic garbage collection off while windows come and go; ``close_and_delete`` collects on the GUI thread.

    Otherwise a collection can start on the training thread (any allocation may trigger one) and free Qt objects
    of a closed window there: ~QObject then holds a Qt mutex and waits for the GIL while the GUI thread, holding
    the GIL, deletes other Qt objects and waits for that mutex. This deadlock happened in this test at HEAD (GC in
    models/training.py _capture_state's deepcopy on the worker thread; the GUI thread in shiboken's
    runDeletionInMainThread deleting a QMenu). pyqtgraph's GarbageCollector (pyqtgraph.util.garbage_collector)
    is the usual cure in an app: automatic collection off, gc.collect() from a QTimer on the GUI thread."""
    enabled = gc.isenabled()
    gc.disable()
    yield
    if enabled:
        gc.enable()


@pytest.fixture
def watchdog():
    """Arm before each cycle: a cycle stuck for 180 s dumps every thread's stack and ends the process (a deadlock
    must fail loudly, not hang the suite)."""
    import faulthandler

    def arm(seconds: float = 180.0) -> None:
        faulthandler.dump_traceback_later(seconds, exit=True)

    yield arm
    faulthandler.cancel_dump_traceback_later()


def open_window(scene: Scene, source: str, size: int):
    """As tests/gui_helpers.open_window, without registering the window with qtbot (whose teardown would close
    the windows again, after Qt deleted them)."""
    from app.main_window import MainWindow

    window = MainWindow(load_signal(source, size), scene, size, running=True)
    window.show()
    return window


def held_from_outside(obj, depth: int = 6) -> list[str]:
    """Functions on the reference paths to ``obj`` that more things hold than Python can see: callbacks kept by a
    C++ signal connection, the usual root of a leaked window."""
    seen, frontier, found = {id(obj)}, [obj], set()
    for _ in range(depth):
        following = []
        for item in frontier:
            for ref in gc.get_referrers(item):
                if id(ref) in seen or ref is frontier or ref is following or type(ref).__name__ == "frame":
                    continue
                seen.add(id(ref))
                following.append(ref)
                code = getattr(ref, "__code__", None)
                if code is not None and sys.getrefcount(ref) - 2 > len(gc.get_referrers(ref)):
                    found.add(f"{ref.__qualname__} ({os.path.relpath(code.co_filename, REPO)}:{code.co_firstlineno})")
        frontier = following
    return sorted(found)


def holders(obj) -> list[str]:
    """What keeps ``obj`` alive, as far as Python can tell: the owners of the __dict__s and the closures that
    reference it (a closed window that is still referenced leaks its views, plots and snapshots)."""
    found = []
    for ref in gc.get_referrers(obj):
        if isinstance(ref, dict):
            owners = [o for o in gc.get_referrers(ref) if getattr(o, "__dict__", None) is ref]
            found += [f"{type(o).__module__}.{type(o).__qualname__}" for o in owners]
        elif type(ref).__name__ == "cell":
            found += [f"a closure in {f.__qualname__}" for f in gc.get_referrers(ref) if hasattr(f, "__code__")]
        elif type(ref).__name__ != "frame":
            found.append(type(ref).__qualname__)
    return sorted(set(found))


def test_open_train_close_100_times(qtbot, record_property, garbage_collected_on_the_gui_thread, watchdog):
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication.instance()
    baseline, seconds, peak_threads, closed, rounds = None, [], 0, [], []
    start = time.perf_counter()
    for cycle in range(CYCLES):
        label, source, size, scene = LABS[cycle % len(LABS)]
        watchdog()
        began = time.perf_counter()
        window = open_window(scene, source, size)
        snapshot = wait_for(qtbot, window, lambda s: s.step >= 1 and s.runs, timeout=60000)
        assert snapshot.step >= 1 and not snapshot.error, f"cycle {cycle} ({label}): {snapshot.error}"
        peak_threads = max(peak_threads, len(fieldlab_threads()))
        close_and_delete(window)
        assert window.session.worker is None, f"cycle {cycle} ({label}): the worker survived close()"
        closed.append((label, weakref.ref(window)))
        del window, snapshot
        seconds.append(time.perf_counter() - began)
        if (cycle + 1) % len(LABS) == 0:  # a round of every lab: check for leaks early, not after 100 windows
            gc.collect()
            rounds.append(round(rss_mb()))
            print(f"[lifecycle] {cycle + 1} cycles in {time.perf_counter() - start:.0f} s, RSS {rounds[-1]} MB",
                  flush=True)
            alive = [(label, ref()) for label, ref in closed if ref() is not None]
            assert not alive, (f"{len(alive)} of {len(closed)} closed windows are still referenced "
                               f"({', '.join(sorted({label for label, _ in alive}))}); held by: "
                               f"{holders(alive[0][1])}; callbacks held by Qt: {held_from_outside(alive[0][1])}")
            if baseline is None:  # after the first round: imports, caches and pools are warm
                baseline = rounds[-1]
            assert rounds[-1] - baseline < RSS_GROWTH_LIMIT_MB, f"resident memory (MB) after each round: {rounds}"
    total = time.perf_counter() - start

    deadline = time.monotonic() + 10
    while fieldlab_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    gc.collect()
    QtWidgets.QApplication.processEvents()
    final = rss_mb()
    leaked_threads = fieldlab_threads()
    visible = [type(w).__name__ for w in app.topLevelWidgets() if w.isVisible()]
    main_windows = [w for w in app.topLevelWidgets() if type(w).__name__ == "MainWindow"]
    growth = final - baseline if baseline is not None else 0.0
    per_lab = {lab[0]: round(sum(seconds[i::len(LABS)]) / len(seconds[i::len(LABS)]), 2)
               for i, lab in enumerate(LABS) if seconds[i::len(LABS)]}
    print(f"\n{CYCLES} open-train-close cycles in {total:.1f} s (mean {total / CYCLES:.2f} s; per lab {per_lab}); "
          f"RSS {baseline} MB after the first round -> {final:.0f} MB (growth {growth:+.0f} MB; after each round: "
          f"{rounds}); at most {peak_threads} fieldlab threads at once")
    for key, value in (("cycles", CYCLES), ("seconds", round(total, 1)), ("rss_after_warmup_mb", baseline or 0),
                       ("rss_final_mb", round(final)), ("rss_growth_mb", round(growth, 1)), ("rss_rounds_mb", rounds)):
        record_property(key, value)
    assert not leaked_threads, f"threads left running: {leaked_threads}"
    assert not visible, f"windows left visible: {visible}"
    assert not main_windows, f"{len(main_windows)} main windows were never deleted"
    assert growth < RSS_GROWTH_LIMIT_MB, f"resident memory grew by {growth:.0f} MB over {CYCLES} cycles"


def test_open_train_close_in_separate_processes(tmp_path):
    """Two processes (an image, and the 3D lab with its GL canvas) each open the app through ``fieldlab gui``,
    train a step, close and exit: every one exits 0 (scripts/open_train_close.py)."""
    result = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "open_train_close.py"), "2",
                             "--labs", "image,3d", "--timeout", "120"], cwd=REPO, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 of 2 exited 0" in result.stdout, result.stdout[-3000:]

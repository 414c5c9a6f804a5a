"""The GUI's handle on one training session: starts, restarts and stops the worker; polls its snapshots.

The GUI thread never touches a model or an optimiser: it only calls the worker's command methods and
reads snapshots. Signal files are decoded on a background thread too, so a huge photo never blocks.
"""
from __future__ import annotations

import concurrent.futures

from PySide6 import QtCore

from models.scenes import Scene
from models.signals import Signal, load_signal
from models.trainer_state import RunsState, restore_runs
from models.worker import Snapshot, TrainingWorker


class LiveSession(QtCore.QObject):
    """Owns at most one TrainingWorker; emits each new snapshot on the GUI thread."""

    snapshotReady = QtCore.Signal(object)
    signalLoaded = QtCore.Signal(object, str)
    """(Signal, source) once a background load succeeded."""
    signalFailed = QtCore.Signal(str)
    """One-line message when a background load failed."""

    def __init__(self, parent=None, poll_ms: int = 30):
        super().__init__(parent)
        self.worker: TrainingWorker | None = None
        self.scene: Scene | None = None
        self.signal: Signal | None = None
        self.last_snapshot: Snapshot | None = None
        self._loader = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="fieldlab-load")
        self._pending_load: tuple[concurrent.futures.Future, str] | None = None
        self._timer = QtCore.QTimer(self, interval=poll_ms)
        self._timer.timeout.connect(self._poll)
        self._timer.start()

    def start(self, signal: Signal, scene: Scene, running: bool = True, restore: RunsState | list | None = None) -> None:
        """Replace the current session (if any) by a fresh one. ``restore``: a saved state to continue from, or
        trainers already restored (an opened session); used by the first build only: a reset starts over."""
        self.stop()
        self.signal, self.scene = signal, scene
        pending = [restore] if restore is not None else []

        def build():
            # reads self.scene when it runs, so a reset after a live change (the learning rate) rebuilds with
            # what the panel shows
            if pending and isinstance(pending[0], list):
                return pending.pop()
            trainers = self.scene.build(signal)
            return restore_runs(trainers, pending.pop()) if pending else trainers

        self.worker = TrainingWorker(signal, build, start_running=running).start()

    def stop(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.stop()

    def shutdown(self) -> None:
        self._timer.stop()
        self.stop()
        self._loader.shutdown(wait=False, cancel_futures=True)

    def load_signal_async(self, source: str, size: int, target: str = "sdf") -> None:
        """Decode ``source`` off the GUI thread (``target``: a 3D shape's 'sdf' or 'occupancy'); the result arrives
        as signalLoaded or signalFailed."""
        self._pending_load = (self._loader.submit(load_signal, source, size, True, target), source)

    def _poll(self) -> None:
        if self._pending_load is not None and self._pending_load[0].done():
            future, source = self._pending_load
            self._pending_load = None
            try:
                self.signalLoaded.emit(future.result(), source)
            except Exception as exc:
                self.signalFailed.emit(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        if self.worker is None:
            return
        snapshot = self.worker.latest.take()
        if snapshot is not None:
            self.last_snapshot = snapshot
            self.snapshotReady.emit(snapshot)

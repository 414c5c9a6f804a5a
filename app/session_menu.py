"""File → Save / Open session, Recent sessions, autosave and crash recovery, and the window layout in QSettings.

Saving captures every run's state on the worker thread (between steps) and writes the file there, atomically
(models/session_file.py); opening reads the file, reloads the signal and rebuilds the runs on a background
thread, and only when all of that worked replaces the current session. A damaged, foreign or newer file gives
a message and leaves the session as it was.

Autosave: every few minutes while training, and on close, into the recovery folder. A lock file per running
window marks a session in progress; a lock left behind by a process that no longer runs means FieldLab did not
close properly, and the next start offers that autosave back.
"""
from __future__ import annotations

import concurrent.futures
import math
import os
import time

from PySide6 import QtCore, QtGui, QtWidgets

from models.session_file import SUFFIX, SessionError
from models.sessions import OpenedSession, SignalRef, open_session, restored_runs, save_runs_session
from models.trainer_state import capture_runs

from .features import menu_named

SESSION_FILTER = f"FieldLab sessions (*{SUFFIX})"
AUTOSAVE_MINUTES = 3
MAX_RECENT = 8


def config_dir() -> str:
    """Where settings and the recovery folder live (FIELDLAB_CONFIG_DIR overrides, e.g. for tests)."""
    override = os.environ.get("FIELDLAB_CONFIG_DIR")
    if override:
        return override
    base = QtCore.QStandardPaths.writableLocation(QtCore.QStandardPaths.AppConfigLocation)
    return base or os.path.join(os.path.expanduser("~"), ".config", "FieldLab")


def settings() -> QtCore.QSettings:
    return QtCore.QSettings(os.path.join(config_dir(), "fieldlab.ini"), QtCore.QSettings.IniFormat)


def recovery_dir() -> str:
    folder = os.path.join(config_dir(), "recovery")
    os.makedirs(folder, exist_ok=True)
    return folder


def autosave_path() -> str:
    return os.path.join(recovery_dir(), "autosave" + SUFFIX)


class SessionActions(QtCore.QObject):
    """The session menu entries of one window, its autosave timer and its lock file."""

    opened = QtCore.Signal(str)
    """A session file was opened (its path)."""
    saved = QtCore.Signal(str)
    """A session file was written (its path)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.path: str | None = None
        """The file this session was last saved to or opened from."""
        self.last_message = ""
        self.recovery_offer: QtWidgets.QMessageBox | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="fieldlab-session")
        self._pending: list[tuple[concurrent.futures.Future, callable]] = []
        self._poll = QtCore.QTimer(self, interval=50, timeout=self._check_pending)
        self._poll.start()
        self._autosave_step = -1
        self._autosave = QtCore.QTimer(self, interval=AUTOSAVE_MINUTES * 60_000, timeout=self.autosave)
        self._autosave.start()
        self._lock = os.path.join(recovery_dir(), f"running-{os.getpid()}-{id(self):x}.lock")
        stale = _stale_locks()
        with open(self._lock, "w", encoding="utf-8") as handle:
            handle.write(str(os.getpid()))
        window.installEventFilter(self)
        self._build_menu()
        _restore_layout(window)
        if stale and os.path.isfile(autosave_path()):
            QtCore.QTimer.singleShot(0, self._offer_recovery)
        for lock in stale:
            _remove(lock)

    # -- menu ------------------------------------------------------------------------------------------
    def _build_menu(self) -> None:
        menu = menu_named(self.window, "File")
        before = next((a for a in menu.actions() if a.text().replace("&", "").startswith("Save field")), None)
        actions = []
        open_action = QtGui.QAction("Open session…", self.window, shortcut=QtGui.QKeySequence("Ctrl+Shift+O"))
        open_action.triggered.connect(lambda: self.open_session())
        self.recent_menu = QtWidgets.QMenu("Recent sessions", self.window)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        save_action = QtGui.QAction("Save session", self.window, shortcut=QtGui.QKeySequence("Ctrl+Shift+S"))
        save_action.setToolTip("Everything: the signal (embedded when small), settings, every run's weights and "
                               "optimiser state, the metrics so far")
        save_action.triggered.connect(lambda: self.save_session(self.path))
        save_as = QtGui.QAction("Save session as…", self.window)
        save_as.triggered.connect(lambda: self.save_session(None))
        recover = QtGui.QAction("Open the last autosave", self.window)
        recover.triggered.connect(lambda: self.open_session(autosave_path()) if os.path.isfile(autosave_path())
                                  else self.window.statusBar().showMessage("no autosave yet", 5000))
        bundle = QtGui.QAction("Export reproducible bundle…", self.window)
        bundle.setToolTip("A folder with settings, seeds, weights, metrics (CSV/JSON), PNGs of the views, meshes, a "
                          "training timelapse, and how to rebuild it headless ('fieldlab rebuild')")
        bundle.triggered.connect(lambda: self.export_bundle())
        actions = [open_action, self.recent_menu.menuAction(), save_action, save_as, recover, bundle]
        for action in actions:
            menu.insertAction(before, action) if before is not None else menu.addAction(action)
        separator = QtGui.QAction(self.window)
        separator.setSeparator(True)
        menu.insertAction(before, separator) if before is not None else menu.addAction(separator)
        self.actions = {"open": open_action, "save": save_action, "save_as": save_as, "recover": recover}

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        paths = [p for p in recent_sessions() if os.path.isfile(p)]
        for path in paths:
            self.recent_menu.addAction(os.path.basename(path), lambda p=path: self.open_session(p)).setToolTip(path)
        if not paths:
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    # -- saving ----------------------------------------------------------------------------------------
    def save_session(self, path: str | None = None, wait: float = 0.0) -> concurrent.futures.Future | None:
        """Save to ``path`` (asks when None). The capture and write run on the worker, between steps; ``wait``
        seconds blocks until done (closing). Returns a future of (ok, message), or None when nothing to save."""
        window = self.window
        worker, scene, signal = window.session.worker, window.session.scene, window.session.signal
        if worker is None or scene is None or signal is None or not worker.alive:
            return None
        if path is None:
            from .dialogs import ask_save_path

            path = ask_save_path(window, "Save session", SESSION_FILTER)
            if path is None:
                return None
        if not path.endswith(SUFFIX) and path != autosave_path():
            path += SUFFIX
        ref, view = self.signal_ref(), self.view_settings()
        future: concurrent.futures.Future = concurrent.futures.Future()

        curves = _psnr_curves(window.session.last_snapshot)

        def save(trainers) -> str:
            try:
                state = capture_runs(trainers)
                for run, curve in zip(state.runs, curves):  # the views' PSNR curve, unless the run keeps its own
                    if curve is not None and not run["psnr_steps"]:
                        run["psnr_steps"], run["psnr_values"] = curve
                size = save_runs_session(path, scene, ref, signal, state, view)
            except Exception as exc:  # reported to the user; the session goes on
                message = f"could not save the session: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                future.set_result((False, message))
                return message
            message = f"saved the session to {path} ({size / 1e6:.1f} MB)"
            future.set_result((True, message))
            return "" if path == autosave_path() else message

        worker.call(save, edits=False)
        if wait:
            try:
                self._saved(path, *future.result(timeout=wait))
            except concurrent.futures.TimeoutError:
                pass
            return future
        self._pending.append((future, lambda result: self._saved(path, *result)))
        return future

    def export_bundle(self, folder: str | None = None) -> concurrent.futures.Future | None:
        """Write a reproducible bundle (app/bundle.py) into ``folder`` (asks for a parent folder when None)."""
        window = self.window
        worker, scene, signal = window.session.worker, window.session.scene, window.session.signal
        if worker is None or scene is None or signal is None or not worker.alive:
            return None
        if folder is None:
            parent = QtWidgets.QFileDialog.getExistingDirectory(window, "Export a reproducible bundle into…",
                                                                _last_folder())
            if not parent:
                return None
            folder = os.path.join(parent, time.strftime("fieldlab-bundle-%Y%m%d-%H%M%S"))
        from .bundle import write_bundle

        buffer = QtCore.QBuffer()
        buffer.open(QtCore.QIODevice.WriteOnly)
        window.grab().save(buffer, "PNG")
        window_png = bytes(buffer.data())
        timelapse = getattr(window, "timelapse", None)
        frames = timelapse.frames() if timelapse is not None else None
        snapshot, ref, view = window.session.last_snapshot, self.signal_ref(), self.view_settings()
        future: concurrent.futures.Future = concurrent.futures.Future()

        def export(trainers) -> str:
            try:
                message = write_bundle(folder, trainers, scene, ref, signal, snapshot=snapshot,
                                       edits=worker.timeline.edit_count, timelapse_frames=frames,
                                       window_png=window_png, view=view)
            except Exception as exc:  # reported; the session goes on
                message = f"could not write the bundle: {type(exc).__name__}: {exc}"
                future.set_result((False, message))
                return message
            future.set_result((True, message))
            return message

        worker.call(export, edits=False)
        self._pending.append((future, lambda result: self._bundled(*result)))
        window.statusBar().showMessage(f"writing a bundle to {folder}…", 5000)
        return future

    def _bundled(self, ok: bool, message: str) -> None:
        self.last_message = message
        if not ok:
            self.window.show_error("Could not write the bundle", message)

    def _saved(self, path: str, ok: bool, message: str) -> None:
        self.last_message = message
        if path == autosave_path():
            return
        if not ok:
            self.window.show_error("Could not save the session", message)
            return
        self.path = path
        _add_recent(path)
        self.window.setWindowTitle(f"FieldLab — {os.path.basename(path)}")
        self.saved.emit(path)

    def autosave(self, wait: float = 0.0) -> concurrent.futures.Future | None:
        """Write the recovery copy unless nothing trained since the last one."""
        snapshot = self.window.session.last_snapshot
        step = snapshot.step if snapshot is not None else -1
        if step == self._autosave_step and not wait:
            return None
        self._autosave_step = step
        return self.save_session(autosave_path(), wait=wait)

    def signal_ref(self) -> SignalRef:
        window = self.window
        signal = window.session.signal
        size = None if signal is not None and signal.kind in ("sdf", "sdf-time") else window.controls.working_size()
        target = window.controls.target.currentData() or "sdf"
        return SignalRef(window.source, size, target)

    def view_settings(self) -> dict:
        window = self.window
        view = {"running": bool(window.controls.play.isChecked())}
        if window.session.signal is not None and window.session.signal.time is not None:
            view["time"] = float(window.time_view.settings.t)
        return view

    # -- opening ---------------------------------------------------------------------------------------
    def open_session(self, path: str | None = None) -> concurrent.futures.Future | None:
        """Open ``path`` (asks when None) on a background thread; the current session stays until it worked."""
        if path is None:
            path, _ = QtWidgets.QFileDialog.getOpenFileName(self.window, "Open session", _last_folder(), SESSION_FILTER)
            if not path:
                return None
        self.window.statusBar().showMessage(f"Opening {os.path.basename(path)}…")

        def load():
            opened = open_session(path)
            return opened, restored_runs(opened)

        future = self._executor.submit(load)
        self._pending.append((future, lambda result, p=path: self._apply_opened(p, *result)))
        return future

    def _apply_opened(self, path: str, opened: OpenedSession, trainers) -> None:
        window = self.window
        size = opened.signal_ref.size or window.controls.working_size()
        window.controls.apply(opened.scene, size)
        original = opened.signal_ref.source
        window.source = original if _exists_or_sample(original) else opened.loaded_from
        window.controls.set_source(window.source, label=opened.signal.name)
        running = bool(opened.view.get("running", False))
        window.start_session(opened.signal, opened.scene, running=running, restore=trainers)
        if "time" in opened.view and opened.signal.time is not None:
            window.time_view.bar.set_time(float(opened.view["time"]))
        if path != autosave_path():
            self.path = path
            _add_recent(path)
            window.setWindowTitle(f"FieldLab — {os.path.basename(path)}")
        self.last_message = f"opened {os.path.basename(path)} at step {opened.state.step}"
        window.statusBar().showMessage(self.last_message, 8000)
        self.opened.emit(path)

    def _check_pending(self) -> None:
        for future, done in list(self._pending):
            if not future.done():
                continue
            self._pending.remove((future, done))
            try:
                result = future.result()
            except (SessionError, ValueError, OSError) as exc:
                self.last_message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self.window.show_error("Could not open the session", self.last_message)
                continue
            except Exception as exc:  # anything else: still a message, never a crash
                self.last_message = f"{type(exc).__name__}: {exc}"
                self.window.show_error("Could not open the session", self.last_message)
                continue
            done(result)

    # -- recovery and closing --------------------------------------------------------------------------
    def _offer_recovery(self) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(autosave_path())))
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Question, "Recover the last session?",
                                    f"FieldLab did not close properly last time. Open the session autosaved at {stamp}?",
                                    QtWidgets.QMessageBox.Open | QtWidgets.QMessageBox.Discard, self.window)
        box.setModal(False)
        box.finished.connect(lambda result: self._recovery_answer(result == QtWidgets.QMessageBox.Open))
        self.recovery_offer = box
        box.show()

    def _recovery_answer(self, accept: bool) -> None:
        self.recovery_offer = None
        if accept:
            self.open_session(autosave_path())

    def eventFilter(self, watched, event) -> bool:
        if watched is self.window and event.type() == QtCore.QEvent.Close:
            self.shutdown()
        return False

    def shutdown(self) -> None:
        """On close: a last autosave (waiting a few seconds at most), layout to QSettings, lock removed."""
        if self._poll.isActive():
            self._poll.stop()
            self._autosave.stop()
            try:
                self.autosave(wait=10.0)
            finally:
                _save_layout(self.window)
                self._executor.shutdown(wait=False, cancel_futures=True)
                _remove(self._lock)


def _psnr_curves(snapshot) -> list:
    """Per run, the (steps, values) of the PSNR curve the views drew (None where the lab keeps another record)."""
    if snapshot is None:
        return []
    curves = []
    for run in snapshot.runs:
        history = run.psnr_history
        if run.psnr_seconds is None or len(history) == 0:
            curves.append(None)
            continue
        finite = [(int(s), float(v)) for s, v in history if math.isfinite(v)]
        curves.append(([s for s, _ in finite], [v for _, v in finite]))
    return curves


def _exists_or_sample(source: str) -> bool:
    return os.path.exists(source) or (os.sep not in source and not os.path.splitext(source)[1])


def recent_sessions() -> list[str]:
    value = settings().value("recent_sessions", [])
    return [str(v) for v in (value if isinstance(value, list) else [value] if value else [])]


def _add_recent(path: str) -> None:
    path = os.path.abspath(path)
    paths = [path] + [p for p in recent_sessions() if p != path]
    store = settings()
    store.setValue("recent_sessions", paths[:MAX_RECENT])
    store.setValue("last_folder", os.path.dirname(path))


def _last_folder() -> str:
    return str(settings().value("last_folder", os.getcwd()))


def _stale_locks() -> list[str]:
    """Lock files of FieldLab processes that are gone (they crashed or were killed)."""
    stale = []
    for name in os.listdir(recovery_dir()):
        if not (name.startswith("running-") and name.endswith(".lock")):
            continue
        try:
            pid = int(name.split("-")[1])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            stale.append(os.path.join(recovery_dir(), name))
        except PermissionError:
            pass  # another user's live process
    return stale


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _save_layout(window) -> None:
    store = settings()
    store.setValue("window/geometry", window.saveGeometry())
    store.setValue("window/state", window.saveState())
    for i, splitter in enumerate(window.findChildren(QtWidgets.QSplitter)):
        store.setValue(f"window/splitter{i}", splitter.saveState())


def _restore_layout(window) -> None:
    store = settings()
    geometry = store.value("window/geometry")
    if isinstance(geometry, QtCore.QByteArray) and not geometry.isEmpty():
        window.restoreGeometry(geometry)
    state = store.value("window/state")
    if isinstance(state, QtCore.QByteArray) and not state.isEmpty():
        window.restoreState(state)
    for i, splitter in enumerate(window.findChildren(QtWidgets.QSplitter)):
        saved = store.value(f"window/splitter{i}")
        if isinstance(saved, QtCore.QByteArray) and not saved.isEmpty():
            splitter.restoreState(saved)


def install(window) -> None:
    window.session_actions = SessionActions(window)

"""File → Export: images re-rendered at any resolution, the width slider's sweep, the time slider and the training
progress as MP4/GIF, and the data of any plot as CSV (also from every plot's right-click menu).

Images and sweeps are rendered from the field on the worker thread (``TrainingWorker.call``), for the run, width
and time the current view shows; their outcome arrives as the next snapshot's message in the status bar. The
timelapse is recorded on the GUI thread from every snapshot (models.exports.TrainingTimelapse: a few array copies
each) and starts over with every new session or reset.
"""
from __future__ import annotations

import html
import os
import re
import time

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from models.exports import TrainingTimelapse, plot_csv, render_trainer_image, width_sweep_frames, write_png
from models.mesh_io import ExportError, write_animation

from . import dialogs
from .features import menu_named
from .time_window import export_sequence

PNG_FILTER = "PNG image (*.png)"
CSV_FILTER = "CSV table (*.csv)"
CSV_ACTION = "Export data as CSV…"
IMAGE_SIZES = (64, 8192)
"""Longer side of an exported image, in pixels (default 1024)."""
SWEEP_FPS = 1.0
"""Width sweep animations show each width for a second."""
TIMELAPSE_FPS = 12.0
PLOT_SCAN_SECONDS = 2.0
"""How often snapshots trigger a look for plots created since (they get the CSV action in their menu)."""


def install(window) -> "WindowExports":
    """Add File → Export, the plots' CSV action and the training timelapse to ``window``."""
    exports = WindowExports(window)
    window.exports = exports
    window.timelapse = exports.timelapse
    return exports


def ask_folder(parent, title: str) -> str | None:
    """A folder to write into (None if cancelled)."""
    folder = QtWidgets.QFileDialog.getExistingDirectory(parent, title, os.getcwd())
    return folder or None


def plot_items(window) -> list[pg.PlotItem]:
    """Every pyqtgraph PlotItem in the window: PlotWidgets' and those inside GraphicsLayoutWidgets."""
    found, seen = [], set()
    for view in window.findChildren(pg.GraphicsView):
        scene = view.scene()
        if scene is None:
            continue
        for item in scene.items():
            if isinstance(item, pg.PlotItem) and id(item) not in seen:
                seen.add(id(item))
                found.append(item)
    return found


def plot_title(item: pg.PlotItem) -> str:
    """The plot's title as plain text ('' if it has none)."""
    text = re.sub(r"<[^>]+>", " ", item.titleLabel.text or "")
    return " ".join(html.unescape(text).split())


def plot_series(item: pg.PlotItem) -> list[tuple[str, object, object]]:
    """(name, x, y) of every data item of a plot that holds points, named by its legend label ('curve N' if none).
    The data is what was given to the plot (before a log axis maps it)."""
    series = []
    for index, data in enumerate(item.listDataItems()):
        x, y = data.getOriginalDataset() if hasattr(data, "getOriginalDataset") else data.getData()
        if x is None or y is None or len(x) == 0:
            continue
        series.append((data.name() or f"curve {index + 1}", x, y))
    return series


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "plot"


def _guarded(what: str, job):
    """Run ``job()`` (on the worker) and turn an export failure into a status-bar message instead of an error dialog."""
    try:
        return job()
    except (ExportError, ValueError, OSError, RuntimeError, MemoryError) as exc:
        return f"could not export the {what}: {exc}"


class WindowExports(QtCore.QObject):
    """The window's export actions; ``timelapse`` records its training progress."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.timelapse = TrainingTimelapse()
        self.last_message = ""
        """The last thing an export said in the status bar (tests read it)."""
        self._worker = None
        self._last_scan = 0.0
        self.menu = self._build_menu()
        window.session.snapshotReady.connect(self._record)
        self.hook_plots()

    # -- menus ---------------------------------------------------------------------------------------------------
    def _build_menu(self) -> QtWidgets.QMenu:
        file_menu = menu_named(self.window, "File")
        menu = QtWidgets.QMenu("&Export", file_menu)
        self.image_action = menu.addAction("Image at any resolution…", self.export_image)
        self.image_action.setToolTip("Re-render the field shown (run, width, time) on a grid of any size and save a PNG")
        self.residual_action = menu.addAction("Residual at any resolution (growth lab)…",
                                              lambda: self.export_image(residual=True))
        self.sweep_action = menu.addAction("Width sweep animation…", self.export_width_sweep)
        self.time_action = menu.addAction("Time slider animation…", self.export_time_sequence)
        self.timelapse_action = menu.addAction("Training timelapse…", self.export_timelapse)
        menu.addSeparator()
        self.all_plots_action = menu.addAction("All plot data as CSV…", self.export_all_plots)
        menu.aboutToShow.connect(self.hook_plots)
        actions = file_menu.actions()
        quit_index = next((i for i, a in enumerate(actions) if a.text().replace("&", "") == "Quit"), None)
        if quit_index is None:
            file_menu.addMenu(menu)
        else:  # before the separator that sets Quit apart, if there is one
            before = quit_index - 1 if quit_index and actions[quit_index - 1].isSeparator() else quit_index
            file_menu.insertMenu(actions[before], menu)
        return menu

    def hook_plots(self) -> int:
        """Give every plot (also ones created since the last look) the CSV action in its right-click menu."""
        added = 0
        for item in plot_items(self.window):
            menu = item.vb.menu if item.vb is not None else None
            if menu is None or getattr(item, "_fieldlab_csv_action", None) is not None:
                continue
            menu.addSeparator()
            # owned by the window: pyqtgraph's plot menus have no parent, so an action owned by one (and the
            # connection holding this window) would outlive the window and keep it alive
            action = QtGui.QAction(CSV_ACTION, self.window)
            menu.addAction(action)
            action.triggered.connect(lambda _checked=False, plot=item: self.export_plot(plot))
            item._fieldlab_csv_action = action
            added += 1
        return added

    def _say(self, text: str) -> None:
        self.last_message = text
        self.window.statusBar().showMessage(text, 15000)

    # -- the timelapse -------------------------------------------------------------------------------------------
    def _record(self, snapshot) -> None:
        worker = self.window.session.worker
        if worker is not self._worker:  # a new session: a new record
            self._worker = worker
            self.timelapse.clear()
        self.timelapse.record(snapshot)
        now = time.monotonic()
        if now - self._last_scan > PLOT_SCAN_SECONDS:
            self._last_scan = now
            self.hook_plots()

    # -- what the view shows -------------------------------------------------------------------------------------
    def _image_session(self) -> bool:
        """True if the session's signal can be exported as an image; says why not otherwise."""
        session = self.window.session
        if session.worker is None or session.signal is None:
            self._say("nothing to export: no session is running")
            return False
        kind = session.signal.kind
        if kind == "curve":
            self._say("a 1D curve is not an image: right-click a plot → Export data as CSV…, or File → Export → "
                      "All plot data as CSV…")
            return False
        if kind in ("sdf", "sdf-time"):
            self._say("a 3D shape is not an image: use Export mesh… or Turntable… in the 3D view")
            return False
        return True

    def _growth_view(self):
        view = self.window.views.currentWidget()
        return view if hasattr(view, "slider") and hasattr(view.slider, "index") else None

    def _ask_run(self, title: str) -> int | None:
        """The run the current view shows; asks when it shows several (None if cancelled)."""
        window = self.window
        view = window.views.currentWidget()
        if self._growth_view() is not None:
            return 0  # the width slider belongs to the growing run
        if hasattr(view, "run_index"):
            return int(view.run_index)
        snapshot = window.session.last_snapshot
        labels = [run.label for run in snapshot.runs] if snapshot is not None else []
        if len(labels) < 2:
            return 0
        label, ok = QtWidgets.QInputDialog.getItem(window, title, "Which run:", labels, 0, False)
        return labels.index(label) if ok and label in labels else None

    def _shown_width(self) -> int | None:
        """The width the growth view's slider is on (None outside the growth lab)."""
        view = self._growth_view()
        snapshot = self.window.session.last_snapshot
        if view is None or snapshot is None or not snapshot.runs or not snapshot.runs[0].widths:
            return None
        widths = snapshot.runs[0].widths
        return widths[min(view.slider.index, len(widths) - 1)].width

    def _ask_size(self, title: str, default: int, maximum: int) -> int | None:
        value, ok = QtWidgets.QInputDialog.getInt(self.window, title, f"Longer side in pixels ({IMAGE_SIZES[0]}–{maximum}):",
                                                  default, IMAGE_SIZES[0], maximum, 64)
        return int(value) if ok else None

    # -- the exports ---------------------------------------------------------------------------------------------
    def export_image(self, residual: bool = False, size: int | None = None, path: str | None = None) -> bool:
        """Re-render the field the view shows (its run, the slider's width, the time slider's t) at ``size`` px into
        a PNG, on the worker; asks what is not given. True if the render was queued."""
        window = self.window
        if not self._image_session():
            return False
        width = self._shown_width()
        if residual and width is None:
            self._say("the residual export needs the spectral growth lab (Presets → Spectral growth)")
            return False
        title = "Residual at any resolution" if residual else "Image at any resolution"
        run = self._ask_run(title)
        if run is None:
            return False
        size = size or self._ask_size(title, 1024, IMAGE_SIZES[1])
        if size is None:
            return False
        path = path or dialogs.ask_save_path(window, title, PNG_FILTER)
        if not path:
            return False
        if os.path.splitext(path)[1].lower() != ".png":
            path += ".png"
        t = window.time_view.settings.t if window.session.signal.time is not None else None
        where = (f" at width {width}" if width is not None else "") + (f" at t = {t:.3f}" if t is not None else "")
        what = "residual" if residual else "image"

        def render(trainers) -> str:
            label, trainer = trainers[min(run, len(trainers) - 1)]
            image = render_trainer_image(trainer, size, width=width, time=t, residual=residual)
            return f"{label}{where}{' residual' if residual else ''}: " + write_png(path, image)

        window.session.worker.call(lambda trainers: _guarded(what, lambda: render(trainers)), edits=False)
        self._say(f"rendering the {size} px {what}{where} to {path}…")
        return True

    def export_width_sweep(self, size: int | None = None, path: str | None = None) -> bool:
        """Every width of the growth lab's field, one frame each, as an MP4 or GIF (rendered on the worker)."""
        window = self.window
        session = window.session
        if session.worker is None or session.scene is None or session.scene.preset != "growth" or \
                session.signal is None or session.signal.kind != "image":
            self._say("the width sweep animation needs the spectral growth lab on an image (Presets → Spectral growth)")
            return False
        size = size or self._ask_size("Width sweep animation", 512, 4096)
        if size is None:
            return False
        path = path or dialogs.ask_save_path(window, "Width sweep animation", dialogs.ANIMATION_FILTER)
        if not path:
            return False

        def render(trainers) -> str:
            label, trainer = trainers[0]
            return f"{label}: width sweep " + write_animation(path, width_sweep_frames(trainer, size), SWEEP_FPS)

        session.worker.call(lambda trainers: _guarded("width sweep", lambda: render(trainers)), edits=False)
        self._say(f"rendering every width at {size} px to {path}…")
        return True

    def export_time_sequence(self, path: str | None = None) -> bool:
        """The time slider swept over every frame of a video field, as MP4 or GIF (app/time_window.export_sequence)."""
        window = self.window
        signal = window.session.signal
        if window.session.worker is None or signal is None or signal.kind != "video":
            self._say("the time slider animation needs the time lab on a video (Presets → Time); for a moving shape "
                      "use Turntable… in the 3D view")
            return False
        run = self._ask_run("Time slider animation")
        if run is None:
            return False
        path = path or dialogs.ask_save_path(window, "Time slider animation", dialogs.ANIMATION_FILTER)
        if not path:
            return False
        export_sequence(window, run, path=path)
        self.last_message = f"rendering the sequence to {path}…"
        return True

    def export_timelapse(self, path: str | None = None, fps: float = TIMELAPSE_FPS) -> bool:
        """What the timelapse recorded so far, as MP4 or GIF (written on the worker when there is one)."""
        frames = self.timelapse.frames()
        if not frames:
            self._say("no training progress recorded yet: train a few steps first")
            return False
        path = path or dialogs.ask_save_path(self.window, "Training timelapse", dialogs.ANIMATION_FILTER)
        if not path:
            return False

        def write() -> str:
            return "training timelapse: " + write_animation(path, frames, fps)

        worker = self.window.session.worker
        if worker is not None:
            worker.call(lambda _trainers: _guarded("timelapse", write), edits=False)
            self._say(f"writing {len(frames)} frames of training progress to {path}…")
        else:
            self._say(_guarded("timelapse", write))
        return True

    def export_plot(self, item: pg.PlotItem, path: str | None = None) -> bool:
        """One plot's curves (x, y by legend label) into a CSV."""
        series = plot_series(item)
        title = plot_title(item) or "plot"
        if not series:
            self._say(f"'{title}' has no data yet")
            return False
        path = path or dialogs.ask_save_path(self.window, f"Export data of '{title}'", CSV_FILTER)
        if not path:
            return False
        if os.path.splitext(path)[1].lower() != ".csv":
            path += ".csv"
        try:
            self._say(f"{title}: " + plot_csv(path, series))
        except (ExportError, ValueError) as exc:
            self._say(f"could not export the plot data: {exc}")
            return False
        return True

    def export_all_plots(self, folder: str | None = None) -> list[str]:
        """Every visible plot's curves into ``folder``, one CSV per plot named after its title; the files written."""
        self.hook_plots()
        visible = [item for item in plot_items(self.window)
                   if item.isVisible() and any(view.isVisible() for view in item.scene().views()) and plot_series(item)]
        if not visible:
            self._say("no plot shows any data yet")
            return []
        folder = folder or ask_folder(self.window, "Write every plot's data into folder")
        if not folder:
            return []
        written, used = [], set()
        try:
            for index, item in enumerate(visible):
                name = _slug(plot_title(item) or f"plot {index + 1}")
                stem, count = name, 2
                while name in used:
                    name, count = f"{stem}-{count}", count + 1
                used.add(name)
                path = os.path.join(folder, name + ".csv")
                plot_csv(path, plot_series(item))
                written.append(path)
        except (ExportError, ValueError) as exc:
            self._say(f"could not export the plot data: {exc}")
            return written
        self._say(f"wrote the data of {len(written)} plots to {folder}")
        return written

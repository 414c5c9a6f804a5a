"""FieldLab's main window: the image lab (one field, a side-by-side comparison, or a 1D curve)."""
from __future__ import annotations

import math
import os

from PySide6 import QtCore, QtGui, QtWidgets

from models.scenes import Scene
from models.signals import Signal
from models.worker import Snapshot

from .controls import ControlPanel
from .crop_views import CropLabView
from .features import install_features
from .dialogs import ANIMATION_FILTER, MESH_FILTER, ask_save_path
from .growth_views import CurveGrowthView, GrowthLabView
from .headless import save_runs
from .sdf_views import SdfLabView
from .session import LiveSession
from .sweep_views import SweepLabView
from .time_views import TimeLabView
from .presets_menu import PresetActions
from .time_window import export_sequence, family_defaults, signal_family
from .views import ComparisonView, CurveLabView, ImageLabView, MetricsPlots

FILE_FILTER = ("Images, meshes and videos (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.obj *.ply *.stl *.glb *.gltf *.off "
               "*.mp4 *.gif *.avi *.mov *.webm *.mkv *.m4v);;Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp);;"
               "Meshes (*.obj *.ply *.stl *.glb *.gltf *.off);;Videos (*.mp4 *.gif *.avi *.mov *.webm *.mkv *.m4v);;"
               "All files (*)")


class MainWindow(PresetActions, QtWidgets.QMainWindow):
    def __init__(self, signal: Signal, scene: Scene, size: int, running: bool = True, source: str = "",
                 restore=None):
        super().__init__()
        self.source = source or signal.name
        """What the current signal was loaded from (sample name or file path): reloaded when the size changes."""
        self.setWindowTitle("FieldLab")
        self.resize(1360, 900)
        self.setAcceptDrops(True)
        self.session = LiveSession(self)
        self.controls = ControlPanel()
        self.image_view = ImageLabView()
        self.comparison_view = ComparisonView()
        self.curve_view = CurveLabView()
        self.growth_view = GrowthLabView()
        self.curve_growth_view = CurveGrowthView()
        self.crop_view = CropLabView()
        self.sweep_view = SweepLabView()
        self.sdf_view = SdfLabView()
        self.time_view = TimeLabView()
        self.metrics = MetricsPlots()
        self.views = CurrentPageStack()
        for view in (self.image_view, self.comparison_view, self.curve_view, self.growth_view, self.curve_growth_view,
                     self.crop_view, self.sweep_view, self.sdf_view, self.time_view):
            self.views.addWidget(view)
        self.note = QtWidgets.QLabel()
        self.note.setStyleSheet("background:#fff4c2; border:1px solid #e0c060; padding:4px;")
        self.note.setWordWrap(True)
        self.note.hide()

        right = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        top = QtWidgets.QWidget()
        top_layout = QtWidgets.QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.note)
        top_layout.addWidget(self.views, 1)
        right.addWidget(top)
        right.addWidget(self.metrics)
        right.setSizes([640, 240])
        scroll = QtWidgets.QScrollArea(widgetResizable=True)
        scroll.setWidget(self.controls)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.controls.sizeHint().width() + 24)
        splitter = QtWidgets.QSplitter(QtCore.Qt.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([300, 1060])
        self.setCentralWidget(splitter)
        self._build_status_bar()
        self._build_menus()

        self.last_error = ""
        self._closed = False
        self._dialogs: list[QtWidgets.QMessageBox] = []
        self.controls.sceneChanged.connect(self.restart)
        self.controls.sourceChanged.connect(self._source_picked)
        self.controls.openRequested.connect(self.open_file_dialog)
        self.controls.lrChanged.connect(self._lr_changed)
        self.controls.playToggled.connect(self._play_toggled)
        self.controls.stepRequested.connect(self.step_once)
        self.controls.resetRequested.connect(self.reset)
        self.controls.growNowRequested.connect(self.grow_now)
        self.controls.addStageRequested.connect(self.add_stage)
        self.session.snapshotReady.connect(self.render_snapshot)
        self.controls.cropAction.connect(self.crop_action)
        self.crop_view.cropRequested.connect(lambda run, parts: self._edit(run, "crop", parts))
        self.crop_view.restoreRequested.connect(lambda run, parts: self._edit(run, "restore", parts))
        for view in (self.image_view, self.growth_view, self.crop_view):
            view.pixelReport.connect(lambda text: self.statusBar().showMessage(text) if text
                                     else self.statusBar().clearMessage())
        self.sweep_view.openRequested.connect(self.open_sweep_member)
        self.sdf_view.settingsChanged.connect(self._sdf_settings_changed)
        self.sdf_view.extractRequested.connect(self._extract_still)
        self.sdf_view.exportRequested.connect(self.export_mesh)
        self.sdf_view.turntableRequested.connect(self.export_turntable)
        self.sdf_view.partitionClicked.connect(self._partition_clicked_3d)
        self.time_view.settingsChanged.connect(self._time_settings_changed)
        self.time_view.sequenceRequested.connect(lambda run: export_sequence(self, run))
        self.image_view.backRequested.connect(self.back_to_sweep)
        self.session.signalLoaded.connect(self._signal_loaded)
        self.session.signalFailed.connect(lambda message: self.show_error("Could not open the signal", message))

        install_features(self)
        self.controls.apply(scene, size)
        self.controls.set_source(self.source, label=signal.name)
        self.controls.set_running(running)
        self.start_session(signal, scene, running, restore)

    # -- layout ----------------------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_labels = {}
        for key in ("device", "rate", "params", "step", "psnr"):
            label = QtWidgets.QLabel("–")
            label.setMinimumWidth(90)
            bar.addPermanentWidget(label)
            self.status_labels[key] = label

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_action = file_menu.addAction("&Open image, mesh or video…", self.open_file_dialog)
        file_menu.addAction("Open a folder of frames or meshes…", self.open_folder_dialog)
        open_action.setShortcut(QtGui.QKeySequence.Open)
        save_action = file_menu.addAction("&Save field…", self.save_fields)
        save_action.setShortcut(QtGui.QKeySequence.Save)
        save_action.setToolTip("Write weights (safetensors + JSON), metrics.json and reconstruction.png, "
                               "readable by 'fieldlab render'")
        file_menu.addSeparator()
        quit_action = file_menu.addAction("&Quit", self.close)
        quit_action.setShortcut(QtGui.QKeySequence.Quit)
        train_menu = self.menuBar().addMenu("&Training")
        self.play_action = train_menu.addAction("Play / pause", self.controls.play.toggle)
        self.play_action.setShortcut(QtGui.QKeySequence(QtCore.Qt.Key_Space))
        step_action = train_menu.addAction("Single step", self.step_once)
        step_action.setShortcut(QtGui.QKeySequence("Ctrl+."))
        reset_action = train_menu.addAction("Reset (same seed)", self.reset)
        reset_action.setShortcut(QtGui.QKeySequence("Ctrl+R"))
        self._build_presets_menu(self.menuBar().addMenu("&Presets"))
        growth_menu = self.menuBar().addMenu("&Growth")
        grow_action = growth_menu.addAction("Grow now (end the stage in training)", self.grow_now)
        grow_action.setShortcut(QtGui.QKeySequence("Ctrl+G"))
        narrower = growth_menu.addAction("Narrower width", lambda: self._step_width(-1))
        narrower.setShortcut(QtGui.QKeySequence("["))
        wider = growth_menu.addAction("Wider width", lambda: self._step_width(+1))
        wider.setShortcut(QtGui.QKeySequence("]"))
        crop_menu = self.menuBar().addMenu("&Crop")
        for text, key, shortcut in (("Undo crop", "undo", QtGui.QKeySequence.Undo),
                                    ("Redo crop", "redo", QtGui.QKeySequence("Ctrl+Shift+Z")),
                                    ("Crop selection", "crop-selection", QtGui.QKeySequence(QtCore.Qt.Key_Delete)),
                                    ("Keep only the selection", "keep-selection", None),
                                    ("Restore every cropped partition", "restore-all", None),
                                    ("Extend now (add the missing partitions)", "extend", QtGui.QKeySequence("Ctrl+E"))):
            action = crop_menu.addAction(text, lambda k=key: self.crop_action(k))
            if shortcut is not None:
                action.setShortcut(shortcut)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction("About FieldLab", self._about)

    # -- session lifecycle -----------------------------------------------------------------------------
    def start_session(self, signal: Signal, scene: Scene, running: bool = True, restore=None) -> None:
        """Start training ``scene`` on ``signal`` (``restore``: a saved models.trainer_state.RunsState to continue)."""
        if self._closed:
            return
        if scene.preset == "crop" and signal.kind == "sdf" and scene.crop.extend:
            self.show_error("Not available in 3D", "the extension experiment pre-trains on part of an image; "
                            "in 3D, crop partitions and restore them")
            return
        if (scene.preset == "time") != (signal.time is not None):
            self.show_error("The time lab needs a video or a moving shape" if signal.time is None else "A temporal signal",
                            "open a video (MP4, GIF, a folder of frames) or a moving shape (Presets → Time)"
                            if signal.time is None else "videos and moving shapes train in the time lab (Presets → Time)")
            return
        allowed = ("image", "sdf") if scene.preset == "crop" else ("image",)
        if scene.preset in ("crop", "sweep") and signal.kind not in allowed:
            lab = "crop & extend lab partitions" if scene.preset == "crop" else "FINER++ lab compares"
            self.show_error("This lab needs an image", f"the {lab} images; open an image")
            return
        if scene.preset == "growth" and signal.kind == "sdf" and scene.growth.spatial:
            self.show_error("Not available in 3D", "spatial growing reveals image columns; turn it off for a 3D shape")
            return
        self.image_view.show_member(None)
        # the sweep and 3D views plot their own metrics
        self.metrics.setVisible(scene.preset not in ("sweep", "time") and signal.kind != "sdf")
        if signal.time is not None:
            self.views.setCurrentWidget(self.time_view)
        elif signal.kind == "sdf":
            self.views.setCurrentWidget(self.sdf_view)
            self.sdf_view.slider.follow.setChecked(True)
        elif scene.preset == "sweep":
            self.views.setCurrentWidget(self.sweep_view)
        elif scene.preset == "crop":
            self.views.setCurrentWidget(self.crop_view)
            self.crop_view.plots.extension_mode = scene.crop.extend
        elif scene.preset == "growth":
            self.views.setCurrentWidget(self.curve_growth_view if signal.kind == "curve" else self.growth_view)
            current = self.views.currentWidget()
            current.slider.follow.setChecked(True)
        elif signal.kind == "curve":
            self.views.setCurrentWidget(self.curve_view)
        elif scene.preset == "spectral-bias":
            self.views.setCurrentWidget(self.comparison_view)
        else:
            self.views.setCurrentWidget(self.image_view)
        self.session.start(signal, scene, running, restore)
        self.controls.size.setEnabled(signal.kind not in ("sdf", "sdf-time"))  # the working size is an image's
        self.controls.target.setEnabled(signal.kind in ("sdf", "sdf-time"))
        if signal.sdf is not None:
            blocker = QtCore.QSignalBlocker(self.controls.target)
            self.controls.target.setCurrentIndex(max(0, self.controls.target.findData(signal.sdf.target)))
            del blocker
        if signal.kind == "sdf":
            self.session.worker.set_view(self.sdf_view.settings)
        if signal.time is not None:
            self.session.worker.set_time(self.time_view.settings)
        self.controls.set_running(running)
        self._show_note(signal)

    def restart(self) -> None:
        """Rebuild the model(s) from the panel's settings on the current signal."""
        if self.session.signal is None:
            return
        try:
            scene = self.controls.scene()
        except ValueError as exc:
            self.show_error("Invalid setting", str(exc))
            return
        self.start_session(self.session.signal, scene, running=self.controls.play.isChecked())

    def reset(self) -> None:
        if self.session.worker is not None:
            self.session.worker.reset()

    def step_once(self) -> None:
        if self.session.worker is not None:
            self.controls.set_running(False)
            self.session.worker.step(1)

    def _play_toggled(self, running: bool) -> None:
        worker = self.session.worker
        if worker is not None:
            worker.play() if running else worker.pause()

    def _lr_changed(self, lr: float) -> None:
        if self.session.worker is not None and self.session.scene is not None:
            self.session.worker.set_lr(lr)
            self.session.scene = self.controls.scene()

    def grow_now(self) -> None:
        """End the stage in training (growth lab); the next planned stage starts from the next step."""
        if self.session.worker is None or self.session.scene is None or self.session.scene.preset != "growth":
            return

        def end_stage(trainers) -> str:
            trainer = trainers[0][1]
            if trainer.finished:
                return "every stage is already trained: add a stage to grow further"
            width = trainer.current_width
            if not trainer.end_stage():
                return "cannot grow yet: the stage has not trained a step (or its loss is not finite)"
            return f"stage of width {width} ended at step {trainer.step_count}" + \
                ("" if trainer.finished else f"; now training width {trainer.current_width}")

        self.session.worker.call(end_stage)

    def add_stage(self, width: int) -> None:
        if self.session.worker is None or self.session.scene is None or self.session.scene.preset != "growth":
            return
        from dataclasses import replace

        self.session.scene = replace(self.session.scene, widths=(*self.session.scene.widths, width))

        def add(trainers) -> str:
            trainer = trainers[0][1]
            trainer.add_stage(width)
            return f"planned a stage of width {width}"

        self.session.worker.call(add)
        if not self.controls.play.isChecked():
            return
        self.session.worker.play()

    def crop_action(self, key: str) -> None:
        """An edit from the Crop menu or the panel's buttons, applied to the run the crop view shows."""
        if self.session.worker is None or self.session.scene is None or self.session.scene.preset != "crop":
            return
        if self.session.signal is not None and self.session.signal.kind == "sdf":
            self._crop_action_3d(key)
            return
        view = self.crop_view
        if key == "crop-selection":
            view.crop_selection()
        elif key == "keep-selection":
            view.keep_only_selection()
        elif key in ("undo", "redo", "restore-all"):
            parts = view.shown_partitions()
            possible = {"undo": parts.can_undo, "redo": parts.can_redo, "restore-all": bool(parts.cropped)} \
                if parts is not None else {}
            if not possible.get(key, False):
                self.statusBar().showMessage(f"nothing to {key.replace('-all', '')} in this run", 5000)
                return
            self._edit(view.run_index, key, [])
        elif key == "extend":
            self.session.worker.call(_extend_all)

    def _crop_action_3d(self, key: str) -> None:
        """The Crop menu on a 3D field: partitions are picked on the slice, so only the history edits apply."""
        run = self.sdf_view.run_index
        if key in ("undo", "redo", "restore-all"):
            self._edit(run, key, [])
        else:
            self.statusBar().showMessage("in 3D, click a partition on the slice to crop or restore it", 6000)

    def _partition_clicked_3d(self, run: int, flat: int, present: bool) -> None:
        self._edit(run, "crop" if present else "restore", [flat])

    def _edit(self, run: int, what: str, partitions: list) -> None:
        """crop / restore / undo / redo / restore-all on run ``run`` of the crop lab, on the worker thread."""
        if self.session.worker is None:
            return

        def edit(trainers) -> str:
            label, trainer = trainers[min(run, len(trainers) - 1)]
            if trainer.partition_info() is None:
                return f"{label} is not partitioned: nothing to crop"
            if what == "crop":
                return trainer.crop(partitions)
            if what == "restore":
                return trainer.restore(partitions)
            if what == "restore-all":
                return trainer.restore(trainer.partition_info().cropped)
            return trainer.undo() if what == "undo" else trainer.redo()

        self.session.worker.call(edit)

    def open_sweep_member(self, index: int) -> None:
        """Show sweep member ``index`` large in the image lab; the sweep keeps training."""
        self.image_view.show_member(index)
        self.views.setCurrentWidget(self.image_view)
        snapshot = self.sweep_view._snapshot
        if snapshot is not None:
            self.image_view.render(snapshot)

    def back_to_sweep(self) -> None:
        self.image_view.show_member(None)
        self.views.setCurrentWidget(self.sweep_view)
        if self.sweep_view._snapshot is not None:
            self.sweep_view.render(self.sweep_view._snapshot)

    # -- the 3D view's requests ----------------------------------------------------------------------------
    def _time_settings_changed(self, settings) -> None:
        if self.session.worker is not None and self.session.signal is not None and self.session.signal.time is not None:
            self.session.worker.set_time(settings)

    def _sdf_settings_changed(self, settings) -> None:
        if self.session.worker is not None:
            self.session.worker.set_view(settings)

    def _extract_still(self) -> None:
        if self.session.worker is not None:
            self.session.worker.extract_still()
            self.statusBar().showMessage(f"extracting the {self.sdf_view.settings.still_resolution}³ mesh…", 5000)

    def export_mesh(self, run: int = 0, path: str | None = None) -> None:
        """Write run ``run``'s mesh at the 'paused' resolution (asks for a file unless ``path``); on the worker."""
        worker = self.session.worker
        if worker is None or self.session.signal is None or self.session.signal.kind != "sdf":
            return
        path = path or ask_save_path(self, "Export mesh", MESH_FILTER)
        if path is None:
            return
        from models.mesh_io import export_trainer_mesh

        settings = self.sdf_view.settings

        def export(trainers) -> str:
            label, trainer = trainers[min(run, len(trainers) - 1)]
            return export_trainer_mesh(trainer, path, settings.still_resolution, settings.level)

        worker.call(export, edits=False)
        self.statusBar().showMessage(f"exporting the {settings.still_resolution}³ mesh to {path}…", 5000)

    def export_turntable(self, path: str | None = None, frames: int = 48) -> str:
        """A full turn of the 3D view as MP4 or GIF (rendered off screen from the canvas)."""
        from models.mesh_io import ExportError, write_animation

        path = path or ask_save_path(self, "Export turntable", ANIMATION_FILTER)
        if path is None:
            return ""
        try:
            summary = write_animation(path, self.sdf_view.canvas.turntable_frames(frames), fps=24)
        except ExportError as exc:
            self.show_error("Could not export the turntable", str(exc))
            return ""
        self.statusBar().showMessage(summary, 10000)
        return summary

    def _step_width(self, delta: int) -> None:
        view = self.views.currentWidget()
        if hasattr(view, "slider"):
            view.slider.step_by(delta)

    # -- signals ---------------------------------------------------------------------------------------
    def open_file_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open image, mesh or video", os.getcwd(), FILE_FILTER)
        if path:
            self._load_source(path)

    def open_folder_dialog(self) -> None:
        """A folder of video frames (images, in natural order) or of meshes (one per frame of a moving shape)."""
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Open a folder of frames or meshes", os.getcwd())
        if folder:
            self._load_source(folder)

    def save_fields(self) -> None:
        """Save every field of the session into a chosen folder (one sub-folder per run of a comparison)."""
        worker = self.session.worker
        if worker is None:
            return
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Save field into folder", os.getcwd())
        if folder:
            worker.call(lambda trainers: save_runs(folder, trainers), edits=False)

    def _source_picked(self, name: str) -> None:
        """A sample was picked, or (empty name) the working size changed: reload the current source."""
        self._load_source(name or self.source)

    def _load_source(self, source: str) -> None:
        self.statusBar().showMessage(f"Loading {os.path.basename(source)}…")
        from models.video import DEFAULT_VIDEO_SIZE, is_video_source

        size = self.controls.working_size()
        if is_video_source(source) and (self.session.signal is None or self.session.signal.kind != "video"):
            size = DEFAULT_VIDEO_SIZE  # an image's working size would make a video far too big to train live
        self.session.load_signal_async(source, size, self.controls.target.currentData())

    def _signal_loaded(self, signal: Signal, source: str) -> None:
        previous = self.session.signal
        if previous is not None and signal_family(previous) != signal_family(signal):
            self._switch_defaults(signal)
        self.source = source
        self.controls.set_source(source, label=signal.name)
        self.statusBar().showMessage(f"Loaded {signal.name}", 3000)
        try:
            scene = self.controls.scene()
        except ValueError as exc:
            self.show_error("Invalid setting", str(exc))
            return
        self.start_session(signal, scene, running=self.controls.play.isChecked())

    def _switch_defaults(self, signal: Signal) -> None:
        """Images, 3D shapes, videos and moving shapes want different model sizes: take the new kind's defaults
        (keeping the preset where it applies to both)."""
        preset = self.controls.preset.currentData()
        scene = family_defaults(signal_family(signal), preset)
        size = self.controls.working_size()
        if signal.kind == "video" and self.session.signal is not None and self.session.signal.kind != "video":
            from models.video import DEFAULT_VIDEO_SIZE

            size = DEFAULT_VIDEO_SIZE
        self.controls.apply(scene, size)

    def _show_note(self, signal: Signal) -> None:
        self.note.setText(f"{signal.name}: {signal.note}" if signal.note else "")
        self.note.setVisible(bool(signal.note))

    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QtGui.QDropEvent) -> None:
        files = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self._load_source(files[0])

    # -- rendering ---------------------------------------------------------------------------------------
    def render_snapshot(self, snapshot: Snapshot) -> None:
        if not getattr(self, "view_hold", False):  # the timeline shows a past snapshot: the views keep it
            self.views.currentWidget().render(snapshot)
            self.metrics.render(snapshot)
        labels = self.status_labels
        labels["device"].setText(f"device: {snapshot.device}")
        labels["rate"].setText(f"{snapshot.steps_per_second:.1f} steps/s" if snapshot.running else "paused")
        labels["step"].setText(f"step {snapshot.step}")
        if snapshot.runs:
            params = " / ".join(f"{run.params:,}" for run in snapshot.runs)
            labels["params"].setText(f"params: {params}")
            if snapshot.runs[0].sdf is not None:
                labels["psnr"].setText("Chamfer-L1: " + " / ".join(_chamfer(run.sdf) for run in snapshot.runs))
            else:
                labels["psnr"].setText("PSNR: " + " / ".join(_db(run.psnr) for run in snapshot.runs))
        self.controls.set_running(snapshot.running)
        if snapshot.message:
            self.statusBar().showMessage(snapshot.message, 15000)
            if "restored" in snapshot.message:
                self.show_error("Training paused", snapshot.message, icon=QtWidgets.QMessageBox.Warning)
        if snapshot.error:
            self.show_error("Training stopped by an error", snapshot.error)

    def show_error(self, title: str, message: str, icon=QtWidgets.QMessageBox.Critical) -> None:
        """A non-blocking dialog (training and the GUI go on); the text is also kept for tests and the status bar."""
        self.last_error = message
        self.statusBar().showMessage(message, 15000)
        box = QtWidgets.QMessageBox(icon, title, message, QtWidgets.QMessageBox.Ok, self)
        box.setModal(False)
        box.finished.connect(lambda _=None, b=box: self._dialogs.remove(b) if b in self._dialogs else None)
        self._dialogs.append(box)
        box.show()

    def _about(self) -> None:
        QtWidgets.QMessageBox.about(self, "About FieldLab",
                                    "FieldLab trains neural fields on a background thread and shows them learn.\n"
                                    "Drop an image on the window to fit it.")

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self._closed = True
        self.controls.cancel_pending_change()  # a setting changed just before closing must not restart a session
        self.session.shutdown()
        self.sdf_view.canvas.close()
        self.time_view.close_canvas()
        for box in list(self._dialogs):
            box.close()
        super().closeEvent(event)


class CurrentPageStack(QtWidgets.QStackedWidget):
    """A stack whose size hints are its current page's: the tallest lab must not squeeze the others' plots."""

    def __init__(self):
        super().__init__()
        self.currentChanged.connect(lambda _: self.updateGeometry())

    def sizeHint(self) -> QtCore.QSize:
        page = self.currentWidget()
        return page.sizeHint() if page is not None else super().sizeHint()

    def minimumSizeHint(self) -> QtCore.QSize:
        page = self.currentWidget()
        return page.minimumSizeHint() if page is not None else super().minimumSizeHint()


def _extend_all(trainers) -> str:
    """Start the extension now: every run of the experiment moves on to the whole signal."""
    messages = []
    for label, trainer in trainers:
        parts = trainer.partition_info()
        if parts is not None and len(parts.present) == parts.num_partitions:
            messages.append(f"{label}: every partition is present (crop some, or keep only a selection, first)")
        elif hasattr(trainer, "extend") and (parts is not None or trainer.extension_step is None):
            messages.append(f"{label}: {trainer.extend()}")
    return "; ".join(messages) or "nothing to extend"


def _chamfer(view) -> str:
    value = view.metrics.get("chamfer_l1") if view is not None else None
    return f"{value:.4f}" if value is not None and math.isfinite(value) else "–"


def _db(value: float) -> str:
    return f"{value:.2f} dB" if math.isfinite(value) else "–"

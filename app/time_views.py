"""The time lab's views: a time slider with play/loop, the frame at t for every run (target, reconstruction, error,
the ResField model's base MLP and full - base), PSNR per frame, the coefficient curves v(t), and for moving shapes
the 3D view at t. Dumb views: they draw snapshots and send the slider's settings; the worker renders."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from models.time_render import TimeViewSettings
from models.worker import Snapshot

from .sdf_views import SdfLabView
from .views import ERROR_LEVELS, RUN_COLORS, ImagePanel

SLIDER_TICKS = 1000
DIFFERENCE_LEVELS = (-0.25, 0.25)


class TimeBar(QtWidgets.QWidget):
    """A continuous time slider over [-1, 1] with play / pause, loop and a frame rate."""

    timeChanged = QtCore.Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.frames, self.fps = 1, 12.0
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.play = QtWidgets.QPushButton("▶ Play")
        self.play.setCheckable(True)
        self.play.setToolTip("Play the sequence at the chosen rate (training goes on)")
        self.slider = QtWidgets.QSlider(QtCore.Qt.Horizontal, minimum=0, maximum=SLIDER_TICKS, value=0)
        self.slider.setToolTip("Time t from -1 to 1: frames sit at evenly spaced times, anything between is the "
                               "field's interpolation (←/→ step one frame)")
        self.loop = QtWidgets.QCheckBox("loop")
        self.loop.setChecked(True)
        self.snap = QtWidgets.QCheckBox("snap to frames")
        self.snap.setToolTip("Only the frames' own times; off, the slider also shows the field between frames (with "
                             "one coefficient row per frame, ResFields have learned nothing there: see Rows T)")
        self.rate = QtWidgets.QDoubleSpinBox(minimum=0.5, maximum=60.0, singleStep=1.0, decimals=1, value=12.0,
                                             suffix=" fps")
        self.rate.setToolTip("Playback rate in frames per second")
        self.label = QtWidgets.QLabel()
        self.label.setMinimumWidth(190)
        for widget in (self.play, self.slider, self.loop, self.snap, self.rate, self.label):
            layout.addWidget(widget, 1 if widget is self.slider else 0)
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self._tick)
        self.play.toggled.connect(self._play_toggled)
        self.rate.valueChanged.connect(lambda _: self._play_toggled(self.play.isChecked()))
        self.snap.toggled.connect(lambda _on: self._moved(self.slider.value()))
        self.slider.valueChanged.connect(self._moved)
        self._update_label()

    @property
    def t(self) -> float:
        """The slider's time; with 'snap to frames', the time of the frame nearest to it (exactly)."""
        t = -1.0 + 2.0 * self.slider.value() / SLIDER_TICKS
        if self.snap.isChecked() and self.frames > 1:
            return -1.0 + 2.0 * round((t + 1.0) * 0.5 * (self.frames - 1)) / (self.frames - 1)
        return t

    def set_time(self, t: float) -> None:
        self.slider.setValue(int(round((float(np.clip(t, -1.0, 1.0)) + 1.0) * 0.5 * SLIDER_TICKS)))

    def set_frames(self, frames: int, fps: float) -> None:
        if (frames, fps) != (self.frames, self.fps):
            self.frames, self.fps = frames, fps
            with QtCore.QSignalBlocker(self.rate):
                self.rate.setValue(fps)
            self._update_label()

    def frame(self) -> float:
        return 0.0 if self.frames < 2 else (self.t + 1.0) * 0.5 * (self.frames - 1)

    def step_frames(self, delta: int) -> None:
        """Move to the frame ``delta`` frames away (from between frames: the next or previous one)."""
        if self.frames < 2:
            return
        position = math.floor(self.frame() + 1e-6) if delta > 0 else math.ceil(self.frame() - 1e-6)
        target = min(max(position + delta, 0), self.frames - 1)
        self.set_time(-1.0 + 2.0 * target / (self.frames - 1))

    def _tick(self) -> None:
        if self.frames < 2:
            return
        at_end = self.slider.value() >= SLIDER_TICKS
        if at_end and not self.loop.isChecked():
            self.play.setChecked(False)
            return
        if at_end:
            self.set_time(-1.0)
        else:
            self.set_time(min(1.0, self.t + 2.0 / (self.frames - 1)))

    def _play_toggled(self, on: bool) -> None:
        self.play.setText("⏸ Pause" if on else "▶ Play")
        if on:
            self.timer.start(int(1000 / self.rate.value()))
        else:
            self.timer.stop()

    def _moved(self, _value: int) -> None:
        self._update_label()
        self.timeChanged.emit(self.t)

    def _update_label(self) -> None:
        self.label.setText(f"t = {self.t:+.3f}   frame {self.frame() + 1:.1f} / {self.frames}")

    def keyPressEvent(self, event) -> None:
        if event.key() in (QtCore.Qt.Key_Left, QtCore.Qt.Key_Right):
            self.step_frames(1 if event.key() == QtCore.Qt.Key_Right else -1)
        else:
            super().keyPressEvent(event)


class TimeLabView(QtWidgets.QWidget):
    """Every run of a time-lab session at the slider's time t."""

    settingsChanged = QtCore.Signal(object)
    """A new TimeViewSettings for the worker."""
    sequenceRequested = QtCore.Signal(int)
    """Export run N's reconstructed sequence (the window asks where)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._snapshot: Snapshot | None = None
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.bar = TimeBar()
        outer.addWidget(self.bar)
        options = QtWidgets.QHBoxLayout()
        self.show_base = QtWidgets.QCheckBox("Residual off: show the base MLP (W alone) and full − base")
        self.show_base.setChecked(True)
        self.show_base.setToolTip("The ResField model with its time-dependent weights W(t) switched off: what the "
                                  "shared weights learned for every frame (the paper's Fig. A.1), and what W(t) adds")
        self.export = QtWidgets.QPushButton("Export sequence…")
        self.export.setToolTip("Render the first run's reconstruction at every frame to an MP4 or GIF (on the worker)")
        self.base_mesh = QtWidgets.QCheckBox("Residual off: draw the base MLP's mesh (W alone)")
        self.base_mesh.setToolTip("The ResField model's mesh at t with its time-dependent weights switched off: the "
                                  "shape its shared weights hold for every frame (the paper's Fig. A.1)")
        options.addWidget(self.show_base)
        options.addWidget(self.base_mesh)
        options.addStretch(1)
        options.addWidget(self.export)
        outer.addLayout(options)
        self.stack = QtWidgets.QStackedWidget()
        self.video = QtWidgets.QWidget()
        self.grid = QtWidgets.QGridLayout(self.video)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.shape_view = SdfLabView()
        self.stack.addWidget(self.video)
        self.stack.addWidget(self.shape_view)
        self.plots = pg.GraphicsLayoutWidget()
        self.frame_plot = self.plots.addPlot(row=0, col=0)
        self.frame_plot.setTitle("PSNR per frame (dashed: held-out px, ×: unseen frames)", size="9pt")
        self.frame_plot.setLabel("bottom", "frame")
        self.coefficient_plot = self.plots.addPlot(row=0, col=1)
        self.coefficient_plot.setTitle("coefficients v(t)", size="9pt")
        self.coefficient_plot.setLabel("bottom", "frame")
        self.step_plot = self.plots.addPlot(row=0, col=2)
        self.step_plot.setTitle("PSNR of the sequence vs step", size="9pt")
        self.step_plot.setLabel("bottom", "step")
        for column, plot in enumerate((self.frame_plot, self.coefficient_plot, self.step_plot)):
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setMinimumWidth(150)
            self.plots.ci.layout.setColumnStretchFactor(column, 1)
        self.frame_plot.addLegend(offset=(5, -5), labelTextSize="8pt", brush=(255, 255, 255, 200))
        self.cursors = [pg.InfiniteLine(angle=90, pen=pg.mkPen("#888", style=QtCore.Qt.DashLine))
                        for _ in range(2)]
        self.frame_plot.addItem(self.cursors[0])
        self.coefficient_plot.addItem(self.cursors[1])
        self.plots.setMinimumHeight(170)
        layer_row = QtWidgets.QHBoxLayout()
        self.layer = QtWidgets.QComboBox()
        self.layer.setToolTip("Which ResField layer's coefficient table v (one curve per rank)")
        self.parameters = QtWidgets.QLabel()
        self.parameters.setWordWrap(True)
        self.parameters.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        layer_row.addWidget(QtWidgets.QLabel("v(t) of layer"))
        layer_row.addWidget(self.layer)
        layer_row.addWidget(self.parameters, 1)
        split = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        split.addWidget(self.stack)
        lower = QtWidgets.QWidget()
        lower_layout = QtWidgets.QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addLayout(layer_row)
        lower_layout.addWidget(self.plots, 1)
        split.addWidget(lower)
        split.setSizes([560, 230])
        outer.addWidget(split, 1)
        self._panels: dict[str, ImagePanel] = {}
        self._layout_key = None
        self.bar.timeChanged.connect(lambda _t: self._send())
        self.show_base.toggled.connect(lambda _on: self._send())
        self.base_mesh.toggled.connect(lambda _on: self._send())
        self.shape_view.settingsChanged.connect(lambda _s: self._send())
        self.layer.currentIndexChanged.connect(lambda _i: self._plot_coefficients())
        self.export.clicked.connect(lambda: self.sequenceRequested.emit(0))

    @property
    def settings(self) -> TimeViewSettings:
        shapes = self._snapshot is not None and self._snapshot.signal.kind == "sdf-time"
        base = self.base_mesh.isChecked() if shapes else self.show_base.isChecked()
        return TimeViewSettings(t=self.bar.t, show_base=base, sdf=self.shape_view.settings)

    def _send(self) -> None:
        self.settingsChanged.emit(self.settings)

    def close_canvas(self) -> None:
        self.bar.timer.stop()
        self.shape_view.canvas.close()

    # -- drawing -----------------------------------------------------------------------------------------
    def render(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        signal = snapshot.signal
        if signal.time is None:
            return
        self.bar.set_frames(signal.time.frames, signal.time.fps)
        video = signal.kind == "video"
        self.stack.setCurrentWidget(self.video if video else self.shape_view)
        self.export.setVisible(video)
        self.show_base.setVisible(video)
        self.base_mesh.setVisible(not video)
        runs = [run for run in snapshot.runs if run.time is not None]
        if not runs:
            return
        for plot in (self.frame_plot, self.step_plot):  # a moving shape's scores are the 3D view's own plots
            plot.setVisible(video)
        if video:
            self._render_frames(snapshot, runs)
            self._plot_frames(runs, signal.time.frames)
            self._plot_steps(runs)
        else:
            self.shape_view.render(self._shown_shapes(snapshot))
            for cursor in self.cursors:
                cursor.setValue(runs[0].time.frame + 1)
        self._update_layers(runs)
        self._plot_coefficients()
        self.parameters.setText(parameter_text(runs))

    def _shown_shapes(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot with each ResField run's base mesh in place of its own when 'residual off' is checked."""
        if not self.base_mesh.isChecked():
            return snapshot
        runs = tuple(replace(run, sdf=run.time.sdf_base, label=f"{run.label}: base MLP (residual off)")
                     if run.time is not None and run.time.sdf_base is not None else run for run in snapshot.runs)
        return replace(snapshot, runs=runs)

    def _panel(self, key: str, title: str, colormap: str | None = None) -> ImagePanel:
        panel = self._panels.get(key)
        if panel is None:
            panel = ImagePanel(title, colormap=colormap)
            panel.setMinimumSize(90, 110)
            self._panels[key] = panel
        return panel

    def _render_frames(self, snapshot: Snapshot, runs: list) -> None:
        # a quick snapshot (the first answer to a scrub) has no base yet: the base panel keeps its last picture
        resfield = next((run for run in runs if run.time.coefficients), None)
        wants_base = resfield is not None and self.show_base.isChecked()
        base_run = resfield if wants_base and resfield.time.base is not None else None
        layout_key = (tuple(run.label for run in runs), wants_base)
        if layout_key != self._layout_key:
            self._layout_key = layout_key
            while self.grid.count():
                self.grid.takeAt(0).widget().setParent(None)
            self.grid.addWidget(self._panel("target", "Target"), 0, 0)
            for i, run in enumerate(runs):
                self.grid.addWidget(self._panel(f"run {run.label}", run.label), 0, i + 1)
                self.grid.addWidget(self._panel(f"error {run.label}", "|error|", "inferno"), 1, i + 1)
            if wants_base:
                column = len(runs) + 1
                self.grid.addWidget(self._panel("base", "Base MLP (residual off)"), 0, column)
                self.grid.addWidget(self._panel("difference", "full − base", "CET-D1"), 1, column)
        view = runs[0].time
        target = self._panels["target"]
        target.show_array(snapshot.target[view.nearest], (0.0, 1.0))
        between = " (nearest)" if view.between_frames else ""
        target.set_title(f"target: frame {view.nearest + 1}{between}")
        for run in runs:
            time_view = run.time
            self._panels[f"run {run.label}"].show_array(time_view.reconstruction, (0.0, 1.0))
            self._panels[f"run {run.label}"].set_title(f"{_short(run.label)}: {_db(time_view.psnr_at_t)}")
            self._panels[f"error {run.label}"].show_array(time_view.error, ERROR_LEVELS)
        if base_run is not None:
            self._panels["base"].show_array(base_run.time.base, (0.0, 1.0))
            self._panels["base"].set_title("base MLP alone (W(t) off)")
            self._panels["difference"].show_array(base_run.time.difference, DIFFERENCE_LEVELS)
            self._panels["difference"].set_title("full − base (±0.25)")

    def _plot_frames(self, runs: list, frames: int) -> None:
        plot = self.frame_plot
        for item in [i for i in plot.listDataItems()]:
            plot.removeItem(item)
        plot.legend.clear() if plot.legend is not None else None
        ticks = np.arange(frames) + 1
        for i, run in enumerate(runs):
            color = RUN_COLORS[i % len(RUN_COLORS)]
            view = run.time
            if np.isfinite(view.train_per_frame).any():
                plot.plot(ticks, view.train_per_frame, pen=pg.mkPen(color, width=2), name=_short(run.label),
                          connect="finite")
            if np.isfinite(view.test_per_frame).any():
                plot.plot(ticks, view.test_per_frame, pen=pg.mkPen(color, width=1.5, style=QtCore.Qt.DashLine),
                          connect="finite")
            if view.unseen_frames:  # frames never trained on: every pixel is held out
                unseen = np.asarray(view.unseen_frames)
                plot.plot(unseen + 1, view.all_per_frame[unseen], pen=None, symbol="x", symbolSize=9,
                          symbolPen=pg.mkPen(color, width=2))
        self.cursors[0].setValue(runs[0].time.frame + 1)
        self.cursors[1].setValue(runs[0].time.frame + 1)

    def _plot_steps(self, runs: list) -> None:
        plot = self.step_plot
        plot.clear()
        for i, run in enumerate(runs):
            history = run.time.history
            if len(history) == 0:
                continue
            color = RUN_COLORS[i % len(RUN_COLORS)]
            plot.plot(history[:, 0], history[:, 1], pen=pg.mkPen(color, width=2), connect="finite")
            if np.isfinite(history[:, 2]).any():
                plot.plot(history[:, 0], history[:, 2], pen=pg.mkPen(color, width=1.5, style=QtCore.Qt.DashLine),
                          connect="finite")
            if np.isfinite(history[:, 3]).any():
                plot.plot(history[:, 0], history[:, 3], pen=pg.mkPen(color, width=1.5, style=QtCore.Qt.DotLine),
                          connect="finite")

    def _update_layers(self, runs: list) -> None:
        tables = runs[0].time.coefficients
        wanted = [f"{layer}" for layer in sorted(tables)]
        if [self.layer.itemText(i) for i in range(self.layer.count())] != wanted:
            with QtCore.QSignalBlocker(self.layer):
                self.layer.clear()
                self.layer.addItems(wanted)
        self.layer.setEnabled(bool(wanted))

    def _plot_coefficients(self) -> None:
        plot = self.coefficient_plot
        for item in [i for i in plot.listDataItems()]:
            plot.removeItem(item)
        snapshot = self._snapshot
        if snapshot is None or not snapshot.runs or snapshot.runs[0].time is None or not self.layer.count():
            plot.setTitle("v(t): no ResField layers", size="9pt")
            return
        view = snapshot.runs[0].time
        table = view.coefficients.get(int(self.layer.currentText() or -1))
        if table is None:
            return
        rows, rank = table.shape
        frames = snapshot.signal.time.frames
        x = np.linspace(1, frames, rows) if rows > 1 else np.ones(1)
        colormap = pg.colormap.get("CET-R4")
        for r in range(rank):
            color = colormap.map(r / max(rank - 1, 1), mode="qcolor")
            plot.plot(x, table[:, r], pen=pg.mkPen(color, width=1.5), symbol="o" if rows <= 32 else None, symbolSize=3,
                      symbolBrush=color, symbolPen=None)
        plot.setTitle(f"v(t), layer {self.layer.currentText()}: {rank} ranks × {rows} rows", size="9pt")


def parameter_text(runs: list) -> str:
    parts = []
    for run in runs:
        split = run.time.parameters
        if split.get("per_time"):
            parts.append(f"<b>{_short(run.label)}</b>: {split['total']:,} parameters = {split['shared']:,} shared "
                         f"(W, b and the spanning sets M: {split['spanning_sets']:,}) + {split['per_time']:,} per time (v)")
        else:
            parts.append(f"<b>{_short(run.label)}</b>: {split.get('total', run.params):,} parameters, all shared")
    return "<br>".join(parts)


def _short(label: str) -> str:
    """'SIREN+ResFields w=96, rank 10' -> 'SIREN+ResFields R=10'; 'SIREN w=96 (same width)' -> 'SIREN w=96'."""
    name = label.split(" (")[0]
    if "+ResFields" in name and ", rank " in name:
        head, rank = name.split(", rank ")
        return f"{head.split(' w=')[0]} R={rank}"
    return name


def _db(value: float) -> str:
    return f"{value:.2f} dB" if value is not None and math.isfinite(value) else "–"

"""Dumb views: each renders a Snapshot and keeps no training state of its own.

Images use pyqtgraph ImageItems with fixed levels (no auto-levelling flicker): [0, 1] for signals, a fixed
range for errors, and the target's own spectrum range for spectra so that reconstructions compare fairly.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from models.worker import Snapshot

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="w", foreground="k")

ERROR_LEVELS = (0.0, 0.25)
RUN_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


class ImagePanel(pg.GraphicsLayoutWidget):
    """A titled image with fixed levels and a locked aspect ratio; reports the pixel under the mouse."""

    hovered = QtCore.Signal(int, int)
    """(row, column) of the pixel under the mouse, or (-1, -1) when it leaves the image."""

    def __init__(self, title: str, colormap: str | None = None, parent=None, view_box: pg.ViewBox | None = None):
        super().__init__(parent)
        self.setMinimumSize(160, 160)
        self.title = self.addLabel(title, row=0, col=0)
        if view_box is None:
            self.view = self.addViewBox(row=1, col=0, lockAspect=True, enableMouse=True)
        else:
            self.view = view_box
            self.addItem(view_box, row=1, col=0)
        self.view.invertY(True)
        self.image = pg.ImageItem()
        if colormap:
            self.image.setColorMap(pg.colormap.get(colormap))
        self.view.addItem(self.image)
        self._shape = None
        self.scene().sigMouseMoved.connect(self._mouse_moved)

    def link(self, other: "ImagePanel") -> None:
        """Zoom and pan together with ``other`` (same pixel grid)."""
        self.view.setXLink(other.view)
        self.view.setYLink(other.view)

    def _mouse_moved(self, position) -> None:
        if self._shape is None or not self.view.sceneBoundingRect().contains(position):
            self.hovered.emit(-1, -1)
            return
        point = self.view.mapSceneToView(position)
        row, column = int(np.floor(point.y())), int(np.floor(point.x()))
        inside = 0 <= row < self._shape[0] and 0 <= column < self._shape[1]
        self.hovered.emit(row if inside else -1, column if inside else -1)

    def set_title(self, text: str) -> None:
        if text != self.title.text:  # setText re-lays out the panel: skip it when nothing changed
            self.title.setText(text)

    def show_array(self, array: np.ndarray, levels: tuple[float, float]) -> None:
        self.image.setImage(array, levels=levels, autoLevels=False)
        if self._shape != array.shape[:2]:
            self._shape = array.shape[:2]
            self.view.autoRange(padding=0.0)


class ImageLabView(QtWidgets.QWidget):
    """Target, reconstruction, absolute error and log spectrum of one run (the first of the snapshot).

    The three image-space panels zoom and pan together; hovering one reports the pixel's values.
    """

    pixelReport = QtCore.Signal(str)
    backRequested = QtCore.Signal()
    """The user wants to return to the lab this run was opened from."""

    def __init__(self, parent=None):
        super().__init__(parent)
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.back_bar = QtWidgets.QWidget()
        bar = QtWidgets.QHBoxLayout(self.back_bar)
        bar.setContentsMargins(4, 2, 4, 2)
        self.back_label = QtWidgets.QLabel()
        self.back_button = QtWidgets.QPushButton("Back to the sweep")
        self.back_button.clicked.connect(self.backRequested)
        bar.addWidget(self.back_label, 1)
        bar.addWidget(self.back_button)
        self.back_bar.hide()
        outer.addWidget(self.back_bar)
        layout = QtWidgets.QGridLayout()
        outer.addLayout(layout, 1)
        self.run_index = 0
        """Which run of the snapshot is shown (a sweep member opened large; 0 otherwise)."""
        self.target = ImagePanel("Target")
        self.reconstruction = ImagePanel("Reconstruction")
        self.error = ImagePanel("|Error|", colormap="inferno")
        self.spectrum = ImagePanel("Log spectrum", colormap="viridis")
        for i, panel in enumerate((self.target, self.reconstruction, self.error, self.spectrum)):
            layout.addWidget(panel, i // 2, i % 2)
        for panel in (self.reconstruction, self.error):
            panel.link(self.target)
        for panel in (self.target, self.reconstruction, self.error):
            panel.hovered.connect(self._report_pixel)
        self._target_id = None
        self._snapshot: Snapshot | None = None

    def _report_pixel(self, row: int, column: int) -> None:
        snapshot = self._snapshot
        if row < 0 or snapshot is None or not snapshot.runs:
            self.pixelReport.emit("")
            return
        run = snapshot.runs[min(self.run_index, len(snapshot.runs) - 1)]
        self.pixelReport.emit(
            f"pixel (x {column}, y {row}): target {_format_value(snapshot.target[row, column])}, "
            f"reconstruction {_format_value(run.reconstruction[row, column])}, |error| {run.error[row, column]:.4f}")

    def render(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        if self._target_id != id(snapshot.target):
            self._target_id = id(snapshot.target)
            self.target.show_array(snapshot.target, (0.0, 1.0))
        if not snapshot.runs:
            return
        run = snapshot.runs[min(self.run_index, len(snapshot.runs) - 1)]
        if self.back_bar.isVisible():
            self.back_label.setText(f"<b>{run.label}</b>, one member of the sweep (it keeps training with the others)")
        self.reconstruction.set_title(f"Reconstruction · step {run.step} · {run.psnr:.2f} dB")
        self.reconstruction.show_array(run.reconstruction, (0.0, 1.0))
        self.error.set_title(f"|Error| (0 … {ERROR_LEVELS[1]:g})")
        self.error.show_array(run.error, ERROR_LEVELS)
        top = float(snapshot.target_spectrum.max()) or 1.0
        self.spectrum.show_array(run.spectrum, (0.0, top))


    def show_member(self, index: int | None) -> None:
        """Show run ``index`` with a bar leading back to its lab, or (None) the first run and no bar."""
        self.run_index = index or 0
        self.back_bar.setVisible(index is not None)


class ComparisonView(QtWidgets.QWidget):
    """Several runs side by side: target then each reconstruction (top), their spectra (bottom)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.grid = QtWidgets.QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.target = ImagePanel("Target<br>&nbsp;")
        self.target_spectrum = ImagePanel("Target<br>log spectrum", colormap="viridis")
        self.grid.addWidget(self.target, 0, 0)
        self.grid.addWidget(self.target_spectrum, 1, 0)
        self.panels: list[tuple[ImagePanel, ImagePanel]] = []
        self._target_id = None

    def _ensure_panels(self, count: int) -> None:
        while len(self.panels) < count:
            column = len(self.panels) + 1
            pair = (ImagePanel(""), ImagePanel("", colormap="viridis"))
            pair[0].link(self.target)
            pair[1].link(self.target_spectrum)
            self.grid.addWidget(pair[0], 0, column)
            self.grid.addWidget(pair[1], 1, column)
            self.panels.append(pair)
        for i, (image, spectrum) in enumerate(self.panels):
            image.setVisible(i < count)
            spectrum.setVisible(i < count)

    def render(self, snapshot: Snapshot) -> None:
        self._ensure_panels(len(snapshot.runs))
        top = float(snapshot.target_spectrum.max()) or 1.0
        if self._target_id != id(snapshot.target):
            self._target_id = id(snapshot.target)
            self.target.show_array(snapshot.target, (0.0, 1.0))
            self.target_spectrum.show_array(snapshot.target_spectrum, (0.0, top))
        for run, (image, spectrum) in zip(snapshot.runs, self.panels):
            image.set_title(f"{run.label}<br>{run.psnr:.2f} dB · step {run.step}")
            image.show_array(run.reconstruction, (0.0, 1.0))
            spectrum.set_title(f"{run.label}<br>log spectrum")
            spectrum.show_array(run.spectrum, (0.0, top))


class CurveLabView(QtWidgets.QWidget):
    """A 1D signal: target and reconstructions, the error, and the magnitude spectra."""

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.signal_plot = pg.PlotWidget(title="Signal")
        self.error_plot = pg.PlotWidget(title="|Error|")
        self.spectrum_plot = pg.PlotWidget(title="Log magnitude spectrum")
        self.signal_plot.addLegend(offset=(10, 10))
        self.spectrum_plot.setLabel("bottom", "frequency (cycles per unit)")
        self.signal_plot.setYRange(-0.05, 1.05)
        for plot in (self.signal_plot, self.error_plot, self.spectrum_plot):
            plot.showGrid(x=True, y=True, alpha=0.2)
        layout.addWidget(self.signal_plot, 2)
        layout.addWidget(self.error_plot, 1)
        layout.addWidget(self.spectrum_plot, 1)
        self.target_curve = self.signal_plot.plot(pen=pg.mkPen("#999999", width=3, style=QtCore.Qt.DashLine), name="target")
        self.target_spectrum = self.spectrum_plot.plot(pen=pg.mkPen("#999999", width=2, style=QtCore.Qt.DashLine))
        self.curves: list[tuple] = []
        self._labels: tuple = ()
        self._target_id = None

    def render(self, snapshot: Snapshot) -> None:
        x = np.linspace(0.0, 1.0, snapshot.target.size)
        frequencies = np.arange(snapshot.target_spectrum.size)
        if self._target_id != id(snapshot.target):
            self._target_id = id(snapshot.target)
            self.target_curve.setData(x, snapshot.target)
            self.target_spectrum.setData(frequencies, snapshot.target_spectrum)
            self.spectrum_plot.setXRange(0, _spectrum_extent(snapshot.target_spectrum), padding=0.02)
        labels = tuple(run.label for run in snapshot.runs)
        if labels != self._labels:
            for items in self.curves:
                for plot, item in zip((self.signal_plot, self.error_plot, self.spectrum_plot), items):
                    plot.removeItem(item)
            self.curves = []
            for i, label in enumerate(labels):
                pen = pg.mkPen(RUN_COLORS[i % len(RUN_COLORS)], width=2)
                self.curves.append((self.signal_plot.plot(pen=pen, name=label), self.error_plot.plot(pen=pen),
                                    self.spectrum_plot.plot(pen=pen)))
            self._labels = labels
        for run, (curve, error, spectrum) in zip(snapshot.runs, self.curves):
            curve.setData(x, run.reconstruction)
            error.setData(x, run.error)
            spectrum.setData(frequencies, run.spectrum)


class MetricsPlots(QtWidgets.QWidget):
    """PSNR and training loss against step, one curve per run on shared axes."""

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.psnr_plot = pg.PlotWidget(title="PSNR (dB)")
        self.loss_plot = pg.PlotWidget(title="Training loss: log10 MSE")
        for plot in (self.psnr_plot, self.loss_plot):
            plot.setLabel("bottom", "step")
            plot.showGrid(x=True, y=True, alpha=0.2)
            layout.addWidget(plot)
        self.psnr_plot.addLegend(offset=(-10, -10))
        self._curves: list[tuple] = []
        self._key = None
        self._stage_lines: list = []
        self._stage_ends: tuple = ()

    def render(self, snapshot: Snapshot) -> None:
        key = (snapshot.generation, tuple(run.label for run in snapshot.runs))
        if key != self._key:
            self.psnr_plot.clear()
            self.loss_plot.clear()
            self._curves = []
            for i, run in enumerate(snapshot.runs):
                pen = pg.mkPen(RUN_COLORS[i % len(RUN_COLORS)], width=2)
                self._curves.append((self.psnr_plot.plot(pen=pen, name=run.label), self.loss_plot.plot(pen=pen)))
            self._key = key
            self._stage_lines, self._stage_ends = [], ()
        self._mark_stages(snapshot)
        for run, (psnr_curve, loss_curve) in zip(snapshot.runs, self._curves):
            psnr = run.psnr_history
            finite = np.isfinite(psnr[:, 1]) if psnr.size else slice(None)
            psnr_curve.setData(psnr[finite, 0], psnr[finite, 1]) if psnr.size else psnr_curve.setData([], [])
            loss = run.loss_history
            if loss.size:
                loss = _decimate(loss[loss[:, 1] > 0], 4000)
                loss_curve.setData(loss[:, 0], np.log10(loss[:, 1]))
            else:
                loss_curve.setData([], [])


    def _mark_stages(self, snapshot: Snapshot) -> None:
        """A growing field's stage boundaries as vertical lines on both plots."""
        stages = snapshot.runs[0].stages if snapshot.runs else None
        ends = tuple(stages.stage_end_steps) if stages is not None and stages.mode == "progressive" else ()
        if ends == self._stage_ends:
            return
        for plot, line in self._stage_lines:
            plot.removeItem(line)
        self._stage_lines = []
        for k, end in enumerate(ends):
            for plot in (self.psnr_plot, self.loss_plot):
                line = pg.InfiniteLine(end, angle=90, pen=pg.mkPen("#aaaaaa", style=QtCore.Qt.DotLine),
                                       label=f"{stages.widths[k]}" if plot is self.psnr_plot else None,
                                       labelOpts={"position": 0.08, "color": "#777"})
                plot.addItem(line)
                self._stage_lines.append((plot, line))
        self._stage_ends = ends


def _format_value(value) -> str:
    value = np.atleast_1d(value)
    return f"{value[0]:.3f}" if value.size == 1 else "(" + ", ".join(f"{v:.3f}" for v in value) + ")"


def _spectrum_extent(spectrum: np.ndarray) -> float:
    """Show three times the band where the target has energy (at least 32 bins): the rest is noise floor."""
    significant = np.nonzero(spectrum > 0.05 * spectrum.max())[0]
    top = significant[-1] if significant.size else spectrum.size
    return float(min(spectrum.size - 1, max(32, 3 * top)))


def _decimate(points: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` points (keeps plotting cheap on long runs)."""
    if len(points) <= limit:
        return points
    stride = int(np.ceil(len(points) / limit))
    return points[::stride]

"""The spectral growth lab's views: a width slider over a streamable field's per-width snapshots.

Every width's arrays arrive pre-rendered in the snapshot (models/width_views.py), so moving the slider
only swaps images and re-styles curves: nothing is evaluated on the GUI thread.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from models.worker import Snapshot

from .views import ERROR_LEVELS, ImagePanel

STATE_MARKS = {"trained": "✓", "training": "●", "pending": "○"}
STATE_WORDS = {"trained": "trained", "training": "training…", "pending": "pending"}


def width_colors(count: int) -> list[str]:
    """Narrow = cool, wide = warm: the same colour for a width in every plot."""
    cmap = pg.colormap.get("CET-L8")
    return [cmap.map(0.15 + 0.75 * i / max(1, count - 1), mode="qcolor").name() for i in range(count)]


class WidthSlider(QtWidgets.QWidget):
    """Snaps to the stage widths; widths not trained yet are shown but cannot be selected."""

    widthChanged = QtCore.Signal(int)
    """Index of the selected stage."""

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addWidget(QtWidgets.QLabel("<b>Width</b>"))
        self.slider = QtWidgets.QSlider(QtCore.Qt.Horizontal, minimum=0, maximum=0, pageStep=1)
        self.slider.setTickPosition(QtWidgets.QSlider.TicksBelow)
        self.slider.setTickInterval(1)
        self.slider.setMinimumWidth(220)
        self.slider.setToolTip("Drag or use the arrow keys ([ and ] anywhere): each position is one stage width")
        self.labels = QtWidgets.QLabel()
        self.follow = QtWidgets.QCheckBox("follow training")
        self.follow.setChecked(True)
        self.follow.setToolTip("Keep the slider on the stage being trained")
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.labels, 2)
        layout.addWidget(self.follow)
        self._available = 0
        self._widths: tuple[int, ...] = ()
        self._states: tuple[str, ...] = ()
        self.slider.valueChanged.connect(self._moved)
        self.slider.sliderPressed.connect(lambda: self.follow.setChecked(False))

    @property
    def index(self) -> int:
        return self.slider.value()

    def set_stages(self, widths: tuple[int, ...], states: tuple[str, ...], available: int, training: int) -> None:
        """``available`` widths have views; follow mode jumps to ``training``."""
        self._available = available
        if (widths, states) != (self._widths, self._states):
            self._widths, self._states = widths, states
            with QtCore.QSignalBlocker(self.slider):
                self.slider.setMaximum(max(0, len(widths) - 1))
            self._update_labels()
        if self.follow.isChecked() and self.slider.value() != training:
            self.slider.setValue(training)
        elif self.slider.value() >= available:
            self.slider.setValue(max(0, available - 1))

    def step_by(self, delta: int) -> None:
        self.follow.setChecked(False)
        self.slider.setValue(max(0, min(self._available - 1, self.slider.value() + delta)))

    def _moved(self, value: int) -> None:
        if value >= self._available > 0:  # not trained yet: snap back to the widest available
            self.slider.setValue(self._available - 1)
            return
        self._update_labels()
        self.widthChanged.emit(value)

    def _update_labels(self) -> None:
        parts = []
        for i, (width, state) in enumerate(zip(self._widths, self._states)):
            text = f"{width} {STATE_MARKS[state]}"
            parts.append(f"<b><u>{text}</u></b>" if i == self.slider.value() else
                         f"<span style='color:#999'>{text}</span>" if state == "pending" else text)
        self.labels.setText(" &nbsp; ".join(parts) + " &nbsp; <span style='color:#777'>(✓ trained ● training ○ pending)</span>")


class GrowthPlots(QtWidgets.QWidget):
    """Radial power spectra (one curve per width) and PSNR against parameters (streamable vs separate)."""

    def __init__(self, curve: bool = False, parent=None):
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.spectrum_kind = QtWidgets.QComboBox()
        self.spectrum_kind.addItem("Power spectrum of each width's output", "output")
        self.spectrum_kind.addItem("Power spectrum of each stage's residual", "residual")
        layout.addWidget(self.spectrum_kind)
        self.radial = pg.PlotWidget(title="Radial power spectrum" if not curve else "Power spectrum")
        self.radial.setLogMode(x=True, y=True)
        self.radial.setLabel("bottom", "frequency (cycles per sample)")
        self.radial.showGrid(x=True, y=True, alpha=0.2)
        self.radial.addLegend(offset=(-10, 10), labelTextSize="8pt")
        self.tradeoff = pg.PlotWidget(title="PSNR vs parameters")
        self.tradeoff.setLabel("bottom", "parameters")
        self.tradeoff.setLabel("left", "PSNR (dB)")
        self.tradeoff.setLogMode(x=True, y=False)
        self.tradeoff.showGrid(x=True, y=True, alpha=0.2)
        self.tradeoff.addLegend(offset=(10, -10), labelTextSize="8pt")
        for plot in (self.radial, self.tradeoff):
            for side in ("bottom", "left"):
                plot.getAxis(side).enableAutoSIPrefix(False)
        # pyqtgraph labels every minor tick of a log axis, which collide in a narrow plot: 1-2-5 ticks only
        _log_ticks(self.radial.getAxis("bottom"), 1e-3, 1.0)
        _log_ticks(self.radial.getAxis("left"), 1e-12, 1e6, every_decade_only=True)
        _log_ticks(self.tradeoff.getAxis("bottom"), 10, 1e8)
        layout.addWidget(self.radial, 1)
        layout.addWidget(self.tradeoff, 1)
        self.coverage = QtWidgets.QLabel()
        self.coverage.setWordWrap(True)
        layout.addWidget(self.coverage)
        self._radial_items: list = []
        self._target_item = self.radial.plot(pen=pg.mkPen("#888", width=2, style=QtCore.Qt.DashLine), name="target")
        self._stream_item = self.tradeoff.plot(pen=pg.mkPen("#d62728", width=2), symbol="o", symbolSize=8,
                                               symbolBrush="#d62728", name="streamable (one network)")
        self._separate_item = self.tradeoff.plot(pen=pg.mkPen("#1f77b4", width=2, style=QtCore.Qt.DashLine), symbol="s",
                                                 symbolSize=7, symbolBrush="#1f77b4", name="separate SIRENs")
        self._selected_item = self.tradeoff.plot(pen=None, symbol="o", symbolSize=16, symbolBrush=None,
                                                 symbolPen=pg.mkPen("k", width=2))
        self._target_power = None
        self.spectrum_kind.currentIndexChanged.connect(lambda _: self._redraw())
        self._snapshot: Snapshot | None = None
        self._selected = 0

    def set_target_power(self, frequencies: np.ndarray, power: np.ndarray) -> None:
        self._target_power = (frequencies, power)

    def render(self, snapshot: Snapshot, selected: int) -> None:
        self._snapshot, self._selected = snapshot, selected
        self._redraw()

    def select(self, selected: int) -> None:
        self._selected = selected
        self._redraw(restyle_only=True)

    def _redraw(self, restyle_only: bool = False) -> None:
        snapshot = self._snapshot
        if snapshot is None or not snapshot.runs or not snapshot.runs[0].widths:
            return
        run = snapshot.runs[0]
        views = run.widths
        colors = width_colors(len(run.stages.widths))
        residual = self.spectrum_kind.currentData() == "residual"
        if not restyle_only or len(self._radial_items) != len(views):
            while len(self._radial_items) > len(views):
                item = self._radial_items.pop()
                self.radial.removeItem(item)
            while len(self._radial_items) < len(views):
                i = len(self._radial_items)
                self._radial_items.append(self.radial.plot(name=f"width {views[i].width}"))
            for item, view in zip(self._radial_items, views):
                power = view.residual_radial_power if residual else view.radial_power
                positive = power > 0
                item.setData(view.radial_frequencies[positive], power[positive])
            if self._target_power is not None and not residual:
                f, p = self._target_power
                self._target_item.setData(f[p > 0], p[p > 0])
            else:
                self._target_item.setData([], [])
        for i, item in enumerate(self._radial_items):
            item.setPen(pg.mkPen(colors[i], width=4 if i == self._selected else 1.5))
            item.setZValue(10 if i == self._selected else 0)
        params = np.array([v.params for v in views], dtype=float)
        psnrs = np.array([v.psnr for v in views], dtype=float)
        finite = np.isfinite(psnrs)
        self._stream_item.setData(params[finite], psnrs[finite])
        if self._selected < len(views) and finite[self._selected]:
            self._selected_item.setData([params[self._selected]], [psnrs[self._selected]])
        separate = [(r.params, r.psnr) for r in snapshot.runs[1:] if math.isfinite(r.psnr)]
        if separate:
            xs, ys = zip(*sorted(separate))
            self._separate_item.setData(list(xs), list(ys))
        else:
            self._separate_item.setData([], [])
        self.coverage.setText(coverage_text(views, snapshot.runs[1:]))


def _log_ticks(axis: pg.AxisItem, low: float, high: float, every_decade_only: bool = False) -> None:
    """Fixed 1-2-5 (or decade) ticks on a log axis."""
    ticks = []
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for mantissa in (1,) if every_decade_only else (1, 2, 5):
            value = mantissa * 10.0 ** exponent
            ticks.append((math.log10(value), f"{value:g}"))
    axis.setTicks([ticks, []])


def coverage_text(views, separate_runs) -> str:
    """The paper's Table 1 in one line: parameters needed to cover the PSNR range of the widths."""
    trained = [v for v in views if math.isfinite(v.psnr)]
    if len(trained) < 2:
        return ""
    low, high = min(v.psnr for v in trained), max(v.psnr for v in trained)
    text = (f"One streamable network covers {low:.1f}–{high:.1f} dB with {trained[-1].params:,} parameters "
            f"(every width is a slice of it).")
    if separate_runs:
        total = sum(r.params for r in separate_runs)
        text += f" Separate models: {total:,} parameters in total (×{total / trained[-1].params:.2f})."
    return text


class WidthLab(QtWidgets.QWidget):
    """What both growth views share: the slider on top, the plots on the right, a line of metrics below.

    Subclasses put their panels into ``self.body`` (left of the plots) and implement ``show_width`` and,
    if they draw the target or every width at once, ``_new_target`` and ``_draw_widths``.
    """

    def __init__(self, curve: bool, parent=None):
        super().__init__(parent)
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.slider = WidthSlider()
        outer.addWidget(self.slider)
        row = QtWidgets.QHBoxLayout()
        self.body = QtWidgets.QGridLayout()
        self.plots = GrowthPlots(curve=curve)
        self.plots.setMinimumWidth(300)
        row.addLayout(self.body, 3)
        row.addWidget(self.plots, 2 if curve else 1)
        outer.addLayout(row, 1)
        self.info = QtWidgets.QLabel()
        self.info.setTextFormat(QtCore.Qt.RichText)
        outer.addWidget(self.info)
        self.slider.widthChanged.connect(self.show_width)
        self._snapshot: Snapshot | None = None
        self._target_id = None

    def render(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        if self._target_id != id(snapshot.target):
            self._target_id = id(snapshot.target)
            self._new_target(snapshot)
            if snapshot.target_radial_power is not None:
                self.plots.set_target_power(*snapshot.target_radial_power)
        if not snapshot.runs or snapshot.runs[0].stages is None or not snapshot.runs[0].widths:
            return
        run = snapshot.runs[0]
        self._draw_widths(snapshot)
        self.slider.set_stages(run.stages.widths, run.stages.states, len(run.widths), run.stages.stage)
        self.plots.render(snapshot, self.slider.index)
        self.show_width(self.slider.index)

    def _new_target(self, snapshot: Snapshot) -> None:
        pass

    def _draw_widths(self, snapshot: Snapshot) -> None:
        pass

    def show_width(self, index: int) -> None:
        raise NotImplementedError


class GrowthLabView(WidthLab):
    """Images: target, reconstruction, residual and their spectra at the slider's width, plus the plots."""

    pixelReport = QtCore.Signal(str)

    def __init__(self, parent=None):
        super().__init__(curve=False, parent=parent)
        self.target = ImagePanel("Target")
        self.reconstruction = ImagePanel("Reconstruction")
        self.residual = ImagePanel("Residual", colormap="CET-D1")
        self.error = ImagePanel("|Error|", colormap="inferno")
        self.spectrum = ImagePanel("Log spectrum", colormap="viridis")
        self.residual_spectrum = ImagePanel("Residual log spectrum", colormap="viridis")
        panels = (self.target, self.reconstruction, self.residual, self.error, self.spectrum, self.residual_spectrum)
        for i, panel in enumerate(panels):
            self.body.addWidget(panel, i // 3, i % 3)
        for panel in (self.reconstruction, self.residual, self.error):
            panel.link(self.target)
        self.residual_spectrum.link(self.spectrum)
        for panel in (self.target, self.reconstruction, self.residual, self.error):
            panel.hovered.connect(self._report_pixel)
        self._boundary = pg.InfiniteLine(angle=90, pen=pg.mkPen("#ff7f0e", width=2, style=QtCore.Qt.DashLine))
        self.reconstruction.view.addItem(self._boundary)
        self._boundary.hide()

    def _new_target(self, snapshot: Snapshot) -> None:
        self.target.show_array(snapshot.target, (0.0, 1.0))

    def show_width(self, index: int) -> None:
        """Swap every panel to the width at ``index`` (arrays are ready in the snapshot)."""
        snapshot = self._snapshot
        if snapshot is None or not snapshot.runs or index >= len(snapshot.runs[0].widths):
            return
        run = snapshot.runs[0]
        view = run.widths[index]
        self.reconstruction.set_title(f"Width {view.width} · {view.psnr:.2f} dB")
        self.reconstruction.show_array(view.reconstruction, (0.0, 1.0))
        limit = view.residual_limit
        what = "output" if index == 0 else f"{view.width} − {run.widths[index - 1].width}"
        self.residual.set_title(f"Residual {what} (±{limit:.2g})")
        self.residual.show_array(view.residual, (-limit, limit))
        self.error.set_title(f"|Error| (0 … {ERROR_LEVELS[1]:g})")
        self.error.show_array(view.error, ERROR_LEVELS)
        top = float(snapshot.target_spectrum.max()) or 1.0
        self.spectrum.show_array(view.spectrum, (0.0, top))
        self.residual_spectrum.show_array(view.residual_spectrum, (0.0, top))
        columns = snapshot.target.shape[1]
        if view.revealed < columns:
            self._boundary.setValue(view.revealed)
            self._boundary.show()
        else:
            self._boundary.hide()
        self.plots.select(index)
        self.info.setText(width_info(run, index))

    def _report_pixel(self, row: int, column: int) -> None:
        snapshot = self._snapshot
        if row < 0 or snapshot is None or not snapshot.runs or not snapshot.runs[0].widths:
            self.pixelReport.emit("")
            return
        view = snapshot.runs[0].widths[min(self.slider.index, len(snapshot.runs[0].widths) - 1)]
        value = np.atleast_1d(view.reconstruction[row, column])
        self.pixelReport.emit(f"pixel (x {column}, y {row}) at width {view.width}: target "
                              f"{np.atleast_1d(snapshot.target[row, column]).mean():.3f}, reconstruction {value.mean():.3f}, "
                              f"residual {view.residual[row, column]:+.4f}")


def width_info(run, index: int) -> str:
    view, info = run.widths[index], run.stages
    ssim = f" · SSIM {view.ssim:.4f}" if math.isfinite(view.ssim) else ""
    stage = f"stage {index + 1}/{len(info.widths)} {STATE_WORDS[view.state]}"
    where = f" · target: first {view.revealed} columns" if view.revealed < (run.reconstruction.shape[1] if run.reconstruction.ndim > 1 else run.reconstruction.shape[0]) else ""
    return (f"<b>width {view.width}</b> · {view.params:,} parameters · PSNR {view.psnr:.2f} dB{ssim} · {stage}{where}"
            f" · {info.mode}" + (" · all stages trained" if info.finished else ""))


class CurveGrowthView(WidthLab):
    """1D: every width's output (target dashed) and every stage's residual, the slider's width in bold."""

    def __init__(self, parent=None):
        super().__init__(curve=True, parent=parent)
        self.output_plot = pg.PlotWidget(title="Output of each width (target dashed)")
        self.residual_plot = pg.PlotWidget(title="Residual each later stage added")
        for row, plot in enumerate((self.output_plot, self.residual_plot)):
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.addLegend(offset=(10, 10), labelTextSize="8pt")
            self.body.addWidget(plot, row, 0)
        self.output_plot.setYRange(-0.05, 1.05)
        self.residual_plot.setXLink(self.output_plot)
        self.target_item = self.output_plot.plot(pen=pg.mkPen("#222", width=2, style=QtCore.Qt.DashLine), name="target")
        self.target_item.setZValue(20)  # dashed on top of the outputs, as in the paper's Fig. 5
        self._items: list[tuple] = []

    def _new_target(self, snapshot: Snapshot) -> None:
        self.target_item.setData(np.linspace(0.0, 1.0, snapshot.target.size), snapshot.target)

    def _draw_widths(self, snapshot: Snapshot) -> None:
        x = np.linspace(0.0, 1.0, snapshot.target.size)
        views = snapshot.runs[0].widths
        while len(self._items) > len(views):
            for plot, item in zip((self.output_plot, self.residual_plot), self._items.pop()):
                plot.removeItem(item)
        while len(self._items) < len(views):
            width = views[len(self._items)].width
            self._items.append((self.output_plot.plot(name=f"width {width}"), self.residual_plot.plot(name=f"width {width}")))
        for i, ((output, residual), view) in enumerate(zip(self._items, views)):
            output.setData(x, view.reconstruction)
            if i:
                residual.setData(x, view.residual)
            else:  # stage 0 "adds" the whole base signal: plotting it would dwarf the real residuals
                residual.setData([], [])

    def show_width(self, index: int) -> None:
        snapshot = self._snapshot
        if snapshot is None or not snapshot.runs or index >= len(snapshot.runs[0].widths):
            return
        colors = width_colors(len(snapshot.runs[0].stages.widths))
        for i, items in enumerate(self._items):
            for item in items:
                item.setPen(pg.mkPen(colors[i], width=4 if i == index else 1.2))
                item.setZValue(10 if i == index else 0)
        self.plots.select(index)
        self.info.setText(width_info(snapshot.runs[0], index))

"""The FINER++ lab's view: small multiples of every sweep member (reconstruction, |error|, log spectrum),
PSNR against step and against k, and for the selected member why it behaves as it does: the activation with
the stretch its first layer uses shaded by a live histogram, and its lowest- and highest-frequency neurons.

Like every view it only draws snapshots; clicking a cell selects it, double-clicking (or the button) asks the
main window to open it large in the image lab.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from models.first_layer import FirstLayerView
from models.metrics import HF_CUTOFF
from models.worker import RunSnapshot, Snapshot

from .views import ERROR_LEVELS

ROWS = ("reconstruction", "|error|", "log spectrum")
MAX_COLUMNS = 8
"""Cells per band; more members wrap onto further bands."""
DEFAULT_K_POSITION = 1 / math.sqrt(2)
"""Where a member with the default bias init sits on the k axis (nn.Linear's bound for 2D inputs)."""


def member_colors(snapshot: Snapshot) -> list:
    """One colour per run: swept members along viridis by k (per activation), references grey."""
    colors = []
    swept = [run for run in snapshot.runs if run.config is not None and run.config.bias_range is not None]
    ks = sorted({run.config.bias_range for run in swept}) or [0.0]
    cmap = pg.colormap.get("viridis")
    for run in snapshot.runs:
        if run.config is None or run.config.bias_range is None:
            colors.append(pg.mkColor("#777777") if run.config is None or not run.config.kind.startswith("finer")
                          else pg.mkColor("#d62728"))
        else:
            position = ks.index(run.config.bias_range) / max(1, len(ks) - 1)
            colors.append(cmap.map(0.05 + 0.85 * position, mode="qcolor"))
    return colors


class CellViewBox(pg.ViewBox):
    """A fixed image cell: click selects, double-click opens (no panning or zooming)."""

    clicked = QtCore.Signal(bool)
    """True on a double-click."""

    def __init__(self):
        super().__init__(lockAspect=True, invertY=True, enableMouse=False, enableMenu=False)

    def mouseClickEvent(self, event) -> None:
        if event.button() == QtCore.Qt.LeftButton:
            event.accept()
            self.clicked.emit(bool(event.double()))


class SweepGrid(pg.GraphicsLayoutWidget):
    """Columns of cells, one per member in the snapshot's order; three image rows per band."""

    selected = QtCore.Signal(int, bool)
    """(run index, open it)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.ci.setSpacing(2)
        self._cells: list[tuple[pg.LabelItem, list[CellViewBox], list[pg.ImageItem]]] = []
        self._titles: list[str] = []
        self._selected = 0

    def ensure(self, count: int) -> None:
        if len(self._cells) == count:
            return
        self.clear()
        self._cells, self._titles = [], []
        for index in range(count):
            band, column = divmod(index, MAX_COLUMNS)
            top = band * (len(ROWS) + 1)
            label = pg.LabelItem("", size="8pt", color="#222")
            self.addItem(label, row=top, col=column)
            boxes, images = [], []
            for r, _ in enumerate(ROWS):
                box = CellViewBox()
                image = pg.ImageItem(axisOrder="row-major")
                if r == 1:
                    image.setColorMap(pg.colormap.get("inferno"))
                elif r == 2:
                    image.setColorMap(pg.colormap.get("viridis"))
                box.addItem(image)
                box.clicked.connect(lambda double, i=index: self.select(i, double))
                self.addItem(box, row=top + 1 + r, col=column)
                boxes.append(box)
                images.append(image)
            self._cells.append((label, boxes, images))
            self._titles.append("")
        self._paint_selection()

    def select(self, index: int, open_it: bool = False) -> None:
        self._selected = index
        self._paint_selection()
        self.selected.emit(index, open_it)

    def _paint_selection(self) -> None:
        for i, (_, boxes, _) in enumerate(self._cells):
            pen = pg.mkPen("#ff7f0e", width=3) if i == self._selected else pg.mkPen("#cccccc", width=1)
            for box in boxes:
                box.setBorder(pen)

    def render(self, snapshot: Snapshot, colors: list) -> None:
        self.ensure(len(snapshot.runs))
        spectrum_top = float(snapshot.target_spectrum.max()) or 1.0
        for i, (run, (label, boxes, images)) in enumerate(zip(snapshot.runs, self._cells)):
            color = colors[i].name()
            title = (f"<span style='color:{color}'>■</span> <b>{_short(run)}</b><br>"
                     f"{run.psnr:.2f} dB<br>HF {run.hf_energy:.3f}")
            if title != self._titles[i]:
                self._titles[i] = title
                label.setText(title)
            first = images[0].image is None
            images[0].setImage(run.reconstruction, levels=(0.0, 1.0), autoLevels=False)
            images[1].setImage(run.error, levels=ERROR_LEVELS, autoLevels=False)
            images[2].setImage(run.spectrum, levels=(0.0, spectrum_top), autoLevels=False)
            if first:
                for box in boxes:
                    box.autoRange(padding=0.0)


def _short(run: RunSnapshot) -> str:
    return run.label.replace("FINER++ ", "F++ ").replace(" default bias", " (default)").replace(" sine", "")


class ActivationPlot(pg.PlotWidget):
    """The activation over its input, the histogram of first-layer pre-activations beneath, and the stretch
    the layer uses (1st-99th percentile) shaded."""

    def __init__(self, parent=None):
        super().__init__(parent, title="Activation and first-layer pre-activations")
        self.setBackground("w")
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setLabel("bottom", "pre-activation z = w·x + b")
        self.histogram = pg.PlotDataItem(stepMode="center", fillLevel=-1.05, brush=(31, 119, 180, 110),
                                         pen=pg.mkPen((31, 119, 180, 220), width=1.5))
        self.curve = pg.PlotDataItem(pen=pg.mkPen((40, 40, 40, 170), width=1))
        self.curve.setDownsampling(auto=True, method="peak")  # far from 0 the curve oscillates faster than pixels
        self.region = pg.LinearRegionItem(movable=False, brush=(255, 127, 14, 45), pen=pg.mkPen((255, 127, 14, 120)))
        self.addItem(self.region)
        self.addItem(self.curve)
        self.addItem(self.histogram)  # above the curve, which far from 0 can be a dense band of oscillations
        self.setYRange(-1.1, 1.1, padding=0)
        self._key = None

    def render(self, view: FirstLayerView, title: str) -> None:
        self.curve.setData(view.curve_z, view.curve)
        peak = float(view.counts.max()) or 1.0
        self.histogram.setData(view.edges, -1.05 + 2.0 * view.counts / peak)
        self.region.setRegion(view.used)
        key = (title, round(float(view.curve_z[-1]), 2))
        if key != self._key:
            self._key = key
            self.setTitle(title)
            self.setXRange(float(view.curve_z[0]), float(view.curve_z[-1]), padding=0)


class NeuronStrip(pg.GraphicsLayoutWidget):
    """The first layer's lowest- and highest-frequency neurons as images (FINER++ Fig. 8)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.ci.setSpacing(1)
        self._rows: list[tuple[pg.LabelItem, list[pg.ImageItem], list[pg.ViewBox]]] = []
        for r in range(2):
            label = pg.LabelItem("", size="8pt", color="#222", justify="left")
            self.addItem(label, row=2 * r, col=0, colspan=4)
            images, boxes = [], []
            for c in range(4):
                box = pg.ViewBox(lockAspect=True, invertY=True, enableMouse=False, enableMenu=False)
                image = pg.ImageItem(axisOrder="row-major")
                image.setColorMap(pg.colormap.get("CET-D1"))
                box.addItem(image)
                self.addItem(box, row=2 * r + 1, col=c)
                images.append(image)
                boxes.append(box)
            self._rows.append((label, images, boxes))

    def render(self, view: FirstLayerView) -> None:
        for (label, images, boxes), name, stack, freqs in zip(
                self._rows, ("lowest", "highest"), (view.low_images, view.high_images),
                (view.low_frequencies, view.high_frequencies)):
            label.setText(f"{name} frequencies: " + ", ".join(f"{f:.0f}" for f in freqs) + " cycles/image")
            for i, (image, box) in enumerate(zip(images, boxes)):
                if i < len(stack):
                    first = image.image is None
                    image.setImage(stack[i], levels=(-1.0, 1.0), autoLevels=False)
                    if first:
                        box.autoRange(padding=0.0)


class SweepLabView(QtWidgets.QWidget):
    """The FINER++ lab (preset 'sweep')."""

    openRequested = QtCore.Signal(int)
    """Open run i large in the image lab."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.grid = SweepGrid()
        self.header = QtWidgets.QLabel()
        self.header.setWordWrap(True)
        self.open_button = QtWidgets.QPushButton("Open large in the image lab")
        self.open_button.setToolTip("Show the selected member in the image lab (double-click a cell does the same); "
                                    "training goes on")
        self.psnr_plot = pg.PlotWidget(title="PSNR vs step")
        self.k_plot = pg.PlotWidget(title="PSNR vs k")
        self.hf_plot = pg.PlotWidget(title="High-frequency energy vs k")
        self.hf_plot.setToolTip(f"Share of the reconstruction's spectral energy above {HF_CUTOFF:g} cycles per pixel "
                                "(mean removed); the dotted line is the target's")
        for plot, left, bottom in ((self.psnr_plot, "PSNR (dB)", "step"), (self.k_plot, "PSNR (dB)", "k"),
                                   (self.hf_plot, f"share above {HF_CUTOFF:g} cyc/px", "k")):
            plot.setBackground("w")
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setLabel("left", left)
            plot.setLabel("bottom", bottom)
        self.psnr_plot.setToolTip("One curve per member, coloured as the squares above the cells; dashed: default init")
        self.activation_plot = ActivationPlot()
        self.neurons = NeuronStrip()

        for plot in (self.psnr_plot, self.k_plot, self.hf_plot, self.activation_plot):
            for side in ("left", "bottom"):
                plot.getAxis(side).enableAutoSIPrefix(False)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.header, 1)
        top.addWidget(self.open_button)
        plots = QtWidgets.QHBoxLayout()
        plots.addWidget(self.psnr_plot, 4)
        plots.addWidget(self.k_plot, 3)
        plots.addWidget(self.hf_plot, 3)
        why = QtWidgets.QHBoxLayout()
        why.addWidget(self.activation_plot, 3)
        why.addWidget(self.neurons, 2)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.grid, 5)
        layout.addLayout(plots, 3)
        layout.addLayout(why, 3)

        self.selected = 0
        self._snapshot: Snapshot | None = None
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._k_items: dict | None = None
        self._tick = 0
        self._generation = None
        self.grid.selected.connect(self._select)
        self.open_button.clicked.connect(lambda: self.openRequested.emit(self.selected))

    def _select(self, index: int, open_it: bool) -> None:
        self.selected = index
        if self._snapshot is not None:
            self._render_selection(self._snapshot)
        if open_it:
            self.openRequested.emit(index)

    def render(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        if not snapshot.runs:
            return
        if snapshot.generation != self._generation:
            self._generation = snapshot.generation
            for curve in self._curves.values():
                self.psnr_plot.removeItem(curve)
            self._curves = {}
            self._k_items = None
            self.selected = min(self.selected, len(snapshot.runs) - 1)
        colors = member_colors(snapshot)
        self.grid.render(snapshot, colors)
        for i, run in enumerate(snapshot.runs):
            curve = self._curves.get(run.label)
            if curve is None:
                dashed = run.config is None or run.config.bias_range is None
                pen = pg.mkPen(colors[i], width=2, style=QtCore.Qt.DashLine if dashed else QtCore.Qt.SolidLine)
                curve = self.psnr_plot.plot(pen=pen)
                self._curves[run.label] = curve
            if len(run.psnr_history):
                curve.setData(run.psnr_history[:, 0], run.psnr_history[:, 1])
        # the cells follow every snapshot; the plots beside them alternate, so that no snapshot's redraw
        # holds the GUI thread long (measured: p95 event-loop gap 160 ms when all of it was redrawn at once)
        self._tick += 1
        if self._tick % 2 or self._k_items is None:
            self._render_k_plots(snapshot, colors)
        else:
            self._render_selection(snapshot)

    def _render_k_plots(self, snapshot: Snapshot, colors: list) -> None:
        """Final PSNR and HF energy against k: a line per swept activation, a dashed level per reference.
        Items are made once per session and only get new data (re-creating them stalls the GUI)."""
        by_activation: dict[str, list[tuple[float, RunSnapshot, object]]] = {}
        for run, color in zip(snapshot.runs, colors):
            if run.config is None:
                continue
            k = DEFAULT_K_POSITION if run.config.bias_range is None else run.config.bias_range
            by_activation.setdefault(run.config.kind, []).append((k, run, color))
        if self._k_items is None:
            self._k_items = self._make_k_items(by_activation)
        for kind, entries in by_activation.items():
            entries.sort(key=lambda e: e[0])
            ks = np.array([e[0] for e in entries])
            for (item, text), values in zip(self._k_items[kind], ([e[1].psnr for e in entries],
                                                                  [e[1].hf_energy for e in entries])):
                values = np.array(values, dtype=float)
                if isinstance(item, pg.InfiniteLine):
                    item.setValue(values[0])
                    text.setPos(0, values[0])
                else:
                    item.setData(ks, values)
        self._target_hf.setValue(snapshot.target_hf_energy if math.isfinite(snapshot.target_hf_energy) else 0.0)

    def _make_k_items(self, by_activation: dict) -> dict:
        for plot in (self.k_plot, self.hf_plot):
            plot.clear()
        self._target_hf = pg.InfiniteLine(0.0, angle=0, pen=pg.mkPen("#2ca02c", width=1, style=QtCore.Qt.DotLine),
                                          label="target", labelOpts={"position": 0.9, "color": "#2ca02c"})
        self.hf_plot.addItem(self._target_hf)
        items = {}
        for kind, entries in by_activation.items():
            swept = any(e[1].config.bias_range is not None for e in entries)
            pair = []
            for plot in (self.k_plot, self.hf_plot):
                if swept:
                    entries = sorted(entries, key=lambda e: e[0])
                    item = plot.plot(pen=pg.mkPen("#555", width=1), symbol="o", symbolSize=8, symbolPen=None,
                                     symbolBrush=[e[2] for e in entries])
                    pair.append((item, None))
                else:  # a reference at its default init: a dashed level across the plot
                    color = entries[0][2]
                    line = pg.InfiniteLine(0.0, angle=0, pen=pg.mkPen(color, width=1.5, style=QtCore.Qt.DashLine))
                    text = pg.TextItem(_short(entries[0][1]), color=color, anchor=(0, 1))
                    plot.addItem(line)
                    plot.addItem(text)
                    pair.append((line, text))
            items[kind] = pair
        return items

    def _render_selection(self, snapshot: Snapshot) -> None:
        index = min(self.selected, len(snapshot.runs) - 1)
        run = snapshot.runs[index]
        self.header.setText(f"<b>{run.label}</b> · {run.params:,} parameters · step {run.step} · {run.psnr:.2f} dB · "
                            f"HF energy {run.hf_energy:.3f} (target {snapshot.target_hf_energy:.3f}) — click a cell to "
                            f"inspect it, double-click to open it large")
        view = run.first_layer
        if view is not None:
            self.activation_plot.render(view, f"{view.activation}: first-layer pre-activations")
            self.neurons.render(view)

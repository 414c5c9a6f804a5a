"""The comparison board: runs of any lab pinned side by side (Compare menu).

*Compare → Pin the current runs* (Ctrl+Shift+B) copies every run of the latest snapshot onto the board
(models/compare.py). The board, a window of its own, plots the pins' metric against step, against training
seconds and, as final values, against parameter count with the Pareto front as a staircase; lists every pin's
settings in a table with the settings that differ emphasised; and shows two pins side by side (zoom and pan
locked together) with their difference A − B on a symmetric diverging scale. Images are compared by PSNR
(higher is better) and 3D fields by Chamfer-L1 (lower is better): the plots show one metric at a time (a
selector appears when the board holds both), the table lists every pin.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from models.compare import (PSNR, PinnedRun, ShapeMismatch, board_csv, difference, format_setting, pareto_front,
                            pareto_steps, pin_snapshot, settings_rows)

from .dialogs import ask_save_path
from .features import menu_named
from .views import ImagePanel, RUN_COLORS

DIFF_BACKGROUND = QtGui.QColor("#ffe9a8")
"""Cells of the settings that differ between pins."""
LEAD_COLUMNS = ("Pin", "Final metric")
DETAIL_COLUMNS = ("Params", "Step", "Seconds", "Lab")
"""The table: who and how good, then the settings that differ, then these, then the settings all pins share."""


def pin_color(index: int) -> QtGui.QColor:
    """The pin's colour (the runs' palette, then evenly spaced hues)."""
    if index < len(RUN_COLORS):
        return QtGui.QColor(RUN_COLORS[index])
    return pg.intColor(index - len(RUN_COLORS), hues=9, values=2, minValue=150)


class ABView(QtWidgets.QWidget):
    """Two pins side by side with locked zoom and pan, and A − B with a diverging map at symmetric levels."""

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        choose = QtWidgets.QHBoxLayout()
        self.a_box, self.b_box = QtWidgets.QComboBox(), QtWidgets.QComboBox()
        for text, box in (("A:", self.a_box), ("B:", self.b_box)):
            box.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(16)
            box.currentIndexChanged.connect(self.update_images)
            choose.addWidget(QtWidgets.QLabel(text))
            choose.addWidget(box, 1)
        layout.addLayout(choose)
        images = QtWidgets.QHBoxLayout()
        self.a_panel, self.b_panel = ImagePanel("A"), ImagePanel("B")
        self.diff_panel = ImagePanel("A − B", colormap="CET-D1")
        for panel in (self.a_panel, self.b_panel, self.diff_panel):
            panel.setMinimumSize(140, 140)
            images.addWidget(panel)
        self.b_panel.link(self.a_panel)
        self.diff_panel.link(self.a_panel)
        layout.addLayout(images, 1)
        self.note = QtWidgets.QLabel()
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.pins: list[PinnedRun] = []
        self.difference = None
        """The models.compare.Difference shown, or None (nothing to compare, or the shapes differ)."""

    def set_pins(self, pins: list[PinnedRun]) -> None:
        """The pins with an image (curves are compared in the plots), keeping the choices where possible."""
        chosen = [box.currentData() for box in (self.a_box, self.b_box)]
        self.pins = [pin for pin in pins if pin.image is not None and pin.image_kind != "curve"]
        numbers = [pin.number for pin in self.pins]
        for k, box in enumerate((self.a_box, self.b_box)):
            blocker = QtCore.QSignalBlocker(box)
            box.clear()
            for pin in self.pins:
                box.addItem(pin.name, pin.number)
            default = min(k, len(numbers) - 1)
            box.setCurrentIndex(numbers.index(chosen[k]) if chosen[k] in numbers else default)
            del blocker
        self.update_images()

    def fit(self) -> None:
        """Show the whole of A (B and A − B follow: they are linked)."""
        if self.a_panel._shape is not None:
            self.a_panel.view.autoRange(padding=0.0)

    def pin(self, box: QtWidgets.QComboBox) -> PinnedRun | None:
        return next((p for p in self.pins if p.number == box.currentData()), None)

    def update_images(self) -> None:
        a, b = self.pin(self.a_box), self.pin(self.b_box)
        self.difference = None
        for panel, pin, letter in ((self.a_panel, a, "A"), (self.b_panel, b, "B")):
            if pin is None:
                panel.image.clear()
                panel.set_title(letter)
                continue
            panel.image.setColorMap(pg.colormap.get("CET-D1")) if pin.image_kind == "slice" \
                else panel.image.setLookupTable(None)
            panel.show_array(pin.image, pin.image_levels)
            panel.set_title(f"{letter} · {_metric_text(pin)}")
        if a is None or b is None:
            self.diff_panel.image.clear()
            self.diff_panel.set_title("A − B")
            self.note.setText("Pin runs (Compare → Pin the current runs) to compare their images here."
                              if not self.pins else "")
            return
        try:
            self.difference = difference(a.image, b.image)
        except ShapeMismatch as exc:
            self.diff_panel.image.clear()
            self.diff_panel.set_title("A − B: not comparable")
            self.note.setText(str(exc))
            return
        level = self.difference.level
        self.diff_panel.show_array(self.difference.display, (-level, level))
        self.diff_panel.set_title(f"A − B (±{level:g})")
        self.note.setText("Zoom or pan any image: the others follow. A − B: " +
                          ("channels averaged, " if self.difference.values.ndim == 3 else "") +
                          f"white = equal, the colour scale is fixed at ±{level:g}.")


class ComparisonBoard(QtWidgets.QWidget):
    """A window of its own (owned by the main window) holding the pinned runs."""

    def __init__(self, parent=None):
        super().__init__(parent, QtCore.Qt.Window)
        self.setWindowTitle("FieldLab – comparison board")
        self.resize(1240, 900)
        self.pins: list[PinnedRun] = []
        self.next_number = 1
        layout = QtWidgets.QVBoxLayout(self)
        bar = QtWidgets.QHBoxLayout()
        self.summary = QtWidgets.QLabel()
        self.metric_box = QtWidgets.QComboBox()
        self.metric_box.setToolTip("Images are compared by PSNR (higher is better), 3D fields by Chamfer-L1 "
                                   "(lower is better): the plots show one at a time")
        self.metric_box.currentIndexChanged.connect(self._plot)
        self.remove_button = QtWidgets.QPushButton("Remove selected pin")
        self.remove_button.clicked.connect(self.remove_selected)
        self.clear_button = QtWidgets.QPushButton("Clear the board")
        self.clear_button.clicked.connect(self.clear)
        self.export_button = QtWidgets.QPushButton("Export board data as CSV…")
        self.export_button.clicked.connect(lambda: self.export_csv())
        bar.addWidget(self.summary, 1)
        bar.addWidget(self.metric_box)
        for button in (self.remove_button, self.clear_button, self.export_button):
            bar.addWidget(button)
        layout.addLayout(bar)

        self.plots = pg.GraphicsLayoutWidget()
        self.step_plot = self.plots.addPlot(row=0, col=0, title="against step")
        self.time_plot = self.plots.addPlot(row=0, col=1, title="against training time")
        self.params_plot = self.plots.addPlot(row=0, col=2, title="final value against parameters")
        self.step_plot.setLabel("bottom", "step")
        self.time_plot.setLabel("bottom", "training seconds")
        self.params_plot.setLabel("bottom", "parameters (log scale)")
        for column, plot in enumerate((self.step_plot, self.time_plot, self.params_plot)):
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.getAxis("left").enableAutoSIPrefix(False)  # Chamfer values read as they are, not as 'x0.001'
            self.plots.ci.layout.setColumnStretchFactor(column, 1)
        self.plots.setMinimumHeight(260)
        self.legend = QtWidgets.QListWidget()
        """One line per pin the plots show, in its colour (then the Pareto front); the table has the details."""
        self.legend.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)
        self.legend.setTextElideMode(QtCore.Qt.ElideMiddle)
        self.legend.setSelectionMode(QtWidgets.QAbstractItemView.NoSelection)
        self.legend.setFocusPolicy(QtCore.Qt.NoFocus)
        self.legend.setStyleSheet("QListWidget { border: none; }")
        plots_row = QtWidgets.QWidget()
        row_layout = QtWidgets.QHBoxLayout(plots_row)
        row_layout.setContentsMargins(0, 0, 0, 0)
        row_layout.addWidget(self.plots, 1)
        row_layout.addWidget(self.legend)

        self.table = QtWidgets.QTableWidget()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.verticalHeader().hide()
        self.differing_only = QtWidgets.QCheckBox("Only the settings that differ")
        self.differing_only.toggled.connect(self._fill_table)
        table_box = QtWidgets.QWidget()
        table_layout = QtWidgets.QVBoxLayout(table_box)
        table_layout.setContentsMargins(0, 0, 0, 0)
        table_layout.addWidget(self.table, 1)
        table_layout.addWidget(self.differing_only)
        self.ab = ABView()
        lower = QtWidgets.QSplitter(QtCore.Qt.Horizontal)
        lower.addWidget(table_box)
        lower.addWidget(self.ab)
        lower.setSizes([700, 540])
        splitter = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        splitter.addWidget(plots_row)
        splitter.addWidget(lower)
        splitter.setSizes([420, 440])
        layout.addWidget(splitter, 1)
        self.curves: dict[int, tuple] = {}
        """Pin number -> (step curve, seconds curve, parameter point) of the pins the plots show."""
        self.front = np.zeros(0, dtype=np.int64)
        """Pin numbers on the Pareto front of the metric shown."""
        self.front_line = self.front_points = None
        """The front's staircase and its ringed points (None when no pin has a finite value)."""
        self.refresh()

    def showEvent(self, event: QtGui.QShowEvent) -> None:
        super().showEvent(event)
        QtCore.QTimer.singleShot(0, self.ab.fit)  # once the panels have their sizes

    # -- pins ------------------------------------------------------------------------------------------
    def add_pins(self, pins: list[PinnedRun]) -> None:
        self.pins.extend(pins)
        self.next_number = max([self.next_number, *(p.number + 1 for p in pins)])
        self.refresh()

    def remove_pins(self, numbers) -> None:
        numbers = set(numbers)
        self.pins = [pin for pin in self.pins if pin.number not in numbers]
        self.refresh()

    def remove_selected(self) -> None:
        rows = {index.row() for index in self.table.selectionModel().selectedRows()}
        self.remove_pins(self.pins[row].number for row in rows if row < len(self.pins))

    def clear(self) -> None:
        self.pins = []
        self.refresh()

    def color_of(self, pin: PinnedRun) -> QtGui.QColor:
        return pin_color(self.pins.index(pin))

    def export_csv(self, path: str | None = None) -> str:
        """Write every pin's history to ``path`` (asks for a file unless given); returns the path ('' if not)."""
        path = path or ask_save_path(self, "Export board data", "CSV (*.csv)")
        if not path:
            return ""
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(board_csv(self.pins))
        self.summary.setText(f"{self._summary_text()} · wrote {path}")
        return path

    # -- drawing ---------------------------------------------------------------------------------------
    def refresh(self) -> None:
        metrics = list(dict.fromkeys(pin.metric_name for pin in self.pins))
        current = self.metric_box.currentText()
        blocker = QtCore.QSignalBlocker(self.metric_box)
        self.metric_box.clear()
        self.metric_box.addItems(metrics)
        if current in metrics:
            self.metric_box.setCurrentText(current)
        elif PSNR in metrics:
            self.metric_box.setCurrentText(PSNR)
        del blocker
        self.metric_box.setVisible(len(metrics) > 1)
        self.remove_button.setEnabled(bool(self.pins))
        self.clear_button.setEnabled(bool(self.pins))
        self.export_button.setEnabled(bool(self.pins))
        self.summary.setText(self._summary_text())
        self._plot()
        self._fill_table()
        self.ab.set_pins(self.pins)

    def _summary_text(self) -> str:
        if not self.pins:
            return "No pins yet: Compare → Pin the current runs (Ctrl+Shift+B) in the main window."
        return f"{len(self.pins)} pinned run{'s' if len(self.pins) != 1 else ''}"

    def shown_metric(self) -> str:
        return self.metric_box.currentText() or PSNR

    def _plot(self) -> None:
        for plot in (self.step_plot, self.time_plot, self.params_plot):
            plot.clear()
        self.legend.clear()
        self.curves = {}
        metric = self.shown_metric()
        pins = [pin for pin in self.pins if pin.metric_name == metric]
        better = "higher" if not pins or pins[0].higher_is_better else "lower"
        for plot in (self.step_plot, self.time_plot, self.params_plot):
            plot.setLabel("left", f"{metric}, {better} is better")
        for pin in pins:
            color = self.color_of(pin)
            history = pin.history[np.isfinite(pin.history[:, 2])]
            pen = pg.mkPen(color, width=2)
            step_curve = self.step_plot.plot(history[:, 0], history[:, 2], pen=pen)
            seconds_pen = pg.mkPen(color, width=2, style=QtCore.Qt.DashLine if pin.seconds_estimated else QtCore.Qt.SolidLine)
            time_curve = self.time_plot.plot(history[:, 1], history[:, 2], pen=seconds_pen)
            finite = math.isfinite(pin.metric)
            point = self.params_plot.plot([math.log10(pin.params)] if finite else [], [pin.metric] if finite else [],
                                          pen=None,
                                          symbol="o", symbolSize=9, symbolBrush=color, symbolPen=pg.mkPen("k", width=0.5))
            self.curves[pin.number] = (step_curve, time_curve, point)
            self.legend.addItem(QtWidgets.QListWidgetItem(_line_icon(color), pin.short_name))
            self.legend.item(self.legend.count() - 1).setToolTip(pin.name)
        indices = pareto_front([(p.params, p.metric) for p in pins], pins[0].higher_is_better if pins else True)
        self.front = np.asarray([pins[i].number for i in indices], dtype=np.int64)
        self.front_line = self.front_points = None
        if len(indices):
            params = np.asarray([pins[i].params for i in indices], float)
            values = np.asarray([pins[i].metric for i in indices], float)
            xs, ys = pareto_steps(np.log10(params), values)
            self.front_line = self.params_plot.plot(xs, ys, pen=pg.mkPen("#444444", width=1.5, style=QtCore.Qt.DashLine))
            self.front_points = self.params_plot.plot(np.log10(params), values, pen=None, symbol="o", symbolSize=17,
                                                      symbolBrush=None, symbolPen=pg.mkPen("#222222", width=2))
            self.legend.addItem(QtWidgets.QListWidgetItem(_line_icon(QtGui.QColor("#444444"), dashed=True),
                                                          "Pareto front (ringed points)"))
        if pins:
            _parameter_ticks(self.params_plot.getAxis("bottom"), min(p.params for p in pins), max(p.params for p in pins))
        if any(pin.seconds_estimated for pin in pins):
            self.legend.addItem(QtWidgets.QListWidgetItem(_line_icon(QtGui.QColor("#888888"), dashed=True),
                                                          "dashed: seconds estimated"))
        self.legend.setFixedWidth(max(120, min(300, self.legend.sizeHintForColumn(0) + 16)))

    def _fill_table(self) -> None:
        table = settings_rows(self.pins)
        only = self.differing_only.isChecked() and len(self.pins) > 1
        differing = [c for c in table.columns if table.differs(c)]
        shared = [] if only else [c for c in table.columns if not table.differs(c)]
        titles = (*LEAD_COLUMNS, *differing, *DETAIL_COLUMNS, *shared)
        self.table.clear()
        self.table.setRowCount(len(self.pins))
        self.table.setColumnCount(len(titles))
        bold = QtGui.QFont()
        bold.setBold(True)
        for c, title in enumerate(titles):
            item = QtWidgets.QTableWidgetItem(title + (" ≠" if table.differs(title) else ""))
            if table.differs(title):
                item.setFont(bold)
                item.setToolTip("differs between the pins")
            self.table.setHorizontalHeaderItem(c, item)
        for r, (pin, row) in enumerate(zip(self.pins, table.rows)):
            values = dict(zip(table.columns, row))
            fixed = {"Pin": pin.short_name, "Final metric": _metric_text(pin), "Params": f"{pin.params:,}",
                     "Step": str(pin.step), "Seconds": f"{pin.seconds:.1f}", "Lab": pin.lab_title}
            for c, title in enumerate(titles):
                item = QtWidgets.QTableWidgetItem(fixed[title] if title in fixed else format_setting(values[title]))
                if title == "Pin":
                    swatch = QtGui.QPixmap(12, 12)
                    swatch.fill(self.color_of(pin))
                    item.setIcon(QtGui.QIcon(swatch))
                    item.setToolTip(pin.name)
                elif table.differs(title):
                    item.setBackground(DIFF_BACKGROUND)
                    item.setFont(bold)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self.table.setColumnWidth(0, min(self.table.columnWidth(0), 220))
        self.differing_only.setEnabled(len(self.pins) > 1)

    def differing_columns(self) -> list[str]:
        """Settings columns the table emphasises (headers end in ' ≠')."""
        headers = [self.table.horizontalHeaderItem(c).text() for c in range(self.table.columnCount())]
        return [h[:-2] for h in headers if h.endswith(" ≠")]


def _metric_text(pin: PinnedRun) -> str:
    if not math.isfinite(pin.metric):
        return "–"
    return f"{pin.metric:.2f} dB" if pin.metric_name == PSNR else f"Chamfer-L1 {pin.metric:.4f}"


def _line_icon(color: QtGui.QColor, dashed: bool = False) -> QtGui.QIcon:
    """A short line in ``color``, as the legend's sample."""
    pixmap = QtGui.QPixmap(22, 12)
    pixmap.fill(QtCore.Qt.transparent)
    painter = QtGui.QPainter(pixmap)
    painter.setPen(QtGui.QPen(color, 3, QtCore.Qt.DashLine if dashed else QtCore.Qt.SolidLine))
    painter.drawLine(1, 6, 21, 6)
    painter.end()
    return QtGui.QIcon(pixmap)


def _parameter_ticks(axis: pg.AxisItem, low: int, high: int) -> None:
    """1-2-5 ticks on the log10 parameter axis, written 500, 1k, 20k, 1.5M."""
    ticks = []
    for exponent in range(math.floor(math.log10(max(low, 1))) - 1, math.ceil(math.log10(max(high, 1))) + 2):
        for mantissa in (1, 2, 5):
            value = mantissa * 10 ** exponent
            if value >= 1:
                ticks.append((math.log10(value), _compact(value)))
    axis.setTicks([ticks, []])


def _compact(value: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


class CompareFeature(QtCore.QObject):
    """The Compare menu's actions on one main window; the board is made on first use and closes with the window."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self._board: ComparisonBoard | None = None
        self._seen = (None, None, None)
        """(snapshot, scene, signal) as the last snapshot arrived: a restart replaces the scene before the new
        session's first snapshot, so a pin must take the scene that snapshot was trained with."""
        window.session.snapshotReady.connect(self._snapshot_arrived)
        window.installEventFilter(self)

    @property
    def board(self) -> ComparisonBoard:
        if self._board is None:
            self._board = ComparisonBoard(self.window)
        return self._board

    def _snapshot_arrived(self, snapshot) -> None:
        self._seen = (snapshot, self.window.session.scene, self.window.session.signal)

    def pin_current(self) -> int:
        """Pin every run of the latest snapshot; returns how many were pinned (and shows the board)."""
        session = self.window.session
        snapshot = session.last_snapshot
        seen, scene, signal = self._seen
        if snapshot is None or seen is not snapshot:
            scene, signal = session.scene, session.signal
        if snapshot is None or scene is None or signal is None or not snapshot.runs:
            self.window.statusBar().showMessage("Nothing to pin yet: no run has been drawn", 5000)
            return 0
        pins = pin_snapshot(snapshot, scene, signal, self.board.next_number)
        self.board.add_pins(pins)
        self.window.statusBar().showMessage(f"Pinned {len(pins)} run{'s' if len(pins) != 1 else ''} "
                                            f"({len(self.board.pins)} on the board)", 5000)
        self.show_board()
        return len(pins)

    def show_board(self) -> None:
        board = self.board
        board.show()
        board.raise_()

    def clear_board(self) -> None:
        if self._board is not None:
            self._board.clear()

    def eventFilter(self, watched, event) -> bool:
        if watched is self.window and event.type() == QtCore.QEvent.Close and self._board is not None:
            self._board.close()
        return False


def install(window) -> None:
    """The Compare menu: pin the current runs, show the board, clear it."""
    window.compare = CompareFeature(window)
    menu = menu_named(window, "Co&mpare")
    pin = menu.addAction("Pin the current runs", window.compare.pin_current)
    pin.setShortcut(QtGui.QKeySequence("Ctrl+Shift+B"))
    pin.setToolTip("Copy every run of the latest snapshot onto the comparison board")
    menu.addAction("Show the comparison board", window.compare.show_board)
    menu.addAction("Clear the board", window.compare.clear_board)

"""Building blocks of the crop & extend lab's view: image panels that show partitions (a grid, tints, a
checkerboard where cropped) and report clicks and drags, and the lab's plots."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from models.worker import Snapshot

from .views import RUN_COLORS, ImagePanel


def checkerboard(shape: tuple[int, int], square: int = 8) -> np.ndarray:
    rows, cols = np.indices(shape[:2])
    return np.where(((rows // square) + (cols // square)) % 2 == 0, 0.82, 0.62).astype(np.float32)


class PartitionViewBox(pg.ViewBox):
    """Left click and left drag report positions (in image pixels); wheel zooms, right/middle drag pan."""

    clicked = QtCore.Signal(float, float, object)
    """(x, y, keyboard modifiers)."""
    dragged = QtCore.Signal(object, bool, object)
    """(QRectF in pixels, finished, keyboard modifiers)."""

    def mouseClickEvent(self, event) -> None:
        if event.button() == QtCore.Qt.LeftButton:
            event.accept()
            point = self.mapSceneToView(event.scenePos())
            self.clicked.emit(point.x(), point.y(), event.modifiers())
        else:
            super().mouseClickEvent(event)

    def mouseDragEvent(self, event, axis=None) -> None:
        if event.button() != QtCore.Qt.LeftButton:
            super().mouseDragEvent(event, axis)
            return
        event.accept()
        start, end = self.mapSceneToView(event.buttonDownScenePos()), self.mapSceneToView(event.scenePos())
        self.dragged.emit(QtCore.QRectF(start, end).normalized(), event.isFinish(), event.modifiers())


class PartitionPanel(ImagePanel):
    """An image over a checkerboard (cropped = NaN = transparent), with partition grid lines and tints."""

    def __init__(self, title: str, colormap: str | None = None, interactive: bool = False, parent=None):
        super().__init__(title, colormap, parent, view_box=PartitionViewBox(lockAspect=True) if interactive else None)
        self.checker = pg.ImageItem()
        self.checker.setZValue(-1)
        self.view.addItem(self.checker)
        self.tint = pg.ImageItem()
        self.tint.setZValue(5)
        self.view.addItem(self.tint)
        self.grid = pg.PlotCurveItem(pen=pg.mkPen((255, 255, 255, 150), width=1), connect="pairs")
        self.grid.setZValue(6)
        self.view.addItem(self.grid)
        self.band = QtWidgets.QGraphicsRectItem()
        self.band.setPen(pg.mkPen((40, 120, 255), width=1.5, style=QtCore.Qt.DashLine))
        self.band.setBrush(pg.mkBrush(40, 120, 255, 40))
        self.band.setZValue(7)
        self.band.hide()
        self.view.addItem(self.band)
        self._grid_key = None

    def show_array(self, array: np.ndarray, levels: tuple[float, float]) -> None:
        reshaped = self._shape != array.shape[:2]
        super().show_array(array, levels)
        if reshaped:
            self.checker.setImage(checkerboard(array.shape[:2]), levels=(0.0, 1.0), autoLevels=False)

    def set_grid(self, pixel_partition: np.ndarray | None, columns: int) -> None:
        key = None if pixel_partition is None else (id(pixel_partition), columns)
        if key == self._grid_key:
            return
        self._grid_key = key
        if pixel_partition is None or pixel_partition.ndim != 2:
            self.grid.setData([], [])
            return
        h, w = pixel_partition.shape
        col_cells, row_cells = pixel_partition[0] % columns, pixel_partition[:, 0] // columns
        xs = [float(c) for c in np.nonzero(np.diff(col_cells))[0] + 1]
        ys = [float(r) for r in np.nonzero(np.diff(row_cells))[0] + 1]
        px = [v for x in xs for v in (x, x)] + [v for _ in ys for v in (0.0, float(w))]
        py = [v for _ in xs for v in (0.0, float(h))] + [v for y in ys for v in (y, y)]
        self.grid.setData(np.asarray(px), np.asarray(py))

    def set_tint(self, rgba: np.ndarray | None) -> None:
        if rgba is None:
            self.tint.clear()
        else:
            self.tint.setImage(rgba, levels=(0, 255), autoLevels=False)


class CropPlots(QtWidgets.QWidget):
    """Parameters against partitions kept (the paper's Fig. 1, right) and, for the extension experiment,
    the training MSE since the extension on a log scale (the paper's Fig. 7)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.params_plot = pg.PlotWidget(title="Parameters vs partitions kept")
        self.params_plot.setLabel("bottom", "partitions kept")
        self.params_plot.setLabel("left", "parameters")
        self.extension_plot = pg.PlotWidget(title="Extension (Fig. 7): training MSE")
        self.extension_plot.setLabel("bottom", "steps since the extension")
        self.extension_plot.setLogMode(x=False, y=True)
        self.extension_plot.addLegend(offset=(-10, 10), labelTextSize="8pt")
        for plot in (self.params_plot, self.extension_plot):
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.getAxis("left").enableAutoSIPrefix(False)
            layout.addWidget(plot)
        self._line = self.params_plot.plot(pen=pg.mkPen("#888", width=2))
        self._point = self.params_plot.plot(pen=None, symbol="o", symbolSize=11, symbolBrush="#d62728")
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._waiting = pg.TextItem("", color="#666", anchor=(0, 0))
        self.extension_plot.addItem(self._waiting)
        self.extension_mode = False
        """The session is the extension experiment (the plot shows before the extension starts)."""

    def render(self, snapshot: Snapshot, run_index: int) -> None:
        parts = next((run.partitions for run in snapshot.runs if run.partitions is not None), None)
        if parts is not None:
            total = parts.num_partitions
            kept = np.arange(total + 1)
            self._line.setData(kept, parts.global_params + kept * parts.local_params)
            self._point.setData([len(parts.present)], [parts.params])
        self.extension_plot.setVisible(self.extension_mode or any(run.extension_step is not None for run in snapshot.runs))
        for i, run in enumerate(snapshot.runs):
            if run.extension_step is None:
                continue
            curve = self._curves.get(run.label)
            if curve is None:
                curve = self.extension_plot.plot(pen=pg.mkPen(RUN_COLORS[i % len(RUN_COLORS)], width=2), name=run.label)
                self._curves[run.label] = curve
            loss = run.loss_history
            after = loss[loss[:, 0] >= run.extension_step] if loss.size else loss
            after = after[after[:, 1] > 0] if after.size else after
            curve.setData(after[:, 0] - run.extension_step, after[:, 1] / 4.0) if after.size else curve.setData([], [])
        for label in [label for label in self._curves if label not in {run.label for run in snapshot.runs}]:
            self.extension_plot.removeItem(self._curves.pop(label))
        started = any(run.extension_step is not None for run in snapshot.runs if run.partitions is not None)
        self._waiting.setText("" if started else "the extension starts at its step (or Crop › Extend now)")

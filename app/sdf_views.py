"""The 3D lab: a live marching-cubes view of a signed distance (or occupancy) field, a slice through it and
its surface metrics, all drawn from snapshots (the worker extracts the meshes; this only draws them).

Controls that change what must be computed (iso-level, grid resolutions, slice plane, 'extract now') go to
the worker as an SdfViewSettings; the rest (colours, shading, wireframe, camera, overlay) only redraws.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from models.sdf_metrics import METRIC_CONVENTIONS
from models.sdf_render import AXES, LIVE_RESOLUTIONS, STILL_RESOLUTIONS, SdfViewSettings, partition_at, partition_boxes
from models.worker import Snapshot

from .growth_views import _log_ticks
from .headless import diverging_colors
from .mesh_view import ERROR_LIMIT, MeshCanvas, vertex_colours
from .views import RUN_COLORS

SLICE_LIMIT = 0.5
"""Signed distances shown from -0.5 (blue, inside) to +0.5 (red, outside) in the slice: fixed levels."""
LEVEL_STEPS = 200


class SliceView(pg.GraphicsLayoutWidget):
    """Field values on a plane, diverging colours with fixed levels, the field's and the truth's level sets."""

    clicked = QtCore.Signal(float, float)
    """(u, v) in [-1, 1]^2 of a click on the plane: u along the first remaining axis, v along the second."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(200, 200)
        self.title = self.addLabel("slice", row=0, col=0)
        self.view = self.addViewBox(row=1, col=0, lockAspect=True, enableMouse=True)
        self.image = pg.ImageItem()
        self.view.addItem(self.image)
        self.truth_curve = pg.IsocurveItem(level=0.0, pen=pg.mkPen("#2ca02c", width=2))
        self.field_curve = pg.IsocurveItem(level=0.0, pen=pg.mkPen("k", width=1.5))
        for item in (self.truth_curve, self.field_curve):
            item.setParentItem(self.image)
        self.grid = pg.PlotCurveItem(pen=pg.mkPen((230, 120, 20), width=1), connect="pairs")
        self.view.addItem(self.grid)
        self._size = None
        self.scene().sigMouseClicked.connect(self._clicked)

    def set_grid(self, factors: tuple[int, int] | None, cropped: list[tuple[int, int]] = ()) -> None:
        """Partition boundaries on the plane (``factors`` = parts along u and v), cropped cells crossed out."""
        if not factors or self._size is None:
            self.grid.setData([], [])
            return
        size = self._size[0]
        xs, ys = [], []
        for parts, horizontal in ((factors[0], False), (factors[1], True)):
            for i in range(parts + 1):
                t = size * i / parts
                xs += [0, size] if horizontal else [t, t]
                ys += [t, t] if horizontal else [0, size]
        for u, v in cropped:
            x0, x1 = size * u / factors[0], size * (u + 1) / factors[0]
            y0, y1 = size * v / factors[1], size * (v + 1) / factors[1]
            xs += [x0, x1, x0, x1]
            ys += [y0, y1, y1, y0]
        self.grid.setData(np.asarray(xs, float), np.asarray(ys, float))

    def _clicked(self, event) -> None:
        if self._size is None or event.button() != QtCore.Qt.LeftButton:
            return
        point = self.view.mapSceneToView(event.scenePos())
        size = self._size[0]
        if 0 <= point.x() < size and 0 <= point.y() < size:
            self.clicked.emit(2.0 * point.x() / size - 1.0, 2.0 * point.y() / size - 1.0)

    def show_slice(self, values: np.ndarray, target: np.ndarray, level: float, occupancy: bool, title: str) -> None:
        shifted = values - level
        rgb = diverging_colors(-shifted if occupancy else shifted, 0.5 if occupancy else SLICE_LIMIT)
        self.image.setImage(rgb, levels=(0.0, 1.0), autoLevels=False)
        self.field_curve.setLevel(level)
        self.field_curve.setData(values)
        self.truth_curve.setLevel(0.5 if occupancy else 0.0)
        self.truth_curve.setData(target)
        if self._size != values.shape:
            self._size = values.shape
            self.view.autoRange(padding=0.0)
        self.title.setText(title)


class WidthPicker(QtWidgets.QWidget):
    """A growing field's widths (✓ trained, ● training): which one the 3D view shows; follows training until the
    user picks one ('[' and ']' step through them, like the growth lab's slider)."""

    picked = QtCore.Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.combo = QtWidgets.QComboBox()
        self.combo.setToolTip("The width whose mesh is shown: every trained width stays an exact sub-network")
        self.follow = QtWidgets.QCheckBox("follow training")
        self.follow.setChecked(True)
        layout.addWidget(QtWidgets.QLabel("width"))
        layout.addWidget(self.combo)
        layout.addWidget(self.follow)
        self.combo.activated.connect(self._user_picked)

    @property
    def index(self) -> int:
        return max(0, self.combo.currentIndex())

    def set_widths(self, labels: list[str], training: int) -> None:
        blocker = QtCore.QSignalBlocker(self.combo)
        current = self.combo.currentIndex()
        if [self.combo.itemText(i) for i in range(self.combo.count())] != labels:
            self.combo.clear()
            self.combo.addItems(labels)
        target = training if self.follow.isChecked() or current < 0 else min(current, len(labels) - 1)
        self.combo.setCurrentIndex(target)
        del blocker
        if target != current:
            self.picked.emit(target)

    def step_by(self, delta: int) -> None:
        if self.combo.count():
            self._user_picked(min(max(self.combo.currentIndex() + delta, 0), self.combo.count() - 1))

    def _user_picked(self, index: int) -> None:
        self.follow.setChecked(False)
        self.combo.setCurrentIndex(index)
        self.picked.emit(index)


class SdfLabView(QtWidgets.QWidget):
    """Mesh, slice and metrics of one run of a 3D session (a run selector when there are several)."""

    settingsChanged = QtCore.Signal(object)
    """A new SdfViewSettings for the worker."""
    extractRequested = QtCore.Signal()
    """Make the fine mesh now."""
    exportRequested = QtCore.Signal(int)
    """Export the mesh of run N (the window asks where)."""
    turntableRequested = QtCore.Signal()
    partitionClicked = QtCore.Signal(int, int, bool)
    """(run, flat partition index, whether it is present): a click on the slice of a croppable field."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.settings = SdfViewSettings()
        self._snapshot: Snapshot | None = None
        self._truth_of = None
        self._mesh_key = None
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(self._build_bar())
        self.canvas = MeshCanvas()
        self.slice = SliceView()
        self.slice_axis = QtWidgets.QComboBox()
        for i, name in enumerate(AXES):
            self.slice_axis.addItem(f"plane {name} =", i)
        self.slice_axis.setCurrentIndex(self.settings.slice_axis)
        self.slice_position = QtWidgets.QSlider(QtCore.Qt.Horizontal, minimum=-100, maximum=100, value=0)
        self.slice_position.setToolTip("Where the slice plane cuts its axis, from -1 to 1")
        slice_box = QtWidgets.QWidget()
        slice_layout = QtWidgets.QVBoxLayout(slice_box)
        slice_layout.setContentsMargins(0, 0, 0, 0)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.slice_axis)
        row.addWidget(self.slice_position, 1)
        slice_layout.addLayout(row)
        slice_layout.addWidget(self.slice, 1)
        legend = QtWidgets.QLabel("blue inside, red outside (±0.5); black: the field's surface, green: the true one")
        legend.setWordWrap(True)
        legend.setStyleSheet("color:#555; font-size:10px;")
        slice_layout.addWidget(legend)
        top = QtWidgets.QSplitter(QtCore.Qt.Horizontal)
        top.addWidget(self.canvas.widget)
        top.addWidget(slice_box)
        top.setSizes([640, 320])
        self.plots = pg.GraphicsLayoutWidget()
        self.loss_plot = self.plots.addPlot(row=0, col=0, title="training loss")
        self.loss_plot.setLogMode(y=True)
        self.chamfer_plot = self.plots.addPlot(row=0, col=1, title="Chamfer-L1 (live grid)")
        self.chamfer_plot.setLogMode(y=True)
        self.iou_plot = self.plots.addPlot(row=0, col=2, title="IoU of occupancy")
        self.iou_plot.setYRange(0.0, 1.0)
        for plot in (self.loss_plot, self.chamfer_plot, self.iou_plot):
            plot.setLabel("bottom", "step")
            plot.showGrid(x=True, y=True, alpha=0.2)
        self.plots.setMinimumHeight(150)
        self.metrics_label = QtWidgets.QLabel()
        self.metrics_label.setWordWrap(True)
        self.metrics_label.setToolTip("\n".join(f"{k}: {v}" for k, v in METRIC_CONVENTIONS.items()))
        self.metrics_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        split = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        split.addWidget(top)
        split.addWidget(self.plots)
        split.setSizes([560, 170])
        outer.addWidget(split, 1)
        outer.addWidget(self.metrics_label)
        self._curves: dict[str, list] = {"loss": [], "chamfer": [], "iou": []}
        self.slice.clicked.connect(self._slice_clicked)
        self.slice_axis.currentIndexChanged.connect(lambda _: self._send(slice_axis=self.slice_axis.currentData()))
        self.slice_position.valueChanged.connect(lambda v: self._send(slice_position=v / 100.0))

    def _build_bar(self) -> QtWidgets.QLayout:
        bar = QtWidgets.QVBoxLayout()
        self.run = QtWidgets.QComboBox()
        self.run.setToolTip("Which run the 3D view and slice show")
        self.colour = QtWidgets.QComboBox()
        for text, key in (("shaded grey", "grey"), ("colour by normal", "normal"), ("colour by error", "error")):
            self.colour.addItem(text, key)
        self.colour.setToolTip(f"error: distance of each vertex to the true surface, 0 (dark) to {ERROR_LIMIT:g} "
                               "(yellow) in domain units (the cube is 2 wide)")
        self.shading = QtWidgets.QComboBox()
        self.shading.addItems(["smooth", "flat"])
        self.wireframe = QtWidgets.QCheckBox("wireframe")
        self.partitions = QtWidgets.QCheckBox("partitions")
        self.partitions.setChecked(True)
        self.partitions.setToolTip("Outline the present partitions' boxes; click a partition on the slice to crop it "
                                   "(or to restore a cropped one)")
        self.partitions.hide()
        self.truth = QtWidgets.QCheckBox("true surface")
        self.truth.setToolTip("Overlay the ground-truth mesh, translucent green")
        self.camera = QtWidgets.QComboBox()
        self.camera.addItems(["turntable", "arcball"])
        self.camera.setToolTip("Drag to rotate, wheel to zoom, shift-drag to pan")
        self.level = QtWidgets.QSlider(QtCore.Qt.Horizontal, minimum=-LEVEL_STEPS // 2, maximum=LEVEL_STEPS // 2, value=0)
        self.level.setToolTip("Iso-level of the extracted surface")
        self.level_label = QtWidgets.QLabel("level 0")
        self.level_label.setMinimumWidth(90)
        self.live_res = QtWidgets.QComboBox()
        for r in LIVE_RESOLUTIONS:
            self.live_res.addItem(f"{r}³ live", r)
        self.live_res.setToolTip("Marching-cubes grid while training (narrow band)")
        self.still_res = QtWidgets.QComboBox()
        for r in STILL_RESOLUTIONS:
            self.still_res.addItem(f"{r}³ paused", r)
        self.still_res.setCurrentIndex(STILL_RESOLUTIONS.index(self.settings.still_resolution))
        self.still_res.setToolTip("Grid when paused, for 'extract now' and for exports (narrow band: only cells near "
                                  "the surface are queried)")
        self.extract = QtWidgets.QPushButton("Extract now")
        self.extract.setToolTip("Make the fine mesh now, even while training")
        self.export = QtWidgets.QPushButton("Export mesh…")
        self.export.setToolTip("PLY, OBJ, GLB or STL at the 'paused' resolution")
        self.turntable = QtWidgets.QPushButton("Turntable…")
        self.turntable.setToolTip("A full turn of the view as an MP4 or GIF")
        self.slider = WidthPicker()
        """A growing field's width (the name lets the window's '[' and ']' step it, as in the growth lab)."""
        self.slider.hide()
        self.slider.picked.connect(self._width_picked)
        first = QtWidgets.QHBoxLayout()
        for widget in (self.run, self.slider, self.colour, self.shading, self.wireframe, self.truth, self.partitions,
                       self.camera):
            first.addWidget(widget)
        first.addStretch(1)
        first.addWidget(self.export)
        first.addWidget(self.turntable)
        second = QtWidgets.QHBoxLayout()
        second.addWidget(self.level_label)
        second.addWidget(self.level, 1)
        for widget in (self.live_res, self.still_res, self.extract):
            second.addWidget(widget)
        bar.addLayout(first)
        bar.addLayout(second)
        self.run.currentIndexChanged.connect(lambda _: self._redraw(force=True))
        self.colour.currentIndexChanged.connect(lambda _: self._redraw(force=True))
        self.shading.currentTextChanged.connect(lambda text: self.canvas.set_shading(text))
        self.wireframe.toggled.connect(lambda on: self.canvas.set_wireframe(on))
        self.truth.toggled.connect(lambda on: self.canvas.show_truth(on))
        self.partitions.toggled.connect(lambda _: self._redraw(force=True))
        self.camera.currentTextChanged.connect(lambda text: self.canvas.set_camera(text))
        self.level.valueChanged.connect(self._level_moved)
        self.live_res.currentIndexChanged.connect(lambda _: self._send(live_resolution=self.live_res.currentData()))
        self.still_res.currentIndexChanged.connect(lambda _: self._send(still_resolution=self.still_res.currentData()))
        self.extract.clicked.connect(self.extractRequested)
        self.export.clicked.connect(lambda: self.exportRequested.emit(self.run_index))
        self.turntable.clicked.connect(self.turntableRequested)
        return bar

    # -- settings going to the worker ----------------------------------------------------------------
    def _width_picked(self, index: int) -> None:
        self._send(width_index=self._allocated_index(index))
        self._redraw(force=True)

    def _allocated_index(self, shown: int) -> int:
        """The stage index of the ``shown``-th allocated width of the selected run."""
        run = self._shown_run()
        if run is None or run.stages is None:
            return shown
        allocated = [k for k, state in enumerate(run.stages.states) if state != "pending"]
        return allocated[min(shown, len(allocated) - 1)]

    def _shown_run(self):
        snapshot = self._snapshot
        if snapshot is None or not snapshot.runs:
            return None
        return snapshot.runs[min(self.run_index, len(snapshot.runs) - 1)]

    @property
    def run_index(self) -> int:
        return max(0, self.run.currentIndex())

    def occupancy(self) -> bool:
        signal = self._snapshot.signal if self._snapshot is not None else None
        return signal is not None and signal.sdf is not None and signal.sdf.target == "occupancy"

    def _level_value(self, position: int) -> float:
        if self.occupancy():
            return 0.5 + 0.45 * position / (LEVEL_STEPS // 2)
        return 0.2 * position / (LEVEL_STEPS // 2)

    def _level_moved(self, position: int) -> None:
        value = self._level_value(position)
        self.level_label.setText(f"level {value:+.3f}")
        self._send(level=value)

    def _send(self, **changes) -> None:
        self.settings = replace(self.settings, **changes)
        self.settingsChanged.emit(self.settings)

    def reset_level(self) -> None:
        """A new signal: its own default level (0 for distances, 0.5 for occupancy)."""
        blocker = QtCore.QSignalBlocker(self.level)
        self.level.setValue(0)
        del blocker
        self.settings = replace(self.settings, level=None)
        self.level_label.setText("level 0.5" if self.occupancy() else "level 0")

    # -- drawing -------------------------------------------------------------------------------------
    def render(self, snapshot: Snapshot) -> None:
        new_signal = self._snapshot is None or self._snapshot.signal is not snapshot.signal
        self._snapshot = snapshot
        if new_signal:
            self.reset_level()
        labels = [run.label for run in snapshot.runs]
        if [self.run.itemText(i) for i in range(self.run.count())] != labels:
            blocker = QtCore.QSignalBlocker(self.run)
            index = self.run.currentIndex()
            self.run.clear()
            self.run.addItems(labels)
            self.run.setCurrentIndex(min(max(index, 0), len(labels) - 1))
            del blocker
        self.run.setVisible(len(labels) > 1)
        run = self._shown_run()
        growing = run is not None and run.stages is not None and bool(run.sdf_widths)
        self.slider.setVisible(growing)
        if growing:
            stages = run.stages
            marks = {"trained": "✓", "training": "●"}
            allocated = [k for k, state in enumerate(stages.states) if state != "pending"]
            self.slider.set_widths([f"{stages.widths[k]} {marks.get(stages.states[k], '')}" for k in allocated],
                                   allocated.index(stages.stage) if stages.stage in allocated else len(allocated) - 1)
        self._redraw()

    def _redraw(self, force: bool = False) -> None:
        snapshot = self._snapshot
        if snapshot is None or not snapshot.runs:
            return
        run = snapshot.runs[min(self.run_index, len(snapshot.runs) - 1)]
        truth = run.time.truth if run.time is not None and run.time.truth is not None else snapshot.signal.sdf
        if truth is not None and self._truth_of is not truth:  # a moving shape's truth follows the time slider
            self._truth_of = truth
            self.canvas.set_truth(truth.vertices, truth.faces)
        view = run.sdf
        if run.sdf_widths:
            view = run.sdf_widths[min(self.slider.index, len(run.sdf_widths) - 1)]
        if view is None:
            return
        mesh = view.mesh
        key = (id(mesh), self.colour.currentData())
        if force or key != self._mesh_key:
            self._mesh_key = key
            colours = vertex_colours(self.colour.currentData(), mesh.normals, view.vertex_error)
            self.canvas.set_mesh(mesh.vertices, mesh.faces, colours)
        occupancy = self.occupancy()
        axis = AXES[view.slice_axis]
        self.slice.show_slice(view.slice_field, view.slice_target, view.level, occupancy,
                              f"slice {axis} = {view.slice_position:+.2f} (step {run.step})")
        self._draw_partitions(run, view)
        self._plot(snapshot)
        width = None
        if run.sdf_widths and run.stages is not None:
            stage = self._allocated_index(self.slider.index)
            width = (run.stages.widths[stage], run.stages.params[stage])
        self.metrics_label.setText(metrics_text(run, view, width))

    def _draw_partitions(self, run, view) -> None:
        parts = run.partitions
        self.partitions.setVisible(parts is not None)
        key = (id(parts), self.partitions.isChecked(), view.slice_axis, view.slice_position)
        if key == getattr(self, "_parts_key", None):
            return
        self._parts_key = key
        if parts is None or len(parts.partitions) != 3:
            self.canvas.set_boxes([])
            self.slice.set_grid(None)
            return
        self.canvas.set_boxes(partition_boxes(parts.partitions, parts.present) if self.partitions.isChecked() else [])
        others = [a for a in range(3) if a != view.slice_axis]
        coord_factors = tuple(reversed(parts.partitions))  # partitions are in array order (z, y, x)
        present = set(parts.present)
        cropped = []
        for flat in range(parts.num_partitions):
            if flat in present:
                continue
            (lo_hi) = partition_boxes(parts.partitions, [flat])[0]
            lo, hi = lo_hi[view.slice_axis]
            if lo <= view.slice_position <= hi:
                cells = [int(round((lo_hi[a][0] + 1.0) / 2.0 * coord_factors[a])) for a in others]
                cropped.append(tuple(cells))
        self.slice.set_grid((coord_factors[others[0]], coord_factors[others[1]]), cropped)

    def _slice_clicked(self, u: float, v: float) -> None:
        run = self._shown_run()
        if run is None or run.partitions is None or len(run.partitions.partitions) != 3:
            return
        point = [0.0, 0.0, 0.0]
        axis = self.settings.slice_axis
        others = [a for a in range(3) if a != axis]
        point[axis], point[others[0]], point[others[1]] = self.settings.slice_position, u, v
        flat = partition_at(run.partitions.partitions, point)
        self.partitionClicked.emit(self.run_index, flat, flat in run.partitions.present)

    def _plot(self, snapshot: Snapshot) -> None:
        for name, plot in (("loss", self.loss_plot), ("chamfer", self.chamfer_plot), ("iou", self.iou_plot)):
            curves = self._curves[name]
            while len(curves) < len(snapshot.runs):
                curves.append(plot.plot(pen=pg.mkPen(RUN_COLORS[len(curves) % len(RUN_COLORS)], width=1.5)))
            while len(curves) > len(snapshot.runs):
                plot.removeItem(curves.pop())
        chamfer_values, loss_values = [], []
        for i, run in enumerate(snapshot.runs):
            loss = run.loss_history
            positive = loss[:, 1] > 0 if len(loss) else np.zeros(0, bool)
            self._curves["loss"][i].setData(loss[positive, 0], loss[positive, 1])
            if positive.any():
                loss_values += [float(loss[positive, 1].min()), float(loss[positive, 1].max())]
            history = run.sdf.history if run.sdf is not None else np.zeros((0, 4))
            finite = np.isfinite(history[:, 1]) & (history[:, 1] > 0) if len(history) else np.zeros(0, bool)
            self._curves["chamfer"][i].setData(history[finite, 0], history[finite, 1])
            chamfer_values.extend(history[finite, 1].tolist())
            has_iou = np.isfinite(history[:, 3]) if len(history) else np.zeros(0, bool)
            self._curves["iou"][i].setData(history[has_iou, 0], history[has_iou, 3])
        if loss_values:
            low, high = min(loss_values), max(loss_values)
            _log_ticks(self.loss_plot.getAxis("left"), low, high, every_decade_only=high / low > 30)
        if chamfer_values:
            low, high = min(chamfer_values), max(chamfer_values)
            _log_ticks(self.chamfer_plot.getAxis("left"), low, high, every_decade_only=high / low > 30)


def metrics_text(run, view, width: tuple[int, int] | None = None) -> str:
    mesh = view.mesh
    detail = "fine" if view.still else "live"
    name = f"<b>{run.label}</b>" + (f" at width {width[0]}" if width else "")
    if mesh.empty:
        return f"{name}, step {view.step}: {mesh.message or 'no surface'}"
    metrics = view.metrics
    parts = [f"{name}, step {view.step}: {width[1] if width else run.params:,} params",
             f"{detail} mesh {mesh.resolution}³: {len(mesh.vertices):,} vertices, {len(mesh.faces):,} faces, "
             f"{mesh.queries:,} field queries ({mesh.queries / max(mesh.dense_queries, 1):.0%} of dense) in "
             f"{mesh.seconds * 1000:.0f} ms"]
    values = [("Chamfer-L1", metrics.get("chamfer_l1"), "{:.4f}"), ("normal consistency", metrics.get("normal_consistency"), "{:.3f}"),
              ("IoU", metrics.get("iou"), "{:.4f}")]
    parts.append(", ".join(f"{name} {fmt.format(v)}" for name, v, fmt in values if v is not None and math.isfinite(v)))
    return " · ".join(p for p in parts if p)

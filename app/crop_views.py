"""The crop & extend lab's view: a partitioned field you edit by clicking its partitions.

Click a partition to crop it (click a cropped one to bring it back), drag a rectangle to select several,
then crop the selection (Delete) or keep only it. The view shows an edit at once: cropping changes no
other partition's output, so the last snapshot with the edited partitions blanked is already exact; the
worker's next snapshot confirms it. Cropped areas show a checkerboard.
"""
from __future__ import annotations

import math

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from models.worker import Snapshot

from .crop_panels import CropPlots, PartitionPanel
from .views import ERROR_LEVELS

PSNR_LEVELS = (15.0, 45.0)
TINTS = {"selected": (40, 120, 255, 90), "hover": (255, 210, 0, 80), "added": (40, 200, 80, 60)}


class CropLabView(QtWidgets.QWidget):
    """Target, the editable reconstruction, |error|, PSNR per partition, and the lab's plots."""

    pixelReport = QtCore.Signal(str)
    cropRequested = QtCore.Signal(int, list)
    """(run index, flat partitions) to remove."""
    restoreRequested = QtCore.Signal(int, list)

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QtWidgets.QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        bar = QtWidgets.QHBoxLayout()
        self.run_choice = QtWidgets.QComboBox()
        self.run_choice.setToolTip("Which run the panels show and the edits apply to")
        self.run_choice.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToContents)
        self.info = QtWidgets.QLabel()
        self.info.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        # a label that may not resize keeps an edit from re-laying out (and repainting) the whole window
        self.info.setSizePolicy(QtWidgets.QSizePolicy.Ignored, QtWidgets.QSizePolicy.Fixed)
        bar.addWidget(QtWidgets.QLabel("Run"))
        bar.addWidget(self.run_choice)
        bar.addWidget(self.info, 1)
        layout.addLayout(bar, 0, 0, 1, 3)
        self.target = PartitionPanel("Target")
        self.reconstruction = PartitionPanel("Reconstruction", interactive=True)
        self.error = PartitionPanel("|Error|", colormap="inferno")
        self.partition_psnr = PartitionPanel("PSNR per partition (dB)", colormap="viridis")
        self.plots = CropPlots()
        for panel in (self.target, self.error):
            panel.link(self.reconstruction)
        layout.addWidget(self.target, 1, 0)
        layout.addWidget(self.reconstruction, 1, 1)
        layout.addWidget(self.error, 1, 2)
        layout.addWidget(self.partition_psnr, 2, 0)
        layout.addWidget(self.plots, 2, 1, 1, 2)
        layout.setRowStretch(1, 3)
        layout.setRowStretch(2, 2)
        hint = QtWidgets.QLabel("Click a partition to crop it (again to restore) · drag to select · "
                                "Delete crops the selection · Ctrl+Z / Ctrl+Shift+Z undo / redo · wheel zooms")
        hint.setStyleSheet("color:#666")
        layout.addWidget(hint, 3, 0, 1, 3)
        self.selection: set[int] = set()
        self._hover = -1
        self._pending: set[int] = set()
        """Partitions cropped (or, negative-encoded, restored) by a click but not yet in a snapshot."""
        self._pending_restore: set[int] = set()
        self._pending_structure = -1
        self._snapshot: Snapshot | None = None
        self._memory: tuple | None = None
        """(structure-independent) last values seen for every partition: reconstruction, error, PSNR; a restore
        shows them at once (a restore is bit-exact, so while paused they are exactly what will come back)."""
        self._labels: tuple = ()
        self._target_id = None
        view = self.reconstruction.view
        view.clicked.connect(self._clicked)
        view.dragged.connect(self._dragged)
        for panel in (self.target, self.reconstruction, self.error):
            panel.hovered.connect(self._hovered)
        self.run_choice.currentIndexChanged.connect(self._run_chosen)
        self.setFocusPolicy(QtCore.Qt.StrongFocus)

    # -- what the view shows ----------------------------------------------------------------------------
    @property
    def run_index(self) -> int:
        return max(0, self.run_choice.currentIndex())

    def _run(self):
        snapshot = self._snapshot
        if snapshot is None or not snapshot.runs:
            return None
        return snapshot.runs[min(self.run_index, len(snapshot.runs) - 1)]

    def _layout_run(self):
        """The shown run's partitions, or the first partitioned run's (a plain SIREN is shown on its grid)."""
        run = self._run()
        if run is not None and run.partitions is not None:
            return run.partitions
        for other in self._snapshot.runs if self._snapshot else ():
            if other.partitions is not None:
                return other.partitions
        return None

    def render(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        labels = tuple(run.label for run in snapshot.runs)
        if labels != self._labels:
            self._labels = labels
            with QtCore.QSignalBlocker(self.run_choice):
                self.run_choice.clear()
                self.run_choice.addItems(list(labels))
            self.selection.clear()
        run = self._run()
        if run is not None and run.partitions is not None and run.partitions.structure > self._pending_structure:
            self._pending.clear()
            self._pending_restore.clear()
        self._remember(run)
        self._rerender()
        self.plots.render(snapshot, self.run_index)

    def _remember(self, run) -> None:
        if run is None or run.partitions is None:
            self._memory = None
            return
        scores = run.partition_psnr if run.partition_psnr is not None else np.full(run.partitions.num_partitions, np.nan)
        memory = self._memory
        if memory is None or memory[0].shape != run.reconstruction.shape or memory[3] != run.label:
            self._memory = (run.reconstruction.copy(), run.error.copy(), np.array(scores, dtype=np.float64), run.label)
            return
        seen = np.isfinite(run.error)
        memory[0][seen] = run.reconstruction[seen]
        memory[1][seen] = run.error[seen]
        memory[2][np.isfinite(scores)] = scores[np.isfinite(scores)]

    def _run_chosen(self, _index: int) -> None:
        self._memory = None
        self._remember(self._run())
        self._rerender()
        if self._snapshot is not None:
            self.plots.render(self._snapshot, self.run_index)

    def _rerender(self) -> None:
        snapshot, run = self._snapshot, self._run()
        if snapshot is None:
            return
        if self._target_id != id(snapshot.target):
            self._target_id = id(snapshot.target)
            self.target.show_array(snapshot.target, (0.0, 1.0))
        parts = self._layout_run()
        columns = parts.partitions[-1] if parts is not None else 1
        for panel in (self.target, self.reconstruction, self.error):
            panel.set_grid(parts.pixel_partition if parts is not None else None, columns)
        if run is None:
            return
        reconstruction, error = run.reconstruction, run.error
        editable = run.partitions is not None
        if editable and (self._pending or self._pending_restore):
            blank = np.isin(parts.pixel_partition, list(self._pending))
            reconstruction, error = reconstruction.copy(), error.copy()
            reconstruction[blank] = np.nan
            error[blank] = np.nan
            if self._pending_restore and self._memory is not None:
                back = np.isin(parts.pixel_partition, list(self._pending_restore))
                reconstruction[back] = self._memory[0][back]
                error[back] = self._memory[1][back]
        self.reconstruction.set_title(f"{run.label}<br>step {run.step} · {_db(run.psnr)} over the kept partitions"
                                      if editable else f"{run.label}<br>step {run.step} · {_db(run.psnr)}")
        self.reconstruction.show_array(reconstruction, (0.0, 1.0))
        self.error.set_title(f"|Error| (0 … {ERROR_LEVELS[1]:g})")
        self.error.show_array(error, ERROR_LEVELS)
        self._show_partition_psnr(run, parts)
        self._update_tints(parts)
        self._update_info(run, parts)

    def _show_partition_psnr(self, run, parts) -> None:
        if parts is None or run.partition_psnr is None or len(parts.partitions) != 2:
            if parts is not None and run.partition_psnr is None:
                from models.croppable import partition_psnrs

                scores = partition_psnrs(run.reconstruction, self._snapshot.target, parts.pixel_partition, parts.num_partitions)
            else:
                self.partition_psnr.image.clear()
                return
        else:
            scores = run.partition_psnr.copy()
        scores = np.asarray(scores, dtype=np.float64).copy()
        if self._pending and run.partitions is not None:
            scores[list(self._pending)] = np.nan
        if self._pending_restore and self._memory is not None and run.partitions is not None:
            back = list(self._pending_restore)
            scores[back] = self._memory[2][back]
        finite = scores[np.isfinite(scores)]
        self.partition_psnr.set_title(
            f"PSNR per partition (colours {PSNR_LEVELS[0]:g} … {PSNR_LEVELS[1]:g} dB)"
            + (f"<br>now {finite.min():.1f} … {finite.max():.1f} dB" if finite.size else "<br>&nbsp;"))
        self.partition_psnr.show_array(scores.reshape(parts.partitions).astype(np.float32), PSNR_LEVELS)

    def _update_tints(self, parts) -> None:
        if parts is None or parts.pixel_partition.ndim != 2:
            for panel in (self.reconstruction, self.error):
                panel.set_tint(None)
            return
        table = np.zeros((parts.num_partitions, 4), np.uint8)
        for p in parts.added:
            table[p] = TINTS["added"]
        for p in self.selection:
            if p < len(table):
                table[p] = TINTS["selected"]
        if 0 <= self._hover < len(table):
            table[self._hover] = TINTS["hover"]
        rgba = table[parts.pixel_partition]
        for panel in (self.reconstruction, self.error):
            panel.set_tint(rgba)

    def _update_info(self, run, parts) -> None:
        if run.partitions is None:
            state = "waits for the extension to start" if run.waiting else "not partitioned: cropping needs a partitioned run"
            self.info.setText(f"{run.label}: {run.params:,} parameters · {state}")
            return
        p = run.partitions
        present = len(p.present) - len(self._pending & set(p.present)) + len(self._pending_restore)
        params = p.global_params + present * p.local_params
        share = 100.0 * p.global_params / max(params, 1)
        grid = "×".join(map(str, p.partitions))
        self.info.setText(
            f"<b>{params:,}</b> parameters ({params * 4 / 1024:,.1f} KiB) · {present}/{p.num_partitions} of {grid} "
            f"partitions · global {p.global_params:,} ({share:.1f}%) + {p.local_params:,} each"
            + (f" · {len(self.selection)} selected" if self.selection else "")
            + (_extension_split(p, run.partition_psnr) if p.added else ""))

    # -- interaction ------------------------------------------------------------------------------------
    def _partition_at(self, x: float, y: float) -> int:
        parts = self._layout_run()
        if parts is None or parts.pixel_partition.ndim != 2:
            return -1
        row, col = int(math.floor(y)), int(math.floor(x))
        h, w = parts.pixel_partition.shape
        return int(parts.pixel_partition[row, col]) if 0 <= row < h and 0 <= col < w else -1

    def _editable(self):
        run = self._run()
        return run.partitions if run is not None else None

    def shown_partitions(self):
        """The shown run's PartitionInfo (None for an unpartitioned run or before the first snapshot)."""
        return self._editable()

    def _clicked(self, x: float, y: float, modifiers) -> None:
        partition = self._partition_at(x, y)
        if partition < 0:
            self.selection.clear()
            self._rerender()
            return
        if modifiers & (QtCore.Qt.ShiftModifier | QtCore.Qt.ControlModifier):
            self.selection ^= {partition}
            self._rerender()
            return
        parts = self._editable()
        if parts is None:
            return
        shown_present = (set(parts.present) | self._pending_restore) - self._pending
        if partition in shown_present:
            self.request_crop([partition])
        elif partition in parts.cropped or partition in self._pending:
            self.request_restore([partition])
        else:
            self.pixelReport.emit("this partition has no sub-network yet: Crop › Extend now adds the missing ones")

    def _dragged(self, rect: QtCore.QRectF, finished: bool, modifiers) -> None:
        band = self.reconstruction.band
        band.setRect(rect)
        band.setVisible(not finished)
        parts = self._layout_run()
        if parts is None or parts.pixel_partition.ndim != 2:
            return
        h, w = parts.pixel_partition.shape
        r0, r1 = max(0, int(math.floor(rect.top()))), min(h, int(math.ceil(rect.bottom())))
        c0, c1 = max(0, int(math.floor(rect.left()))), min(w, int(math.ceil(rect.right())))
        chosen = set(np.unique(parts.pixel_partition[r0:r1, c0:c1]).tolist()) if r1 > r0 and c1 > c0 else set()
        if modifiers & (QtCore.Qt.ShiftModifier | QtCore.Qt.ControlModifier):
            chosen |= self.selection
        self.selection = chosen
        self._rerender()

    def _hovered(self, row: int, column: int) -> None:
        partition = self._partition_at(column + 0.5, row + 0.5) if row >= 0 else -1
        if partition != self._hover:
            self._hover = partition
            self._update_tints(self._layout_run())
        run, parts = self._run(), self._layout_run()
        if partition < 0 or run is None or parts is None:
            self.pixelReport.emit("")
            return
        index = ", ".join(map(str, np.unravel_index(partition, parts.partitions)))
        state = "cropped" if (partition not in parts.present or partition in self._pending) else "present"
        score = run.partition_psnr[partition] if run.partition_psnr is not None else float("nan")
        self.pixelReport.emit(f"partition ({index}) · {state} · PSNR {_db(score)} · {parts.local_params:,} local "
                              f"parameters · pixel (x {column}, y {row})")

    def request_crop(self, partitions: list[int]) -> None:
        parts = self._editable()
        if parts is None or not partitions:
            return
        self._pending |= set(partitions)
        self._pending_restore -= set(partitions)
        self._pending_structure = parts.structure
        self._show_edit_now()
        self.cropRequested.emit(self.run_index, sorted(partitions))

    def request_restore(self, partitions: list[int]) -> None:
        parts = self._editable()
        if parts is None or not partitions:
            return
        self._pending -= set(partitions)
        self._pending_restore |= set(partitions) & set(parts.cropped)
        self._pending_structure = parts.structure
        self._show_edit_now()
        self.restoreRequested.emit(self.run_index, sorted(partitions))

    def _show_edit_now(self) -> None:
        """Redraw and paint the edited panels at once, ahead of whatever else is queued (a snapshot being
        drawn, plots): the click's answer is on screen when this returns."""
        self._rerender()
        for panel in (self.reconstruction, self.error, self.partition_psnr):
            panel.viewport().repaint()

    def crop_selection(self) -> None:
        parts = self._editable()
        if parts is not None and self.selection:
            self.request_crop(sorted(self.selection & set(parts.present)))
            self.selection.clear()

    def keep_only_selection(self) -> None:
        parts = self._editable()
        if parts is not None and self.selection:
            keep = self.selection & set(parts.present)
            if keep:
                self.request_crop(sorted(set(parts.present) - keep))
            self.selection.clear()

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        if event.key() in (QtCore.Qt.Key_Delete, QtCore.Qt.Key_Backspace):
            self.crop_selection()
        elif event.key() == QtCore.Qt.Key_Escape:
            self.selection.clear()
            self._rerender()
        else:
            super().keyPressEvent(event)


def _extension_split(parts, scores) -> str:
    """PSNR of the partitions added by the extension (green) against those trained before."""
    if scores is None:
        return " · fine-tuning the added partitions (green)"
    added = np.zeros(len(scores), dtype=bool)
    added[list(parts.added)] = True

    def pooled(mask) -> float:  # partitions hold (about) equal pixel counts: pool their MSEs
        values = scores[mask & np.isfinite(scores)]
        return float(-10.0 * np.log10(np.mean(10.0 ** (-values / 10.0)))) if values.size else float("nan")

    return f" · PSNR added (green) {_db(pooled(added))}, earlier {_db(pooled(~added))}"


def _db(value: float) -> str:
    return f"{value:.2f} dB" if math.isfinite(value) else "–"

"""The training timeline bar: scrub back through training in the views, and branch from a past step.

The bar keeps a bounded record of the snapshots the window received (thinned like the worker's states, so
the whole run stays covered). Dragging its slider shows a past snapshot in the views while training goes
on; *Live* returns to the present. *Branch from here…* asks for new hyper-parameters and tells the worker to
restore that step (models/timeline.py: exactly, by replaying from the nearest kept state) and continue.
"""
from __future__ import annotations

import math
from dataclasses import replace

from PySide6 import QtCore, QtGui, QtWidgets

from models.worker import Snapshot

CAPACITY = 40
"""Snapshots kept for scrubbing (display arrays only: a few MB each at most)."""


class SnapshotRecord:
    """Snapshots of one session at spread-out steps: at most ``capacity``, covering the run from its start."""

    def __init__(self, capacity: int = CAPACITY, every: int = 1):
        self.capacity = capacity
        self.every = every
        self.snapshots: list[Snapshot] = []

    def add(self, snapshot: Snapshot) -> None:
        if self.snapshots and snapshot.generation != self.snapshots[-1].generation:
            # a branch went back in time: what was recorded after its step is another future now
            self.snapshots = [s for s in self.snapshots if s.step < snapshot.step]
        if self.snapshots and snapshot.step < self.snapshots[-1].step + self.every:
            if snapshot.step == self.snapshots[-1].step:
                self.snapshots[-1] = snapshot  # the same step drawn again (a still mesh, per-frame scores)
            return
        self.snapshots.append(snapshot)
        if len(self.snapshots) > self.capacity:
            self.snapshots = [s for i, s in enumerate(self.snapshots) if i % 2 == 0 or i == len(self.snapshots) - 1]
            self.every *= 2


class TimelineBar(QtWidgets.QToolBar):
    def __init__(self, window):
        super().__init__("Training timeline", window)
        self.setObjectName("timeline")
        self.window = window
        self.record = SnapshotRecord()
        self.viewing: Snapshot | None = None
        """The past snapshot the views show (None: live)."""
        self._worker = None
        self.addWidget(QtWidgets.QLabel(" Timeline "))
        self.slider = QtWidgets.QSlider(QtCore.Qt.Horizontal, minimum=0, maximum=0)
        self.slider.setToolTip("Drag back through training: the views show what they showed then (training goes on)")
        self.slider.setMinimumWidth(320)
        self.slider.valueChanged.connect(self._scrubbed)
        self.addWidget(self.slider)
        self.label = QtWidgets.QLabel("live")
        self.label.setMinimumWidth(230)
        self.addWidget(self.label)
        self.live = self.addAction("Live", self.go_live)
        self.live.setToolTip("Back to the present (End)")
        self.branch_action = self.addAction("Branch from here…", self.branch_dialog)
        self.branch_action.setToolTip("Restart training from the step shown, with changed hyper-parameters")
        self.live.setEnabled(False)
        self.branch_action.setEnabled(False)

    # -- recording -------------------------------------------------------------------------------------
    def snapshot_arrived(self, snapshot: Snapshot) -> None:
        worker = self.window.session.worker
        if worker is not self._worker:  # another session: its past is not this one's
            self._worker = worker
            self.record = SnapshotRecord()
            self.go_live()
        if not snapshot.runs:
            return
        self.record.add(snapshot)
        at_end = self.viewing is None
        blocker = QtCore.QSignalBlocker(self.slider)
        self.slider.setMaximum(max(0, len(self.record.snapshots) - 1))
        if at_end:
            self.slider.setValue(self.slider.maximum())
        del blocker
        self.branch_action.setEnabled(True)
        if at_end:
            self.label.setText(f"live: step {snapshot.step}")

    # -- scrubbing -------------------------------------------------------------------------------------
    def _scrubbed(self, index: int) -> None:
        snapshots = self.record.snapshots
        if not snapshots:
            return
        if index >= len(snapshots) - 1:
            self.go_live()
            return
        self.show_past(snapshots[index])

    def show_past(self, snapshot: Snapshot) -> None:
        self.viewing = snapshot
        self.window.view_hold = True
        self.window.views.currentWidget().render(snapshot)
        self.window.metrics.render(snapshot)
        live = self.window.session.last_snapshot
        now = f" (training is at {live.step})" if live is not None else ""
        self.label.setText(f"viewing step {snapshot.step}{now}")
        self.live.setEnabled(True)

    def go_live(self) -> None:
        self.viewing = None
        self.window.view_hold = False
        self.live.setEnabled(False)
        live = self.window.session.last_snapshot
        if live is not None and live.runs:
            self.window.views.currentWidget().render(live)
            self.window.metrics.render(live)
            self.label.setText(f"live: step {live.step}")
        blocker = QtCore.QSignalBlocker(self.slider)
        self.slider.setValue(self.slider.maximum())
        del blocker

    # -- branching -------------------------------------------------------------------------------------
    def branch_step(self) -> int | None:
        shown = self.viewing or self.window.session.last_snapshot
        return None if shown is None else shown.step

    def branch(self, step: int, lr: float | None = None, stage_steps: int | None = None, pin: bool = False) -> None:
        """Tell the worker to go back to ``step`` and continue with the given settings; the panel follows.
        ``pin``: first pin the runs as they are now to the comparison board, to compare the branch with them."""
        window = self.window
        worker, scene = window.session.worker, window.session.scene
        if worker is None or scene is None:
            return
        if pin and hasattr(window, "compare"):
            window.compare.pin_current()
        if lr is not None:
            window.session.scene = replace(scene, train=replace(scene.train, lr=lr))
            blocker = QtCore.QSignalBlocker(window.controls.lr)
            window.controls.lr.setCurrentText(f"{lr:g}")
            del blocker
        window.controls.set_running(False)
        worker.branch(step, lr, stage_steps)
        self.go_live()

    def branch_dialog(self) -> None:
        step = self.branch_step()
        scene = self.window.session.scene
        if step is None or scene is None:
            return
        dialog = QtWidgets.QDialog(self.window)
        dialog.setWindowTitle(f"Branch from step {step}")
        form = QtWidgets.QFormLayout(dialog)
        form.addRow(QtWidgets.QLabel(f"Training goes back to step {step} and continues from there with these "
                                     "settings.\nWhat was trained after it is dropped."))
        lr = QtWidgets.QLineEdit(f"{scene.train.lr:g}")
        form.addRow("Learning rate", lr)
        stage_steps = None
        if scene.preset == "growth":
            stage_steps = QtWidgets.QSpinBox(minimum=1, maximum=1_000_000, value=scene.growth.stage_steps)
            form.addRow("Steps per stage (from now on)", stage_steps)
        pin = QtWidgets.QCheckBox("Pin the runs as they are now to the comparison board", checked=True)
        pin.setVisible(hasattr(self.window, "compare"))
        form.addRow(pin)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.Ok | QtWidgets.QDialogButtonBox.Cancel)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        form.addRow(buttons)
        if dialog.exec() != QtWidgets.QDialog.Accepted:
            return
        try:
            rate = float(lr.text())
            if not (rate > 0 and math.isfinite(rate)):
                raise ValueError
        except ValueError:
            self.window.show_error("Invalid learning rate", f"{lr.text()!r} is not a positive number")
            return
        self.branch(step, rate, stage_steps.value() if stage_steps is not None else None,
                    pin=pin.isChecked() and hasattr(self.window, "compare"))


def install(window) -> None:
    window.view_hold = False
    bar = TimelineBar(window)
    window.addToolBar(QtCore.Qt.BottomToolBarArea, bar)
    window.timeline_bar = bar
    window.session.snapshotReady.connect(bar.snapshot_arrived)
    live = QtGui.QAction("Back to live training", window, shortcut=QtGui.QKeySequence(QtCore.Qt.Key_End))
    live.triggered.connect(bar.go_live)
    window.addAction(live)

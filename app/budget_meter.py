"""Training pace and compute budget: Training → Slow motion, Training → Views vs training (both kept when the
session restarts), and a status-bar meter showing where the time goes: training steps or drawing the views."""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from models.snapshots import ComputeShare

from .features import menu_named

PACE_CHOICES = (0, 100, 250, 500, 1000, 2000)
"""Slow-motion paces in milliseconds per step (0: full speed)."""
SHARE_CHOICES = (("Training first (views get 5%)", 0.05), ("Balanced (lab default)", None),
                 ("Smooth views (views get 50%)", 0.5))
"""Renderer duty cycles: the share of time the views may keep a core busy (None: the lab's default)."""
TRAIN_COLOR = QtGui.QColor("#1f77b4")
VIEWS_COLOR = QtGui.QColor("#ff7f0e")
METER_TIP = ("<b>Compute budget</b> over the last moments:<br>"
             "<span style='color:#1f77b4'>■</span> <b>train</b>: share of wall time spent in training steps;<br>"
             "<span style='color:#ff7f0e'>■</span> <b>views</b>: share spent drawing what you see (evaluating the "
             "fields at display resolution, errors, spectra, meshes). The tick marks the views' allowance; the rest "
             "of the time is idle (paused, slow motion) or waiting.<br>"
             "Click to trade one for the other (also <i>Training → Views vs training</i>).")


def pace_label(milliseconds: float) -> str:
    return "Off (full speed)" if not milliseconds else f"{milliseconds:g} ms per step"


class WorkerTuning(QtCore.QObject):
    """The pace and render share the user chose; applied to the session's worker and to every later one."""

    changed = QtCore.Signal()

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.pace_ms = 0.0
        self.render_share: float | None = None
        session = window.session
        start = session.start

        def start_tuned(*args, **kwargs):
            start(*args, **kwargs)
            self._apply_to(session.worker)

        # LiveSession has no 'started' signal: every new worker gets the choices as its first commands, queued
        # while it builds its models, so they apply before its first step
        session.start = start_tuned

    def set_pace(self, milliseconds: float) -> None:
        pace = max(0.0, float(milliseconds))
        if pace != self.pace_ms:  # every worker already has the current pace
            self.pace_ms = pace
            if self.window.session.worker is not None:
                self.window.session.worker.set_pace(pace)
        self.changed.emit()

    def set_render_share(self, duty: float | None) -> None:
        share = None if duty is None else min(0.95, max(0.02, float(duty)))
        if share != self.render_share:
            self.render_share = share
            if self.window.session.worker is not None:
                self.window.session.worker.set_render_share(share)
        self.changed.emit()

    def _apply_to(self, worker) -> None:
        if worker is None:
            return
        if self.pace_ms:  # a fresh worker runs at full speed with its lab's render share
            worker.set_pace(self.pace_ms)
        if self.render_share is not None:
            worker.set_render_share(self.render_share)


class _Bars(QtWidgets.QWidget):
    """Two thin horizontal bars: training share (top) and views share (bottom) with the views' allowance."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.share: ComputeShare | None = None
        self.setFixedWidth(64)

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(64, max(12, self.fontMetrics().height() - 2))

    def paintEvent(self, event) -> None:
        painter = QtGui.QPainter(self)
        rect = self.rect().adjusted(0, 2, -1, -2)
        half = rect.height() // 2
        rows = (QtCore.QRect(rect.left(), rect.top(), rect.width(), half - 1),
                QtCore.QRect(rect.left(), rect.top() + half + 1, rect.width(), rect.height() - half - 1))
        share = self.share
        values = (share.training, share.rendering) if share is not None else (0.0, 0.0)
        for row, value, color in zip(rows, values, (TRAIN_COLOR, VIEWS_COLOR)):
            painter.fillRect(row, QtGui.QColor("#e6e6e6"))
            filled = QtCore.QRect(row.left(), row.top(), round(row.width() * min(1.0, max(0.0, value))), row.height())
            painter.fillRect(filled, color)
        if share is not None:
            x = rows[1].left() + round(rows[1].width() * min(1.0, share.render_duty))
            painter.setPen(QtGui.QPen(QtGui.QColor("#333333"), 1))
            painter.drawLine(x, rows[1].top() - 1, x, rows[1].bottom() + 1)
        painter.end()


class BudgetMeter(QtWidgets.QWidget):
    """The status bar's compute budget: bars and 'train 78% · views 12%'; a click offers the trade-off menu."""

    def __init__(self, menu: QtWidgets.QMenu, parent=None):
        super().__init__(parent)
        self._menu = menu
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(6)
        self.bars = _Bars()
        self.label = QtWidgets.QLabel("train – · views –")
        layout.addWidget(self.bars)
        layout.addWidget(self.label)
        self.setToolTip(METER_TIP)
        self.setCursor(QtCore.Qt.PointingHandCursor)

    def show_share(self, share: ComputeShare | None, running: bool = True) -> None:
        self.bars.share = share
        self.bars.update()
        if share is None:
            self.label.setText("train – · views –")
            return
        train = f"train {share.training:.0%}" if running or share.training >= 0.005 else "paused"
        text = f"{train} · views {share.rendering:.0%}"
        if share.pace_ms:
            text += f" · slow {share.pace_ms:g} ms"
        self.label.setText(text)

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:
        if event.button() == QtCore.Qt.LeftButton:
            self._menu.popup(self.mapToGlobal(QtCore.QPoint(0, 0)) - QtCore.QPoint(0, self._menu.sizeHint().height()))
        super().mousePressEvent(event)


def _choice_group(menu: QtWidgets.QMenu, choices, picked) -> QtGui.QActionGroup:
    group = QtGui.QActionGroup(menu)
    group.setExclusive(True)
    for text, value in choices:
        action = menu.addAction(text)
        action.setCheckable(True)
        action.setData(value)
        group.addAction(action)
        action.triggered.connect(lambda _checked=False, v=value: picked(v))
    return group


def _check(group: QtGui.QActionGroup, value) -> None:
    for action in group.actions():
        if action.data() == value:
            action.setChecked(True)
            return
    for action in group.actions():  # a value no entry offers (a lesson's pace): no entry is checked
        action.setChecked(False)


def install(window) -> None:
    """Training → Slow motion and Views vs training, and the meter in the status bar (``window.compute_budget``)."""
    tuning = WorkerTuning(window)
    window.compute_budget = tuning
    training = menu_named(window, "Training")
    training.addSeparator()
    slow = training.addMenu("Slow motion")
    slow.setToolTip("One step per interval, every step shown: watch a field learn")
    slow.setToolTipsVisible(True)
    pace_group = _choice_group(slow, [(pace_label(ms), float(ms)) for ms in PACE_CHOICES], tuning.set_pace)
    share = training.addMenu("Views vs training")
    share_group = _choice_group(share, SHARE_CHOICES, tuning.set_render_share)
    window.slow_motion_menu, window.views_share_menu = slow, share

    def sync_checks() -> None:
        _check(pace_group, tuning.pace_ms)
        _check(share_group, tuning.render_share)

    tuning.changed.connect(sync_checks)
    sync_checks()
    meter = BudgetMeter(share, window.statusBar())
    window.statusBar().addPermanentWidget(meter)
    window.budget_meter = meter
    window.session.snapshotReady.connect(lambda snapshot: meter.show_share(snapshot.compute, snapshot.running))

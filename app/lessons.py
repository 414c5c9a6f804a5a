"""Lessons in the window: the Lessons menu and the lesson strip above the views (title, 'Step i of n', the caption in
large type, Back / Next / Exit). Starting a lesson sets up its lab the way the Presets menu does (the control panel
takes the scene, then the signal loads), hides the control-panel boxes the step does not list, and applies each
step's actions when the step is entered; exiting restores the boxes. The lesson files: models/lessons.py."""
from __future__ import annotations

import os

from PySide6 import QtCore, QtGui, QtWidgets

from models.lessons import LAB_BOXES, Lesson, LessonError, StepActions, lesson_paths, load_lesson

from .features import menu_named

CAPTION_SCALE = 1.45
TITLE_SCALE = 1.15
LESSON_FILTER = "FieldLab lessons (*.json);;All files (*)"
PANEL_BACKGROUND = "#eef4fb"
MUTED_TEXT = "#555555"


def control_boxes(controls) -> dict[str, QtWidgets.QWidget]:
    """The control panel's boxes by the names lessons use (models.lessons.BOXES)."""
    groups = {box.title(): box for box in controls.findChildren(QtWidgets.QGroupBox, options=QtCore.Qt.FindDirectChildrenOnly)}
    return {"signal": groups["Signal"], "model": groups["Model"], "training": groups["Training"],
            "growth": controls.growth_box, "crop": controls.crop_box, "sweep": controls.sweep_box,
            "time": controls.time_box}


class LessonPanel(QtWidgets.QWidget):
    """The strip above the views; knows nothing of the window (the runner drives it)."""

    backRequested = QtCore.Signal()
    nextRequested = QtCore.Signal()
    exitRequested = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        # colours by palette, not a style sheet: widgets under a style sheet stop following the application
        # font, which presentation mode scales
        palette = self.palette()
        palette.setColor(QtGui.QPalette.Window, QtGui.QColor(PANEL_BACKGROUND))
        self.setPalette(palette)
        self.setAutoFillBackground(True)
        self.title = QtWidgets.QLabel()
        self.progress = QtWidgets.QLabel()
        self.caption = QtWidgets.QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.hint = QtWidgets.QLabel()
        for label in (self.progress, self.hint):
            muted = label.palette()
            muted.setColor(QtGui.QPalette.WindowText, QtGui.QColor(MUTED_TEXT))
            label.setPalette(muted)
        self.back = QtWidgets.QPushButton("◀ Back")
        self.next = QtWidgets.QPushButton("Next ▶")
        self.exit = QtWidgets.QPushButton("Exit lesson")
        self.back.setToolTip("The previous step (Page Up)")
        self.next.setToolTip("The next step (Page Down)")
        self.exit.setToolTip("Leave the lesson: the lab keeps running and every control comes back")
        for button in (self.back, self.next, self.exit):
            button.setFocusPolicy(QtCore.Qt.NoFocus)  # Space stays play / pause
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.title)
        top.addSpacing(12)
        top.addWidget(self.progress)
        top.addStretch(1)
        top.addWidget(self.hint)
        top.addSpacing(12)
        for button in (self.back, self.next, self.exit):
            top.addWidget(button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 10)
        layout.addLayout(top)
        layout.addWidget(self.caption)
        self.back.clicked.connect(self.backRequested)
        self.next.clicked.connect(self.nextRequested)
        self.exit.clicked.connect(self.exitRequested)
        self._scale_fonts()

    def show_step(self, lesson: Lesson, index: int, ready: bool = True) -> None:
        self.title.setText(lesson.title)
        self.progress.setText(f"Step {index + 1} of {len(lesson.steps)}")
        self.caption.setText(lesson.steps[index].caption)
        self.back.setEnabled(ready and index > 0)
        self.next.setEnabled(ready)
        self.next.setText("Finish ✓" if index == len(lesson.steps) - 1 else "Next ▶")
        self.set_hint("" if ready else f"Setting up the lab: loading {lesson.sample}…", False)
        self._fit_caption()

    def set_hint(self, text: str, ready: bool) -> None:
        """A line beside the buttons; ``ready`` highlights Next (the step's suggested moment has come)."""
        self.hint.setText(text)
        font = self.next.font()
        font.setBold(ready)
        self.next.setFont(font)

    def changeEvent(self, event: QtCore.QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QtCore.QEvent.FontChange:  # presentation mode scaled the application font
            self._scale_fonts()

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_caption()

    def _scale_fonts(self) -> None:
        base = self.font()
        caption = QtGui.QFont(base)
        caption.setPointSizeF(base.pointSizeF() * CAPTION_SCALE)
        self.caption.setFont(caption)
        title = QtGui.QFont(base)
        title.setPointSizeF(base.pointSizeF() * TITLE_SCALE)
        title.setBold(True)
        self.title.setFont(title)
        self._fit_caption()

    def _fit_caption(self) -> None:
        """Word-wrapped labels in a dock do not ask for their height: give the caption every line it needs."""
        width = max(200, self.caption.width())
        lines = self.caption.fontMetrics().lineSpacing()
        self.caption.setMinimumHeight(max(2 * lines, self.caption.heightForWidth(width)))


class LessonRunner(QtCore.QObject):
    """Runs one lesson at a time in ``window``."""

    stepChanged = QtCore.Signal(int)
    """The step now shown (-1: no lesson)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.lesson: Lesson | None = None
        self.index = -1
        self.panel = LessonPanel()
        self.dock = QtWidgets.QDockWidget("Lesson", window)
        self.dock.setObjectName("lessonDock")
        self.dock.setFeatures(QtWidgets.QDockWidget.NoDockWidgetFeatures)
        self.dock.setTitleBarWidget(QtWidgets.QWidget())
        self.dock.setWidget(self.panel)
        window.addDockWidget(QtCore.Qt.TopDockWidgetArea, self.dock)
        self.dock.hide()
        # a restored window layout may show the strip of a lesson that was running when the app closed
        self.dock.visibilityChanged.connect(
            lambda visible: QtCore.QTimer.singleShot(0, self._hide_without_lesson) if visible else None)
        self.boxes = control_boxes(window.controls)
        self._hidden: set = set()
        self._visible_before: dict[str, bool] = {}
        self._pace_before: float | None = None
        self._pending: str | None = None
        """The sample the lesson waits for before its first step."""
        self._expected = None
        """The scene the control panel reads once the lesson's lab is set up."""
        for box in self.boxes.values():
            box.installEventFilter(self)
        self.panel.backRequested.connect(self.back)
        self.panel.nextRequested.connect(self.next)
        self.panel.exitRequested.connect(self.exit)
        window.session.signalLoaded.connect(self._signal_loaded)
        window.session.signalFailed.connect(self._signal_failed)
        window.session.snapshotReady.connect(self._update_hint)

    def _hide_without_lesson(self) -> None:
        if self.lesson is None:
            self.dock.hide()

    @property
    def ready(self) -> bool:
        """A lesson is running and its lab is set up."""
        return self.lesson is not None and self._pending is None

    # -- starting and leaving ----------------------------------------------------------------------------
    def start(self, lesson: Lesson) -> None:
        """Set up the lesson's lab (as the Presets menu does), then show its first step once the signal is in."""
        if self.lesson is not None:
            self.exit()
        window = self.window
        self.lesson, self.index = lesson, 0
        self._visible_before = {key: not box.isHidden() for key, box in self.boxes.items() if key not in LAB_BOXES}
        tuning = getattr(window, "compute_budget", None)
        self._pace_before = tuning.pace_ms if tuning is not None else None
        self._show_boxes(lesson.boxes_at(0))
        window.controls.cancel_pending_change()
        window.controls.apply(lesson.scene, lesson.size)
        window.controls.set_running(lesson.running)
        self._expected = window.controls.scene()
        self._pending = lesson.sample
        self.panel.show_step(lesson, 0, ready=False)
        self.dock.show()
        self.stepChanged.emit(0)
        # as window._load_source, but at the lesson's own working size (the window loads a video that follows an
        # image at its default video size); the window's signalLoaded handler then starts the session
        window.statusBar().showMessage(f"Loading {lesson.sample}…")
        window.session.load_signal_async(lesson.sample, lesson.size, window.controls.target.currentData())

    def exit(self) -> None:
        """Leave the lesson: the lab keeps running, every control-panel box comes back, slow motion as before."""
        lesson = self.lesson
        if lesson is None:
            return
        self.lesson, self.index, self._pending = None, -1, None
        self._hidden.clear()
        preset = self.window.controls.preset.currentData()
        for key, box in self.boxes.items():
            box.setVisible(preset == LAB_BOXES[key] if key in LAB_BOXES else self._visible_before.get(key, True))
        tuning = getattr(self.window, "compute_budget", None)
        if tuning is not None and self._pace_before is not None and \
                any(step.actions.pace_ms is not None for step in lesson.steps):
            tuning.set_pace(self._pace_before)
        self.dock.hide()
        self.stepChanged.emit(-1)

    def _signal_loaded(self, signal, source: str) -> None:
        if self._pending is None:
            return
        if source != self._pending:  # the user opened something else meanwhile: the lesson's signal never comes
            self.exit()
            return
        self._pending = None
        window, lesson = self.window, self.lesson
        if window.session.signal is not signal or window.session.scene != self._expected:
            # a signal of another family made the window take that family's defaults: set the lesson's lab again
            window.controls.apply(lesson.scene, lesson.size)
            window.start_session(signal, window.controls.scene(), lesson.running)
        self.go(0)

    def _signal_failed(self, message: str) -> None:
        if self._pending is not None:
            self.exit()

    # -- steps -----------------------------------------------------------------------------------------
    def next(self) -> None:
        if not self.ready:
            return
        if self.index + 1 >= len(self.lesson.steps):
            self.exit()
        else:
            self.go(self.index + 1)

    def back(self) -> None:
        if self.ready and self.index > 0:
            self.go(self.index - 1)

    def go(self, index: int) -> None:
        """Show step ``index`` and apply its actions."""
        lesson = self.lesson
        self.index = index
        self._show_boxes(lesson.boxes_at(index))
        self.panel.show_step(lesson, index)
        self._apply(lesson.steps[index].actions)
        self._update_hint(self.window.session.last_snapshot)
        self.stepChanged.emit(index)

    def _apply(self, actions: StepActions) -> None:
        window = self.window
        worker = window.session.worker
        if actions.pace_ms is not None:
            tuning = getattr(window, "compute_budget", None)
            if tuning is not None:
                tuning.set_pace(actions.pace_ms)
            elif worker is not None:
                worker.set_pace(actions.pace_ms)
        if actions.reset:
            window.reset()
        if actions.width is not None:
            self._set_width(actions.width)
        if actions.time is not None:
            window.time_view.bar.set_time(actions.time)
        if actions.training is not None and worker is not None:
            running = actions.training == "play"
            window.controls.set_running(running)
            worker.play() if running else worker.pause()

    def _set_width(self, width) -> None:
        slider = getattr(self.window.views.currentWidget(), "slider", None)
        if slider is None:
            return
        if width == "follow":
            slider.follow.setChecked(True)
            return
        widths = self.window.session.scene.widths if self.window.session.scene is not None else ()
        if width in widths:
            slider.step_by(widths.index(width) - slider.index)

    def _update_hint(self, snapshot) -> None:
        if not self.ready:
            return
        target = self.lesson.steps[self.index].actions.next_after_step
        if target is None or snapshot is None:
            self.panel.set_hint("", False)
        elif snapshot.step >= target:
            self.panel.set_hint(f"Step {target} reached: press {self.panel.next.text()}", True)
        else:
            self.panel.set_hint(f"Let it train to step {target}, then press Next (now at step {snapshot.step})", False)

    # -- control-panel boxes ---------------------------------------------------------------------------
    def _show_boxes(self, allowed) -> None:
        preset = self.window.controls.preset.currentData()
        for key, box in self.boxes.items():
            if allowed is None or key in allowed:
                self._hidden.discard(box)
                box.setVisible(preset == LAB_BOXES[key] if key in LAB_BOXES else self._visible_before.get(key, True))
            else:
                self._hidden.add(box)
                box.hide()

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:
        # the panel shows a lab's box whenever a setting changes: a box the lesson hides stays hidden
        if event.type() == QtCore.QEvent.ShowToParent and watched in self._hidden:
            watched.hide()
        return False


def _open_lesson_file(window, runner: LessonRunner) -> None:
    path, _ = QtWidgets.QFileDialog.getOpenFileName(window, "Open lesson", os.getcwd(), LESSON_FILTER)
    if path:
        start_lesson_file(window, runner, path)


def start_lesson_file(window, runner: LessonRunner, path: str) -> bool:
    """Load ``path`` and start it; a bad file shows its one-line error instead."""
    try:
        lesson = load_lesson(path)
    except LessonError as exc:
        window.show_error("Could not open the lesson", str(exc))
        return False
    runner.start(lesson)
    return True


def install(window) -> None:
    """The Lessons menu and the lesson strip (``window.lessons`` is the LessonRunner)."""
    runner = LessonRunner(window)
    window.lessons = runner
    menu = menu_named(window, "Lessons")
    menu.setToolTipsVisible(True)
    for number, path in enumerate(lesson_paths(), start=1):
        try:
            lesson = load_lesson(path)
        except LessonError as exc:
            action = menu.addAction(f"{number}. {path.name} (cannot be read)")
            action.setToolTip(str(exc))
            action.setEnabled(False)
            continue
        action = menu.addAction(f"{number}. {lesson.title}", lambda lesson=lesson: runner.start(lesson))
        action.setToolTip(lesson.summary)
    menu.addSeparator()
    menu.addAction("Open lesson file…", lambda: _open_lesson_file(window, runner))
    menu.addSeparator()
    following = menu.addAction("Next step", runner.next)
    following.setShortcut(QtGui.QKeySequence(QtCore.Qt.Key_PageDown))
    previous = menu.addAction("Previous step", runner.back)
    previous.setShortcut(QtGui.QKeySequence(QtCore.Qt.Key_PageUp))
    leave = menu.addAction("Exit lesson", runner.exit)
    step_actions = (following, previous, leave)

    def enable(index: int) -> None:
        for action in step_actions:  # Page Up / Down scroll as usual outside lessons
            action.setEnabled(index >= 0)

    runner.stepChanged.connect(enable)
    enable(-1)

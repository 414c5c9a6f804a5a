"""The classroom features in the real window (pytest-qt under Xvfb): lessons, presentation mode, slow motion, the
compute budget meter and its trade-off, the keyboard shortcuts table."""
from __future__ import annotations

import copy
import json
import os
import re
import time

import pytest
from gui_helpers import open_window, wait_for

from models.fields import FieldConfig
from models.lessons import list_lessons, load_lesson
from models.scenes import Scene
from models.training import TrainConfig

pytestmark = [pytest.mark.gui,
              pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display (xvfb-run)")]

TINY_SCENE = Scene(field=FieldConfig(width=16, depth=2), train=TrainConfig(lr=1e-3, batch_size=0))
LESSON = {
    "format": "fieldlab.lesson", "version": 1, "title": "Tiny growth", "summary": "A test lesson.",
    "setup": {"sample": "camera", "size": 32, "running": False,
              "scene": {"preset": "growth", "lr_override": False, "field": {"width": 16, "depth": 2},
                        "train": {"lr": 0.001, "batch_size": 0}, "widths": [8, 16], "growth": {"stage_steps": 5}}},
    "boxes": ["model"],
    "steps": [
        {"caption": "First: a narrow stage.", "actions": {"training": "pause", "pace_ms": 100}},
        {"caption": "Second: let it grow.", "boxes": ["growth", "training"],
         "actions": {"training": "play", "pace_ms": 0, "next_after_step": 7}},
        {"caption": "Third: back to width 8.", "actions": {"training": "pause", "width": 8}},
    ],
}


def _action(menu, text):
    for action in menu.actions():
        if action.text().replace("&", "") == text:
            return action
    raise AssertionError(f"no action {text!r} in {[a.text() for a in menu.actions()]}")


def _shown(win):
    return {key for key, box in win.lessons.boxes.items() if box.isVisible()}


@pytest.fixture
def window(qtbot):
    win = open_window(qtbot, TINY_SCENE, size=32, running=False)
    yield win
    win.close()
    assert win.session.worker is None


def test_a_lesson_sets_up_its_lab_walks_through_its_steps_and_restores_the_panel(qtbot, window, tmp_path):
    from app.features import menu_named
    from app.lessons import start_lesson_file

    win = window
    before = _shown(win)
    assert before == {"signal", "model", "training"}
    win.compute_budget.set_pace(500)  # the user's own slow motion comes back after the lesson
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(LESSON), encoding="utf-8")
    lesson = load_lesson(path)
    assert start_lesson_file(win, win.lessons, str(path))
    qtbot.waitUntil(lambda: win.lessons.ready, timeout=20000)
    panel = win.lessons.panel
    assert win.lessons.dock.isVisible() and panel.title.text() == "Tiny growth"
    assert win.session.scene == lesson.scene and win.controls.preset.currentData() == "growth"
    assert win.views.currentWidget() is win.growth_view and win.session.signal.shape == (32, 32)
    assert panel.progress.text() == "Step 1 of 3" and panel.caption.text() == "First: a narrow stage."
    assert _shown(win) == {"model"} and not panel.back.isEnabled()
    assert win.compute_budget.pace_ms == 100
    qtbot.waitUntil(lambda: win.session.worker._pace == 100, timeout=10000)  # paused: no snapshot to read it from
    win.controls.plateau.setChecked(True)  # the panel re-shows its lab's box on any change: the lesson keeps it hidden
    win.controls.cancel_pending_change()
    assert not win.controls.growth_box.isVisible()
    win.controls.plateau.setChecked(False)
    win.controls.cancel_pending_change()

    panel.next.click()
    assert panel.progress.text() == "Step 2 of 3" and panel.caption.text() == "Second: let it grow."
    assert _shown(win) == {"growth", "training"} and win.compute_budget.pace_ms == 0
    assert _action(win.slow_motion_menu, "Off (full speed)").isChecked()
    snapshot = wait_for(qtbot, win, lambda s: s.step >= 7)  # played (10 steps finish both stages)
    qtbot.waitUntil(lambda: "Step 7 reached" in panel.hint.text(), timeout=5000)
    assert panel.next.font().bold() and snapshot.compute.pace_ms == 0
    qtbot.waitUntil(lambda: win.growth_view.slider.index == 1, timeout=5000)  # follows the stage in training

    panel.back.click()
    assert panel.caption.text() == "First: a narrow stage." and _shown(win) == {"model"}
    wait_for(qtbot, win, lambda s: not s.running)  # step 1 pauses again
    panel.next.click()
    panel.next.click()
    assert panel.progress.text() == "Step 3 of 3" and panel.next.text().startswith("Finish")
    assert win.growth_view.slider.index == 0 and not win.growth_view.slider.follow.isChecked()
    wait_for(qtbot, win, lambda s: not s.running)
    lessons_menu = menu_named(win, "Lessons")
    assert _action(lessons_menu, "Next step").isEnabled()

    panel.next.click()  # Finish leaves the lesson
    assert win.lessons.lesson is None and not win.lessons.dock.isVisible()
    assert _shown(win) == before | {"growth"}  # the growth lab's own box is back, as its preset wants
    assert win.compute_budget.pace_ms == 500 and _action(win.slow_motion_menu, "500 ms per step").isChecked()
    assert not _action(lessons_menu, "Next step").isEnabled()


def test_the_lessons_menu_lists_the_shipped_lessons_and_a_bad_file_changes_nothing(qtbot, window, tmp_path):
    from app.features import menu_named
    from app.lessons import start_lesson_file

    win = window
    texts = [action.text() for action in menu_named(win, "Lessons").actions()]
    for number, lesson in enumerate(list_lessons(), start=1):
        assert f"{number}. {lesson.title}" in texts
    assert "Open lesson file…" in texts
    bad = copy.deepcopy(LESSON)
    bad["version"] = 99
    path = tmp_path / "future.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    scene = win.session.scene
    assert not start_lesson_file(win, win.lessons, str(path))
    assert "future.json" in win.last_error and "please update FieldLab" in win.last_error
    assert win.lessons.lesson is None and win.session.scene == scene and not win.lessons.dock.isVisible()
    win.lessons.dock.show()  # as a restored window layout might: no lesson, no strip
    qtbot.waitUntil(lambda: not win.lessons.dock.isVisible(), timeout=5000)


def test_the_resfields_lesson_switches_an_image_window_to_the_time_lab(qtbot, window, one_torch_thread):
    win = window
    lesson = next(lesson for lesson in list_lessons() if lesson.scene.preset == "time")
    win.lessons.start(lesson)
    qtbot.waitUntil(lambda: win.lessons.ready, timeout=60000)
    # an image -> video switch makes the window take the video defaults; the lesson's own lab wins
    assert win.session.scene == lesson.scene and win.session.signal.kind == "video"
    assert win.views.currentWidget() is win.time_view and _shown(win) == set()
    bar = win.time_view.bar
    assert bar.t == -1.0  # the step's time action
    win.lessons.next()
    win.lessons.next()
    assert bar.t == 0.0 and "time slider" in win.lessons.panel.caption.text()
    wait_for(qtbot, win, lambda s: s.runs and s.runs[0].time is not None, timeout=60000)
    frame = bar.frame()
    from app.features import menu_named

    _action(menu_named(win, "View"), "Next frame (time lab)").trigger()
    assert frame < bar.frame() <= frame + 1  # the next frame (the slider has 1000 positions: close to it)
    win.lessons.exit()
    assert _shown(win) == {"signal", "model", "training", "time"}


def test_presentation_mode_enlarges_fonts_and_plots_and_restores_them_exactly(qtbot, window):
    from PySide6 import QtWidgets

    win = window
    app = QtWidgets.QApplication.instance()
    win.session.worker.step(2)
    wait_for(qtbot, win, lambda s: s.step == 2)
    qtbot.waitUntil(lambda: bool(win.metrics.psnr_plot.listDataItems()), timeout=5000)
    curve = win.metrics.psnr_plot.listDataItems()[0]
    axis = win.metrics.psnr_plot.getAxis("bottom")
    title = win.metrics.psnr_plot.getPlotItem().titleLabel
    font, geometry = app.font(), win.geometry()
    pen_width, tick_font, label_style, title_opts = curve.opts["pen"].widthF(), axis.style["tickFont"], \
        dict(axis.labelStyle), dict(title.opts)
    assert not win.isFullScreen()

    win.presentation_action.trigger()
    assert win.presentation.active and win.isFullScreen()
    assert app.font().pointSizeF() == pytest.approx(1.6 * font.pointSizeF())
    qtbot.waitUntil(lambda: win.font().pointSizeF() == pytest.approx(1.6 * font.pointSizeF()), timeout=5000)
    assert curve.opts["pen"].widthF() >= 3 > pen_width
    assert axis.style["tickFont"] is not None and axis.style["tickFont"].pointSizeF() > font.pointSizeF()
    assert float(title.opts["size"].rstrip("pt")) > float(title_opts["size"].rstrip("pt"))
    assert win.lessons.panel.caption.font().pointSizeF() == pytest.approx(1.45 * 1.6 * font.pointSizeF())

    win.presentation_action.trigger()
    assert not win.presentation.active and not win.presentation_action.isChecked()
    assert app.font() == font
    qtbot.waitUntil(lambda: win.font() == font, timeout=5000)
    assert win.lessons.panel.caption.font().pointSizeF() == pytest.approx(1.45 * font.pointSizeF())
    assert curve.opts["pen"].widthF() == pen_width and axis.style["tickFont"] == tick_font
    assert axis.labelStyle == label_style and title.opts == title_opts
    assert not win.isFullScreen()
    qtbot.waitUntil(lambda: win.geometry() == geometry, timeout=5000)

    win.presentation_action.trigger()  # closing the window gives the application font back
    win.close()
    assert not win.presentation.active and app.font() == font


def test_slow_motion_paces_the_steps_and_survives_a_restart(qtbot, window):
    win = window
    win.compute_budget.set_pace(200)
    win.controls.play.setChecked(True)
    start = wait_for(qtbot, win, lambda s: s.running and s.compute is not None and s.compute.pace_ms == 200)
    began = time.monotonic()
    qtbot.wait(1200)
    latest = win.session.last_snapshot
    elapsed = time.monotonic() - began
    assert 1 <= latest.step - start.step <= elapsed / 0.2 + 2  # about 6 steps; full speed would be hundreds
    assert "slow 200 ms" in win.budget_meter.label.text()

    old, seen = win.session.worker, win.session.last_snapshot
    win.restart()
    assert win.session.worker is not old
    wait_for(qtbot, win, lambda s: s is not seen and s.compute is not None and s.compute.pace_ms == 200 and s.step >= 1)
    assert win.session.worker._pace == 200

    _action(win.slow_motion_menu, "Off (full speed)").trigger()
    assert win.compute_budget.pace_ms == 0
    wait_for(qtbot, win, lambda s: s.compute.pace_ms == 0 and s.step >= 30)


def test_the_budget_meter_reads_the_shares_and_the_trade_off_reaches_every_worker(qtbot, window):
    win = window
    win.controls.play.setChecked(True)
    snapshot = wait_for(qtbot, win, lambda s: s.running and s.compute is not None and s.step > 5)
    qtbot.waitUntil(lambda: re.fullmatch(r"train \d+% · views \d+%", win.budget_meter.label.text()) is not None,
                    timeout=5000)
    assert "Compute budget" in win.budget_meter.toolTip()
    default = snapshot.compute.render_duty

    _action(win.views_share_menu, "Smooth views (views get 50%)").trigger()
    wait_for(qtbot, win, lambda s: s.compute.render_duty == 0.5)
    assert win.session.worker._renderer.duty == 0.5

    old, seen = win.session.worker, win.session.last_snapshot
    win.restart()
    assert win.session.worker is not old
    wait_for(qtbot, win, lambda s: s is not seen and s.compute is not None and s.compute.render_duty == 0.5)
    assert win.session.worker._renderer.duty == 0.5

    _action(win.views_share_menu, "Training first (views get 5%)").trigger()
    wait_for(qtbot, win, lambda s: s.compute.render_duty == 0.05)
    _action(win.views_share_menu, "Balanced (lab default)").trigger()
    wait_for(qtbot, win, lambda s: s.compute.render_duty == default)
    assert win.compute_budget.render_share is None


def test_the_shortcuts_dialog_lists_every_shortcut_from_the_actions(qtbot, window):
    from PySide6 import QtGui

    from app.shortcuts import collect_shortcuts, show_shortcuts

    win = window
    rows = collect_shortcuts(win)
    assert ("Space", "Play / pause", "Training") in rows
    keys = {key for key, _, _ in rows}
    assert {"Ctrl+.", "Ctrl+R", "[", "]", ",", ".", "F1"} <= keys
    assert "F11, Ctrl+Shift+P" in keys
    page_down = QtGui.QKeySequence(QtGui.QKeySequence.MoveToNextPage).toString(QtGui.QKeySequence.NativeText)
    assert any(page_down in key for key in keys)
    # single-key shortcuts leave text fields alone: typing '1.5' in a field does not step the time lab
    edit = win.controls.lr.lineEdit()
    edit.setFocus()
    edit.clear()
    qtbot.keyClicks(edit, "1.5,")
    assert edit.text() == "1.5,"
    dialog = show_shortcuts(win)
    qtbot.waitExposed(dialog)
    assert "Space" in dialog.keys() and len(dialog.keys()) == len(rows)
    dialog.close()

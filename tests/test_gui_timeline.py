"""The timeline bar: scrubbing shows past snapshots while training goes on; Live returns; a branch restarts
training at the shown step with a new learning rate."""
from __future__ import annotations

from dataclasses import replace

import pytest

from models.scenes import Scene

from gui_helpers import open_window, wait_for

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SCENE = Scene(field=replace(Scene().field, width=16), train=replace(Scene().train, lr=1e-3))


def test_scrub_back_then_branch(qtbot):
    win = open_window(qtbot, SCENE, size=24)
    bar = win.timeline_bar
    wait_for(qtbot, win, lambda s: s.step >= 40)
    qtbot.waitUntil(lambda: len(bar.record.snapshots) >= 4, timeout=20000)
    drawn = []
    view = win.views.currentWidget()
    original_render = view.render
    view.render = lambda snapshot: (drawn.append(snapshot.step), original_render(snapshot))
    bar.slider.setValue(1)
    past = bar.record.snapshots[1]
    assert bar.viewing is past and drawn[-1] == past.step and f"viewing step {past.step}" in bar.label.text()
    live_step = win.session.last_snapshot.step
    wait_for(qtbot, win, lambda s: s.step > live_step + 5)  # training goes on ...
    assert drawn[-1] == past.step  # ... while the views keep the past
    bar.go_live()
    assert bar.viewing is None and drawn[-1] == win.session.last_snapshot.step
    view.render = original_render

    bar.slider.setValue(1)
    bar.branch(past.step, lr=3e-3, pin=True)
    assert len(win.compare.board.pins) == 1  # the run as it was, to compare the branch with
    snapshot = wait_for(qtbot, win, lambda s: f"branched at step {past.step}" in s.message)
    assert snapshot.step == past.step and "0.003" in snapshot.message
    assert win.session.scene.train.lr == pytest.approx(3e-3) and win.controls.lr.currentText() == "0.003"
    qtbot.waitUntil(lambda: all(s.step <= past.step for s in bar.record.snapshots), timeout=5000)
    win.controls.play.setChecked(True)
    wait_for(qtbot, win, lambda s: s.step > past.step + 3)
    win.close()

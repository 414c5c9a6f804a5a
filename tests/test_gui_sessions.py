"""File → Save / Open session in the real window: a reopened session continues exactly where it was; a bad file
changes nothing; closing autosaves; a crash is offered back; recent files and the layout are remembered."""
from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest

from models.scenes import Scene

from gui_helpers import open_window, wait_for

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SCENE = Scene(field=replace(Scene().field, width=16), train=replace(Scene().train, lr=1e-3), preset="spectral-bias")


def _paused_at(qtbot, win, steps):
    wait_for(qtbot, win, lambda s: s.step >= steps)
    win.controls.play.setChecked(False)
    return wait_for(qtbot, win, lambda s: not s.running and s.runs)


def _save(qtbot, win, path):
    future = win.session_actions.save_session(path)
    qtbot.waitUntil(future.done, timeout=20000)
    assert future.result()[0], future.result()[1]
    qtbot.waitUntil(lambda: win.session_actions.path == path, timeout=5000)


def test_a_reopened_session_continues_exactly(qtbot, tmp_path):
    first = open_window(qtbot, SCENE, size=24)
    before = _paused_at(qtbot, first, 6)
    path = str(tmp_path / "run.fieldlab")
    _save(qtbot, first, path)
    assert os.path.isfile(path) and first.windowTitle().endswith("run.fieldlab")
    from app.session_menu import recent_sessions

    assert recent_sessions()[0] == os.path.abspath(path)

    second = open_window(qtbot, Scene(field=replace(Scene().field, width=8)), signal="astronaut", size=16)
    wait_for(qtbot, second, lambda s: s.step >= 1)
    second.session_actions.open_session(path)
    after = wait_for(qtbot, second, lambda s: s.step == before.step and len(s.runs) == 3 and not s.running)
    assert second.controls.preset.currentData() == "spectral-bias" and second.source == "camera"
    for a, b in zip(before.runs, after.runs):
        assert a.label == b.label and a.params == b.params
        np.testing.assert_array_equal(a.reconstruction, b.reconstruction)
        np.testing.assert_array_equal(a.loss_history, b.loss_history)
        np.testing.assert_array_equal(a.psnr_history, b.psnr_history)  # the curve comes back too
    # both go on identically: one more step each
    first.step_once()
    second.step_once()
    a = wait_for(qtbot, first, lambda s: s.step == before.step + 1 and not s.running)
    b = wait_for(qtbot, second, lambda s: s.step == before.step + 1 and not s.running)
    for x, y in zip(a.runs, b.runs):
        np.testing.assert_array_equal(x.reconstruction, y.reconstruction)
    first.close()
    second.close()


def test_a_bad_session_file_leaves_the_current_session_alone(qtbot, tmp_path):
    win = open_window(qtbot, SCENE, size=24)
    wait_for(qtbot, win, lambda s: s.step >= 3)
    worker = win.session.worker
    bad = tmp_path / "broken.fieldlab"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    win.session_actions.open_session(str(bad))
    qtbot.waitUntil(lambda: "broken.fieldlab" in win.last_error, timeout=10000)
    assert "not a FieldLab session" in win.last_error
    assert win.session.worker is worker and worker.alive
    step = win.session.last_snapshot.step
    wait_for(qtbot, win, lambda s: s.step > step)  # still training
    win.close()


def test_closing_autosaves_and_a_crash_is_offered_back(qtbot):
    from app.session_menu import autosave_path, recovery_dir

    win = open_window(qtbot, SCENE, size=24)
    snapshot = _paused_at(qtbot, win, 4)
    win.close()
    assert os.path.isfile(autosave_path())
    with open(os.path.join(recovery_dir(), "running-999999999-dead.lock"), "w") as handle:
        handle.write("999999999")  # what a killed FieldLab leaves behind
    again = open_window(qtbot, Scene(field=replace(Scene().field, width=8)), size=16)
    qtbot.waitUntil(lambda: again.session_actions.recovery_offer is not None, timeout=5000)
    assert not os.path.exists(os.path.join(recovery_dir(), "running-999999999-dead.lock"))
    again.session_actions.recovery_offer.done(int(__import__("PySide6").QtWidgets.QMessageBox.Open))
    restored = wait_for(qtbot, again, lambda s: len(s.runs) == 3 and s.step == snapshot.step)
    for a, b in zip(snapshot.runs, restored.runs):
        np.testing.assert_array_equal(a.reconstruction, b.reconstruction)
    again.close()


def test_a_clean_close_offers_nothing_and_the_layout_is_remembered(qtbot):
    from PySide6 import QtWidgets

    win = open_window(qtbot, SCENE, size=24)
    splitter = win.centralWidget()
    assert isinstance(splitter, QtWidgets.QSplitter)
    win.resize(1240, 760)
    qtbot.wait(50)
    splitter.setSizes([420, 820])
    wanted, geometry = splitter.sizes(), win.size()
    win.close()
    again = open_window(qtbot, SCENE, size=24)
    qtbot.wait(200)
    assert again.session_actions.recovery_offer is None
    assert again.size() == geometry
    assert again.centralWidget().sizes()[0] == wanted[0]
    again.close()


def test_export_a_reproducible_bundle_from_the_window(qtbot, tmp_path):
    import json

    win = open_window(qtbot, SCENE, size=24)
    _paused_at(qtbot, win, 12)
    folder = tmp_path / "bundle"
    future = win.session_actions.export_bundle(str(folder))
    qtbot.waitUntil(future.done, timeout=30000)
    ok, message = future.result()
    assert ok, message
    document = json.loads((folder / "bundle.json").read_text())
    assert document["steps"] >= 12 and len(document["runs"]) == 3
    for name in ("session.fieldlab", "metrics.csv", "README.md", "views/window.png", "views/run0_reconstruction.png",
                 "timelapse.gif"):
        assert (folder / name).is_file(), name
    from models.sessions import open_session

    assert open_session(str(folder / "session.fieldlab")).state.step == document["steps"]
    win.close()

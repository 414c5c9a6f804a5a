"""The time lab in the real window (pytest-qt under Xvfb): the slider, play/loop, residual off, plots, exports."""
from __future__ import annotations

import os

import numpy as np
import pytest
from gui_helpers import wait_for

from models.fields import FieldConfig
from models.scenes import Scene
from models.signals import load_signal
from models.time_training import TimeSettings
from models.training import TrainConfig

pytestmark = [pytest.mark.gui, pytest.mark.gl,
              pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display with GLX (xvfb-run)")]


def _window(qtbot, source, scene):
    from app.main_window import MainWindow

    signal = load_signal(source, 24, frames=6)
    win = MainWindow(signal, scene, 24, running=False, source=source)
    qtbot.addWidget(win)
    win.show()
    return win


@pytest.fixture
def video_lab(qtbot):
    scene = Scene(field=FieldConfig(width=24, depth=3), train=TrainConfig(lr=1e-3, batch_size=1024), preset="time",
                  time=TimeSettings(rank=3, compare="same-width", frames_per_batch=3))
    win = _window(qtbot, "tour", scene)
    win.session.worker.step(3)
    wait_for(qtbot, win, lambda s: s.runs and s.runs[0].step == 3 and s.runs[0].time is not None)
    yield win
    win.close()
    assert win.session.worker is None


def test_the_slider_scrubs_continuous_time_and_every_view_follows(qtbot, video_lab):
    win = video_lab
    view = win.time_view
    assert win.views.currentWidget() is view and not win.metrics.isVisible()
    assert win.controls.time_box.isVisible() and win.controls.preset.currentData() == "time"
    view.bar.set_time(0.1)  # between frames 2 and 3 of 6 (frames sit at -1, -0.6, -0.2, 0.2, ...)
    snapshot = wait_for(qtbot, win, lambda s: abs(s.runs[0].time.t - 0.1) < 1e-3)
    time_view = snapshot.runs[0].time
    assert time_view.between_frames and time_view.nearest in (2, 3)
    panel = view._panels[f"run {snapshot.runs[0].label}"]
    np.testing.assert_array_equal(panel.image.image, time_view.reconstruction)
    assert "frame" in view._panels["target"].title.text
    assert abs(view.cursors[0].value() - (time_view.frame + 1)) < 1e-6
    assert "per time (v)" in view.parameters.text()
    assert view.layer.count() == 2 and view.coefficient_plot.listDataItems()  # a curve per rank of layer 1
    view.bar.step_frames(1)
    snapshot = wait_for(qtbot, win, lambda s: not s.runs[0].time.between_frames and s.runs[0].time.t > 0.1)
    assert snapshot.runs[0].time.nearest == 3
    view.bar.snap.setChecked(True)  # only the frames' own times: 0.45 snaps to frame 5's 0.6, exactly
    view.bar.set_time(0.45)
    snapshot = wait_for(qtbot, win, lambda s: abs(s.runs[0].time.t - 0.6) < 1e-12)
    assert not snapshot.runs[0].time.between_frames and snapshot.runs[0].time.nearest == 4


def test_residual_off_shows_the_base_mlp_and_the_difference(qtbot, video_lab):
    win = video_lab
    view = win.time_view
    snapshot = wait_for(qtbot, win, lambda s: s.runs[0].time.base is not None)
    assert view._panels["base"].isVisible() and view._panels["difference"].isVisible()
    resfield = snapshot.runs[0].time
    np.testing.assert_allclose(resfield.difference, (resfield.reconstruction - resfield.base).mean(axis=2), atol=1e-6)
    view.show_base.setChecked(False)
    wait_for(qtbot, win, lambda s: s.runs[0].time.base is None)
    assert "base" not in view._panels or not view._panels["base"].isVisible()


def test_play_advances_frame_by_frame_and_loops(qtbot, video_lab):
    bar = video_lab.time_view.bar
    bar.rate.setValue(60.0)
    bar.set_time(1.0)
    bar.play.setChecked(True)
    qtbot.waitUntil(lambda: bar.t < 0.0, timeout=5000)  # looped back to the start
    bar.loop.setChecked(False)
    qtbot.waitUntil(lambda: not bar.play.isChecked(), timeout=10000)  # stops at the end without looping
    assert bar.t == 1.0


def test_export_sequence_writes_every_frame(qtbot, video_lab, tmp_path):
    from app.time_window import export_sequence

    path = tmp_path / "sequence.gif"
    export_sequence(video_lab, 0, str(path))
    # the message rides on one snapshot (the next pass replaces it at once): read it where the user does
    qtbot.waitUntil(lambda: "wrote" in video_lab.statusBar().currentMessage(), timeout=30000)
    import imageio.v3 as iio

    assert iio.imread(path, index=None).shape[0] == 6 and "6 frames" in video_lab.statusBar().currentMessage()


def test_a_moving_shape_draws_its_mesh_at_t_and_the_base_mesh(qtbot):
    scene = Scene(field=FieldConfig(width=16, depth=3, w0=20.0), train=TrainConfig(lr=1e-3, batch_size=2048),
                  preset="time", time=TimeSettings(rank=2, compare="none"))
    win = _window(qtbot, "bounce", scene)
    try:
        view = win.time_view
        win.session.worker.step(2)
        wait_for(qtbot, win, lambda s: s.runs and s.runs[0].step == 2 and s.runs[0].time is not None, timeout=60000)
        assert view.stack.currentWidget() is view.shape_view and view.base_mesh.isVisible()
        view.bar.set_time(0.6)
        snapshot = wait_for(qtbot, win, lambda s: abs(s.runs[0].time.t - 0.6) < 1e-3, timeout=60000)
        assert snapshot.runs[0].time.truth is not None and snapshot.runs[0].sdf is not None
        assert view.shape_view.canvas.vertex_count == len(snapshot.runs[0].sdf.mesh.vertices)
        view.base_mesh.setChecked(True)
        snapshot = wait_for(qtbot, win, lambda s: s.runs[0].time.sdf_base is not None, timeout=60000)
        assert view.shape_view.canvas.vertex_count == len(snapshot.runs[0].time.sdf_base.mesh.vertices)
    finally:
        win.close()


def test_opening_a_video_file_switches_to_the_time_lab_and_an_image_switches_back(qtbot, tmp_path):
    import imageio.v3 as iio

    from models.scenes import DEFAULT_TIME_SCENE
    from gui_helpers import open_window

    frames = np.zeros((10, 32, 48, 3), np.uint8)
    for k in range(10):
        frames[k, :, :, 0] = np.linspace(0, 255, 48)[None, :] * ((k + 1) / 10)
        frames[k, 8 + k:16 + k, 10:20] = 255
    path = tmp_path / "clip.mp4"
    iio.imwrite(path, frames, plugin="pyav", codec="libx264", fps=10)
    scene = Scene(field=FieldConfig(width=16, depth=2), train=TrainConfig(batch_size=512))
    win = open_window(qtbot, scene, signal="camera", size=32, running=False)
    try:
        win.controls.size.setValue(256)  # an image's working size must not carry over to a video
        win._load_source(str(path))
        snapshot = wait_for(qtbot, win, lambda s: s.signal.kind == "video" and s.runs and s.runs[0].time is not None,
                            timeout=60000)
        assert win.views.currentWidget() is win.time_view and win.controls.preset.currentData() == "time"
        assert snapshot.signal.shape == (10, 32, 48) and "clip.mp4" in win.note.text()
        assert win.controls.width_box.value() == DEFAULT_TIME_SCENE.field.width
        assert snapshot.runs[0].label.startswith("SIREN+ResFields")
        win._load_source("camera")
        wait_for(qtbot, win, lambda s: s.signal.kind == "image" and s.runs, timeout=60000)
        assert win.views.currentWidget() is win.image_view and win.controls.preset.currentData() == "image"
        win.controls.preset.setCurrentIndex(win.controls.preset.findData("time"))
        qtbot.waitUntil(lambda: "open a video" in win.last_error, timeout=5000)  # the image keeps training
    finally:
        win.close()

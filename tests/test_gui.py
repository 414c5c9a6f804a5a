"""The image lab window, driven as a user would (pytest-qt, under Xvfb).

Tiny scenes keep this fast: a 32-px cameraman and a width-16 SIREN.
"""
from __future__ import annotations

import os
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from models.fields import FieldConfig
from models.scenes import Scene
from models.signals import load_signal
from models.training import TrainConfig

pytestmark = pytest.mark.gui
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_scene(preset: str = "image", batch: int = 0) -> Scene:
    return Scene(field=FieldConfig(kind="siren", width=16, depth=2), train=TrainConfig(lr=1e-3, batch_size=batch),
                 preset=preset, lr_override=True)


@pytest.fixture
def window(qtbot):
    from app.main_window import MainWindow

    win = MainWindow(load_signal("camera", 32), tiny_scene(), 32, running=True)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()
    assert win.session.worker is None


def wait_for_snapshot(qtbot, win, condition, timeout=15000):
    qtbot.waitUntil(lambda: win.session.last_snapshot is not None and bool(condition(win.session.last_snapshot)), timeout=timeout)
    return win.session.last_snapshot


def test_window_trains_and_snapshots_reach_the_views(qtbot, window):
    snap = wait_for_snapshot(qtbot, window, lambda s: s.step >= 5 and s.runs)
    image = window.image_view.reconstruction.image.image
    assert image is not None and image.shape == (32, 32)
    assert window.image_view.target.image.image.shape == (32, 32)
    assert window.image_view.error.image.image.shape == (32, 32)
    assert window.image_view.spectrum.image.image.shape == (32, 32)
    assert window.views.currentWidget() is window.image_view
    status = {k: v.text() for k, v in window.status_labels.items()}
    assert status["device"] == "device: cpu"
    assert f"{snap.runs[0].params:,}" in status["params"]
    assert "dB" in status["psnr"]
    curve = window.metrics._curves[0][0]
    xs, ys = curve.getData()
    assert len(xs) >= 1 and np.all(np.isfinite(ys))


def test_pause_step_and_reset_reproduce(qtbot, window):
    wait_for_snapshot(qtbot, window, lambda s: s.step >= 3)
    window.controls.play.setChecked(False)
    paused = wait_for_snapshot(qtbot, window, lambda s: not s.running)
    qtbot.wait(300)
    assert window.session.worker is not None
    assert window.session.last_snapshot.step == paused.step, "training went on while paused"

    window.reset()
    window.controls.play.setChecked(False)
    first = wait_for_snapshot(qtbot, window, lambda s: s.generation == paused.generation + 1 and not s.running)
    start = first.step
    for _ in range(4):
        window.step_once()
    after = wait_for_snapshot(qtbot, window, lambda s: s.step == start + 4 and not s.running)
    assert not window.controls.play.isChecked()

    window.reset()
    window.controls.play.setChecked(False)
    wait_for_snapshot(qtbot, window, lambda s: s.generation == after.generation + 1 and not s.running)
    window.session.worker.step(after.step)
    again = wait_for_snapshot(qtbot, window, lambda s: s.step == after.step and not s.running)
    np.testing.assert_array_equal(again.runs[0].reconstruction, after.runs[0].reconstruction)


def test_changing_width_restarts_with_a_new_model(qtbot, window):
    old = wait_for_snapshot(qtbot, window, lambda s: s.step >= 1)
    old_worker = window.session.worker
    window.controls.width_box.setValue(24)
    qtbot.waitUntil(lambda: window.session.worker is not old_worker, timeout=5000)
    assert not old_worker.alive
    new = wait_for_snapshot(qtbot, window, lambda s: s.runs and s.runs[0].params != old.runs[0].params)
    assert new.runs[0].params == 2 * 24 + 24 + (24 * 24 + 24) + 24 + 1


def test_bad_file_shows_one_line_error_and_keeps_training(qtbot, window, tmp_path):
    wait_for_snapshot(qtbot, window, lambda s: s.step >= 1)
    worker = window.session.worker
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image\n")
    window._load_source(str(bad))
    qtbot.waitUntil(lambda: "notes.png" in window.last_error, timeout=10000)
    assert "\n" not in window.last_error
    assert window.session.worker is worker and worker.alive
    step = window.session.last_snapshot.step
    wait_for_snapshot(qtbot, window, lambda s: s.step > step)


def test_dropping_an_rgb_file_loads_it(qtbot, window, tmp_path):
    path = tmp_path / "stripes.png"
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, ::4, 0] = 255
    rgb[::3, :, 2] = 200
    iio.imwrite(path, rgb)
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(path))])
    pos = QtCore.QPointF(window.width() / 2, window.height() / 2)
    enter = QtGui.QDragEnterEvent(pos.toPoint(), QtCore.Qt.CopyAction, mime, QtCore.Qt.LeftButton, QtCore.Qt.NoModifier)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QtGui.QDropEvent(pos, QtCore.Qt.CopyAction, mime, QtCore.Qt.LeftButton, QtCore.Qt.NoModifier)
    window.dropEvent(drop)
    snap = wait_for_snapshot(qtbot, window, lambda s: s.signal.name == "stripes.png" and s.runs)
    assert snap.target.shape == (16, 32, 3), "downscaled to the 32-px working size, aspect kept"
    assert snap.runs[0].reconstruction.shape == (16, 32, 3)
    assert snap.signal.extent == (1.0, 0.5)


def test_spectral_bias_preset_trains_three_models_side_by_side(qtbot, window):
    window._preset("spectral-bias", "siren")
    snap = wait_for_snapshot(qtbot, window, lambda s: len(s.runs) == 3 and s.step >= 2, timeout=20000)
    assert window.views.currentWidget() is window.comparison_view
    assert [r.label.split(" ")[0] for r in snap.runs] == ["ReLU", "Fourier", "SIREN"]
    assert len(window.metrics._curves) == 3
    for panel, _ in window.comparison_view.panels[:3]:
        assert panel.image.image.shape == (32, 32)


def test_sinusoids_scene_uses_the_curve_view(qtbot, window):
    window._load_source("sinusoids")
    snap = wait_for_snapshot(qtbot, window, lambda s: s.signal.kind == "curve" and s.runs and s.step >= 2)
    assert window.views.currentWidget() is window.curve_view
    xs, ys = window.curve_view.curves[0][0].getData()
    assert len(xs) == snap.target.size == 1024


def test_an_exception_in_the_worker_is_shown_and_the_app_survives(qtbot, window, monkeypatch):
    def broken_build(self, signal):
        raise RuntimeError("simulated failure while building")

    monkeypatch.setattr(Scene, "build", broken_build)
    window.restart()
    qtbot.waitUntil(lambda: "simulated failure" in window.last_error, timeout=10000)
    assert not window.controls.play.isChecked()
    monkeypatch.undo()
    window.restart()
    window.controls.play.setChecked(True)
    wait_for_snapshot(qtbot, window, lambda s: s.runs and s.step >= 1)


def test_divergence_message_pauses_and_informs(qtbot, window):
    wait_for_snapshot(qtbot, window, lambda s: s.step >= 2)
    trainer_state = {}

    def poison():
        import torch

        trainer = window.session.worker._trainers[0][1]
        with torch.no_grad():
            trainer.model.output.weight.fill_(float("nan"))
        trainer_state["done"] = True

    window.controls.play.setChecked(False)
    wait_for_snapshot(qtbot, window, lambda s: not s.running)
    qtbot.wait(200)
    poison()
    window.step_once()
    qtbot.waitUntil(lambda: "restored" in window.last_error, timeout=10000)
    snap = window.session.last_snapshot
    assert not snap.running
    assert np.all(np.isfinite(snap.runs[0].reconstruction))


@pytest.mark.parametrize("attempt", range(2))
def test_closing_mid_training_exits_zero(tmp_path, attempt):
    shot = tmp_path / "shot.png"
    env = dict(os.environ, PYTHONPATH=REPO)
    result = subprocess.run(
        [sys.executable, "-m", "app", "--signal", "camera", "--size", "48", "--width", "32", "--batch", "0",
         "--screenshot", str(shot), "--screenshot-after", "2"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    image = iio.imread(shot)
    assert image.shape[0] > 300 and image.shape[1] > 600


def test_save_field_from_the_app_is_readable_headless(qtbot, window, tmp_path, monkeypatch):
    from app.cli import main
    from models.checkpoint import load_field

    wait_for_snapshot(qtbot, window, lambda s: s.step >= 3)
    window.controls.play.setChecked(False)
    wait_for_snapshot(qtbot, window, lambda s: not s.running)
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path))
    window.save_fields()
    snap = wait_for_snapshot(qtbot, window, lambda s: "saved" in s.message)
    assert str(tmp_path) in snap.message
    saved = load_field(str(tmp_path))
    assert saved.meta["signal"]["shape"] == [32, 32]
    assert main(["render", str(tmp_path), "--out", str(tmp_path / "again.png")]) == 0
    rendered = iio.imread(tmp_path / "again.png").astype(int)
    assert np.abs(rendered - iio.imread(tmp_path / "reconstruction.png").astype(int)).max() <= 1


def test_hovering_a_pixel_reports_its_values(qtbot, window):
    snap = wait_for_snapshot(qtbot, window, lambda s: s.runs and s.step >= 1)
    window.image_view.render(snap)
    panel = window.image_view.reconstruction
    reports = []
    window.image_view.pixelReport.connect(reports.append)
    scene_pos = panel.view.mapViewToScene(QtCore.QPointF(5.5, 7.5))  # column 5, row 7
    panel._mouse_moved(scene_pos)
    assert reports and reports[-1].startswith("pixel (x 5, y 7): target ")
    assert f"{snap.target[7, 5]:.3f}" in reports[-1]
    assert f"{snap.runs[0].error[7, 5]:.4f}" in reports[-1]


def test_image_panels_zoom_together(qtbot, window):
    wait_for_snapshot(qtbot, window, lambda s: s.runs)
    window.image_view.target.view.setRange(xRange=(4, 12), yRange=(4, 12), padding=0)
    qtbot.wait(50)
    for panel in (window.image_view.reconstruction, window.image_view.error):
        (x0, x1), _ = panel.view.viewRange()
        assert x1 - x0 < 16, "linked panels should follow the target's zoom"


def test_changing_the_working_size_reloads_a_user_file(qtbot, window, tmp_path):
    path = tmp_path / "ramp.png"
    iio.imwrite(path, np.tile(np.arange(0, 240, 4, dtype=np.uint8), (30, 1)))  # 60 x 30
    window._load_source(str(path))
    wait_for_snapshot(qtbot, window, lambda s: s.signal.name == "ramp.png" and s.target.shape == (16, 32))
    assert window.controls.source.currentText() == "ramp.png"
    window.controls.size.setValue(48)
    window.controls.size.editingFinished.emit()
    snap = wait_for_snapshot(qtbot, window, lambda s: s.signal.name == "ramp.png" and s.target.shape == (24, 48))
    assert "downscaled from 60x30 to 48x24" in snap.signal.note


def test_reset_after_a_live_learning_rate_change_uses_the_new_rate(qtbot, window):
    wait_for_snapshot(qtbot, window, lambda s: s.step >= 1)
    window.controls.lr.setCurrentText("3e-4")
    window.controls.lr.lineEdit().editingFinished.emit()
    assert window.session.scene.train.lr == 3e-4
    window.reset()
    qtbot.waitUntil(lambda: window.session.worker._trainers and
                    window.session.worker._trainers[0][1].optimizer.param_groups[0]["lr"] == 3e-4, timeout=10000)

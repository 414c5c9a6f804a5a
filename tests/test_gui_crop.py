"""The crop & extend lab driven as a user would (pytest-qt, under Xvfb): a tiny partitioned field, paused."""
from __future__ import annotations

import os

import numpy as np
import pytest
from gui_helpers import open_window, wait_for
from PySide6 import QtCore

from models.fields import FieldConfig
from models.scenes import CropSettings, Scene
from models.signals import load_signal
from models.training import TrainConfig

pytestmark = pytest.mark.gui


def crop_scene(**settings) -> Scene:
    crop = CropSettings(**{"partitions": (4, 4), "params": 2500, "global_ratio": 0.1, **settings})
    return Scene(field=FieldConfig(kind="siren", depth=2), train=TrainConfig(lr=1e-3, batch_size=0), preset="crop",
                 crop=crop)


def partition_centre(info, flat: int) -> tuple[float, float]:
    rows, cols = np.nonzero(info.pixel_partition == flat)
    return float(cols.mean()) + 0.5, float(rows.mean()) + 0.5


@pytest.fixture
def trained(qtbot):
    """A paused crop lab whose field has trained 5 steps."""
    win = open_window(qtbot, crop_scene(), running=False)
    wait_for(qtbot, win, lambda s: s.runs and s.runs[0].partitions is not None)
    win.session.worker.step(5)
    snapshot = wait_for(qtbot, win, lambda s: s.runs and s.runs[0].step == 5 and not s.running)
    yield win, snapshot
    win.close()
    assert win.session.worker is None


def test_click_crops_at_once_and_the_worker_confirms_bit_identically(qtbot, trained):
    win, before = trained
    view = win.crop_view
    assert win.views.currentWidget() is view
    info = before.runs[0].partitions
    assert info.params == info.global_params + 16 * info.local_params
    x, y = partition_centre(info, 5)
    view.reconstruction.view.clicked.emit(x, y, QtCore.Qt.NoModifier)
    shown = view.reconstruction.image.image
    blank = info.pixel_partition == 5
    assert np.isnan(shown[blank]).all(), "the click shows the crop before the worker answers"
    np.testing.assert_array_equal(shown[~blank], before.runs[0].reconstruction[~blank])
    assert f"<b>{info.global_params + 15 * info.local_params:,}</b> parameters" in view.info.text()
    after = wait_for(qtbot, win, lambda s: 5 not in s.runs[0].partitions.present)
    run = after.runs[0]
    assert run.params == info.global_params + 15 * info.local_params
    assert np.isnan(run.reconstruction[blank]).all()
    np.testing.assert_array_equal(run.reconstruction[~blank], before.runs[0].reconstruction[~blank])
    assert np.isnan(run.partition_psnr[5]) and np.isfinite(np.delete(run.partition_psnr, 5)).all()

    win.crop_action("undo")
    undone = wait_for(qtbot, win, lambda s: 5 in s.runs[0].partitions.present)
    np.testing.assert_array_equal(undone.runs[0].reconstruction, before.runs[0].reconstruction)
    assert undone.runs[0].params == info.params
    win.crop_action("redo")
    redone = wait_for(qtbot, win, lambda s: 5 not in s.runs[0].partitions.present)
    np.testing.assert_array_equal(redone.runs[0].reconstruction[~blank], before.runs[0].reconstruction[~blank])
    # clicking the cropped partition brings it back, at once (the view remembers what it showed)
    view.reconstruction.view.clicked.emit(x, y, QtCore.Qt.NoModifier)
    np.testing.assert_array_equal(view.reconstruction.image.image, before.runs[0].reconstruction)
    back = wait_for(qtbot, win, lambda s: 5 in s.runs[0].partitions.present)
    np.testing.assert_array_equal(back.runs[0].reconstruction, before.runs[0].reconstruction)


def test_drag_selects_and_keep_only_crops_the_rest(qtbot, trained):
    win, before = trained
    view = win.crop_view
    info = before.runs[0].partitions
    h, w = info.pixel_partition.shape
    view.reconstruction.view.dragged.emit(QtCore.QRectF(0, 0, w / 2 - 1, h / 2 - 1), True, QtCore.Qt.NoModifier)
    assert view.selection == {0, 1, 4, 5}
    win.crop_action("keep-selection")
    after = wait_for(qtbot, win, lambda s: len(s.runs[0].partitions.present) == 4)
    assert after.runs[0].partitions.present == (0, 1, 4, 5)
    assert after.runs[0].params == info.global_params + 4 * info.local_params
    kept = np.isin(info.pixel_partition, [0, 1, 4, 5])
    np.testing.assert_array_equal(after.runs[0].reconstruction[kept], before.runs[0].reconstruction[kept])
    assert np.isnan(after.runs[0].reconstruction[~kept]).all()
    win.crop_action("restore-all")
    restored = wait_for(qtbot, win, lambda s: len(s.runs[0].partitions.present) == 16)
    np.testing.assert_array_equal(restored.runs[0].reconstruction, before.runs[0].reconstruction)
    # Delete crops the selection
    view.reconstruction.view.dragged.emit(QtCore.QRectF(w / 2 + 1, h / 2 + 1, w / 2 - 2, h / 2 - 2), True,
                                          QtCore.Qt.NoModifier)
    assert view.selection == {10, 11, 14, 15}
    view.setFocus()
    qtbot.keyClick(view, QtCore.Qt.Key_Delete)
    wait_for(qtbot, win, lambda s: s.runs[0].partitions.present == tuple(p for p in range(16) if p not in (10, 11, 14, 15)))


def test_saving_a_cropped_field_writes_a_smaller_file_that_loads_back(qtbot, trained, tmp_path):
    from app.headless import save_runs
    from models.checkpoint import load_field

    win, before = trained
    full, cropped = str(tmp_path / "full"), str(tmp_path / "cropped")
    win.session.worker.call(lambda trainers: save_runs(full, trainers))
    win.crop_view.request_crop(list(range(8)))
    wait_for(qtbot, win, lambda s: len(s.runs[0].partitions.present) == 8)
    win.session.worker.call(lambda trainers: save_runs(cropped, trainers))
    qtbot.waitUntil(lambda: os.path.exists(os.path.join(cropped, "field.json")), timeout=10000)
    sizes = [os.path.getsize(os.path.join(folder, "field.safetensors")) for folder in (full, cropped)]
    assert sizes[1] < sizes[0]
    saved = load_field(cropped)
    assert saved.model.present_list == list(range(8, 16))


def test_extension_experiment_runs_three_models_and_plots_the_mse_after_extending(qtbot):
    win = open_window(qtbot, crop_scene(extend=True, extend_at=1000), running=True)
    try:
        snapshot = wait_for(qtbot, win, lambda s: len(s.runs) == 3 and s.runs[0].step >= 3)
        assert len(snapshot.runs[0].partitions.present) == 8, "trained on the top half first"
        assert win.crop_view.plots.extension_plot.isVisible()
        win.crop_action("extend")
        def fine_tuned(s) -> bool:  # every run has trained a few steps since the extension
            return all(r.extension_step is not None and r.loss_history.size and r.loss_history[-1, 0] >= r.extension_step + 2
                       for r in s.runs)

        done = wait_for(qtbot, win, fine_tuned)
        lg = done.runs[0]
        assert len(lg.partitions.present) == 16 and len(lg.partitions.added) == 8
        assert np.isfinite(lg.reconstruction).all()
        curves = win.crop_view.plots._curves
        assert set(curves) == {run.label for run in done.runs}
        assert all(curve.xData is not None and len(curve.xData) > 0 for curve in curves.values())
    finally:
        win.close()


def test_crop_preset_needs_an_image(qtbot):
    from app.main_window import MainWindow

    win = MainWindow(load_signal("camera", 32), Scene(), 32, running=False)
    qtbot.addWidget(win)
    win.start_session(load_signal("sinusoids"), crop_scene(), running=False)
    assert "partitions images" in win.last_error
    win.close()


def test_extend_now_refills_a_kept_selection_and_says_so_when_nothing_is_missing(qtbot, trained):
    win, before = trained
    win.crop_action("extend")
    said = wait_for(qtbot, win, lambda s: "every partition is present" in s.message)
    assert not said.error and len(said.runs[0].partitions.present) == 16
    win.crop_view.request_crop([p for p in range(16) if p not in (5, 6)])
    wait_for(qtbot, win, lambda s: s.runs[0].partitions.present == (5, 6))
    win.crop_action("extend")
    extended = wait_for(qtbot, win, lambda s: len(s.runs[0].partitions.present) == 16)
    run = extended.runs[0]
    assert run.partitions.added == tuple(p for p in range(16) if p not in (5, 6))
    assert run.extension_step == 5 and np.isfinite(run.reconstruction).all()
    assert not run.partitions.can_undo, "an extension starts a new phase: earlier crops cannot be undone"

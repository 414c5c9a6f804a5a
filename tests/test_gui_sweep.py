"""The FINER++ lab driven as a user would (pytest-qt, under Xvfb): a tiny sweep, paused then stepped."""
from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import open_window, wait_for

from models.fields import FieldConfig
from models.scenes import Scene
from models.sweep import SweepSettings
from models.training import TrainConfig

pytestmark = pytest.mark.gui


def sweep_scene(**settings) -> Scene:
    sweep = SweepSettings(**{"activations": ("finer",), "ks": (0.0, 2.0, 8.0), "reference": True, **settings})
    return Scene(field=FieldConfig(kind="finer", width=16, depth=2), train=TrainConfig(lr=1e-3, batch_size=0),
                 preset="sweep", sweep=sweep)


@pytest.fixture
def sweep(qtbot):
    win = open_window(qtbot, sweep_scene(), running=False)
    wait_for(qtbot, win, lambda s: len(s.runs) == 4)
    win.session.worker.step(3)
    snapshot = wait_for(qtbot, win, lambda s: s.runs[0].step == 3 and not s.running)
    yield win, snapshot
    win.close()
    assert win.session.worker is None


def test_every_member_gets_a_cell_in_order_with_its_facts(qtbot, sweep):
    win, snapshot = sweep
    view = win.sweep_view
    assert win.views.currentWidget() is view and not win.metrics.isVisible()
    labels = [run.label for run in snapshot.runs]
    assert labels == ["FINER++ sine k=0", "FINER++ sine k=2", "FINER++ sine k=8", "SIREN default bias"]
    assert [run.config.bias_range for run in snapshot.runs] == [0.0, 2.0, 8.0, None]
    assert len(view.grid._cells) == 4
    for run, (label, _, images) in zip(snapshot.runs, view.grid._cells):
        np.testing.assert_array_equal(images[0].image, run.reconstruction)
        np.testing.assert_array_equal(images[1].image, run.error)
        assert f"{run.psnr:.2f} dB" in label.text
        assert 0.0 <= run.hf_energy <= 1.0
    # the same seed: only the first-layer bias differs, so larger k shows a wider pre-activation histogram
    spans = [run.first_layer.curve_z[-1] for run in snapshot.runs[:3]]
    assert spans[0] < spans[1] < spans[2]
    highest = [run.first_layer.frequencies[-1] for run in snapshot.runs[:3]]
    assert highest[0] < highest[1] < highest[2], "FINER++: larger k, faster first-layer neurons"


def test_click_selects_and_double_click_opens_large_in_the_image_lab(qtbot, sweep):
    win, snapshot = sweep
    view = win.sweep_view
    view.grid._cells[2][1][0].clicked.emit(False)
    assert view.selected == 2 and "k=8" in view.header.text()
    np.testing.assert_array_equal(view.neurons._rows[1][1][0].image, snapshot.runs[2].first_layer.high_images[0])
    assert view.activation_plot.region.getRegion() == pytest.approx(snapshot.runs[2].first_layer.used)
    view.grid._cells[1][1][0].clicked.emit(True)
    assert win.views.currentWidget() is win.image_view and win.image_view.back_bar.isVisible()
    win.session.worker.step(1)
    later = wait_for(qtbot, win, lambda s: s.runs[0].step == 4 and not s.running)
    np.testing.assert_array_equal(win.image_view.reconstruction.image.image, later.runs[1].reconstruction)
    assert "k=2" in win.image_view.back_label.text()
    win.image_view.back_button.click()
    assert win.views.currentWidget() is view and not win.image_view.back_bar.isVisible()


def test_sweep_settings_from_the_panel_rebuild_the_members(qtbot, sweep):
    win, _ = sweep
    box = win.controls.sweep_box
    assert box.isVisible()
    box.ks.setText("1, default")
    box.ks.editingFinished.emit()
    scene = win.controls.scene()
    assert scene.preset == "sweep" and scene.sweep.ks == (1.0, None)
    members = [(c.kind, c.bias_range) for c, _ in scene.sweep_members()]
    assert members == [("finer", 1.0), ("finer", None), ("siren", None)]
    box.ks.setText("0:4:3")
    assert win.controls.scene().sweep.ks == (0.0, 2.0, 4.0)
    box.ks.setText("1, x")
    with pytest.raises(ValueError, match="'x' is neither a number"):
        win.controls.scene()


def test_switching_to_the_sweep_resets_the_learning_rate_to_sirens(qtbot):
    from models.scenes import DEFAULT_TRAIN

    win = open_window(qtbot, Scene(field=FieldConfig(kind="siren", width=16, depth=2), train=DEFAULT_TRAIN),
                      running=False)
    controls = win.controls
    controls.kind.setCurrentIndex(controls.kind.findData("gauss"))
    assert controls.scene().train.lr == pytest.approx(1e-2)  # Gauss's own default
    controls.preset.setCurrentIndex(controls.preset.findData("sweep"))
    scene = controls.scene()
    assert scene.train.lr == pytest.approx(1e-3), "a sweep's learning rate is SIREN's; members scale it"
    assert {c.kind: t.lr for c, t in scene.sweep_members()} == {"finer": pytest.approx(1e-3), "siren": pytest.approx(1e-3)}
    win.close()


def test_a_setting_changed_just_before_closing_starts_nothing(qtbot):
    import threading

    win = open_window(qtbot, sweep_scene(), running=False)
    wait_for(qtbot, win, lambda s: len(s.runs) == 4)
    win.controls.width_box.setValue(24)  # debounced: would restart the session 350 ms later
    win.close()
    qtbot.wait(700)
    assert win.session.worker is None
    assert not [t for t in threading.enumerate() if t.name.startswith("fieldlab-") and t.is_alive()]

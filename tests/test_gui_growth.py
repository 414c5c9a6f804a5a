"""The spectral growth lab driven as a user would (pytest-qt, under Xvfb): tiny widths, few steps."""
from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import open_window, wait_for

from models.fields import FieldConfig
from models.growth import GrowthConfig
from models.scenes import Scene
from models.training import TrainConfig

pytestmark = pytest.mark.gui


def growth_scene(steps: int = 12, widths=(4, 8, 16), **growth) -> Scene:
    return Scene(field=FieldConfig(kind="siren", width=16, depth=2), train=TrainConfig(lr=1e-3, batch_size=0),
                 preset="growth", widths=widths, growth=GrowthConfig(stage_steps=steps, **growth))


def finished(snapshot) -> bool:
    return bool(snapshot.runs) and snapshot.runs[0].stages is not None and snapshot.runs[0].stages.finished


@pytest.fixture
def grown(qtbot):
    """A growth lab window that has trained every stage of widths 4/8/16."""
    win = open_window(qtbot, growth_scene())
    snapshot = wait_for(qtbot, win, lambda s: finished(s) and len(s.runs[0].widths) == 3 and not s.running)
    yield win, snapshot
    win.close()
    assert win.session.worker is None


def test_growth_lab_trains_every_stage_then_pauses(grown):
    win, snapshot = grown
    assert win.views.currentWidget() is win.growth_view
    run = snapshot.runs[0]
    assert run.stages.states == ("trained", "trained", "trained")
    assert run.stages.stage_end_steps == (12, 24, 36)
    assert [v.width for v in run.widths] == [4, 8, 16]
    assert [v.params for v in run.widths] == list(run.stages.params)
    psnrs = [v.psnr for v in run.widths]
    assert psnrs == sorted(psnrs), psnrs
    assert not win.controls.play.isChecked()
    lines = [line for plot, line in win.metrics._stage_lines if plot is win.metrics.psnr_plot]
    assert [line.value() for line in lines] == [12, 24, 36]


def test_slider_swaps_every_panel_to_the_chosen_width(qtbot, grown):
    win, snapshot = grown
    view = win.growth_view
    view.slider.follow.setChecked(False)
    for index in (0, 2, 1):
        view.slider.slider.setValue(index)
        width = snapshot.runs[0].widths[index]
        np.testing.assert_array_equal(view.reconstruction.image.image, width.reconstruction)
        np.testing.assert_array_equal(view.residual.image.image, width.residual)
        np.testing.assert_array_equal(view.residual_spectrum.image.image, width.residual_spectrum)
        low, high = view.residual.image.levels
        assert low == pytest.approx(-high) and high > 0, "the residual colour map is symmetric about zero"
        assert f"width {width.width}</b>" in view.info.text()
        assert f"{width.params:,} parameters" in view.info.text()
    assert np.abs(snapshot.runs[0].widths[1].residual).max() > 0
    # keyboard: ']' and '[' step through widths
    view.slider.slider.setValue(0)
    win._step_width(+1)
    assert view.slider.index == 1
    win._step_width(-1)
    win._step_width(-1)
    assert view.slider.index == 0


def test_plots_show_one_spectrum_per_width_and_the_tradeoff(grown):
    win, snapshot = grown
    plots = win.growth_view.plots
    assert len(plots._radial_items) == 3
    xs, ys = plots._stream_item.getData()
    np.testing.assert_allclose(xs, np.log10([v.params for v in snapshot.runs[0].widths]))  # a log axis
    assert "covers" in plots.coverage.text()
    plots.spectrum_kind.setCurrentIndex(1)  # residual spectra
    _, power = plots._radial_items[0].getData()
    assert power is not None and len(power) > 0


def test_slider_cannot_select_a_width_that_is_not_trained_yet(qtbot):
    win = open_window(qtbot, growth_scene(steps=100000))
    try:
        wait_for(qtbot, win, lambda s: s.runs and s.runs[0].widths and s.step >= 2)
        view = win.growth_view
        view.slider.follow.setChecked(False)
        view.slider.slider.setValue(2)
        assert view.slider.index == 0, "pending widths snap back to the widest available"
        assert "○" in view.slider.labels.text()
    finally:
        win.close()


def test_grow_now_and_add_stage(qtbot):
    win = open_window(qtbot, growth_scene(steps=100000, widths=(4, 8)))
    try:
        wait_for(qtbot, win, lambda s: s.step >= 3)
        win.controls.grow_now.click()
        snap = wait_for(qtbot, win, lambda s: s.runs[0].stages.stage == 1)
        assert snap.runs[0].stages.stage_end_steps[0] < 100000
        win.grow_now()
        snap = wait_for(qtbot, win, lambda s: finished(s) and not s.running)
        assert snap.runs[0].stages.states == ("trained", "trained")
        win.controls.play.setChecked(True)
        win.controls.add_stage.click()  # plans width 16 and resumes
        snap = wait_for(qtbot, win, lambda s: len(s.runs[0].stages.widths) == 3 and s.runs[0].stages.stage == 2)
        assert snap.runs[0].stages.widths == (4, 8, 16)
        assert win.controls.widths.text() == "4, 8, 16"
        assert win.session.scene.widths == (4, 8, 16), "a reset rebuilds with the added stage"
    finally:
        win.close()


def test_invalid_widths_are_reported_and_keep_the_session(qtbot, grown):
    win, _ = grown
    worker = win.session.worker
    win.controls.widths.setText("32, 16")
    win.controls._growth_text_finished()
    qtbot.waitUntil(lambda: "increasing" in win.last_error, timeout=5000)
    assert win.session.worker is worker


def test_one_dimensional_growth_preset(qtbot):
    win = open_window(qtbot, growth_scene(steps=10, widths=(4, 8)), signal="sinusoids", size=64)
    try:
        snap = wait_for(qtbot, win, lambda s: finished(s) and len(s.runs[0].widths) == 2)
        view = win.curve_growth_view
        assert win.views.currentWidget() is view
        assert len(view._items) == 2
        xs, ys = view._items[1][0].getData()
        np.testing.assert_array_equal(ys, snap.runs[0].widths[1].reconstruction)
        _, residual = view._items[1][1].getData()
        np.testing.assert_array_equal(residual, snap.runs[0].widths[1].residual)
        view.slider.follow.setChecked(False)
        view.slider.slider.setValue(0)
        assert view._items[0][0].opts["pen"].width() > view._items[1][0].opts["pen"].width()
    finally:
        win.close()


def test_spatial_growing_marks_the_revealed_columns(qtbot):
    win = open_window(qtbot, growth_scene(steps=8, widths=(4, 8), spatial=True))
    try:
        snap = wait_for(qtbot, win, lambda s: finished(s) and len(s.runs[0].widths) == 2)
        assert snap.runs[0].stages.revealed == (16, 32)
        view = win.growth_view
        view.slider.follow.setChecked(False)
        view.slider.slider.setValue(0)
        assert view._boundary.isVisible() and view._boundary.value() == 16
        assert "first 16 columns" in view.info.text()
        view.slider.slider.setValue(1)
        assert not view._boundary.isVisible(), "the last stage covers every column"
        win.controls.apply(win.session.scene, 32)
        assert not win.controls.baseline.isEnabled(), "separate models compare spectral growth only"
    finally:
        win.close()


def test_separate_models_baseline_in_the_tradeoff_plot(qtbot):
    scene = growth_scene(steps=6, widths=(4, 8))
    from dataclasses import replace

    win = open_window(qtbot, replace(scene, baseline=True))
    try:
        snap = wait_for(qtbot, win, lambda s: len(s.runs) == 3 and not s.running and finished(s))
        assert [run.label.startswith("separate SIREN") for run in snap.runs] == [False, True, True]
        assert [run.step for run in snap.runs[1:]] == [6, 12], "each as many steps as its width had"
        xs, _ = win.growth_view.plots._separate_item.getData()
        assert len(xs) == 2
        assert "Separate models" in win.growth_view.plots.coverage.text()
    finally:
        win.close()

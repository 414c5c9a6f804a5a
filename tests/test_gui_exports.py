"""File → Export in the real window (pytest-qt under Xvfb): PNGs re-rendered from the field, the width sweep, the
timelapse and plot data as CSV. Dialogs are replaced by monkeypatched answers."""
from __future__ import annotations

import copy
import os

import numpy as np
import pytest
from gui_helpers import open_window, wait_for
from PIL import Image

from models.exports import CAPTION_HEIGHT, read_plot_csv
from models.fields import FieldConfig, evaluate_in_chunks
from models.growth import GrowthConfig
from models.scenes import Scene
from models.signals import grid_coords
from models.streamable import evaluate_widths_in_chunks
from models.training import TrainConfig

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("one_torch_thread")]


def image_scene() -> Scene:
    return Scene(field=FieldConfig(kind="siren", width=16, depth=2), train=TrainConfig(lr=1e-3, batch_size=0))


def growth_scene() -> Scene:
    return Scene(field=FieldConfig(kind="siren", width=16, depth=2), train=TrainConfig(lr=1e-3, batch_size=0),
                 preset="growth", widths=(4, 8, 16), growth=GrowthConfig(stage_steps=6))


def export_action(win, text: str):
    from app.features import menu_named

    file_menu = menu_named(win, "File")
    export = next(a.menu() for a in file_menu.actions() if a.menu() is not None and a.text().replace("&", "") == "Export")
    return next(a for a in export.actions() if a.text() == text)


def answer_dialogs(monkeypatch, path=None, size=None, folder=None):
    from PySide6 import QtWidgets

    import app.dialogs
    import app.exports

    if path is not None:
        monkeypatch.setattr(app.dialogs, "ask_save_path", lambda *args, **kwargs: str(path))
    if size is not None:
        monkeypatch.setattr(QtWidgets.QInputDialog, "getInt", staticmethod(lambda *args, **kwargs: (size, True)))
    if folder is not None:
        monkeypatch.setattr(app.exports, "ask_folder", lambda *args, **kwargs: str(folder))


def pause(qtbot, win):
    win.controls.play.setChecked(False)
    return wait_for(qtbot, win, lambda s: not s.running)


def model_copy(qtbot, win):
    """A copy of run 0's field, taken on the worker thread (training is paused, so it is what an export renders)."""
    copies = []
    win.session.worker.call(lambda trainers: copies.append(copy.deepcopy(trainers[0][1].model)))
    qtbot.waitUntil(lambda: bool(copies), timeout=10000)
    return copies[0]


def wait_for_file(qtbot, path, win):
    qtbot.waitUntil(lambda: os.path.exists(path) and "wrote" in win.statusBar().currentMessage(), timeout=30000)


def expected_pixels(values, h, w) -> np.ndarray:
    unit = np.clip((values.numpy().reshape(h, w, -1) + 1.0) * 0.5, 0.0, 1.0)
    return np.clip(np.floor(unit * 255.0 + 0.5), 0, 255).astype(np.uint8)[:, :, 0]


@pytest.fixture
def image_lab(qtbot):
    win = open_window(qtbot, image_scene(), size=16)
    wait_for(qtbot, win, lambda s: s.runs and s.step >= 6)
    yield win
    win.close()
    assert win.session.worker is None


@pytest.fixture
def growth_lab(qtbot):
    win = open_window(qtbot, growth_scene(), size=16)
    wait_for(qtbot, win, lambda s: s.runs and s.runs[0].stages is not None and s.runs[0].stages.finished
             and len(s.runs[0].widths) == 3 and not s.running)
    yield win
    win.close()
    assert win.session.worker is None


def test_image_lab_png_at_three_times_the_working_size_and_the_timelapse(qtbot, image_lab, tmp_path, monkeypatch):
    win = image_lab
    qtbot.waitUntil(lambda: len(win.timelapse) >= 3, timeout=20000)
    pause(qtbot, win)
    path = tmp_path / "camera.png"
    answer_dialogs(monkeypatch, path=path, size=48)
    export_action(win, "Image at any resolution…").trigger()
    wait_for_file(qtbot, path, win)
    model = model_copy(qtbot, win)
    with Image.open(path) as png:
        assert png.size == (48, 48)
        pixels = np.asarray(png)
    expected = expected_pixels(evaluate_in_chunks(model, grid_coords((48, 48), win.session.signal.extent)), 48, 48)
    np.testing.assert_array_equal(pixels, expected)
    # the timelapse: every snapshot's reconstruction since the session started, up to the last one
    steps = win.timelapse.steps
    assert len(steps) >= 3 and steps == sorted(steps) and steps[-1] == win.session.last_snapshot.step
    path = tmp_path / "progress.gif"
    answer_dialogs(monkeypatch, path=path)
    export_action(win, "Training timelapse…").trigger()
    wait_for_file(qtbot, path, win)
    with Image.open(path) as gif:
        assert gif.n_frames == len(steps) and gif.size == (16, 16 + CAPTION_HEIGHT)
        gif.seek(len(steps) - 1)
        last = np.asarray(gif.convert("L"))[CAPTION_HEIGHT:]
    shown = np.clip(np.floor(win.session.last_snapshot.runs[0].reconstruction * 255 + 0.5), 0, 255)
    assert np.abs(last.astype(int) - shown.astype(int)).max() <= 2  # GIF palettes round a little
    win.reset()  # a new generation (still paused): the record starts over at its step 0
    qtbot.waitUntil(lambda: win.timelapse.steps == [0], timeout=20000)


def test_image_lab_plot_data_as_csv(qtbot, image_lab, tmp_path, monkeypatch):
    import pyqtgraph as pg

    from app.exports import CSV_ACTION, plot_items
    from app.features import menu_named

    win = image_lab
    snapshot = pause(qtbot, win)
    # one plot from its right-click menu
    plot = win.metrics.psnr_plot.getPlotItem()
    action = next(a for a in plot.vb.menu.actions() if a.text() == CSV_ACTION)
    path = tmp_path / "psnr.csv"
    answer_dialogs(monkeypatch, path=path)
    x, y = plot.listDataItems()[0].getOriginalDataset()
    action.trigger()
    assert path.exists() and "1 series" in win.statusBar().currentMessage()
    data = read_plot_csv(str(path))
    label = snapshot.runs[0].label
    assert list(data) == [label] and len(x) >= 2
    np.testing.assert_array_equal(data[label][0], x)
    np.testing.assert_array_equal(data[label][1], y)
    # every visible plot into a folder
    folder = tmp_path / "plots"
    folder.mkdir()
    answer_dialogs(monkeypatch, folder=folder)
    export_action(win, "All plot data as CSV…").trigger()
    files = sorted(os.listdir(folder))
    assert {"psnr-db.csv", "training-loss-log10-mse.csv"} <= set(files), files
    loss = read_plot_csv(str(folder / "training-loss-log10-mse.csv"))
    assert list(loss) == ["curve 1"] and len(loss["curve 1"][0]) >= 2
    assert "plots to" in win.exports.last_message
    # every plot has the action once, also one created after the window (hooked on the next look)
    late = pg.PlotWidget(title="made later")
    win.views.addWidget(late)
    win.exports.hook_plots()
    items = plot_items(win)
    assert late.getPlotItem() in items and win.growth_view.plots.radial.getPlotItem() in items
    for item in items:
        assert [a.text() for a in item.vb.menu.actions()].count(CSV_ACTION) == 1
    texts = [a.text().replace("&", "") for a in menu_named(win, "File").actions()]
    assert texts.index("Export") < texts.index("Quit")
    # exports another lab owns say where to find them
    for text in ("Width sweep animation…", "Residual at any resolution (growth lab)…"):
        export_action(win, text).trigger()
        assert "growth lab" in win.exports.last_message
    export_action(win, "Time slider animation…").trigger()
    assert "time lab" in win.exports.last_message


def test_growth_lab_png_at_the_slider_width_its_residual_and_the_width_sweep(qtbot, growth_lab, tmp_path, monkeypatch):
    win = growth_lab
    view = win.growth_view
    view.slider.follow.setChecked(False)
    view.slider.slider.setValue(1)  # width 8
    path = tmp_path / "width8.png"
    answer_dialogs(monkeypatch, path=path, size=48)
    export_action(win, "Image at any resolution…").trigger()
    wait_for_file(qtbot, path, win)
    assert "at width 8" in win.statusBar().currentMessage()
    model = model_copy(qtbot, win)
    outputs = evaluate_widths_in_chunks(model, grid_coords((48, 48), win.session.signal.extent))
    with Image.open(path) as png:
        assert png.size == (48, 48)
        pixels = np.asarray(png)
    np.testing.assert_array_equal(pixels, expected_pixels(outputs[1], 48, 48))
    assert not np.array_equal(pixels, expected_pixels(outputs[2], 48, 48))
    residual = tmp_path / "residual8.png"
    answer_dialogs(monkeypatch, path=residual)
    export_action(win, "Residual at any resolution (growth lab)…").trigger()
    wait_for_file(qtbot, residual, win)
    with Image.open(residual) as png:
        assert png.size == (48, 48) and png.mode == "RGB"
    sweep = tmp_path / "sweep.gif"
    answer_dialogs(monkeypatch, path=sweep, size=32)
    export_action(win, "Width sweep animation…").trigger()
    wait_for_file(qtbot, sweep, win)
    with Image.open(sweep) as gif:
        assert gif.n_frames == 3 and gif.size == (32, 32 + CAPTION_HEIGHT)


@pytest.mark.gl
@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display with GLX (xvfb-run)")
def test_time_lab_png_at_the_slider_time_and_the_time_slider_animation(qtbot, tmp_path, monkeypatch):
    from PySide6 import QtWidgets

    from app.main_window import MainWindow
    from models.signals import load_signal
    from models.time_render import evaluate_at_time
    from models.time_training import TimeSettings

    scene = Scene(field=FieldConfig(width=16, depth=2), train=TrainConfig(lr=1e-3, batch_size=512), preset="time",
                  time=TimeSettings(rank=2, compare="same-width", frames_per_batch=2))
    win = MainWindow(load_signal("tour", 16, frames=4), scene, 16, running=False, source="tour")
    qtbot.addWidget(win)
    win.show()
    try:
        win.session.worker.step(2)
        snapshot = wait_for(qtbot, win, lambda s: len(s.runs) == 2 and s.runs[0].step == 2 and s.runs[0].time is not None)
        win.time_view.bar.set_time(0.2)
        picked = []

        def pick_second(parent, title, label, items, *args):
            picked.extend(items)
            return items[1], True

        monkeypatch.setattr(QtWidgets.QInputDialog, "getItem", staticmethod(pick_second))
        path = tmp_path / "frame.png"
        answer_dialogs(monkeypatch, path=path, size=48)
        export_action(win, "Image at any resolution…").trigger()
        wait_for_file(qtbot, path, win)
        assert picked == [run.label for run in snapshot.runs] and "t = 0.200" in win.statusBar().currentMessage()
        copies = []
        win.session.worker.call(lambda trainers: copies.append(copy.deepcopy(trainers[1][1].model)))
        qtbot.waitUntil(lambda: bool(copies), timeout=10000)
        space = grid_coords((48, 48), win.session.signal.extent[:2])
        expected = np.clip(np.floor(np.clip((evaluate_at_time(copies[0], space, 0.2).numpy().reshape(48, 48, 3) + 1)
                                            * 0.5, 0, 1) * 255 + 0.5), 0, 255).astype(np.uint8)
        with Image.open(path) as png:
            np.testing.assert_array_equal(np.asarray(png), expected)
        sequence = tmp_path / "sequence.gif"
        answer_dialogs(monkeypatch, path=sequence)
        export_action(win, "Time slider animation…").trigger()
        wait_for_file(qtbot, sequence, win)
        with Image.open(sequence) as gif:
            assert gif.n_frames == 4 and gif.size == (16, 16)
    finally:
        win.close()
    assert win.session.worker is None

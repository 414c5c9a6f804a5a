"""The comparison board driven as a user would (pytest-qt, under Xvfb): pins from the spectral-bias preset."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from gui_helpers import open_window, wait_for
from PySide6 import QtGui

from models.compare import PSNR, read_board_csv
from models.fields import FieldConfig
from models.scenes import Scene
from models.training import TrainConfig

pytestmark = pytest.mark.gui


def three_runs(width: int = 12) -> Scene:
    return Scene(field=FieldConfig(kind="siren", width=width, depth=2), train=TrainConfig(lr=1e-3, batch_size=0),
                 preset="spectral-bias")


def trained(snapshot, steps: int = 4) -> bool:
    return len(snapshot.runs) == 3 and snapshot.step >= steps and len(snapshot.runs[0].psnr_history) >= 2


@pytest.fixture
def window(qtbot, one_torch_thread):
    win = open_window(qtbot, three_runs(), size=24)
    yield win
    win.close()
    assert win.session.worker is None


def compare_menu(win):
    menus = [a.menu() for a in win.menuBar().actions() if a.menu() is not None]
    return next(m for m in menus if m.title().replace("&", "") == "Compare")


def test_pinning_twice_lists_runs_and_marks_the_differing_setting(qtbot, window, tmp_path):
    actions = {a.text(): a for a in compare_menu(window).actions()}
    assert set(actions) >= {"Pin the current runs", "Show the comparison board", "Clear the board"}
    assert actions["Pin the current runs"].shortcut() == QtGui.QKeySequence("Ctrl+Shift+B")
    first = wait_for(qtbot, window, trained)
    actions["Pin the current runs"].trigger()
    board = window.compare.board
    assert board.isVisible()
    assert board.table.rowCount() == 3 and len(board.curves) == 3 and board.legend.count() == 4  # + the front
    pins = board.pins
    assert [p.config["kind"] for p in pins] == ["relu", "fourier", "siren"]
    assert [p.step for p in pins] == [r.step for r in first.runs], "the pin is of the snapshot shown when pinning"
    step_curve, time_curve, point = board.curves[pins[2].number]
    xs, ys = step_curve.getData()
    np.testing.assert_array_equal(xs, pins[2].history[:, 0])
    np.testing.assert_array_equal(ys, pins[2].history[:, 2])
    np.testing.assert_array_equal(time_curve.getData()[0], pins[2].history[:, 1])
    assert point.getData()[0] == pytest.approx([np.log10(pins[2].params)])
    assert board.differing_columns() == ["field.kind"]
    assert set(board.front) <= {p.number for p in pins} and len(board.front) >= 1

    window.controls.width_box.setValue(20)  # restarts (debounced) with wider fields
    second = wait_for(qtbot, window, lambda s: s.runs and s.runs[0].config.width == 20 and trained(s))
    window.compare.pin_current()
    assert len(board.pins) == 6 and board.table.rowCount() == 6 and len(board.curves) == 6
    assert [p.number for p in board.pins] == [1, 2, 3, 4, 5, 6]
    assert [p.config["width"] for p in board.pins] == [12] * 3 + [20] * 3
    assert board.pins[3].step == second.runs[0].step
    assert "field.width" in board.differing_columns()
    headers = [board.table.horizontalHeaderItem(c) for c in range(board.table.columnCount())]
    width_column = next(c for c, h in enumerate(headers) if h.text() == "field.width ≠")
    assert headers[width_column].font().bold()
    assert [board.table.item(r, width_column).text() for r in range(6)] == ["12"] * 3 + ["20"] * 3
    assert board.table.item(0, width_column).background().color() == QtGui.QColor("#ffe9a8")
    board.differing_only.setChecked(True)
    titles = [board.table.horizontalHeaderItem(c).text() for c in range(board.table.columnCount())]
    assert "train.lr" not in titles and "field.width ≠" in titles
    board.differing_only.setChecked(False)

    path = board.export_csv(str(tmp_path / "board.csv"))
    data = read_board_csv(open(path, encoding="utf-8").read())
    for pin in board.pins:
        np.testing.assert_array_equal(data[pin.number]["history"], pin.history)
        assert data[pin.number]["metric"] == PSNR

    board.table.selectRow(5)  # the widest SIREN
    removed = board.pins[5].number
    board.remove_button.click()
    assert [p.number for p in board.pins] == [1, 2, 3, 4, 5] and removed not in board.curves
    assert board.table.rowCount() == 5 and board.legend.count() == 6
    assert removed not in set(board.front)
    assert board.ab.a_box.count() == 5
    window.compare.clear_board()
    assert board.table.rowCount() == 0 and not board.curves and board.ab.difference is None


def test_a_b_views_zoom_together_and_show_the_difference(qtbot, window):
    wait_for(qtbot, window, lambda s: trained(s, 8))
    window.compare.pin_current()
    board = window.compare.board
    ab = board.ab
    ab.a_box.setCurrentIndex(2)  # SIREN
    ab.b_box.setCurrentIndex(0)  # ReLU MLP
    a, b = board.pins[2], board.pins[0]
    np.testing.assert_array_equal(ab.a_panel.image.image, a.image)
    np.testing.assert_array_equal(ab.b_panel.image.image, b.image)
    np.testing.assert_array_equal(ab.diff_panel.image.image, a.image - b.image)
    low, high = ab.diff_panel.image.levels
    assert low == -high and high >= np.abs(a.image - b.image).max()
    qtbot.waitUntil(lambda: ab.a_panel.view.width() > 50, timeout=5000)

    def same_view(panel, other):
        """Same centre; the same span up to the aspect lock's adjustment for a pixel of panel size."""
        mine, theirs = np.asarray(panel.view.viewRange()), np.asarray(other.view.viewRange())
        np.testing.assert_allclose(mine.mean(axis=1), theirs.mean(axis=1), atol=1e-6)
        np.testing.assert_allclose(np.ptp(mine, axis=1), np.ptp(theirs, axis=1), rtol=0.02)

    before = np.asarray(ab.a_panel.view.viewRange())
    ab.a_panel.view.scaleBy((0.5, 0.5))
    ab.a_panel.view.translateBy((2.0, 1.0))
    zoomed = np.asarray(ab.a_panel.view.viewRange())
    np.testing.assert_allclose(np.ptp(zoomed, axis=1), 0.5 * np.ptp(before, axis=1), rtol=0.02)
    same_view(ab.b_panel, ab.a_panel)
    same_view(ab.diff_panel, ab.a_panel)
    ab.b_panel.view.scaleBy((0.5, 0.5))
    np.testing.assert_allclose(np.ptp(ab.a_panel.view.viewRange(), axis=1), 0.5 * np.ptp(zoomed, axis=1), rtol=0.02)
    same_view(ab.a_panel, ab.b_panel)

    other = replace(a, number=99, name="#99 other size", short_name="#99", image=np.zeros((10, 10), np.float32))
    board.add_pins([other])
    ab.b_box.setCurrentIndex(ab.b_box.findData(99))
    assert ab.difference is None and ab.diff_panel.image.image is None
    assert "cannot subtract: the shapes differ" in ab.note.text()


def test_closing_the_main_window_closes_the_board(qtbot, one_torch_thread):
    win = open_window(qtbot, three_runs(), size=24)
    try:
        wait_for(qtbot, win, trained)
        win.compare.pin_current()
        board = win.compare.board
        assert board.isVisible() and board.isWindow()
        worker = win.session.worker
    finally:
        win.close()
    assert not board.isVisible()
    assert win.session.worker is None and not worker.alive
    assert board.parent() is win, "the main window owns the board (deleted with it)"

"""The comparison board's data (models/compare.py), without Qt: pins, Pareto front, settings, A − B, CSV."""
from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from worker_helpers import wait_for_snapshot

from models.compare import (CHAMFER, MISSING, PSNR, ShapeMismatch, board_csv, difference, nice_level, pareto_front,
                            pareto_steps, pin_run, pin_snapshot, read_board_csv, settings_rows)
from models.fields import FieldConfig
from models.scenes import Scene
from models.signals import load_signal
from models.snapshots import RunSnapshot, Snapshot
from models.training import TrainConfig
from models.worker import TrainingWorker


@pytest.fixture(scope="module")
def camera():
    return load_signal("camera", 16)


def tiny_scene(preset="image", width=8) -> Scene:
    return Scene(field=FieldConfig(kind="siren", width=width, depth=2), train=TrainConfig(lr=1e-3, batch_size=0),
                 preset=preset)


def made_run(label="SIREN (w0=30)", params=100, step=40, seconds=4.0, psnr=20.0, history=None, psnr_seconds=None,
             image=None, config=None, **extra) -> RunSnapshot:
    """A RunSnapshot built by hand (arrays need not come from a renderer)."""
    image = np.full((16, 16), 0.5, np.float32) if image is None else image
    history = np.array([[10, 12.0], [20, 16.0], [40, psnr]]) if history is None else history
    return RunSnapshot(label, params, step, image, np.zeros(image.shape[:2], np.float32), np.zeros((16, 16)), psnr,
                       0.01, history, np.zeros((0, 2)), config=config, seconds=seconds, psnr_seconds=psnr_seconds, **extra)


def made_snapshot(signal, runs, target=None) -> Snapshot:
    target = np.zeros((16, 16), np.float32) if target is None else target
    return Snapshot(1, runs[0].step, False, 0.0, "cpu", signal, target, np.zeros((16, 16)), tuple(runs))


def made_pin(signal, number=1, scene=None, **run):
    run = made_run(**run)
    return pin_run(run, made_snapshot(signal, [run]), scene or tiny_scene(), signal, number)


def test_pins_from_a_training_worker_keep_their_copies(camera, one_torch_thread):
    scene = tiny_scene("spectral-bias")
    worker = TrainingWorker(camera, lambda: scene.build(camera)).start()
    try:
        snapshot = wait_for_snapshot(worker, lambda s: s.step >= 4 and len(s.runs[0].psnr_history) >= 3)
        pins = pin_snapshot(snapshot, scene, camera, first_number=5)
        kept = [(p.history.copy(), p.image.copy()) for p in pins]
        later = wait_for_snapshot(worker, lambda s: s.step > snapshot.step + 3)
    finally:
        assert worker.stop(timeout=10)
    assert [p.number for p in pins] == [5, 6, 7]
    assert [p.config["kind"] for p in pins] == ["relu", "fourier", "siren"]
    for pin, run, (history, image) in zip(pins, snapshot.runs, kept):
        assert pin.name == f"#{pin.number} {run.label} w=8 (spectral bias, step {run.step})"
        assert pin.metric_name == PSNR and pin.higher_is_better and pin.metric == run.psnr
        assert (pin.params, pin.step, pin.seconds) == (run.params, run.step, run.seconds) and pin.seconds > 0
        np.testing.assert_array_equal(pin.history[:, [0, 2]], run.psnr_history)
        np.testing.assert_array_equal(pin.history[:, 1], run.psnr_seconds)
        assert not pin.seconds_estimated
        np.testing.assert_array_equal(pin.image, run.reconstruction)
        np.testing.assert_array_equal(pin.target, snapshot.target)
        assert not np.shares_memory(pin.image, run.reconstruction), "a pin holds its own copy"
        assert not pin.image.flags.writeable and not pin.history.flags.writeable
        np.testing.assert_array_equal(pin.history, history)  # later snapshots leave the pin as it was
        np.testing.assert_array_equal(pin.image, image)
        assert pin.settings()["field.kind"] == pin.config["kind"] and pin.settings()["signal"] == "camera"
    assert len(later.runs[0].psnr_history) > len(pins[0].history)


def test_seconds_are_estimated_from_step_when_the_lab_kept_none(camera):
    pin = made_pin(camera, step=40, seconds=8.0, psnr_seconds=None)
    assert pin.seconds_estimated
    np.testing.assert_allclose(pin.history[:, 1], [2.0, 4.0, 8.0])
    empty = made_pin(camera, psnr_seconds=np.zeros(0))
    assert empty.seconds_estimated
    kept = made_pin(camera, psnr_seconds=np.array([1.0, 3.0, 7.0]))
    assert not kept.seconds_estimated
    np.testing.assert_array_equal(kept.history[:, 1], [1.0, 3.0, 7.0])


def test_a_3d_run_is_pinned_with_chamfer_and_its_slice(camera):
    sdf = SimpleNamespace(metrics={"chamfer_l1": 0.02}, history=np.array([[5, 0.1, 0.5, 0.2], [9, 0.05, 0.8, 0.6]]),
                          level=0.0, slice_field=np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8),
                          slice_target=np.zeros((8, 8), np.float32))
    run = made_run(psnr=math.nan, step=9, seconds=3.0, history=np.zeros((0, 2)), sdf=sdf)
    pin = pin_run(run, made_snapshot(camera, [run]), tiny_scene("growth"), replace(camera, kind="sdf"), 2)
    assert (pin.metric_name, pin.metric, pin.higher_is_better) == (CHAMFER, 0.02, False)
    np.testing.assert_allclose(pin.history, [[5, 5 / 3, 0.1], [9, 3.0, 0.05]])
    assert pin.image_kind == "slice" and pin.image_levels == (-0.5, 0.5) and pin.lab_title == "3D growth lab"
    np.testing.assert_array_equal(pin.image, sdf.slice_field)
    assert "growth.stage_steps" in pin.settings() and "crop.model" not in pin.settings()
    no_mesh = pin_run(replace(run, sdf=SimpleNamespace(**{**vars(sdf), "metrics": {"chamfer_l1": None}})),
                      made_snapshot(camera, [run]),
                      tiny_scene(), camera, 3)
    assert math.isnan(no_mesh.metric)


def test_waiting_runs_are_not_pinned(camera):
    runs = [made_run(label="extended"), made_run(label="new SIREN", waiting=True)]
    pins = pin_snapshot(made_snapshot(camera, runs), tiny_scene(), camera, 1)
    assert [p.label for p in pins] == ["extended"]


def test_pareto_front_higher_is_better():
    points = [(100, 20.0), (200, 25.0), (150, 19.0), (300, 24.0), (400, 30.0), (50, math.nan), (200, 25.0)]
    assert pareto_front(points).tolist() == [0, 1, 4]
    assert pareto_front([]).tolist() == []
    assert pareto_front([(10, 5.0), (10, 7.0)]).tolist() == [1], "same size: only the better one"


def test_pareto_front_lower_is_better():
    points = [(100, 0.05), (200, 0.02), (150, 0.06), (300, 0.03), (400, 0.01)]
    assert pareto_front(points, higher_is_better=False).tolist() == [0, 1, 4]
    assert pareto_front(points, higher_is_better=True).tolist() == [0, 2]


def test_pareto_steps_form_a_staircase():
    xs, ys = pareto_steps([1, 2, 4], [10, 12, 15])
    assert xs.tolist() == [1, 2, 2, 4, 4]
    assert ys.tolist() == [10, 10, 12, 12, 15]


def test_settings_rows_mark_the_settings_that_differ(camera):
    narrow = made_pin(camera, 1, tiny_scene(width=8))
    wide = made_pin(camera, 2, tiny_scene(width=32))
    table = settings_rows([narrow, wide])
    assert table.differing == {"field.width"}
    assert table.columns[0] == "field.width", "differing settings lead"
    column = table.columns.index("field.width")
    assert [row[column] for row in table.rows] == [8, 32]
    assert not table.differs("train.lr") and "train.lr" in table.columns
    growth = made_pin(camera, 3, tiny_scene("growth", width=8))
    table = settings_rows([narrow, wide, growth])
    assert table.differing == {"field.width", "preset"}, "another lab's own settings do not count as differences"
    widths = table.columns.index("widths")
    assert [row[widths] for row in table.rows] == [MISSING, MISSING, (16, 32, 64, 128)]
    run_config = made_pin(camera, 4, config=FieldConfig(kind="relu", width=8, depth=2))
    assert settings_rows([narrow, run_config]).differing == {"field.kind"}, "the run's own architecture counts"


def test_difference_is_exactly_a_minus_b_on_a_symmetric_scale():
    rng = np.random.default_rng(0)
    a, b = rng.random((6, 5)).astype(np.float32), rng.random((6, 5)).astype(np.float32)
    result = difference(a, b)
    np.testing.assert_array_equal(result.values, a - b)
    np.testing.assert_array_equal(result.display, a - b)
    assert result.level >= np.abs(a - b).max() and result.level == nice_level(np.abs(a - b).max())
    colour_a, colour_b = rng.random((6, 5, 3)), rng.random((6, 5, 3))
    colour = difference(colour_a, colour_b)
    np.testing.assert_allclose(colour.display, (colour_a - colour_b).mean(axis=2), atol=1e-6)
    cropped = a.copy()
    cropped[0, 0] = np.nan
    assert np.isnan(difference(cropped, b).values[0, 0]) and difference(cropped, b).display[0, 0] == 0


def test_difference_refuses_different_shapes_or_channels():
    with pytest.raises(ShapeMismatch, match=r"shapes differ \(A is 5×6 px, 1 channel, B is 8×8 px"):
        difference(np.zeros((6, 5)), np.zeros((8, 8)))
    with pytest.raises(ShapeMismatch, match="channel counts differ"):
        difference(np.zeros((6, 5)), np.zeros((6, 5, 3)))


def test_nice_level():
    assert [nice_level(v) for v in (0.3, 0.5, 0.51, 1.0, 7.0, 0.0)] == [0.5, 0.5, 1.0, 1.0, 10.0, 0.001]


def test_board_csv_round_trip(camera):
    pins = [made_pin(camera, 1, label="SIREN, wide", psnr_seconds=np.array([0.5, 1.25, 3.0])),
            made_pin(camera, 4, step=10, seconds=1.0, history=np.array([[5, 9.5], [10, 11.0]]))]
    data = read_board_csv(board_csv(pins))
    assert sorted(data) == [1, 4]
    for pin in pins:
        row = data[pin.number]
        assert (row["name"], row["lab"], row["signal"], row["params"], row["metric"]) == \
            (pin.name, pin.lab_title, "camera", pin.params, PSNR)
        np.testing.assert_array_equal(row["history"], pin.history)
    with pytest.raises(ValueError, match="not a comparison board CSV"):
        read_board_csv("a,b\n1,2\n")

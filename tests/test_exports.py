"""Exports without Qt: images re-rendered at any resolution, width sweeps, the training timelapse, plot CSVs."""
from __future__ import annotations

import csv
import functools
import os
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from models import exports
from models.croppable import LocalGlobalTrainer
from models.exports import (CAPTION_HEIGHT, ExportError, TrainingTimelapse, plot_csv, read_plot_csv,
                            render_trainer_image, to_uint8, width_sweep_frames, write_png)
from models.fields import FieldConfig, evaluate_in_chunks
from models.growth import GrowthConfig
from models.local_global import LocalGlobalConfig, partition_of
from models.scenes import Scene
from models.signals import grid_coords, load_signal
from models.snapshots import RunSnapshot, Snapshot
from models.streamable import evaluate_widths_in_chunks
from models.time_render import evaluate_at_time
from models.time_training import TimeSettings
from models.training import TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@functools.lru_cache(maxsize=None)
def signal(name: str, size: int):
    return load_signal(name, size)


def trained(scene: Scene, source, steps: int):
    trainer = scene.build(source)[0][1]
    for _ in range(steps):
        trainer.step()
    trainer.flush()
    return trainer


def plain_trainer(source=None, steps=3):
    source = source if source is not None else signal("chelsea", 20)  # 13 x 20 px, RGB: a landscape aspect
    return trained(Scene(field=FieldConfig(kind="siren", width=16, depth=2), train=TrainConfig(batch_size=0)), source, steps)


def quantised(values: torch.Tensor, shape) -> np.ndarray:
    """The expected pixels, computed independently: [-1, 1] -> [0, 1] -> floor(v * 255 + 0.5)."""
    unit = np.nan_to_num(np.clip((values.numpy().reshape(*shape, -1) + 1.0) * 0.5, 0.0, 1.0))
    return np.clip(np.floor(unit * 255.0 + 0.5), 0, 255).astype(np.uint8)


# -- images -----------------------------------------------------------------------------------------------------
def test_png_at_three_times_the_training_size_is_the_field_on_that_grid(tmp_path):
    trainer = plain_trainer()
    source = trainer.signal
    image = render_trainer_image(trainer, 60)
    assert image.shape == (39, 60, 3) and image.dtype == np.uint8  # 13 x 20 px scaled 3x: the aspect follows
    expected = quantised(evaluate_in_chunks(trainer.model, grid_coords((39, 60), source.extent)), (39, 60))
    np.testing.assert_array_equal(image, expected)
    # at the training size it is what the views show
    np.testing.assert_array_equal(render_trainer_image(trainer, 20), to_uint8(source.as_display(trainer.predict())))
    path = tmp_path / "field.png"
    assert "60x39" in write_png(str(path), image)
    with Image.open(path) as png:
        assert png.size == (60, 39) and png.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(png), image)
    assert os.listdir(tmp_path) == ["field.png"]


def test_large_images_are_rendered_in_bands_with_the_same_pixels(monkeypatch):
    trainer = plain_trainer(signal("camera", 16), steps=2)
    whole = render_trainer_image(trainer, 64)
    assert whole.shape == (64, 64, 1)
    monkeypatch.setattr(exports, "BAND_PIXELS", 300)  # 4 rows of 64 px per band: 16 bands
    banded = render_trainer_image(trainer, 64)
    assert np.abs(banded.astype(int) - whole.astype(int)).max() <= 1
    assert (banded == whole).mean() > 0.999


def test_growth_widths_and_residuals_match_the_sub_networks(monkeypatch):
    scene = Scene(field=FieldConfig(kind="siren", width=16, depth=2), train=TrainConfig(batch_size=0), preset="growth",
                  widths=(4, 8, 16), growth=GrowthConfig(stage_steps=3))
    trainer = trained(scene, signal("camera", 16), 9)
    assert trainer.finished and trainer.model.widths == (4, 8, 16)
    outputs = evaluate_widths_in_chunks(trainer.model, grid_coords((48, 48), trainer.signal.extent))
    images, residuals = [], []
    for k, width in enumerate((4, 8, 16)):
        image = render_trainer_image(trainer, 48, width=width)
        np.testing.assert_array_equal(image, quantised(outputs[k], (48, 48)))
        residual = render_trainer_image(trainer, 48, width=width, residual=True)
        before = outputs[k - 1] if k else torch.zeros_like(outputs[k])
        difference = ((outputs[k] - before) * 0.5).mean(dim=1).numpy().reshape(48, 48)
        limit = max(np.percentile(np.abs(difference), 99.5), 1e-4)
        assert residual.shape == (48, 48, 3)
        np.testing.assert_array_equal(residual, to_uint8(exports.diverging_colors(difference, limit)))
        images.append(image)
        residuals.append(residual)
    for a in range(3):
        for b in range(a + 1, 3):
            assert not np.array_equal(images[a], images[b]) and not np.array_equal(residuals[a], residuals[b])
    np.testing.assert_array_equal(render_trainer_image(trainer, 48), images[-1])  # default: the last stage
    monkeypatch.setattr(exports, "BAND_PIXELS", 100)  # residuals in bands: one colour range for the whole image
    banded = render_trainer_image(trainer, 48, width=8, residual=True)
    assert np.abs(banded.astype(int) - residuals[1].astype(int)).max() <= 1
    monkeypatch.undo()
    with pytest.raises(ValueError, match="no stage of width 12"):
        render_trainer_image(trainer, 48, width=12)
    frames = width_sweep_frames(trainer, 48)
    assert len(frames) == 3
    for frame, image in zip(frames, images):
        assert frame.shape == (CAPTION_HEIGHT + 48, 48, 3)
        np.testing.assert_array_equal(frame[CAPTION_HEIGHT:], np.repeat(image, 3, axis=2))


def test_growth_options_need_a_growing_field():
    trainer = plain_trainer()
    with pytest.raises(ValueError, match="growing"):
        render_trainer_image(trainer, 32, width=16)
    with pytest.raises(ValueError, match="growing"):
        render_trainer_image(trainer, 32, residual=True)
    with pytest.raises(ValueError, match="growing"):
        width_sweep_frames(trainer, 32)


def test_cropped_partitions_are_transparent():
    source = signal("camera", 16)
    config = LocalGlobalConfig(partitions=(4, 4), local_width=6, global_width=12, depth=2)
    trainer = LocalGlobalTrainer(source, config, TrainConfig(lr=1e-3, batch_size=0, device="cpu"))
    for _ in range(2):
        trainer.step()
    trainer.flush()
    assert render_trainer_image(trainer, 32).shape == (32, 32, 1)  # nothing cropped: no alpha
    trainer.crop([0, 5])
    image = render_trainer_image(trainer, 48)
    assert image.shape == (48, 48, 4)
    coords = grid_coords((48, 48), source.extent)
    cropped = np.isin(partition_of(trainer.config, coords).numpy().reshape(48, 48), [0, 5])
    assert cropped.any() and not cropped.all()
    np.testing.assert_array_equal(image[:, :, 3], np.where(cropped, 0, 255))
    values = evaluate_in_chunks(trainer.model, coords)
    expected = quantised(values, (48, 48))[:, :, 0]
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel][~cropped], expected[~cropped])


def test_time_lab_frame_at_t_is_evaluate_at_time():
    tour = load_signal("tour", 16, frames=4)
    scene = Scene(field=FieldConfig(kind="siren", width=16, depth=2), train=TrainConfig(lr=1e-3, batch_size=256),
                  preset="time", time=TimeSettings(rank=2, frames_per_batch=2))
    trainer = trained(scene, tour, 2)
    space = grid_coords((32, 32), tour.extent[:2])
    frames = []
    for t in (-1.0, 0.25, 1.0):
        image = render_trainer_image(trainer, 32, time=t)
        np.testing.assert_array_equal(image, quantised(evaluate_at_time(trainer.model, space, t), (32, 32)))
        frames.append(image)
    assert not np.array_equal(frames[0], frames[2])
    np.testing.assert_array_equal(render_trainer_image(trainer, 32), frames[0])  # no t: the first frame
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        render_trainer_image(trainer, 32, time=1.5)
    with pytest.raises(ValueError, match="growing"):
        render_trainer_image(trainer, 32, time=0.0, residual=True)
    with pytest.raises(ValueError, match="no time axis"):
        render_trainer_image(plain_trainer(), 32, time=0.0)


def test_curves_and_shapes_are_not_images():
    curve = trained(Scene(field=FieldConfig(kind="siren", width=8, depth=1), train=TrainConfig(batch_size=0)),
                    load_signal("sinusoids"), 1)
    with pytest.raises(ValueError, match="1D curve.*CSV"):
        render_trainer_image(curve, 256)
    shape = Scene(field=FieldConfig(kind="siren", width=8, depth=1)).build(load_signal("sphere"))[0][1]
    with pytest.raises(ValueError, match="3D shape.*mesh"):
        render_trainer_image(shape, 256)
    with pytest.raises(ValueError, match="at least 2"):
        render_trainer_image(plain_trainer(), 1)


# -- the timelapse ----------------------------------------------------------------------------------------------
def snapshot(step: int, generation: int = 1, runs: int = 1, shape=(8, 12), value=None) -> Snapshot:
    source = signal("camera", 16)
    reconstruction = np.full(shape, (step % 97) / 97.0 if value is None else value, np.float32)
    empty = np.zeros((0, 2))
    items = tuple(RunSnapshot(f"run {i}", 10, step, reconstruction, reconstruction, reconstruction, 20.0, 0.1, empty,
                              empty) for i in range(runs))
    return Snapshot(generation, step, True, 10.0, "cpu", source, np.zeros(shape, np.float32),
                    np.zeros(shape, np.float32), items)


def test_timelapse_stays_bounded_and_covers_the_whole_run():
    timelapse = TrainingTimelapse(max_frames=50)
    steps = list(range(0, 3000, 3))
    for step in steps:
        timelapse.record(snapshot(step))
    kept = timelapse.steps
    assert len(kept) <= 51 and len(timelapse) == len(kept)
    assert kept[0] == 0 and kept[-1] == steps[-1]  # the first and the latest snapshot
    assert kept == sorted(set(kept))
    gaps = np.diff(kept[:-1])
    assert gaps.max() <= 3 * gaps.min(), gaps  # evenly spread, not piled up at the end
    for tenth in range(10):  # every tenth of the run has frames
        assert any(tenth * 300 <= s < (tenth + 1) * 300 for s in kept)
    frames = timelapse.frames()
    assert len(frames) == len(kept)
    assert {f.shape for f in frames} == {(CAPTION_HEIGHT + 8, 12, 3)}
    np.testing.assert_array_equal(frames[-1][CAPTION_HEIGHT:, :, 0], to_uint8(snapshot(steps[-1]).runs[0].reconstruction))


def test_timelapse_restarts_with_a_new_generation_and_skips_repeats():
    timelapse = TrainingTimelapse()
    for step in (0, 5, 5, 5, 10):  # paused snapshots repeat a step
        timelapse.record(snapshot(step))
    assert timelapse.steps == [0, 5, 10]
    timelapse.record(snapshot(0, generation=2))
    assert timelapse.steps == [0]
    timelapse.record(snapshot(7, generation=2))
    timelapse.record(snapshot(3, generation=2))  # going back in time (a restore): a new record
    assert timelapse.steps == [3]
    timelapse.clear()
    assert timelapse.frames() == [] and len(timelapse) == 0
    with pytest.raises(ExportError, match="no training progress"):
        timelapse.write("unused.gif")


def test_timelapse_frames_put_runs_side_by_side_and_write_a_gif(tmp_path):
    timelapse = TrainingTimelapse()
    for step in range(0, 40, 4):
        timelapse.record(snapshot(step, runs=3, shape=(30, 40)))
    frames = timelapse.frames()
    caption = 2 * CAPTION_HEIGHT  # 'step N', then a line of run labels
    assert frames[0].shape == (caption + 30, 3 * 40 + 2 * 2, 3)
    body = frames[3][caption:]
    value = to_uint8(np.float32(12 / 97.0))
    for x in (0, 42, 84):
        assert (body[:, x:x + 40] == value).all()
    assert (body[:, 40:42] == 255).all()  # a white gap between runs
    assert (frames[3][:CAPTION_HEIGHT] < 128).any()  # the 'step 12' caption is drawn
    for x in (0, 42, 84):  # and each run's label over its panel
        assert (frames[3][CAPTION_HEIGHT:caption, x:x + 40] < 128).any()
    summary = timelapse.write(str(tmp_path / "progress.gif"), fps=10)
    assert "10 frames" in summary
    with Image.open(tmp_path / "progress.gif") as gif:
        assert gif.n_frames == 10 and gif.size == (124, caption + 30)


def test_timelapse_checkers_cropped_parts_and_draws_slices_and_curves():
    cropped = np.full((16, 16), 0.5, np.float32)
    cropped[:, :8] = np.nan
    partitioned = SimpleNamespace(label="lg", reconstruction=cropped, partitions=object(), sdf=None)
    slice_field = np.tile(np.linspace(-1, 1, 10, dtype=np.float32)[:, None], (1, 10))  # rows: inside -> outside
    shape = SimpleNamespace(label="sdf", reconstruction=slice_field, partitions=None,
                            sdf=SimpleNamespace(slice_field=slice_field, level=0.0, inside_below=True))
    curve = SimpleNamespace(label="curve", reconstruction=np.linspace(0, 1, 50, dtype=np.float32), partitions=None,
                            sdf=None)
    panels = [exports._run_panel(run, np.zeros(50)) for run in (partitioned, shape, curve)]
    assert set(np.unique(panels[0][:, :8])) == set(exports.CHECKER)
    assert (panels[0][:, 8:] == 128).all()
    assert panels[1].shape == (10, 10, 3)
    assert panels[1][-1, 0, 2] > panels[1][-1, 0, 0]  # inside (first row of the slice) is blue, drawn at the bottom
    assert panels[1][0, 0, 0] > panels[1][0, 0, 2]  # outside red on top
    assert panels[2].shape == (128, 50) and panels[2][-1, 0] == 30 and panels[2][0, -1] == 30  # a rising line


def test_recording_is_cheap():
    timelapse = TrainingTimelapse()
    started = time.perf_counter()
    for step in range(50):
        timelapse.record(snapshot(step, runs=3, shape=(256, 256, 3), value=0.5))
    assert (time.perf_counter() - started) / 50 < 0.05


# -- plot data and atomic writes -----------------------------------------------------------------------------------
def test_plot_csv_round_trip_with_unequal_lengths(tmp_path):
    path = tmp_path / "plot.csv"
    psnr = (np.arange(5) * 10, np.array([10.5, 20.25, 25.0, 27.125, 1 / 3]))
    loss = (np.arange(3), np.array([-1.5, np.nan, -3.0]))
    summary = plot_csv(str(path), {"PSNR, run 1": psnr, "loss": loss})
    assert "2 series (5 rows)" in summary
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["PSNR, run 1_x", "PSNR, run 1_y", "loss_x", "loss_y"]
    assert len(rows) == 6 and rows[5][2:] == ["", ""]
    back = read_plot_csv(str(path))
    assert list(back) == ["PSNR, run 1", "loss"]
    np.testing.assert_array_equal(back["PSNR, run 1"][0], psnr[0])
    np.testing.assert_array_equal(back["PSNR, run 1"][1], psnr[1])  # full precision
    np.testing.assert_array_equal(back["loss"][1], loss[1])  # NaN survives
    plot_csv(str(path), [("a", [1, 2], [3, 4]), ("a", [5], [6])])
    assert list(read_plot_csv(str(path))) == ["a", "a (2)"]
    with pytest.raises(ValueError, match="2 x values but 1"):
        plot_csv(str(path), {"bad": ([1, 2], [3])})


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    png, table = tmp_path / "image.png", tmp_path / "data.csv"
    png.write_bytes(b"old image")
    table.write_text("old table")

    def broken_save(self, *args, **kwargs):
        with open(args[0], "wb") as handle:
            handle.write(b"half a PNG")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ExportError, match="No space left"):
        write_png(str(png), np.zeros((4, 4, 3), np.uint8))

    def broken_rows(handle, header, rows):
        handle.write("x,y\n1,")
        raise ValueError("the writer failed")

    monkeypatch.setattr(exports, "_write_rows", broken_rows)
    with pytest.raises(ExportError, match="the writer failed"):
        plot_csv(str(table), {"a": ([1], [2])})
    assert png.read_bytes() == b"old image" and table.read_text() == "old table"
    assert sorted(os.listdir(tmp_path)) == ["data.csv", "image.png"]

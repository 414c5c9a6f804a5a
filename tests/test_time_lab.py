"""The time lab without a screen: the worker draws the slider's time first, checkpoints, and the CLI."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from cli_helpers import read_png, run_cli
from worker_helpers import wait_for_snapshot

from models.checkpoint import load_field, save_field
from models.fields import FieldConfig
from models.resfields import ResFieldConfig, ResFieldMLP
from models.scenes import Scene
from models.signals import load_signal
from models.time_render import Superseded, TimeRenderer, TimeViewSettings, evaluate_at_time
from models.time_training import TimeSettings
from models.training import TrainConfig
from models.worker import TrainingWorker

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def video():
    return load_signal("tour", 24, frames=8)


def _scene(**time_overrides):
    settings = dict(rank=4, compare="same-width", frames_per_batch=4)
    settings.update(time_overrides)
    return Scene(field=FieldConfig(width=24, depth=3), train=TrainConfig(lr=1e-3, batch_size=1024), preset="time",
                 time=TimeSettings(**settings))


_wait = wait_for_snapshot


def test_the_worker_draws_the_frame_at_the_slider_time(video):
    scene = _scene()
    worker = TrainingWorker(video, lambda: scene.build(video), start_running=False).start()
    try:
        worker.step(5)
        _wait(worker, lambda s: s.step == 5 and not s.running)
        t = float(video.time.times()[3])
        worker.set_time(TimeViewSettings(t=t))
        quick = _wait(worker, lambda s: s.runs and s.runs[0].time.t == t)  # the frames at t come first
        snapshot = quick if quick.runs[0].time.base is not None else _wait(
            worker, lambda s: s.runs[0].time.t == t and s.runs[0].time.base is not None)
        resfield, plain = snapshot.runs
        assert resfield.time.nearest == 3 and not resfield.time.between_frames
        assert resfield.time.base is not None and plain.time.base is None  # only ResField models have a base
        assert set(resfield.time.coefficients) == {1, 2} and resfield.time.coefficients[1].shape == (8, 4)
        assert resfield.time.parameters["per_time"] == 2 * 8 * 4
        # paused: every frame is scored at the current step, on its training and its held-out pixels
        assert (resfield.time.per_frame_steps == 5).all() and np.isfinite(resfield.time.test_per_frame).all()
        # the frame shown is the field at t: the same as evaluating the model there
        trainer_model = ResFieldMLP(scene.time.resfield_config(scene.field, video))
        worker.call(lambda trainers: trainer_model.load_state_dict(trainers[0][1].model.state_dict()) and None)
        _wait(worker, lambda s: True)
        space = video.coords[video.time.rows(0), :2]
        expected = ((evaluate_at_time(trainer_model, space, t).numpy() + 1) * 0.5).clip(0, 1).reshape(24, 24, 3)
        np.testing.assert_allclose(resfield.time.reconstruction, expected, atol=1e-6)
        # between frames: the field's interpolation, compared with the nearest frame
        between = float(video.time.times()[3] + video.time.times()[4]) / 2 + 0.01
        worker.set_time(TimeViewSettings(t=between, show_base=False))
        snapshot = _wait(worker, lambda s: s.runs and s.runs[0].time.t == between)
        assert snapshot.runs[0].time.between_frames and snapshot.runs[0].time.nearest == 4
        assert snapshot.runs[0].time.base is None
    finally:
        assert worker.stop()


def test_renderer_caches_frames_and_refreshes_stale_scores_first(video):
    renderer = TimeRenderer(video)
    model = ResFieldMLP(ResFieldConfig(width=16, depth=2, rank=2, time_rows=8, in_features=3, out_features=3))
    settings = TimeViewSettings(t=-1.0)
    view = renderer.render_video(model, settings, generation=1, index=0, step=10, holdout=0.1, parameters={},
                                 more_waiting=lambda: False, budget=0.0)
    assert view.per_frame_steps[0] == 10 and (view.per_frame_steps[1:] == -1).all()  # slider frame first
    quick = renderer.render_video(model, replace_t(settings, 0.5), generation=1, index=0, step=11, holdout=0.1,
                                  parameters={}, more_waiting=lambda: True, quick=True)
    assert quick.base is None and quick.per_frame_steps[0] == 10  # the frame at t only, scores as they were
    with pytest.raises(Superseded):  # a slower second pass gives way to a newer request
        renderer.render_video(model, settings, generation=1, index=0, step=11, holdout=0.1, parameters={},
                              more_waiting=lambda: True)
    view = renderer.render_video(model, replace_t(settings, 0.5), generation=1, index=0, step=10, holdout=0.1,
                                 parameters={}, more_waiting=lambda: False, budget=float("inf"), unseen=(3,))
    assert (view.per_frame_steps == 10).all() and view.unseen_frames == (3,)
    assert np.isnan(view.train_per_frame[3]) and np.isfinite(view.all_per_frame).all()
    assert view.history.shape[1] == 4 and np.isfinite(view.history[-1]).all()  # step, train, held out, unseen
    first = renderer.frame_at(model, 0.25, (1, 0, 10))
    assert renderer.frame_at(model, 0.25, (1, 0, 10)) is first


def replace_t(settings, t):
    from dataclasses import replace

    return replace(settings, t=t)


def test_resfield_checkpoints_round_trip(tmp_path, video):
    model = ResFieldMLP(ResFieldConfig(width=16, depth=3, rank=3, time_rows=8, in_features=3, out_features=3, mode="lookup"))
    save_field(str(tmp_path), model, model.config, {"name": "tour", "kind": "video", "shape": [8, 24, 24]})
    saved = load_field(str(tmp_path))
    assert saved.meta["architecture"] == "resfield" and saved.config == model.config
    coords = video.coords[:500]
    assert torch.equal(saved.model(coords), model(coords))


@pytest.mark.usefixtures("one_torch_thread_for_fit")
def test_cli_fit_render_and_sequence(tmp_path):
    out = tmp_path / "run"
    code, stdout, stderr = run_cli("fit", "--signal", "tour", "--size", "24", "--frames", "6", "--model", "resfield",
                                   "--rank", "3", "--time-rows", "4", "--width", "24", "--steps", "20",
                                   "--compare", "same-width", "--holdout-frames", "3", "--out", out, "--quiet")
    assert code == 0, stderr
    assert "held-out" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["parameters"]["per_time"] == 2 * 4 * 3
    assert metrics["psnr_train"] > 5 and metrics["psnr_test"] > 5 and len(metrics["per_frame"]) == 6
    assert {"train", "test", "t", "frame", "unseen"} <= set(metrics["per_frame"][0])
    assert metrics["unseen_frames"] == [2] and metrics["psnr_unseen_frames"] > 5 and "unseen frames" in stdout
    assert metrics["per_frame"][2]["unseen"] and metrics["per_frame"][2]["train"] is None
    assert metrics["per_frame"][2]["all_pixels"] > 5 and metrics["per_frame"][1]["all_pixels"] is None
    assert [entry["label"].split()[0] for entry in metrics["comparison"]] == ["SIREN+ResFields", "SIREN"]
    assert (out / "reconstruction.mp4").stat().st_size > 0 and (out / "compare").is_dir()
    code, _, stderr = run_cli("render", out, "--time", "0.3", "--out", tmp_path / "f.png", "--size", "48")
    assert code == 0, stderr
    assert read_png(tmp_path / "f.png").shape == (48, 48, 3)
    code, _, stderr = run_cli("render", out, "--time", "0.3", "--base", "--out", tmp_path / "b.png")
    assert code == 0 and not np.array_equal(read_png(tmp_path / "b.png"), read_png(tmp_path / "f.png")[::2, ::2])
    code, stdout, stderr = run_cli("render", out, "--sequence", tmp_path / "s.gif", "--frames", "5")
    assert code == 0, stderr
    import imageio.v3 as iio

    assert iio.imread(tmp_path / "s.gif", index=None).shape[0] == 5
    code, _, stderr = run_cli("render", out, "--time", "2", "--out", tmp_path / "x.png")
    assert code == 2 and "[-1, 1]" in stderr
    code, _, stderr = run_cli("fit", "--signal", "camera", "--size", "16", "--model", "resfield", "--steps", "1",
                              "--out", tmp_path / "img")
    assert code == 2 and "no time axis" in stderr


@pytest.mark.usefixtures("one_torch_thread_for_fit")
def test_cli_fits_a_moving_shape_and_writes_its_mesh(tmp_path):
    out = tmp_path / "shape"
    code, stdout, stderr = run_cli("fit", "--signal", "bounce", "--frames", "3", "--model", "resfield", "--rank", "2",
                                   "--width", "32", "--steps", "10", "--batch", "3000", "--time-loss", "mape", "--out", out,
                                   "--quiet")
    assert code == 0, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["loss"] == "mape" and len(metrics["surface"]["per_frame"]) == 3
    code, stdout, stderr = run_cli("render", out, "--time", "0.5", "--mesh", tmp_path / "m.ply", "--resolution", "64")
    assert code == 0, stderr
    assert os.path.getsize(tmp_path / "m.ply") > 0


def test_saving_a_time_session_writes_every_run_as_fit_does(tmp_path, video):
    from app.headless import save_runs

    runs = _scene().build(video)
    for _, trainer in runs:
        trainer.step()
    message = save_runs(str(tmp_path), runs)
    assert message.startswith("saved") and message.count("dB") == 2
    folders = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(folders) == 2
    for folder in folders:
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["psnr_test"] is not None and len(metrics["per_frame"]) == video.time.frames
        assert load_field(str(folder)).meta["signal"]["kind"] == "video"

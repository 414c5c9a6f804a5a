"""The 3D lab without a screen: the renderer's meshes and metrics, the worker's view commands, exports, the CLI."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from cli_helpers import run_cli
from worker_helpers import wait_for_snapshot

from models.fields import FieldConfig
from models.mesh_io import ExportError, write_animation, write_mesh
from models.meshing import extract_dense
from models.scenes import Scene
from models.sdf_render import SdfRenderer, SdfViewSettings, module_field
from models.sdf_signal import SdfSampling, sdf_signal
from models.training import TrainConfig
from models.worker import TrainingWorker

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def sphere():
    return sdf_signal("sphere", SdfSampling(pool=4000))


class ExactSphere(torch.nn.Module):
    """The sphere's true distance as a 'field' (one dummy parameter so it has a device)."""

    def __init__(self, radius=0.6, offset=0.0):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))
        self.radius, self.offset = radius, offset

    def forward(self, points):
        return (points.norm(dim=-1, keepdim=True) - self.radius + self.offset) + 0 * self.anchor


def test_the_exact_distance_renders_the_true_surface_with_near_perfect_metrics(sphere):
    renderer = SdfRenderer(sphere)
    view = renderer.render(module_field(ExactSphere()), SdfViewSettings(), still=False, generation=1, index=0, step=0)
    radii = np.linalg.norm(view.mesh.vertices, axis=1)
    assert np.abs(radii - 0.6).max() < 2.0 / 64, "vertices within a grid cell of the radius"
    assert view.vertex_error.max() < 2.0 / 64
    assert view.metrics["iou"] > 0.98
    assert view.metrics["chamfer_l1"] < 0.01 and view.metrics["normal_consistency"] > 0.98
    assert view.mesh.queries < view.mesh.dense_queries
    # the slice through the centre: the field equals the target there
    np.testing.assert_allclose(view.slice_field, view.slice_target, atol=1e-5)
    assert view.history.shape == (1, 4) and view.history[0, 0] == 0


def test_a_field_without_a_surface_gives_an_empty_mesh_and_a_message_not_an_exception(sphere):
    renderer = SdfRenderer(sphere)
    view = renderer.render(module_field(ExactSphere(offset=5.0)), SdfViewSettings(), still=False, generation=1,
                           index=0, step=3)
    assert view.mesh.empty and "no surface" in view.mesh.message
    assert view.metrics["chamfer_l1"] is None and view.metrics["iou"] == pytest.approx(0.0)
    assert len(view.vertex_error) == 0


def test_a_fine_mesh_is_made_once_per_setting_and_a_shifted_level_shrinks_the_surface(sphere):
    renderer = SdfRenderer(sphere)
    field = module_field(ExactSphere())
    settings = SdfViewSettings(still_resolution=128)
    first = renderer.render(field, settings, still=True, generation=1, index=0, step=5)
    assert first.still and first.mesh.resolution == 128
    assert renderer.render(field, settings, still=True, generation=1, index=0, step=5) is first
    lower = renderer.render(field, SdfViewSettings(still_resolution=128, level=-0.1), still=True, generation=1,
                            index=0, step=5)
    assert lower is not first
    assert np.linalg.norm(lower.mesh.vertices, axis=1).mean() == pytest.approx(0.5, abs=0.01)


def sdf_scene(width=16, batch=1024) -> Scene:
    return Scene(field=FieldConfig(kind="siren", width=width, depth=2, w0=15.0),
                 train=TrainConfig(lr=1e-3, batch_size=batch))


wait = wait_for_snapshot


def test_the_worker_publishes_meshes_follows_view_settings_and_makes_a_fine_mesh_when_paused(sphere):
    scene = sdf_scene()
    worker = TrainingWorker(sphere, lambda: scene.build(sphere), start_running=False).start()
    try:
        worker.set_view(SdfViewSettings(live_resolution=64, still_resolution=128))
        worker.step(3)
        fine = wait(worker, lambda s: s.runs and s.runs[0].step == 3 and s.runs[0].sdf.still)
        view = fine.runs[0].sdf
        assert view.mesh.resolution == 128 and np.isnan(fine.runs[0].psnr)
        assert fine.runs[0].reconstruction.shape == (128, 128), "the slice stands in for the image arrays"
        worker.set_view(SdfViewSettings(live_resolution=64, still_resolution=128, slice_axis=0, slice_position=0.25,
                                        level=0.05))
        moved = wait(worker, lambda s: s.runs[0].sdf.slice_axis == 0)
        assert moved.runs[0].sdf.level == pytest.approx(0.05)
        assert moved.runs[0].sdf.slice_position == pytest.approx(0.25)
    finally:
        assert worker.stop()


def test_training_a_small_siren_finds_the_sphere(sphere):
    """The default recipe (near-surface + uniform samples, MSE on distances) learns the shape in a few hundred steps."""
    from models.training import Trainer

    trainer = Trainer(sphere, FieldConfig(kind="siren", width=32, depth=2, w0=15.0), TrainConfig(lr=2e-3, batch_size=1024))
    for _ in range(150):
        trainer.step()
    trainer.flush()
    view = SdfRenderer(sphere).render(module_field(trainer.model), SdfViewSettings(), still=False, generation=1,
                                      index=0, step=trainer.step_count)
    assert view.metrics["iou"] > 0.9 and view.metrics["chamfer_l1"] < 0.03, view.metrics


@pytest.mark.parametrize("suffix", [".ply", ".obj", ".stl", ".glb"])
def test_meshes_are_written_in_every_format_and_read_back(tmp_path, suffix):
    import trimesh

    mesh = extract_dense(lambda p: p.norm(dim=-1) - 0.5, 32)
    path = tmp_path / f"sphere{suffix}"
    summary = write_mesh(str(path), mesh)
    assert f"{len(mesh.faces):,} faces" in summary and not os.path.exists(str(path) + ".partial")
    loaded = trimesh.load(str(path), force="mesh")
    assert len(loaded.faces) == len(mesh.faces)
    assert np.abs(np.linalg.norm(loaded.vertices, axis=1) - 0.5).max() < 2.0 / 32


def test_mesh_and_animation_exports_refuse_what_they_cannot_write(tmp_path):
    empty = extract_dense(lambda p: p.norm(dim=-1) + 1.0, 16)
    with pytest.raises(ExportError, match="nothing to write"):
        write_mesh(str(tmp_path / "a.ply"), empty)
    with pytest.raises(ExportError, match="unknown mesh format"):
        write_mesh(str(tmp_path / "a.xyz"), extract_dense(lambda p: p.norm(dim=-1) - 0.5, 16))
    with pytest.raises(ExportError, match="unknown animation format"):
        write_animation(str(tmp_path / "a.avi"), [np.zeros((8, 8, 3), np.uint8)])


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_animations_round_trip(tmp_path, suffix):
    import imageio.v3 as iio

    frames = [np.full((31, 40, 3), 20 * i, np.uint8) for i in range(6)]
    path = tmp_path / f"turn{suffix}"
    write_animation(str(path), frames, fps=12)
    read = iio.imread(path, plugin="pyav" if suffix == ".mp4" else "pillow", index=None)
    assert len(read) == 6


def test_fit_and_render_a_3d_shape_headless(tmp_path):
    out = tmp_path / "sphere"
    code, stdout, stderr = run_cli("fit", "--signal", "sphere", "--width", 32, "--depth", 2, "--w0", 15, "--steps", 60,
                                   "--batch", 2048, "--lr", 2e-3, "--resolution", 64, "--out", out, "--quiet")
    assert code == 0, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    surface = metrics["surface"]
    assert metrics["kind"] == "sdf" and metrics["steps"] == 60
    assert 0.0 < surface["chamfer_l1"] < 0.2 and 0.0 <= surface["iou"] <= 1.0
    assert surface["field_queries"] < surface["dense_queries"]
    assert set(metrics["conventions"]) >= {"chamfer_l1", "normal_consistency", "iou"}
    assert (out / "mesh.ply").exists() and (out / "slice.png").exists()
    assert "Chamfer-L1" in stdout
    code, stdout, stderr = run_cli("render", out, "--mesh", tmp_path / "again.obj", "--resolution", 64)
    assert code == 0, stderr
    assert "field queries" in stdout and (tmp_path / "again.obj").exists()


def test_the_cli_explains_what_3d_cannot_do(tmp_path):
    code, _, stderr = run_cli("fit", "--signal", "sphere", "--model", "local-global", "--steps", 1, "--out", tmp_path / "x")
    assert code == 2 and "2D-only" in stderr
    out = tmp_path / "s"
    assert run_cli("fit", "--signal", "sphere", "--width", 8, "--depth", 1, "--steps", 1, "--resolution", 64,
                   "--out", out, "--quiet")[0] == 0
    code, _, stderr = run_cli("render", out, "--out", tmp_path / "x.png")
    assert code == 2 and "--mesh" in stderr
    code, _, stderr = run_cli("render", out, "--mesh", tmp_path / "x.abc")
    assert code == 2 and "unknown mesh format" in stderr


def test_a_growing_field_gets_a_mesh_per_width_and_trained_widths_are_extracted_once(sphere):
    from models.growth import GrowthConfig

    scene = Scene(field=FieldConfig(kind="siren", width=8, depth=2, w0=15.0), train=TrainConfig(lr=1e-3, batch_size=512),
                  preset="growth", widths=(4, 8), growth=GrowthConfig(stage_steps=3))
    worker = TrainingWorker(sphere, lambda: scene.build(sphere), start_running=False).start()
    try:
        worker.set_view(SdfViewSettings(still_resolution=64))
        worker.step(4)  # width 4 trains 3 steps and freezes; width 8 takes one
        first = wait(worker, lambda s: s.runs and s.runs[0].step == 4).runs[0]
        assert [v.mesh.resolution for v in first.sdf_widths] == [64, 64]
        assert first.sdf is first.sdf_widths[1], "the run's own view is the width in training"
        assert first.sdf_widths[0].step == 3, "a trained width is drawn as it was when its stage ended"
        worker.step(2)
        later = wait(worker, lambda s: s.runs[0].step == 6).runs[0]
        assert later.sdf_widths[0] is first.sdf_widths[0], "the frozen width was not extracted again"
        assert later.sdf_widths[1].step == 6
    finally:
        assert worker.stop()


def test_a_cropped_partition_leaves_a_hole_in_the_mesh_and_the_rest_unchanged(sphere):
    """The crop lab in 3D: where a partition is cropped the field has no output, so the mesh ends there."""
    from models.croppable import LocalGlobalTrainer
    from models.local_global import LocalGlobalConfig
    from models.sdf_render import partition_at, partition_boxes

    config = LocalGlobalConfig(in_features=3, partitions=(2, 2, 2), local_width=8, global_width=8, depth=2, w0=15.0)
    trainer = LocalGlobalTrainer(sphere, config, TrainConfig(lr=2e-3, batch_size=2048))
    for _ in range(60):
        trainer.step()
    scene = Scene(field=FieldConfig(kind="siren", width=8, depth=2), train=TrainConfig(batch_size=2048), preset="crop")
    worker = TrainingWorker(sphere, lambda: [("lg", trainer)], start_running=False).start()
    try:
        worker.set_view(SdfViewSettings(still_resolution=64))
        worker.step(1)
        whole = wait(worker, lambda s: s.runs and s.runs[0].step == 61).runs[0]
        corner = partition_at((2, 2, 2), (0.5, 0.5, 0.5))
        worker.call(lambda trainers: trainers[0][1].crop([corner]))
        cropped = wait(worker, lambda s: s.runs[0].partitions.present.__len__() == 7).runs[0]
    finally:
        assert worker.stop()
    (x0, x1), (y0, y1), (z0, z1) = partition_boxes((2, 2, 2), [corner])[0]
    assert (x0, y0, z0) == (0.0, 0.0, 0.0)
    inside = lambda v: np.all((v > 0.02) & (v < 0.98), axis=1)  # noqa: E731
    assert inside(whole.sdf.mesh.vertices).any(), "the uncropped field has surface in that octant"
    assert not inside(cropped.sdf.mesh.vertices).any(), "no surface is left inside the cropped box"
    assert cropped.params < whole.params and scene.preset == "crop"
    # away from the cropped box (a grid cell's margin) the other partitions' outputs are bit-identical, so is the mesh
    away = lambda v: v[np.any(v < -2.0 / 64, axis=1)]  # noqa: E731
    far, kept = away(whole.sdf.mesh.vertices), away(cropped.sdf.mesh.vertices)
    np.testing.assert_array_equal(np.sort(far, axis=0), np.sort(kept, axis=0))


def test_saving_a_3d_session_writes_what_fit_writes_and_render_reads_it(sphere, tmp_path):
    from app.headless import save_runs
    from models.training import Trainer

    trainer = Trainer(sphere, FieldConfig(kind="siren", width=16, depth=2, w0=15.0), TrainConfig(lr=2e-3, batch_size=1024))
    for _ in range(20):
        trainer.step()
    summary = save_runs(str(tmp_path / "saved"), [("SIREN", trainer)])
    assert "Chamfer-L1" in summary
    assert json.loads((tmp_path / "saved" / "metrics.json").read_text())["kind"] == "sdf"
    code, _, stderr = run_cli("render", tmp_path / "saved", "--mesh", tmp_path / "m.stl", "--resolution", 64)
    assert code == 0, stderr


def test_occupancy_is_the_alternative_target_with_its_surface_at_one_half(tmp_path):
    out = tmp_path / "occ"
    code, stdout, stderr = run_cli("fit", "--signal", "sphere", "--target", "occupancy", "--width", 32, "--depth", 2,
                                   "--w0", 15, "--steps", 150, "--batch", 2048, "--lr", 2e-3, "--resolution", 64,
                                   "--out", out, "--quiet")
    assert code == 0, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["target"] == "occupancy" and metrics["surface"]["level"] == 0.5
    assert metrics["surface"]["iou"] > 0.8, metrics["surface"]
    code, stdout, stderr = run_cli("render", out, "--mesh", tmp_path / "occ.ply", "--resolution", 64)
    assert code == 0, stderr

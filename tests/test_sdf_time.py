"""Temporal 3D signed-distance targets: the built-in sequences (morph, bounce) and folders of mesh frames."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from models.sdf_mesh import brute_force_unsigned
from models.sdf_shapes import ANALYTIC_SHAPES, BOUND
from models.sdf_signal import SdfTarget
from models.sdf_time import (
    DEFAULT_TIME_SHAPE,
    TIME_SHAPES,
    bounce_truth,
    is_temporal_sdf_source,
    morph_truth,
    temporal_sdf_signal,
)
from models.signals import SignalError, TimeAxis

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FRAMES, POINTS = 5, 2000


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="module")
def signals():
    return {name: temporal_sdf_signal(name, FRAMES, POINTS) for name in TIME_SHAPES}


def _frame(signal, k):
    rows = signal.time.rows(k)
    return signal.coords.numpy()[rows].astype(np.float64), signal.values.numpy()[rows, 0]


@pytest.mark.parametrize("name", ["morph", "bounce"])
def test_layout_fractions_and_values(signals, name):
    signal = signals[name]
    assert TIME_SHAPES == ("morph", "bounce") and DEFAULT_TIME_SHAPE == "morph"
    assert signal.kind == "sdf-time" and signal.name == name and signal.channels == 1
    assert signal.shape == (FRAMES, POINTS) and signal.original_shape == (FRAMES, POINTS)
    assert signal.coords.shape == (FRAMES * POINTS, 4) and signal.values.shape == (FRAMES * POINTS, 1)
    assert signal.coords.dtype == torch.float32 and signal.values.dtype == torch.float32
    assert signal.extent == (1.0, 1.0, 1.0, 1.0) and signal.in_features == 4
    time = signal.time
    assert isinstance(time, TimeAxis) and (time.frames, time.samples_per_frame) == (FRAMES, POINTS)
    assert time.fps > 0 and time.truth_at is not None and time.frame_target is not None
    assert signal.sdf is time.frame_target(0) and isinstance(signal.sdf, SdfTarget)
    assert np.abs(signal.coords.numpy()[:, :3]).max() <= 1.0
    for k, t in enumerate(time.times()):
        coords, values = _frame(signal, k)
        assert np.all(coords[:, 3] == np.float32(t)), "frame-major rows carry their frame's time"
        assert (values == 0).sum() == POINTS // 2, "half the points exactly on the surface"
        assert 0.5 <= np.mean(np.abs(values) < 1e-3) < 0.6
        assert np.mean(np.abs(values) < 0.05) >= 0.85, "3/8 more near the surface"
        # the samples' targets are the true signed distances of their frame (surface points included)
        assert np.abs(time.truth_at(coords[:, :3], t) - values).max() < 2e-6
    first, last = _frame(signal, 0)[1], _frame(signal, FRAMES - 1)[1]
    assert not np.array_equal(first, last)
    again = temporal_sdf_signal(name, FRAMES, POINTS)
    assert torch.equal(again.coords, signal.coords) and torch.equal(again.values, signal.values)
    assert f"{FRAMES} frames" in signal.note


def _gradient_norm(fn, p, eps=1e-5):
    grad = np.stack([(fn(p + e).astype(np.float64) - fn(p - e)) / (2 * eps) for e in np.eye(3) * eps], axis=1)
    return np.linalg.norm(grad, axis=1)


def test_bounce_is_a_rigid_motion_that_moves_and_stays_inside():
    rng = _rng(1)
    p = rng.uniform(-1, 1, (3000, 3))
    cloud = rng.uniform(-1, 1, (200_000, 3))
    shell = cloud[np.abs(cloud).max(axis=1) > BOUND + 0.005]
    centroids, volumes = [], []
    for t in np.linspace(-1, 1, 9):
        norm = _gradient_norm(lambda q, t=t: bounce_truth(q, t), p, eps=1e-3)  # float32 values
        assert np.mean(np.abs(norm - 1) < 1e-3) > 0.98 and abs(np.median(norm) - 1) < 1e-4
        assert (bounce_truth(shell, t) > 0).all()
        inside = cloud[bounce_truth(cloud, t) < 0]
        centroids.append(inside.mean(axis=0))
        volumes.append(len(inside))
    centroids = np.array(centroids)
    assert np.ptp(centroids[:, 0]) > 0.5 and np.ptp(centroids[:, 2]) > 0.5, "drifts and bounces"
    assert np.ptp(volumes) < 0.1 * np.mean(volumes), "rigid: the volume stays"


def test_morph_goes_from_sphere_to_torus_with_exact_distances(signals):
    rng = _rng(2)
    p = rng.uniform(-1, 1, (3000, 3))
    assert np.allclose(morph_truth(p, -1.0), ANALYTIC_SHAPES["sphere"].sdf(p), atol=1e-6)
    assert np.allclose(morph_truth(p, 1.0), ANALYTIC_SHAPES["torus"].sdf(p), atol=1e-6)
    centre = np.zeros((1, 3))
    assert morph_truth(centre, -1.0)[0] < 0 < morph_truth(centre, 1.0)[0], "a hole opens: genus 0 -> 1"
    signal = signals["morph"]
    assert signal.time.frame_target(0).inside(centre)[0] and not signal.time.frame_target(FRAMES - 1).inside(centre)[0]
    # mid-way the blend is no distance, yet the targets are: unit gradient ...
    near = p[np.abs(morph_truth(p, 0.0)) < 0.1]
    norm = _gradient_norm(lambda q: morph_truth(q, 0.0), near, eps=1e-4)
    assert np.mean(np.abs(norm - 1) < 2e-3) > 0.98
    # ... and the distances to the frame's fine truth mesh (up to its marching-cubes error)
    k = FRAMES // 2
    coords, values = _frame(signal, k)
    pick = np.flatnonzero((values != 0) & (np.abs(values) < 0.04))[:150]
    truth = signal.time.frame_target(k)
    reference = brute_force_unsigned(truth.vertices, truth.faces, coords[pick, :3])
    assert np.abs(np.abs(values[pick]) - reference).max() < 1e-3
    assert np.array_equal(values[pick] < 0, truth.inside(coords[pick, :3]))
    assert "exact" in signal.note and "blend" in signal.note


@pytest.mark.parametrize("name", ["morph", "bounce"])
def test_frame_targets_match_their_frame_and_are_cached(signals, name):
    signal = signals[name]
    k = 3
    t = signal.time.times()[k]
    truth = signal.time.frame_target(k)
    assert isinstance(truth, SdfTarget) and truth.target == "sdf" and truth.exact
    assert signal.time.frame_target(k) is truth
    assert truth.vertices.dtype == np.float32 and truth.faces.dtype == np.int32 and not truth.vertices.flags.writeable
    assert np.abs(signal.time.truth_at(truth.vertices, t)).max() < 2e-3
    points, normals = truth.surface_points[:2000], truth.surface_normals[:2000]
    assert np.abs(signal.time.truth_at(points, t)).max() < 1e-5
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    assert (truth.sdf(points + 0.005 * normals) > 0).all() and (truth.sdf(points - 0.005 * normals) < 0).all()
    other = signal.time.truth_at(truth.vertices, signal.time.times()[0])
    assert np.abs(other).max() > 0.05, "frame k's mesh is not frame 0's"
    with pytest.raises(IndexError):
        signal.time.frame_target(FRAMES)


def test_occupancy_targets():
    signal = temporal_sdf_signal("bounce", 3, 1500, target="occupancy")
    assert signal.sdf.target == "occupancy" and signal.time.frame_target(2).target == "occupancy"
    for k, t in enumerate(signal.time.times()):
        coords, values = _frame(signal, k)
        assert set(np.unique(values)) <= {0.0, 1.0}
        assert np.array_equal(values == 1.0, bounce_truth(coords[:, :3], t) < 0)
    with pytest.raises(SignalError, match="unknown target"):
        temporal_sdf_signal("morph", 2, 100, target="colour")


# order is s1, s2, s3, s5, s10 (lexicographic: s1, s10, s2, s3, s5); a sphere moving along x
SEQUENCE = ("s1", "s2", "s3", "s5", "s10")


def _write_sequence(folder, step=0.25):
    folder.mkdir(exist_ok=True)
    for i, stem in enumerate(SEQUENCE):
        ball = trimesh.creation.icosphere(subdivisions=2, radius=0.3).apply_translation((step * i, 0.1 * i, 2.0))
        ball.export(folder / f"{stem}.obj")
    return folder


def test_mesh_folder_frames_are_in_natural_order_and_normalised_together(tmp_path):
    folder = _write_sequence(tmp_path / "walk")
    signal = temporal_sdf_signal(str(folder), frames=16, samples_per_frame=1000)
    assert signal.name == "walk" and signal.shape == (5, 1000) and signal.time.truth_at is None
    targets = [signal.time.frame_target(k) for k in range(5)]
    centres = np.array([truth.vertices.mean(axis=0) for truth in targets])
    steps = np.diff(centres[:, 0])
    assert (steps > 0).all() and np.allclose(steps, steps[0], atol=1e-4), "natural order, one common scale"
    radii = [np.linalg.norm(truth.vertices - c, axis=1).max() for truth, c in zip(targets, centres)]
    assert np.allclose(radii, radii[0], atol=1e-4) and radii[0] < 0.5, "not each blown up to the cube"
    every = np.concatenate([truth.vertices for truth in targets])
    assert np.abs(every.max(axis=0)[0] - 0.85) < 1e-5 and np.abs(every.min(axis=0)[0] + 0.85) < 1e-5
    assert targets[0].exact and "together" in signal.note and "s10.obj" in targets[4].label
    for k in (0, 4):
        coords, values = _frame(signal, k)
        assert np.all(coords[:, 3] == np.float32(signal.time.times()[k]))
        assert (values == 0).sum() == 500
        assert np.allclose(values, targets[k].sdf(coords[:, :3]), atol=1e-5)
    # subsampled evenly to at most ``frames``
    three = temporal_sdf_signal(str(folder), frames=3, samples_per_frame=200)
    assert three.shape == (3, 200) and "3 of 5" in three.note
    assert [three.time.frame_target(k).label.split(": ")[1].split(" ")[0] for k in range(3)] == [
        "s1.obj", "s3.obj", "s10.obj"]


@pytest.mark.parametrize("case", ["corrupt", "empty", "missing", "no-meshes", "unknown"])
def test_bad_sources_are_one_line_errors_naming_them(tmp_path, case):
    if case == "corrupt":
        source = _write_sequence(tmp_path / "seq")
        (source / "s4.obj").write_bytes(_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        expected = ("seq/s4.obj", "not a readable mesh")
    elif case == "empty":
        source = tmp_path / "void"
        source.mkdir()
        expected = ("void", "empty")
    elif case == "missing":
        source, expected = tmp_path / "nowhere", ("nowhere", "no such folder")
    elif case == "no-meshes":
        source = tmp_path / "notes"
        source.mkdir()
        (source / "readme.txt").write_text("hello")
        expected = ("notes", "no mesh files")
    else:
        source, expected = "spin", ("spin", "morph")
    with pytest.raises(SignalError) as error:
        temporal_sdf_signal(str(source), frames=4, samples_per_frame=100)
    message = str(error.value)
    assert "\n" not in message and all(part in message for part in expected), message
    if case != "unknown":
        assert message.startswith(str(source) if case == "missing" else source.name)


def test_is_temporal_sdf_source(tmp_path):
    assert all(is_temporal_sdf_source(name) for name in TIME_SHAPES)
    meshes = _write_sequence(tmp_path / "meshes")
    assert is_temporal_sdf_source(str(meshes)) and is_temporal_sdf_source(meshes)
    images = tmp_path / "images"
    images.mkdir()
    (images / "frame1.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert not is_temporal_sdf_source(str(images))
    (images / "frame1.obj").write_text((meshes / "s1.obj").read_text())
    assert not is_temporal_sdf_source(str(images)), "mesh and image files: a video, not a mesh sequence"
    assert not is_temporal_sdf_source("qwxz-not-a-shape") and not is_temporal_sdf_source("")
    assert not is_temporal_sdf_source(str(meshes / "s1.obj")) and not is_temporal_sdf_source("torus")

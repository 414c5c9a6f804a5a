"""Marching cubes of fields over [-1, 1]^3 (models/meshing.py) and the 3D metrics (models/sdf_metrics.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.meshing import (
    MeshData,
    coarse_resolution,
    evaluate_grid,
    extract_dense,
    extract_narrow_band,
    grid_axis,
    grid_points,
    mesh_from_volume,
)
from models.sdf_metrics import (
    CHAMFER_POINTS,
    IOU_RESOLUTION,
    METRIC_CONVENTIONS,
    chamfer_and_normals,
    inside_from_field,
    inside_from_volume,
    occupancy_iou,
    sample_surface,
)

RADIUS = 0.6


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    yield


def sphere(radius=RADIUS):
    return lambda p: p.norm(dim=1) - radius


def occupancy_sphere(p):
    """Smooth occupancy: ~1 inside, ~0 outside, 0.5 on the sphere."""
    return torch.sigmoid(-20.0 * (p.norm(dim=1) - RADIUS))


def siren_like(width=32, depth=2, w0=30.0, seed=0):
    """A seeded random SIREN-style MLP (sine activations, SIREN init), returning (N, 1)."""
    g = torch.Generator().manual_seed(seed)
    layers, fan = [], 3
    for index in range(depth + 1):
        out = 1 if index == depth else width
        bound = 1.0 / fan if index == 0 else math.sqrt(6.0 / fan) / w0
        layers.append(((torch.rand(out, fan, generator=g) * 2 - 1) * bound,
                       (torch.rand(out, generator=g) * 2 - 1) / math.sqrt(fan)))
        fan = out

    def field(x):
        h = x
        for index, (weight, bias) in enumerate(layers):
            h = h @ weight.T + bias
            if index < depth:
                h = torch.sin(w0 * h)
        return h

    return field


def bumpy_mlp_sdf():
    """A sphere perturbed by a random SIREN: not an SDF, gradients up to ~2.8 and high-frequency bumps."""
    net = siren_like()
    return lambda p: p.norm(dim=1, keepdim=True) - RADIUS + 2.0 * net(p)


def bumpy_sphere(p):
    return p.norm(dim=1) - RADIUS + 0.05 * torch.sin(12 * p[:, 0]) * torch.sin(12 * p[:, 1]) * torch.sin(12 * p[:, 2])


def signed_volume(mesh: MeshData) -> float:
    v = mesh.vertices.astype(np.float64)
    a, b, c = v[mesh.faces[:, 0]], v[mesh.faces[:, 1]], v[mesh.faces[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def assert_same_mesh(a: MeshData, b: MeshData):
    assert a.vertices.shape == b.vertices.shape
    np.testing.assert_array_equal(a.faces, b.faces)
    np.testing.assert_allclose(a.vertices, b.vertices, atol=1e-5, rtol=0)
    np.testing.assert_allclose(a.normals, b.normals, atol=1e-4, rtol=0)


def test_grid_order_is_ij():
    axis = grid_axis(4)
    assert axis.shape == (5,) and axis[0] == -1 and axis[-1] == 1
    points = grid_points(4)
    assert points.shape == (125, 3)
    i, j, k = 1, 3, 2
    torch.testing.assert_close(points[i * 25 + j * 5 + k], torch.stack([axis[i], axis[j], axis[k]]))
    volume = evaluate_grid(lambda p: p[:, 0] + 10 * p[:, 1] + 100 * p[:, 2], 4, chunk=7)
    assert volume.dtype == np.float32 and volume.shape == (5, 5, 5)
    assert volume[i, j, k] == pytest.approx(float(axis[i] + 10 * axis[j] + 100 * axis[k]), abs=1e-5)


@pytest.mark.parametrize("resolution", [32, 64])
def test_sphere_sdf_mesh_is_accurate_and_outward(resolution):
    mesh = extract_dense(sphere(), resolution)
    assert not mesh.empty and mesh.message == ""
    assert mesh.vertices.dtype == np.float32 and mesh.faces.dtype == np.int32
    assert mesh.normals.dtype == np.float32 and mesh.normals.shape == mesh.vertices.shape
    assert mesh.queries == mesh.dense_queries == (resolution + 1) ** 3
    radial_error = np.abs(np.linalg.norm(mesh.vertices, axis=1) - RADIUS)
    assert radial_error.max() < 2.0 / resolution  # within a cell; in fact far closer:
    assert radial_error.max() < 0.05 * 2.0 / resolution
    np.testing.assert_allclose(np.linalg.norm(mesh.normals, axis=1), 1.0, atol=1e-5)
    radial = mesh.vertices / np.linalg.norm(mesh.vertices, axis=1, keepdims=True)
    assert (np.sum(mesh.normals * radial, axis=1) > 0.95).all()  # outward
    exact = 4.0 / 3.0 * math.pi * RADIUS ** 3
    assert signed_volume(mesh) == pytest.approx(exact, rel=0.03)  # faces wound outward
    assert not mesh.vertices.flags.writeable and not mesh.faces.flags.writeable
    assert mesh.volume is not None and not mesh.volume.flags.writeable


def test_occupancy_convention_is_outward_too():
    mesh = extract_dense(occupancy_sphere, 32, level=0.5, inside_below=False)
    assert not mesh.empty
    assert np.abs(np.linalg.norm(mesh.vertices, axis=1) - RADIUS).max() < 2.0 / 32
    assert (np.sum(mesh.normals * mesh.vertices, axis=1) > 0).all()
    assert signed_volume(mesh) == pytest.approx(4.0 / 3.0 * math.pi * RADIUS ** 3, rel=0.03)
    # the same field read with the wrong convention gives an inside-out mesh: the flag is what orients it
    flipped = extract_dense(occupancy_sphere, 32, level=0.5, inside_below=True)
    assert signed_volume(flipped) < 0


def test_no_surface_or_nan_gives_an_empty_mesh_with_a_message():
    constant = extract_dense(lambda p: torch.ones(p.shape[0]), 16)
    assert constant.empty and "no surface at level 0" in constant.message and "1" in constant.message
    assert constant.vertices.shape == (0, 3) and constant.faces.shape == (0, 3)
    high = extract_dense(sphere(), 16, level=5.0)
    assert high.empty and "level 5" in high.message and "ranges from -0.6" in high.message
    band = extract_narrow_band(sphere(), 32, level=5.0)
    assert band.empty and "level 5" in band.message and band.queries < band.dense_queries
    volume = evaluate_grid(sphere(), 16)
    volume[3, 4, 5] = np.nan
    nan = mesh_from_volume(volume)
    assert nan.empty and "NaN" in nan.message
    nan_field = extract_narrow_band(lambda p: torch.full((p.shape[0],), float("nan")), 32)
    assert nan_field.empty and "NaN" in nan_field.message


def test_coarse_resolution_chain():
    assert coarse_resolution(64) == 8 and coarse_resolution(256) == 8 and coarse_resolution(96) == 12
    assert coarse_resolution(65) == 65 and coarse_resolution(8) == 8
    with pytest.raises(ValueError):
        extract_narrow_band(sphere(), 64, coarse=24)


def test_narrow_band_equals_dense_on_a_sphere_with_far_fewer_queries():
    ratios = {}
    for resolution in (64, 128):
        dense = extract_dense(sphere(), resolution)
        band = extract_narrow_band(sphere(), resolution)
        assert_same_mesh(band, dense)
        ratios[resolution] = band.queries / dense.queries
        assert band.dense_queries == dense.queries
        # the filled volume keeps every sign of the dense one
        np.testing.assert_array_equal(band.volume < 0, dense.volume < 0)
    print(f"narrow band / dense queries on a sphere r={RADIUS}: {ratios}")
    assert ratios[64] < 0.6 and ratios[128] < 0.3 and ratios[128] < 0.6 * ratios[64]
    thin = extract_narrow_band(sphere(), 64, band=0.5)  # a thinner margin for trusted SDFs
    assert_same_mesh(thin, extract_dense(sphere(), 64))
    assert thin.queries / thin.dense_queries < 0.3


def test_narrow_band_equals_dense_on_a_random_siren_perturbed_field():
    field = bumpy_mlp_sdf()
    dense = extract_dense(field, 64)
    band = extract_narrow_band(field, 64)
    assert not dense.empty
    assert_same_mesh(band, dense)
    assert band.queries < 0.5 * dense.queries
    # a pure random SIREN (w0=30, gradients ~10) around its median has surface everywhere: the band
    # covers (nearly) the whole grid and still gives the dense mesh
    net = siren_like(seed=3)
    median = float(net(grid_points(16)).median())
    wild = lambda p: 10.0 * (net(p) - median)
    band = extract_narrow_band(wild, 32)
    assert_same_mesh(band, extract_dense(wild, 32))
    assert band.queries > 0.9 * band.dense_queries


def test_occupancy_narrow_band_matches_dense():
    dense = extract_dense(occupancy_sphere, 64, level=0.5, inside_below=False)
    band = extract_narrow_band(occupancy_sphere, 64, level=0.5, inside_below=False)
    assert_same_mesh(band, dense)
    assert band.queries < dense.queries


def test_sample_surface_is_area_uniform_and_deterministic():
    mesh = extract_dense(sphere(), 32)
    points, normals = sample_surface(mesh.vertices, mesh.faces, 5000, seed=1)
    again, _ = sample_surface(mesh.vertices, mesh.faces, 5000, seed=1)
    np.testing.assert_array_equal(points, again)
    assert points.shape == normals.shape == (5000, 3) and points.dtype == np.float32
    assert np.abs(np.linalg.norm(points, axis=1) - RADIUS).max() < 0.01
    assert (np.sum(normals * points, axis=1) > 0).all()
    assert abs(float(points[:, 2].mean())) < 0.03  # no hemisphere favoured
    assert sample_surface(np.zeros((0, 3)), np.zeros((0, 3), int), 10)[0].shape == (0, 3)


def test_chamfer_and_normal_consistency():
    mesh = extract_dense(sphere(), 32)
    gt_points, gt_normals = sample_surface(mesh.vertices, mesh.faces, CHAMFER_POINTS, seed=0)
    same = chamfer_and_normals(mesh, gt_points, gt_normals)  # same seed: the very same points
    assert same["chamfer_l1"] == pytest.approx(0.0, abs=1e-7) and same["normal_consistency"] == pytest.approx(1.0)
    resampled = chamfer_and_normals(mesh, gt_points, gt_normals, seed=5)
    assert resampled["chamfer_l1"] < 0.01 and resampled["normal_consistency"] > 0.99
    d = 0.05
    bigger = extract_dense(sphere(RADIUS + d), 32)
    shifted = chamfer_and_normals((bigger.vertices, bigger.faces), gt_points, gt_normals, count=20_000)
    assert shifted["chamfer_l1"] == pytest.approx(d, rel=0.1)
    assert shifted["chamfer_l2"] == pytest.approx(d ** 2, rel=0.2)
    perturbed = chamfer_and_normals(extract_dense(bumpy_sphere, 32), gt_points, gt_normals)
    assert 0.8 < perturbed["normal_consistency"] < 0.98 and not perturbed["empty"]
    assert 0.005 < perturbed["chamfer_l1"] < 0.05
    empty = extract_dense(sphere(), 16, level=5.0)
    blank = chamfer_and_normals(empty, gt_points, gt_normals)
    assert blank["empty"] and blank["chamfer_l1"] is None and blank["normal_consistency"] is None
    assert set(METRIC_CONVENTIONS) >= {"chamfer_l1", "chamfer_l2", "normal_consistency", "iou"}


def test_occupancy_iou():
    inside = np.zeros((4, 4, 4), bool)
    inside[:2] = True
    assert occupancy_iou(inside, inside) == 1.0
    shifted = np.zeros_like(inside)
    shifted[1:3] = True  # overlaps one of two slabs: 1 / 3
    assert occupancy_iou(inside, shifted) == pytest.approx(1 / 3)
    assert occupancy_iou(np.zeros_like(inside), np.zeros_like(inside)) == 1.0
    assert occupancy_iou(np.zeros_like(inside), inside) == 0.0
    with pytest.raises(ValueError):
        occupancy_iou(inside, inside[:3])


def test_iou_from_an_extraction_volume_needs_no_queries():
    band = extract_narrow_band(sphere(), 128)
    from_volume = inside_from_volume(band.volume, 0.0, True, 128)
    truth = inside_from_field(sphere())
    assert from_volume.shape == (IOU_RESOLUTION + 1,) * 3
    np.testing.assert_array_equal(from_volume, truth)
    assert occupancy_iou(from_volume, truth) == 1.0
    smaller = inside_from_field(sphere(0.5))
    assert occupancy_iou(smaller, truth) == pytest.approx((0.5 / 0.6) ** 3, rel=0.05)
    occupancy = inside_from_volume(extract_dense(occupancy_sphere, 64, 0.5, False).volume, 0.5, False, 64)
    assert occupancy_iou(occupancy, truth) > 0.99
    with pytest.raises(ValueError):
        inside_from_volume(evaluate_grid(sphere(), 32), 0.0, True, 32)

"""3D signed-distance targets: analytic shapes, mesh distances and signs, sampling, mesh files."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from models.mesh_files import (
    BUNDLED_MESHES,
    PRIMITIVES,
    load_mesh_file,
    normalise_mesh,
    primitive_mesh,
    simplify_mesh,
)
from models.sdf_mesh import (
    MeshSdf,
    brute_force_unsigned,
    brute_force_winding,
    edge_counts,
)
from models.sdf_shapes import ANALYTIC_SHAPES
from models.sdf_signal import (
    SDF_SHAPES,
    SdfSampling,
    SdfTarget,
    is_sdf_source,
    sdf_signal,
    sdf_target,
)
from models.signals import SignalError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EXACT = [name for name, shape in ANALYTIC_SHAPES.items() if shape.exact]


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_registry_order_and_sources():
    assert list(ANALYTIC_SHAPES) == ["sphere", "torus", "box", "gyroid", "bumpy-sphere", "blobs"]
    assert EXACT == ["sphere", "torus", "box"]
    assert SDF_SHAPES[:6] == tuple(ANALYTIC_SHAPES)
    assert set(PRIMITIVES) <= set(SDF_SHAPES) and set(BUNDLED_MESHES) <= set(SDF_SHAPES)
    assert len(set(SDF_SHAPES)) == len(SDF_SHAPES)
    assert is_sdf_source("torus") and is_sdf_source("some/where/model.OBJ") and is_sdf_source("x.glb")
    assert not is_sdf_source("camera") and not is_sdf_source("photo.png")
    for name, shape in ANALYTIC_SHAPES.items():
        assert shape.exact or shape.note, f"{name}: a non-exact shape says what it is"


def test_exact_shapes_at_known_points():
    sphere, torus, box = (ANALYTIC_SHAPES[n].sdf for n in ("sphere", "torus", "box"))
    assert sphere(np.zeros((1, 3)))[0] == pytest.approx(-0.6)
    assert sphere(np.array([[1.0, 0.0, 0.0], [0.0, -0.6, 0.0]])) == pytest.approx([0.4, 0.0], abs=1e-7)
    on_sphere = _rng().normal(size=(100, 3))
    on_sphere *= 0.6 / np.linalg.norm(on_sphere, axis=1, keepdims=True)
    assert np.abs(sphere(on_sphere)).max() < 1e-6
    # ring of radius 0.5 around z, tube radius 0.2
    assert torus(np.array([[0.5, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.7, 0.0], [0.0, 0.5, 0.5]])) == pytest.approx(
        [-0.2, 0.3, 0.0, 0.3], abs=1e-6)
    # rounded box, half sizes (0.55, 0.4, 0.3): the deepest point is 0.3 inside; faces are at the half sizes
    assert box(np.array([[0.0, 0.0, 0.0], [0.55, 0.0, 0.0], [0.0, 0.0, -0.3], [0.75, 0.0, 0.0]])) == pytest.approx(
        [-0.3, 0.0, 0.0, 0.2], abs=1e-6)
    # beyond a corner the distance is to the rounded edge: |p - (corner pulled in by r)| - r
    corner = np.array([0.55, 0.4, 0.3]) - 0.05
    assert box(np.array([[0.8, 0.7, 0.6]]))[0] == pytest.approx(np.linalg.norm([0.8, 0.7, 0.6] - corner) - 0.05,
                                                                 abs=1e-6)
    assert sphere(np.zeros((2, 3), dtype=np.float32)).dtype == np.float32


@pytest.mark.parametrize("name", EXACT)
def test_exact_shapes_have_unit_gradient(name):
    fn = ANALYTIC_SHAPES[name].fn
    p = _rng(1).uniform(-1, 1, (4000, 3))
    eps = 1e-5
    grad = np.stack([(fn(p + e) - fn(p - e)) / (2 * eps) for e in np.eye(3) * eps], axis=1)
    norm = np.linalg.norm(grad, axis=1)
    # away from the medial axis (a measure-zero set where the gradient jumps) |grad sdf| = 1
    assert np.mean(np.abs(norm - 1.0) < 1e-4) > 0.99
    assert np.abs(np.median(norm) - 1.0) < 1e-6


@pytest.mark.parametrize("name", list(ANALYTIC_SHAPES))
def test_every_analytic_shape_lies_inside_the_bound(name):
    shape = ANALYTIC_SHAPES[name]
    p = _rng(2).uniform(-1, 1, (20000, 3))
    shell = p[np.abs(p).max(axis=1) > 0.86]
    assert (shape.sdf(shell) > 0).all()
    grid = shape.grid(24)
    axis = np.linspace(-1, 1, 24)
    pts = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    exact = shape.sdf(pts)
    band = np.abs(exact) < 0.05  # grid_fn values may be clamped far from the surface, never near it
    assert np.allclose(grid.reshape(-1)[band], exact[band], atol=1e-6)
    assert np.array_equal(grid.reshape(-1) < 0, exact < 0)
    assert 0.02 < np.mean(exact < 0) < 0.5, "a solid of a sensible size"


def test_analytic_target_ground_truth():
    target = sdf_target("sphere")
    assert isinstance(target, SdfTarget) and target.exact and target.target == "sdf"
    assert target.vertices.dtype == np.float32 and target.faces.dtype == np.int32
    assert not target.vertices.flags.writeable and not target.surface_points.flags.writeable
    # marching-cubes vertices lie on the sphere (to the grid's accuracy), surface samples exactly on it
    assert np.abs(np.linalg.norm(target.vertices, axis=1) - 0.6).max() < 2e-3
    assert len(target.surface_points) >= 50_000
    assert np.abs(np.linalg.norm(target.surface_points, axis=1) - 0.6).max() < 1e-5
    normals = target.surface_normals
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    assert (np.einsum("ij,ij->i", normals, target.surface_points) > 0).all(), "outward normals"
    # faces are outward: positive signed volume close to the sphere's
    tris = target.vertices[target.faces].astype(np.float64)
    volume = np.einsum("ij,ij->i", tris[:, 0], np.cross(tris[:, 1], tris[:, 2])).sum() / 6
    assert volume == pytest.approx(4 / 3 * np.pi * 0.6 ** 3, rel=5e-3)
    points = _rng(3).uniform(-1, 1, (500, 3))
    assert np.array_equal(target.inside(points), np.linalg.norm(points, axis=1) < 0.6)
    assert np.allclose(target.unsigned(points), np.abs(np.linalg.norm(points, axis=1) - 0.6), atol=1e-6)


def test_non_exact_shape_targets_are_distances_to_the_fine_mesh():
    target = sdf_target("bumpy-sphere")
    assert not target.exact and "marching-cubes" in target.note
    shape = ANALYTIC_SHAPES["bumpy-sphere"]
    rng = _rng(4)
    surface = target.surface_points[rng.choice(len(target.surface_points), 20)].astype(np.float64)
    points = np.concatenate([surface + rng.normal(0, 0.02, surface.shape), rng.uniform(-1, 1, (20, 3))])
    reference = brute_force_unsigned(target.vertices, target.faces, points) * np.sign(shape.sdf(points))
    assert np.allclose(target.sdf(points), reference, atol=1e-6)
    # the formula is only a bound: the true distance differs from it off the surface
    assert np.abs(shape.sdf(points) - reference).max() > 1e-3


def test_mesh_sdf_of_an_icosphere_matches_the_sphere_within_the_facet_error():
    radius = 0.7
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=radius)
    sdf = MeshSdf(mesh)
    assert sdf.watertight and sdf.sign_note.startswith("watertight")
    tris = mesh.vertices[mesh.faces]
    normals = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    sagitta = radius - np.abs(np.einsum("ij,ij->i", normals, tris[:, 0])).min()  # deepest facet
    rng = _rng(5)
    on = rng.normal(size=(3000, 3))
    on *= radius / np.linalg.norm(on, axis=1, keepdims=True)
    points = np.concatenate([on + rng.normal(0, 0.02, on.shape), rng.uniform(-1, 1, (3000, 3))])
    analytic = np.linalg.norm(points, axis=1) - radius
    assert np.abs(sdf.sdf(points) - analytic).max() <= sagitta + 1e-6


def test_sign_inside_and_outside_of_closed_and_open_meshes():
    closed = trimesh.creation.box(extents=(1.0, 0.8, 0.6))
    inside = np.array([[0.0, 0.0, 0.0], [0.45, 0.35, 0.25], [-0.4, 0.0, 0.2]])
    outside = np.array([[0.0, 0.0, 0.35], [0.6, 0.0, 0.0], [0.9, 0.9, 0.9], [0.0, -0.45, 0.0]])
    closed_sdf = MeshSdf(closed)
    assert closed_sdf.watertight
    assert (closed_sdf.sdf(inside) < 0).all() and (closed_sdf.sdf(outside) > 0).all()
    assert np.allclose(closed_sdf.winding(inside), 1.0, atol=0.2) and np.allclose(closed_sdf.winding(outside), 0,
                                                                                  atol=0.2)
    # one face (two triangles) removed: a hole on the +z side
    top = np.flatnonzero(closed.face_normals[:, 2] > 0.5)
    open_box = trimesh.Trimesh(closed.vertices, np.delete(closed.faces, top, axis=0), process=False)
    open_sdf = MeshSdf(open_box)
    assert not open_sdf.watertight and open_sdf.boundary_edges == 4
    assert "not watertight (4 boundary edges)" in open_sdf.sign_note and "winding number" in open_sdf.sign_note
    assert (open_sdf.sdf(inside[:1]) < 0).all() and (open_sdf.sdf(outside[1:]) > 0).all()
    # the distance above the hole is to the rim (the nearer long edge), not to a face that is not there
    assert open_sdf.unsigned(np.array([[0.0, 0.0, 0.35]]))[0] == pytest.approx(np.hypot(0.4, 0.05), abs=1e-6)
    # an inside-out mesh is flipped, with a note
    inverted = trimesh.Trimesh(closed.vertices, closed.faces[:, ::-1], process=False)
    inverted_sdf = MeshSdf(inverted)
    assert inverted_sdf.flipped and "flipped" in inverted_sdf.sign_note
    assert (inverted_sdf.sdf(inside) < 0).all() and (inverted_sdf.sdf(outside) > 0).all()


@pytest.mark.parametrize("name", ["torus", "cone"])
def test_unsigned_distance_equals_brute_force(name):
    # the torus is well shaped; the cone's fans and long slivers exercise the exact second pass
    mesh = (trimesh.creation.torus(0.5, 0.2, major_sections=32, minor_sections=16) if name == "torus"
            else trimesh.creation.cone(radius=0.6, height=1.2, sections=48))
    sdf = MeshSdf(mesh)
    rng = _rng(6)
    surface, _ = trimesh.sample.sample_surface(mesh, 1500, seed=1)
    near = surface + rng.normal(0, 0.01, surface.shape)
    far = rng.uniform(-1.2, 1.2, (1500, 3))
    exact_near = brute_force_unsigned(mesh.vertices, mesh.faces, near)
    assert np.abs(sdf.unsigned(near) - exact_near)[exact_near < sdf.refine_band].max() < 1e-6
    exact_far = brute_force_unsigned(mesh.vertices, mesh.faces, far)
    error = sdf.unsigned(far) - exact_far
    assert error.min() > -1e-6 and error.max() <= sdf.error_bound + 1e-6
    assert np.median(np.abs(error)) < 1e-6
    assert np.allclose(np.abs(sdf.sdf(near)), sdf.unsigned(near))


def test_winding_number_tree_matches_the_exact_sum():
    mesh = trimesh.creation.torus(0.5, 0.2, major_sections=48, minor_sections=24)
    sdf = MeshSdf(mesh)
    rng = _rng(7)
    surface, _ = trimesh.sample.sample_surface(mesh, 600, seed=2)
    points = np.concatenate([surface + rng.normal(0, 0.01, surface.shape), rng.uniform(-1, 1, (600, 3))])
    exact = brute_force_winding(mesh.vertices, mesh.faces, points)
    approx = sdf.winding(points)
    assert np.abs(approx - exact).max() < 0.25  # far clusters as dipoles: close, and decisive for the sign
    assert np.array_equal(approx > 0.5, exact > 0.5)
    assert set(np.round(exact).astype(int)) <= {0, 1}


def test_pool_fractions_values_and_determinism():
    sampling = SdfSampling(pool=4000, seed=3)
    signal = sdf_signal("sphere", sampling)
    assert signal.kind == "sdf" and signal.shape == (4000,) and signal.channels == 1
    assert signal.coords.shape == (4000, 3) and signal.values.shape == (4000, 1)
    assert signal.coords.dtype == torch.float32 and signal.values.dtype == torch.float32
    assert signal.extent == (1.0, 1.0, 1.0) and signal.original_shape == (4000,)
    assert isinstance(signal.sdf, SdfTarget) and signal.in_features == 3
    coords, values = signal.coords.numpy().astype(np.float64), signal.values.numpy()[:, 0]
    assert np.abs(coords).max() <= 1.0
    # targets are the true signed distances; surface samples are exactly 0 and on the sphere
    assert np.allclose(values, np.linalg.norm(coords, axis=1) - 0.6, atol=2e-6)
    on_surface = values == 0
    assert on_surface.sum() == 2000
    near = (~on_surface) & (np.abs(values) < 0.06)
    assert near.sum() >= 1500  # the 1500 near samples (plus the odd uniform one)
    assert (np.abs(values) >= 0.06).sum() <= 500
    again = sdf_signal("sphere", sampling)
    assert torch.equal(again.coords, signal.coords) and torch.equal(again.values, signal.values)
    other = sdf_signal("sphere", SdfSampling(pool=4000, seed=4))
    assert not torch.equal(other.coords, signal.coords)
    assert "2000 on the surface" in signal.note
    with pytest.raises(SignalError, match="add up to 1"):
        sdf_signal("sphere", SdfSampling(pool=100, surface=0.5, near=0.5, uniform=0.5))


def test_occupancy_targets():
    signal = sdf_signal("torus", SdfSampling(pool=3000, seed=1), target="occupancy")
    assert signal.sdf.target == "occupancy" and "occupancy" in signal.note
    coords, values = signal.coords.numpy(), signal.values.numpy()[:, 0]
    assert set(np.unique(values)) == {0.0, 1.0}
    assert np.array_equal(values == 1.0, ANALYTIC_SHAPES["torus"].sdf(coords) < 0)
    distance = np.abs(ANALYTIC_SHAPES["torus"].sdf(coords))
    assert (distance > 1e-6).all(), "no sample sits exactly on the boundary"
    assert np.mean(distance < 0.06) > 0.8  # 7/8 near the surface, with the wider noise
    with pytest.raises(SignalError, match="unknown target"):
        sdf_signal("torus", target="colour")


def test_mesh_shapes_give_signals_with_exact_targets_near_the_surface():
    signal = sdf_signal("pawn", SdfSampling(pool=3000))
    truth = signal.sdf
    assert truth.exact and "watertight" in truth.note and "scaled" in truth.note
    assert np.abs(truth.vertices).max() == pytest.approx(0.85, abs=1e-6)
    coords, values = signal.coords.numpy().astype(np.float64), signal.values.numpy()[:, 0]
    check = np.flatnonzero((values != 0) & (np.abs(values) < 0.04))[:200]
    reference = brute_force_unsigned(truth.vertices, truth.faces, coords[check])
    assert np.allclose(np.abs(values[check]), reference, atol=1e-5)
    winding = brute_force_winding(truth.vertices, truth.faces, coords[check])
    assert np.array_equal(values[check] < 0, winding > 0.5)
    normals, points = truth.surface_normals, truth.surface_points
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    outward = points[:200] + 0.005 * normals[:200]
    assert (truth.sdf(outward) > 0).all()


@pytest.mark.parametrize("case", ["random.ply", "empty.obj", "png.stl", "missing.off", "folder.obj", "flat.obj"])
def test_bad_mesh_files_are_one_line_errors_naming_the_file(tmp_path, case):
    path = tmp_path / case
    if case == "random.ply":
        path.write_bytes(_rng(8).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif case == "empty.obj":
        path.write_bytes(b"")
    elif case == "png.stl":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    elif case == "folder.obj":
        path.mkdir()
    elif case == "flat.obj":
        path.write_text("v 1 1 1\nv 1 1 1\nv 1 1 1\nf 1 2 3\n")
    with pytest.raises(SignalError) as error:
        sdf_signal(str(path))
    message = str(error.value)
    assert case in message and "\n" not in message
    expected = {"random.ply": "not a readable mesh", "empty.obj": "empty", "png.stl": "PNG image",
                "missing.off": "no such file", "folder.obj": "folder", "flat.obj": "zero size"}[case]
    assert expected in message


def test_unknown_shape_lists_the_shapes():
    with pytest.raises(SignalError) as error:
        sdf_signal("spheer")
    assert "spheer" in str(error.value) and "bumpy-sphere" in str(error.value) and "pawn" in str(error.value)
    with pytest.raises(SignalError):
        load_mesh_file("picture.png")


def test_mesh_file_formats_load_and_scenes_concatenate(tmp_path):
    mesh = trimesh.creation.icosphere(subdivisions=1)
    for suffix in (".obj", ".ply", ".stl", ".off", ".glb"):
        path = tmp_path / f"ball{suffix}"
        mesh.export(path)
        loaded = load_mesh_file(path)
        assert len(loaded.faces) == 80 and loaded.is_watertight, suffix
    scene = trimesh.Scene([mesh, trimesh.creation.box().apply_translation((3, 0, 0))])
    scene.export(tmp_path / "two.glb")
    assert len(load_mesh_file(tmp_path / "two.glb").faces) == 80 + 12
    nan = tmp_path / "nan.obj"
    nan.write_text("v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(SignalError, match="nan.obj: has NaN"):
        load_mesh_file(nan)


def test_bundled_and_primitive_meshes_are_closed():
    for name, path in BUNDLED_MESHES.items():
        assert path.stat().st_size < 300 * 1024, name
        mesh = load_mesh_file(path)
        assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0, name
        assert edge_counts(mesh.faces) == (0, 0)
    for name in PRIMITIVES:
        assert primitive_mesh(name).is_watertight, name


def test_normalise_and_simplify():
    box = trimesh.creation.box(extents=(10.0, 4.0, 2.0)).apply_translation((100.0, -5.0, 3.0))
    normalised, note = normalise_mesh(box)
    lo, hi = normalised.bounds
    assert np.allclose(lo, [-0.85, -0.34, -0.17]) and np.allclose(hi, [0.85, 0.34, 0.17])
    assert "10 x 4 x 2" in note
    dense = trimesh.creation.icosphere(subdivisions=5, radius=0.8)
    simple, note = simplify_mesh(dense, max_faces=4000)
    assert 0 < len(simple.faces) <= 4000 and note.startswith(f"simplified from {len(dense.faces)} to ")
    assert np.abs(np.linalg.norm(simple.vertices, axis=1) - 0.8).max() < 0.02
    same, empty_note = simplify_mesh(simple, max_faces=4000)
    assert same is simple and empty_note == ""

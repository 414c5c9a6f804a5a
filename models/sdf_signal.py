"""3D signed-distance targets: analytic shapes, trimesh primitives, bundled meshes and the user's mesh files.

``sdf_signal`` returns a ``Signal`` of kind 'sdf': a pool of points in [-1, 1]^3 drawn once (the trainer
takes minibatches from it) with their true signed distance (negative inside) or occupancy, plus an
``SdfTarget`` with the ground truth (a callable SDF, the true surface mesh, surface samples for Chamfer).
The sampling follows the ResFields TSDF recipe: half the points on the surface, 3/8 near it (Gaussian noise
0.01), 1/8 uniform in the cube.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from models.mesh_files import (
    BUNDLED_MESHES,
    MESH_SUFFIXES,
    PRIMITIVES,
    load_mesh_file,
    normalise_mesh,
    primitive_mesh,
    simplify_mesh,
)
from models.sdf_mesh import (
    MeshSdf,
    UnsignedDistance,
)
from models.sdf_shapes import ANALYTIC_SHAPES, AnalyticShape
from models.signals import Signal, SignalError

_PRIMITIVE_NAMES = {(f"mesh-{p}" if p in ANALYTIC_SHAPES else p): p for p in PRIMITIVES}
SDF_SHAPES: tuple[str, ...] = tuple(ANALYTIC_SHAPES) + tuple(_PRIMITIVE_NAMES) + tuple(BUNDLED_MESHES)
"""Every built-in shape name: the analytic shapes, the trimesh primitives, the bundled meshes."""
SDF_TARGETS = ("sdf", "occupancy")
GROUND_TRUTH_RESOLUTION = 160
"""Marching-cubes grid for the analytic shapes' ground-truth meshes (vertices ~0.0126 apart)."""
SURFACE_SAMPLES = 100_000
OCCUPANCY_MIN_SIGMA = 0.02


@dataclass(frozen=True)
class SdfSampling:
    """How the pool of training points is drawn (the fractions add up to 1)."""

    pool: int = 200_000
    """Samples drawn once; the trainer takes minibatches from them."""
    surface: float = 0.5
    """Fraction exactly on the surface (target 0; ResFields TSDF recipe)."""
    near: float = 0.375
    """Fraction on the surface plus N(0, near_sigma^2) noise per coordinate."""
    uniform: float = 0.125
    """Fraction uniform in the cube [-1, 1]^3."""
    near_sigma: float = 0.01
    """Standard deviation of the near samples' offset from the surface."""
    seed: int = 0
    """Seed of the pool (the same seed gives the same pool)."""


@dataclass(frozen=True, eq=False)
class SdfTarget:
    """The ground truth of a 3D target (for kind 'sdf' signals)."""

    name: str
    label: str
    exact: bool
    """Analytic shapes: the formula is the exact distance; meshes: the mesh is watertight (reliable sign)."""
    sdf: Callable[[np.ndarray], np.ndarray]
    """True signed distance at any points (N, 3) -> (N,) float32, negative inside."""
    unsigned: Callable[[np.ndarray], np.ndarray]
    """|distance to the true surface| (for colouring mesh vertices by error)."""
    vertices: np.ndarray
    """Ground-truth surface mesh, float32 (V, 3), read-only."""
    faces: np.ndarray
    """int32 (F, 3), outward (counter-clockwise seen from outside)."""
    surface_points: np.ndarray
    """(S, 3) float32, ~100k area-weighted samples on the true surface (for Chamfer)."""
    surface_normals: np.ndarray
    """(S, 3) float32 unit outward normals at ``surface_points``."""
    target: str
    """'sdf' or 'occupancy'."""
    note: str
    """How it was prepared (mesh normalised/simplified, sign method, exactness)."""
    inside_fn: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    """Faster inside test than ``sdf < 0`` when there is one."""

    def inside(self, points) -> np.ndarray:
        """Boolean (N,): the points inside the shape."""
        p = np.asarray(points).reshape(-1, 3)
        if self.inside_fn is not None:
            return np.asarray(self.inside_fn(p), dtype=bool)
        return self.sdf(p) < 0


def is_sdf_source(source: str | os.PathLike) -> bool:
    """A built-in shape name, or a path with a mesh suffix (.obj .ply .stl .glb .gltf .off)."""
    source = os.fspath(source)
    return source in SDF_SHAPES or os.path.splitext(source)[1].lower() in MESH_SUFFIXES


def _read_only(array: np.ndarray, dtype) -> np.ndarray:
    out = np.ascontiguousarray(array, dtype=dtype)
    out.setflags(write=False)
    return out


def _area_samples(vertices: np.ndarray, faces: np.ndarray, count: int, rng: np.random.Generator):
    """``count`` uniform samples on the mesh surface: (points float64 (count, 3), face index (count,))."""
    tris = vertices[faces]
    areas = 0.5 * np.linalg.norm(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]), axis=1)
    cumulative = np.cumsum(areas)
    face = np.minimum(np.searchsorted(cumulative, rng.random(count) * cumulative[-1], side="right"), len(faces) - 1)
    r1, r2 = np.sqrt(rng.random(count)), rng.random(count)
    w = np.stack([1.0 - r1, r1 * (1.0 - r2), r1 * r2], axis=1)
    return np.einsum("nk,nkd->nd", w, tris[face]), face


def _gradient(fn: Callable[[np.ndarray], np.ndarray], p: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Central finite differences in float64, (N, 3)."""
    grad = np.empty_like(p)
    for axis in range(3):
        step = np.zeros(3)
        step[axis] = eps
        grad[:, axis] = (fn(p + step).astype(np.float64) - fn(p - step).astype(np.float64)) / (2 * eps)
    return grad


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def _project(shape: AnalyticShape, p: np.ndarray, steps: int = 3) -> np.ndarray:
    """Newton steps onto the zero set of an exact SDF: p - f(p) grad f / |grad f|^2."""
    for _ in range(steps):
        value = shape.fn(p).astype(np.float64)
        grad = _gradient(shape.fn, p)
        p = p - (value / np.maximum((grad * grad).sum(1), 1e-12))[:, None] * grad
    return p


def _marching_cubes(shape: AnalyticShape, res: int) -> tuple[np.ndarray, np.ndarray]:
    from skimage.measure import marching_cubes

    volume = shape.grid(res)
    step = 2.0 / (res - 1)
    vertices, faces, _, _ = marching_cubes(volume, 0.0, spacing=(step, step, step), allow_degenerate=False)
    vertices = vertices.astype(np.float64) - 1.0
    faces = faces.astype(np.int64)
    tris = vertices[faces]
    if np.einsum("ij,ij->i", tris[:, 0], np.cross(tris[:, 1], tris[:, 2])).sum() < 0:
        faces = faces[:, ::-1].copy()  # make the faces outward
    return vertices, faces


def _analytic_target(shape: AnalyticShape) -> SdfTarget:
    res = GROUND_TRUTH_RESOLUTION
    vertices, faces = _marching_cubes(shape, res)
    rng = np.random.default_rng(1234)
    points, _ = _area_samples(vertices, faces, SURFACE_SAMPLES, rng)
    if shape.exact:
        points = _project(shape, points)
        sdf, unsigned = shape.sdf, (lambda p: np.abs(shape.sdf(p)))
        note = (f"exact analytic signed distance; ground-truth mesh: marching cubes at {res}^3 ({len(faces)} faces)"
                " for display and Chamfer")
    else:
        distance = UnsignedDistance(vertices[faces], k=12)

        def unsigned(p: np.ndarray) -> np.ndarray:
            return distance(p).astype(np.float32)

        def sdf(p: np.ndarray) -> np.ndarray:
            p = np.asarray(p, dtype=np.float64).reshape(-1, 3)
            return (np.sign(shape.sdf(p)) * distance(p)).astype(np.float32)

        note = (f"{shape.note}; so the targets are the distances to a marching-cubes mesh ({res}^3, {len(faces)} "
                f"faces; exact up to {distance.error_bound:.2g}, in practice to 1e-6) with the sign of the formula")
    normals = _unit(_gradient(shape.fn, points))
    return SdfTarget(shape.name, shape.label, shape.exact, sdf, unsigned, _read_only(vertices, np.float32),
                     _read_only(faces, np.int32), _read_only(points, np.float32), _read_only(normals, np.float32),
                     "sdf", note, inside_fn=lambda p: shape.sdf(p) < 0)


def _mesh_target(mesh, name: str, kind: str) -> SdfTarget:
    """Normalise (and simplify) a mesh; the distances and signs come from a ``MeshSdf``."""
    mesh, normalised = normalise_mesh(mesh, name=name)
    mesh, simplified = simplify_mesh(mesh)
    distance = MeshSdf(mesh)
    return mesh_distance_target(distance, name, f"{name} ({kind}, {len(distance.faces)} faces)",
                                (normalised, simplified))


def mesh_distance_target(distance: MeshSdf, name: str, label: str, notes: tuple[str, ...] = ()) -> SdfTarget:
    """The ground truth of a prepared mesh: its distances and signs (``distance``), surface samples and normals;
    ``notes`` (how the mesh was prepared) lead the target's note."""
    vertices, faces = distance.vertices, distance.faces
    points, face = _area_samples(vertices, faces, SURFACE_SAMPLES, np.random.default_rng(1234))
    tris = vertices[faces]
    normals = _unit(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]))[face]
    exactness = (f"distances exact within {distance.refine_band} of the surface, at most "
                 f"{distance.error_bound:.2g} over beyond")
    note = "; ".join(n for n in (*notes, distance.sign_note, exactness) if n)
    return SdfTarget(name, label, distance.watertight, distance.sdf, distance.unsigned,
                     _read_only(vertices, np.float32), _read_only(faces, np.int32), _read_only(points, np.float32),
                     _read_only(normals, np.float32), "sdf", note, inside_fn=distance.inside)


@functools.lru_cache(maxsize=4)
def _named_target(name: str) -> SdfTarget:
    if name in ANALYTIC_SHAPES:
        return _analytic_target(ANALYTIC_SHAPES[name])
    if name in _PRIMITIVE_NAMES:
        primitive = _PRIMITIVE_NAMES[name]
        return _mesh_target(primitive_mesh(primitive), name, "trimesh primitive")
    return _mesh_target(load_mesh_file(BUNDLED_MESHES[name]), name, "bundled mesh")


def sdf_target(source: str | os.PathLike) -> SdfTarget:
    """The ground truth for a shape name or a mesh file (targets 'sdf'); any failure is a SignalError."""
    source = os.fspath(source)
    if not source:
        raise SignalError("no shape given: pass a shape name or a mesh file")
    if source in SDF_SHAPES:
        return _named_target(source)
    if os.path.splitext(source)[1].lower() in MESH_SUFFIXES or os.path.exists(source):
        label = os.path.basename(source.rstrip("/\\")) or source
        return _mesh_target(load_mesh_file(source), label, "mesh file")
    raise SignalError(f"unknown shape {source!r}: not one of {', '.join(SDF_SHAPES)}, nor a mesh file "
                      f"({', '.join(MESH_SUFFIXES)})")


def _split(sampling: SdfSampling) -> tuple[int, int, int]:
    fractions = (sampling.surface, sampling.near, sampling.uniform)
    if min(fractions) < 0 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise SignalError(f"sample fractions must be >= 0 and add up to 1, got {fractions}")
    if sampling.pool < 1:
        raise SignalError(f"the sample pool must hold at least one point, got {sampling.pool}")
    surface = round(sampling.pool * sampling.surface)
    near = min(round(sampling.pool * sampling.near), sampling.pool - surface)
    return surface, near, sampling.pool - surface - near


def sample_pool(target: SdfTarget, sampling: SdfSampling = SdfSampling(), kind: str = "sdf"):
    """(points float32 (pool, 3), values float32 (pool,)) drawn as ``sampling`` says, shuffled.

    For 'occupancy' (1 inside, 0 outside) points exactly on the surface carry no information, so the
    surface share is drawn as near samples, with a noise of at least 0.02."""
    if kind not in SDF_TARGETS:
        raise SignalError(f"unknown target {kind!r} (one of {', '.join(SDF_TARGETS)})")
    n_surface, n_near, n_uniform = _split(sampling)
    sigma = sampling.near_sigma
    if kind == "occupancy":
        n_surface, n_near, sigma = 0, n_surface + n_near, max(sigma, OCCUPANCY_MIN_SIGMA)
    rng = np.random.default_rng(sampling.seed)
    vertices, faces = target.vertices.astype(np.float64), target.faces.astype(np.int64)
    surface, _ = _area_samples(vertices, faces, n_surface, rng)
    shape = ANALYTIC_SHAPES.get(target.name)
    if shape is not None and shape.exact and target.sdf == shape.sdf:
        surface = _project(shape, surface)  # onto the exact surface, not the marching-cubes facets
    base, _ = _area_samples(vertices, faces, n_near, rng)
    near = np.clip(base + rng.normal(0.0, sigma, base.shape), -1.0, 1.0)
    uniform = rng.uniform(-1.0, 1.0, (n_uniform, 3))
    off_surface = np.concatenate([near, uniform])
    if kind == "sdf":
        off_values = target.sdf(off_surface).astype(np.float64)
    else:
        off_values = target.inside(off_surface).astype(np.float64)
    values = np.concatenate([np.zeros(n_surface), off_values])
    points = np.concatenate([surface, off_surface])
    order = rng.permutation(len(points))
    return points[order].astype(np.float32), values[order].astype(np.float32)


def sdf_signal(source: str | os.PathLike, sampling: SdfSampling = SdfSampling(), target: str = "sdf") -> Signal:
    """A 3D target by shape name (``SDF_SHAPES``) or mesh file path, as a Signal of kind 'sdf'.

    ``coords`` (pool, 3) are in [-1, 1]^3, ``values`` (pool, 1) the signed distance (target 'sdf') or the
    occupancy 1.0 inside / 0.0 outside (target 'occupancy'); ``signal.sdf`` holds the ground truth."""
    if target not in SDF_TARGETS:
        raise SignalError(f"unknown target {target!r} (one of {', '.join(SDF_TARGETS)})")
    truth = sdf_target(source)
    if target != truth.target:
        truth = dataclasses.replace(truth, target=target)
    points, values = sample_pool(truth, sampling, target)
    n_surface, n_near, n_uniform = _split(sampling)
    if target == "sdf":
        drawn = (f"{sampling.pool} points: {n_surface} on the surface, {n_near} near it (sigma {sampling.near_sigma}),"
                 f" {n_uniform} uniform")
    else:
        drawn = (f"{sampling.pool} points for occupancy: {n_surface + n_near} near the surface (sigma "
                 f"{max(sampling.near_sigma, OCCUPANCY_MIN_SIGMA)}), {n_uniform} uniform")
    pool = len(points)
    return Signal(truth.name, "sdf", (pool,), 1, torch.from_numpy(points), torch.from_numpy(values).reshape(-1, 1),
                  (1.0, 1.0, 1.0), f"{drawn}; {truth.note}", (pool,), truth)

"""Temporal 3D signed-distance targets f(x, y, z, t): built-in animated shapes and folders of mesh frames.

``temporal_sdf_signal`` returns a ``Signal`` of kind 'sdf-time': per frame the same number of points drawn
as for a static 3D target (ResFields TSDF recipe: 1/2 on the surface, 3/8 near it, 1/8 uniform in the cube),
stored frame-major with coordinates (x, y, z, t), plus per frame an ``SdfTarget`` (the static 3D ground truth
class, built on first request and cached; frame 0's goes into ``Signal.sdf``).

* ``morph``: a sphere (radius 0.6) turns into a torus (radii 0.5 and 0.2) through the blend
  (1 - a) sphere + a torus, a = smoothstep. The blend is not a distance (|grad| falls to ~0.4 near the
  surface mid-way), so the targets are the exact distances to its zero set: the shape is a surface of
  revolution about z, so the distance is the 2D distance from (|xy|, z) to the profile curve, a polyline
  (segments <= 5e-4) projected onto the zero set by Newton steps (error ~1e-6). The sign is the blend's.
* ``bounce``: a rounded box bouncing along parabolic arcs while turning about a tilted axis: a rigid
  motion, so the static box's exact distance at the inverse-moved point is exact.
* A folder of mesh files: one frame per file (natural order), all normalised with one common centre and
  scale (so the motion is kept), distances and signs from ``MeshSdf``.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import threading
from collections.abc import Callable

import numpy as np
import torch

from models.mesh_files import HALF_EXTENT, MESH_SUFFIXES, load_mesh_file, simplify_mesh
from models.sdf_mesh import MeshSdf
from models.sdf_shapes import SPHERE_RADIUS, TORUS_RADII, AnalyticShape, _rounded_box
from models.sdf_signal import (
    GROUND_TRUTH_RESOLUTION,
    OCCUPANCY_MIN_SIGMA,
    SDF_TARGETS,
    SURFACE_SAMPLES,
    SdfSampling,
    SdfTarget,
    _analytic_target,
    _area_samples,
    _marching_cubes,
    _project,
    _read_only,
    _split,
    _unit,
    mesh_distance_target,
)
from models.signals import IMAGE_SUFFIXES, Signal, SignalError, TimeAxis

TIME_SHAPES = ("morph", "bounce")
"""Built-in temporal shapes."""
DEFAULT_TIME_SHAPE = "morph"
DEFAULT_FRAMES = 16
DEFAULT_SAMPLES_PER_FRAME = 16384
FPS = 8.0
"""Playback rate of the generated sequences and of mesh folders."""


def _frame_samples(surface: Callable, value: Callable, inside: Callable, count: int, seed: int, kind: str):
    """One frame's points (float32 (count, 3)) and targets (float32 (count,)), as ``sample_pool`` draws them.
    ``surface(n, rng)`` gives n points exactly on the surface (target 0); ``value``/``inside`` evaluate points."""
    sampling = SdfSampling(pool=count, seed=seed)
    n_surface, n_near, n_uniform = _split(sampling)
    sigma = sampling.near_sigma
    if kind == "occupancy":  # points on the boundary carry no information: draw them near it, wider
        n_surface, n_near, sigma = 0, n_surface + n_near, max(sigma, OCCUPANCY_MIN_SIGMA)
    rng = np.random.default_rng(seed)
    on = surface(n_surface, rng).reshape(-1, 3)
    base = surface(n_near, rng).reshape(-1, 3)
    off = np.concatenate([np.clip(base + rng.normal(0.0, sigma, base.shape), -1.0, 1.0),
                          rng.uniform(-1.0, 1.0, (n_uniform, 3))])
    off_values = value(off) if kind == "sdf" else inside(off)
    points = np.concatenate([on, off])
    values = np.concatenate([np.zeros(len(on)), np.asarray(off_values, dtype=np.float64)])
    order = rng.permutation(len(points))
    return points[order].astype(np.float32), values[order].astype(np.float32)


# --- morph: sphere -> torus, exact distances through the profile of a surface of revolution ---------------

MORPH_GRID = (257, 513)
"""Marching-squares grid of the profile over r in [0, 1], z in [-1, 1] (only the starting curve)."""
MORPH_SEGMENT = 5e-4
"""Longest segment of the projected profile polyline (chord error <= L^2 / 8R, ~1e-6 here)."""


def morph_weight(t: float) -> float:
    """The torus share a(t) of the morph: smoothstep from 0 at t = -1 (sphere) to 1 at t = 1 (torus)."""
    u = min(max((float(t) + 1.0) * 0.5, 0.0), 1.0)
    return u * u * (3.0 - 2.0 * u)


class _Profile:
    """The morph's zero set at one weight a, as a polyline in the (r, z) half-plane (r = |(x, y)| >= 0)."""

    def __init__(self, a: float):
        from scipy.spatial import cKDTree
        from skimage.measure import find_contours

        self.a = a
        n_r, n_z = MORPH_GRID
        values = self.blend(np.linspace(0.0, 1.0, n_r)[:, None], np.linspace(-1.0, 1.0, n_z)[None, :])
        starts, ends = [], []
        for contour in find_contours(values, 0.0):
            rz = self.project(np.column_stack([contour[:, 0] / (n_r - 1), contour[:, 1] * 2.0 / (n_z - 1) - 1.0]))
            lengths = np.linalg.norm(np.diff(rz, axis=0), axis=1)
            pieces = np.maximum(1, np.ceil(lengths / MORPH_SEGMENT)).astype(np.int64)
            segment = np.repeat(np.arange(len(lengths)), pieces)
            step = (np.arange(pieces.sum()) - np.repeat(np.cumsum(pieces) - pieces, pieces)) / pieces[segment]
            dense = rz[segment] + step[:, None] * (rz[segment + 1] - rz[segment])
            dense = self.project(np.concatenate([dense, rz[-1:]]))
            starts.append(dense[:-1]), ends.append(dense[1:])
        if not starts:
            raise SignalError(f"morph: the shape vanished at weight {a:.3g}")
        self.start = np.concatenate(starts)
        self.edge = np.concatenate(ends) - self.start
        self.inv_len2 = 1.0 / np.maximum((self.edge ** 2).sum(1), 1e-30)
        self.tree = cKDTree(self.start + 0.5 * self.edge)
        self.segments = len(self.start)

    def blend(self, r, z):
        """(1 - a) sphere + a torus as a function of (r, z)."""
        sphere = np.sqrt(r * r + z * z) - SPHERE_RADIUS
        torus = np.sqrt((r - TORUS_RADII[0]) ** 2 + z * z) - TORUS_RADII[1]
        return (1.0 - self.a) * sphere + self.a * torus

    def gradient(self, r, z):
        """(d blend / dr, d blend / dz)."""
        ls = np.maximum(np.sqrt(r * r + z * z), 1e-12)
        lt = np.maximum(np.sqrt((r - TORUS_RADII[0]) ** 2 + z * z), 1e-12)
        return ((1 - self.a) * r / ls + self.a * (r - TORUS_RADII[0]) / lt, (1 - self.a) * z / ls + self.a * z / lt)

    def project(self, rz: np.ndarray, steps: int = 4) -> np.ndarray:
        """Newton steps onto the zero set; points on the axis (curve ends) move along it only."""
        rz = np.array(rz, dtype=np.float64)
        on_axis = rz[:, 0] <= 0.0
        for _ in range(steps):
            value = self.blend(rz[:, 0], rz[:, 1])
            gr, gz = self.gradient(rz[:, 0], rz[:, 1])
            gr = np.where(on_axis, 0.0, gr)
            scale = value / np.maximum(gr * gr + gz * gz, 1e-12)
            rz[:, 0] = np.abs(rz[:, 0] - scale * gr)
            rz[:, 1] -= scale * gz
        return rz

    def unsigned(self, rz: np.ndarray, k: int = 8, chunk: int = 65536) -> np.ndarray:
        """2D distance to the polyline: exact distances to the segments of the k nearest midpoints (off by at most
        half a segment where the nearest segment's midpoint is not among them; in practice exact)."""
        out = np.empty(len(rz))
        k = min(k, self.segments)
        for lo in range(0, len(rz), chunk):
            q = rz[lo:lo + chunk]
            idx = self.tree.query(q, k=k)[1].reshape(len(q), k)
            wr, wz = q[:, :1] - self.start[idx, 0], q[:, 1:] - self.start[idx, 1]
            er, ez = self.edge[idx, 0], self.edge[idx, 1]
            s = np.clip((wr * er + wz * ez) * self.inv_len2[idx], 0.0, 1.0)
            wr -= s * er
            wz -= s * ez
            out[lo:lo + chunk] = np.sqrt((wr * wr + wz * wz).min(axis=1))
        return out

    def sdf(self, points) -> np.ndarray:
        """Signed distance in 3D (float32 (N,)): the nearest surface point lies in the point's own meridian plane."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        r = np.hypot(p[:, 0], p[:, 1])
        distance = self.unsigned(np.column_stack([r, p[:, 2]]))
        return np.where(self.blend(r, p[:, 2]) < 0, -distance, distance).astype(np.float32)

    def inside(self, points) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        return self.blend(np.hypot(p[:, 0], p[:, 1]), p[:, 2]) < 0

    def surface(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """Area-uniform points on the surface of revolution (float64 (count, 3))."""
        r0, r1 = self.start[:, 0], self.start[:, 0] + self.edge[:, 0]
        cumulative = np.cumsum((r0 + r1) * np.sqrt(1.0 / self.inv_len2))  # frustum areas / pi
        pick = np.minimum(np.searchsorted(cumulative, rng.random(count) * cumulative[-1], side="right"),
                          self.segments - 1)
        u, a, b = rng.random(count), r0[pick], r1[pick]
        s = u * (a + b) / np.maximum(a + np.sqrt(np.maximum(a * a + (b * b - a * a) * u, 0.0)), 1e-30)  # density ~ r
        rz = self.project(self.start[pick] + s[:, None] * self.edge[pick], steps=2)
        phi = rng.uniform(0.0, 2.0 * math.pi, count)
        return np.column_stack([rz[:, 0] * np.cos(phi), rz[:, 0] * np.sin(phi), rz[:, 1]])

    def normals(self, points: np.ndarray) -> np.ndarray:
        r = np.hypot(points[:, 0], points[:, 1])
        gr, gz = self.gradient(r, points[:, 2])
        scale = gr / np.maximum(r, 1e-12)
        return _unit(np.column_stack([points[:, 0] * scale, points[:, 1] * scale, gz]))

    def grid(self, res: int) -> np.ndarray:
        """The blend on the (res, res, res) grid, indexed [x, y, z] (for marching cubes)."""
        axis = np.linspace(-1.0, 1.0, res, dtype=np.float32)
        r = np.sqrt(axis[:, None, None] ** 2 + axis[None, :, None] ** 2)
        return self.blend(r, axis[None, None, :]).astype(np.float32)


@functools.lru_cache(maxsize=32)
def _morph_profile(a: float) -> _Profile:
    return _Profile(a)


def morph_truth(points, t: float) -> np.ndarray:
    """The morph's exact signed distance (float32 (N,)) at any t in [-1, 1] (to ~1e-6, see ``_Profile``)."""
    return _morph_profile(morph_weight(t)).sdf(points)


def _morph_target(t: float, label: str) -> SdfTarget:
    profile = _morph_profile(morph_weight(t))
    shape = AnalyticShape("morph", label, True, "", profile.sdf, profile.grid)
    vertices, faces = _marching_cubes(shape, GROUND_TRUTH_RESOLUTION)
    points = profile.surface(SURFACE_SAMPLES, np.random.default_rng(1234))
    note = (f"exact distance to the zero set of the blend (2D distance to its profile curve, {profile.segments} "
            f"segments, error ~1e-6), sign of the blend; mesh: marching cubes at {GROUND_TRUTH_RESOLUTION}^3")
    return SdfTarget("morph", label, True, profile.sdf, lambda p: np.abs(profile.sdf(p)),
                     _read_only(vertices, np.float32), _read_only(faces, np.int32), _read_only(points, np.float32),
                     _read_only(profile.normals(points), np.float32), "sdf", note, inside_fn=profile.inside)


# --- bounce: a rigid rounded box ---------------------------------------------------------------------------

BOUNCE_HALF = (0.3, 0.22, 0.15)
BOUNCE_ROUNDING = 0.04
BOUNCE_AXIS = np.array([1.0, 0.5, 2.0]) / math.sqrt(5.25)
BOUNCE_TURNS = 0.75
BOUNCES = 2
BOUNCE_HEIGHTS = (-0.4, 0.4)
"""Centre height at contact and at the top of each arc."""
BOUNCE_DRIFT = (0.35, 0.1)
"""Centre x runs from -0.35 to 0.35; y sways by +-0.1. With the box's bounding radius (0.40) all stays
within the bound 0.85."""


def bounce_motion(t: float) -> tuple[np.ndarray, np.ndarray]:
    """(rotation (3, 3) local -> world, centre (3,)) of the box at time t."""
    u = min(max((float(t) + 1.0) * 0.5, 0.0), 1.0)
    phase = (BOUNCES * u) % 1.0
    low, high = BOUNCE_HEIGHTS
    centre = np.array([BOUNCE_DRIFT[0] * (2 * u - 1), BOUNCE_DRIFT[1] * math.sin(2 * math.pi * u),
                       low + (high - low) * 4.0 * phase * (1.0 - phase)])
    angle = 2.0 * math.pi * BOUNCE_TURNS * u
    k = np.array([[0, -BOUNCE_AXIS[2], BOUNCE_AXIS[1]], [BOUNCE_AXIS[2], 0, -BOUNCE_AXIS[0]],
                  [-BOUNCE_AXIS[1], BOUNCE_AXIS[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k), centre  # Rodrigues


def _box(p: np.ndarray) -> np.ndarray:
    return _rounded_box(p, BOUNCE_HALF, BOUNCE_ROUNDING)


def _box_grid(res: int) -> np.ndarray:
    """The box on the grid, evaluated only on the block around it (the rest is clamped to +0.1)."""
    axis = np.linspace(-1.0, 1.0, res, dtype=np.float32)
    block = np.flatnonzero(np.abs(axis) <= BOUNCE_REACH + 0.05)
    out = np.full((res, res, res), 0.1, dtype=np.float32)
    points = np.stack(np.meshgrid(axis[block], axis[block], axis[block], indexing="ij"), axis=-1).reshape(-1, 3)
    out[np.ix_(block, block, block)] = _box(points).reshape(len(block), len(block), len(block))
    return out


BOUNCE_REACH = float(np.linalg.norm(BOUNCE_HALF))
"""Every point of the box lies within this distance of its centre."""
BOUNCE_SHAPE = AnalyticShape("bounce", f"rounded box (half sizes {' x '.join(map(str, BOUNCE_HALF))}, edge radius "
                                       f"{BOUNCE_ROUNDING})", True, "", _box, _box_grid)


def bounce_truth(points, t: float) -> np.ndarray:
    """Exact signed distance (float32 (N,)) of the bouncing box at any t: the static one at R^T (p - c)."""
    rotation, centre = bounce_motion(t)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return BOUNCE_SHAPE.sdf((p - centre) @ rotation)


@functools.lru_cache(maxsize=1)
def _bounce_static() -> SdfTarget:
    return _analytic_target(BOUNCE_SHAPE)


def _bounce_surface(t: float):
    rotation, centre = bounce_motion(t)
    static = _bounce_static()
    vertices, faces = static.vertices.astype(np.float64), static.faces.astype(np.int64)

    def surface(count: int, rng: np.random.Generator) -> np.ndarray:
        points, _ = _area_samples(vertices, faces, count, rng)
        return _project(BOUNCE_SHAPE, points, steps=1) @ rotation.T + centre  # exact SDF: one step
    return surface


def _bounce_target(t: float, label: str) -> SdfTarget:
    rotation, centre = bounce_motion(t)
    static = _bounce_static()

    def sdf(p):
        return bounce_truth(p, t)

    def moved(points):
        return _read_only(points.astype(np.float64) @ rotation.T + centre, np.float32)
    return dataclasses.replace(
        static, label=label, sdf=sdf, unsigned=lambda p: np.abs(sdf(p)), vertices=moved(static.vertices),
        surface_points=moved(static.surface_points), inside_fn=lambda p: sdf(p) < 0,
        surface_normals=_read_only(static.surface_normals.astype(np.float64) @ rotation.T, np.float32),
        note=f"exact analytic signed distance (rigid motion of the static box); {static.note.split('; ')[-1]}")


# --- mesh folders ------------------------------------------------------------------------------------------

def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _folder_files(folder: str, suffixes: tuple[str, ...]) -> list[str]:
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted((n for n in names if os.path.splitext(n)[1].lower() in suffixes
                   and os.path.isfile(os.path.join(folder, n))), key=_natural_key)


def _mesh_frames(folder: str, frames: int):
    """(labels, MeshSdf per frame, note) for a folder of mesh files, normalised together."""
    import trimesh

    label = os.path.basename(os.path.normpath(folder)) or folder
    if not os.path.exists(folder):
        if os.sep in folder or (os.altsep or os.sep) in folder:
            raise SignalError(f"{folder}: no such folder")
        raise SignalError(f"{folder}: not a temporal shape ({', '.join(TIME_SHAPES)}) nor a folder of mesh files")
    if not os.path.isdir(folder):
        raise SignalError(f"{label}: not a folder (a mesh sequence is a folder with one mesh file per frame)")
    files = _folder_files(folder, MESH_SUFFIXES)
    if not files:
        empty = not os.listdir(folder)
        raise SignalError(f"{label}: {'folder is empty' if empty else 'no mesh files in the folder'} "
                          f"(expected {', '.join(MESH_SUFFIXES)})")
    picks = np.unique(np.round(np.linspace(0, len(files) - 1, min(frames, len(files)))).astype(int))
    chosen = [files[i] for i in picks]  # evenly spaced, at most ``frames``
    meshes = []
    for name in chosen:
        try:
            meshes.append(load_mesh_file(os.path.join(folder, name)))
        except SignalError as exc:
            raise SignalError(f"{label}/{exc}") from None
    every = np.concatenate([np.asarray(m.vertices, dtype=np.float64) for m in meshes])
    lo, hi = every.min(axis=0), every.max(axis=0)
    longest = float((hi - lo).max())
    if not longest > 0.0:
        raise SignalError(f"{label}: the meshes have zero size (all vertices coincide)")
    scale = 2.0 * HALF_EXTENT / longest
    distances, notes = [], []
    for mesh in meshes:
        moved = trimesh.Trimesh((np.asarray(mesh.vertices) - 0.5 * (lo + hi)) * scale, np.asarray(mesh.faces),
                                process=False)
        moved, simplified = simplify_mesh(moved)
        distances.append(MeshSdf(moved))
        notes += [simplified] if simplified else []
    leaky = sum(not d.watertight for d in distances)
    note = (f"{len(chosen)} of {len(files)} mesh files (natural order), all centred and scaled by {scale:.4g} "
            f"together (common bounding box {' x '.join(f'{x:.4g}' for x in hi - lo)}) to fit "
            f"[-{HALF_EXTENT}, {HALF_EXTENT}]^3; distances exact near the surface, sign from the winding number"
            + (f" ({leaky} of {len(meshes)} frames not watertight: holes make their sign approximate)" if leaky
               else " (every frame watertight)")
            + (f"; {len(notes)} frames simplified" if notes else ""))
    return label, chosen, distances, note


def _mesh_surface(distance: MeshSdf):
    vertices, faces = distance.vertices, distance.faces
    return lambda count, rng: _area_samples(vertices, faces, count, rng)[0]


# --- the signal --------------------------------------------------------------------------------------------

class FrameTargets:
    """frame k -> SdfTarget, built on first request and cached (thread-safe)."""

    def __init__(self, build: Callable[[int], SdfTarget], frames: int, target: str):
        self._build, self.frames, self._target = build, frames, target
        self._cache: dict[int, SdfTarget] = {}
        self._lock = threading.Lock()

    def __call__(self, frame: int) -> SdfTarget:
        frame = int(frame)
        if not 0 <= frame < self.frames:
            raise IndexError(f"frame {frame} out of range (0 to {self.frames - 1})")
        with self._lock:
            if frame not in self._cache:
                truth = self._build(frame)
                if truth.target != self._target:
                    truth = dataclasses.replace(truth, target=self._target)
                self._cache[frame] = truth
            return self._cache[frame]


def is_temporal_sdf_source(source: str | os.PathLike) -> bool:
    """A built-in temporal shape name, or a folder holding at least one mesh file and no image files."""
    source = os.fspath(source)
    if source in TIME_SHAPES:
        return True
    return (bool(source) and os.path.isdir(source) and bool(_folder_files(source, MESH_SUFFIXES))
            and not _folder_files(source, IMAGE_SUFFIXES))


def temporal_sdf_signal(source: str | os.PathLike = DEFAULT_TIME_SHAPE, frames: int = DEFAULT_FRAMES,
                        samples_per_frame: int = DEFAULT_SAMPLES_PER_FRAME, target: str = "sdf") -> Signal:
    """A temporal 3D target (``TIME_SHAPES`` name or a folder of mesh files) as a Signal of kind 'sdf-time':
    coords (T*P, 4) = (x, y, z, t) frame-major, values (T*P, 1) signed distances (negative inside, not
    rescaled) or occupancy 1 inside / 0 outside; frame targets via ``signal.time.frame_target``."""
    source = os.fspath(source)
    if target not in SDF_TARGETS:
        raise SignalError(f"unknown target {target!r} (one of {', '.join(SDF_TARGETS)})")
    if frames < 1 or samples_per_frame < 1:
        raise SignalError(f"need at least one frame and one sample per frame, got {frames} x {samples_per_frame}")
    if not source:
        raise SignalError("no temporal shape given: pass one of " + ", ".join(TIME_SHAPES) + " or a mesh folder")
    if source in TIME_SHAPES:
        name, truth_at = source, (morph_truth if source == "morph" else bounce_truth)
        times = TimeAxis(frames, samples_per_frame).times()
        if source == "morph":
            def label(k):
                return f"morph, frame {k + 1}/{frames} ({100 * morph_weight(times[k]):.0f}% torus)"

            def build(k):
                return _morph_target(times[k], label(k))

            def sampler(k):
                profile = _morph_profile(morph_weight(times[k]))
                return profile.surface, profile.sdf, profile.inside
            note = ("sphere (radius 0.6) into torus (radii 0.5, 0.2) by the blend (1 - a) sphere + a torus, a "
                    "smoothstep in t; the blend is no distance (|grad| down to ~0.4), so targets are the exact "
                    "distances to its zero set (2D distance to the profile of this surface of revolution, "
                    f"projected polyline, ~1e-6) with the blend's sign; frame meshes: marching cubes at "
                    f"{GROUND_TRUTH_RESOLUTION}^3 (built when first shown)")
        else:
            def build(k):
                return _bounce_target(times[k], f"bounce, frame {k + 1}/{frames}")

            def sampler(k):
                return _bounce_surface(times[k]), functools.partial(bounce_truth, t=times[k]), \
                    (lambda p, t=times[k]: bounce_truth(p, t) < 0)
            note = (f"{BOUNCE_SHAPE.label} on {BOUNCES} parabolic bounces, drifting in x, turning {BOUNCE_TURNS} "
                    "times about a tilted axis: a rigid motion, so the static box's formula at the inverse-moved "
                    "point is the exact signed distance")
    else:
        name, labels, distances, note = _mesh_frames(source, frames)
        frames, truth_at = len(distances), None

        def build(k):
            return mesh_distance_target(distances[k], name, f"{name}, frame {k + 1}/{frames}: {labels[k]} "
                                                     f"({len(distances[k].faces)} faces)")

        def sampler(k):
            return _mesh_surface(distances[k]), distances[k].sdf, distances[k].inside
    axis_times = TimeAxis(frames, samples_per_frame).times()
    coords = np.empty((frames * samples_per_frame, 4), dtype=np.float32)
    values = np.empty(frames * samples_per_frame, dtype=np.float32)
    for k in range(frames):
        rows = slice(k * samples_per_frame, (k + 1) * samples_per_frame)
        coords[rows, :3], values[rows] = _frame_samples(*sampler(k), samples_per_frame, seed=k, kind=target)
        coords[rows, 3] = axis_times[k]
    targets = FrameTargets(build, frames, target)
    n_surface, n_near, n_uniform = _split(SdfSampling(pool=samples_per_frame))
    drawn = (f"{frames} frames x {samples_per_frame} points ({n_surface} on the surface, {n_near} near it, "
             f"{n_uniform} uniform)" if target == "sdf" else
             f"{frames} frames x {samples_per_frame} points for occupancy ({n_surface + n_near} near the surface, "
             f"{n_uniform} uniform)")
    time = TimeAxis(frames, samples_per_frame, FPS, frame_target=targets, truth_at=truth_at)
    return Signal(name, "sdf-time", (frames, samples_per_frame), 1, torch.from_numpy(coords),
                  torch.from_numpy(values).reshape(-1, 1), (1.0, 1.0, 1.0, 1.0), f"{drawn}; {note}",
                  (frames, samples_per_frame), targets(0), time)

"""Triangle meshes of a 3D field's level set by marching cubes (scikit-image), densely or coarse-to-fine.

Domain and grid: the cube [-1, 1]^3 sampled at ``resolution`` cells per axis, i.e. the nodes
``grid_axis(resolution) = torch.linspace(-1, 1, resolution + 1)`` on every axis. A volume is indexed
``volume[i, j, k] = f(x_i, y_j, z_k)`` ('ij' order; x is the slowest axis of ``grid_points``).

Inside/outside: for a signed distance field (``inside_below=True``, level 0) inside is where value < level;
for an occupancy field (``inside_below=False``, level 0.5) inside is where value > level. Either way the
returned faces are wound counter-clockwise seen from outside and the normals point outward. (scikit-image's
``gradient_direction`` names are easy to misread: measured on a sphere SDF, 'descent' gives the outward
winding for inside-below fields and 'ascent' for inside-above ones, and its normals point down the value
gradient, i.e. inward for an SDF; ``mesh_from_volume`` sorts this out and tests/test_meshing.py checks it.)

Narrow band (``extract_narrow_band``): evaluate a coarse grid densely, then refine x2 at a time, evaluating
the new nodes only inside *active* cells of the previous level: cells whose corners straddle the level, or
whose closest corner value is within ``band`` cell diagonals of it (an SDF is 1-Lipschitz, so a cell
farther than one diagonal from the level cannot hold surface; neural SDFs are only roughly Lipschitz, hence
the margin), dilated by one cell. Every other fine node takes the trilinear interpolation of its coarse cell
(computed by pairwise averages, so it stays within the range of that cell's corners): all corners of an
inactive cell lie on one side of the level, so the filled values do too and no spurious crossing appears.
Marching cubes then runs on the full fine volume; where the field honours the Lipschitz margin the mesh is
the dense one. Memory: the fine float32 volume, (R+1)^3 * 4 bytes (68 MB at 256, 540 MB at 512), plus the
previous level's volume and masks (1/8 of that) and slab-sized temporaries: measured peak ~0.82 GB above
the interpreter's baseline for a sphere at 512 (8.4M queries, 6% of dense, ~8 s on one core).
The dense path evaluates in chunks and never materialises the ((R+1)^3, 3) point array.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

FieldFn = Callable[[torch.Tensor], torch.Tensor]
"""(N, 3) float32 points in [-1, 1]^3 -> (N,) or (N, 1) values. Called under torch.no_grad()."""

MIN_COARSE = 8
"""The narrow band's default coarsest grid: the resolution halved while it stays even and >= this."""


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class MeshData:
    """An extracted surface in domain coordinates; arrays are read-only."""

    vertices: np.ndarray
    """float32 (V, 3), in [-1, 1]^3."""
    faces: np.ndarray
    """int32 (F, 3), counter-clockwise seen from outside."""
    normals: np.ndarray
    """float32 (V, 3), unit, outward."""
    resolution: int
    """Cells per axis of the grid marching cubes ran on."""
    level: float
    queries: int
    """Field evaluations spent."""
    dense_queries: int
    """(resolution + 1)^3: what a dense grid costs."""
    seconds: float
    message: str = ""
    """Why the mesh is empty (or a note); empty for an ordinary mesh."""
    volume: np.ndarray | None = None
    """The (R+1)^3 float32 values marching cubes saw (narrow band: sign-correct fill outside the band)."""

    @property
    def empty(self) -> bool:
        return self.vertices.shape[0] == 0 or self.faces.shape[0] == 0

    @property
    def query_ratio(self) -> float:
        return self.queries / self.dense_queries if self.dense_queries else float("nan")


def grid_axis(resolution: int) -> torch.Tensor:
    """The resolution + 1 node coordinates of one axis: linspace(-1, 1, resolution + 1), float32."""
    if resolution < 1:
        raise ValueError(f"resolution must be >= 1, got {resolution}")
    return torch.linspace(-1.0, 1.0, resolution + 1, dtype=torch.float32)


def grid_points(resolution: int) -> torch.Tensor:
    """All ((R+1)^3, 3) nodes, 'ij' order: row i*(R+1)^2 + j*(R+1) + k is (x_i, y_j, z_k)."""
    axis = grid_axis(resolution)
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)


def _call(field: FieldFn, points: torch.Tensor, device) -> np.ndarray:
    if device is not None:
        points = points.to(device)
    values = field(points)
    values = values.detach().reshape(points.shape[0], -1)
    if values.shape[1] != 1:
        raise ValueError(f"the field must return one value per point, got shape {tuple(values.shape)}")
    return values[:, 0].to("cpu", torch.float32).numpy()


def _evaluate_nodes(field: FieldFn, axis: torch.Tensor, i, j, k, chunk: int, device=None) -> np.ndarray:
    """Values at the nodes (axis[i], axis[j], axis[k]) for integer index arrays i, j, k."""
    out = np.empty(len(i), np.float32)
    with torch.no_grad():
        for start in range(0, len(i), chunk):
            stop = min(start + chunk, len(i))
            sl = slice(start, stop)
            idx = [torch.as_tensor(np.asarray(a[sl], dtype=np.int64)) for a in (i, j, k)]
            points = torch.stack([axis[idx[0]], axis[idx[1]], axis[idx[2]]], dim=1)
            out[sl] = _call(field, points, device)
    return out


def evaluate_grid(field: FieldFn, resolution: int, chunk: int = 65536, device=None) -> np.ndarray:
    """The field on every node of the grid: float32 (R+1, R+1, R+1), volume[i, j, k] = f(x_i, y_j, z_k)."""
    n = resolution + 1
    axis = grid_axis(resolution)
    flat = np.empty(n ** 3, np.float32)
    with torch.no_grad():
        for start in range(0, n ** 3, chunk):
            idx = torch.arange(start, min(start + chunk, n ** 3), dtype=torch.int64)
            points = torch.stack([axis[idx // (n * n)], axis[(idx // n) % n], axis[idx % n]], dim=1)
            flat[start:start + len(idx)] = _call(field, points, device)
    return flat.reshape(n, n, n)


def _empty_mesh(resolution, level, queries, seconds, message, volume) -> MeshData:
    return MeshData(
        vertices=_read_only(np.zeros((0, 3), np.float32)), faces=_read_only(np.zeros((0, 3), np.int32)),
        normals=_read_only(np.zeros((0, 3), np.float32)), resolution=resolution, level=float(level),
        queries=int(queries), dense_queries=(resolution + 1) ** 3, seconds=seconds, message=message,
        volume=volume)


def _face_vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals from the (outward) winding; the fallback for zero-gradient vertices."""
    v = vertices.astype(np.float64)
    cross = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    normals = np.zeros_like(v)
    for corner in range(3):
        np.add.at(normals, faces[:, corner], cross)
    return normals


def mesh_from_volume(volume: np.ndarray, level: float = 0.0, inside_below: bool = True,
                     queries: int | None = None, seconds: float = 0.0, keep_volume: bool = True) -> MeshData:
    """Marching cubes of a (R+1)^3 grid over [-1, 1]^3 (spacing 2/R, origin -1), outward faces and normals.

    A level outside the volume's range, or a NaN anywhere, gives an empty MeshData with a message, not an
    exception. ``queries`` defaults to the dense count. (A narrow-band volume's range is the range over its
    evaluated nodes: the filled values are averages of them.)
    """
    start = time.perf_counter()
    volume = np.ascontiguousarray(volume, dtype=np.float32)
    if volume.ndim != 3 or len(set(volume.shape)) != 1 or volume.shape[0] < 2:
        raise ValueError(f"expected a cubic (R+1, R+1, R+1) volume with R >= 1, got {volume.shape}")
    resolution = volume.shape[0] - 1
    queries = (resolution + 1) ** 3 if queries is None else queries
    kept = volume if keep_volume else None  # made read-only after marching cubes (its Cython wants it writable)

    def empty(message: str) -> MeshData:
        if kept is not None:
            _read_only(kept)
        return _empty_mesh(resolution, level, queries, seconds + time.perf_counter() - start, message, kept)

    low, high = float(volume.min()), float(volume.max())  # NaN propagates: no (R+1)^3 mask needed
    if not (math.isfinite(low) and math.isfinite(high)):
        bad = int(volume.size - np.count_nonzero(np.isfinite(volume)))
        return empty(f"no surface: the field is NaN or infinite at {bad} of {volume.size} grid nodes")
    if not low <= level <= high or low == high:
        return empty(f"no surface at level {level:g}: the field ranges from {low:.4g} to {high:.4g}")
    from skimage.measure import marching_cubes

    h = 2.0 / resolution
    try:
        verts, faces, normals, _ = marching_cubes(
            volume, level=float(level), spacing=(h, h, h),
            gradient_direction="descent" if inside_below else "ascent")
    except RuntimeError as error:  # "No surface found at the given iso value."
        return empty(f"no surface at level {level:g} (field from {low:.4g} to {high:.4g}): {error}")
    if kept is not None:
        _read_only(kept)
    verts = (verts - 1.0).astype(np.float32)
    faces = np.ascontiguousarray(faces, dtype=np.int32)
    # scikit-image's normals point down the value gradient: inward for inside-below fields
    normals = normals.astype(np.float64) * (-1.0 if inside_below else 1.0)
    length = np.linalg.norm(normals, axis=1)
    bad = ~(length > 1e-12)
    if bad.any():
        normals[bad] = _face_vertex_normals(verts, faces)[bad]
        length = np.linalg.norm(normals, axis=1)
    normals = (normals / np.maximum(length, 1e-12)[:, None]).astype(np.float32)
    return MeshData(
        vertices=_read_only(np.ascontiguousarray(verts)), faces=_read_only(faces),
        normals=_read_only(np.ascontiguousarray(normals)), resolution=resolution, level=float(level),
        queries=int(queries), dense_queries=(resolution + 1) ** 3,
        seconds=seconds + time.perf_counter() - start, volume=kept)


def extract_dense(field: FieldFn, resolution: int, level: float = 0.0, inside_below: bool = True,
                  chunk: int = 65536, keep_volume: bool = True, device=None) -> MeshData:
    """Evaluate every node of the (R+1)^3 grid, then marching cubes."""
    start = time.perf_counter()
    volume = evaluate_grid(field, resolution, chunk, device)
    return mesh_from_volume(volume, level, inside_below, queries=volume.size,
                            seconds=time.perf_counter() - start, keep_volume=keep_volume)


def coarse_resolution(resolution: int, minimum: int = MIN_COARSE) -> int:
    """The default first grid of the narrow band: resolution halved while it stays even and >= minimum."""
    coarse = resolution
    while coarse % 2 == 0 and coarse // 2 >= minimum:
        coarse //= 2
    return coarse


def _upsample(coarse: np.ndarray) -> np.ndarray:
    """(r+1)^3 -> (2r+1)^3 trilinear, by pairwise averages so every value stays in its cell's corner range."""
    r = coarse.shape[0] - 1
    fine = np.empty((2 * r + 1,) * 3, np.float32)
    fine[::2, ::2, ::2] = coarse
    fine[1::2, ::2, ::2] = 0.5 * (fine[0:-1:2, ::2, ::2] + fine[2::2, ::2, ::2])
    for a in range(0, 2 * r + 1, 64):  # slabs bound the temporaries at 512
        slab = fine[a:a + 64]
        slab[:, 1::2, ::2] = 0.5 * (slab[:, 0:-1:2, ::2] + slab[:, 2::2, ::2])
        slab[:, :, 1::2] = 0.5 * (slab[:, :, 0:-1:2] + slab[:, :, 2::2])
    return fine


def _cell_reduce(volume: np.ndarray, op) -> np.ndarray:
    """op over each cell's 8 corners: (r+1)^3 -> r^3."""
    out = op(volume[:-1], volume[1:])
    out = op(out[:, :-1], out[:, 1:])
    return op(out[:, :, :-1], out[:, :, 1:])


def _active_cells(volume: np.ndarray, level: float, band: float) -> np.ndarray:
    r = volume.shape[0] - 1
    above = volume > level
    crossing = _cell_reduce(above, np.logical_or) & ~_cell_reduce(above, np.logical_and)
    near = _cell_reduce(np.abs(volume - np.float32(level)), np.minimum) < band * math.sqrt(3.0) * 2.0 / r
    active = crossing | near
    # dilate by one cell (3x3x3), separably
    for axis in range(3):
        grown = active.copy()
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        grown[tuple(lo)] |= active[tuple(hi)]
        grown[tuple(hi)] |= active[tuple(lo)]
        active = grown
    return active


def _touched_nodes(active: np.ndarray, parity: tuple[int, int, int]) -> np.ndarray:
    """Which fine nodes of one parity class lie in the closure of an active coarse cell.

    Along an axis, fine node 2m+1 lies in coarse cell m; fine node 2m in cells m-1 and m.
    """
    mask = active
    for axis, p in enumerate(parity):
        if p == 0:
            shape = list(mask.shape)
            shape[axis] += 1
            grown = np.zeros(shape, bool)
            lo = [slice(None)] * 3
            hi = [slice(None)] * 3
            lo[axis], hi[axis] = slice(0, -1), slice(1, None)
            grown[tuple(lo)] |= mask
            grown[tuple(hi)] |= mask
            mask = grown
    return mask


def extract_narrow_band(field: FieldFn, resolution: int, level: float = 0.0, inside_below: bool = True,
                        coarse: int | None = None, band: float = 2.0, chunk: int = 65536,
                        keep_volume: bool = True, device=None) -> MeshData:
    """Coarse-to-fine extraction (module docstring); the same mesh as ``extract_dense`` for fields that are
    Lipschitz within the margin ``band``, at a fraction of the queries.

    ``coarse`` (default ``coarse_resolution(resolution)``) must divide ``resolution`` by a power of two.
    All coordinates come from the final grid's axis, so a node has the same coordinates as in the dense grid.
    """
    start = time.perf_counter()
    coarse = coarse_resolution(resolution) if coarse is None else int(coarse)
    ratio = resolution // coarse if coarse > 0 else 0
    if coarse < 1 or resolution % coarse or ratio & (ratio - 1):
        raise ValueError(f"coarse={coarse} must divide resolution={resolution} by a power of two")
    axis = grid_axis(resolution)
    stride = ratio
    n = coarse + 1
    i, j, k = (a.ravel() for a in np.meshgrid(*(np.arange(n) * stride,) * 3, indexing="ij"))
    volume = _evaluate_nodes(field, axis, i, j, k, chunk, device).reshape(n, n, n)
    evaluated = np.ones(volume.shape, bool)
    queries = volume.size
    if not np.isfinite(volume).all():  # NaN: refinement makes no sense; report it on the dense fine grid
        return mesh_from_volume(_upsample_to(volume, ratio), level, inside_below, queries=queries,
                                seconds=time.perf_counter() - start, keep_volume=keep_volume)
    r = coarse
    while r < resolution:
        active = _active_cells(volume, level, band)
        fine = _upsample(volume)
        stride //= 2
        last = 2 * r == resolution
        fine_evaluated = None if last else np.zeros(fine.shape, bool)
        for parity in np.ndindex(2, 2, 2):
            todo = _touched_nodes(active, parity)
            if parity == (0, 0, 0):
                todo &= ~evaluated
            m = np.nonzero(todo)
            if len(m[0]):
                fi, fj, fk = (2 * a + p for a, p in zip(m, parity, strict=True))
                values = _evaluate_nodes(field, axis, fi * stride, fj * stride, fk * stride, chunk, device)
                fine[fi, fj, fk] = values
                queries += len(values)
                if fine_evaluated is not None:
                    fine_evaluated[fi, fj, fk] = True
        if fine_evaluated is not None:
            fine_evaluated[::2, ::2, ::2] |= evaluated
        volume, evaluated, r = fine, fine_evaluated, 2 * r
        del fine, active
    return mesh_from_volume(volume, level, inside_below, queries=queries, seconds=time.perf_counter() - start,
                            keep_volume=keep_volume)


def _upsample_to(volume: np.ndarray, ratio: int) -> np.ndarray:
    while ratio > 1:
        volume, ratio = _upsample(volume), ratio // 2
    return volume

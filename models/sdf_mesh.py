"""Triangle meshes as signed-distance targets: loading, normalising, simplifying, and a robust ``MeshSdf``.

Only trimesh (no rtree, embree, shapely or manifold3d), scipy's cKDTree and torch are used.

* Unsigned distance: exact point-to-triangle distances to candidate faces. The candidates are the faces of
  the k nearest of a dense set of surface samples (every sample knows its face), which cover the surface
  with a radius h (every surface point is within h of a sample). The nearest sample s lies on a candidate
  face, so the result d' satisfies d <= d' <= |p - s| <= d + h: the error is at most ``error_bound`` (= h,
  about 0.004 in the normalised cube) and in practice zero (the true nearest face is nearly always among
  the k candidates).
* Sign: the generalized winding number (the sum of the faces' signed solid angles / 4 pi, Van Oosterom and
  Strackee's formula), inside where it exceeds 0.5. It works for meshes with holes too. It is evaluated
  with a Barnes-Hut tree in torch: clusters of faces far from a point (distance > 2 x their radius) count
  as one dipole (their summed area vector), near ones exactly; chunks of points bound the memory.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch

from models.signals import SignalError

MESH_SUFFIXES = (".obj", ".ply", ".stl", ".glb", ".gltf", ".off")
MESH_DIR = Path(__file__).resolve().parents[1] / "assets" / "meshes"
BUNDLED_MESHES: dict[str, Path] = {name: MESH_DIR / f"{name}.ply" for name in ("trefoil", "pawn", "gear")}
"""Meshes that ship with the app (made by scripts/make_meshes.py), by name."""
PRIMITIVES = ("capsule", "cylinder", "cone", "icosphere", "annulus")
"""trimesh.creation primitives offered as shapes."""
MAX_FACES = 20_000
"""Meshes with more faces are simplified (vertex clustering) for the distance computations."""
MAX_FILE_BYTES = 256 * 1024 * 1024
HALF_EXTENT = 0.85


def primitive_mesh(name: str):
    """A trimesh.creation primitive (not normalised: pass it through ``normalise_mesh``)."""
    import trimesh.creation as creation

    makers = {
        "capsule": lambda: creation.capsule(height=1.0, radius=0.35, count=[32, 32]),
        "cylinder": lambda: creation.cylinder(radius=0.5, height=1.2, sections=64),
        "cone": lambda: creation.cone(radius=0.6, height=1.2, sections=64),
        "icosphere": lambda: creation.icosphere(subdivisions=3, radius=1.0),
        "annulus": lambda: creation.annulus(r_min=0.3, r_max=0.6, height=0.4, sections=64),
    }
    if name not in makers:
        raise SignalError(f"unknown primitive {name!r} (one of {', '.join(PRIMITIVES)})")
    return makers[name]()


def load_mesh_file(path: str | os.PathLike):
    """Read an OBJ/PLY/STL/GLB/GLTF/OFF file as one trimesh.Trimesh (a scene's meshes are concatenated).

    Every failure is a one-line SignalError naming the file."""
    import trimesh

    path = os.fspath(path)
    label = os.path.basename(path.rstrip("/\\")) or path
    if os.path.isdir(path):
        raise SignalError(f"{label}: is a folder, not a mesh file")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in MESH_SUFFIXES:
        raise SignalError(f"{label}: not a mesh file (expected {', '.join(MESH_SUFFIXES)})")
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else f"cannot read file ({exc.strerror or exc})"
        raise SignalError(f"{label}: {reason}") from None
    if size == 0:
        raise SignalError(f"{label}: file is empty")
    if size > MAX_FILE_BYTES:
        raise SignalError(f"{label}: file is too large ({size / 2 ** 20:.0f} MB, at most {MAX_FILE_BYTES // 2 ** 20} MB)")
    try:
        loaded = trimesh.load(path, file_type=suffix[1:], allow_remote=False)
    except Exception as exc:  # trimesh raises many types for bad data; the user needs one line
        raise SignalError(f"{label}: not a readable {suffix[1:].upper()} mesh ({_reason(exc)})") from None
    if isinstance(loaded, trimesh.Scene):
        meshes = [g for g in loaded.dump() if isinstance(g, trimesh.Trimesh) and len(g.faces)]
        loaded = trimesh.util.concatenate(meshes) if meshes else None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise SignalError(f"{label}: contains no triangle faces")
    vertices = np.asarray(loaded.vertices)
    if not np.all(np.isfinite(vertices)):
        raise SignalError(f"{label}: has NaN or infinite vertex coordinates")
    faces = np.asarray(loaded.faces)
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise SignalError(f"{label}: faces refer to missing vertices")
    return loaded


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]


def _size_text(extent: np.ndarray) -> str:
    return " x ".join(f"{x:.4g}" for x in extent)


def normalise_mesh(mesh, half_extent: float = HALF_EXTENT, name: str = "mesh"):
    """Centre the bounding box at the origin and scale uniformly so the longest side spans
    [-half_extent, half_extent]. Returns (a new mesh, a note stating the original size)."""
    import trimesh

    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    extent = hi - lo
    longest = float(extent.max())
    if not longest > 0.0:
        raise SignalError(f"{name}: mesh has zero size (all vertices coincide)")
    scale = 2.0 * half_extent / longest
    moved = (vertices - 0.5 * (lo + hi)) * scale
    out = trimesh.Trimesh(moved, np.asarray(mesh.faces), process=False)
    note = f"original size {_size_text(extent)}, centred and scaled by {scale:.4g} to fit [-{half_extent}, {half_extent}]^3"
    return out, note


def simplify_mesh(mesh, max_faces: int = MAX_FACES):
    """Vertex clustering (plain numpy): quantise vertices to a grid, merge each cell's vertices to their
    mean, drop degenerate and duplicate faces; the cell grows until at most ``max_faces`` remain.
    Returns (mesh, note); the note is empty when nothing was done."""
    import trimesh

    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if len(faces) <= max_faces:
        return mesh, ""
    area = float(np.asarray(mesh.area_faces).sum())
    cell = math.sqrt(max(area, 1e-12) / max_faces)
    lo = vertices.min(axis=0)
    for _ in range(40):
        keys = np.floor((vertices - lo) / cell).astype(np.int64)
        _, cluster = np.unique(keys, axis=0, return_inverse=True)
        cluster = cluster.reshape(-1)
        count = np.bincount(cluster)
        merged = np.stack([np.bincount(cluster, vertices[:, i]) for i in range(3)], axis=1) / count[:, None]
        new_faces = cluster[faces]
        good = ((new_faces[:, 0] != new_faces[:, 1]) & (new_faces[:, 1] != new_faces[:, 2])
                & (new_faces[:, 2] != new_faces[:, 0]))
        new_faces = new_faces[good]
        _, first = np.unique(np.sort(new_faces, axis=1), axis=0, return_index=True)
        new_faces = new_faces[np.sort(first)]
        if 0 < len(new_faces) <= max_faces:
            break
        cell *= 1.15
    if len(new_faces) == 0:
        return mesh, ""
    used = np.unique(new_faces)
    remap = np.full(len(merged), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    out = trimesh.Trimesh(merged[used], remap[new_faces], process=False)
    note = f"simplified from {len(faces)} to {len(new_faces)} faces (vertex clustering, cell {cell:.3g})"
    return out, note


def edge_counts(faces: np.ndarray) -> tuple[int, int]:
    """(boundary edges: used by one face, non-manifold edges: used by more than two)."""
    faces = np.asarray(faces, dtype=np.int64)
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    keys = edges[:, 0] * (int(faces.max()) + 1) + edges[:, 1]
    _, counts = np.unique(keys, return_counts=True)
    return int((counts == 1).sum()), int((counts > 2).sum())


def _point_triangle_dist2(p: np.ndarray, table: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Exact squared distances (float64) from points p (N, 3) to the triangles ``faces`` (N, k) of a
    ``_triangle_table`` (26, F): the plane distance when the projection falls inside the triangle, else the
    nearest of the three edges (segments). Degenerate triangles use their edges only."""
    def column(i: int) -> np.ndarray:
        return table[i][faces]

    px, py, pz = p[:, 0:1], p[:, 1:2], p[:, 2:3]
    wx, wy, wz = px - column(0), py - column(1), pz - column(2)
    e0x, e0y, e0z = column(3), column(4), column(5)
    e1x, e1y, e1z = column(6), column(7), column(8)
    d20 = wx * e0x + wy * e0y + wz * e0z
    d21 = wx * e1x + wy * e1y + wz * e1z
    d00, d01, d11, inv = column(12), column(13), column(14), column(15)
    b1 = (d11 * d20 - d01 * d21) * inv
    b2 = (d00 * d21 - d01 * d20) * inv
    inside = (b1 >= 0) & (b2 >= 0) & (b1 + b2 <= 1) & (column(16) > 0)
    plane = wx * column(9) + wy * column(10) + wz * column(11)
    plane *= plane

    def segment(ux, uy, uz, ex, ey, ez, dot, inv_len):
        t = np.clip(dot * inv_len, 0.0, 1.0)
        rx, ry, rz = ux - t * ex, uy - t * ey, uz - t * ez
        return rx * rx + ry * ry + rz * rz

    best = segment(wx, wy, wz, e0x, e0y, e0z, d20, column(17))
    np.minimum(best, segment(wx, wy, wz, e1x, e1y, e1z, d21, column(18)), out=best)
    ux, uy, uz = px - column(19), py - column(20), pz - column(21)
    e2x, e2y, e2z = column(22), column(23), column(24)
    np.minimum(best, segment(ux, uy, uz, e2x, e2y, e2z, ux * e2x + uy * e2y + uz * e2z, column(25)), out=best)
    return np.where(inside, plane, best)


def _triangle_table(tris: np.ndarray) -> np.ndarray:
    """Per face, as rows of a (26, F) float64 table: v0, e0 = v1 - v0, e1 = v2 - v0, the unit normal,
    e0.e0, e0.e1, e1.e1, 1/det, usable (not degenerate), 1/|e0|^2, 1/|e1|^2, v1, e2 = v2 - v1, 1/|e2|^2."""
    v0, v1, v2 = tris[:, 0], tris[:, 1], tris[:, 2]
    e0, e1, e2 = v1 - v0, v2 - v0, v2 - v1
    normal = np.cross(e0, e1)
    norm = np.linalg.norm(normal, axis=1)
    d00, d01, d11 = (e0 * e0).sum(1), (e0 * e1).sum(1), (e1 * e1).sum(1)
    den = d00 * d11 - d01 * d01
    good = (norm > 0) & (den > 1e-12 * np.maximum(d00, d11) ** 2)

    def inverse(x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, 1.0 / np.where(x > 0, x, 1.0), 0.0)

    columns = [v0, e0, e1, normal * inverse(norm)[:, None], d00[:, None], d01[:, None], d11[:, None],
               (inverse(den) * good)[:, None], good[:, None].astype(np.float64), inverse(d00)[:, None],
               inverse(d11)[:, None], v1, e2, inverse((e2 * e2).sum(1))[:, None]]
    return np.ascontiguousarray(np.concatenate(columns, axis=1).T)


def split_long_triangles(tris: np.ndarray, max_edge: float, max_count: int = 120_000):
    """Bisect the longest edge of every triangle longer than ``max_edge`` until none is (the edge limit
    grows if the result would exceed ``max_count`` triangles). Returns (triangles (M, 3, 3), original face
    (M,)). Orientation is kept, so distances (min over the pieces) and winding numbers (sum over the
    pieces) are those of the original faces; T-junctions do not matter for either."""
    def longest_edges(t: np.ndarray) -> np.ndarray:
        return np.stack([np.linalg.norm(t[:, (i + 1) % 3] - t[:, i], axis=1) for i in range(3)], axis=1)

    lengths = longest_edges(tris).max(axis=1)
    max_count = max(max_count, 2 * len(tris))
    while max_edge > 0 and (np.ceil(lengths / max_edge).clip(1) ** 2).sum() > max_count:
        max_edge *= 1.25
    origin = np.arange(len(tris))
    for _ in range(64):
        edges = longest_edges(tris)
        edge = edges.argmax(axis=1)
        long = np.flatnonzero(edges[np.arange(len(tris)), edge] > max_edge)
        if len(long) == 0:
            break
        t = tris[long]
        # rotate each long triangle so that its longest edge runs from corner 0 to corner 1
        order = (edge[long, None] + np.arange(3)) % 3
        t = np.take_along_axis(t, order[:, :, None], axis=1)
        mid = 0.5 * (t[:, 0] + t[:, 1])
        first = np.stack([t[:, 0], mid, t[:, 2]], axis=1)
        second = np.stack([mid, t[:, 1], t[:, 2]], axis=1)
        keep = np.ones(len(tris), dtype=bool)
        keep[long] = False
        tris = np.concatenate([tris[keep], first, second])
        origin = np.concatenate([origin[keep], origin[long], origin[long]])
    return tris, origin


def _covering_samples(tris: np.ndarray, budget: int, target: float):
    """Surface samples (each with its triangle) within h of every surface point; returns (samples, owner, h).

    Each triangle gets a barycentric grid with n subdivisions (n = 1: its corners and its centroid); any
    point of a triangle lies within (longest sub-edge) / sqrt(3) of a grid point (the circumradius of an
    acute sub-triangle, at most half the longest edge for an obtuse one), which is the bound h."""
    longest = np.stack([np.linalg.norm(tris[:, (i + 1) % 3] - tris[:, i], axis=1) for i in range(3)], axis=1).max(1)

    def subdivisions(h: float) -> np.ndarray:
        return np.maximum(1, np.ceil(longest / (h * math.sqrt(3.0)))).astype(np.int64)

    def total(n: np.ndarray) -> int:
        return int(np.where(n == 1, 2, (n + 1) * (n + 2) // 2).sum())  # shared corners count about once

    h = target
    while total(subdivisions(h)) > budget and subdivisions(h).max() > 1:
        h *= 1.25
    n = subdivisions(h)
    # corners once per distinct position (to 1e-6 of the extent), then centroids (n = 1) and grids (n > 1)
    corners = tris.reshape(-1, 3)
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    cells = np.floor((corners - lo) / np.maximum(hi - lo, 1e-300) * (2 ** 21 - 1)).astype(np.int64)
    _, first = np.unique((cells[:, 0] << 42) | (cells[:, 1] << 21) | cells[:, 2], return_index=True)
    samples, owner = [corners[first]], [first // 3]
    single = np.flatnonzero(n == 1)
    samples.append(tris[single].mean(axis=1))
    owner.append(single)
    for value in np.unique(n[n > 1]):
        group = np.flatnonzero(n == value)
        ij = np.array([(i, j) for i in range(value + 1) for j in range(value + 1 - i)], dtype=np.float64) / value
        bary = np.stack([1.0 - ij.sum(axis=1), ij[:, 0], ij[:, 1]], axis=1)
        samples.append(np.einsum("bk,fkd->fbd", bary, tris[group]).reshape(-1, 3))
        owner.append(np.repeat(group, len(bary)))
    bound = float((longest / n).max() / math.sqrt(3.0)) if len(tris) else 0.0
    return np.concatenate(samples), np.concatenate(owner), bound


class UnsignedDistance:
    """Exact distance to a triangle soup: candidate triangles from the k nearest covering samples (cKDTree),
    then exact point-triangle distances; never below the true distance, at most ``error_bound`` above it."""

    def __init__(self, tris: np.ndarray, k: int = 8, sample_budget: int = 24_000, target_error: float = 0.01):
        from scipy.spatial import cKDTree

        self.k = k
        self._table = _triangle_table(tris)
        samples, self._owner, self.error_bound = _covering_samples(tris, sample_budget, target_error)
        self._tree = cKDTree(samples)

    def __call__(self, points, chunk: int = 32768) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        out = np.empty(len(p), dtype=np.float32)
        k = min(self.k, self._tree.n)
        for start in range(0, len(p), chunk):
            q = p[start:start + chunk]
            _, nearest = self._tree.query(q, k=k, workers=-1)
            d2 = _point_triangle_dist2(q, self._table, self._owner[nearest.reshape(len(q), k)])
            out[start:start + len(q)] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
        return out


class _WindingTree:
    """A balanced binary tree of face clusters for the Barnes-Hut generalized winding number."""

    def __init__(self, tris: np.ndarray, leaf_size: int = 16, beta: float = 1.5):
        count = len(tris)
        centroids = tris.mean(axis=1)
        self.depth = depth = max(0, math.ceil(math.log2(max(1, count) / leaf_size)))
        # median splits along the longest side, level by level; a level's groups are contiguous runs of
        # ``order`` (sizes differ by at most one), so every node of the heap-ordered tree is a run too
        order = np.arange(count)
        bounds = np.array([0, count])
        for _ in range(depth):
            starts, sizes = bounds[:-1], np.diff(bounds)
            c = centroids[order]
            nonempty = sizes > 0
            lo = np.zeros((len(sizes), 3))
            hi = np.zeros((len(sizes), 3))
            lo[nonempty] = np.minimum.reduceat(c, starts[nonempty])
            hi[nonempty] = np.maximum.reduceat(c, starts[nonempty])
            group = np.repeat(np.arange(len(sizes)), sizes)
            axis = np.argmax(hi - lo, axis=1)[group]
            order = order[np.lexsort((c[np.arange(count), axis], group))]
            middle = starts + sizes // 2
            bounds = np.sort(np.concatenate([bounds, middle]))
        tris = tris[order]
        centroids = centroids[order]
        area_vectors = 0.5 * np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
        areas = np.linalg.norm(area_vectors, axis=1)
        leaf_bounds = bounds
        nodes = []
        for level in range(depth + 1):
            run = leaf_bounds[:: 2 ** (depth - level)]
            starts, sizes = run[:-1], np.diff(run)
            ok = sizes > 0
            area = np.zeros(len(sizes))
            weighted = np.zeros((len(sizes), 3))
            mean = np.zeros((len(sizes), 3))
            dipole = np.zeros((len(sizes), 3))
            area[ok] = np.add.reduceat(areas, starts[ok])
            weighted[ok] = np.add.reduceat(centroids * areas[:, None], starts[ok])
            mean[ok] = np.add.reduceat(centroids, starts[ok]) / sizes[ok, None]
            dipole[ok] = np.add.reduceat(area_vectors, starts[ok])
            centre = np.where(area[:, None] > 0, weighted / np.where(area > 0, area, 1.0)[:, None], mean)
            reach = np.linalg.norm(tris - np.repeat(centre, sizes, axis=0)[:, None, :], axis=2).max(axis=1)
            radius = np.zeros(len(sizes))
            radius[ok] = np.maximum.reduceat(reach, starts[ok])
            nodes.append(np.column_stack([centre, (beta * radius) ** 2, dipole]))
        # per node (heap order): centre (3), (beta * radius)^2, summed area vector (3)
        self.nodes = torch.tensor(np.concatenate(nodes), dtype=torch.float32)
        sizes = np.diff(leaf_bounds)
        width = max(1, int(sizes.max()))
        padded = np.zeros((len(sizes), width, 3, 3), dtype=np.float32)  # zero triangles add nothing
        slot = np.arange(count) - np.repeat(leaf_bounds[:-1], sizes)
        padded[np.repeat(np.arange(len(sizes)), sizes), slot] = tris
        # (leaf, [v0 xyz, v1 xyz, v2 xyz], slot)
        self.leaves = torch.from_numpy(np.ascontiguousarray(padded.transpose(0, 2, 3, 1)).reshape(len(sizes), 9 * width))

    def __call__(self, points: np.ndarray, chunk: int = 16384, pair_chunk: int = 8192) -> np.ndarray:
        out = np.empty(len(points), dtype=np.float64)
        first_leaf = 2 ** self.depth - 1
        size = self.leaves.shape[1] // 9
        for start in range(0, len(points), chunk):
            p = torch.as_tensor(points[start:start + chunk], dtype=torch.float32)
            w = torch.zeros(len(p), dtype=torch.float32)
            index = torch.arange(len(p))
            node = torch.zeros(len(p), dtype=torch.long)
            for level in range(self.depth + 1):
                data = self.nodes.index_select(0, node)
                diff = data[:, :3] - p.index_select(0, index)
                d2 = (diff * diff).sum(1)
                far = d2 > data[:, 3]
                # far clusters: one dipole, (summed area vector) . (c - p) / |c - p|^3
                w.index_add_(0, index, (data[:, 4:] * diff).sum(1) * torch.where(far, d2.rsqrt() / d2, 0.0))
                keep = (~far).nonzero().squeeze(1)
                index, node = index.index_select(0, keep), node.index_select(0, keep)
                if level < self.depth:
                    index, node = torch.cat([index, index]), torch.cat([2 * node + 1, 2 * node + 2])
            leaf = node - first_leaf
            for s in range(0, len(index), pair_chunk):
                ii = index[s:s + pair_chunk]
                tri = self.leaves.index_select(0, leaf[s:s + pair_chunk]).view(-1, 9, size)
                w.index_add_(0, ii, _solid_angles(tri, p.index_select(0, ii)).sum(1))
            out[start:start + len(p)] = (w / (4.0 * math.pi)).double().numpy()
        return out


def _solid_angles(tri: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Signed solid angles (Van Oosterom and Strackee) of triangles (M, 9, L) (coordinates of v0, v1, v2
    along dim 1) seen from points p (M, 3): (M, L), positive for a point behind the faces' normals."""
    px, py, pz = p[:, 0:1], p[:, 1:2], p[:, 2:3]
    ax, ay, az = tri[:, 0] - px, tri[:, 1] - py, tri[:, 2] - pz
    bx, by, bz = tri[:, 3] - px, tri[:, 4] - py, tri[:, 5] - pz
    cx, cy, cz = tri[:, 6] - px, tri[:, 7] - py, tri[:, 8] - pz
    la = (ax * ax + ay * ay + az * az).sqrt()
    lb = (bx * bx + by * by + bz * bz).sqrt()
    lc = (cx * cx + cy * cy + cz * cz).sqrt()
    det = ax * (by * cz - bz * cy) + ay * (bz * cx - bx * cz) + az * (bx * cy - by * cx)
    den = (la * lb * lc + (ax * bx + ay * by + az * bz) * lc + (ax * cx + ay * cy + az * cz) * lb
           + (bx * cx + by * cy + bz * cz) * la)
    return 2.0 * torch.atan2(det, den)


class MeshSdf:
    """Signed distance to a triangle mesh (negative inside): exact unsigned distance (error at most
    ``error_bound``, see the module docstring), sign from the generalized winding number.

    ``mesh`` is anything with ``vertices`` (V, 3) and ``faces`` (F, 3), e.g. a trimesh.Trimesh. Faces longer
    than ``max_edge`` are split internally (bisection), which bounds the tree's clusters and the sampling."""

    def __init__(self, mesh, k: int = 8, sample_budget: int = 24_000, target_error: float = 0.01,
                 max_edge: float = 0.05):
        vertices = np.asarray(mesh.vertices, dtype=np.float64)
        faces = np.asarray(mesh.faces, dtype=np.int64)
        if len(faces) == 0:
            raise SignalError("mesh has no faces")
        boundary, nonmanifold = edge_counts(faces)
        self.boundary_edges = boundary
        self.watertight = boundary == 0 and nonmanifold == 0
        tris = vertices[faces]
        self.flipped = float(np.einsum("ij,ij->i", tris[:, 0], np.cross(tris[:, 1], tris[:, 2])).sum()) < 0
        if self.flipped:  # inside out: the winding number would be -1 inside
            faces = faces[:, ::-1].copy()
            tris = vertices[faces]
        self.vertices, self.faces = vertices, faces
        if self.watertight:
            self.sign_note = "watertight: sign from the winding number"
        else:
            problems = []
            if boundary:
                problems.append(f"{boundary} boundary edges")
            if nonmanifold:
                problems.append(f"{nonmanifold} non-manifold edges")
            self.sign_note = (f"not watertight ({', '.join(problems)}): sign from the generalized winding number "
                              "(inside where > 0.5); holes make it approximate")
        if self.flipped:
            self.sign_note += "; faces were inside out and were flipped"
        self._tris, _ = split_long_triangles(tris, max_edge)
        self._unsigned = UnsignedDistance(self._tris, k, sample_budget, target_error)
        self.error_bound = self._unsigned.error_bound
        self._winding: _WindingTree | None = None

    def unsigned(self, points) -> np.ndarray:
        """|distance| to the surface, float32 (N,)."""
        return self._unsigned(points)

    def winding(self, points) -> np.ndarray:
        """Generalized winding number, float64 (N,): ~1 inside a closed outward-oriented mesh, ~0 outside."""
        if self._winding is None:
            self._winding = _WindingTree(self._tris)
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        return self._winding(p) if len(p) else np.zeros(0)

    def inside(self, points) -> np.ndarray:
        """Boolean (N,): winding number above 0.5."""
        return self.winding(points) > 0.5

    def sdf(self, points) -> np.ndarray:
        """Signed distance, float32 (N,), negative inside."""
        distance = self.unsigned(points)
        return np.where(self.inside(points), -distance, distance).astype(np.float32)


def brute_force_unsigned(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Exact distance to every face (O(N F); for tests and small meshes)."""
    table = _triangle_table(np.asarray(vertices, dtype=np.float64)[np.asarray(faces)])
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    out = np.empty(len(p), dtype=np.float32)
    step = max(1, 500_000 // table.shape[1])
    every = np.arange(table.shape[1])
    for start in range(0, len(p), step):
        q = p[start:start + step]
        d2 = _point_triangle_dist2(q, table, np.broadcast_to(every, (len(q), len(every))))
        out[start:start + len(q)] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def brute_force_winding(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Exact generalized winding number over every face, in float64 (O(N F); for tests)."""
    tris = torch.as_tensor(np.asarray(vertices, dtype=np.float64)[np.asarray(faces)])
    flat = tris.permute(1, 2, 0).reshape(1, 9, -1)
    p = torch.as_tensor(np.asarray(points, dtype=np.float64).reshape(-1, 3))
    parts = [_solid_angles(flat.expand(len(q), -1, -1), q).sum(1) / (4 * math.pi) for q in p.split(256)]
    return torch.cat(parts).numpy() if parts else np.zeros(0)

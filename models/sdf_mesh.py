"""Triangle meshes as signed-distance targets: a robust ``MeshSdf`` (loading and normalising: models/mesh_files.py).

Only trimesh (no rtree, embree, shapely or manifold3d), scipy's cKDTree and torch are used. Faces longer
than 0.1 are first bisected (a triangle soup: the distance is the min over the pieces, the winding number
their sum, so both stay those of the mesh), which keeps the clusters below small.

* Unsigned distance, first pass: exact point-to-triangle distances to candidate triangles, the owners of
  the k nearest of a set of surface samples (each triangle has its own: its centroid, or a barycentric grid
  when it is larger than the sample spacing). Every surface point lies within h of a sample of its own
  triangle, so the result d' satisfies d <= d' <= d + h (h = ``error_bound``, ~0.02-0.05 in the normalised
  cube), and it is certified exact when the k-th sample is farther than d' + h. In practice d' = d almost
  always (the tests compare with brute force).
* Second pass, for uncertified points within ``refine_band`` (0.05) of the surface: a branch-and-bound
  descent of a bounding-sphere tree, pruning clusters farther than d', gives the exact minimum. So near
  the surface the distances are exact (to float rounding) whatever the triangles' shapes; farther away
  they may exceed the truth by at most h.
* Sign: the generalized winding number (the sum of the faces' signed solid angles / 4 pi, Van Oosterom and
  Strackee's formula), inside where it exceeds 0.5. It works for meshes with holes too. It is evaluated with
  the same tree (one descent serves both), Barnes-Hut style in torch: a cluster farther than 1.5 x its
  radius counts as one dipole (its summed area vector; error < ~0.2 measured, harmless where the number is
  0 or 1), near ones exactly. Chunks of 16k points bound the memory (~150 MB for 275k points).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from models.signals import SignalError

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
    """Surface samples, each owned by its triangle: (samples, owner, h) where every point of a triangle lies
    within h of one of that triangle's own samples.

    A triangle within ``h`` of its centroid gets only the centroid; a larger one a barycentric grid with n
    subdivisions (corners included): any point then lies within (longest sub-edge) / sqrt(3) of a grid point
    (the circumradius of an acute sub-triangle, at most half the longest edge of an obtuse one). h starts at
    ``target`` and grows until about ``budget`` samples (at least one per triangle) do."""
    longest = np.stack([np.linalg.norm(tris[:, (i + 1) % 3] - tris[:, i], axis=1) for i in range(3)], axis=1).max(1)
    centroids = tris.mean(axis=1)
    reach = np.linalg.norm(tris - centroids[:, None, :], axis=2).max(axis=1)

    def subdivisions(h: float) -> np.ndarray:
        n = np.maximum(1, np.ceil(longest / (h * math.sqrt(3.0)))).astype(np.int64)
        n[reach <= h] = 1
        return n

    def total(n: np.ndarray) -> int:
        return int(np.where(n == 1, 1, (n + 1) * (n + 2) // 2).sum())

    h = target
    while total(subdivisions(h)) > max(budget, len(tris)) and subdivisions(h).max() > 1:
        h *= 1.25
    n = subdivisions(h)
    single = np.flatnonzero(n == 1)
    samples, owner = [centroids[single]], [single]
    for value in np.unique(n[n > 1]):
        group = np.flatnonzero(n == value)
        ij = np.array([(i, j) for i in range(value + 1) for j in range(value + 1 - i)], dtype=np.float64) / value
        bary = np.stack([1.0 - ij.sum(axis=1), ij[:, 0], ij[:, 1]], axis=1)
        samples.append(np.einsum("bk,fkd->fbd", bary, tris[group]).reshape(-1, 3))
        owner.append(np.repeat(group, len(bary)))
    cover = np.where(n == 1, reach, longest / n / math.sqrt(3.0))
    return np.concatenate(samples), np.concatenate(owner), float(cover.max()) if len(tris) else 0.0


class UnsignedDistance:
    """Distance to a triangle soup from candidate triangles (the owners of the k nearest covering samples,
    cKDTree) and exact point-triangle distances: never below the true distance, at most ``error_bound``
    above it (and in practice equal).

    The result is certified exact where the k-th sample lies farther than d' + h: every triangle nearer
    than d' has one of its own samples within d' + h, so it was among the candidates."""

    def __init__(self, tris: np.ndarray, k: int = 16, sample_budget: int = 24_000, target_error: float = 0.01):
        from scipy.spatial import cKDTree

        self.k = k
        self._table = _triangle_table(tris)
        samples, self._owner, self.error_bound = _covering_samples(tris, sample_budget, target_error)
        self._tree = cKDTree(samples)

    def __call__(self, points, chunk: int = 32768) -> np.ndarray:
        """float64 (N,) distances."""
        return self.query(points, chunk)[0]

    def query(self, points, chunk: int = 32768) -> tuple[np.ndarray, np.ndarray]:
        """(float64 (N,) distances, bool (N,) certified exact)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        out = np.empty(len(p), dtype=np.float64)
        certified = np.empty(len(p), dtype=bool)
        k = min(self.k, self._tree.n)
        for start in range(0, len(p), chunk):
            q = p[start:start + chunk]
            reach, nearest = self._tree.query(q, k=k, workers=-1)
            reach, nearest = reach.reshape(len(q), k), nearest.reshape(len(q), k)
            d2 = _point_triangle_dist2(q, self._table, self._owner[nearest])
            d = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
            out[start:start + len(q)] = d
            certified[start:start + len(q)] = (reach[:, -1] >= d + self.error_bound) | (k == self._tree.n)
        return out, certified


class _FaceTree:
    """A balanced binary tree of triangle clusters (bounding spheres, summed area vectors) for the
    Barnes-Hut generalized winding number and the branch-and-bound exact distance."""

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
            filled = sizes > 0
            lo = np.zeros((len(sizes), 3))
            hi = np.zeros((len(sizes), 3))
            lo[filled] = np.minimum.reduceat(c, starts[filled])
            hi[filled] = np.maximum.reduceat(c, starts[filled])
            group = np.repeat(np.arange(len(sizes)), sizes)
            axis = np.argmax(hi - lo, axis=1)[group]
            order = order[np.lexsort((c[np.arange(count), axis], group))]
            bounds = np.sort(np.concatenate([bounds, starts + sizes // 2]))
        tris, centroids = tris[order], centroids[order]
        area_vectors = 0.5 * np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
        areas = np.linalg.norm(area_vectors, axis=1)
        centres, radii, dipoles = [], [], []
        for level in range(depth + 1):
            run = bounds[:: 2 ** (depth - level)]
            starts, sizes = run[:-1], np.diff(run)
            filled = sizes > 0
            area, weighted, mean, dipole, radius = (np.zeros(len(sizes)), np.zeros((len(sizes), 3)),
                                                    np.zeros((len(sizes), 3)), np.zeros((len(sizes), 3)),
                                                    np.zeros(len(sizes)))
            area[filled] = np.add.reduceat(areas, starts[filled])
            weighted[filled] = np.add.reduceat(centroids * areas[:, None], starts[filled])
            mean[filled] = np.add.reduceat(centroids, starts[filled]) / sizes[filled, None]
            dipole[filled] = np.add.reduceat(area_vectors, starts[filled])
            centre = np.where(area[:, None] > 0, weighted / np.where(area > 0, area, 1.0)[:, None], mean)
            reach = np.linalg.norm(tris - np.repeat(centre, sizes, axis=0)[:, None, :], axis=2).max(axis=1)
            radius[filled] = np.maximum.reduceat(reach, starts[filled])
            centres.append(centre), radii.append(radius), dipoles.append(dipole)
        centres, radii, dipoles = np.concatenate(centres), np.concatenate(radii), np.concatenate(dipoles)
        # per node (heap order): centre (3), (beta * radius)^2, summed area vector (3), radius
        radii_up = np.nextafter(radii.astype(np.float32), np.float32(np.inf))  # never below the true radius
        self.nodes = torch.tensor(np.column_stack([centres, (beta * radii) ** 2, dipoles, radii_up]),
                                  dtype=torch.float32)
        sizes = np.diff(bounds)
        self.width = width = max(1, int(sizes.max()))
        padded = np.zeros((len(sizes), width, 3, 3))  # zero triangles add no solid angle
        slot = np.arange(count) - np.repeat(bounds[:-1], sizes)
        padded[np.repeat(np.arange(len(sizes)), sizes), slot] = tris
        # (leaf, [v0 xyz, v1 xyz, v2 xyz], slot)
        flat = np.ascontiguousarray(padded.transpose(0, 2, 3, 1)).reshape(len(sizes), 9 * width)
        self.leaves = torch.from_numpy(flat.astype(np.float32))
        self.leaves64 = torch.from_numpy(flat)
        self.padding = torch.from_numpy(np.arange(width)[None, :] >= sizes[:, None])  # (leaf, slot)

    def query(self, points: np.ndarray, upper: np.ndarray | None = None, winding: bool = True,
              chunk: int = 16384, pair_chunk: int = 4096) -> tuple[np.ndarray | None, np.ndarray | None]:
        """One descent for both: generalized winding numbers (float64 (N,), if ``winding``) and, given upper
        bounds on the distances (``upper``, NaN or inf where not wanted), the exact distances (float64).

        A (point, cluster) pair is dropped once the winding number no longer needs it (far: counted as a
        dipole, (summed area vector) . (c - p) / |c - p|^3) and no point of the cluster can be nearer than
        the bound; the leaves left give exact solid angles and exact point-triangle distances."""
        n = len(points)
        out_w = np.empty(n) if winding else None
        out_d = None if upper is None else np.asarray(upper, dtype=np.float64).copy()
        for start in range(0, n, chunk):
            p64 = torch.as_tensor(points[start:start + chunk], dtype=torch.float64)
            p = p64.float()
            w = torch.zeros(len(p))
            bound = (torch.as_tensor(out_d[start:start + chunk]).float().nan_to_num(-math.inf, math.inf, -math.inf)
                     if out_d is not None else torch.full((len(p),), -math.inf))
            best = torch.as_tensor(out_d[start:start + chunk]).clone() if out_d is not None else None
            index = torch.arange(len(p))
            node = torch.zeros(len(p), dtype=torch.long)
            open_w = torch.full((len(p),), winding)
            for level in range(self.depth + 1):
                data = self.nodes.index_select(0, node)
                diff = data[:, :3] - p.index_select(0, index)
                d2 = (diff * diff).sum(1)
                far = open_w & (d2 > data[:, 3])
                if winding:
                    weight = torch.where(far, d2.rsqrt() / d2, 0.0)
                    w.index_add_(0, index, (data[:, 4:7] * diff).sum(1) * weight)
                open_w = open_w & ~far
                # a slack of 1e-5 covers float32 rounding: pruning must never drop the nearest cluster
                near_d = d2.sqrt() - data[:, 7] <= bound.index_select(0, index) + 1e-5
                keep = (open_w | near_d).nonzero().squeeze(1)
                index, node, open_w = index[keep], node[keep], open_w[keep]
                near_d = near_d[keep]
                if level < self.depth:
                    index, node = torch.cat([index, index]), torch.cat([2 * node + 1, 2 * node + 2])
                    open_w, near_d = torch.cat([open_w, open_w]), torch.cat([near_d, near_d])
            leaf = node - (2 ** self.depth - 1)
            if winding:
                pick = open_w.nonzero().squeeze(1)
                ii_all, ll_all = index[pick], leaf[pick]
                for s in range(0, len(pick), 2 * pair_chunk):
                    ii, ll = ii_all[s:s + 2 * pair_chunk], ll_all[s:s + 2 * pair_chunk]
                    tri = self.leaves.index_select(0, ll).view(-1, 9, self.width)
                    w.index_add_(0, ii, _solid_angles(tri, p.index_select(0, ii)).sum(1))
                out_w[start:start + len(p)] = (w / (4.0 * math.pi)).double().numpy()
            if best is not None:
                pick = near_d.nonzero().squeeze(1)
                ii_all, ll_all = index[pick], leaf[pick]
                for s in range(0, len(pick), pair_chunk):
                    ii, ll = ii_all[s:s + pair_chunk], ll_all[s:s + pair_chunk]
                    tri = self.leaves64.index_select(0, ll).view(-1, 9, self.width)
                    d2 = _point_triangle_dist2_torch(p64.index_select(0, ii), tri)
                    d2 = d2.masked_fill(self.padding.index_select(0, ll), math.inf).amin(dim=1)
                    best.scatter_reduce_(0, ii, d2.clamp_min(0.0).sqrt(), reduce="amin")
                out_d[start:start + len(p)] = best.numpy()
        return out_w, out_d


def _point_triangle_dist2_torch(p: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """Squared distances from points p (M, 3) to triangles (M, 9, L) laid out as in ``_FaceTree.leaves``;
    the same method as ``_point_triangle_dist2`` (plane inside the triangle, else the nearest edge)."""
    px, py, pz = p[:, 0:1], p[:, 1:2], p[:, 2:3]
    ax, ay, az = tri[:, 0], tri[:, 1], tri[:, 2]
    e0x, e0y, e0z = tri[:, 3] - ax, tri[:, 4] - ay, tri[:, 5] - az
    e1x, e1y, e1z = tri[:, 6] - ax, tri[:, 7] - ay, tri[:, 8] - az
    wx, wy, wz = px - ax, py - ay, pz - az
    d00 = e0x * e0x + e0y * e0y + e0z * e0z
    d01 = e0x * e1x + e0y * e1y + e0z * e1z
    d11 = e1x * e1x + e1y * e1y + e1z * e1z
    d20 = wx * e0x + wy * e0y + wz * e0z
    d21 = wx * e1x + wy * e1y + wz * e1z
    den = d00 * d11 - d01 * d01
    good = den > 1e-12 * torch.maximum(d00, d11) ** 2
    inv = torch.where(good, 1.0 / torch.where(good, den, torch.ones_like(den)), torch.zeros_like(den))
    b1 = (d11 * d20 - d01 * d21) * inv
    b2 = (d00 * d21 - d01 * d20) * inv
    inside = good & (b1 >= 0) & (b2 >= 0) & (b1 + b2 <= 1)
    nx, ny, nz = e0y * e1z - e0z * e1y, e0z * e1x - e0x * e1z, e0x * e1y - e0y * e1x
    n2 = nx * nx + ny * ny + nz * nz
    plane = (wx * nx + wy * ny + wz * nz) ** 2 / torch.where(n2 > 0, n2, torch.ones_like(n2))

    def segment(ux, uy, uz, ex, ey, ez):
        ee = ex * ex + ey * ey + ez * ez
        t = ((ux * ex + uy * ey + uz * ez) / torch.where(ee > 0, ee, torch.ones_like(ee))).clamp(0.0, 1.0)
        rx, ry, rz = ux - t * ex, uy - t * ey, uz - t * ez
        return rx * rx + ry * ry + rz * rz

    bx, by, bz = tri[:, 3], tri[:, 4], tri[:, 5]
    edges = torch.minimum(segment(wx, wy, wz, e0x, e0y, e0z), segment(wx, wy, wz, e1x, e1y, e1z))
    edges = torch.minimum(edges, segment(px - bx, py - by, pz - bz, tri[:, 6] - bx, tri[:, 7] - by, tri[:, 8] - bz))
    return torch.where(inside, plane, edges)


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
    """Signed distance to a triangle mesh, negative inside (see the module docstring for the method).

    ``mesh`` is anything with ``vertices`` (V, 3) and ``faces`` (F, 3), e.g. a trimesh.Trimesh. A mesh whose
    faces are inside out (negative volume) is flipped; ``faces`` holds the faces as used."""

    def __init__(self, mesh, max_edge: float = 0.1, refine_band: float = 0.05):
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
        self.vertices, self.faces, self.refine_band = vertices, faces, refine_band
        if self.watertight:
            self.sign_note = "watertight: sign from the winding number"
        else:
            problems = [f"{boundary} boundary edges"] if boundary else []
            problems += [f"{nonmanifold} non-manifold edges"] if nonmanifold else []
            self.sign_note = (f"not watertight ({', '.join(problems)}): sign from the generalized winding number "
                              "(inside where > 0.5); holes make it approximate")
        if self.flipped:
            self.sign_note += "; faces were inside out and were flipped"
        self._tris, _ = split_long_triangles(tris, max_edge)
        self._first_pass = UnsignedDistance(self._tris, k=24)
        self.error_bound = self._first_pass.error_bound
        """Largest possible excess of ``unsigned`` farther than ``refine_band`` from the surface."""
        self._tree: _FaceTree | None = None

    @property
    def tree(self) -> _FaceTree:
        if self._tree is None:
            self._tree = _FaceTree(self._tris)
        return self._tree

    def _first(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First-pass distances and the upper bounds to refine (NaN: certified, or beyond the band)."""
        distance, certified = self._first_pass.query(p)
        return distance, np.where(~certified & (distance <= self.refine_band), distance, np.nan)

    def unsigned(self, points) -> np.ndarray:
        """|distance| to the surface, float32 (N,): exact within ``refine_band``, at most ``error_bound``
        over beyond it."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        distance, bounds = self._first(p)
        if np.isfinite(bounds).any():
            todo = np.flatnonzero(np.isfinite(bounds))
            _, refined = self.tree.query(p[todo], bounds[todo], winding=False)
            distance[todo] = np.fmin(distance[todo], refined)
        return distance.astype(np.float32)

    def winding(self, points) -> np.ndarray:
        """Generalized winding number, float64 (N,): ~1 inside a closed outward-oriented mesh, ~0 outside."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        return self.tree.query(p)[0] if len(p) else np.zeros(0)

    def inside(self, points) -> np.ndarray:
        """Boolean (N,): winding number above 0.5."""
        return self.winding(points) > 0.5

    def sdf(self, points) -> np.ndarray:
        """Signed distance, float32 (N,), negative inside (one tree descent for the sign and the distance)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        if len(p) == 0:
            return np.zeros(0, dtype=np.float32)
        distance, bounds = self._first(p)
        w, refined = self.tree.query(p, bounds)
        distance = np.fmin(distance, refined)
        return np.where(w > 0.5, -distance, distance).astype(np.float32)


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

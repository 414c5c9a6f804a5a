"""Generate the bundled meshes in assets/meshes/ (binary PLY, watertight, outward faces, < 300 KB each).

    .venv/bin/python scripts/make_meshes.py

* trefoil.ply: a tube around a trefoil knot (Frenet frames, which close up on the knot),
* pawn.ply: a chess pawn, a surface of revolution of a hand-made profile,
* gear.ply: a 24-tooth ring gear (fine, sharp detail: the teeth), well-shaped triangles throughout.

The output is deterministic; the files are committed as data.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import trimesh

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "assets" / "meshes"
MAX_BYTES = 300 * 1024


def grid_faces(rows: int, cols: int, closed_rows: bool, offset: int = 0) -> np.ndarray:
    """Quads (two triangles each) of a rows x cols vertex grid, wrapping around the columns (and the rows)."""
    r = np.arange(rows if closed_rows else rows - 1)
    c = np.arange(cols)
    r, c = np.meshgrid(r, c, indexing="ij")
    a = r * cols + c
    b = r * cols + (c + 1) % cols
    d = ((r + 1) % rows) * cols + c
    e = ((r + 1) % rows) * cols + (c + 1) % cols
    quads = np.stack([a, b, e, d], axis=-1).reshape(-1, 4) + offset
    return np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])


def trefoil(along: int = 240, around: int = 20, radius: float = 0.42) -> trimesh.Trimesh:
    t = np.linspace(0.0, 2 * np.pi, along, endpoint=False)
    curve = np.stack([np.sin(t) + 2 * np.sin(2 * t), np.cos(t) - 2 * np.cos(2 * t), -np.sin(3 * t)], axis=1)
    d1 = np.stack([np.cos(t) + 4 * np.cos(2 * t), -np.sin(t) + 4 * np.sin(2 * t), -3 * np.cos(3 * t)], axis=1)
    d2 = np.stack([-np.sin(t) - 8 * np.sin(2 * t), -np.cos(t) + 8 * np.cos(2 * t), 9 * np.sin(3 * t)], axis=1)
    tangent = d1 / np.linalg.norm(d1, axis=1, keepdims=True)
    normal = d2 - (d2 * tangent).sum(1, keepdims=True) * tangent
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    binormal = np.cross(tangent, normal)
    phi = np.linspace(0.0, 2 * np.pi, around, endpoint=False)
    ring = np.cos(phi)[None, :, None] * normal[:, None, :] + np.sin(phi)[None, :, None] * binormal[:, None, :]
    vertices = (curve[:, None, :] + radius * ring).reshape(-1, 3)
    return trimesh.Trimesh(vertices, grid_faces(along, around, closed_rows=True), process=False)


def _arc(centre, radius, start, stop, n):
    a = np.linspace(np.radians(start), np.radians(stop), n)
    return np.stack([centre[0] + radius * np.cos(a), centre[1] + radius * np.sin(a)], axis=1)


def _resample(points: np.ndarray, count: int) -> np.ndarray:
    """``count`` points evenly spaced along a polyline (r, z), keeping both ends."""
    length = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    s = np.linspace(0.0, length[-1], count)
    return np.stack([np.interp(s, length, points[:, i]) for i in range(2)], axis=1)


def pawn(profile_points: int = 110, around: int = 56) -> trimesh.Trimesh:
    """Profile (r, z) from the bottom centre to the top of the head, revolved around z; one pole each end."""
    t = np.linspace(0.0, 1.0, 40)
    stem = np.stack([0.5 - 0.28 * t ** 0.6, 0.42 + 0.78 * t], axis=1)  # concave stem narrowing upwards
    profile = np.concatenate([
        np.stack([np.linspace(0.0, 0.72, 12)[:-1], np.zeros(11)], axis=1),  # bottom disc
        _arc((0.72, 0.08), 0.08, -90, 90, 10),                             # rounded base edge
        np.array([[0.66, 0.16]]),                                          # a step in (no cusp with the ring)
        _arc((0.62, 0.25), 0.09, -60, 90, 10),                             # ring above the base
        np.array([[0.55, 0.36], [0.5, 0.42]]),
        stem,
        _arc((0.38, 1.27), 0.07, -90, 90, 10),                             # collar
        np.array([[0.2, 1.36]]),
        _arc((0.0, 1.62), 0.29, -47, 90, 24),                              # head
    ])
    profile = _resample(profile, profile_points)
    profile[0, 0] = profile[-1, 0] = 0.0
    rings = profile[1:-1]
    phi = np.linspace(0.0, 2 * np.pi, around, endpoint=False)
    ring_vertices = np.stack([rings[:, None, 0] * np.cos(phi), rings[:, None, 0] * np.sin(phi),
                              np.repeat(rings[:, None, 1], around, axis=1)], axis=-1).reshape(-1, 3)
    bottom, top = len(ring_vertices), len(ring_vertices) + 1
    vertices = np.concatenate([ring_vertices, [[0.0, 0.0, profile[0, 1]], [0.0, 0.0, profile[-1, 1]]]])
    n = len(rings)
    c = np.arange(around)
    side = grid_faces(n, around, closed_rows=False)  # rows go up, columns counter-clockwise: outward
    cap_bottom = np.stack([np.full(around, bottom), (c + 1) % around, c], axis=1)
    last = (n - 1) * around
    cap_top = np.stack([np.full(around, top), last + c, last + (c + 1) % around], axis=1)
    return trimesh.Trimesh(vertices, np.concatenate([side, cap_bottom, cap_top]), process=False)


def gear(teeth: int = 24, per_tooth: int = 8, bore: float = 0.5, root: float = 0.7, tip: float = 0.8,
         half_height: float = 0.1, across: int = 8, up: int = 6) -> trimesh.Trimesh:
    """A ring gear: trapezoid teeth (corners on samples) around a wide bore. Every cross-section (radius,
    height) is the same closed loop of rings (top face, bore wall, bottom face, outer wall) with the outer
    radius following the teeth, so the triangles stay well shaped (no fans or slivers)."""
    n = teeth * per_tooth
    phase = (np.arange(n) % per_tooth) / per_tooth
    outline = np.interp(phase, [0.0, 0.25, 0.375, 0.625, 0.75, 1.0], [root, root, tip, tip, root, root])
    phi = 2 * np.pi * np.arange(n) / n
    blend = np.linspace(1.0, 0.0, across + 1)      # 1: the teeth outline, 0: the bore
    height = np.linspace(half_height, -half_height, up + 1)
    loop = ([(t, half_height) for t in blend] + [(0.0, z) for z in height[1:-1]]
            + [(t, -half_height) for t in blend[::-1]] + [(1.0, z) for z in height[::-1][1:-1]])
    rings = []
    for t, z in loop:
        radius = bore + t * (outline - bore)
        rings.append(np.stack([radius * np.cos(phi), radius * np.sin(phi), np.full(n, z)], axis=1))
    mesh = trimesh.Trimesh(np.concatenate(rings), grid_faces(len(loop), n, closed_rows=True), process=False)
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, make in (("trefoil", trefoil), ("pawn", pawn), ("gear", gear)):
        mesh = make()
        mesh.merge_vertices()
        if mesh.volume < 0:
            mesh.invert()
        if not mesh.is_watertight or not mesh.is_winding_consistent or mesh.volume <= 0:
            print(f"{name}: not a closed outward mesh", file=sys.stderr)
            return 1
        path = OUT / f"{name}.ply"
        path.write_bytes(trimesh.exchange.ply.export_ply(mesh, encoding="binary", include_attributes=False))
        size = path.stat().st_size
        print(f"{path.relative_to(ROOT)}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces, {size / 1024:.0f} KB")
        if size > MAX_BYTES:
            print(f"{name}: larger than {MAX_BYTES // 1024} KB", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

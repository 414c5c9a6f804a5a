"""Mesh files and primitives for the 3D targets: loading (one-line messages for anything unreadable; no pickle),
normalising into the unit cube, and simplifying by vertex clustering. Distances and signs: models/sdf_mesh.py."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

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
    from trimesh import creation

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
    fmt = suffix[1:].upper()
    fmt = f"an {fmt}" if fmt in ("OBJ", "OFF", "STL") else f"a {fmt}"
    kind = _foreign_format(path)
    if kind:
        raise SignalError(f"{label}: is {kind}, not {fmt} mesh")
    try:
        loaded = trimesh.load(path, file_type=suffix[1:], allow_remote=False, process=False)
    except Exception as exc:  # trimesh raises many types for bad data; the user needs one line
        raise SignalError(f"{label}: not a readable mesh ({fmt} file expected: {_reason(exc)})") from None
    if isinstance(loaded, trimesh.Scene):
        meshes = [g for g in loaded.dump() if isinstance(g, trimesh.Trimesh) and len(g.faces)]
        loaded = trimesh.util.concatenate(meshes) if meshes else None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise SignalError(f"{label}: contains no triangle faces")
    vertices, faces = np.asarray(loaded.vertices), np.asarray(loaded.faces)
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise SignalError(f"{label}: faces refer to missing vertices")
    if not np.all(np.isfinite(vertices[np.unique(faces)])):
        raise SignalError(f"{label}: has NaN or infinite vertex coordinates")
    loaded.process(validate=False)  # merge duplicate vertices (STL stores each facet's own), drop unused
    if len(loaded.faces) == 0:
        raise SignalError(f"{label}: contains no triangle faces")
    return loaded


_SIGNATURES = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
               (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "a gzip archive"),
               (b"BM", "a BMP image"), (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"))


def _foreign_format(path: str) -> str:
    """What a file clearly is when it is a common non-mesh format (by its first bytes), else ''."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    return next((kind for magic, kind in _SIGNATURES if head.startswith(magic)), "")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (ImportError, UnicodeDecodeError)):  # trimesh tried to decode binary data as text
        return "not text in any known encoding"
    if isinstance(exc, KeyError):
        return f"malformed, {exc} is missing"
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
        cells = np.floor((vertices - lo) / cell).astype(np.int64)
        size = cells.max(axis=0) + 1
        keys = (cells[:, 0] * size[1] + cells[:, 1]) * size[2] + cells[:, 2]
        _, cluster = np.unique(keys, return_inverse=True)
        cluster = cluster.reshape(-1)
        count = np.bincount(cluster)
        merged = np.stack([np.bincount(cluster, vertices[:, i]) for i in range(3)], axis=1) / count[:, None]
        new_faces = cluster[faces]
        good = ((new_faces[:, 0] != new_faces[:, 1]) & (new_faces[:, 1] != new_faces[:, 2])
                & (new_faces[:, 2] != new_faces[:, 0]))
        new_faces = new_faces[good]
        ordered = np.sort(new_faces, axis=1)
        _, first = np.unique((ordered[:, 0] * len(merged) + ordered[:, 1]) * len(merged) + ordered[:, 2],
                             return_index=True)
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

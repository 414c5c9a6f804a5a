"""Meshes of trained 3D fields written to disk (PLY, OBJ, GLB, STL through trimesh), and animations of frames
(MP4 through PyAV, GIF through Pillow) for turntables."""
from __future__ import annotations

import os

import numpy as np
import torch

from .meshing import MeshData, extract_narrow_band
from .sdf_render import module_field

MESH_SUFFIXES = (".ply", ".obj", ".glb", ".stl")
ANIMATION_SUFFIXES = (".mp4", ".gif")


class ExportError(ValueError):
    """An export could not be written; one line for the user."""


def check_mesh_path(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in MESH_SUFFIXES:
        raise ExportError(f"{path}: unknown mesh format {suffix or '(none)'}; use {', '.join(MESH_SUFFIXES)}")
    return suffix


def write_mesh(path: str, mesh: MeshData) -> str:
    """Write ``mesh`` (domain coordinates) to ``path``; the format follows the suffix. Returns a one-line summary."""
    import trimesh

    suffix = check_mesh_path(path)
    if mesh.empty:
        raise ExportError(f"nothing to write to {os.path.basename(path)}: {mesh.message or 'the mesh is empty'}")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    shape = trimesh.Trimesh(vertices=np.asarray(mesh.vertices, np.float64), faces=np.asarray(mesh.faces, np.int64),
                            vertex_normals=np.asarray(mesh.normals, np.float64), process=False)
    temporary = path + ".partial"
    try:
        shape.export(temporary, file_type=suffix[1:])
        os.replace(temporary, path)  # a failed write never leaves half a file under the real name
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return f"wrote {len(mesh.faces):,} faces ({mesh.resolution}³ grid) to {path}"


@torch.no_grad()
def field_mesh(model: torch.nn.Module, resolution: int, level: float = 0.0, inside_below: bool = True) -> MeshData:
    """The narrow-band marching-cubes mesh of ``model`` (any module mapping (N, 3) points to values)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        return extract_narrow_band(lambda p: module_field(model, device)(p), resolution, level=level,
                                   inside_below=inside_below)
    finally:
        model.train(was_training)


def export_trainer_mesh(trainer, path: str, resolution: int, level: float | None = None) -> str:
    """Extract and write the mesh of a trainer's field (call it on the thread that owns the trainer)."""
    check_mesh_path(path)
    occupancy = trainer.signal.sdf is not None and trainer.signal.sdf.target == "occupancy"
    if level is None:
        level = 0.5 if occupancy else 0.0
    mesh = field_mesh(trainer.model, resolution, level, inside_below=not occupancy)
    return write_mesh(path, mesh)


def write_animation(path: str, frames: list[np.ndarray], fps: float = 24.0) -> str:
    """Write RGB uint8 frames as an MP4 (H.264 through PyAV) or a looping GIF; returns a one-line summary."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in ANIMATION_SUFFIXES:
        raise ExportError(f"{path}: unknown animation format {suffix or '(none)'}; use .mp4 or .gif")
    if not frames:
        raise ExportError("no frames to write")
    frames = [np.ascontiguousarray(f[:, :, :3], dtype=np.uint8) for f in frames]
    if suffix == ".mp4":  # H.264 wants even sizes
        h, w = frames[0].shape[:2]
        frames = [f[: h - h % 2, : w - w % 2] for f in frames]
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = path + ".partial" + suffix
    try:
        if suffix == ".mp4":
            import imageio.v3 as iio

            iio.imwrite(temporary, np.stack(frames), plugin="pyav", codec="libx264", fps=fps)
        else:
            from PIL import Image

            images = [Image.fromarray(f) for f in frames]
            images[0].save(temporary, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)),
                           loop=0, optimize=False)
        os.replace(temporary, path)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ExportError(f"cannot write {path}: {exc}") from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return f"wrote {len(frames)} frames ({frames[0].shape[1]}x{frames[0].shape[0]}, {fps:g} fps) to {path}"

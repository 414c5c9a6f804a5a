"""Headless 3D: ``fieldlab fit --signal SHAPE|MESH`` (train a signed distance field, write its mesh and surface
metrics) and ``fieldlab render DIR --mesh OUT.ply --resolution N`` (re-extract a saved field). No Qt."""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from .headless import _finite_or_none

DEFAULT_RESOLUTION = 256
"""Marching-cubes grid of the mesh 'fit' writes (narrow band: only cells near the surface are queried)."""


def apply_3d_defaults(args, field_config, train_config):
    """The 3D lab's defaults (models.scenes.DEFAULT_SDF_SCENE) wherever the command line kept the 2D ones."""
    from dataclasses import replace

    from models.scenes import DEFAULT_FIELD, DEFAULT_SDF_SCENE, DEFAULT_TRAIN

    base_field, base_train = DEFAULT_SDF_SCENE.field, DEFAULT_SDF_SCENE.train
    if args.width == DEFAULT_FIELD.width:
        field_config = replace(field_config, width=base_field.width)
    if args.w0 == DEFAULT_FIELD.w0:
        field_config = replace(field_config, w0=base_field.w0)
    if args.batch == DEFAULT_TRAIN.batch_size:
        train_config = replace(train_config, batch_size=base_train.batch_size)
    return field_config, train_config


def fit_sdf(args, signal, field_config, train_config, user_error) -> int:
    """Train a plain field on a 3D target for --steps, then write mesh.ply, slice.png, metrics.json and the field."""
    from models.training import Trainer, configure_cpu_threads

    from .cli import train_with_progress

    if args.model not in ("siren", "finer", "gauss", "finer-gauss", "relu", "fourier"):
        raise user_error(f"--model {args.model}: 3D targets train plain real-valued fields (siren, finer, gauss, "
                         "finer-gauss, relu, fourier); growing, partitioned and complex fields are 2D-only for now")
    configure_cpu_threads(leave_one_for_gui=False)
    field_config, train_config = apply_3d_defaults(args, field_config, train_config)
    try:
        trainer = Trainer(signal, field_config, train_config)
    except ValueError as exc:
        raise user_error(str(exc)) from None
    if signal.note and not args.quiet:
        print(f"fieldlab: {signal.name}: {signal.note}", file=sys.stderr)
    warning, seconds = train_with_progress(trainer, args.steps, args.quiet, score="loss")
    if warning:
        print(f"fieldlab: warning: {warning}; saving the restored weights", file=sys.stderr)
    try:
        metrics = save_sdf_outputs(args.out, trainer, seconds, getattr(args, "resolution", None) or DEFAULT_RESOLUTION)
    except OSError as exc:
        raise user_error(f"cannot write {args.out}: {exc.strerror or exc}") from None
    surface = metrics["surface"]
    print(f"fieldlab: {signal.name}: {args.model} {metrics['params']:,} params, {metrics['steps']} steps in {seconds:.1f} s: "
          + (f"Chamfer-L1 {surface['chamfer_l1']:.4f}, normal consistency {surface['normal_consistency']:.3f}, "
             f"IoU {surface['iou']:.4f}" if surface["chamfer_l1"] is not None else surface["message"])
          + f" -> {args.out}")
    return 0


def save_sdf_outputs(folder: str, trainer, seconds: float, resolution: int) -> dict:
    """mesh.ply (narrow band at ``resolution``), slice.png (z = 0), metrics.json and the field checkpoint."""
    from models.checkpoint import save_field
    from models.mesh_io import field_mesh, write_mesh
    from models.sdf_metrics import METRIC_CONVENTIONS, chamfer_and_normals, inside_from_volume, occupancy_iou
    from models.sdf_render import SdfRenderer, SdfViewSettings, default_level

    from .headless import diverging_colors, write_png

    signal = trainer.signal
    trainer.flush()
    level = default_level(signal)
    occupancy = signal.sdf.target == "occupancy"
    mesh = field_mesh(trainer.model, resolution, level, inside_below=not occupancy)
    surface = chamfer_and_normals(mesh, signal.sdf.surface_points, signal.sdf.surface_normals)
    renderer = SdfRenderer(signal)
    iou = None
    if getattr(mesh, "volume", None) is not None:
        iou = occupancy_iou(inside_from_volume(mesh.volume, level, not occupancy, resolution), renderer.gt_inside())
    os.makedirs(folder, exist_ok=True)
    message = mesh.message
    if not mesh.empty:
        write_mesh(os.path.join(folder, "mesh.ply"), mesh)
    settings = SdfViewSettings(slice_size=256, live_resolution=64)
    points_field = _slice_values(trainer, settings)
    target = renderer.target_slice(settings.slice_axis, settings.slice_position, settings.slice_size)
    # blue inside, red outside, white on the surface, for distances and occupancies alike
    signed_field = level - points_field if occupancy else points_field - level
    signed_target = 0.5 - target if occupancy else target
    write_png(os.path.join(folder, "slice.png"), diverging_colors(signed_field, 0.5))
    write_png(os.path.join(folder, "slice_target.png"), diverging_colors(signed_target, 0.5))
    history = [{"step": int(s), "loss": _finite(v)} for s, v in zip(trainer.loss_steps, trainer.loss_values)]
    stride = max(1, len(history) // 200)
    metrics = {
        "signal": signal.name, "kind": "sdf", "target": signal.sdf.target, "model": trainer.field_config.kind,
        "params": trainer.params, "steps": trainer.step_count, "seconds": round(seconds, 3), "device": str(trainer.device),
        "loss": _finite(trainer.loss_values[-1]) if trainer.loss_values else None,
        "surface": {"chamfer_l1": _finite(surface.get("chamfer_l1")), "chamfer_l2": _finite(surface.get("chamfer_l2")),
                    "normal_consistency": _finite(surface.get("normal_consistency")), "iou": _finite(iou),
                    "level": level, "resolution": resolution, "vertices": int(len(mesh.vertices)),
                    "faces": int(len(mesh.faces)), "field_queries": int(mesh.queries),
                    "dense_queries": int(mesh.dense_queries), "extraction_seconds": round(mesh.seconds, 3),
                    "message": message},
        "conventions": dict(METRIC_CONVENTIONS),
        "history": history[::stride],
        "field": trainer.field_config.to_dict(), "train": trainer.train_config.to_dict(),
    }
    if signal.note:
        metrics["note"] = signal.note
    with open(os.path.join(folder, "metrics.json"), "w", encoding="utf-8") as handle:
        json.dump(metrics, handle, indent=2)
    signal_meta = {"name": signal.name, "kind": "sdf", "shape": [], "channels": 1, "extent": [1.0, 1.0, 1.0],
                   "target": signal.sdf.target}
    save_field(folder, trainer.model, trainer.field_config, signal_meta,
               extra={"train": trainer.train_config.to_dict(), "metrics": {"surface": metrics["surface"],
                                                                           "steps": trainer.step_count}})
    return metrics


def _slice_values(trainer, settings) -> np.ndarray:
    import torch

    from models.sdf_render import module_field, slice_points

    with torch.no_grad():
        points = slice_points(settings.slice_axis, settings.slice_position, settings.slice_size)
        values = module_field(trainer.model, trainer.device)(points)
    return values.reshape(settings.slice_size, settings.slice_size).numpy()


def render_sdf(args, saved, user_error) -> int:
    """``fieldlab render DIR --mesh OUT --resolution N [--level L]`` for a saved 3D field."""
    from models.mesh_io import ExportError, check_mesh_path, field_mesh, write_mesh

    try:
        check_mesh_path(args.mesh)
    except ExportError as exc:
        raise user_error(str(exc)) from None
    signal = saved.meta.get("signal", {})
    if signal.get("kind") != "sdf":
        raise user_error(f"{args.folder}: --mesh needs a field trained on a 3D shape (this one fitted a {signal.get('kind')})")
    resolution = args.resolution or DEFAULT_RESOLUTION
    if resolution < 8 or resolution > 1024:
        raise user_error(f"--resolution must be between 8 and 1024, got {resolution}")
    occupancy = signal.get("target") == "occupancy"
    level = args.level if args.level is not None else (0.5 if occupancy else 0.0)
    started = time.perf_counter()
    mesh = field_mesh(saved.model, resolution, level, inside_below=not occupancy)
    if mesh.empty:
        raise user_error(f"{args.folder}: {mesh.message or 'no surface at this level'}")
    try:
        summary = write_mesh(args.mesh, mesh)
    except ExportError as exc:
        raise user_error(str(exc)) from None
    ratio = mesh.queries / max(mesh.dense_queries, 1)
    print(f"fieldlab: {summary} in {time.perf_counter() - started:.1f} s "
          f"({mesh.queries:,} field queries, {ratio:.1%} of the {mesh.dense_queries:,} of a dense grid)")
    return 0


def _finite(value):
    return None if value is None else _finite_or_none(float(value))

"""Headless time lab: ``fieldlab fit --signal VIDEO|MOVING-SHAPE --model resfield --rank R [--time-rows T]`` and
``fieldlab render DIR --time t --out FRAME.png`` / ``--sequence OUT.mp4|gif`` / ``--mesh OUT.ply``. No Qt."""
from __future__ import annotations

import json
import os
import sys

import numpy as np

from .headless import _finite_or_none, _slug, write_png

TIME_MODEL_CHOICES = ("resfield", "siren", "finer")
SHAPE_METRIC_RESOLUTION = 128
"""Marching-cubes grid of the per-frame surface metrics 'fit' reports for a moving shape."""


def add_time_arguments(parser) -> None:
    group = parser.add_argument_group("time lab (videos and moving shapes; --model resfield, siren or finer)")
    group.add_argument("--rank", type=int, default=10, help="ResField rank R: spanning-set size per layer (default 10)")
    group.add_argument("--time-rows", type=int, default=0,
                       help="coefficient rows T (default 0: one per frame; fewer share rows by interpolation)")
    group.add_argument("--resfield-layers", default="", metavar="I,J",
                       help="linear layers with time-dependent weights, 0 = input, depth = output (default: the middle ones)")
    group.add_argument("--time-mode", choices=("interpolate", "lookup"), default="interpolate",
                       help="coefficients between rows: linear interpolation (default) or the nearest row")
    group.add_argument("--frames", type=int, default=None,
                       help="frames to keep from a video or moving shape (default 24 for videos, 16 for shapes)")
    group.add_argument("--compare", choices=("none", "same-width", "matched"), default="none",
                       help="also train a plain SIREN of the same width ('same-width'), and one with the ResField "
                            "model's parameter count ('matched'); their PSNRs go into metrics.json")
    group.add_argument("--holdout", type=float, default=0.1,
                       help="share of every video frame's pixels held out for the test PSNR (default 0.1, the paper's)")
    group.add_argument("--holdout-frames", type=int, default=0, metavar="K",
                       help="also hold out every K-th frame entirely (not the first or last): PSNR between frames, the "
                            "paper's time-interpolation test (default 0: none)")
    group.add_argument("--frames-per-batch", type=int, default=8, help="frames per training step (default 8)")
    group.add_argument("--no-lr-decay", action="store_true",
                       help="keep the learning rate constant (default for videos and moving shapes: it decays to a "
                            "tenth over fit's --steps, over 1000 / 2000 steps in the app)")
    group.add_argument("--time-loss", choices=("mse", "mape"), default="mse",
                       help="mse (default), or mape: |p - g| / (|g| + 0.01), the ResFields paper's temporal-SDF loss")


def time_settings_from_args(args, user_error):
    from models.time_training import TimeSettings

    try:
        layers = tuple(int(i) for i in args.resfield_layers.split(",") if i.strip()) or None
    except ValueError:
        raise user_error(f"--resfield-layers {args.resfield_layers!r}: expected layer numbers such as 1,2") from None
    model = args.model if args.model in TIME_MODEL_CHOICES else None
    if model is None:
        raise user_error(f"--model {args.model}: videos and moving shapes train resfield, siren or finer")
    try:
        return TimeSettings(model=model, activation=args.activation if args.activation in ("siren", "finer") else "siren",
                            rank=args.rank, time_rows=args.time_rows, layers=layers, mode=args.time_mode,
                            compare=args.compare, holdout=args.holdout, holdout_frames=args.holdout_frames,
                            frames_per_batch=args.frames_per_batch,
                            loss=args.time_loss)
    except ValueError as exc:
        raise user_error(str(exc)) from None


def time_scene_from_args(args, field_config, train_config, signal, user_error, for_gui: bool = False):
    """The time lab's Scene: its defaults (models.scenes.DEFAULT_TIME_SCENE, or DEFAULT_SHAPE_TIME_SCENE for moving
    shapes) wherever the command line kept the image ones. In the app a plain '--model siren' (the default) opens
    the ResField model and its comparison, as the Time presets do."""
    from dataclasses import replace

    from models.scenes import DEFAULT_FIELD, DEFAULT_SHAPE_TIME_SCENE, DEFAULT_TIME_SCENE, DEFAULT_TRAIN, Scene

    base = DEFAULT_TIME_SCENE if signal.kind == "video" else DEFAULT_SHAPE_TIME_SCENE
    if for_gui and args.model == "siren":
        args.model = "resfield"
        args.compare = base.time.compare if args.compare == "none" else args.compare
    settings = time_settings_from_args(args, user_error)
    field_config = replace(field_config, kind="finer" if args.model == "finer" else "siren",
                           width=base.field.width if args.width == DEFAULT_FIELD.width else args.width,
                           w0=base.field.w0 if args.w0 == DEFAULT_FIELD.w0 else args.w0)
    if args.batch == DEFAULT_TRAIN.batch_size:
        train_config = replace(train_config, batch_size=base.train.batch_size)
    decay = 0 if getattr(args, "no_lr_decay", False) else (base.train.lr_decay_steps if for_gui else max(1, args.steps))
    train_config = replace(train_config, lr_decay_steps=decay)
    return Scene(field=field_config, train=train_config, preset="time", time=settings)


def fit_time(args, signal, field_config, train_config, user_error) -> int:
    """Train the time lab's runs for --steps, then write metrics.json, frames, the reconstructed sequence and fields."""
    from models.training import configure_cpu_threads

    from .cli import train_with_progress

    scene = time_scene_from_args(args, field_config, train_config, signal, user_error)
    configure_cpu_threads(leave_one_for_gui=False)
    try:
        runs = scene.build(signal)
    except ValueError as exc:
        raise user_error(str(exc)) from None
    if signal.note and not args.quiet:
        print(f"fieldlab: {signal.name}: {signal.note}", file=sys.stderr)
    results = []
    for index, (label, trainer) in enumerate(runs):
        if len(runs) > 1 and not args.quiet:
            print(f"fieldlab: training {label}", file=sys.stderr)
        warning, seconds = train_with_progress(trainer, args.steps, args.quiet, score="loss")
        if warning:
            print(f"fieldlab: warning: {label}: {warning}; saving the restored weights", file=sys.stderr)
        folder = args.out if index == 0 else os.path.join(args.out, "compare", _slug(label))
        try:
            metrics = save_time_outputs(folder, trainer, seconds, label)
        except OSError as exc:
            raise user_error(f"cannot write {folder}: {exc.strerror or exc}") from None
        results.append(metrics)
        print(_summary(signal.name, metrics, folder))
    if len(results) > 1:
        _add_comparison(args.out, results)
    return 0


def _summary(name: str, metrics: dict, folder: str) -> str:
    split = metrics["parameters"]
    head = f"fieldlab: {name}: {metrics['label']}: {split['total']:,} params ({split['per_time']:,} per-time), " \
           f"{metrics['steps']} steps in {metrics['seconds']:.1f} s: "
    if metrics.get("psnr_train") is not None:
        test = metrics.get("psnr_test")
        unseen = metrics.get("psnr_unseen_frames")
        return head + f"train PSNR {metrics['psnr_train']:.2f} dB" + (
            f", held-out {test:.2f} dB" if test is not None else "") + (
            f", unseen frames {unseen:.2f} dB" if unseen is not None else "") + f" -> {folder}"
    surface = metrics.get("surface", {})
    chamfer = surface.get("chamfer_l1_mean")
    return head + (f"mean Chamfer-L1 {chamfer:.4f} over {len(surface['per_frame'])} frames" if chamfer is not None
                   else "no surface") + f" -> {folder}"


def save_time_outputs(folder: str, trainer, seconds: float, label: str = "") -> dict:
    """metrics.json (train / held-out / per-frame PSNR, or per-frame surface metrics), frame images or a mesh at the
    middle time, the reconstructed sequence (videos: reconstruction.mp4), and the field (safetensors + JSON)."""
    from models.checkpoint import save_field

    signal = trainer.signal
    trainer.flush()
    axis = signal.time
    metrics = {
        "label": label, "signal": signal.name, "kind": signal.kind, "model": trainer.settings.model,
        "parameters": trainer.describe_parameters(), "params": trainer.params, "steps": trainer.step_count,
        "seconds": round(seconds, 3), "device": str(trainer.device), "frames": axis.frames, "fps": axis.fps,
        "field": trainer.field_config.to_dict(), "train": trainer.train_config.to_dict(), **trainer.time_config(),
        "loss_history": [{"step": int(s), "loss": _finite_or_none(v)} for s, v in zip(trainer.loss_steps, trainer.loss_values)],
    }
    if signal.note:
        metrics["note"] = signal.note
    os.makedirs(folder, exist_ok=True)
    if signal.kind == "video":
        _video_outputs(folder, trainer, metrics)
    else:
        _shape_outputs(folder, trainer, metrics)
    with open(os.path.join(folder, "metrics.json"), "w", encoding="utf-8") as handle:
        json.dump(metrics, handle, indent=2)
    signal_meta = {"name": signal.name, "kind": signal.kind, "shape": list(signal.shape), "channels": signal.channels,
                   "extent": list(signal.extent), "frames": axis.frames, "fps": axis.fps}
    save_field(folder, trainer.model, trainer.field_config, signal_meta,
               extra={"train": trainer.train_config.to_dict(), "time": trainer.time_config()})
    return metrics


def _video_outputs(folder: str, trainer, metrics: dict) -> None:
    from models.mesh_io import write_animation
    from models.time_render import rgb8

    signal = trainer.signal
    prediction = trainer.frame_predictions()
    scores = trainer.split_psnr(prediction)
    times = signal.time.times()
    unseen = scores["unseen_per_frame"]
    metrics.update(psnr_train=_finite_or_none(scores["train"]), psnr_test=_finite_or_none(scores["test"]),
                   psnr_unseen_frames=_finite_or_none(scores["unseen"]), unseen_frames=sorted(unseen))
    metrics["per_frame"] = [
        {"frame": k, "t": round(float(times[k]), 6), "unseen": k in unseen,
         "train": None if k in unseen else _finite_or_none(scores["train_per_frame"][k]),
         "test": None if k in unseen or not scores["test_per_frame"] else _finite_or_none(scores["test_per_frame"][k]),
         "all_pixels": _finite_or_none(unseen[k]) if k in unseen else None}
        for k in range(signal.time.frames)]
    video = signal.as_display(prediction)
    middle = signal.time.frames // 2
    write_png(os.path.join(folder, "frame_middle.png"), video[middle])
    write_png(os.path.join(folder, "target_middle.png"), signal.target_display()[middle])
    write_animation(os.path.join(folder, "reconstruction.mp4"), [rgb8(frame) for frame in video], signal.time.fps)


def _shape_outputs(folder: str, trainer, metrics: dict) -> None:
    from models.mesh_io import field_mesh, write_mesh
    from models.sdf_metrics import METRIC_CONVENTIONS, chamfer_and_normals
    from models.time_render import AtTime

    signal = trainer.signal
    times = signal.time.times()
    per_frame = []
    for k, t in enumerate(times):
        mesh = field_mesh(AtTime(trainer.model, float(t)), SHAPE_METRIC_RESOLUTION)
        truth = signal.time.frame_target(k) if signal.time.frame_target is not None else signal.sdf
        surface = chamfer_and_normals(mesh, truth.surface_points, truth.surface_normals) if not mesh.empty else {}
        per_frame.append({"frame": k, "t": round(float(t), 6), "chamfer_l1": _finite_or_none(surface.get("chamfer_l1", np.nan)),
                          "normal_consistency": _finite_or_none(surface.get("normal_consistency", np.nan)),
                          "vertices": int(len(mesh.vertices))})
        if k == len(times) // 2 and not mesh.empty:
            write_mesh(os.path.join(folder, "mesh_middle.ply"), mesh)
    chamfers = [f["chamfer_l1"] for f in per_frame if f["chamfer_l1"] is not None]
    metrics["surface"] = {"per_frame": per_frame, "resolution": SHAPE_METRIC_RESOLUTION,
                          "chamfer_l1_mean": float(np.mean(chamfers)) if chamfers else None,
                          "conventions": METRIC_CONVENTIONS}


def _add_comparison(folder: str, results: list[dict]) -> None:
    path = os.path.join(folder, "metrics.json")
    with open(path, encoding="utf-8") as handle:
        metrics = json.load(handle)
    metrics["comparison"] = [{key: r.get(key) for key in ("label", "params", "parameters", "psnr_train", "psnr_test",
                                                          "psnr_unseen_frames", "seconds", "steps")} for r in results]
    for entry, result in zip(metrics["comparison"], results):
        if "surface" in result:
            entry["chamfer_l1_mean"] = result["surface"]["chamfer_l1_mean"]
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(metrics, handle, indent=2)
    for entry in metrics["comparison"]:
        test = entry.get("psnr_test")
        chamfer = entry.get("chamfer_l1_mean")
        unseen = entry.get("psnr_unseen_frames")
        print(f"  {entry['label']:<45} {entry['params']:>9,} params  "
              + (f"train {entry['psnr_train']:.2f} dB  held-out {test:.2f} dB  " if test is not None else "")
              + (f"unseen frames {unseen:.2f} dB  " if unseen is not None else "")
              + (f"mean Chamfer-L1 {chamfer:.4f}  " if chamfer is not None else "") + f"{entry['seconds']:.1f} s")


def render_time(args, saved, user_error) -> int:
    """render DIR --time t --out FRAME.png, --sequence OUT.mp4|gif, or --mesh OUT.ply (a moving shape)."""
    from models.signals import grid_coords
    from models.time_render import AtTime, evaluate_at_time, render_sequence

    signal = saved.meta.get("signal", {})
    kind, shape = signal.get("kind"), tuple(signal.get("shape", ()))
    frames = int(signal.get("frames") or shape[0])
    t = 0.0 if args.time is None else float(args.time)
    if not -1.0 <= t <= 1.0:
        raise user_error(f"--time must lie in [-1, 1] (frames sit evenly from -1 to 1), got {t}")
    residual = not args.base
    if kind == "sdf-time":
        if args.mesh is None:
            raise user_error(f"{args.folder}: a moving shape renders to a mesh: use --time t --mesh OUT.ply")
        from models.mesh_io import ExportError, field_mesh, write_mesh

        if hasattr(saved.model, "residual"):
            saved.model.residual = residual
        mesh = field_mesh(AtTime(saved.model, t), args.resolution or 256)
        try:
            summary = write_mesh(args.mesh, mesh)
        except (ExportError, OSError) as exc:
            raise user_error(str(exc)) from None
        print(f"fieldlab: {args.folder} at t = {t:g}: {summary}")
        return 0
    h, w = shape[1:]
    if args.size:
        scale = args.size / max(h, w)
        h, w = max(1, round(h * scale)), max(1, round(w * scale))
    extent = tuple(signal.get("extent", (1.0, 1.0)))[:2]
    space = grid_coords((h, w), extent)

    if args.sequence:
        from models.mesh_io import ExportError, write_animation

        fps = args.fps or float(signal.get("fps") or 12.0)
        images = render_sequence(saved.model, space, (h, w), args.frames or frames, residual)
        try:
            summary = write_animation(args.sequence, images, fps)
        except (ExportError, OSError) as exc:
            raise user_error(str(exc)) from None
        print(f"fieldlab: {args.folder}: {summary}")
        return 0
    if args.out is None or os.path.splitext(args.out)[1].lower() != ".png":
        raise user_error("render of a video field needs --out FRAME.png (with --time t) or --sequence OUT.mp4|gif")
    unit = ((evaluate_at_time(saved.model, space, t, residual).numpy() + 1.0) * 0.5).clip(0, 1).reshape(h, w, -1)
    try:
        write_png(args.out, unit[..., 0] if unit.shape[2] == 1 else unit)
    except OSError as exc:
        raise user_error(f"cannot write {args.out}: {exc.strerror or exc}") from None
    what = " (base MLP, residual off)" if args.base else ""
    print(f"fieldlab: rendered {args.folder} at t = {t:g}{what} ({w}x{h}) -> {args.out}")
    return 0

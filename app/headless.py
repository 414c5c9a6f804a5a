"""Writing a finished run to disk: metrics.json, reconstruction.png and the checkpoint (no Qt)."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import torch

from models.checkpoint import save_field
from models.exports import diverging_colors  # one colour map for the views, the CLI and the exports
from models.metrics import ssim
from models.training import Trainer
from models.width_views import residual_display, width_scores


def write_png(path: str, unit_values: np.ndarray, curve: bool = False) -> None:
    """Save [0, 1] values as an 8-bit PNG; a curve (N or Nx1) is drawn as a simple line plot."""
    import imageio.v3 as iio

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    values = np.asarray(unit_values, dtype=np.float32)
    if curve:
        values = plot_curve(values.reshape(-1))
    elif values.ndim == 3 and values.shape[2] == 1:
        values = values[:, :, 0]
    iio.imwrite(path, (np.clip(values, 0, 1) * 255 + 0.5).astype(np.uint8))


def write_cropped_png(path: str, unit_values: np.ndarray) -> str:
    """Save [0, 1] values whose cropped samples are NaN as an RGBA PNG, cropped parts fully transparent."""
    values = np.asarray(unit_values, dtype=np.float32)
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[:, :, 0]
    missing = ~np.isfinite(values if values.ndim == 2 else values.sum(axis=2))
    rgb = np.repeat(values[:, :, None], 3, axis=2) if values.ndim == 2 else values
    rgba = np.concatenate([np.nan_to_num(rgb, nan=0.0), (~missing)[:, :, None].astype(np.float32)], axis=2)
    write_png(path, rgba)
    return f" ({int(missing.sum())} cropped pixels left transparent)"


def write_residual_png(path: str, residual: np.ndarray, curve: bool = False) -> str:
    """Save a signed residual (display units) with a symmetric diverging colour map; returns the scale used."""
    values = np.asarray(residual, dtype=np.float32)
    if values.ndim == 3:
        values = values.mean(axis=2)
    limit = float(np.abs(values).max()) or 1.0
    if curve:
        write_png(path, 0.5 + 0.5 * values.reshape(-1) / limit, curve=True)
    else:
        write_png(path, diverging_colors(values, limit))
    return f" (colour scale: +-{limit:.4g} of the value range)"


def plot_curve(values: np.ndarray, height: int = 256) -> np.ndarray:
    """Rasterise a [0, 1] curve into a white image with a dark line (one column per sample)."""
    n = values.size
    image = np.ones((height, n), dtype=np.float32)
    rows = np.round((1.0 - np.clip(values, 0, 1)) * (height - 1)).astype(int)
    for x in range(n):
        lo, hi = (rows[x], rows[x]) if x == 0 else sorted((rows[x - 1], rows[x]))
        image[lo:hi + 1, x] = 0.1
    return image


def _finite_or_none(value: float | None):
    """JSON has no NaN or infinity: those (and None) become null."""
    return value if value is not None and math.isfinite(value) else None


def save_fit_outputs(folder: str, trainer: Trainer, seconds: float) -> dict:
    """Evaluate the trained field once more and write everything ``fieldlab fit`` promises."""
    signal = trainer.signal
    trainer.flush()
    step, prediction, value = trainer.evaluate(current=True)
    reconstruction = signal.as_display(prediction)
    target = signal.target_display()
    history_loss = dict(zip(trainer.loss_steps, trainer.loss_values))
    history = [
        {"step": int(s), "psnr": _finite_or_none(p), "loss": _finite_or_none(history_loss.get(s, history_loss.get(s - 1, math.nan)))}
        for s, p in zip(trainer.psnr_steps, trainer.psnr_values)
    ]
    parts = trainer.partition_info()
    cropped = bool(np.isnan(reconstruction).any())
    if parts is not None:
        model = parts.model
    else:
        model = "streamable" if trainer.stage_info() is not None else trainer.field_config.kind
    metrics = {
        "signal": signal.name,
        "model": model,
        "psnr": _finite_or_none(value),
        "ssim": _finite_or_none(ssim(reconstruction, target)) if signal.kind == "image" and not cropped else None,
        "params": trainer.params,
        "steps": trainer.step_count,
        "seconds": round(seconds, 3),
        "device": str(trainer.device),
        "history": history,
        "field": trainer.field_config.to_dict(),
        "train": trainer.train_config.to_dict(),
    }
    if signal.note:
        metrics["note"] = signal.note
    if parts is not None:
        metrics["partitions"] = partition_metrics(trainer, parts, prediction)
    info = trainer.stage_info()
    outputs = trainer.predict_widths() if info is not None else []
    if info is not None:
        metrics.update(growth_metrics(trainer, info, outputs))
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "metrics.json"), "w", encoding="utf-8") as handle:
        json.dump(metrics, handle, indent=2)
    if cropped and signal.kind == "image":
        write_cropped_png(os.path.join(folder, "reconstruction.png"), reconstruction)
    else:
        write_png(os.path.join(folder, "reconstruction.png"), reconstruction, curve=signal.kind == "curve")
    signal_meta = {"name": signal.name, "kind": signal.kind, "shape": list(signal.shape),
                   "channels": signal.channels, "extent": list(signal.extent)}
    extra = {"train": trainer.train_config.to_dict(), "metrics": {"psnr": metrics["psnr"], "steps": step}}
    if info is not None:
        extra["growth"] = {"states": list(info.states), "stage_end_steps": list(info.stage_end_steps),
                           "config": trainer.growth.to_dict()}
        _write_width_images(folder, trainer, outputs)
    save_field(folder, trainer.model, trainer.field_config, signal_meta, extra=extra)
    return metrics


def partition_metrics(trainer, parts, prediction: torch.Tensor) -> dict:
    """Layout, parameter split and the PSNR of every partition (a grid in array order; null where cropped)."""
    scores = trainer.partition_psnrs(prediction).reshape(parts.partitions)
    return {"model": parts.model, "factors": list(parts.partitions),
            "local_width": trainer.config.local_width, "global_width": trainer.config.global_width,
            "present": len(parts.present), "total": parts.num_partitions,
            "global_params": parts.global_params, "local_params_per_partition": parts.local_params,
            "global_share": round(parts.global_params / max(parts.params, 1), 4),
            "params_uncropped": parts.params_uncropped, "bytes": parts.bytes,
            "extension_step": parts.extension_step, "added": len(parts.added),
            "psnr_per_partition": _nan_to_none(np.round(scores, 3).tolist()),
            "psnr_convention": "per partition: 10 log10(1 / MSE) over its pixels, values in [0, 1]; cropped: null"}


def _nan_to_none(values):
    if isinstance(values, list):
        return [_nan_to_none(v) for v in values]
    return values if math.isfinite(values) else None


def growth_metrics(trainer, info, outputs: list[torch.Tensor]) -> dict:
    """'per_width': width, params, PSNR and SSIM of every allocated width of a streamable field (the same
    scores the growth lab shows)."""
    signal = trainer.signal
    target = signal.target_display()
    per_width = []
    for k, output in enumerate(outputs):
        columns = info.revealed[k]
        value, similarity = width_scores(signal, signal.as_display(output), target, columns)
        entry = {"width": info.widths[k], "params": info.params[k], "psnr": _finite_or_none(value),
                 "ssim": _finite_or_none(similarity) if signal.kind == "image" else None,
                 "state": info.states[k],
                 "end_step": info.stage_end_steps[k] if k < len(info.stage_end_steps) else None}
        if trainer.growth.spatial:
            entry["revealed_columns"] = columns
        per_width.append(entry)
    return {"per_width": per_width, "growth": {**trainer.growth.to_dict(), "widths": list(info.widths)}}


def _write_width_images(folder: str, trainer, outputs: list[torch.Tensor]) -> None:
    """width_W.png and residual_W.png for every allocated width (residuals with a symmetric colour map)."""
    signal = trainer.signal
    curve = signal.kind == "curve"
    for k, output in enumerate(outputs):
        width = trainer.widths[k]
        write_png(os.path.join(folder, f"width_{width}.png"), signal.as_display(output), curve=curve)
        residual = residual_display(signal, output, outputs[k - 1] if k else None)
        write_residual_png(os.path.join(folder, f"residual_{width}.png"), residual, curve=curve)


def save_runs(folder: str, trainers: list[tuple[str, Trainer]]) -> str:
    """Save each trainer as ``fieldlab fit`` would; runs the caller's thread (the worker's, in the app)."""
    written = []
    for label, trainer in trainers:
        target = folder if len(trainers) == 1 else os.path.join(folder, _slug(label))
        if trainer.signal.time is not None:
            from .time_cli import save_time_outputs

            metrics = save_time_outputs(target, trainer, trainer.seconds, label)
            score = metrics.get("psnr_test") or metrics.get("psnr_train")
            written.append(f"{label}: {score:.2f} dB -> {target}" if score is not None else f"{label} -> {target}")
            continue
        if trainer.signal.sdf is not None:
            from .sdf_cli import DEFAULT_RESOLUTION, save_sdf_outputs

            surface = save_sdf_outputs(target, trainer, trainer.seconds, DEFAULT_RESOLUTION)["surface"]
            chamfer = surface["chamfer_l1"]
            written.append(f"{label}: Chamfer-L1 {chamfer:.4f} -> {target}" if chamfer is not None else target)
            continue
        metrics = save_fit_outputs(target, trainer, trainer.seconds)
        written.append(f"{label}: {metrics['psnr']:.2f} dB -> {target}" if metrics["psnr"] is not None else target)
    return "saved " + "; ".join(written)


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-").replace("--", "-")


def separate_models_metrics(per_width: list[dict], trainers: list[Trainer]) -> dict:
    """'separate': the matched plain SIRENs' results; 'coverage': the paper's Table 1 for these widths (the
    parameters needed to cover the streamable widths' PSNR range: one network vs the sum of separate ones)."""
    separate = []
    for entry, trainer in zip(per_width, trainers):
        trainer.flush()
        _, prediction, value = trainer.evaluate(current=True)
        signal = trainer.signal
        similarity = ssim(signal.as_display(prediction), signal.target_display()) if signal.kind == "image" else None
        separate.append({"matches_width": entry["width"], "width": trainer.field_config.width, "params": trainer.params,
                         "steps": trainer.step_count, "psnr": _finite_or_none(value),
                         "ssim": _finite_or_none(similarity) if similarity is not None else None})
    psnrs = [e["psnr"] for e in per_width if e["psnr"] is not None]
    streamable = per_width[-1]["params"]
    total = sum(e["params"] for e in separate)
    coverage = {"psnr_low": min(psnrs), "psnr_high": max(psnrs), "streamable_params": streamable,
                "separate_params": total, "ratio": total / streamable}
    return {"separate": separate, "coverage": coverage}


def update_metrics(folder: str, extra: dict) -> None:
    path = os.path.join(folder, "metrics.json")
    with open(path, encoding="utf-8") as handle:
        metrics = json.load(handle)
    metrics.update(extra)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(metrics, handle, indent=2)

"""Writing a finished run to disk: metrics.json, reconstruction.png and the checkpoint (no Qt)."""
from __future__ import annotations

import json
import math
import os

import numpy as np

from models.checkpoint import save_field
from models.metrics import ssim
from models.training import Trainer


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


def plot_curve(values: np.ndarray, height: int = 256) -> np.ndarray:
    """Rasterise a [0, 1] curve into a white image with a dark line (one column per sample)."""
    n = values.size
    image = np.ones((height, n), dtype=np.float32)
    rows = np.round((1.0 - np.clip(values, 0, 1)) * (height - 1)).astype(int)
    for x in range(n):
        lo, hi = (rows[x], rows[x]) if x == 0 else sorted((rows[x - 1], rows[x]))
        image[lo:hi + 1, x] = 0.1
    return image


def _finite_or_none(value: float):
    return value if math.isfinite(value) else None


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
    metrics = {
        "signal": signal.name,
        "model": trainer.field_config.kind,
        "psnr": _finite_or_none(value),
        "ssim": _finite_or_none(ssim(reconstruction, target)) if signal.kind == "image" else None,
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
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "metrics.json"), "w", encoding="utf-8") as handle:
        json.dump(metrics, handle, indent=2)
    write_png(os.path.join(folder, "reconstruction.png"), reconstruction, curve=signal.kind == "curve")
    signal_meta = {"name": signal.name, "kind": signal.kind, "shape": list(signal.shape),
                   "channels": signal.channels, "extent": list(signal.extent)}
    save_field(folder, trainer.model, trainer.field_config, signal_meta,
               extra={"train": trainer.train_config.to_dict(), "metrics": {"psnr": metrics["psnr"], "steps": step}})
    return metrics


def save_runs(folder: str, trainers: list[tuple[str, Trainer]]) -> str:
    """Save each trainer as ``fieldlab fit`` would; runs the caller's thread (the worker's, in the app)."""
    written = []
    for label, trainer in trainers:
        target = folder if len(trainers) == 1 else os.path.join(folder, _slug(label))
        metrics = save_fit_outputs(target, trainer, trainer.seconds)
        written.append(f"{label}: {metrics['psnr']:.2f} dB -> {target}" if metrics["psnr"] is not None else target)
    return "saved " + "; ".join(written)


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-").replace("--", "-")

"""Reproducible bundles: one folder with everything behind a result, and ``fieldlab rebuild`` to redo it headless.

A bundle holds::

    bundle.json        format + version, FieldLab / torch versions, threads, device, the signal reference, the
                       scene (every setting, seeds included), steps, interactive edits, final metrics per run
    session.fieldlab   the whole session: weights of every run (all widths, partitions, members) + optimiser state
    runs/              per run (a sub-folder each when several), what 'fieldlab fit' writes: field.safetensors + field.json, metrics.json,
                       reconstruction.png (+ every width, the mesh of a 3D field, a video's frames)
    metrics.csv        per run and step: training loss and PSNR
    views/             PNGs of the views (reconstruction, error and spectrum of every run, the target) and, from the
                       app, the window as shown
    timelapse.gif      training progress recorded from the app's snapshots (when there is one)
    README.md          what is where, and the command that rebuilds it

No Qt here: the app calls ``write_bundle`` on its worker thread, and ``fieldlab bundle`` / ``fieldlab rebuild``
run it from a terminal.
"""
from __future__ import annotations

import csv
import json
import math
import os
import time

import numpy as np
import torch

from models.file_format import check_format
from models.scene_io import scene_from_dict, scene_to_dict
from models.sessions import SignalRef, restored_runs, open_session, save_runs_session, tensors_equal
from models.trainer_state import capture_runs

from .headless import save_runs, write_cropped_png, write_png

FORMAT = "fieldlab.bundle"
FORMAT_VERSION = 1


class BundleError(ValueError):
    """A bundle cannot be written or read; one line for the user."""


def write_bundle(folder: str, trainers, scene, signal_ref: SignalRef, signal, *, snapshot=None, edits: int = 0,
                 timelapse_frames=None, window_png: bytes | None = None, view: dict | None = None) -> str:
    """Write a bundle for ``trainers`` (call on the thread that trains them). ``snapshot``: the views' latest
    (for their PNGs); ``timelapse_frames``: RGB uint8 frames of training progress. Returns a one-line summary."""
    os.makedirs(folder, exist_ok=True)
    state = capture_runs(trainers)
    save_runs_session(os.path.join(folder, "session.fieldlab"), scene, signal_ref, signal, state, view)
    save_runs(os.path.join(folder, "runs"), trainers)
    _write_metrics_csv(os.path.join(folder, "metrics.csv"), trainers)
    views = os.path.join(folder, "views")
    os.makedirs(views, exist_ok=True)
    written = _write_view_pngs(views, snapshot) if snapshot is not None else 0
    if window_png:
        with open(os.path.join(views, "window.png"), "wb") as handle:
            handle.write(window_png)
        written += 1
    animation = ""
    if timelapse_frames:
        from models.mesh_io import write_animation

        animation = write_animation(os.path.join(folder, "timelapse.gif"), timelapse_frames, 12.0)
    document = {
        "format": FORMAT, "version": FORMAT_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "fieldlab": _version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "device": str(trainers[0][1].device) if trainers else "cpu",
        "signal": {"source": signal_ref.source, "size": signal_ref.size, "target": signal_ref.target,
                   "name": signal.name, "kind": signal.kind, "shape": list(signal.shape)},
        "scene": scene_to_dict(scene), "steps": state.step, "interactive_edits": int(edits),
        "runs": [_run_summary(label, trainer) for label, trainer in trainers],
    }
    with open(os.path.join(folder, "bundle.json"), "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, allow_nan=False)
    _write_readme(folder, document)
    return (f"bundle written to {folder}: {len(trainers)} run(s) at step {state.step}, {written} view PNG(s)"
            + (f", {animation}" if animation else ""))


def _version() -> str:
    from . import __version__

    return __version__


def _run_summary(label: str, trainer) -> dict:
    losses = trainer.loss_values
    psnr = trainer.evaluate(current=True)[2] if trainer.signal.kind in ("image", "curve") else math.nan
    return {"label": label, "params": int(trainer.params), "step": int(trainer.step_count),
            "seconds": round(float(trainer.seconds), 3),
            "final_loss": _finite(losses[-1]) if losses else None,
            "last_psnr": _finite(psnr),
            "field": trainer.field_config.to_dict(), "train": trainer.train_config.to_dict()}


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _write_metrics_csv(path: str, trainers) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run", "label", "step", "loss", "psnr_db"])
        for index, (label, trainer) in enumerate(trainers):
            psnr = dict(zip(trainer.psnr_steps, trainer.psnr_values))
            steps = sorted(set(trainer.loss_steps) | set(psnr))
            loss = dict(zip(trainer.loss_steps, trainer.loss_values))
            for step in steps:
                writer.writerow([index, label, step, _cell(loss.get(step)), _cell(psnr.get(step))])


def _cell(value) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.6g}"


def _write_view_pngs(folder: str, snapshot) -> int:
    """The views' arrays as PNGs: what the window shows, at display resolution."""
    count = 0
    curve = snapshot.signal.kind == "curve"
    if snapshot.target.size > 1 and snapshot.signal.kind in ("image", "curve", "video"):
        write_png(os.path.join(folder, "target.png"), snapshot.target, curve=curve)
        count += 1
    for index, run in enumerate(snapshot.runs):
        stem = os.path.join(folder, f"run{index}")
        reconstruction = np.asarray(run.reconstruction, dtype=np.float32)
        if run.sdf is not None:  # a 3D field: its slice, signed distance around 0.5
            write_png(stem + "_slice.png", np.clip(0.5 + reconstruction, 0, 1))
            count += 1
            continue
        if not np.isfinite(reconstruction).all() and not curve:
            write_cropped_png(stem + "_reconstruction.png", reconstruction)
        else:
            write_png(stem + "_reconstruction.png", np.nan_to_num(reconstruction), curve=curve)
        error = np.nan_to_num(np.asarray(run.error, dtype=np.float32))
        write_png(stem + "_error.png", np.clip(error * 4.0, 0, 1), curve=curve)  # x4: errors are small
        count += 2
        spectrum = np.asarray(run.spectrum, dtype=np.float32)
        if spectrum.ndim >= 2 and spectrum.size > 1:
            peak = float(np.nanmax(spectrum)) or 1.0
            write_png(stem + "_spectrum.png", np.nan_to_num(spectrum / peak))
            count += 1
        for width in run.widths:
            write_png(f"{stem}_width{width.width}.png", np.nan_to_num(np.asarray(width.reconstruction)), curve=curve)
            count += 1
    return count


def _write_readme(folder: str, document: dict) -> None:
    runs = "\n".join(f"| {r['label']} | {r['params']:,} | {r['step']} | "
                     f"{'–' if r['last_psnr'] is None else format(r['last_psnr'], '.2f')} |" for r in document["runs"])
    edits = document["interactive_edits"]
    text = f"""# FieldLab bundle: {document['signal']['name']}, {document['scene']['preset']} lab

Made {document['created']} by FieldLab {document['fieldlab']} (torch {document['torch']}, {document['threads']} CPU
thread(s), device {document['device']}), after {document['steps']} steps.

| Run | Parameters | Steps | Last PSNR (dB) |
|---|---|---|---|
{runs}

- `session.fieldlab`: open it in FieldLab (File → Open session…) to continue exactly where this stopped.
- `runs/`: the runs as `fieldlab fit` writes them, one folder per run when there are several
  (`fieldlab render runs --size 2048 --out big.png` re-renders one at any size).
- `metrics.csv`: loss and PSNR per run and step; `views/`: the views as PNGs; `timelapse.gif`: training progress.

Rebuild from the settings and seeds alone, headless:

    fieldlab rebuild {os.path.basename(os.path.abspath(folder))} --out rebuilt

{"This session had " + str(edits) + " interactive edit(s) (crops, learning-rate changes, branches, grown stages): a " +
 "rebuild from the settings does not replay them, so compare with `session.fieldlab` instead." if edits else
 "Training had no interactive edits: the rebuild retrains the same steps from the same seeds."}
"""
    with open(os.path.join(folder, "README.md"), "w", encoding="utf-8") as handle:
        handle.write(text)


def read_bundle(folder: str) -> dict:
    path = os.path.join(folder, "bundle.json")
    if not os.path.isfile(path):
        raise BundleError(f"{folder}: not a FieldLab bundle (no bundle.json)")
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BundleError(f"{path}: unreadable ({str(exc).splitlines()[0]})") from None
    check_format(document, FORMAT, FORMAT_VERSION, path, BundleError, "bundle")
    return document


def rebuild(folder: str, out: str, threads: int | None = None, progress=None) -> dict:
    """Retrain the bundle's scene from its seeds for its steps, save the runs to ``out`` and compare with the
    bundle's saved weights. Returns a report (also written to ``out/rebuild.json``)."""
    document = read_bundle(folder)
    try:
        scene = scene_from_dict(document["scene"])
        steps = int(document["steps"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{folder}: invalid bundle description ({exc})") from None
    opened = open_session(os.path.join(folder, "session.fieldlab"))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or int(document.get("threads", previous)))
    try:
        trainers = scene.build(opened.signal)
        started = time.perf_counter()
        for step in range(steps):
            for _, trainer in trainers:
                trainer.step()
            if progress is not None:
                progress(step + 1, steps)
        for _, trainer in trainers:
            trainer.flush()
        seconds = time.perf_counter() - started
    finally:
        torch.set_num_threads(previous)
    saved = restored_runs(opened)
    report = {"steps": steps, "seconds": round(seconds, 2), "threads": threads or document.get("threads"),
              "interactive_edits": document.get("interactive_edits", 0), "runs": []}
    for (label, trainer), (_, original) in zip(trainers, saved):
        mine = {k: v for k, v in trainer.model.state_dict().items()}
        theirs = {k: v for k, v in original.model.state_dict().items()}
        same = tensors_equal(mine, theirs)
        difference = None if same or mine.keys() != theirs.keys() else max(
            float((mine[k].float() - theirs[k].float()).abs().nan_to_num(0).max()) for k in mine)
        scored = trainer.signal.kind in ("image", "curve")
        psnr_rebuilt = trainer.evaluate(current=True)[2] if scored else math.nan
        psnr_saved = original.evaluate(current=True)[2] if scored else math.nan
        report["runs"].append({"label": label, "bit_identical": same, "max_weight_difference": difference,
                               "psnr_rebuilt": _finite(psnr_rebuilt), "psnr_saved": _finite(psnr_saved)})
    save_runs(os.path.join(out, "runs"), trainers)
    with open(os.path.join(out, "rebuild.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    return report

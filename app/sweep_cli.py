"""Headless bias-range sweeps: ``fieldlab sweep --activation finer --k 0,1,2,5,10 --out DIR``.

Every (activation, k) member trains on the same signal in lockstep (models/sweep.py); DIR gets one
metrics.json with a ``runs`` entry per member, grid.png (reconstruction, |error| and log spectrum per member,
ordered as the runs), and each member's field in runs/<name>/ for ``fieldlab render``.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from models.activations import ACTIVATION_NAMES
from models.metrics import HF_CUTOFF, high_frequency_energy, log_spectrum
from models.sweep import DEFAULT_KS, STRATEGIES, MemberTrainer, parse_ks

SWEEP_EXAMPLES = """\
examples:
  fieldlab sweep --signal camera --activation finer --k 0,0.5,1,2,5,10 --reference --steps 300 --out runs/sweep
  fieldlab sweep --signal camera --activation finer,finer-gauss --k default,1,5 --size 128 --steps 200 --out runs/s2
"""


def add_sweep_command(commands, epilog: str) -> None:
    import argparse

    sweep = commands.add_parser("sweep", help="train many activations / bias ranges k side by side (FINER++ lab)",
                                epilog=SWEEP_EXAMPLES + "\n" + epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument("--signal", required=True, help="sample name or image file")
    sweep.add_argument("--activation", default="finer", metavar="NAME[,NAME...]",
                       help=f"activations to sweep, comma-separated: {', '.join(ACTIVATION_NAMES)} (default finer)")
    sweep.add_argument("--k", default=",".join(f"{k:g}" for k in DEFAULT_KS), metavar="K[,K...]",
                       help="bias ranges k (first-layer biases ~ U(-k, k)): numbers, 'default' (nn.Linear's init) or "
                            "ranges A:B:N (N values from A to B) (default 0,0.5,1,2,5,10)")
    sweep.add_argument("--reference", action="store_true",
                       help="also train each FINER++ activation's classic counterpart (SIREN, Gauss, WIRE) at default init")
    sweep.add_argument("--width", type=int, default=64, help="hidden units per layer (default 64)")
    sweep.add_argument("--depth", type=int, default=4,
                       help="hidden (activated) layers (default 4: the FINER reference's '3 hidden layers' plus its first)")
    sweep.add_argument("--w0", type=float, default=30.0, help="sine frequency factor (default 30)")
    sweep.add_argument("--size", type=int, default=256, help="working size: longer image side in px (default 256)")
    sweep.add_argument("--steps", type=int, default=300, help="optimisation steps per member (default 300)")
    sweep.add_argument("--lr", type=float, default=None,
                       help="SIREN's learning rate (default 5e-4, as the FINER++ reference scripts); the others scale as "
                            "the app's defaults: Gauss 10x, WIRE 5x, FINER++ Gauss and wavelet 2x")
    sweep.add_argument("--no-lr-decay", action="store_true",
                       help="constant learning rate (default: the reference's decay to lr/10 over --steps)")
    sweep.add_argument("--batch", type=int, default=0, help="coordinates per step, 0 = full signal (default 0)")
    sweep.add_argument("--seed", type=int, default=0, help="seed of every member's weights and batches (default 0)")
    sweep.add_argument("--strategy", choices=STRATEGIES, default="auto",
                       help="interleaved: members step in turn; batched: stacked along a model axis (vmap); "
                            "auto: batched on CUDA, interleaved elsewhere")
    sweep.add_argument("--device", default="auto", help="auto (CUDA > MPS > CPU), cpu, cuda, cuda:N or mps")
    sweep.add_argument("--out", required=True, help="output folder")
    sweep.add_argument("--quiet", action="store_true", help="no progress output")


def sweep_scene_from_args(args):
    from models.fields import FieldConfig
    from models.scenes import Scene
    from models.sweep import SweepSettings
    from models.training import TrainConfig, select_device

    activations = tuple(a.strip() for a in args.activation.split(",") if a.strip())
    select_device(args.device)
    settings = SweepSettings(activations=activations, ks=parse_ks(args.k), reference=args.reference,
                             strategy=args.strategy)
    field = FieldConfig(kind=activations[0] if activations else "finer", width=args.width, depth=args.depth,
                        w0=args.w0, seed=args.seed)
    lr = args.lr if args.lr is not None else 5e-4
    train = TrainConfig(lr=lr, batch_size=args.batch, seed=args.seed, device=args.device,
                        lr_decay_steps=0 if args.no_lr_decay else max(1, args.steps))
    return Scene(field=field, train=train, preset="sweep", sweep=settings)


def sweep_main(args) -> int:
    from models.training import TrainingDiverged, configure_cpu_threads

    from .cli import UserFacingError, load_signal_or_fail
    from .headless import _slug, save_fit_outputs

    if args.steps < 0:
        raise UserFacingError(f"--steps must be >= 0, got {args.steps}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UserFacingError(f"--out {args.out}: exists and is not a folder")
    try:
        scene = sweep_scene_from_args(args)
    except ValueError as exc:
        raise UserFacingError(str(exc)) from None
    signal = load_signal_or_fail(args.signal, args.size)
    configure_cpu_threads(leave_one_for_gui=False)
    try:
        runs = scene.build(signal)
    except ValueError as exc:
        raise UserFacingError(str(exc)) from None
    verbose = not args.quiet
    strategy = "batched" if isinstance(runs[0][1], MemberTrainer) else "interleaved"
    if verbose:
        print(f"fieldlab sweep: {len(runs)} members on {signal.name} {'x'.join(map(str, signal.shape))}, {strategy}",
              file=sys.stderr)
    started = time.perf_counter()
    warnings = {}
    report_every = max(1, args.steps // 10)
    for step in range(args.steps):
        for _, trainer in runs:
            trainer.step()
        if (step + 1) % report_every == 0 or step + 1 == args.steps:
            for label, trainer in runs:
                try:
                    trainer.flush()
                except TrainingDiverged as exc:
                    warnings[label] = str(exc)
            if verbose:
                print(f"  step {step + 1}/{args.steps}  {time.perf_counter() - started:.1f} s", file=sys.stderr)
    seconds = time.perf_counter() - started
    target = signal.target_display()
    entries, cells = [], []
    try:
        for (label, trainer), (config, train) in zip(runs, scene.sweep_members()):
            folder = os.path.join(args.out, "runs", _slug(label))
            metrics = save_fit_outputs(folder, trainer, trainer.seconds)
            reconstruction = signal.as_display(trainer.predict())
            entry = {"label": label, "activation": config.kind, "k": config.bias_range, "psnr": metrics["psnr"],
                     "ssim": metrics["ssim"] if signal.kind == "image" else None, "params": trainer.params,
                     "hf_energy": round(high_frequency_energy(reconstruction), 6), "lr": train.lr,
                     "steps": trainer.step_count, "seconds": round(trainer.seconds, 3), "folder": os.path.relpath(folder, args.out)}
            if label in warnings:
                entry["warning"] = warnings[label]
            entries.append(entry)
            cells.append((label, metrics["psnr"], reconstruction))
        summary = {
            "signal": signal.name, "shape": list(signal.shape), "steps": args.steps, "seconds": round(seconds, 3),
            "strategy": strategy,
            "device": str(runs[0][1].device), "field": scene.field.to_dict(), "train": scene.train.to_dict(),
            "sweep": scene.sweep.to_dict(),
            "hf_energy_definition": f"share of the reconstruction's spectral energy (mean removed, channels averaged) "
                                    f"at radial frequencies above {HF_CUTOFF} cycles per pixel",
            "hf_cutoff": HF_CUTOFF, "target_hf_energy": round(high_frequency_energy(target), 6),
            "runs": entries,
        }
        if signal.kind == "image":
            write_grid_png(os.path.join(args.out, "grid.png"), target, cells)
        with open(os.path.join(args.out, "metrics.json"), "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2)
    except OSError as exc:
        raise UserFacingError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    if verbose:
        for entry in entries:
            ssim_text = f"  SSIM {entry['ssim']:.4f}" if entry.get("ssim") is not None else ""
            print(f"  {entry['label']:<28} PSNR {entry['psnr']:.2f} dB{ssim_text}  HF energy {entry['hf_energy']:.4f}"
                  + (f"  ({entry['warning']})" if "warning" in entry else ""), file=sys.stderr)
        print(f"fieldlab sweep: {len(entries)} members, {args.steps} steps in {seconds:.1f} s -> {args.out}", file=sys.stderr)
    return 0


def error_colors(error: np.ndarray, top: float = 0.25) -> np.ndarray:
    """|error| in [0, top] as a black-red-yellow-white heat map (RGB in [0, 1])."""
    t = np.clip(np.asarray(error, dtype=np.float32) / top, 0.0, 1.0)[..., None]
    return np.concatenate([np.clip(3 * t, 0, 1), np.clip(3 * t - 1, 0, 1), np.clip(3 * t - 2, 0, 1)], axis=-1)


def write_grid_png(path: str, target: np.ndarray, cells: list[tuple[str, float, np.ndarray]]) -> None:
    """One column per member (and the target first): reconstruction, |error|, log spectrum; a caption above."""
    from PIL import Image, ImageDraw

    from .headless import write_png

    def rgb(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float32)
        return np.repeat(values[..., None], 3, axis=2) if values.ndim == 2 else values

    top = float(log_spectrum(target).max()) or 1.0
    zoom = max(1, -(-128 // max(target.shape[:2])))  # small working sizes are enlarged (nearest) to be readable

    def enlarge(values: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(values, zoom, axis=0), zoom, axis=1)

    target_spectrum = log_spectrum(target)
    h, w = target.shape[0] * zoom, target.shape[1] * zoom
    gap, caption = 4, 40
    columns = [("target", None, target), *cells]
    canvas = np.ones((caption + 3 * h + 2 * gap, len(columns) * (w + gap) - gap, 3), dtype=np.float32)
    for i, (_, _, image) in enumerate(columns):
        x = i * (w + gap)
        error = np.abs(image - target)
        error = error.mean(axis=2) if error.ndim == 3 else error
        spectrum = target_spectrum if image is target else log_spectrum(image)
        canvas[caption:caption + h, x:x + w] = enlarge(rgb(np.clip(image, 0, 1)))
        canvas[caption + h + gap:caption + 2 * h + gap, x:x + w] = enlarge(error_colors(error))
        canvas[caption + 2 * (h + gap):caption + 3 * h + 2 * gap, x:x + w] = enlarge(rgb(np.clip(spectrum / top, 0, 1)))
    write_png(path, canvas)
    picture = Image.open(path).convert("RGB")
    draw = ImageDraw.Draw(picture)
    for i, (label, value, _) in enumerate(columns):
        name, _, k = label.rpartition(" k=") if " k=" in label else label.rpartition(" default")
        lines = [label] if value is None else [name, ("k=" + k) if " k=" in label else "default bias", f"{value:.2f} dB"]
        text = "\n".join(lines)
        draw.multiline_text((i * (w + gap) + 2, 0), text, fill=(0, 0, 0), spacing=1)
    picture.save(path)

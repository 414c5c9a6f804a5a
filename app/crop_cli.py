"""Headless crop & extend: ``fieldlab fit --model local-global ...`` and ``fieldlab crop DIR --remove i,j``.

Partition indices are (row, column) of the partition grid, counted from the top-left, as in the GUI.
"""
from __future__ import annotations

import json
import os
import sys

from models.scenes import REGIONS, CropSettings

EXTENSION_INIT_HELP = ("copy: the weights of the trained partition that mirror padding puts there (the paper); "
                       "reflect: the same, first layer reflected across the region's edge; fresh: SIREN init")


def partition_arguments(parser) -> None:
    defaults = CropSettings()
    group = parser.add_argument_group("partitioned fields (--model local-global | siren-per-partition)")
    group.add_argument("--partitions", default=",".join(map(str, defaults.partitions)), metavar="ROWS,COLS",
                       help="partition factors per axis, rows first (default 8,8)")
    group.add_argument("--partition-size", type=int, default=0, metavar="PX",
                       help="automatic partitioning: partitions of about PX samples per side (overrides --partitions)")
    group.add_argument("--params", type=int, default=None, metavar="N",
                       help=f"parameter budget that sets the local and global widths (default {defaults.params:,}; "
                            "ignored when --local-width is given)")
    group.add_argument("--global-ratio", type=float, default=defaults.global_ratio,
                       help="wanted share of global weights under the budget (default 0.1; the paper: 0.05-0.15)")
    group.add_argument("--local-width", type=int, default=None, help="local sub-network width (fixes the widths)")
    group.add_argument("--global-width", type=int, default=None, help="global SIREN width (with --local-width)")
    group.add_argument("--baselines", action="store_true",
                       help="also train a plain SIREN and the other partitioned model at a matched parameter count")
    group.add_argument("--extend", action="store_true",
                       help="extension experiment: train on --region for --extend-at steps, add the missing partitions, "
                            "then fine-tune for --steps, next to a smaller SIREN fine-tuned and a new SIREN from scratch")
    group.add_argument("--region", choices=tuple(REGIONS), default=defaults.region, help="part trained before extending")
    group.add_argument("--extend-at", type=int, default=defaults.extend_at, help="steps before the extension (default 300)")
    group.add_argument("--init", choices=("copy", "reflect", "fresh"), default=defaults.extension_init,
                       help="how added partitions start: " + EXTENSION_INIT_HELP)


def add_crop_command(commands, epilog: str) -> None:
    import argparse

    crop = commands.add_parser("crop", help="remove partitions from a saved Local-Global field", epilog=epilog,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    crop.add_argument("folder", help="a folder written by 'fieldlab fit --model local-global'")
    crop.add_argument("--remove", nargs="+", default=[], metavar="I,J", help="partitions to remove: row,column ...")
    crop.add_argument("--keep", nargs="+", default=[], metavar="I,J", help="keep only these partitions (crop the rest)")
    crop.add_argument("--out", required=True, help="folder for the cropped field, its metrics.json and reconstruction.png")


def crop_settings_from_args(args) -> CropSettings:
    from .cli import UserFacingError

    try:
        partitions = tuple(int(c) for c in args.partitions.split(",") if c.strip())
    except ValueError:
        raise UserFacingError(f"--partitions {args.partitions!r}: expected factors such as 8,8") from None
    widths_given = args.local_width is not None
    if args.global_width is not None and not widths_given:
        raise UserFacingError("--global-width needs --local-width (or use --params and --global-ratio)")
    if widths_given and args.params is not None:
        raise UserFacingError("give either --params (a budget) or --local-width/--global-width, not both")
    defaults = CropSettings()
    try:
        return CropSettings(
            model=args.model, partitions=partitions, partition_size=args.partition_size,
            params=0 if widths_given else (defaults.params if args.params is None else args.params),
            global_ratio=args.global_ratio,
            local_width=args.local_width if widths_given else defaults.local_width,
            global_width=(args.global_width if args.global_width is not None else defaults.global_width) if widths_given else defaults.global_width,
            baselines=args.baselines, extend=args.extend, region=args.region, extend_at=args.extend_at,
            extension_init=args.init, activation=args.activation, bias_range=args.k)
    except ValueError as exc:
        raise UserFacingError(str(exc)) from None


def fit_partitioned(args, signal, field_config, train_config) -> int:
    """fit for the partitioned models: the main run, then baselines or the extension comparison."""
    from dataclasses import replace

    from models.scenes import Scene
    from models.training import configure_cpu_threads
    from .cli import UserFacingError, train_with_progress
    from .headless import save_fit_outputs, update_metrics

    if signal.kind != "image" and args.extend:
        raise UserFacingError("--extend needs an image signal")
    settings = crop_settings_from_args(args)
    scene = Scene(field=replace(field_config, kind="siren"), train=train_config, preset="crop", crop=settings)
    configure_cpu_threads(leave_one_for_gui=False)
    try:
        runs = scene.build(signal)
    except ValueError as exc:
        raise UserFacingError(str(exc)) from None
    total = args.steps + (settings.extend_at if settings.extend else 0)
    results, seconds = [], 0.0
    for i, (label, trainer) in enumerate(runs):
        if not args.quiet and len(runs) > 1:
            print(f"fieldlab: training {label} ({trainer.params:,} params) for {total} steps", file=sys.stderr)
        warning, elapsed = train_with_progress(trainer, total, args.quiet)
        if warning:
            print(f"fieldlab: warning: {label}: {warning}; saving the restored weights", file=sys.stderr)
        if i == 0:
            seconds = elapsed
        results.append((label, trainer, elapsed))
    label, trainer, _ = results[0]
    try:
        metrics = save_fit_outputs(args.out, trainer, seconds)
        extra = {"label": label}
        if len(results) > 1:
            extra["compared"] = [_run_summary(lbl, t, s) for lbl, t, s in results]
        update_metrics(args.out, extra)
    except OSError as exc:
        raise UserFacingError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    part = metrics["partitions"]
    print(f"fieldlab: {signal.name}: {label}: {metrics['params']:,} params ({part['global_params']:,} global, "
          f"{part['local_params_per_partition']:,} per partition), {metrics['steps']} steps in {seconds:.1f} s: "
          f"PSNR {metrics['psnr']:.2f} dB -> {args.out}")
    for entry in extra.get("compared", [])[1:]:
        ext = f", after extension MSE {entry['final_loss']:.3g}" if entry.get("extension_step") is not None else ""
        print(f"  {entry['label']}: {entry['params']:,} params  PSNR {entry['psnr']:.2f} dB{ext}  ({entry['seconds']:.1f} s)")
    return 0


def _run_summary(label: str, trainer, seconds: float) -> dict:
    from models.metrics import ssim
    from .headless import _finite_or_none

    trainer.flush()
    _, prediction, value = trainer.evaluate(current=True)
    signal = trainer.signal
    similarity = ssim(signal.as_display(prediction), signal.target_display()) if trainer.partition_info() is None else None
    entry = {"label": label, "params": trainer.params, "steps": trainer.step_count, "psnr": _finite_or_none(value),
             "ssim": _finite_or_none(similarity) if similarity is not None else None, "seconds": round(seconds, 3),
             "extension_step": trainer.extension_step}
    if trainer.extension_step is not None:  # the paper's Fig. 7: training MSE from the extension on
        curve = [(s - trainer.extension_step, v) for s, v in zip(trainer.loss_steps, trainer.loss_values)
                 if s >= trainer.extension_step]
        entry["extension_mse"] = [{"step": s, "mse": v / 4.0} for s, v in curve]
        entry["final_loss"] = curve[-1][1] / 4.0 if curve else None
    return entry


def parse_partition(text: str, grid: tuple[int, ...]) -> int:
    from models.local_global import LocalGlobalConfig, flat_partition_index
    from .cli import UserFacingError

    try:
        index = tuple(int(v) for v in text.split(","))
        return flat_partition_index(LocalGlobalConfig(in_features=len(grid), partitions=grid), index)
    except ValueError as exc:
        raise UserFacingError(f"partition {text!r}: {exc}" if "outside" in str(exc) else
                              f"partition {text!r}: expected row,column such as 2,3") from None


def crop_main(args) -> int:
    from models.checkpoint import CheckpointError, load_field, render_field, save_field
    from models.local_global import LocalGlobalField
    from .cli import UserFacingError
    from .headless import write_cropped_png

    try:
        saved = load_field(args.folder)
    except CheckpointError as exc:
        raise UserFacingError(str(exc)) from None
    if not isinstance(saved.model, LocalGlobalField):
        raise UserFacingError(f"{args.folder}: not a partitioned field (fit it with --model local-global)")
    if bool(args.remove) == bool(args.keep):
        raise UserFacingError("give --remove I,J ... or --keep I,J ... (one of them)")
    if os.path.abspath(args.out) == os.path.abspath(args.folder):
        raise UserFacingError("--out must differ from the input folder (the original is kept)")
    model = saved.model
    grid = model.config.partitions
    chosen = sorted({parse_partition(text, grid) for text in (args.remove or args.keep)})
    present = model.present_list
    remove = chosen if args.remove else [p for p in present if p not in set(chosen)]
    try:
        cropped = model.cropped(remove)
    except ValueError as exc:
        raise UserFacingError(str(exc)) from None
    if not cropped.present_list:
        raise UserFacingError("that would crop every partition: nothing would be left")
    meta = saved.meta
    extra = {k: v for k, v in meta.items() if k in ("train",)}
    extra["cropped_from"] = os.path.abspath(args.folder)
    try:
        save_field(args.out, cropped, cropped.config, meta.get("signal", {}), extra=extra)
        before_bytes = os.path.getsize(os.path.join(args.folder, "field.safetensors"))
        after_bytes = os.path.getsize(os.path.join(args.out, "field.safetensors"))
        values = render_field(load_field(args.out), None)
        write_cropped_png(os.path.join(args.out, "reconstruction.png"), ((values.numpy() + 1.0) * 0.5))
        params_before = sum(p.numel() for p in model.parameters())
        params_after = sum(p.numel() for p in cropped.parameters())
        metrics = {"source": os.path.abspath(args.folder), "partitions": list(grid),
                   "removed": [list(_grid_index(grid, p)) for p in remove],
                   "present": [list(_grid_index(grid, p)) for p in cropped.present_list],
                   "params_before": params_before, "params_after": params_after,
                   "bytes_before": before_bytes, "bytes_after": after_bytes}
        metrics.update(_kept_psnr(meta, values))
        with open(os.path.join(args.out, "metrics.json"), "w", encoding="utf-8") as handle:
            json.dump(metrics, handle, indent=2)
    except OSError as exc:
        raise UserFacingError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    psnr_text = f", PSNR of the kept part {metrics['psnr_kept']:.2f} dB" if metrics.get("psnr_kept") is not None else ""
    print(f"fieldlab: cropped {len(remove)} of {len(present)} partitions: {params_before:,} -> {params_after:,} params, "
          f"{before_bytes:,} -> {after_bytes:,} bytes{psnr_text} -> {args.out}")
    return 0


def _grid_index(grid, flat: int) -> tuple[int, ...]:
    index = []
    for parts in reversed(grid):
        index.append(flat % parts)
        flat //= parts
    return tuple(reversed(index))


def _kept_psnr(meta: dict, values) -> dict:
    """PSNR of the kept partitions against the original signal, when it is a bundled sample we can reload."""
    import numpy as np

    from models.metrics import psnr
    from models.signals import SAMPLE_IMAGES, load_signal

    signal_meta = meta.get("signal", {})
    name, shape = signal_meta.get("name"), tuple(signal_meta.get("shape", ()))
    if name not in SAMPLE_IMAGES or len(shape) != 2:
        return {"psnr_kept": None, "psnr_note": "the signal is not a bundled sample: no target to compare with"}
    signal = load_signal(name, max(shape))
    if signal.shape != shape:
        return {"psnr_kept": None, "psnr_note": "could not rebuild the signal at the trained size"}
    reconstruction = ((values.numpy() + 1.0) * 0.5).reshape(signal.target_display().shape)
    kept = np.isfinite(reconstruction)
    return {"psnr_kept": psnr(reconstruction[kept], signal.target_display()[kept])}

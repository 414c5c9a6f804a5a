"""The ``fieldlab`` command: the GUI by default, plus headless ``fit`` and ``render`` on the same core.

Only ``fieldlab`` / ``fieldlab gui`` imports Qt; ``fit`` and ``render`` run on machines with no display.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

from . import __version__
from models.fields import MODEL_KINDS
from models.scenes import DEFAULT_FIELD, DEFAULT_SIGNAL, DEFAULT_SIZE, DEFAULT_TRAIN, PARTITIONED_DEPTH, PARTITIONED_MODELS

from .crop_cli import add_crop_command, crop_main, fit_partitioned, partition_arguments
from .sweep_cli import add_sweep_command, sweep_main
from .time_cli import add_time_arguments
from .session_cli import SESSION_COMMANDS, add_session_commands, session_main

EPILOG = """\
signals: a scikit-image sample name (camera, astronaut, coffee, chelsea, rocket, hubble_deep_field, moon, ...),
'sinusoids' (the 1D sum of sinusoids), a PNG/JPEG/TIFF/BMP file, a 3D shape (sphere, torus, box, gyroid,
bumpy-sphere, blobs, trimesh primitives, bundled meshes) or a mesh file (OBJ/PLY/STL/GLB/OFF); a video ('tour',
'cuts': synthesized from the bundled photos; an MP4/GIF/AVI/MOV/WebM file or a folder of frames) or a moving
shape ('morph', 'bounce', or a folder of mesh files, one per frame).

examples:
  fieldlab                                   open the app on the default scene (cameraman, SIREN)
  fieldlab gui --signal astronaut --model fourier
  fieldlab fit --signal camera --model siren --steps 500 --out runs/cam
  fieldlab render runs/cam --out cam_1024.png --size 1024
  fieldlab fit --signal camera --model streamable --widths 16,32,64,128 --stage-steps 300 --out runs/grow
  fieldlab render runs/grow --width 32 --residual --out residual_32.png
  fieldlab fit --signal camera --model local-global --partitions 8,8 --global-ratio 0.1 --steps 300 --out runs/lg
  fieldlab crop runs/lg --remove 0,0 0,1 3,4 --out runs/lg_cropped
  fieldlab fit --signal camera --model finer --k 2 --width 64 --depth 4 --steps 300 --out runs/finer
  fieldlab sweep --signal camera --activation finer --k 0,0.5,1,2,5,10 --reference --steps 300 --out runs/sweep
  fieldlab fit --signal camera --model local-global --extend --region top --extend-at 300 --steps 300 --out runs/ext
  fieldlab fit --signal torus --model siren --steps 500 --out runs/torus      (3D: a signed distance field)
  fieldlab fit --signal my_mesh.obj --steps 1000 --out runs/mesh
  fieldlab render runs/torus --mesh torus.ply --resolution 256
  fieldlab fit --signal tour --model resfield --rank 10 --compare same-width --steps 1000 --out runs/tour
  fieldlab render runs/tour --time 0.25 --out tour_t025.png --size 256   (any t in [-1, 1], between frames too)
  fieldlab render runs/tour --sequence tour.mp4 --frames 96               (or .gif; --base: residual off)
  fieldlab fit --signal my_clip.mp4 --frames 32 --size 96 --model resfield --time-rows 16 --out runs/clip
  fieldlab fit --signal morph --model resfield --rank 10 --steps 1000 --out runs/morph
  fieldlab render runs/morph --time 0 --mesh morph_middle.ply
"""


def _model_arguments(parser: argparse.ArgumentParser, for_gui: bool) -> None:
    parser.add_argument("--signal", default=DEFAULT_SIGNAL if for_gui else None, required=not for_gui,
                        help="sample name or image file" + (f" (default {DEFAULT_SIGNAL})" if for_gui else ""))
    parser.add_argument("--model", choices=(*MODEL_KINDS, "streamable", *PARTITIONED_MODELS, "resfield"),
                        default=DEFAULT_FIELD.kind,
                        help=f"network kind (default {DEFAULT_FIELD.kind}): siren, finer (FINER++ sine), gauss, "
                             "finer-gauss, wire, finer-wavelet, relu, fourier; streamable: a SIREN grown through --widths; "
                             "local-global / siren-per-partition: croppable partitioned fields (see --partitions); "
                             "resfield: a SIREN (or --activation finer) with time-dependent ResField layers, for "
                             "videos and moving shapes (see --rank)")
    parser.add_argument("--k", type=float, default=None,
                        help="FINER++ bias range: first-layer biases ~ U(-k, k) (default: nn.Linear's init, k = 0.707)")
    parser.add_argument("--scale", type=float, default=None,
                        help="s0 of the Gauss / wavelet activations (default 30 Gauss, 10 wavelets)")
    parser.add_argument("--omega-f", type=float, default=None,
                        help="inner sine frequency of finer-gauss / finer-wavelet (default 3 / 5, the reference's)")
    parser.add_argument("--width", type=int, default=DEFAULT_FIELD.width, help=f"hidden units per layer (default {DEFAULT_FIELD.width})")
    parser.add_argument("--depth", type=int, default=None,
                        help=f"hidden (sine) layers (default {DEFAULT_FIELD.depth}; 4 for the partitioned models, as the paper)")
    parser.add_argument("--w0", type=float, default=DEFAULT_FIELD.w0, help=f"SIREN frequency factor (default {DEFAULT_FIELD.w0:g})")
    parser.add_argument("--sigma", type=float, default=DEFAULT_FIELD.fourier_sigma,
                        help=f"Fourier-feature scale (default {DEFAULT_FIELD.fourier_sigma:g})")
    parser.add_argument("--size", type=int, default=None,
                        help=f"working size: longer image side in px (default {DEFAULT_SIZE}; 96 for the sweep preset, "
                             "64 for videos)")
    parser.add_argument("--target", choices=("sdf", "occupancy"), default="sdf",
                        help="3D shapes: regress the signed distance (default; surface at 0) or the occupancy "
                             "(1 inside, 0 outside; surface at 0.5)")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: per model kind, 1e-3 for SIREN)")
    parser.add_argument("--batch", type=int, default=DEFAULT_TRAIN.batch_size,
                        help=f"coordinates per step, 0 = full signal (default {DEFAULT_TRAIN.batch_size})")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights and minibatches (default 0)")
    parser.add_argument("--device", default="auto", help="auto (CUDA > MPS > CPU), cpu, cuda, cuda:N or mps")
    growth = parser.add_argument_group("streamable growth (--model streamable)")
    growth.add_argument("--widths", default="16,32,64,128", help="stage widths, strictly increasing (default 16,32,64,128)")
    growth.add_argument("--stage-steps", default="100,200,300,600", metavar="N[,N...]",
                        help="steps per stage, or one count per stage such as 100,200,300,600 (the last repeats; "
                             "default 100,200,300,600: narrow stages saturate early)")
    growth.add_argument("--growth-mode", choices=("progressive", "slimmable"), default="progressive",
                        help="progressive: earlier stages frozen (the paper's method); slimmable: all widths every step")
    growth.add_argument("--plateau", action="store_true", help="end a stage early when its loss stops improving")
    growth.add_argument("--spatial", action="store_true",
                        help="spatial growing: stage k learns the first (k+1)/K of the columns, zero elsewhere")
    growth.add_argument("--baseline", action="store_true",
                        help="also train separate SIRENs matching each width's parameter count (the paper's "
                             "'individual'); fit adds them and the parameters needed to cover the PSNR range to metrics.json")
    growth.add_argument("--activation", choices=("siren", "sine", "finer", "gauss", "finer-gauss"), default="siren",
                        help="activation of a streamable or partitioned field: siren (alias sine), finer (FINER++ "
                             "variable-periodic sine), gauss or finer-gauss (with --k for FINER++'s first-layer bias range)")
    growth.add_argument("--stage-bias-ranges", default="", metavar="LO:HI,...",
                        help="per stage, the range of the new units' first-layer biases, e.g. ',1:2,2:3,3:4' "
                             "(empty entry: default init); the FINER++ streamable variant")
    partition_arguments(parser)
    add_time_arguments(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fieldlab", description="FieldLab: watch neural fields learn. Without a command, opens the app.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter, add_help=False)
    parser.add_argument("-h", "--help", action=_HelpAll, help="show this help, with every command's options, and exit")
    parser.add_argument("--version", action="version", version=f"fieldlab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    gui = commands.add_parser("gui", help="open the app (the default)", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    _model_arguments(gui, for_gui=True)
    gui.add_argument("--preset", choices=("image", "spectral-bias", "growth", "crop", "sweep", "time"), default="image",
                     help="image: one field; spectral-bias: ReLU, Fourier features and SIREN side by side; "
                          "growth: the spectral growth lab (same as --model streamable); crop: the crop & extend "
                          "lab (same as --model local-global); sweep: the FINER++ bias-range sweep (--model picks "
                          "finer, finer-gauss or finer-wavelet); time: the ResFields lab (videos and moving shapes; "
                          "opened by any such --signal)")
    gui.add_argument("--paused", action="store_true", help="open without starting training")
    gui.add_argument("--session", default=None, metavar="FILE.fieldlab",
                     help="open a saved session (File → Save session) instead of --signal and the model options")
    gui.add_argument("--time", type=float, default=None, metavar="T",
                     help="videos and moving shapes: where the time slider starts, in [-1, 1] (default -1)")
    gui.add_argument("--screenshot", metavar="FILE.png", help="train, save a screenshot of the window, then quit")
    gui.add_argument("--screenshot-after", type=float, default=20.0, metavar="SECONDS",
                     help="training time before --screenshot is taken (default 20)")

    fit = commands.add_parser("fit", help="train a field headless and save it", epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    _model_arguments(fit, for_gui=False)
    fit.add_argument("--steps", type=int, default=1000,
                     help="optimisation steps (default 1000; --model streamable trains --stage-steps per stage instead)")
    fit.add_argument("--out", required=True, help="output folder: metrics.json, reconstruction.png, field.safetensors, field.json")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.add_argument("--resolution", type=int, default=None,
                     help="3D shapes: marching-cubes grid of the mesh written (default 256, narrow band)")

    render = commands.add_parser("render", help="re-render a saved field at any resolution")
    render.add_argument("folder", help="a folder written by 'fieldlab fit'")
    render.add_argument("--out", default=None, help="PNG file to write (images and curves)")
    render.add_argument("--mesh", default=None, metavar="OUT.ply",
                        help="3D field: write its marching-cubes mesh (.ply, .obj, .glb or .stl)")
    render.add_argument("--resolution", type=int, default=None,
                        help="3D field: grid cells per axis for --mesh (default 256; narrow band)")
    render.add_argument("--level", type=float, default=None,
                        help="3D field: iso-level (default 0 for a signed distance, 0.5 for occupancy)")
    render.add_argument("--size", type=int, default=None, help="longer side in px (default: the trained size)")
    render.add_argument("--width", type=int, default=None, help="streamable field: the stage width to render (default: widest)")
    render.add_argument("--residual", action="store_true",
                        help="streamable field: render what the width's stage added (diverging colours, white = 0)")
    render.add_argument("--time", type=float, default=None,
                        help="video or moving-shape field: the time t in [-1, 1] to render (frames sit evenly from -1 "
                             "to 1; anything between is interpolated; default 0)")
    render.add_argument("--sequence", default=None, metavar="OUT.mp4",
                        help="video field: render the whole sequence to an MP4 or GIF")
    render.add_argument("--frames", type=int, default=None, help="--sequence: frames to render (default: the trained count)")
    render.add_argument("--fps", type=float, default=None, help="--sequence: frame rate (default: the source's)")
    render.add_argument("--base", action="store_true",
                        help="ResField field: render the base MLP alone (time-dependent residual weights off)")
    add_crop_command(commands, EPILOG)
    add_sweep_command(commands, EPILOG)
    add_session_commands(commands)
    return parser


class _HelpAll(argparse.Action):
    """Top-level --help documents every command's options, not just their names."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        parts = [parser.format_help()]
        for action in parser._subparsers._group_actions if parser._subparsers else []:
            for name, sub in action.choices.items():
                usage = sub.format_help().split("\nsignals:")[0].split("\nexamples:")[0].rstrip()
                parts.append(f"\n=== fieldlab {name} ===\n{usage}\n")
        print("".join(parts))
        parser.exit()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["gui", *argv]
    args = parser.parse_args(argv)
    try:
        if args.command == "fit":
            return _fit(args)
        if args.command == "render":
            return _render(args)
        if args.command == "crop":
            return crop_main(args)
        if args.command == "sweep":
            return sweep_main(args)
        if args.command in SESSION_COMMANDS:
            return session_main(args)
        from .gui import run_gui

        return run_gui(args)
    except KeyboardInterrupt:
        print("fieldlab: interrupted", file=sys.stderr)
        return 130
    except UserFacingError as exc:
        print(f"fieldlab: error: {exc}", file=sys.stderr)
        return 2


class UserFacingError(Exception):
    """An error whose message is all the user needs (bad file, bad option, ...)."""


def configs_from_args(args):
    """FieldConfig and TrainConfig from parsed options; invalid values become UserFacingError."""
    from models.fields import FieldConfig
    from models.scenes import default_lr
    from models.training import TrainConfig, select_device

    try:
        select_device(args.device)
        kind = args.model if args.model in MODEL_KINDS else "siren"
        depth = args.depth if args.depth is not None else (
            PARTITIONED_DEPTH if args.model in PARTITIONED_MODELS else DEFAULT_FIELD.depth)
        field = FieldConfig(kind=kind, width=args.width, depth=depth, w0=args.w0,
                            fourier_sigma=args.sigma, seed=args.seed, bias_range=args.k, scale=args.scale,
                            omega_f=args.omega_f)
        lr = args.lr if args.lr is not None else default_lr(kind)
        train = TrainConfig(lr=lr, batch_size=args.batch, seed=args.seed, device=args.device)
    except ValueError as exc:
        raise UserFacingError(str(exc)) from None
    return field, train


def growth_scene_from_args(args, field, train):
    """The 'growth' Scene described by the streamable options."""
    from models.growth import GrowthConfig
    from models.scenes import Scene

    try:
        widths = tuple(int(w) for w in args.widths.split(",") if w.strip())
    except ValueError:
        raise UserFacingError(f"--widths {args.widths!r}: expected comma-separated integers such as 16,32,64") from None
    try:
        steps = tuple(int(n) for n in str(args.stage_steps).split(",") if n.strip())
    except ValueError:
        raise UserFacingError(f"--stage-steps {args.stage_steps!r}: expected a count or counts such as 100,200") from None
    if not steps:
        raise UserFacingError("--stage-steps needs at least one count")
    try:
        ranges = parse_bias_ranges(args.stage_bias_ranges)
        growth = GrowthConfig(stage_steps=steps[0], steps_per_stage=steps if len(steps) > 1 else (),
                              mode=args.growth_mode, plateau=args.plateau, spatial=args.spatial)
        return Scene(field=field, train=train, preset="growth", widths=widths, growth=growth,
                     activation=args.activation, stage_bias_ranges=ranges, baseline=args.baseline)
    except ValueError as exc:
        raise UserFacingError(str(exc)) from None


def parse_bias_ranges(text: str) -> tuple:
    """'lo:hi' per stage, comma-separated; an empty entry keeps the default bias init."""
    if not text.strip():
        return ()
    ranges = []
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            ranges.append(None)
            continue
        try:
            lo, hi = (float(v) for v in entry.split(":"))
        except ValueError:
            raise ValueError(f"stage bias range {entry!r}: expected LO:HI such as 2:3") from None
        ranges.append((lo, hi))
    return tuple(ranges)


def load_signal_or_fail(source: str, size: int | None, target: str = "sdf", frames: int | None = None):
    """The signal ``source`` names (``size`` None: the working size of its kind); failures as UserFacingError."""
    from models.signals import SignalError, load_signal

    if size is not None and size < 2:
        raise UserFacingError(f"--size must be at least 2, got {size}")
    try:
        return load_signal(source, size, target=target, frames=frames)
    except SignalError as exc:
        raise UserFacingError(str(exc)) from None


def _fit(args) -> int:
    from models.training import Trainer, configure_cpu_threads
    from .headless import save_fit_outputs

    if args.steps < 0:
        raise UserFacingError(f"--steps must be >= 0, got {args.steps}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UserFacingError(f"--out {args.out}: exists and is not a folder")
    signal = load_signal_or_fail(args.signal, args.size, args.target, getattr(args, "frames", None))
    field_config, train_config = configs_from_args(args)
    if signal.time is not None:
        from .time_cli import fit_time

        return fit_time(args, signal, field_config, train_config, UserFacingError)
    if args.model == "resfield":
        raise UserFacingError(f"--model resfield: {signal.name} has no time axis; ResFields fit videos and moving shapes")
    if signal.kind == "sdf":
        from .sdf_cli import fit_sdf

        return fit_sdf(args, signal, field_config, train_config, UserFacingError)
    if args.model in PARTITIONED_MODELS:
        return fit_partitioned(args, signal, field_config, train_config)
    scene = growth_scene_from_args(args, field_config, train_config) if args.model == "streamable" else None
    configure_cpu_threads(leave_one_for_gui=False)
    try:
        runs = scene.build(signal) if scene else [("", Trainer(signal, field_config, train_config))]
    except ValueError as exc:
        raise UserFacingError(str(exc)) from None
    trainer = runs[0][1]
    if signal.note and not args.quiet:
        print(f"fieldlab: {signal.name}: {signal.note}", file=sys.stderr)
    total = args.steps
    if scene is not None:
        total = scene.growth.steps_until(len(scene.widths) - 1)
    warning, seconds = train_with_progress(trainer, total, args.quiet)
    if warning:
        print(f"fieldlab: warning: {warning}; saving the restored weights", file=sys.stderr)
    try:
        metrics = save_fit_outputs(args.out, trainer, seconds)
    except OSError as exc:
        raise UserFacingError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"fieldlab: {signal.name}: {args.model} {metrics['params']} params, {metrics['steps']} steps in "
          f"{seconds:.1f} s: PSNR {metrics['psnr']:.2f} dB" + (f", SSIM {metrics['ssim']:.4f}" if metrics.get("ssim") is not None else "")
          + f" -> {args.out}")
    for entry in metrics.get("per_width", []):
        print(f"  width {entry['width']:>4}: {entry['params']:>7} params  PSNR {entry['psnr']:.2f} dB"
              + (f"  SSIM {entry['ssim']:.4f}" if entry.get("ssim") is not None else "") + f"  ({entry['state']})")
    if len(runs) > 1:
        _fit_separate_models(args, runs, metrics)
    return 0


def train_with_progress(trainer, total: int, quiet: bool, score: str = "psnr") -> tuple[str, float]:
    """Train ``trainer`` for ``total`` steps with a progress bar on a terminal: (divergence warning or '', seconds).

    ``score``: what the bar shows, 'psnr' (evaluated on the whole signal) or 'loss' (the last training loss: a 3D
    target's samples are no image to take a PSNR of)."""
    progress = Progress(total, enabled=not quiet and sys.stderr.isatty(), score=score)
    started = time.perf_counter()
    warning = _train(trainer, total, progress)
    seconds = time.perf_counter() - started
    progress.close()
    return warning, seconds


def _train(trainer, total: int, progress: "Progress") -> str:
    """Step ``trainer`` up to ``total`` times (fewer once it is finished); a divergence warning or ''."""
    from models.training import TrainingDiverged

    eval_every = max(1, total // 100)
    for step in range(total):
        if trainer.finished:  # a plateaued growth, or a step budget, ends early
            break
        trainer.step()
        if (step + 1) % eval_every == 0 or step + 1 == total or trainer.finished:
            try:
                trainer.flush()
            except TrainingDiverged as exc:
                return str(exc)
            if progress.score == "psnr":
                value = trainer.evaluate()[2]
            else:
                value = trainer.loss_values[-1] if trainer.loss_values else math.nan
            progress.update(step + 1, value)
    return ""


def _fit_separate_models(args, runs, metrics: dict) -> None:
    """--baseline: train the separate SIRENs to their budgets and add them (and the coverage) to metrics.json."""
    from .headless import separate_models_metrics, update_metrics

    for label, trainer in runs[1:]:
        if not args.quiet:
            print(f"fieldlab: training {label} for {trainer.step_limit} steps", file=sys.stderr)
        warning, _ = train_with_progress(trainer, trainer.step_limit, args.quiet)
        if warning:
            print(f"fieldlab: warning: {label}: {warning}", file=sys.stderr)
    extra = separate_models_metrics(metrics["per_width"], [trainer for _, trainer in runs[1:]])
    try:
        update_metrics(args.out, extra)
    except OSError as exc:
        raise UserFacingError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    for entry in extra["separate"]:
        print(f"  separate SIREN w={entry['width']:>4}: {entry['params']:>7} params  PSNR {entry['psnr']:.2f} dB  "
              f"({entry['steps']} steps)")
    coverage = extra["coverage"]
    print(f"  covering {coverage['psnr_low']:.2f}-{coverage['psnr_high']:.2f} dB: streamable {coverage['streamable_params']:,} "
          f"params, separate models {coverage['separate_params']:,} (x{coverage['ratio']:.2f})")


def _render(args) -> int:
    from models.checkpoint import CheckpointError, load_field, render_field
    from .headless import write_cropped_png, write_png, write_residual_png

    try:
        saved = load_field(args.folder)
    except CheckpointError as exc:
        raise UserFacingError(str(exc)) from None
    if saved.meta.get("signal", {}).get("kind") in ("video", "sdf-time"):
        from .time_cli import render_time

        return render_time(args, saved, UserFacingError)
    if args.time is not None or args.sequence is not None:
        raise UserFacingError(f"{args.folder}: --time and --sequence render video and moving-shape fields")
    if args.mesh is not None:
        from .sdf_cli import render_sdf

        return render_sdf(args, saved, UserFacingError)
    if args.out is None:
        raise UserFacingError("render needs --out FILE.png (or --mesh OUT.ply for a 3D field)")
    if saved.meta.get("signal", {}).get("kind") == "sdf":
        raise UserFacingError(f"{args.folder}: a 3D field renders to a mesh: use --mesh OUT.ply [--resolution N]")
    if args.size is not None and args.size < 2:
        raise UserFacingError(f"--size must be at least 2, got {args.size}")
    if os.path.splitext(args.out)[1].lower() != ".png":
        raise UserFacingError(f"--out {args.out}: must be a .png file")
    try:
        values = render_field(saved, args.size, width=args.width, residual=args.residual)
    except CheckpointError as exc:
        raise UserFacingError(str(exc)) from None
    kind = saved.meta.get("signal", {}).get("kind")
    scale = ""
    try:
        if values.isnan().any() and not args.residual:
            scale = write_cropped_png(args.out, ((values.numpy() + 1.0) * 0.5))
        elif args.residual:
            scale = write_residual_png(args.out, values.numpy() * 0.5, curve=kind == "curve")
        else:
            write_png(args.out, ((values.numpy() + 1.0) * 0.5).clip(0, 1), curve=kind == "curve")
    except OSError as exc:
        raise UserFacingError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    what = f" at width {args.width}" if args.width is not None else ""
    print(f"fieldlab: rendered {'the residual of ' if args.residual else ''}{args.folder}{what} -> {args.out}{scale}")
    return 0


class Progress:
    """A one-line terminal progress bar with rate and ETA (stderr); silent when not a terminal."""

    def __init__(self, total: int, enabled: bool, score: str = "psnr"):
        self.total, self.enabled, self.score = max(total, 1), enabled, score
        self.started = time.perf_counter()

    def update(self, done: int, value: float) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else math.inf
        filled = int(30 * done / self.total)
        eta_text = f"{eta:5.0f}s" if math.isfinite(eta) else "    ?"
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total} "
                         f"{rate:6.1f} it/s  ETA {eta_text}  "
                         + (f"PSNR {value:6.2f} dB" if self.score == "psnr" else f"loss {value:.3e}"))
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


if __name__ == "__main__":
    sys.exit(main())

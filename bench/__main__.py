"""``python -m bench [--quick] [--skip-gui] [--skip-growth | --growth-only] [--skip-crop | --crop-only]
[--skip-finer | --finer-only] [--skip-sdf | --sdf-only] [--skip-time | --time-only] [--skip-quality]
[--out PATH]``:
run every measurement, print tables, write JSON."""
from __future__ import annotations

import argparse
import os
import sys
import time

from models.training import configure_cpu_threads, select_device

from .convergence import bare_time_to_psnr, worker_time_to_psnr
from .finer import measure_finer
from .flops import matmul_peak
from .growth import measure_growth
from .gui_latency import display_problem, measure_gui_latency, measure_width_slider
from .local_global import measure_crop
from .report import TARGETS, check_targets, machine_info, memory_now, render, write_json
from .sdf import check_sdf_targets, insert_before_targets, measure_sdf, render_sdf
from .throughput import cases, measure_case
from .sessions import measure_sessions, render_sessions
from .time import check_time_targets, measure_time, render_time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
DEFAULT_OUT = os.path.join(RESULTS, "latest.json")
GROWTH_OUT = os.path.join(RESULTS, "growth.json")
CROP_OUT = os.path.join(RESULTS, "crop.json")
FINER_OUT = os.path.join(RESULTS, "finer.json")
SDF_OUT = os.path.join(RESULTS, "sdf.json")
TIME_OUT = os.path.join(RESULTS, "time.json")
SESSIONS_OUT = os.path.join(RESULTS, "sessions.json")
TARGET_DB = 30.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="FieldLab benchmark: throughput vs a bare PyTorch loop, FLOP/s vs matmul peak, time to "
                    f"{TARGET_DB:g} dB, GUI event-loop latency, streamable-field growth, Local-Global croppable "
                    "fields, FINER++ bias-range sweeps, 3D signed distance fields, temporal fields (ResFields) and peak "
                    "memory "
                    "(see bench/README.md).")
    parser.add_argument("--quick", action="store_true", help="short durations: a smoke run of a few minutes (rough numbers)")
    parser.add_argument("--skip-gui", action="store_true", help="do not open the window (no display needed)")
    growth = parser.add_mutually_exclusive_group()
    growth.add_argument("--skip-growth", action="store_true", help="skip the streamable-field (growth) section")
    growth.add_argument("--growth-only", action="store_true",
                        help=f"run only the streamable-field (growth) section (default JSON: {GROWTH_OUT})")
    crop = parser.add_mutually_exclusive_group()
    crop.add_argument("--skip-crop", action="store_true", help="skip the Local-Global croppable-field section")
    crop.add_argument("--crop-only", action="store_true",
                      help=f"run only the Local-Global croppable-field section (default JSON: {CROP_OUT})")
    finer = parser.add_mutually_exclusive_group()
    finer.add_argument("--skip-finer", action="store_true", help="skip the FINER++ bias-range sweep section")
    finer.add_argument("--finer-only", action="store_true",
                       help=f"run only the FINER++ bias-range sweep section (default JSON: {FINER_OUT})")
    sdf = parser.add_mutually_exclusive_group()
    sdf.add_argument("--skip-sdf", action="store_true", help="skip the 3D (signed distance field) section")
    sdf.add_argument("--sdf-only", action="store_true",
                     help=f"run only the 3D section (its window part needs a display with GLX; default JSON: {SDF_OUT})")
    timed = parser.add_mutually_exclusive_group()
    timed.add_argument("--skip-time", action="store_true", help="skip the temporal-field (ResFields) section")
    timed.add_argument("--time-only", action="store_true",
                       help=f"run only the temporal-field (ResFields) section (default JSON: {TIME_OUT})")
    sessions = parser.add_mutually_exclusive_group()
    sessions.add_argument("--skip-sessions", action="store_true", help="skip the sessions / timeline section")
    sessions.add_argument("--sessions-only", action="store_true",
                          help=f"run only the sessions / timeline section (default JSON: {SESSIONS_OUT})")
    parser.add_argument("--skip-quality", action="store_true",
                        help="growth, crop and FINER++ sections: skip the quality comparisons (minutes of training on a CPU)")
    parser.add_argument("--out", default=None,
                        help=f"JSON results file (default: {DEFAULT_OUT}, or {GROWTH_OUT} with --growth-only, "
                             f"{CROP_OUT} with --crop-only, {FINER_OUT} with --finer-only, {SDF_OUT} with --sdf-only, "
                             f"{TIME_OUT} with --time-only)")
    args = parser.parse_args(argv)
    if sum((args.growth_only, args.crop_only, args.finer_only, args.sdf_only, args.time_only, args.sessions_only)) > 1:
        parser.error("--growth-only, --crop-only, --finer-only, --sdf-only, --time-only and --sessions-only exclude "
                     "each other")
    if args.out is None:
        args.out = (GROWTH_OUT if args.growth_only else CROP_OUT if args.crop_only else FINER_OUT if args.finer_only
                    else SDF_OUT if args.sdf_only else TIME_OUT if args.time_only else SESSIONS_OUT
                    if args.sessions_only else DEFAULT_OUT)
    return args


def only_one(args: argparse.Namespace) -> bool:
    return args.growth_only or args.crop_only or args.finer_only or args.sdf_only or args.time_only or args.sessions_only


def sections_label(args: argparse.Namespace) -> str:
    if only_one(args):
        return ("growth only" if args.growth_only else "crop only" if args.crop_only else "finer only"
                if args.finer_only else "3D only" if args.sdf_only else "time only" if args.time_only
                else "sessions only")
    skipped = [name for name, skip in (("growth", args.skip_growth), ("crop", args.skip_crop),
                                       ("finer", args.skip_finer), ("3D", args.skip_sdf), ("time", args.skip_time),
                                       ("sessions", args.skip_sessions))
               if skip]
    return f"all but {' and '.join(skipped)}" if skipped else "all"


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure_app(args: argparse.Namespace, settings: dict, device, results: dict, memory_after: dict) -> None:
    """Sections 1-4: throughput, FLOP/s, time to PSNR and GUI latency (into ``results``)."""
    progress("measuring the matmul peak")
    results["peak"] = matmul_peak(device, seconds=0.25 if args.quick else 0.5)
    memory_after["peak"] = memory_now(device)

    results["throughput"] = []
    for case in cases(args.quick):
        progress(f"throughput: {case.name} ({case.description})")
        results["throughput"].append(measure_case(case, results["peak"]["flops"]))
    memory_after["throughput"] = memory_now(device)

    limit = settings["psnr_limit_s"]
    progress(f"time to {TARGET_DB:g} dB: app worker (limit {limit:g} s)")
    app = worker_time_to_psnr(TARGET_DB, limit)
    progress(f"time to {TARGET_DB:g} dB: bare loop (limit {limit:g} s)")
    bare = bare_time_to_psnr(TARGET_DB, limit)
    results["time_to_psnr"] = {"target_db": TARGET_DB, "app": app, "bare": bare}
    memory_after["time to PSNR"] = memory_now(device)

    problem = "--skip-gui" if args.skip_gui else display_problem()
    if problem:
        results["gui"] = {"skipped": problem}
    else:
        progress(f"GUI latency: the main window trains the default scene for {settings['gui_seconds']:g} s")
        results["gui"] = measure_gui_latency(settings["gui_warmup_s"], settings["gui_seconds"])
        memory_after["GUI"] = memory_now(device)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    threads = configure_cpu_threads(leave_one_for_gui=True)
    device = select_device("auto")
    settings = {
        "quick": args.quick,
        "psnr_limit_s": 5.0 if args.quick else 90.0,
        "gui_warmup_s": 1.5 if args.quick else 3.0,
        "gui_seconds": 4.0 if args.quick else 15.0,
        "targets": TARGETS,
        "sections": sections_label(args),
        "skip_quality": args.skip_quality,
    }
    results: dict = {"machine": machine_info(device, threads), "settings": settings}
    memory_after: dict = {}
    progress(f"device {device}, {threads} torch thread(s)")
    if not only_one(args):
        measure_app(args, settings, device, results, memory_after)
    if not (args.skip_growth or args.crop_only or args.finer_only or args.sdf_only or args.time_only
            or args.sessions_only):
        results["growth"] = measure_growth(args.quick, args.skip_quality, progress)
        problem = "--skip-gui" if args.skip_gui else display_problem()
        if problem:
            results["growth"]["slider"] = {"skipped": problem}
        else:
            progress("growth: width-slider latency in the real window (256 px, widths 16/32/64/128)")
            results["growth"]["slider"] = measure_width_slider(moves=30 if args.quick else 60)
        memory_after["growth"] = memory_now(device)
    if not (args.skip_crop or args.growth_only or args.finer_only or args.sdf_only or args.time_only or args.sessions_only):
        problem = "--skip-gui" if args.skip_gui else display_problem()
        results["crop"] = measure_crop(args.quick, args.skip_quality, problem, progress)
        memory_after["crop"] = memory_now(device)
    if not (args.skip_finer or args.growth_only or args.crop_only or args.sdf_only or args.time_only or args.sessions_only):
        problem = "--skip-gui" if args.skip_gui else display_problem()
        results["finer"] = measure_finer(args.quick, args.skip_quality, progress, problem)
        memory_after["finer"] = memory_now(device)
    if not (args.skip_sdf or args.growth_only or args.crop_only or args.finer_only or args.time_only or args.sessions_only):
        problem = "--skip-gui" if args.skip_gui else display_problem()
        results["sdf"] = measure_sdf(args.quick, progress, problem)
        memory_after["3D"] = memory_now(device)
    if not (args.skip_time or args.growth_only or args.crop_only or args.finer_only or args.sdf_only or args.sessions_only):
        results["time"] = measure_time(args.quick, progress)
        memory_after["time"] = memory_now(device)
    if not (args.skip_sessions or args.growth_only or args.crop_only or args.finer_only or args.sdf_only or args.time_only):
        results["sessions"] = measure_sessions(args.quick, progress)
        memory_after["sessions"] = memory_now(device)

    results["memory"] = {"after": memory_after, "final": memory_now(device)}
    results["targets"] = check_targets(results)
    if "sdf" in results:
        results["targets"].update(check_sdf_targets(results["sdf"]))
    if "time" in results:
        results["targets"].update(check_time_targets(results["time"]))
    results["total_seconds"] = time.perf_counter() - started
    write_json(results, args.out)
    text = render(results)
    if "sdf" in results:
        text = insert_before_targets(text, render_sdf(results["sdf"]))
    if "time" in results:
        text = insert_before_targets(text, render_time(results["time"]))
    if "sessions" in results:
        text = insert_before_targets(text, render_sessions(results["sessions"]))
    print(text)
    print(f"\n{results['total_seconds']:.0f} s in all; JSON: {os.path.abspath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

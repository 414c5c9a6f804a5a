"""Machine facts, peak memory, the targets, the printed tables and the JSON file."""
from __future__ import annotations

import json
import math
import os
import platform
import resource
import subprocess
import sys
import time

import torch

from .throughput import MODE_LABELS, MODES

TARGETS = {
    "worker_vs_bare_ratio_min": 0.9,
    "app_time_to_psnr_max_s": 60.0,
    "gui_p95_max_ms": 50.0,
    "lg_vs_plain_step_speed_min": 3.0,
    "crop_click_view_max_ms": 100.0,
}


def machine_info(device: torch.device, threads: int) -> dict:
    info = {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "threads_policy": f"configure_cpu_threads(leave_one_for_gui=True) -> {threads}",
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "git_commit": _git_commit(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if device.type == "cuda":
        info["cuda_device"] = torch.cuda.get_device_name(device)
    return info


def memory_now(device: torch.device) -> dict:
    """Process peak RSS so far (and the CUDA allocator's peak when on a GPU)."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    memory = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20}
    if device.type == "cuda":
        memory["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return memory


def check_targets(results: dict) -> dict:
    """Target name -> True (met), False (missed) or None (this run was too short to tell)."""
    checks = {}
    for case in results.get("throughput", []):
        checks[f"worker >= {TARGETS['worker_vs_bare_ratio_min']}x bare ({case['name']})"] = (
            case["ratio_to_bare"]["worker"] >= TARGETS["worker_vs_bare_ratio_min"])
    ttp = results.get("time_to_psnr")
    if ttp is not None:
        app, limit = ttp["app"], TARGETS["app_time_to_psnr_max_s"]
        passed = app["reached"] and app["seconds"] <= limit
        checks[f"app reaches {ttp['target_db']:g} dB in <= {limit:g} s"] = (
            None if not app["reached"] and app["limit_s"] < limit else passed)
    gui = results.get("gui")
    if gui and "timer_lateness" in gui:
        for key in ("timer_lateness", "posted_event_delay"):
            checks[f"GUI {key.replace('_', ' ')} p95 <= {TARGETS['gui_p95_max_ms']:g} ms"] = (
                gui[key].get("p95_ms", math.inf) <= TARGETS["gui_p95_max_ms"])
    if "crop" in results:
        checks.update(check_crop_targets(results["crop"]))
    if "finer" in results:
        from .finer import check_finer_targets

        checks.update(check_finer_targets(results["finer"]))
    return checks


def check_crop_targets(crop: dict) -> dict:
    """The issue's criteria: LG step >= 3x a plain SIREN's (full batch, CPU) with at least its PSNR; a click
    crops in the view within 100 ms."""
    checks = {}
    speed, quality = crop["speed"], crop.get("quality", {})
    full = next((case for case in speed["cases"] if case["full_batch"]), None)
    minimum = TARGETS["lg_vs_plain_step_speed_min"]
    for name in ("lg_paper", "lg_auto"):
        if full is not None:
            checks[f"LG {full['widths'][name]} step >= {minimum:g}x faster than plain SIREN "
                   f"{full['widths']['plain']} (full batch, {speed['size']} px)"] = full["ratio"][f"plain/{name}"] >= minimum
        if "runs" in quality:
            run = quality["runs"][name]
            checks[f"LG {run['widths']} PSNR >= plain SIREN after 300 steps at 256 px"] = (
                run["minus_plain_db"] >= 0 if quality["matches_issue_setup"] else None)
    clicks, limit = crop.get("clicks", {}), TARGETS["crop_click_view_max_ms"]
    for state in ("paused", "running"):
        if state in clicks:
            checks[f"crop click shown in the view <= {limit:g} ms (p95, {state})"] = (
                clicks[state]["crop"]["view"].get("p95_ms", math.inf) <= limit)
    return checks


def write_json(results: dict, path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(_finite(results), handle, indent=2)
        handle.write("\n")


def render(results: dict) -> str:
    lines: list[str] = []
    machine = results["machine"]
    lines.append(f"FieldLab benchmark ({'quick' if results['settings']['quick'] else 'full'} run, "
                 f"{machine['started']}, commit {machine['git_commit'] or '?'})")
    lines.append(f"machine: {machine['cpu_model']}, {machine['cpu_count']} logical CPUs, load average at start "
                 f"{_load(machine)}; torch {machine['torch_version']} on {machine['device']}"
                 + (f" ({machine['cuda_device']})" if "cuda_device" in machine else ""))
    lines.append(f"threads: {machine['torch_threads']} torch thread(s) for every measurement "
                 f"({machine['threads_policy']}, as the GUI app sets it)")
    if "throughput" in results:
        peak = results["peak"]
        lines.append("")
        lines.append(f"1+2. Throughput and FLOP/s. Peak: {_g(peak['flops'])} GFLOP/s ({peak['dtype']} matmul "
                     f"{peak['size']}^3, best of 3). Per case, the median over short rounds: bare and "
                     "Trainer.step() alternate in short blocks, the worker runs next to them; x bare = median of "
                     "per-round ratios.")
        rows = []
        for case in results["throughput"]:
            lines.append(f"  {case['name']}: {case['description']}; {case['rounds_run']} rounds; {_g(case['flops_per_step'])} GFLOP/step; "
                         f"hidden-layer matmul shape reaches {_g(case['hidden_layer_matmul_flops'])} GFLOP/s; "
                         f"bare vs trainer after 2 steps: max |weight diff| "
                         f"{case['bare_matches_trainer_max_weight_diff']:.1e}")
            for mode in MODES:
                ratio = case["ratio_to_bare"].get(mode, 1.0)
                low, high = case["ratio_range"].get(mode, (1.0, 1.0))
                rows.append([case["name"] if mode == "bare" else "", MODE_LABELS[mode],
                             f"{case['steps_per_s'][mode]:.2f}", f"{ratio:.3f}", f"{low:.2f}-{high:.2f}",
                             _g(case["achieved_flops"][mode]), f"{100 * case['fraction_of_peak'][mode]:.0f}%"])
        lines += _table(["case", "mode", "steps/s", "x bare", "rounds range", "GFLOP/s", "of peak"], rows)

    ttp = results.get("time_to_psnr")
    if ttp:
        lines.append("")
        lines.append(f"3. Time to {ttp['target_db']:g} dB PSNR, default scene (app: worker start to the first "
                     "snapshot at target, publishing included; bare: training steps only)")
        rows = []
        for name, run in (("app (TrainingWorker)", ttp["app"]), ("bare PyTorch loop", ttp["bare"])):
            seconds = f"{run['seconds']:.1f}" + ("" if run["reached"] else f" (not reached, limit {run['limit_s']:g})")
            rows.append([name, seconds, str(run["steps"]), f"{run['psnr']:.2f}"])
        lines += _table(["run", "seconds", "steps", "PSNR dB"], rows)

    gui = results.get("gui")
    if gui is not None and "skipped" in gui:
        lines.append("")
        lines.append(f"4. GUI event-loop latency: skipped ({gui['skipped']})")
    elif gui is not None:
        lines.append("")
        alone = next((case["steps_per_s"]["worker"] for case in results.get("throughput", [])
                      if case["name"] == "default"), math.nan)
        lines.append(f"4. GUI event-loop latency while training the default scene ({gui['seconds']:.0f} s, Qt "
                     f"platform {gui['qt_platform']}, worker stopped on close: {gui['worker_stopped_on_close']})")
        lines.append(f"   {gui['snapshots_rendered_per_s']:.1f} snapshots rendered/s; GUI thread busy "
                     f"{100 * gui['gui_thread_cpu_fraction']:.0f}% of the time; training "
                     f"{gui['training_steps_per_s']:.2f} steps/s (worker without a window: {alone:.2f})")
        rows = []
        for label, key in ((f"{gui['timer_interval_ms']} ms timer: lateness", "timer_lateness"),
                           (f"posted event every {gui['post_interval_ms']} ms: delay", "posted_event_delay")):
            stats = gui[key]
            rows.append([label, str(stats["count"]),
                         *(f"{stats.get(name, math.nan):.1f}" for name in ("p50_ms", "p95_ms", "max_ms"))])
        lines += _table(["probe", "samples", "p50 ms", "p95 ms", "max ms"], rows)

    memory = results["memory"]
    lines.append("")
    lines.append("5. Peak memory: process RSS " + ", ".join(
        f"{_mib(value['peak_rss_mib'])} after {section}" for section, value in memory["after"].items()))
    if "cuda_max_allocated_mib" in memory["final"]:
        lines.append(f"   CUDA max allocated: {_mib(memory['final']['cuda_max_allocated_mib'])}")

    if "growth" in results:
        lines.append("")
        lines += render_growth(results["growth"])

    if "crop" in results:
        lines.append("")
        lines += render_crop(results["crop"])

    if "finer" in results:
        from .finer import render_finer

        lines.append("")
        lines += render_finer(results["finer"])

    if results["targets"]:
        lines.append("")
        lines.append("Targets:")
        for name, ok in results["targets"].items():
            verdict = "n/a " if ok is None else "PASS" if ok else "FAIL"
            lines.append(f"  [{verdict}] {name}" + (" (limit too short in this run)" if ok is None else ""))
    return "\n".join(lines)


def render_growth(growth: dict) -> list[str]:
    """Section 6: the streamable (width-growing) field."""
    speed = growth["speed"]
    lines = [(f"6. Streamable fields (width growth): {speed['signal']} {speed['size']} px, depth {speed['depth']}, "
              f"lr {speed['lr']:g}")]
    lines.append(f"6a. Stage-training speed: per stage, GrowthTrainer.step(), a plain SIREN Trainer.step() of the "
                 f"stage's total width and a bare PyTorch loop of that width alternate in short blocks; "
                 f"{speed['rounds']} rounds of {speed['seconds_per_round']:g} s a loop; medians, ratios = median of "
                 "per-round ratios. FLOP x = plain/streamable matmul FLOPs per step.")
    rows = []
    for case in speed["cases"]:
        batch = "full" if case["batch_size"] >= speed["size"] ** 2 else str(case["batch_size"])
        what = f"stage {case['stage']}" if case["mode"] == "progressive" else "slimmable"
        rates, ratio = case["steps_per_s"], case["ratio"]
        low, high = case["ratio_range"]["streamable/plain"]
        rows.append([batch, what, str(case["width"]), f"{case['params']['streamable_trained']:,}",
                     f"{rates['streamable']:.2f}", f"{rates['plain']:.2f}", f"{rates['bare']:.2f}",
                     f"{ratio['streamable/plain']:.3f}", f"{low:.2f}-{high:.2f}", f"{ratio['plain/bare']:.3f}",
                     f"{case['flop_ratio_plain_over_streamable']:.2f}"])
    lines += _table(["batch", "mode", "width", "trained params", "stream/s", "plain/s", "bare/s", "stream/plain",
                     "range", "plain/bare", "FLOP x"], rows)

    views = growth.get("width_views")
    if views:
        lines.append("")
        lines.append(f"6b. Width views: WidthCache.render of all {len(views['widths'])} widths at {views['size']} px "
                     f"(median over {views['repeats']}; min-max): first render vs re-render with trained widths "
                     "cached; 'evaluate' = predict_widths() forward of every width.")
        rows = []
        for state in ("training", "finished"):
            entry = views[state]
            rows.append([state, str(entry["widths_rendered_warm"]),
                         *(f"{entry[key]['median_ms']:.1f} ({entry[key]['min_ms']:.1f}-{entry[key]['max_ms']:.1f})"
                           for key in ("evaluate_all_widths", "render_first", "render_cached"))])
        lines += _table(["field state", "re-rendered", "evaluate ms", "first render ms", "cached render ms"], rows)

    lines += _quality_lines(growth.get("quality"))
    default = growth.get("default_scene_quality")
    if default and "skipped" not in default:
        plain = default["plain"]
        widths = " / ".join(f"{e['width']}: {e['psnr']:.2f}" for e in default["streamable"])
        lines.append("")
        lines.append(f"6e. Default growth scene ({default['size']} px, batch {default['batch']}, steps "
                     f"{'/'.join(map(str, default['steps_per_stage']))}): streamable PSNR by width {widths} dB in "
                     f"{default['streamable_train_seconds']:.1f} s; plain SIREN {plain['width']}: "
                     f"{plain['psnr_at_total_steps']:.2f} dB at {default['total_steps']} steps ({plain['train_seconds']:.1f} s), "
                     f"{plain['psnr_at_last_stage_steps']:.2f} dB at {default['steps_per_stage'][-1]}; widest - plain: "
                     f"{default['gap_vs_plain_same_steps']:+.2f} dB at equal total steps")

    slider = growth.get("slider")
    if slider and "skipped" not in slider:
        move, whole = slider["slider_to_repainted_view"], slider["whole_window_repaint"]
        lines.append("")
        lines.append(f"6d. Width slider in the window ({slider['size_px']} px, {slider['moves']} moves): slider set to "
                     f"repainted lab view p50 {move['p50_ms']:.1f} ms, p95 {move['p95_ms']:.1f} ms, max {move['max_ms']:.1f} ms "
                     f"(target <= 50 ms); whole-window repaint p50 {whole['p50_ms']:.1f} ms; view matches snapshot: "
                     f"{slider['last_view_matches_snapshot']}")
    elif slider:
        lines.append(f"6d. Width slider: skipped ({slider['skipped']})")

    return lines


def _quality_lines(quality: dict | None) -> list[str]:
    """6c: the issue's quality comparison at equal steps."""
    lines = [""]
    if not quality or "skipped" in quality:
        lines.append(f"6c. Quality at equal steps: skipped ({quality['skipped'] if quality else 'not run'})")
        return lines
    steps, total = quality["stage_steps"], quality["total_steps"]
    lines.append(f"6c. Quality at equal steps: {quality['signal']} {quality['size']} px, full batch, widths "
                 f"{'/'.join(map(str, quality['widths']))}, {steps} steps a stage ({total} in all); separate = "
                 "plain SIREN with the width's parameter count, trained as many steps as the streamable had then.")
    rows = []
    for entry, separate in zip(quality["streamable"], quality["separate"]):
        rows.append([f"streamable w={entry['width']}", f"{entry['params']:,}", str(entry["steps_when_finished"]),
                     f"{entry['psnr']:.2f}", ""])
        rows.append([f"  separate w={separate['width']}", f"{separate['params']:,}", str(separate["steps"]),
                     f"{separate['psnr']:.2f}", f"{separate['streamable_minus_separate_db']:+.2f}"])
    plain = quality["plain_widest"]
    for count, key in ((steps, "psnr_at_stage_steps"), (total, "psnr_at_total_steps")):
        rows.append([f"plain w={plain['width']}", f"{plain['params']:,}", str(count), f"{plain[key]:.2f}", ""])
    lines += _table(["model", "params", "steps", "PSNR dB", "stream - sep"], rows)
    lines.append(f"   widest streamable - plain w={plain['width']}: {quality['gap_vs_plain_same_steps']:+.2f} dB at "
                 f"{total} steps (gap_vs_plain_same_steps), {quality['gap_vs_plain_stage_steps']:+.2f} dB vs its "
                 f"{steps} steps (gap_vs_plain_stage_steps); training time streamable "
                 f"{quality['streamable_train_seconds']:.0f} s, plain {plain['train_seconds']:.0f} s")
    return lines


def render_crop(crop: dict) -> list[str]:
    """Section 7: Local-Global croppable fields."""
    speed = crop["speed"]
    labels, ref = speed["labels"], speed["reference"]
    lines = [f"7. Local-Global croppable fields: {speed['signal']} {speed['size']} px, "
             f"{'x'.join(map(str, speed['partitions']))} partitions, depth {speed['depth']}, lr {speed['lr']:g}"]
    lines.append(f"7a. Training step speed: five loops alternate in short blocks, {speed['rounds']} rounds of "
                 f"{speed['seconds_per_round']:g} s a loop; s/step medians; plain/x and bare/x = median of per-round "
                 "ratios (how many times faster than plain SIREN / bare loop); FLOP x = plain/x matmul FLOPs. "
                 f"Reference (paper code): LG 14/84 {ref['lg_s_per_step']:.2f} s/step vs SIREN 148 "
                 f"{ref['plain_s_per_step']:.2f} s/step ({ref['plain_s_per_step'] / ref['lg_s_per_step']:.1f}x).")
    rows = []
    for case in speed["cases"]:
        batch = "full" if case["full_batch"] else str(case["batch_size"])
        for name, label in labels.items():
            ratio = case["ratio"]
            partitioned = f"bare/{name}" in ratio  # the partitioned models (not plain, not bare)
            low, high = case["ratio_range"][f"plain/{name}"] if partitioned else (math.nan, math.nan)
            rows.append([batch if name == "lg_paper" else "", label, case["widths"][name], f"{case['params'][name]:,}",
                         f"{case['samples_per_step'][name]:,}", f"{case['s_per_step'][name]:.4f}",
                         f"{ratio[f'plain/{name}']:.2f}" if partitioned else "",
                         f"{low:.2f}-{high:.2f}" if partitioned else "",
                         f"{ratio[f'bare/{name}']:.2f}" if partitioned else
                         (f"{ratio['plain/bare']:.2f} (plain/bare)" if name == "plain" else ""),
                         f"{case['flop_ratio_plain_over'][name]:.2f}"])
    lines += _table(["batch", "model", "widths", "params", "samples", "s/step", "plain/x", "range", "bare/x",
                     "FLOP x"], rows)

    quality = crop.get("quality", {})
    lines.append("")
    if "runs" in quality:
        lines.append(f"7b. Quality: PSNR after {quality['steps']} full-batch steps at {quality['size']} px "
                     f"(reference at 256 px / 300 steps: LG {ref['lg_psnr_db']} dB, SIREN 148 {ref['plain_psnr_db']} dB)")
        lines += _table(["model", "widths", "params", "PSNR dB", "- plain", "train s"],
                        [[labels[name], run["widths"], f"{run['params']:,}", f"{run['psnr']:.2f}",
                          f"{run['minus_plain_db']:+.2f}", f"{run['train_seconds']:.1f}"]
                         for name, run in quality["runs"].items()])
    else:
        lines.append(f"7b. Quality: skipped ({quality.get('skipped', 'not run')})")

    clicks = crop.get("clicks", {})
    lines.append("")
    if "paused" in clicks:
        lines.append(f"7c. Crop clicks in the window ({clicks['model']}, {clicks['size_px']} px, partition "
                     f"{clicks['partition']}, {clicks['clicks_per_state']} clicks per state alternating crop/restore): "
                     "click until the edited panels are painted (view), until every queued event is handled "
                     "(settled), and until the worker's confirming snapshot (snap); target: view <= 100 ms")
        rows = []
        for state in ("paused", "running"):
            for action in ("crop", "restore"):
                entry = clicks[state][action]
                rows.append([state if action == "crop" else "", action, str(entry["view"]["count"]),
                             *(f"{entry.get(k, {}).get(p, math.nan):.1f}" for k in ("view", "events_settled", "snapshot")
                               for p in ("p50_ms", "p95_ms"))])
        lines += _table(["state", "click", "n", "view p50", "view p95", "settled p50", "settled p95", "snap p50",
                         "snap p95"], rows)
        lines.append(f"   crop shown before the worker answered: paused {clicks['paused']['crop_shown_synchronously']}, "
                     f"running {clicks['running']['crop_shown_synchronously']}; worker stopped on close: "
                     f"{clicks['worker_stopped_on_close']}")
    else:
        lines.append(f"7c. Crop clicks in the window: {clicks.get('skipped') or 'error: ' + clicks.get('error', '?')}")

    extension = crop["extension"]
    lines.append("")
    if "skipped" in extension:
        lines.append(f"7d. Extension (paper Fig. 7): skipped ({extension['skipped']})")
    else:
        lines.append(f"7d. Extension (paper Fig. 7): {extension['size']} px, {extension['region']} trained "
                     f"{extension['pre_steps']} steps, then {extension['fine_steps']} steps on the whole image; training "
                     "MSE on [0, 1] values (loss / 4)")

        def ext_row(name: str, run: dict) -> list[str]:
            def mse(key: str) -> str:
                return "" if run[key] is None else f"{run[key]:.2e}"
            return [name, f"{run['params']:,}", mse("mse_before_extension"), mse("mse_first_fine_step"), mse("mse_after"),
                    f"{run['psnr_after']:.2f}", f"{run['train_seconds']:.1f}"]
        headers = ["run", "params", "MSE before", "MSE 1st fine step", "MSE after", "PSNR dB", "train s"]
        lines += _table(headers, [ext_row(run["label"], run) for run in extension["runs"]])
        lines.append("   extension inits of the Local-Global run:")
        lines += _table(headers, [ext_row(init, run) for init, run in extension["inits"].items()])

    book = crop["bookkeeping"]
    lines.append("")
    lines.append(f"7e. Crop bookkeeping ({book['size']} px fields, {book['cropped']} cropped with "
                 "LocalGlobalField.cropped, saved with save_field)")
    lines += _table(["model", "widths", "partitions", "params", "expected", "safetensors bytes", "cropped() ms",
                     "kept identical", "cropped NaN"],
                    [[labels[run["model"]], run["widths"], f"{run['partitions_before']} -> {run['partitions_after']}",
                      f"{run['params_before']:,} -> {run['params_after']:,}", f"{run['params_expected_after']:,}",
                      f"{run['bytes_before']:,} -> {run['bytes_after']:,}", f"{run['cropped_ms']:.1f}",
                      str(run["kept_outputs_identical"]), str(run["cropped_area_nan"])] for run in book["runs"]])
    return lines


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    def line(cells):
        return "  " + "  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w)
                                for i, (c, w) in enumerate(zip(cells, widths)))
    return [line(headers), "  " + "  ".join("-" * w for w in widths)] + [line(row) for row in rows]


def _g(flops: float) -> str:
    return f"{flops / 1e9:.1f}"


def _mib(value: float) -> str:
    return f"{value:.0f} MiB"


def _load(machine: dict) -> str:
    load = machine.get("load_average_at_start")
    return "/".join(f"{x:.2f}" for x in load) if load else "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        out = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True)
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _finite(value):
    """JSON has no NaN/inf: turn them into null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value

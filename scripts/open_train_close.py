#!/usr/bin/env python3
"""Open the app, train, close, exit: N times, one process each, and report how many exited 0 (issue 8).

    python scripts/open_train_close.py 20                # 20 processes cycling through the labs
    python scripts/open_train_close.py 5 --labs image,3d --steps 3
    python scripts/open_train_close.py 3 --screenshot    # the plain CLI: fieldlab gui ... --screenshot, no step check

Each process runs the real entry point, ``app.cli.main(["gui", ...])`` (``fieldlab gui``: the app's own start,
shutdown and interpreter exit), on a tiny scene. A timer inside it closes the window as soon as the window's
latest snapshot has trained ``--steps`` steps, exactly as the user's close button would; the process then exits
with the app's status, or 3 when no step was trained in ``--timeout`` seconds. With ``--screenshot`` it runs
``python -m app gui ... --screenshot F --screenshot-after S`` instead, which closes after S seconds whatever has
trained. Without a display every process runs under ``xvfb-run`` (with GLX, as the 3D and time labs need).
Exit status: 0 when every process exited 0, else 1.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--size", "24", "--width", "8", "--depth", "2"]
LABS = {
    "image": ["--signal", "camera", *TINY],
    "spectral-bias": ["--signal", "camera", "--preset", "spectral-bias", *TINY],
    "growth": ["--signal", "camera", "--preset", "growth", "--widths", "4,8", "--stage-steps", "5", *TINY],
    "crop": ["--signal", "camera", "--preset", "crop", "--partitions", "2,2", "--local-width", "4",
             "--global-width", "8", "--size", "24", "--depth", "2"],
    "sweep": ["--signal", "camera", "--preset", "sweep", *TINY],
    "time": ["--signal", "tour", "--size", "16", "--frames", "6", "--width", "8", "--depth", "2", "--rank", "2",
             "--batch", "256", "--frames-per-batch", "2"],
    "3d": ["--signal", "torus", "--width", "8", "--depth", "2", "--batch", "512"],
}

CHILD = r"""
import sys, time
from PySide6 import QtCore, QtWidgets

steps, limit = int(sys.argv[1]), float(sys.argv[2])
app = QtWidgets.QApplication(sys.argv[:1])  # app/gui.py takes this one: the timer below needs it first
trained, began = [0], time.monotonic()

def poll():
    for window in app.topLevelWidgets():
        snapshot = getattr(getattr(window, "session", None), "last_snapshot", None)
        if snapshot is not None and snapshot.step >= steps and window.isVisible():
            trained[0] = snapshot.step
            window.close()
        elif time.monotonic() - began > limit and window.isVisible() and hasattr(window, "session"):
            window.close()  # give up: the process reports no step

timer = QtCore.QTimer(interval=50)
timer.timeout.connect(poll)
timer.start()
from app.cli import main
status = main(["gui", *sys.argv[3:]])
timer.stop()
print(f"open_train_close: trained {trained[0]} steps, app exit status {status}", flush=True)
sys.exit(status if trained[0] >= steps else 3)
"""


def child_command(lab: str, args, shot: str) -> list[str]:
    gui = LABS[lab]
    if args.screenshot:
        return [sys.executable, "-m", "app", "gui", *gui, "--screenshot", shot,
                "--screenshot-after", str(args.screenshot_after)]
    return [sys.executable, "-c", CHILD, str(args.steps), str(args.timeout * 0.8), *gui]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int, help="processes to run, one after another")
    parser.add_argument("--labs", default=",".join(LABS), help=f"labs to cycle through (default: {','.join(LABS)})")
    parser.add_argument("--steps", type=int, default=1, help="training steps before closing (default 1)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds a process may take (default 180)")
    parser.add_argument("--screenshot", action="store_true",
                        help="run the plain 'fieldlab gui --screenshot' instead (closes after --screenshot-after s)")
    parser.add_argument("--screenshot-after", type=float, default=1.0, help="seconds before the screenshot (default 1)")
    args = parser.parse_args(argv)
    labs = [lab.strip() for lab in args.labs.split(",") if lab.strip()]
    unknown = [lab for lab in labs if lab not in LABS]
    if unknown or not labs or args.count < 1:
        parser.error(f"unknown labs {unknown} (choose from {', '.join(LABS)})" if unknown else "nothing to run")
    prefix: list[str] = []
    if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
        if shutil.which("xvfb-run") is None:
            parser.error("no display: set DISPLAY, or install xvfb-run")
        prefix = ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24 +extension GLX +render"]
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    ok, failures = 0, []
    with tempfile.TemporaryDirectory(prefix="open_train_close_") as folder:
        for k in range(args.count):
            lab = labs[k % len(labs)]
            command = prefix + child_command(lab, args, os.path.join(folder, f"shot{k}.png"))
            start = time.perf_counter()
            try:
                result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                                        timeout=args.timeout)
                status, output = result.returncode, result.stdout + result.stderr
            except subprocess.TimeoutExpired as exc:
                status = "timeout"
                output = f"{exc.stdout or ''}{exc.stderr or ''}"
                output = output if isinstance(output, str) else output.decode(errors="replace")
            seconds = time.perf_counter() - start
            shot = os.path.join(folder, f"shot{k}.png")
            if status == 0 and args.screenshot and not os.path.exists(shot):
                status, output = "no screenshot", output + "\n(no screenshot written)"
            said = next((line for line in output.splitlines() if line.startswith("open_train_close:")), "")
            print(f"[{k + 1}/{args.count}] {lab:14s} exit {status} in {seconds:5.1f} s  {said}", flush=True)
            if status == 0:
                ok += 1
            else:
                failures.append((k + 1, lab, status, output))
    for number, lab, status, output in failures:
        print(f"\n--- process {number} ({lab}) exited {status}; last output:\n{output[-2000:]}")
    print(f"\n{ok} of {args.count} exited 0")
    return 0 if ok == args.count else 1


if __name__ == "__main__":
    sys.exit(main())

"""Screenshot of the FINER++ lab, driven as a user would: train the default sweep, then click the k = 5 cell so
the activation plot shows how far out along the variable-periodic sine its first layer reaches.

Run on a (virtual) screen from the repo root: ``.venv/bin/python scripts/sweep_screenshot.py [SECONDS]``.
Writes assets/screenshot-sweep.png.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from crop_screenshots import MainWindow, QtWidgets, configure_cpu_threads, load_signal, pump  # noqa: E402

from models.scenes import DEFAULT_SWEEP_SCENE, DEFAULT_SWEEP_SIZE  # noqa: E402


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 90.0
    configure_cpu_threads(leave_one_for_gui=True)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    os.makedirs("assets", exist_ok=True)
    size = DEFAULT_SWEEP_SIZE
    win = MainWindow(load_signal("camera", size), DEFAULT_SWEEP_SCENE, size, running=True, source="camera")
    win.resize(1500, 1000)
    win.show()
    pump(app, seconds)
    labels = [run.label for run in win.session.last_snapshot.runs]
    win.sweep_view.grid.select(labels.index("FINER++ sine k=5"))
    pump(app, 2.0)
    win.grab().save("assets/screenshot-sweep.png")
    print("screenshot -> assets/screenshot-sweep.png")
    win.close()
    pump(app, 0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Screenshots of the crop & extend lab, driven as a user would: train, click partitions away, select some.

Run on a (virtual) screen from the repo root: ``.venv/bin/python scripts/crop_screenshots.py [SECONDS [STEPS]]``
(SECONDS of training before cropping; STEPS of fine-tuning after the extension before the second shot).
Writes assets/screenshot-crop.png and assets/screenshot-extend.png.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from PySide6 import QtCore, QtWidgets  # noqa: E402

from app.main_window import MainWindow  # noqa: E402
from models.scenes import DEFAULT_CROP_SCENE, DEFAULT_EXTEND_SCENE  # noqa: E402
from models.signals import load_signal  # noqa: E402
from models.training import configure_cpu_threads  # noqa: E402


def pump(app, seconds: float) -> None:
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents()
        time.sleep(0.01)


def centre(info, flat: int) -> tuple[float, float]:
    rows, cols = np.nonzero(info.pixel_partition == flat)
    return float(cols.mean()) + 0.5, float(rows.mean()) + 0.5


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    configure_cpu_threads(leave_one_for_gui=True)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    os.makedirs("assets", exist_ok=True)

    win = MainWindow(load_signal("camera", 256), DEFAULT_CROP_SCENE, 256, running=True, source="camera")
    win.resize(1500, 1000)
    win.show()
    pump(app, seconds)
    win.controls.play.setChecked(False)
    pump(app, 2.0)
    info = win.session.last_snapshot.runs[0].partitions
    view = win.crop_view
    for flat in (0, 1, 8, 9, 27, 28, 35, 36, 62, 63):  # two corners and the middle
        view.reconstruction.view.clicked.emit(*centre(info, flat), QtCore.Qt.NoModifier)
        pump(app, 0.3)
    h, w = info.pixel_partition.shape
    view.reconstruction.view.dragged.emit(QtCore.QRectF(w * 0.55, h * 0.05, w * 0.3, h * 0.2), True, QtCore.Qt.NoModifier)
    pump(app, 2.0)
    win.grab().save("assets/screenshot-crop.png")
    print("screenshot -> assets/screenshot-crop.png")
    win.close()
    pump(app, 0.5)

    win = MainWindow(load_signal("camera", 256), DEFAULT_EXTEND_SCENE, 256, running=True, source="camera")
    win.resize(1500, 1000)
    win.show()
    fine_steps = int(sys.argv[2]) if len(sys.argv) > 2 else 150
    deadline = time.time() + 3600
    while time.time() < deadline:  # until the extended field has fine-tuned a while (full batch: minutes on a CPU)
        pump(app, 2.0)
        snapshot = win.session.last_snapshot
        run = snapshot.runs[0] if snapshot is not None and snapshot.runs else None
        if run is not None and run.extension_step is not None and run.step >= run.extension_step + fine_steps:
            break
    win.crop_view.run_choice.setCurrentIndex(0)
    pump(app, 2.0)
    win.grab().save("assets/screenshot-extend.png")
    print("screenshot -> assets/screenshot-extend.png")
    win.close()
    pump(app, 0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())

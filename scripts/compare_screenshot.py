"""assets/screenshot-compare.png and assets/screenshot-lesson.png: the comparison board after pinning the spectral-bias
runs at two widths, and the spectral-bias lesson's first step (run under Xvfb; see scripts/screenshots.sh)."""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from PySide6 import QtWidgets  # noqa: E402

from models.fields import FieldConfig  # noqa: E402
from models.scenes import Scene  # noqa: E402
from models.signals import load_signal  # noqa: E402
from models.training import TrainConfig  # noqa: E402

ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")


def pump(app, condition, timeout=120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
        if condition():
            return
    raise SystemExit("timed out waiting for the window")


def main() -> int:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    app = QtWidgets.QApplication([])
    from app.main_window import MainWindow
    from models.lessons import list_lessons

    scene = Scene(field=FieldConfig(width=32, depth=3), train=TrainConfig(lr=1e-3, batch_size=0), preset="spectral-bias")
    win = MainWindow(load_signal("camera", 64), scene, 64)
    win.show()
    snapshot = lambda: win.session.last_snapshot  # noqa: E731
    pump(app, lambda: snapshot() is not None and snapshot().step >= steps)
    win.compare.pin_current()
    win.controls.width_box.setValue(64)
    win.restart()
    old = snapshot()
    pump(app, lambda: snapshot() is not old and snapshot() is not None and snapshot().runs
         and snapshot().runs[0].config.width == 64 and snapshot().step >= steps)
    win.compare.pin_current()
    board = win.compare.board
    board.ab.b_box.setCurrentIndex(5)
    board.resize(1240, 900)
    for _ in range(50):
        app.processEvents()
        time.sleep(0.02)
    board.grab().save(os.path.join(ASSETS, "screenshot-compare.png"))
    previous = win.session.worker
    win.lessons.start(list_lessons()[0])
    pump(app, lambda: win.session.worker is not previous and snapshot() is not None and snapshot().step >= 60
         and snapshot().runs[0].params > 30_000, 600)
    win.grab().save(os.path.join(ASSETS, "screenshot-lesson.png"))
    win.close()
    app.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())

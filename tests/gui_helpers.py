"""Opening the main window from GUI tests and waiting for what its worker publishes."""
from __future__ import annotations

from models.scenes import Scene
from models.signals import load_signal


def open_window(qtbot, scene: Scene, signal="camera", size=32, running=True):
    from app.main_window import MainWindow

    win = MainWindow(load_signal(signal, size), scene, size, running=running)
    qtbot.addWidget(win)
    win.show()
    return win


def wait_for(qtbot, win, condition, timeout=20000):
    """The window's latest snapshot once ``condition(snapshot)`` holds (pytest-qt timeout error otherwise)."""
    qtbot.waitUntil(lambda: win.session.last_snapshot is not None and bool(condition(win.session.last_snapshot)),
                    timeout=timeout)
    return win.session.last_snapshot

"""Shared test guards."""
from __future__ import annotations

import gc
import threading
import time

import pytest


def _fieldlab_threads():
    return [t for t in threading.enumerate() if t.name.startswith("fieldlab-") and t.is_alive()]


@pytest.fixture(autouse=True)
def private_settings(tmp_path_factory, monkeypatch):
    """Each test gets its own settings and recovery folder (never the user's, never another test's)."""
    monkeypatch.setenv("FIELDLAB_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))


@pytest.fixture(autouse=True)
def no_leaked_training_threads():
    """Every test must stop the worker threads it started (a leaked one can abort the interpreter at exit)."""
    yield
    deadline = time.monotonic() + 10
    while _fieldlab_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    leaked = [t.name for t in _fieldlab_threads()]
    assert not leaked, f"threads still running after the test: {leaked}"
    gc.collect()  # automatic collection is off (below): collect here, with no training thread running


def pytest_configure(config):
    """Collect garbage only between tests, on the main thread, when no worker runs: a collection that frees a closed
    window's Qt and torch objects while another window's worker thread runs has deadlocked the interpreter (the app
    does the same with pyqtgraph's GarbageCollector: app/gui.py)."""
    gc.disable()


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread (and the test machine's two cores are shared)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def one_torch_thread_for_fit(one_torch_thread):
    """As one_torch_thread, also for 'fieldlab fit', which otherwise takes every core for itself."""
    import torch

    from models import training

    patch = pytest.MonkeyPatch()
    patch.setattr(training, "configure_cpu_threads", lambda leave_one_for_gui: torch.set_num_threads(1) or 1)
    yield
    patch.undo()


@pytest.fixture(scope="session", autouse=True)
def deterministic_qt_shutdown():
    """Close and delete every window before the interpreter tears down, as the app itself does on exit."""
    yield
    import gc
    import sys

    if "PySide6.QtWidgets" not in sys.modules:
        return
    from PySide6 import QtCore, QtWidgets

    app = QtWidgets.QApplication.instance()
    if app is None:
        return
    for widget in app.topLevelWidgets():
        widget.close()
        widget.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.DeferredDelete)
    app.processEvents()
    gc.collect()

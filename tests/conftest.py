"""Shared test guards."""
from __future__ import annotations

import threading
import time

import pytest


def _fieldlab_threads():
    return [t for t in threading.enumerate() if t.name.startswith("fieldlab-") and t.is_alive()]


@pytest.fixture(autouse=True)
def no_leaked_training_threads():
    """Every test must stop the worker threads it started (a leaked one can abort the interpreter at exit)."""
    yield
    deadline = time.monotonic() + 10
    while _fieldlab_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    leaked = [t.name for t in _fieldlab_threads()]
    assert not leaked, f"threads still running after the test: {leaked}"

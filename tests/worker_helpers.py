"""Waiting for what a TrainingWorker publishes, from tests without a window."""
from __future__ import annotations

import time


def wait_for_snapshot(worker, condition, timeout=60.0):
    """The first snapshot from ``worker.latest`` for which ``condition`` holds (no worker error allowed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snapshot = worker.latest.take()
        if snapshot is not None:
            assert not snapshot.error, snapshot.error
            if condition(snapshot):
                return snapshot
        time.sleep(0.02)
    raise AssertionError("the worker never published the expected snapshot")

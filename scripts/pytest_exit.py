"""Run pytest, then leave the process with pytest's own exit status without native teardown.

Why: in a single process that has loaded Qt, Mesa OpenGL (vispy) and torch, the C++ static destructors
that run after Python finalisation crash now and then (SIGSEGV/SIGABRT with no Python frame, about one
run in eight here) although every test passed and every thread was stopped. That is a teardown-order
problem between third-party libraries, not a test result, so the suite's verdict is taken from pytest
and the process ends with os._exit. The app's own shutdown is tested separately, in subprocesses that
exit normally (tests/test_gui.py::test_closing_mid_training_exits_zero).
"""
import os
import sys

import pytest

if __name__ == "__main__":
    status = int(pytest.main(sys.argv[1:]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)

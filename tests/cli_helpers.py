"""Running the ``fieldlab`` command in-process from tests, and reading what it wrote."""
from __future__ import annotations

import contextlib
import io

import imageio.v3 as iio
import numpy as np

from app.cli import main


def run_cli(*argv) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``fieldlab ARGV...``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def read_png(path) -> np.ndarray:
    return np.asarray(iio.imread(path))

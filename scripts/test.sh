#!/usr/bin/env bash
# Set up if needed, then run the whole test suite headless on a virtual X screen with Mesa OpenGL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYTHONUNBUFFERED=1 PYTHONFAULTHANDLER=1 QT_QPA_PLATFORM=xcb
exec xvfb-run -a -s "-screen 0 1280x1024x24 +extension GLX +render" .venv/bin/python scripts/pytest_exit.py "$@"

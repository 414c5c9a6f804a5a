#!/usr/bin/env bash
# Set up if needed, then open FieldLab (extra arguments go to `fieldlab`, e.g. --signal astronaut).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] && command -v xvfb-run >/dev/null 2>&1; then
  echo "run: no display found; running on a virtual screen (xvfb-run). Use --screenshot FILE.png to see it." >&2
  exec xvfb-run -a -s "-screen 0 1600x1000x24 +extension GLX +render" .venv/bin/fieldlab "$@"
fi
exec .venv/bin/fieldlab "$@"

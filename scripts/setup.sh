#!/usr/bin/env bash
# Create or reuse ./.venv and install FieldLab with everything it needs; safe to run again (fast no-op).
#   - system packages for Qt (xcb), OpenGL (Mesa) and Xvfb, when running as root on Debian/Ubuntu;
#   - PyTorch: the CPU build where a local CPU wheel is provided (these machines), the CUDA build from
#     PyPI when an NVIDIA GPU is present; override with FIELDLAB_TORCH="torch==X.Y.Z" (any pip spec);
#   - FieldLab itself (editable) with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${FIELDLAB_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

SYSTEM_PACKAGES=(xvfb xauth libgl1 libegl1 libglx-mesa0 libgl1-mesa-dri libxkbcommon0 libxkbcommon-x11-0
  libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
  libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxcb-xfixes0 libfontconfig1 libfreetype6 libdbus-1-3
  fonts-dejavu-core)

if command -v dpkg >/dev/null 2>&1; then
  missing=()
  for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "setup: installing system packages: ${missing[*]}"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "setup: warning: missing system packages (run as root or: sudo apt-get install ${missing[*]})" >&2
    fi
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  if [ -n "${FIELDLAB_TORCH:-}" ]; then
    spec="$FIELDLAB_TORCH"
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    spec="torch>=2.2"          # PyPI's Linux default is the CUDA build
  else
    spec="torch==2.13.0"       # resolves to the local CPU wheel on these machines
  fi
  echo "setup: installing $spec"
  "$PY" -m pip install -q "$spec"
fi

stamp="$VENV/.fieldlab-installed"
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! "$PY" -c "import app, models, PySide6, pyqtgraph, vispy" >/dev/null 2>&1; then
  echo "setup: installing FieldLab and its dependencies"
  "$PY" -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi

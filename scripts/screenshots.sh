#!/usr/bin/env bash
# Regenerate the README's screenshots from the app itself (on a virtual screen): the default scene after
# about a minute of training, the spectral-bias comparison, the growth lab, the crop & extend lab and the
# FINER++ bias sweep, the 3D lab and the time lab.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
XVFB=(xvfb-run -a -s "-screen 0 1600x1000x24 +extension GLX +render")
"${XVFB[@]}" .venv/bin/fieldlab --screenshot assets/screenshot-image-lab.png --screenshot-after "${SECONDS_IMAGE:-60}"
"${XVFB[@]}" .venv/bin/fieldlab --preset spectral-bias --signal astronaut --size 128 \
  --screenshot assets/screenshot-spectral-bias.png --screenshot-after "${SECONDS_COMPARISON:-60}"
"${XVFB[@]}" .venv/bin/fieldlab --signal sinusoids --screenshot assets/screenshot-sinusoids.png --screenshot-after 10
"${XVFB[@]}" .venv/bin/fieldlab --preset growth \
  --screenshot assets/screenshot-growth.png --screenshot-after "${SECONDS_GROWTH:-150}"
"${XVFB[@]}" .venv/bin/fieldlab --preset growth --signal sinusoids --widths 10,20,30,40 --stage-steps 150 --batch 0 \
  --screenshot assets/screenshot-growth-1d.png --screenshot-after 30
"${XVFB[@]}" .venv/bin/python scripts/crop_screenshots.py "${SECONDS_CROP:-60}" "${EXTENSION_STEPS:-150}"
"${XVFB[@]}" .venv/bin/python scripts/sweep_screenshot.py "${SECONDS_SWEEP:-90}"
"${XVFB[@]}" .venv/bin/fieldlab --signal gyroid --screenshot assets/screenshot-3d.png --screenshot-after "${SECONDS_3D:-60}"
"${XVFB[@]}" .venv/bin/fieldlab --signal tour --time 0.3 --screenshot assets/screenshot-time.png --screenshot-after "${SECONDS_TIME:-90}"
"${XVFB[@]}" .venv/bin/python scripts/compare_screenshot.py "${COMPARE_STEPS:-150}"

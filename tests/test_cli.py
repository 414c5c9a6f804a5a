"""The headless command line: ``fieldlab fit`` / ``fieldlab render`` end to end, and one-line user errors."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import read_png, run_cli

from models.checkpoint import load_field, render_field
from models.metrics import psnr
from models.signals import load_signal

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--size", "24", "--width", "16", "--depth", "2"]


_png = read_png


@pytest.fixture(scope="module")
def camera_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "cam"
    code, out, err = run_cli("fit", "--signal", "camera", *TINY, "--steps", "30", "--out", folder)
    return folder, code, out, err


def test_fit_writes_every_promised_output(camera_run):
    folder, code, out, err = camera_run
    assert code == 0, err
    assert {"metrics.json", "reconstruction.png", "field.safetensors", "field.json"} <= set(os.listdir(folder))
    assert "Traceback" not in err
    assert "PSNR" in out
    with open(folder / "metrics.json", encoding="utf-8") as handle:
        metrics = json.load(handle)
    assert {"psnr", "ssim", "params", "steps", "seconds", "history"} <= set(metrics)
    assert math.isfinite(metrics["psnr"]) and metrics["psnr"] > 5
    assert -1.0 <= metrics["ssim"] <= 1.0
    assert metrics["params"] == (2 * 16 + 16) + (16 * 16 + 16) + (16 * 1 + 1)
    assert metrics["steps"] == 30
    assert metrics["seconds"] >= 0
    history = metrics["history"]
    assert isinstance(history, list) and len(history) >= 2
    for entry in history:
        assert set(entry) >= {"step", "psnr", "loss"}
        assert isinstance(entry["step"], int)
        assert math.isfinite(entry["psnr"]) and math.isfinite(entry["loss"])
    steps = [entry["step"] for entry in history]
    assert steps == sorted(set(steps)) and steps[-1] <= 30
    assert history[-1]["psnr"] > history[0]["psnr"]  # it learned something in 30 steps
    recon = _png(folder / "reconstruction.png")
    assert recon.shape == (24, 24) and recon.dtype == np.uint8
    with open(folder / "field.json", encoding="utf-8") as handle:
        meta = json.load(handle)
    assert meta["format"] == "fieldlab.field"
    assert meta["signal"]["shape"] == [24, 24] and meta["field"]["width"] == 16


def test_fit_psnr_matches_the_written_reconstruction(camera_run):
    folder = camera_run[0]
    with open(folder / "metrics.json", encoding="utf-8") as handle:
        metrics = json.load(handle)
    target = load_signal("camera", 24).target_display()
    recon = _png(folder / "reconstruction.png") / 255.0
    assert psnr(recon, target) == pytest.approx(metrics["psnr"], abs=0.05)


def test_render_at_another_size(camera_run, tmp_path):
    folder = camera_run[0]
    code, out, err = run_cli("render", folder, "--out", tmp_path / "big.png", "--size", "48")
    assert code == 0, err
    image = _png(tmp_path / "big.png")
    assert image.shape == (48, 48) and image.dtype == np.uint8
    # a smooth upsampling of the same field: close to the trained-size image resized
    small = _png(folder / "reconstruction.png").astype(float)
    assert abs(image.astype(float).mean() - small.mean()) < 8


def test_render_at_trained_size_matches_reconstruction(camera_run, tmp_path):
    # reconstruction.png, metrics.json and the saved weights must describe the same field
    folder = camera_run[0]
    code, _, err = run_cli("render", folder, "--out", tmp_path / "same.png")
    assert code == 0, err
    rendered = _png(tmp_path / "same.png").astype(int)
    recon = _png(folder / "reconstruction.png").astype(int)
    assert rendered.shape == recon.shape
    assert np.abs(rendered - recon).max() <= 1


def test_saved_metrics_describe_the_saved_weights(camera_run):
    folder = camera_run[0]
    with open(folder / "metrics.json", encoding="utf-8") as handle:
        metrics = json.load(handle)
    saved = load_field(str(folder))
    assert saved.meta["metrics"]["steps"] == metrics["steps"]
    values = render_field(saved)
    unit = ((values.numpy() + 1.0) * 0.5).clip(0, 1)[:, :, 0]
    target = load_signal("camera", 24).target_display()
    assert psnr(unit, target) == pytest.approx(metrics["psnr"], abs=1e-3)


def test_fit_rgb_non_square_and_render_keeps_aspect(tmp_path):
    folder = tmp_path / "coffee"
    code, _, err = run_cli("fit", "--signal", "coffee", *TINY, "--steps", "5", "--out", folder)
    assert code == 0, err
    assert _png(folder / "reconstruction.png").shape == (16, 24, 3)
    code, _, err = run_cli("render", folder, "--out", tmp_path / "wide.png", "--size", "48")
    assert code == 0, err
    assert _png(tmp_path / "wide.png").shape == (32, 48, 3)


def test_fit_sinusoids(tmp_path):
    folder = tmp_path / "curve"
    code, out, err = run_cli("fit", "--signal", "sinusoids", "--width", "16", "--depth", "2", "--steps", "20",
                             "--out", folder)
    assert code == 0, err
    with open(folder / "metrics.json", encoding="utf-8") as handle:
        metrics = json.load(handle)
    assert math.isfinite(metrics["psnr"]) and metrics["ssim"] is None and metrics["steps"] == 20
    plot = _png(folder / "reconstruction.png")
    assert plot.ndim == 2 and plot.shape[1] == 1024  # one column per sample
    assert plot.min() < 64 and plot.max() == 255  # a dark line on white
    code, _, err = run_cli("render", folder, "--out", tmp_path / "curve.png", "--size", "200")
    assert code == 0, err
    assert _png(tmp_path / "curve.png").shape[1] == 200


def test_fit_with_minibatches_and_fourier(tmp_path):
    code, _, err = run_cli("fit", "--signal", "camera", "--model", "fourier", "--sigma", "3", *TINY,
                           "--batch", "100", "--steps", "5", "--out", tmp_path / "ff")
    assert code == 0, err
    assert load_field(str(tmp_path / "ff")).config.kind == "fourier"


def test_fit_on_tiny_image_does_not_crash(tmp_path):
    # SSIM's 11x11 gaussian window does not fit an 8 px image; the run must still be saved
    folder = tmp_path / "tiny"
    code, _, err = run_cli("fit", "--signal", "camera", "--size", "8", "--width", "8", "--depth", "1",
                           "--steps", "3", "--out", folder)
    assert code == 0, err
    assert (folder / "field.safetensors").exists()
    with open(folder / "metrics.json", encoding="utf-8") as handle:
        metrics = json.load(handle)
    assert metrics["ssim"] is None or -1.0 <= metrics["ssim"] <= 1.0


def test_fit_zero_steps_saves_the_initial_field(tmp_path):
    code, _, err = run_cli("fit", "--signal", "camera", *TINY, "--steps", "0", "--out", tmp_path / "zero")
    assert code == 0, err
    with open(tmp_path / "zero" / "metrics.json", encoding="utf-8") as handle:
        assert json.load(handle)["steps"] == 0
    assert load_field(str(tmp_path / "zero")).config.width == 16


def test_render_out_without_extension_is_handled(camera_run, tmp_path):
    # "--out result" (no .png) must not end in a traceback: write a PNG or refuse with one line
    code, _, err = run_cli("render", camera_run[0], "--out", tmp_path / "result")
    assert "Traceback" not in err
    if code == 0:
        written = [p for p in tmp_path.iterdir() if p.name.startswith("result")]
        assert written and _png(written[0]).shape == (24, 24)
    else:
        assert code == 2 and err.startswith("fieldlab: error: ") and len(err.strip().splitlines()) == 1


def _bad_cases(tmp_path):
    garbage = tmp_path / "garbage.png"
    garbage.write_text("not an image at all\n")
    not_a_field = tmp_path / "plain_folder"
    not_a_field.mkdir()
    a_file = tmp_path / "occupied"
    a_file.write_text("I am a file\n")
    fit = ["fit", *TINY, "--steps", "2"]
    out = str(tmp_path / "out")
    cases = {
        "unknown-signal": [*fit, "--signal", "no_such_signal", "--out", out],
        "missing-file": [*fit, "--signal", str(tmp_path / "missing.png"), "--out", out],
        "garbage-image": [*fit, "--signal", str(garbage), "--out", out],
        "steps-negative": ["fit", "--signal", "camera", *TINY, "--steps", "-1", "--out", out],
        "width-zero": ["fit", "--signal", "camera", "--size", "24", "--width", "0", "--steps", "2", "--out", out],
        "depth-zero": ["fit", "--signal", "camera", "--size", "24", "--depth", "0", "--steps", "2", "--out", out],
        "lr-zero": [*fit, "--signal", "camera", "--lr", "0", "--out", out],
        "size-one": ["fit", "--signal", "camera", "--size", "1", "--steps", "2", "--out", out],
        "render-not-a-field": ["render", str(not_a_field), "--out", str(tmp_path / "x.png")],
        "render-missing-folder": ["render", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.png")],
        "out-is-a-file": [*fit, "--signal", "camera", "--out", str(a_file)],
    }
    if not torch.cuda.is_available():
        cases["device-cuda"] = [*fit, "--signal", "camera", "--device", "cuda", "--out", out]
    return cases


BAD_CASES = ["unknown-signal", "missing-file", "garbage-image", "steps-negative", "width-zero", "depth-zero",
             "lr-zero", "size-one", "render-not-a-field", "render-missing-folder", "out-is-a-file", "device-cuda"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_exits_2_with_one_line(tmp_path, case):
    cases = _bad_cases(tmp_path)
    if case not in cases:
        pytest.skip("CUDA is available here")
    try:
        code, out, err = run_cli(*cases[case])
    except SystemExit as exc:  # argparse-style exits are not the contract here
        pytest.fail(f"SystemExit({exc.code}) instead of a returned exit code")
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fieldlab: error: ")
    assert "Traceback" not in err and out == ""
    if cases[case][0] == "fit" and case != "out-is-a-file":
        assert not (tmp_path / "out").exists()  # nothing half-written


def test_error_messages_name_the_problem(tmp_path):
    cases = _bad_cases(tmp_path)
    expectations = {"unknown-signal": "no_such_signal", "missing-file": "missing.png",
                    "garbage-image": "garbage.png", "steps-negative": "--steps", "width-zero": "width",
                    "render-not-a-field": "not a saved field"}
    for case, words in expectations.items():
        _, _, err = run_cli(*cases[case])
        assert words in err, (case, err)


def _subprocess(*args, timeout=120):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_python_dash_m_app_fit(tmp_path):
    result = _subprocess("fit", "--signal", "camera", "--size", "16", "--width", "8", "--depth", "1",
                         "--steps", "5", "--out", str(tmp_path / "sub"), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "sub" / "field.safetensors").exists() and (tmp_path / "sub" / "metrics.json").exists()
    assert _png(tmp_path / "sub" / "reconstruction.png").shape == (16, 16)


def test_python_dash_m_app_help():
    result = _subprocess("--help", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "fit" in result.stdout and "render" in result.stdout
    assert "Traceback" not in result.stderr

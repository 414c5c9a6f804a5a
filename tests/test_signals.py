"""Target signals: bundled samples, the sinusoids curve, user image files and one-line load errors."""
from __future__ import annotations

import os

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from models.signals import (
    SAMPLE_IMAGES, Signal, SignalError, grid_coords, image_signal, load_signal, read_image_file, sinusoids_signal,
)

GRAY_SAMPLES = {"camera", "moon", "coins", "page", "text", "checkerboard", "horse"}
RGB_SAMPLES = {"astronaut", "coffee", "chelsea", "rocket", "colorwheel"}


def _check_image_signal(signal: Signal) -> None:
    h, w = signal.shape
    assert signal.kind == "image"
    assert signal.coords.shape == (h * w, 2) and signal.coords.dtype == torch.float32
    assert signal.values.shape == (h * w, signal.channels) and signal.values.dtype == torch.float32
    assert signal.values.min() >= -1.0 and signal.values.max() <= 1.0
    ex, ey = signal.extent
    # the longer axis spans exactly [-1, 1]; the other keeps the aspect ratio
    assert max(ex, ey) == 1.0
    assert ex / ey == pytest.approx(w / h)
    # samples sit at pixel centres, half a (square) pixel inside the box
    xs, ys = signal.coords[:, 0], signal.coords[:, 1]
    pixel = 2.0 / max(h, w)
    assert xs.min().item() == pytest.approx(-ex + pixel / 2) and xs.max().item() == pytest.approx(ex - pixel / 2)
    assert ys.min().item() == pytest.approx(-ey + pixel / 2) and ys.max().item() == pytest.approx(ey - pixel / 2)
    assert signal.in_features == 2
    display = signal.target_display()
    assert display.shape == ((h, w) if signal.channels == 1 else (h, w, signal.channels))
    assert display.min() >= 0.0 and display.max() <= 1.0


@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_every_sample_image_loads_offline(name):
    signal = load_signal(name, 32)
    _check_image_signal(signal)
    assert max(signal.shape) == 32
    assert signal.channels in (1, 3)
    if name in GRAY_SAMPLES:
        assert signal.channels == 1
    if name in RGB_SAMPLES:
        assert signal.channels == 3
    # every bundled sample is larger than 32 px, so each one was downscaled and says so
    assert "downscaled" in signal.note and "\n" not in signal.note
    assert max(signal.original_shape) > 32


def test_coordinate_layout_is_x_then_y_row_major():
    coords = grid_coords((3, 4), (1.0, 0.75))
    assert coords.shape == (12, 2)
    # pixel centres: x in (-0.75, -0.25, 0.25, 0.75), y in (-0.5, 0, 0.5); square 0.5-wide pixels
    assert torch.allclose(coords[0], torch.tensor([-0.75, -0.5]))
    assert torch.allclose(coords[3], torch.tensor([0.75, -0.5]))   # end of the first row: x varies fastest
    assert torch.allclose(coords[4], torch.tensor([-0.75, 0.0]))   # second row
    assert torch.allclose(coords[-1], torch.tensor([0.75, 0.5]))


def test_aspect_ratio_kept_for_coffee():
    big = load_signal("coffee", 256)
    assert big.original_shape == (400, 600)
    assert big.shape == (171, 256) and big.channels == 3
    assert big.extent == (1.0, pytest.approx(171 / 256))
    assert "600x400" in big.note and "256x171" in big.note
    _check_image_signal(big)
    small = load_signal("coffee", 24)
    assert small.shape == (16, 24)
    assert small.extent == (1.0, pytest.approx(16 / 24))


def test_portrait_image_extent():
    signal = load_signal("cell", 32)  # 660 x 550 (portrait)
    h, w = signal.shape
    assert h == 32 and w < 32
    assert signal.extent == (pytest.approx(w / h), 1.0)


def test_keep_aspect_false_stretches_to_square():
    signal = load_signal("coffee", 24, keep_aspect=False)
    assert signal.shape == (16, 24)
    assert signal.extent == (1.0, 1.0)
    # 16 rows stretched over the same [-1, 1] as 24 columns: the last row centre is half a row inside
    assert signal.coords[:, 1].max().item() == pytest.approx(1.0 - 1.0 / 16)
    assert signal.coords[:, 0].max().item() == pytest.approx(1.0 - 1.0 / 24)


def test_downscale_note_only_when_downscaled():
    array = (np.arange(20 * 30).reshape(20, 30) % 256).astype(np.uint8)
    same = image_signal(array, "small", size=64)
    assert same.note == "" and same.shape == (20, 30) and same.original_shape == (20, 30)
    exact = image_signal(array, "small", size=30)
    assert exact.note == "" and exact.shape == (20, 30)
    down = image_signal(array, "small", size=15)
    assert down.shape == (10, 15) and "downscaled" in down.note
    assert load_signal("checkerboard", 256).note == ""  # 200 x 200 < 256


def test_grayscale_vs_rgb_channels():
    assert load_signal("camera", 16).channels == 1
    assert load_signal("astronaut", 16).channels == 3
    rgb_gray = np.repeat((np.arange(64).reshape(8, 8) * 4).astype(np.uint8)[:, :, None], 3, axis=2)
    assert image_signal(rgb_gray, "gray-as-rgb").channels == 1  # identical channels collapse to gray


def test_value_scaling_to_minus_one_one():
    array = np.array([[0, 255], [51, 204]], dtype=np.uint8)
    signal = image_signal(array, "tiny")
    assert torch.allclose(signal.values[:, 0], torch.tensor([-1.0, 1.0, -0.6, 0.6]), atol=1e-6)
    assert np.allclose(signal.target_display(), array / 255.0, atol=1e-6)


def test_sinusoids_signal():
    signal = load_signal("sinusoids", 32)  # the size does not apply to curves
    assert signal.kind == "curve" and signal.channels == 1 and signal.in_features == 1
    n = signal.shape[0]
    assert signal.coords.shape == (n, 1) and signal.values.shape == (n, 1)
    assert signal.coords.min().item() == -1.0 and signal.coords.max().item() == 1.0
    assert signal.values.abs().max().item() <= 0.9 + 1e-6
    assert signal.values.abs().max().item() == pytest.approx(0.9, abs=1e-6)  # fills the range
    again = sinusoids_signal()
    assert torch.equal(signal.values, again.values) and torch.equal(signal.coords, again.coords)
    assert not torch.equal(sinusoids_signal(seed=1).values, signal.values)
    display = signal.target_display()
    assert display.shape == (n,) and 0.0 <= display.min() and display.max() <= 1.0


# -- user files ------------------------------------------------------------------------------------------

def _gradient(h=20, w=30):
    y, x = np.mgrid[0:h, 0:w]
    return y / (h - 1), x / (w - 1)


def _write(path, array, **kwargs):
    iio.imwrite(path, array, **kwargs)
    return str(path)


def test_user_png_8bit_gray(tmp_path):
    y, x = _gradient()
    array = np.round(255 * (0.5 * x + 0.5 * y)).astype(np.uint8)
    signal = load_signal(_write(tmp_path / "gray.png", array), 64)
    assert signal.name == "gray.png" and signal.shape == (20, 30) and signal.channels == 1
    assert np.allclose(signal.target_display(), array / 255.0, atol=1e-6)
    _check_image_signal(signal)


def test_user_png_16bit(tmp_path):
    y, x = _gradient()
    array = np.round(65535 * x * y).astype(np.uint16)
    signal = load_signal(_write(tmp_path / "deep.png", array), 64)
    assert signal.channels == 1
    # 16-bit values are scaled by 65535, not 255 (which would saturate everything)
    assert np.allclose(signal.target_display(), array / 65535.0, atol=1e-6)


def test_user_png_rgba_drops_alpha(tmp_path):
    y, x = _gradient()
    rgb = np.stack([x, y, 1 - x], axis=2)
    rgba = np.concatenate([rgb, np.full(x.shape + (1,), 0.25)], axis=2)
    array = np.round(255 * rgba).astype(np.uint8)
    signal = load_signal(_write(tmp_path / "rgba.png", array), 64)
    assert signal.channels == 3
    assert np.allclose(signal.target_display(), array[:, :, :3] / 255.0, atol=1e-6)


def test_user_jpeg(tmp_path):
    y, x = _gradient(32, 48)
    array = np.round(255 * np.stack([x, y, 0.5 * (x + y)], axis=2)).astype(np.uint8)
    signal = load_signal(_write(tmp_path / "photo.jpg", array), 64)
    assert signal.shape == (32, 48) and signal.channels == 3
    assert np.abs(signal.target_display() - array / 255.0).mean() < 0.03  # lossy but close


@pytest.mark.parametrize("dtype,scale", [(np.uint8, 255), (np.uint16, 65535)])
def test_user_tiff(tmp_path, dtype, scale):
    y, x = _gradient()
    array = np.round(scale * x).astype(dtype)
    signal = load_signal(_write(tmp_path / "scan.tif", array), 64)
    assert signal.channels == 1
    assert np.allclose(signal.target_display(), array / float(scale), atol=1e-6)


def test_user_bmp_gray_and_rgb(tmp_path):
    y, x = _gradient()
    gray = np.round(255 * y).astype(np.uint8)
    rgb = np.round(255 * np.stack([x, y, 1 - y], axis=2)).astype(np.uint8)
    g = load_signal(_write(tmp_path / "g.bmp", gray), 64)
    c = load_signal(_write(tmp_path / "c.bmp", rgb), 64)
    assert g.channels == 1 and np.allclose(g.target_display(), gray / 255.0, atol=1e-6)
    assert c.channels == 3 and np.allclose(c.target_display(), rgb / 255.0, atol=1e-6)


def test_user_file_downscaled_keeps_aspect(tmp_path):
    y, x = _gradient(40, 100)
    signal = load_signal(_write(tmp_path / "wide.png", np.round(255 * x).astype(np.uint8)), 50)
    assert signal.shape == (20, 50) and signal.extent == (1.0, pytest.approx(0.4))
    assert "downscaled" in signal.note


# -- bad inputs: SignalError with one line, no traceback noise -------------------------------------------

def _bad_inputs(tmp_path):
    real = tmp_path / "real.png"
    iio.imwrite(real, (np.arange(400).reshape(20, 20) % 256).astype(np.uint8))
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(real.read_bytes()[:40])
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\nat all\n")
    folder = tmp_path / "folder.png"
    folder.mkdir()
    return {
        "empty": str(empty), "truncated": str(truncated), "text": str(text), "folder": str(folder),
        "missing": str(tmp_path / "missing.png"), "missing-no-suffix": str(tmp_path / "nothing_here"),
        "unknown-sample": "no_such_sample", "empty-name": "",
    }


@pytest.mark.parametrize("case", ["empty", "truncated", "text", "folder", "missing", "missing-no-suffix",
                                  "unknown-sample", "empty-name"])
def test_bad_inputs_raise_one_line_signal_error(tmp_path, capfd, case):
    source = _bad_inputs(tmp_path)[case]
    with pytest.raises(SignalError) as info:
        load_signal(source, 32)
    message = str(info.value)
    assert message.strip() and "\n" not in message and "\r" not in message
    assert "Traceback" not in message
    assert len(message) < 400
    # no chained exception to print as "During handling of the above exception..."
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    if case != "empty-name" and case != "unknown-sample":
        assert os.path.basename(source) in message
    if case == "unknown-sample":
        assert "no_such_sample" in message


def test_specific_error_wording(tmp_path):
    cases = _bad_inputs(tmp_path)
    expectations = {"empty": "empty", "folder": "folder", "missing": "no such file",
                    "truncated": "not a readable image", "text": "not a readable image"}
    for case, words in expectations.items():
        with pytest.raises(SignalError, match=words):
            load_signal(cases[case])


def test_read_image_file_direct_and_signal_error_is_value_error(tmp_path):
    with pytest.raises(ValueError):  # callers that catch ValueError keep working
        read_image_file(str(tmp_path / "nope.png"))
    with pytest.raises(SignalError, match="expected a grayscale or RGB image"):
        image_signal(np.zeros((4, 4, 5), dtype=np.uint8), "five-channels")
    with pytest.raises(SignalError, match="too small"):
        image_signal(np.zeros((1, 10), dtype=np.uint8), "one-row")
    with pytest.raises(SignalError, match="NaN"):
        image_signal(np.full((4, 4), np.nan, dtype=np.float32), "nan")

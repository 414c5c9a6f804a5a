"""``fieldlab fit --model streamable`` and ``fieldlab render --width/--residual`` end to end (tiny runs)."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from cli_helpers import read_png, run_cli

from models.checkpoint import load_field, render_field
from models.metrics import psnr
from models.signals import load_signal
from models.streamable import StreamableField

SIZE = 32
WIDTHS = (4, 8, 16)
GROW = ["--signal", "camera", "--size", SIZE, "--model", "streamable", "--widths", "4,8,16", "--stage-steps", "20"]


pytestmark = pytest.mark.usefixtures("one_torch_thread_for_fit")


_png = read_png


def _metrics(folder) -> dict:
    with open(os.path.join(folder, "metrics.json"), encoding="utf-8") as handle:
        return json.load(handle)


def hand_count(widths, depth=3, fin=2, fout=1):
    counts, total, before = [], 0, 0
    for k, w in enumerate(widths):
        d = w - before
        total += d * fin + d + (depth - 1) * (d * w + d) + fout * d + (fout if k == 0 else 0)
        counts.append(total)
        before = w
    return counts


def assert_one_line_error(code, err, *fragments):
    assert code == 2, err
    assert err.startswith("fieldlab: error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grow") / "cam"
    code, out, err = run_cli("fit", *GROW, "--out", folder)
    assert code == 0, err
    return folder, out


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plain") / "siren"
    code, _, err = run_cli("fit", "--signal", "camera", "--size", "16", "--width", "8", "--depth", "2",
                           "--steps", "5", "--out", folder)
    assert code == 0, err
    return folder


def test_fit_streamable_writes_per_width_metrics(grown):
    folder, out = grown
    metrics = _metrics(folder)
    per_width = metrics["per_width"]
    assert [entry["width"] for entry in per_width] == list(WIDTHS)
    params = [entry["params"] for entry in per_width]
    assert params == hand_count(WIDTHS) and all(b > a for a, b in zip(params, params[1:]))
    values = [entry["psnr"] for entry in per_width]
    assert all(isinstance(v, float) and math.isfinite(v) for v in values)
    assert all(b >= a for a, b in zip(values, values[1:])), values
    assert all(-1 <= entry["ssim"] <= 1 for entry in per_width)
    assert [entry["state"] for entry in per_width] == ["trained"] * 3
    assert [entry["end_step"] for entry in per_width] == [20, 40, 60]
    assert metrics["model"] == "streamable" and metrics["steps"] == 60
    assert metrics["params"] == params[-1]
    assert metrics["psnr"] == pytest.approx(values[-1], abs=1e-6)
    assert metrics["growth"]["widths"] == list(WIDTHS) and metrics["growth"]["mode"] == "progressive"
    assert metrics["field"]["widths"] == list(WIDTHS)
    for width, value in zip(WIDTHS, values):
        assert f"width {width:>4}" in out and f"{value:.2f} dB" in out
    meta = json.loads((folder / "field.json").read_text())
    assert meta["architecture"] == "streamable" and meta["stages"] == 3
    assert meta["growth"]["states"] == ["trained"] * 3 and meta["growth"]["stage_end_steps"] == [20, 40, 60]


def test_fit_streamable_writes_width_and_residual_images(grown):
    folder, _ = grown
    metrics = _metrics(folder)
    target = load_signal("camera", SIZE).target_display()
    saved = load_field(str(folder))
    for entry in metrics["per_width"]:
        width = entry["width"]
        image = _png(folder / f"width_{width}.png")
        assert image.shape == (SIZE, SIZE) and image.dtype == np.uint8
        # the image is the width whose PSNR is reported
        assert psnr(image / 255.0, target) == pytest.approx(entry["psnr"], abs=0.05)
        residual = _png(folder / f"residual_{width}.png")
        assert residual.shape == (SIZE, SIZE, 3) and residual.dtype == np.uint8
        # diverging colours: red where the stage added brightness, blue where it removed some
        values = render_field(saved, width=width, residual=True)[:, :, 0].numpy()
        strong = np.abs(values) > 0.3 * np.abs(values).max()
        red, blue = residual[:, :, 0].astype(int), residual[:, :, 2].astype(int)
        assert strong.any()
        assert np.all((red > blue)[strong & (values > 0)]) and np.all((blue > red)[strong & (values < 0)])
    assert not np.array_equal(_png(folder / "width_4.png"), _png(folder / "width_16.png"))
    widest = _png(folder / "width_16.png").astype(int)
    assert np.abs(widest - _png(folder / "reconstruction.png").astype(int)).max() <= 1


@pytest.mark.parametrize("width", WIDTHS)
def test_render_width_matches_the_fit_image(grown, tmp_path, width):
    folder, _ = grown
    code, out, err = run_cli("render", folder, "--width", width, "--out", tmp_path / "w.png")
    assert code == 0, err
    assert f"at width {width}" in out
    rendered = _png(tmp_path / "w.png").astype(int)
    written = _png(folder / f"width_{width}.png").astype(int)
    assert rendered.shape == written.shape == (SIZE, SIZE)
    assert np.abs(rendered - written).max() <= 1

    code, out, err = run_cli("render", folder, "--width", width, "--residual", "--out", tmp_path / "r.png")
    assert code == 0, err
    assert "residual" in out and "colour scale" in out
    residual = _png(tmp_path / "r.png").astype(int)
    assert residual.shape == (SIZE, SIZE, 3)
    assert np.abs(residual - _png(folder / f"residual_{width}.png").astype(int)).max() <= 1


def test_render_default_is_the_widest_and_sizes_scale(grown, tmp_path):
    folder, _ = grown
    code, _, err = run_cli("render", folder, "--out", tmp_path / "d.png")
    assert code == 0, err
    assert np.abs(_png(tmp_path / "d.png").astype(int) - _png(folder / "width_16.png").astype(int)).max() <= 1
    code, _, err = run_cli("render", folder, "--width", "8", "--size", "48", "--out", tmp_path / "big.png")
    assert code == 0, err
    assert _png(tmp_path / "big.png").shape == (48, 48)
    code, _, err = run_cli("render", folder, "--width", "8", "--residual", "--size", "48", "--out", tmp_path / "rb.png")
    assert code == 0, err
    assert _png(tmp_path / "rb.png").shape == (48, 48, 3)


def test_render_width_errors(grown, plain, tmp_path):
    folder, _ = grown
    code, _, err = run_cli("render", folder, "--width", "12", "--out", tmp_path / "x.png")
    assert_one_line_error(code, err, "12", "4, 8, 16")
    code, _, err = run_cli("render", folder, "--width", "12", "--residual", "--out", tmp_path / "x.png")
    assert_one_line_error(code, err, "4, 8, 16")
    code, _, err = run_cli("render", plain, "--width", "8", "--out", tmp_path / "x.png")
    assert_one_line_error(code, err, "not streamable")
    code, _, err = run_cli("render", plain, "--residual", "--out", tmp_path / "x.png")
    assert_one_line_error(code, err, "--residual", "streamable")
    assert not (tmp_path / "x.png").exists()
    # the plain field still renders without the streamable options
    code, _, err = run_cli("render", plain, "--out", tmp_path / "ok.png")
    assert code == 0, err


@pytest.mark.parametrize("widths,fragment", [
    ("a,b", "--widths"),
    ("8,4", "strictly increasing"),
    ("8,8", "strictly increasing"),
    ("0,4", "positive"),
    ("", "at least one width"),
])
def test_bad_widths_exit_2(tmp_path, widths, fragment):
    code, _, err = run_cli("fit", "--signal", "camera", "--size", "16", "--model", "streamable", "--widths", widths,
                           "--stage-steps", "2", "--out", tmp_path / "bad")
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("ranges,fragment", [("1-2", "LO:HI"), (",3:2", "lo <= hi"), ("1:x", "LO:HI")])
def test_bad_stage_bias_ranges_exit_2(tmp_path, ranges, fragment):
    code, _, err = run_cli("fit", "--signal", "camera", "--size", "16", "--model", "streamable", "--widths", "4,8",
                           "--stage-bias-ranges", ranges, "--stage-steps", "2", "--out", tmp_path / "bad")
    assert_one_line_error(code, err, fragment)


def test_fit_slimmable(tmp_path):
    folder = tmp_path / "slim"
    code, _, err = run_cli("fit", "--signal", "camera", "--size", "16", "--model", "streamable", "--widths", "4,8,16",
                           "--stage-steps", "10", "--growth-mode", "slimmable", "--out", folder)
    assert code == 0, err
    metrics = _metrics(folder)
    assert metrics["steps"] == 30 and metrics["growth"]["mode"] == "slimmable"
    per_width = metrics["per_width"]
    assert [e["width"] for e in per_width] == [4, 8, 16]
    assert [e["state"] for e in per_width] == ["trained"] * 3 and [e["end_step"] for e in per_width] == [30] * 3
    assert all(math.isfinite(e["psnr"]) for e in per_width)
    assert [e["params"] for e in per_width] == hand_count((4, 8, 16))
    assert all((folder / f"width_{w}.png").exists() and (folder / f"residual_{w}.png").exists() for w in (4, 8, 16))


def test_fit_spatial_reports_revealed_columns(tmp_path):
    folder = tmp_path / "spatial"
    code, _, err = run_cli("fit", *GROW, "--spatial", "--out", folder)
    assert code == 0, err
    per_width = _metrics(folder)["per_width"]
    assert [e["revealed_columns"] for e in per_width] == [11, 22, 32]
    target = load_signal("camera", SIZE).target_display()
    for entry in per_width:
        cols = entry["revealed_columns"]
        image = _png(folder / f"width_{entry['width']}.png") / 255.0
        assert psnr(image[:, :cols], target[:, :cols]) == pytest.approx(entry["psnr"], abs=0.05)
    # the first widths are scored on their part only, not on the whole image
    for entry in per_width[:2]:
        image = _png(folder / f"width_{entry['width']}.png") / 255.0
        assert abs(psnr(image, target) - entry["psnr"]) > 0.1


def test_fit_finer_with_stage_bias_ranges(tmp_path):
    folder = tmp_path / "finer"
    code, _, err = run_cli("fit", *GROW, "--activation", "finer", "--stage-bias-ranges", ",1:2,2:3", "--out", folder)
    assert code == 0, err
    metrics = _metrics(folder)
    assert [e["width"] for e in metrics["per_width"]] == list(WIDTHS)
    assert all(math.isfinite(e["psnr"]) for e in metrics["per_width"])
    assert metrics["field"]["activation"] == "finer"
    assert metrics["field"]["stage_bias_ranges"] == [None, [1.0, 2.0], [2.0, 3.0]]
    saved = load_field(str(folder))
    assert isinstance(saved.model, StreamableField) and saved.config.activation == "finer"
    # 20 Adam steps at lr 1e-3 move a bias by at most ~0.02: the drawn ranges are still visible
    for stage, (lo, hi) in ((1, (1.0, 2.0)), (2, (2.0, 3.0))):
        bias = saved.model.stages[stage].first_bias.detach().abs()
        assert bias.min() >= lo - 0.05 and bias.max() <= hi + 0.05, (stage, bias)


def test_fit_plateau_ends_stages_early(tmp_path):
    folder = tmp_path / "plateau"
    code, _, err = run_cli("fit", "--signal", "camera", "--size", "16", "--model", "streamable", "--widths", "4,8",
                           "--depth", "2", "--stage-steps", "5000", "--plateau", "--lr", "1e-9", "--out", folder)
    assert code == 0, err
    metrics = _metrics(folder)
    assert metrics["steps"] == 200  # two 50-step windows per stage, instead of 10000 steps
    assert [e["end_step"] for e in metrics["per_width"]] == [100, 200]
    assert [e["state"] for e in metrics["per_width"]] == ["trained", "trained"]


def test_fit_curve_with_two_widths(tmp_path):
    folder = tmp_path / "curve"
    code, _, err = run_cli("fit", "--signal", "sinusoids", "--model", "streamable", "--widths", "10,20",
                           "--stage-steps", "30", "--out", folder)
    assert code == 0, err
    metrics = _metrics(folder)
    per_width = metrics["per_width"]
    assert [e["width"] for e in per_width] == [10, 20]
    assert [e["params"] for e in per_width] == hand_count((10, 20), fin=1)
    assert all(math.isfinite(e["psnr"]) and e["ssim"] is None for e in per_width)
    assert per_width[1]["psnr"] >= per_width[0]["psnr"]
    for width in (10, 20):
        plot = _png(folder / f"width_{width}.png")
        assert plot.ndim == 2 and plot.shape[1] == 1024
        assert _png(folder / f"residual_{width}.png").shape == plot.shape
    code, _, err = run_cli("render", folder, "--width", "10", "--out", tmp_path / "c10.png")
    assert code == 0, err
    assert np.abs(_png(tmp_path / "c10.png").astype(int) - _png(folder / "width_10.png").astype(int)).max() <= 1
    code, _, err = run_cli("render", folder, "--width", "20", "--residual", "--out", tmp_path / "r20.png")
    assert code == 0, err
    assert np.abs(_png(tmp_path / "r20.png").astype(int) - _png(folder / "residual_20.png").astype(int)).max() <= 1


def test_fit_rgb_non_square_streamable(tmp_path):
    folder = tmp_path / "coffee"
    code, _, err = run_cli("fit", "--signal", "coffee", "--size", "16", "--model", "streamable", "--widths", "4,8",
                           "--stage-steps", "5", "--out", folder)
    assert code == 0, err
    per_width = _metrics(folder)["per_width"]
    assert [e["params"] for e in per_width] == hand_count((4, 8), fout=3)
    h, w = load_signal("coffee", 16).shape
    assert (h, w) == (11, 16)
    for width in (4, 8):
        assert _png(folder / f"width_{width}.png").shape == (h, w, 3)
        assert _png(folder / f"residual_{width}.png").shape == (h, w, 3)
    code, _, err = run_cli("render", folder, "--width", "4", "--out", tmp_path / "c4.png")
    assert code == 0, err
    assert np.abs(_png(tmp_path / "c4.png").astype(int) - _png(folder / "width_4.png").astype(int)).max() <= 1


def test_fit_streamable_divergence_on_a_stage_end_is_a_warning(tmp_path):
    folder = tmp_path / "diverged"
    code, _, err = run_cli("fit", "--signal", "camera", "--size", "16", "--model", "streamable", "--widths", "4,8",
                           "--stage-steps", "1", "--lr", "100", "--out", folder)
    # like a plain field (and like --stage-steps 3 here): warn, save the restored weights, exit 0
    assert code == 0, err
    assert "warning" in err and "exploding" in err
    assert (folder / "metrics.json").exists()


def test_fit_streamable_with_one_step_count_per_stage(tmp_path):
    folder = tmp_path / "schedule"
    code, _, err = run_cli("fit", "--signal", "camera", "--size", "16", "--model", "streamable", "--widths", "4,8,12",
                           "--stage-steps", "4,6", "--out", folder)
    assert code == 0, err
    with open(folder / "metrics.json", encoding="utf-8") as handle:
        metrics = json.load(handle)
    assert [entry["end_step"] for entry in metrics["per_width"]] == [4, 10, 16]
    assert metrics["steps"] == 16
    code, _, err = run_cli("fit", "--signal", "camera", "--size", "16", "--model", "streamable", "--stage-steps", "4,x",
                           "--out", tmp_path / "bad")
    assert code == 2 and "--stage-steps" in err


def test_fit_streamable_with_separate_models_baseline(tmp_path):
    folder = tmp_path / "baseline"
    code, out, err = run_cli("fit", "--signal", "camera", "--size", "16", "--model", "streamable", "--widths", "4,8",
                             "--stage-steps", "5", "--baseline", "--out", folder)
    assert code == 0, err
    with open(folder / "metrics.json", encoding="utf-8") as handle:
        metrics = json.load(handle)
    separate, per_width = metrics["separate"], metrics["per_width"]
    assert [entry["matches_width"] for entry in separate] == [4, 8]
    assert [entry["steps"] for entry in separate] == [5, 10], "each had as many steps as its width"
    for entry, width in zip(separate, per_width):
        assert abs(entry["params"] - width["params"]) <= 0.2 * width["params"]
        assert math.isfinite(entry["psnr"])
    coverage = metrics["coverage"]
    assert coverage["streamable_params"] == per_width[-1]["params"]
    assert coverage["separate_params"] == sum(entry["params"] for entry in separate)
    assert coverage["ratio"] == pytest.approx(coverage["separate_params"] / coverage["streamable_params"])
    assert "separate models" in out

"""``fieldlab fit --model local-global``, ``fieldlab crop`` and rendering a cropped field, end to end (tiny runs)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from cli_helpers import read_png, run_cli

from models.checkpoint import load_field, render_field
from models.local_global import LocalGlobalField, global_parameters, local_parameters_per_partition

SIZE = 32
FIT = ["--signal", "camera", "--size", SIZE, "--model", "local-global", "--partitions", "4,4", "--params", "3000",
       "--depth", "2", "--batch", "0"]


pytestmark = pytest.mark.usefixtures("one_torch_thread_for_fit")


def _metrics(folder) -> dict:
    with open(os.path.join(folder, "metrics.json"), encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lg") / "fit"
    code, out, err = run_cli("fit", *FIT, "--steps", 40, "--out", folder, "--quiet")
    assert code == 0, err
    return folder, out


def test_fit_writes_partition_metrics_and_a_loadable_field(fitted):
    folder, out = fitted
    metrics = _metrics(folder)
    part = metrics["partitions"]
    assert metrics["model"] == "local-global" and part["factors"] == [4, 4] and part["present"] == 16
    saved = load_field(folder)
    assert isinstance(saved.model, LocalGlobalField)
    config = saved.config
    assert part["global_params"] == global_parameters(config)
    assert part["local_params_per_partition"] == local_parameters_per_partition(config)
    assert metrics["params"] == part["global_params"] + 16 * part["local_params_per_partition"]
    grid = np.array(part["psnr_per_partition"], dtype=float)
    assert grid.shape == (4, 4) and np.isfinite(grid).all()
    assert 0.0 < part["global_share"] < 0.5
    assert "PSNR" in out and "per partition" in out


def test_crop_removes_partitions_and_the_rest_renders_bit_identically(fitted, tmp_path):
    folder, _ = fitted
    cropped = tmp_path / "cropped"
    code, out, err = run_cli("crop", folder, "--remove", "0,0", "0,1", "3,3", "--out", cropped)
    assert code == 0, err
    metrics = _metrics(cropped)
    saved, original = load_field(cropped), load_field(folder)
    local = local_parameters_per_partition(original.config)
    assert metrics["params_before"] - metrics["params_after"] == 3 * local
    assert metrics["bytes_after"] < metrics["bytes_before"]
    assert metrics["removed"] == [[0, 0], [0, 1], [3, 3]]
    assert metrics["psnr_kept"] is not None and metrics["psnr_kept"] > 10
    assert saved.model.present_list == [p for p in range(16) if p not in (0, 1, 15)]
    before, after = render_field(original), render_field(saved)
    kept = ~torch.isnan(after)
    assert torch.equal(before[kept], after[kept])
    assert kept.float().mean().item() == pytest.approx(13 / 16)
    png = read_png(os.path.join(cropped, "reconstruction.png"))
    assert png.shape == (SIZE, SIZE, 4) and (png[..., 3] == 0).mean() == pytest.approx(3 / 16)
    # render at another size keeps the holes transparent
    code, out, err = run_cli("render", cropped, "--out", tmp_path / "big.png", "--size", 64)
    assert code == 0, err
    assert "transparent" in out
    assert read_png(tmp_path / "big.png").shape == (64, 64, 4)


def test_crop_keep_only(fitted, tmp_path):
    folder, _ = fitted
    code, _, err = run_cli("crop", folder, "--keep", "1,1", "1,2", "--out", tmp_path / "kept")
    assert code == 0, err
    assert load_field(tmp_path / "kept").model.present_list == [5, 6]


@pytest.mark.parametrize("argv, message", [
    (["--remove", "4,0"], "outside the 4x4 grid"),
    (["--remove", "a,b"], "expected row,column"),
    ([], "give --remove"),
    (["--keep", "9,9"], "outside"),
])
def test_crop_bad_arguments_give_one_line_errors(fitted, tmp_path, argv, message):
    folder, _ = fitted
    code, _, err = run_cli("crop", folder, *argv, "--out", tmp_path / "x")
    assert code == 2 and message in err, err
    assert not os.path.exists(tmp_path / "x")


def test_crop_refuses_fields_it_cannot_crop(fitted, tmp_path):
    folder, _ = fitted
    code, _, err = run_cli("fit", "--signal", "camera", "--size", 16, "--steps", 2, "--width", 8, "--out",
                           tmp_path / "plain", "--quiet")
    assert code == 0, err
    code, _, err = run_cli("crop", tmp_path / "plain", "--remove", "0,0", "--out", tmp_path / "y")
    assert code == 2 and "not a partitioned field" in err
    code, _, err = run_cli("crop", folder, "--remove", *[f"{i},{j}" for i in range(4) for j in range(4)],
                           "--out", tmp_path / "z")
    assert code == 2 and "every partition" in err
    code, _, err = run_cli("crop", folder, "--remove", "0,0", "--out", folder)
    assert code == 2 and "must differ" in err


def test_fit_baselines_and_siren_per_partition(tmp_path):
    code, out, err = run_cli("fit", *FIT, "--steps", 10, "--baselines", "--out", tmp_path / "b", "--quiet")
    assert code == 0, err
    compared = _metrics(tmp_path / "b")["compared"]
    labels = [entry["label"] for entry in compared]
    assert labels[0].startswith("Local-Global") and labels[1].startswith("SIREN per partition")
    assert labels[2].startswith("SIREN w=")
    params = [entry["params"] for entry in compared]
    assert max(params) / min(params) < 1.15, params
    code, out, err = run_cli("fit", *FIT[:5], "siren-per-partition", *FIT[6:], "--steps", 5, "--out", tmp_path / "s",
                             "--quiet")
    assert code == 0, err
    metrics = _metrics(tmp_path / "s")
    assert metrics["model"] == "siren-per-partition" and metrics["partitions"]["global_params"] == 0


def test_fit_extend_reports_the_mse_curves_of_the_three_runs(tmp_path):
    code, out, err = run_cli("fit", *FIT, "--extend", "--extend-at", 6, "--steps", 5, "--out", tmp_path / "e", "--quiet")
    assert code == 0, err
    metrics = _metrics(tmp_path / "e")
    assert metrics["partitions"]["extension_step"] == 6 and metrics["partitions"]["added"] == 8
    runs = metrics["compared"]
    assert len(runs) == 3
    for entry in runs:
        assert entry["extension_step"] is not None
        steps = [point["step"] for point in entry["extension_mse"]]
        assert steps == list(range(5)), (entry["label"], steps)
        assert all(point["mse"] > 0 for point in entry["extension_mse"])
    assert runs[2]["extension_step"] == 6 and runs[2]["steps"] == 11


@pytest.mark.parametrize("argv, message", [
    (["--partitions", "4"], "one partition factor per axis"),
    (["--partitions", "x"], "expected factors"),
    (["--local-width", "4", "--params", "1000"], "not both"),
    (["--global-width", "4"], "needs --local-width"),
    (["--params", "10"], "too few"),
])
def test_fit_bad_partition_options(tmp_path, argv, message):
    args = ["fit", "--signal", "camera", "--size", 16, "--model", "local-global", "--steps", 1, *argv,
            "--out", tmp_path / "o", "--quiet"]
    code, _, err = run_cli(*args)
    assert code == 2 and message in err, err

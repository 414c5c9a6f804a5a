"""Headless sessions and bundles: 'fieldlab session' continues a session exactly, 'fieldlab bundle' writes
everything behind a result, and 'fieldlab rebuild' retrains it from settings and seeds, bit for bit."""
from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest
import torch

from models import scenes
from models.sessions import SignalRef, capture_session, open_session, restored_runs, tensors_equal

from cli_helpers import read_png, run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread_for_fit")

SCENE = replace(scenes.Scene(preset="spectral-bias"), field=replace(scenes.Scene().field, width=16),
                train=replace(scenes.Scene().train, lr=1e-3, batch_size=128))


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    ref = SignalRef("camera", 24)
    signal = ref.load()
    trainers = SCENE.build(signal)
    for _ in range(25):
        for _, trainer in trainers:
            trainer.step()
    path = str(folder / "s.fieldlab")
    capture_session(path, trainers, SCENE, ref, signal)
    return path, trainers


def _weights(trainers):
    return {f"{i}.{k}": v for i, (_, t) in enumerate(trainers) for k, v in t.model.state_dict().items()}


def test_session_command_continues_exactly(session, tmp_path):
    path, trainers = session
    out = tmp_path / "more.fieldlab"
    code, stdout, _ = run_cli("session", path, "--steps", 7, "--save", out, "--out", tmp_path / "runs")
    assert code == 0 and "spectral-bias lab on camera" in stdout and "step 25" in stdout
    expected = restored_runs(open_session(path))
    for _ in range(7):
        for _, trainer in expected:
            trainer.step()
    assert tensors_equal(_weights(expected), _weights(restored_runs(open_session(str(out)))))
    assert len(os.listdir(tmp_path / "runs")) == 3


def test_bundle_then_rebuild_is_bit_identical(session, tmp_path):
    path, trainers = session
    bundle = tmp_path / "bundle"
    code, stdout, _ = run_cli("bundle", path, "--out", bundle)
    assert code == 0 and "bundle written" in stdout
    document = json.loads((bundle / "bundle.json").read_text())
    assert document["steps"] == 25 and document["scene"]["preset"] == "spectral-bias"
    assert [r["label"] for r in document["runs"]] == [label for label, _ in trainers]
    assert all(r["last_psnr"] is not None for r in document["runs"])
    for name in ("session.fieldlab", "metrics.csv", "README.md", "views/target.png", "views/run2_reconstruction.png",
                 "views/run0_error.png", "views/run1_spectrum.png"):
        assert (bundle / name).is_file(), name
    assert read_png(bundle / "views" / "run2_reconstruction.png").shape[:2] == (24, 24)
    rows = (bundle / "metrics.csv").read_text().splitlines()
    assert rows[0] == "run,label,step,loss,psnr_db" and len(rows) >= 1 + 3 * 24
    assert "fieldlab rebuild" in (bundle / "README.md").read_text()

    code, stdout, _ = run_cli("rebuild", bundle, "--out", tmp_path / "rebuilt", "--threads", 1)
    assert code == 0 and stdout.count("bit-identical") == 3, stdout
    report = json.loads((tmp_path / "rebuilt" / "rebuild.json").read_text())
    assert all(r["bit_identical"] and r["psnr_rebuilt"] == r["psnr_saved"] for r in report["runs"])


def test_bad_bundles_and_sessions_give_clear_errors(tmp_path):
    code, _, stderr = run_cli("rebuild", tmp_path, "--out", tmp_path / "x")
    assert code == 2 and "not a FieldLab bundle" in stderr
    (tmp_path / "bundle.json").write_text('{"format": "fieldlab.bundle", "version": 99}')
    code, _, stderr = run_cli("rebuild", tmp_path, "--out", tmp_path / "x")
    assert code == 2 and "bundle format 99" in stderr
    (tmp_path / "junk.fieldlab").write_bytes(b"junk")
    code, _, stderr = run_cli("session", tmp_path / "junk.fieldlab")
    assert code == 2 and "junk.fieldlab: not a FieldLab session" in stderr
    assert torch.get_num_threads() >= 1

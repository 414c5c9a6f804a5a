"""Sessions: save → open reproduces every run bit for bit (and it trains on identically); damaged, foreign and
newer files give clear messages; a kill during save never breaks the previous file; opening runs no code."""
from __future__ import annotations

import json
import os
import signal as os_signal
import subprocess
import sys
import time
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from models import scenes
from models.session_file import FORMAT_VERSION, SessionError, load_session
from models.sessions import SignalRef, capture_session, open_session, restored_runs, tensors_equal
from models.signals import load_signal
from models.trainer_state import capture_runs, restore_runs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _small(scene, width=16):
    return replace(scene, field=replace(scene.field, width=width))


def _growth():
    return replace(scenes.DEFAULT_GROWTH_SCENE, widths=(4, 8, 12),
                   growth=replace(scenes.DEFAULT_GROWTH_SCENE.growth, stage_steps=3))


def _crop_edits(trainers):
    for _, trainer in trainers:
        if trainer.partition_info() is not None:
            trainer.crop([0, 3, 5])
            trainer.restore([3])  # leaves a stash (with Adam moments) and an undo history


def _time_scene():
    from app.time_window import family_defaults

    return replace(family_defaults("time-video"), field=replace(family_defaults("time-video").field, width=16))


CASES = {
    "image-minibatch": (lambda: replace(_small(scenes.Scene()), train=replace(scenes.Scene().train, batch_size=100)),
                        "camera", 16, None),
    "spectral-bias": (lambda: _small(scenes.Scene(preset="spectral-bias")), "camera", 16, None),
    "growth-mid-stage": (_growth, "camera", 16, None),
    "crop-with-stash": (lambda: scenes.DEFAULT_CROP_SCENE, "camera", 32, _crop_edits),
    "extended": (lambda: replace(scenes.DEFAULT_EXTEND_SCENE, crop=replace(scenes.DEFAULT_EXTEND_SCENE.crop, extend_at=3)),
                 "camera", 32, None),
    "sweep-batched": (lambda: _small(scenes.DEFAULT_SWEEP_SCENE), "camera", 16, None),
    "time-resfields": (_time_scene, "tour", 16, None),
    "sdf": (lambda: replace(scenes.DEFAULT_SDF_SCENE, field=replace(scenes.DEFAULT_SDF_SCENE.field, width=16)), "torus", None, None),
}


def _train(trainers, steps, edit=None):
    for step in range(steps):
        for _, trainer in trainers:
            trainer.step()
        if edit is not None and step == steps // 2:
            edit(trainers)


def _outputs(trainers):
    return {f"{i}.{k}": v for i, (_, t) in enumerate(trainers) for k, v in t.model.state_dict().items()} | \
        {f"{i}.prediction": t.predict() for i, (_, t) in enumerate(trainers)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_save_open_round_trip_is_bit_identical_and_trains_on_identically(case, tmp_path):
    make_scene, source, size, edit = CASES[case]
    scene = make_scene()
    ref = SignalRef(source, size)
    signal = ref.load()
    original = scene.build(signal)
    _train(original, 6, edit)
    path = str(tmp_path / "s.fieldlab")
    capture_session(path, original, scene, ref, signal, {"running": False})
    opened = open_session(path)
    assert opened.scene == scene and opened.signal.shape == signal.shape
    restored = restored_runs(opened)
    assert [label for label, _ in restored] == [label for label, _ in original]
    assert tensors_equal(_outputs(original), _outputs(restored))
    for (_, a), (_, b) in zip(original, restored):
        assert (a.step_count, a.loss_values, a.params, a.partition_info() is None) == \
               (b.step_count, b.loss_values, b.params, b.partition_info() is None)
        if a.partition_info() is not None:
            assert a.partition_info().present == b.partition_info().present
            assert a.partition_info().cropped == b.partition_info().cropped
    _train(original, 5)
    _train(restored, 5)
    for (_, a), (_, b) in zip(original, restored):
        a.flush()
        b.flush()
        assert a.loss_values == b.loss_values
    assert tensors_equal(_outputs(original), _outputs(restored))


def test_state_applies_only_to_the_scene_it_came_from():
    signal = load_signal("camera", 16)
    state = capture_runs(_small(scenes.Scene(preset="spectral-bias")).build(signal))
    from models.trainer_state import StateError

    with pytest.raises(StateError, match="3 run"):
        restore_runs(_small(scenes.Scene()).build(signal), state)
    with pytest.raises(StateError, match="does not fit"):
        restore_runs(_small(scenes.Scene(preset="spectral-bias"), width=24).build(signal), state)


def test_user_image_travels_inside_the_session(tmp_path):
    image = tmp_path / "mine.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(image)
    scene = _small(scenes.Scene())
    ref = SignalRef(str(image), 20)
    signal = ref.load()
    trainers = scene.build(signal)
    _train(trainers, 3)
    path = str(tmp_path / "mine.fieldlab")
    capture_session(path, trainers, scene, ref, signal)
    os.remove(image)
    opened = open_session(path, extract_to=str(tmp_path / "extracted"))
    assert opened.signal_ref.source == str(image) and opened.loaded_from.startswith(str(tmp_path / "extracted"))
    assert torch.equal(opened.signal.values, signal.values)
    assert tensors_equal(_outputs(trainers), _outputs(restored_runs(opened)))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    scene = _small(scenes.Scene())
    ref = SignalRef("camera", 16)
    signal = ref.load()
    trainers = scene.build(signal)
    _train(trainers, 2)
    path = str(folder / "good.fieldlab")
    capture_session(path, trainers, scene, ref, signal)
    return path


def _rewrite(source: str, target: str, change) -> str:
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members = change(members)
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def _document_change(update):
    def change(members):
        document = json.loads(members["session.json"])
        update(document)
        return {**members, "session.json": json.dumps(document)}
    return change


BAD = {
    "newer version": (_document_change(lambda d: d.update(version=FORMAT_VERSION + 1)), "newer FieldLab"),
    "foreign format": (_document_change(lambda d: d.update(format="something.else")), "not a FieldLab session"),
    "unknown setting": (_document_change(lambda d: d["scene"].update(colour="red")), "unknown setting colour"),
    "bad setting type": (_document_change(lambda d: d["scene"]["field"].update(width="wide")), "whole number"),
    "no weights": (lambda m: {k: v for k, v in m.items() if k != "state.safetensors"}, "no state.safetensors"),
    "random weights": (lambda m: {**m, "state.safetensors": os.urandom(4096)}, "weights are damaged"),
    "not json": (lambda m: {**m, "session.json": b"{not json"}, "description is damaged"),
    "json list": (lambda m: {**m, "session.json": b"[1, 2]"}, "not a FieldLab session"),
    "NaN in json": (lambda m: {**m, "session.json": m["session.json"].replace(b'"step": 2', b'"step": NaN')},
                    "damaged"),
    "traversal member": (lambda m: {**m, "signal/../../evil.png": b"x"}, "refusing an embedded file"),
    "hidden member": (lambda m: {**m, "signal/.bashrc": b"x"}, "refusing an embedded file"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_damaged_session_files_give_clear_messages(case, saved, tmp_path):
    change, expected = BAD[case]
    path = _rewrite(saved, str(tmp_path / "bad.fieldlab"), change)
    with pytest.raises(SessionError) as caught:
        restored_runs(open_session(path, extract_to=str(tmp_path / "x")))
    message = str(caught.value)
    assert "bad.fieldlab" in message and "\n" not in message
    if expected:
        assert expected in message
    assert not os.path.exists(tmp_path / "evil.png") and not os.path.exists(tmp_path.parent / "evil.png")


def test_truncated_and_non_zip_files(saved, tmp_path):
    data = open(saved, "rb").read()
    for cut in (0, 10, len(data) // 3, len(data) // 2, len(data) - 30):
        path = tmp_path / f"cut{cut}.fieldlab"
        path.write_bytes(data[:cut])
        with pytest.raises(SessionError, match=f"cut{cut}.fieldlab"):
            open_session(str(path))
    with pytest.raises(SessionError, match="no such file"):
        open_session(str(tmp_path / "missing.fieldlab"))
    with pytest.raises(SessionError, match="is a folder"):
        open_session(str(tmp_path))


def test_opening_a_session_never_unpickles(saved, tmp_path):
    """A pickle hidden where the weights belong, and one embedded as the 'signal', are never executed."""
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    bomb = pickle.dumps(Payload())
    path = _rewrite(saved, str(tmp_path / "pickled.fieldlab"), lambda m: {**m, "state.safetensors": bomb})
    with pytest.raises(SessionError):
        open_session(path)
    def embed_bomb(members):
        members = _document_change(lambda d: d["signal"].update(embedded="file"))(members)
        return {**members, "signal/camera.png": bomb, "extra.pkl": bomb}

    path = _rewrite(saved, str(tmp_path / "pickled2.fieldlab"), embed_bomb)
    with pytest.raises(SessionError, match="signal could not be loaded"):
        open_session(path, extract_to=str(tmp_path / "x"))
    assert not marker.exists()


KILL_SCRIPT = """
import sys, torch
sys.path.insert(0, {root!r})
from models.session_file import save_session
tensors = {{"big": torch.arange(30_000_000, dtype=torch.float32)}}
print("ready", flush=True)
while True:
    save_session({path!r}, {{"signal": {{}}, "scene": {{}}, "runs": [], "step": 1}}, tensors)
"""


def test_a_kill_during_save_leaves_the_previous_file_intact(saved, tmp_path):
    path = str(tmp_path / "victim.fieldlab")
    with open(saved, "rb") as handle:
        original = handle.read()
    with open(path, "wb") as handle:
        handle.write(original)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for delay in (0.3, 0.9):
        process = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT.format(root=root, path=path)],
                                   stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "ready"
        partial = os.path.join(str(tmp_path), f".victim.fieldlab.partial-{process.pid}")
        deadline = time.monotonic() + 30
        while not os.path.exists(partial) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        process.send_signal(os_signal.SIGKILL)
        process.wait(30)
        process.stdout.close()
        with open(path, "rb") as handle:
            now = handle.read()
        # either the old file, untouched, or a complete new one: never a torn file
        if now != original:
            assert load_session(path).tensors["big"].numel() == 30_000_000
        else:
            open_session(path)

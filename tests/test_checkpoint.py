"""Checkpoints: safetensors + JSON round trips, rendering at other sizes, and one-line CheckpointErrors."""
from __future__ import annotations

import json
import os

import pytest
import torch

from models.checkpoint import FORMAT_VERSION, META_FILE, WEIGHTS_FILE, CheckpointError, load_field, render_field, save_field
from models.fields import FieldConfig, build_field
from models.signals import grid_coords

IMAGE_META = {"name": "coffee", "kind": "image", "shape": [21, 32], "channels": 3, "extent": [1.0, 21 / 32]}


def _trained(config: FieldConfig):
    """A field whose weights differ from its fresh init (so loading must really read the file)."""
    model = build_field(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return model


@pytest.fixture
def saved(tmp_path):
    config = FieldConfig(kind="siren", in_features=2, out_features=3, width=16, depth=2, seed=4)
    model = _trained(config)
    folder = tmp_path / "field"
    save_field(str(folder), model, config, IMAGE_META, extra={"metrics": {"psnr": 20.5}})
    return str(folder), model, config


def _one_line_error(folder, *words):
    with pytest.raises(CheckpointError) as info:
        load_field(str(folder))
    message = str(info.value)
    assert "\n" not in message and message.strip()
    assert info.value.__cause__ is None
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("kind", ["siren", "relu", "fourier"])
def test_round_trip_is_bit_identical(tmp_path, kind):
    config = FieldConfig(kind=kind, in_features=2, out_features=1, width=12, depth=2, fourier_frequencies=6, seed=2)
    model = _trained(config)
    save_field(str(tmp_path), model, config, {"name": "x", "kind": "image", "shape": [8, 8], "channels": 1,
                                              "extent": [1.0, 1.0]})
    assert sorted(os.listdir(tmp_path)) == sorted([WEIGHTS_FILE, META_FILE])
    loaded = load_field(str(tmp_path))
    assert loaded.config == config
    assert not loaded.model.training
    coords = torch.rand(300, 2) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.model(coords), model(coords))
    original = model.state_dict()
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, original[key]), key
    if kind == "fourier":
        assert torch.equal(loaded.model.encoding.B, model.encoding.B)  # the buffer travels with the weights


def test_meta_document(saved):
    folder, _, config = saved
    with open(os.path.join(folder, META_FILE), encoding="utf-8") as handle:
        document = json.load(handle)
    assert document["format"] == "fieldlab.field" and document["version"] == FORMAT_VERSION == 4
    assert document["architecture"] == "mlp"
    assert document["field"] == config.to_dict()
    assert document["signal"] == IMAGE_META
    assert document["metrics"] == {"psnr": 20.5}
    assert load_field(folder).meta["signal"] == IMAGE_META


def test_version_1_documents_still_load(saved):
    """Version 1 had no 'architecture' key: such files are coordinate MLPs and keep loading."""
    folder, model, _ = saved
    _edit_meta(folder, version=1)
    path = os.path.join(folder, META_FILE)
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    del document["architecture"]
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    loaded = load_field(folder)
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key


def test_unknown_architecture(saved):
    folder, _, _ = saved
    _edit_meta(folder, architecture="transformer")
    _one_line_error(folder, "unknown architecture")


def test_no_pickle_in_checkpoint(saved):
    folder, _, _ = saved
    with open(os.path.join(folder, WEIGHTS_FILE), "rb") as handle:
        header_len = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(header_len))
    assert all(entry["dtype"] == "F32" for key, entry in header.items() if key != "__metadata__")


def test_render_at_trained_size_matches_model(saved):
    folder, model, _ = saved
    loaded = load_field(folder)
    values = render_field(loaded)
    assert values.shape == (21, 32, 3)
    with torch.no_grad():
        expected = model(grid_coords((21, 32), (1.0, 21 / 32))).reshape(21, 32, 3)
    assert torch.equal(values, expected)


@pytest.mark.parametrize("size,shape", [(64, (42, 64)), (16, (10, 16)), (32, (21, 32))])
def test_render_at_other_size_keeps_aspect(saved, size, shape):
    loaded = load_field(saved[0])
    values = render_field(loaded, size)
    assert values.shape == (*shape, 3)
    assert torch.isfinite(values).all()


def test_render_same_box_at_triple_resolution(saved):
    # pixels are sampled at their centres in the same box at every resolution (the field is not
    # stretched): at 3x, pixel (3r+1, 3c+1) has the same centre as pixel (r, c)
    loaded = load_field(saved[0])
    small = render_field(loaded)
    big = render_field(loaded, 3 * max(small.shape[:2]))
    assert big.shape[:2] == (3 * small.shape[0], 3 * small.shape[1])
    for r, c in [(0, 0), (0, small.shape[1] - 1), (small.shape[0] - 1, 0), (5, 7)]:
        assert torch.allclose(small[r, c], big[3 * r + 1, 3 * c + 1], atol=1e-5)


def test_render_curve(tmp_path):
    config = FieldConfig(kind="siren", in_features=1, out_features=1, width=8, depth=1)
    model = _trained(config)
    save_field(str(tmp_path), model, config, {"name": "sinusoids", "kind": "curve", "shape": [100], "channels": 1,
                                              "extent": [1.0]})
    loaded = load_field(str(tmp_path))
    assert render_field(loaded).shape == (100, 1)
    values = render_field(loaded, 250)
    assert values.shape == (250, 1)
    with torch.no_grad():
        assert torch.equal(values, model(torch.linspace(-1, 1, 250).reshape(-1, 1)))


def test_render_without_shape_is_checkpoint_error(tmp_path):
    config = FieldConfig(width=8, depth=1)
    save_field(str(tmp_path), build_field(config), config, {})
    with pytest.raises(CheckpointError):
        render_field(load_field(str(tmp_path)))


def test_missing_files(tmp_path, saved):
    _one_line_error(tmp_path / "nowhere", "not a saved field")
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error(empty, "not a saved field", WEIGHTS_FILE)
    folder = saved[0]
    os.remove(os.path.join(folder, META_FILE))
    _one_line_error(folder, "not a saved field", META_FILE)


def test_corrupt_json(saved):
    folder = saved[0]
    with open(os.path.join(folder, META_FILE), "w", encoding="utf-8") as handle:
        handle.write('{"format": "fieldlab.field", "version": 1, "field": {')
    _one_line_error(folder, "unreadable field description")


def test_binary_garbage_json(saved):
    folder = saved[0]
    with open(os.path.join(folder, META_FILE), "wb") as handle:
        handle.write(b"\xff\xfe\x00garbage\x80\x81")
    _one_line_error(folder, META_FILE)


@pytest.mark.parametrize("document", [{"hello": "world"}, [1, 2, 3], "fieldlab.field", {"format": "other.thing"}])
def test_non_fieldlab_json(saved, document):
    folder = saved[0]
    with open(os.path.join(folder, META_FILE), "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    _one_line_error(folder, "not a FieldLab field description")


def _edit_meta(folder, **changes):
    path = os.path.join(folder, META_FILE)
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key].update(value)
        else:
            document[key] = value
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle)


def test_newer_version(saved):
    folder = saved[0]
    _edit_meta(folder, version=99)
    _one_line_error(folder, "version 99", "newer", "update FieldLab")


@pytest.mark.parametrize("version", ["two", None, [1]])
def test_malformed_version(saved, version):
    # a hand-edited or damaged field.json must still give a CheckpointError, not a bare ValueError/TypeError
    folder = saved[0]
    _edit_meta(folder, version=version)
    _one_line_error(folder)


def test_invalid_field_config(saved):
    folder = saved[0]
    _edit_meta(folder, field={"kind": "tanh"})
    _one_line_error(folder, "invalid field config")
    _edit_meta(folder, field={"kind": "siren", "colour": "red"})
    _one_line_error(folder, "invalid field config", "colour")


@pytest.mark.parametrize("keep", [0.0, 0.001, 0.5, 0.97])
def test_truncated_safetensors(saved, keep):
    folder = saved[0]
    path = os.path.join(folder, WEIGHTS_FILE)
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[:int(len(data) * keep)])
    _one_line_error(folder, WEIGHTS_FILE)


def test_weights_that_do_not_match_the_config(saved):
    folder = saved[0]
    _edit_meta(folder, field={"width": 24})
    message = _one_line_error(folder, "do not match")
    assert WEIGHTS_FILE in message
    _edit_meta(folder, field={"width": 16, "kind": "relu"})  # same sizes, different parameter names
    _one_line_error(folder, "do not match")


def test_checkpoint_error_is_value_error():
    assert issubclass(CheckpointError, ValueError)

"""ResField layers and the time lab's trainer: the invariants the method rests on, and that it pays off."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.fields import FieldConfig, build_field
from models.resfields import (ResFieldConfig, ResFieldLayer, ResFieldMLP, base_mlp_state, coefficient_weights,
                              resfield_parameters)
from models.scenes import Scene
from models.signals import TimeAxis, load_signal
from models.time_training import TimeSettings, TimeTrainer, holdout_split
from models.training import TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(**overrides) -> ResFieldConfig:
    values = dict(width=32, depth=3, rank=4, time_rows=6, in_features=3, out_features=3, seed=3)
    values.update(overrides)
    return ResFieldConfig(**values)


def _coords(n=500, t=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    coords = torch.rand(n, 3, generator=g) * 2 - 1
    if t is not None:
        coords[:, 2] = t
    return coords


def _zero_factors(model: ResFieldMLP) -> None:
    with torch.no_grad():
        for _, layer in model.resfield_layers():
            layer.coefficients.zero_()


def test_zero_factors_give_exactly_the_plain_layer():
    activation = _config().activation()
    layer = ResFieldLayer(16, 8, activation, 0.1, rank=5, rows=7)
    with torch.no_grad():
        layer.basis.normal_()
        layer.coefficients.normal_()
    x = torch.randn(40, 16)
    plain = activation.fused(x, layer.linear.weight.t(), layer.linear.bias)
    for t in (-1.0, -0.37, 0.0, 0.9):
        assert not torch.equal(layer(x, torch.tensor([t])), plain)  # non-zero factors do change it
    with torch.no_grad():
        layer.coefficients.zero_()
    for t in (-1.0, -0.37, 0.0, 0.9):
        assert torch.equal(layer(x, torch.tensor([t])), plain)


@pytest.mark.parametrize("kind", ["siren", "finer"])
def test_zero_factors_give_exactly_the_plain_field_of_the_same_seed(kind):
    """The base weights are drawn as a SIREN's (or FINER++'s): with v = 0 the ResField MLP *is* that field, bit for bit."""
    model = ResFieldMLP(_config(layers=(0, 1, 2, 3), kind=kind, bias_range=1.5))
    siren = build_field(FieldConfig(kind=kind, width=32, depth=3, in_features=3, out_features=3, seed=3, bias_range=1.5))
    coords = _coords(t=0.25)
    assert not torch.equal(model(coords), siren(coords))
    _zero_factors(model)
    for t in (-1.0, 0.25, 0.61):
        coords = _coords(t=t)
        assert torch.equal(model(coords), siren(coords))
    mixed = _coords(n=300)  # any mix of times, grouped internally
    torch.testing.assert_close(model(mixed), siren(mixed), rtol=0, atol=1e-6)


def test_interpolation_at_a_frame_time_equals_lookup_of_that_frame():
    frames = 9
    times = torch.tensor(TimeAxis(frames, 1).times(), dtype=torch.float32)
    interpolated = ResFieldMLP(_config(time_rows=frames, mode="interpolate"))
    lookup = ResFieldMLP(_config(time_rows=frames, mode="lookup"))
    lookup.load_state_dict(interpolated.state_dict())
    for layer in interpolated.layers:
        if layer.rank:
            assert torch.equal(layer.coefficients_at(times), layer.coefficients)
    for t in times.tolist():
        coords = _coords(t=t)
        assert torch.equal(interpolated(coords), lookup(coords))
    between = _coords(t=float(times[3] + times[4]) / 2)
    assert not torch.equal(interpolated(between), lookup(between))


def test_interpolation_blends_neighbouring_rows_linearly():
    layer = ResFieldMLP(_config(time_rows=5)).hidden[1]
    v = layer.coefficients.detach()
    t = torch.tensor([-0.75, 0.1, 1.0])  # rows sit at -1, -0.5, 0, 0.5, 1
    expected = torch.stack([0.5 * v[0] + 0.5 * v[1], 0.8 * v[2] + 0.2 * v[3], v[4]])
    torch.testing.assert_close(layer.coefficients_at(t), expected)
    lower, upper, blend = coefficient_weights(t, 5, "lookup")
    assert lower.tolist() == [1, 2, 4] or lower.tolist() == [0, 2, 4]  # -0.75 is a tie: either neighbour
    assert torch.equal(lower, upper) and not blend.any()


def test_grouped_batches_match_per_row_evaluation():
    model = ResFieldMLP(_config(time_rows=4))
    times = torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0])
    groups = torch.stack([_coords(64, t=float(t), seed=i) for i, t in enumerate(times)])
    grouped = model(groups)
    flat = model(groups.reshape(-1, 3)).reshape(grouped.shape)
    torch.testing.assert_close(grouped, flat, rtol=1e-5, atol=1e-6)


def test_residual_off_is_the_base_mlp():
    model = ResFieldMLP(_config())
    plain = build_field(FieldConfig(kind="siren", width=32, depth=3, in_features=3, out_features=3))
    state = base_mlp_state(model)
    plain.load_state_dict(state)
    coords = _coords(t=0.4)
    model.residual = False
    assert torch.equal(model(coords), plain(coords))
    model.residual = True
    assert not torch.equal(model(coords), plain(coords))


def test_parameter_split_and_default_layers():
    config = _config(rank=5, time_rows=7)
    assert config.resfield_layers == (1, 2)
    model = ResFieldMLP(config)
    split = model.parameter_split()
    assert split["per_time"] == 2 * 7 * 5
    assert split["spanning_sets"] == 2 * 5 * 32 * 32
    assert split["total"] == split["shared"] + split["per_time"] == sum(p.numel() for p in model.parameters())
    assert split["total"] == resfield_parameters(32, 3, 3, 3, 5, 7, (1, 2))
    assert _config(depth=1).resfield_layers == (0,)
    with pytest.raises(ValueError, match="between 0 and 3"):
        _config(layers=(4,))
    with pytest.raises(ValueError, match="sine activation"):
        _config(kind="gauss")


def test_factors_start_small_and_random():
    model = ResFieldMLP(_config(rank=8))
    for _, layer in model.resfield_layers():
        for factor in (layer.coefficients, layer.basis):
            assert 0.005 < factor.std().item() < 0.02 and factor.abs().max() > 0


@pytest.fixture(scope="module")
def tour():
    return load_signal("tour", 32, frames=12)


def test_holdout_split_is_ten_percent_of_every_frame_and_shared(tour):
    train, test = holdout_split(tour, 0.1)
    per_frame = tour.time.samples_per_frame
    assert train.shape == (12, per_frame - round(0.1 * per_frame)) and test.shape == (12, round(0.1 * per_frame))
    for k in range(12):
        rows = tour.time.rows(k)
        both = torch.cat([train[k], test[k]])
        assert both.min() >= rows.start and both.max() < rows.stop and both.unique().numel() == per_frame
    again_train, again_test = holdout_split(tour, 0.1)
    assert torch.equal(test, again_test) and torch.equal(train, again_train)


def test_training_batches_never_touch_held_out_pixels(tour):
    settings = TimeSettings(rank=2, frames_per_batch=4)
    trainer = TimeTrainer(tour, settings.resfield_config(FieldConfig(width=16, depth=2), tour),
                          TrainConfig(lr=1e-3, batch_size=512), settings)
    held_out = set(trainer.frame_test_rows.reshape(-1).tolist())
    for _ in range(20):
        rows, coords = trainer.grouped_batch()
        assert rows.shape == (4, 128)
        assert not held_out & set(rows.reshape(-1).tolist())
        frames = rows // tour.time.samples_per_frame
        assert (frames == frames[:, :1]).all()  # one frame per group
        assert torch.equal(coords[:, :, 2], coords[:, :1, 2].expand_as(coords[:, :, 2]))


def test_resfields_beat_the_same_width_siren_on_held_out_pixels():
    """The paper's claim on the default video (the synthesized tour): held-out PSNR, not just memorisation."""
    signal = load_signal("tour")
    scene = Scene(field=FieldConfig(width=32, depth=3, w0=30.0), train=TrainConfig(lr=1e-3, batch_size=4096),
                  preset="time", time=TimeSettings(rank=8, compare="same-width"))
    (res_label, resfield), (plain_label, plain) = scene.build(signal)
    assert resfield.is_resfield and not plain.is_resfield and "same width" in plain_label
    for _ in range(150):
        resfield.step()
        plain.step()
    resfield.flush()
    plain.flush()
    res_scores, plain_scores = resfield.split_psnr(), plain.split_psnr()
    print(f"held-out PSNR: {res_label} {res_scores['test']:.2f} dB vs {plain_label} {plain_scores['test']:.2f} dB")
    assert res_scores["test"] > plain_scores["test"] + 1.0
    assert len(res_scores["test_per_frame"]) == signal.time.frames
    assert np.mean(np.array(res_scores["test_per_frame"]) > np.array(plain_scores["test_per_frame"])) > 0.75


def test_matched_comparison_has_the_resfield_parameter_count(tour):
    scene = Scene(field=FieldConfig(width=32, depth=3), train=TrainConfig(batch_size=1024), preset="time",
                  time=TimeSettings(rank=6, compare="matched"))
    runs = scene.build(tour)
    assert [label.split()[0] for label, _ in runs] == ["SIREN+ResFields", "SIREN", "SIREN"]
    resfield, wide = runs[0][1], runs[2][1]
    assert abs(wide.params - resfield.params) / resfield.params < 0.02
    assert wide.field_config.width > 32


@pytest.mark.parametrize("loss", ["mse", "mape"])
def test_moving_shape_trains_with_either_loss(loss):
    signal = load_signal("bounce", frames=4)
    settings = TimeSettings(rank=4, compare="none", loss=loss)
    trainer = TimeTrainer(signal, settings.resfield_config(FieldConfig(width=32, depth=3, w0=20.0), signal),
                          TrainConfig(lr=1e-3, batch_size=2048), settings)
    assert trainer.loss_kind == loss and trainer.frame_test_rows.numel() == 0 and trainer.train_rows is None
    for _ in range(30):
        trainer.step()
    trainer.flush()
    assert trainer.loss_values[-1] < trainer.loss_values[0]


def test_unseen_frames_are_never_trained_and_keep_their_coefficient_rows(tour):
    settings = TimeSettings(rank=2, frames_per_batch=4, holdout_frames=3)
    trainer = TimeTrainer(tour, settings.resfield_config(FieldConfig(width=16, depth=3), tour),
                          TrainConfig(lr=1e-2, batch_size=512), settings)
    assert trainer.unseen_frames == (2, 5, 8)  # every third frame, never the last (11)
    before = {i: layer.coefficients.detach().clone() for i, layer in trainer.model.resfield_layers()}
    per_frame = tour.time.samples_per_frame
    for _ in range(15):
        rows, _ = trainer.grouped_batch()
        assert not set((rows // per_frame).reshape(-1).tolist()) & {2, 5, 8}
        trainer.step()
    trainer.flush()
    for i, layer in trainer.model.resfield_layers():
        changed = (layer.coefficients.detach() != before[i]).any(dim=1)
        assert not changed[[2, 5, 8]].any() and changed[[0, 1, 3]].all()  # no gradient ever reaches an unseen row
    scores = trainer.split_psnr()
    assert set(scores["unseen_per_frame"]) == {2, 5, 8} and scores["unseen"] is not None
    with pytest.raises(ValueError, match="k >= 2"):
        TimeSettings(holdout_frames=1)

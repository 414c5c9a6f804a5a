"""Streamable (width-growing) fields: exactness of earlier widths, architecture, growth modes, views.

Everything runs on tiny signals (16-48 px, widths 4-32, tens of steps) on the CPU.
"""
from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from models.checkpoint import CheckpointError, load_field, render_field, save_field, stage_of_width
from models.growth import GrowthConfig, GrowthTrainer, StageInfo
from models.activations import Activation
from models.metrics import psnr, radial_power_spectrum
from models.scenes import DEFAULT_GROWTH_SCENE, Scene
from models.signals import load_signal
from models.streamable import (StreamableConfig, StreamableField, evaluate_widths_in_chunks, matched_plain_width,
                               plain_siren_parameters)
from models.training import TrainConfig
from models.width_views import WidthCache, WidthView
from models.worker import TrainingWorker

TIMEOUT = 20.0


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@functools.lru_cache(maxsize=None)
def camera(size: int):
    return load_signal("camera", size)


@functools.lru_cache(maxsize=None)
def sinusoids():
    return load_signal("sinusoids")


def make_trainer(signal, widths=(4, 8, 16), depth=3, stage_steps=20, lr=1e-3, batch_size=0, mode="progressive",
                 plateau=False, spatial=False, **streamable) -> GrowthTrainer:
    config = StreamableConfig(in_features=signal.in_features, out_features=signal.channels, widths=widths,
                              depth=depth, **streamable)
    return GrowthTrainer(signal, config, TrainConfig(lr=lr, batch_size=batch_size, device="cpu"),
                         GrowthConfig(stage_steps=stage_steps, mode=mode, plateau=plateau, spatial=spatial))


def train_to_end(trainer: GrowthTrainer, on_stage_end=None, limit: int = 10_000) -> None:
    """Step until finished; ``on_stage_end(k)`` runs right after stage k ends (before the next one trains)."""
    stage = trainer.stage
    for _ in range(limit):
        if trainer.finished:
            return
        trainer.step()
        if trainer.stage != stage or trainer.finished:
            if on_stage_end is not None:
                on_stage_end(stage)
            stage = trainer.stage
    pytest.fail(f"trainer did not finish within {limit} steps")


def per_width_psnr(trainer: GrowthTrainer) -> list[float]:
    return [trainer.width_psnr(output, k) for k, output in enumerate(trainer.predict_widths())]


def assert_non_decreasing(values, what=""):
    assert all(math.isfinite(v) for v in values), values
    assert all(b >= a for a, b in zip(values, values[1:])), f"{what} PSNR decreases with width: {values}"


# -- 1. exactness ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_size", [0, 300], ids=["full-batch", "minibatch"])
def test_earlier_widths_are_reproduced_bit_for_bit(batch_size):
    signal = camera(48)  # 2304 samples: evaluate_widths_in_chunks really splits into chunks of 2048
    trainer = make_trainer(signal, widths=(4, 8, 16), stage_steps=20, batch_size=batch_size)
    assert trainer.full_batch == (batch_size == 0)
    coords = trainer.coords
    forward, chunks, widths, steps = {}, {}, {}, {}

    def record(k):
        assert trainer.stage_info().states[k] == "trained"
        with torch.no_grad():
            forward[k] = trainer.model.forward(coords, stage=k).clone()
            widths[k] = [t.clone() for t in trainer.model.forward_widths(coords, upto=k)]
        chunks[k] = [t.clone() for t in evaluate_widths_in_chunks(trainer.model, coords, upto=k)]
        steps[k] = trainer.step_count

    train_to_end(trainer, record)
    assert sorted(forward) == [0, 1, 2]
    assert steps == {0: 20, 1: 40, 2: 60}
    assert trainer.stage_info().stage_end_steps == (20, 40, 60)
    with torch.no_grad():
        for k in range(3):
            now = trainer.model.forward(coords, stage=k)
            assert torch.equal(now, forward[k]), f"width {k}: max diff {(now - forward[k]).abs().max().item()}"
            assert (now - forward[k]).abs().max().item() == 0.0
            for j, (a, b) in enumerate(zip(trainer.model.forward_widths(coords, upto=k), widths[k])):
                assert torch.equal(a, b), (k, j)
            for j, (a, b) in enumerate(zip(evaluate_widths_in_chunks(trainer.model, coords, upto=k), chunks[k])):
                assert torch.equal(a, b), (k, j)
        # every width is an evaluation of its own: later widths really changed the output
        assert not torch.equal(forward[0], forward[1]) and not torch.equal(forward[1], forward[2])
        # the trainer's own reader agrees with the chunked evaluation at every width
        for k, output in enumerate(trainer.predict_widths()):
            assert torch.equal(output, chunks[2][k])
        # forward_widths returns, in one pass, what forward(stage=k) computes for each k
        for k, output in enumerate(trainer.model.forward_widths(coords)):
            assert torch.equal(output, forward[k])


def test_forward_of_an_unallocated_stage_is_refused():
    field = StreamableField(StreamableConfig(widths=(4, 8, 16), depth=2), stages=2)
    x = torch.zeros(3, 2)
    assert field.forward(x).shape == (3, 1)
    with pytest.raises(ValueError, match="not allocated"):
        field.forward(x, stage=2)
    with pytest.raises(ValueError, match="not allocated"):
        field.forward_widths(x, upto=-1)
    field.grow()
    with pytest.raises(ValueError, match="already allocated"):
        field.grow()


# -- 2. frozen parameters ---------------------------------------------------------------------------------

def test_frozen_stages_are_bitwise_unchanged_and_never_optimised():
    trainer = make_trainer(camera(16), widths=(4, 8, 12), stage_steps=15)
    initial = {k: v.clone() for k, v in trainer.model.stages[0].state_dict().items()}
    states, bias = {}, {}

    def record(k):
        states[k] = {name: value.clone() for name, value in trainer.model.stages[k].state_dict().items()}
        bias[k] = trainer.model.stages[0].output_bias.detach().clone()
        if not trainer.finished:
            # the optimiser only holds the stage being trained; earlier ones need no gradient at all
            optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
            assert optimised == {id(p) for p in trainer.model.stages[trainer.stage].parameters()}
            for j, stage in enumerate(trainer.model.stages):
                assert all(p.requires_grad == (j == trainer.stage) for p in stage.parameters())

    train_to_end(trainer, record)
    # the stage itself did train (otherwise "unchanged" would mean nothing)
    assert any(not torch.equal(initial[name], states[0][name]) for name in initial)
    for k, saved in states.items():
        current = trainer.model.stages[k].state_dict()
        assert set(current) == set(saved)
        for name, value in saved.items():
            assert torch.equal(current[name], value), f"stage {k} parameter {name} changed after its stage"
    assert trainer.model.stages[0].output_bias is not None
    assert all(trainer.model.stages[k].output_bias is None for k in (1, 2))
    assert torch.equal(trainer.model.stages[0].output_bias.detach(), bias[0])
    assert torch.equal(bias[0], bias[2])
    # finished: nothing is trainable any more
    assert not any(p.requires_grad for p in trainer.model.parameters())


# -- 3. parameter counts ----------------------------------------------------------------------------------

def hand_count(widths, depth, fin, fout):
    """Cumulative parameter count per width: each stage's new units, reading every older unit."""
    counts, total, before = [], 0, 0
    for k, w in enumerate(widths):
        d = w - before
        total += d * fin + d  # first layer rows of the new units
        total += (depth - 1) * (d * w + d)  # hidden rows of the new units (reading old and new units)
        total += fout * d + (fout if k == 0 else 0)  # output columns, output bias once
        counts.append(total)
        before = w
    return counts


@pytest.mark.parametrize("widths,depth,fin,fout", [
    ((4, 8, 16), 3, 2, 1),
    ((3, 5, 6, 10), 2, 2, 3),
    ((10, 20), 1, 1, 1),
    ((7,), 4, 1, 2),
])
def test_parameter_counts_match_the_architecture(widths, depth, fin, fout):
    config = StreamableConfig(in_features=fin, out_features=fout, widths=widths, depth=depth)
    field = StreamableField(config, stages=len(widths))
    expected = hand_count(widths, depth, fin, fout)
    assert [field.parameters_at(k) for k in range(len(widths))] == expected
    assert list(GrowthTrainer.planned_parameters_of(config)) == expected
    assert field.parameters_at(len(widths) - 1) == sum(p.numel() for p in field.parameters())
    # the dense SIREN of the widest width minus the blocks from new units into old ones
    removed = (depth - 1) * sum(a * (b - a) for a, b in zip(widths, widths[1:]))
    widest = plain_siren_parameters(widths[-1], depth, fin, fout)
    assert expected[-1] == widest - removed
    if len(widths) > 1 and depth > 1:
        assert expected[-1] < widest
    # the first width is a plain SIREN
    assert expected[0] == plain_siren_parameters(widths[0], depth, fin, fout)


def test_trainer_reports_the_same_counts_everywhere():
    signal = camera(16)
    trainer = make_trainer(signal, widths=(4, 8, 16), depth=3, stage_steps=5)
    planned = trainer.planned_parameters()
    assert planned == tuple(hand_count((4, 8, 16), 3, 2, 1))
    assert trainer.stage_info().params == planned
    seen = [trainer.params]
    train_to_end(trainer, lambda k: seen.append(trainer.params))
    assert seen[0] == planned[0]
    assert seen[1:] == [planned[1], planned[2], planned[2]]  # after stage 0, 1 end; after the last
    assert [trainer.model.parameters_at(k) for k in range(3)] == list(planned)
    assert trainer.stage_info().params == planned


@pytest.mark.parametrize("params,depth,fin,fout", [(1000, 3, 2, 1), (12345, 3, 2, 3), (500, 1, 1, 1), (37, 2, 1, 1)])
def test_matched_plain_width_is_the_closest(params, depth, fin, fout):
    width = matched_plain_width(params, depth, fin, fout)
    gap = abs(plain_siren_parameters(width, depth, fin, fout) - params)
    for other in range(1, 4 * width + 10):
        assert gap <= abs(plain_siren_parameters(other, depth, fin, fout) - params), (width, other)


def test_growth_scene_baselines_match_parameters_and_step_budgets():
    scene = Scene(preset="growth", widths=(4, 8, 16), growth=GrowthConfig(stage_steps=7), baseline=True,
                  train=TrainConfig(lr=1e-3, device="cpu"))
    planned = GrowthTrainer.planned_parameters_of(scene.streamable_config(2, 1))
    configs = scene.baseline_configs(2, 1)
    assert [steps for _, _, steps in configs] == [7, 14, 21]
    for (label, field, _), params in zip(configs, planned):
        assert field.kind == "siren" and field.width == matched_plain_width(params, field.depth, 2, 1)
        assert f"w={field.width}" in label
    runs = scene.build(camera(16))
    assert len(runs) == 4
    assert isinstance(runs[0][1], GrowthTrainer)
    assert [t.step_limit for _, t in runs[1:]] == [7, 14, 21]
    assert [t.field_config.width for _, t in runs[1:]] == [f.width for _, f, _ in configs]


# -- 4. initialisation of a new stage ---------------------------------------------------------------------

def test_a_new_stage_leaves_the_output_unchanged():
    config = StreamableConfig(widths=(4, 8, 16), depth=3, seed=3)
    field = StreamableField(config, stages=1)
    coords = camera(16).coords
    with torch.no_grad():
        # perturb stage 0 so that the property does not rely on its initial values
        for p in field.stages[0].parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
        before = field(coords)
        for k in (1, 2):
            stage = field.grow()
            assert stage is field.stages[k] and field.widths == config.widths[:k + 1]
            after = field(coords)
            assert torch.equal(after, before), f"growing stage {k} changed the output"
            assert torch.equal(field(coords, stage=k - 1), before)
            before = after
    for k, stage in enumerate(field.stages):
        lo = stage.width_before
        assert stage.units == config.widths[k] - lo
        assert stage.first_weight.abs().max() > 0 and stage.first_bias.abs().max() > 0
        for weight in stage.hidden_weights:
            assert weight.shape == (stage.units, config.widths[k])
            if k == 0:
                assert weight.abs().max() > 0
            else:
                assert torch.count_nonzero(weight[:, lo:]) == 0, "new -> new block must start at zero"
                assert torch.count_nonzero(weight[:, :lo]) == weight[:, :lo].numel(), "lateral old -> new block"
        if k == 0:
            assert stage.output_weight.abs().max() > 0 and stage.output_bias is not None
        else:
            assert torch.count_nonzero(stage.output_weight) == 0 and stage.output_bias is None


def test_initialisation_is_deterministic_per_seed_and_stage():
    config = StreamableConfig(widths=(4, 8), depth=2, seed=5)
    a, b = StreamableField(config, stages=2), StreamableField(config, stages=1)
    b.grow()
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    c = StreamableField(replace(config, seed=6), stages=2)
    assert not torch.equal(a.stages[1].first_weight, c.stages[1].first_weight)
    # stage 1's stream is not stage 0's
    assert not torch.equal(a.stages[0].first_weight[:4], a.stages[1].first_weight[:4])


# -- 5. forward semantics ---------------------------------------------------------------------------------

def dense_matrices(field: StreamableField, k: int):
    """The width-k sub-network as a plain MLP: block-lower-triangular hidden matrices with explicit zeros."""
    stages = field.stages[:k + 1]
    width = stages[-1].width_after
    first_w = torch.cat([s.first_weight for s in stages])
    first_b = torch.cat([s.first_bias for s in stages])
    hidden = []
    for layer in range(field.config.depth - 1):
        w = torch.zeros(width, width)
        for s in stages:
            w[s.width_before:s.width_after, :s.width_after] = s.hidden_weights[layer]
        hidden.append((w, torch.cat([s.hidden_biases[layer] for s in stages])))
    out_w = torch.cat([s.output_weight for s in stages], dim=1)
    return first_w, first_b, hidden, out_w, stages[0].output_bias


@pytest.mark.parametrize("activation", ["sine", "finer"])
def test_width_k_is_a_dense_mlp_with_zero_blocks(activation):
    config = StreamableConfig(in_features=2, out_features=3, widths=(4, 7, 12), depth=3, w0=30.0,
                              activation=activation, seed=2)
    field = StreamableField(config, stages=3)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # make every block non-trivial (new -> new and output columns start at zero)
        for p in field.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    coords = torch.rand(200, 2, generator=gen) * 2 - 1

    def act(z):
        return torch.sin(30.0 * z) if activation == "sine" else torch.sin(30.0 * (z.abs() + 1) * z)

    with torch.no_grad():
        for k in range(3):
            first_w, first_b, hidden, out_w, out_b = dense_matrices(field, k)
            h = act(coords @ first_w.T + first_b)
            for w, b in hidden:
                h = act(h @ w.T + b)
            expected = h @ out_w.T + out_b
            got = field(coords, stage=k)
            assert got.shape == (200, 3)
            assert torch.allclose(got, expected, atol=1e-5, rtol=0), (k, (got - expected).abs().max().item())
        # a new -> old block really is absent: filling the zero block in the dense matrix changes the result
        first_w, first_b, hidden, out_w, out_b = dense_matrices(field, 2)
        hidden[0][0][:4, 4:] = 0.1
        h = act(coords @ first_w.T + first_b)
        for w, b in hidden:
            h = act(h @ w.T + b)
        assert not torch.allclose(h @ out_w.T + out_b, field(coords, stage=2), atol=1e-3)


# -- 6. activations and bias ranges -----------------------------------------------------------------------

def test_finer_activation_values_and_gradient():
    gen = torch.Generator().manual_seed(0)
    w0 = 7.0
    inp = torch.rand(50, 3, generator=gen) * 2 - 1
    weight = (torch.rand(5, 3, generator=gen) - 0.5).requires_grad_(True)
    bias = (torch.rand(5, generator=gen) * 2 - 1).requires_grad_(True)
    out = Activation("finer", w0=w0).fused(inp, weight.T, bias)
    z = (inp @ weight.T + bias).detach()
    assert torch.allclose(out.detach(), torch.sin(w0 * (z.abs() + 1) * z), atol=1e-5)
    out.sum().backward()
    # |z| + 1 is a constant in backward: d out / d z = w0 (|z| + 1) cos(w0 (|z| + 1) z)
    dz = w0 * (z.abs() + 1) * torch.cos(w0 * (z.abs() + 1) * z)
    assert torch.allclose(bias.grad, dz.sum(dim=0), atol=1e-4)
    assert torch.allclose(weight.grad, dz.T @ inp, atol=1e-4)
    # ... which is not the exact derivative w0 (2|z| + 1) cos(...)
    exact = w0 * (2 * z.abs() + 1) * torch.cos(w0 * (z.abs() + 1) * z)
    assert not torch.allclose(bias.grad, exact.sum(dim=0), atol=1e-2)

    sine = Activation("sine", w0=w0).fused(inp, weight.detach().T, bias.detach())
    assert torch.allclose(sine, torch.sin(w0 * z), atol=1e-5)
    with pytest.raises(ValueError, match="unknown activation"):
        Activation("relu", w0=w0)


def test_stage_bias_ranges_select_the_first_layer_biases():
    config = StreamableConfig(widths=(8, 40, 80), depth=2, stage_bias_ranges=(None, (2, 3)), activation="finer")
    field = StreamableField(config, stages=3)
    b0, b1, b2 = (s.first_bias.detach() for s in field.stages)
    assert b0.abs().max() <= 1 / math.sqrt(2)  # default (SIREN) bias init
    assert ((b1.abs() >= 2) & (b1.abs() <= 3)).all(), b1
    assert (b1 > 0).any() and (b1 < 0).any(), "both signs are drawn"
    assert b2.abs().max() <= 1 / math.sqrt(2)  # a missing entry keeps the default
    assert config.bias_range(1) == (2.0, 3.0) and config.bias_range(2) is None
    with pytest.raises(ValueError, match="lo <= hi"):
        StreamableConfig(widths=(4, 8), stage_bias_ranges=(None, (3, 2)))
    with pytest.raises(ValueError, match="strictly increasing"):
        StreamableConfig(widths=(8, 8))
    with pytest.raises(ValueError, match="unknown activation"):
        StreamableConfig(widths=(8,), activation="tanh")
    # the config round-trips through its dict form (what checkpoints store)
    assert StreamableConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


# -- 7. quality grows with width --------------------------------------------------------------------------

def test_psnr_does_not_decrease_with_width():
    trainer = make_trainer(camera(48), widths=(8, 16, 32), stage_steps=60, lr=1e-3)
    train_to_end(trainer)
    values = per_width_psnr(trainer)
    assert_non_decreasing(values)
    assert values[-1] > values[0] + 0.5  # later stages add real detail
    assert values[0] > 12


def test_default_growth_scene_psnr_does_not_decrease_with_width():
    # the default schedule (100/200/300/600 steps) scaled down by 4 on a 48-px image
    steps = tuple(n // 4 for n in DEFAULT_GROWTH_SCENE.growth.steps_per_stage)
    scene = replace(DEFAULT_GROWTH_SCENE, growth=replace(DEFAULT_GROWTH_SCENE.growth, steps_per_stage=steps),
                    train=replace(DEFAULT_GROWTH_SCENE.train, device="cpu"))
    runs = scene.build(camera(48))
    assert len(runs) == 1
    label, trainer = runs[0]
    assert isinstance(trainer, GrowthTrainer) and "16/32/64/128" in label
    train_to_end(trainer)
    assert trainer.step_count == sum(steps)
    assert_non_decreasing(per_width_psnr(trainer), "default scene")


# -- 8. checkpoints ---------------------------------------------------------------------------------------

SIGNAL_META = {"name": "camera", "kind": "image", "shape": [16, 16], "channels": 1, "extent": [1.0, 1.0]}


@pytest.fixture(scope="module")
def trained_small():
    trainer = make_trainer(camera(16), widths=(4, 8, 16), stage_steps=15)
    train_to_end(trainer)
    return trainer


def test_save_and_load_reproduce_every_width_exactly(trained_small, tmp_path):
    trainer = trained_small
    save_field(str(tmp_path), trainer.model, trainer.field_config, SIGNAL_META)
    saved = load_field(str(tmp_path))
    assert isinstance(saved.model, StreamableField) and saved.model.num_stages == 3
    assert saved.config == trainer.field_config
    assert saved.meta["architecture"] == "streamable" and saved.meta["stages"] == 3
    coords = trainer.coords
    with torch.no_grad():
        for k, width in enumerate((4, 8, 16)):
            assert torch.equal(saved.model(coords, stage=k), trainer.model(coords, stage=k))
            rendered = render_field(saved, width=width)
            assert rendered.shape == (16, 16, 1)
            assert torch.equal(rendered.reshape(-1, 1), evaluate_widths_in_chunks(trainer.model, coords)[k])
        assert torch.equal(render_field(saved), render_field(saved, width=16))
        for k, width in enumerate((4, 8, 16)):
            residual = render_field(saved, width=width, residual=True)
            if k == 0:
                assert torch.equal(residual, render_field(saved, width=4))
            else:
                expected = render_field(saved, width=width) - render_field(saved, width=(4, 8, 16)[k - 1])
                assert torch.equal(residual, expected)
                assert residual.abs().max() > 0
    assert [stage_of_width(saved, w) for w in (4, 8, 16, None)] == [0, 1, 2, 2]
    with pytest.raises(CheckpointError) as info:
        stage_of_width(saved, 12)
    assert "12" in str(info.value) and "4, 8, 16" in str(info.value)
    with pytest.raises(CheckpointError, match="4, 8, 16"):
        render_field(saved, width=5)


def test_partially_grown_field_saves_its_allocated_stages(tmp_path):
    field = StreamableField(StreamableConfig(widths=(4, 8, 16), depth=2), stages=2)
    save_field(str(tmp_path), field, field.config, SIGNAL_META)
    saved = load_field(str(tmp_path))
    assert saved.model.widths == (4, 8) and saved.config.widths == (4, 8, 16)
    with pytest.raises(CheckpointError, match="4, 8$"):
        stage_of_width(saved, 16)


@pytest.mark.parametrize("stages,expected", [
    (0, "invalid stage count 0"), (4, "invalid stage count 4"), ("2", "invalid stage count '2'"),
    (True, "invalid stage count True"), (None, "invalid stage count None"), (1, "weights do not match"),
], ids=["zero", "too-many", "string", "bool", "missing", "mismatch"])
def test_bad_stage_count_is_a_checkpoint_error(trained_small, tmp_path, stages, expected):
    trainer = trained_small
    save_field(str(tmp_path), trainer.model, trainer.field_config, SIGNAL_META)
    path = tmp_path / "field.json"
    document = json.loads(path.read_text())
    if stages is None:
        del document["stages"]
    else:
        document["stages"] = stages
    path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError) as info:
        load_field(str(tmp_path))
    message = str(info.value)
    assert "\n" not in message
    assert expected in message, message


# -- 9. slimmable -----------------------------------------------------------------------------------------

def test_slimmable_trains_every_width_from_the_start():
    signal = camera(16)
    trainer = make_trainer(signal, widths=(4, 8, 16), stage_steps=20, mode="slimmable", lr=1e-3)
    model = trainer.model
    assert model.num_stages == 3 and trainer.stage == 2
    assert all(p.requires_grad for p in model.parameters())
    optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert optimised == {id(p) for p in model.parameters()}
    assert trainer.params == sum(p.numel() for p in model.parameters()) == trainer.planned_parameters()[-1]
    assert trainer.stage_info().states == ("training",) * 3
    initial = per_width_psnr(trainer)
    structure = trainer.structure
    for step in range(60):
        assert not trainer.finished, f"finished early at step {step}"
        trainer.step()
    assert trainer.finished and trainer.step_count == 60
    trainer.step()
    assert trainer.step_count == 60  # a finished trainer does nothing
    info = trainer.stage_info()
    assert info.states == ("trained",) * 3 and info.stage_end_steps == (60, 60, 60) and info.finished
    assert trainer.structure == structure  # nothing was added while training
    final = per_width_psnr(trainer)
    for k, (a, b) in enumerate(zip(initial, final)):
        assert b > a + 1.0, f"width {k} did not improve: {a:.2f} -> {b:.2f}"
    with pytest.raises(ValueError, match="progressive"):
        trainer.add_stage(32)


# -- 10. spatial growing ----------------------------------------------------------------------------------

def test_spatial_growing_targets_and_revealed_psnr():
    signal = camera(16)
    trainer = make_trainer(signal, widths=(4, 8, 16), stage_steps=20, spatial=True)
    h, w = signal.shape
    assert [trainer.revealed(k) for k in range(3)] == [math.ceil(w / 3), math.ceil(2 * w / 3), w] == [6, 11, 16]
    assert trainer.stage_info().revealed == (6, 11, 16)
    image = signal.values.reshape(h, w)
    for k in range(3):
        target = trainer.stage_target(k).reshape(h, w)
        cols = trainer.revealed(k)
        assert torch.equal(target[:, :cols], image[:, :cols])
        assert torch.count_nonzero(target[:, cols:]) == 0
    assert torch.equal(trainer.stage_target(2), trainer.targets)
    train_to_end(trainer)
    for k, output in enumerate(trainer.predict_widths()):
        cols = trainer.revealed(k)
        shown = (output.reshape(h, w)[:, :cols] + 1) * 0.5
        truth = (image[:, :cols] + 1) * 0.5
        mse = torch.mean((shown.clamp(0, 1) - truth) ** 2).item()
        assert trainer.width_psnr(output, k) == pytest.approx(-10 * math.log10(mse), abs=1e-4)
        if k < 2:  # the hidden part is not what is scored
            whole = psnr((output + 1) * 0.5, (trainer.targets + 1) * 0.5)
            assert trainer.width_psnr(output, k) != pytest.approx(whole, abs=1e-3)


def test_spatial_growing_of_a_curve_reveals_samples():
    signal = sinusoids()
    trainer = make_trainer(signal, widths=(4, 8), depth=2, stage_steps=5, spatial=True)
    n = signal.shape[0]
    assert trainer.revealed(0) == n // 2 and trainer.revealed(1) == n
    target = trainer.stage_target(0)[:, 0]
    assert torch.equal(target[:n // 2], signal.values[:n // 2, 0])
    assert torch.count_nonzero(target[n // 2:]) == 0


# -- 11. end_stage, add_stage, plateau --------------------------------------------------------------------

def test_end_stage_and_add_stage():
    signal = camera(16)
    trainer = make_trainer(signal, widths=(4, 8), depth=2, stage_steps=1000)
    assert not trainer.end_stage()  # no step in this stage yet: nothing to end
    for _ in range(5):
        trainer.step()
    assert trainer.stage_info().states == ("training", "pending")
    assert trainer.end_stage()  # "grow now"
    assert trainer.stage == 1 and trainer.model.num_stages == 2 and trainer.stage_end_steps == [5]
    assert trainer.stage_info().states == ("trained", "training") and trainer.structure == 1
    for _ in range(3):
        trainer.step()
    assert trainer.end_stage() and trainer.finished
    assert trainer.stage_info().states == ("trained", "trained")
    assert trainer.stage_info().stage_end_steps == (5, 8)
    assert not trainer.end_stage()
    before = [o.clone() for o in trainer.predict_widths()]

    with pytest.raises(ValueError, match="wider than 8"):
        trainer.add_stage(8)
    with pytest.raises(ValueError, match="wider than 8"):
        trainer.add_stage(6)
    trainer.add_stage(12)
    assert not trainer.finished and trainer.stage == 2 and trainer.widths == (4, 8, 12)
    assert trainer.model.num_stages == 3 and trainer.current_width == 12
    info = trainer.stage_info()
    assert info.states == ("trained", "trained", "training") and info.structure == 2
    assert info.params == tuple(hand_count((4, 8, 12), 2, 2, 1)) and trainer.params == info.params[-1]
    trainer.set_stage_steps(4)
    steps = trainer.step_count
    train_to_end(trainer)
    assert trainer.step_count == steps + 4 and trainer.stage_end_steps == [5, 8, 12]
    after = trainer.predict_widths()
    assert torch.equal(after[0], before[0]) and torch.equal(after[1], before[1])
    assert not torch.equal(after[2], after[1])
    # planning a stage while one is training: it is trained next, without interrupting the current one
    trainer.add_stage(16)
    assert trainer.stage == 3 and not trainer.finished
    trainer.add_stage(20)
    assert trainer.widths == (4, 8, 12, 16, 20) and trainer.stage == 3 and trainer.model.num_stages == 4
    assert trainer.stage_info().states == ("trained", "trained", "trained", "training", "pending")
    train_to_end(trainer)
    assert trainer.model.num_stages == 5 and trainer.stage_end_steps == [5, 8, 12, 16, 20]


def test_plateau_ends_a_stage_that_stops_improving():
    from models.growth import PLATEAU_WINDOW

    signal = camera(16)
    # a learning rate so small that the loss cannot improve by 1% per window: plateaued at once
    trainer = make_trainer(signal, widths=(4, 8), depth=2, stage_steps=10_000, lr=1e-9, plateau=True)
    train_to_end(trainer, limit=1000)
    # the first window has nothing to compare with; the second one is the earliest possible end
    assert trainer.stage_end_steps == [2 * PLATEAU_WINDOW, 4 * PLATEAU_WINDOW]
    # without the option, the same stage keeps going
    trainer = make_trainer(signal, widths=(4, 8), depth=2, stage_steps=10_000, lr=1e-9, plateau=False)
    for _ in range(2 * PLATEAU_WINDOW + 1):
        trainer.step()
    assert trainer.stage == 0


# -- 12. radial power spectrum ----------------------------------------------------------------------------

@pytest.mark.parametrize("kx,ky", [(5, 0), (0, 7), (3, 4)])
def test_radial_power_spectrum_peaks_at_the_sinusoid_frequency(kx, ky):
    n = 32
    y, x = np.mgrid[0:n, 0:n]
    amplitude = 0.7
    image = 0.5 + amplitude * np.cos(2 * np.pi * (kx * x + ky * y) / n + 0.3)
    frequencies, power = radial_power_spectrum(image)
    assert frequencies.shape == power.shape
    assert frequencies.min() > 0 and frequencies.max() == pytest.approx(0.5)
    assert np.all(np.diff(frequencies) > 0)
    f = math.hypot(kx, ky) / n  # cycles per pixel
    peak = int(np.argmax(power))
    assert frequencies[peak] == pytest.approx(f, abs=1e-6)
    # all the energy sits in that ring: (ring mean power) * (ring size) = energy of the mean-free image
    fy, fx = np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :]
    ring = np.rint(np.sqrt(fx ** 2 + fy ** 2) * n) == round(f * n)
    energy = np.sum((image - image.mean()) ** 2)
    assert power[peak] * ring.sum() == pytest.approx(energy, rel=1e-4)
    assert energy == pytest.approx(amplitude ** 2 / 2 * n * n, rel=1e-6)
    others = np.delete(power, peak)
    assert others.max() < 1e-6 * power[peak]


def test_radial_power_spectrum_of_curves_and_parseval():
    rng = np.random.default_rng(0)
    n = 64
    noise = rng.normal(size=n)
    frequencies, power = radial_power_spectrum(noise)
    assert len(frequencies) == n // 2 and frequencies[0] == pytest.approx(1 / n) and frequencies[-1] == 0.5
    centred = noise - noise.mean()
    # one-sided spectrum: every bin but Nyquist stands for two
    assert 2 * power[:-1].sum() + power[-1] == pytest.approx(np.sum(centred ** 2), rel=1e-5)
    curve = np.sin(2 * np.pi * 6 * np.arange(n) / n)
    frequencies, power = radial_power_spectrum(curve)
    assert frequencies[np.argmax(power)] == pytest.approx(6 / n)
    # the constant part is removed, and the scale does not depend on the signal length (|FFT|^2 / N)
    f2, p2 = radial_power_spectrum(5.0 + np.sin(2 * np.pi * 12 * np.arange(2 * n) / (2 * n)))
    assert f2[np.argmax(p2)] == pytest.approx(6 / n)
    assert p2.max() == pytest.approx(2 * power.max(), rel=1e-4)
    # RGB images: channels are averaged
    image = rng.random((16, 16))
    _, grey = radial_power_spectrum(image)
    _, rgb = radial_power_spectrum(np.stack([image] * 3, axis=2))
    assert np.allclose(grey, rgb, rtol=1e-5)


# -- 13. width views --------------------------------------------------------------------------------------

def test_width_cache_renders_trained_widths_once():
    signal = camera(16)
    trainer = make_trainer(signal, widths=(4, 8, 16), stage_steps=10)
    for _ in range(13):
        trainer.step()
    info = trainer.stage_info()
    assert isinstance(info, StageInfo) and info.states == ("trained", "training", "pending")
    cache = WidthCache(signal)
    outputs = trainer.predict_widths()
    assert len(outputs) == 2
    views = cache.render(1, 0, info, outputs, trainer.step_count)
    assert len(views) == 2 and all(isinstance(v, WidthView) for v in views)
    assert [v.width for v in views] == [4, 8] and [v.state for v in views] == ["trained", "training"]
    assert [v.params for v in views] == list(info.params[:2])
    first = views[0]
    # residual of the first width: its output minus the zero output (mid-grey), in display units
    raw0 = outputs[0].reshape(16, 16).numpy()
    assert np.allclose(first.residual, raw0 / 2, atol=1e-6)
    raw1 = outputs[1].reshape(16, 16).numpy()
    assert np.allclose(views[1].residual, (raw1 - raw0) / 2, atol=1e-6)
    assert np.allclose(first.reconstruction, np.clip((raw0 + 1) / 2, 0, 1), atol=1e-6)
    for k, view in enumerate(views):
        assert view.psnr == pytest.approx(trainer.width_psnr(outputs[k], k), abs=1e-3)
        assert view.reconstruction.shape == (16, 16) and not view.reconstruction.flags.writeable
        assert view.radial_frequencies.shape == view.radial_power.shape == view.residual_radial_power.shape
        assert -1 <= view.ssim <= 1 and view.revealed == 16
    assert [t for t in cache.cached_outputs(1, 0, info)] == [outputs[0]]

    for _ in range(3):
        trainer.step()
    outputs2 = trainer.predict_widths()
    assert torch.equal(outputs2[0], outputs[0]) and not torch.equal(outputs2[1], outputs[1])
    again = cache.render(1, 0, info, outputs2, trainer.step_count)
    assert again[0] is first, "a trained width must not be rendered again"
    assert again[1] is not views[1] and again[1].step == trainer.step_count
    assert not np.array_equal(again[1].reconstruction, views[1].reconstruction)
    # another generation (a reset) starts over
    assert cache.render(2, 0, info, outputs2, trainer.step_count)[0] is not first
    cache.forget_other_generations(2)
    assert cache.cached_outputs(1, 0, info) is None
    assert cache.cached_outputs(2, 0, info) is not None


def test_width_cache_on_a_spatially_grown_curve():
    signal = sinusoids()
    trainer = make_trainer(signal, widths=(4, 8), depth=2, stage_steps=5, spatial=True)
    train_to_end(trainer)
    info = trainer.stage_info()
    outputs = trainer.predict_widths()
    views = WidthCache(signal).render(1, 0, info, outputs, trainer.step_count)
    assert [v.revealed for v in views] == [512, 1024]
    assert views[0].residual.shape == (1024,) and math.isnan(views[0].ssim)
    for k, view in enumerate(views):
        assert view.psnr == pytest.approx(trainer.width_psnr(outputs[k], k), abs=1e-3)


# -- 14. the worker ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode,batch_size,baseline", [("progressive", 0, True), ("slimmable", 100, False)])
def test_worker_grows_a_field_to_the_end_by_itself(mode, batch_size, baseline):
    signal = camera(16)
    scene = Scene(preset="growth", widths=(4, 8, 12), growth=GrowthConfig(stage_steps=15, mode=mode), baseline=baseline,
                  train=TrainConfig(lr=1e-3, batch_size=batch_size, device="cpu"))
    worker = TrainingWorker(signal, lambda: scene.build(signal), start_running=True, min_publish_interval=0.02)
    worker.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        seen, last = 0, None
        while time.monotonic() < deadline:
            snapshot = worker.latest.take()
            if snapshot is None:
                time.sleep(0.01)
                continue
            assert not snapshot.error, snapshot.error
            last, seen = snapshot, seen + 1
            run = snapshot.runs[0]
            assert run.stages is not None and len(snapshot.runs) == (4 if baseline else 1)
            allocated = sum(state != "pending" for state in run.stages.states)
            assert len(run.widths) == allocated
            assert [v.width for v in run.widths] == list(run.stages.widths[:allocated])
            assert [v.state for v in run.widths] == list(run.stages.states[:allocated])
            if not snapshot.running and run.stages.finished:
                break
        else:
            pytest.fail(f"worker did not finish; last: {None if last is None else (last.step, last.running)}")
        run = last.runs[0]
        assert last.step == 45 and not last.running and seen >= 1
        assert run.stages.states == ("trained",) * 3
        assert run.stages.stage_end_steps == ((15, 30, 45) if mode == "progressive" else (45, 45, 45))
        assert [v.width for v in run.widths] == [4, 8, 12]
        assert all(v.state == "trained" and math.isfinite(v.psnr) for v in run.widths)
        assert [v.params for v in run.widths] == list(hand_count((4, 8, 12), 3, 2, 1))
        assert run.psnr == run.widths[-1].psnr
        assert "finished" in last.message
        if baseline:  # separate SIRENs with each width's step budget; they carry no widths
            assert all(r.stages is None and r.widths == () for r in last.runs[1:])
        # it stays paused: no more steps arrive
        time.sleep(0.3)
        later = worker.latest.take()
        assert later is None or later.step == 45
    finally:
        assert worker.stop(timeout=5.0)


def test_add_stage_is_refused_with_spatial_growing_and_changes_nothing():
    """Spatial growing splits the signal by the planned stage count: adding one would move what the trained
    widths' targets covered, so it is refused and the trained widths keep their parts and scores."""
    trainer = make_trainer(camera(16), widths=(4, 8), depth=2, stage_steps=5, spatial=True)
    train_to_end(trainer)
    revealed = trainer.stage_info().revealed
    scores = per_width_psnr(trainer)
    assert revealed == (8, 16)
    with pytest.raises(ValueError, match="spatial"):
        trainer.add_stage(12)
    assert trainer.stage_info().revealed == revealed
    assert per_width_psnr(trainer) == scores
    assert trainer.widths == (4, 8) and trainer.finished


def test_steps_per_stage_schedule():
    signal = camera(16)
    config = StreamableConfig(in_features=2, out_features=1, widths=(4, 8, 12, 16), depth=2)
    growth = GrowthConfig(stage_steps=99, steps_per_stage=(3, 5, 7))
    trainer = GrowthTrainer(signal, config, TrainConfig(lr=1e-3, device="cpu"), growth)
    train_to_end(trainer)
    assert trainer.stage_info().stage_end_steps == (3, 8, 15, 22), "per-stage counts, the last one repeating"
    assert growth.steps_until(3) == 22
    slim = GrowthTrainer(signal, config, TrainConfig(lr=1e-3, device="cpu"), GrowthConfig(steps_per_stage=(3, 5, 7),
                                                                                          mode="slimmable"))
    train_to_end(slim)
    assert slim.step_count == 22, "slimmable trains as many steps in all"
    with pytest.raises(ValueError, match="at least 1"):
        GrowthConfig(steps_per_stage=(3, 0))

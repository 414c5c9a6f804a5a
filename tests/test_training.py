"""The step-wise Trainer: convergence, reproducibility, divergence recovery, evaluation and configs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.fields import FieldConfig, count_parameters
from models.metrics import psnr
from models.signals import load_signal
from models.training import TrainConfig, Trainer, TrainingDiverged, select_device


@pytest.fixture(scope="module")
def camera16():
    return load_signal("camera", 16)


def _trainer(signal, batch_size=0, seed=0, field_seed=0, width=16, lr=1e-3, kind="siren"):
    return Trainer(signal, FieldConfig(kind=kind, width=width, depth=2, seed=field_seed, fourier_frequencies=8),
                   TrainConfig(lr=lr, batch_size=batch_size, seed=seed, device="cpu"))


def _weights(trainer) -> dict:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _run(trainer, steps):
    for _ in range(steps):
        trainer.step()
    trainer.flush()
    return trainer


def _poison(trainer):
    with torch.no_grad():
        trainer.model.hidden[0].linear.weight[0, 0] = float("nan")


def _all_finite(tensors) -> bool:
    return all(torch.isfinite(t).all().item() for t in tensors)


def _optimizer_tensors(trainer):
    return [v for state in trainer.optimizer.state_dict()["state"].values() for v in state.values()
            if isinstance(v, torch.Tensor)]


def test_loss_decreases_on_tiny_image(camera16):
    trainer = _run(_trainer(camera16, width=32), 60)
    assert trainer.step_count == 60
    assert trainer.loss_steps == list(range(60))
    assert len(trainer.loss_values) == 60 and all(math.isfinite(v) for v in trainer.loss_values)
    assert trainer.loss_values[-1] < 0.5 * trainer.loss_values[0]


def test_trainer_adapts_io_features_to_signal():
    rgb = load_signal("astronaut", 16)
    trainer = _trainer(rgb)
    assert trainer.field_config.out_features == 3 and trainer.field_config.in_features == 2
    assert trainer.predict().shape == (16 * 16, 3)
    assert trainer.params == count_parameters(trainer.model)
    curve = _trainer(load_signal("sinusoids"))
    assert curve.field_config.in_features == 1 and curve.predict().shape == (1024, 1)


@pytest.mark.parametrize("batch_size", [0, 64])
def test_same_configs_give_bit_identical_runs(camera16, batch_size):
    a = _run(_trainer(camera16, batch_size=batch_size), 12)
    b = _run(_trainer(camera16, batch_size=batch_size), 12)
    assert a.full_batch == (batch_size == 0)
    assert _same(_weights(a), _weights(b))
    assert a.loss_values == b.loss_values


def test_batch_size_at_least_signal_is_full_batch(camera16):
    assert _trainer(camera16, batch_size=256).full_batch
    assert _trainer(camera16, batch_size=10_000).full_batch
    assert not _trainer(camera16, batch_size=255).full_batch


def test_train_seed_changes_minibatches_not_init(camera16):
    a, b = _trainer(camera16, batch_size=32, seed=0), _trainer(camera16, batch_size=32, seed=1)
    assert _same(_weights(a), _weights(b))  # the weights come from FieldConfig.seed
    _run(a, 5)
    _run(b, 5)
    assert not _same(_weights(a), _weights(b))
    c = _trainer(camera16, field_seed=1)
    assert not _same(_weights(_trainer(camera16)), _weights(c))


def test_nan_recovery_restores_last_good_state(camera16):
    trainer = _run(_trainer(camera16), 5)
    good = _weights(trainer)
    good_losses = list(trainer.loss_values)
    trainer.evaluate()
    _poison(trainer)
    trainer.step()
    trainer.step()
    assert trainer.step_count == 7
    with pytest.raises(TrainingDiverged, match="NaN") as info:
        trainer.flush()
    assert "\n" not in str(info.value)
    assert trainer.step_count == 5
    assert _same(_weights(trainer), good)
    assert _all_finite(trainer.model.parameters())
    assert _all_finite(_optimizer_tensors(trainer))
    assert trainer.loss_values == good_losses  # the bad losses are not recorded
    assert all(s <= 5 for s in trainer.psnr_steps)
    # training goes on from the restored state
    _run(trainer, 3)
    assert trainer.step_count == 8 and _all_finite(trainer.model.parameters())
    assert trainer.loss_steps[-3:] == [5, 6, 7]


def test_exploding_loss_is_caught(camera16):
    trainer = _run(_trainer(camera16), 3)
    good = _weights(trainer)
    with torch.no_grad():
        trainer.model.output.weight.mul_(1e5)
    trainer.step()
    with pytest.raises(TrainingDiverged, match="exploding"):
        trainer.flush()
    assert _same(_weights(trainer), good) and trainer.step_count == 3


def test_second_divergence_before_a_good_flush_still_restores_clean_state(camera16):
    # After a restore, the optimiser must not share tensors with the saved good state: otherwise the
    # next (NaN) steps overwrite the "good" Adam moments in place and a second restore brings back NaNs.
    trainer = _run(_trainer(camera16), 3)
    for _ in range(2):
        _poison(trainer)
        trainer.step()
        with pytest.raises(TrainingDiverged):
            trainer.flush()
        assert trainer.step_count == 3
        assert _all_finite(trainer.model.parameters())
        assert _all_finite(_optimizer_tensors(trainer)), "restored Adam state contains NaN"
    _run(trainer, 2)
    assert _all_finite(trainer.model.parameters())


@pytest.mark.parametrize("batch_size", [0, 64])
def test_evaluate_psnr_matches_metrics_psnr(camera16, batch_size):
    trainer = _trainer(camera16, batch_size=batch_size)
    before_last = None
    for i in range(10):
        if i == 9:
            before_last = trainer.predict().clone()
        trainer.step()
    trainer.flush()
    step, prediction, value = trainer.evaluate()
    if batch_size == 0:
        # the forward pass of the last step is reused: it shows the weights one update back
        assert step == trainer.step_count - 1
        assert torch.allclose(prediction, before_last, atol=1e-6)
    else:
        assert step == trainer.step_count
        assert torch.allclose(prediction, trainer.predict(), atol=0)
    expected = psnr(camera16.as_display(prediction), camera16.target_display())
    assert value == pytest.approx(expected, rel=1e-4)
    assert trainer.psnr_steps[-1] == step and trainer.psnr_values[-1] == value
    # evaluating twice does not duplicate the history entry
    trainer.evaluate()
    assert trainer.psnr_steps.count(step) == 1


def test_evaluate_current_uses_the_latest_weights(camera16):
    trainer = _run(_trainer(camera16), 6)
    step, prediction, value = trainer.evaluate(current=True)
    assert step == trainer.step_count == 6
    assert torch.equal(prediction, trainer.predict())
    assert value == pytest.approx(psnr(camera16.as_display(prediction), camera16.target_display()), rel=1e-4)


def test_training_time_is_accumulated(camera16):
    trainer = _trainer(camera16)
    assert trainer.seconds == 0.0
    _run(trainer, 3)
    assert trainer.seconds > 0.0


def test_psnr_history_steps_increase(camera16):
    trainer = _trainer(camera16)
    for _ in range(4):
        _run(trainer, 3)
        trainer.evaluate()
    assert trainer.psnr_steps == sorted(set(trainer.psnr_steps)) and len(trainer.psnr_steps) == 4
    assert all(np.isfinite(trainer.psnr_values))


def test_select_device():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("CPU") == torch.device("cpu")
    assert isinstance(select_device("auto"), torch.device)
    if not torch.cuda.is_available():
        for name in ("cuda", "cuda:1"):
            with pytest.raises(ValueError, match="cuda"):
                select_device(name)
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            assert select_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError):
        select_device("tpu9")


def test_trainer_with_unavailable_device_raises_value_error(camera16):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="cuda"):
        Trainer(camera16, FieldConfig(width=8, depth=1), TrainConfig(device="cuda"))


def test_set_lr_changes_optimizer_lr(camera16):
    trainer = _trainer(camera16, lr=1e-3)
    assert all(g["lr"] == 1e-3 for g in trainer.optimizer.param_groups)
    trainer.set_lr(2.5e-4)
    assert all(g["lr"] == 2.5e-4 for g in trainer.optimizer.param_groups)
    for bad in (0.0, -1e-3, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            trainer.set_lr(bad)
    assert all(g["lr"] == 2.5e-4 for g in trainer.optimizer.param_groups)


@pytest.mark.parametrize("kwargs", [{"lr": 0.0}, {"lr": -1e-3}, {"lr": float("nan")}, {"lr": float("inf")},
                                    {"batch_size": -1}])
def test_train_config_validation(kwargs):
    with pytest.raises(ValueError):
        TrainConfig(**kwargs)


def test_train_config_to_dict():
    config = TrainConfig(lr=2e-4, batch_size=128, seed=3, device="cpu")
    assert TrainConfig(**config.to_dict()) == config

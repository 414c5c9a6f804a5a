"""Bias-range sweeps (models/sweep.py, ``fieldlab sweep``): members, same-seed equivalence of the execution
strategies with separate runs, divergence handling of batched groups, the learning-rate decay, the FINER++
high-frequency effect of k, and the command line.

Everything is tiny (16-48 px, widths 8-32, tens of steps) and runs on the CPU with one thread.
"""
from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import replace

import pytest
import torch
from cli_helpers import read_png, run_cli

from models.checkpoint import load_field
from models.fields import FieldConfig
from models.metrics import high_frequency_energy
from models.scenes import DEFAULT_SWEEP_SCENE, Scene
from models.signals import load_signal
from models.sweep import BatchedGroup, MemberTrainer, SweepSettings, build_sweep, member_label, parse_ks
from models.training import TrainConfig, Trainer, TrainingDiverged

pytestmark = pytest.mark.usefixtures("one_torch_thread", "warm_start")

BASE = FieldConfig(width=16, depth=2, seed=3)


@functools.lru_cache(maxsize=None)
def camera(size: int):
    return load_signal("camera", size)


@pytest.fixture(scope="module")
def warm_start():
    """Pay the process's one-time costs up front (the first Adam imports torch._dynamo, ~2.5 s; the first
    sample image imports scikit-image), so that each test's time is its own."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    camera(16)


def state(trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def run(trainers, steps: int):
    for _ in range(steps):
        for trainer in trainers:
            trainer.step()
    for trainer in trainers:
        trainer.flush()
    return trainers


# -- 1. members ------------------------------------------------------------------------------------------

def test_members_are_ordered_deduplicated_and_end_with_the_references():
    settings = SweepSettings(activations=("finer", "gauss", "finer-wavelet"), ks=(0, 2, None, 2), reference=True)
    members = settings.members(BASE)
    got = [(m.kind, m.bias_range) for m in members]
    assert got == [("finer", 0.0), ("finer", 2.0), ("finer", None),
                   ("gauss", 0.0), ("gauss", 2.0), ("gauss", None),
                   ("finer-wavelet", 0.0), ("finer-wavelet", 2.0), ("finer-wavelet", None),
                   ("siren", None), ("wire", None)]  # classic Gauss has no counterpart to add
    assert all(replace(m, kind="siren", bias_range=None) == BASE for m in members)  # width, depth, seed kept
    assert len(set(members)) == len(members)
    # a reference already swept is not added twice; without reference none is added
    both = SweepSettings(activations=("siren", "finer"), ks=(None, 1.0)).members(BASE)
    assert [(m.kind, m.bias_range) for m in both] == [("siren", None), ("siren", 1.0), ("finer", None), ("finer", 1.0)]
    plain = SweepSettings(activations=("finer",), ks=(1.0,), reference=False).members(BASE)
    assert [(m.kind, m.bias_range) for m in plain] == [("finer", 1.0)]
    assert [member_label(m) for m in SweepSettings(ks=(0.5,)).members(BASE)] == ["FINER++ sine k=0.5",
                                                                                "SIREN default bias"]


@pytest.mark.parametrize("kwargs, message", [
    ({"ks": (1.0, -2.0)}, "k values must be finite and >= 0"),
    ({"ks": (math.nan,)}, "k values must be finite and >= 0"),
    ({"ks": (math.inf,)}, "k values must be finite and >= 0"),
    ({"ks": ()}, "at least one k"),
    ({"activations": ("finer", "tanh")}, "unknown activation 'tanh'"),
    ({"activations": ("relu",)}, "unknown activation 'relu'"),
    ({"activations": ()}, "at least one activation"),
    ({"strategy": "parallel"}, "unknown strategy 'parallel'"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SweepSettings(**kwargs)


def test_the_sweep_scene_gives_each_activation_its_learning_rate():
    scene = Scene(field=BASE, train=TrainConfig(lr=1e-3, device="cpu"), preset="sweep",
                  sweep=SweepSettings(activations=("finer", "finer-gauss"), ks=(1.0,), reference=True))
    lrs = {(c.kind, c.bias_range): t.lr for c, t in scene.sweep_members()}
    assert lrs == {("finer", 1.0): 1e-3, ("finer-gauss", 1.0): pytest.approx(2e-3), ("siren", None): 1e-3,
                   ("gauss", None): pytest.approx(1e-2)}
    assert DEFAULT_SWEEP_SCENE.preset == "sweep" and DEFAULT_SWEEP_SCENE.sweep.members(DEFAULT_SWEEP_SCENE.field)


# -- 2. same-seed equivalence with separate runs -------------------------------------------------------------

EQUIVALENCE_STEPS = 16
MEMBERS = [replace(BASE, kind="finer", bias_range=0.0), replace(BASE, kind="finer", bias_range=2.0),
           replace(BASE, kind="siren"), replace(BASE, kind="wire", bias_range=0.5),
           replace(BASE, kind="wire", bias_range=1.0), replace(BASE, kind="finer-gauss", bias_range=1.0)]
"""Two groups of two (one of them complex-valued) and two groups of one."""


def member_trains(batch_size: int) -> list[TrainConfig]:
    # every member has its own minibatch seed; WIRE its own learning rate
    return [TrainConfig(lr=5e-3 if m.kind == "wire" else 1e-3, batch_size=batch_size, seed=10 + i, device="cpu")
            for i, m in enumerate(MEMBERS)]


@functools.lru_cache(maxsize=None)
def separate_runs(batch_size: int) -> tuple[tuple[list[float], dict], ...]:
    """Each member trained alone, one after another: (losses, final weights)."""
    results = []
    for config, train in zip(MEMBERS, member_trains(batch_size)):
        trainer = run([Trainer(camera(24), config, train)], EQUIVALENCE_STEPS)[0]
        results.append((list(trainer.loss_values), state(trainer)))
    return tuple(results)


@pytest.mark.parametrize("batch_size", [0, 128], ids=["full-batch", "minibatch"])
@pytest.mark.parametrize("strategy", ["interleaved", "batched"])
def test_a_sweep_reproduces_separate_runs(strategy, batch_size):
    """Measured: interleaved is bit-identical; batched (vmap) differs by <= 2.2e-7 relative in the losses and
    <= 2.3e-7 absolute in the weights after 16 Adam steps (float32). The tolerances leave a >= 20x margin."""
    trainers = build_sweep(camera(24), MEMBERS, member_trains(batch_size), strategy)
    if strategy == "batched":
        assert all(isinstance(t, MemberTrainer) for t in trainers)
        groups = [t.group for t in trainers]
        assert groups[0] is groups[1] and groups[3] is groups[4]  # same architecture, different k
        assert len({id(g) for g in groups}) == 4 and groups[3].count == 2
        assert groups[3].params["hidden.1.linear.weight"].is_complex()
    else:
        assert all(type(t) is Trainer for t in trainers)
    run(trainers, EQUIVALENCE_STEPS)
    for config, trainer, (losses, weights) in zip(MEMBERS, trainers, separate_runs(batch_size)):
        what = f"{strategy} {config.kind} k={config.bias_range}"
        assert trainer.step_count == EQUIVALENCE_STEPS and trainer.loss_steps == list(range(EQUIVALENCE_STEPS))
        got = state(trainer)
        assert got.keys() == weights.keys()
        if strategy == "interleaved":
            assert trainer.loss_values == losses, what
            for key in weights:
                assert torch.equal(got[key], weights[key]), (what, key)
        else:
            torch.testing.assert_close(torch.tensor(trainer.loss_values), torch.tensor(losses), rtol=1e-5, atol=1e-7,
                                       msg=what)
            for key in weights:
                torch.testing.assert_close(got[key], weights[key], rtol=1e-5, atol=5e-6, msg=f"{what} {key}")
        assert sum(losses[-4:]) < sum(losses[:4]), what  # the members really trained


def test_batched_members_are_views_of_the_stacked_parameters():
    trainers = build_sweep(camera(16), MEMBERS[:2], member_trains(0)[:2], "batched")
    group: BatchedGroup = trainers[0].group
    for i, trainer in enumerate(trainers):
        for name, stacked in group.params.items():
            assert torch.equal(dict(trainer.model.named_parameters())[name], stacked[i].detach())
    assert not torch.equal(trainers[0].model.hidden[0].linear.bias, trainers[1].model.hidden[0].linear.bias)
    assert torch.equal(trainers[0].model.hidden[1].linear.weight, trainers[1].model.hidden[1].linear.weight)
    run(trainers, 2)
    assert torch.equal(trainers[1].model.hidden[1].linear.weight, group.params["hidden.1.linear.weight"][1].detach())
    assert not torch.equal(trainers[0].model.hidden[1].linear.weight, trainers[1].model.hidden[1].linear.weight)


# -- 3. divergence in a batched group ----------------------------------------------------------------------

def test_a_diverging_batched_sweep_restores_every_member():
    signal = camera(16)
    members = [replace(BASE, width=8, kind="finer", bias_range=k) for k in (0.0, 1.0, 3.0)]
    members.append(replace(BASE, width=8, kind="wire", bias_range=1.0))
    trains = [TrainConfig(lr=1e-3, device="cpu")] * len(members)
    trainers = run(build_sweep(signal, members, trains, "batched"), 3)
    good = [state(t) for t in trainers]
    for trainer in trainers:
        trainer.set_lr(1e4)
    for _ in range(4):
        for trainer in trainers:
            trainer.step()
    raised = []
    for trainer in trainers:
        try:
            trainer.flush()
        except TrainingDiverged as exc:
            raised.append(str(exc))
    assert raised and all("restored the weights of step 3" in m for m in raised), raised
    for trainer, weights in zip(trainers, good):
        assert trainer.step_count == 3 and trainer.loss_steps == [0, 1, 2]
        now = state(trainer)
        for key in weights:
            assert torch.equal(now[key], weights[key]), key
            values = torch.view_as_real(now[key]) if now[key].is_complex() else now[key]
            assert torch.isfinite(values).all()
    # the optimiser state came back too: three more steps at the old rate give what six steps would have
    for trainer in trainers:
        trainer.set_lr(1e-3)
    run(trainers, 3)
    straight = run(build_sweep(signal, members, trains, "batched"), 6)
    for trainer, reference in zip(trainers, straight):
        assert trainer.loss_values == reference.loss_values
        for key, value in state(reference).items():
            assert torch.equal(state(trainer)[key], value), key


# -- 4. learning-rate decay --------------------------------------------------------------------------------

def test_lr_at_decays_tenfold_over_the_decay_steps_then_holds():
    train = TrainConfig(lr=1e-3, lr_decay_steps=100)
    assert train.lr_at(2e-3, 0) == 2e-3
    assert train.lr_at(2e-3, 50) == pytest.approx(2e-3 * 0.1 ** 0.5, rel=1e-12)
    assert train.lr_at(2e-3, 25) == pytest.approx(2e-3 * 10 ** -0.25, rel=1e-12)
    assert train.lr_at(2e-3, 100) == pytest.approx(2e-4, rel=1e-12)
    assert train.lr_at(2e-3, 1000) == pytest.approx(2e-4, rel=1e-12)
    assert TrainConfig(lr=1e-3).lr_at(1e-3, 10_000) == 1e-3  # 0: constant
    with pytest.raises(ValueError, match="lr_decay_steps must be >= 0"):
        TrainConfig(lr_decay_steps=-1)


def effective_lr(trainer) -> float:
    """The rate Adam used in the trainer's last update (a batched member's Adam is its group's)."""
    optimizer = trainer.group.optimizer if isinstance(trainer, MemberTrainer) else trainer.optimizer
    return optimizer.param_groups[0]["lr"]


@pytest.mark.parametrize("strategy", ["interleaved", "batched"])
def test_trainers_apply_the_decay(strategy):
    members = [replace(BASE, width=8, kind="finer", bias_range=k) for k in (0.0, 1.0)]
    train = TrainConfig(lr=1e-2, lr_decay_steps=10, device="cpu")
    trainers = build_sweep(camera(16), members, [train, train], strategy)
    for steps in (1, 5, 10, 14):
        while trainers[0].step_count < steps:
            for trainer in trainers:
                trainer.step()
        # update n uses lr_at(lr, n): after ``steps`` updates the last one used steps - 1
        expected = 1e-2 * 0.1 ** min((steps - 1) / 10, 1.0)
        for trainer in trainers:
            assert effective_lr(trainer) == pytest.approx(expected, rel=1e-9), (strategy, steps)
            assert trainer.lr == 1e-2  # the base rate is unchanged
    # no decay: the rate stays
    plain = Trainer(camera(16), members[0], TrainConfig(lr=1e-2, device="cpu"))
    run([plain], 3)
    assert effective_lr(plain) == 1e-2


# -- 5. FINER++'s effect of k on high frequencies -----------------------------------------------------------

def test_a_larger_k_puts_more_energy_into_high_frequencies():
    """FINER, camera 48 px, width 32, depth 3, full batch, lr 1e-3, 150 steps. Measured (seeds 0-11): the
    reconstruction's HF energy (target 0.084) rises from 0.080-0.084 at k=0 to 0.085-0.096 at k=5 and
    0.090-0.101 at k=10, every seed; seed 0: 0.0815, 0.0910, 0.1008."""
    signal = camera(48)
    members = [replace(FieldConfig(width=32, depth=3, seed=0), kind="finer", bias_range=k) for k in (0.0, 5.0, 10.0)]
    train = TrainConfig(lr=1e-3, batch_size=0, device="cpu")
    energies = []
    for trainer in run(build_sweep(signal, members, [train] * 3, "interleaved"), 150):
        _, prediction, value = trainer.evaluate(current=True)
        assert value > 25  # a real fit, not noise
        energies.append(high_frequency_energy(signal.as_display(prediction)))
    assert energies[0] < energies[1] < energies[2], energies
    assert energies[2] > energies[0] + 0.005, energies


# -- 6. command line ----------------------------------------------------------------------------------------

SWEEP = ["sweep", "--signal", "camera", "--size", 24, "--width", 8, "--depth", 2, "--steps", 10, "--quiet"]


@pytest.mark.usefixtures("one_torch_thread_for_fit")
def test_sweep_command_writes_metrics_grid_and_renderable_runs(tmp_path):
    out = tmp_path / "sweep"
    code, stdout, err = run_cli(*SWEEP, "--activation", "finer", "--k", "0,2", "--reference", "--out", out)
    assert code == 0, err
    with open(out / "metrics.json", encoding="utf-8") as handle:
        metrics = json.load(handle)
    runs = metrics["runs"]
    assert [(r["activation"], r["k"]) for r in runs] == [("finer", 0.0), ("finer", 2.0), ("siren", None)]
    for entry in runs:
        for key in ("activation", "k", "psnr", "ssim", "params", "hf_energy"):
            assert key in entry, key
        assert entry["psnr"] > 5 and -1 <= entry["ssim"] <= 1 and 0 <= entry["hf_energy"] <= 1
        assert entry["params"] == 8 * 2 + 8 + 8 * 8 + 8 + 8 + 1 and entry["steps"] == 10
    assert metrics["steps"] == 10 and metrics["shape"] == [24, 24] and metrics["strategy"] == "interleaved"
    assert 0 <= metrics["target_hf_energy"] <= 1
    with open(out / "grid.png", "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    grid = read_png(out / "grid.png")
    assert grid.ndim == 3 and grid.shape[0] >= 3 * 24 and grid.shape[1] > grid.shape[0]  # 4 columns, 3 rows
    for entry in runs:
        folder = out / entry["folder"]
        saved = load_field(str(folder))
        assert saved.config.kind == entry["activation"] and saved.config.bias_range == entry["k"]
        png = tmp_path / f"{entry['activation']}-{entry['k']}.png"
        code, _, err = run_cli("render", folder, "--out", png, "--size", 16)
        assert code == 0, err
        assert read_png(png).shape[:2] == (16, 16)


@pytest.mark.usefixtures("one_torch_thread_for_fit")
@pytest.mark.parametrize("argv, message", [
    (["--k", "abc"], "k values 'abc': 'abc' is neither a number, 'default', nor a range A:B:N"),
    (["--k", "0:1:0"], "'0:1:0' is neither a number"),
    (["--k", "1,-2"], "k values must be finite and >= 0"),
    (["--activation", "tanh"], "unknown activation 'tanh'"),
])
def test_sweep_command_bad_arguments_give_one_line_errors(tmp_path, argv, message):
    code, _, err = run_cli(*SWEEP, *argv, "--out", tmp_path / "x")
    assert code == 2 and message in err, err
    assert err.startswith("fieldlab: error:") and err.count("\n") == 1
    assert not os.path.exists(tmp_path / "x")


def test_k_values_parse_numbers_defaults_and_ranges():
    assert parse_ks("0, 0.5, 2:10:5, default") == (0.0, 0.5, 2.0, 4.0, 6.0, 8.0, 10.0, None)
    assert parse_ks("3:3:1;none") == (3.0, None)
    assert parse_ks(" ") == ()


@pytest.mark.usefixtures("one_torch_thread_for_fit")
def test_fit_with_k_saves_the_bias_range(tmp_path):
    code, _, err = run_cli("fit", "--signal", "camera", "--size", 16, "--model", "finer", "--k", 2, "--width", 8,
                           "--depth", 2, "--steps", 3, "--out", tmp_path / "f", "--quiet")
    assert code == 0, err
    with open(tmp_path / "f" / "field.json", encoding="utf-8") as handle:
        assert json.load(handle)["field"]["bias_range"] == 2
    saved = load_field(str(tmp_path / "f"))
    assert saved.config.kind == "finer" and saved.config.bias_range == 2.0
    bias = saved.model.hidden[0].linear.bias
    assert bias.abs().max() <= 2.0 + 0.01 and bias.abs().max() > 1.0  # U(-2, 2) after three small steps

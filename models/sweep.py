"""Bias-range sweeps (FINER++ lab): many fields that differ only in activation and bias range k, trained
together on one signal.

A sweep is a list of members, each an ordinary ``FieldConfig`` (same width, depth, seed) with its own
activation and k. Two execution strategies give the same results to float tolerance:

- 'interleaved': one plain ``Trainer`` per member, stepped in turn. On a CPU this costs what running the
  members one after another costs (batching small models is slower there).
- 'batched': members of one architecture are stacked along a model axis and trained as one (torch.func
  vmap over stacked parameters, one Adam over the stacks). Adam is elementwise and every member keeps its
  own minibatch sampler, so each member follows the trajectory of its separate run: each step agrees to
  float rounding (about 1e-7), though over hundreds of steps a field with a large k, whose training is
  sensitive to its inputs, can drift further (measured: 1e-3 in the weights after 40 steps at k = 10).
  This is the GPU win; on a CPU the stacked matmuls are slower than separate ones.

'auto' picks batched on CUDA and interleaved elsewhere.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, replace

import torch
from torch import nn

from .activations import ACTIVATION_NAMES, LABELS
from .fields import CoordinateMLP, FieldConfig, build_field
from .signals import Signal
from .training import TrainConfig, Trainer, TrainingDiverged, select_device

STRATEGIES = ("auto", "interleaved", "batched")
CLASSIC_COUNTERPART = {"finer": "siren", "finer-gauss": "gauss", "finer-wavelet": "wire"}
"""The activation each FINER++ variant extends (its reference in a sweep)."""
DEFAULT_KS = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0)


@dataclass(frozen=True)
class SweepSettings:
    """Which fields a sweep trains (width, depth, w0 and seed come from the scene's FieldConfig)."""

    activations: tuple[str, ...] = ("finer",)
    """Activations swept over k (models/activations.py names)."""
    ks: tuple[float | None, ...] = DEFAULT_KS
    """Bias ranges k: first-layer biases ~ U(-k, k); None keeps nn.Linear's default init."""
    reference: bool = True
    """Also train each FINER++ activation's classic counterpart (SIREN, Gauss, WIRE) at its default init."""
    strategy: str = "auto"
    """'interleaved', 'batched', or 'auto' (batched on CUDA, interleaved elsewhere)."""
    lr_per_activation: bool = True
    """Each activation trains at its default learning rate (scenes.DEFAULT_LR) scaled by the scene's lr over
    SIREN's default; off: every member uses the scene's lr."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "activations", tuple(self.activations))
        object.__setattr__(self, "ks", tuple(None if k is None else float(k) for k in self.ks))
        if not self.activations:
            raise ValueError("a sweep needs at least one activation")
        for name in self.activations:
            if name not in ACTIVATION_NAMES:
                raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATION_NAMES)}")
        if not self.ks:
            raise ValueError("a sweep needs at least one k value")
        for k in self.ks:
            if k is not None and not (math.isfinite(k) and k >= 0):
                raise ValueError(f"k values must be finite and >= 0, got {k}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")

    def members(self, field: FieldConfig) -> list[FieldConfig]:
        """One FieldConfig per (activation, k), in order, then the classic references; no duplicates."""
        configs = [replace(field, kind=name, bias_range=k) for name in self.activations for k in self.ks]
        if self.reference:
            for name in self.activations:
                classic = CLASSIC_COUNTERPART.get(name)
                if classic is not None:
                    configs.append(replace(field, kind=classic, bias_range=None))
        unique: list[FieldConfig] = []
        for config in configs:
            if config not in unique:
                unique.append(config)
        return unique

    def to_dict(self) -> dict:
        return {"activations": list(self.activations), "ks": list(self.ks), "reference": self.reference,
                "strategy": self.strategy, "lr_per_activation": self.lr_per_activation}


def parse_ks(text: str) -> tuple:
    """k values from text: numbers, 'default' (nn.Linear's init), and ranges 'A:B:N' (N values from A to B
    inclusive), comma-separated; '0, 0.5, 2:10:5, default' -> (0, 0.5, 2, 4, 6, 8, 10, None)."""
    ks: list[float | None] = []
    for entry in text.replace(";", ",").split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry in ("default", "none"):
            ks.append(None)
            continue
        try:
            if ":" in entry:
                start, stop, count = entry.split(":")
                n = int(count)
                if n < 1:
                    raise ValueError
                ks.extend(float(v) for v in (torch.linspace(float(start), float(stop), n).tolist()))
            else:
                ks.append(float(entry))
        except ValueError:
            raise ValueError(f"k values {text!r}: {entry!r} is neither a number, 'default', nor a range A:B:N") from None
    return tuple(ks)


def member_label(config: FieldConfig) -> str:
    k = "default bias" if config.bias_range is None else f"k={config.bias_range:g}"
    return f"{LABELS.get(config.kind, config.kind)} {k}"


def resolve_strategy(strategy: str, device: torch.device) -> str:
    if strategy == "auto":
        return "batched" if device.type == "cuda" else "interleaved"
    return strategy


def build_sweep(signal: Signal, members: list[FieldConfig], trains: list[TrainConfig],
                strategy: str = "auto") -> list[Trainer]:
    """Trainers for the members, in order. With 'batched', members of one architecture share a
    ``BatchedGroup`` and each trainer is a view of its slice; otherwise they are independent."""
    device = select_device(trains[0].device) if trains else torch.device("cpu")
    if resolve_strategy(strategy, device) == "interleaved":
        return [Trainer(signal, config, train) for config, train in zip(members, trains)]
    groups: dict[tuple, list[int]] = {}
    for i, (config, train) in enumerate(zip(members, trains)):
        key = (replace(config, bias_range=None, seed=0), replace(train, seed=0))
        groups.setdefault(key, []).append(i)
    trainers: list[Trainer | None] = [None] * len(members)
    for indices in groups.values():
        group = BatchedGroup(signal, [members[i] for i in indices], [trains[i] for i in indices])
        for slot, i in enumerate(indices):
            trainers[i] = group.trainers[slot]
    return trainers  # type: ignore[return-value]


class BatchedGroup:
    """Members of one architecture trained as one model with a leading model axis."""

    def __init__(self, signal: Signal, configs: list[FieldConfig], trains: list[TrainConfig]):
        self.count = len(configs)
        self._template: CoordinateMLP | None = None
        self._models = [build_field(c) for c in configs]
        self.trainers: list[MemberTrainer] = []
        for i, (config, train) in enumerate(zip(configs, trains)):
            self.trainers.append(MemberTrainer(self, i, signal, config, train))
        first = self.trainers[0]
        self.device = first.device
        self.coords, self.targets = first.coords, first.targets
        self.full_batch = first.full_batch
        self.step_count = 0
        self.losses: torch.Tensor | None = None
        self.predictions: torch.Tensor | None = None
        self.seconds_per_member = 0.0
        """Wall time of the last group step divided among the members."""
        self.lr = self.trainers[0].lr
        """The group's base learning rate: one Adam serves every member, so setting one member's sets all."""
        self.restores = 0
        """How often a divergence restored the group (members that did not raise then raise on their next flush)."""
        self._saved: tuple[int, dict, dict] | None = None
        self.attach()

    def model(self, index: int) -> CoordinateMLP:
        return self._models[index]

    def attach(self) -> None:
        """Stack the members' parameters (called once every member's model is on the device); each member's
        module then holds views of its slice, so reading a member reads the stack."""
        models = [t.model for t in self.trainers]
        self._template = copy.deepcopy(models[0]).to("meta")
        params, buffers = torch.func.stack_module_state(models)
        self.params = {name: p.detach().requires_grad_(True) for name, p in params.items()}
        self.buffers = buffers
        for i, model in enumerate(models):
            for name, stacked in self.params.items():
                owner, leaf = _owner(model, name)
                owner._parameters[leaf] = nn.Parameter(stacked.detach()[i], requires_grad=False)
        self.optimizer = torch.optim.Adam(list(self.params.values()), lr=self.trainers[0].lr)
        self._saved = self.capture()

    def step(self) -> None:
        """One Adam update of every member, each on its own minibatch (drawn by its own generator)."""
        started = time.perf_counter()
        indices = [t._batch_index() for t in self.trainers]
        if indices[0] is None:
            coords, targets, in_dim = self.coords, self.targets.expand(self.count, *self.targets.shape), None
        else:
            stacked = torch.stack(indices)
            coords, targets, in_dim = self.coords[stacked], self.targets[stacked], 0

        def one(params, buffers, x):
            return torch.func.functional_call(self._template, (params, buffers), (x,))

        for group in self.optimizer.param_groups:
            group["lr"] = self.trainers[0].train_config.lr_at(self.lr, self.step_count)
        prediction = torch.vmap(one, in_dims=(0, 0, in_dim))(self.params, self.buffers, coords)
        losses = ((prediction - targets) ** 2).mean(dim=tuple(range(1, prediction.dim())))
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        self.optimizer.step()
        self.losses = losses.detach()
        self.predictions = prediction.detach() if indices[0] is None and self.full_batch else None
        self.step_count += 1
        self.seconds_per_member = (time.perf_counter() - started) / self.count

    def set_lr(self, lr: float) -> None:
        self.lr = lr
        for trainer in self.trainers:
            trainer.lr = lr
            trainer.optimizer.param_groups[0]["lr"] = lr

    def capture(self) -> tuple[int, dict, dict]:
        if self._saved is None or self._saved[0] != self.step_count:
            self._saved = (self.step_count, {k: v.detach().clone() for k, v in self.params.items()},
                           copy.deepcopy(self.optimizer.state_dict()))
        return self._saved

    def restore(self) -> int:
        """Every member back to the last captured state (a divergence in one member restores them all,
        so that the stacks stay one consistent optimisation)."""
        step, params, optimizer = self._saved
        with torch.no_grad():
            for name, value in params.items():
                self.params[name].copy_(value)
        self.optimizer.load_state_dict(copy.deepcopy(optimizer))
        self.step_count = step
        self.restores += 1
        for trainer in self.trainers:
            trainer._rewind(step)
        return step


def _owner(module: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, _, leaf = name.rpartition(".")
    return (module.get_submodule(path) if path else module), leaf


class MemberTrainer(Trainer):
    """A Trainer whose field is one slice of a BatchedGroup: its step advances the group once per step."""

    def __init__(self, group: BatchedGroup, index: int, signal: Signal, config: FieldConfig, train: TrainConfig):
        self.group, self.index = group, index
        self._seen_restores = 0
        super().__init__(signal, config, train)

    def _build_model(self) -> torch.nn.Module:
        return self.group.model(self.index)

    def _build_optimizer(self):
        return _SharedOptimizer(self.lr)

    def _capture_state(self) -> dict:
        if hasattr(self.group, "optimizer"):  # not while the group is still being built
            self.group.capture()
        return {}

    def _restore_good_state(self) -> int:
        return self.group.restore()

    def _rewind(self, step: int) -> None:
        self.step_count = step
        self._pending_losses.clear()
        self._full_batch_prediction = None
        while self.psnr_steps and self.psnr_steps[-1] > step:
            self.psnr_steps.pop()
            self.psnr_values.pop()

    def set_lr(self, lr: float) -> None:
        super().set_lr(lr)
        self.group.set_lr(lr)

    def flush(self) -> None:
        """As Trainer.flush; a member rolled back because another member of its group diverged raises too."""
        try:
            super().flush()
        except TrainingDiverged:
            self._seen_restores = self.group.restores
            raise
        if self._seen_restores != self.group.restores:
            self._seen_restores = self.group.restores
            raise TrainingDiverged(f"another member of this batched group diverged: paused and restored the weights "
                                   f"of step {self.step_count} for the whole group; try a lower learning rate")

    def step(self) -> None:
        if self.finished:
            return
        if self.group.step_count == self.step_count:
            self.group.step()
        self.seconds += self.group.seconds_per_member
        if self.group.predictions is not None:
            self._full_batch_prediction = (self.step_count, self.group.predictions[self.index])
        self._pending_losses.append(self.group.losses[self.index])
        self.step_count += 1
        if self.step_limit is not None and self.step_count >= self.step_limit:
            self.finished = True


class _SharedOptimizer:
    """What a member trainer sees of the group's Adam: its learning rate (set_lr forwards to the group)."""

    def __init__(self, lr: float):
        self.param_groups = [{"lr": lr}]

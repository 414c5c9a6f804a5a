"""A step-wise trainer: one field fitted to one signal with Adam, full batch or random minibatches.

The trainer is driven from outside, one ``step()`` at a time, by the GUI's worker thread, the CLI, the
benchmarks and the tests alike. Loss values stay on the device until ``flush()`` so that a GPU run is not
synchronised every step; ``flush()`` is also where a NaN or exploding loss is caught and the last good
weights (and optimiser state) are restored.
"""
from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import asdict, dataclass, replace

import torch

from .fields import FieldConfig, build_field, count_parameters, evaluate_in_chunks
from .metrics import psnr
from .signals import Signal

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class TrainConfig:
    """How a field is optimised."""

    lr: float = 1e-4
    """Adam learning rate."""
    batch_size: int = 0
    """Coordinates per step; 0 (or >= the number of samples) means the full signal every step."""
    seed: int = 0
    """Seed of the minibatch sampler (the weights use FieldConfig.seed)."""
    device: str = "auto"
    """'auto' picks CUDA, then MPS, then CPU; or name one ('cpu', 'cuda', 'cuda:1', 'mps')."""
    lr_decay_steps: int = 0
    """> 0: the learning rate decays as lr * 0.1^(step / lr_decay_steps), held at lr / 10 after that (the FINER++
    reference schedule over its run length); 0: constant."""

    def __post_init__(self) -> None:
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"learning rate must be a positive number, got {self.lr}")
        if self.batch_size < 0:
            raise ValueError(f"batch size must be >= 0 (0 = full batch), got {self.batch_size}")
        if self.lr_decay_steps < 0:
            raise ValueError(f"lr_decay_steps must be >= 0, got {self.lr_decay_steps}")

    def lr_at(self, lr: float, step: int) -> float:
        """The learning rate of update ``step`` for a base rate ``lr``."""
        if self.lr_decay_steps <= 0:
            return lr
        return lr * 0.1 ** min(step / self.lr_decay_steps, 1.0)

    def to_dict(self) -> dict:
        return asdict(self)


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf or exploded; the trainer has already restored its last good state."""


def select_device(name: str = "auto") -> torch.device:
    """CUDA > MPS > CPU for 'auto'; a clear error when a named device is not available."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but this PyTorch build sees no CUDA GPU")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' requested but MPS is not available here")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None


def configure_cpu_threads(leave_one_for_gui: bool) -> int:
    """Use every core for headless work, or all but one so that a GUI stays responsive."""
    cores = os.cpu_count() or 1
    threads = max(1, cores - 1) if leave_one_for_gui else cores
    torch.set_num_threads(threads)
    return threads


class Trainer:
    """Owns a field, its optimiser and its metric history for one signal."""

    def __init__(self, signal: Signal, field_config: FieldConfig, train_config: TrainConfig):
        if field_config.in_features != signal.in_features or field_config.out_features != signal.channels:
            field_config = replace(field_config, in_features=signal.in_features, out_features=signal.channels)
        self.signal = signal
        self.field_config = field_config
        self.train_config = train_config
        self.device = select_device(train_config.device)
        self.lr = train_config.lr
        """Current learning rate (changed live by set_lr)."""
        self.coords = signal.coords.to(self.device)
        self.targets = signal.values.to(self.device)
        n = self.coords.shape[0]
        self.batch_size = n if train_config.batch_size in (0, None) or train_config.batch_size >= n else train_config.batch_size
        self.model = self._build_model().to(self.device)
        self.params = count_parameters(self.model)
        self.optimizer = self._build_optimizer()
        self.generator = torch.Generator(device=self.device).manual_seed(train_config.seed)
        self.step_count = 0
        self.step_limit: int | None = None
        """Steps after which step() does nothing more (None: no limit)."""
        self.finished = False
        """True once step_limit is reached (a growing field: once its last stage is trained)."""
        self.seconds = 0.0
        """Wall time spent inside step() (what a saved run reports as its training time)."""
        self.structure = 0
        """Bumped whenever the model's parameter shapes change (growth, crop): views rebuild their copy."""
        self.train_rows: torch.Tensor | None = None
        """Rows the loss covers (None: every sample); the rest is only evaluated."""
        self.extension_step: int | None = None
        """Step at which a run trained on part of the signal moved on to all of it (crop & extend lab)."""
        self.waiting = False
        """True while a run waits for its turn (crop & extend lab: a from-scratch baseline before the extension)."""
        self.loss_steps: list[int] = []
        self.loss_values: list[float] = []
        self.psnr_steps: list[int] = []
        self.psnr_values: list[float] = []
        self._pending_losses: list[torch.Tensor] = []
        self._full_batch_prediction: tuple[int, torch.Tensor] | None = None
        self._reference_loss: float | None = None
        self._good_state = self._capture_state()

    def _build_model(self) -> torch.nn.Module:
        return build_field(self.field_config)

    def _build_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)

    def stage_info(self):
        """Growth stages of the field (see models/growth.py); None for a field that does not grow."""
        return None

    def partition_info(self):
        """Partitions of a croppable field (see models/croppable.py); None for an unpartitioned one."""
        return None

    @property
    def full_batch(self) -> bool:
        return self.batch_size == self.coords.shape[0]

    def set_lr(self, lr: float) -> None:
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"learning rate must be a positive number, got {lr}")
        self.lr = lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _batch_index(self) -> torch.Tensor | None:
        """Rows of this step's minibatch, or None for the full signal."""
        rows = self.train_rows
        if self.full_batch:
            return rows
        if rows is None:
            return torch.randint(0, self.coords.shape[0], (self.batch_size,), device=self.device, generator=self.generator)
        return rows[torch.randint(0, rows.shape[0], (self.batch_size,), device=self.device, generator=self.generator)]

    def step(self) -> None:
        """One Adam update on the full signal or a fresh random minibatch."""
        if self.finished:
            return
        started = time.perf_counter()
        if self.train_config.lr_decay_steps:
            for group in self.optimizer.param_groups:
                group["lr"] = self.train_config.lr_at(self.lr, self.step_count)
        loss, full_prediction = self._loss()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if full_prediction is not None:
            self._full_batch_prediction = (self.step_count, full_prediction)
        self._pending_losses.append(loss.detach())
        self.step_count += 1
        self.seconds += time.perf_counter() - started
        if self.step_limit is not None and self.step_count >= self.step_limit:
            self.finished = True

    def _loss(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This step's MSE, and (detached) the prediction on every sample when the step computed it anyway."""
        index = self._batch_index()
        coords, targets = (self.coords, self.targets) if index is None else (self.coords[index], self.targets[index])
        prediction = self.model(coords)
        loss = torch.mean((prediction - targets) ** 2)
        return loss, prediction.detach() if self.full_batch and index is None else None

    def flush(self) -> None:
        """Move pending losses to the history; on a NaN or exploding loss restore the last good state.

        Raises TrainingDiverged (after restoring) so the caller can pause and tell the user.
        """
        if not self._pending_losses:
            return
        losses = torch.stack(self._pending_losses).float().cpu().tolist()
        first_step = self.step_count - len(losses)
        self._pending_losses.clear()
        if self._reference_loss is None and math.isfinite(losses[0]):
            self._reference_loss = max(losses[0], 1e-3)
        for offset, value in enumerate(losses):
            if not math.isfinite(value) or (self._reference_loss is not None and value > 1e4 * self._reference_loss):
                bad_step = first_step + offset
                restored = self._restore_good_state()
                what = "NaN/inf" if not math.isfinite(value) else f"exploding ({value:.3g})"
                raise TrainingDiverged(
                    f"loss became {what} at step {bad_step}: paused and restored the weights of step {restored}; "
                    f"try a lower learning rate")
        self.loss_steps.extend(range(first_step, self.step_count))
        self.loss_values.extend(losses)
        self._good_state = self._capture_state()

    def scored_rows(self) -> torch.Tensor | None:
        """Rows PSNR is taken over: the rows the loss covers (None: every sample)."""
        return self.train_rows

    def predict(self, coords: torch.Tensor | None = None) -> torch.Tensor:
        """Field values at ``coords`` (default: every sample of the signal), without autograd."""
        return evaluate_in_chunks(self.model, self.coords if coords is None else coords.to(self.device))

    def evaluate(self, current: bool = False) -> tuple[int, torch.Tensor, float]:
        """(weights step, prediction on every sample, PSNR in dB); records PSNR in the history.

        In full-batch mode the forward pass of the last step is reused unless ``current``: it shows the
        weights one update back, which is why the step is returned alongside. Use ``current=True`` for
        anything saved next to the weights.
        """
        cached = None if current else self.fresh_full_batch_prediction()
        if cached is not None:
            step, prediction = cached
        else:
            step, prediction = self.step_count, self.predict()
        rows = self.scored_rows()
        scored, targets = (prediction, self.targets) if rows is None else (prediction[rows], self.targets[rows])
        value = psnr((scored.float() + 1.0) * 0.5, (targets.float() + 1.0) * 0.5)
        if not self.psnr_steps or self.psnr_steps[-1] < step:
            self.psnr_steps.append(step)
            self.psnr_values.append(value)
        return step, prediction, value

    def fresh_full_batch_prediction(self) -> tuple[int, torch.Tensor] | None:
        """(weights step, prediction on every sample) from the last full-batch step, if nothing changed since."""
        cached = self._full_batch_prediction
        return cached if cached is not None and cached[0] == self.step_count - 1 else None

    def _capture_state(self) -> dict:
        return {
            "step": self.step_count,
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }

    def _restore_good_state(self) -> int:
        state = self._good_state
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))  # load_state_dict keeps references
        for group in self.optimizer.param_groups:  # the state saved an older rate: the one set since applies
            group["lr"] = self.train_config.lr_at(self.lr, state["step"])
        self.step_count = state["step"]
        self._full_batch_prediction = None
        while self.psnr_steps and self.psnr_steps[-1] > self.step_count:
            self.psnr_steps.pop()
            self.psnr_values.pop()
        return self.step_count

"""Training, cropping and extending Local-Global fields (the crop & extend lab's core; no Qt).

``LocalGlobalTrainer`` trains a LocalGlobalField on the partitions it has, with batches holding the same
number of samples per partition (one batched matmul per layer). Between steps it can crop partitions (their
local sub-networks leave the parameter tensors, and their Adam moments leave the optimiser), undo and redo
crops bit-exactly, and extend the field with new partitions initialised from trained neighbours.

``RegionTrainer`` is the plain-SIREN side of the paper's extension experiment (Fig. 7): a field trained on
part of the signal, then fine-tuned on all of it, or (from_scratch) a new one that starts when the
extension starts.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from .fields import count_parameters
from .local_global import (GroupedRows, LocalGlobalConfig, LocalGlobalField, global_parameters, group_rows,
                           local_parameters_per_partition, partition_of, total_parameters)
from .partitions import EXTENSION_INITS, extension_sources, reflect_first_layer
from .signals import Signal
from .training import TrainConfig, Trainer

BYTES_PER_PARAMETER = 4


@dataclass(frozen=True)
class PartitionInfo:
    """A partitioned field's layout and edit state, for the views (immutable copy)."""

    model: str
    """'local-global' or 'siren-per-partition'."""
    partitions: tuple[int, ...]
    """Parts per axis, array order."""
    present: tuple[int, ...]
    """Partitions that have a local sub-network."""
    added: tuple[int, ...]
    """Partitions added by the latest extension (being fine-tuned)."""
    pixel_partition: np.ndarray
    """Flat partition index of every sample, shaped like the signal (HxW or N)."""
    params: int
    params_uncropped: int
    """Parameter count with every partition present."""
    global_params: int
    local_params: int
    """Per partition."""
    structure: int
    can_undo: bool
    can_redo: bool
    extension_step: int | None
    cropped: tuple[int, ...] = ()
    """Partitions cropped in this session that restore() can bring back."""

    @property
    def num_partitions(self) -> int:
        return int(np.prod(self.partitions))

    @property
    def bytes(self) -> int:
        return self.params * BYTES_PER_PARAMETER


def partition_psnrs(reconstruction: np.ndarray, target: np.ndarray, pixel_partition: np.ndarray, count: int) -> np.ndarray:
    """PSNR (dB, values in [0, 1]) of every partition; NaN where a partition has no finite samples."""
    error = (np.asarray(reconstruction, np.float64) - np.asarray(target, np.float64)) ** 2
    if error.ndim > pixel_partition.ndim:
        error = error.reshape(*pixel_partition.shape, -1).mean(axis=-1)
    finite = np.isfinite(error)
    labels = pixel_partition[finite].ravel()
    sums = np.bincount(labels, weights=error[finite].ravel(), minlength=count)
    counts = np.bincount(labels, minlength=count)
    with np.errstate(divide="ignore", invalid="ignore"):
        mse = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        return np.where(mse > 0, 10.0 * np.log10(1.0 / np.maximum(mse, 1e-20)), np.where(counts > 0, np.inf, np.nan))


class LocalGlobalTrainer(Trainer):
    """A Trainer for a Local-Global (or SIREN-per-partition) field that can be cropped and extended."""

    def __init__(self, signal: Signal, config: LocalGlobalConfig, train: TrainConfig, extend_at: int | None = None,
                 extension_init: str = "copy"):
        if extension_init not in EXTENSION_INITS:
            raise ValueError(f"unknown extension init {extension_init!r}; choose one of {', '.join(EXTENSION_INITS)}")
        if signal.in_features != len(config.partitions):
            raise ValueError(f"the signal has {signal.in_features} coordinate axes but the partition factors "
                             f"{'x'.join(map(str, config.partitions))} have {len(config.partitions)}")
        config = replace(config, in_features=signal.in_features, out_features=signal.channels, extent=signal.extent)
        self.extend_at = extend_at
        """Step at which every missing partition is added (None: only on request)."""
        self.extension_init = extension_init
        self.added: tuple[int, ...] = ()
        self._undo: list[tuple[str, list[int]]] = []
        self._redo: list[tuple[str, list[int]]] = []
        self._stash: dict[int, dict] = {}
        """Cropped partitions' slots: per local parameter, (weights, (exp_avg, exp_avg_sq) or None)."""
        super().__init__(signal, config, train)
        self.pixel_partition = partition_of(config, signal.coords).cpu().numpy().reshape(signal.shape)
        self.pixel_partition.setflags(write=False)
        self._layout()

    def _build_model(self) -> LocalGlobalField:
        return LocalGlobalField(self.field_config)

    @property
    def config(self) -> LocalGlobalConfig:
        return self.model.config

    def _layout(self) -> None:
        """Group the signal's rows by present partition (after every structural change)."""
        self.rows: GroupedRows = group_rows(self.model, self.coords)
        self._grouped_coords = self.coords[self.rows.index]
        self._grouped_targets = self.targets[self.rows.index]
        all_valid = bool(self.rows.valid.all())
        self._mask = None if all_valid else self.rows.valid.unsqueeze(-1).to(self.targets.dtype)
        self.params = count_parameters(self.model)
        self._full_batch_prediction = None
        empty = self.rows.counts == 0  # a present partition with no samples (tiny signals) takes no loss
        self._minibatch_mask = (~empty).to(self.targets.dtype).reshape(-1, 1, 1) if bool(empty.any()) else None

    # -- training -------------------------------------------------------------------------------------
    def step(self) -> None:
        if self.finished:
            return
        if self.extend_at is not None and self.extension_step is None and self.step_count >= self.extend_at:
            self.extend()
        if self.model.present.numel() == 0:
            raise ValueError("every partition is cropped: nothing left to train (undo, or extend)")
        super().step()

    def _loss(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """MSE over the present partitions, the batch laid out [partitions, samples] (equal counts each)."""
        if self.full_batch:
            x, y, mask = self._grouped_coords, self._grouped_targets, self._mask
        else:
            counts = self.rows.counts
            per_slot = max(1, self.batch_size // counts.numel())
            offsets = (torch.rand(counts.numel(), per_slot, device=self.device, generator=self.generator)
                       * counts.unsqueeze(1)).long()
            index = self.rows.index.gather(1, offsets)
            x, y, mask = self.coords[index], self.targets[index], self._minibatch_mask
        prediction = self.model.forward_grouped(x)
        if mask is None:
            loss = torch.mean((prediction - y) ** 2)
        else:
            loss = torch.sum(mask * (prediction - y) ** 2) / (mask.expand_as(prediction[..., :1]).sum() * y.shape[-1])
        return loss, self._scatter(prediction.detach()) if self.full_batch else None

    def _scatter(self, grouped: torch.Tensor) -> torch.Tensor:
        out = self.targets.new_full(self.targets.shape, float("nan"))
        out[self.rows.index[self.rows.valid]] = grouped[self.rows.valid]
        return out

    def scored_rows(self) -> torch.Tensor:
        """PSNR covers the present partitions (cropped ones have no output)."""
        return torch.nonzero(self.rows.covered).reshape(-1)

    def partition_psnrs(self, prediction: torch.Tensor) -> np.ndarray:
        """PSNR of every partition (NaN for cropped ones) from a prediction on every sample."""
        return partition_psnrs(self.signal.as_display(prediction), self.signal.target_display(),
                               self.pixel_partition, self.config.num_partitions)

    # -- editing --------------------------------------------------------------------------------------
    def partition_info(self) -> PartitionInfo:
        c = self.config
        return PartitionInfo("local-global" if c.global_width else "siren-per-partition", c.partitions,
                             tuple(self.model.present_list), self.added, self.pixel_partition, self.params,
                             total_parameters(c, c.num_partitions), global_parameters(c),
                             local_parameters_per_partition(c), self.structure, bool(self._undo), bool(self._redo),
                             self.extension_step, tuple(sorted(self._stash)))

    def crop(self, partitions) -> str:
        """Remove the local sub-networks of ``partitions`` (flat indices); undo() or restore() brings them back."""
        present = set(self.model.present_list)
        remove = sorted({int(p) for p in partitions} & present)
        if not remove:
            raise ValueError("nothing to crop: those partitions are already gone")
        before = self.params
        self._remove(remove)
        self._undo.append(("crop", remove))
        self._redo.clear()
        return f"cropped {_count(remove)}: {before:,} -> {self.params:,} parameters"

    def restore(self, partitions) -> str:
        """Put back cropped partitions exactly as they were (weights and Adam moments)."""
        back = sorted({int(p) for p in partitions} & set(self._stash))
        if not back:
            raise ValueError("nothing to restore: those partitions were not cropped")
        self._insert(back)
        self._undo.append(("restore", back))
        self._redo.clear()
        return f"restored {_count(back)}: {self.params:,} parameters"

    def keep_only(self, partitions) -> str:
        keep = {int(p) for p in partitions}
        remove = [p for p in self.model.present_list if p not in keep]
        if len(remove) == len(self.model.present_list):
            raise ValueError("the selection holds no present partition: nothing would be kept")
        return self.crop(remove)

    def undo(self) -> str:
        if not self._undo:
            raise ValueError("nothing to undo")
        action, partitions = self._undo.pop()
        self._insert(partitions) if action == "crop" else self._remove(partitions)
        self._redo.append((action, partitions))
        verb = "restored" if action == "crop" else "cropped"
        return f"undo: {verb} {_count(partitions)}: {self.params:,} parameters"

    def redo(self) -> str:
        if not self._redo:
            raise ValueError("nothing to redo")
        action, partitions = self._redo.pop()
        self._remove(partitions) if action == "crop" else self._insert(partitions)
        self._undo.append((action, partitions))
        verb = "cropped" if action == "crop" else "restored"
        return f"redo: {verb} {_count(partitions)}: {self.params:,} parameters"

    def _remove(self, remove: list[int]) -> None:
        """Take slots out of the parameter tensors (and their Adam moments out of the optimiser) into the stash."""
        present = self.model.present_list
        gone = set(remove)
        keep_at = [i for i, p in enumerate(present) if p not in gone]
        kept, kept_moments = {}, {}
        for name in self.model.local_parameter_names():
            param = getattr(self.model, name)
            state = self.optimizer.state.get(param, {})
            moments = (state["exp_avg"], state["exp_avg_sq"]) if "exp_avg" in state else None
            for i, p in enumerate(present):
                if p in gone:
                    slot = self._stash.setdefault(p, {})
                    slot[name] = (param.detach()[i].clone(), None if moments is None else
                                  (moments[0][i].clone(), moments[1][i].clone()))
            kept[name] = param.detach()[keep_at]
            kept_moments[name] = None if moments is None else (moments[0][keep_at], moments[1][keep_at])
        self._rebuild([present[i] for i in keep_at], kept, kept_moments)

    def _insert(self, partitions: list[int]) -> None:
        """Put stashed slots back in order, with their moments (zero moments where none were stashed)."""
        present = self.model.present_list
        merged = present + list(partitions)
        order = sorted(range(len(merged)), key=lambda i: merged[i])
        tensors, moments = {}, {}
        for name in self.model.local_parameter_names():
            param = getattr(self.model, name)
            stashed = [self._stash[p][name] for p in partitions]
            tensors[name] = torch.cat([param.detach(), torch.stack([w for w, _ in stashed]).to(param.device)])[order]
            state = self.optimizer.state.get(param, {})
            if "exp_avg" in state:
                m = [mv[0] if mv is not None else torch.zeros_like(w) for w, mv in stashed]
                v = [mv[1] if mv is not None else torch.zeros_like(w) for w, mv in stashed]
                moments[name] = (torch.cat([state["exp_avg"], torch.stack(m)])[order],
                                 torch.cat([state["exp_avg_sq"], torch.stack(v)])[order])
            else:
                moments[name] = None
        for p in partitions:
            del self._stash[p]
        self._rebuild([merged[i] for i in order], tensors, moments)

    def _rebuild(self, present: list[int], tensors: dict, moments: dict | None) -> None:
        """Install new local tensors and an optimiser that keeps every moment it can (none when moments is None)."""
        old = {name: getattr(self.model, name) for name in self.model.local_parameter_names()}
        old_state = self.optimizer.state
        self.model.set_local_slots(present, tensors)
        self.optimizer = self._build_optimizer()
        if moments is not None:
            for param in self.model.global_parameter_list():
                if param in old_state:
                    self.optimizer.state[param] = old_state[param]
            for name in self.model.local_parameter_names():
                state = old_state.get(old[name], {})
                if moments.get(name) is not None and "step" in state:
                    m, v = moments[name]
                    self.optimizer.state[getattr(self.model, name)] = {
                        "step": state["step"].clone(), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
        self.structure += 1
        self._layout()
        self._good_state = self._capture_state()

    def extend(self, partitions=None, init: str | None = None) -> str:
        """Add local sub-networks for ``partitions`` (default: every missing one), initialised from trained
        neighbours (``init``, default the trainer's extension_init), and fine-tune from here with a fresh
        optimiser. Crops made before cannot be undone afterwards."""
        init = init or self.extension_init
        if init not in EXTENSION_INITS:
            raise ValueError(f"unknown extension init {init!r}; choose one of {', '.join(EXTENSION_INITS)}")
        present = self.model.present_list
        wanted = range(self.config.num_partitions) if partitions is None else partitions
        new = sorted({int(p) for p in wanted} - set(present))
        if not new:
            raise ValueError("nothing to extend: every partition is present")
        sources = extension_sources(self.config, present, new) if init != "fresh" and present else {}
        slot_of = {p: i for i, p in enumerate(present)}
        names = self.model.local_parameter_names()
        rows: dict[str, list[torch.Tensor]] = {name: [] for name in names}
        for p in new:
            if p in sources:
                source, flips = sources[p]
                layers = [getattr(self.model, name).detach()[slot_of[source]] for name in names]
                if init == "reflect":
                    layers[0], layers[1] = reflect_first_layer(self.config, layers[0], layers[1], source, p, flips)
            else:
                weights, biases = self.model.initial_local_weights(p)
                layers = [t.to(self.device) for pair in zip(weights, biases) for t in pair]
            for name, tensor in zip(names, layers):
                rows[name].append(tensor)
        merged = present + new
        order = sorted(range(len(merged)), key=lambda i: merged[i])
        tensors = {name: torch.cat([getattr(self.model, name).detach(), torch.stack(rows[name])])[order] for name in names}
        self._rebuild([merged[i] for i in order], tensors, None)
        self.added = tuple(new)
        self.extension_step = self.step_count
        self._undo.clear()
        self._redo.clear()
        self._stash.clear()
        return f"extended by {len(new)} partition(s) ({init} init): {self.params:,} parameters"


def _count(partitions) -> str:
    return f"{len(partitions)} partition{'s' if len(partitions) != 1 else ''}"


class RegionTrainer(Trainer):
    """A plain field for the extension comparison: trained on ``region_rows`` until ``extend_at`` and on the
    whole signal after (fine-tuning, fresh Adam); or, with from_scratch, waiting (its step count runs, so that
    all runs share one step axis, but nothing trains) until ``extend_at``, then trained from its initial
    weights on the whole signal."""

    def __init__(self, signal: Signal, field, train: TrainConfig, region_rows: torch.Tensor | None,
                 extend_at: int | None, from_scratch: bool = False):
        super().__init__(signal, field, train)
        self.extend_at = extend_at
        self.from_scratch = from_scratch
        self.waiting = from_scratch
        if not from_scratch and region_rows is not None:
            self.train_rows = region_rows.to(self.device)

    def step(self) -> None:
        if self.waiting:  # the clock runs (so that every run shares the step axis) but nothing trains
            self.step_count += 1
            if self.extend_at is not None and self.step_count >= self.extend_at:
                self.extend()
            return
        if self.extend_at is not None and self.extension_step is None and self.step_count >= self.extend_at:
            self.extend()
        super().step()

    def extend(self) -> str:
        if self.extension_step is not None:
            raise ValueError("already extended")
        self.extension_step = self.step_count
        self._good_state = self._capture_state()
        if self.waiting:
            self.waiting = False
            return "started training from scratch on the whole signal"
        self.train_rows = None
        self.optimizer = self._build_optimizer()
        self._good_state = self._capture_state()
        return "fine-tuning on the whole signal"

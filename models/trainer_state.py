"""A session's complete training state as tensors + JSON, and back: what sessions, the timeline and branches use.

``capture_runs`` turns a worker's trainers into flat named tensors (weights, Adam moments, sampler state, cropped
partitions' stash, a batched sweep group's stacks) plus a JSON-ready description (step counts, histories, growth
stage, present partitions, undo/redo). ``restore_runs`` applies that to trainers freshly built from the same scene
(same seeds, same shapes at first): it re-creates the structure first (a grown width, a crop, an extension) and then
loads every tensor, so that the restored runs draw and *continue training* bit for bit like the originals.
Nothing here unpickles or executes anything: tensors are plain arrays and the description is plain data.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from .croppable import LocalGlobalTrainer, RegionTrainer
from .growth import GrowthConfig, GrowthTrainer
from .streamable import StreamableConfig, StreamableField
from .sweep import MemberTrainer
from .training import Trainer

__all__ = ["RunsState", "StateError", "capture_runs", "restore_runs", "state_bytes"]


class StateError(ValueError):
    """A saved state does not fit the trainers it is applied to; one line for the user."""


@dataclass(frozen=True)
class RunsState:
    tensors: dict[str, torch.Tensor]
    """Flat names ('run0.model.net.0.weight', 'group0.optim.3.exp_avg', ...) to CPU tensors."""
    runs: list[dict]
    """Per run: its label, trainer kind and plain-data state."""
    groups: list[dict]
    """Per batched sweep group: its plain-data state (members name their group)."""

    @property
    def step(self) -> int:
        return int(self.runs[0]["step_count"]) if self.runs else 0


def state_bytes(state: RunsState) -> int:
    return sum(t.numel() * t.element_size() for t in state.tensors.values())


# -- capture ----------------------------------------------------------------------------------------------
def capture_runs(trainers: list[tuple[str, Trainer]]) -> RunsState:
    """Copies of every run's state (call between steps, on the thread that trains them)."""
    tensors: dict[str, torch.Tensor] = {}
    runs, groups, group_ids = [], [], {}
    for i, (label, trainer) in enumerate(trainers):
        trainer.flush()  # pending losses into the history (a divergence restores and raises: nothing half-saved)
        prefix = f"run{i}."
        run = {"label": label, "kind": type(trainer).__name__, **_base_meta(trainer)}
        tensors[prefix + "generator"] = trainer.generator.get_state().clone()
        if trainer.train_rows is not None:
            tensors[prefix + "train_rows"] = trainer.train_rows.detach().cpu().clone()
        if isinstance(trainer, MemberTrainer):
            key = id(trainer.group)
            if key not in group_ids:
                group_ids[key] = len(groups)
                groups.append(_capture_group(trainer.group, f"group{len(groups)}.", tensors))
            run.update(group=group_ids[key], index=trainer.index)
        else:
            _put_model(tensors, prefix, trainer.model)
            _put_optimizer(tensors, prefix + "optim.", trainer.optimizer, run)
        if isinstance(trainer, GrowthTrainer):
            run["growth"] = _growth_meta(trainer)
        if isinstance(trainer, LocalGlobalTrainer):
            run["partitions"] = _partitions_meta(trainer, prefix, tensors)
        if isinstance(trainer, RegionTrainer):
            run["region"] = {"waiting": trainer.waiting}
        runs.append(run)
    return RunsState(tensors, runs, groups)


def _base_meta(trainer: Trainer) -> dict:
    return {"step_count": trainer.step_count, "lr": trainer.lr, "seconds": trainer.seconds, "finished": trainer.finished,
            "step_limit": trainer.step_limit, "extension_step": trainer.extension_step, "waiting": trainer.waiting,
            "batch_size": trainer.batch_size, "structure": trainer.structure, "params": trainer.params,
            "loss_steps": list(trainer.loss_steps), "loss_values": [_finite(v) for v in trainer.loss_values],
            "psnr_steps": list(trainer.psnr_steps), "psnr_values": [_finite(v) for v in trainer.psnr_values],
            "reference_loss": trainer._reference_loss, "has_train_rows": trainer.train_rows is not None}


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _put_model(tensors: dict, prefix: str, model: torch.nn.Module) -> None:
    for name, value in model.state_dict().items():
        tensors[prefix + "model." + name] = value.detach().cpu().clone()


def _put_optimizer(tensors: dict, prefix: str, optimizer, meta: dict) -> None:
    state = optimizer.state_dict()
    plain_state = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}{index}.{key}"] = value.detach().cpu().clone()
            else:
                plain_state.setdefault(str(index), {})[key] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()} for group in state["param_groups"]]
    meta["optimizer"] = {"param_groups": groups, "plain_state": plain_state,
                         "parameters": sum(len(g["params"]) for g in groups)}


def _capture_group(group, prefix: str, tensors: dict) -> dict:
    for name, value in group.params.items():
        tensors[prefix + "params." + name] = value.detach().cpu().clone()
    meta = {"step_count": group.step_count, "lr": group.lr, "count": group.count, "restores": group.restores}
    _put_optimizer(tensors, prefix + "optim.", group.optimizer, meta)
    return meta


def _growth_meta(trainer: GrowthTrainer) -> dict:
    return {"config": trainer.field_config.to_dict(), "growth": asdict(trainer.growth), "stage": trainer.stage,
            "stages_allocated": trainer.model.num_stages, "steps_in_stage": trainer.steps_in_stage,
            "stage_end_steps": list(trainer.stage_end_steps), "previous_window": trainer._previous_window,
            "window_sum": None if trainer._window_sum is None else float(trainer._window_sum)}


def _partitions_meta(trainer: LocalGlobalTrainer, prefix: str, tensors: dict) -> dict:
    for partition, slot in trainer._stash.items():
        for name, (weights, moments) in slot.items():
            base = f"{prefix}stash.{partition}.{name}."
            tensors[base + "w"] = weights.detach().cpu().clone()
            if moments is not None:
                tensors[base + "m"], tensors[base + "v"] = (m.detach().cpu().clone() for m in moments)
    return {"present": trainer.model.present_list, "added": list(trainer.added),
            "undo": [[a, list(p)] for a, p in trainer._undo], "redo": [[a, list(p)] for a, p in trainer._redo],
            "stash": {str(p): sorted(slot) for p, slot in trainer._stash.items()}}


# -- restore ----------------------------------------------------------------------------------------------
def restore_runs(trainers: list[tuple[str, Trainer]], state: RunsState) -> list[tuple[str, Trainer]]:
    """Apply ``state`` to ``trainers`` (built from the scene it was saved with); returns them. Raises StateError
    when the runs do not match (another scene, a different signal size)."""
    if len(trainers) != len(state.runs):
        raise StateError(f"the saved session has {len(state.runs)} run(s) but this scene builds {len(trainers)}")
    groups_done: set[int] = set()
    try:
        for i, ((label, trainer), run) in enumerate(zip(trainers, state.runs)):
            if run.get("kind") != type(trainer).__name__:
                raise StateError(f"run {i} ({label}) was saved as a {run.get('kind')}, but this scene builds a "
                                 f"{type(trainer).__name__}")
            _restore_one(trainer, f"run{i}.", run, state, groups_done)
    except StateError:
        raise
    except (LookupError, TypeError, ValueError, RuntimeError, AttributeError, ArithmeticError) as exc:  # any bad value
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StateError(f"the saved state does not fit this scene: {first}") from None
    return trainers


def _restore_one(trainer: Trainer, prefix: str, run: dict, state: RunsState, groups_done: set) -> None:
    tensors = state.tensors
    if isinstance(trainer, GrowthTrainer):
        _restore_growth_structure(trainer, run["growth"])
    if isinstance(trainer, LocalGlobalTrainer):
        _restore_partitions(trainer, prefix, run["partitions"], tensors)
    if isinstance(trainer, MemberTrainer):
        index = int(run["group"])
        if index not in groups_done:
            _restore_group(trainer.group, f"group{index}.", state.groups[index], tensors)
            groups_done.add(index)
    else:
        model_state = {k[len(prefix + "model."):]: v for k, v in tensors.items() if k.startswith(prefix + "model.")}
        trainer.model.load_state_dict({k: v.to(trainer.device) for k, v in model_state.items()}, strict=True)  # copies
        if isinstance(trainer, GrowthTrainer):
            trainer.optimizer = trainer._build_optimizer()  # over the stage in training, the others frozen
            if trainer.finished:
                trainer.model.requires_grad_(False)
        _load_optimizer(trainer.optimizer, prefix + "optim.", run["optimizer"], tensors, trainer.device)
    trainer.generator.set_state(tensors[prefix + "generator"])
    rows = tensors.get(prefix + "train_rows")
    if run["has_train_rows"] != (rows is not None):
        raise StateError("the saved training rows are missing")
    trainer.train_rows = None if rows is None else rows.to(trainer.device).clone()
    for key in ("step_count", "seconds", "finished", "step_limit", "extension_step", "waiting", "batch_size",
                "loss_steps", "psnr_steps"):
        setattr(trainer, key, run[key])
    trainer.lr = float(run["lr"])
    trainer.loss_values = [math.nan if v is None else float(v) for v in run["loss_values"]]
    trainer.psnr_values = [math.nan if v is None else float(v) for v in run["psnr_values"]]
    trainer._reference_loss = run["reference_loss"]
    trainer.params = int(run["params"])
    trainer.structure = max(trainer.structure, int(run["structure"]))
    trainer._pending_losses.clear()
    trainer._full_batch_prediction = None
    if not isinstance(trainer, MemberTrainer):
        trainer._good_state = trainer._capture_state()


def _restore_growth_structure(trainer: GrowthTrainer, meta: dict) -> None:
    config = StreamableConfig.from_dict(meta["config"])
    trainer.field_config = config
    trainer.growth = GrowthConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["growth"].items()})
    trainer.model = StreamableField(config, stages=int(meta["stages_allocated"])).to(trainer.device)
    trainer.stage = int(meta["stage"])
    trainer.steps_in_stage = int(meta["steps_in_stage"])
    trainer.stage_end_steps = [int(s) for s in meta["stage_end_steps"]]
    trainer._previous_window = meta["previous_window"]
    window = meta["window_sum"]
    trainer._window_sum = None if window is None else torch.tensor(window, device=trainer.device)
    trainer._frozen_cache = None
    trainer._stage_targets = {}
    trainer._axis_index = trainer._last_axis_index()


def _restore_partitions(trainer: LocalGlobalTrainer, prefix: str, meta: dict, tensors: dict) -> None:
    present = [int(p) for p in meta["present"]]
    locals_ = {name: tensors[f"{prefix}model.{name}"] for name in trainer.model.local_parameter_names()}
    trainer._rebuild(present, {k: v.to(trainer.device).clone() for k, v in locals_.items()}, None)
    trainer.added = tuple(int(p) for p in meta["added"])
    trainer._undo = [(str(a), [int(p) for p in parts]) for a, parts in meta["undo"]]
    trainer._redo = [(str(a), [int(p) for p in parts]) for a, parts in meta["redo"]]
    stash = {}
    for partition, names in meta["stash"].items():
        slot = {}
        for name in names:
            base = f"{prefix}stash.{partition}.{name}."
            moments = (tensors[base + "m"].to(trainer.device).clone(), tensors[base + "v"].to(trainer.device).clone()) \
                if base + "m" in tensors else None
            slot[name] = (tensors[base + "w"].to(trainer.device).clone(), moments)
        stash[int(partition)] = slot
    trainer._stash = stash


def _restore_group(group, prefix: str, meta: dict, tensors: dict) -> None:
    if int(meta["count"]) != group.count:
        raise StateError(f"the saved sweep group has {meta['count']} members, this one {group.count}")
    with torch.no_grad():
        for name, value in group.params.items():
            value.copy_(tensors[prefix + "params." + name].to(value.device))
    _load_optimizer(group.optimizer, prefix + "optim.", meta["optimizer"], tensors, group.device)
    group.step_count = int(meta["step_count"])
    group.lr = float(meta["lr"])
    group.restores = int(meta["restores"])
    group.losses = group.predictions = None
    group._saved = None
    group._saved = group.capture()
    for trainer in group.trainers:
        trainer._seen_restores = group.restores


def _load_optimizer(optimizer, prefix: str, meta: dict, tensors: dict, device) -> None:
    groups = [dict(g) for g in meta["param_groups"]]
    for group in groups:
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    if sum(len(g["params"]) for g in groups) != sum(len(g["params"]) for g in optimizer.param_groups):
        raise StateError("the saved optimiser covers a different number of parameters")
    state: dict = {}
    for name, value in tensors.items():
        if name.startswith(prefix):
            index, key = name[len(prefix):].split(".", 1)
            state.setdefault(int(index), {})[key] = value.clone() if key == "step" else value.to(device).clone()
    for index, entries in meta.get("plain_state", {}).items():
        state.setdefault(int(index), {}).update(entries)
    optimizer.load_state_dict({"state": state, "param_groups": groups})

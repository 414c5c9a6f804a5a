"""Local-Global croppable fields (Local-Global SIREN; METHODS.md, 'Local-Global croppable INRs').

The coordinate box is cut into equal partitions along every axis. Each partition has its own small local
sub-network; all of them run at once as batched matmuls over a [partitions, rows, features] layout. A
global SIREN sees every coordinate, and at every depth a merge layer ``act(Linear(concat(local, global)))``,
shared by all partitions and depths, maps back to the local width. Local coordinates are the global
coordinates (not re-centred). ``global_width = 0`` gives the SIREN-per-partition baseline (no global net,
no merge).

Only partitions listed in ``present`` have parameters: cropping really removes rows from the local
tensors, and a cropped field evaluates to NaN ("no data") in the removed partitions.

Partition factors and indices are in array order (rows, columns for an image: the reverse of the
coordinate order x, y), so partition (i, j) is row i, column j of the grid, and the flat index is i * C1 + j.
"""
from __future__ import annotations

import math
from copy import deepcopy
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from .fields import config_from_dict, evaluation_chunk_rows
from .activations import Activation, canonical_name

MAX_PARTITIONS = 65536


@dataclass(frozen=True)
class LocalGlobalConfig:
    """Architecture of a Local-Global (or SIREN-per-partition) field."""

    in_features: int = 2
    """Coordinate dimension (1 curves, 2 images, 3 volumes or video)."""
    out_features: int = 1
    """Value channels."""
    partitions: tuple[int, ...] = (8, 8)
    """Parts per axis in array order (rows, columns for an image)."""
    extent: tuple[float, ...] = ()
    """Half-extent of the coordinate box per coordinate axis (x, y, ...), as Signal.extent; () means 1."""
    local_width: int = 16
    """Units per hidden layer of every local sub-network."""
    global_width: int = 32
    """Units per layer of the global SIREN; 0 = SIREN-per-partition (no global net, no merge)."""
    depth: int = 4
    """Sine layers of each local sub-network (each followed by a merge), before its linear output layer."""
    w0: float = 30.0
    """SIREN frequency factor of every sine layer."""
    activation: str = "siren"
    """A real-valued activation of models/activations.py ('siren', 'finer', 'gauss', 'finer-gauss') used by
    every layer: local, global and merge."""
    bias_range: float | None = None
    """FINER++'s k: the first layers' biases (local sub-networks and global SIREN) ~ U(-k, k), drawn as the
    default init's U(-1, 1) draws scaled by k; None keeps nn.Linear's default init."""
    seed: int = 0
    """Seed of the initial weights (each partition draws from its own stream, so a partition's initial
    weights do not depend on which others exist)."""
    present: tuple[int, ...] | None = None
    """Flat indices of the partitions that have a local sub-network (sorted); None: all of them."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "partitions", tuple(int(c) for c in self.partitions))
        object.__setattr__(self, "extent", tuple(float(e) for e in self.extent))
        if self.present is not None:
            object.__setattr__(self, "present", tuple(sorted({int(p) for p in self.present})))
        if len(self.partitions) != self.in_features:
            raise ValueError(f"need one partition factor per axis ({self.in_features}), got {list(self.partitions)}")
        if any(c < 1 for c in self.partitions) or math.prod(self.partitions) > MAX_PARTITIONS:
            raise ValueError(f"partition factors must be >= 1 with at most {MAX_PARTITIONS} partitions in all, "
                             f"got {list(self.partitions)}")
        if self.extent and (len(self.extent) != self.in_features or not all(e > 0 and math.isfinite(e) for e in self.extent)):
            raise ValueError(f"extent needs {self.in_features} positive values, got {list(self.extent)}")
        for name in ("in_features", "out_features", "local_width", "depth"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.global_width < 0:
            raise ValueError(f"global_width must be >= 0 (0 = SIREN-per-partition), got {self.global_width}")
        object.__setattr__(self, "activation", canonical_name(self.activation, real_only=True))
        if not (math.isfinite(self.w0) and self.w0 > 0):
            raise ValueError(f"w0 must be a positive finite number, got {self.w0}")
        if self.bias_range is not None and not (math.isfinite(self.bias_range) and self.bias_range >= 0):
            raise ValueError(f"bias range k must be a finite number >= 0, got {self.bias_range}")
        if self.present is not None and any(not 0 <= p < self.num_partitions for p in self.present):
            raise ValueError(f"present partitions must lie in 0..{self.num_partitions - 1}")

    def activation_fn(self) -> Activation:
        return Activation(self.activation, w0=self.w0)

    @property
    def num_partitions(self) -> int:
        return math.prod(self.partitions)

    @property
    def present_partitions(self) -> tuple[int, ...]:
        return tuple(range(self.num_partitions)) if self.present is None else self.present

    def to_dict(self) -> dict:
        data = asdict(self)
        data["partitions"], data["extent"] = list(self.partitions), list(self.extent)
        data["present"] = None if self.present is None else list(self.present)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "LocalGlobalConfig":
        data = dict(data)
        for key in ("partitions", "extent", "present"):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        return config_from_dict(cls, data, "local-global config")


def local_parameters_per_partition(c: LocalGlobalConfig) -> int:
    h = c.local_width
    return c.in_features * h + h + (c.depth - 1) * (h * h + h) + h * c.out_features + c.out_features


def global_parameters(c: LocalGlobalConfig) -> int:
    """The global SIREN plus the shared merge layer ('global weights' in the paper)."""
    g, h = c.global_width, c.local_width
    if g == 0:
        return 0
    return c.in_features * g + g + (c.depth - 1) * (g * g + g) + (g + h) * h + h


def total_parameters(c: LocalGlobalConfig, partitions: int | None = None) -> int:
    count = len(c.present_partitions) if partitions is None else partitions
    return global_parameters(c) + count * local_parameters_per_partition(c)


def partition_grid_index(c: LocalGlobalConfig, flat: int) -> tuple[int, ...]:
    """(row, column, ...) of a flat partition index."""
    return tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), c.partitions))


def flat_partition_index(c: LocalGlobalConfig, index: tuple[int, ...]) -> int:
    if len(index) != len(c.partitions) or any(not 0 <= i < n for i, n in zip(index, c.partitions)):
        raise ValueError(f"partition {','.join(map(str, index))} is outside the {'x'.join(map(str, c.partitions))} grid")
    flat = 0
    for i, n in zip(index, c.partitions):
        flat = flat * n + i
    return flat


def partition_of(c: LocalGlobalConfig, coords: torch.Tensor) -> torch.Tensor:
    """Flat partition index of each coordinate row (points outside the box go to the nearest partition)."""
    extent = c.extent or (1.0,) * c.in_features
    flat = torch.zeros(coords.shape[0], dtype=torch.long, device=coords.device)
    for axis, parts in enumerate(c.partitions):
        coord_axis = c.in_features - 1 - axis
        half = extent[coord_axis]
        cell = torch.floor((coords[:, coord_axis] + half) * (parts / (2.0 * half))).long().clamp_(0, parts - 1)
        flat = flat * parts + cell
    return flat


class LocalGlobalField(nn.Module):
    """Local sub-networks as [K, fan_in, fan_out] tensors (K = present partitions), a global SIREN and a
    merge layer. ``forward(coords)`` groups rows by partition; ``forward_grouped`` takes them grouped."""

    def __init__(self, config: LocalGlobalConfig):
        super().__init__()
        self.config = config
        c = config
        self.activation = c.activation_fn()
        h, g = c.local_width, c.global_width
        self.local_dims = [c.in_features] + [h] * c.depth + [c.out_features]
        present = c.present_partitions
        weights, biases = zip(*(self.initial_local_weights(p) for p in present)) if present else ((), ())
        for i in range(len(self.local_dims) - 1):
            fan_in, fan_out = self.local_dims[i], self.local_dims[i + 1]
            w = torch.stack([ws[i] for ws in weights]) if present else torch.empty(0, fan_in, fan_out)
            b = torch.stack([bs[i] for bs in biases]) if present else torch.empty(0, 1, fan_out)
            setattr(self, f"local_weight_{i}", nn.Parameter(w))
            setattr(self, f"local_bias_{i}", nn.Parameter(b))
        self.register_buffer("present", torch.tensor(present, dtype=torch.long).reshape(-1))
        generator = torch.Generator().manual_seed(c.seed)
        if g > 0:
            dims = [c.in_features] + [g] * c.depth
            self.global_weights = nn.ParameterList()
            self.global_biases = nn.ParameterList()
            for i in range(c.depth):
                w, b = _init_linear(dims[i], dims[i + 1], self.activation, i == 0, generator, c.bias_range)
                self.global_weights.append(nn.Parameter(w))
                self.global_biases.append(nn.Parameter(b))
            w, b = _init_linear(g + h, h, self.activation, False, generator)
            self.merge_weight = nn.Parameter(w)
            self.merge_bias = nn.Parameter(b)

    # -- weights ----------------------------------------------------------------------------------------
    def initial_local_weights(self, partition: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The activation's init of one partition's sub-network, from its own random stream: [fan_in, fan_out] weights
        and [1, fan_out] biases per layer."""
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + 7919 * (partition + 1))
        weights, biases = [], []
        for i in range(len(self.local_dims) - 1):
            w, b = _init_linear(self.local_dims[i], self.local_dims[i + 1], self.activation, i == 0, generator,
                                self.config.bias_range)
            weights.append(w)
            biases.append(b.reshape(1, -1))
        return weights, biases

    def local_parameter_names(self) -> list[str]:
        names = []
        for i in range(len(self.local_dims) - 1):
            names += [f"local_weight_{i}", f"local_bias_{i}"]
        return names

    def global_parameter_list(self) -> list[nn.Parameter]:
        if self.config.global_width == 0:
            return []
        return [*self.global_weights, *self.global_biases, self.merge_weight, self.merge_bias]

    def set_local_slots(self, present: list[int], tensors: dict[str, torch.Tensor]) -> None:
        """Replace the local sub-networks: ``present`` (sorted) and one [K, ...] tensor per local parameter."""
        if list(present) != sorted(set(present)):
            raise ValueError("present partitions must be sorted and unique")
        for name in self.local_parameter_names():
            if tensors[name].shape[0] != len(present):
                raise ValueError(f"{name}: {tensors[name].shape[0]} slots for {len(present)} partitions")
            setattr(self, name, nn.Parameter(tensors[name].detach().clone()))
        self.present = torch.tensor(present, dtype=torch.long, device=self.present.device).reshape(-1)
        self.config = replace(self.config, present=None if len(present) == self.config.num_partitions else tuple(present))

    def cropped(self, partitions) -> "LocalGlobalField":
        """A copy without the local sub-networks of ``partitions`` (flat indices); the rest is bit-identical."""
        gone = {int(p) for p in partitions}
        unknown = gone - set(self.present_list)
        if unknown:
            raise ValueError(f"partitions {sorted(unknown)} are not in this field (already cropped or out of range)")
        keep = [i for i, p in enumerate(self.present_list) if p not in gone]
        copy = deepcopy(self)
        copy.set_local_slots([self.present_list[i] for i in keep],
                             {name: getattr(self, name).detach()[keep] for name in self.local_parameter_names()})
        return copy

    @property
    def present_list(self) -> list[int]:
        return self.present.tolist()

    # -- evaluation -------------------------------------------------------------------------------------
    def forward_grouped(self, x: torch.Tensor) -> torch.Tensor:
        """[K, N, in] coordinates, slot k belonging to partition ``present[k]`` -> [K, N, out]."""
        return _forward_grouped(self, x, [getattr(self, name) for name in self.local_parameter_names()])

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Values at [N, in] coordinates; NaN where the partition has been cropped away."""
        rows = group_rows(self, coords)
        out = coords.new_full((coords.shape[0], self.config.out_features), float("nan"))
        if rows.index.numel():
            grouped = self.forward_grouped(coords[rows.index])
            out[rows.index[rows.valid]] = grouped[rows.valid].to(out.dtype)
        return out

    def evaluate_chunked(self, coords: torch.Tensor) -> torch.Tensor:
        """What models.fields.evaluate_in_chunks uses: a few whole partitions at a time."""
        return evaluate_grouped_in_chunks(self, coords)


def _forward_grouped(model, x: torch.Tensor, local_tensors: list[torch.Tensor]) -> torch.Tensor:
    c = model.config
    if x.shape[0] == 1:  # batched matmuls of one slot take another code path that rounds differently:
        # run two copies so that a partition's output never depends on how many others are present
        doubled = [t.expand(2, *t.shape[1:]) for t in local_tensors]
        return _forward_grouped(model, x.expand(2, *x.shape[1:]), doubled)[:1]
    slots, rows, _ = x.shape
    local = x
    features = x.reshape(slots * rows, -1) if c.global_width else None
    depth = len(local_tensors) // 2 - 1
    act = model.activation
    for i in range(depth):
        local = act.fused(local, local_tensors[2 * i], local_tensors[2 * i + 1])
        if features is not None:
            features = act.fused(features, model.global_weights[i], model.global_biases[i])
            merged = torch.cat([local.reshape(slots * rows, -1), features], dim=1)
            local = act.fused(merged, model.merge_weight, model.merge_bias).reshape(slots, rows, -1)
    return torch.baddbmm(local_tensors[2 * depth + 1], local, local_tensors[2 * depth])


def _init_linear(fan_in: int, fan_out: int, activation: Activation, is_first: bool, generator: torch.Generator,
                 bias_range: float | None = None):
    """A [fan_in, fan_out] weight with the activation's init (SIREN's for sines) and a bias with nn.Linear's
    default init, or for a first layer with a bias range k, U(-k, k) from the same draws."""
    bound = activation.weight_bound(fan_in, is_first)
    weight = (torch.rand(fan_in, fan_out, generator=generator) * 2.0 - 1.0) * bound
    scale = bias_range if is_first and bias_range is not None else 1.0 / math.sqrt(fan_in)
    bias = (torch.rand(fan_out, generator=generator) * 2.0 - 1.0) * scale
    return weight, bias


@dataclass(frozen=True)
class GroupedRows:
    """Rows of a coordinate set grouped by present partition, padded to the same count per slot."""

    index: torch.Tensor
    """[K, M] row numbers; padding repeats the slot's last row."""
    valid: torch.Tensor
    """[K, M] False on padding."""
    counts: torch.Tensor
    """[K] real rows per slot."""
    covered: torch.Tensor
    """[N] True where the row's partition is present."""


def group_rows(model: LocalGlobalField, coords: torch.Tensor) -> GroupedRows:
    c = model.config
    device = coords.device
    partition = partition_of(c, coords)
    slot_of = torch.full((c.num_partitions,), -1, dtype=torch.long, device=device)
    slots = model.present.to(device)
    slot_of[slots] = torch.arange(slots.numel(), device=device)
    slot = slot_of[partition]
    covered = slot >= 0
    rows = torch.nonzero(covered).reshape(-1)
    order = rows[torch.argsort(slot[rows], stable=True)]
    counts = torch.bincount(slot[rows], minlength=slots.numel())
    # pad every slot to the fullest partition's count, present or not, so that the layout of a partition's
    # rows (and with it its arithmetic) does not change when others are cropped
    width = int(torch.bincount(partition, minlength=c.num_partitions).max()) if partition.numel() else 0
    starts = torch.cumsum(counts, 0) - counts
    offsets = torch.arange(width, device=device)
    valid = offsets.unsqueeze(0) < counts.unsqueeze(1)
    position = starts.unsqueeze(1) + torch.minimum(offsets.unsqueeze(0), (counts - 1).clamp(min=0).unsqueeze(1))
    index = order[position.clamp(max=max(order.numel() - 1, 0))] if order.numel() else position
    return GroupedRows(index, valid & (counts.unsqueeze(1) > 0), counts, covered)


def evaluate_grouped_in_chunks(model: LocalGlobalField, coords: torch.Tensor, rows: GroupedRows | None = None) -> torch.Tensor:
    """``model(coords)`` without autograd, a few partitions at a time (chunks sized as evaluation_chunk_rows)."""
    rows = group_rows(model, coords) if rows is None else rows
    out = coords.new_full((coords.shape[0], model.config.out_features), float("nan"))
    slots, width = rows.index.shape if rows.index.dim() == 2 else (0, 0)
    if slots == 0 or width == 0:
        return out
    per_chunk = max(1, evaluation_chunk_rows(coords.device) // width)
    with torch.no_grad():
        for start in range(0, slots, per_chunk):
            index, valid = rows.index[start:start + per_chunk], rows.valid[start:start + per_chunk]
            grouped = _forward_slots(model, coords[index], start)
            out[index[valid]] = grouped[valid].to(out.dtype)
    return out


def _forward_slots(model: LocalGlobalField, x: torch.Tensor, first_slot: int) -> torch.Tensor:
    """forward_grouped for slots first_slot .. first_slot + len(x) only."""
    tensors = [getattr(model, name)[first_slot:first_slot + x.shape[0]] for name in model.local_parameter_names()]
    return _forward_grouped(model, x, tensors)

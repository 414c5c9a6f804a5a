"""What the 3D views draw, made on the snapshot thread (never the GUI's): a field's marching-cubes mesh, a
slice of its values on a plane, and its surface metrics against the true shape.

Each lab only supplies "the field at these settings" (a function from points to values): a plain field, one
width of a growing field, the present partitions of a croppable one. ``SdfRenderer`` turns that into an
``SdfView``: a coarse narrow-band mesh while training (on a wall-clock schedule set by the worker), a fine one
when paused or on request, cached so that a paused field is extracted once per setting.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field as dataclass_field, replace
from typing import Callable

import numpy as np
import torch

from .meshing import MeshData, extract_narrow_band, grid_points
from .sdf_metrics import (IOU_RESOLUTION, METRIC_CONVENTIONS, SurfaceReference, chamfer_and_normals, inside_from_volume,
                          occupancy_iou)
from .signals import Signal

FieldFunction = Callable[[torch.Tensor], torch.Tensor]
"""(N, 3) points on the CPU -> (N,) or (N, 1) field values (any device; no autograd)."""

LIVE_RESOLUTIONS = (64, 128)
STILL_RESOLUTIONS = (128, 192, 256, 384)
AXES = "xyz"
BAND = 1.25
"""Narrow-band margin in cell diagonals (models/meshing.py): exact for fields whose slope stays below ~1.25 plus the
one-cell dilation; a trained SDF's slope is ~1 (|grad| = 1 is what it regresses), an untrained one's may be larger,
where a thin sliver can be missed until it trains. 2.0 costs ~1.6x the queries at 256^3 (see README, '3D')."""


@dataclass(frozen=True)
class SdfViewSettings:
    """How the 3D views want a field drawn; the GUI sends a new one through the worker when a control changes."""

    level: float | None = None
    """Iso-level of the extracted surface; None: the target's own (0 for a signed distance, 0.5 for occupancy)."""
    live_resolution: int = 64
    """Grid cells per axis while training. Multiples of 64 let IoU read its 65^3 grid off the mesh's volume."""
    still_resolution: int = 256
    """Grid cells per axis when paused or on request (narrow-band extraction)."""
    slice_axis: int = 2
    """Axis normal to the slice plane: 0 = x, 1 = y, 2 = z."""
    slice_position: float = 0.0
    """Where the slice plane cuts that axis, in [-1, 1]."""
    slice_size: int = 128
    """Samples per side of the slice image."""
    still_request: int = 0
    """Bumped by 'extract now': a fine mesh is made even while training."""
    width_index: int | None = None
    """A growing field: the width whose mesh is made fine when paused (the width slider's); None: the widest."""

    def __post_init__(self) -> None:
        for name in ("live_resolution", "still_resolution"):
            value = getattr(self, name)
            if value < 64 or value % 64:
                raise ValueError(f"{name.replace('_', ' ')} must be a multiple of 64 (>= 64), got {value}")
        if self.slice_axis not in (0, 1, 2):
            raise ValueError(f"slice axis must be 0, 1 or 2, got {self.slice_axis}")
        if not -1.0 <= self.slice_position <= 1.0:
            raise ValueError(f"slice position must lie in [-1, 1], got {self.slice_position}")


@dataclass(frozen=True)
class SdfView:
    """One field drawn in 3D at one moment (arrays read-only)."""

    mesh: MeshData
    vertex_error: np.ndarray
    """Distance of every mesh vertex to the true surface (domain units; the cube is 2 wide)."""
    still: bool
    """True for a fine (paused / on request) extraction, False for the live coarse one."""
    level: float
    inside_below: bool
    """True for signed distances (inside where value < level), False for occupancy (inside where value > level)."""
    slice_axis: int
    slice_position: float
    slice_field: np.ndarray
    """Field values on the slice plane, (S, S): rows follow the second remaining axis, columns the first."""
    slice_target: np.ndarray
    """The target's values on the same plane."""
    metrics: dict
    """chamfer_l1, chamfer_l2, normal_consistency, iou (None for an empty mesh); see METRIC_CONVENTIONS."""
    history: np.ndarray = dataclass_field(default_factory=lambda: np.zeros((0, 4)))
    """(K, 4): step, Chamfer-L1, normal consistency, IoU at each live extraction so far."""
    step: int = 0


def default_level(signal: Signal) -> float:
    return 0.5 if signal.sdf is not None and signal.sdf.target == "occupancy" else 0.0


def slice_points(axis: int, position: float, size: int) -> torch.Tensor:
    """(size*size, 3) points of the plane ``coordinate[axis] = position``, pixel centres over [-1, 1]^2."""
    ticks = (torch.arange(size, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0
    rows, cols = torch.meshgrid(ticks, ticks, indexing="ij")
    others = [a for a in range(3) if a != axis]
    points = torch.empty(size * size, 3)
    points[:, axis] = position
    points[:, others[0]] = cols.reshape(-1)
    points[:, others[1]] = rows.reshape(-1)
    return points


def readonly(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


class SdfRenderer:
    """Meshes, slices and metrics of the fields of one 3D signal; keeps caches between snapshots."""

    def __init__(self, signal: Signal):
        if signal.sdf is None:
            raise ValueError(f"{signal.name} is not a 3D signal")
        self.signal = signal
        self.target = signal.sdf
        self.inside_below = self.target.target != "occupancy"
        self.outside_value = 1.0 if self.inside_below else 0.0
        """A value that reads as 'outside' (where a cropped field has no output)."""
        self._gt_inside: np.ndarray | None = None
        self._reference: SurfaceReference | None = None
        self._target_slices: dict[tuple[int, float, int], np.ndarray] = {}
        self._stills: dict[tuple, SdfView] = {}
        self._history: dict[tuple[int, int], list[tuple[int, float, float, float]]] = {}
        """Per (generation, run): (step, Chamfer-L1, normal consistency, IoU) of each recorded render."""

    # -- the ground truth, computed once -----------------------------------------------------------------
    def gt_inside(self) -> np.ndarray:
        """The true occupancy at the IoU grid's nodes ((IOU_RESOLUTION+1)^3, 'ij' order)."""
        if self._gt_inside is None:
            points = grid_points(IOU_RESOLUTION).numpy()
            n = IOU_RESOLUTION + 1
            self._gt_inside = self.target.inside(points).reshape(n, n, n)
        return self._gt_inside

    def reference(self) -> SurfaceReference:
        """CHAMFER_POINTS of the true surface's samples, KD-tree built once."""
        if self._reference is None:
            self._reference = SurfaceReference(self.target.surface_points, self.target.surface_normals)
        return self._reference

    def target_slice(self, axis: int, position: float, size: int) -> np.ndarray:
        key = (axis, round(position, 6), size)
        if key not in self._target_slices:
            points = slice_points(axis, position, size).numpy()
            if self.target.target == "occupancy":
                values = self.target.inside(points).astype(np.float32)
            else:
                values = self.target.sdf(points).astype(np.float32)
            if len(self._target_slices) > 32:
                self._target_slices.clear()
            self._target_slices[key] = readonly(values.reshape(size, size))
        return self._target_slices[key]

    def forget_other_generations(self, generation: int) -> None:
        self._stills = {k: v for k, v in self._stills.items() if k[0] == generation}
        self._history = {k: v for k, v in self._history.items() if k[0] == generation}

    def render_widths(self, model: torch.nn.Module, stages, settings: SdfViewSettings, *, still: bool,
                      generation: int, index: int, step: int) -> tuple[SdfView, ...]:
        """Every allocated width of a growing field (models/streamable.py): trained widths of a progressive run
        are frozen, so each is extracted once; the width in training every time; the selected width (or the
        widest) fine when ``still``."""
        device = next(model.parameters()).device
        allocated = [k for k, state in enumerate(stages.states) if state != "pending"]
        chosen = settings.width_index if settings.width_index in allocated else allocated[-1]
        views = []
        for k in allocated:
            frozen = stages.states[k] == "trained" and stages.mode == "progressive" and k < len(stages.stage_end_steps)
            width_step = stages.stage_end_steps[k] if frozen else step
            views.append(self.render(module_field(_WidthOf(model, k), device), settings, still=still and k == chosen,
                                     generation=generation, index=index, step=width_step, tag=f"width {stages.widths[k]}",
                                     record=k == stages.stage, frozen=frozen))
        return tuple(views)

    # -- one field -----------------------------------------------------------------------------------------
    def level_of(self, settings: SdfViewSettings) -> float:
        return default_level(self.signal) if settings.level is None else float(settings.level)

    def cached(self, generation: int, index: int, step: int, settings: SdfViewSettings, still: bool,
               tag: str = "") -> SdfView | None:
        return self._stills.get(self._cache_key(generation, index, step, settings, still, tag))

    def _cache_key(self, generation: int, index: int, step: int, settings: SdfViewSettings, still: bool, tag: str) -> tuple:
        resolution = settings.still_resolution if still else settings.live_resolution
        return (generation, index, step, tag, still, self.level_of(settings), resolution, settings.slice_axis,
                round(settings.slice_position, 6), settings.slice_size)

    @torch.no_grad()
    def render(self, field: FieldFunction, settings: SdfViewSettings, *, still: bool, generation: int, index: int,
               step: int, tag: str = "", record: bool = True, frozen: bool = False) -> SdfView:
        """The mesh (coarse, or fine when ``still``), slice and metrics of ``field``.

        ``tag`` names a variant of the same run (a width of a growing field) so caches and histories keep apart;
        ``record`` adds the metrics to the run's history (the variant being trained, not every width); a
        ``frozen`` variant (a trained width: ``step`` is then when it stopped changing) is drawn once and cached,
        as fine meshes are."""
        if still or frozen:
            cached = self.cached(generation, index, step, settings, still, tag)
            if cached is not None:
                return cached
        level = self.level_of(settings)
        resolution = settings.still_resolution if still else settings.live_resolution
        mesh = extract_narrow_band(_flat(field), resolution, level=level, inside_below=self.inside_below, band=BAND)
        vertex_error = (self.target.unsigned(mesh.vertices).astype(np.float32) if len(mesh.vertices)
                        else np.zeros(0, np.float32))
        metrics = self._metrics(mesh, level, resolution)
        points = slice_points(settings.slice_axis, settings.slice_position, settings.slice_size)
        slice_field = _flat(field)(points).reshape(settings.slice_size, settings.slice_size).float().cpu().numpy()
        history = self._history.setdefault((generation, index), [])  # one curve per run, whichever width trains
        if record:
            while history and history[-1][0] >= step:
                history.pop()
            history.append((step, _nan(metrics.get("chamfer_l1")), _nan(metrics.get("normal_consistency")),
                            _nan(metrics.get("iou"))))
        mesh = replace(mesh, volume=None) if getattr(mesh, "volume", None) is not None else mesh
        view = SdfView(mesh, readonly(vertex_error), still, level, self.inside_below, settings.slice_axis,
                       settings.slice_position, readonly(slice_field),
                       self.target_slice(settings.slice_axis, settings.slice_position, settings.slice_size),
                       metrics, readonly(np.asarray(history, dtype=np.float64).reshape(-1, 4)), step)
        if still or frozen:
            if len(self._stills) > 64:
                self._stills.clear()
            self._stills[self._cache_key(generation, index, step, settings, still, tag)] = view
        return view

    def _metrics(self, mesh: MeshData, level: float, resolution: int) -> dict:
        started = time.perf_counter()
        surface = chamfer_and_normals(mesh, self.reference())
        iou = None
        volume = getattr(mesh, "volume", None)
        if volume is not None:
            inside = inside_from_volume(volume, level, self.inside_below, resolution)
            iou = occupancy_iou(inside, self.gt_inside())
        return {"chamfer_l1": surface.get("chamfer_l1"), "chamfer_l2": surface.get("chamfer_l2"),
                "normal_consistency": surface.get("normal_consistency"), "iou": iou,
                "resolution": resolution, "seconds": time.perf_counter() - started}


def _flat(field: FieldFunction) -> Callable[[torch.Tensor], torch.Tensor]:
    def evaluate(points: torch.Tensor) -> torch.Tensor:
        return field(points).reshape(-1).float().cpu()
    return evaluate


def _nan(value) -> float:
    return float("nan") if value is None else float(value)


class _WidthOf(torch.nn.Module):
    """One width of a streamable field as a module of its own (its output at stage ``stage``)."""

    def __init__(self, model: torch.nn.Module, stage: int):
        super().__init__()
        self.model, self.stage = model, stage

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.model(points, stage=self.stage)


def partition_boxes(factors: tuple[int, ...], partitions) -> list[list[tuple[float, float]]]:
    """(lo, hi) per coordinate axis (x, y, z) of each of ``partitions`` (flat indices) of a 3D partition grid."""
    from .local_global import LocalGlobalConfig
    from .partitions import partition_box

    config = LocalGlobalConfig(in_features=len(factors), partitions=tuple(factors), extent=(1.0,) * len(factors))
    return [partition_box(config, int(p)) for p in partitions]


def partition_at(factors: tuple[int, ...], point) -> int:
    """Flat index of the partition of a 3D partition grid that contains ``point`` (x, y, z)."""
    from .local_global import LocalGlobalConfig, partition_of

    config = LocalGlobalConfig(in_features=len(factors), partitions=tuple(factors), extent=(1.0,) * len(factors))
    return int(partition_of(config, torch.tensor([list(point)], dtype=torch.float32))[0])


def module_field(module: torch.nn.Module, device: torch.device | str = "cpu", chunk: int = 65536) -> FieldFunction:
    """A field function evaluating ``module`` on ``device`` in chunks."""
    def evaluate(points: torch.Tensor) -> torch.Tensor:
        outputs = [module(points[i:i + chunk].to(device)).reshape(-1).cpu() for i in range(0, points.shape[0], chunk)]
        return torch.cat(outputs) if outputs else torch.zeros(0)
    return evaluate


__all__ = ["SdfRenderer", "SdfView", "SdfViewSettings", "METRIC_CONVENTIONS", "module_field", "default_level",
           "slice_points", "LIVE_RESOLUTIONS", "STILL_RESOLUTIONS"]

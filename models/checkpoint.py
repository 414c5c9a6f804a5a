"""Saving and loading fields as safetensors (weights) + JSON (config, signal layout, format version).

No pickle anywhere: a checkpoint is safe to open even when it comes from someone else.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import torch
from torch.overrides import TorchFunctionMode

from .fields import CoordinateMLP, FieldConfig, build_field, evaluate_in_chunks
from .local_global import LocalGlobalConfig, LocalGlobalField
from .resfields import ResFieldConfig, ResFieldMLP
from .signals import grid_coords, image_extent
from .streamable import StreamableConfig, StreamableField, evaluate_widths_in_chunks

FORMAT = "fieldlab.field"
FORMAT_VERSION = 4
"""1: coordinate MLPs only. 2: adds 'architecture' ('mlp' or 'streamable'; absent means 'mlp') and, for
streamable fields, 'stages' (allocated stage count) and 'growth' (stage states). 3: adds the 'local-global'
architecture, whose field config lists the partitions present (a cropped field stores only those). 4: adds the
'resfield' architecture (time-dependent layers) and, for temporal signals, 'time' (frames, fps, the lab's settings)."""
ARCHITECTURES = ("mlp", "streamable", "local-global", "resfield")
WEIGHTS_FILE = "field.safetensors"
META_FILE = "field.json"


class CheckpointError(ValueError):
    """A checkpoint folder is missing, incomplete or inconsistent; one line for the user."""


@dataclass(frozen=True)
class SavedField:
    model: CoordinateMLP | StreamableField | LocalGlobalField | ResFieldMLP
    config: FieldConfig | StreamableConfig | LocalGlobalConfig | ResFieldConfig
    meta: dict
    """The JSON document: 'signal' (name, kind, shape, channels, extent), 'train', 'metrics'."""


def save_field(folder: str, model: torch.nn.Module, config: FieldConfig, signal_meta: dict, extra: dict | None = None) -> None:
    from safetensors.torch import save_file

    os.makedirs(folder, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, os.path.join(folder, WEIGHTS_FILE))
    document = {"format": FORMAT, "version": FORMAT_VERSION, "field": config.to_dict(), "signal": signal_meta}
    if isinstance(model, StreamableField):
        document.update(architecture="streamable", stages=model.num_stages)
    elif isinstance(model, LocalGlobalField):
        document.update(architecture="local-global", field=model.config.to_dict())
    elif isinstance(model, ResFieldMLP):
        document.update(architecture="resfield", field=model.config.to_dict())
    else:
        document["architecture"] = "mlp"
    document.update(extra or {})
    with open(os.path.join(folder, META_FILE), "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, allow_nan=True)


def load_field(folder: str, device: str | torch.device = "cpu") -> SavedField:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights_path, meta_path = os.path.join(folder, WEIGHTS_FILE), os.path.join(folder, META_FILE)
    for path in (weights_path, meta_path):
        if not os.path.isfile(path):
            raise CheckpointError(f"{folder}: not a saved field (missing {os.path.basename(path)})")
    try:
        with open(meta_path, encoding="utf-8") as handle:
            meta = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{meta_path}: unreadable field description ({exc})") from None
    except RecursionError:
        raise CheckpointError(f"{meta_path}: unreadable field description (nested too deeply)") from None
    except ValueError as exc:  # e.g. a number with more digits than Python converts
        raise CheckpointError(f"{meta_path}: unreadable field description ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: not a FieldLab field description")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{meta_path}: invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{meta_path}: format version {_number_text(version)} is newer than this FieldLab "
                              f"understands ({FORMAT_VERSION}); please update FieldLab")
    architecture = meta.get("architecture", "mlp")
    if architecture not in ARCHITECTURES:
        raise CheckpointError(f"{meta_path}: unknown architecture {architecture!r}")
    try:
        if architecture == "streamable":
            config = StreamableConfig.from_dict(meta["field"])
            stages = meta.get("stages")
            if not isinstance(stages, int) or isinstance(stages, bool) or not 1 <= stages <= len(config.widths):
                raise ValueError(f"invalid stage count {stages!r}")
        elif architecture == "local-global":
            config = LocalGlobalConfig.from_dict(meta["field"])
        elif architecture == "resfield":
            config = ResFieldConfig.from_dict(meta["field"])
        else:
            config = FieldConfig.from_dict(meta["field"])
    except (LookupError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:  # any value from the file
        raise CheckpointError(f"{meta_path}: invalid field config ({_first_line(exc)})") from None
    try:
        tensors = load_file(weights_path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights_path}: unreadable weights ({exc})") from None
    def build() -> torch.nn.Module:
        if architecture == "streamable":
            return StreamableField(config, stages)
        if architecture == "local-global":
            return LocalGlobalField(config)
        if architecture == "resfield":
            return ResFieldMLP(config)
        return build_field(config)

    model = _build_within_weights(build, config, stages if architecture == "streamable" else 1, tensors,
                                  weights_path)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{weights_path}: weights do not match the config ({first})") from None
    if architecture == "local-global" and model.present_list != list(config.present_partitions):
        raise CheckpointError(f"{weights_path}: the stored partitions do not match the config's 'present' list")
    return SavedField(model.to(device).eval(), config, meta)


def _number_text(n: int) -> str:
    """A whole number for a message: as is, or its order of magnitude when it is absurdly long (10**400)."""
    text = str(n)
    return text if len(text) <= 15 else f"~10^{len(text.lstrip('-')) - 1}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]


class _AllocationBudget(TorchFunctionMode):
    """Stops building a model once its tensor factories (torch.empty, rand, zeros, ...) would have made more than
    ``limit`` numbers in all, before the call that goes over runs (thread-local, like every torch function mode)."""

    FACTORIES = frozenset({"empty", "rand", "randn", "zeros", "ones", "full", "randint", "empty_strided"})

    def __init__(self, limit: int):
        super().__init__()
        self.limit, self.used = limit, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") in self.FACTORIES:
            size = kwargs.get("size", args[0] if len(args) == 1 or func.__name__ in ("full", "empty_strided") else args)
            if isinstance(size, int):
                size = (size,)
            if isinstance(size, (tuple, list, torch.Size)) and all(isinstance(n, int) for n in size):
                self.used += math.prod(max(int(n), 0) for n in size)
                if self.used > self.limit:
                    raise _TooLarge(self.used)
        return func(*args, **kwargs)


class _TooLarge(Exception):
    pass


def _build_within_weights(build, config, stages: int, tensors: dict, weights_path: str):
    """``build()``, unless the config cannot fit the stored tensors: a damaged or hostile field.json (width 10**12,
    depth 10**9) must be an error, not a huge allocation or an endless loop. Every layer stores at least one tensor
    (which bounds the layer count), and building may make at most a few times the numbers stored."""
    layers = getattr(config, "depth", 0) * stages
    if not isinstance(layers, int) or layers > len(tensors):
        raise CheckpointError(f"{weights_path}: weights do not match the config ({len(tensors)} tensors stored "
                              f"for {layers} layers)")
    stored = sum(t.numel() for t in tensors.values())
    try:
        with _AllocationBudget(4 * stored + 2 ** 20):
            return build()
    except _TooLarge as exc:
        raise CheckpointError(f"{weights_path}: weights do not match the config (it needs over "
                              f"{_number_text(exc.args[0])} numbers, {stored} stored)") from None
    except (RuntimeError, TypeError, ValueError, OverflowError, MemoryError) as exc:
        raise CheckpointError(f"{weights_path}: cannot build the field its config describes ({_first_line(exc)})") \
            from None


def stage_of_width(saved: SavedField, width: int | None) -> int | None:
    """The stage index whose width is ``width`` (None: the widest); a CheckpointError names the choices."""
    if not isinstance(saved.model, StreamableField):
        if width is not None:
            raise CheckpointError(f"this field is not streamable: it has one width ({saved.config.width})")
        return None
    widths = saved.model.widths
    if width is None:
        return len(widths) - 1
    if width not in widths:
        raise CheckpointError(f"no stage of width {width}; this field has widths {', '.join(map(str, widths))}")
    return widths.index(width)


@torch.no_grad()
def render_field(saved: SavedField, size: int | None = None, width: int | None = None,
                 residual: bool = False) -> torch.Tensor:
    """Evaluate a saved field on a grid whose longer side is ``size`` (default: the trained size).

    For a streamable field, ``width`` picks the sub-network (default: the widest) and ``residual`` returns
    what that width's stage added (its output minus the previous width's; the first stage's output itself).
    Returns values in [-1, 1] (residuals in [-2, 2]) shaped (H, W, C) for images or (N, C) for curves; a
    cropped Local-Global field gives NaN where its partitions were removed.
    """
    stage = stage_of_width(saved, width)
    if residual and stage is None:
        raise CheckpointError("--residual needs a streamable field")
    signal = saved.meta.get("signal", {})
    shape = tuple(signal.get("shape", ()))
    if not shape:
        raise CheckpointError("saved field has no signal shape to render")
    device = next(saved.model.parameters()).device
    if signal.get("kind") == "curve":
        n = int(size or shape[0])
        coords, layout = grid_coords((n,), (1.0,)), (n, -1)
    else:
        h, w = shape
        if size:
            scale = size / max(h, w)
            h, w = max(1, round(h * scale)), max(1, round(w * scale))
        extent = tuple(signal.get("extent") or image_extent(h, w))
        coords, layout = grid_coords((h, w), extent), (h, w, -1)
    coords = coords.to(device)
    if stage is None:
        return evaluate_in_chunks(saved.model, coords).cpu().reshape(layout)
    outputs = evaluate_widths_in_chunks(saved.model, coords, stage)
    values = outputs[stage] - outputs[stage - 1] if residual and stage > 0 else outputs[stage]
    return values.cpu().reshape(layout)

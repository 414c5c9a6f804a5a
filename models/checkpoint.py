"""Saving and loading fields as safetensors (weights) + JSON (config, signal layout, format version).

No pickle anywhere: a checkpoint is safe to open even when it comes from someone else.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch

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
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: not a FieldLab field description")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{meta_path}: invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{meta_path}: format version {meta.get('version')} is newer than this FieldLab "
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
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{meta_path}: invalid field config ({exc})") from None
    try:
        tensors = load_file(weights_path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights_path}: unreadable weights ({exc})") from None
    if architecture == "streamable":
        model = StreamableField(config, stages)
    elif architecture == "local-global":
        model = LocalGlobalField(config)
    elif architecture == "resfield":
        model = ResFieldMLP(config)
    else:
        model = build_field(config)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{weights_path}: weights do not match the config ({first})") from None
    if architecture == "local-global" and model.present_list != list(config.present_partitions):
        raise CheckpointError(f"{weights_path}: the stored partitions do not match the config's 'present' list")
    return SavedField(model.to(device).eval(), config, meta)


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

"""Whole sessions, headless: what the GUI's File → Save / Open session and ``fieldlab session`` share.

A session is the signal (by reference, with the user's file embedded when small), the scene that builds its
runs, every run's training state (models/trainer_state.py) and the view settings. ``open_session`` reads a file
and reloads its signal (slow: call it off the GUI thread); ``restored_runs`` builds the scene's trainers and
puts the saved state into them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .scene_io import scene_from_dict, scene_to_dict
from .scenes import Scene
from .session_file import SessionError, SessionFile, embeddable_files, load_session, save_session
from .signals import Signal, SignalError, load_signal
from .trainer_state import RunsState, StateError, capture_runs, restore_runs
from .training import Trainer

__all__ = ["SignalRef", "OpenedSession", "save_runs_session", "open_session", "restored_runs", "SessionError"]


@dataclass(frozen=True)
class SignalRef:
    """How to load the session's signal again."""

    source: str
    """A sample name ('camera', 'tour', 'torus') or a file / folder path."""
    size: int | None = None
    """Working size (longer side in pixels for images and videos; None: the loader's default)."""
    target: str = "sdf"
    """A 3D shape's target: 'sdf' or 'occupancy'."""

    def load(self, source: str | None = None) -> Signal:
        return load_signal(source or self.source, self.size, True, self.target)


@dataclass(frozen=True)
class OpenedSession:
    path: str
    signal: Signal
    signal_ref: SignalRef
    """The reference as saved (its source is the user's original path)."""
    loaded_from: str
    """Where the signal was actually read: the original, or the copy embedded in the session."""
    scene: Scene
    state: RunsState
    view: dict
    """View settings as saved (time slider, width slider, ...), for the GUI to apply as it can."""
    document: dict


def save_runs_session(path: str, scene: Scene, signal_ref: SignalRef, signal: Signal, state: RunsState,
                      view: dict | None = None) -> int:
    """Write a session file from a captured state; returns its size in bytes."""
    embed = embeddable_files(signal_ref.source)
    document = {
        "signal": {"source": signal_ref.source, "size": signal_ref.size, "target": signal_ref.target,
                   "name": signal.name, "kind": signal.kind, "shape": list(signal.shape),
                   "embedded": "folder" if embed and os.path.isdir(signal_ref.source) else ("file" if embed else None)},
        "scene": scene_to_dict(scene),
        "runs": state.runs,
        "groups": state.groups,
        "view": view or {},
        "step": state.step,
    }
    return save_session(path, document, state.tensors, embed)


def capture_session(path: str, trainers: list[tuple[str, Trainer]], scene: Scene, signal_ref: SignalRef,
                    signal: Signal, view: dict | None = None) -> int:
    """Capture ``trainers`` and save them (headless callers; the GUI captures on its worker thread)."""
    return save_runs_session(path, scene, signal_ref, signal, capture_runs(trainers), view)


def open_session(path: str, extract_to: str | None = None) -> OpenedSession:
    """Read a session file and load its signal. Raises SessionError naming the file and what is wrong."""
    session: SessionFile = load_session(path, extract_to)
    name = os.path.basename(path)
    document = session.document
    try:
        ref_data, scene_data = document["signal"], document["scene"]
        if not isinstance(ref_data, dict):
            raise ValueError("signal must be an object")
        ref = SignalRef(_text(ref_data["source"]), _optional_int(ref_data.get("size")), _text(ref_data.get("target", "sdf")))
        saved_shape = ref_data.get("shape")
        if saved_shape is not None and (not isinstance(saved_shape, list) or not all(
                isinstance(n, int) and not isinstance(n, bool) for n in saved_shape)):
            raise ValueError("signal.shape must be a list of whole numbers")
        embedded = ref_data.get("embedded")
        if embedded not in (None, "file", "folder"):
            raise ValueError(f"unknown signal.embedded {str(embedded)[:20]!r}")
        scene = scene_from_dict(scene_data)
        runs, groups = document["runs"], document.get("groups", [])
        if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs) or not isinstance(groups, list) \
                or not all(isinstance(g, dict) for g in groups):
            raise ValueError("runs and groups must be lists of objects")
        view = document.get("view", {})
        if not isinstance(view, dict):
            raise ValueError("view must be an object")
    except (LookupError, TypeError, ValueError, AttributeError, RecursionError, ArithmeticError) as exc:
        raise SessionError(f"{name}: invalid session description ({str(exc)[:200]})") from None
    source = ref.source
    if session.signal_files and embedded in ("file", "folder"):
        source = session.signal_files[0] if embedded == "file" else os.path.dirname(session.signal_files[0])
    try:
        signal = ref.load(source)
    except (SignalError, ValueError, OSError) as exc:
        raise SessionError(f"{name}: its signal could not be loaded ({str(exc).splitlines()[0]})") from None
    if saved_shape is not None and list(signal.shape) != saved_shape:
        raise SessionError(f"{name}: the signal {ref.source} now loads as {tuple(signal.shape)}, not the saved "
                           f"{tuple(saved_shape)}: it changed since the session was saved")
    return OpenedSession(path, signal, ref, source, scene, RunsState(session.tensors, runs, groups), view, document)


def restored_runs(opened: OpenedSession) -> list[tuple[str, Trainer]]:
    """The scene's trainers with the saved state put back (StateError becomes a SessionError)."""
    name = os.path.basename(opened.path)
    try:
        trainers = opened.scene.build(opened.signal)
    except (ValueError, TypeError, RuntimeError, ArithmeticError, MemoryError, LookupError) as exc:
        raise SessionError(f"{name}: its settings do not build on its signal ({str(exc).splitlines()[0]})") from None
    try:
        return restore_runs(trainers, opened.state)
    except StateError as exc:
        raise SessionError(f"{name}: {exc}") from None


def _text(value) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty text, got {str(value)[:40]!r}")
    return value


def _optional_int(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"invalid signal size {value!r}")
    return value


def tensors_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Bit-for-bit equality of two named tensor sets (tests and the round-trip check of ``fieldlab session``)."""
    return a.keys() == b.keys() and all(_same_bits(a[k], b[k]) for k in a)


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal dtype, shape and bytes (so NaN where the other has the same NaN counts as equal)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    a, b = a.detach().cpu().contiguous(), b.detach().cpu().contiguous()
    if a.dtype == torch.bool or a.element_size() == 1:
        return torch.equal(a, b)
    return torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8))

"""The window's time-lab glue: which defaults a kind of signal wants, and exporting a reconstructed sequence."""
from __future__ import annotations

from dataclasses import replace

from models.scenes import (DEFAULT_FIELD, DEFAULT_SDF_SCENE, DEFAULT_SHAPE_TIME_SCENE, DEFAULT_TIME_SCENE, DEFAULT_TRAIN,
                           Scene)
from models.signals import Signal

from .dialogs import ANIMATION_FILTER, ask_save_path



def signal_family(signal: Signal) -> str:
    """'2d' (images, curves), 'sdf' (3D shapes), 'time-video' or 'time-shape': each has its own default model sizes."""
    if signal.kind == "video":
        return "time-video"
    if signal.kind == "sdf-time":
        return "time-shape"
    return "sdf" if signal.kind == "sdf" else "2d"


def family_defaults(family: str, preset: str = "image") -> Scene:
    """The default scene of a family, keeping ``preset`` where that family has it."""
    if family == "time-video":
        return DEFAULT_TIME_SCENE
    if family == "time-shape":
        return DEFAULT_SHAPE_TIME_SCENE
    if family == "sdf":
        return replace(DEFAULT_SDF_SCENE, preset=preset if preset in ("image", "spectral-bias") else "image")
    return Scene(field=DEFAULT_FIELD, train=DEFAULT_TRAIN, preset=preset if preset not in ("sweep", "time") else "image")


def export_sequence(window, run: int = 0, path: str | None = None, frames: int | None = None) -> None:
    """Render run ``run``'s reconstruction at every frame time into an MP4 or GIF, on the worker thread."""
    worker, signal = window.session.worker, window.session.signal
    if worker is None or signal is None or signal.kind != "video":
        return
    path = path or ask_save_path(window, "Export sequence", ANIMATION_FILTER)
    if path is None:
        return

    def export(trainers) -> str:
        from models.mesh_io import write_animation
        from models.time_render import render_sequence

        label, trainer = trainers[min(run, len(trainers) - 1)]
        space = trainer.signal.coords[trainer.signal.time.rows(0), :-1]
        images = render_sequence(trainer.model, space, trainer.signal.shape[1:], frames or trainer.signal.time.frames)
        return f"{label}: " + write_animation(path, images, trainer.signal.time.fps)

    worker.call(export, edits=False)
    window.statusBar().showMessage(f"rendering the sequence to {path}…", 5000)

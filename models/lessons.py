"""Lessons: saved classroom scenarios that set up a lab and walk through it step by step (pure Python, no Qt).

A lesson is a JSON file (``"format": "fieldlab.lesson"``, ``"version": 1``)::

    {"format": "fieldlab.lesson", "version": 1,
     "title": "Spectral bias", "summary": "Why a plain ReLU MLP stays blurry.",
     "setup": {"sample": "camera", "size": 256, "running": true,
               "scene": {"preset": "spectral-bias", "field": {"width": 128}}},
     "boxes": ["model"],
     "steps": [{"caption": "Three networks of the same size ...", "actions": {"training": "play"}},
               {"caption": "...", "boxes": [], "actions": {"pace_ms": 250, "next_after_step": 100}}]}

``setup.scene`` is read by ``models.scene_io.scene_from_dict`` (missing settings take their defaults). ``boxes``
names the control-panel boxes a step shows (the rest are hidden; a step's own list overrides the lesson's; no
list at all shows every box). A step's ``actions`` run when the step is entered: ``training`` ("play" or
"pause"), ``reset``, ``pace_ms`` (slow motion, 0 = full speed), ``width`` (a stage width of the growth lab, or
"follow"), ``time`` (the time lab's slider, -1 to 1) and ``next_after_step`` (suggest 'Next' once training has
reached that step). Loading is strict: anything unexpected raises ``LessonError``, one line naming the file
and the setting.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from .scene_io import scene_from_dict
from .scenes import Scene
from .sdf_signal import SDF_SHAPES
from .sdf_time import TIME_SHAPES
from .signals import CURVE_SIGNALS, SAMPLE_IMAGES
from .video import VIDEO_SAMPLES

__all__ = ["LESSON_FORMAT", "LESSON_VERSION", "LESSONS_FOLDER", "BOXES", "LAB_BOXES", "LessonError", "StepActions",
           "LessonStep", "Lesson", "load_lesson", "lesson_paths", "list_lessons"]

LESSON_FORMAT = "fieldlab.lesson"
LESSON_VERSION = 1
"""The newest lesson format this FieldLab reads."""
LESSONS_FOLDER = Path(__file__).resolve().parents[1] / "assets" / "lessons"
"""Where the shipped lessons live."""
BOXES = ("signal", "model", "training", "growth", "crop", "sweep", "time")
"""The control panel's boxes, by the names lessons use."""
LAB_BOXES = {"growth": "growth", "crop": "crop", "sweep": "sweep", "time": "time"}
"""Boxes that only one lab shows (box name -> preset)."""
TRAINING_ACTIONS = ("play", "pause")
MAX_PACE_MS = 10_000.0
MAX_CAPTION = 420
"""Characters: a caption is read aloud in a classroom, one to three sentences."""


class LessonError(ValueError):
    """A lesson file that cannot be used; the message is one line naming the file and what is wrong."""


@dataclass(frozen=True)
class StepActions:
    """What happens when a step is entered (None / False: leave it as it is)."""

    training: str | None = None
    """'play' or 'pause'."""
    reset: bool = False
    """Start the session again from its seed."""
    pace_ms: float | None = None
    """Slow motion: one step per this many milliseconds, each shown; 0 = full speed."""
    width: int | str | None = None
    """Growth lab: show this stage width on the width slider, or 'follow' the stage in training."""
    time: float | None = None
    """Time lab: move the time slider to t in [-1, 1]."""
    next_after_step: int | None = None
    """Suggest 'Next' once the session has trained this many steps."""


@dataclass(frozen=True)
class LessonStep:
    caption: str
    """One to three sentences shown in large type."""
    boxes: tuple[str, ...] | None = None
    """Control-panel boxes shown during the step; None: the lesson's own list."""
    actions: StepActions = field(default_factory=StepActions)


@dataclass(frozen=True)
class Lesson:
    title: str
    summary: str
    sample: str
    """The signal: a bundled sample name (models.signals.load_signal)."""
    size: int
    """Working size in pixels (images and videos)."""
    running: bool
    """Whether training runs from the start."""
    scene: Scene
    steps: tuple[LessonStep, ...]
    boxes: tuple[str, ...] | None = None
    """Boxes shown by steps without their own list; None: every box."""
    path: str = ""

    def boxes_at(self, index: int) -> tuple[str, ...] | None:
        """The boxes step ``index`` shows (None: all of them)."""
        step = self.steps[index]
        return step.boxes if step.boxes is not None else self.boxes


def known_samples() -> tuple[str, ...]:
    return tuple(SAMPLE_IMAGES) + tuple(CURVE_SIGNALS) + tuple(SDF_SHAPES) + tuple(VIDEO_SAMPLES) + tuple(TIME_SHAPES)


def load_lesson(path) -> Lesson:
    """Read and check the lesson file at ``path``; LessonError (one line, naming the file) when it is unusable."""
    path = Path(path)
    name = path.name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LessonError(f"{path}: no such lesson file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LessonError(f"{name}: cannot read the file ({_one_line(exc)})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LessonError(f"{name}: not a JSON file ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    try:
        lesson = _lesson_from_dict(data)
    except ValueError as exc:
        raise LessonError(f"{name}: {_one_line(exc)}") from None
    return replace(lesson, path=str(path))


def lesson_paths(folder=None) -> list[Path]:
    """The lesson files in ``folder`` (default: the shipped ones), in file-name order (files start with 01-, 02-...)."""
    folder = Path(folder) if folder is not None else LESSONS_FOLDER
    return sorted(folder.glob("*.json"), key=lambda p: p.name)


def list_lessons(folder=None) -> list[Lesson]:
    """Every lesson in ``folder`` (default: the shipped ones), in a stable order; LessonError on the first bad one."""
    return [load_lesson(path) for path in lesson_paths(folder)]


# -- reading -----------------------------------------------------------------------------------------------
def _lesson_from_dict(data) -> Lesson:
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object at the top, got {_kind(data)}")
    if data.get("format") != LESSON_FORMAT:
        raise ValueError(f"format: expected \"{LESSON_FORMAT}\", got {data.get('format')!r} (not a FieldLab lesson)")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version: expected a whole number >= 1, got {version!r}")
    if version > LESSON_VERSION:
        raise ValueError(f"version {version} is newer than this FieldLab reads (up to {LESSON_VERSION}): "
                         "please update FieldLab")
    _check_keys(data, "", required=("format", "version", "title", "setup", "steps"), optional=("summary", "boxes"))
    title = _text(data["title"], "title")
    summary = _text(data.get("summary", ""), "summary", allow_empty=True)
    setup = data["setup"]
    if not isinstance(setup, dict):
        raise ValueError(f"setup: expected an object, got {_kind(setup)}")
    _check_keys(setup, "setup.", required=("sample", "scene"), optional=("size", "running"))
    sample = _text(setup["sample"], "setup.sample")
    if sample not in known_samples():
        raise ValueError(f"setup.sample: unknown sample {sample!r} (bundled images such as camera, astronaut; "
                         f"{', '.join(CURVE_SIGNALS)}; 3D shapes such as torus; videos {', '.join(VIDEO_SAMPLES)}; "
                         f"moving shapes {', '.join(TIME_SHAPES)})")
    size = setup.get("size", 256)
    if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 2048:
        raise ValueError(f"setup.size: expected a working size in pixels from 16 to 2048, got {size!r}")
    running = setup.get("running", True)
    if not isinstance(running, bool):
        raise ValueError(f"setup.running: expected true or false, got {running!r}")
    try:
        scene = scene_from_dict(setup["scene"])
    except ValueError as exc:
        raise ValueError(f"setup.{exc}") from None
    _check_lab(scene, sample)
    boxes = _boxes(data["boxes"], "boxes", scene) if "boxes" in data else None
    steps = data["steps"]
    if not isinstance(steps, list) or not steps:
        raise ValueError(f"steps: expected a non-empty list of steps, got {_kind(steps)}")
    parsed = tuple(_step(step, f"steps[{i}]", scene) for i, step in enumerate(steps))
    return Lesson(title=title, summary=summary, sample=sample, size=size, running=running, scene=scene,
                  steps=parsed, boxes=boxes)


def _check_lab(scene: Scene, sample: str) -> None:
    """The combinations the window refuses to start (main_window.start_session), caught when the file is read."""
    temporal = sample in VIDEO_SAMPLES or sample in TIME_SHAPES
    if (scene.preset == "time") != temporal:
        raise ValueError(f"setup: the time lab needs a video or a moving shape, and {sample!r} "
                         f"{'is one' if temporal else 'is not'} (preset {scene.preset!r})")
    shape = sample in SDF_SHAPES
    if scene.preset == "sweep" and sample not in SAMPLE_IMAGES:
        raise ValueError(f"setup: the FINER++ sweep needs an image, not {sample!r}")
    if scene.preset == "crop" and not (sample in SAMPLE_IMAGES or shape):
        raise ValueError(f"setup: the crop lab needs an image or a 3D shape, not {sample!r}")
    if scene.preset == "crop" and scene.crop.extend and shape:
        raise ValueError("setup: the extension experiment needs an image, not a 3D shape")
    if scene.preset == "growth" and scene.growth.spatial and shape:
        raise ValueError("setup: spatial growing reveals image columns; it needs an image, not a 3D shape")


def _step(data, where: str, scene: Scene) -> LessonStep:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object with a caption, got {_kind(data)}")
    _check_keys(data, f"{where}.", required=("caption",), optional=("boxes", "actions"))
    caption = _text(data["caption"], f"{where}.caption")
    if len(caption) > MAX_CAPTION:
        raise ValueError(f"{where}.caption: {len(caption)} characters; keep a caption to 1-3 sentences "
                         f"(at most {MAX_CAPTION} characters)")
    boxes = _boxes(data["boxes"], f"{where}.boxes", scene) if "boxes" in data else None
    actions = _actions(data.get("actions", {}), f"{where}.actions", scene)
    return LessonStep(caption=caption, boxes=boxes, actions=actions)


def _actions(data, where: str, scene: Scene) -> StepActions:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {_kind(data)}")
    _check_keys(data, f"{where}.", optional=("training", "reset", "pace_ms", "width", "time", "next_after_step"))
    values = {}
    if "training" in data:
        if data["training"] not in TRAINING_ACTIONS:
            raise ValueError(f"{where}.training: expected \"play\" or \"pause\", got {data['training']!r}")
        values["training"] = data["training"]
    if "reset" in data:
        if not isinstance(data["reset"], bool):
            raise ValueError(f"{where}.reset: expected true or false, got {data['reset']!r}")
        values["reset"] = data["reset"]
    if "pace_ms" in data:
        pace = data["pace_ms"]
        if not _number(pace) or not 0 <= pace <= MAX_PACE_MS:
            raise ValueError(f"{where}.pace_ms: expected milliseconds per step from 0 (full speed) to "
                             f"{MAX_PACE_MS:g}, got {pace!r}")
        values["pace_ms"] = float(pace)
    if "width" in data:
        width = data["width"]
        if scene.preset != "growth":
            raise ValueError(f"{where}.width: the width slider belongs to the growth lab (preset is {scene.preset!r})")
        if width != "follow" and (isinstance(width, bool) or width not in scene.widths):
            raise ValueError(f"{where}.width: expected \"follow\" or one of the stage widths "
                             f"{', '.join(map(str, scene.widths))}, got {width!r}")
        values["width"] = width
    if "time" in data:
        t = data["time"]
        if scene.preset != "time":
            raise ValueError(f"{where}.time: the time slider belongs to the time lab (preset is {scene.preset!r})")
        if not _number(t) or not -1.0 <= t <= 1.0:
            raise ValueError(f"{where}.time: expected a time from -1 to 1, got {t!r}")
        values["time"] = float(t)
    if "next_after_step" in data:
        step = data["next_after_step"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ValueError(f"{where}.next_after_step: expected a step number >= 1, got {step!r}")
        values["next_after_step"] = step
    return StepActions(**values)


def _boxes(data, where: str, scene: Scene) -> tuple[str, ...]:
    if not isinstance(data, list) or not all(isinstance(b, str) for b in data):
        raise ValueError(f"{where}: expected a list of box names ({', '.join(BOXES)}), got {data!r}")
    for box in data:
        if box not in BOXES:
            raise ValueError(f"{where}: unknown box {box!r}; choose from {', '.join(BOXES)}")
        lab = LAB_BOXES.get(box)
        if lab is not None and lab != scene.preset:
            raise ValueError(f"{where}: the {box!r} box belongs to the {lab!r} lab, not {scene.preset!r}")
    return tuple(dict.fromkeys(data))


def _check_keys(data: dict, prefix: str, required=(), optional=()) -> None:
    unknown = sorted(set(data) - set(required) - set(optional))
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise ValueError(f"unknown key{plural} {', '.join(prefix + k for k in unknown)} "
                         f"(expected {', '.join(prefix + k for k in (*required, *optional))})")
    missing = [k for k in required if k not in data]
    if missing:
        raise ValueError(f"missing {', '.join(prefix + k for k in missing)}")


def _text(value, where: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or not (allow_empty or value.strip()):
        raise ValueError(f"{where}: expected {'text' if allow_empty else 'non-empty text'}, got {value!r}")
    return " ".join(value.split())


def _number(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) < 1e300 if isinstance(value, int) else math.isfinite(value)  # 10**400 is no float


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def _one_line(exc: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip()
    return text or type(exc).__name__

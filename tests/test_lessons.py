"""Lesson files (models/lessons.py): the shipped lessons load and train; bad files fail with one clear line."""
from __future__ import annotations

import copy
import json
import math
import re

import pytest

from models.lessons import LESSON_VERSION, LESSONS_FOLDER, Lesson, LessonError, lesson_paths, list_lessons, load_lesson
from models.signals import load_signal

SHIPPED = lesson_paths()

TINY = {
    "format": "fieldlab.lesson",
    "version": 1,
    "title": "Tiny growth",
    "summary": "A test lesson.",
    "setup": {"sample": "camera", "size": 32, "running": False,
              "scene": {"preset": "growth", "field": {"width": 16, "depth": 2}, "train": {"batch_size": 0},
                        "widths": [8, 16], "growth": {"stage_steps": 5}}},
    "boxes": ["model"],
    "steps": [
        {"caption": "First step.", "actions": {"training": "pause", "pace_ms": 100}},
        {"caption": "Second step.", "boxes": ["growth", "training"], "actions": {"next_after_step": 6}},
        {"caption": "Third step.", "actions": {"width": 8, "reset": True}},
    ],
}


def _sentences(text: str) -> int:
    return len([s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text.strip()) if s])


def _write(tmp_path, data, name="lesson.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_the_shipped_lessons_cover_every_classroom_lab_in_a_stable_order():
    lessons = list_lessons()
    assert [lesson.path for lesson in lessons] == [str(p) for p in sorted(LESSONS_FOLDER.glob("*.json"))]
    assert len(lessons) >= 5
    assert {"spectral-bias", "growth", "crop", "sweep", "time"} <= {lesson.scene.preset for lesson in lessons}
    assert len({lesson.title for lesson in lessons}) == len(lessons)
    time_lesson = next(lesson for lesson in lessons if lesson.scene.preset == "time")
    assert time_lesson.sample == "tour"
    for lesson in lessons:
        assert 3 <= len(lesson.steps) <= 6, lesson.title
        assert lesson.summary
        for step in lesson.steps:
            assert 1 <= _sentences(step.caption) <= 3, step.caption


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_a_shipped_lesson_builds_its_lab_and_trains_two_steps(path, one_torch_thread):
    lesson = load_lesson(path)
    assert isinstance(lesson, Lesson) and lesson.path == str(path)
    signal = load_signal(lesson.sample, lesson.size)
    trainers = lesson.scene.build(signal)
    assert trainers
    for _ in range(2):
        for _, trainer in trainers:
            trainer.step()
    for label, trainer in trainers:
        trainer.flush()
        assert trainer.step_count == 2, label
        assert all(math.isfinite(v) for v in trainer.loss_values), label
    first = trainers[0][1]  # the lab's own field trains (a baseline may wait, e.g. for the extension)
    assert len(first.loss_values) == 2 and not first.waiting


def test_boxes_and_actions_are_read_with_their_defaults(tmp_path):
    lesson = load_lesson(_write(tmp_path, TINY))
    assert lesson.sample == "camera" and lesson.size == 32 and lesson.running is False
    assert lesson.scene.preset == "growth" and lesson.scene.widths == (8, 16)
    assert lesson.scene.field.depth == 2 and lesson.scene.field.w0 == 30.0  # missing settings keep their defaults
    assert lesson.boxes_at(0) == ("model",) and lesson.boxes_at(1) == ("growth", "training")
    first, second, third = (step.actions for step in lesson.steps)
    assert first.training == "pause" and first.pace_ms == 100.0 and not first.reset
    assert second.next_after_step == 6 and second.training is None and second.pace_ms is None
    assert third.width == 8 and third.reset
    without_boxes = copy.deepcopy(TINY)
    del without_boxes["boxes"]
    assert load_lesson(_write(tmp_path, without_boxes, "all.json")).boxes_at(0) is None  # None: every box


def test_list_lessons_sorts_a_folder_by_file_name_and_stops_at_a_bad_file(tmp_path):
    for name, title in (("02-b.json", "Second"), ("01-a.json", "First")):
        data = copy.deepcopy(TINY)
        data["title"] = title
        _write(tmp_path, data, name)
    assert [lesson.title for lesson in list_lessons(tmp_path)] == ["First", "Second"]
    _write(tmp_path, "{", "03-broken.json")
    with pytest.raises(LessonError, match="03-broken.json: not a JSON file"):
        list_lessons(tmp_path)


def _changed(path: str, value):
    """TINY with the key at ``path`` ('setup.scene.preset', 'steps.0.actions.width') set to ``value`` (deleted if
    value is ...)."""
    data = copy.deepcopy(TINY)
    *parents, last = path.split(".")
    target = data
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is ...:
        del target[last]
    else:
        target[int(last) if isinstance(target, list) else last] = value
    return data


BAD = [
    ("not-json", "{\"format\": \"fieldlab.lesson\",", "not a JSON file"),
    ("a-list", [1, 2], "expected a JSON object"),
    ("foreign-format", _changed("format", "fieldlab.session"), "format"),
    ("newer-version", _changed("version", LESSON_VERSION + 1), "please update FieldLab"),
    ("version-text", _changed("version", "1"), "version"),
    ("unknown-top-key", _changed("author", "me"), "unknown key author"),
    ("missing-steps", _changed("steps", ...), "missing steps"),
    ("title-number", _changed("title", 3), "title"),
    ("empty-steps", _changed("steps", []), "steps"),
    ("step-not-object", _changed("steps", ["just a caption"]), "steps[0]"),
    ("unknown-step-key", _changed("steps.0.note", "x"), "steps[0].note"),
    ("unknown-action", _changed("steps.0.actions.zoom", 2), "steps[0].actions.zoom"),
    ("caption-too-long", _changed("steps.0.caption", "Word " * 120), "steps[0].caption"),
    ("unknown-sample", _changed("setup.sample", "mona-lisa"), "setup.sample"),
    ("size-bool", _changed("setup.size", True), "setup.size"),
    ("running-text", _changed("setup.running", "yes"), "setup.running"),
    ("unknown-preset", _changed("setup.scene.preset", "magic"), "unknown preset 'magic'"),
    ("width-text", _changed("setup.scene.field.width", "wide"), "setup.scene.field.width"),
    ("unknown-scene-key", _changed("setup.scene.colour", "red"), "setup.scene: unknown setting colour"),
    ("time-lab-on-an-image", _changed("setup.scene.preset", "time"), "time lab needs a video"),
    ("unknown-box", _changed("boxes", ["model", "hat"]), "unknown box 'hat'"),
    ("box-of-another-lab", _changed("boxes", ["sweep"]), "belongs to the 'sweep' lab"),
    ("width-not-a-stage", _changed("steps.2.actions.width", 48), "steps[2].actions.width"),
    ("time-outside-the-time-lab", _changed("steps.0.actions.time", 0.5), "steps[0].actions.time"),
    ("negative-pace", _changed("steps.0.actions.pace_ms", -5), "steps[0].actions.pace_ms"),
    ("training-verb", _changed("steps.0.actions.training", "run"), "steps[0].actions.training"),
    ("next-after-zero", _changed("steps.1.actions.next_after_step", 0), "steps[1].actions.next_after_step"),
]


@pytest.mark.parametrize("content, expected", [(c, e) for _, c, e in BAD], ids=[name for name, _, _ in BAD])
def test_a_bad_lesson_file_gives_one_clear_line_naming_file_and_key(tmp_path, content, expected):
    path = _write(tmp_path, content, "bad-lesson.json")
    with pytest.raises(LessonError) as info:
        load_lesson(path)
    message = str(info.value)
    assert message.startswith("bad-lesson.json: "), message
    assert expected in message, message
    assert "\n" not in message and len(message) < 400, message


def test_a_missing_or_unreadable_file_is_a_clear_error(tmp_path):
    with pytest.raises(LessonError, match=r"nowhere\.json: no such lesson file"):
        load_lesson(tmp_path / "nowhere.json")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(LessonError, match=r"^binary\.json: cannot read the file"):
        load_lesson(binary)
    with pytest.raises(LessonError, match="cannot read the file"):
        load_lesson(tmp_path)  # a folder

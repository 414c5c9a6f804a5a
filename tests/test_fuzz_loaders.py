"""Fuzzing every loader (issue 8): hundreds of bad inputs, each refused by the loader's own error class with one
line naming the file or the setting, within a time limit; never a raw IndexError/struct.error/OSError, never a
hang. The inputs come from tests/fuzz_inputs.py (deterministic, seeded).

* ``load_signal`` (files, image folders, mesh folders) raises ``SignalError``;
* ``load_field`` (checkpoint folders: field.json + field.safetensors) raises ``CheckpointError``;
* ``scene_from_dict`` (scene documents) raises ``ValueError`` naming the setting (``scene.field.w0``).

Inputs that may still be valid (bytes flipped, keys deleted, values retyped) must load or raise that error.
Each loader's case count is printed and recorded (``record_property``); the last test checks the total.
"""
from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field

import pytest
import torch

import fuzz_inputs as F
from models.checkpoint import CheckpointError, load_field, save_field
from models.fields import FieldConfig, build_field
from models.scene_io import scene_from_dict, scene_to_dict
from models.sdf_signal import sdf_target
from models.signals import SignalError, load_signal

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CASE_SECONDS = 15.0
"""Time limit of one case (a refusal takes milliseconds; the slowest legitimate load here about a second)."""
MIN_TOTAL_CASES = 300
COUNTS: dict[str, int] = {}
"""Cases run per loader, filled by the tests below (the last test checks the total)."""


@dataclass
class Tally:
    """The cases one test ran and the problems it found (reported all at once, not just the first)."""

    loader: str
    refused: int = 0
    loaded: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def cases(self) -> int:
        return self.refused + self.loaded

    def report(self, record_property) -> None:
        COUNTS[self.loader] = COUNTS.get(self.loader, 0) + self.cases
        print(f"\n{self.loader}: {self.cases} cases ({self.refused} refused, {self.loaded} loaded)")
        record_property(f"cases:{self.loader}", self.cases)
        assert not self.problems, f"{len(self.problems)} of {self.cases} cases misbehaved:\n" + "\n".join(
            self.problems[:40])


def run_limited(function, seconds: float = CASE_SECONDS):
    """(value, exception, seconds) of ``function()`` run on a daemon thread; exception is TimeoutError if it is
    still running after ``seconds`` (the thread is left behind: a hang is a failure anyway)."""
    box: dict = {}

    def target():
        try:
            box["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - every escape is what this test looks for
            box["exc"] = exc

    start = time.perf_counter()
    thread = threading.Thread(target=target, name="fuzz-case", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        return None, TimeoutError(f"still running after {seconds:.0f} s"), seconds
    return box.get("value"), box.get("exc"), time.perf_counter() - start


def check(tally: Tally, description: str, function, error: type, names: tuple[str, ...], may_load: bool = False,
          exact: type | None = None, accept=None):
    """Run one case: it must raise ``error`` (exactly ``exact`` when given) with one non-empty line containing
    every string of ``names``; or, when ``may_load`` (or ``accept(value)`` says the value is right), load.
    Returns the loaded value or None."""
    value, exc, seconds = run_limited(function)
    if exc is None:
        tally.loaded += 1
        if may_load or (accept is not None and accept(value)):
            return value
        tally.problems.append(f"{description}: loaded instead of raising {error.__name__}")
        return None
    tally.refused += 1
    message = str(exc)
    if isinstance(exc, TimeoutError):
        tally.problems.append(f"{description}: HANG ({message})")
    elif not isinstance(exc, error) or (exact is not None and type(exc) is not exact):
        tally.problems.append(f"{description}: raw {type(exc).__name__} escaped: {message[:200]}")
    elif "\n" in message or not message.strip():
        tally.problems.append(f"{description}: the message is not one line: {message[:300]!r}")
    elif not all(_mentions(message, name) for name in names):
        tally.problems.append(f"{description}: the message does not name {names}: {message[:200]}")
    return None


def _mentions(message: str, name: str) -> bool:
    """``name`` is in ``message``, literally or in words ('stage_bias_ranges' as 'stage bias range')."""
    return name in message or name.replace("_", " ").rstrip("s") in message.replace("_", " ")


def _name(path: str) -> str:
    return os.path.basename(os.path.normpath(path))


# ---- load_signal: files ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    folder = tmp_path_factory.mktemp("valid")
    paths = F.valid_samples(str(folder))
    paths["text"] = F.write(str(folder), "notes.txt", F.TEXT)
    return paths


IMAGE_KINDS, VIDEO_KINDS = ("png", "jpeg"), ("mp4", "gif")
MESH_KINDS = ("ply", "ply-ascii", "obj", "stl", "off", "glb", "gltf")


def _cross_family_renames() -> list[tuple[str, str]]:
    """(kind, suffix) pairs that give a wrong-type file: content of one family (image, video, mesh, text) under
    another's suffix, and meshes under another mesh format's suffix. (A JPEG named .png or an MKV named .mp4
    loads: the decoders read the content.)"""
    families = {**{k: "image" for k in IMAGE_KINDS}, "mp4": "video", "gif": "gif", **{k: "mesh" for k in MESH_KINDS},
                "text": "text"}
    suffix_family = {**{s: "image" for s in F.IMAGE_SUFFIXES}, **{s: "video" for s in F.VIDEO_SUFFIXES},
                     ".gif": "gif", **{s: "mesh" for s in F.MESH_SUFFIXES}}
    same = {("gif", "image"), ("gif", "video")}  # an animated GIF reads as an image (its first frame) and as a video
    pairs = []
    for kind, family in families.items():
        for suffix, other in suffix_family.items():
            own = os.path.splitext({"ply-ascii": "x.ply", "jpeg": "x.jpg"}.get(kind, f"x.{kind}"))[1]
            if suffix == own or (family, other) in same or (family == other and family != "mesh"):
                continue
            if kind.startswith("ply") and suffix == ".ply":
                continue
            pairs.append((kind, suffix))
    return pairs


def _signal(path: str):
    return load_signal(path, 32, frames=8)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_load_signal_refuses_bad_files(tmp_path, samples, record_property):
    tally = Tally("load_signal: files")
    root = str(tmp_path)
    cases = [
        *F.random_bytes_files(os.path.join(root, "random")),
        *F.magic_prefixed_files(os.path.join(root, "magic")),
        *F.zero_size_files(os.path.join(root, "empty")),
        *F.folders_named_like_files(os.path.join(root, "folders")),
        *F.image_headers(os.path.join(root, "headers")),
        *F.renamed_files(os.path.join(root, "renamed"), samples, _cross_family_renames()),
    ]
    for suffix in F.ALL_SUFFIXES:
        cases.append(F.FuzzCase(f"missing file{suffix}", os.path.join(root, f"missing{suffix}")))
    for description, path in cases:
        check(tally, description, lambda p=path: _signal(p), SignalError, (_name(path),))
    tally.report(record_property)
    assert tally.cases >= 300


def _same_signal(reference):
    """A truncated file may load only when the cut lost nothing but a trailer: then it equals the original."""
    def accept(signal) -> bool:
        return (signal is not None and signal.shape == reference.shape
                and torch.equal(signal.values, reference.values))
    return accept


def test_load_signal_refuses_truncated_files(tmp_path, samples, record_property):
    tally = Tally("load_signal: truncated files")
    for kind in ("png", "jpeg", "gif", "mp4", "ply", "glb"):
        is_mesh = kind in MESH_KINDS
        load = (lambda p: sdf_target(p)) if is_mesh else _signal  # a mesh's 200k training samples: 8 s, not needed
        accept = None if is_mesh else _same_signal(_signal(samples[kind]))
        for description, path in F.truncated_copies(str(tmp_path / kind), samples[kind]):
            check(tally, description, lambda p=path, f=load: f(p), SignalError, (_name(path),), accept=accept)
    tally.report(record_property)
    assert tally.refused >= 90, "nearly every cut must be refused (only cuts inside a trailer may load)"


def test_load_signal_survives_flipped_bytes(tmp_path, samples, record_property):
    """Random bytes replaced in real files: load, or a one-line SignalError. Meshes go through ``sdf_target``
    (parsing, normalising, distances and signs) rather than the whole ``load_signal``, whose 200,000 training
    samples take seconds per mesh and add no parsing."""
    tally = Tally("load_signal: flipped bytes")
    for kind, path in samples.items():
        if kind == "text":
            continue
        load = (lambda p: sdf_target(p)) if kind in MESH_KINDS else _signal
        for description, mutated in F.mutated_copies(str(tmp_path / kind), path, seed=1, count=5):
            check(tally, description, lambda p=mutated, f=load: f(p), SignalError, (_name(mutated),), may_load=True)
    tally.report(record_property)


# ---- load_signal: folders ----------------------------------------------------------------------------------------

def test_load_signal_refuses_bad_folders(tmp_path, record_property):
    tally = Tally("load_signal: folders")
    cases = [*F.bad_image_folders(str(tmp_path / "frames")), *F.bad_mesh_folders(str(tmp_path / "meshes"))]
    for description, path in cases:
        check(tally, description, lambda p=path: _signal(p), SignalError, (_name(path),))
    tally.report(record_property)
    assert tally.cases >= 20


# ---- load_field ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("checkpoint") / "valid")
    config = FieldConfig(kind="siren", in_features=2, out_features=1, width=8, depth=2, seed=3)
    save_field(folder, build_field(config), config,
               {"name": "x", "kind": "image", "shape": [8, 8], "channels": 1, "extent": [1.0, 1.0]})
    return folder


def _other_weights(folder: str) -> None:
    """Overwrite a checkpoint's weights with those of a wider field (same tensor names, other shapes)."""
    from safetensors.torch import save_file

    other = build_field(FieldConfig(kind="siren", in_features=2, out_features=1, width=9, depth=2))
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, os.path.join(folder, F.WEIGHTS_FILE))


def test_load_field_refuses_bad_checkpoints(tmp_path, checkpoint, record_property):
    tally = Tally("load_field")
    for description, folder in F.bad_checkpoint_folders(str(tmp_path), checkpoint, make_mismatched=_other_weights):
        check(tally, description, lambda f=folder: load_field(f), CheckpointError, (_name(folder),))
    tally.report(record_property)
    assert tally.cases >= 100


def test_load_field_survives_mutated_checkpoints(tmp_path, checkpoint, record_property):
    tally = Tally("load_field: mutations")
    for description, folder in F.mutated_checkpoint_folders(str(tmp_path), checkpoint):
        check(tally, description, lambda f=folder: load_field(f), CheckpointError, (_name(folder),), may_load=True)
    tally.report(record_property)
    assert tally.refused > tally.cases // 2, "most mutations of a field description break it"


# ---- scene_from_dict ---------------------------------------------------------------------------------------------

def _valid_scenes() -> dict[str, dict]:
    """Documents of the default scenes, plus a growth scene with per-stage bias ranges (an untyped tuple)."""
    from dataclasses import replace

    from models import scenes

    growth_ranges = replace(scenes.DEFAULT_GROWTH_SCENE, activation="finer",
                            stage_bias_ranges=(None, (1.0, 2.0), (2.0, 3.0), (3.0, 4.0)))
    return {name: scene_to_dict(scene) for name, scene in {
        "image": scenes.Scene(field=scenes.DEFAULT_FIELD, train=scenes.DEFAULT_TRAIN),
        "growth": scenes.DEFAULT_GROWTH_SCENE, "growth-ranges": growth_ranges, "crop": scenes.DEFAULT_CROP_SCENE,
        "extend": scenes.DEFAULT_EXTEND_SCENE, "sweep": scenes.DEFAULT_SWEEP_SCENE, "time": scenes.DEFAULT_TIME_SCENE,
    }.items()}


def _every(cases: list, count: int) -> list:
    """``count`` cases spread evenly over ``cases`` (all when there are fewer): keeps the test fast."""
    if len(cases) <= count:
        return cases
    return [cases[round(i * (len(cases) - 1) / (count - 1))] for i in range(count)]


def _setting(description: str) -> str:
    """The last key named by a fuzz_inputs JSON case ('field.w0 -> nan' -> 'w0')."""
    path = description.split(" -> ")[0].split(" (")[0].removeprefix("unknown key ").removeprefix("delete ")
    return [part for part in path.replace("[", ".").replace("]", "").split(".") if part and not part.isdigit()][-1]


UNTYPED = "stage_bias_ranges["
"""Numbers inside the scene's one untyped tuple: see test_scene_from_dict_known_faults."""


def _in_untyped_tuple(path: tuple) -> bool:
    return F.path_text(path).startswith(UNTYPED)


def test_scene_from_dict_refuses_bad_scenes(record_property):
    tally = Tally("scene_from_dict")
    for name, valid in _valid_scenes().items():
        huge_floats = [F.FuzzCase(f"{F.path_text(path)} -> 10**400", F.replaced(valid, path, 10 ** 400))
                       for path in F.json_paths(valid) if isinstance(F.get_at(valid, path), float)
                       and not _in_untyped_tuple(path)]
        must_fail = [*F.json_not_objects(valid), *F.json_unknown_keys(valid), *_every(list(F.json_non_finite(valid)), 40),
                     *_every(huge_floats, 8)]
        for description, document in must_fail:
            names = ("scene",) if description.startswith("the document") else ("scene", _setting(description))
            check(tally, f"{name}: {description}", lambda d=document: scene_from_dict(d), ValueError, names,
                  exact=ValueError)
        may_load = [*_every(list(F.json_deletions(valid)), 25), *_every(list(F.json_type_changes(valid)), 60),
                    *_every([c for c in F.json_huge_numbers(valid) if not c.description.startswith(UNTYPED)], 30)]
        for description, document in may_load:
            check(tally, f"{name}: {description}", lambda d=document: scene_from_dict(d), ValueError, ("scene",),
                  may_load=True, exact=ValueError)
    tally.report(record_property)
    assert tally.cases >= 500


@pytest.mark.parametrize("kind", ["deep", "numbers in untyped tuples"])
def test_scene_from_dict_deep_lists_and_odd_numbers(kind, record_property):
    tally = Tally(f"scene_from_dict: {kind}")
    valid = _valid_scenes()
    if kind == "deep":
        cases = [c for name in ("image", "growth") for c in F.json_deep_nesting(valid[name], depth=5000)]
    else:
        cases = [F.FuzzCase(f"stage_bias_ranges -> [[{v}, 1.0]] in an image scene",
                            {**valid["image"], "stage_bias_ranges": [[v, 1.0]]}) for v in (math.nan, math.inf)]
        ranges = valid["growth-ranges"]
        cases += [F.FuzzCase(f"growth scene: {F.path_text(path)} -> 10**400", F.replaced(ranges, path, 10 ** 400))
                  for path in F.json_paths(ranges) if _in_untyped_tuple(path) and isinstance(F.get_at(ranges, path), float)]
    for description, document in cases:
        check(tally, description, lambda d=document: scene_from_dict(d), ValueError, ("scene",), exact=ValueError)
    tally.report(record_property)


# ---- the generic zip generators (for archive loaders such as session files) ----------------------------------------

def _strict_zip_reader(path: str, required: tuple[str, ...], json_member: str) -> dict:
    """A reference archive loader: a regular zip, safe member names, sizes checked before reading, the required
    members present, the JSON member a JSON object; every failure a ValueError."""
    import json
    import zipfile
    import zlib

    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            for info in infos:
                parts = info.filename.replace("\\", "/").split("/")
                if info.filename.startswith("/") or ".." in parts or ":" in info.filename:
                    raise ValueError(f"unsafe member name {info.filename!r}")
                if info.file_size > 1_000_000:
                    raise ValueError(f"{info.filename} is too large")
            members = {info.filename: archive.read(info) for info in infos}
        missing = [name for name in required if name not in members]
        if missing:
            raise ValueError(f"missing {missing[0]}")
        document = json.loads(members[json_member].decode("utf-8"))
        if not isinstance(document, dict):
            raise ValueError("not an object")
        return members
    except ValueError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, RuntimeError,
            NotImplementedError, RecursionError, KeyError) as exc:  # what zipfile raises for damaged archives
        raise ValueError(f"{os.path.basename(path)}: {type(exc).__name__}") from None


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_zip_generators_break_a_strict_reader(tmp_path, record_property):
    """The archive generators make what they promise: a strict reader refuses every must-fail archive, and the
    may-load ones either load or are refused (never crash the generator or the reader with another error)."""
    import zipfile

    valid = str(tmp_path / "valid.fieldlab")
    with zipfile.ZipFile(valid, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("session.json", '{"format": "fieldlab.session", "version": 1, "scene": {"preset": "image"}}')
        archive.writestr("field.safetensors", b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    required = ("session.json", "field.safetensors")
    _strict_zip_reader(valid, required, "session.json")
    tally = Tally("zip generators")
    root = str(tmp_path / "bad")
    must_fail = [*F.zip_not_zips(root), *F.zip_truncations(root, valid), *F.zip_dropped_members(root, valid),
                 *F.zip_bad_json_members(root, valid, "session.json"), *F.zip_traversal_members(root, valid),
                 *F.zip_huge_members(root, valid, bomb_bytes=8 * 2 ** 20), *F.zip_unsupported_members(root, valid),
                 *(c for c in F.zip_random_members(root, valid) if c.description.startswith("session.json"))]
    for description, path in must_fail:
        check(tally, description, lambda p=path: _strict_zip_reader(p, required, "session.json"), ValueError, ())
    for description, path in [*F.zip_byte_flips(root, valid), *F.zip_duplicate_members(root, valid)]:
        check(tally, description, lambda p=path: _strict_zip_reader(p, required, "session.json"), ValueError, (),
              may_load=True)
    tally.report(record_property)
    COUNTS.pop(tally.loader, None)  # not a FieldLab loader: not in the total
    assert tally.cases >= 60


# ---- all loaders -------------------------------------------------------------------------------------------------

def test_total_case_count(record_property):
    """Runs last (file order): the total over the loader tests above, when they all ran in this session."""
    needed = {"load_signal: files", "load_signal: truncated files", "load_signal: flipped bytes",
              "load_signal: folders", "load_field", "load_field: mutations", "scene_from_dict"}
    if not needed <= set(COUNTS):
        pytest.skip(f"only some loader tests ran: {sorted(COUNTS)}")
    total = sum(COUNTS[name] for name in needed)
    by_loader = {"load_signal": sum(n for k, n in COUNTS.items() if k.startswith("load_signal")),
                 "load_field": sum(n for k, n in COUNTS.items() if k.startswith("load_field")),
                 "scene_from_dict": sum(n for k, n in COUNTS.items() if k.startswith("scene_from_dict"))}
    print(f"\nfuzz cases per loader: {by_loader}; total {sum(by_loader.values())}")
    for loader, count in by_loader.items():
        record_property(f"total:{loader}", count)
    record_property("total", sum(by_loader.values()))
    assert total >= MIN_TOTAL_CASES

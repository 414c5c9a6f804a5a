"""Fuzzing the session-file and lesson loaders with tests/fuzz_inputs.py: every damaged, foreign, oversized or
hostile input gives the loader's own one-line error (or, for harmless mutations, loads), never another exception,
never a hang, and never runs code."""
from __future__ import annotations

import json
import os
import threading
import zipfile
from dataclasses import replace

import pytest

import fuzz_inputs as fz
from models import scenes
from models.lessons import LessonError, load_lesson
from models.session_file import SessionError
from models.sessions import SignalRef, capture_session, open_session, restored_runs

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.filterwarnings("ignore:Duplicate name")]
CASE_SECONDS = 30.0
DOCUMENT_STRIDE = int(os.environ.get("FIELDLAB_FUZZ_STRIDE", "8"))
"""Every n-th of the ~2000 corrupted session.json documents (FIELDLAB_FUZZ_STRIDE=1 runs all of them)."""
MUST_FAIL = ("zip_not_zips", "zip_truncations", "zip_huge_members", "zip_unsupported_members")


def _within_time(function):
    """(result, exception) of ``function()``, failing the test if it takes longer than CASE_SECONDS."""
    box: dict = {}

    def run():
        try:
            box["result"] = function()
        except BaseException as exc:  # noqa: BLE001 - inspected by the caller
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(CASE_SECONDS)
    assert not thread.is_alive(), "the loader hung"
    return box.get("result"), box.get("error")


@pytest.fixture(scope="module")
def valid_session(tmp_path_factory):
    folder = tmp_path_factory.mktemp("valid")
    scene = replace(scenes.Scene(preset="spectral-bias"), field=replace(scenes.Scene().field, width=8))
    ref = SignalRef("sinusoids")  # loads in a millisecond: the cases test the file, not the image decoder
    signal = ref.load()
    trainers = scene.build(signal)
    for _ in range(2):
        for _, trainer in trainers:
            trainer.step()
    path = str(folder / "valid.fieldlab")
    capture_session(path, trainers, scene, ref, signal)
    return path


def _open(path: str, extract: str):
    return restored_runs(open_session(path, extract_to=extract))


def _generators(folder: str, valid: str):
    with zipfile.ZipFile(valid) as archive:
        document = json.loads(archive.read("session.json"))
    yield "zip_not_zips", fz.zip_not_zips(folder, suffix=".fieldlab")
    yield "zip_truncations", fz.zip_truncations(folder, valid)
    yield "zip_byte_flips", fz.zip_byte_flips(folder, valid)
    yield "zip_dropped_members", fz.zip_dropped_members(folder, valid)
    yield "zip_random_members", fz.zip_random_members(folder, valid)
    yield "zip_bad_json_members", fz.zip_bad_json_members(folder, valid, "session.json")
    yield "zip_traversal_members", fz.zip_traversal_members(folder, valid)
    yield "zip_duplicate_members", fz.zip_duplicate_members(folder, valid)
    yield "zip_huge_members", fz.zip_huge_members(folder, valid)
    yield "zip_unsupported_members", fz.zip_unsupported_members(folder, valid)
    documents = list(fz.corrupt_json_documents(document))[::DOCUMENT_STRIDE]
    yield "corrupt session.json documents", (fz.FuzzCase(d, _with_document(folder, valid, i, doc))
                                             for i, (d, doc) in enumerate(documents))


def _with_document(folder: str, valid: str, index: int, document) -> str:
    path = os.path.join(folder, f"doc{index}.fieldlab")
    with zipfile.ZipFile(valid) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "session.json":
                try:
                    data = json.dumps(document).encode()
                except (ValueError, RecursionError):
                    data = b"{"  # a document JSON itself cannot write: unreadable text instead
            target.writestr(info.filename, data)
    return path


def test_fuzz_session_files(valid_session, tmp_path, record_property):
    counts, loaded = {}, 0
    extract = str(tmp_path / "extract")
    for name, cases in _generators(str(tmp_path), valid_session):
        for description, path in cases:
            result, error = _within_time(lambda p=path: _open(p, extract))
            where = f"{name}: {description}"
            if error is not None:
                assert isinstance(error, SessionError), f"{where}: {type(error).__name__}: {error}"
                message = str(error)
                assert "\n" not in message and os.path.basename(path) in message, f"{where}: {message!r}"
            else:
                assert name not in MUST_FAIL, f"{where}: loaded"
                loaded += 1
            counts[name] = counts.get(name, 0) + 1
    for root, _, files in os.walk(str(tmp_path)):  # what a '../evil' member would have written (extraction is below)
        for file in files:
            path = os.path.join(root, file)
            if not file.endswith(".fieldlab") and os.path.getsize(path) == 5:
                assert open(path, "rb").read() != b"evil\n", f"a member was written outside its folder: {path}"
    total = sum(counts.values())
    print(f"\nsession files: {total} bad inputs ({loaded} harmless mutations loaded): {counts}")
    record_property("session_cases", total)
    assert total >= 150


def test_fuzz_lesson_files(tmp_path, record_property):
    from models.lessons import lesson_paths

    with open(lesson_paths()[0], encoding="utf-8") as handle:
        valid = json.load(handle)
    cases = 0
    for index, (description, document) in enumerate(fz.corrupt_json_documents(valid)):
        path = tmp_path / f"lesson{index}.json"
        try:
            path.write_text(json.dumps(document))
        except (ValueError, RecursionError):
            path.write_text("{")
        _, error = _within_time(lambda p=path: load_lesson(str(p)))
        if error is not None:
            assert isinstance(error, LessonError), f"{description}: {type(error).__name__}: {error}"
            assert "\n" not in str(error) and path.name in str(error), f"{description}: {error}"
        cases += 1
    for description, path in fz.random_bytes_files(str(tmp_path), suffixes=(".json",)):
        _, error = _within_time(lambda p=path: load_lesson(str(p)))
        assert isinstance(error, LessonError), f"{description}: {error!r}"
        cases += 1
    print(f"\nlesson files: {cases} bad inputs")
    record_property("lesson_cases", cases)
    assert cases >= 100


def test_session_files_never_run_code(valid_session, tmp_path):
    marker = str(tmp_path / "code-ran")
    with zipfile.ZipFile(valid_session) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
        document = json.loads(members["session.json"])
    paths = []
    for index, (_, payload) in enumerate(fz.pickle_payloads(marker)):
        for member in ("state.safetensors", "signal/camera.png"):
            path = tmp_path / f"payload{index}-{member.replace('/', '_')}.fieldlab"
            with zipfile.ZipFile(path, "w") as archive:
                for name, data in {**members, member: payload}.items():
                    archive.writestr(name, data)
            paths.append(path)
    for index, (_, hostile) in enumerate(fz.code_in_json_documents(document, marker)):
        path = tmp_path / f"json{index}.fieldlab"
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in {**members, "session.json": json.dumps(hostile).encode()}.items():
                archive.writestr(name, data)
        paths.append(path)
    for path in paths:
        _within_time(lambda p=path: _open(str(p), str(tmp_path / "x")))
    assert len(paths) >= 30 and not os.path.exists(marker)

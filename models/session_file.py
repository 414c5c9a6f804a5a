"""Session files (``.fieldlab``): a whole session in one zip of JSON + safetensors, written atomically.

Layout (format version 1)::

    session.json          what was trained: signal reference, scene, every run's plain-data state, view settings
    state.safetensors     every tensor: weights of every run (all widths, partitions, sweep members), Adam
                          moments, sampler states, cropped partitions' stash
    signal/<name>         the user's signal file(s), when small enough to travel with the session

Why opening one cannot run code: the reader only ever calls ``json.loads`` (plain data), safetensors' parser
(a JSON header plus raw little-endian arrays; no objects) and, for an embedded signal, the same image / video /
mesh decoders as File → Open. Nothing is unpickled or imported, member names are never used as paths (an
embedded file is written under a name made from its basename only), and sizes are checked before reading, so a
zip bomb or a '../' member is refused.

Saving writes ``<file>.partial-<pid>`` next to the target, flushes it to disk and renames it over the target in
one ``os.replace``: a crash or kill mid-save leaves the previous file untouched.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass

import torch

from .file_format import check_format

FORMAT = "fieldlab.session"
FORMAT_VERSION = 1
SUFFIX = ".fieldlab"
DOCUMENT = "session.json"
TENSORS = "state.safetensors"
SIGNAL_FOLDER = "signal/"
MAX_EMBEDDED_BYTES = 64 * 1024 * 1024
"""Signal files up to this size in total are embedded; bigger ones are referenced by path only."""
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024
"""Unpacked size above which a file is refused before anything is read (a zip bomb; a session of 2 GB holds a
model of about 150 million parameters with its Adam moments)."""


class SessionError(ValueError):
    """A session file cannot be read (or written); one line for the user, naming the file."""


@dataclass(frozen=True)
class SessionFile:
    document: dict
    tensors: dict[str, torch.Tensor]
    signal_files: tuple[str, ...]
    """Paths of the embedded signal file(s) after extraction (empty when the signal is referenced only)."""


def save_session(path: str, document: dict, tensors: dict[str, torch.Tensor], signal_paths: list[str] = ()) -> int:
    """Write a session file atomically; returns its size in bytes. ``signal_paths``: files to embed."""
    from safetensors.torch import save

    document = {"format": FORMAT, "version": FORMAT_VERSION, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **document}
    try:
        text = json.dumps(document, indent=1, allow_nan=False)
    except ValueError as exc:
        raise SessionError(f"{path}: the session holds a value JSON cannot store ({exc})") from None
    payload = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    partial = os.path.join(folder, f".{os.path.basename(path)}.partial-{os.getpid()}")
    try:
        with open(partial, "wb") as raw, zipfile.ZipFile(raw, "w") as archive:
            archive.writestr(zipfile.ZipInfo(DOCUMENT, date_time=_now()), text, compress_type=zipfile.ZIP_DEFLATED)
            archive.writestr(zipfile.ZipInfo(TENSORS, date_time=_now()), payload, compress_type=zipfile.ZIP_STORED)
            for source in signal_paths:
                archive.write(source, SIGNAL_FOLDER + os.path.basename(source), compress_type=zipfile.ZIP_STORED)
            archive.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, path)
    except OSError as exc:
        raise SessionError(f"{path}: could not write the session ({exc.strerror or exc})") from None
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return os.path.getsize(path)


def _now() -> tuple:
    return time.localtime()[:6]


def load_session(path: str, extract_to: str | None = None) -> SessionFile:
    """Read and check a session file (does not build anything). Raises SessionError with a clear message."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    name = os.path.basename(path) or path
    if not os.path.exists(path):
        raise SessionError(f"{path}: no such file")
    if os.path.isdir(path):
        raise SessionError(f"{path}: is a folder, not a session file")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise SessionError(f"{name}: not a FieldLab session (not a zip archive: {exc})") from None
    with archive:
        members = {info.filename: info for info in archive.infolist()}
        for required in (DOCUMENT, TENSORS):
            if required not in members:
                raise SessionError(f"{name}: not a FieldLab session (no {required})")
        total = sum(info.file_size for info in members.values())
        if total > MAX_TOTAL_BYTES or members[DOCUMENT].file_size > MAX_DOCUMENT_BYTES:
            raise SessionError(f"{name}: implausibly large contents ({total / 1e9:.1f} GB unpacked): refused")
        document = _read_document(archive, name)
        try:
            tensors = load(_read_member(archive, TENSORS, name))
        except (SafetensorError, ValueError, RuntimeError, OverflowError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SessionError(f"{name}: the weights are damaged ({first})") from None
        embedded = [m for m in members if m.startswith(SIGNAL_FOLDER) and not m.endswith("/")]
        signal_files = _extract(archive, embedded, name, extract_to) if embedded else ()
    return SessionFile(document, tensors, signal_files)


def _read_member(archive: zipfile.ZipFile, member: str, name: str) -> bytes:
    try:
        data = archive.read(member)
        if len(data) != archive.getinfo(member).file_size:
            raise zipfile.BadZipFile(f"{len(data)} bytes where the header says {archive.getinfo(member).file_size}")
        return data
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError, NotImplementedError) as exc:
        raise SessionError(f"{name}: damaged or truncated ({member}: {exc})") from None
    except Exception as exc:  # zlib.error and friends from a corrupted stream
        raise SessionError(f"{name}: damaged or truncated ({member}: {type(exc).__name__}: {exc})") from None


def _read_document(archive: zipfile.ZipFile, name: str) -> dict:
    raw = _read_member(archive, DOCUMENT, name)
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise SessionError(f"{name}: the session description is damaged ({str(exc).splitlines()[0]})") from None
    check_format(document, FORMAT, FORMAT_VERSION, name, SessionError, "session")
    return document


def _reject_constant(token: str):
    raise ValueError(f"non-finite number {token}")


def _extract(archive: zipfile.ZipFile, members: list[str], name: str, extract_to: str | None) -> tuple[str, ...]:
    """Embedded signal files, written under their basenames into a folder keyed by their contents' hash."""
    contents = {}
    for member in members:
        parts = member.replace("\\", "/").split("/")
        base = parts[-1]
        if ".." in parts or member.startswith("/") or not base or base.startswith("."):
            raise SessionError(f"{name}: refusing an embedded file named {member!r}")
        contents[base] = _read_member(archive, member, name)
    digest = hashlib.sha256(b"".join(hashlib.sha256(contents[k]).digest() for k in sorted(contents))).hexdigest()[:16]
    folder = os.path.join(extract_to or os.path.join(tempfile.gettempdir(), "fieldlab-signals"), digest)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for base, data in sorted(contents.items()):
        target = os.path.join(folder, base)
        if not (os.path.isfile(target) and os.path.getsize(target) == len(data)):
            with open(target + ".partial", "wb") as handle:
                handle.write(data)
            os.replace(target + ".partial", target)
        paths.append(target)
    return tuple(paths)


def embeddable_files(source: str) -> list[str]:
    """The files to embed for signal ``source``: itself, or a folder's files; [] for samples or too big."""
    if os.path.isfile(source):
        files = [source]
    elif os.path.isdir(source):
        files = sorted(os.path.join(source, f) for f in os.listdir(source)
                       if os.path.isfile(os.path.join(source, f)) and not f.startswith("."))
    else:
        return []
    return files if sum(os.path.getsize(f) for f in files) <= MAX_EMBEDDED_BYTES else []

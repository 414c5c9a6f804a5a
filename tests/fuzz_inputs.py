"""Deterministic generators of bad inputs for the loaders' reliability tests (issue 8).

Every generator yields ``FuzzCase(description, target)`` pairs (unpack them as ``for description, target in
...``): ``target`` is a path the generator wrote under the folder it was given, or a plain object (JSON
documents). The same seed gives the same bytes everywhere: the random streams are numpy PCG64 generators seeded
from the seed and a fixed salt per generator, never from the clock or ``hash()``.

Two kinds of generator, and the name says which:

* ``bad_*``, ``random_*``, ``magic_*``, ``zero_*``, ``image_headers``, ``corrupt_json_texts``,
  ``json_unknown_keys``, ``json_non_finite``, ``json_deep_nesting``, ``json_not_objects``, ``zip_not_zips``: inputs
  that no loader may accept; a loader must raise its own error class. ``truncated_copies`` too, except that a cut
  inside a trailer (PNG's IEND, GIF's terminator, MP4's last atom) can leave every pixel readable: then the loader
  must give exactly the original (tests/test_fuzz_loaders.py checks that).
* ``mutated_*``, ``unusual_json_texts``, ``json_deletions``, ``json_type_changes``, ``json_huge_numbers``,
  ``zip_byte_flips``, ``zip_duplicate_members``: inputs that may still be valid (a flipped byte in a timestamp, a
  deleted key that has a default); a loader must load them or raise its own error class, never anything else.
  Whether the other zip generators must fail depends on the format (a dropped member that is optional loads): see
  each docstring. ``corrupt_json_documents`` and ``corrupt_zip_archives`` chain every generator of their kind.

Generic building blocks (for any loader, including ones added later):
  files:   random_bytes_files, magic_prefixed_files, truncated_copies, mutated_copies, zero_size_files,
           folders_named_like_files, renamed_files
  JSON:    json_deletions, json_type_changes, json_unknown_keys, json_non_finite, json_huge_numbers,
           json_deep_nesting, json_not_objects, corrupt_json_documents (all of them); as bytes: corrupt_json_texts,
           unusual_json_texts (MAY load)
  zips:    zip_not_zips, zip_truncations, zip_byte_flips, zip_dropped_members, zip_random_members,
           zip_bad_json_members, zip_traversal_members, zip_duplicate_members, zip_huge_members,
           zip_unsupported_members, corrupt_zip_archives (all of them)
  code:    pickle_payloads (pickles, torch.save, .npy, YAML that create a marker file when loaded carelessly),
           code_in_json_documents (__reduce__ / py/object / !!python entries)
  helpers: json_paths, get_at, replaced, path_text, cut_points, rng, write
Specific to FieldLab's loaders: valid_samples (real PNG/JPEG/GIF/MP4/PLY/GLB/... to start from), image_headers
(PNG/JPEG/GIF/BMP/TIFF headers claiming huge or zero sizes), bad_image_folders, bad_mesh_folders,
bad_checkpoint_folders, mutated_checkpoint_folders.
"""
from __future__ import annotations

import copy
import io
import json
import math
import os
import shutil
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".bmp")
VIDEO_SUFFIXES = (".gif", ".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v")
MESH_SUFFIXES = (".obj", ".ply", ".stl", ".off", ".glb", ".gltf")
ALL_SUFFIXES = IMAGE_SUFFIXES + VIDEO_SUFFIXES + MESH_SUFFIXES
"""Every suffix some loader dispatches on."""


class FuzzCase(NamedTuple):
    description: str
    target: Any
    """A path (str) the generator wrote, or an object (a JSON document)."""


def rng(seed: int, salt: str) -> np.random.Generator:
    """A random stream fixed by ``seed`` and ``salt`` (crc32, not ``hash()``, which changes per process)."""
    return np.random.default_rng([int(seed), zlib.crc32(salt.encode())])


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:60]


def write(folder: str, name: str, data: bytes) -> str:
    """``data`` into ``folder/name`` (folders made as needed); returns the path."""
    path = os.path.join(folder, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def _fresh_dir(folder: str, name: str) -> str:
    path = os.path.join(folder, name)
    if os.path.exists(path):
        shutil.rmtree(path)
    os.makedirs(path)
    return path


def cut_points(size: int) -> list[int]:
    """Where to truncate a file of ``size`` bytes: inside the magic number and the first headers, at fractions of
    the file, and a few bytes before its end (where trailers and indexes live)."""
    points = {1, 2, 4, 8, 12, 16, 24, 33, 64, 100, size // 8, size // 4, size // 2, 3 * size // 4,
              size - 64, size - 16, size - 8, size - 2, size - 1}
    return sorted(p for p in points if 0 < p < size)


# ---- valid samples to start from -------------------------------------------------------------------------------

def _pattern(height: int, width: int, frames: int = 1) -> np.ndarray:
    t = np.arange(frames)[:, None, None]
    y, x = np.mgrid[0:height, 0:width]
    red = 128 + 90 * np.sin(2 * np.pi * (x + 2.0 * t) / 12.0)
    green = 128 + 90 * np.sin(2 * np.pi * (y - 1.5 * t) / 10.0)
    blue = np.broadcast_to(40 + 6.0 * t, red.shape)
    return np.stack([red, green, blue], axis=-1).round().astype(np.uint8)


def write_png(path: str, array: np.ndarray | None = None) -> str:
    from PIL import Image

    Image.fromarray(_pattern(24, 32)[0] if array is None else array).save(path, format="PNG")
    return path


def write_jpeg(path: str) -> str:
    from PIL import Image

    Image.fromarray(_pattern(24, 32)[0]).save(path, format="JPEG", quality=90)
    return path


def write_gif(path: str, frames: int = 4) -> str:
    from PIL import Image

    images = [Image.fromarray(f) for f in _pattern(16, 16, frames)]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=80, loop=0)
    return path


def write_mp4(path: str, frames: int = 8, size: int = 16) -> str:
    import av

    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        for image in _pattern(size, size, frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def write_mesh(path: str, offset: float = 0.0) -> str:
    """A small closed mesh (an icosphere, 80 faces) in the format of ``path``'s suffix (trimesh's exporters)."""
    import trimesh

    mesh = trimesh.creation.icosphere(subdivisions=1, radius=0.5)
    mesh.apply_translation([offset, 0.0, 0.0])
    mesh.export(path)
    return path


def valid_samples(folder: str) -> dict[str, str]:
    """Real files to corrupt, by format: png, jpeg, gif, mp4, ply (binary), ply-ascii, obj, stl, off, glb, gltf."""
    os.makedirs(folder, exist_ok=True)
    paths = {"png": write_png(os.path.join(folder, "valid.png")),
             "jpeg": write_jpeg(os.path.join(folder, "valid.jpg")),
             "gif": write_gif(os.path.join(folder, "valid.gif")),
             "mp4": write_mp4(os.path.join(folder, "valid.mp4"))}
    for kind, name in (("ply", "valid.ply"), ("obj", "valid.obj"), ("stl", "valid.stl"), ("off", "valid.off"),
                       ("glb", "valid.glb")):
        paths[kind] = write_mesh(os.path.join(folder, name))
    import trimesh

    ascii_ply = trimesh.creation.icosphere(subdivisions=1).export(file_type="ply", encoding="ascii")
    paths["ply-ascii"] = write(folder, "valid_ascii.ply", ascii_ply)
    gltf = trimesh.Scene(trimesh.creation.icosphere(subdivisions=1)).export(file_type="gltf", embed_buffers=True)
    paths["gltf"] = write(folder, "valid.gltf", gltf["model.gltf"])
    return paths


# ---- generic file corruptions ----------------------------------------------------------------------------------

def random_bytes_files(folder: str, suffixes=ALL_SUFFIXES, seed: int = 0,
                       sizes=(1, 13, 333, 4096)) -> Iterator[FuzzCase]:
    """Random bytes under every suffix, at several lengths."""
    for suffix in suffixes:
        for size in sizes:
            data = rng(seed, f"random{suffix}{size}").bytes(size)
            name = f"random_{size}{suffix}"
            yield FuzzCase(f"{size} random bytes as {suffix}", write(folder, name, data))


MAGIC = {
    ".png": b"\x89PNG\r\n\x1a\n",
    ".jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    ".gif": b"GIF89a",
    ".bmp": b"BM",
    ".tif": b"II*\x00",
    ".mp4": b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41",
    ".webm": b"\x1a\x45\xdf\xa3",
    ".avi": b"RIFF\x00\x10\x00\x00AVI LIST",
    ".ply": b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
            b"property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n",
    ".obj": b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 ",
    ".off": b"OFF\n3 1 0\n",
    ".stl": b"solid fuzz\n facet normal 0 0 1\n",
    ".glb": b"glTF\x02\x00\x00\x00",
    ".gltf": b'{"asset": {"version": "2.0"}, "buffers": [{"byteLength": 99999, "uri": "data:application/'
             b'octet-stream;base64,AAAA"}], "meshes": [',
}


def magic_prefixed_files(folder: str, seed: int = 0, sizes=(40, 2000)) -> Iterator[FuzzCase]:
    """The right magic number (and a plausible first header) followed by garbage: gets past format sniffing."""
    for suffix, magic in MAGIC.items():
        for size in sizes:
            data = magic + rng(seed, f"magic{suffix}{size}").bytes(size)
            yield FuzzCase(f"{suffix} magic + {size} random bytes", write(folder, f"magic_{size}{suffix}", data))


def truncated_copies(folder: str, valid_path: str, cuts: list[int] | None = None) -> Iterator[FuzzCase]:
    """``valid_path`` cut after each of ``cuts`` bytes (default ``cut_points``), same suffix."""
    with open(valid_path, "rb") as handle:
        data = handle.read()
    stem, suffix = os.path.splitext(os.path.basename(valid_path))
    for cut in cuts if cuts is not None else cut_points(len(data)):
        name = f"{stem}_cut{cut}{suffix}"
        yield FuzzCase(f"{os.path.basename(valid_path)} truncated to {cut} of {len(data)} bytes",
                       write(folder, name, data[:cut]))


def mutated_copies(folder: str, valid_path: str, seed: int = 0, count: int = 8, flips: int = 8) -> Iterator[FuzzCase]:
    """``valid_path`` with ``flips`` random bytes replaced, ``count`` times (MAY still be valid)."""
    with open(valid_path, "rb") as handle:
        data = handle.read()
    stem, suffix = os.path.splitext(os.path.basename(valid_path))
    for k in range(count):
        r = rng(seed, f"flip{stem}{suffix}{k}")
        mutated = bytearray(data)
        for position in r.integers(0, len(data), flips):
            mutated[position] = int(r.integers(0, 256))
        yield FuzzCase(f"{os.path.basename(valid_path)} with {flips} random bytes replaced (#{k})",
                       write(folder, f"{stem}_flip{k}{suffix}", bytes(mutated)))


def zero_size_files(folder: str, suffixes=ALL_SUFFIXES) -> Iterator[FuzzCase]:
    for suffix in suffixes:
        yield FuzzCase(f"zero-byte {suffix} file", write(folder, f"empty{suffix}", b""))


def folders_named_like_files(folder: str, suffixes=ALL_SUFFIXES) -> Iterator[FuzzCase]:
    """Empty folders (and folders holding a text file) whose names end in a file suffix."""
    for suffix in suffixes:
        yield FuzzCase(f"an empty folder named x{suffix}", _fresh_dir(folder, f"dir_empty{suffix}"))
        path = _fresh_dir(folder, f"dir_text{suffix}")
        write(path, "notes.txt", b"not a frame\n")
        yield FuzzCase(f"a folder named x{suffix} holding a text file", path)


def renamed_files(folder: str, sources: dict[str, str], renames: list[tuple[str, str]]) -> Iterator[FuzzCase]:
    """Wrong-type files: ``sources[kind]`` copied under a new suffix, for each (kind, suffix) of ``renames``."""
    os.makedirs(folder, exist_ok=True)
    for kind, suffix in renames:
        path = os.path.join(folder, f"{_slug(kind)}_as{suffix}")
        shutil.copyfile(sources[kind], path)
        yield FuzzCase(f"a {kind} file renamed {suffix}", path)


TEXT = b"Hello! This is a plain text file, not an image, a video or a mesh.\n" * 3


# ---- image headers claiming huge or zero sizes -----------------------------------------------------------------

def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, color_type: int = 0, data: bytes | None = None) -> bytes:
    """A PNG whose IHDR (valid CRC) claims ``width`` x ``height``; the IDAT holds one short scanline unless given."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    idat = zlib.compress(data if data is not None else b"\x00" * 17)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def jpeg_bytes(width: int, height: int) -> bytes:
    """A real 32x24 JPEG whose frame header (SOF0) is patched to claim ``width`` x ``height`` (at most 65535)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(_pattern(24, 32)[0]).save(buffer, format="JPEG", quality=80)
    data = bytearray(buffer.getvalue())
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def gif_bytes(width: int, height: int) -> bytes:
    """A real 16x16 GIF whose screen and image descriptor claim ``width`` x ``height`` (at most 65535)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(_pattern(16, 16)[0]).convert("P").save(buffer, format="GIF")
    data = bytearray(buffer.getvalue())
    struct.pack_into("<HH", data, 6, width, height)
    descriptor = data.find(b"\x2c\x00\x00\x00\x00")  # image separator at (0, 0)
    struct.pack_into("<HH", data, descriptor + 5, width, height)
    return bytes(data)


def bmp_bytes(width: int, height: int) -> bytes:
    """A 24-bit BMP header claiming ``width`` x ``height`` followed by 64 bytes of pixels."""
    pixels = b"\x80" * 64
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    header = struct.pack("<2sIHHI", b"BM", 14 + len(info) + len(pixels), 0, 0, 14 + len(info))
    return header + info + pixels


def tiff_bytes(width: int, height: int) -> bytes:
    """A baseline 8-bit grayscale TIFF (one strip of 64 bytes) claiming ``width`` x ``height``."""
    pixels = b"\x80" * 64
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 0),
            (277, 3, 1), (278, 4, max(height, 1)), (279, 4, len(pixels))]
    ifd_offset = 8
    data_offset = ifd_offset + 2 + 12 * len(tags) + 4
    entries = b""
    for tag, kind, value in tags:
        value = data_offset if tag == 273 else value
        packed = struct.pack("<HI", value, 0)[:4] if kind == 3 else struct.pack("<I", value)
        entries += struct.pack("<HHI", tag, kind, 1) + packed
    return b"II*\x00" + struct.pack("<I", ifd_offset) + struct.pack("<H", len(tags)) + entries + b"\0\0\0\0" + pixels


HUGE_SIZES = ((100_000, 100_000), (65_535, 65_535), (60_000, 2), (2, 60_000), (12_000, 12_000))
"""Claimed sizes: far beyond any decoder's limit, at the formats' limits, long strips, and just above the
decompression-bomb warning level of Pillow (89 Mpx) where it would still decode."""
TINY_SIZES = ((0, 0), (1, 0), (0, 1), (1, 1))


def image_headers(folder: str) -> Iterator[FuzzCase]:
    """PNG/JPEG/GIF/BMP/TIFF files whose headers claim huge or zero-pixel sizes (the data is tiny)."""
    makers = {".png": (png_bytes, 2 ** 31 - 1), ".jpg": (jpeg_bytes, 65_535), ".gif": (gif_bytes, 65_535),
              ".bmp": (bmp_bytes, 2 ** 31 - 1), ".tif": (tiff_bytes, 2 ** 32 - 1)}
    for suffix, (make, limit) in makers.items():
        for width, height in dict.fromkeys((min(w, limit), min(h, limit)) for w, h in HUGE_SIZES + TINY_SIZES):
            yield FuzzCase(f"{suffix} header claiming {width}x{height} px",
                           write(folder, f"claims_{width}x{height}{suffix}", make(width, height)))
    yield FuzzCase(".png header claiming 1x1 RGB", write(folder, "claims_rgb_1x1.png", png_bytes(1, 1, 2, b"\0" * 4)))


# ---- folders of images and of meshes ---------------------------------------------------------------------------

def _frames_folder(folder: str, name: str, frames: dict[str, bytes | np.ndarray]) -> str:
    path = _fresh_dir(folder, name)
    for file_name, content in frames.items():
        if isinstance(content, np.ndarray):
            write_png(os.path.join(path, file_name), content)
        else:
            write(path, file_name, content)
    return path


def bad_image_folders(folder: str, seed: int = 0) -> Iterator[FuzzCase]:
    """Folders of frames that cannot make a video: mixed sizes, non-images under image names, empty or
    unreadable frames, frames too small, only non-image files, nothing at all."""
    frame = _pattern(12, 16)[0]
    noise = rng(seed, "frames").bytes(500)
    cases = {
        "mixed sizes": {"f1.png": frame, "f2.png": frame, "f10.png": _pattern(12, 20)[0]},
        "mixed sizes, rotated": {"a.png": frame, "b.png": np.ascontiguousarray(frame.transpose(1, 0, 2))},
        "a text file named .png": {"f1.png": frame, "f2.png": TEXT},
        "random bytes named .jpg": {"f1.png": frame, "f2.jpg": noise},
        "an empty frame": {"f1.png": frame, "f2.png": b""},
        "a truncated frame": {"f1.png": frame, "f2.png": png_bytes(16, 12, 2)[:40]},
        "a frame claiming 100000x100000 px": {"f1.png": frame, "f2.png": png_bytes(100_000, 100_000)},
        "1-px frames": {"f1.png": frame[:1, :1], "f2.png": frame[:1, :1]},
        "only non-image files": {"notes.txt": TEXT, "clip.mp4": noise, "mesh.obj": b"v 0 0 0\n"},
        "only hidden images": {".f1.png": frame, ".f2.png": frame},
        "nothing": {},
        "a mesh file among the frames": {"f1.png": frame, "f2.png": frame, "f3.tif": b"v 0 0 0\nf 1 1 1\n"},
    }
    for k, (description, frames) in enumerate(cases.items()):
        yield FuzzCase(f"image folder with {description}", _frames_folder(folder, f"frames{k}_{_slug(description)}",
                                                                            frames))
    path = _frames_folder(folder, "frames_unreadable", {"f1.png": frame, "f2.png": frame})
    if os.geteuid() != 0:  # root reads anything: there a frame that is a folder stands in for an unreadable file
        os.chmod(os.path.join(path, "f2.png"), 0)
        yield FuzzCase("image folder with an unreadable frame", path)
    os.symlink(os.path.join(path, "missing.png"), os.path.join(path, "f3.png"))
    os.symlink(os.path.join(path, "loop.png"), os.path.join(path, "loop.png"))
    if os.geteuid() == 0:
        write(path, "f2.png", TEXT)
        yield FuzzCase("image folder with a dangling link, a link loop and a text frame", path)


def bad_mesh_folders(folder: str, seed: int = 0) -> Iterator[FuzzCase]:
    """Folders of mesh frames with one bad frame (corrupt, truncated, empty, another format, no faces), or
    meshes that all collapse to a point."""
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=1, radius=0.5)
    glb_bytes = sphere.export(file_type="glb")
    ply_bytes = sphere.export(file_type="ply")
    obj_text = sphere.export(file_type="obj").encode()
    bad_frames = {
        "random bytes": ("f2.ply", rng(seed, "meshframe").bytes(700)),
        "a truncated GLB": ("f2.glb", glb_bytes[: len(glb_bytes) // 2]),
        "a truncated PLY": ("f2.ply", ply_bytes[: len(ply_bytes) - 100]),
        "an empty OBJ": ("f2.obj", b""),
        "a PNG named .obj": ("f2.obj", png_bytes(8, 8)),
        "a point cloud (no faces)": ("f2.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\n"),
        "faces referring to missing vertices": ("f2.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n"),
        "NaN vertices": ("f2.obj", b"v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"),
        "text named .stl": ("f2.stl", TEXT),
    }
    for k, (description, (name, data)) in enumerate(bad_frames.items()):
        path = _fresh_dir(folder, f"meshes{k}_{_slug(description)}")
        write(path, "f1.obj", obj_text)
        write(path, name, data)
        write(path, "f3.obj", obj_text)
        yield FuzzCase(f"mesh folder with {description} as one frame", path)
    path = _fresh_dir(folder, "meshes_collapsed")
    for k in range(3):
        write(path, f"f{k}.obj", b"v 0.5 0.5 0.5\nv 0.5 0.5 0.5\nv 0.5 0.5 0.5\nf 1 2 3\n")
    yield FuzzCase("mesh folder whose meshes all collapse to one point", path)


# ---- JSON documents --------------------------------------------------------------------------------------------

def json_paths(document, prefix=()) -> Iterator[tuple]:
    """Every path (tuple of keys and list indices) into a JSON document, parents before children."""
    if isinstance(document, dict):
        for key, value in document.items():
            yield prefix + (key,)
            yield from json_paths(value, prefix + (key,))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield prefix + (index,)
            yield from json_paths(value, prefix + (index,))


def path_text(path: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "(document)"


def get_at(document, path: tuple):
    """The value at ``path`` (as ``json_paths`` gives) in a JSON document."""
    for key in path:
        document = document[key]
    return document


def replaced(document, path: tuple, value):
    """A deep copy of ``document`` with the value at ``path`` replaced by ``value``."""
    out = copy.deepcopy(document)
    if not path:
        return value
    get_at(out, path[:-1])[path[-1]] = value
    return out


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def json_deletions(valid: dict) -> Iterator[FuzzCase]:
    """``valid`` with one key deleted, for every key at every level (MAY load: keys with defaults)."""
    for path in json_paths(valid):
        if isinstance(path[-1], str):
            out = copy.deepcopy(valid)
            del get_at(out, path[:-1])[path[-1]]
            yield FuzzCase(f"delete {path_text(path)}", out)


TYPE_SAMPLES = {"null": None, "true": True, "zero": 0, "1.5": 1.5, "text": "text", "empty list": [], "empty object": {}}


def _json_type(value) -> str:
    return {bool: "bool", int: "number", float: "number", str: "text", list: "list", dict: "object"}.get(
        type(value), "null")


def json_type_changes(valid: dict, per_path: int = 3, seed: int = 0) -> Iterator[FuzzCase]:
    """Every value replaced by up to ``per_path`` values of other JSON types (MAY load: optional settings)."""
    for path in json_paths(valid):
        current = _json_type(get_at(valid, path))
        options = [(name, value) for name, value in TYPE_SAMPLES.items() if _json_type(value) != current]
        picks = rng(seed, "retype" + path_text(path)).permutation(len(options))[:per_path]
        for index in sorted(picks):
            name, value = options[index]
            yield FuzzCase(f"{path_text(path)} ({current}) -> {name}", replaced(valid, path, copy.deepcopy(value)))


def json_unknown_keys(valid: dict) -> Iterator[FuzzCase]:
    """An unknown key added to every object (strict schemas must refuse it)."""
    for path in ((),) + tuple(json_paths(valid)):
        if isinstance(get_at(valid, path), dict):
            out = copy.deepcopy(valid)
            get_at(out, path)["no_such_setting"] = 1
            yield FuzzCase(f"unknown key {path_text(path + ('no_such_setting',))}", out)


def json_non_finite(valid: dict) -> Iterator[FuzzCase]:
    """NaN, +inf and -inf in place of every number (JSON has none; Python's json reads and writes them)."""
    for path in json_paths(valid):
        if _is_number(get_at(valid, path)):
            for value in (math.nan, math.inf, -math.inf):
                yield FuzzCase(f"{path_text(path)} -> {value}", replaced(valid, path, value))


HUGE_NUMBERS = (10 ** 400, -(10 ** 18), 2 ** 63, 1e308, -1e308, 1e-320)


def json_huge_numbers(valid: dict) -> Iterator[FuzzCase]:
    """Every number replaced by huge, tiny and negative ones (MAY load where the schema has no bound)."""
    for path in json_paths(valid):
        if _is_number(get_at(valid, path)):
            for value in HUGE_NUMBERS:
                shown = "10**400" if value == 10 ** 400 else repr(value)
                yield FuzzCase(f"{path_text(path)} -> {shown}", replaced(valid, path, value))


def nested_list(depth: int):
    """[[[...]]] ``depth`` levels deep, built without recursion."""
    root = current = []
    for _ in range(depth - 1):
        inner = []
        current.append(inner)
        current = inner
    return root


def json_deep_nesting(valid: dict, depth: int = 100_000) -> Iterator[FuzzCase]:
    """A list nested ``depth`` levels deep in place of each top-level value, and as the whole document
    (recursive readers hit Python's recursion limit)."""
    for key in valid:
        yield FuzzCase(f"{key} -> a list nested {depth} deep", replaced(valid, (key,), nested_list(depth)))
    deep: dict = {}
    current = deep
    for _ in range(2000):
        current["x"] = {}
        current = current["x"]
    yield FuzzCase("the document nested 2000 objects deep", deep)


def json_not_objects(valid: dict) -> Iterator[FuzzCase]:
    """Documents that are not an object at all."""
    for name, value in (("null", None), ("true", True), ("a number", 42), ("text", "text"), ("a list", []),
                        ("the document in a list", [copy.deepcopy(valid)])):
        yield FuzzCase(f"the document is {name}", value)


def corrupt_json_documents(valid: dict, seed: int = 0) -> Iterator[FuzzCase]:
    """Every JSON-document corruption above, in order (MAY load: deletions, type changes and huge numbers)."""
    yield from json_not_objects(valid)
    yield from json_unknown_keys(valid)
    yield from json_non_finite(valid)
    yield from json_deep_nesting(valid)
    yield from json_deletions(valid)
    yield from json_type_changes(valid, seed=seed)
    yield from json_huge_numbers(valid)


def corrupt_json_texts(valid: dict) -> Iterator[FuzzCase]:
    """Bytes of a JSON file that no reader accepts (targets are bytes): broken syntax, bytes that are not UTF-8
    (``json.loads(bytes)`` raises UnicodeDecodeError for them, not JSONDecodeError), nesting deeper than the
    recursion limit (RecursionError), a number with more digits than Python converts (plain ValueError)."""
    text = json.dumps(valid, indent=1).encode()
    for cut in (1, len(text) // 3, len(text) // 2, len(text) - 1):
        yield FuzzCase(f"JSON text truncated to {cut} of {len(text)} bytes", text[:cut])
    yield FuzzCase("empty text", b"")
    yield FuzzCase("whitespace only", b" \n\t ")
    yield FuzzCase("trailing garbage", text + b" }")
    yield FuzzCase("a second document after the first", text + text)
    yield FuzzCase("Latin-1 bytes in a string", text.replace(b"{", b'{"caf\xe9": 1, ', 1))
    yield FuzzCase("NUL bytes", text[: len(text) // 2] + b"\0\0\0" + text[len(text) // 2:])
    yield FuzzCase("single quotes", text.replace(b'"', b"'"))
    yield FuzzCase("a comment", b"// settings\n" + text)
    yield FuzzCase("a list nested 100000 deep", b"[" * 100_000 + b"]" * 100_000)
    yield FuzzCase("objects nested 100000 deep", b'{"a":' * 100_000 + b"1" + b"}" * 100_000)
    yield FuzzCase("a 5000-digit number", text.replace(b"{", b'{"n": ' + b"7" * 5000 + b", ", 1))


def unusual_json_texts(valid: dict) -> Iterator[FuzzCase]:
    """JSON bytes that some readers accept (MAY load): a byte-order mark and UTF-16 (``json.loads(bytes)`` detects
    both; text opened as UTF-8 does not), NaN / Infinity / 1e999 in place of the first number (Python's json reads
    them; the value must then be checked), duplicate keys (the last wins)."""
    text = json.dumps(valid, indent=1).encode()
    yield FuzzCase("a byte-order mark", b"\xef\xbb\xbf" + text)
    yield FuzzCase("UTF-16", json.dumps(valid).encode("utf-16"))
    if valid:
        key = next(iter(valid))
        yield FuzzCase(f"{key} given twice, first as garbage",
                       text.replace(b"{", b"{" + json.dumps(key).encode() + b': "garbage", ', 1))
    first_number = next((p for p in json_paths(valid) if _is_number(get_at(valid, p))), None)
    if first_number is not None:
        for token in (b"1e999", b"-1e999", b"NaN", b"Infinity"):
            document = replaced(valid, first_number, "@@@")
            yield FuzzCase(f"{path_text(first_number)} written as {token.decode()}",
                           json.dumps(document).encode().replace(b'"@@@"', token))


# ---- zip archives ----------------------------------------------------------------------------------------------

def _members(valid_zip: str) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(valid_zip) as archive:
        return [(info, archive.read(info)) for info in archive.infolist()]


def _write_zip(path: str, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            if isinstance(name, zipfile.ZipInfo):
                archive.writestr(copy.copy(name), data)
            else:
                archive.writestr(name, data)
    return path


def _zip_name(folder: str, valid_zip: str, tag: str) -> str:
    stem, suffix = os.path.splitext(os.path.basename(valid_zip))
    return os.path.join(folder, f"{stem}_{_slug(tag)}{suffix}")


def zip_not_zips(folder: str, suffix: str = ".zip", seed: int = 0) -> Iterator[FuzzCase]:
    """Files under the archive's suffix that are no zip at all: empty, random bytes, a PNG, text, a folder; and a
    valid zip holding nothing."""
    yield FuzzCase(f"zero-byte {suffix}", write(folder, f"empty{suffix}", b""))
    yield FuzzCase(f"random bytes as {suffix}", write(folder, f"random{suffix}", rng(seed, "notzip").bytes(3000)))
    yield FuzzCase(f"the zip magic + random bytes as {suffix}",
                   write(folder, f"magic{suffix}", b"PK\x03\x04" + rng(seed, "zipmagic").bytes(3000)))
    yield FuzzCase(f"a PNG renamed {suffix}", write(folder, f"image{suffix}", png_bytes(8, 8)))
    yield FuzzCase(f"text renamed {suffix}", write(folder, f"text{suffix}", TEXT))
    yield FuzzCase(f"a folder named x{suffix}", _fresh_dir(folder, f"folder{suffix}"))
    yield FuzzCase(f"an empty zip as {suffix}", _write_zip(os.path.join(folder, f"nothing{suffix}"), []))


def zip_truncations(folder: str, valid_zip: str) -> Iterator[FuzzCase]:
    """The archive cut at ``cut_points``: the central directory at the end is lost or damaged."""
    yield from truncated_copies(folder, valid_zip)


def zip_byte_flips(folder: str, valid_zip: str, seed: int = 0, count: int = 12) -> Iterator[FuzzCase]:
    """Random bytes replaced (MAY load: a flipped timestamp or comment byte changes nothing)."""
    yield from mutated_copies(folder, valid_zip, seed=seed, count=count, flips=4)


def zip_dropped_members(folder: str, valid_zip: str) -> Iterator[FuzzCase]:
    """One member left out, for each member (must fail for required members)."""
    members = _members(valid_zip)
    for info, _ in members:
        rest = [(i, d) for i, d in members if i.filename != info.filename]
        yield FuzzCase(f"{os.path.basename(valid_zip)} without {info.filename}",
                       _write_zip(_zip_name(folder, valid_zip, f"no_{info.filename}"), rest))


def zip_random_members(folder: str, valid_zip: str, seed: int = 0, size: int = 2000) -> Iterator[FuzzCase]:
    """Each member's content replaced by random bytes, and by nothing (must fail for members that are parsed)."""
    members = _members(valid_zip)
    for info, _ in members:
        for tag, data in (("random", rng(seed, "member" + info.filename).bytes(size)), ("empty", b"")):
            rebuilt = [(i, data if i.filename == info.filename else d) for i, d in members]
            yield FuzzCase(f"{info.filename} replaced by {'random bytes' if data else 'nothing'}",
                           _write_zip(_zip_name(folder, valid_zip, f"{tag}_{info.filename}"), rebuilt))


def zip_bad_json_members(folder: str, valid_zip: str, member: str) -> Iterator[FuzzCase]:
    """The JSON member ``member`` replaced by each of ``corrupt_json_texts`` of its own content (must fail)."""
    members = _members(valid_zip)
    valid = json.loads(dict((i.filename, d) for i, d in members)[member])
    for k, (description, data) in enumerate(corrupt_json_texts(valid)):
        rebuilt = [(i, data if i.filename == member else d) for i, d in members]
        yield FuzzCase(f"{member}: {description}", _write_zip(_zip_name(folder, valid_zip, f"json{k}"), rebuilt))


TRAVERSAL_NAMES = ("../evil.txt", "../../evil.txt", "/tmp/evil_absolute.txt", "a/../../evil.txt", "..\\evil.txt",
                   "C:/evil.txt", "./../evil.txt")


def zip_traversal_members(folder: str, valid_zip: str) -> Iterator[FuzzCase]:
    """An extra member whose name escapes the extraction folder ('../evil', absolute paths, drive letters); and
    each real member renamed so. A loader must refuse them or ignore them, and never write outside its folder."""
    members = _members(valid_zip)
    for k, name in enumerate(TRAVERSAL_NAMES):
        extra = members + [(zipfile.ZipInfo(name), b"evil\n")]
        yield FuzzCase(f"extra member {name!r}", _write_zip(_zip_name(folder, valid_zip, f"evil{k}"), extra))
    for info, _ in members:
        renamed = [(zipfile.ZipInfo("../" + i.filename) if i.filename == info.filename else i, d) for i, d in members]
        yield FuzzCase(f"{info.filename} stored as ../{info.filename}",
                       _write_zip(_zip_name(folder, valid_zip, f"up_{info.filename}"), renamed))


def zip_duplicate_members(folder: str, valid_zip: str, seed: int = 0) -> Iterator[FuzzCase]:
    """Each member stored twice, the second copy random bytes (zipfile reads the last one)."""
    members = _members(valid_zip)
    for info, _ in members:
        twice = members + [(zipfile.ZipInfo(info.filename), rng(seed, "dup" + info.filename).bytes(500))]
        yield FuzzCase(f"{info.filename} stored twice", _write_zip(_zip_name(folder, valid_zip, f"dup_{info.filename}"),
                                                                  twice))


def _patch_sizes(data: bytearray, member: str, claimed: int) -> None:
    """Set the uncompressed size of ``member`` in its local header and central directory entry (32-bit fields)."""
    name = member.encode()
    position = 0
    while (position := data.find(b"PK\x03\x04", position)) >= 0:
        if data[position + 30: position + 30 + len(name)] == name:
            struct.pack_into("<I", data, position + 22, claimed)
        position += 4
    position = 0
    while (position := data.find(b"PK\x01\x02", position)) >= 0:
        if data[position + 46: position + 46 + len(name)] == name:
            struct.pack_into("<I", data, position + 24, claimed)
        position += 4


def zip_huge_members(folder: str, valid_zip: str, bomb_bytes: int = 64 * 2 ** 20,
                     claimed: int = 0xFFFFFFF0) -> Iterator[FuzzCase]:
    """Per member: a zip bomb (``bomb_bytes`` of zeros, deflated to ~1/1000), and the real content with headers
    claiming ``claimed`` bytes uncompressed. A loader must check sizes before reading (must fail)."""
    members = _members(valid_zip)
    os.makedirs(folder, exist_ok=True)
    for info, _ in members:
        path = _zip_name(folder, valid_zip, f"bomb_{info.filename}")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for other, data in members:
                if other.filename != info.filename:
                    archive.writestr(other, data)
            bomb = zipfile.ZipInfo(info.filename)
            bomb.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(bomb, "w", force_zip64=True) as handle:
                chunk = bytes(2 ** 20)
                for _ in range(max(1, bomb_bytes // len(chunk))):
                    handle.write(chunk)
        yield FuzzCase(f"{info.filename} inflating to {bomb_bytes // 2 ** 20} MiB of zeros", path)
        with open(valid_zip, "rb") as handle:
            data = bytearray(handle.read())
        _patch_sizes(data, info.filename, claimed)
        yield FuzzCase(f"{info.filename} whose headers claim {claimed} bytes",
                       write(folder, os.path.basename(_zip_name(folder, valid_zip, f"claims_{info.filename}")),
                             bytes(data)))


def zip_unsupported_members(folder: str, valid_zip: str) -> Iterator[FuzzCase]:
    """Per member: marked encrypted, and stored with an unknown compression method (zipfile raises
    RuntimeError / NotImplementedError for these: a loader must turn them into its own error)."""
    members = _members(valid_zip)
    for info, _ in members:
        for tag, patch in (("encrypted", lambda d, p: struct.pack_into("<H", d, p, d[p] | 0x1)),
                           ("method 99", None)):
            path = _zip_name(folder, valid_zip, f"{tag}_{info.filename}")
            _write_zip(path, members)
            with open(path, "rb") as handle:
                data = bytearray(handle.read())
            name = info.filename.encode()
            for signature, name_at, flags_at, method_at in ((b"PK\x03\x04", 30, 6, 8), (b"PK\x01\x02", 46, 8, 10)):
                position = 0
                while (position := data.find(signature, position)) >= 0:
                    if data[position + name_at: position + name_at + len(name)] == name:
                        if patch is not None:
                            patch(data, position + flags_at)
                        else:
                            struct.pack_into("<H", data, position + method_at, 99)
                    position += 4
            yield FuzzCase(f"{info.filename} {tag}", write(folder, os.path.basename(path), bytes(data)))


def corrupt_zip_archives(folder: str, valid_zip: str, seed: int = 0,
                         json_members: tuple[str, ...] = ()) -> Iterator[FuzzCase]:
    """Every zip corruption above, from one valid archive (see each generator for which MAY load)."""
    suffix = os.path.splitext(valid_zip)[1] or ".zip"
    yield from zip_not_zips(os.path.join(folder, "not_zips"), suffix, seed)
    yield from zip_truncations(os.path.join(folder, "truncated"), valid_zip)
    yield from zip_dropped_members(os.path.join(folder, "dropped"), valid_zip)
    yield from zip_random_members(os.path.join(folder, "random"), valid_zip, seed)
    for member in json_members:
        yield from zip_bad_json_members(os.path.join(folder, "json"), valid_zip, member)
    yield from zip_traversal_members(os.path.join(folder, "traversal"), valid_zip)
    yield from zip_duplicate_members(os.path.join(folder, "duplicates"), valid_zip, seed)
    yield from zip_huge_members(os.path.join(folder, "huge"), valid_zip)
    yield from zip_unsupported_members(os.path.join(folder, "unsupported"), valid_zip)
    yield from zip_byte_flips(os.path.join(folder, "flipped"), valid_zip, seed)


# ---- checkpoint folders ----------------------------------------------------------------------------------------

WEIGHTS_FILE, META_FILE = "field.safetensors", "field.json"


_KEEP = object()


def _checkpoint_copy(folder: str, valid: str, name: str, meta: Any = _KEEP, meta_bytes: bytes | None = None,
                     weights: bytes | None = None) -> str:
    path = os.path.join(folder, name)
    if os.path.exists(path):
        shutil.rmtree(path)
    shutil.copytree(valid, path)
    if meta is not _KEEP or meta_bytes is not None:
        data = meta_bytes if meta_bytes is not None else json.dumps(meta).encode()
        write(path, META_FILE, data)
    if weights is not None:
        write(path, WEIGHTS_FILE, weights)
    return path


def safetensors_bytes(header: dict, data: bytes = b"", header_length: int | None = None) -> bytes:
    """A safetensors file: 8-byte little-endian header length, the JSON header, then the data."""
    text = json.dumps(header).encode()
    length = len(text) if header_length is None else header_length
    return struct.pack("<Q", length) + text + data


def bad_checkpoint_folders(folder: str, valid: str, seed: int = 0,
                           make_mismatched: Callable[[str], None] | None = None) -> Iterator[FuzzCase]:
    """Copies of the checkpoint folder ``valid`` (field.json + field.safetensors) that must not load: missing or
    unreadable files, JSON that is no field description, bad configs, corrupt or lying safetensors, weights that
    do not fit the config. ``make_mismatched(folder)`` may overwrite a copy with another model's weights."""
    with open(os.path.join(valid, META_FILE), encoding="utf-8") as handle:
        meta = json.load(handle)
    with open(os.path.join(valid, WEIGHTS_FILE), "rb") as handle:
        weights = handle.read()
    count = 0

    def copy_with(description: str, **changes) -> FuzzCase:
        nonlocal count
        count += 1
        return FuzzCase(description, _checkpoint_copy(folder, valid, f"ckpt{count:03d}_{_slug(description)}",
                                                      **changes))

    # files missing, or not files
    for missing in (META_FILE, WEIGHTS_FILE):
        case = copy_with(f"no {missing}")
        os.remove(os.path.join(case.target, missing))
        yield case
        case = copy_with(f"{missing} is a folder")
        os.remove(os.path.join(case.target, missing))
        os.makedirs(os.path.join(case.target, missing))
        yield case
    yield FuzzCase("an empty folder", _fresh_dir(folder, "ckpt_empty"))
    yield FuzzCase("a file instead of a folder", write(folder, "ckpt_file.json", json.dumps(meta).encode()))
    yield FuzzCase("a folder that does not exist", os.path.join(folder, "ckpt_missing"))
    # field.json: broken text, documents of the wrong kind, format and version
    for description, text in (*corrupt_json_texts(meta), *unusual_json_texts(meta)):
        if "given twice" in description:
            continue  # the second, valid value wins: a valid field description
        yield copy_with(f"field.json: {description}", meta_bytes=text)
    for description, document in json_not_objects(meta):
        yield copy_with(f"field.json: {description}", meta=document)
    for key in meta:
        text = json.dumps(replaced(meta, (key,), "@@@")).encode().replace(b'"@@@"', b"[" * 20_000 + b"]" * 20_000)
        yield copy_with(f"field.json: {key} -> a list nested 20000 deep", meta_bytes=text)
    for description, changes in {
        "wrong format name": {"format": "fieldlab.scene"}, "no format": {"format": None},
        "format is a list": {"format": ["fieldlab.field"]},
        "newer version": {"version": meta["version"] + 1}, "version 0": {"version": 0},
        "version is text": {"version": "4"}, "version is true": {"version": True}, "version 4.0": {"version": 4.0},
        "version NaN": {"version": math.nan}, "version 10**400": {"version": 10 ** 400},
        "unknown architecture": {"architecture": "transformer"}, "architecture is a list": {"architecture": ["mlp"]},
        "field config missing": {"field": None}, "field config is a list": {"field": [1, 2]},
        "field config is text": {"field": "siren"},
    }.items():
        document = {k: v for k, v in {**meta, **changes}.items() if v is not None}
        yield copy_with(f"field.json: {description}", meta=document)
    field = meta["field"]
    for description, changes in {
        "unknown field key": {"layers": 3}, "unknown model kind": {"kind": "nope"}, "kind is a number": {"kind": 3},
        "negative width": {"width": -1}, "width 0": {"width": 0}, "width is text": {"width": "wide"},
        "width is a list": {"width": [8]}, "width NaN": {"width": math.nan}, "depth 0": {"depth": 0},
        "w0 NaN": {"w0": math.nan}, "w0 infinite": {"w0": math.inf}, "w0 negative": {"w0": -30.0},
        "w0 is text": {"w0": "thirty"}, "bias range NaN": {"bias_range": math.nan},
        "width 10**12 (must be refused before allocating)": {"width": 10 ** 12},
        "width 10**400": {"width": 10 ** 400},
        "depth 10**9 (must be refused before building)": {"depth": 10 ** 9},
        "in_features 10**10": {"in_features": 10 ** 10}, "Fourier features with 10**11 frequencies": {"kind": "fourier", "fourier_frequencies": 10 ** 11},
        "width 2 (weights do not fit)": {"width": 2}, "depth 5 (weights do not fit)": {"depth": 5},
        "other output channels (weights do not fit)": {"out_features": field.get("out_features", 1) + 2},
    }.items():
        yield copy_with(f"field.json: {description}", meta={**meta, "field": {**field, **changes}})
    # field.safetensors: not safetensors, cut, lying headers, weights of another shape
    r = rng(seed, "weights")
    for size in (1, 7, 8, 100, 5000):
        yield copy_with(f"field.safetensors: {size} random bytes", weights=r.bytes(size))
    yield copy_with("field.safetensors: empty", weights=b"")
    yield copy_with("field.safetensors: a PNG", weights=png_bytes(8, 8))
    yield copy_with("field.safetensors: the JSON description", weights=json.dumps(meta).encode())
    for cut in cut_points(len(weights)):
        yield copy_with(f"field.safetensors truncated to {cut} of {len(weights)} bytes", weights=weights[:cut])
    header_length = struct.unpack("<Q", weights[:8])[0]
    header = json.loads(weights[8: 8 + header_length])
    name = next(k for k in header if k != "__metadata__")
    huge = {name: {"dtype": "F32", "shape": [1_000_000, 1_000_000], "data_offsets": [0, 4 * 10 ** 12]}}
    for description, data in {
        "header claiming a 4 TB tensor": safetensors_bytes({**header, **huge}, weights[8 + header_length:]),
        "header claiming a 10**30-element tensor": safetensors_bytes(
            {name: {"dtype": "F32", "shape": [10 ** 15, 10 ** 15], "data_offsets": [0, 16]}}, b"\0" * 16),
        "header length 2**63": struct.pack("<Q", 2 ** 63) + weights[8:],
        "header length larger than the file": struct.pack("<Q", len(weights) * 10) + weights[8:],
        "header length 0": struct.pack("<Q", 0) + weights[8:],
        "header is not JSON": struct.pack("<Q", 20) + b"not json at all!!!!!" + weights[8:],
        "header is a list": safetensors_bytes([1, 2, 3]),  # type: ignore[arg-type]
        "offsets past the end": safetensors_bytes({name: {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
                                                  b"\0" * 8),
        "shape does not match the offsets": safetensors_bytes(
            {name: {"dtype": "F32", "shape": [1000], "data_offsets": [0, 16]}}, b"\0" * 16),
        "negative shape": safetensors_bytes({name: {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}},
                                            b"\0" * 16),
        "unknown dtype": safetensors_bytes({name: {"dtype": "Q7", "shape": [4], "data_offsets": [0, 16]}},
                                           b"\0" * 16),
        "overlapping tensors": safetensors_bytes(
            {name: {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
             "other": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}, b"\0" * 24),
        "no tensors": safetensors_bytes({}),
        "only metadata": safetensors_bytes({"__metadata__": {"format": "pt"}}),
    }.items():
        yield copy_with(f"field.safetensors: {description}", weights=data)
    if make_mismatched is not None:
        case = copy_with("weights of another model")
        make_mismatched(case.target)
        yield case


def mutated_checkpoint_folders(folder: str, valid: str, seed: int = 0) -> Iterator[FuzzCase]:
    """Checkpoint copies whose field.json went through ``json_deletions``, ``json_type_changes`` and
    ``json_huge_numbers``, and whose weights had bytes flipped (MAY load)."""
    with open(os.path.join(valid, META_FILE), encoding="utf-8") as handle:
        meta = json.load(handle)
    cases = list(json_deletions(meta)) + list(json_type_changes(meta, per_path=2, seed=seed)) \
        + list(json_huge_numbers(meta))
    for k, (description, document) in enumerate(cases):
        yield FuzzCase(f"field.json: {description}",
                       _checkpoint_copy(folder, valid, f"mut{k:03d}", meta_bytes=json.dumps(document).encode()))
    with open(os.path.join(valid, WEIGHTS_FILE), "rb") as handle:
        weights = handle.read()
    for k in range(8):
        r = rng(seed, f"ckptflip{k}")
        mutated = bytearray(weights)
        for position in r.integers(0, len(weights), 4):
            mutated[position] = int(r.integers(0, 256))
        yield FuzzCase(f"field.safetensors with 4 random bytes replaced (#{k})",
                       _checkpoint_copy(folder, valid, f"mutw{k:03d}", weights=bytes(mutated)))


# ---- files that would run code if a loader unpickled or evaluated them -----------------------------------------

class _CreatesMarker:
    """Unpickling this calls ``open(marker, 'w')``: the marker file appearing proves that code ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def pickle_payloads(marker: str) -> Iterator[FuzzCase]:
    """Bytes (targets are bytes) that create the file ``marker`` when a careless loader reads them: pickles of every
    protocol, a ``torch.save`` archive (``torch.load(weights_only=False)`` runs it), a NumPy .npy holding an object
    array (``numpy.load(allow_pickle=True)``), and YAML with a python/object tag (``yaml.load`` without a safe
    loader). Creating these runs nothing: only loading them would."""
    import pickle

    evil = _CreatesMarker(marker)
    for protocol in (0, 2, 4, pickle.HIGHEST_PROTOCOL):
        yield FuzzCase(f"a pickle (protocol {protocol}) that creates a file", pickle.dumps(evil, protocol=protocol))
    yield FuzzCase("a pickle wrapped in a dict of tensors' names",
                   pickle.dumps({"layers.0.linear.weight": evil, "layers.0.linear.bias": evil}))
    import torch

    buffer = io.BytesIO()
    torch.save({"state_dict": evil}, buffer)
    yield FuzzCase("a torch.save archive whose pickle creates a file", buffer.getvalue())
    buffer = io.BytesIO()
    np.save(buffer, np.array([evil, 1], dtype=object), allow_pickle=True)
    yield FuzzCase("a .npy object array that creates a file", buffer.getvalue())
    yield FuzzCase("YAML with a python/object/apply tag",
                   f'!!python/object/apply:builtins.open ["{marker}", "w"]\n'.encode())


def code_in_json_documents(valid: dict, marker: str) -> Iterator[FuzzCase]:
    """``valid`` with keys and values that code-running deserialisers act on: ``__reduce__`` / ``py/object`` /
    ``!!python`` / ``__class__`` entries naming ``open(marker)`` (jsonpickle, YAML and pickle-in-JSON styles), at
    the top level and inside every object. A safe loader treats them as data: it refuses them as unknown keys or
    wrong values, and the marker never appears."""
    call = {"__reduce__": ["builtins.open", [marker, "w"]]}
    styles = {
        "__reduce__": call,
        "py/reduce": {"py/reduce": [{"py/function": "builtins.open"}, {"py/tuple": [marker, "w"]}]},
        "py/object": {"py/object": "builtins.open", "args": [marker, "w"]},
        "!!python/object/apply": {"!!python/object/apply:builtins.open": [marker, "w"]},
        "__class__": {"__class__": "builtins.open", "__init__": [marker, "w"]},
        "eval text": {"__eval__": f"open({marker!r}, 'w')"},
    }
    for name, payload in styles.items():
        yield FuzzCase(f"top-level {name} entry", {**copy.deepcopy(valid), **payload})
        for path in json_paths(valid):
            if isinstance(get_at(valid, path), dict):
                out = copy.deepcopy(valid)
                get_at(out, path).update(copy.deepcopy(payload))
                yield FuzzCase(f"{name} entry in {path_text(path)}", out)
            elif isinstance(get_at(valid, path), (int, float, str)) and isinstance(path[-1], str):
                yield FuzzCase(f"{path_text(path)} -> a {name} object", replaced(valid, path, copy.deepcopy(payload)))

"""Temporal video signals: synthesized camera moves over the bundled photos, video files and folders of frames.

``video_signal`` returns a ``Signal`` of kind 'video': shape (T, H, W), coordinates (x, y, t) stored frame-major
(frame k's pixels are the rows ``time.rows(k)``, row-major within the frame as for an image), values in [-1, 1].
Long sources are subsampled to at most ``frames`` frames spread evenly over the whole video, and frames are
downscaled one at a time as they are decoded, so at most one full-resolution frame is held in memory.
"""
from __future__ import annotations

import os
import re

import numpy as np
import torch

from models.signals import (
    IMAGE_SUFFIXES,
    Signal,
    SignalError,
    TimeAxis,
    _read_failure_reason,
    _to_unit_float,
    check_pixel_count,
    grid_coords,
    image_extent,
    image_too_large,
    load_sample_image,
    read_image_file,
)

VIDEO_SAMPLES = ("tour", "cuts")
"""Videos synthesized from the bundled scikit-image photos (no download)."""
DEFAULT_VIDEO = "tour"
DEFAULT_VIDEO_SIZE = 64
DEFAULT_VIDEO_FRAMES = 24
VIDEO_SUFFIXES = (".mp4", ".gif", ".avi", ".mov", ".webm", ".mkv", ".m4v")
MAX_FRAMES = 256
DEFAULT_FPS = 12.0
MIN_SIZE = 8

_CUT_SHOTS = (  # photo, window centre at the start and end of the shot (fractions of width, height), zoom start/end
    ("astronaut", (0.46, 0.40), (0.50, 0.38), 1.0, 1.08),
    ("coffee", (0.52, 0.50), (0.47, 0.52), 1.12, 1.0),
    ("chelsea", (0.46, 0.45), (0.52, 0.47), 1.0, 1.1),
    ("rocket", (0.48, 0.55), (0.52, 0.50), 1.1, 1.0),
)


def is_video_source(source: str | os.PathLike) -> bool:
    """A synthesized video's name, a path with a video suffix, or an existing folder holding image files."""
    source = os.fspath(source)
    if source in VIDEO_SAMPLES or os.path.splitext(source)[1].lower() in VIDEO_SUFFIXES:
        return True
    try:
        return os.path.isdir(source) and bool(_image_files(source))
    except OSError:
        return False


def video_signal(source: str, size: int = DEFAULT_VIDEO_SIZE, frames: int = DEFAULT_VIDEO_FRAMES,
                 keep_aspect: bool = True) -> Signal:
    """A video by sample name ('tour', 'cuts'), video file (MP4, GIF, ...) or folder of frame images, as at most
    ``frames`` frames whose longer side is at most ``size`` px. Its rate is the source's times kept/total frames
    (the clip lasts as long as the source), or 12 fps for folders and synthesized videos."""
    _check_request(size, frames)
    source = os.fspath(source)
    if source in VIDEO_SAMPLES:
        clip = synthesize_video(source, size, frames)
        what = ("a camera pans, zooms and rotates over the astronaut photo under changing light" if source == "tour"
                else "four slow pans over different photos with hard cuts between them")
        note = f"synthesized: {what} ({frames} frames of {size}x{size} px)"
        return _signal(clip, source, note, clip.shape[:3], DEFAULT_FPS, keep_aspect)
    label = os.path.basename(os.path.normpath(source)) or source
    suffix = os.path.splitext(source)[1].lower()
    if os.path.isdir(source):
        stack, source_fps = _read_folder(source, label, size, frames), None
    elif not os.path.exists(source):
        if suffix in VIDEO_SUFFIXES or os.sep in source:
            raise SignalError(f"{label}: no such file or folder")
        raise SignalError(f"unknown video {source!r}: not a sample ({', '.join(VIDEO_SAMPLES)}), a video file "
                          "nor a folder of frames")
    elif suffix not in VIDEO_SUFFIXES:
        raise SignalError(f"{label}: not a video file (expected {' '.join(VIDEO_SUFFIXES)} or a folder of frames)")
    elif os.path.getsize(source) == 0:
        raise SignalError(f"{label}: file is empty")
    else:
        reader = _read_gif if suffix == ".gif" else _read_container
        stack, source_fps = reader(source, label, size, frames)
    total, kept = stack.total, len(stack.frames)
    if kept == 0:
        raise SignalError(f"{label}: the video has no frames")
    clip = stack.array()
    # the subsampled clip plays as long as the source; frames without a known rate play at the default one
    fps = source_fps * kept / total if source_fps else DEFAULT_FPS
    note = f"{kept} of {total} frames (every {_ordinal(total / kept)})" if kept < total else f"all {total} frames"
    (h, w), (small_h, small_w) = stack.source_hw, stack.working_hw
    if (h, w) != (small_h, small_w):
        note += f", downscaled from {w}x{h} to {small_w}x{small_h} px"
    return _signal(clip, label, note, (total, h, w), fps, keep_aspect)


def frame_indices(total: int, count: int) -> np.ndarray:
    """The source frames kept when ``count`` of ``total`` are wanted: the middles of equal stretches (all when
    ``count >= total``), so the kept frames are evenly spaced by ``total / count``."""
    count = min(count, total)
    return np.floor((np.arange(count) + 0.5) * total / count).astype(np.int64)


def synthesize_video(name: str, size: int = DEFAULT_VIDEO_SIZE, frames: int = DEFAULT_VIDEO_FRAMES) -> np.ndarray:
    """Frames (T, size, size, 3) float32 in [0, 1] of a synthesized video (the same frames on every call)."""
    _check_request(size, frames)
    if name == "tour":
        return _tour(size, frames)
    if name == "cuts":
        return _cuts(size, frames)
    raise SignalError(f"unknown video {name!r}: the synthesized videos are {', '.join(VIDEO_SAMPLES)}")


def _check_request(size: int, frames: int) -> None:
    if int(size) < MIN_SIZE:
        raise SignalError(f"video size must be at least {MIN_SIZE} px, got {size}")
    if not 1 <= int(frames) <= MAX_FRAMES:
        raise SignalError(f"a video needs 1 to {MAX_FRAMES} frames, got {frames}")


def _signal(clip: np.ndarray, name: str, note: str, original: tuple[int, ...], fps: float, keep_aspect: bool):
    t, h, w = clip.shape[:3]
    channels = 1 if clip.ndim == 3 else clip.shape[3]
    extent = image_extent(h, w, keep_aspect)
    time = TimeAxis(frames=t, samples_per_frame=h * w, fps=float(fps))
    stamps = torch.from_numpy(time.times().astype(np.float32)).repeat_interleave(h * w).unsqueeze(1)
    coords = torch.cat([grid_coords((h, w), extent).repeat(t, 1), stamps], dim=1)
    values = torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32).reshape(t * h * w, channels)) * 2.0 - 1.0
    return Signal(name, "video", (t, h, w), channels, coords, values, (*extent, 1.0), note, tuple(original),
                  time=time)


def _ordinal(step: float) -> str:
    step = round(step, 1)
    if step != int(step):
        return f"{step:g}th"
    n = int(step)
    suffix = "th" if n % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# ---- synthesized videos ------------------------------------------------------------------------------------------

def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _photo(name: str, size: int, view: float, zoom: float) -> np.ndarray:
    """A bundled photo as float32 RGB in [0, 1], shrunk (anti-aliased) so that a window ``view`` times its shorter
    side across at ``zoom`` spans about one photo pixel per 2x2 supersample of a ``size``-px frame."""
    photo = load_sample_image(name).astype(np.float32) / 255.0
    scale = size * zoom / (view * min(photo.shape[:2]))
    if scale < 1.0:
        from skimage.transform import resize

        shape = (max(2, round(photo.shape[0] * scale)), max(2, round(photo.shape[1] * scale)), 3)
        photo = resize(photo, shape, anti_aliasing=True, preserve_range=True).astype(np.float32)
    return photo


def _render(photo: np.ndarray, centres: np.ndarray, halves: np.ndarray, angles: np.ndarray, size: int) -> np.ndarray:
    """Square views of the photo (T, size, size, 3): window k is centred at ``centres[k]`` (col, row in photo px),
    ``2 * halves[k]`` px wide and turned by ``angles[k]`` radians; sampled bilinearly at 2x2 points per pixel
    and averaged (anti-aliasing)."""
    import torch.nn.functional as F

    h, w = photo.shape[:2]
    fine = 2 * size
    offsets = (torch.arange(fine, dtype=torch.float32) + 0.5) * (2.0 / fine) - 1.0
    v, u = torch.meshgrid(offsets, offsets, indexing="ij")
    image = torch.from_numpy(np.ascontiguousarray(photo.transpose(2, 0, 1)))[None]
    out = np.empty((len(centres), size, size, 3), dtype=np.float32)
    for k, ((cx, cy), half, angle) in enumerate(zip(centres, halves, angles)):
        cos, sin = float(half * np.cos(angle)), float(half * np.sin(angle))
        cols, rows = cx + cos * u - sin * v, cy + sin * u + cos * v  # photo pixel centres are integers
        grid = torch.stack([(cols + 0.5) * (2.0 / w) - 1.0, (rows + 0.5) * (2.0 / h) - 1.0], dim=-1)
        fine_view = F.grid_sample(image, grid[None], mode="bilinear", padding_mode="border",
                                  align_corners=False)
        out[k] = F.avg_pool2d(fine_view, 2)[0].permute(1, 2, 0).numpy()
    return out


def _tour(size: int, frames: int) -> np.ndarray:
    """A camera over the astronaut photo: starting wide on the suit, it zooms in (1.0 -> 1.8 -> 1.2) on the face
    while turning (from -14 to +25 degrees and back to +4), then pulls back down to the helmet. The window centre follows a
    Lissajous-type curve (rates 0.55 and 0.75 cycles per clip, so nothing repeats); a soft light spot drifts
    across the view while the exposure, contrast and colour temperature change."""
    s = np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)
    zoom = 1.0 + 0.8 * _smoothstep(s / 0.5) - 0.6 * _smoothstep((s - 0.5) / 0.5)
    angle = np.radians(20.0 * np.sin(2 * np.pi * 0.7 * s - 1.2) + 5.0)
    view = 0.3  # half-width of the window at zoom 1, as a fraction of the photo's shorter side
    photo = _photo("astronaut", size, view, zoom.max())
    h, w = photo.shape[:2]
    halves = view * min(h, w) / zoom
    # how far the centre may stray from the photo's middle with the whole turned window inside the photo
    reach = np.stack([w / 2 - halves * np.sqrt(2.0) - 1.0, h / 2 - halves * np.sqrt(2.0) - 1.0], axis=1)
    path = 0.6 * np.stack([np.sin(2 * np.pi * 0.55 * s - 2.0), np.sin(2 * np.pi * 0.75 * s - 3.69)], axis=1)
    clip = _render(photo, np.array([w / 2, h / 2]) + path * reach, halves, angle, size)

    y, x = np.mgrid[-1.0:1.0:size * 1j, -1.0:1.0:size * 1j]
    spot_x, spot_y = 0.6 * np.cos(2 * np.pi * 0.55 * s + 1.0), 0.5 * np.sin(2 * np.pi * 0.75 * s)
    spot = np.exp(-((x - spot_x[:, None, None]) ** 2 + (y - spot_y[:, None, None]) ** 2) / (2 * 0.45 ** 2))
    gain = 0.85 + 0.3 * np.sin(2 * np.pi * 0.6 * s - 0.8)
    contrast = 1.0 + 0.25 * np.sin(2 * np.pi * 0.35 * s + 0.3)
    warmth = 0.12 * np.sin(2 * np.pi * 0.5 * s + 1.5)
    tint = np.stack([1.0 + warmth, np.ones_like(warmth), 1.0 - warmth], axis=1)[:, None, None, :]
    light = (gain[:, None, None] * (0.75 + 0.5 * spot))[..., None]
    clip = ((clip - 0.5) * contrast[:, None, None, None] + 0.5) * light * tint
    return np.clip(clip, 0.0, 1.0).astype(np.float32)


def _cuts(size: int, frames: int) -> np.ndarray:
    """Four shots of different photos, each a slow pan and zoom, joined by hard cuts."""
    bounds = np.round(np.linspace(0, frames, len(_CUT_SHOTS) + 1)).astype(int)
    view = 0.45
    shots = []
    for (name, start, end, zoom0, zoom1), first, stop in zip(_CUT_SHOTS, bounds[:-1], bounds[1:]):
        if stop <= first:
            continue
        n = stop - first
        s = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
        zoom = zoom0 + (zoom1 - zoom0) * s
        photo = _photo(name, size, view, max(zoom0, zoom1))
        h, w = photo.shape[:2]
        halves = view * min(h, w) / zoom
        fraction = np.asarray(start) + (np.asarray(end) - np.asarray(start)) * s[:, None]
        centres = np.stack([np.clip(fraction[:, 0] * w, halves, w - halves),
                            np.clip(fraction[:, 1] * h, halves, h - halves)], axis=1)
        shots.append(_render(photo, centres, halves, np.zeros(n), size))
    return np.concatenate(shots)


# ---- reading files -----------------------------------------------------------------------------------------------

class _FrameStack:
    """Collects decoded frames: each is converted to [0, 1] floats and downscaled on arrival, so the full-resolution
    frames are never held together."""

    def __init__(self, size: int):
        self.size = size
        self.frames: list[np.ndarray] = []
        self.source_hw = self.working_hw = (0, 0)
        self.first = ""
        self.total = 0
        """Frames in the source (kept or not)."""

    def add(self, array: np.ndarray, where: str) -> None:
        image = _to_unit_float(array, where)
        h, w = image.shape[:2]
        if not self.frames:
            self.source_hw, self.first = (h, w), where.rsplit("/", 1)[-1]
            scale = min(1.0, self.size / max(h, w))
            self.working_hw = (max(1, round(h * scale)), max(1, round(w * scale)))
        elif (h, w) != self.source_hw:
            raise SignalError(f"{where}: {w}x{h} px, but {self.first} is {self.source_hw[1]}x{self.source_hw[0]} px "
                              "(every frame must have the same size)")
        if self.working_hw != (h, w):  # anti-aliased (triangle filter widened to the scale), much faster than skimage
            planes = torch.from_numpy(image.reshape(h, w, -1)).permute(2, 0, 1)[None]
            small = torch.nn.functional.interpolate(planes, self.working_hw, mode="bilinear", antialias=True)
            image = small[0].permute(1, 2, 0).numpy().reshape(self.working_hw + image.shape[2:]).clip(0.0, 1.0)
        self.frames.append(image.astype(np.float32))

    def array(self) -> np.ndarray:
        """(T, H, W) when every frame is gray, else (T, H, W, 3)."""
        if all(f.ndim == 2 for f in self.frames):
            return np.stack(self.frames)
        return np.stack([np.repeat(f[..., None], 3, axis=2) if f.ndim == 2 else f for f in self.frames])


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name.lower())]


def _image_files(folder: str) -> list[str]:
    names = [entry.name for entry in os.scandir(folder) if entry.is_file() and not entry.name.startswith(".")
             and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES]
    return sorted(names, key=_natural_key)


def _read_folder(folder: str, label: str, size: int, frames: int) -> _FrameStack:
    """Every image file in the folder in natural order (frame2 before frame10); only the chosen ones are read."""
    try:
        names = _image_files(folder)
        empty = not any(not name.startswith(".") for name in os.listdir(folder))
    except OSError as exc:
        raise SignalError(f"{label}: cannot read the folder ({exc.strerror or exc})") from None
    if not names:
        raise SignalError(f"{label}: the folder is empty" if empty else
                          f"{label}: no image files ({' '.join(IMAGE_SUFFIXES)}) in the folder")
    stack = _FrameStack(size)
    stack.total = len(names)
    for index in frame_indices(len(names), frames):
        path = os.path.join(folder, names[index])
        try:
            array = read_image_file(path)
        except SignalError as exc:
            raise SignalError(f"{label}/{exc}") from None
        stack.add(array, f"{label}/{names[index]}")
    return stack


def _read_gif(path: str, label: str, size: int, frames: int) -> tuple[_FrameStack, float | None]:
    """An animated GIF through Pillow (it knows the frame count up front); the rate comes from the frame delays."""
    from PIL import Image, ImageSequence

    stack = _FrameStack(size)
    try:
        with Image.open(path) as image:
            if image.format != "GIF":  # Pillow opens any image; a still PNG or JPEG is not a video
                raise SignalError(f"{label}: holds a single {image.format or 'unknown'} image, not a GIF video")
            check_pixel_count(image.size, label)  # before any frame is decoded
            stack.total = getattr(image, "n_frames", 1)
            wanted = set(frame_indices(stack.total, frames).tolist())
            delays = []
            for index, frame in enumerate(ImageSequence.Iterator(image)):
                delays.append(frame.info.get("duration") or 0)
                if index in wanted:
                    stack.add(np.asarray(frame.convert("RGB")), f"{label} frame {index}")
    except SignalError:
        raise
    except Image.DecompressionBombError:  # Pillow refuses over twice its limit before telling the size
        raise image_too_large(label) from None
    except Exception as exc:  # PIL raises many types for bad data; the user needs one line
        raise SignalError(f"{label}: not a readable GIF ({_video_failure_reason(exc, 'GIF')})") from None
    delay_ms = float(np.mean(delays)) if delays else 0.0
    return stack, 1000.0 / delay_ms if delay_ms > 0 else None


def _read_container(path: str, label: str, size: int, frames: int) -> tuple[_FrameStack, float | None]:
    """MP4, MOV, WebM, ...: a first pass counts the packets (no decoding; containers such as WebM do not store a
    frame count), the second decodes every frame but converts and keeps only the chosen ones."""
    import av

    stack = _FrameStack(size)
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise SignalError(f"{label}: has no video stream")
            stream = container.streams.video[0]
            if container.format.name.endswith("_pipe") or container.format.name == "image2":
                raise SignalError(f"{label}: holds a single {stream.codec_context.name.upper()} image, not a video")
            check_pixel_count((stream.codec_context.width, stream.codec_context.height), label)
            stack.total = sum(1 for packet in container.demux(stream) if packet.size)
            rate = stream.average_rate or stream.guessed_rate
        if stack.total == 0:
            raise SignalError(f"{label}: the video has no frames")
        chosen = frame_indices(stack.total, frames)
        wanted = set(chosen.tolist())
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for index, frame in enumerate(container.decode(stream)):
                if index in wanted:
                    stack.add(frame.to_ndarray(format="rgb24"), f"{label} frame {index}")
                if index >= chosen[-1]:
                    break
    except SignalError:
        raise
    except Exception as exc:  # FFmpeg errors come in many types; the user needs one line
        raise SignalError(f"{label}: not a readable video ({_video_failure_reason(exc, 'video')})") from None
    return stack, float(rate) if rate and float(rate) > 0 else None


def _video_failure_reason(exc: BaseException, kind: str) -> str:
    """``_read_failure_reason`` for ``kind`` data ('video', 'GIF'), without FFmpeg's error number and file name."""
    text = _read_failure_reason(exc)
    if text.startswith("not PNG, JPEG"):
        return f"not {kind} data, or corrupt"
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    text = re.sub(r":\s*'[^']*'$", "", text)
    return text[:1].lower() + text[1:] if text else type(exc).__name__

"""Target signals: images (bundled scikit-image photos or the user's files) and the 1D sum of sinusoids.

A ``Signal`` holds the sample coordinates in [-1, 1] (aspect ratio kept: the longer image axis spans
[-1, 1]) and the values scaled to [-1, 1], plus what a view needs to lay them out again.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

if TYPE_CHECKING:
    from models.sdf_signal import SdfTarget

SAMPLE_IMAGES = (
    "camera", "astronaut", "coffee", "chelsea", "cat", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina", "brick", "grass", "gravel", "moon", "coins", "clock", "page", "text", "cell", "checkerboard",
    "colorwheel", "logo", "horse",
)
"""scikit-image sample photos that ship with the package (no download)."""

CURVE_SIGNALS = ("sinusoids",)
"""Built-in 1D signals: the Streamable paper's sum of sinusoids on [0, 1]."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
DEFAULT_IMAGE_SIZE = 256
MAX_IMAGE_PIXELS = 89_478_485
"""Larger images (by their header) are refused before decoding: Pillow's decompression-bomb level, above which
it only warns (and up to twice which it decodes), so a 1 kB file claiming 12000x12000 px never allocates it."""
CURVE_SAMPLES = 1024


TIME_KINDS = ("video", "sdf-time")
"""Signal kinds with a time axis (models/video.py, models/sdf_time.py)."""


@dataclass(frozen=True)
class TimeAxis:
    """The frames of a temporal signal.

    Samples are stored frame-major with the same count per frame (rows ``k * samples_per_frame`` up to
    ``(k + 1) * samples_per_frame`` belong to frame k), and the last coordinate column is the time t in [-1, 1]:
    frame k sits at ``times()[k]``, evenly spaced from -1 to 1.
    """

    frames: int
    samples_per_frame: int
    fps: float = 12.0
    """Playback rate (the source's, or a default for generated sequences)."""
    frame_target: Callable[[int], "SdfTarget"] | None = field(default=None, repr=False, compare=False)
    """A temporal 3D signal: the ground truth of frame k (built on first use and cached by the provider)."""
    truth_at: Callable[[np.ndarray, float], np.ndarray] | None = field(default=None, repr=False, compare=False)
    """A temporal 3D signal with a formula: the true value at (N, 3) points and any t in [-1, 1] (None: frames only)."""

    def times(self) -> np.ndarray:
        """t of every frame: evenly spaced over [-1, 1] (0 for a single frame)."""
        return np.linspace(-1.0, 1.0, self.frames) if self.frames > 1 else np.zeros(1)

    def time_of(self, frame: float) -> float:
        """t of a (possibly fractional) frame position."""
        return 0.0 if self.frames < 2 else -1.0 + 2.0 * float(frame) / (self.frames - 1)

    def frame_at(self, t: float) -> float:
        """The (fractional) frame position of time t, clamped to the sequence."""
        if self.frames < 2:
            return 0.0
        return float(np.clip((float(t) + 1.0) * 0.5 * (self.frames - 1), 0.0, self.frames - 1))

    def nearest_frame(self, t: float) -> int:
        return int(round(self.frame_at(t)))

    def rows(self, frame: int) -> slice:
        """The sample rows of one frame."""
        return slice(frame * self.samples_per_frame, (frame + 1) * self.samples_per_frame)


class SignalError(ValueError):
    """A signal could not be loaded; the message is one line meant for the user."""


@dataclass(frozen=True)
class Signal:
    """A sampled target: ``coords[i]`` in [-1, 1]^d maps to ``values[i]`` in [-1, 1]^channels."""

    name: str
    kind: str
    """'image' (shape (H, W)), 'curve' (shape (N,)), 'sdf' (shape (P,): a pool of 3D samples), 'video' (shape
    (T, H, W), coordinates (x, y, t)) or 'sdf-time' (shape (T, P), coordinates (x, y, z, t))."""
    shape: tuple[int, ...]
    channels: int
    coords: torch.Tensor
    values: torch.Tensor
    extent: tuple[float, ...]
    """Half-extent of the coordinate box per axis, in (x, y) order: (1, 0.75) for a 4:3 landscape image."""
    note: str = ""
    """Something the user should know about how the signal was prepared (e.g. downscaling)."""
    original_shape: tuple[int, ...] = field(default=())
    sdf: SdfTarget | None = None
    """The 3D target's ground truth, for kind 'sdf' (for 'sdf-time': frame 0's)."""
    time: TimeAxis | None = None
    """The frames of a temporal signal: kinds 'video' (shape (T, H, W)) and 'sdf-time' (shape (T, P))."""

    @property
    def in_features(self) -> int:
        return self.coords.shape[1]

    def as_display(self, values: torch.Tensor | np.ndarray) -> np.ndarray:
        """Values of this signal's samples (in [-1, 1]) as a display array in [0, 1]: HxW, HxWx3 or N."""
        if isinstance(values, torch.Tensor):
            values = values.detach().float().cpu().numpy()
        unit = np.clip((np.asarray(values, dtype=np.float32) + 1.0) * 0.5, 0.0, 1.0)
        if self.kind in ("curve", "sdf", "sdf-time"):
            return unit.reshape(self.shape)
        if self.channels == 1:
            return unit.reshape(self.shape)
        return unit.reshape(*self.shape, self.channels)

    def target_display(self) -> np.ndarray:
        return self.as_display(self.values)


def grid_coords(shape: tuple[int, ...], extent: tuple[float, ...]) -> torch.Tensor:
    """Pixel-centre coordinates of a (H, W) grid as (H*W, 2) in (x, y) order (square pixels when the extent
    keeps the aspect ratio), or N evenly spaced samples from -extent to +extent as (N, 1)."""
    if len(shape) == 1:
        return torch.linspace(-extent[0], extent[0], shape[0]).reshape(-1, 1)
    h, w = shape
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * (2.0 * extent[0] / w) - extent[0]
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) * (2.0 * extent[1] / h) - extent[1]
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1).reshape(-1, 2)


def image_extent(height: int, width: int, keep_aspect: bool = True) -> tuple[float, float]:
    if not keep_aspect:
        return (1.0, 1.0)
    longest = max(height, width)
    return (width / longest, height / longest)


def image_signal(array: np.ndarray, name: str, size: int = DEFAULT_IMAGE_SIZE, keep_aspect: bool = True) -> Signal:
    """Turn an image array (HxW, HxWx3/4, any numeric dtype) into a Signal whose longer side is <= size."""
    image = _to_unit_float(array, name)
    original = image.shape[:2]
    note = ""
    h, w = original
    if max(h, w) > size:
        scale = size / max(h, w)
        new_shape = (max(1, round(h * scale)), max(1, round(w * scale)))
        if min(new_shape) < 2:
            raise SignalError(f"{name}: image is too narrow ({w}x{h} px would be {new_shape[1]}x{new_shape[0]} px at "
                              f"working size {size})")
        from skimage.transform import resize

        image = resize(image, new_shape + image.shape[2:], anti_aliasing=True, preserve_range=True).astype(np.float32)
        note = f"downscaled from {w}x{h} to {new_shape[1]}x{new_shape[0]} px (working size {size})"
    h, w = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    extent = image_extent(h, w, keep_aspect)
    values = torch.from_numpy(np.ascontiguousarray(image.reshape(h * w, channels))) * 2.0 - 1.0
    return Signal(name, "image", (h, w), channels, grid_coords((h, w), extent), values.float(), extent, note, original)


def _to_unit_float(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.float32)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim == 3 and array.shape[2] == 2:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise SignalError(f"{name}: expected a grayscale or RGB image, got an array of shape {array.shape}")
    if min(array.shape[:2]) < 2:
        raise SignalError(f"{name}: image is too small ({array.shape[1]}x{array.shape[0]} px)")
    if np.issubdtype(array.dtype, np.integer):
        image = array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    else:
        image = array.astype(np.float32)
        if not np.all(np.isfinite(image)):
            raise SignalError(f"{name}: image contains NaN or infinite values")
        lo, hi = float(image.min()), float(image.max())
        if lo < 0.0 or hi > 1.0:
            image = (image - lo) / max(hi - lo, 1e-12)
    if image.ndim == 3 and np.allclose(image[..., 0], image[..., 1]) and np.allclose(image[..., 0], image[..., 2]):
        image = image[..., 0]
    return np.ascontiguousarray(image)


def sinusoids_signal(samples: int = CURVE_SAMPLES, seed: int = 0) -> Signal:
    """The Streamable paper's 1D target: a sum of sinusoids of different frequencies and phases on [0, 1].

    Frequencies 1, 3, 7, 15 and 31 cycles per unit with amplitudes falling as 1/sqrt(f), so each
    width stage of a growing network has a visible band to pick up; scaled to fill [-0.9, 0.9].
    """
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, samples)
    frequencies = np.array([1, 3, 7, 15, 31], dtype=np.float64)
    phases = rng.uniform(0, 2 * np.pi, frequencies.size)
    y = sum(np.sin(2 * np.pi * f * x + p) / np.sqrt(f) for f, p in zip(frequencies, phases))
    y = 0.9 * y / np.abs(y).max()
    values = torch.from_numpy(y.astype(np.float32)).reshape(-1, 1)
    return Signal("sinusoids", "curve", (samples,), 1, grid_coords((samples,), (1.0,)), values, (1.0,), "", (samples,))


def load_sample_image(name: str) -> np.ndarray:
    import skimage.data

    if name not in SAMPLE_IMAGES:
        raise SignalError(f"unknown sample image {name!r}")
    return getattr(skimage.data, name)()


def read_image_file(path: str) -> np.ndarray:
    """Read a PNG/JPEG/TIFF/BMP file; any failure becomes a one-line SignalError."""
    label = os.path.basename(path) or path
    if os.path.isdir(path):
        raise SignalError(f"{label}: is a folder, not an image file")
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise SignalError(f"{label}: cannot read file ({exc.strerror or exc})") from None
    if size == 0:
        raise SignalError(f"{label}: file is empty")
    is_tiff = os.path.splitext(path)[1].lower() in (".tif", ".tiff")
    check_pixel_count(_header_size(path, is_tiff, label), label)
    try:
        import imageio.v3 as iio

        # Only the two readers we support: never let imageio guess among its many legacy plugins.
        array = iio.imread(path, plugin="tifffile" if is_tiff else "pillow", index=0)
    except Exception as exc:  # imageio raises many types for bad data; the user needs one line
        raise SignalError(f"{label}: not a readable image ({_read_failure_reason(exc)})") from None
    return np.asarray(array)


def check_pixel_count(size: tuple[int, int] | None, label: str) -> None:
    """Refuse a (width, height) above ``MAX_IMAGE_PIXELS`` (None: unknown, let the decoder decide)."""
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise image_too_large(label, size)


def image_too_large(label: str, size: tuple[int, int] | None = None) -> SignalError:
    """The error for an image over ``MAX_IMAGE_PIXELS``; no size: one Pillow refused (over twice its limit)."""
    stated = f"{size[0]}x{size[1]} px" if size is not None else f"over {2 * MAX_IMAGE_PIXELS / 1e6:.0f} Mpx"
    return SignalError(f"{label}: image is too large ({stated}, at most {MAX_IMAGE_PIXELS / 1e6:.0f} Mpx)")


def _header_size(path: str, is_tiff: bool, label: str) -> tuple[int, int] | None:
    """(width, height) of the first image as its header states it, without decoding; None if the header is
    unreadable (the decoder then says why)."""
    from PIL import Image

    try:
        if is_tiff:
            import tifffile

            with tifffile.TiffFile(path) as tiff:
                page = tiff.pages[0]
                return int(page.imagewidth), int(page.imagelength)
        with Image.open(path) as image:  # reads the header only (Pillow may warn about a large size)
            return int(image.size[0]), int(image.size[1])
    except Image.DecompressionBombError:  # Pillow refuses over twice its limit before telling the size
        raise image_too_large(label) from None
    except Exception:  # any other failure is the decoder's to report, in read_image_file
        return None


def _read_failure_reason(exc: BaseException) -> str:
    """The decoder's own words (imageio wraps them in a generic error), in one line."""
    while (exc.__cause__ or exc.__context__) is not None:
        exc = exc.__cause__ or exc.__context__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "can not handle" in text or "cannot identify" in text:
        return "not PNG, JPEG, TIFF or BMP data, or corrupt"
    if "truncated" in text.lower():
        return "the file is truncated"
    return text[:160]


def load_signal(source: str, size: int | None = None, keep_aspect: bool = True, target: str = "sdf",
                frames: int | None = None) -> Signal:
    """A signal by sample name (``camera``, ``sinusoids``, ``torus``, ``tour``, ``morph``, ...) or by file or folder path.

    Images become 2D signals (longer side ``size``, default 256); 3D shapes and meshes signed-distance targets, or
    occupancy ones with ``target='occupancy'`` (models/sdf_signal.py); videos (files, frame folders, the synthesized
    ones) ``frames`` frames at working size ``size`` (default 64: models/video.py); moving shapes and folders of
    meshes temporal 3D targets of ``frames`` frames (models/sdf_time.py).
    """
    if not source:
        raise SignalError("no signal given: pass a sample name or an image file")
    if source in CURVE_SIGNALS:
        return sinusoids_signal()
    from .sdf_signal import is_sdf_source, sdf_signal  # here: these modules build on this one
    from .sdf_time import is_temporal_sdf_source, temporal_sdf_signal
    from .video import DEFAULT_VIDEO_FRAMES, DEFAULT_VIDEO_SIZE, is_video_source, video_signal

    if is_temporal_sdf_source(source):
        return temporal_sdf_signal(source, **({"frames": frames} if frames else {}), target=target)
    if is_video_source(source):
        return video_signal(source, size or DEFAULT_VIDEO_SIZE, frames or DEFAULT_VIDEO_FRAMES, keep_aspect)
    if is_sdf_source(source):
        return sdf_signal(source, target=target)
    size = size or DEFAULT_IMAGE_SIZE
    if source in SAMPLE_IMAGES:
        return image_signal(load_sample_image(source), source, size, keep_aspect)
    if os.path.exists(source):
        return image_signal(read_image_file(source), os.path.basename(source), size, keep_aspect)
    if os.path.splitext(source)[1].lower() in IMAGE_SUFFIXES or os.sep in source:
        raise SignalError(f"{source}: no such file")
    from .sdf_signal import SDF_SHAPES
    from .sdf_time import TIME_SHAPES
    from .video import VIDEO_SAMPLES

    known = ", ".join(CURVE_SIGNALS + SAMPLE_IMAGES[:8])
    raise SignalError(f"unknown signal {source!r}: not a sample name (e.g. {known}, ...), a 3D shape "
                      f"({', '.join(SDF_SHAPES[:6])}, ...), a video ({', '.join(VIDEO_SAMPLES)}), a moving shape "
                      f"({', '.join(TIME_SHAPES)}) nor an existing file")

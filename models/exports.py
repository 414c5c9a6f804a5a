"""Exports from any view, without Qt: images re-rendered from the field at any resolution, the width slider's sweep
and the training progress as animations, and plot data as CSV.

Images are evaluated from the trainer's current weights on a fresh pixel grid (never grabbed from the screen), in
bands of rows so that memory stays bounded whatever the size. Call ``render_trainer_image`` and
``width_sweep_frames`` on the thread that owns the trainer (the app runs them through ``TrainingWorker.call``).
``TrainingTimelapse`` only copies arrays out of published snapshots, so the GUI thread can feed it. Every file is
written under a temporary name in its folder, then moved over the real name: a failed write leaves no partial file
and keeps what was there before.
"""
from __future__ import annotations

import csv
import math
import os
import tempfile
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from .fields import evaluate_in_chunks
from .mesh_io import ExportError, write_animation
from .streamable import evaluate_widths_in_chunks
from .time_render import evaluate_at_time

__all__ = ["render_trainer_image", "write_png", "width_sweep_frames", "TrainingTimelapse", "plot_csv",
           "read_plot_csv", "atomic_write", "to_uint8", "ExportError"]

BAND_PIXELS = 1 << 18
"""Pixels evaluated at once: an 8192 px image is rendered in bands of this many pixels (a few MB of activations)."""
CAPTION_HEIGHT = 16
CHECKER = (176, 208)
"""Grey levels of the neutral checkerboard that stands for cropped partitions in animation frames (no alpha there)."""


# -- images at any resolution ---------------------------------------------------------------------------------
def to_uint8(unit: np.ndarray) -> np.ndarray:
    """[0, 1] values as uint8: floor(v * 255 + 0.5), clipped (NaN becomes 0). In place on one float32 copy: the
    timelapse runs it on the GUI thread."""
    scaled = np.array(unit, dtype=np.float32, ndmin=1)
    scaled *= 255.0
    scaled += 0.5
    np.fmax(scaled, 0.0, out=scaled)  # fmax/fmin drop NaN in favour of the bound: NaN -> 0
    np.fmin(scaled, 255.0, out=scaled)
    return scaled.astype(np.uint8).reshape(np.shape(unit))


def _image_shape(trainer, size: int) -> tuple[int, int, tuple[float, float]]:
    """(H, W, half-extent) of a grid whose longer side is ``size``, with the signal's aspect ratio."""
    signal = trainer.signal
    if signal.kind == "curve":
        raise ValueError(f"{signal.name} is a 1D curve, not an image: export its plot data as CSV instead "
                         "(right-click a plot → Export data as CSV…)")
    if signal.kind in ("sdf", "sdf-time"):
        raise ValueError(f"{signal.name} is a 3D shape, not an image: export a mesh instead (Export mesh… in the 3D "
                         "view, or 'fieldlab render DIR --mesh OUT.ply')")
    if signal.kind not in ("image", "video"):
        raise ValueError(f"cannot render a {signal.kind!r} signal as an image")
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 2:
        raise ValueError(f"the image size must be an integer of at least 2 px, got {size!r}")
    h, w = signal.shape[-2:]
    scale = size / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale)), (float(signal.extent[0]), float(signal.extent[1]))


def _bands(h: int, w: int, extent: tuple[float, float]):
    """(first row, last row + 1, coordinates) of the (H, W) pixel grid in bands; the values are exactly
    models.signals.grid_coords'."""
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * (2.0 * extent[0] / w) - extent[0]
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) * (2.0 * extent[1] / h) - extent[1]
    rows = max(1, BAND_PIXELS // w)
    for start in range(0, h, rows):
        stop = min(h, start + rows)
        gy, gx = torch.meshgrid(ys[start:stop], xs, indexing="ij")
        yield start, stop, torch.stack([gx, gy], dim=-1).reshape(-1, 2)


def _growth_stage(trainer, width: int | None) -> int:
    """The stage index of ``width`` among the allocated widths (None: the stage in training)."""
    model = trainer.model
    allocated = tuple(model.widths)
    if width is None:
        return min(int(trainer.stage), len(allocated) - 1)
    if width not in allocated:
        raise ValueError(f"no stage of width {width}: this run has widths {', '.join(map(str, allocated))}")
    return allocated.index(width)


def _evaluator(trainer, width: int | None, time: float | None, residual: bool) -> tuple[Callable, int]:
    """A function from a band's (N, 2) coordinates to the list of outputs wanted, and the index to show."""
    model, signal = trainer.model, trainer.signal
    growing = trainer.stage_info() is not None and hasattr(model, "forward_widths")
    if (width is not None or residual) and not growing:
        raise ValueError("a width and a residual apply to a growing (streamable) field only")
    if signal.time is not None:
        t = -1.0 if time is None else float(time)
        if not -1.0 <= t <= 1.0:
            raise ValueError(f"time must lie in [-1, 1], got {time}")
        return (lambda coords: [evaluate_at_time(model, coords, t)]), 0
    if time is not None:
        raise ValueError(f"{signal.name} has no time axis: a time applies to the time lab's fields only")
    device = next(model.parameters()).device
    if growing:
        stage = _growth_stage(trainer, width)
        return (lambda coords: evaluate_widths_in_chunks(model, coords.to(device), stage)), stage
    return (lambda coords: [evaluate_in_chunks(model, coords.to(device))]), 0


@torch.no_grad()
def render_trainer_image(trainer, size: int, *, width: int | None = None, time: float | None = None,
                         residual: bool = False) -> np.ndarray:
    """The trainer's current field re-evaluated on a grid whose longer side is ``size`` px, as uint8.

    Image fields (plain MLPs, spectral-bias runs, sweep members), growing fields at ``width`` (a stage width that
    is allocated; None: the stage in training), with ``residual`` what that stage added (its output minus the
    previous width's, in a blue-white-red map symmetric about zero whose range is the 99.5th percentile of its
    magnitude, as the growth lab draws it), and time-lab video fields at ``time`` in [-1, 1] (None: -1, the first
    frame). Values map from [-1, 1] to 0..255 as the views show them (``to_uint8``). Returns (H, W, 1) for
    grayscale, (H, W, 3) for colour and residuals, and (H, W, 4) RGBA for a Local-Global field with cropped
    partitions: there the field has no value (NaN) and the pixels are fully transparent. 1D curves and 3D shapes
    raise a ValueError (export their plot data as CSV, or a mesh).
    """
    h, w, extent = _image_shape(trainer, size)
    evaluate, stage = _evaluator(trainer, width, time, residual)
    channels = trainer.signal.channels
    if residual:
        difference = np.empty((h, w), np.float32)
        for start, stop, coords in _bands(h, w, extent):
            outputs = evaluate(coords)
            previous = outputs[stage - 1] if stage else torch.zeros_like(outputs[stage])
            band = ((outputs[stage].float() - previous.float()) * 0.5).mean(dim=1)
            difference[start:stop] = band.cpu().numpy().reshape(stop - start, w)
        limit = float(max(np.percentile(np.abs(difference), 99.5), 1e-4))
        image = np.empty((h, w, 3), np.uint8)
        rows = max(1, BAND_PIXELS // w)
        for start in range(0, h, rows):  # colour in bands too: float RGB of a whole 8192 px image would be ~800 MB
            image[start:start + rows] = to_uint8(diverging_colors(difference[start:start + rows], limit))
        return image
    parts = trainer.partition_info()
    cropped = parts is not None and len(parts.present) < parts.num_partitions
    image = np.empty((h, w, 4 if cropped else channels), np.uint8)
    for start, stop, coords in _bands(h, w, extent):
        values = evaluate(coords)[stage].float().cpu().numpy().reshape(stop - start, w, channels)
        unit = to_uint8(np.clip((values + 1.0) * 0.5, 0.0, 1.0))
        if cropped:
            missing = np.isnan(values).any(axis=2)
            image[start:stop, :, :3] = unit if channels == 3 else unit[:, :, :1]
            image[start:stop, :, 3] = np.where(missing, 0, 255)
        else:
            image[start:stop] = unit
    return image


def diverging_colors(values: np.ndarray, limit: float) -> np.ndarray:
    """Blue (negative) - white (zero) - red (positive) RGB in [0, 1] for values in [-limit, limit]."""
    t = np.clip(np.asarray(values, dtype=np.float32) / max(limit, 1e-12), -1.0, 1.0)[..., None]
    white, red, blue = np.ones(3, np.float32), np.array([0.70, 0.09, 0.17], np.float32), np.array([0.13, 0.40, 0.67], np.float32)
    return np.where(t >= 0, white + t * (red - white), white - t * (blue - white))


# -- atomic writing ----------------------------------------------------------------------------------------------
def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(temporary_path)`` for a temporary file in ``path``'s folder, then move it over ``path``.

    Whatever fails, the temporary file is removed and an existing ``path`` is left as it was; OSErrors and
    ValueErrors become an ExportError with one line for the user.
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".partial", dir=folder)
        os.close(handle)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        write(temporary)
        os.replace(temporary, path)
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}") from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_png(path: str, array: np.ndarray) -> str:
    """Write a uint8 image (H, W), (H, W, 1), (H, W, 3) or RGBA (H, W, 4) as a PNG, atomically; returns a summary."""
    from PIL import Image

    image = np.ascontiguousarray(array)
    if image.dtype != np.uint8:
        raise ValueError(f"write_png wants uint8 values, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"not an image array: shape {image.shape}")
    picture = Image.fromarray(image)
    atomic_write(path, lambda temporary: picture.save(temporary, format="PNG"))
    return f"wrote a {image.shape[1]}x{image.shape[0]} px PNG to {path}"


# -- the width slider's sweep ------------------------------------------------------------------------------------
@torch.no_grad()
def width_sweep_frames(trainer, size: int, *, residual: bool = False, caption: bool = True) -> list[np.ndarray]:
    """One RGB uint8 frame per allocated width of a growing field (narrowest first), each with a caption strip
    ('width 32 · 1,234 parameters · stage 2/4 trained'): the width slider swept from end to end."""
    info = trainer.stage_info()
    if info is None or not hasattr(trainer.model, "forward_widths"):
        raise ValueError("the width sweep needs a growing (streamable) field: use the spectral growth lab")
    frames = []
    for k, width in enumerate(trainer.model.widths):
        image = _rgb(render_trainer_image(trainer, size, width=width, residual=residual))
        if caption:
            what = "residual" if residual else "width"
            text = f"{what} {width} · {info.params[k]:,} parameters · stage {k + 1}/{len(info.widths)}, {info.states[k]}"
            image = with_caption(image, text)
        frames.append(image)
    return frames


def _rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W), (H, W, 1|3|4) as RGB (alpha composited over the neutral checkerboard)."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.shape[2] == 4:
        alpha = image[:, :, 3:] > 0
        return np.where(alpha, image[:, :, :3], checkerboard(image.shape[:2])[:, :, None]).astype(np.uint8)
    return image


def checkerboard(shape: tuple[int, int], cell: int = 8) -> np.ndarray:
    rows, cols = np.indices(shape)
    return np.where(((rows // cell) + (cols // cell)) % 2 == 0, CHECKER[0], CHECKER[1]).astype(np.uint8)


def with_caption(image: np.ndarray, text: str, marks: Sequence[tuple[int, int, str]] = ()) -> np.ndarray:
    """``image`` (RGB uint8) below a white strip holding ``text``; with ``marks`` ((x0, x1, label): a label for the
    columns x0..x1, cut to fit) a second line holds those labels."""
    from PIL import Image, ImageDraw, ImageFont

    height = CAPTION_HEIGHT * (2 if marks else 1)
    strip = Image.new("RGB", (image.shape[1], height), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default(11)
    draw.text((3, 1), text, fill=(20, 20, 20), font=font)
    for x0, x1, label in marks:
        while label and font.getlength(label) > x1 - x0 - 4:
            label = label[:-2] + "…" if len(label) > 2 else ""
        if label:
            draw.text((x0 + 2, CAPTION_HEIGHT), label, fill=(70, 70, 70), font=font)
    return np.concatenate([np.asarray(strip), image], axis=0)


# -- training progress -------------------------------------------------------------------------------------------
class TrainingTimelapse:
    """A bounded record of training progress, fed from published snapshots.

    Each recorded frame holds the runs' reconstructions side by side as uint8 at display resolution (3D runs:
    their slice; time-lab runs: their frame at the slider's t; curves: a small line plot over the target); the
    'step N' caption (and the run labels, for several runs) is added when frames are read. At most ``max_frames``
    frames (and about ``max_bytes``) are kept: when full, every second frame is dropped, and from then on new
    frames are recorded only as far apart as the kept ones now are (at least twice the previous spacing), so that
    the whole run stays evenly covered; the first and the latest snapshot are always among ``frames()``. A new
    generation (reset, new session) or a step going backwards starts a new record. ``record`` does no more than a
    few array copies per snapshot.
    """

    def __init__(self, max_frames: int = 240, max_bytes: int = 96 << 20, max_width: int = 1024):
        if max_frames < 2:
            raise ValueError("a timelapse keeps at least 2 frames")
        self.max_frames, self.max_bytes, self.max_width = max_frames, max_bytes, max_width
        self.clear()

    def clear(self) -> None:
        self._kept: list[tuple[int, np.ndarray, tuple]] = []
        self._latest: tuple[int, np.ndarray, tuple] | None = None
        self._generation: int | None = None
        self._gap = 1
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries())

    @property
    def steps(self) -> list[int]:
        """Steps of the frames ``frames()`` returns, in order."""
        return [entry[0] for entry in self._entries()]

    def _entries(self) -> list[tuple[int, np.ndarray, tuple]]:
        if self._latest is not None and (not self._kept or self._latest[0] > self._kept[-1][0]):
            return [*self._kept, self._latest]
        return list(self._kept)

    def record(self, snapshot) -> bool:
        """Take a snapshot's reconstructions; True if it became a kept frame."""
        if not snapshot.runs:
            return False
        last = self._latest[0] if self._latest is not None else None
        if snapshot.generation != self._generation or (last is not None and snapshot.step < last):
            self.clear()
            self._generation, last = snapshot.generation, None
        if last is not None and snapshot.step == last:
            return False  # a paused or message-only snapshot: nothing new trained
        frame, marks = self._compose(snapshot)
        self._latest = (snapshot.step, frame, marks)
        if self._kept and snapshot.step - self._kept[-1][0] < self._gap:
            return False
        self._kept.append(self._latest)
        self._bytes += frame.nbytes
        while len(self._kept) > self.max_frames or (self._bytes > self.max_bytes and len(self._kept) > 2):
            self._kept = self._kept[::2]
            self._bytes = sum(entry[1].nbytes for entry in self._kept)
            span = self._kept[-1][0] - self._kept[0][0]
            self._gap = max(self._gap * 2, span / max(1, len(self._kept) - 1))  # new frames as sparse as the kept
        return True

    def _compose(self, snapshot) -> tuple[np.ndarray, tuple]:
        panels = [_run_panel(run, snapshot.target) for run in snapshot.runs]
        total = sum(p.shape[1] for p in panels) + 2 * (len(panels) - 1)
        factor = max(1, math.ceil(total / self.max_width))
        if factor > 1:
            panels = [p[::factor, ::factor] for p in panels]
        height = max(p.shape[0] for p in panels)
        color = any(p.ndim == 3 for p in panels)
        width = sum(p.shape[1] for p in panels) + 2 * (len(panels) - 1)
        frame = np.full((height, width, 3) if color else (height, width), 255, np.uint8)
        x, marks = 0, []
        for panel, run in zip(panels, snapshot.runs):
            frame[:panel.shape[0], x:x + panel.shape[1]] = panel if panel.ndim == frame.ndim else panel[:, :, None]
            marks.append((x, run.label))
            x += panel.shape[1] + 2
        return frame, tuple(marks)

    def frames(self, caption: bool = True) -> list[np.ndarray]:
        """Every kept frame as RGB uint8, all the same size (padded with white), captioned 'step N' and the run labels."""
        entries = self._entries()
        if not entries:
            return []
        height = max(entry[1].shape[0] for entry in entries)
        width = max(entry[1].shape[1] for entry in entries)
        frames = []
        for step, frame, marks in entries:
            rgb = np.full((height, width, 3), 255, np.uint8)
            rgb[:frame.shape[0], :frame.shape[1]] = frame if frame.ndim == 3 else frame[:, :, None]
            if caption:
                rgb = with_caption(rgb, f"step {step}", _label_marks(marks, width))
            frames.append(rgb)
        return frames

    def write(self, path: str, fps: float = 12.0) -> str:
        """The recorded frames as an MP4 or GIF (models.mesh_io.write_animation); returns a one-line summary."""
        frames = self.frames()
        if not frames:
            raise ExportError("no training progress recorded yet")
        return write_animation(path, frames, fps)


def _label_marks(marks: tuple, width: int) -> list[tuple[int, int, str]]:
    """Run labels over their panels (several runs only)."""
    if len(marks) < 2:
        return []
    ends = [x for x, _ in marks[1:]] + [width]
    return [(x, end, label) for (x, label), end in zip(marks, ends)]


def _run_panel(run, target: np.ndarray) -> np.ndarray:
    """One run's picture at display resolution: uint8 (H, W) or (H, W, 3)."""
    if run.sdf is not None:  # a 3D slice (also a moving shape's): blue inside, red outside, as the slice view draws it
        shifted = run.sdf.slice_field - run.sdf.level
        rgb = diverging_colors(shifted if run.sdf.inside_below else -shifted, 0.5)
        return to_uint8(rgb[::-1])  # the slice view puts its first row at the bottom
    values = np.asarray(run.reconstruction)
    if values.ndim == 1:
        return _curve_panel(values, np.asarray(target).reshape(-1) if np.size(target) == values.size else None)
    image = to_uint8(values)
    if run.partitions is not None:
        missing = np.isnan(values) if values.ndim == 2 else np.isnan(values).any(axis=2)
        if missing.any():
            board = checkerboard(values.shape[:2])
            image = np.where(missing if image.ndim == 2 else missing[:, :, None],
                             board if image.ndim == 2 else board[:, :, None], image).astype(np.uint8)
    return image


def _curve_panel(values: np.ndarray, target: np.ndarray | None, height: int = 128, columns: int = 320) -> np.ndarray:
    """A [0, 1] curve drawn dark over its target in light grey, at most ``columns`` samples wide (vectorised)."""
    if values.size > columns:
        keep = np.linspace(0, values.size - 1, columns).round().astype(int)
        values, target = values[keep], (target[keep] if target is not None else None)
    panel = np.full((height, values.size), 255, np.uint8)
    ticks = np.arange(height)[:, None]
    for curve, shade in ((target, 190), (values, 30)):
        if curve is None:
            continue
        rows = np.round((1.0 - np.clip(np.nan_to_num(curve, nan=0.5), 0, 1)) * (height - 1)).astype(int)
        before = np.concatenate([rows[:1], rows[:-1]])
        low, high = np.minimum(rows, before), np.maximum(rows, before)
        panel[(ticks >= low[None]) & (ticks <= high[None])] = shade
    return panel


# -- plot data ---------------------------------------------------------------------------------------------------
def plot_csv(path: str, series: Mapping[str, tuple] | Sequence[tuple]) -> str:
    """Write named (x, y) series, possibly of different lengths, into one CSV, atomically.

    ``series`` maps names to (x, y), or is a sequence of (name, x, y). The header has two columns per series,
    ``name_x`` and ``name_y`` (repeated names get ' (2)', ' (3)', ...); shorter series leave their cells empty below
    their last point. Numbers are written in full precision (repr), NaN as 'nan'. Returns a one-line summary.
    """
    items = list(series.items()) if isinstance(series, Mapping) else [(name, (x, y)) for name, x, y in series]
    columns, header, seen = [], [], {}
    for name, (x, y) in items:
        xs, ys = np.asarray(x, np.float64).reshape(-1), np.asarray(y, np.float64).reshape(-1)
        if xs.size != ys.size:
            raise ValueError(f"series {name!r}: {xs.size} x values but {ys.size} y values")
        label = str(name) or "series"
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label} ({seen[label]})"
        header += [f"{label}_x", f"{label}_y"]
        columns += [xs, ys]
    if not columns:
        raise ExportError("no plot data to write")
    length = max(column.size for column in columns)

    def write(temporary: str) -> None:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            _write_rows(handle, header, ([repr(float(c[i])) if i < c.size else "" for c in columns]
                                         for i in range(length)))

    atomic_write(path, write)
    return f"wrote {len(items)} series ({length} rows) to {path}"


def _write_rows(handle, header: list[str], rows) -> None:
    writer = csv.writer(handle)
    writer.writerow(header)
    writer.writerows(rows)


def read_plot_csv(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """What ``plot_csv`` wrote: name -> (x, y), each series cut at its own length."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise ValueError(f"{path}: empty CSV")
    header, body = rows[0], rows[1:]
    result = {}
    for i in range(0, len(header) - 1, 2):
        name = header[i][:-2] if header[i].endswith("_x") else header[i]
        pairs = [(row[i], row[i + 1]) for row in body if i + 1 < len(row) and row[i] != ""]
        xs = np.array([float(a) for a, _ in pairs], np.float64)
        ys = np.array([float(b) for _, b in pairs], np.float64)
        result[name] = (xs, ys)
    return result

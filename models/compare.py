"""The comparison board's data: runs pinned from any lab, their Pareto front, settings table, A−B and CSV.

A ``PinnedRun`` is a frozen copy of one run of a snapshot (``RunSnapshot``) with the context needed to compare
it later with runs of other sessions and labs: the scene's settings, the run's own architecture, its metric
history against step and training seconds, and the image it showed. Nothing here refers to the live session:
later snapshots, restarts or a closed window leave a pin as it was.

Images report PSNR in dB (higher is better); 3D fields report Chamfer-L1 (lower is better): every pin carries
its metric's name and direction, and the board compares pins of one metric at a time.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from .scene_io import scene_to_dict
from .scenes import Scene
from .signals import Signal
from .snapshots import RunSnapshot, Snapshot

PSNR = "PSNR (dB)"
CHAMFER = "Chamfer-L1"
HIGHER_IS_BETTER = {PSNR: True, CHAMFER: False}

LAB_TITLES = {"image": "image lab", "spectral-bias": "spectral bias", "growth": "growth lab", "crop": "crop lab",
              "sweep": "FINER++ sweep", "time": "time lab"}
LAB_SECTIONS = {"growth": ("widths", "growth", "activation", "stage_bias_ranges", "baseline"), "crop": ("crop",),
                "sweep": ("sweep",), "time": ("time",)}
"""Scene settings that only their own lab reads: a pin of another lab leaves them out of its settings."""
SLICE_LIMIT = 0.5
"""A 3D slice (signed distances) is shown from level - 0.5 to level + 0.5, as the 3D lab shows it."""
CSV_COLUMNS = ("pin", "name", "lab", "signal", "params", "metric", "step", "seconds", "value")


def _frozen(array, dtype=None) -> np.ndarray:
    """A private, read-only copy (never a view of the snapshot's array)."""
    copy = np.array(array, dtype=dtype, copy=True)
    copy.setflags(write=False)
    return copy


@dataclass(frozen=True, eq=False)
class PinnedRun:
    """One run, pinned to the board: its settings, metric history and image, copied at pinning time."""

    number: int
    """Running number on the board (#1, #2, ...), never reused."""
    name: str
    """e.g. '#3 SIREN (w0=30) w=128 (image lab, step 1200)'."""
    short_name: str
    """The name without lab and step: '#3 SIREN (w0=30) w=128'."""
    label: str
    """The run's own label in its lab."""
    lab: str
    """The scene's preset ('image', 'spectral-bias', 'growth', 'crop', 'sweep', 'time')."""
    lab_title: str
    """The lab as a reader says it ('image lab', '3D growth lab', ...)."""
    signal: str
    scene: dict
    """models.scene_io.scene_to_dict of the session's scene."""
    config: dict | None
    """The run's own FieldConfig as a dict (None for growing and partitioned fields)."""
    params: int
    step: int
    seconds: float
    """Wall-clock seconds the run had spent in training steps."""
    metric_name: str
    """PSNR or CHAMFER."""
    metric: float
    """The final value of that metric (NaN when not measured yet)."""
    history: np.ndarray
    """(K, 3): step, training seconds, metric."""
    seconds_estimated: bool
    """True when the run kept no seconds per row: they are step * seconds / step of the pin."""
    image: np.ndarray | None
    """What the run showed: [0, 1] HxW or HxWx3 (a video: the frame at t), a 3D slice's field values, or a curve."""
    target: np.ndarray | None
    """The matching target (same shape), or None when the lab does not provide one."""
    image_kind: str
    """'image', 'slice' (signed distances or occupancy, diverging colours) or 'curve' (1D)."""
    image_levels: tuple[float, float]
    """Fixed display levels of ``image``."""

    @property
    def higher_is_better(self) -> bool:
        return HIGHER_IS_BETTER[self.metric_name]

    def settings(self) -> dict:
        """Flat settings ('field.width', 'train.lr', ...): the scene's, the run's own architecture under 'field.'
        (a comparison's runs differ there), and the signal. Other labs' sections are left out."""
        scene = {key: value for key, value in self.scene.items() if _belongs_to_lab(key, self.lab)}
        flat = {"signal": self.signal, **flatten(scene)}
        if self.config is not None:
            flat.update(flatten({"field": self.config}))
        return flat


def _belongs_to_lab(key: str, lab: str) -> bool:
    owners = [name for name, keys in LAB_SECTIONS.items() if key in keys]
    return not owners or lab in owners


def flatten(data: dict, prefix: str = "") -> dict:
    """Nested dicts as one level of dotted keys; lists become tuples (hashable, comparable)."""
    flat = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = _hashable(value)
    return flat


def _hashable(value):
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    return value


def pin_run(run: RunSnapshot, snapshot: Snapshot, scene: Scene, signal: Signal, number: int) -> PinnedRun:
    """Pin ``run`` (one of ``snapshot.runs``) of a session training ``scene`` on ``signal``."""
    if run.sdf is not None:
        value = run.sdf.metrics.get("chamfer_l1")
        metric_name, metric = CHAMFER, float(value) if value is not None else math.nan
        rows = np.asarray(run.sdf.history, dtype=np.float64).reshape(-1, 4)[:, :2]
        seconds = None
    else:
        metric_name, metric = PSNR, float(run.psnr)
        rows = np.asarray(run.psnr_history, dtype=np.float64).reshape(-1, 2)
        seconds = run.psnr_seconds
    estimated = seconds is None or len(seconds) != len(rows) or len(rows) == 0
    if estimated:
        rate = run.seconds / run.step if run.step > 0 else 0.0
        seconds = rows[:, 0] * rate
    history = np.column_stack([rows[:, 0], np.asarray(seconds, dtype=np.float64), rows[:, 1]])
    image, target, kind, levels = _display(run, snapshot)
    lab = scene.preset
    lab_title = LAB_TITLES.get(lab, lab)
    if signal.kind in ("sdf", "sdf-time") and lab != "time":
        lab_title = "3D lab" if lab == "image" else "3D " + lab_title
    config = run.config.to_dict() if run.config is not None else None
    short_name = _short_name(number, run)
    return PinnedRun(number=number, name=f"{short_name} ({lab_title}, step {run.step})", short_name=short_name,
                     label=run.label, lab=lab,
                     lab_title=lab_title, signal=signal.name, scene=scene_to_dict(scene), config=config,
                     params=int(run.params), step=int(run.step), seconds=float(run.seconds), metric_name=metric_name,
                     metric=metric, history=_frozen(history, np.float64), seconds_estimated=estimated, image=image,
                     target=target, image_kind=kind, image_levels=levels)


def pin_snapshot(snapshot: Snapshot, scene: Scene, signal: Signal, first_number: int) -> list[PinnedRun]:
    """Every run of ``snapshot`` that has trained (a baseline still waiting is left out), numbered from
    ``first_number`` on."""
    runs = [run for run in snapshot.runs if not run.waiting]
    return [pin_run(run, snapshot, scene, signal, first_number + i) for i, run in enumerate(runs)]


def _short_name(number: int, run: RunSnapshot) -> str:
    width = None
    if run.config is not None:
        width = run.config.width
    elif run.stages is not None:
        width = run.stages.widths[run.stages.stage]
    label = run.label if width is None or "w=" in run.label else f"{run.label} w={width}"
    return f"#{number} {label}"


def _display(run: RunSnapshot, snapshot: Snapshot):
    """(image, target, kind, levels) copied from the run: a slice for 3D, the frame at t for a video."""
    if run.sdf is not None:
        level = float(run.sdf.level)
        return (_frozen(run.sdf.slice_field, np.float32), _frozen(run.sdf.slice_target, np.float32), "slice",
                (level - SLICE_LIMIT, level + SLICE_LIMIT))
    image = np.asarray(run.reconstruction, dtype=np.float32)
    kind = "curve" if image.ndim == 1 else "image"
    target = np.asarray(snapshot.target)
    if run.time is not None and target.ndim == image.ndim + 1 and target.shape[1:] == image.shape:
        target = target[min(max(run.time.nearest, 0), len(target) - 1)]
    return _frozen(image), _frozen(target, np.float32) if target.shape == image.shape else None, kind, (0.0, 1.0)


def pareto_front(points, higher_is_better: bool = True) -> np.ndarray:
    """Indices of the points (params, metric) that no other point beats with no more parameters, in order of
    increasing parameters. A point is dominated by one with params <= and a metric at least as good, one of the
    two strictly. Points with a non-finite value are ignored; of exact duplicates the first is kept."""
    data = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    finite = np.flatnonzero(np.isfinite(data).all(axis=1))
    if finite.size == 0:
        return np.zeros(0, dtype=np.int64)
    sign = 1.0 if higher_is_better else -1.0
    # fewest parameters first; among equal counts the best metric first, then the earliest point
    order = sorted(finite, key=lambda i: (data[i, 0], -sign * data[i, 1], i))
    front, best = [], -math.inf
    for i in order:
        value = sign * data[i, 1]
        if value > best:
            front.append(i)
            best = value
    return np.asarray(front, dtype=np.int64)


def pareto_steps(params, metrics) -> tuple[np.ndarray, np.ndarray]:
    """The staircase through front points (given in order of increasing params): each value holds until the
    next point's parameter count, where it jumps to that point's."""
    params, metrics = np.asarray(params, float), np.asarray(metrics, float)
    if params.size == 0:
        return params, metrics
    xs, ys = [params[0]], [metrics[0]]
    for k in range(1, params.size):
        xs += [params[k], params[k]]
        ys += [metrics[k - 1], metrics[k]]
    return np.asarray(xs), np.asarray(ys)


@dataclass(frozen=True)
class SettingsTable:
    """One row per pin, one column per setting; ``differing`` names the columns whose values differ."""

    columns: tuple[str, ...]
    rows: tuple[tuple, ...]
    """Raw values (MISSING where a pin has no such setting)."""
    differing: frozenset[str]

    def differs(self, column: str) -> bool:
        return column in self.differing


MISSING = None
"""Value of a setting a pin does not have (another lab's); shown as '–'."""


def settings_rows(pins, differing_first: bool = True) -> SettingsTable:
    """The union of every pin's settings as a table. A column differs when the pins that have the setting do not
    all agree (a pin of another lab, without it, does not count). ``differing_first``: those columns lead, each
    group keeping the settings' own order."""
    settings = [pin.settings() for pin in pins]
    columns: list[str] = []
    seen = set()
    for flat in settings:
        for key in flat:
            if key not in seen:
                seen.add(key)
                columns.append(key)
    differing = set()
    for key in columns:
        values = [flat[key] for flat in settings if key in flat]
        if any(not _same(values[0], v) for v in values[1:]):
            differing.add(key)
    if differing_first:
        columns = [c for c in columns if c in differing] + [c for c in columns if c not in differing]
    rows = tuple(tuple(flat.get(key, MISSING) for key in columns) for flat in settings)
    return SettingsTable(tuple(columns), rows, frozenset(differing))


def _same(a, b) -> bool:
    """Equal values (1 and 1.0 are the same setting; True and 1 are not)."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def format_setting(value) -> str:
    """A setting as table text: numbers with :g, lists comma-separated, missing as '–'."""
    if value is MISSING:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(format_setting(v) for v in value) + ")" if any(isinstance(v, tuple) for v in value) \
            else ", ".join(format_setting(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class Difference:
    """A − B of two pinned images of the same shape."""

    values: np.ndarray
    """Exactly a − b (NaN where either is NaN, e.g. a cropped partition)."""
    display: np.ndarray
    """HxW to draw: ``values``, channels averaged for colour images, NaN as 0."""
    level: float
    """Symmetric display level: draw from -level to +level (a 1-2-5 number at or above max |display|)."""


class ShapeMismatch(ValueError):
    """Two images cannot be subtracted pixel by pixel."""


def difference(a: np.ndarray, b: np.ndarray) -> Difference:
    """A − B on their common shape; different sizes or channel counts raise ShapeMismatch (no resizing: a
    resampled image would show interpolation, not what the fields learned)."""
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    if a.shape != b.shape:
        channels = [s[2] if len(s) == 3 else 1 for s in (a.shape, b.shape)]
        what = "channel counts" if a.shape[:2] == b.shape[:2] and channels[0] != channels[1] else "shapes"
        raise ShapeMismatch(f"cannot subtract: the {what} differ (A is {_describe_shape(a.shape)}, "
                            f"B is {_describe_shape(b.shape)}); pin runs trained at the same size")
    values = a - b
    display = values.mean(axis=2) if values.ndim == 3 else values
    display = np.nan_to_num(display, nan=0.0)
    top = float(np.max(np.abs(display))) if display.size else 0.0
    return Difference(_frozen(values), _frozen(display), nice_level(top))


def _describe_shape(shape) -> str:
    if len(shape) == 1:
        return f"a curve of {shape[0]} samples"
    text = f"{shape[1]}×{shape[0]} px"
    return text + (f", {shape[2]} channels" if len(shape) == 3 else ", 1 channel")


def nice_level(value: float, floor: float = 1e-3) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (at least ``floor``)."""
    value = max(float(value), floor) if math.isfinite(value) else 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for factor in (1.0, 2.0, 5.0, 10.0):
        if factor * power >= value * (1 - 1e-12):
            return factor * power
    return 10.0 * power


def board_csv(pins) -> str:
    """Every pin's history as CSV text, one row per (pin, step): pin number, name, lab, signal, params,
    metric name, step, training seconds and the metric's value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for pin in pins:
        for step, seconds, value in pin.history:
            writer.writerow([pin.number, pin.name, pin.lab_title, pin.signal, pin.params, pin.metric_name,
                             int(step), repr(float(seconds)), repr(float(value))])
    return out.getvalue()


def read_board_csv(text: str) -> dict[int, dict]:
    """``board_csv``'s text read back: pin number -> {'name', 'lab', 'signal', 'params', 'metric', 'history'}
    with history (K, 3) as in PinnedRun."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
        raise ValueError(f"not a comparison board CSV (columns {reader.fieldnames})")
    pins: dict[int, dict] = {}
    for row in reader:
        pin = pins.setdefault(int(row["pin"]), {"name": row["name"], "lab": row["lab"], "signal": row["signal"],
                                                "params": int(row["params"]), "metric": row["metric"], "rows": []})
        pin["rows"].append((float(row["step"]), float(row["seconds"]), float(row["value"])))
    for pin in pins.values():
        pin["history"] = np.asarray(pin.pop("rows"), dtype=np.float64).reshape(-1, 3)
    return pins

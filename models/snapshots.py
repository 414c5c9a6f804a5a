"""Snapshots: what a view needs to draw one moment of a training session, made off the training thread.

The worker hands over cheap copies taken between steps (a weights copy, or the full-signal prediction a
full-batch step computed anyway); a ``SnapshotRenderer`` thread evaluates the field at display
resolution, computes error, spectrum and PSNR, and publishes an immutable ``Snapshot`` into a
latest-wins ``LatestSlot``. Training never waits for a snapshot to be drawn.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from .croppable import PartitionInfo, partition_psnrs
from .fields import FieldConfig, evaluate_in_chunks
from .first_layer import FirstLayerView, first_layer_view
from .growth import StageInfo
from .metrics import high_frequency_energy, log_spectrum, psnr, radial_power_spectrum
from .sdf_render import SdfRenderer, SdfView, SdfViewSettings, module_field
from .signals import Signal
from .time_render import REFRESH_BUDGET, Superseded, TimeRenderer, TimeView, TimeViewSettings
from .streamable import evaluate_widths_in_chunks
from .width_views import WidthCache, WidthView


@dataclass(frozen=True)
class RunSnapshot:
    """What one trained field looks like at one moment (all arrays read-only, display-ready)."""

    label: str
    params: int
    step: int
    """Update count of the weights that produced ``reconstruction``."""
    reconstruction: np.ndarray
    """[0, 1]; HxW, HxWx3 or N (curves)."""
    error: np.ndarray
    """|reconstruction - target|, channels averaged: HxW or N."""
    spectrum: np.ndarray
    """log(1 + |FFT|) of the reconstruction (see metrics.log_spectrum)."""
    psnr: float
    loss: float
    psnr_history: np.ndarray
    """(K, 2): step, PSNR."""
    loss_history: np.ndarray
    """(K, 2): step, training loss."""
    stages: StageInfo | None = None
    """For a growing (streamable) field: its stages; None otherwise."""
    widths: tuple[WidthView, ...] = ()
    """For a growing field: every allocated width, ready for the width slider."""
    partitions: PartitionInfo | None = None
    """For a partitioned (croppable) field: its layout; cropped samples are NaN in reconstruction and error,
    and psnr covers the present partitions only."""
    partition_psnr: np.ndarray | None = None
    """PSNR per partition (flat index; NaN where cropped)."""
    extension_step: int | None = None
    """For a run trained on part of the signal first: the step it moved on to the whole signal."""
    waiting: bool = False
    """The run has not started (a from-scratch baseline waiting for the extension): nothing to plot yet."""
    config: FieldConfig | None = None
    """The architecture of a plain field (activation, k, ...); None for growing and partitioned fields."""
    hf_energy: float = float("nan")
    """Share of the reconstruction's spectral energy above metrics.HF_CUTOFF cycles per sample."""
    first_layer: FirstLayerView | None = None
    """For an activated plain field: its first layer's pre-activation histogram and neuron frequencies."""
    sdf: SdfView | None = None
    """For a 3D signal: the mesh, slice and surface metrics (then ``reconstruction`` and ``error`` show the slice,
    and ``psnr`` is NaN); for a growing field, of the width in training."""
    sdf_widths: tuple[SdfView, ...] = ()
    """For a growing field on a 3D signal: every allocated width's mesh, for the width slider."""
    time: TimeView | None = None
    """For a temporal signal: the field at the time slider's t (then ``reconstruction`` and ``error`` show that
    frame, ``psnr`` is the rolling training PSNR over every frame and ``psnr_history`` its course)."""
    seconds: float = 0.0
    """Wall-clock seconds the run has spent in training steps so far."""
    psnr_seconds: np.ndarray | None = None
    """Training seconds at each row of ``psnr_history`` (None where the lab keeps no such record)."""


@dataclass(frozen=True)
class Snapshot:
    generation: int
    """Bumped by every reset or rebuild, so views can drop curves of the previous run."""
    step: int
    running: bool
    steps_per_second: float
    device: str
    signal: Signal
    target: np.ndarray
    target_spectrum: np.ndarray
    runs: tuple[RunSnapshot, ...]
    message: str = ""
    """Something that happened and that the user should read (divergence recovered, ...)."""
    error: str = ""
    """An exception inside the worker, one paragraph; training is paused."""
    target_radial_power: tuple[np.ndarray, np.ndarray] | None = None
    """(frequencies, power) of the target's radial power spectrum (metrics.radial_power_spectrum)."""
    target_hf_energy: float = float("nan")
    """metrics.high_frequency_energy of the target, to read the runs' values against."""
    compute: "ComputeShare | None" = None
    """Where the session's time went lately: training steps vs drawing views (the compute budget meter)."""
    timeline: tuple = ()
    """Steps of the training states the worker keeps (its timeline): where a branch can start exactly."""


@dataclass(frozen=True)
class ComputeShare:
    """Shares of wall-clock time over the last publishing window (each in [0, 1]; the rest is idle)."""

    training: float
    """Inside training steps."""
    rendering: float
    """Drawing snapshots (evaluating fields at display resolution, meshes, spectra)."""
    render_duty: float
    """The renderer's allowance: it may keep a core busy at most this share of the time."""
    pace_ms: float = 0.0
    """Slow motion: at most one step per this many milliseconds (0: as fast as possible)."""


class LatestSlot:
    """A one-item mailbox: ``put`` replaces, ``take`` empties. Readers never see a half-written value.

    ``merge(old, new)``, if given, builds what replaces a value nobody took (to carry its news along).
    """

    def __init__(self, merge=None):
        self._lock = threading.Lock()
        self._value = None
        self._merge = merge

    def put(self, value) -> None:
        with self._lock:
            if self._value is not None and self._merge is not None:
                value = self._merge(self._value, value)
            self._value = value

    def take(self):
        with self._lock:
            value, self._value = self._value, None
            return value


@dataclass
class RunState:
    """One run as the worker hands it over: copies only, nothing the trainer will touch again."""

    label: str
    params: int
    step: int
    evaluator: torch.nn.Module
    """A private copy of the field's architecture, used only by the renderer."""
    coords: torch.Tensor
    weights: dict | None
    """State-dict copy to evaluate, or None when ``prediction`` is given."""
    prediction: torch.Tensor | None
    loss: float
    loss_history: np.ndarray
    stages: StageInfo | None = None
    partitions: PartitionInfo | None = None
    extension_step: int | None = None
    scored: np.ndarray | None = None
    """Boolean mask (display shape) of the samples PSNR covers; None: all of them."""
    waiting: bool = False
    config: FieldConfig | None = None
    first_layer: tuple | None = None
    """(activation, weight copy, bias copy) of an activated plain field's first layer (first_layer.first_layer_of)."""
    holdout: float = 0.0
    """A temporal signal: the share of every frame's samples the run never trains on."""
    parameter_split: dict | None = None
    """A temporal signal: shared and per-time parameter counts (models/time_training.py)."""
    unseen_frames: tuple = ()
    """A temporal signal: the frames the run never trains on."""
    seconds: float = 0.0
    """Wall-clock seconds spent in the run's training steps."""
    psnr_seed: tuple | None = None
    """(steps, values) of PSNR measured before this renderer saw the run (a reopened session's curve)."""


@dataclass
class RenderRequest:
    generation: int
    step: int
    running: bool
    steps_per_second: float
    device: str
    runs: list[RunState]
    message: str = ""
    error: str = ""
    sdf_settings: SdfViewSettings | None = None
    """For a 3D signal: how the views want it drawn (None: the defaults)."""
    still: bool = False
    """For a 3D signal: make the fine mesh now even though training runs ('extract now')."""
    time_settings: TimeViewSettings | None = None
    """For a temporal signal: the time slider and what to draw at it (None: the defaults)."""
    compute: ComputeShare | None = None
    timeline: tuple = ()

    @property
    def wants_still(self) -> bool:
        return self.still or not self.running


def _filled(field, value: float):
    def evaluate(points: torch.Tensor) -> torch.Tensor:
        return torch.nan_to_num(field(points), nan=value)
    return evaluate


def carry_news(old: Snapshot, new: Snapshot) -> Snapshot:
    """``new``, also telling the message and error of an ``old`` snapshot that was never shown."""
    if not old.message and not old.error:
        return new
    message = "; ".join(m for m in (old.message, new.message) if m)
    return replace(new, message=message, error=new.error or old.error)


def readonly(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.setflags(write=False)
    return array


class SnapshotRenderer:
    """A thread that turns RenderRequests into Snapshots; a newer request replaces a pending one."""

    def __init__(self, signal: Signal, output: LatestSlot):
        self.signal = signal
        self.output = output
        self.time = TimeRenderer(signal) if signal.time is not None else None
        """The time lab's part (the frame or mesh at the slider's t, per-frame scores) for a temporal signal."""
        self.sdf = SdfRenderer(signal) if signal.sdf is not None and self.time is None else None
        """The 3D part (meshes, slices, surface metrics) for a 3D signal."""
        if self.time is not None:  # a video's frames and a shape's meshes are drawn at t, one at a time
            self.target = readonly(signal.target_display()) if signal.kind == "video" else readonly(np.zeros((1, 1), np.float32))
            self.target_spectrum = readonly(np.zeros((1, 1), np.float32))
            self.target_radial_power, self.target_hf_energy = None, float("nan")
        elif self.sdf is None:
            self.target = readonly(signal.target_display())
            self.target_spectrum = readonly(log_spectrum(self.target))
            self.target_radial_power = tuple(readonly(a) for a in radial_power_spectrum(self.target))
            self.target_hf_energy = high_frequency_energy(self.target)
        else:  # a 3D target has no image of its own: the views draw its slices and mesh
            self.target = self.target_spectrum = readonly(np.zeros((1, 1), np.float32))
            self.target_radial_power, self.target_hf_energy = None, float("nan")
        self.cost = 0.0
        """Seconds the last (live) render took (the worker paces its requests by it)."""
        self.busy = 0.0
        """Seconds spent rendering since the renderer started (the compute budget meter reads it)."""
        self.default_duty = 1 / 2 if self.sdf is not None or (self.time is not None and not self.time.is_video) else 1 / 6
        """The lab's own render allowance: meshes get more, since a still 3D view is what the user watches."""
        self.duty = self.default_duty
        """Share of the time the renderer may keep a core busy: the worker publishes at most every cost / duty s."""
        self._condition = threading.Condition()
        self._pending: RenderRequest | None = None
        self._stopped = False
        self._psnr: dict[tuple[int, int], list[tuple[int, float]]] = {}
        self._widths = WidthCache(signal)
        self._thread = threading.Thread(target=self._main, name="fieldlab-snapshots", daemon=True)
        self._thread.start()

    @property
    def draws_meshes(self) -> bool:
        return self.sdf is not None or (self.time is not None and not self.time.is_video)

    def _newer_waiting(self) -> bool:
        return self._pending is not None or self._stopped

    def submit(self, request: RenderRequest) -> None:
        with self._condition:
            previous = self._pending
            if previous is not None:  # a replaced request's news must not be lost
                request.message = "; ".join(m for m in (previous.message, request.message) if m)
                request.error = request.error or previous.error
            self._pending = request
            self._condition.notify()

    def stop(self, timeout: float = 10.0) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _main(self) -> None:
        while True:
            with self._condition:
                while self._pending is None and not self._stopped:
                    self._condition.wait()
                if self._stopped:
                    self._pending = None  # its weight copies go with this thread, not with a later collection
                    return
                request, self._pending = self._pending, None
            started = time.perf_counter()
            quick = self.time is not None and self.time.is_video
            snapshot = self._render_safely(request, still=False, quick=quick)
            self.output.put(snapshot)
            self.cost = time.perf_counter() - started
            second = None
            if self.draws_meshes and request.wants_still and not snapshot.error:
                second = {"still": True}  # a fine mesh when paused or asked for
            elif quick and not snapshot.error:
                second = {"still": False}  # the frames at t came first; now the base MLP and the per-frame scores
            if second is not None:
                with self._condition:
                    newer = self._pending is not None or self._stopped
                if not newer:  # unless something newer is waiting
                    full = self._render_safely(replace(request, message="", error=""), **second)
                    if full is not None:
                        self.output.put(full)
                    if quick:
                        self.cost = time.perf_counter() - started
            self.busy += time.perf_counter() - started

    def _render_safely(self, request: RenderRequest, still: bool, quick: bool = False) -> Snapshot | None:
        """The snapshot, an error snapshot if drawing failed, or None when a newer request superseded a second pass."""
        try:
            return self._render(request, still, quick)
        except Superseded:
            return None
        except Exception as exc:  # a failed render must not take the session down
            return self._render(replace(request, runs=[], error=f"could not draw the field: {type(exc).__name__}: {exc}"), False)

    @torch.no_grad()
    def _render(self, request: RenderRequest, still: bool = False, quick: bool = False) -> Snapshot:
        """``quick``: a video's frames at t only (no base MLP, no per-frame scores), so that a scrub shows at once."""
        for key in [k for k in self._psnr if k[0] != request.generation]:
            del self._psnr[key]
        self._widths.forget_other_generations(request.generation)
        if self.time is not None:
            self.time.forget_other_generations(request.generation)
            settings = request.time_settings or TimeViewSettings()
            runs = tuple(self._render_time_run(request.generation, i, run, settings, still, request.running, quick)
                         for i, run in enumerate(request.runs))
        elif self.sdf is not None:
            self.sdf.forget_other_generations(request.generation)
            settings = request.sdf_settings or SdfViewSettings()
            runs = tuple(self._render_sdf_run(request.generation, i, run, settings, still) for i, run in enumerate(request.runs))
        else:
            runs = tuple(self._render_run(request.generation, i, run) for i, run in enumerate(request.runs))
        runs = tuple(replace(snapshot, seconds=state.seconds) for snapshot, state in zip(runs, request.runs))
        return Snapshot(request.generation, request.step, request.running, request.steps_per_second, request.device,
                        self.signal, self.target, self.target_spectrum, runs, request.message, request.error,
                        self.target_radial_power, self.target_hf_energy, request.compute, request.timeline)

    def _render_run(self, generation: int, index: int, run: RunState) -> RunSnapshot:
        widths: tuple[WidthView, ...] = ()
        if run.stages is not None:
            widths = self._render_widths(generation, index, run)
            prediction, value = None, widths[run.stages.stage].psnr
            reconstruction = widths[run.stages.stage].reconstruction
        else:
            prediction = run.prediction
            if prediction is None:
                run.evaluator.load_state_dict(run.weights)
                prediction = evaluate_in_chunks(run.evaluator, run.coords)
            reconstruction = self.signal.as_display(prediction)
            value = psnr(reconstruction, self.target)
        error = np.abs(reconstruction - self.target)
        if error.ndim == 3:
            error = error.mean(axis=2)
        spectrum_of = reconstruction
        partition_psnr = None
        if run.scored is not None:
            value = psnr(reconstruction[run.scored], self.target[run.scored]) if run.scored.any() else float("nan")
        if run.partitions is not None:
            partition_psnr = readonly(partition_psnrs(reconstruction, self.target, run.partitions.pixel_partition,
                                                      run.partitions.num_partitions))
            spectrum_of = np.nan_to_num(reconstruction, nan=0.0)
        history = self._psnr.setdefault((generation, index), [])
        if not history and run.psnr_seed is not None:
            history.extend((step, value, math.nan) for step, value in zip(*run.psnr_seed) if step < run.step)
        while history and history[-1][0] >= run.step:  # a restore after divergence goes back in time
            history.pop()
        if not run.waiting:
            history.append((run.step, value, run.seconds))
        first_layer = None
        if run.first_layer is not None and self.signal.kind == "image":
            first_layer = first_layer_view(*run.first_layer, run.coords, self.signal.shape, self.signal.extent[0])
        return RunSnapshot(run.label, run.params, run.step, readonly(reconstruction), readonly(error),
                           readonly(log_spectrum(spectrum_of)), value, run.loss,
                           readonly(np.asarray([h[:2] for h in history], dtype=np.float64).reshape(-1, 2)),
                           readonly(run.loss_history), run.stages, widths, run.partitions, partition_psnr,
                           run.extension_step, run.waiting, run.config, high_frequency_energy(spectrum_of), first_layer,
                           psnr_seconds=readonly(np.asarray([h[2] for h in history], dtype=np.float64)))

    def _render_sdf_run(self, generation: int, index: int, run: RunState, settings: SdfViewSettings, still: bool) -> RunSnapshot:
        """A 3D field: its mesh, slice and surface metrics (the slice stands in for the image arrays)."""
        run.evaluator.load_state_dict(run.weights)
        device = next(run.evaluator.parameters()).device
        widths: tuple[SdfView, ...] = ()
        if run.stages is not None:
            widths = self.sdf.render_widths(run.evaluator, run.stages, settings, still=still, generation=generation,
                                            index=index, step=run.step)
            allocated = [k for k, state in enumerate(run.stages.states) if state != "pending"]
            view = widths[allocated.index(run.stages.stage)] if run.stages.stage in allocated else widths[-1]
        else:
            field = module_field(run.evaluator, device)
            if run.partitions is not None:  # cropped partitions have no output: there the shape ends (outside)
                outside = self.sdf.outside_value
                field = _filled(field, outside)
            # a crop changes the field without a step: the structure count keeps cached fine meshes apart
            version = f"structure {run.partitions.structure}" if run.partitions is not None else ""
            view = self.sdf.render(field, settings, still=still, generation=generation, index=index, step=run.step,
                                   tag=version)
        error = readonly(np.abs(view.slice_field - view.slice_target))
        no_psnr = readonly(np.zeros((0, 2)))  # surface metrics over time live in view.history
        return RunSnapshot(run.label, run.params, run.step, view.slice_field, error, readonly(np.zeros((1, 1), np.float32)),
                           float("nan"), run.loss, no_psnr, readonly(run.loss_history), run.stages, (), run.partitions,
                           None, run.extension_step, run.waiting, run.config, sdf=view, sdf_widths=widths)

    def _render_time_run(self, generation: int, index: int, run: RunState, settings: TimeViewSettings,
                         still: bool, running: bool, quick: bool = False) -> RunSnapshot:
        """A temporal field at the slider's t: a video frame (with per-frame scores) or a moving shape's mesh."""
        run.evaluator.load_state_dict(run.weights)
        parameters = run.parameter_split or {"total": run.params}
        if not self.time.is_video:
            view = self.time.render_shape(run.evaluator, settings, still=still, generation=generation, index=index,
                                          step=run.step, parameters=parameters)
            error = readonly(np.abs(view.sdf.slice_field - view.sdf.slice_target))
            return RunSnapshot(run.label, run.params, run.step, view.sdf.slice_field, error,
                               readonly(np.zeros((1, 1), np.float32)), float("nan"), run.loss, readonly(np.zeros((0, 2))),
                               readonly(run.loss_history), config=run.config, sdf=view.sdf, time=view)
        budget = REFRESH_BUDGET if running else math.inf  # paused: score every frame at this step
        view = self.time.render_video(run.evaluator, settings, generation=generation, index=index, step=run.step,
                                      holdout=run.holdout, parameters=parameters, more_waiting=self._newer_waiting,
                                      budget=budget, quick=quick, unseen=run.unseen_frames)
        train_history = readonly(view.history[:, :2])  # PSNR vs step: the training pixels
        value = float(view.history[-1, 1]) if len(view.history) else float("nan")
        return RunSnapshot(run.label, run.params, run.step, view.reconstruction, view.error,
                           readonly(log_spectrum(view.reconstruction)), value, run.loss, train_history,
                           readonly(run.loss_history), config=run.config, time=view)

    def _render_widths(self, generation: int, index: int, run: RunState) -> tuple[WidthView, ...]:
        """Every allocated width; trained ones come from the cache, and with a fresh full-batch prediction
        of the stage in training nothing needs evaluating at all."""
        info = run.stages
        outputs = None
        if run.prediction is not None:
            frozen = self._widths.cached_outputs(generation, index, info)
            if frozen is not None:
                outputs = [*frozen, run.prediction]
        if outputs is None:
            run.evaluator.load_state_dict(run.weights)
            outputs = evaluate_widths_in_chunks(run.evaluator, run.coords)
        return self._widths.render(generation, index, info, outputs, run.step)

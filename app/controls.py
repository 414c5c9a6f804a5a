"""The control panel: signal, preset, model hyper-parameters and the play/pause/step/reset buttons.

It only describes what the user asked for (a Scene, a signal source, a learning rate); the window turns
that into worker commands.
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch
from PySide6 import QtCore, QtWidgets

from models.activations import LABELS
from models.fields import FieldConfig
from models.growth import GrowthConfig
from models.scenes import DEFAULT_FIELD, DEFAULT_SIZE, DEFAULT_TIME_SCENE, DEFAULT_TRAIN, Scene, default_lr
from models.sdf_signal import SDF_SHAPES
from models.sdf_time import TIME_SHAPES
from models.signals import CURVE_SIGNALS, SAMPLE_IMAGES
from models.training import TrainConfig
from models.video import VIDEO_SAMPLES

from .crop_controls import CropControls
from .sweep_controls import SweepControls
from .time_controls import TimeControls

PRESET_ITEMS = (("Single field", "image"), ("Spectral bias: ReLU vs Fourier vs SIREN", "spectral-bias"),
                ("Spectral growth: streamable SIREN", "growth"), ("Crop & extend: Local-Global SIREN", "crop"),
                ("FINER++ bias sweep", "sweep"), ("Time: ResFields on videos and moving shapes", "time"))
MODEL_ITEMS = (("SIREN", "siren"), ("FINER++ sine", "finer"), ("Gauss", "gauss"), ("FINER++ Gauss", "finer-gauss"),
               ("WIRE (complex wavelet)", "wire"), ("FINER++ wavelet", "finer-wavelet"), ("ReLU MLP", "relu"),
               ("Fourier-feature MLP", "fourier"))
LR_CHOICES = ("1e-5", "3e-5", "1e-4", "3e-4", "1e-3", "3e-3", "1e-2")


def available_devices() -> list[str]:
    devices = ["auto", "cpu"]
    if torch.cuda.is_available():
        devices += ["cuda"] + [f"cuda:{i}" for i in range(1, torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


class ControlPanel(QtWidgets.QWidget):
    sceneChanged = QtCore.Signal()
    """A hyper-parameter that needs a new model changed (debounced)."""
    sourceChanged = QtCore.Signal(str)
    """A bundled signal was picked (sample name) or the working size changed."""
    openRequested = QtCore.Signal()
    lrChanged = QtCore.Signal(float)
    playToggled = QtCore.Signal(bool)
    stepRequested = QtCore.Signal()
    resetRequested = QtCore.Signal()
    growNowRequested = QtCore.Signal()
    """End the stage in training now and start the next one."""
    addStageRequested = QtCore.Signal(int)
    """Plan one more stage of this width (training resumes if everything was trained)."""
    cropAction = QtCore.Signal(str)
    """A crop & extend edit button (see CropControls.action)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._debounce = QtCore.QTimer(self, singleShot=True, interval=350)
        self._debounce.timeout.connect(self.sceneChanged)
        layout = QtWidgets.QVBoxLayout(self)

        source_box = QtWidgets.QGroupBox("Signal")
        source_form = QtWidgets.QFormLayout(source_box)
        self.source = QtWidgets.QComboBox()
        for name in SAMPLE_IMAGES:
            self.source.addItem(name, name)
        for name in CURVE_SIGNALS:
            self.source.addItem(f"{name} (1D)", name)
        for name in SDF_SHAPES:
            self.source.addItem(f"{name} (3D)", name)
        for name in VIDEO_SAMPLES:
            self.source.addItem(f"{name} (video)", name)
        for name in TIME_SHAPES:
            self.source.addItem(f"{name} (moving 3D)", name)
        self.open_button = QtWidgets.QPushButton("Open image, mesh or video…")
        self.open_button.setToolTip("PNG, JPEG, TIFF or BMP images; OBJ, PLY, STL, GLB or OFF meshes (fitted as signed "
                                    "distance fields); MP4, GIF, AVI, MOV, WebM or MKV videos (the time lab; File → "
                                    "Open a folder… takes frame images or one mesh per frame); or drop a file or "
                                    "folder on the window")
        self.size = QtWidgets.QSpinBox(minimum=16, maximum=2048, singleStep=32, value=DEFAULT_SIZE, suffix=" px")
        self.size.setToolTip("Working size: larger images are downscaled so their longer side fits (aspect kept)")
        source_form.addRow("Sample", self.source)
        source_form.addRow("", self.open_button)
        source_form.addRow("Working size", self.size)
        self.target = QtWidgets.QComboBox()
        self.target.addItem("signed distance", "sdf")
        self.target.addItem("occupancy (1 inside, 0 outside)", "occupancy")
        self.target.setToolTip("What a field on a 3D shape regresses: the signed distance (surface at level 0) or "
                               "the occupancy (surface at level 0.5)")
        source_form.addRow("3D target", self.target)
        layout.addWidget(source_box)

        model_box = QtWidgets.QGroupBox("Model")
        form = QtWidgets.QFormLayout(model_box)
        self.preset = QtWidgets.QComboBox()
        for text, value in PRESET_ITEMS:
            self.preset.addItem(text, value)
        self.kind = QtWidgets.QComboBox()
        for text, value in MODEL_ITEMS:
            self.kind.addItem(text, value)
        self.width_box = QtWidgets.QSpinBox(minimum=4, maximum=2048, singleStep=16, value=DEFAULT_FIELD.width)
        self.depth = QtWidgets.QSpinBox(minimum=1, maximum=16, value=DEFAULT_FIELD.depth)
        self.depth.setToolTip("Hidden (activated) layers")
        self.w0 = QtWidgets.QDoubleSpinBox(minimum=0.5, maximum=300.0, singleStep=5.0, decimals=1, value=DEFAULT_FIELD.w0)
        self.w0.setToolTip("SIREN frequency factor: sin(w0 (W x + b))")
        self.sigma = QtWidgets.QDoubleSpinBox(minimum=0.1, maximum=200.0, singleStep=1.0, decimals=1,
                                              value=DEFAULT_FIELD.fourier_sigma)
        self.sigma.setToolTip("Fourier features: B ~ N(0, sigma^2), frequencies per unit length")
        self.bias_k = QtWidgets.QDoubleSpinBox(minimum=-0.01, maximum=1000.0, singleStep=0.5, decimals=2, value=-0.01)
        self.bias_k.setSpecialValueText("default")
        self.bias_k.setToolTip("FINER++ bias range k: first-layer biases ~ U(-k, k); 'default' keeps nn.Linear's init")
        form.addRow("Preset", self.preset)
        form.addRow("Kind", self.kind)
        form.addRow("Width", self.width_box)
        form.addRow("Depth", self.depth)
        form.addRow("w0", self.w0)
        form.addRow("Fourier σ", self.sigma)
        form.addRow("Bias range k", self.bias_k)
        layout.addWidget(model_box)

        train_box = QtWidgets.QGroupBox("Training")
        train_form = QtWidgets.QFormLayout(train_box)
        self.lr = QtWidgets.QComboBox(editable=True)
        self.lr.addItems(LR_CHOICES)
        self.lr.setCurrentText(_format_lr(DEFAULT_TRAIN.lr))
        self.lr.setToolTip("Adam learning rate; applied live, without restarting. In the time lab it decays to a tenth "
                           "over the first 1000 steps (videos) or 2000 (moving shapes), then stays there")
        self.batch = QtWidgets.QSpinBox(minimum=0, maximum=16_777_216, singleStep=4096, value=DEFAULT_TRAIN.batch_size)
        self.batch.setSpecialValueText("full signal")
        self.batch.setToolTip("Coordinates per step: 0 = every pixel, otherwise a random minibatch")
        self.seed = QtWidgets.QSpinBox(minimum=0, maximum=2**31 - 1, value=DEFAULT_TRAIN.seed)
        self.device = QtWidgets.QComboBox()
        self.device.addItems(available_devices())
        train_form.addRow("Learning rate", self.lr)
        train_form.addRow("Batch", self.batch)
        train_form.addRow("Seed", self.seed)
        train_form.addRow("Device", self.device)
        layout.addWidget(train_box)
        self.growth_box = self._build_growth_box()
        layout.addWidget(self.growth_box)
        self.crop_box = CropControls()
        self.crop_box.changed.connect(self._changed)
        self.crop_box.action.connect(self.cropAction)
        layout.addWidget(self.crop_box)
        self.sweep_box = SweepControls()
        self.sweep_box.changed.connect(self._changed)
        layout.addWidget(self.sweep_box)
        self.time_box = TimeControls()
        self.time_box.changed.connect(self._changed)
        layout.addWidget(self.time_box)

        buttons = QtWidgets.QHBoxLayout()
        style = self.style()
        self.play = QtWidgets.QPushButton(style.standardIcon(QtWidgets.QStyle.SP_MediaPause), "Pause")
        self.play.setCheckable(True)
        self.play.setChecked(True)
        self.step_button = QtWidgets.QPushButton(style.standardIcon(QtWidgets.QStyle.SP_MediaSeekForward), "Step")
        self.reset_button = QtWidgets.QPushButton(style.standardIcon(QtWidgets.QStyle.SP_BrowserReload), "Reset")
        self.play.setToolTip("Play / pause training (Space)")
        self.step_button.setToolTip("One optimisation step (paused)")
        self.reset_button.setToolTip("Start again from the same seed: reproduces the run exactly (Ctrl+R)")
        for button in (self.play, self.step_button, self.reset_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        layout.addStretch(1)

        self.source.activated.connect(lambda _: self.sourceChanged.emit(self.source.currentData()))
        self.target.activated.connect(lambda _: self.sourceChanged.emit(""))
        self.size.editingFinished.connect(self._size_finished)
        self.open_button.clicked.connect(self.openRequested)
        for widget in (self.preset, self.kind, self.device):
            widget.currentIndexChanged.connect(self._changed)
        for widget in (self.width_box, self.depth, self.w0, self.sigma, self.bias_k, self.batch, self.seed):
            widget.valueChanged.connect(self._changed)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.preset.currentIndexChanged.connect(self._preset_changed)
        self.lr.lineEdit().editingFinished.connect(self._lr_finished)
        self.lr.activated.connect(lambda _: self._lr_finished())
        self.play.toggled.connect(self._play_toggled)
        self.step_button.clicked.connect(self.stepRequested)
        self.reset_button.clicked.connect(self.resetRequested)
        self._last_size = self.size.value()
        self._last_lr = DEFAULT_TRAIN.lr
        self._lr_decay_steps = DEFAULT_TIME_SCENE.train.lr_decay_steps
        self._update_enabled()

    def _build_growth_box(self) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Spectral growth")
        form = QtWidgets.QFormLayout(box)
        self.widths = QtWidgets.QLineEdit("16, 32, 64, 128")
        self.widths.setToolTip("Hidden width after each stage, strictly increasing; every one stays an exact sub-network")
        self.stage_steps = QtWidgets.QLineEdit("100, 200, 300, 600")
        self.stage_steps.setToolTip("Optimisation steps per stage: one count for every stage, or one per stage "
                                    "(the last repeats). Narrow stages saturate early: give the wide ones more.")
        self.growth_mode = QtWidgets.QComboBox()
        self.growth_mode.addItem("progressive (freeze earlier stages)", "progressive")
        self.growth_mode.addItem("slimmable (all widths every step)", "slimmable")
        self.plateau = QtWidgets.QCheckBox("end a stage when it plateaus")
        self.plateau.setToolTip("A stage also ends when its loss improved by less than 1% over 50 steps")
        self.spatial = QtWidgets.QCheckBox("spatial growing (columns)")
        self.spatial.setToolTip("Stage k learns the first (k+1)/K of the columns and zero elsewhere (paper Eq. 2)")
        self.activation = QtWidgets.QComboBox()
        for name in ("siren", "finer", "gauss", "finer-gauss"):
            self.activation.addItem(LABELS[name], name)
        self.bias_ranges = QtWidgets.QLineEdit()
        self.bias_ranges.setPlaceholderText("e.g. , 1:2, 2:3, 3:4")
        self.bias_ranges.setToolTip("Per stage, LO:HI: the new units' first-layer biases come from U(-HI,-LO) ∪ U(LO,HI) "
                                    "(FINER++ §5.4; larger ranges select higher frequencies). Empty entry: default.")
        self.baseline = QtWidgets.QCheckBox("compare with separate SIRENs")
        self.baseline.setToolTip("Also train independent SIRENs matching each width's parameter count (the paper's "
                                 "'individual'), each for as many steps as that width had: slower")
        self.grow_now = QtWidgets.QPushButton("Grow now")
        self.grow_now.setToolTip("End the stage in training and start the next one")
        self.add_stage = QtWidgets.QPushButton("Add stage")
        self.add_stage.setToolTip("Plan one more stage, twice as wide as the widest; training resumes")
        form.addRow("Widths", self.widths)
        form.addRow("Steps per stage", self.stage_steps)
        form.addRow("Training", self.growth_mode)
        form.addRow("", self.plateau)
        form.addRow("", self.spatial)
        form.addRow("Activation", self.activation)
        form.addRow("Stage bias ranges", self.bias_ranges)
        form.addRow("", self.baseline)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.grow_now)
        row.addWidget(self.add_stage)
        form.addRow(row)
        for widget in (self.growth_mode, self.activation):
            widget.currentIndexChanged.connect(self._changed)
        for widget in (self.plateau, self.spatial, self.baseline):
            widget.toggled.connect(self._changed)
        for edit in (self.widths, self.stage_steps, self.bias_ranges):
            edit.editingFinished.connect(self._growth_text_finished)
        self.grow_now.clicked.connect(self.growNowRequested)
        self.add_stage.clicked.connect(self._add_stage_clicked)
        self._last_growth_text = self._growth_texts()
        return box

    def _growth_texts(self) -> tuple[str, ...]:
        return (self.widths.text(), self.stage_steps.text(), self.bias_ranges.text())

    # -- reading the panel -------------------------------------------------------------------------
    def scene(self) -> Scene:
        """The Scene the panel describes; ValueError with a readable message for invalid growth settings."""
        k = self.bias_k.value()
        field = FieldConfig(kind=self.kind.currentData(), width=self.width_box.value(), depth=self.depth.value(),
                            w0=self.w0.value(), fourier_sigma=self.sigma.value(), seed=self.seed.value(),
                            bias_range=None if k < 0 else k)
        train = TrainConfig(lr=self._last_lr, batch_size=self.batch.value(), seed=self.seed.value(),
                            device=self.device.currentText())
        preset = self.preset.currentData()
        if preset == "crop":
            return Scene(field=replace(field, kind="siren"), train=train, preset="crop", lr_override=False,
                         crop=self.crop_box.settings(field.bias_range))
        if preset == "sweep":
            return Scene(field=replace(field, kind="siren", bias_range=None), train=train, preset="sweep",
                         lr_override=False, sweep=self.sweep_box.settings())
        if preset == "time":  # the time lab's learning rate decays (models.scenes.DEFAULT_TIME_SCENE)
            return Scene(field=replace(field, kind="siren"), train=replace(train, lr_decay_steps=self._lr_decay_steps),
                         preset="time", lr_override=False, time=self.time_box.settings())
        if preset != "growth":
            return Scene(field=field, train=train, preset=preset, lr_override=False)
        from .cli import parse_bias_ranges

        try:
            widths = tuple(int(w) for w in self.widths.text().replace(" ", "").split(",") if w)
        except ValueError:
            raise ValueError(f"widths {self.widths.text()!r}: expected comma-separated integers such as 16, 32, 64") from None
        try:
            steps = tuple(int(n) for n in self.stage_steps.text().replace(" ", "").split(",") if n)
        except ValueError:
            raise ValueError(f"steps per stage {self.stage_steps.text()!r}: expected counts such as 100, 200") from None
        if not steps:
            raise ValueError("steps per stage: give at least one count")
        growth = GrowthConfig(stage_steps=steps[0], steps_per_stage=steps if len(steps) > 1 else (),
                              mode=self.growth_mode.currentData(),
                              plateau=self.plateau.isChecked(), spatial=self.spatial.isChecked())
        return Scene(field=replace(field, kind="siren"), train=train, preset="growth", lr_override=False, widths=widths,
                     growth=growth, activation=self.activation.currentData(),
                     stage_bias_ranges=parse_bias_ranges(self.bias_ranges.text()),
                     baseline=self.baseline.isChecked() and not self.spatial.isChecked())

    def cancel_pending_change(self) -> None:
        """Drop a debounced sceneChanged that has not fired yet."""
        self._debounce.stop()

    def working_size(self) -> int:
        return self.size.value()

    # -- writing to the panel (no signals are emitted) ---------------------------------------------
    def set_running(self, running: bool) -> None:
        with QtCore.QSignalBlocker(self.play):
            self.play.setChecked(running)
        self._style_play(running)

    def set_source(self, source: str, label: str = "") -> None:
        """Show ``source`` (a sample name or a file path, listed under ``label``) as the current signal."""
        index = self.source.findData(source)
        with QtCore.QSignalBlocker(self.source):
            if index < 0:
                self.source.addItem(label or source, source)
                self.source.setItemData(self.source.count() - 1, source, QtCore.Qt.ToolTipRole)
                index = self.source.count() - 1
            self.source.setCurrentIndex(index)

    def apply(self, scene: Scene, size: int) -> None:
        blockers = [QtCore.QSignalBlocker(w) for w in (self.preset, self.kind, self.width_box, self.depth, self.w0,
                                                      self.sigma, self.bias_k, self.batch, self.seed, self.device,
                                                      self.size)]
        self.preset.setCurrentIndex(max(0, self.preset.findData(scene.preset)))
        self.kind.setCurrentIndex(max(0, self.kind.findData(scene.field.kind)))
        self.width_box.setValue(scene.field.width)
        self.depth.setValue(scene.field.depth)
        self.w0.setValue(scene.field.w0)
        self.sigma.setValue(scene.field.fourier_sigma)
        k = scene.crop.bias_range if scene.preset == "crop" else scene.field.bias_range
        self.bias_k.setValue(-0.01 if k is None else k)
        self.batch.setValue(scene.train.batch_size)
        self.seed.setValue(scene.field.seed)
        index = self.device.findText(scene.train.device)
        self.device.setCurrentIndex(max(0, index))
        self.size.setValue(size)
        self._last_size = size
        self._last_lr = scene.train.lr
        self._lr_decay_steps = scene.train.lr_decay_steps if scene.preset == "time" else DEFAULT_TIME_SCENE.train.lr_decay_steps
        self.lr.setCurrentText(_format_lr(scene.train.lr))
        growth_widgets = (self.widths, self.stage_steps, self.growth_mode, self.plateau, self.spatial, self.activation,
                          self.bias_ranges, self.baseline)
        blockers += [QtCore.QSignalBlocker(w) for w in growth_widgets]
        self.widths.setText(", ".join(map(str, scene.widths)))
        self.stage_steps.setText(", ".join(map(str, scene.growth.steps_per_stage or (scene.growth.stage_steps,))))
        self.growth_mode.setCurrentIndex(max(0, self.growth_mode.findData(scene.growth.mode)))
        self.plateau.setChecked(scene.growth.plateau)
        self.spatial.setChecked(scene.growth.spatial)
        self.activation.setCurrentIndex(max(0, self.activation.findData(scene.activation)))
        self.bias_ranges.setText(", ".join("" if r is None else f"{r[0]:g}:{r[1]:g}" for r in scene.stage_bias_ranges))
        self.baseline.setChecked(scene.baseline)
        self._last_growth_text = self._growth_texts()
        self.crop_box.apply(scene.crop)
        self.sweep_box.apply(scene.sweep)
        self.time_box.apply(scene.time)
        del blockers
        self._update_enabled()

    # -- internals -----------------------------------------------------------------------------------
    def _changed(self, *_):
        self._update_enabled()
        self._debounce.start()

    def _preset_changed(self, *_):
        if self.preset.currentData() == "sweep":  # a sweep's learning rate is SIREN's; members scale it
            self._last_lr = default_lr("siren")
            self.lr.setCurrentText(_format_lr(self._last_lr))

    def _kind_changed(self, *_):
        self._last_lr = default_lr(self.kind.currentData())
        self.lr.setCurrentText(_format_lr(self._last_lr))

    def _update_enabled(self) -> None:
        comparison = self.preset.currentData() == "spectral-bias"
        growth = self.preset.currentData() == "growth"
        crop = self.preset.currentData() == "crop"
        sweep = self.preset.currentData() == "sweep"
        timed = self.preset.currentData() == "time"
        kind = self.kind.currentData()
        self.kind.setEnabled(not comparison and not growth and not crop and not sweep and not timed)
        self.time_box.setVisible(timed)
        self.width_box.setEnabled(not growth and not crop)
        self.crop_box.setVisible(crop)
        self.sweep_box.setVisible(sweep)
        self.w0.setEnabled(comparison or growth or crop or sweep or kind in ("siren", "finer"))
        self.bias_k.setEnabled(crop or not (comparison or growth or sweep) and kind not in ("relu", "fourier"))
        self.sigma.setEnabled(comparison or kind == "fourier")
        self.growth_box.setVisible(growth)
        progressive = self.growth_mode.currentData() == "progressive"
        self.plateau.setEnabled(progressive)
        self.add_stage.setEnabled(progressive)
        self.baseline.setEnabled(not self.spatial.isChecked())
        self.bias_ranges.setEnabled(True)

    def _growth_text_finished(self) -> None:
        text = self._growth_texts()
        if text != self._last_growth_text:
            self._last_growth_text = text
            self._changed()

    def _add_stage_clicked(self) -> None:
        try:
            widths = [int(w) for w in self.widths.text().replace(" ", "").split(",") if w]
        except ValueError:
            return
        width = 2 * widths[-1] if widths else 16
        with QtCore.QSignalBlocker(self.widths):
            self.widths.setText(", ".join(map(str, [*widths, width])))
        self._last_growth_text = self._growth_texts()
        self.addStageRequested.emit(width)

    def _size_finished(self) -> None:
        if self.size.value() != self._last_size:
            self._last_size = self.size.value()
            self.sourceChanged.emit("")

    def _lr_finished(self) -> None:
        text = self.lr.currentText().strip()
        try:
            value = float(text)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError
        except ValueError:
            QtWidgets.QToolTip.showText(self.lr.mapToGlobal(QtCore.QPoint(0, self.lr.height())),
                                        f"'{text}' is not a positive number; keeping {_format_lr(self._last_lr)}")
            self.lr.setCurrentText(_format_lr(self._last_lr))
            return
        if value != self._last_lr:
            self._last_lr = value
            self.lrChanged.emit(value)

    def _play_toggled(self, running: bool) -> None:
        self._style_play(running)
        self.playToggled.emit(running)

    def _style_play(self, running: bool) -> None:
        icon = QtWidgets.QStyle.SP_MediaPause if running else QtWidgets.QStyle.SP_MediaPlay
        self.play.setIcon(self.style().standardIcon(icon))
        self.play.setText("Pause" if running else "Play")


def _format_lr(value: float) -> str:
    return f"{value:.0e}".replace("e-0", "e-") if value < 0.01 else f"{value:g}"

"""The control panel: signal, preset, model hyper-parameters and the play/pause/step/reset buttons.

It only describes what the user asked for (a Scene, a signal source, a learning rate); the window turns
that into worker commands.
"""
from __future__ import annotations

import math

import torch
from PySide6 import QtCore, QtWidgets

from models.fields import FieldConfig
from models.scenes import DEFAULT_FIELD, DEFAULT_SIZE, DEFAULT_TRAIN, Scene, default_lr
from models.signals import CURVE_SIGNALS, SAMPLE_IMAGES
from models.training import TrainConfig

PRESET_ITEMS = (("Single field", "image"), ("Spectral bias: ReLU vs Fourier vs SIREN", "spectral-bias"))
MODEL_ITEMS = (("SIREN", "siren"), ("ReLU MLP", "relu"), ("Fourier-feature MLP", "fourier"))
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
        self.open_button = QtWidgets.QPushButton("Open image…")
        self.open_button.setToolTip("PNG, JPEG, TIFF or BMP; you can also drop a file on the window")
        self.size = QtWidgets.QSpinBox(minimum=16, maximum=2048, singleStep=32, value=DEFAULT_SIZE, suffix=" px")
        self.size.setToolTip("Working size: larger images are downscaled so their longer side fits (aspect kept)")
        source_form.addRow("Sample", self.source)
        source_form.addRow("", self.open_button)
        source_form.addRow("Working size", self.size)
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
        form.addRow("Preset", self.preset)
        form.addRow("Kind", self.kind)
        form.addRow("Width", self.width_box)
        form.addRow("Depth", self.depth)
        form.addRow("w0", self.w0)
        form.addRow("Fourier σ", self.sigma)
        layout.addWidget(model_box)

        train_box = QtWidgets.QGroupBox("Training")
        train_form = QtWidgets.QFormLayout(train_box)
        self.lr = QtWidgets.QComboBox(editable=True)
        self.lr.addItems(LR_CHOICES)
        self.lr.setCurrentText(_format_lr(DEFAULT_TRAIN.lr))
        self.lr.setToolTip("Adam learning rate; applied live, without restarting")
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
        self.size.editingFinished.connect(self._size_finished)
        self.open_button.clicked.connect(self.openRequested)
        for widget in (self.preset, self.kind, self.device):
            widget.currentIndexChanged.connect(self._changed)
        for widget in (self.width_box, self.depth, self.w0, self.sigma, self.batch, self.seed):
            widget.valueChanged.connect(self._changed)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.lr.lineEdit().editingFinished.connect(self._lr_finished)
        self.lr.activated.connect(lambda _: self._lr_finished())
        self.play.toggled.connect(self._play_toggled)
        self.step_button.clicked.connect(self.stepRequested)
        self.reset_button.clicked.connect(self.resetRequested)
        self._last_size = self.size.value()
        self._last_lr = DEFAULT_TRAIN.lr
        self._update_enabled()

    # -- reading the panel -------------------------------------------------------------------------
    def scene(self) -> Scene:
        field = FieldConfig(kind=self.kind.currentData(), width=self.width_box.value(), depth=self.depth.value(),
                            w0=self.w0.value(), fourier_sigma=self.sigma.value(), seed=self.seed.value())
        train = TrainConfig(lr=self._last_lr, batch_size=self.batch.value(), seed=self.seed.value(),
                            device=self.device.currentText())
        return Scene(field=field, train=train, preset=self.preset.currentData(), lr_override=False)

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
                                                      self.sigma, self.batch, self.seed, self.device, self.size)]
        self.preset.setCurrentIndex(max(0, self.preset.findData(scene.preset)))
        self.kind.setCurrentIndex(max(0, self.kind.findData(scene.field.kind)))
        self.width_box.setValue(scene.field.width)
        self.depth.setValue(scene.field.depth)
        self.w0.setValue(scene.field.w0)
        self.sigma.setValue(scene.field.fourier_sigma)
        self.batch.setValue(scene.train.batch_size)
        self.seed.setValue(scene.field.seed)
        index = self.device.findText(scene.train.device)
        self.device.setCurrentIndex(max(0, index))
        self.size.setValue(size)
        self._last_size = size
        self._last_lr = scene.train.lr
        self.lr.setCurrentText(_format_lr(scene.train.lr))
        del blockers
        self._update_enabled()

    # -- internals -----------------------------------------------------------------------------------
    def _changed(self, *_):
        self._update_enabled()
        self._debounce.start()

    def _kind_changed(self, *_):
        self._last_lr = default_lr(self.kind.currentData())
        self.lr.setCurrentText(_format_lr(self._last_lr))

    def _update_enabled(self) -> None:
        comparison = self.preset.currentData() == "spectral-bias"
        kind = self.kind.currentData()
        self.kind.setEnabled(not comparison)
        self.w0.setEnabled(comparison or kind == "siren")
        self.sigma.setEnabled(comparison or kind == "fourier")

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

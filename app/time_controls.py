"""The time lab's part of the control panel: the ResField model's rank, rows, layers and mode, and the comparison."""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from models.time_training import TimeSettings

MODEL_CHOICES = (("SIREN + ResFields", ("resfield", "siren")), ("FINER++ + ResFields", ("resfield", "finer")),
                 ("plain SIREN", ("siren", "siren")), ("plain FINER++ sine", ("finer", "siren")))
COMPARE_CHOICES = (("nothing", "none"), ("a plain SIREN of the same width", "same-width"),
                   ("… and a wider SIREN, same parameter count", "matched"))


class TimeControls(QtWidgets.QGroupBox):
    changed = QtCore.Signal()
    """A setting that needs new models changed."""

    def __init__(self, parent=None):
        super().__init__("ResFields (time lab)", parent)
        form = QtWidgets.QFormLayout(self)
        self.model = QtWidgets.QComboBox()
        for text, value in MODEL_CHOICES:
            self.model.addItem(text, value)
        self.model.setToolTip("The temporal model: an MLP whose middle layers have time-dependent weights W + W(t), "
                              "or a plain MLP that just takes t as a third (fourth) coordinate")
        self.rank = QtWidgets.QSpinBox(minimum=1, maximum=256, value=10)
        self.rank.setToolTip("R: matrices in each ResField layer's spanning set M; W(t) = Σ_r v(t)[r] M[r]")
        self.rows = QtWidgets.QSpinBox(minimum=0, maximum=4096, value=0)
        self.rows.setSpecialValueText("one per frame")
        self.rows.setToolTip("T: rows of the coefficient table v; fewer rows than frames share coefficients by "
                             "interpolation (better between frames, less capacity)")
        self.layers = QtWidgets.QLineEdit()
        self.layers.setPlaceholderText("middle layers")
        self.layers.setToolTip("Linear layers with time-dependent weights, e.g. 1,2 (0 = input layer, depth = output "
                               "layer); empty: the middle ones, as the paper")
        self.mode = QtWidgets.QComboBox()
        self.mode.addItem("interpolate between rows", "interpolate")
        self.mode.addItem("look up the nearest row", "lookup")
        self.compare = QtWidgets.QComboBox()
        for text, value in COMPARE_CHOICES:
            self.compare.addItem(text, value)
        self.compare.setToolTip("Runs trained side by side on the same frames and the same held-out pixels. The "
                                "matched-parameter SIREN costs several times more per step on a CPU.")
        self.holdout = QtWidgets.QDoubleSpinBox(minimum=0.0, maximum=0.5, singleStep=0.05, decimals=2, value=0.1)
        self.holdout.setToolTip("Share of every video frame's pixels never trained on: the held-out PSNR (dashed)")
        self.unseen = QtWidgets.QSpinBox(minimum=0, maximum=64, value=0)
        self.unseen.setSpecialValueText("none")
        self.unseen.setPrefix("every ")
        self.unseen.setToolTip("Frames never trained on at all (every k-th, not the first or last): how well the field "
                               "interpolates in time (×, dotted). With one coefficient row per frame their rows never "
                               "train; fewer rows (Rows T) share them by interpolation. 1 is not allowed.")
        self.frames_per_batch = QtWidgets.QSpinBox(minimum=1, maximum=256, value=8)
        self.frames_per_batch.setToolTip("Frames per training step; the batch is split evenly among them")
        self.loss = QtWidgets.QComboBox()
        self.loss.addItem("MSE", "mse")
        self.loss.addItem("MAPE |p − g| / (|g| + 0.01)", "mape")
        self.loss.setToolTip("MAPE is the ResFields paper's temporal-SDF loss; here it leaves floaters far from the "
                             "surface within a CPU's budget of steps (see README), so MSE is the default")
        form.addRow("Model", self.model)
        form.addRow("Rank R", self.rank)
        form.addRow("Rows T", self.rows)
        form.addRow("Layers", self.layers)
        form.addRow("Between rows", self.mode)
        form.addRow("Compare with", self.compare)
        form.addRow("Held out", self.holdout)
        form.addRow("Unseen frames", self.unseen)
        form.addRow("Frames / step", self.frames_per_batch)
        form.addRow("Loss", self.loss)
        self._last_layers = ""
        for combo in (self.model, self.mode, self.compare, self.loss):
            combo.currentIndexChanged.connect(self._emit)
        for spin in (self.rank, self.rows, self.holdout, self.unseen, self.frames_per_batch):
            spin.valueChanged.connect(self._emit)
        self.layers.editingFinished.connect(self._layers_finished)

    def _emit(self, *_) -> None:
        resfield = self.model.currentData()[0] == "resfield"
        for widget in (self.rank, self.rows, self.layers, self.mode, self.compare):
            widget.setEnabled(resfield)
        self.changed.emit()

    def _layers_finished(self) -> None:
        if self.layers.text() != self._last_layers:
            self._last_layers = self.layers.text()
            self.changed.emit()

    def settings(self) -> TimeSettings:
        """The settings shown; ValueError with a readable message for bad layer numbers."""
        text = self.layers.text().replace(" ", "")
        try:
            layers = tuple(int(i) for i in text.split(",") if i) or None
        except ValueError:
            raise ValueError(f"ResField layers {self.layers.text()!r}: expected numbers such as 1, 2") from None
        model, activation = self.model.currentData()
        return TimeSettings(model=model, activation=activation, rank=self.rank.value(), time_rows=self.rows.value(),
                            layers=layers, mode=self.mode.currentData(), compare=self.compare.currentData(),
                            holdout=self.holdout.value(), holdout_frames=self.unseen.value(),
                            frames_per_batch=self.frames_per_batch.value(),
                            loss=self.loss.currentData())

    def apply(self, settings: TimeSettings) -> None:
        widgets = (self.model, self.rank, self.rows, self.layers, self.mode, self.compare, self.holdout, self.unseen,
                   self.frames_per_batch, self.loss)
        blockers = [QtCore.QSignalBlocker(w) for w in widgets]
        value = (settings.model, settings.activation if settings.model == "resfield" else "siren")
        self.model.setCurrentIndex(max(0, self.model.findData(value)))
        self.rank.setValue(settings.rank)
        self.rows.setValue(settings.time_rows)
        self.layers.setText("" if settings.layers is None else ", ".join(map(str, settings.layers)))
        self._last_layers = self.layers.text()
        self.mode.setCurrentIndex(max(0, self.mode.findData(settings.mode)))
        self.compare.setCurrentIndex(max(0, self.compare.findData(settings.compare)))
        self.holdout.setValue(settings.holdout)
        self.unseen.setValue(settings.holdout_frames)
        self.frames_per_batch.setValue(settings.frames_per_batch)
        self.loss.setCurrentIndex(max(0, self.loss.findData(settings.loss)))
        del blockers
        resfield = settings.model == "resfield"
        for widget in (self.rank, self.rows, self.layers, self.mode, self.compare):
            widget.setEnabled(resfield)

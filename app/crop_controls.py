"""The crop & extend lab's settings and edit buttons (part of the control panel)."""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from models.activations import LABELS
from models.partitions import EXTENSION_INITS
from models.scenes import REGIONS, CropSettings

REGION_LABELS = {"top": "top half", "bottom": "bottom half", "left": "left half", "right": "right half",
                 "centre": "centre quarter"}


class CropControls(QtWidgets.QGroupBox):
    changed = QtCore.Signal()
    """A setting that needs a new model changed."""
    action = QtCore.Signal(str)
    """An edit: 'undo', 'redo', 'crop-selection', 'keep-selection', 'restore-all' or 'extend'."""

    def __init__(self, parent=None):
        super().__init__("Crop && extend", parent)
        form = QtWidgets.QFormLayout(self)
        defaults = CropSettings()
        self.model = QtWidgets.QComboBox()
        self.model.addItem("Local-Global SIREN", "local-global")
        self.model.addItem("SIREN per partition", "siren-per-partition")
        self.model.setToolTip("Local-Global: local sub-networks plus a global SIREN merged at every layer. SIREN per "
                              "partition: independent local networks only (shows seams)")
        self.partitions = QtWidgets.QLineEdit(", ".join(map(str, defaults.partitions)))
        self.partitions.setToolTip("Partition factors: rows, columns")
        self.partition_size = QtWidgets.QSpinBox(minimum=0, maximum=4096, singleStep=8, value=defaults.partition_size,
                                                 suffix=" px")
        self.partition_size.setSpecialValueText("use factors")
        self.partition_size.setToolTip("Automatic partitioning: partitions of about this many pixels per side "
                                       "(the paper's Appendix A); 'use factors' keeps the factors above")
        self.params = QtWidgets.QSpinBox(minimum=0, maximum=100_000_000, singleStep=1000, value=defaults.params)
        self.params.setSpecialValueText("use widths")
        self.params.setGroupSeparatorShown(True)
        self.params.setToolTip("Parameter budget: sets the local and global widths (paper, Appendix A)")
        self.global_ratio = QtWidgets.QDoubleSpinBox(minimum=0.0, maximum=0.9, singleStep=0.01, decimals=2,
                                                     value=defaults.global_ratio)
        self.global_ratio.setToolTip("Wanted share of global weights (global SIREN + merge); the paper: 5-15%")
        self.local_width = QtWidgets.QSpinBox(minimum=1, maximum=1024, value=defaults.local_width)
        self.global_width = QtWidgets.QSpinBox(minimum=0, maximum=4096, value=defaults.global_width)
        self.activation = QtWidgets.QComboBox()
        for name in ("siren", "finer", "gauss", "finer-gauss"):
            self.activation.addItem(LABELS[name], name)
        self.activation.setToolTip("Activation of every layer (local, global and merge); the model panel's bias range k "
                                   "sets the first layers' biases")
        self.baselines = QtWidgets.QCheckBox("compare: plain SIREN and the other model")
        self.baselines.setToolTip("Also train a plain SIREN and SIREN-per-partition (or Local-Global) with about "
                                  "the same parameter count: slower")
        self.extend = QtWidgets.QCheckBox("extension experiment (paper Fig. 7)")
        self.extend.setToolTip("Train on a region first, then add the missing partitions and fine-tune; compared "
                               "with a smaller SIREN fine-tuned on the whole image and a new SIREN from scratch")
        self.region = QtWidgets.QComboBox()
        for key in REGIONS:
            self.region.addItem(REGION_LABELS.get(key, key), key)
        self.extend_at = QtWidgets.QSpinBox(minimum=1, maximum=1_000_000, singleStep=50, value=defaults.extend_at)
        self.extend_at.setToolTip("Steps on the region before the extension (Extend now starts it earlier)")
        self.init = QtWidgets.QComboBox()
        for key in EXTENSION_INITS:
            self.init.addItem(key, key)
        self.init.setToolTip("copy: the weights of the trained partition mirror padding puts there (the paper); "
                             "reflect: the same with the first layer reflected across the region's edge; fresh: SIREN init")
        form.addRow("Model", self.model)
        form.addRow("Partitions", self.partitions)
        form.addRow("Partition size", self.partition_size)
        form.addRow("Parameters", self.params)
        form.addRow("Global share", self.global_ratio)
        form.addRow("Local width", self.local_width)
        form.addRow("Global width", self.global_width)
        form.addRow("Activation", self.activation)
        form.addRow("", self.baselines)
        form.addRow("", self.extend)
        form.addRow("Pre-train on", self.region)
        form.addRow("Extend at step", self.extend_at)
        form.addRow("New partitions", self.init)
        grid = QtWidgets.QGridLayout()
        self.buttons = {}
        for i, (key, text, tip) in enumerate((
                ("undo", "Undo", "Undo the last crop or restore (Ctrl+Z)"),
                ("redo", "Redo", "Redo (Ctrl+Shift+Z)"),
                ("crop-selection", "Crop selection", "Remove the selected partitions (Delete)"),
                ("keep-selection", "Keep only selection", "Remove every partition outside the selection"),
                ("restore-all", "Restore all", "Bring back every cropped partition"),
                ("extend", "Extend now", "Add every missing partition (initialised from trained neighbours) and fine-tune; "
                           "e.g. keep only a selection before training, train, then extend"))):
            button = QtWidgets.QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, k=key: self.action.emit(k))
            grid.addWidget(button, i // 2, i % 2)
            self.buttons[key] = button
        form.addRow(grid)
        for widget in (self.model, self.region, self.init, self.activation):
            widget.currentIndexChanged.connect(self._changed)
        for widget in (self.partition_size, self.params, self.global_ratio, self.local_width, self.global_width,
                       self.extend_at):
            widget.valueChanged.connect(self._changed)
        for widget in (self.baselines, self.extend):
            widget.toggled.connect(self._changed)
        self.partitions.editingFinished.connect(self._partitions_finished)
        self._last_partitions = self.partitions.text()
        self._update_enabled()

    def settings(self, bias_range: float | None = None) -> CropSettings:
        """The settings shown (``bias_range``: the model panel's k); ValueError for bad partition factors."""
        try:
            factors = tuple(int(v) for v in self.partitions.text().replace(" ", "").split(",") if v)
        except ValueError:
            raise ValueError(f"partitions {self.partitions.text()!r}: expected factors such as 8, 8") from None
        return CropSettings(model=self.model.currentData(), partitions=factors,
                            partition_size=self.partition_size.value(), params=self.params.value(),
                            global_ratio=self.global_ratio.value(), local_width=self.local_width.value(),
                            global_width=self.global_width.value(), baselines=self.baselines.isChecked(),
                            extend=self.extend.isChecked(), region=self.region.currentData(),
                            extend_at=self.extend_at.value(), extension_init=self.init.currentData(),
                            activation=self.activation.currentData(), bias_range=bias_range)

    def apply(self, settings: CropSettings) -> None:
        widgets = (self.model, self.partitions, self.partition_size, self.params, self.global_ratio, self.local_width,
                   self.global_width, self.baselines, self.extend, self.region, self.extend_at, self.init, self.activation)
        blockers = [QtCore.QSignalBlocker(w) for w in widgets]
        self.model.setCurrentIndex(max(0, self.model.findData(settings.model)))
        self.partitions.setText(", ".join(map(str, settings.partitions)))
        self._last_partitions = self.partitions.text()
        self.partition_size.setValue(settings.partition_size)
        self.params.setValue(settings.params)
        self.global_ratio.setValue(settings.global_ratio)
        self.local_width.setValue(settings.local_width)
        self.global_width.setValue(settings.global_width)
        self.baselines.setChecked(settings.baselines)
        self.extend.setChecked(settings.extend)
        self.region.setCurrentIndex(max(0, self.region.findData(settings.region)))
        self.extend_at.setValue(settings.extend_at)
        self.init.setCurrentIndex(max(0, self.init.findData(settings.extension_init)))
        self.activation.setCurrentIndex(max(0, self.activation.findData(settings.activation)))
        del blockers
        self._update_enabled()

    def _changed(self, *_) -> None:
        self._update_enabled()
        self.changed.emit()

    def _partitions_finished(self) -> None:
        if self.partitions.text() != self._last_partitions:
            self._last_partitions = self.partitions.text()
            self._changed()

    def _update_enabled(self) -> None:
        budget = self.params.value() > 0
        local_global = self.model.currentData() == "local-global"
        self.partitions.setEnabled(self.partition_size.value() == 0)
        self.global_ratio.setEnabled(budget and local_global)
        self.local_width.setEnabled(not budget)
        self.global_width.setEnabled(not budget and local_global)
        extend = self.extend.isChecked()
        self.baselines.setEnabled(not extend)
        for widget in (self.region, self.extend_at, self.init):
            widget.setEnabled(extend)

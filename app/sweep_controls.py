"""The FINER++ lab's settings: which activations, which bias ranges k, how the members run (control panel)."""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from models.activations import ACTIVATION_NAMES, LABELS
from models.sweep import STRATEGIES, SweepSettings, parse_ks


def format_ks(ks) -> str:
    return ", ".join("default" if k is None else f"{k:g}" for k in ks)


class SweepControls(QtWidgets.QGroupBox):
    changed = QtCore.Signal()
    """A setting that needs new models changed."""

    def __init__(self, parent=None):
        super().__init__("FINER++ bias sweep", parent)
        form = QtWidgets.QFormLayout(self)
        defaults = SweepSettings()
        self.activations = QtWidgets.QListWidget()
        for name in ACTIVATION_NAMES:
            item = QtWidgets.QListWidgetItem(LABELS[name])
            item.setData(QtCore.Qt.UserRole, name)
            item.setFlags(item.flags() | QtCore.Qt.ItemIsUserCheckable)
            item.setCheckState(QtCore.Qt.Checked if name in defaults.activations else QtCore.Qt.Unchecked)
            self.activations.addItem(item)
        self.activations.setFixedHeight(6 * 19 + 6)
        self.activations.setToolTip("Activations swept over k: every checked one is trained at every k")
        self.ks = QtWidgets.QLineEdit(format_ks(defaults.ks))
        self.ks.setToolTip("Bias ranges k: first-layer biases ~ U(-k, k). Numbers, 'default' (nn.Linear's init, "
                           "k = 0.71) or ranges A:B:N (N values from A to B), comma-separated")
        self.reference = QtWidgets.QCheckBox("classic counterpart at default init")
        self.reference.setChecked(defaults.reference)
        self.reference.setToolTip("Also train SIREN (for FINER++ sine), Gauss or WIRE at their usual init, as a reference")
        self.strategy = QtWidgets.QComboBox()
        for name in STRATEGIES:
            self.strategy.addItem(name, name)
        self.strategy.setToolTip("interleaved: members take turns (fastest on CPUs); batched: stacked along a model "
                                 "axis with vmap (the win on GPUs); auto picks by device. Results are the same.")
        self.per_activation_lr = QtWidgets.QCheckBox("learning rate per activation")
        self.per_activation_lr.setChecked(defaults.lr_per_activation)
        self.per_activation_lr.setToolTip("Each activation at its default rate relative to SIREN's (Gauss 10x, WIRE 5x, "
                                          "FINER++ Gauss and wavelet 2x); off: every member uses the learning rate above")
        form.addRow("Activations", self.activations)
        form.addRow("k values", self.ks)
        form.addRow("", self.reference)
        form.addRow("Members run", self.strategy)
        form.addRow("", self.per_activation_lr)
        self._last_ks = self.ks.text()
        self.activations.itemChanged.connect(lambda _: self.changed.emit())
        self.reference.toggled.connect(lambda _: self.changed.emit())
        self.per_activation_lr.toggled.connect(lambda _: self.changed.emit())
        self.strategy.currentIndexChanged.connect(lambda _: self.changed.emit())
        self.ks.editingFinished.connect(self._ks_finished)

    def _ks_finished(self) -> None:
        if self.ks.text() != self._last_ks:
            self._last_ks = self.ks.text()
            self.changed.emit()

    def checked_activations(self) -> tuple[str, ...]:
        items = (self.activations.item(i) for i in range(self.activations.count()))
        return tuple(item.data(QtCore.Qt.UserRole) for item in items if item.checkState() == QtCore.Qt.Checked)

    def settings(self) -> SweepSettings:
        """The settings shown; ValueError with a readable message for bad k values or no activation."""
        activations = self.checked_activations()
        if not activations:
            raise ValueError("check at least one activation to sweep")
        return SweepSettings(activations=activations, ks=parse_ks(self.ks.text()),
                             reference=self.reference.isChecked(), strategy=self.strategy.currentData(),
                             lr_per_activation=self.per_activation_lr.isChecked())

    def apply(self, settings: SweepSettings) -> None:
        blockers = [QtCore.QSignalBlocker(w) for w in (self.activations, self.ks, self.reference, self.strategy,
                                                      self.per_activation_lr)]
        for i in range(self.activations.count()):
            item = self.activations.item(i)
            checked = item.data(QtCore.Qt.UserRole) in settings.activations
            item.setCheckState(QtCore.Qt.Checked if checked else QtCore.Qt.Unchecked)
        self.ks.setText(format_ks(settings.ks))
        self._last_ks = self.ks.text()
        self.reference.setChecked(settings.reference)
        self.strategy.setCurrentIndex(max(0, self.strategy.findData(settings.strategy)))
        self.per_activation_lr.setChecked(settings.lr_per_activation)
        del blockers

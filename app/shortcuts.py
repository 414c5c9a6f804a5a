"""Keyboard shortcuts: window-level keys for the time lab's slider, and Help → Keyboard shortcuts, a table of every
shortcut the window has, collected from its actions when it opens (so it never goes stale)."""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from .features import menu_named

WIDGET_KEYS = ("Inside widgets: the arrow keys move a focused slider (on the time slider, one frame); "
               "in the crop lab, a click crops or restores a partition and a drag selects several.")


def _clean(text: str) -> str:
    """A menu text without its accelerator marks (&) and trailing '…'."""
    return text.split("\t")[0].replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").strip()


def _keys(sequences) -> str:
    return ", ".join(s.toString(QtGui.QKeySequence.NativeText) for s in sequences if not s.isEmpty())


def collect_shortcuts(window: QtWidgets.QMainWindow) -> list[tuple[str, str, str]]:
    """(keys, what it does, where it lives) for every action and QShortcut of ``window`` that has keys, in menu
    order; actions outside the menus come last."""
    rows: list[tuple[str, str, str]] = []
    seen: set = set()

    def walk(menu: QtWidgets.QMenu, path: str) -> None:
        for action in menu.actions():
            if action.isSeparator() or action in seen:
                continue
            seen.add(action)
            if action.menu() is not None:
                walk(action.menu(), f"{path} › {_clean(action.menu().title())}")
            elif _keys(action.shortcuts()):
                rows.append((_keys(action.shortcuts()), _clean(action.text()), path))

    for top in window.menuBar().actions():
        if top.menu() is not None:
            seen.add(top)
            walk(top.menu(), _clean(top.menu().title()))
    for action in [*window.actions(), *window.findChildren(QtGui.QAction)]:
        if action not in seen and _keys(action.shortcuts()):
            seen.add(action)
            rows.append((_keys(action.shortcuts()), _clean(action.text() or action.toolTip()), "window"))
    for shortcut in window.findChildren(QtGui.QShortcut):
        if _keys(shortcut.keys()):
            rows.append((_keys(shortcut.keys()), shortcut.whatsThis() or shortcut.objectName() or "shortcut", "window"))
    return rows


class ShortcutsDialog(QtWidgets.QDialog):
    """A read-only table of the window's shortcuts."""

    def __init__(self, window: QtWidgets.QMainWindow):
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        layout = QtWidgets.QVBoxLayout(self)
        rows = collect_shortcuts(window)
        self.table = QtWidgets.QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["Keys", "Does", "Menu"])
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeToContents)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        for row, values in enumerate(rows):
            for column, text in enumerate(values):
                item = QtWidgets.QTableWidgetItem(text)
                if column == 0:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(row, column, item)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QtWidgets.QHeaderView.Stretch)
        header.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeToContents)
        note = QtWidgets.QLabel(WIDGET_KEYS)
        note.setWordWrap(True)
        note.setStyleSheet("color:#555")
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(self.table, 1)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.resize(640, min(760, 120 + 30 * len(rows)))

    def keys(self) -> list[str]:
        return [self.table.item(row, 0).text() for row in range(self.table.rowCount())]


def show_shortcuts(window) -> ShortcutsDialog:
    """Open the table (non-modal; one at a time)."""
    dialog = getattr(window, "_shortcuts_dialog", None)
    if dialog is not None:
        dialog.close()
    dialog = ShortcutsDialog(window)
    dialog.setAttribute(QtCore.Qt.WA_DeleteOnClose)
    dialog.destroyed.connect(lambda *_: setattr(window, "_shortcuts_dialog", None))
    window._shortcuts_dialog = dialog
    dialog.show()
    return dialog


def _step_frames(window, delta: int) -> None:
    if window.views.currentWidget() is window.time_view:
        window.time_view.bar.step_frames(delta)


def install(window) -> None:
    """View → previous / next frame (',' and '.', the time lab), Help → Keyboard shortcuts (F1)."""
    view = menu_named(window, "View")
    view.addSeparator()
    previous = view.addAction("Previous frame (time lab)", lambda: _step_frames(window, -1))
    previous.setShortcut(QtGui.QKeySequence(","))
    following = view.addAction("Next frame (time lab)", lambda: _step_frames(window, +1))
    following.setShortcut(QtGui.QKeySequence("."))
    help_menu = menu_named(window, "Help")
    action = QtGui.QAction("Keyboard shortcuts…", help_menu)
    action.setShortcut(QtGui.QKeySequence("F1"))
    action.triggered.connect(lambda: show_shortcuts(window))
    first = help_menu.actions()[0] if help_menu.actions() else None
    help_menu.insertAction(first, action) if first is not None else help_menu.addAction(action)
    window.shortcuts_action = action

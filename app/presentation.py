"""Presentation mode (View → Presentation mode, F11 or Ctrl+Shift+P): full screen, a larger application font and
so larger controls, and high-contrast plots (white background, black axes, thicker curves, larger axis and title
fonts on every pyqtgraph plot in the window). Leaving it restores everything as it was."""
from __future__ import annotations

import re

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from .features import menu_named

FONT_SCALE = 1.6
"""Application font in presentation mode, relative to the normal one."""
MIN_CURVE_WIDTH = 3.0
GRID_ALPHA = 90
"""Grid line opacity (0-255) in presentation mode; pyqtgraph's plots here use about 50."""


class PresentationMode(QtCore.QObject):
    """Enters and leaves presentation mode on ``window``; remembers everything it changes."""

    toggled = QtCore.Signal(bool)

    def __init__(self, window: QtWidgets.QMainWindow):
        super().__init__(window)
        self.window = window
        self.active = False
        self._app_font: QtGui.QFont | None = None
        self._window_state = QtCore.Qt.WindowNoState
        self._geometry = QtCore.QRect()
        self._panel_scroll: tuple[QtWidgets.QScrollArea, int, QtCore.Qt.ScrollBarPolicy] | None = None
        self._styled_fonts: list[tuple[QtWidgets.QWidget, QtGui.QFont, bool]] = []
        self._saved: dict[int, tuple] = {}
        """id(item) -> (item, what to restore): every plot item, axis, label and view this mode changed."""

    def eventFilter(self, watched: QtCore.QObject, event: QtCore.QEvent) -> bool:
        # the application font is shared with every other window: give it back when this one closes
        if watched is self.window and event.type() == QtCore.QEvent.Close and self.active:
            self.set_active(False)
            if not self._window_state & (QtCore.Qt.WindowFullScreen | QtCore.Qt.WindowMaximized):
                self._restore_geometry(self._geometry)  # now: whoever saves the layout on closing sees it
        return False

    def set_active(self, on: bool) -> None:
        if on == self.active:
            return
        self._enter() if on else self._leave()
        self.active = on
        self.toggled.emit(on)

    # -- entering and leaving --------------------------------------------------------------------------
    def _enter(self) -> None:
        app = QtWidgets.QApplication.instance()
        self._app_font = QtGui.QFont(app.font())
        self._window_state = self.window.windowState()
        self._geometry = QtCore.QRect(self.window.geometry())
        app.setFont(_scaled_font(self._app_font, FONT_SCALE))
        self._scale_styled_widgets()
        # the panel's size hint follows the new font once its layouts have handled their requests
        QtCore.QTimer.singleShot(0, self._widen_control_panel)
        self.window.showFullScreen()
        self.style_plots()
        self.window.session.snapshotReady.connect(self._restyle_new_items)

    def _leave(self) -> None:
        self.window.session.snapshotReady.disconnect(self._restyle_new_items)
        QtWidgets.QApplication.instance().setFont(self._app_font)
        for widget, font, explicit in self._styled_fonts:
            try:
                widget.setFont(font)
                widget.setAttribute(QtCore.Qt.WA_SetFont, explicit)
            except RuntimeError:
                pass
        self._styled_fonts.clear()
        for item, saved in list(self._saved.values()):
            try:
                _restore(item, saved)
            except RuntimeError:  # its C++ object is gone (a view rebuilt its plots)
                pass
        self._saved.clear()
        if self._panel_scroll is not None:
            scroll, width, policy = self._panel_scroll
            scroll.setMinimumWidth(width)
            scroll.setHorizontalScrollBarPolicy(policy)
            self._panel_scroll = None
        self.window.setWindowState(self._window_state)
        self.window.show()
        if not self._window_state & (QtCore.Qt.WindowFullScreen | QtCore.Qt.WindowMaximized):
            # once the layouts have shrunk back to the normal font's minimum sizes
            QtCore.QTimer.singleShot(0, lambda geometry=self._geometry: self._restore_geometry(geometry))

    def _restore_geometry(self, geometry: QtCore.QRect) -> None:
        if not self.active and self.window.geometry() != geometry:
            self.window.layout().activate()  # the window's minimum size from the normal font, before resizing
            self.window.setGeometry(geometry)

    def _scale_styled_widgets(self) -> None:
        """Widgets with a style sheet of their own (notes, hints) keep their font when the application's changes."""
        for widget in self.window.findChildren(QtWidgets.QWidget):
            if not widget.styleSheet() or isinstance(widget, pg.GraphicsView):
                continue
            font = widget.font()
            if font.pointSizeF() >= 0.95 * FONT_SCALE * self._app_font.pointSizeF():
                continue  # this one followed the application font after all
            self._styled_fonts.append((widget, QtGui.QFont(font), widget.testAttribute(QtCore.Qt.WA_SetFont)))
            widget.setFont(_scaled_font(font, FONT_SCALE))

    def _widen_control_panel(self) -> None:
        """The control panel's scroll area got its minimum width from the normal font: make room, and let it
        scroll sideways where the screen is too narrow for the larger controls."""
        scroll = self.window.controls.parentWidget()
        while scroll is not None and not isinstance(scroll, QtWidgets.QScrollArea):
            scroll = scroll.parentWidget()
        if scroll is not None and self.active and self._panel_scroll is None:
            self._panel_scroll = (scroll, scroll.minimumWidth(), scroll.horizontalScrollBarPolicy())
            scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAsNeeded)
            scroll.setMinimumWidth(min(self.window.controls.sizeHint().width() + 24,
                                       self.window.screen().availableGeometry().width() // 3))

    # -- plots -----------------------------------------------------------------------------------------
    def style_plots(self) -> None:
        """High-contrast style for every pyqtgraph item in the window not styled yet."""
        size = QtGui.QFontInfo(QtWidgets.QApplication.instance().font()).pointSizeF()
        for view in self.window.findChildren(pg.GraphicsView):
            if id(view) not in self._saved:
                self._saved[id(view)] = (view, ("view", QtGui.QBrush(view.backgroundBrush())))
                view.setBackgroundBrush(QtGui.QBrush(QtCore.Qt.white))
            scene = view.scene()
            if scene is None:
                continue
            for item in scene.items():
                if id(item) in self._saved:
                    continue
                saved = _style(item, size)
                if saved is not None:
                    self._saved[id(item)] = (item, saved)

    def _restyle_new_items(self, _snapshot=None) -> None:
        # views create curves and titles as runs appear; forget items that were deleted meanwhile
        for key, (item, _) in list(self._saved.items()):
            if not _alive(item):
                del self._saved[key]
        self.style_plots()


def _style(item, size: float):
    """Restyle ``item`` for presentation; returns what restores it (None: not an item this mode touches)."""
    if isinstance(item, pg.PlotDataItem):
        pen = item.opts.get("pen")
        saved = ("curve", pen, item.opts.get("symbolSize"))
        if pen is not None:
            thick = pg.mkPen(pen)
            thick.setWidthF(max(MIN_CURVE_WIDTH, 2.0 * max(1.0, thick.widthF())))
            thick.setCosmetic(True)
            item.setPen(thick)
        if item.opts.get("symbol") is not None and item.opts.get("symbolSize"):
            item.setSymbolSize(item.opts["symbolSize"] * FONT_SCALE)
        return saved
    if isinstance(item, pg.AxisItem):
        saved = ("axis", item.pen(), item.textPen(), item.style.get("tickFont"), dict(item.labelStyle), item.grid)
        tick_font = QtGui.QFont(QtWidgets.QApplication.instance().font())
        tick_font.setPointSizeF(size * 0.85)
        item.setPen(pg.mkPen("k", width=2))
        item.setTextPen(pg.mkPen("k"))
        item.setTickFont(tick_font)
        item.labelStyle["font-size"] = f"{size:.1f}pt"
        if item.grid is not False:
            item.setGrid(GRID_ALPHA)
        _update_axis_label(item)
        return saved
    if isinstance(item, pg.LabelItem):
        saved = ("label", dict(item.opts))
        item.setText(item.text, size=_scaled_size(item.opts["size"]) if "size" in item.opts else f"{size:.1f}pt")
        return saved
    return None


def _restore(item, saved: tuple) -> None:
    kind = saved[0]
    if kind == "view":
        item.setBackgroundBrush(saved[1])
    elif kind == "curve":
        if saved[1] is not None:
            item.setPen(saved[1])
        if saved[2] is not None and item.opts.get("symbolSize") != saved[2]:
            item.setSymbolSize(saved[2])
    elif kind == "axis":
        _, pen, text_pen, tick_font, label_style, grid = saved
        item.setPen(pen)
        item.setTextPen(text_pen)
        item.setTickFont(tick_font)
        item.labelStyle.clear()
        item.labelStyle.update(label_style)
        item.setGrid(grid)
        _update_axis_label(item)
    elif kind == "label":
        item.opts.clear()
        item.opts.update(saved[1])
        item.setText(item.text)


def _update_axis_label(axis: pg.AxisItem) -> None:
    """Redraw an axis label from its style and re-measure the axis (pyqtgraph has no public call for it)."""
    axis._updateLabel()


def _scaled_font(font: QtGui.QFont, factor: float) -> QtGui.QFont:
    scaled = QtGui.QFont(font)
    if font.pointSizeF() > 0:
        scaled.setPointSizeF(font.pointSizeF() * factor)
    elif font.pixelSize() > 0:
        scaled.setPixelSize(round(font.pixelSize() * factor))
    return scaled


def _scaled_size(size: str) -> str:
    match = re.fullmatch(r"\s*([0-9.]+)\s*(pt|px)\s*", str(size))
    if match is None:
        return size
    return f"{float(match.group(1)) * FONT_SCALE:.1f}{match.group(2)}"


def _alive(item) -> bool:
    try:
        item.scene()
        return True
    except RuntimeError:
        return False


def install(window) -> None:
    """View → Presentation mode (F11, Ctrl+Shift+P); the controller is ``window.presentation``."""
    mode = PresentationMode(window)
    window.installEventFilter(mode)
    window.presentation = mode
    action = menu_named(window, "View").addAction("Presentation mode")
    action.setCheckable(True)
    action.setShortcuts([QtGui.QKeySequence("F11"), QtGui.QKeySequence("Ctrl+Shift+P")])
    action.setShortcutContext(QtCore.Qt.WindowShortcut)
    action.setToolTip("Full screen, larger fonts and controls, high-contrast plots (for a projector)")
    action.toggled.connect(mode.set_active)
    mode.toggled.connect(lambda on: action.setChecked(on) if action.isChecked() != on else None)
    window.presentation_action = action

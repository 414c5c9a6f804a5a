"""Features that live in their own modules and plug into the main window: each adds its menus, docks and
shortcuts through an ``install(window)`` function, called once when the window is built."""
from __future__ import annotations

from PySide6 import QtWidgets


def menu_named(window: QtWidgets.QMainWindow, title: str) -> QtWidgets.QMenu:
    """The window's menu called ``title`` ('File', '&View', ...; ampersands ignored), created (before Help) if missing."""
    bar = window.menuBar()
    wanted = title.replace("&", "")
    help_action = None
    for action in bar.actions():
        menu = action.menu()
        if menu is None:
            continue
        name = menu.title().replace("&", "")
        if name == wanted:
            return menu
        if name == "Help":
            help_action = action
    menu = QtWidgets.QMenu(title, bar)
    if help_action is not None:
        bar.insertMenu(help_action, menu)
    else:
        bar.addMenu(menu)
    return menu


def install_features(window) -> None:
    """Plug every feature module into ``window`` (one line each)."""
    from . import compare_board
    compare_board.install(window)
    from . import timeline_bar
    timeline_bar.install(window)
    from . import exports
    exports.install(window)
    from . import budget_meter, lessons, presentation, shortcuts
    budget_meter.install(window)
    presentation.install(window)
    lessons.install(window)
    shortcuts.install(window)
    from . import session_menu  # last: it restores the layout of everything the others added
    session_menu.install(window)

"""Small dialogs the window's exports share."""
from __future__ import annotations

import os

from PySide6 import QtWidgets

MESH_FILTER = "PLY (*.ply);;Wavefront OBJ (*.obj);;glTF binary (*.glb);;STL (*.stl)"
ANIMATION_FILTER = "MP4 video (*.mp4);;Animated GIF (*.gif)"


def ask_save_path(parent, title: str, file_filter: str) -> str | None:
    """A file to write (None if cancelled); without a suffix it takes the chosen filter's, e.g. '.mp4'."""
    path, chosen = QtWidgets.QFileDialog.getSaveFileName(parent, title, os.getcwd(), file_filter)
    if not path:
        return None
    if not os.path.splitext(path)[1] and "*." in chosen:
        path += "." + chosen.split("*.")[1].split(")")[0]
    return path

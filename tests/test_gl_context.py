"""The 3D views (vispy) need a real OpenGL context: check that the test machine provides one.

Under `xvfb-run ... +extension GLX` with Mesa this renders; with QT_QPA_PLATFORM=offscreen it cannot.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = [pytest.mark.gl, pytest.mark.gui]


@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display (run under xvfb-run)")
def test_vispy_renders_a_mesh(qapp):
    from vispy import scene

    canvas = scene.SceneCanvas(app="pyside6", size=(120, 120), show=False, bgcolor="black")
    try:
        view = canvas.central_widget.add_view()
        vertices = np.array([[-1, -1, 0], [1, -1, 0], [0, 1, 0]], dtype=np.float32)
        faces = np.array([[0, 1, 2]], dtype=np.uint32)
        mesh = scene.visuals.Mesh(vertices=vertices, faces=faces, color=(1.0, 0.5, 0.0, 1.0), parent=view.scene)
        view.camera = scene.PanZoomCamera(rect=(-1.2, -1.2, 2.4, 2.4))
        image = canvas.render()
        assert image.shape[2] == 4
        centre = image[image.shape[0] // 2, image.shape[1] // 2, :3].astype(int)
        corner = image[2, 2, :3].astype(int)
        assert tuple(corner) == (0, 0, 0)
        assert centre[0] > 200 and 100 < centre[1] < 160 and centre[2] < 30, centre

        mesh.set_data(vertices=vertices * 0.1, faces=faces, color=(0.0, 1.0, 0.0, 1.0))
        image = canvas.render()
        assert tuple(image[image.shape[0] // 2, image.shape[1] // 2, :3]) == (0, 255, 0)
        assert tuple(image[image.shape[0] // 4, image.shape[1] // 2, :3]) == (0, 0, 0)
    finally:
        canvas.close()

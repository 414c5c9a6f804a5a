"""The 3D lab in the real window (pytest-qt under Xvfb with Mesa GLX): the mesh drawn, controls, exports."""
from __future__ import annotations

import os

import numpy as np
import pytest
from gui_helpers import wait_for

from models.fields import FieldConfig
from models.scenes import Scene
from models.sdf_signal import SdfSampling, sdf_signal
from models.training import TrainConfig

pytestmark = [pytest.mark.gui, pytest.mark.gl,
              pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display with GLX (xvfb-run)")]


@pytest.fixture
def lab(qtbot):
    from app.main_window import MainWindow

    signal = sdf_signal("torus", SdfSampling(pool=4000))
    scene = Scene(field=FieldConfig(kind="siren", width=16, depth=2, w0=15.0), train=TrainConfig(lr=2e-3, batch_size=1024))
    win = MainWindow(signal, scene, 64, running=False, source="torus")
    qtbot.addWidget(win)
    win.show()
    win.sdf_view.still_res.setCurrentIndex(0)  # 128: quick fine meshes for a test
    win.session.worker.step(5)
    snapshot = wait_for(qtbot, win, lambda s: s.runs and s.runs[0].step == 5 and s.runs[0].sdf is not None
                        and s.runs[0].sdf.still and s.runs[0].sdf.mesh.resolution == 128, timeout=60000)
    yield win, snapshot
    win.close()
    assert win.session.worker is None


def test_the_3d_view_draws_the_worker_mesh_and_the_metrics(qtbot, lab):
    win, snapshot = lab
    view = win.sdf_view
    assert win.views.currentWidget() is view and not win.metrics.isVisible()
    mesh = snapshot.runs[0].sdf.mesh
    assert view.canvas.vertex_count == len(mesh.vertices)
    text = view.metrics_label.text()
    assert "fine mesh 128³" in text and "field queries" in text
    image = view.canvas.render_image((200, 200))
    background = np.array([0xf4, 0xf4, 0xf6])
    drawn = np.abs(image[:, :, :3].astype(int) - background).sum(axis=2) > 30
    assert drawn.mean() > 0.02 or mesh.empty, "something besides the background is drawn"


def test_the_level_slider_and_slice_plane_reach_the_worker(qtbot, lab):
    win, _ = lab
    view = win.sdf_view
    view.level.setValue(50)  # a quarter of the way up: level +0.1
    view.slice_axis.setCurrentIndex(1)
    snapshot = wait_for(qtbot, win, lambda s: s.runs[0].sdf.slice_axis == 1
                        and abs(s.runs[0].sdf.level - 0.1) < 1e-6, timeout=60000)
    assert "y =" in view.slice.title.text
    assert view.level_label.text() == "level +0.100"
    assert snapshot.runs[0].sdf.slice_field.shape == (128, 128)


def test_colour_modes_wireframe_truth_and_camera_only_redraw(qtbot, lab):
    win, _ = lab
    view = win.sdf_view
    for index in range(view.colour.count()):
        view.colour.setCurrentIndex(index)
    view.wireframe.setChecked(True)
    view.truth.setChecked(True)
    view.shading.setCurrentText("flat")
    view.camera.setCurrentText("arcball")
    assert view.canvas.camera_kind == "arcball" and view.canvas.truth.visible and view.canvas.wireframe.enabled
    assert view.canvas.render_image((120, 120)).shape == (120, 120, 4)


def test_exports_write_a_mesh_file_and_a_turntable(qtbot, lab, tmp_path):
    import imageio.v3 as iio
    import trimesh

    win, _ = lab
    path = tmp_path / "torus.ply"
    win.export_mesh(0, str(path))
    qtbot.waitUntil(path.exists, timeout=60000)  # written under a temporary name, then renamed: complete
    assert len(trimesh.load(str(path), force="mesh").faces) > 0
    summary = win.export_turntable(str(tmp_path / "turn.gif"), frames=4)
    assert "4 frames" in summary
    assert len(iio.imread(tmp_path / "turn.gif", index=None)) == 4


def test_clicking_a_partition_on_the_slice_crops_it_and_a_second_click_restores_it(qtbot):
    from app.main_window import MainWindow
    from models.scenes import CropSettings

    signal = sdf_signal("sphere", SdfSampling(pool=4000))
    scene = Scene(field=FieldConfig(kind="siren", depth=2, w0=15.0), train=TrainConfig(lr=2e-3, batch_size=1024),
                  preset="crop", crop=CropSettings(partitions=(2, 2, 2), local_width=8, global_width=8))
    win = MainWindow(signal, scene, 64, running=False, source="sphere")
    qtbot.addWidget(win)
    win.show()
    try:
        win.sdf_view.still_res.setCurrentIndex(0)
        win.session.worker.step(2)
        snapshot = wait_for(qtbot, win, lambda s: s.runs and s.runs[0].step == 2, timeout=60000)
        assert win.views.currentWidget() is win.sdf_view and win.sdf_view.partitions.isVisible()
        assert win.sdf_view.canvas.boxes.visible
        full = snapshot.runs[0].params
        win.sdf_view._slice_clicked(0.5, 0.5)  # plane z = 0 belongs to the upper z half: the (+x, +y, +z) box
        cropped = wait_for(qtbot, win, lambda s: len(s.runs[0].partitions.present) == 7, timeout=60000)
        assert cropped.runs[0].params < full
        win.sdf_view._slice_clicked(0.5, 0.5)
        wait_for(qtbot, win, lambda s: len(s.runs[0].partitions.present) == 8, timeout=60000)
    finally:
        win.close()

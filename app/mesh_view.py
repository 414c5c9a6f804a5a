"""The 3D canvas: one vispy SceneCanvas, wrapped by a plain class, that draws a mesh the worker extracted.

It never computes anything about a field: it takes vertices, faces and colours (float32, already made on the
snapshot thread) and draws them with a headlight, optional wireframe, a translucent ground-truth overlay and
boxes (the domain cube, a croppable field's partitions).
"""
from __future__ import annotations

import numpy as np
from vispy import scene
from vispy.color import get_colormap
from vispy.visuals.filters import WireframeFilter

CUBE_EDGES = np.array([[0, 1], [1, 3], [3, 2], [2, 0], [4, 5], [5, 7], [7, 6], [6, 4], [0, 4], [1, 5], [2, 6], [3, 7]])
MESH_GREY = (0.78, 0.78, 0.80, 1.0)
TRUTH_COLOUR = (0.25, 0.75, 0.35, 0.28)
ERROR_LIMIT = 0.04
"""Distance to the true surface shown as the top of the error colour map (domain units; the cube is 2 wide)."""


def box_segments(boxes) -> np.ndarray:
    """Line-segment vertices ((12 * len(boxes) * 2, 3) float32) of the edges of axis-aligned boxes [(lo, hi)] * 3."""
    segments = []
    for box in boxes:
        (x0, x1), (y0, y1), (z0, z1) = box
        corners = np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)], dtype=np.float32)
        segments.append(corners[CUBE_EDGES].reshape(-1, 3))
    return np.concatenate(segments) if segments else np.zeros((0, 3), np.float32)


def vertex_colours(mode: str, normals: np.ndarray, error: np.ndarray | None, limit: float = ERROR_LIMIT) -> np.ndarray:
    """RGBA per vertex: 'normal' maps the unit normal to RGB, 'error' the distance to the truth through viridis
    with fixed levels [0, limit], anything else a neutral grey."""
    count = len(normals)
    if mode == "normal":
        rgb = np.clip(0.5 * (np.asarray(normals, np.float32) + 1.0), 0.0, 1.0)
        return np.concatenate([rgb, np.ones((count, 1), np.float32)], axis=1)
    if mode == "error" and error is not None and len(error) == count:
        return get_colormap("viridis").map(np.clip(np.asarray(error, np.float32) / limit, 0.0, 1.0)).astype(np.float32)
    return np.tile(np.asarray(MESH_GREY, np.float32), (count, 1))


class MeshCanvas:
    """A SceneCanvas with the field's mesh, the true surface (optional), the domain cube and partition boxes."""

    def __init__(self, parent=None, size=(640, 520)):
        self.canvas = scene.SceneCanvas(app="pyside6", keys=None, show=False, size=size, bgcolor="#f4f4f6",
                                        parent=parent)
        self.widget = self.canvas.native
        """The QWidget to put in a layout."""
        self.view = self.canvas.central_widget.add_view()
        self.camera_kind = ""
        self.set_camera("turntable")
        # a placeholder triangle until the first snapshot: the shading filter needs data to set its lights
        self.mesh = scene.visuals.Mesh(vertices=np.eye(3, dtype=np.float32) * 1e-3, faces=np.array([[0, 1, 2]], np.uint32),
                                       parent=self.view.scene, shading="smooth")
        self.mesh.visible = False
        self.mesh.shading_filter.ambient_light = (1, 1, 1, 0.35)
        self.mesh.shading_filter.specular_light = (1, 1, 1, 0.15)
        self.wireframe = WireframeFilter(enabled=False, width=0.6, color=(0.1, 0.1, 0.15, 0.8))
        self.mesh.attach(self.wireframe)
        self.truth = scene.visuals.Mesh(parent=self.view.scene, color=TRUTH_COLOUR, shading=None)
        self.truth.set_gl_state("translucent", depth_test=True, cull_face=False)
        self.truth.order = 1  # after the opaque mesh, so it blends over it
        self.truth.visible = False
        self.cube = scene.visuals.Line(pos=box_segments([((-1, 1),) * 3]), connect="segments",
                                       color=(0.55, 0.55, 0.6, 1.0), parent=self.view.scene)
        self.boxes = scene.visuals.Line(pos=np.zeros((2, 3), np.float32), connect="segments",
                                        color=(0.9, 0.45, 0.1, 0.45), width=1.0, parent=self.view.scene)
        self.boxes.visible = False
        self.vertex_count = 0
        self._light = (0.0, 1.0, 0.0, 0.0)
        self._attach_headlight()

    # -- camera --------------------------------------------------------------------------------------
    def set_camera(self, kind: str) -> None:
        """'turntable' (orbit about the vertical axis) or 'arcball' (free rotation); keeps the zoom."""
        if kind == self.camera_kind:
            return
        if kind == "arcball":
            camera = scene.cameras.ArcballCamera(fov=35)
        else:
            camera = scene.cameras.TurntableCamera(fov=35, elevation=22, azimuth=-35)
        self.view.camera = camera
        camera.set_range(x=(-1.15, 1.15), y=(-1.15, 1.15), z=(-1.15, 1.15))
        camera.center = (0.0, 0.0, 0.0)
        self.camera_kind = kind
        if hasattr(self, "mesh"):
            self._attach_headlight()

    def _attach_headlight(self) -> None:
        """The light follows the camera, so whatever faces the viewer is lit."""
        initial = self.view.camera.transform.imap(self._light)

        def follow(_event=None) -> None:
            self.mesh.shading_filter.light_dir = self.view.camera.transform.map(initial)[:3]

        self.view.scene.transform.changed.connect(follow)
        follow()

    def rotate(self, degrees: float) -> None:
        camera = self.view.camera
        if hasattr(camera, "azimuth"):
            camera.azimuth = (camera.azimuth + degrees) % 360.0
        self.canvas.update()

    # -- content ---------------------------------------------------------------------------------------
    def set_mesh(self, vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray) -> None:
        vertices = np.ascontiguousarray(vertices, dtype=np.float32)
        self.vertex_count = len(vertices)
        if len(faces) == 0:
            self.mesh.visible = False
        else:
            self.mesh.set_data(vertices=vertices, faces=np.ascontiguousarray(faces, dtype=np.uint32),
                               vertex_colors=np.ascontiguousarray(colours, dtype=np.float32))
            self.mesh.visible = True
        self.canvas.update()

    def set_shading(self, shading: str) -> None:
        """'smooth' (vertex normals) or 'flat' (face normals)."""
        self.mesh.shading_filter.shading = shading
        self.canvas.update()

    def set_wireframe(self, on: bool) -> None:
        self.wireframe.enabled = bool(on)
        self.canvas.update()

    def set_truth(self, vertices: np.ndarray | None, faces: np.ndarray | None) -> None:
        if vertices is not None and len(faces):
            self.truth.set_data(vertices=np.ascontiguousarray(vertices, dtype=np.float32),
                                faces=np.ascontiguousarray(faces, dtype=np.uint32), color=TRUTH_COLOUR)

    def show_truth(self, on: bool) -> None:
        self.truth.visible = bool(on)
        self.canvas.update()

    def set_boxes(self, boxes) -> None:
        """Outline these boxes ([(lo, hi)] per axis each), or none."""
        segments = box_segments(boxes)
        self.boxes.visible = len(segments) > 0
        if len(segments):
            self.boxes.set_data(pos=segments)
        self.canvas.update()

    def render_image(self, size: tuple[int, int] | None = None) -> np.ndarray:
        """The scene as an (H, W, 4) uint8 image: drawn off screen at the widget's size, then (with ``size`` =
        (width, height)) centre-cropped to that aspect ratio and resampled to it."""
        image = self.canvas.render()
        if not size:
            return image
        from PIL import Image

        h, w = image.shape[:2]
        target_w, target_h = size
        scale = min(w / target_w, h / target_h)
        crop_w, crop_h = int(round(target_w * scale)), int(round(target_h * scale))
        left, top = (w - crop_w) // 2, (h - crop_h) // 2
        cropped = Image.fromarray(np.ascontiguousarray(image[top:top + crop_h, left:left + crop_w]))
        return np.asarray(cropped.resize((target_w, target_h), Image.LANCZOS))

    def turntable_frames(self, count: int = 48, size: tuple[int, int] = (480, 480)) -> list[np.ndarray]:
        """``count`` RGB frames of one full turn about the vertical axis (the camera is put back afterwards)."""
        camera = self.view.camera
        if not hasattr(camera, "azimuth"):
            self.set_camera("turntable")
            camera = self.view.camera
        start = camera.azimuth
        frames = []
        try:
            for i in range(count):
                camera.azimuth = (start + 360.0 * i / count) % 360.0
                frames.append(np.ascontiguousarray(self.render_image(size)[:, :, :3]))
        finally:
            camera.azimuth = start
        return frames

    def close(self) -> None:
        self.canvas.close()

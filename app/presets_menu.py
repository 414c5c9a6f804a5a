"""The Presets menu: one click sets up a lab's default scene and signal (a mixin of the main window)."""
from __future__ import annotations

from dataclasses import replace

from models.scenes import (CURVE_GROWTH_SCENE, DEFAULT_CROP_SCENE, DEFAULT_EXTEND_SCENE, DEFAULT_GROWTH_SCENE,
                           DEFAULT_SDF_CROP_SCENE, DEFAULT_SDF_GROWTH_SCENE, DEFAULT_SDF_SCENE, DEFAULT_SWEEP_SCENE,
                           DEFAULT_SWEEP_SIZE)
from models.video import DEFAULT_VIDEO_SIZE

from .time_window import family_defaults


class PresetActions:
    """The window's Presets menu and what each entry does (uses the window's controls, session and loaders)."""

    def _build_presets_menu(self, presets) -> None:
        presets.addAction("Image: SIREN on the cameraman", lambda: self._preset("image", "siren"))
        presets.addAction("Spectral bias: ReLU vs Fourier vs SIREN", lambda: self._preset("spectral-bias", "siren"))
        presets.addAction("1D: sum of sinusoids", lambda: self._load_source("sinusoids"))
        presets.addSeparator()
        presets.addAction("Spectral growth: streamable SIREN, widths 16→128", self._preset_growth_image)
        presets.addAction("Spectral growth in 1D: sinusoids, widths 10→40 (paper Fig. 5)", self._preset_growth_curve)
        presets.addSeparator()
        presets.addAction("Crop & extend: Local-Global SIREN, 8×8 partitions", lambda: self._preset_crop(False))
        presets.addAction("Extend a half-trained image (paper Fig. 7)", lambda: self._preset_crop(True))
        presets.addSeparator()
        presets.addAction("FINER++ bias sweep: k = 0…10 vs SIREN", self._preset_sweep)
        presets.addSeparator()
        presets.addAction("3D: SIREN signed distance field of a torus", lambda: self._preset_3d("torus"))
        presets.addAction("3D: a detailed shape (bumpy sphere)", lambda: self._preset_3d("bumpy-sphere"))
        presets.addAction("3D: spectral bias on a gyroid (ReLU vs Fourier vs SIREN)",
                          lambda: self._preset_3d("gyroid", "spectral-bias"))
        presets.addAction("3D: spectral growth of a bumpy sphere, a mesh per width",
                          lambda: self._preset_3d("bumpy-sphere", "growth"))
        presets.addAction("3D: crop a Local-Global SIREN, 4×4×4 partitions (click the slice)",
                          lambda: self._preset_3d("blobs", "crop"))
        presets.addSeparator()
        presets.addAction("Time: SIREN+ResFields vs SIREN on a video (the tour)", lambda: self._preset_time("tour"))
        presets.addAction("Time: a video with hard cuts (four shots)", lambda: self._preset_time("cuts"))
        presets.addAction("Time: ResFields vs SIREN vs a wider SIREN with as many parameters",
                          lambda: self._preset_time("tour", "matched"))
        presets.addAction("Time: a sphere morphing into a torus (3D)", lambda: self._preset_time("morph"))
        presets.addAction("Time: a bouncing, turning box (3D)", lambda: self._preset_time("bounce"))

    def _preset_crop(self, extend: bool) -> None:
        self.controls.apply(DEFAULT_EXTEND_SCENE if extend else DEFAULT_CROP_SCENE, max(self.controls.working_size(), 16))
        if self.session.signal is None or self.session.signal.kind != "image":
            self._load_source("camera")
        else:
            self.restart()

    def _preset_time(self, source: str, compare: str | None = None) -> None:
        scene = family_defaults("time-video" if source in ("tour", "cuts") else "time-shape")
        if compare is not None:
            scene = replace(scene, time=replace(scene.time, compare=compare))
        self.controls.apply(scene, DEFAULT_VIDEO_SIZE)
        self._load_source(source)

    def _preset_sweep(self) -> None:
        self.controls.apply(DEFAULT_SWEEP_SCENE, DEFAULT_SWEEP_SIZE)
        image = self.session.signal is not None and self.session.signal.kind == "image"
        self._load_source(self.source if image else "camera")

    def _preset_growth_image(self) -> None:
        size = max(self.controls.working_size(), 16)
        self.controls.apply(DEFAULT_GROWTH_SCENE, size)
        if self.session.signal is None or self.session.signal.kind != "image":
            self._load_source("camera")
        else:
            self.restart()

    def _preset_growth_curve(self) -> None:
        self.controls.apply(CURVE_GROWTH_SCENE, self.controls.working_size())
        self._load_source("sinusoids")

    def _preset(self, preset: str, kind: str) -> None:
        index = self.controls.preset.findData(preset)
        self.controls.preset.setCurrentIndex(index)
        self.controls.kind.setCurrentIndex(self.controls.kind.findData(kind))
        if self.session.signal is None or self.session.signal.kind != "image":
            self._load_source("camera")
        else:
            self.restart()

    def _preset_3d(self, shape: str, preset: str = "image") -> None:
        special = {"growth": DEFAULT_SDF_GROWTH_SCENE, "crop": DEFAULT_SDF_CROP_SCENE}
        scene = special.get(preset) or replace(DEFAULT_SDF_SCENE, preset=preset)
        self.controls.apply(scene, self.controls.working_size())
        self._load_source(shape)

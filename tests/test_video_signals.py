"""Temporal video signals: synthesized videos, the (x, y, t) frame-major layout, video files and frame folders."""
from __future__ import annotations

import os

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from models import video
from models.signals import SignalError, TimeAxis, grid_coords, image_extent, read_image_file
from models.video import (
    DEFAULT_VIDEO_FRAMES,
    DEFAULT_VIDEO_SIZE,
    MAX_FRAMES,
    VIDEO_SAMPLES,
    frame_indices,
    is_video_source,
    synthesize_video,
    video_signal,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _moving_pattern(frames: int, height: int, width: int) -> np.ndarray:
    """uint8 (T, H, W, 3): smooth stripes that slide a few pixels per frame (each frame distinct, easy to encode)."""
    t = np.arange(frames)[:, None, None]
    y, x = np.mgrid[0:height, 0:width]
    red = 128 + 90 * np.sin(2 * np.pi * (x + 2.0 * t) / 24.0)
    green = 128 + 90 * np.sin(2 * np.pi * (y - 1.5 * t) / 20.0)
    blue = np.broadcast_to(40 + 6.0 * t, red.shape)
    return np.stack([red, green, blue], axis=-1).round().astype(np.uint8)


def _write_mp4(path, frames: np.ndarray, fps: float = 24) -> None:
    iio.imwrite(path, frames, plugin="pyav", codec="libx264", fps=fps)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two arrays in [0, 1]."""
    return float(10 * np.log10(1.0 / max(np.mean((a - b) ** 2), 1e-12)))


def _frames_of(signal) -> np.ndarray:
    """The signal's values as (T, H, W, C) in [0, 1]."""
    return ((signal.values.numpy() + 1.0) * 0.5).reshape(*signal.shape, signal.channels)


@pytest.fixture(scope="module")
def tour():
    return synthesize_video("tour", DEFAULT_VIDEO_SIZE, DEFAULT_VIDEO_FRAMES)


# ---- synthesized videos -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, size, frames", [("tour", DEFAULT_VIDEO_SIZE, DEFAULT_VIDEO_FRAMES), ("cuts", 32, 12)])
def test_synthesized_videos_are_deterministic_rgb_in_unit_range(name, size, frames, tour):
    first = tour if name == "tour" else synthesize_video(name, size, frames)
    assert first.dtype == np.float32 and first.shape == (frames, size, size, 3)
    np.testing.assert_array_equal(first, synthesize_video(name, size, frames))
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert first.std() > 0.15, "a real photo, not a flat field"
    assert set(VIDEO_SAMPLES) == {"tour", "cuts"}


def test_tour_moves_smoothly_and_its_light_changes(tour):
    count = len(tour)
    gaps = np.array([[np.abs(a - b).mean() for b in tour] for a in tour])
    steps = np.diag(gaps, 1)
    assert steps.min() > 0.02, "every frame differs from the previous one (the camera keeps moving)"
    np.fill_diagonal(gaps, np.inf)
    assert all(abs(int(np.argmin(gaps[k])) - k) == 1 for k in range(count)), "each frame is most like a neighbour"
    apart = np.abs(np.subtract.outer(np.arange(count), np.arange(count))) >= count // 2
    assert steps.mean() < 0.5 * gaps[apart].mean(), "consecutive frames are far more alike than distant ones"
    assert steps.max() < 0.8 * gaps[apart].min(), "no cuts in the tour, and it never comes back to a view"
    brightness = tour.mean(axis=(1, 2, 3))
    assert np.ptp(brightness) > 0.12, "the lighting changes visibly"
    warmth = (tour[..., 0] - tour[..., 2]).mean(axis=(1, 2))
    assert np.ptp(warmth) > 0.1, "the colour temperature changes"


def test_cuts_has_exactly_three_hard_cuts():
    clip = synthesize_video("cuts", 32, 24)
    steps = np.abs(np.diff(clip, axis=0)).mean(axis=(1, 2, 3))
    cuts = np.flatnonzero(steps > 0.5 * steps.max())
    assert cuts.tolist() == [5, 11, 17], steps.round(3)  # four shots of six frames
    inside = np.delete(steps, cuts)
    assert inside.max() < 0.4 * steps[cuts].min(), "slow pans inside the shots, big jumps at the cuts"
    assert inside.min() > 0.005, "every shot moves"


def test_requests_out_of_range_are_refused():
    for size, frames in ((7, 10), (64, 0), (64, MAX_FRAMES + 1)):
        with pytest.raises(SignalError, match="size|frames"):
            video_signal("tour", size=size, frames=frames)
    with pytest.raises(ValueError, match="unknown video"):
        synthesize_video("nope", 32, 4)
    with pytest.raises(SignalError, match="unknown video 'nope'"):
        video_signal("nope")


# ---- the signal's layout ----------------------------------------------------------------------------------------

def _check_layout(signal, clip: np.ndarray, keep_aspect: bool = True) -> None:
    t, h, w = clip.shape[:3]
    channels = 1 if clip.ndim == 3 else 3
    assert signal.kind == "video" and signal.shape == (t, h, w) and signal.channels == channels
    assert signal.coords.dtype == torch.float32 and signal.values.dtype == torch.float32
    assert signal.coords.shape == (t * h * w, 3) and signal.values.shape == (t * h * w, channels)
    extent = image_extent(h, w, keep_aspect)
    assert signal.extent == (*extent, 1.0)
    assert signal.time == TimeAxis(frames=t, samples_per_frame=h * w, fps=signal.time.fps)
    times = signal.time.times()
    for k in range(t):
        rows = signal.time.rows(k)
        torch.testing.assert_close(signal.coords[rows, :2], grid_coords((h, w), extent), rtol=0, atol=0)
        assert torch.all(signal.coords[rows, 2] == torch.tensor(times[k], dtype=torch.float32))
        frame = torch.from_numpy(clip[k].reshape(h * w, channels)) * 2.0 - 1.0
        torch.testing.assert_close(signal.values[rows], frame, rtol=0, atol=1e-6)
    assert signal.values.min() >= -1.0 and signal.values.max() <= 1.0


def test_synthesized_signal_is_frame_major_with_time_last(tour):
    signal = video_signal("tour")
    _check_layout(signal, tour)
    assert signal.name == "tour" and signal.original_shape == (24, 64, 64) and signal.time.fps == 12.0
    assert "synthesized" in signal.note
    assert signal.coords[:, 2].min() == -1.0 and signal.coords[:, 2].max() == 1.0


def test_frame_indices_are_evenly_spread():
    assert frame_indices(30, 10).tolist() == list(range(1, 30, 3))
    assert frame_indices(5, 24).tolist() == [0, 1, 2, 3, 4]
    assert frame_indices(9, 1).tolist() == [4]
    kept = frame_indices(180, 24)
    assert len(set(kept.tolist())) == 24 and kept[0] >= 0 and kept[-1] < 180
    assert np.ptp(np.diff(kept)) <= 1


# ---- video files and folders ------------------------------------------------------------------------------------

def test_mp4_round_trip_subsamples_evenly(tmp_path):
    written = _moving_pattern(30, 32, 48)
    path = tmp_path / "clip.mp4"
    _write_mp4(path, written, fps=24)
    signal = video_signal(str(path), size=64, frames=10)
    assert signal.name == "clip.mp4" and signal.shape == (10, 32, 48) and signal.channels == 3
    assert signal.original_shape == (30, 32, 48)
    assert signal.note == "10 of 30 frames (every 3rd)"
    assert signal.time.fps == pytest.approx(24 * 10 / 30), "the subsampled clip plays as long as the source"
    got, source = _frames_of(signal), written.astype(np.float32) / 255.0
    for k, index in enumerate(frame_indices(30, 10)):
        scores = [_psnr(got[k], frame) for frame in source]
        assert int(np.argmax(scores)) == index, f"frame {k} is source frame {np.argmax(scores)}, not {index}"
        assert scores[index] > 25.0
    _check_layout(signal, got)


@pytest.mark.parametrize("suffix, codec", [(".webm", "libvpx-vp9"), (".mkv", "libx264"), (".mov", "libx264"),
                                           (".avi", "mpeg4")])
def test_other_containers_count_their_frames(tmp_path, suffix, codec):
    # WebM and MKV store no frame count: the reader counts the packets first
    written = _moving_pattern(12, 16, 32)
    path = tmp_path / f"clip{suffix}"
    iio.imwrite(path, written, plugin="pyav", codec=codec, fps=12)
    signal = video_signal(str(path), frames=4)
    assert signal.shape == (4, 16, 32) and signal.note == "4 of 12 frames (every 3rd)"
    assert signal.time.fps == pytest.approx(4.0)
    got = _frames_of(signal)
    assert all(_psnr(got[k], written[i] / 255.0) > 20.0 for k, i in enumerate(frame_indices(12, 4)))


def test_mp4_downscaled_keeps_aspect_and_says_so(tmp_path):
    path = tmp_path / "wide.mp4"
    _write_mp4(path, _moving_pattern(6, 32, 64))
    signal = video_signal(str(path), size=16, frames=24)
    assert signal.shape == (6, 8, 16) and signal.extent == (1.0, 0.5, 1.0)
    assert signal.note == "all 6 frames, downscaled from 64x32 to 16x8 px"
    assert signal.time.fps == pytest.approx(24.0)
    assert video_signal(str(path), size=16, keep_aspect=False).extent == (1.0, 1.0, 1.0)


def test_gif_round_trip_rgb_and_gray(tmp_path):
    written = _moving_pattern(12, 20, 30)
    path = tmp_path / "anim.gif"
    iio.imwrite(path, written, plugin="pillow", duration=100, loop=0)
    signal = video_signal(str(path), size=64, frames=4)
    assert signal.shape == (4, 20, 30) and signal.channels == 3
    assert signal.note == "4 of 12 frames (every 3rd)" and signal.time.fps == pytest.approx(10 * 4 / 12)
    got = _frames_of(signal)
    for k, index in enumerate(frame_indices(12, 4)):
        assert _psnr(got[k], written[index] / 255.0) > 25.0  # palette quantisation only
    gray_path = tmp_path / "gray.gif"
    iio.imwrite(gray_path, written[..., 0], plugin="pillow", duration=50, loop=0)
    gray = video_signal(str(gray_path), size=64, frames=24)
    assert gray.shape == (12, 20, 30) and gray.channels == 1 and gray.time.fps == pytest.approx(20.0)
    np.testing.assert_allclose(_frames_of(gray)[..., 0], written[..., 0] / 255.0, atol=1e-6)


def test_single_frame_video_is_allowed(tmp_path):
    path = tmp_path / "still.mp4"
    _write_mp4(path, _moving_pattern(1, 16, 16))
    signal = video_signal(str(path))
    assert signal.shape == (1, 16, 16) and signal.time.frames == 1
    assert torch.all(signal.coords[:, 2] == 0.0)


def _write_frames(folder, frames: dict[str, np.ndarray]) -> None:
    folder.mkdir(exist_ok=True)
    for name, frame in frames.items():
        iio.imwrite(folder / name, frame, plugin="pillow")


def test_folder_reads_frames_in_natural_order(tmp_path, monkeypatch):
    folder = tmp_path / "shots"
    _write_frames(folder, {f"frame{k}.png": np.full((10, 14), 10 * k, np.uint8) for k in range(1, 13)})
    (folder / "notes.txt").write_text("not a frame")
    (folder / ".hidden.png").write_bytes(b"junk")
    assert sorted(os.listdir(folder))[:3] == [".hidden.png", "frame1.png", "frame10.png"]
    signal = video_signal(str(folder), frames=24)
    assert signal.name == "shots" and signal.shape == (12, 10, 14) and signal.channels == 1
    assert signal.note == "all 12 frames" and signal.time.fps == 12.0
    levels = np.round(_frames_of(signal).mean(axis=(1, 2, 3)) * 255).astype(int)
    assert levels.tolist() == [10 * k for k in range(1, 13)]
    read, real_read = [], read_image_file
    monkeypatch.setattr(video, "read_image_file", lambda path: read.append(os.path.basename(path)) or real_read(path))
    sub = video_signal(str(folder) + os.sep, frames=4)
    assert read == ["frame2.png", "frame5.png", "frame8.png", "frame11.png"], "only the kept frames are read"
    assert sub.name == "shots" and sub.note == "4 of 12 frames (every 3rd)" and sub.time.fps == 12.0
    levels = np.round(_frames_of(sub).mean(axis=(1, 2, 3)) * 255).astype(int)
    assert levels.tolist() == [20, 50, 80, 110]


def test_folder_layout_downscale_and_colour(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "colour"
    _write_frames(folder, {"a1.png": rng.integers(0, 256, (40, 60), dtype=np.uint8),
                           "a2.png": rng.integers(0, 256, (40, 60, 3), dtype=np.uint8),
                           "a3.png": rng.integers(0, 256, (40, 60, 4), dtype=np.uint8)})
    signal = video_signal(str(folder), size=30)
    assert signal.shape == (3, 20, 30) and signal.channels == 3, "one colour frame makes the video RGB"
    assert signal.note == "all 3 frames, downscaled from 60x40 to 30x20 px" and signal.original_shape == (3, 40, 60)
    clip = _frames_of(signal)
    assert np.allclose(clip[0, ..., 0], clip[0, ..., 2]), "the gray frame became gray RGB"
    _check_layout(signal, clip)
    small = video_signal(str(folder), size=60, keep_aspect=False)
    _check_layout(small, _frames_of(small), keep_aspect=False)


# ---- bad input ---------------------------------------------------------------------------------------------------

def _valid_mp4_bytes(tmp_path) -> bytes:
    path = tmp_path / "valid.mp4"
    _write_mp4(path, _moving_pattern(8, 16, 16))
    return path.read_bytes()


def _png_bytes(tmp_path) -> bytes:
    path = tmp_path / "valid.png"
    iio.imwrite(path, np.zeros((8, 8), np.uint8), plugin="pillow")
    return path.read_bytes()


def _no_video_stream(path) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        container.start_encoding()


def _bad(tmp_path, case):
    """Create one bad input; returns its path."""
    if case == "missing":
        return tmp_path / "nothing.mp4"
    if case == "missing folder":
        return tmp_path / "nowhere"
    if case in ("empty folder", "no images", "mixed sizes", "broken frame"):
        folder = tmp_path / case.replace(" ", "_")
        folder.mkdir()
        if case == "no images":
            (folder / "readme.txt").write_text("hello")
            (folder / "bunny.obj").write_text("v 0 0 0\n")
        if case == "mixed sizes":
            _write_frames(folder, {"f1.png": np.zeros((24, 32), np.uint8), "f2.png": np.zeros((24, 32), np.uint8),
                                   "f10.png": np.zeros((24, 40), np.uint8)})
        if case == "broken frame":
            _write_frames(folder, {"f1.png": np.zeros((24, 32), np.uint8)})
            (folder / "f2.png").write_bytes(b"\x89PNG not really")
        return folder
    name, data = {
        "empty file": ("empty.mp4", b""),
        "random bytes": ("noise.mp4", np.random.default_rng(1).bytes(4096)),
        "png renamed": ("picture.mp4", _png_bytes(tmp_path)),
        "truncated mp4": ("cut.mp4", _valid_mp4_bytes(tmp_path)[:-400]),
        "random gif": ("noise.gif", np.random.default_rng(2).bytes(4096)),
        "not a video": ("photo.png", _png_bytes(tmp_path)),
        "no video stream": ("silent.mp4", None),
    }[case]
    path = tmp_path / name
    if data is None:
        _no_video_stream(path)
    else:
        path.write_bytes(data)
    return path


BAD_INPUTS = {
    "missing": "no such file",
    "missing folder": "no such file or folder",
    "empty file": "file is empty",
    "random bytes": "not a readable video",
    "png renamed": "PNG image, not a video",
    "truncated mp4": "not a readable video",
    "random gif": "not a readable GIF (not GIF data, or corrupt)",
    "not a video": "not a video file",
    "no video stream": "no video stream",
    "empty folder": "the folder is empty",
    "no images": "no image files",
    "mixed sizes": "f10.png: 40x24 px, but f1.png is 32x24 px",
    "broken frame": "f2.png: not a readable image",
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_give_one_line_named_errors(tmp_path, case):
    path = _bad(tmp_path, case)
    with pytest.raises(SignalError) as caught:
        video_signal(str(path), size=16, frames=8)
    message = str(caught.value)
    assert message.startswith((f"{path.name}:", f"{path.name}/")), message
    assert BAD_INPUTS[case] in message and "\n" not in message and str(tmp_path) not in message


# ---- what counts as a video source ------------------------------------------------------------------------------

def test_is_video_source(tmp_path):
    assert all(is_video_source(name) for name in VIDEO_SAMPLES)
    assert is_video_source("clips/run.MP4") and is_video_source("a.gif") and is_video_source("x.webm")
    assert not is_video_source("camera") and not is_video_source("photo.png") and not is_video_source("torus")
    frames = tmp_path / "frames"
    _write_frames(frames, {"f1.png": np.zeros((8, 8), np.uint8)})
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    (meshes / "bunny.obj").write_text("v 0 0 0\n")
    assert is_video_source(str(frames)) and is_video_source(frames)
    assert not is_video_source(str(meshes)) and not is_video_source(str(tmp_path / "missing"))
    assert not is_video_source(str(frames / "f1.png"))

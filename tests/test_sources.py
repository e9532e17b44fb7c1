"""Sources: image folders, OpenCV videos and cameras, and picamera2 through FakePicamera2."""

from __future__ import annotations

import itertools
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_classifier import sources
from edge_classifier.errors import CameraBusyError, CameraNotFoundError, CameraTimeoutError, SourceError
from edge_classifier.sources.images import ImageSource
from edge_classifier.sources.opencv import OpenCvSource, backoff_delays, spec_kind
from edge_classifier.sources.picamera import MEMORY_ORDER, PiCameraSource, legacy_camera_stack, memory_to_rgb, scaler_size
from tests import fake_picamera2

CORAL = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "coral"


def write_video(path: Path, frames: list[np.ndarray], fps: float = 30.0, fourcc: str = "mp4v") -> Path:
    """Write RGB frames as a video with OpenCV."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened()
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


# --- spec dispatch ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "kind"),
    [(0, "device"), ("2", "device"), ("/dev/video1", "device"), ("rtsp://cam/live", "stream"), ("http://x/mjpg", "stream"),
     ("v4l2src ! videoconvert ! appsink", "gstreamer"), ("clip.mp4", "file")],
)  # fmt: skip
def test_spec_kind(spec: str | int, kind: str) -> None:
    assert spec_kind(spec) == kind


def test_open_picks_the_source_class(tmp_path: Path) -> None:
    assert isinstance(sources.open("picamera"), PiCameraSource)
    assert sources.open("picamera1").camera_num == 1  # type: ignore[attr-defined]
    assert isinstance(sources.open(0), OpenCvSource)
    assert isinstance(sources.open("rtsp://cam/live"), OpenCvSource)
    assert isinstance(sources.open(tmp_path), ImageSource)
    assert isinstance(sources.open(str(tmp_path / "*.jpg")), ImageSource)
    assert isinstance(sources.open(CORAL / "cat.bmp"), ImageSource)
    assert isinstance(sources.open(tmp_path / "clip.mp4"), OpenCvSource)
    assert not sources.open(tmp_path / "clip.mp4").live
    assert sources.open(tmp_path / "clip.mp4", realtime=True).live
    assert sources.open("rtsp://cam/live").live


def test_backoff_doubles_to_a_cap() -> None:
    assert backoff_delays() == [0.5, 1.0, 2.0, 4.0, 8.0]


# --- images ----------------------------------------------------------------------------
def test_image_folder_in_sorted_order_skips_and_counts_bad_images(tmp_path: Path) -> None:
    shutil.copy(CORAL / "parrot.jpg", tmp_path / "b.jpg")
    shutil.copy(CORAL / "cat.bmp", tmp_path / "a.bmp")
    (tmp_path / "sub").mkdir()
    shutil.copy(CORAL / "bird.bmp", tmp_path / "sub" / "c.bmp")
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    (tmp_path / "notes.txt").write_text("ignored")
    with sources.open(tmp_path) as src:
        frames = list(src)
        names = [p.name for p in src.paths]  # type: ignore[attr-defined]
    assert names == ["a.bmp", "b.jpg", "broken.png", "c.bmp"]
    assert len(frames) == 3 and src.decode_errors == 1
    assert [f.index for f in frames] == [0, 1, 2]
    assert frames[0].rgb.shape == cv2.imread(str(CORAL / "cat.bmp")).shape
    assert all(f.rgb.dtype == np.uint8 and f.rgb.shape[2] == 3 for f in frames)
    assert frames[0].t_capture <= frames[1].t_capture


def test_image_glob_and_single_file(tmp_path: Path) -> None:
    for n in ("x1.jpg", "x2.jpg", "y.jpg"):
        shutil.copy(CORAL / "parrot.jpg", tmp_path / n)
    with sources.open(str(tmp_path / "x*.jpg")) as src:
        assert len(list(src)) == 2
    with sources.open(CORAL / "cat.bmp") as src:
        assert len(list(src)) == 1


@pytest.mark.parametrize("make", ["empty", "missing", "nomatch"])
def test_image_source_errors(tmp_path: Path, make: str) -> None:
    spec = {"empty": tmp_path, "missing": tmp_path / "nope", "nomatch": tmp_path / "*.png"}[make]
    src = ImageSource(spec)
    with pytest.raises(SourceError) as info:
        src.open()
    assert str(spec) in str(info.value) and info.value.fix


# --- OpenCV ----------------------------------------------------------------------------
def test_video_file_frames_are_rgb_and_complete(tmp_path: Path) -> None:
    red = np.zeros((240, 320, 3), np.uint8)
    red[..., 0] = 255
    video = write_video(tmp_path / "red.avi", [red] * 12, fourcc="MJPG")
    with sources.open(video) as src:
        assert src.fps == pytest.approx(30.0)
        frames = list(src)
    assert len(frames) == 12
    mean = frames[5].rgb.reshape(-1, 3).mean(axis=0)
    assert mean[0] > 240 and mean[1] < 15 and mean[2] < 15, f"BGR not converted to RGB once: {mean}"
    assert src._cap is None  # released


def test_realtime_file_is_paced_at_its_frame_rate(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.avi", [np.zeros((64, 64, 3), np.uint8)] * 10, fps=20.0, fourcc="MJPG")
    t0 = time.monotonic()
    with sources.open(video, realtime=True) as src:
        assert len(list(src)) == 10
    assert time.monotonic() - t0 >= 0.45  # 10 frames at 20 fps


def test_not_a_video(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("this is text, not a video\n" * 20)
    with pytest.raises(SourceError) as info, sources.open(bogus):
        pass
    assert "is not a video" in str(info.value) and "notes.mp4" in str(info.value)


def test_missing_video(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such video file"), sources.open(tmp_path / "gone.mp4"):
        pass


def test_camera_index_that_does_not_exist() -> None:
    with pytest.raises(CameraNotFoundError) as info, sources.open(57):
        pass
    assert "/dev/video57" in str(info.value) and info.value.fix


def test_unreachable_stream_fails_fast_with_a_clear_error() -> None:
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="stream cannot be opened"), sources.open("rtsp://127.0.0.1:9/none", read_timeout=1.0):
        pass
    assert time.monotonic() - t0 < 10


def test_gstreamer_without_support_says_how_to_get_it() -> None:
    src = sources.open("videotestsrc ! videoconvert ! appsink")
    if "GStreamer:                   YES" in cv2.getBuildInformation():
        pytest.skip("this OpenCV has GStreamer")
    with pytest.raises(SourceError, match="no GStreamer support"):
        src.open()


# --- picamera2 (FakePicamera2) --------------------------------------------------------------
@pytest.fixture
def picam(monkeypatch: pytest.MonkeyPatch) -> type[fake_picamera2.Picamera2]:
    fake_picamera2.reset()
    monkeypatch.setitem(sys.modules, "picamera2", fake_picamera2)
    yield fake_picamera2.Picamera2
    fake_picamera2.reset()


def test_scaler_size_just_above_the_model_input() -> None:
    assert scaler_size((224, 224), (4608, 2592)) == (416, 224)  # 16:9 sensor
    assert scaler_size((224, 224), (4056, 3040)) == (320, 224)  # 4:3 HQ camera
    assert scaler_size(None, None) == (640, 480)
    w, h = scaler_size((300, 300), (1456, 1088))
    assert w >= 300 and h >= 300 and w % 32 == 0 and h % 2 == 0


@pytest.mark.parametrize("fmt", sorted(MEMORY_ORDER))
def test_picamera_colour_order_for_every_format(picam: type, fmt: str) -> None:
    with PiCameraSource(format=fmt) as src:
        frame = next(iter(src))
    assert frame.rgb.shape[2] == 3
    assert tuple(frame.rgb[10, 10]) == (200, 30, 10), f"{fmt}: frame is not RGB"


def test_memory_to_rgb_rgb888_is_bgr_in_memory() -> None:
    bgr_in_memory = np.array([[[10, 30, 200]]], np.uint8)  # what picamera2 returns for RGB888
    assert tuple(memory_to_rgb(bgr_in_memory, "RGB888")[0, 0]) == (200, 30, 10)


def test_picamera_uses_the_isp_scaler_and_wait(picam: type) -> None:
    src = PiCameraSource(capture_timeout=2.5)
    src.prefer_size(224, 224)
    with src:
        frames = list(itertools.islice(src, 3))
        cam = picam.instances[-1]
        assert cam.camera_config["main"] == {"format": "BGR888", "size": (416, 224)}
        assert cam.camera_config["use_case"] == "video"
    assert frames[0].rgb.shape == (224, 416, 3)
    assert cam.waits == [2.5, 2.5, 2.5]
    assert cam.closed and not cam.started


def test_picamera_classifies_a_real_scene(picam: type, mnv2: Path) -> None:
    from edge_classifier import Classifier

    picam.scene = cv2.cvtColor(cv2.imread(str(CORAL / "parrot.jpg")), cv2.COLOR_BGR2RGB)
    with Classifier(mnv2) as clf:
        results = list(clf.stream("picamera", max_frames=3))
    assert [r.top.label for r in results] == ["macaw"] * 3  # type: ignore[union-attr]


def test_picamera_capture_that_never_returns(picam: type) -> None:
    picam.stall_after = 2
    src = PiCameraSource(capture_timeout=0.2)
    t0 = time.monotonic()
    with pytest.raises(CameraTimeoutError) as info, src:
        list(src)
    assert time.monotonic() - t0 < 5
    cam = picam.instances[-1]
    assert cam.flushed and cam.closed
    assert "reseat the ribbon cable" in info.value.fix


def test_picamera_no_camera(picam: type, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("edge_classifier.sources.picamera.legacy_camera_stack", lambda: None)
    picam.cameras = []
    with pytest.raises(CameraNotFoundError, match="libcamera detects no camera") as info, PiCameraSource():
        pass
    assert "rpicam-hello --list-cameras" in info.value.fix


def test_picamera_legacy_stack(picam: type, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "sys/class/video4linux/video0").mkdir(parents=True)
    (tmp_path / "sys/class/video4linux/video0/name").write_text("bm2835 mmal\n")
    assert legacy_camera_stack(tmp_path) is not None
    monkeypatch.setattr("edge_classifier.sources.picamera.legacy_camera_stack", lambda: legacy_camera_stack(tmp_path))
    picam.cameras = []
    with pytest.raises(CameraNotFoundError, match="legacy camera stack") as info, PiCameraSource():
        pass
    assert "raspi-config" in info.value.fix


def test_legacy_stack_from_config_txt(tmp_path: Path) -> None:
    (tmp_path / "boot/firmware").mkdir(parents=True)
    (tmp_path / "boot/firmware/config.txt").write_text("camera_auto_detect=1\n")
    assert legacy_camera_stack(tmp_path) is None
    (tmp_path / "boot/firmware/config.txt").write_text("# x\nstart_x=1\n")
    assert "start_x=1" in (legacy_camera_stack(tmp_path) or "")


def test_picamera_number_out_of_range(picam: type) -> None:
    with pytest.raises(CameraNotFoundError, match="found 0: imx708"), PiCameraSource(camera_num=1):
        pass


def test_picamera_busy(picam: type) -> None:
    picam.busy = True
    with pytest.raises(CameraBusyError, match="another process holds the camera") as info, PiCameraSource():
        pass
    assert "fuser" in info.value.fix


def test_picamera_bad_size_is_a_clear_error(picam: type) -> None:
    with pytest.raises(SourceError, match="width and height should be even"), PiCameraSource(size=(641, 481)):
        pass
    assert picam.instances[-1].closed


def test_picamera2_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails as it does without the package
    with pytest.raises(SourceError, match="picamera2: is not installed") as info, PiCameraSource():
        pass
    assert "apt install python3-picamera2" in info.value.fix


def test_libcamera_bindings_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A picamera2 package whose libcamera import fails, as in a venv without --system-site-packages.
    pkg = tmp_path / "picamera2"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import libcamera\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    monkeypatch.delitem(sys.modules, "libcamera", raising=False)
    with pytest.raises(SourceError, match="libcamera Python bindings") as info, PiCameraSource():
        pass
    assert "python3-libcamera" in info.value.fix

"""Webcam modes near the model's input: the choice (pure), the V4L2 enumeration, and the source's use of both.

There is no webcam here: :class:`FakeV4l2Camera` answers the kernel's enumeration ioctls from a table, packing the
structs from videodev2.h's own layout (independently of the code under test), and :class:`FakeVideoCapture` stands
for OpenCV's V4L2 capture of that camera (modes set by property, MJPG frames handed over raw with CONVERT_RGB off).
The frames are real: the Coral cat, encoded as the camera would send it, classified by the real model.
"""

from __future__ import annotations

import errno
import struct
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge_classifier import Classifier
from edge_classifier.preprocess import min_source_size
from edge_classifier.sources import opencv
from edge_classifier.sources.opencv import OpenCvSource
from edge_classifier.sources.v4l2 import CameraMode, choose_mode, fourcc_code, fourcc_text, list_modes
from tests.conftest import CORAL

MNV2 = CORAL / "mobilenet_v2_1.0_224_quant.tflite"

# A typical UVC webcam (the shape of a C920's list): raw YUYV is slow at high resolutions, MJPG keeps 30 fps.
UVC = {
    "YUYV": [(160, 120, [30]), (320, 240, [30, 15]), (640, 480, [30, 15]), (1280, 720, [10, 5]), (1920, 1080, [5])],
    "MJPG": [(320, 240, [30]), (640, 480, [30]), (1280, 720, [30, 15]), (1920, 1080, [30])],
    "H264": [(1920, 1080, [30])],
}
# A cheap HD webcam: MJPG from 720p up, raw only at 10 fps.
HD_MJPEG = {"MJPG": [(1280, 720, [30]), (1920, 1080, [30])], "YUYV": [(1280, 720, [10])]}


def modes_of(table: dict[str, list[tuple[int, int, list[int]]]]) -> list[CameraMode]:
    return [CameraMode(w, h, fmt, float(max(rates))) for fmt, sizes in table.items() for w, h, rates in sizes]


# --- the choice ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("table", "need", "expected"),
    [
        (UVC, (256, 256), CameraMode(640, 480, "YUYV", 30)),  # 320x240 is too low; at 640x480 raw beats JPEG
        (UVC, (224, 224), CameraMode(320, 240, "YUYV", 30)),
        (UVC, (100, 100), CameraMode(160, 120, "YUYV", 30)),
        (UVC, (1280, 720), CameraMode(1280, 720, "MJPG", 30)),  # YUYV 720p runs at 10 fps: not real time
        (UVC, (4000, 3000), CameraMode(1920, 1080, "MJPG", 30)),  # nothing covers it: the largest, the faster format
        (HD_MJPEG, (256, 256), CameraMode(1280, 720, "MJPG", 30)),
        ({"YUYV": [(640, 480, [15]), (1280, 720, [7])]}, (256, 256), CameraMode(640, 480, "YUYV", 15)),  # 15 is its best
        ({"YUYV": [(640, 480, [5]), (1280, 960, [15])]}, (256, 256), CameraMode(1280, 960, "YUYV", 15)),  # 5 fps loses
        ({"H264": [(1920, 1080, [30])]}, (256, 256), None),  # nothing OpenCV reads as frames: leave the camera alone
        ({}, (256, 256), None),
    ],
)
def test_choose_mode(table: dict[str, Any], need: tuple[int, int], expected: CameraMode | None) -> None:
    assert choose_mode(modes_of(table), need) == expected


def test_fourcc_round_trip() -> None:
    assert fourcc_text(fourcc_code("MJPG")) == "MJPG" and fourcc_code("MJPG") == cv2.VideoWriter.fourcc(*"MJPG")
    assert str(CameraMode(640, 480, "YUYV", 30.0)) == "640x480 YUYV 30 fps"


# --- the V4L2 enumeration, against a fake driver ---------------------------------------------------------------------
class FakeV4l2Camera:
    """A V4L2 capture node answering VIDIOC_ENUM_FMT / ENUM_FRAMESIZES / ENUM_FRAMEINTERVALS from a table.

    Struct offsets are the kernel's (linux/videodev2.h): v4l2_fmtdesc is 64 bytes with pixelformat at 44;
    v4l2_frmsizeenum 44 bytes, the size union at 12; v4l2_frmivalenum 52 bytes, the interval union at 20.
    ``stepwise`` maps a format to (min_w, max_w, step_w, min_h, max_h, step_h) instead of discrete sizes.
    """

    SIZES = {2: 64, 74: 44, 75: 52}

    def __init__(self, table: dict[str, list[tuple[int, int, list[int]]]], stepwise: dict[str, tuple[int, ...]] | None = None,
                 intervals: bool = True) -> None:  # fmt: skip
        self.formats = list(table) + [f for f in (stepwise or {}) if f not in table]
        self.table = table
        self.stepwise = stepwise or {}
        self.intervals = intervals
        self.calls: list[int] = []

    def open(self, path: str) -> int:
        return 7

    def ioctl(self, fd: int, request: int, buf: bytearray) -> int:
        assert fd == 7 and request >> 30 == 3 and (request >> 8) & 0xFF == ord("V"), hex(request)
        nr, size = request & 0xFF, (request >> 16) & 0x3FFF
        assert self.SIZES[nr] == size == len(buf), (nr, size, len(buf))
        self.calls.append(nr)
        index = struct.unpack_from("<I", buf, 0)[0]
        if nr == 2:
            assert struct.unpack_from("<I", buf, 4)[0] == 1  # V4L2_BUF_TYPE_VIDEO_CAPTURE
            if index >= len(self.formats):
                raise OSError(errno.EINVAL, "end")
            struct.pack_into("<I", buf, 44, fourcc_code(self.formats[index]))
            return 0
        fmt = fourcc_text(struct.unpack_from("<I", buf, 4)[0])
        if nr == 74:
            if fmt in self.stepwise:
                if index > 0:
                    raise OSError(errno.EINVAL, "end")
                struct.pack_into("<I6I", buf, 8, 3, *self.stepwise[fmt])  # V4L2_FRMSIZE_TYPE_STEPWISE
                return 0
            sizes = self.table[fmt]
            if index >= len(sizes):
                raise OSError(errno.EINVAL, "end")
            struct.pack_into("<III", buf, 8, 1, sizes[index][0], sizes[index][1])
            return 0
        if not self.intervals:
            raise OSError(errno.ENOTTY, "not supported")
        w, h = struct.unpack_from("<II", buf, 8)
        rates = next((r for sw, sh, r in self.table.get(fmt, []) if (sw, sh) == (w, h)), [30])
        if index >= len(rates):
            raise OSError(errno.EINVAL, "end")
        struct.pack_into("<III", buf, 16, 1, 1, rates[index])  # discrete, 1/rate seconds
        return 0


def test_list_modes_reads_every_format_size_and_rate() -> None:
    cam = FakeV4l2Camera(UVC)
    modes = list_modes("/dev/video0", ioctl=cam.ioctl, opener=cam.open)
    assert sorted(modes, key=str) == sorted(modes_of(UVC), key=str)
    assert choose_mode(modes, (256, 256)) == CameraMode(640, 480, "YUYV", 30.0)


def test_list_modes_offers_common_sizes_of_a_stepwise_range() -> None:
    # The Pi's bcm2835 V4L2 driver: any size from 32x32 to 2592x1944 in steps of 2.
    cam = FakeV4l2Camera({}, stepwise={"YUYV": (32, 2592, 2, 32, 1944, 2)})
    modes = list_modes("/dev/video0", ioctl=cam.ioctl, opener=cam.open)
    sizes = {(m.width, m.height) for m in modes}
    assert {(320, 240), (640, 480), (1280, 720), (1920, 1080), (2592, 1944)} <= sizes
    assert choose_mode(modes, (256, 256)) == CameraMode(352, 288, "YUYV", 30.0)


def test_list_modes_without_interval_support_or_device() -> None:
    cam = FakeV4l2Camera(HD_MJPEG, intervals=False)
    modes = list_modes("/dev/video0", ioctl=cam.ioctl, opener=cam.open)
    assert {m.fps for m in modes} == {0.0} and len(modes) == 3
    assert choose_mode(modes, (256, 256)) == CameraMode(1280, 720, "YUYV", 0.0)  # rates unknown: raw preferred

    def refuse(path: str) -> int:
        raise PermissionError(errno.EACCES, "denied", path)

    assert list_modes("/dev/video9", ioctl=cam.ioctl, opener=refuse) == []

    def broken(fd: int, request: int, buf: bytearray) -> int:
        raise OSError(errno.EIO, "I/O error")

    assert list_modes("/dev/video0", ioctl=broken, opener=cam.open) == []
    assert list_modes("/dev/no-such-video-node") == []  # the real ioctl path, on a node that does not exist


# --- the source with a fake webcam -----------------------------------------------------------------------------------
class FakeVideoCapture:
    """OpenCV's V4L2 capture of a fake webcam: properties set the mode, CONVERT_RGB=0 hands MJPG frames over raw.

    Attributes (class-level, reset by the fixture): ``table`` of modes, ``default`` mode, ``instances`` made,
    ``ignore_convert`` (a driver that decodes anyway), ``garbage`` (MJPG frames that do not decode).
    """

    table: dict[str, Any] = UVC
    default = (640, 480, "YUYV")
    instances: list[FakeVideoCapture] = []
    ignore_convert = False
    garbage = False
    scene = cv2.imread(str(CORAL / "cat_720p.jpg"))

    def __init__(self, target: Any, *args: Any) -> None:
        self.target = target
        self.width, self.height, self.fourcc = self.default
        self.convert_rgb = True
        self.sets: list[tuple[int, float]] = []
        self.released = False
        FakeVideoCapture.instances.append(self)

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return not self.released

    def set(self, prop: int, value: float) -> bool:
        self.sets.append((prop, value))
        if prop == cv2.CAP_PROP_FOURCC:
            name = fourcc_text(int(value))
            if name in self.table:
                self.fourcc = name
            return name in self.table
        if prop in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT):
            want = (int(value), self.height) if prop == cv2.CAP_PROP_FRAME_WIDTH else (self.width, int(value))
            sizes = [(w, h) for w, h, _ in self.table.get(self.fourcc, [])]
            # The driver snaps to the nearest size it has, as V4L2's S_FMT does.
            self.width, self.height = min(sizes, key=lambda s: abs(s[0] - want[0]) + abs(s[1] - want[1]))
            return True
        if prop == cv2.CAP_PROP_CONVERT_RGB:
            self.convert_rgb = bool(value) or self.ignore_convert
            return True
        return prop == cv2.CAP_PROP_FPS

    def get(self, prop: int) -> float:
        return float({
            cv2.CAP_PROP_FRAME_WIDTH: self.width, cv2.CAP_PROP_FRAME_HEIGHT: self.height,
            cv2.CAP_PROP_FOURCC: fourcc_code(self.fourcc), cv2.CAP_PROP_FPS: 30.0,
        }.get(prop, 0.0))  # fmt: skip

    def read(self) -> tuple[bool, np.ndarray | None]:
        bgr = cv2.resize(self.scene, (self.width, self.height), interpolation=cv2.INTER_AREA)
        if self.fourcc == "MJPG" and not self.convert_rgb:
            if self.garbage:
                return True, np.frombuffer(b"\xff\xd8\xff\xe0 garbage", np.uint8).reshape(1, -1)
            ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])
            return ok, buf.reshape(1, -1)  # OpenCV hands the driver's buffer over as one row of bytes
        return True, bgr

    def release(self) -> None:
        self.released = True


@pytest.fixture()
def webcam(monkeypatch: pytest.MonkeyPatch) -> type[FakeVideoCapture]:
    """Webcam 0 is a FakeVideoCapture of ``FakeVideoCapture.table``; its modes are listed by a FakeV4l2Camera."""
    FakeVideoCapture.instances = []
    FakeVideoCapture.table, FakeVideoCapture.default = UVC, (640, 480, "YUYV")
    FakeVideoCapture.ignore_convert = FakeVideoCapture.garbage = False
    monkeypatch.setattr(opencv, "_video_capture", FakeVideoCapture)

    def listed(device: str) -> list[CameraMode]:
        assert device == "/dev/video0"
        cam = FakeV4l2Camera(FakeVideoCapture.table)
        return list_modes(device, ioctl=cam.ioctl, opener=cam.open)

    monkeypatch.setattr(opencv, "list_modes", listed)
    return FakeVideoCapture


def _first_frame(src: OpenCvSource, need: tuple[int, int] | None = (256, 256)) -> np.ndarray:
    if need is not None:
        src.prefer_size(*need)
    with src:
        frame = next(iter(src))
    return frame.rgb


def test_a_webcam_is_asked_for_the_smallest_mode_covering_the_need(webcam: type[FakeVideoCapture]) -> None:
    src = OpenCvSource(0)
    rgb = _first_frame(src)
    cap = webcam.instances[-1]
    props = [p for p, _ in cap.sets]
    assert props[:3] == [cv2.CAP_PROP_FOURCC, cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT]  # the format first
    assert (cap.fourcc, cap.width, cap.height) == ("YUYV", 640, 480) and cap.convert_rgb  # raw frames: OpenCV converts
    assert rgb.shape == (480, 640, 3)
    assert src.mode == "640x480 YUYV 30 fps (the smallest real-time mode at or above 256x256)"


def test_an_mjpeg_webcam_is_read_raw_and_decoded_reduced(webcam: type[FakeVideoCapture]) -> None:
    webcam.table, webcam.default = HD_MJPEG, (1280, 720, "YUYV")
    src = OpenCvSource("/dev/video0")
    rgb = _first_frame(src)
    cap = webcam.instances[-1]
    assert (cap.fourcc, cap.width, cap.height, cap.convert_rgb) == ("MJPG", 1280, 720, False)
    assert rgb.shape == (360, 640, 3)  # 1/2: 640x360 still covers 256x256; 1/4 (320x180) would not
    assert src.mode.startswith("1280x720 MJPG 30 fps (the smallest real-time mode at or above 256x256), JPEG decoded here")
    assert src.mode.endswith("at 1/2 (640x360)")


def test_mjpeg_webcam_frames_are_classified_like_full_ones(webcam: type[FakeVideoCapture]) -> None:
    webcam.table, webcam.default = HD_MJPEG, (1280, 720, "YUYV")
    with Classifier(MNV2) as clf:
        need = min_source_size(clf.spec)
        reduced = _first_frame(OpenCvSource(0), need)
        full = _first_frame(OpenCvSource(0, full_frames=True), need)
        assert reduced.shape == (360, 640, 3) and full.shape == (720, 1280, 3)
        assert clf.predict(reduced).classes[0].label == clf.predict(full).classes[0].label == "Egyptian cat"


def test_full_frames_keep_the_cameras_own_mode(webcam: type[FakeVideoCapture]) -> None:
    src = OpenCvSource(0, full_frames=True)
    rgb = _first_frame(src)
    assert webcam.instances[-1].sets == [] and rgb.shape == (480, 640, 3)
    assert src.mode == "640x480 YUYV 30 fps (the camera's own mode)"


def test_modes_that_cannot_be_listed_fall_back_to_asking_for_the_size(
    webcam: type[FakeVideoCapture], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(opencv, "list_modes", lambda device: [])
    src = OpenCvSource(0)
    rgb = _first_frame(src, (224, 224))
    assert webcam.instances[-1].sets == [(cv2.CAP_PROP_FRAME_WIDTH, 640), (cv2.CAP_PROP_FRAME_HEIGHT, 480)]
    assert rgb.shape == (480, 640, 3) and "modes not listed" in src.mode


def test_a_driver_that_decodes_anyway_still_gives_frames(webcam: type[FakeVideoCapture]) -> None:
    webcam.table, webcam.default, webcam.ignore_convert = HD_MJPEG, (1280, 720, "YUYV"), True
    assert _first_frame(OpenCvSource(0)).shape == (720, 1280, 3)


def test_jpeg_frames_that_never_decode_hand_decoding_back_to_opencv(webcam: type[FakeVideoCapture]) -> None:
    webcam.table, webcam.default, webcam.garbage = HD_MJPEG, (1280, 720, "YUYV"), True
    src = OpenCvSource(0)
    rgb = _first_frame(src)
    assert rgb.shape == (720, 1280, 3) and src.decode_errors == opencv.RAW_FAILURES_BEFORE_FALLBACK
    assert len(webcam.instances) == 2 and webcam.instances[0].released and webcam.instances[-1].convert_rgb
    assert "JPEG decoded here" not in src.mode


def test_the_loop_reports_a_webcams_mode(webcam: type[FakeVideoCapture], tmp_path: Path) -> None:
    webcam.table, webcam.default = HD_MJPEG, (1280, 720, "YUYV")
    with Classifier(MNV2) as clf:
        src = OpenCvSource(0)
        results = list(clf.stream(src, max_frames=3))
    assert [r.top.label for r in results] == ["Egyptian cat"] * 3  # type: ignore[union-attr]
    assert src.mode.startswith("1280x720 MJPG 30 fps") and "JPEG decoded here at 1/2" in src.mode

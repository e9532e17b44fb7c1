"""A webcam's capture modes (V4L2) and the choice of the one nearest the model's input.

OpenCV can set a mode but cannot list them, so the modes are read here with the kernel's own enumeration ioctls
(``VIDIOC_ENUM_FMT``, ``VIDIOC_ENUM_FRAMESIZES``, ``VIDIOC_ENUM_FRAMEINTERVALS``), as ``v4l2-ctl --list-formats-ext``
does. :func:`choose_mode` is pure: the smallest real-time mode at or above the size the framing needs, because every
pixel a camera delivers beyond that is transferred, converted (or JPEG-decoded) and then thrown away by the resize.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["CameraMode", "choose_mode", "fourcc_code", "fourcc_text", "list_modes"]

# Pixel formats OpenCV's V4L2 backend converts to BGR; a mode in another format (H264, ...) is never chosen.
READABLE_FORMATS: tuple[str, ...] = ("YUYV", "UYVY", "YU12", "YV12", "NV12", "NV21", "RGB3", "BGR3", "GREY", "MJPG", "JPEG")
#: Formats delivered as JPEG, which the source decodes itself (at a reduced scale when that is enough).
JPEG_FORMATS: frozenset[str] = frozenset({"MJPG", "JPEG"})
#: A mode delivering at least this many frames a second (or the most any mode offers, if less) counts as real time.
REALTIME_FPS = 30.0

_BUF_TYPE_VIDEO_CAPTURE = 1
_FRMSIZE_DISCRETE, _FRMSIZE_CONTINUOUS, _FRMSIZE_STEPWISE = 1, 2, 3
_FRMIVAL_DISCRETE = 1
# Common sizes offered inside a stepwise or continuous range (Pi's bcm2835 driver, some USB bridges).
_LADDER = (
    (160, 120),
    (320, 240),
    (352, 288),
    (640, 360),
    (640, 480),
    (800, 600),
    (1024, 768),
    (1280, 720),
    (1280, 960),
    (1920, 1080),
    (2592, 1944),
)

# struct layouts from linux/videodev2.h; each ioctl number is _IOWR('V', nr, struct).
_FMTDESC = struct.Struct("=III32sII12x")  # index, type, flags, description, pixelformat, mbus_code, reserved[3]
_FRMSIZE = struct.Struct("=III6I8x")  # index, pixel_format, type, union (discrete w,h | stepwise 6 fields), reserved[2]
_FRMIVAL = struct.Struct("=IIIII6I8x")  # index, pixel_format, width, height, type, union (fract | stepwise), reserved[2]


def _iowr(nr: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (ord("V") << 8) | nr


VIDIOC_ENUM_FMT = _iowr(2, _FMTDESC.size)
VIDIOC_ENUM_FRAMESIZES = _iowr(74, _FRMSIZE.size)
VIDIOC_ENUM_FRAMEINTERVALS = _iowr(75, _FRMIVAL.size)

Ioctl = Callable[[int, int, bytearray], Any]


def fourcc_code(text: str) -> int:
    """The 32-bit V4L2/OpenCV code of a four-character format name (``MJPG``)."""
    return int.from_bytes(text.encode("ascii")[:4].ljust(4, b" "), "little")


def fourcc_text(code: int) -> str:
    """The four-character name of a V4L2/OpenCV format code."""
    return int(code).to_bytes(4, "little", signed=False).decode("ascii", "replace").rstrip(" \x00")


@dataclass(frozen=True)
class CameraMode:
    """One capture mode a camera offers.

    Attributes:
        width, height: frame size in pixels.
        fourcc: pixel format (``MJPG``, ``YUYV``, ...).
        fps: the highest frame rate of the mode (0 when the camera does not say).
    """

    width: int
    height: int
    fourcc: str
    fps: float = 0.0

    @property
    def is_jpeg(self) -> bool:
        """Frames arrive JPEG-compressed (and can be decoded at a reduced scale)."""
        return self.fourcc in JPEG_FORMATS

    def __str__(self) -> str:
        rate = f" {self.fps:g} fps" if self.fps else ""
        return f"{self.width}x{self.height} {self.fourcc}{rate}"


def choose_mode(modes: Iterable[CameraMode], min_size: tuple[int, int]) -> CameraMode | None:
    """The mode to ask for: the smallest real-time mode at or above ``min_size`` (width, height).

    Only modes in :data:`READABLE_FORMATS` count. Among those covering ``min_size`` on both axes, the real-time ones
    (at least :data:`REALTIME_FPS`, or the best rate on offer if none reaches it) are kept, so a large fast mode is
    not traded for a small one that runs at 5 fps; then the smallest area wins, then the higher frame rate, then an
    uncompressed format (no JPEG to decode). When no mode covers ``min_size``, the largest mode is chosen. None when
    the list holds no readable mode (the caller leaves the camera as it is).
    """
    readable = [m for m in modes if m.fourcc in READABLE_FORMATS and m.width > 0 and m.height > 0]
    if not readable:
        return None
    need_w, need_h = min_size
    covering = [m for m in readable if m.width >= need_w and m.height >= need_h]
    if not covering:
        return max(readable, key=lambda m: (m.width * m.height, m.fps, not m.is_jpeg))
    floor = min(REALTIME_FPS, max(m.fps for m in covering))
    fast = [m for m in covering if m.fps >= floor - 0.5]
    return min(fast, key=lambda m: (m.width * m.height, -m.fps, m.is_jpeg, READABLE_FORMATS.index(m.fourcc)))


def list_modes(device: str, ioctl: Ioctl | None = None, opener: Callable[[str], int] | None = None) -> list[CameraMode]:
    """Every (format, size) mode of a V4L2 capture device, with its highest frame rate.

    Args:
        device: the device node (``/dev/video0``).
        ioctl: the ioctl call (``fcntl.ioctl`` by default; tests pass a fake camera's).
        opener: opens the node and returns a file descriptor (``os.open`` read-write, non-blocking, by default).

    Returns:
        The modes, or an empty list when the node cannot be opened or enumerated (not V4L2, no permission): the
        caller then leaves the camera in its own mode.
    """
    if ioctl is None:
        import fcntl

        def ioctl(fd: int, request: int, buf: bytearray) -> Any:
            return fcntl.ioctl(fd, request, buf, True)

    try:
        fd = opener(device) if opener is not None else os.open(device, os.O_RDWR | os.O_NONBLOCK)
    except OSError:
        return []
    try:
        return _enumerate(fd, ioctl)
    except OSError:
        return []
    finally:
        if opener is None:
            os.close(fd)


def _enumerate(fd: int, ioctl: Ioctl) -> list[CameraMode]:
    modes: list[CameraMode] = []
    for pixelformat in _formats(fd, ioctl):
        name = fourcc_text(pixelformat)
        for width, height in _sizes(fd, ioctl, pixelformat):
            modes.append(CameraMode(width, height, name, _best_fps(fd, ioctl, pixelformat, width, height)))
    return modes


def _enum(
    fd: int, ioctl: Ioctl, request: int, layout: struct.Struct, fields: Callable[[int], Sequence[Any]]
) -> Iterable[tuple[Any, ...]]:
    """Run an enumeration ioctl for index 0, 1, ... until the driver answers EINVAL (the end of its list)."""
    for index in range(256):  # no real device lists more; a bound against a driver that never says EINVAL
        buf = bytearray(layout.pack(*fields(index)))
        try:
            ioctl(fd, request, buf)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                return
            raise
        yield layout.unpack(bytes(buf))


def _formats(fd: int, ioctl: Ioctl) -> list[int]:
    rows = _enum(fd, ioctl, VIDIOC_ENUM_FMT, _FMTDESC, lambda i: (i, _BUF_TYPE_VIDEO_CAPTURE, 0, b"", 0, 0))
    return [row[4] for row in rows]


def _sizes(fd: int, ioctl: Ioctl, pixelformat: int) -> list[tuple[int, int]]:
    sizes: list[tuple[int, int]] = []
    for row in _enum(fd, ioctl, VIDIOC_ENUM_FRAMESIZES, _FRMSIZE, lambda i: (i, pixelformat, 0, 0, 0, 0, 0, 0, 0)):
        kind, u = row[2], row[3:9]
        if kind == _FRMSIZE_DISCRETE:
            sizes.append((u[0], u[1]))
            continue
        # Stepwise or continuous: one entry describes a range; offer the common sizes on its grid, and its largest.
        min_w, max_w, step_w, min_h, max_h, step_h = u
        step_w, step_h = max(1, step_w if kind == _FRMSIZE_STEPWISE else 1), max(1, step_h if kind == _FRMSIZE_STEPWISE else 1)
        for w, h in _LADDER:
            if min_w <= w <= max_w and min_h <= h <= max_h and (w - min_w) % step_w == 0 and (h - min_h) % step_h == 0:
                sizes.append((w, h))
        sizes.append((max_w, max_h))
        break  # a range is described by the first entry alone
    return sorted(set(sizes))


def _best_fps(fd: int, ioctl: Ioctl, pixelformat: int, width: int, height: int) -> float:
    best = 0.0
    try:
        rows = list(
            _enum(fd, ioctl, VIDIOC_ENUM_FRAMEINTERVALS, _FRMIVAL, lambda i: (i, pixelformat, width, height, 0, 0, 0, 0, 0, 0, 0))
        )
    except OSError:
        return best  # some drivers do not list intervals: the rate is unknown, not an error
    for row in rows:
        kind, u = row[4], row[5:11]
        # Discrete: u = (numerator, denominator) of the interval; stepwise: the minimum interval comes first.
        num, den = u[0], u[1]
        if num > 0 and den > 0:
            best = max(best, den / num)
        if kind != _FRMIVAL_DISCRETE:
            break
    return best

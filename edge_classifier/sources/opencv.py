"""Frames through OpenCV: webcams (index or /dev/videoN), video files, rtsp/http streams, GStreamer pipelines."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from ..errors import CameraBusyError, CameraNotFoundError, CameraTimeoutError, SourceError
from .base import Source

log = logging.getLogger(__name__)

STREAM_SCHEMES: tuple[str, ...] = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")

#: Consecutive undecodable frames after which a video file is treated as ended.
MAX_BAD_FRAMES = 50


def spec_kind(spec: str | int) -> str:
    """What an OpenCV source spec names: ``device``, ``stream``, ``gstreamer`` or ``file``."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return "device"
    text = str(spec)
    if text.startswith("/dev/video"):
        return "device"
    if text.lower().startswith(STREAM_SCHEMES):
        return "stream"
    if "!" in text and "appsink" in text:
        return "gstreamer"
    return "file"


def backoff_delays(first: float = 0.5, cap: float = 8.0) -> list[float]:
    """Reconnect waits: doubling from ``first`` up to ``cap`` (0.5, 1, 2, 4, 8)."""
    delays, d = [], first
    while d < cap:
        delays.append(d)
        d *= 2
    delays.append(cap)
    return delays


def _has_gstreamer() -> bool:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


class OpenCvSource(Source):
    """Frames from anything ``cv2.VideoCapture`` opens, converted from BGR to RGB once.

    Args:
        spec: a device index (``0`` or ``"0"``), a device path (``/dev/video0``), a video file,
            an ``rtsp://``/``http://`` URL, or a GStreamer pipeline ending in ``appsink``.
        read_timeout: seconds a live stream may go without a frame before it counts as dropped.
        reconnect_timeout: seconds a dropped live source keeps trying to reopen (back-off 0.5 s
            doubling to 8 s) before :class:`CameraTimeoutError`. 0 disables reconnecting.
        realtime: play a video file at its own frame rate and treat it as live (frames are dropped
            when the consumer is slow), as a camera would behave. Useful to rehearse a deployment.

    Raises (from ``open``):
        CameraNotFoundError: no camera at that index or path.
        CameraBusyError: the camera exists but cannot be opened or delivers nothing.
        SourceError: a missing file, a file that is not a video, an unreachable stream, or a
            GStreamer pipeline without GStreamer support in OpenCV.
    """

    def __init__(
        self,
        spec: str | int,
        *,
        read_timeout: float = 5.0,
        reconnect_timeout: float = 30.0,
        realtime: bool = False,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.kind = spec_kind(spec)
        self.read_timeout = read_timeout
        self.reconnect_timeout = reconnect_timeout
        self.realtime = realtime and self.kind == "file"
        self.live = self.kind != "file" or self.realtime
        self.name = Path(str(spec)).name if self.kind == "file" else str(spec)
        self.fps: float | None = None
        self._cap: cv2.VideoCapture | None = None
        self._frame_count = 0
        self._want_size: tuple[int, int] | None = None
        self._t0 = 0.0
        self._played = 0

    # --- opening ------------------------------------------------------------------------
    def prefer_size(self, width: int, height: int) -> None:
        """Webcams are asked for a small mode (640x480 at most) when the model is small."""
        if self.kind == "device":
            self._want_size = (max(width, 640), max(height, 480)) if max(width, height) <= 640 else (width, height)

    def _device_path(self) -> str:
        return f"/dev/video{int(self.spec)}" if str(self.spec).strip().isdigit() else str(self.spec)

    def _make_capture(self) -> cv2.VideoCapture:
        ms = int(self.read_timeout * 1000)
        if self.kind == "device":
            target: str | int = int(self.spec) if str(self.spec).strip().isdigit() else str(self.spec)
            cap = cv2.VideoCapture(target)
            if self._want_size and cap.isOpened():
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self._want_size[0])
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self._want_size[1])
            return cap
        if self.kind == "stream":
            # Without these FFmpeg waits forever on a silent server: a stall must end a read.
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
            return cv2.VideoCapture(str(self.spec), cv2.CAP_FFMPEG, params)
        if self.kind == "gstreamer":
            return cv2.VideoCapture(str(self.spec), cv2.CAP_GSTREAMER)
        return cv2.VideoCapture(str(self.spec))

    def open(self) -> None:
        """Open the capture; see the class docstring for the errors."""
        self._interrupted.clear()
        if self.kind == "file":
            path = Path(str(self.spec))
            if not path.exists():
                raise SourceError(str(path), "no such video file", "check the path, or pass a camera index (0), a URL or a folder")
            if path.is_dir():
                raise SourceError(str(path), "is a folder", "pass the folder to sources.open(), which reads the images in it")
        if self.kind == "gstreamer" and not _has_gstreamer():
            raise SourceError(
                "GStreamer pipeline",
                "this OpenCV build has no GStreamer support (opencv-python wheels are built without it)",
                "install the distribution's OpenCV (sudo apt install python3-opencv) in a venv with --system-site-packages, "
                "or pass the camera index or URL instead",
            )
        cap = self._make_capture()
        if not cap.isOpened():
            cap.release()
            raise self._open_error()
        self._cap = cap
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.5 < fps < 1000 else None
        self._frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._t0, self._played = time.monotonic(), 0
        log.info("opened %s (%s, %s fps)", self.name, self.kind, self.fps or "unknown")

    def _open_error(self) -> SourceError:
        if self.kind == "device":
            dev = self._device_path()
            if sys.platform.startswith("linux") and not os.path.exists(dev):
                present = sorted(str(p) for p in Path("/dev").glob("video*"))
                return CameraNotFoundError(
                    f"camera {self.spec}",
                    f"{dev} does not exist" + (f" (present: {', '.join(present)})" if present else " (no /dev/video* at all)"),
                    "plug the camera in, pick another index, or use --source picamera for a Raspberry Pi camera module",
                )
            if sys.platform.startswith("linux") and not os.access(dev, os.R_OK | os.W_OK):
                return SourceError(
                    f"camera {self.spec}",
                    f"permission denied on {dev}",
                    "add yourself to the video group (sudo usermod -aG video $USER) and log in again",
                )
            return CameraBusyError(
                f"camera {self.spec}",
                f"{dev} exists but cannot be opened; another program is probably using it",
                f"close the other program (find it with: fuser {dev}) and try again",
            )
        if self.kind == "stream":
            return SourceError(
                str(self.spec),
                f"the stream cannot be opened within {self.read_timeout:g} s (unreachable, wrong path, or wrong credentials)",
                "check the URL with ffprobe or VLC from this machine",
            )
        if self.kind == "gstreamer":
            return SourceError("GStreamer pipeline", "OpenCV could not start it", "test it with gst-launch-1.0 and end it in appsink")
        return SourceError(
            str(self.spec),
            "is not a video OpenCV can decode",
            "pass a video file (mp4, mkv, avi, ...), a folder of images, or an image glob",
        )

    # --- reading ------------------------------------------------------------------------
    def read(self) -> np.ndarray | None:
        """The next RGB frame; None at the end of a file or after :meth:`interrupt`."""
        bad = 0
        while not self._interrupted.is_set():
            if self._cap is None:
                raise SourceError(self.name, "the source is not open", "use it in a with-statement or call open() first")
            ok, bgr = self._cap.read()
            if ok and bgr is not None and bgr.size:
                if self.realtime:
                    self._pace()
                # The one colour conversion of the pipeline: OpenCV decodes to BGR, models want RGB.
                return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if bgr.ndim == 3 else cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
            if self.kind == "file":
                if self._at_end():
                    return None
                bad += 1
                self.decode_errors += 1
                if self.decode_errors <= 5 or self.decode_errors % 100 == 0:
                    log.warning("%s: a frame could not be decoded and was skipped (%d so far)", self.name, self.decode_errors)
                if bad >= MAX_BAD_FRAMES:
                    log.warning("%s: %d undecodable frames in a row: treating the file as ended", self.name, bad)
                    return None
                continue
            self._reconnect()
        return None

    def _at_end(self) -> bool:
        if self._cap is None or self._frame_count <= 0:
            return True
        return self._cap.get(cv2.CAP_PROP_POS_FRAMES) >= self._frame_count - 1

    def _pace(self) -> None:
        self._played += 1
        due = self._t0 + self._played / (self.fps or 30.0)
        delay = due - time.monotonic()
        if delay > 0:
            self._interrupted.wait(delay)

    def _reconnect(self) -> None:
        """Reopen a dropped live source with back-off, or raise CameraTimeoutError when it does not return."""
        log.warning("%s: no frame (stream dropped or stalled); reconnecting", self.name)
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        deadline = time.monotonic() + self.reconnect_timeout
        attempts = 0
        for delay in _forever(backoff_delays()):
            if time.monotonic() + delay > deadline or self.reconnect_timeout <= 0:
                break
            if self._interrupted.wait(delay):
                return
            attempts += 1
            cap = self._make_capture()
            if cap.isOpened():
                ok, _ = cap.read()
                if ok:
                    self._cap = cap
                    self.reconnects += 1
                    log.warning("%s: reconnected after %d attempt(s)", self.name, attempts)
                    return
            cap.release()
            log.warning("%s: reconnect attempt %d failed", self.name, attempts)
        raise CameraTimeoutError(
            self.name,
            f"stopped delivering frames and did not come back within {self.reconnect_timeout:g} s ({attempts} reconnect attempts)",
            "check the cable, power or network; raise reconnect_timeout for flaky streams",
        )

    def close(self) -> None:
        """Release the capture device or file."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def _forever(delays: list[float]) -> list[float]:
    # The last (capped) delay repeats; the deadline ends the loop. 1000 entries is far past any deadline.
    return delays + [delays[-1]] * 1000

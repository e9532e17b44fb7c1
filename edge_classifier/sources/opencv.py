"""Frames through OpenCV: webcams (index or /dev/videoN), video files, rtsp/http streams, GStreamer pipelines."""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np

from ..decode import decode_jpeg, jpeg_size, reduced_scale
from ..errors import CameraBusyError, CameraNotFoundError, CameraTimeoutError, ImageError, SourceError
from ..redact import redact_url
from .base import Source
from .v4l2 import CameraMode, choose_mode, fourcc_code, fourcc_text, list_modes

log = logging.getLogger(__name__)

STREAM_SCHEMES: tuple[str, ...] = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")

#: Consecutive undecodable frames after which a video file is treated as ended.
MAX_BAD_FRAMES = 50

#: Consecutive failed reads (or ``read_timeout`` seconds of them) after which a live stream counts as
#: dropped. OpenCV's ``read()`` answers False both for a frame FFmpeg cannot decode (the stream goes
#: on) and for a closed or timed-out connection (every later read fails at once), so a lone failure
#: is a skipped frame, not a drop.
LIVE_FAILURES_BEFORE_RECONNECT = 5

_DEFAULT_PORTS = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322, "rtmp": 1935}

#: Codec tags of JPEG-per-frame video (MJPEG webcams, HTTP cameras, MJPEG files), whose frames are decoded here.
MJPEG_CODECS = frozenset({"MJPG", "JPEG"})

#: Undecodable JPEG frames in a row, before any decoded, after which the source lets OpenCV decode the frames again.
RAW_FAILURES_BEFORE_FALLBACK = 5

# The capture class, one name to replace in tests (a Fake webcam: there is no camera on a CI machine).
_video_capture = cv2.VideoCapture


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


def probe_stream_server(url: str, timeout: float) -> str:
    """Why a stream URL gives no video, as far as a plain TCP connection can tell (one short sentence).

    OpenCV reports only "not opened" or "no frame"; a connection attempt tells apart a server that
    is down, a host that does not resolve or answer, and a server that answers but sends no video.
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return "the URL cannot be parsed"
    if not host or not port:
        return "no frames arrive"
    where = f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except ConnectionRefusedError:
        return f"nothing is listening on {where} (connection refused)"
    except socket.gaierror:
        return f"the host name {host} does not resolve"
    except TimeoutError:
        return f"{where} does not answer within {timeout:g} s"
    except OSError as exc:
        return f"{where} cannot be reached ({exc.strerror or exc})"
    return f"the server at {where} accepts connections but sends no video (wrong path or credentials, or it is stalled)"


def _quietly(make: Any) -> Any:
    """Run ``make`` with OpenCV's own warnings off: a failed open is explained by our error, with its fix,
    and OpenCV's "[ WARN:0@0.5] can't open camera by index" lines would only repeat it less clearly."""
    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_api is None:
        return make()
    previous = logging_api.getLogLevel()
    logging_api.setLogLevel(logging_api.LOG_LEVEL_ERROR)
    try:
        return make()
    finally:
        logging_api.setLogLevel(previous)


def _has_gstreamer() -> bool:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


class OpenCvSource(Source):
    """Frames from anything ``cv2.VideoCapture`` opens, converted from BGR to RGB once.

    A frame that fails to decode is skipped, counted in ``decode_errors`` and logged; a stream that
    closes or stalls is reopened with back-off (counted in ``reconnects`` and logged); a video file
    ends at its end.

    Pixels at the model's speed: once :meth:`prefer_size` names the size the consumer needs, a webcam is
    asked for its smallest real-time mode at or above it, and JPEG frames (MJPEG webcams, HTTP cameras,
    MJPEG video files) are read as they arrive, without OpenCV's own conversion, and decoded here at the
    largest reduced scale (1/2, 1/4, 1/8) that still covers that size. ``full_frames`` keeps the camera's
    own mode and every pixel, for consumers that need the whole picture (regions, recording, a web view).
    :attr:`mode` says what was chosen.

    Args:
        spec: a device index (``0`` or ``"0"``), a device path (``/dev/video0``), a video file,
            an ``rtsp://``/``http://`` URL, or a GStreamer pipeline ending in ``appsink``.
        read_timeout: seconds a stream may take to open, or go without a frame, before it counts as
            dropped (FFmpeg's open and read timeouts; the CLI's ``--timeout``).
        reconnect_timeout: seconds a dropped live source keeps trying to reopen (back-off 0.5 s
            doubling to 8 s) before :class:`CameraTimeoutError`; 0 disables reconnecting. A stream
            that stalls for good therefore raises after about ``read_timeout + reconnect_timeout``
            seconds (25 s by default), before the loop's own ``stall_timeout`` (30 s) cuts in.
        realtime: play a video file at its own frame rate and treat it as live (frames are dropped
            when the consumer is slow), as a camera would behave. Useful to rehearse a deployment.
        full_frames: ignore :meth:`prefer_size`: no smaller camera mode, no reduced JPEG decoding.

    Attributes:
        mode: the capture mode in words once open, e.g. ``1280x720 MJPG 30 fps, JPEG decoded at 1/2 (640x360)``.

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
        reconnect_timeout: float = 20.0,
        realtime: bool = False,
        full_frames: bool = False,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.kind = spec_kind(spec)
        self.read_timeout = read_timeout
        self.reconnect_timeout = reconnect_timeout
        self.realtime = realtime and self.kind == "file"
        self.live = self.kind != "file" or self.realtime
        # A stream URL may carry a password: it never reaches a log line or an error message.
        self.name = Path(str(spec)).name if self.kind == "file" else redact_url(str(spec))
        self.fps: float | None = None
        self._cap: cv2.VideoCapture | None = None
        self._frame_count = 0
        self.full_frames = full_frames
        self.mode = ""
        self._want_size: tuple[int, int] | None = None
        self._need: tuple[int, int] | None = None  # the smallest frame the consumer needs (prefer_size)
        self._camera_mode: CameraMode | None = None
        self._raw_jpeg = False  # frames arrive as JPEG bytes and are decoded here
        self._raw_allowed = True
        self._raw_failures = 0
        self._raw_decoded = 0
        self._t0 = 0.0
        self._played = 0
        self._pending: np.ndarray | None = None  # the frame a reconnect attempt read to prove the stream is back

    # --- opening ------------------------------------------------------------------------
    def prefer_size(self, width: int, height: int) -> None:
        """The consumer needs frames of at least ``width`` x ``height``: the model's input, or what its framing needs.

        Unless ``full_frames``: a webcam is asked for its smallest real-time mode at or above that size (where its
        modes cannot be listed, 640x480 for a small model, as before), and JPEG frames are decoded reduced to it.
        """
        if self.full_frames:
            return
        self._need = (max(1, int(width)), max(1, int(height)))
        if self.kind == "device":
            self._want_size = (max(width, 640), max(height, 480)) if max(width, height) <= 640 else (width, height)

    def _device_path(self) -> str:
        return f"/dev/video{int(self.spec)}" if str(self.spec).strip().isdigit() else str(self.spec)

    def _make_capture(self, timeout: float | None = None) -> cv2.VideoCapture:
        ms = max(1, int((self.read_timeout if timeout is None else timeout) * 1000))
        if self.kind == "device":
            target: str | int = int(self.spec) if str(self.spec).strip().isdigit() else str(self.spec)
            cap = _video_capture(target)
            if cap.isOpened():
                self._configure_device(cap)
            return cap
        if self.kind == "stream":
            # Without these FFmpeg waits forever on a silent server: a stall must end a read.
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
            cap = _video_capture(str(self.spec), cv2.CAP_FFMPEG, params)
        elif self.kind == "gstreamer":
            return _video_capture(str(self.spec), cv2.CAP_GSTREAMER)
        else:
            cap = _video_capture(str(self.spec))
        if cap.isOpened():
            self._read_jpeg_raw(cap)
        return cap

    def _configure_device(self, cap: Any) -> None:
        """Set the chosen mode on an opened webcam; JPEG frames are then taken as they arrive, undecoded."""
        mode = self._camera_mode
        if mode is None:
            if self._want_size:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self._want_size[0])
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self._want_size[1])
            return
        # The format first: V4L2 drivers list sizes per format, and OpenCV applies each setting as it comes.
        cap.set(cv2.CAP_PROP_FOURCC, fourcc_code(mode.fourcc))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, mode.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, mode.height)
        if mode.fps:
            cap.set(cv2.CAP_PROP_FPS, mode.fps)
        got = fourcc_text(int(cap.get(cv2.CAP_PROP_FOURCC) or 0))
        # CONVERT_RGB off makes OpenCV's V4L2 backend hand over the driver's buffer: for MJPG, the JPEG itself.
        self._raw_jpeg = (
            self._raw_allowed and self._need is not None and got in MJPEG_CODECS and bool(cap.set(cv2.CAP_PROP_CONVERT_RGB, 0))
        )

    def _read_jpeg_raw(self, cap: Any) -> None:
        """For MJPEG files and streams, ask FFmpeg for the undecoded packets (each one a JPEG) when frames can be smaller."""
        codec = fourcc_text(int(cap.get(cv2.CAP_PROP_FOURCC) or 0)).upper()
        wanted = self._raw_allowed and self._need is not None and codec in MJPEG_CODECS
        # CAP_PROP_FORMAT = -1: FFmpeg's raw mode, the packets as the demuxer reads them.
        self._raw_jpeg = wanted and bool(cap.set(cv2.CAP_PROP_FORMAT, -1))

    def open(self) -> None:
        """Open the capture; see the class docstring for the errors."""
        self._interrupted.clear()
        self._pending = None
        if self.kind == "file":
            path = Path(str(self.spec))
            if not path.exists():
                raise SourceError(
                    str(path), "no such video file", "check the path, or pass a camera index (0), a URL or a folder"
                )
            if path.is_dir():
                raise SourceError(str(path), "is a folder", "pass the folder to sources.open(), which reads the images in it")
        if self.kind == "gstreamer" and not _has_gstreamer():
            raise SourceError(
                "GStreamer pipeline",
                "this OpenCV build has no GStreamer support (opencv-python wheels are built without it)",
                "install the distribution's OpenCV (sudo apt install python3-opencv) in a venv with --system-site-packages, "
                "or pass the camera index or URL instead",
            )
        if self.kind == "device" and self._need is not None and self._camera_mode is None:
            modes = list_modes(self._device_path())
            self._camera_mode = choose_mode(modes, self._need)
            log.info(
                "camera %s offers %d modes; chose %s for frames of at least %dx%d",
                self.spec,
                len(modes),
                self._camera_mode,
                *self._need,
            )
        self._raw_failures = self._raw_decoded = 0
        cap = _quietly(self._make_capture)
        if not cap.isOpened():
            cap.release()
            raise self._open_error()
        self._cap = cap
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.5 < fps < 1000 else None
        self._frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._t0, self._played = time.monotonic(), 0
        self.mode = self._describe_mode(cap)
        log.info("opened %s (%s, %s)", self.name, self.kind, self.mode)

    def _describe_mode(self, cap: Any) -> str:
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        codec = fourcc_text(int(cap.get(cv2.CAP_PROP_FOURCC) or 0)) or "?"
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        text = f"{w}x{h} {codec}" + (f" {fps:g} fps" if 0.5 < fps < 1000 else "")
        if self.kind == "device":
            if self._camera_mode is not None and self._need is not None:
                text += f" (the smallest real-time mode at or above {self._need[0]}x{self._need[1]})"
            else:
                text += (
                    " (the camera's own mode)" if self._want_size is None else " (asked for the model's size; modes not listed)"
                )
        if self._raw_jpeg:
            text += ", JPEG decoded here"
        return text

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
            why = probe_stream_server(str(self.spec), min(self.read_timeout, 2.0))
            return SourceError(
                self.name,
                f"the stream cannot be opened within {self.read_timeout:g} s: {why}",
                "check that the camera or server is up and the URL is right (try it with ffprobe or VLC from this machine); "
                "raise --timeout for a slow network",
            )
        if self.kind == "gstreamer":
            return SourceError(
                "GStreamer pipeline", "OpenCV could not start it", "test it with gst-launch-1.0 and end it in appsink"
            )
        return SourceError(
            str(self.spec),
            "is not a video OpenCV can decode",
            "pass a video file (mp4, mkv, avi, ...), a folder of images, or an image glob",
        )

    # --- reading ------------------------------------------------------------------------
    def read(self) -> np.ndarray | None:
        """The next RGB frame; None at the end of a file or after :meth:`interrupt`."""
        bad = 0
        failing_since = 0.0
        while not self._interrupted.is_set():
            if self._cap is None:
                raise SourceError(self.name, "the source is not open", "use it in a with-statement or call open() first")
            t_read = time.monotonic()
            if self._pending is not None:
                ok, bgr, self._pending = True, self._pending, None
            else:
                ok, bgr = self._cap.read()
            if ok and bgr is not None and bgr.size:
                if bad and self.kind != "file":
                    self._skipped(bad)  # failures followed by a frame: undecodable frames, the stream went on
                    bad = 0
                rgb = self._to_rgb(bgr)
                if rgb is None:  # a JPEG frame that does not decode: skipped, counted; the stream goes on
                    self._skipped(1)
                    if self.kind == "file":
                        bad += 1
                        if bad >= MAX_BAD_FRAMES:
                            log.warning("%s: %d undecodable frames in a row: treating the file as ended", self.name, bad)
                            return None
                    continue
                if self.realtime:
                    self._pace()
                return rgb
            if self.kind == "file":
                if self._at_end():
                    return None
                bad += 1
                self._skipped(1)
                if bad >= MAX_BAD_FRAMES:
                    log.warning("%s: %d undecodable frames in a row: treating the file as ended", self.name, bad)
                    return None
                continue
            bad += 1
            failing_since = t_read if bad == 1 else failing_since
            # A closed or timed-out connection fails every later read at once, so the retries cost
            # nothing; the clock covers a device whose every read blocks for long before failing.
            if bad < LIVE_FAILURES_BEFORE_RECONNECT and time.monotonic() - failing_since < self.read_timeout:
                continue
            self._reconnect()
            bad = 0
        return None

    def _to_rgb(self, data: np.ndarray) -> np.ndarray | None:
        """A read frame as RGB: JPEG bytes decoded (reduced) here, or OpenCV's BGR converted; None if undecodable."""
        if not (self._raw_jpeg and (data.ndim == 1 or (data.ndim == 2 and 1 in data.shape))):
            # The one colour conversion of the pipeline: OpenCV decodes to BGR, models want RGB.
            return cv2.cvtColor(data, cv2.COLOR_BGR2RGB) if data.ndim == 3 else cv2.cvtColor(data, cv2.COLOR_GRAY2RGB)
        try:
            rgb = decode_jpeg(data, self._need, name=f"{self.name} frame")
        except ImageError:
            self._raw_failures += 1
            if not self._raw_decoded and self._raw_failures >= RAW_FAILURES_BEFORE_FALLBACK:
                self._stop_raw_decoding()
            return None
        if not self._raw_decoded:
            size = jpeg_size(data)
            if size is not None and self._need is not None:
                d = reduced_scale(size[0], size[1], self._need)
                self.mode += f" at 1/{d} ({rgb.shape[1]}x{rgb.shape[0]})"
                log.info("%s: %s", self.name, self.mode)
        self._raw_decoded += 1
        return rgb

    def _stop_raw_decoding(self) -> None:
        """JPEG frames this decoder cannot read (none so far has decoded): reopen the capture and let OpenCV decode."""
        log.warning("%s: its JPEG frames do not decode here; letting OpenCV decode them (full size)", self.name)
        self._raw_allowed = self._raw_jpeg = False
        if self._cap is None:
            return
        position = self._cap.get(cv2.CAP_PROP_POS_FRAMES) if self.kind == "file" else 0
        self._cap.release()
        self._cap = _quietly(self._make_capture)
        if self.kind == "file" and position:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, position)
        self.mode = self._describe_mode(self._cap)

    def _skipped(self, frames: int) -> None:
        before = self.decode_errors
        self.decode_errors += frames
        # Rate-limited: the first few, then one line per hundred, so a bad stream cannot flood the log.
        if before < 5 or before // 100 != self.decode_errors // 100:
            log.warning(
                "%s: %d frame(s) could not be decoded and were skipped (%d so far)", self.name, frames, self.decode_errors
            )

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
        """Reopen a dropped live source with back-off, or raise CameraTimeoutError when it does not return.

        The whole attempt, waits and opens included, stays within ``reconnect_timeout``.
        """
        log.warning(
            "%s: no frame (the stream closed, or stalled past %g s); reconnecting for up to %g s",
            self.name,
            self.read_timeout,
            self.reconnect_timeout,
        )
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        deadline = time.monotonic() + self.reconnect_timeout
        attempts = 0
        for delay in _forever(backoff_delays()):
            left = deadline - time.monotonic() - delay
            if self.reconnect_timeout <= 0 or left <= 0.05:
                break
            if self._interrupted.wait(delay):
                return
            attempts += 1
            cap = self._make_capture(timeout=min(self.read_timeout, left))
            if cap.isOpened():
                ok, bgr = cap.read()
                if ok and bgr is not None and bgr.size:
                    self._cap, self._pending = cap, bgr
                    self.reconnects += 1
                    log.warning(
                        "%s: reconnected after %d attempt(s) (%d reconnects so far)", self.name, attempts, self.reconnects
                    )
                    return
            cap.release()
            log.warning("%s: reconnect attempt %d failed", self.name, attempts)
        if self._interrupted.is_set():
            return
        why = probe_stream_server(str(self.spec), 2.0) if self.kind == "stream" else "the device delivers nothing"
        raise CameraTimeoutError(
            self.name,
            f"stopped delivering frames and did not come back within {self.reconnect_timeout:g} s "
            f"({attempts} reconnect attempts; {why})",
            "check the camera's power, cable or network and the URL; "
            "raise --reconnect-timeout (reconnect_timeout= in Python) for streams that come back slowly",
        )

    def close(self) -> None:
        """Release the capture device or file."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def _forever(delays: list[float]) -> list[float]:
    # The last (capped) delay repeats; the deadline ends the loop. 1000 entries is far past any deadline.
    return delays + [delays[-1]] * 1000

"""Frame sources: one interface for the Pi camera, webcams, streams, video files and still images.

``sources.open(spec)`` picks the right one::

    sources.open("picamera")        # Raspberry Pi camera through picamera2 ("picamera1" for the second); the AI
                                    # Camera with its IMX500 network while a SensorClassifier has one loaded
    sources.open(0)                 # webcam 0 through OpenCV; also "0" or "/dev/video0"
    sources.open("clip.mp4")        # a video file (realtime=True plays it at its own speed, like a camera)
    sources.open("rtsp://cam/live") # a network stream (rtsp, http, ...), reconnecting when it drops
    sources.open("shots/")          # every image in a folder, sorted; also one image or a glob "shots/*.jpg"
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

from ..backends.imx500 import active_sensor
from ..errors import SourceError
from ..preprocess import IMAGE_EXTENSIONS
from ..redact import redact_url
from .base import Source, file_fps
from .images import ImageSource, is_glob
from .imx500 import IMX500Source, SensorFrame
from .opencv import STREAM_SCHEMES, OpenCvSource, spec_kind
from .picamera import PiCameraSource

__all__ = [
    "IMX500Source", "ImageSource", "OpenCvSource", "PiCameraSource", "SensorFrame", "Source", "file_fps", "open",
    "sample_clip_path",
]  # fmt: skip

_PICAMERA = re.compile(r"^(picamera|picam|libcamera)(\d*)$", re.IGNORECASE)
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def sample_clip_path() -> Path:
    """The short sample clip shipped in the package (made by scripts/make_sample_clip.py from CC0 photos).

    Raises:
        SourceError: the clip is missing from this installation.
    """
    clip = resources.files("edge_classifier") / "data" / "sample_clip.mp4"
    if not clip.is_file():
        raise SourceError("sample clip", "is missing from this installation", "reinstall edge-classifier, or pass --source")
    return Path(str(clip))


def open(spec: str | int | Path | Source, **kw: Any) -> Source:  # noqa: A001 - mirrors builtins.open on purpose
    """A Source for ``spec`` (not yet opened: use it in a ``with`` statement).

    Args:
        spec: ``"picamera"`` (or ``"picameraN"``), a camera index (``0``, ``"0"``), ``/dev/videoN``,
            a video file, an ``rtsp://``/``http://`` URL, a GStreamer pipeline, an image file, a
            folder of images, or a glob. A Source passes through unchanged.
        **kw: passed to the source class (``read_timeout``, ``realtime``, ``capture_timeout``, ...).

    Raises:
        SourceError: the spec names nothing usable (details in the message).
    """
    if isinstance(spec, Source):
        return spec
    if isinstance(spec, int):
        return OpenCvSource(spec, **kw)
    text = str(spec).strip()
    if not text:
        raise SourceError("source", "is empty", "pass picamera, a camera index, a file, a folder or a URL")
    m = _PICAMERA.match(text)
    if m:
        sensor = active_sensor()
        # With a network on the AI Camera's sensor, "picamera" is that camera and its frames carry the answers.
        if sensor is not None and (not m.group(2) or int(m.group(2)) == sensor.camera_num):
            return IMX500Source(sensor, **kw)
        return PiCameraSource(int(m.group(2) or 0), **kw)
    kind = spec_kind(text)
    if kind != "file":
        return OpenCvSource(text, **kw)
    scheme = _SCHEME.match(text)
    if scheme:
        # Not a path: Path() would fold "ftp://host/x" into "ftp:/host/x" and blame a missing file.
        raise SourceError(
            redact_url(text),
            f"the URL scheme {scheme.group(1)}:// is not a video stream OpenCV can read",
            f"use one of {', '.join(STREAM_SCHEMES)}, or download the file and pass its path",
        )
    path = Path(text)
    if path.is_dir() or is_glob(text) or path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageSource(text, full_frames=bool(kw.get("full_frames", False)))
    return OpenCvSource(text, **kw)

"""JPEGs for the web view: the annotated live frame and the small snapshot kept with each label event.

Both are drawn by :func:`edge_classifier.sinks.annotate.annotate` (the banner the preview window and the
recorder draw), after shrinking the frame: a phone does not need 4K, and a Pi should not encode it.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import SinkError
from ..results import Result
from ..sinks.annotate import annotate

#: JPEG quality of the live view (OpenCV scale 0..100): small enough for Wi-Fi, sharp enough to read the banner.
STREAM_QUALITY = 80
THUMB_QUALITY = 70


def shrink(rgb: np.ndarray, max_width: int) -> np.ndarray:
    """``rgb`` scaled down (aspect kept) to at most ``max_width`` pixels wide; unchanged when already narrower."""
    h, w = rgb.shape[:2]
    if w <= max_width:
        return rgb
    return cv2.resize(rgb, (max_width, max(1, round(h * max_width / w))), interpolation=cv2.INTER_AREA)


def jpeg(bgr: np.ndarray, quality: int) -> bytes:
    """Encode a BGR image as JPEG.

    Raises:
        SinkError: OpenCV could not encode it.
    """
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise SinkError("web view", f"OpenCV could not encode a {bgr.shape} frame as JPEG", "report this with the camera model")
    return buf.tobytes()


def view_jpeg(result: Result, fps: float | None, max_width: int, quality: int = STREAM_QUALITY) -> bytes:
    """The live view of ``result``: its frame, shrunk to ``max_width``, with the label/score/FPS banner."""
    return jpeg(annotate(shrink(result.frame.rgb, max_width), result, fps), quality)


def thumbnail_jpeg(result: Result, width: int = 320, quality: int = THUMB_QUALITY) -> bytes:
    """A small annotated snapshot of ``result``, kept with its label event."""
    return jpeg(annotate(shrink(result.frame.rgb, width), result), quality)

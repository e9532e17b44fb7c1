"""JPEG decoding at a reduced scale: the decoder hands back 1/2, 1/4 or 1/8 of the pixels for a fraction of the cost.

A JPEG decoder can skip most of its inverse DCT and produce the image at 1/2, 1/4 or 1/8 of its size (libjpeg's
scaled decoding, behind Pillow's ``Image.draft`` and OpenCV's ``IMREAD_REDUCED_COLOR_*``): a 720p frame decodes at
1/2 scale in about a third of the time of a full decode, and the smaller image is cheaper to resize. The scale is
chosen so that the decoded image stays at least as large as the caller needs (for a model: what its framing needs,
:func:`edge_classifier.preprocess.min_source_size`), so the model is still fed a downscaled, never an upscaled,
picture. Pure maths here, plus one decoder for JPEG bytes (MJPEG camera and stream frames); files go through
:func:`edge_classifier.preprocess.load_image`.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import ImageError

#: Denominators a JPEG decoder scales by (libjpeg's scaled IDCT; Pillow's draft and OpenCV offer these).
SCALES: tuple[int, ...] = (1, 2, 4, 8)

_REDUCED_FLAG = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
# JPEG start-of-frame markers (they carry the size): C0-CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def reduced_size(width: int, height: int, denominator: int) -> tuple[int, int]:
    """The (width, height) a JPEG decoder produces at ``1/denominator`` scale: each side divided, rounded up."""
    return -(-width // denominator), -(-height // denominator)


def reduced_scale(width: int, height: int, min_size: tuple[int, int], max_denominator: int = 8) -> int:
    """The largest JPEG scale denominator (1, 2, 4 or 8) that keeps a ``width`` x ``height`` image at least ``min_size``.

    Args:
        width, height: the image's size as stored in the file.
        min_size: (width, height) the decoded image must reach on both axes.
        max_denominator: the largest denominator the decoder offers (8 for libjpeg).

    Returns:
        1 when even half the size would be too small (small images are decoded whole; nothing is ever enlarged here).
    """
    need_w, need_h = max(1, int(min_size[0])), max(1, int(min_size[1]))
    best = 1
    for d in SCALES:
        if d > max_denominator:
            break
        w, h = reduced_size(width, height, d)
        if w >= need_w and h >= need_h:
            best = d
    return best


def jpeg_size(data: bytes | np.ndarray) -> tuple[int, int] | None:
    """(width, height) from a JPEG's start-of-frame header, or None when ``data`` is not a JPEG with one.

    Reads only the marker segments before the image data (a few hundred bytes), so it costs microseconds.
    """
    buf = np.asarray(data, np.uint8).tobytes() if isinstance(data, np.ndarray) else bytes(data)
    n = len(buf)
    if n < 4 or buf[0] != 0xFF or buf[1] != 0xD8:
        return None
    i = 2
    while i + 4 <= n:
        if buf[i] != 0xFF:
            return None
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        length = (buf[i + 2] << 8) | buf[i + 3]
        if marker in _SOF_MARKERS:
            if i + 9 > n or length < 7:
                return None
            height = (buf[i + 5] << 8) | buf[i + 6]
            width = (buf[i + 7] << 8) | buf[i + 8]
            return (width, height) if width and height else None
        if marker in (0xD9, 0xDA) or length < 2:  # end of image or start of scan before any frame header
            return None
        i += 2 + length
    return None


def decode_jpeg(data: bytes | np.ndarray, min_size: tuple[int, int] | None = None, *, name: str = "JPEG frame") -> np.ndarray:
    """Decode JPEG bytes (an MJPEG frame) to RGB ``uint8``, at the largest reduced scale that still meets ``min_size``.

    Args:
        data: the JPEG file's bytes (``bytes`` or a uint8 array, as OpenCV's raw capture mode returns them).
        min_size: (width, height) the frame must keep on both axes; None decodes it whole.
        name: what to call the frame in an error.

    Raises:
        ImageError: the bytes are not a decodable JPEG.
    """
    arr = (
        np.frombuffer(data, dtype=np.uint8)
        if isinstance(data, (bytes, bytearray, memoryview))
        else np.asarray(data, np.uint8).reshape(-1)
    )
    denominator = 1
    if min_size is not None:
        size = jpeg_size(arr)
        if size is not None:
            denominator = reduced_scale(size[0], size[1], min_size)
    # Orientation tags are ignored, as FFmpeg's own MJPEG decoder ignores them: a frame comes out the same either way.
    bgr = cv2.imdecode(arr, _REDUCED_FLAG[denominator] | cv2.IMREAD_IGNORE_ORIENTATION) if arr.size else None
    if bgr is None or bgr.size == 0:
        raise ImageError(name, "is not a decodable JPEG", "the camera or stream sent a corrupt frame; it is skipped")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

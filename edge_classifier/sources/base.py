"""The Source interface: a context manager that yields RGB frames and releases its device on exit."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from types import TracebackType

import numpy as np

from ..results import Frame

log = logging.getLogger(__name__)


def file_fps(source: object) -> float | None:
    """The frame rate a source's frames are timed by on its own timeline: a file's (or folder's) ``fps`` when it is
    read faster than real time, so intervals and clips measured on it are the same at any decoding speed; None for a
    live source (or one without a frame rate), whose frames are timed by the clock. Duck-typed: any object with
    ``live`` and an optional ``fps``."""
    fps = getattr(source, "fps", None)
    if getattr(source, "live", False) or isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
        return None
    return float(fps)


class Source:
    """Frames from a camera, stream, video file or image folder.

    Subclasses implement :meth:`open`, :meth:`read` and :meth:`close`; iteration, the frame
    counter and the capture timestamp live here once. Use it as a context manager so the device is
    released on every exit path::

        with sources.open("clip.mp4") as src:
            for frame in src:
                ...

    Attributes:
        name: a short description shown in logs and results (``picamera``, ``clip.mp4``, ``0``).
        live: True for cameras and streams: frames keep coming whether or not they are consumed,
            so a slow consumer should drop stale ones. False for files and folders, which wait.
        decode_errors: frames that could not be decoded and were skipped (logged as warnings).
        reconnects: times a live source was reopened after it dropped.
    """

    name: str = "source"
    live: bool = False

    def __init__(self) -> None:
        self.decode_errors = 0
        self.reconnects = 0
        self._index = 0
        # Set by interrupt(): a source waiting (reconnect back-off, real-time pacing) wakes up and ends.
        self._interrupted = threading.Event()

    # --- what subclasses implement --------------------------------------------------------
    def open(self) -> None:
        """Acquire the device or file. Raises a :class:`~edge_classifier.errors.SourceError` child."""

    def read(self) -> np.ndarray | None:
        """The next frame, RGB uint8 (H, W, 3), or None when the source has ended."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file; safe to call more than once."""

    # --- hints --------------------------------------------------------------------------
    def prefer_size(self, width: int, height: int) -> None:
        """Hint the smallest frame the consumer needs: the model's input, or what its framing needs
        (:func:`~edge_classifier.preprocess.min_source_size`). Not called when full frames are wanted (regions).

        A camera with a hardware scaler (picamera2) uses it to deliver small frames directly, so
        no full-resolution frame is resized in Python; a webcam is asked for its nearest mode, and
        JPEG frames and photos are decoded at a reduced scale that still covers it (OpenCvSource and
        ImageSource, unless made with ``full_frames=True``). Other sources ignore it.
        """

    def interrupt(self) -> None:
        """Ask a source that is waiting (back-off, pacing) to end soon; called from another thread."""
        self._interrupted.set()

    # --- shared behaviour ---------------------------------------------------------------
    def frames(self) -> Iterator[Frame]:
        """Frames until the source ends; index counts every frame read from the source."""
        while True:
            rgb = self.read()
            if rgb is None:
                return
            frame = Frame(rgb=rgb, index=self._index, t_capture=time.monotonic(), source=self.name)
            self._index += 1
            yield frame

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, live={self.live})"

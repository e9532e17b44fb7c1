"""An annotated recording of the run through ``cv2.VideoWriter``, finalised on every exit path."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2

from ..errors import SinkError
from ..results import Result
from .annotate import FpsMeter, annotate

log = logging.getLogger(__name__)

#: Codec per container; mp4v and MJPG are in every OpenCV build with FFmpeg.
FOURCC: dict[str, str] = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}

#: Frames used to measure the frame rate when none is given.
_PROBE_FRAMES = 8


def estimate_fps(times: list[float], default: float = 15.0) -> float:
    """Frames per second from capture timestamps, clamped to 1..120 (``default`` with too few)."""
    if len(times) < 2 or times[-1] <= times[0]:
        return default
    return min(120.0, max(1.0, (len(times) - 1) / (times[-1] - times[0])))


class RecorderSink:
    """Writes every result's frame, annotated, to a video file.

    Args:
        path: ``.mp4`` (mp4v), ``.avi`` or ``.mkv`` (MJPG).
        fps: the file's frame rate; by default measured from the first frames' capture times, so
            playback runs at the pace the frames were classified.
        annotated: draw the label, score and FPS (the shared :func:`annotate`).

    Raises:
        SinkError: unknown extension, or the writer cannot be opened (from the first ``write``).
    """

    blocking = True

    def __init__(self, path: str | Path, *, fps: float | None = None, annotated: bool = True) -> None:
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in FOURCC:
            raise SinkError(str(self.path), f"unsupported video extension {ext or '(none)'}", f"use one of {', '.join(FOURCC)}")
        self.fourcc = FOURCC[ext]
        self.fps = fps
        self.annotated = annotated
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._pending: list[tuple[Result, float | None]] = []
        self._meter = FpsMeter()
        self._size = (0, 0)

    def start(self) -> None:
        """Check the folder; the writer opens on the first frame, when the size is known."""
        if not self.path.parent.exists():
            raise SinkError(str(self.path), "its folder does not exist", f"create {self.path.parent} first")

    def _open(self, width: int, height: int, fps: float) -> None:
        # A measured rate such as 85.373 becomes the time base 1000/85373, which FFmpeg's MPEG-4
        # encoder refuses (denominator over 65535); whole frames per second are always accepted.
        fps = float(max(1, round(fps)))
        writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*self.fourcc), fps, (width, height))
        if not writer.isOpened():
            raise SinkError(
                str(self.path),
                f"OpenCV cannot write {self.fourcc} video there",
                "use an .avi path (MJPG), check the folder is writable, or install an OpenCV build with FFmpeg",
            )
        self._writer = writer
        self._size = (height, width)
        log.info("recording %s: %dx%d at %.1f fps (%s)", self.path, width, height, fps, self.fourcc)

    def _emit(self, result: Result, fps: float | None) -> None:
        rgb = result.frame.rgb
        if self._writer is None:
            self._open(rgb.shape[1], rgb.shape[0], self.fps or 15.0)
        frame = annotate(rgb, result, fps) if self.annotated else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if frame.shape[:2] != self._size:
            # A reconnected camera may come back at another size; the file keeps its first one.
            frame = cv2.resize(frame, (self._size[1], self._size[0]))
        if self._writer is not None:
            self._writer.write(frame)
            self.frames += 1

    def write(self, result: Result) -> None:
        """Annotate and write one frame (the first few wait until the frame rate is measured)."""
        fps = self._meter.update(result.frame.t_capture)
        if self._writer is None and self.fps is None and len(self._pending) < _PROBE_FRAMES - 1:
            self._pending.append((result, fps))
            return
        if self._pending:
            self._pending.append((result, fps))
            self._flush_pending()
            return
        self._emit(result, fps)

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, []
        if self._writer is None and pending:
            rgb = pending[0][0].frame.rgb
            self._open(rgb.shape[1], rgb.shape[0], self.fps or estimate_fps([r.frame.t_capture for r, _ in pending]))
        for r, f in pending:
            self._emit(r, f)

    def close(self) -> None:
        """Write any frames still held and finalise the file (its index written, playable)."""
        try:
            self._flush_pending()
        finally:
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.release()

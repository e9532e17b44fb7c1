"""An annotated recording of the run through ``cv2.VideoWriter``, finalised on every exit path, a full disk included.

An MP4 (or AVI) is playable only once its index is written, at the end, by ``release()``. A writer that meets a
full disk loses that index, and FFmpeg then drops every later write, the index included: the whole recording is
lost, not just its end. So the sink never lets the disk fill: before each frame it checks the room left (free space
and the file-size limit, :func:`~edge_classifier.sinks.files.room_left`) against what one more frame and the index
may need (:func:`room_needed`), and when that room is gone it stops recording, finalises the file, and raises a
:class:`SinkError` that names the file and the cause. The frames already recorded stay playable.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from pathlib import Path

import cv2

from ..errors import SinkError
from ..results import Result
from .annotate import FpsMeter, annotate
from .files import os_cause, room_left

log = logging.getLogger(__name__)

#: Codec per container; mp4v and MJPG are in every OpenCV build with FFmpeg.
FOURCC: dict[str, str] = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}

#: Frames used to measure the frame rate when none is given.
_PROBE_FRAMES = 8

#: Bytes kept free for FFmpeg's output buffer (32 KiB) and the container's headers, with a wide margin.
RESERVE_BYTES = 256 * 1024
#: Index bytes per frame at the end of the file (MP4 sample size, offset and sync tables; AVI idx1: 16), with margin.
INDEX_BYTES_PER_FRAME = 32


def room_needed(width: int, height: int, frames: int) -> int:
    """Bytes the disk must still hold for one more ``width``x``height`` frame and a playable file after it.

    Two raw frames (an encoder's worst case for one frame, and the one it may still hold), the output buffer and
    the index for ``frames + 1`` frames. Raw frames are a generous bound (MPEG-4 frames are 10 to 100 times
    smaller), and that is the point: the few megabytes it keeps free are what makes the file playable.
    """
    return RESERVE_BYTES + 2 * width * height * 3 + INDEX_BYTES_PER_FRAME * (frames + 1)


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

    Attributes:
        name: how messages refer to this output (``recording out.mp4``).
        frames: frames written to the file.

    Raises:
        SinkError: unknown extension; from ``write`` or ``close``: the writer cannot be opened, the disk is (nearly)
            full, or a frame could not be written. The frames recorded before it are finalised and stay playable.
    """

    blocking = True

    def __init__(self, path: str | Path, *, fps: float | None = None, annotated: bool = True) -> None:
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in FOURCC:
            raise SinkError(str(self.path), f"unsupported video extension {ext or '(none)'}", f"use one of {', '.join(FOURCC)}")
        self.fourcc = FOURCC[ext]
        self.name = f"recording {self.path}"
        self.fps = fps
        self.annotated = annotated
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._pending: list[tuple[Result, float | None]] = []
        self._meter = FpsMeter()
        self._size = (0, 0)
        self._failed: SinkError | None = None

    def start(self) -> None:
        """Check the folder; the writer opens on the first frame, when the size is known."""
        if not self.path.parent.exists():
            raise SinkError(str(self.path), "its folder does not exist", f"create {self.path.parent} first")

    def _open(self, width: int, height: int, fps: float) -> None:
        self._check_room(width, height)
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

    def _check_room(self, width: int, height: int) -> None:
        """Stop (finalising the file) when one more frame and the index might not fit on the disk."""
        need = room_needed(width, height, self.frames)
        room, why = room_left(self.path)
        if room < need:
            cause, fix = os_cause(OSError(why or errno.ENOSPC, "no room"))
            self._stop(f"{cause}: {room // 1024} KiB left, {need // 1024} KiB needed to go on", fix, playable=True)

    def _emit(self, result: Result, fps: float | None) -> None:
        rgb = result.frame.rgb
        if self._writer is None:
            self._open(rgb.shape[1], rgb.shape[0], self.fps or 15.0)
        frame = annotate(rgb, result, fps) if self.annotated else cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if frame.shape[:2] != self._size:
            # A reconnected camera may come back at another size; the file keeps its first one.
            frame = cv2.resize(frame, (self._size[1], self._size[0]))
        height, width = self._size
        self._check_room(width, height)
        writer = self._writer
        # OpenCV 5 says whether the frame went out (older versions return None: nothing to check).
        if writer is not None and writer.write(frame) is False:
            room, why = room_left(self.path)
            if room < room_needed(width, height, self.frames):
                cause, fix = os_cause(OSError(why or errno.ENOSPC, "no room"))
            else:
                cause, fix = (
                    "the video writer could not write a frame",
                    "check the disk (dmesg) and the free space, or record to another disk",
                )
            self._stop(cause, fix, playable=False)
        self.frames += 1

    def _stop(self, cause: str, fix: str, *, playable: bool) -> None:
        """End the recording here: finalise what was written (or remove an empty file), then raise why.

        Raises:
            SinkError: always; the same error again from any later ``write``.
        """
        self._pending = []
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.release()  # writes the index while there is still room for it
        if self.frames == 0:
            with contextlib.suppress(OSError):
                os.unlink(self.path)  # no frame in it: a header alone plays nowhere
            kept = "nothing was recorded"
        elif playable:
            kept = f"recording stopped after {self.frames} frame(s), which are saved and playable"
        else:
            kept = f"recording stopped after {self.frames} frame(s); the file may not play to the end"
        self._failed = SinkError(str(self.path), f"{cause}; {kept}", fix)
        raise self._failed

    def write(self, result: Result) -> None:
        """Annotate and write one frame (the first few wait until the frame rate is measured).

        Raises:
            SinkError: the recording had to stop (see the class); raised again for every later frame.
        """
        if self._failed is not None:
            raise self._failed
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
        """Write any frames still held and finalise the file (its index written, playable); safe to call twice.

        Raises:
            SinkError: the frames still held did not fit on the disk (the file is finalised all the same).
        """
        try:
            self._flush_pending()
        finally:
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.release()

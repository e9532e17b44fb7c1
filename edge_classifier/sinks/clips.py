"""Clips around events: the seconds before an event, kept compressed in memory, and the seconds after, as a video.

picamera2's circular output, for any source: every captured frame (the loop's tap, in the capture thread, so at
the camera's rate whatever the model's) is JPEG-compressed by a thread of the sink into a ring buffer holding the
last ``pre`` seconds (+1 s of slack for the model's latency). When a label or state event comes, the sink names
the files at once (``<folder>/<time>_<region>_<state>.mp4`` or ``.webm``, and a ``.jpg`` snapshot of the event
frame) and puts those names on the event, so the event's JSONL record and MQTT message carry them; the clip takes the
ring's frames from ``pre`` seconds before the event and the frames of the ``post`` seconds after it, and a second
thread writes it (MP4 with mp4v by default, or WebM with VP8 for browsers: ``format``) while the next frames are
buffered.

Bounds: memory is the ring (JPEG at quality 80 is about 0.12 MB per 720p frame, so 3.6 MB per second of pre-roll
at 30 fps; ``benchmarks/bench_regions.py`` measures it), never more than ``ring_max_mb`` (64); plus the compressed
frames of the clips not yet written (``pre + post`` seconds each, shared with the ring), never more than
``memory_mb`` (96) together: an event that would go beyond gets no clip (counted, warned); plus at most
:data:`ENCODE_QUEUE` raw frames waiting for compression. Disk: ``max_mb`` keeps the folder's clips under a limit,
removing the oldest first. A disk that is full (or a folder that cannot be written) stops the clips with one
warning; classification and the other sinks go on.

Times are stream times (:attr:`~edge_classifier.results.Frame.stream_time`): a video file read faster than real
time still gets ``pre`` and ``post`` seconds of its own frames.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from ..backends.quiet import quiet_runtime_chatter
from ..errors import ConfigError, SinkError
from ..results import Frame, LabelEvent, Result, StateEvent
from .worker import QueueWorker

log = logging.getLogger(__name__)

__all__ = ["CLIP_NAME", "ClipSink", "FrameRing", "clip_stem"]

#: Names of the files this sink writes (and the only ones its retention ever removes).
CLIP_NAME = re.compile(r"^\d{8}-\d{6}\.\d{3}_[A-Za-z0-9_-]+\.(?:mp4|webm|jpg)$")

#: Clip formats: file extension and OpenCV FourCC. mp4 (MPEG-4 Part 2) is cheap to encode and plays in VLC and most
#: players, not in browsers; webm (VP8) plays in every current browser (Home Assistant's media browser, the web view's
#: users) and costs about 8x the encoding CPU (720p on the x86 build machine: 31 against 3.6 ms a frame, 1.8x the
#: bytes), in the clip writer's thread, off the loop's path.
CLIP_FORMATS: dict[str, tuple[str, str]] = {"mp4": (".mp4", "mp4v"), "webm": (".webm", "VP80")}


def _video_writer(path: Path, fourcc: str, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """An OpenCV writer, opened with FFmpeg's known chatter kept off the terminal (its other words still show)."""
    with quiet_runtime_chatter():
        return cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, size)


@functools.cache
def encoder_works(fourcc: str, ext: str) -> bool:
    """Whether this OpenCV can write ``fourcc`` video into an ``ext`` file (a 16x16 frame in a temporary folder, once
    per run): OpenCV builds differ (Debian's python3-opencv, a build without FFmpeg or libvpx)."""
    with tempfile.TemporaryDirectory() as tmp:
        writer = _video_writer(Path(tmp) / f"probe{ext}", fourcc, 10.0, (16, 16))
        try:
            if not writer.isOpened():
                return False
            writer.write(np.zeros((16, 16, 3), np.uint8))
        finally:
            writer.release()
        return (Path(tmp) / f"probe{ext}").stat().st_size > 0


#: Seconds the ring keeps beyond ``pre``: the event frame may reach the sink this much after it was captured.
RING_SLACK = 1.0
#: Frames waiting to be compressed; a live source's frames beyond it are dropped (counted) from the ring.
ENCODE_QUEUE = 8
#: Finished clips waiting to be written (their memory is bounded by ``memory_mb``; this only caps the count).
WRITE_QUEUE = 16
#: Free space a clip must leave on the disk, beyond its own size.
DISK_MARGIN = 1 << 20
_EPS = 1e-6

_Event = TypeVar("_Event", LabelEvent, StateEvent)


@dataclass(frozen=True)
class _Stored:
    """One compressed frame."""

    t: float
    index: int
    jpeg: bytes


class FrameRing:
    """The last ``seconds`` of compressed frames (by stream time), never more than ``max_bytes``.

    Attributes:
        nbytes: bytes held.
        trimmed_for_bytes: frames removed early because of ``max_bytes``.
    """

    def __init__(self, seconds: float, max_bytes: int) -> None:
        self.seconds = seconds
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.trimmed_for_bytes = 0
        self._items: deque[_Stored] = deque()

    def add(self, item: _Stored) -> None:
        """Append ``item`` and drop what is older than ``seconds`` before it, or over the byte limit."""
        self._items.append(item)
        self.nbytes += len(item.jpeg)
        while self._items and (self._items[0].t < item.t - self.seconds - _EPS or self.nbytes > self.max_bytes):
            old = self._items.popleft()
            self.nbytes -= len(old.jpeg)
            if old.t >= item.t - self.seconds - _EPS:
                self.trimmed_for_bytes += 1
                if self.trimmed_for_bytes == 1:
                    log.warning(
                        "clips: the pre-roll buffer reached its %.0f MB limit; clips get less pre-roll", self.max_bytes / 1e6
                    )

    def since(self, t0: float) -> list[_Stored]:
        """The frames at or after stream time ``t0``, oldest first."""
        return [f for f in self._items if f.t >= t0 - _EPS]

    @property
    def newest(self) -> float | None:
        """The newest frame's stream time, or None when empty."""
        return self._items[-1].t if self._items else None

    def clear(self) -> None:
        """Forget every frame."""
        self._items.clear()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[_Stored]:
        return iter(list(self._items))


@dataclass
class _Clip:
    """One event's clip: its names, its window and, once activated, its frames."""

    stem: Path
    t_event: float
    t_end: float
    snapshot: np.ndarray
    box: tuple[int, int, int, int] | None
    ext: str = ".mp4"
    frames: list[_Stored] = field(default_factory=list)
    nbytes: int = 0

    @property
    def video(self) -> Path:
        return self.stem.with_name(self.stem.name + self.ext)

    @property
    def part(self) -> Path:
        """Where the video is written before it is renamed into place (hidden: never taken for a clip)."""
        return self.stem.with_name(f".{self.stem.name}.part{self.ext}")

    @property
    def image(self) -> Path:
        return self.stem.with_name(self.stem.name + ".jpg")


class _DiskFull(Exception):
    """Not enough room for a clip (or the disk filled while writing one)."""


def _decode(jpeg: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError("a buffered frame could not be decoded")
    return img


def clip_stem(when: float, region: str, state: str) -> str:
    """``<local time>_<region>_<state>`` (``20240501-120000.123_feeder_bird``): sorts by time, safe as a file name."""
    ms = int((when % 1) * 1000)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when)) + f".{ms:03d}"
    word = re.sub(r"[^A-Za-z0-9_-]+", "_", state.split(",")[0].strip()).strip("_") or "state"
    return f"{stamp}_{region}_{word}"


def clip_fps(frames: list[_Stored], default: float = 15.0) -> float:
    """The clip's frame rate from its frames' stream times, in whole frames per second (1..120).

    Whole numbers because FFmpeg's MPEG-4 encoder refuses a time base like 1000/85373.
    """
    if len(frames) < 2 or frames[-1].t <= frames[0].t:
        return default
    return float(min(120, max(1, round((len(frames) - 1) / (frames[-1].t - frames[0].t)))))


class ClipSink:
    """Writes a clip and a snapshot around every label or state event, from a compressed pre-roll buffer.

    Use it in ``run_pipeline``'s sinks: the session gives the loop its :meth:`on_capture` tap (any sink with an
    ``on_capture(frame, live)`` method gets one), and the sink group writes to it before the other sinks
    (``names_files``), so their records already carry the clip's file names.

    Args:
        folder: where clips go (created if missing).
        pre: seconds of pre-roll before the event frame (0 or more).
        post: seconds after the event frame (0 or more).
        max_mb: the folder's clips are kept under this many MB, the oldest removed first; None: no limit.
        quality: JPEG quality (1..100) of the buffered frames (and so of the clip).
        ring_max_mb: the pre-roll buffer's hard limit in MB.
        memory_mb: the most MB of compressed frames the clips not yet written may hold together (estimated when
            the event comes, from the buffer's rate); an event beyond it gets no clip (counted in ``dropped``,
            warned). One clip is always taken when none is pending.
        format: ``"mp4"`` (mp4v: cheap, not playable in browsers) or ``"webm"`` (VP8: plays in browsers, about 8x
            the encoding CPU); see :data:`CLIP_FORMATS`.

    Attributes:
        written: clips written.
        removed: clips removed to stay under ``max_mb``.
        stopped: why clips stopped (a full disk), or None.
        dropped: live frames left out of the pre-roll because compression lagged, and events that got no clip
            because the clips before them were not yet written (``memory_mb``); the run's summary reports it.

    Raises:
        ConfigError: a negative ``pre``/``post``, a ``max_mb`` or ``ring_max_mb`` that is not positive, a bad ``quality``
            or ``format``.
    """

    blocking = False  # write() only queues; the sink's threads compress and write
    names_files = True  # puts file names on events: the sink group writes to it before the others

    def __init__(
        self,
        folder: str | Path,
        *,
        pre: float = 3.0,
        post: float = 5.0,
        max_mb: float | None = 1000.0,
        quality: int = 80,
        ring_max_mb: float = 64.0,
        memory_mb: float = 96.0,
        format: str = "mp4",  # noqa: A002 - the word users know, as in --clip-format
    ) -> None:
        for name, value in (("pre", pre), ("post", post)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 600):
                raise ConfigError(f"clips {name}={value!r}", "is not a number of seconds from 0 to 600", f"use e.g. --{name} 3")
        if max_mb is not None and not (isinstance(max_mb, (int, float)) and max_mb > 0 and math.isfinite(max_mb)):
            raise ConfigError(f"clips-max-mb={max_mb!r}", "is not a positive number of MB", "use e.g. --clips-max-mb 1000")
        for name, mb in (("ring_max_mb", ring_max_mb), ("memory_mb", memory_mb)):
            if not (isinstance(mb, (int, float)) and mb > 0 and math.isfinite(mb)):
                raise ConfigError(f"{name}={mb!r}", "is not a positive number of MB", "use e.g. 64")
        if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
            raise ConfigError(f"clip quality={quality!r}", "is not a JPEG quality from 1 to 100", "use e.g. 80")
        if format not in CLIP_FORMATS:
            raise ConfigError(f"clip format={format!r}", "is not a clip format", f"use one of: {', '.join(CLIP_FORMATS)}")
        self.format = format
        self.ext, self.fourcc = CLIP_FORMATS[format]
        if not encoder_works(self.fourcc, self.ext):
            other = next(f for f in CLIP_FORMATS if f != format)
            raise ConfigError(
                f"clip format={format!r}",
                f"this OpenCV ({cv2.__version__}) cannot write {self.fourcc} video into {self.ext} files "
                "(its FFmpeg lacks the encoder)",
                f"use --clip-format {other}, or opencv-python-headless from PyPI, whose FFmpeg has both encoders",
            )
        self.folder = Path(folder)
        self.pre = float(pre)
        self.post = float(post)
        self.max_bytes = None if max_mb is None else int(max_mb * 1e6)
        self.quality = quality
        self.ring = FrameRing(self.pre + RING_SLACK, int(ring_max_mb * 1e6))
        self.memory_bytes = int(memory_mb * 1e6)
        self.skipped = 0
        self.written = 0
        self.removed = 0
        self.stopped: str | None = None
        self._lock = threading.Lock()
        self._requests: list[_Clip] = []
        self._active: list[_Clip] = []
        self._inflight: list[_Clip] = []  # from the event until written (or given up): what memory_mb bounds
        self._stems: deque[str] = deque(maxlen=64)  # recent names: a clash can only be within a millisecond
        self._running = False
        self._oversize_warned = False
        self._encoder: QueueWorker[Frame] = QueueWorker(
            "clips-encoder",
            self._encode,
            maxsize=ENCODE_QUEUE,
            what="frame",
            why_full="JPEG compression cannot keep up; the pre-roll has gaps",
            logger=log,
        )
        self._writer: QueueWorker[_Clip] = QueueWorker(
            "clips-writer",
            self._write,
            maxsize=WRITE_QUEUE,
            what="clip",
            why_full="events come faster than clips can be written",
            logger=log,
        )

    @property
    def dropped(self) -> int:
        """Frames left out of the pre-roll (compression lagged) plus clips dropped (the disk lagged)."""
        return self._encoder.dropped + self._writer.dropped + self.skipped

    # --- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Create the folder, apply the size limit to what is already there, start the threads.

        Raises:
            SinkError: the folder cannot be created or written.
        """
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(
                str(self.folder), f"cannot be created ({exc.strerror or exc})", "pick a writable folder for --clips"
            ) from None
        if not os.access(self.folder, os.W_OK):
            raise SinkError(str(self.folder), "is not writable", "pick a writable folder for --clips, or fix its permissions")
        self._enforce_limit()
        self._running = True
        self._encoder.start()
        self._writer.start()

    def on_capture(self, frame: Frame, live: bool) -> None:
        """The loop's tap (capture thread): queue ``frame`` for the pre-roll buffer.

        A live source's frame is dropped (counted) when compression lags; a file's waits for room, so a clip of a
        file holds every frame.
        """
        if not self._running or self.stopped is not None:
            return
        if not live:
            while self._encoder.pending >= ENCODE_QUEUE and self._running and self.stopped is None:
                time.sleep(0.002)
        self._encoder.put(frame)

    def write(self, result: Result) -> None:
        """Name the files of every event on this frame, put the names on the events, and start their clips."""
        if not self._running or self.stopped is not None:
            return
        if result.event is not None:
            result.event = self._begin(result, None, result.event, result.event.label)
        for r in result.regions:
            if r.event is not None:
                r.event = self._begin(result, r.box, r.event, r.event.state)

    def close(self) -> None:
        """Compress what is queued, finish open clips (with the post-roll they have), write them; safe twice."""
        if not self._running:
            return
        self._running = False
        self._encoder.close(10.0)
        with self._lock:
            self._activate()
            active, self._active = self._active, []
            for clip in active:
                log.info(
                    "clips: %s ends with the stream, %.1f s short of its post-roll",
                    clip.video.name,
                    max(0.0, clip.t_end - (clip.frames[-1].t if clip.frames else clip.t_event)),
                )
                self._finish(clip)
        self._writer.close(120.0)
        self.ring.clear()

    # --- inference thread ---------------------------------------------------------------------
    def _begin(self, result: Result, box: tuple[int, int, int, int] | None, event: _Event, state: str) -> _Event:
        region = event.region if isinstance(event, StateEvent) else "frame"
        stem = clip_stem(time.time(), region, state)
        base, n = stem, 2
        while stem in self._stems:  # two events of one region within a millisecond (hysteresis 1)
            stem, n = f"{base}-{n}", n + 1
        self._stems.append(stem)
        t = result.frame.stream_time
        clip = _Clip(self.folder / stem, t, t + self.post, result.frame.rgb, box, self.ext)
        with self._lock:
            held = sum(c.nbytes for c in self._inflight)
            if self._inflight and held + self._estimate() > self.memory_bytes:
                self.skipped += 1
                if self.skipped == 1 or self.skipped % 100 == 0:
                    log.warning(
                        "clips: %d event(s) without a clip so far: the clips before them (%.0f MB) are not yet written "
                        "(raise memory_mb, or shorten --pre/--post)", self.skipped, held / 1e6,
                    )  # fmt: skip
                return event
            self._requests.append(clip)
            self._inflight.append(clip)
        return dataclasses.replace(event, clip=str(clip.video), snapshot=str(clip.image))

    def _estimate(self) -> float:
        """The bytes a new clip will hold: ``pre + post`` seconds at the ring's current rate (lock held)."""
        frames = list(self.ring)
        if len(frames) < 2 or frames[-1].t <= frames[0].t:
            return 0.0
        per_second = self.ring.nbytes / (frames[-1].t - frames[0].t) * (len(frames) - 1) / len(frames)
        return per_second * (self.pre + self.post)

    # --- encoder thread -----------------------------------------------------------------------
    def _encode(self, frame: Frame) -> bool:
        if self.stopped is not None:
            return True
        try:
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        except cv2.error as exc:
            self._stop(f"a frame could not be compressed ({exc})")
            return True
        if not ok:
            self._stop("a frame could not be compressed")
            return True
        item = _Stored(frame.stream_time, frame.index, buf.tobytes())
        with self._lock:
            still: list[_Clip] = []
            for clip in self._active:
                if item.t <= clip.t_end + _EPS:
                    clip.frames.append(item)
                    clip.nbytes += len(item.jpeg)
                    still.append(clip)
                else:
                    self._finish(clip)
            self._active = still
            self.ring.add(item)
            self._activate()
        return True

    def _activate(self) -> None:
        """Give each requested clip its pre-roll from the ring (lock held)."""
        newest = self.ring.newest
        for clip in self._requests:
            clip.frames = [f for f in self.ring.since(clip.t_event - self.pre) if f.t <= clip.t_end + _EPS]
            clip.nbytes = sum(len(f.jpeg) for f in clip.frames)
            if newest is not None and newest > clip.t_end + _EPS:
                self._finish(clip)  # the ring already holds its whole window
            else:
                self._active.append(clip)
        self._requests = []

    def _finish(self, clip: _Clip) -> None:
        """Hand a complete clip to the writer (lock held)."""
        if not clip.frames or not self._writer.put(clip):
            self._done(clip)

    def _done(self, clip: _Clip) -> None:
        """The clip is written or given up: its frames no longer count against ``memory_mb`` (lock held)."""
        if clip in self._inflight:
            self._inflight.remove(clip)
        clip.frames = []

    # --- writer thread ------------------------------------------------------------------------
    def _write(self, clip: _Clip) -> bool:
        try:
            if self.stopped is None:
                self._write_clip(clip)
        finally:
            with self._lock:
                self._done(clip)
        return True

    def _write_clip(self, clip: _Clip) -> None:
        try:
            self._write_files(clip)
        except _DiskFull as exc:
            self._discard(clip)
            self._stop(f"the disk holding {self.folder} is full ({exc})")
            return
        except (OSError, cv2.error) as exc:
            self._discard(clip)
            self._stop(f"{clip.video} could not be written ({getattr(exc, 'strerror', None) or exc})")
            return
        self.written += 1
        self._enforce_limit()

    def _write_files(self, clip: _Clip) -> None:
        need = sum(len(f.jpeg) for f in clip.frames) + 2 * max(len(f.jpeg) for f in clip.frames)
        free = shutil.disk_usage(self.folder).free
        if free < need + DISK_MARGIN:
            raise _DiskFull(f"{free / 1e6:.1f} MB free, a clip needs about {need / 1e6:.1f} MB")
        snapshot = cv2.cvtColor(clip.snapshot, cv2.COLOR_RGB2BGR)
        if clip.box is not None:
            x, y, w, h = clip.box
            cv2.rectangle(snapshot, (x, y), (x + w - 1, y + h - 1), (0, 255, 255), 2)
        ok, buf = cv2.imencode(".jpg", snapshot, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise OSError(f"the snapshot of {clip.video.name} could not be encoded")
        with open(clip.image, "wb") as out:  # open/write raise ENOSPC; cv2.imwrite would only return False
            out.write(buf.tobytes())
        h, w = _decode(clip.frames[0].jpeg).shape[:2]
        part = clip.part
        writer = _video_writer(part, self.fourcc, clip_fps(clip.frames), (w, h))
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot write {self.fourcc} video there (an OpenCV build without FFmpeg or its encoder?)")
        try:
            for f in clip.frames:
                img = _decode(f.jpeg)
                if img.shape[:2] != (h, w):  # a camera that came back at another size
                    img = cv2.resize(img, (w, h))
                writer.write(img)
        finally:
            writer.release()
        # OpenCV's writer does not report a write that failed for lack of space: check the result instead.
        if not part.exists() or part.stat().st_size == 0 or shutil.disk_usage(self.folder).free < DISK_MARGIN // 4:
            raise _DiskFull("the disk filled while the clip was written")
        os.replace(part, clip.video)

    def _discard(self, clip: _Clip) -> None:
        for p in (clip.image, clip.video, clip.part):
            with contextlib.suppress(OSError):
                p.unlink(missing_ok=True)

    def _stop(self, reason: str) -> None:
        """Stop clips for the rest of the run: one warning; the loop and the other sinks go on."""
        with self._lock:
            if self.stopped is not None:
                return
            self.stopped = reason
            self.ring.clear()
            self._active, self._requests, self._inflight = [], [], []
        log.warning("clips: %s; no more clips this run, classification goes on", reason)

    # --- retention ----------------------------------------------------------------------------
    def _enforce_limit(self) -> None:
        """Remove the oldest clips (video and snapshot together) until the folder's clips fit in ``max_mb``."""
        if self.max_bytes is None:
            return
        sizes: dict[str, int] = {}
        try:
            for p in self.folder.iterdir():
                if CLIP_NAME.match(p.name) and p.is_file():
                    sizes[p.stem] = sizes.get(p.stem, 0) + p.stat().st_size
        except OSError as exc:
            log.warning("clips: cannot list %s to keep it under its limit (%s)", self.folder, exc)
            return
        total = sum(sizes.values())
        removed = 0
        for stem in sorted(sizes):  # names start with the time: oldest first
            if total <= self.max_bytes:
                break
            for ext in (*(e for e, _ in CLIP_FORMATS.values()), ".jpg"):
                try:
                    (self.folder / (stem + ext)).unlink(missing_ok=True)
                except OSError as exc:
                    log.warning("clips: cannot remove %s (%s)", stem + ext, exc)
            total -= sizes[stem]
            removed += 1
            if sizes[stem] > self.max_bytes and not self._oversize_warned:
                self._oversize_warned = True
                log.warning(
                    "clips: %s alone is %.1f MB, more than the %.1f MB limit, and was removed; "
                    "raise --clips-max-mb or shorten --pre/--post",
                    stem, sizes[stem] / 1e6, self.max_bytes / 1e6,
                )  # fmt: skip
        if removed:
            self.removed += removed
            log.info("clips: removed %d oldest clip(s) to keep %s under %.1f MB", removed, self.folder, self.max_bytes / 1e6)

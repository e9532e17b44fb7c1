"""Training photos from the camera that will run the model: one frame every few seconds into ``FOLDER/LABEL/``.

Photos from the deployed camera beat photos from the web (same lens, light, angle and noise). :func:`collect` takes
frames from any source and keeps one every ``every`` seconds of the stream's own time (a video file's position, a
camera's clock), full resolution, as JPEG files that ``edge-convert train FOLDER`` reads as they are: the folder
name is the class. Each file is written whole or not at all (a temporary name, then a rename), and a full disk
stops the collection with one error naming the folder, the cause and the fix, before a photo is cut short.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .errors import ConfigError, SinkError
from .results import Frame
from .sinks.files import os_cause, room_left

__all__ = ["Collected", "check_label", "collect", "encode_photo"]

# Left free on the disk after a photo: the rest of the system (logs, the OS) must not be starved by a long session.
_MARGIN = 1 << 20
# Most file systems allow 255 bytes a name; a label that long is a mistake (a pasted path, a sentence).
_MAX_NAME_BYTES = 100
_BAD_CHARACTERS = frozenset('/\\\0:*?"<>|')


@dataclass
class Collected:
    """What a collection did.

    Attributes:
        folder: the class folder the photos went to (``FOLDER/LABEL``).
        saved: the photos written, in order.
        frames: frames read from the source.
        already: photos that were in the folder before (a collection adds to them, never overwrites).
        ended: ``"count"`` (enough photos), ``"source"`` (the source ended first) or ``"interrupted"``.
    """

    folder: Path
    saved: list[Path] = field(default_factory=list)
    frames: int = 0
    already: int = 0
    ended: str = "source"


def check_label(label: str) -> str:
    """``label`` as a class folder name (stripped), or a :class:`ConfigError` saying why it cannot be one.

    The folder's name is the class the training names, so it must be one folder: no path separators, no characters
    a FAT-formatted SD card refuses, not hidden (training skips dot-folders), not empty.
    """
    name = label.strip()
    bad = sorted({c for c in name if c in _BAD_CHARACTERS or ord(c) < 32})
    long = len(name.encode("utf-8")) > _MAX_NAME_BYTES
    if not name or name in (".", "..") or name.startswith(".") or bad or long:
        why = (
            "is empty"
            if not name
            else f"holds {', '.join(repr(c) for c in bad)}, which a folder name cannot"
            if bad
            else f"is {len(name.encode('utf-8'))} bytes long; a folder name holds at most {_MAX_NAME_BYTES}"
            if long
            else "starts with '.', which makes a hidden folder that training skips"
        )
        raise ConfigError(f"label {label!r}", why, 'give the class a plain name, e.g. "garage door open" or garage_open')
    return name


def encode_photo(rgb: np.ndarray, quality: int) -> bytes:
    """A JPEG of an RGB frame at ``quality`` (1-100)."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB frame
        raise SinkError("photo", "OpenCV could not encode the frame as JPEG", "check the frame (uint8, H x W x 3)")
    return data.tobytes()


def _write_whole(path: Path, data: bytes) -> None:
    """``data`` to ``path`` under a temporary name, flushed, then renamed: a reader never sees half a photo."""
    room, why = room_left(path)
    if room < len(data) + _MARGIN:
        cause, fix = os_cause(OSError(why or 0, "no room left"), "free some space, or collect to another disk")
        raise SinkError(str(path.parent), f"{cause}: {room} bytes left, a photo needs {len(data)} and {_MARGIN} stay free", fix)
    tmp = path.with_name(f".{path.name}.part")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        cause, fix = os_cause(exc, "check the folder and the disk")
        raise SinkError(str(path), f"could not be written: {cause}", fix) from exc


def _name(folder: Path, frame: Frame) -> Path:
    """``YYYYmmdd-HHMMSS-<frame>.jpg`` (wall-clock time, so sessions on different days sort), never an existing file."""
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{frame.index:06d}"
    path, n = folder / f"{stem}.jpg", 1
    while path.exists():
        path, n = folder / f"{stem}-{n}.jpg", n + 1
    return path


def collect(
    frames: Iterable[Frame],
    folder: Path | str,
    label: str,
    count: int,
    every: float = 2.0,
    quality: int = 92,
    on_saved: Callable[[Path, int], None] | None = None,
) -> Collected:
    """Save ``count`` photos from ``frames``, one at most every ``every`` seconds of stream time, to ``folder/label/``.

    Args:
        frames: frames from a source (their ``stream_time`` paces the photos; 0 keeps every frame).
        folder: the dataset folder (one sub-folder per class), created if needed.
        label: the class name, which becomes the sub-folder (checked by :func:`check_label`).
        count: photos to save before returning (at least 1).
        every: seconds between photos.
        quality: JPEG quality.
        on_saved: called with each photo's path and how many have been saved so far.

    Returns:
        What was saved. On Ctrl-C the photos saved so far stay (each whole) and ``KeyboardInterrupt`` propagates with
        the :class:`Collected` on its ``collected`` attribute.

    Raises:
        ConfigError: a bad label, count, interval or quality.
        SinkError: the folder cannot be made or written (a file in its place, permissions, a full disk).
    """
    name = check_label(label)
    if count < 1:
        raise ConfigError("count", f"is {count}", "ask for at least 1 photo")
    if not every >= 0 or every == float("inf"):
        raise ConfigError("every", f"is {every}", "give the seconds between photos: 0 or more")
    if not 1 <= quality <= 100:
        raise ConfigError("quality", f"is {quality}", "give a JPEG quality from 1 to 100 (92 keeps detail for training)")
    target = Path(folder) / name
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        cause, fix = os_cause(exc, "give a folder path, not a file")
        if isinstance(exc, (FileExistsError, NotADirectoryError)):
            cause, fix = "a file stands where the folder should be", "give another --out, or move that file"
        raise SinkError(str(target), f"cannot be made: {cause}", fix) from exc
    done = Collected(target, already=sum(1 for p in target.glob("*.jpg") if not p.name.startswith(".")))
    last: float | None = None
    try:
        for frame in frames:
            done.frames += 1
            t = frame.stream_time
            if last is not None and t - last < every:
                continue
            path = _name(target, frame)
            _write_whole(path, encode_photo(frame.rgb, quality))
            last = t
            done.saved.append(path)
            if on_saved is not None:
                on_saved(path, len(done.saved))
            if len(done.saved) >= count:
                done.ended = "count"
                break
    except KeyboardInterrupt as exc:
        done.ended = "interrupted"
        exc.collected = done  # type: ignore[attr-defined]
        raise
    return done

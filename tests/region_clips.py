"""Scene clips for the region, trigger and clip tests: Coral photos side by side, changing at known frames.

Each frame holds two tiles (the feeder on the left, the door on the right), a black gap, and a band that encodes the
frame's index in 16 black/white blocks, so a clip written by the SDK can be read back and each of its frames
identified (MJPG and mp4v keep 28-pixel blocks black or white).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge_classifier.regions import Region

BITS = 16
GAP = 16
BAND = 32

# The scene every test uses: (photo, frames) per tile, at 30 fps.
FEEDER = [("bird.bmp", 40), ("sunflower.bmp", 50), ("parrot.jpg", 30)]  # chickadee -> daisy -> macaw
DOOR = [("cat.bmp", 60), ("grace_hopper.bmp", 60)]  # Egyptian cat -> military uniform
FEEDER_STATES = {"bird": ["bird"], "flower": ["daisy"]}
DOOR_STATES = {"cat": ["cat"], "person": ["military uniform"]}
# With hysteresis 3 and no smoothing, a change at frame c is confirmed at c + 2.
FEEDER_EVENTS = [(2, None, "bird"), (42, "bird", "flower"), (92, "flower", "bird")]
DOOR_EVENTS = [(2, None, "cat"), (62, "cat", "person")]


def frame_size(tile: int = 224) -> tuple[int, int]:
    """(width, height) of a scene frame with ``tile``-pixel tiles."""
    return 2 * tile, tile + GAP + BAND


def boxes(tile: int = 224) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """The feeder's and the door's boxes in pixels."""
    return (0, 0, tile, tile), (tile, 0, tile, tile)


def tiles(coral: Path, segments: Sequence[tuple[str, int]], tile: int = 224) -> list[np.ndarray]:
    """The tiles of ``segments``: each photo resized to ``tile`` x ``tile`` (BGR), ``count`` times."""
    return _tiles(coral, segments, tile)


def _tiles(coral: Path, segments: Sequence[tuple[str, int]], tile: int) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for name, count in segments:
        bgr = cv2.imread(str(coral / name))
        assert bgr is not None, name
        img = cv2.resize(bgr, (tile, tile), interpolation=cv2.INTER_AREA)
        out.extend([img] * count)
    return out


def mark(frame: np.ndarray, index: int) -> None:
    """Write ``index`` into the frame's band (BGR or RGB: black and white either way)."""
    h, w = frame.shape[:2]
    block = w // BITS
    frame[h - BAND :, :] = 0
    for k in range(BITS):
        if (index >> k) & 1:
            frame[h - BAND :, k * block : (k + 1) * block] = 255


def read_mark(frame: np.ndarray) -> int:
    """The index written by :func:`mark` (each block's mean decides its bit)."""
    h, w = frame.shape[:2]
    block = w // BITS
    band = frame[h - BAND + 4 : h - 4]
    return sum(1 << k for k in range(BITS) if band[:, k * block + 4 : (k + 1) * block - 4].mean() > 127)


def fade(coral: Path, a: str, b: str, frames: int, tile: int = 224) -> list[np.ndarray]:
    """``frames`` tiles cross-fading from photo ``a`` to photo ``b``: a change with no motion between two frames."""
    first, last = (
        cv2.resize(cv2.imread(str(coral / n)), (tile, tile), interpolation=cv2.INTER_AREA).astype(np.float32) for n in (a, b)
    )
    return [np.clip(first + (last - first) * (i + 1) / frames + 0.5, 0, 255).astype(np.uint8) for i in range(frames)]


def write_scene(
    path: Path,
    coral: Path,
    feeder: Sequence[tuple[str, int]] = FEEDER,
    door: Sequence[tuple[str, int]] = DOOR,
    tile: int = 224,
    fps: float = 30.0,
    fourcc: str = "MJPG",
) -> Path:
    """Write the scene video: ``feeder`` left, ``door`` right (their frame counts must add up to the same length)."""
    return write_tiles(path, _tiles(coral, feeder, tile), _tiles(coral, door, tile), fps, fourcc)


def write_tiles(
    path: Path, left: Sequence[np.ndarray], right: Sequence[np.ndarray], fps: float = 30.0, fourcc: str = "MJPG"
) -> Path:
    """Write a scene video from its tiles (BGR, square, one per frame on each side)."""
    assert len(left) == len(right), "both tiles need the same number of frames"
    tile = left[0].shape[0]
    w, h = frame_size(tile)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    try:
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            frame = np.zeros((h, w, 3), np.uint8)
            frame[:tile, :tile] = a
            frame[:tile, tile:] = b
            mark(frame, i)
            writer.write(frame)
    finally:
        writer.release()
    return path


def read_marks(path: Path) -> list[int]:
    """The index of every frame of a video written from a scene (a clip the SDK wrote, say)."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"{path} is not playable"
    marks: list[int] = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return marks
            marks.append(read_mark(frame))
    finally:
        cap.release()


# --- shared by the region, trigger, clip and MQTT tests (their fixtures, clf and scene, are in conftest.py) -----
def two_regions() -> tuple[Region, Region]:
    """The feeder and the door over the scene's two tiles, with their states."""
    feeder, door = boxes()
    return Region("feeder", feeder, states=FEEDER_STATES), Region("door", door, states=DOOR_STATES)

"""Test clips: real video files written with OpenCV from the Coral reference photos."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np


def write_clip(
    path: Path, segments: Sequence[tuple[Path, int]], size: tuple[int, int] = (224, 224), fps: float = 30.0, fourcc: str = "MJPG"
) -> Path:
    """Write ``count`` frames of each image in turn into a video (MJPG .avi by default: little compression loss).

    Frames are the whole photo resized to ``size`` (the model's own input size by default, so the
    network sees what the testdata README's reference scores were measured on).
    """
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    try:
        for image, count in segments:
            bgr = cv2.imread(str(image))
            if bgr is None:
                raise RuntimeError(f"cannot read {image}")
            frame = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            for _ in range(count):
                writer.write(frame)
    finally:
        writer.release()
    return path


def video_frames(path: Path) -> list[np.ndarray]:
    """Every frame of a video file, BGR, in order."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise AssertionError(f"{path} is not playable")
    frames = []
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                return frames
            frames.append(bgr)
    finally:
        cap.release()


def read_video(path: Path) -> tuple[int, float, tuple[int, int]]:
    """(frames decoded, frame rate, (width, height)) of a video file, reading it to the end."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise AssertionError(f"{path} is not playable")
    try:
        frames = 0
        while cap.read()[0]:
            frames += 1
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        return frames, float(cap.get(cv2.CAP_PROP_FPS)), size
    finally:
        cap.release()

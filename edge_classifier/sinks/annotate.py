"""Drawing the label, score and FPS on a frame: one place shared by the preview window and the recorder."""

from __future__ import annotations

import cv2
import numpy as np

from ..results import Result

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def caption(result: Result, fps: float | None = None) -> str:
    """The text drawn on a frame: ``label 0.87 | 29.5 fps``."""
    top = result.top
    text = f"{top.label} {top.score:.2f}" if top is not None else "(no label above threshold)"
    if fps:
        text += f" | {fps:.1f} fps"
    if result.device and result.device != "cpu":
        text += f" | {result.device}"
    return text


def annotate(rgb: np.ndarray, result: Result, fps: float | None = None) -> np.ndarray:
    """A BGR copy of ``rgb`` (ready for OpenCV windows and writers) with the caption in a top banner.

    The input is not modified. The banner height and font scale follow the frame width, so the text
    is legible from 160 to 4K pixels wide.
    """
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    h, w = bgr.shape[:2]
    scale = max(0.35, w / 1000.0)
    thickness = max(1, round(scale * 2))
    text = caption(result, fps)
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thickness)
    banner = min(h, th + base + 2 * max(4, round(6 * scale)))
    # Darken, not blacken, the banner so the scene stays visible beneath the text.
    bgr[:banner] = (bgr[:banner].astype(np.uint16) * 2 // 5).astype(np.uint8)
    colour = (80, 255, 80) if result.event is not None else (255, 255, 255)
    cv2.putText(
        bgr,
        text,
        (max(2, round(8 * scale)), banner - base - max(2, round(4 * scale))),
        _FONT,
        scale,
        colour,
        thickness,
        cv2.LINE_AA,
    )
    return bgr


class FpsMeter:
    """Frames per second from frame timestamps, smoothed so the number on screen is readable."""

    def __init__(self, smoothing: float = 0.9) -> None:
        self.smoothing = smoothing
        self.fps: float | None = None
        self._last: float | None = None

    def update(self, t: float) -> float | None:
        """Feed one frame's time (seconds, monotonic); returns the smoothed FPS so far."""
        if self._last is not None and t > self._last:
            inst = 1.0 / (t - self._last)
            self.fps = inst if self.fps is None else self.smoothing * self.fps + (1 - self.smoothing) * inst
        self._last = t
        return self.fps

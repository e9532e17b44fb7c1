"""Drawing the label, score and FPS on a frame, and each region's box and state: one place shared by the preview
window, the recorder and the web view."""

from __future__ import annotations

import cv2
import numpy as np

from ..results import RegionResult, Result

_FONT = cv2.FONT_HERSHEY_SIMPLEX
# BGR. A region's box in amber, green on the frame where its state changes (as the banner's text on a label event).
REGION_COLOUR: tuple[int, int, int] = (0, 200, 255)
EVENT_COLOUR: tuple[int, int, int] = (80, 255, 80)
# Beyond this many characters the banner names how many regions there are; each box carries its own label anyway.
_BANNER_REGIONS_MAX = 60


def region_caption(region: RegionResult) -> str:
    """The text drawn at a region's box: ``door: open 0.93``, or ``door: ?`` before its first state."""
    if region.state is None:
        return f"{region.name}: ?"
    return f"{region.name}: {region.state} {region.score:.2f}"


def caption(result: Result, fps: float | None = None) -> str:
    """The banner's text: ``label 0.87 | 29.5 fps``; with regions, their states (``door: open 0.93 | perch: ?``)."""
    if result.regions:
        text = " | ".join(region_caption(r) for r in result.regions)
        if len(text) > _BANNER_REGIONS_MAX:
            text = f"{len(result.regions)} regions"
    else:
        top = result.top
        text = f"{top.label} {top.score:.2f}" if top is not None else "(no label above threshold)"
    if fps:
        text += f" | {fps:.1f} fps"
    if result.device and result.device != "cpu":
        text += f" | {result.device}"
    return text


def annotate(rgb: np.ndarray, result: Result, fps: float | None = None) -> np.ndarray:
    """A BGR copy of ``rgb`` (ready for OpenCV windows and writers) with the caption in a top banner and, with
    regions, each region's box labelled with its state.

    ``rgb`` may be ``result.frame.rgb`` or a resized copy of it (the web view's): region boxes, in pixels of the
    result's frame, are scaled to it. The input is not modified. The banner height and font scale follow the frame
    width, so the text is legible from 160 to 4K pixels wide.
    """
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    h, w = bgr.shape[:2]
    scale = max(0.35, w / 1000.0)
    thickness = max(1, round(scale * 2))
    text = caption(result, fps)
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thickness)
    banner = min(h, th + base + 2 * max(4, round(6 * scale)))
    if result.regions:
        _draw_regions(bgr, result, scale, thickness, banner)
    # Darken, not blacken, the banner so the scene stays visible beneath the text.
    bgr[:banner] = (bgr[:banner].astype(np.uint16) * 2 // 5).astype(np.uint8)
    colour = EVENT_COLOUR if result.event is not None else (255, 255, 255)
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


def _draw_regions(bgr: np.ndarray, result: Result, scale: float, thickness: int, banner: int) -> None:
    """Each region's box and caption, in place; the caption above the box, or inside it where there is no room
    above it below the banner (``banner``: the banner's height, which the captions keep clear of)."""
    h, w = bgr.shape[:2]
    fh, fw = result.frame.rgb.shape[:2]
    sx, sy = w / fw, h / fh
    small = scale * 0.8
    for region in result.regions:
        x, y, bw, bh = region.box
        x0, y0 = round(x * sx), round(y * sy)
        x1, y1 = max(x0, round((x + bw) * sx) - 1), max(y0, round((y + bh) * sy) - 1)
        colour = EVENT_COLOUR if region.event is not None else REGION_COLOUR
        # At least 2 pixels: a 1-pixel line all but vanishes in a compressed recording or a JPEG of the web view.
        cv2.rectangle(bgr, (x0, y0), (x1, y1), colour, max(2, thickness) + (1 if region.event is not None else 0))
        text = region_caption(region)
        (tw, th), base = cv2.getTextSize(text, _FONT, small, thickness)
        pad = max(2, round(3 * scale))
        top = y0 - th - base - 2 * pad
        if top < banner:  # no room above the box: inside it, under its top edge (and the banner)
            top = min(max(y0 + thickness, banner), max(0, h - th - base - 2 * pad))
        left = min(max(0, x0), max(0, w - tw - 2 * pad))
        bottom, right = min(h, top + th + base + 2 * pad), min(w, left + tw + 2 * pad)
        # A dark plate behind the text, so it reads on any scene.
        bgr[top:bottom, left:right] = (bgr[top:bottom, left:right].astype(np.uint16) * 2 // 5).astype(np.uint8)
        cv2.putText(bgr, text, (left + pad, bottom - base - pad), _FONT, small, colour, thickness, cv2.LINE_AA)


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

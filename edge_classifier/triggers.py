"""Triggers: classify on a schedule or on motion instead of every frame, to spend power only when it matters.

- ``every``: at most one classification per interval (seconds of the stream's own time), idle in between.
- ``motion``: a frame difference on a small greyscale copy of the frame (about 160 pixels wide: a fraction of a
  millisecond at 720p); a region is classified while enough of *its* box changes, so a bird landing on the feeder
  does not wake the door's region.
- Either way, a change once seen is followed through: while a new state leads but is not confirmed, and for the
  ``settle`` frames after motion stops, the target is classified every frame, so the event comes at the frame it
  would have come at without a trigger. A slow periodic check (``every``, or
  :data:`~edge_classifier.loop_options.MOTION_RECHECK` seconds) catches a state that changed without motion.

Pure: the caller passes frames, times and what each target's smoother says; no clock, no threads.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["MotionDetector", "TriggerPlan"]

#: Width of the greyscale copy motion is measured on.
MOTION_WIDTH = 160

PixelBox = tuple[int, int, int, int]


class MotionDetector:
    """Pixels that changed between consecutive frames, on a small blurred greyscale copy.

    Args:
        threshold: grey levels (1..255) a pixel must change by to count.
        width: the copy's approximate width in pixels (the frame is subsampled by a whole step).
    """

    def __init__(self, threshold: int = 25, width: int = MOTION_WIDTH) -> None:
        self.threshold = threshold
        self.width = width
        self.step = 1
        self._previous: np.ndarray | None = None
        self._shape: tuple[int, ...] = ()

    def update(self, rgb: np.ndarray) -> np.ndarray | None:
        """The changed-pixel mask (bool, at the copy's scale) against the previous frame; None for the first frame."""
        if rgb.shape != self._shape:  # first frame, or a camera that came back at another size
            self._shape = rgb.shape
            self.step = max(1, rgb.shape[1] // self.width)
            self._previous = None
        # A strided view reads 1/step^2 of the pixels; the blur then removes the aliasing noise of subsampling.
        small = np.ascontiguousarray(rgb[:: self.step, :: self.step])
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (5, 5), 0)
        previous, self._previous = self._previous, grey
        if previous is None:
            return None
        return cv2.absdiff(grey, previous) > self.threshold

    def share(self, mask: np.ndarray, box: PixelBox) -> float:
        """The share of ``box`` (pixels of the full frame) that changed in ``mask``."""
        x, y, w, h = box
        s = self.step
        part = mask[y // s : -(-(y + h) // s), x // s : -(-(x + w) // s)]
        return float(part.mean()) if part.size else 0.0


class TriggerPlan:
    """Decides, frame by frame, which targets (regions, or the whole frame) to classify.

    Args:
        settle: per target, the classifications to run after motion stops (the smoother's
            :meth:`~edge_classifier.smoothing.StateSmoother.settle_frames`).
        every: seconds between classifications of a still target; None with ``motion`` off means every frame.
        motion: gate on motion.
        recheck: with ``motion`` and no ``every``, the seconds after which a still target is classified anyway.
        threshold: grey levels a pixel must change by (``motion``).
        min_area: share of the target's box that must change to count as motion.

    Attributes:
        frames: frames seen.
        classified: classifications run, per target.
    """

    def __init__(
        self,
        settle: Sequence[int],
        *,
        every: float | None,
        motion: bool,
        recheck: float,
        threshold: int = 25,
        min_area: float = 0.005,
    ) -> None:
        n = len(settle)
        self.settle = list(settle)
        self.interval = every if every is not None else (recheck if motion else None)
        self.min_area = min_area
        self.detector = MotionDetector(threshold) if motion else None
        self.frames = 0
        self.classified = [0] * n
        self._last: list[float | None] = [None] * n
        self._settling = [0] * n
        self._chasing = [0] * n  # consecutive classifications run only because a change was pending

    def due(self, rgb: np.ndarray, t: float, boxes: Sequence[PixelBox], pending: Sequence[bool]) -> list[bool]:
        """Which targets to classify on this frame (call once per frame, then :meth:`done` for each one classified).

        Args:
            rgb: the frame (motion is measured on every frame, classified or not).
            t: the frame's stream time in seconds.
            boxes: each target's box in pixels (the whole frame for a frame target).
            pending: per target, whether a new state leads but is not yet confirmed.
        """
        self.frames += 1
        mask = self.detector.update(rgb) if self.detector is not None else None
        out: list[bool] = []
        for i, box in enumerate(boxes):
            last = self._last[i]
            due = last is None or (self.interval is not None and t - last >= self.interval - 1e-9)
            if mask is not None and self.detector is not None and self.detector.share(mask, box) >= self.min_area:
                self._settling[i] = self.settle[i]
                due = True
            elif self._settling[i] > 0:
                self._settling[i] -= 1
                due = True
            if due:
                self._chasing[i] = 0
            elif pending[i] and self._chasing[i] < 2 * self.settle[i]:
                # Follow a change through to its event, but not forever: a scene that flickers between two
                # answers would otherwise be classified at frame rate; it waits for the next interval instead.
                self._chasing[i] += 1
                due = True
            out.append(due)
        return out

    def done(self, target: int, t: float) -> None:
        """Note that ``target`` was classified on the frame at stream time ``t``."""
        self._last[target] = t
        self.classified[target] += 1

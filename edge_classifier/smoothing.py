"""Temporal smoothing for live video: an exponential moving average of scores, and label events with hysteresis.

A camera pointed at one object still sees frame-to-frame noise; the raw top label flickers. The
EMA steadies the scores, and a change of label is announced only after the new label has led for
``hysteresis`` consecutive frames. Pure: no clock, no I/O; the raw per-frame scores stay untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .results import LabelEvent


def ema(previous: np.ndarray | None, scores: np.ndarray, smoothing: float) -> np.ndarray:
    """One EMA step: ``smoothing * previous + (1 - smoothing) * scores`` (the first frame starts it).

    Args:
        previous: the smoothed scores so far, or None at the first frame.
        scores: this frame's scores.
        smoothing: weight kept from the past, in [0, 1): 0 is no smoothing, 0.9 is heavy.
    """
    if previous is None or smoothing <= 0.0:
        return scores.astype(np.float32, copy=True)
    return (smoothing * previous + (1.0 - smoothing) * scores).astype(np.float32, copy=False)


@dataclass
class Hysteresis:
    """Tracks the leading label and confirms a change after ``frames`` consecutive frames in the lead.

    Attributes:
        frames: frames a new leader must hold before it becomes the label (1 = at once).
        current: the confirmed label id, or None before the first confirmation.
        candidate: the id currently challenging ``current``.
        count: how many consecutive frames ``candidate`` has led.
    """

    frames: int = 3
    current: int | None = None
    candidate: int | None = None
    count: int = 0

    def update(self, leader: int | None) -> tuple[int | None, int | None] | None:
        """Feed this frame's leader (None: nothing above the threshold, which changes nothing).

        Returns:
            ``(previous, new)`` on the frame where a change is confirmed, else None.
        """
        if leader is None or leader == self.current:
            self.candidate, self.count = None, 0
            return None
        if leader == self.candidate:
            self.count += 1
        else:
            self.candidate, self.count = leader, 1
        if self.count >= max(1, self.frames):
            previous, self.current = self.current, leader
            self.candidate, self.count = None, 0
            return previous, leader
        return None


class Smoother:
    """EMA over frames plus hysteresis events; one instance per stream.

    Args:
        labels: class id -> label (``classifier.spec.label``).
        smoothing: weight kept from the past, in [0, 1); 0 turns the EMA off (events still fire).
        hysteresis: frames a new top label must lead before a :class:`LabelEvent` fires.
        min_score: a smoothed top score below this is no label at all (no event for it).

    Raises:
        ValueError: smoothing outside [0, 1) or hysteresis below 1.
    """

    def __init__(
        self, labels: Callable[[int], str], *, smoothing: float = 0.5, hysteresis: int = 3, min_score: float = 0.0
    ) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}: 0 is off, 0.9 is heavy")
        if hysteresis < 1:
            raise ValueError(f"hysteresis must be at least 1 frame, got {hysteresis}")
        self.labels = labels
        self.smoothing = smoothing
        self.min_score = min_score
        self.state = Hysteresis(frames=hysteresis)
        self.scores: np.ndarray | None = None

    def update(self, scores: np.ndarray, frame_index: int, t_capture: float) -> tuple[np.ndarray, LabelEvent | None]:
        """Fold in one frame's scores; returns the smoothed scores and the event confirmed on this frame."""
        self.scores = ema(self.scores, scores, self.smoothing)
        best = int(np.argmax(self.scores))
        best_score = float(self.scores[best])
        change = self.state.update(best if best_score >= self.min_score else None)
        if change is None:
            return self.scores, None
        previous, new = change[0], best
        return self.scores, LabelEvent(
            id=new,
            label=self.labels(new),
            score=best_score,
            previous_id=previous,
            previous_label=self.labels(previous) if previous is not None else None,
            frame_index=frame_index,
            t_capture=t_capture,
        )

    @property
    def label(self) -> int | None:
        """The confirmed label id, or None before the first event."""
        return self.state.current

    def reset(self) -> None:
        """Forget the history (a new scene or a new source)."""
        self.scores = None
        self.state = Hysteresis(frames=self.state.frames)

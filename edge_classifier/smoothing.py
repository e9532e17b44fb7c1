"""Temporal smoothing for live video: an exponential moving average of scores, and label events with hysteresis.

A camera pointed at one object still sees frame-to-frame noise; the raw top label flickers. The
EMA steadies the scores, and a change of label is announced only after the new label has led for
``hysteresis`` consecutive frames. Pure: no clock, no I/O; the raw per-frame scores stay untouched.

:class:`Smoother` does this for the whole frame's top label; :class:`StateSmoother` for a region's named states
(:mod:`edge_classifier.states`), where ``unknown`` (no state above its threshold) is a state of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .loop_options import check_hysteresis, check_smoothing
from .results import LabelEvent, StateEvent
from .states import StateSet


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
        ConfigError: smoothing outside [0, 1) or hysteresis below 1.
    """

    def __init__(
        self, labels: Callable[[int], str], *, smoothing: float = 0.5, hysteresis: int = 3, min_score: float = 0.0
    ) -> None:
        self.labels = labels
        self.smoothing = check_smoothing(smoothing)
        check_hysteresis(hysteresis)
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

    @property
    def pending(self) -> bool:
        """True while a new label leads but is not yet confirmed (a trigger then keeps classifying)."""
        return self.state.candidate is not None

    def reset(self) -> None:
        """Forget the history (a new scene or a new source)."""
        self.scores = None
        self.state = Hysteresis(frames=self.state.frames)


class StateSmoother:
    """EMA over a region's class scores, its states decided on the smoothed scores, and state events with hysteresis.

    Args:
        states: the region's compiled states (:func:`~edge_classifier.states.compile_states`).
        labels: class id -> label, for the event's ``label``.
        region: the region's name, carried by its events.
        smoothing: weight kept from the past, in [0, 1); 0 turns the EMA off.
        hysteresis: frames a new state must lead before a :class:`StateEvent` fires.

    Raises:
        ConfigError: smoothing outside [0, 1) or hysteresis below 1.
    """

    def __init__(
        self, states: StateSet, labels: Callable[[int], str], region: str, *, smoothing: float = 0.0, hysteresis: int = 3
    ) -> None:
        self.states = states
        self.labels = labels
        self.region = region
        self.smoothing = check_smoothing(smoothing)
        self.hysteresis = Hysteresis(frames=check_hysteresis(hysteresis))
        self.scores: np.ndarray | None = None
        self.score = 0.0

    def update(self, scores: np.ndarray, frame_index: int, t_capture: float) -> tuple[np.ndarray, StateEvent | None]:
        """Fold in one classification of the region; returns the smoothed class scores and the event confirmed now."""
        self.scores = ema(self.scores, scores, self.smoothing)
        state_scores = self.states.scores(self.scores)
        leader = self.states.decide(state_scores)
        change = self.hysteresis.update(leader)
        current = self.hysteresis.current
        if current is not None:
            self.score = float(state_scores[current]) if current >= 0 else float(np.max(state_scores))
        if change is None:
            return self.scores, None
        previous, new = change[0], leader
        return self.scores, StateEvent(
            region=self.region,
            state=self.states.name(new),
            score=self.score,
            previous_state=self.states.name(previous) if previous is not None else None,
            label=self.labels(self.states.best_class(self.scores, new)),
            frame_index=frame_index,
            t_capture=t_capture,
        )

    @property
    def state(self) -> str | None:
        """The confirmed state's name, or None before the first event."""
        current = self.hysteresis.current
        return None if current is None else self.states.name(current)

    @property
    def pending(self) -> bool:
        """True while a new state leads but is not yet confirmed (a trigger then keeps classifying)."""
        return self.hysteresis.candidate is not None

    def settle_frames(self) -> int:
        """Classifications after motion stops before the state can be trusted again (:func:`settle_frames`)."""
        return settle_frames(self.smoothing, self.hysteresis.frames)


def settle_frames(smoothing: float, hysteresis: int) -> int:
    """Classifications a changed scene needs before its answer is confirmed: the hysteresis, plus the frames the
    EMA needs to forget 90% of what came before (a trigger keeps classifying that long after motion stops)."""
    ema_frames = 0 if smoothing <= 0 else int(np.ceil(np.log(0.1) / np.log(smoothing)))
    return hysteresis + ema_frames

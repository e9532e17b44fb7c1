"""Every result type of the package, in one module: Classification, Prediction, Frame, LabelEvent, StateEvent,
RegionResult, Result.

What ``top`` means, everywhere: **the class to act on**, the first of the ranking the object gives as its
answer. For a :class:`Prediction` (one image, no history) that is the best raw class. For a :class:`Result` of the
camera loop it is the best *smoothed* class when smoothing is on (raw when it is off): the steady answer, the one
label events follow. ``Result.raw_top`` is this frame's unsmoothed best, which is what ``Prediction.top`` is for
the same frame. So ``top`` never changes meaning between the two types; only the loop adds a history to smooth over.

With regions (:class:`~edge_classifier.regions.Region`), the loop classifies each region instead of the whole
frame: ``Result.regions`` holds one :class:`RegionResult` per region, with its confirmed ``state`` and its
:class:`StateEvent` on the frame where that state changed; the whole-frame fields are then empty.

Pure data: numpy only, so every layer may import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Classification", "Frame", "LabelEvent", "Prediction", "RegionResult", "Result", "StateEvent"]


@dataclass(frozen=True)
class Classification:
    """One class of a result.

    Attributes:
        id: the class id, counted without any leading "background" output (ImageNet: 0..999).
        label: the class label, or ``class <id>`` for a model without labels.
        score: probability in 0..1 (after softmax when the model outputs logits).
    """

    id: int
    label: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        """``{"id", "label", "score"}`` for JSON."""
        return {"id": self.id, "label": self.label, "score": round(float(self.score), 6)}


@dataclass(frozen=True)
class Prediction:
    """The full answer for one image.

    Attributes:
        classes: the top-k classes, best first.
        scores: probabilities for every class id (float32, background removed).
        timings: seconds spent per stage: ``preprocess``, ``inference``, ``postprocess`` (and ``decode`` for
            a file or PIL image).
    """

    classes: list[Classification]
    scores: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def top(self) -> Classification | None:
        """The class to act on: the best one, or None when nothing passed the score threshold."""
        return self.classes[0] if self.classes else None


@dataclass(frozen=True)
class Frame:
    """One captured frame.

    Attributes:
        rgb: the pixels, RGB uint8, shape (H, W, 3).
        index: frame number from the source, counting from 0 (dropped frames leave gaps).
        t_capture: ``time.monotonic()`` when the frame was captured.
        source: a short description of where it came from (``picamera``, ``clip.mp4``, ...).
        t_stream: seconds on the stream's own timeline, set by the loop: a video file's position (index / fps)
            when it is read faster than real time, else ``t_capture``. Intervals (``every``) and clips
            (pre- and post-roll) are measured on it, so a file gives the same answer at any speed.
    """

    rgb: np.ndarray
    index: int
    t_capture: float
    source: str = ""
    t_stream: float | None = None

    @property
    def stream_time(self) -> float:
        """``t_stream`` when the loop set it, else ``t_capture``."""
        return self.t_capture if self.t_stream is None else self.t_stream


def _clip_fields(d: dict[str, Any], clip: str | None, snapshot: str | None) -> dict[str, Any]:
    if clip is not None:
        d["clip"] = clip
    if snapshot is not None:
        d["snapshot"] = snapshot
    return d


@dataclass(frozen=True)
class LabelEvent:
    """The smoothed top label changed and stayed changed (hysteresis passed).

    Attributes:
        id: new class id.
        label: new label.
        score: its smoothed score.
        previous_id: the class id before the change (None at the first event).
        previous_label: the label before the change (None at the first event).
        frame_index: the frame on which the change was confirmed.
        t_capture: that frame's capture time.
        clip: the clip file a clip sink is writing for this event, if any.
        snapshot: the event frame's JPEG written beside the clip, if any.
    """

    id: int
    label: str
    score: float
    previous_id: int | None
    previous_label: str | None
    frame_index: int
    t_capture: float
    clip: str | None = None
    snapshot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``clip`` and ``snapshot`` only when a clip sink named them)."""
        d = {
            "id": self.id,
            "label": self.label,
            "score": round(float(self.score), 6),
            "previous_id": self.previous_id,
            "previous_label": self.previous_label,
            "frame_index": self.frame_index,
        }
        return _clip_fields(d, self.clip, self.snapshot)


@dataclass(frozen=True)
class StateEvent:
    """A region's confirmed state changed (hysteresis passed); ``unknown`` is a state too.

    Attributes:
        region: the region's name.
        state: the new state (a state name, a label when the region names no states, or ``unknown``).
        score: the new state's smoothed score (for ``unknown``: the best state's, which is below its threshold).
        previous_state: the state before (None at the region's first event).
        label: the best label inside the new state on this frame (the overall best for ``unknown``).
        frame_index: the frame on which the change was confirmed.
        t_capture: that frame's capture time.
        clip: the clip file a clip sink is writing for this event, if any.
        snapshot: the event frame's JPEG written beside the clip, if any.
    """

    region: str
    state: str
    score: float
    previous_state: str | None
    label: str
    frame_index: int
    t_capture: float
    clip: str | None = None
    snapshot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (``clip`` and ``snapshot`` only when a clip sink named them)."""
        d = {
            "region": self.region,
            "state": self.state,
            "score": round(float(self.score), 6),
            "previous_state": self.previous_state,
            "label": self.label,
            "frame_index": self.frame_index,
        }
        return _clip_fields(d, self.clip, self.snapshot)


@dataclass
class RegionResult:
    """One region on one frame.

    Attributes:
        name: the region's name.
        box: its box in pixels of this frame: x, y, width, height.
        state: the confirmed state (None before the first :class:`StateEvent`).
        score: the confirmed state's smoothed score on the region's latest classification.
        classified: True when the region was classified on this frame; False when a trigger skipped it
            (``state`` is then held from its last classification, ``classes`` is empty).
        classes: this frame's raw top-k for the region, best first.
        scores: raw per-class probabilities (None when not classified on this frame).
        smoothed: top-k after smoothing; None when smoothing is off or not classified.
        event: set on the frame where the state changed.
        timings: seconds per stage for this region (crop and framing count as preprocess).
    """

    name: str
    box: tuple[int, int, int, int]
    state: str | None
    score: float
    classified: bool = True
    classes: list[Classification] = field(default_factory=list)
    scores: np.ndarray | None = None
    smoothed: list[Classification] | None = None
    event: StateEvent | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def top(self) -> Classification | None:
        """The region's best smoothed class (raw when smoothing is off), or None (below threshold, not classified)."""
        ranked = self.smoothed if self.smoothed is not None else self.classes
        return ranked[0] if ranked else None

    def to_dict(self) -> dict[str, Any]:
        """``{"region", "box", "state", "state_score", "classes", ...}`` for JSON."""
        d: dict[str, Any] = {
            "region": self.name,
            "box": list(self.box),
            "state": self.state,
            "state_score": round(float(self.score), 6),
            "classified": self.classified,
            "classes": [c.to_dict() for c in self.classes],
        }
        if self.smoothed is not None:
            d["smoothed"] = [c.to_dict() for c in self.smoothed]
        if self.event is not None:
            d["event"] = self.event.to_dict()
        return d


@dataclass
class Result:
    """What the loop produced for one frame.

    Attributes:
        frame: the frame classified.
        classes: raw top-k for this frame, best first.
        scores: raw per-class probabilities for this frame.
        timings: seconds per stage (capture wait, preprocess, inference, postprocess, ...).
        smoothed: top-k after temporal smoothing; None when smoothing is off.
        event: set on the frame where the smoothed top label changed.
        device: where inference ran (``cpu``, ``usb:0``, ...).
        regions: one :class:`RegionResult` per region when the loop has regions (the whole frame is then not
            classified: ``classes`` is empty), in the order the regions were given.
    """

    frame: Frame
    classes: list[Classification]
    scores: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    smoothed: list[Classification] | None = None
    event: LabelEvent | None = None
    device: str = "cpu"
    regions: tuple[RegionResult, ...] = ()

    @property
    def events(self) -> list[LabelEvent | StateEvent]:
        """Every event on this frame: the whole frame's label event and each region's state event."""
        found: list[LabelEvent | StateEvent] = [self.event] if self.event is not None else []
        found.extend(r.event for r in self.regions if r.event is not None)
        return found

    def region(self, name: str) -> RegionResult | None:
        """The region called ``name`` on this frame, or None."""
        return next((r for r in self.regions if r.name == name), None)

    @property
    def top(self) -> Classification | None:
        """The class to act on: the best smoothed class (raw when smoothing is off), or None below the threshold."""
        ranked = self.smoothed if self.smoothed is not None else self.classes
        return ranked[0] if ranked else None

    @property
    def raw_top(self) -> Classification | None:
        """This frame's best class before smoothing (``Prediction.top`` of the frame), or None below the threshold."""
        return self.classes[0] if self.classes else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON record written per frame (schema documented in the README)."""
        d: dict[str, Any] = {
            "frame": self.frame.index,
            "t_capture": round(self.frame.t_capture, 6),
            "source": self.frame.source,
            "device": self.device,
            "classes": [c.to_dict() for c in self.classes],
            "timings_ms": {k: round(v * 1000, 3) for k, v in self.timings.items()},
        }
        if self.smoothed is not None:
            d["smoothed"] = [c.to_dict() for c in self.smoothed]
        if self.event is not None:
            d["event"] = self.event.to_dict()
        if self.regions:
            d["regions"] = [r.to_dict() for r in self.regions]
        return d

    def records(self) -> list[dict[str, Any]]:
        """The JSON lines for this frame: :meth:`to_dict`, or with regions one record per region classified on
        this frame (frame fields, then the region's: ``region``, ``box``, ``state``, ``classes``, ``event`` ...)."""
        if not self.regions:
            return [self.to_dict()]
        head = {
            "frame": self.frame.index,
            "t_capture": round(self.frame.t_capture, 6),
            "source": self.frame.source,
            "device": self.device,
        }
        return [
            {**head, **r.to_dict(), "timings_ms": {k: round(v * 1000, 3) for k, v in r.timings.items()}}
            for r in self.regions
            if r.classified
        ]

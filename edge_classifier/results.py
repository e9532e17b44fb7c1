"""The types that flow through the camera loop: Frame in, Result out, LabelEvent on a change."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .postprocess import Classification


@dataclass(frozen=True)
class Frame:
    """One captured frame.

    Attributes:
        rgb: the pixels, RGB uint8, shape (H, W, 3).
        index: frame number from the source, counting from 0 (dropped frames leave gaps).
        t_capture: ``time.monotonic()`` when the frame was captured.
        source: a short description of where it came from (``picamera``, ``clip.mp4``, ...).
    """

    rgb: np.ndarray
    index: int
    t_capture: float
    source: str = ""


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
    """

    id: int
    label: str
    score: float
    previous_id: int | None
    previous_label: str | None
    frame_index: int
    t_capture: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "id": self.id,
            "label": self.label,
            "score": round(float(self.score), 6),
            "previous_id": self.previous_id,
            "previous_label": self.previous_label,
            "frame_index": self.frame_index,
        }


@dataclass
class Result:
    """What the loop produced for one frame.

    Attributes:
        frame: the frame classified.
        classes: raw top-k for this frame, best first.
        scores: raw per-class probabilities for this frame.
        timings: seconds per stage (capture wait, preprocess, inference, postprocess, ...).
        smoothed: top-k after temporal smoothing (equal to ``classes`` when smoothing is off).
        event: set on the frame where the smoothed top label changed.
        device: where inference ran (``cpu``, ``usb:0``, ...).
    """

    frame: Frame
    classes: list[Classification]
    scores: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    smoothed: list[Classification] | None = None
    event: LabelEvent | None = None
    device: str = "cpu"

    @property
    def top(self) -> Classification | None:
        """The best smoothed class (raw when smoothing is off), or None below the threshold."""
        ranked = self.smoothed if self.smoothed is not None else self.classes
        return ranked[0] if ranked else None

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
        return d

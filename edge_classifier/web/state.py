"""What the web view knows about the running loop, updated in O(1) per frame from the inference thread.

:meth:`LiveState.update` is the only code the camera loop runs for the web view: it stores references (the
newest Result, its timings) in bounded deques and bumps counters. Everything that costs something (JPEG
encoding, percentiles, JSON) happens later, in the web view's own threads, on copies taken from here.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..results import Result
from ..stats import ordered_stages

#: Recent frames whose timings and latencies feed the live percentiles and FPS.
WINDOW = 256
#: Seconds of recent frames the live FPS is averaged over.
FPS_SECONDS = 5.0
#: The name of the one region there is today: the whole frame.
WHOLE_FRAME = "frame"


@dataclass(frozen=True)
class RegionState:
    """The current label of one region of the frame (today the only region is the whole frame).

    Attributes:
        name: the region's name (``frame`` for the whole frame).
        label: its current top label, or None below the score threshold.
        id: that label's class id.
        score: its score on the newest frame.
        since: wall-clock time (epoch seconds) the label took over.
        since_frame: the frame on which it took over.
    """

    name: str
    label: str | None
    id: int | None
    score: float | None
    since: float
    since_frame: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "name": self.name,
            "label": self.label,
            "id": self.id,
            "score": None if self.score is None else round(float(self.score), 4),
            "since": round(self.since, 3),
            "since_frame": self.since_frame,
        }


@dataclass
class _Track:
    """Where one region's label last changed (mutated only by the inference thread)."""

    label: str | None
    since: float
    since_frame: int


@dataclass(frozen=True)
class PendingEvent:
    """A label event waiting for the publisher thread to make its snapshot and announce it."""

    seq: int
    result: Result
    wall_time: float


class LiveState:
    """The newest Result and bounded recent history, for the web view's threads to read.

    Args:
        events: label events kept waiting for the publisher thread; beyond it the oldest waiting one is dropped.

    Attributes:
        latest: the newest Result (a reference: its frame stays alive until the next one replaces it).
        seq: Results seen; a reader compares it with the last one it handled.
        frames: same as ``seq`` (the name the status uses).
        dropped_frames: gaps in the source's frame numbers (live frames replaced before inference took them).
        changed: set when a region's label changed or a label event arrived; the publisher clears it.
        backend, model, camera: descriptions for the status (set by the sink's owner).
    """

    def __init__(self, events: int = 20) -> None:
        self.latest: Result | None = None
        self.seq = 0
        self.dropped_frames = 0
        self.t_start = time.monotonic()
        self.t_first: float | None = None
        self.t_last: float | None = None
        self.changed = threading.Event()
        self.backend: str | None = None
        self.model: str | None = None
        self.camera: str = "edge-classifier"
        self.pending: deque[PendingEvent] = deque(maxlen=events)
        self.events_seen = 0
        self.label_changes = 0
        self._tracks: dict[str, _Track] = {}
        self._last_index: int | None = None
        self._times: deque[float] = deque(maxlen=WINDOW)
        # (monotonic time of the result, capture-to-result latency in s, the Result's timings dict)
        self._recent: deque[tuple[float, float, Mapping[str, float]]] = deque(maxlen=WINDOW)

    @property
    def frames(self) -> int:
        """Results seen so far."""
        return self.seq

    # --- the inference thread ------------------------------------------------------------------------
    def update(self, result: Result) -> None:
        """Note one Result: O(1), no copies, no waiting on another thread (only Event.set on a label change)."""
        now = time.monotonic()
        index = result.frame.index
        if self._last_index is not None and index > self._last_index + 1:
            self.dropped_frames += index - self._last_index - 1
        self._last_index = index
        self._times.append(now)
        # capture -> result: what a viewer experiences as the label's delay behind the scene
        self._recent.append((now, max(0.0, now - result.frame.t_capture), result.timings))
        if self.t_first is None:
            self.t_first = now
        self.t_last = now
        self.latest = result
        self.seq += 1
        top = result.top
        label = top.label if top is not None else None
        track = self._tracks.get(WHOLE_FRAME)
        changed = False
        if track is None or track.label != label:
            self._tracks[WHOLE_FRAME] = _Track(label, time.time(), index)
            self.label_changes += 1
            changed = True
        if result.event is not None:
            self.events_seen += 1
            self.pending.append(PendingEvent(self.events_seen, result, time.time()))
            changed = True
        if changed:
            self.changed.set()

    # --- readers (web threads) ------------------------------------------------------------------------
    def regions(self) -> list[RegionState]:
        """The current state of each region (one today: the whole frame); empty before the first frame."""
        result = self.latest
        out = []
        for name, track in list(self._tracks.items()):
            top = result.top if result is not None else None
            same = top is not None and top.label == track.label
            out.append(
                RegionState(
                    name,
                    track.label,
                    top.id if same and top is not None else None,
                    top.score if same and top is not None else None,
                    track.since,
                    track.since_frame,
                )
            )
        return out

    def fps(self, now: float | None = None) -> float:
        """Frames per second over the last few seconds (falls to 0 when the loop stops delivering)."""
        now = time.monotonic() if now is None else now
        times = list(self._times)
        if not times or self.t_first is None:
            return 0.0
        start = max(now - FPS_SECONDS, self.t_first)
        if len(times) == self._times.maxlen and times[0] > start:
            start = times[0]  # the window holds fewer seconds than FPS_SECONDS at high rates
        count = sum(1 for t in times if t >= start)
        span = now - start
        if span <= 0:
            return 0.0
        return count / span

    def stage_percentiles(self) -> dict[str, tuple[float, float]]:
        """p50/p95 in seconds per stage (``wait`` left out, as in the loop's own line) over the recent frames."""
        per: dict[str, list[float]] = {}
        for _, _, timings in list(self._recent):
            for name, seconds in dict(timings).items():  # dict() copies atomically: the loop adds "sinks" later
                if name != "wait":
                    per.setdefault(name, []).append(seconds)
        return {name: _p50_p95(per[name]) for name in ordered_stages(per)}

    def latency(self, since: float | None = None) -> tuple[float, float]:
        """p50/p95 capture-to-result latency in seconds over the recent frames (those after ``since``, if given)."""
        return _p50_p95([lat for t, lat, _ in list(self._recent) if since is None or t >= since])

    def frames_since(self, since: float) -> int:
        """Results seen at or after the monotonic time ``since`` (within the recent window)."""
        return sum(1 for t in list(self._times) if t >= since)

    def last_frame_age(self, now: float | None = None) -> float | None:
        """Seconds since the newest Result, or None before the first."""
        if self.t_last is None:
            return None
        return (time.monotonic() if now is None else now) - self.t_last

    def take_pending(self) -> list[PendingEvent]:
        """The label events not yet announced, oldest first (removed from the waiting list)."""
        out = []
        while True:
            try:
                out.append(self.pending.popleft())
            except IndexError:
                return out


def _p50_p95(values: list[float]) -> tuple[float, float]:
    if not values:
        return (math.nan, math.nan)
    arr = np.asarray(values, dtype=np.float64)
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))

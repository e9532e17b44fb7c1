"""The web view's JSON: status (the MQTT status fields, from the same functions, plus the page's extras) and events.

``/api/status`` carries every field of the MQTT status message (:func:`edge_classifier.sinks.payload.status_payload`,
same ``schema_version``) and adds, as that schema allows, what the page shows: per-stage and capture-to-result
latency percentiles, dropped frames, the state of each region, the viewers, and the FPS/latency history.
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..sinks.payload import SCHEMA_VERSION, event_payload, status_payload
from .state import LiveState, PendingEvent


def _ms(seconds: float) -> float | None:
    return None if math.isnan(seconds) else round(seconds * 1000.0, 3)


@dataclass(frozen=True)
class HistoryPoint:
    """One second of the chart: wall time (epoch s), frames per second, p50 capture-to-result latency (ms)."""

    t: float
    fps: float
    latency_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"t": round(self.t, 3), "fps": round(self.fps, 2), "latency_ms": self.latency_ms}


class History:
    """The last ``seconds`` of one-second points for the chart (bounded)."""

    def __init__(self, seconds: int) -> None:
        self.points: deque[HistoryPoint] = deque(maxlen=seconds)
        self._last_seq = 0
        self._last_t: float | None = None

    def sample(self, state: LiveState, now: float | None = None) -> HistoryPoint:
        """Add the point for the time since the previous sample (call about once a second)."""
        now = time.monotonic() if now is None else now
        seq = state.seq
        span = now - self._last_t if self._last_t is not None else None
        fps = (seq - self._last_seq) / span if span else state.fps(now)
        p50, _ = state.latency(since=self._last_t if self._last_t is not None else now - 1.0)
        self._last_seq, self._last_t = seq, now
        point = HistoryPoint(time.time(), fps, _ms(p50))
        self.points.append(point)
        return point

    def to_dict(self) -> dict[str, Any]:
        """Columns for the chart: ``t`` (epoch s), ``fps``, ``latency_ms``."""
        points = list(self.points)
        return {
            "interval_s": 1,
            "t": [round(p.t, 3) for p in points],
            "fps": [round(p.fps, 2) for p in points],
            "latency_ms": [p.latency_ms for p in points],
        }


def status(
    state: LiveState,
    *,
    cpu_temp_c: float | None,
    viewers: int,
    max_viewers: int,
    event_streams: int,
    stream_fps: float,
    dropped_messages: int,
    device: str | None = None,
) -> dict[str, Any]:
    """The status: the MQTT status fields (``status_payload``) plus the web view's extras."""
    result = state.latest
    top = result.top if result is not None else None
    regions = [r.to_dict() for r in state.regions()]
    lat50, lat95 = state.latency()
    age = state.last_frame_age()
    return status_payload(
        state.camera,
        "online",
        fps=round(state.fps(), 2),
        frames=state.frames,
        label=top.label if top is not None else None,
        backend=state.backend,
        device=device if device is not None else (result.device if result is not None else None),
        model=state.model,
        cpu_temp_c=cpu_temp_c,
        uptime_s=round(time.monotonic() - state.t_start, 1),
        dropped_messages=dropped_messages,
        # The web view's extras (new fields are allowed within a schema version).
        score=round(float(top.score), 4) if top is not None else None,
        dropped_frames=state.dropped_frames,
        last_frame_age_s=None if age is None else round(age, 3),
        latency_ms={"p50": _ms(lat50), "p95": _ms(lat95)},
        stages_ms={name: [_ms(p50), _ms(p95)] for name, (p50, p95) in state.stage_percentiles().items()},
        regions=regions,
        events=state.events_seen,
        viewers={"mjpeg": viewers, "max_mjpeg": max_viewers, "event_streams": event_streams},
        stream_fps=stream_fps,
    )


def event_record(pending: PendingEvent, camera: str, has_snapshot: bool) -> dict[str, Any]:
    """The label-event message (the MQTT/webhook ``event_payload``) with its number, time and snapshot URL."""
    payload = event_payload(pending.result, camera)
    if payload is None:  # pragma: no cover - a PendingEvent always carries an event
        raise ValueError("a pending event without a LabelEvent")
    payload["time"] = _iso(pending.wall_time)  # when the loop saw it, not when the publisher got to it
    payload["seq"] = pending.seq
    payload["snapshot"] = f"snapshot.jpg?event={pending.seq}" if has_snapshot else None
    return payload


def events_document(events: list[dict[str, Any]]) -> dict[str, Any]:
    """``/api/events``: the recent label events, newest first."""
    return {"schema_version": SCHEMA_VERSION, "type": "events", "events": events}


def _iso(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).isoformat()

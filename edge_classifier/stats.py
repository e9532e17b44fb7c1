"""Loop statistics in bounded memory: per-stage latency percentiles, FPS, drop counts, and their text forms.

The once-a-second line uses a fixed window of recent samples; the end-of-run summary uses a
fixed log-spaced histogram per stage, so memory is the same after ten frames or ten million.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Stages in display order; any other stage a result carries is shown after these.
STAGES: tuple[str, ...] = ("capture", "preprocess", "inference", "postprocess", "sinks")


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0..100) of ``values``, or NaN when there are none."""
    arr = np.fromiter(values, dtype=np.float64)
    return float(np.percentile(arr, q)) if arr.size else math.nan


class LogHistogram:
    """Durations in fixed log-spaced bins (1 us .. 100 s, ~2.3% wide): percentiles in constant memory."""

    LOW, HIGH, BINS = 1e-6, 100.0, 800

    def __init__(self) -> None:
        self.counts = np.zeros(self.BINS + 2, dtype=np.int64)  # plus underflow and overflow bins
        self._log_low = math.log(self.LOW)
        self._step = (math.log(self.HIGH) - self._log_low) / self.BINS
        self.n = 0

    def add(self, seconds: float) -> None:
        """Count one duration."""
        if seconds <= self.LOW:
            i = 0
        elif seconds >= self.HIGH:
            i = self.BINS + 1
        else:
            i = 1 + int((math.log(seconds) - self._log_low) / self._step)
        self.counts[i] += 1
        self.n += 1

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100), as the geometric centre of its bin; NaN when empty."""
        if self.n == 0:
            return math.nan
        rank = max(1, math.ceil(q / 100.0 * self.n))
        i = int(np.searchsorted(np.cumsum(self.counts), rank))
        if i == 0:
            return self.LOW
        if i > self.BINS:
            return self.HIGH
        return math.exp(self._log_low + (i - 0.5) * self._step)


@dataclass
class RunStats:
    """What a run did, returned by :func:`edge_classifier.session.run_pipeline`.

    Attributes:
        frames: frames classified.
        seconds: the loop's own wall time: from the start of the loop (the sinks started) to its last frame. The
            sinks' start-up and the drain at the end are left out, so ``fps`` is the rate the loop ran at.
        shutdown_seconds: wall time spent after the last frame: releasing the source, draining and closing the sinks.
        dropped: live frames replaced by a newer one before inference took them.
        decode_errors: frames the source could not decode (skipped).
        sink_dropped: per sink (by its name), what it lost: results a blocking sink's full queue dropped, messages
            or events a network sink never sent (a full buffer, or still queued at the end).
        events: smoothed label changes.
        stages: per stage, ``(p50, p95)`` in seconds over the whole run.
        stopped_by: why the run ended: ``end`` (source finished), ``max_frames``, ``SIGINT``,
            ``SIGTERM``, ``stop`` (a sink or caller asked), or ``error``.
        error: the error that ended the run, if any.
        device: where inference ran at the end (``cpu`` after an Edge TPU fallback).
    """

    frames: int = 0
    seconds: float = 0.0
    shutdown_seconds: float = 0.0
    dropped: int = 0
    decode_errors: int = 0
    sink_dropped: dict[str, int] = field(default_factory=dict)
    events: int = 0
    stages: dict[str, tuple[float, float]] = field(default_factory=dict)
    stopped_by: str = "end"
    error: str | None = None
    device: str = "cpu"

    @property
    def fps(self) -> float:
        """Frames classified per second of the loop's own wall time (``seconds``)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (milliseconds for the stages)."""
        return {
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "shutdown_seconds": round(self.shutdown_seconds, 3),
            "fps": round(self.fps, 2),
            "dropped": self.dropped,
            "decode_errors": self.decode_errors,
            "sink_dropped": dict(self.sink_dropped),
            "events": self.events,
            "stages_ms": {k: [round(a * 1000, 3), round(b * 1000, 3)] for k, (a, b) in self.stages.items()},
            "stopped_by": self.stopped_by,
            "error": self.error,
            "device": self.device,
        }


def ordered_stages(names: Iterable[str]) -> list[str]:
    """Stage names in display order: the known ones first, then the rest sorted."""
    present = set(names)
    return [s for s in STAGES if s in present] + sorted(present - set(STAGES))


def format_line(
    fps: float, stages: Mapping[str, tuple[float, float]], dropped: int, dropped_total: int, device: str, extra: str = ""
) -> str:
    """The once-a-second status line: FPS, p50/p95 per stage in ms, drops, device."""
    parts = [f"{fps:6.1f} fps"]
    parts += [
        f"{name} {p50 * 1000:.1f}/{p95 * 1000:.1f}" for name, (p50, p95) in ((n, stages[n]) for n in ordered_stages(stages))
    ]
    parts.append(f"dropped {dropped} (total {dropped_total})")
    parts.append(device)
    if extra:
        parts.append(extra)
    return "[stats] " + " | ".join(parts) + "  (ms p50/p95)"


#: A shutdown longer than this is shown in the summary (a slow drain is worth knowing about).
SHOW_SHUTDOWN_SECONDS = 0.5


def format_summary(stats: RunStats, source: str = "") -> str:
    """The end-of-run summary, several lines (``source`` must already be redacted: it is printed as given)."""
    lost = {name: n for name, n in stats.sink_dropped.items() if n}
    lines = [
        f"[summary] {stats.frames} frames in {stats.seconds:.1f} s = {stats.fps:.1f} fps"
        + (f" from {source}" if source else "")
        + f" on {stats.device}; stopped by {stats.stopped_by}",
        f"[summary] dropped {stats.dropped} stale frames, {stats.decode_errors} undecodable, "
        f"{sum(lost.values())} by the outputs"
        + (f" ({', '.join(f'{name}: {n}' for name, n in lost.items())})" if lost else "")
        + f", {stats.events} label events",
    ]
    if stats.shutdown_seconds >= SHOW_SHUTDOWN_SECONDS:
        lines.append(f"[summary] closing the source and the outputs took {stats.shutdown_seconds:.1f} s after the last frame")
    for name in ordered_stages(stats.stages):
        p50, p95 = stats.stages[name]
        lines.append(f"[summary]   {name:<12} p50 {p50 * 1000:8.2f} ms   p95 {p95 * 1000:8.2f} ms")
    # The error itself is raised to the caller (the CLI prints it once, with its fix).
    return "\n".join(lines)


class LoopStats:
    """Collects per-frame timings; windows for the live line, histograms for the summary.

    Args:
        window: recent samples kept per stage for the live line.
    """

    def __init__(self, window: int = 256) -> None:
        self.window = window
        self.recent: dict[str, deque[float]] = {}
        self.hist: dict[str, LogHistogram] = {}
        self.frames = 0
        self._line_frames = 0
        self._line_dropped = 0

    def add(self, timings: Mapping[str, float]) -> None:
        """Record one frame's stage durations (seconds)."""
        self.frames += 1
        for name, seconds in timings.items():
            if name not in self.recent:
                self.recent[name] = deque(maxlen=self.window)
                self.hist[name] = LogHistogram()
            self.recent[name].append(seconds)
            self.hist[name].add(seconds)

    def recent_stages(self) -> dict[str, tuple[float, float]]:
        """p50/p95 per stage over the recent window."""
        out = {}
        for name, values in self.recent.items():
            arr = np.asarray(values, dtype=np.float64)
            out[name] = (float(np.percentile(arr, 50)), float(np.percentile(arr, 95))) if arr.size else (math.nan, math.nan)
        return out

    def run_stages(self) -> dict[str, tuple[float, float]]:
        """p50/p95 per stage over the whole run."""
        return {name: (h.percentile(50), h.percentile(95)) for name, h in self.hist.items()}

    def line(self, interval: float, dropped_total: int, device: str, extra: str = "") -> str:
        """The status line for the last ``interval`` seconds; resets the interval counters."""
        frames = self.frames - self._line_frames
        dropped = dropped_total - self._line_dropped
        self._line_frames, self._line_dropped = self.frames, dropped_total
        fps = frames / interval if interval > 0 else 0.0
        return format_line(fps, self.recent_stages(), dropped, dropped_total, device, extra)

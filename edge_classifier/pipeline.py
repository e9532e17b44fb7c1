"""The camera loop: source -> classifier -> smoother -> sinks, with bounded memory and a clean shutdown.

Threads and buffers, on purpose:

- capture runs in its own thread and hands frames over through a one-frame slot. A live source
  (camera, stream) overwrites the slot, so a slow model drops stale frames (counted) instead of
  queueing them: latency and memory stay bounded. A file or folder waits for the slot instead, so
  every frame is classified.
- inference runs in the caller's thread (interpreters are not thread-safe, and the caller may
  want the GIL-free invoke on its own core).
- a sink that may block (disk, network) declares ``blocking = True`` and gets a bounded queue and a
  thread of its own; when that queue is full the result is dropped for that sink and counted.
"""

from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from . import sources as _sources
from .errors import AcceleratorLostError, CameraTimeoutError, EdgeClassifierError, SinkError
from .postprocess import classes_from_scores
from .results import Frame, Result
from .sinks.base import Sink
from .smoothing import Smoother
from .sources.base import Source
from .stats import LoopStats, RunStats, format_summary

log = logging.getLogger(__name__)

__all__ = ["FrameLoop", "FrameSlot", "QueuedSink", "run_pipeline", "stream"]


@dataclass(frozen=True)
class _Captured:
    frame: Frame
    read_seconds: float


class _End:
    """Marks the end of the source in the slot."""


_END = _End()


class FrameSlot:
    """A one-frame hand-over between the capture thread and the inference thread.

    ``put(..., wait=False)`` replaces an untaken frame (newest wins; the stale one is counted in
    ``dropped``); ``put(..., wait=True)`` waits until the previous frame is taken (files: no loss).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: _Captured | None = None
        self._ended = False
        self._error: BaseException | None = None
        self.dropped = 0

    def put(self, item: _Captured, *, wait: bool, stop: threading.Event) -> None:
        """Offer a frame; see the class docstring for ``wait``."""
        with self._cond:
            while wait and self._item is not None and not stop.is_set():
                self._cond.wait(0.1)
            if wait and stop.is_set():
                return  # the loop is ending: this frame is not wanted, and was not dropped
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify_all()

    def finish(self, error: BaseException | None = None) -> None:
        """The source ended (or failed with ``error``): wake the consumer."""
        with self._cond:
            self._ended = True
            self._error = error
            self._cond.notify_all()

    def take(self, timeout: float) -> _Captured | _End | None:
        """The newest frame; ``_END`` when the source is done; None when ``timeout`` passed first.

        Raises:
            BaseException: whatever ended the capture thread, re-raised in the consumer.
        """
        with self._cond:
            if self._item is None and not self._ended:
                self._cond.wait(timeout)
            if self._item is not None:
                item, self._item = self._item, None
                self._cond.notify_all()
                return item
            if self._ended:
                if self._error is not None:
                    raise self._error
                return _END
            return None


def _device(classifier: Any) -> str:
    try:
        return str(classifier.backend.device)
    except (AttributeError, EdgeClassifierError):
        return "cpu"


class FrameLoop:
    """One run of source -> classifier -> smoother, iterated for Results; see :func:`stream`.

    Attributes:
        source: the Source being read.
        dropped: live frames replaced before inference took them.
        stopped_by: why the loop ended (``end``, ``max_frames``, ``SIGINT``, ``stop``, ``error``, ...).
        device: where the last frame was classified.
    """

    def __init__(
        self,
        classifier: Any,
        source: str | int | Path | Source,
        *,
        smoothing: float = 0.0,
        hysteresis: int = 3,
        max_frames: int | None = None,
        min_score: float | None = None,
        stall_timeout: float = 30.0,
        source_options: dict[str, Any] | None = None,
    ) -> None:
        self.classifier = classifier
        self.source = _sources.open(source, **(source_options or {}))
        spec = classifier.spec
        self.smoothing = smoothing
        self.smoother = Smoother(
            spec.label,
            smoothing=smoothing,
            hysteresis=hysteresis,
            min_score=classifier.min_score if min_score is None else min_score,
        )
        self.max_frames = max_frames
        self.stall_timeout = stall_timeout
        self.slot = FrameSlot()
        self.stopped_by = "end"
        self.device = _device(classifier)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def dropped(self) -> int:
        """Live frames replaced by a newer one before inference took them."""
        return self.slot.dropped

    def stop(self, reason: str = "stop") -> None:
        """Ask the loop to end after the current frame (thread- and signal-safe)."""
        if not self._stop.is_set():
            self.stopped_by = reason
            self._stop.set()

    # --- capture thread -----------------------------------------------------------------
    def _capture(self) -> None:
        try:
            frames = iter(self.source)
            while not self._stop.is_set():
                t0 = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                self.slot.put(_Captured(frame, time.perf_counter() - t0), wait=not self.source.live, stop=self._stop)
            self.slot.finish()
        except BaseException as exc:  # noqa: BLE001 - handed to the inference thread, which raises it
            self.slot.finish(exc)

    # --- inference thread ---------------------------------------------------------------
    def _predict(self, frame: Frame) -> Any:
        try:
            return self.classifier.predict_rgb(frame.rgb)
        except AcceleratorLostError as exc:
            log.warning("frame %d: accelerator lost (%s); retrying on what the classifier has left", frame.index, exc.cause)
            try:
                pred = self.classifier.predict_rgb(frame.rgb)
            except EdgeClassifierError as again:
                log.error("the classifier cannot answer after losing the accelerator: %s", again)
                raise again from exc
            self.device = _device(self.classifier)
            log.warning("continuing on %s after the accelerator was lost", self.device)
            return pred

    def _next_frame(self) -> _Captured | None:
        waited = 0.0
        while not self._stop.is_set():
            item = self.slot.take(timeout=0.1)
            if isinstance(item, _Captured):
                return item
            if isinstance(item, _End):
                return None
            waited += 0.1
            if waited >= self.stall_timeout:
                raise CameraTimeoutError(
                    self.source.name,
                    f"delivered no frame for {self.stall_timeout:g} s",
                    "check the camera or stream; for slow sources raise stall_timeout",
                )
        return None

    def __iter__(self) -> Iterator[Result]:
        return self.results()

    def results(self) -> Generator[Result, None, None]:
        """The Results, one per classified frame; closing the generator releases the source."""
        spec = self.classifier.spec
        w_h = spec.input_size
        self.source.prefer_size(w_h[1], w_h[0])
        self.source.open()
        try:
            self._thread = threading.Thread(target=self._capture, name="edge-classifier-capture", daemon=True)
            self._thread.start()
            count = 0
            while self.max_frames is None or count < self.max_frames:
                t_wait = time.perf_counter()
                item = self._next_frame()
                if item is None:
                    break
                wait = time.perf_counter() - t_wait
                frame = item.frame
                pred = self._predict(frame)
                t0 = time.perf_counter()
                smoothed_scores, event = self.smoother.update(pred.scores, frame.index, frame.t_capture)
                smoothed = (
                    classes_from_scores(smoothed_scores, spec, self.classifier.top_k, self.smoother.min_score)
                    if self.smoothing > 0
                    else None
                )
                timings = {"capture": item.read_seconds, "wait": wait, **pred.timings}
                timings["postprocess"] = timings.get("postprocess", 0.0) + time.perf_counter() - t0
                count += 1
                yield Result(frame, pred.classes, pred.scores, timings, smoothed, event, self.device)
            else:
                self.stopped_by = "max_frames"
        except GeneratorExit:
            raise
        except BaseException:
            self.stopped_by = "error" if self.stopped_by == "end" else self.stopped_by
            raise
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self._stop.set()
        self.source.interrupt()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10.0)
            if thread.is_alive():
                # Releasing a device under a blocked native read can crash; the OS frees it at exit.
                log.warning("%s: the capture thread is still blocked in a read; leaving the device to process exit", self.source.name)
                return
        self.source.close()


def stream(
    classifier: Any,
    source: str | int | Path | Source,
    *,
    smoothing: float = 0.0,
    hysteresis: int = 3,
    max_frames: int | None = None,
    min_score: float | None = None,
    stall_timeout: float = 30.0,
    source_options: dict[str, Any] | None = None,
) -> Iterator[Result]:
    """Classify frames from ``source`` as they come; the source is opened and released here.

    Args:
        classifier: a :class:`~edge_classifier.Classifier` (anything with ``predict_rgb``, ``spec``,
            ``top_k`` and ``min_score``).
        source: a Source, or anything :func:`edge_classifier.sources.open` accepts.
        smoothing: EMA weight kept from past frames, in [0, 1): 0 is off (raw scores), 0.6 is
            moderate. ``Result.smoothed`` holds the smoothed top-k when it is on.
        hysteresis: frames a new top label must lead before ``Result.event`` announces it.
        max_frames: stop after this many classified frames.
        min_score: threshold for smoothed labels and events (default: the classifier's).
        stall_timeout: seconds without any frame before :class:`CameraTimeoutError`.
        source_options: keyword arguments for ``sources.open`` when ``source`` is not a Source.

    Yields:
        One :class:`~edge_classifier.results.Result` per classified frame.

    Raises:
        SourceError: the source cannot be opened or fails mid-way (its own child class).
        AcceleratorLostError: the accelerator died and the classifier has no fallback.
    """
    loop = FrameLoop(
        classifier,
        source,
        smoothing=smoothing,
        hysteresis=hysteresis,
        max_frames=max_frames,
        min_score=min_score,
        stall_timeout=stall_timeout,
        source_options=source_options,
    )
    return iter(loop)


class QueuedSink:
    """Runs a blocking sink in its own thread behind a bounded queue; drops (and counts) when full.

    Args:
        sink: the sink to wrap.
        maxsize: results the queue holds (each keeps its frame alive: keep it small).
    """

    blocking = False

    def __init__(self, sink: Sink, maxsize: int = 16) -> None:
        self.sink = sink
        self.name = type(sink).__name__
        self.dropped = 0
        self._queue: queue.Queue[Result | None] = queue.Queue(maxsize=maxsize)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=f"sink-{self.name}", daemon=True)

    @property
    def stop_requested(self) -> bool:
        """Passes the wrapped sink's request to end the run."""
        return bool(getattr(self.sink, "stop_requested", False))

    def start(self) -> None:
        """Start the wrapped sink, then its thread."""
        self.sink.start()
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self.sink.write(item)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the loop's thread on the next write
                self._error = exc
                return

    def _raise_error(self) -> None:
        if self._error is not None:
            exc, self._error = self._error, None
            if isinstance(exc, EdgeClassifierError):
                raise exc
            raise SinkError(self.name, f"failed: {exc}", "see the error above; the other sinks were closed cleanly") from exc

    def write(self, result: Result) -> None:
        """Queue ``result``; when the queue is full it is dropped for this sink and counted."""
        self._raise_error()
        try:
            self._queue.put_nowait(result)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("%s cannot keep up: %d results dropped so far", self.name, self.dropped)

    def close(self, timeout: float = 10.0) -> None:
        """Let the queue drain (up to ``timeout`` s), then close the wrapped sink."""
        try:
            if self._thread.is_alive():
                try:
                    self._queue.put(None, timeout=timeout)
                except queue.Full:
                    log.warning("%s did not drain within %g s", self.name, timeout)
                self._thread.join(timeout)
        finally:
            self.sink.close()
        self._raise_error()


def _wrap(sinks: Iterable[Sink], queue_size: int) -> list[Any]:
    return [QueuedSink(s, queue_size) if getattr(s, "blocking", False) else s for s in sinks]


class _Signals:
    """SIGINT/SIGTERM end the loop after the current frame; a second SIGINT interrupts at once."""

    def __init__(self, loop: FrameLoop) -> None:
        self.loop = loop
        self.saved: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.saved[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.loop.stop(signal.Signals(signum).name)
        # A second Ctrl-C should not be swallowed if the clean stop is stuck.
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def run_pipeline(
    classifier: Any,
    source: str | int | Path | Source,
    sinks: Sequence[Sink] = (),
    *,
    smoothing: float = 0.0,
    hysteresis: int = 3,
    max_frames: int | None = None,
    min_score: float | None = None,
    stats_interval: float = 1.0,
    stats_file: TextIO | None = None,
    handle_signals: bool = True,
    queue_size: int = 16,
    stall_timeout: float = 30.0,
    source_options: dict[str, Any] | None = None,
) -> RunStats:
    """Run source -> classifier -> sinks until the source ends, ``max_frames``, a signal or a sink says stop.

    Prints a status line every ``stats_interval`` seconds and a summary at the end on
    ``stats_file`` (stderr by default; ``stats_interval=0`` turns the line off). SIGINT and SIGTERM
    end the run cleanly when called from the main thread: the source is released, every sink
    closed (recordings finalised, files flushed) and the summary printed.

    Args:
        sinks: objects following :class:`~edge_classifier.sinks.base.Sink`.
        queue_size: results a blocking sink's queue holds before it drops.
        Other arguments: as for :func:`stream`.

    Returns:
        What the run did (frames, FPS, per-stage p50/p95, drops, why it stopped).

    Raises:
        EdgeClassifierError: a source, sink or accelerator failure (after the summary is printed).
    """
    out = stats_file if stats_file is not None else sys.stderr
    loop = FrameLoop(
        classifier,
        source,
        smoothing=smoothing,
        hysteresis=hysteresis,
        max_frames=max_frames,
        min_score=min_score,
        stall_timeout=stall_timeout,
        source_options=source_options,
    )
    wrapped = _wrap(sinks, queue_size)
    stats = LoopStats()
    run = RunStats(device=loop.device)
    started: list[Any] = []
    t_start = time.monotonic()
    signals = _Signals(loop) if handle_signals else None
    results = loop.results()
    try:
        if signals is not None:
            signals.__enter__()
        for s in wrapped:
            s.start()
            started.append(s)
        last_line = time.monotonic()
        for result in results:
            t0 = time.perf_counter()
            for s in wrapped:
                s.write(result)
            result.timings["sinks"] = time.perf_counter() - t0
            stats.add({k: v for k, v in result.timings.items() if k != "wait"})
            if result.event is not None:
                run.events += 1
            if any(getattr(s, "stop_requested", False) for s in wrapped):
                loop.stop("stop")
            now = time.monotonic()
            if stats_interval > 0 and now - last_line >= stats_interval:
                print(stats.line(now - last_line, loop.dropped, result.device), file=out, flush=True)
                last_line = now
    except BaseException as exc:
        run.error = str(exc) if isinstance(exc, EdgeClassifierError) else f"{type(exc).__name__}: {exc}"
        run.stopped_by = "SIGINT" if isinstance(exc, KeyboardInterrupt) else "error"
        raise
    finally:
        results.close()  # releases the source now, not when the generator is collected
        close_error = _close_all(started)
        if signals is not None:
            signals.__exit__()
        run.frames = stats.frames
        run.seconds = time.monotonic() - t_start
        run.dropped = loop.dropped
        run.decode_errors = loop.source.decode_errors
        run.sink_dropped = {s.name: s.dropped for s in wrapped if isinstance(s, QueuedSink)}
        run.stages = stats.run_stages()
        run.device = loop.device
        if run.error is None:
            run.stopped_by = loop.stopped_by
            if close_error is not None:
                run.error, run.stopped_by = str(close_error), "error"
        print(format_summary(run, loop.source.name), file=out, flush=True)
    if close_error is not None:
        raise close_error
    return run


def _close_all(sinks: Sequence[Any]) -> EdgeClassifierError | None:
    """Close every sink even when one fails; the first failure is returned to be raised."""
    first: EdgeClassifierError | None = None
    for s in sinks:
        try:
            s.close()
        except Exception as exc:  # noqa: BLE001 - every sink must be closed; the first error is reported
            log.error("closing %s failed: %s", type(s).__name__, exc)
            if first is None:
                first = exc if isinstance(exc, EdgeClassifierError) else SinkError(type(s).__name__, f"close failed: {exc}")
    return first

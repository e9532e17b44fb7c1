"""Running a session: the frame loop into a group of sinks, with signals, a status line and a summary.

SIGINT and SIGTERM end a session cleanly when it runs in the main thread: :func:`stop_on_signals` is a context
manager, so the previous handlers come back on every exit path. Blocking sinks get a bounded queue each
(:class:`~edge_classifier.sinks.worker.QueuedSink`); see :mod:`edge_classifier.loop` for the frame loop itself.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any, TextIO

from .errors import EdgeClassifierError
from .loop import FrameClassifier, FrameLoop, SourceSpec
from .loop_options import LoopOptions, options_from_keywords
from .redact import redact_text, redact_url
from .sinks.base import Sink
from .sinks.group import SinkGroup
from .stats import LoopStats, RunStats, format_summary

log = logging.getLogger(__name__)

__all__ = ["run_pipeline", "stop_on_signals"]


@contextlib.contextmanager
def stop_on_signals(loop: FrameLoop) -> Iterator[None]:
    """While inside, SIGINT/SIGTERM end ``loop`` after the current frame; a second SIGINT interrupts at once.

    Outside the main thread (where Python cannot install handlers) this does nothing. The previous handlers
    are restored on exit, whatever ends the block.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        loop.stop(signal.Signals(signum).name)
        # A second Ctrl-C should not be swallowed if the clean stop is stuck.
        signal.signal(signal.SIGINT, signal.default_int_handler)

    saved: dict[signal.Signals, Any] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            saved[sig] = signal.signal(sig, handle)
        yield
    finally:
        for saved_sig, previous in saved.items():
            signal.signal(saved_sig, previous)


def run_pipeline(
    classifier: FrameClassifier,
    source: SourceSpec,
    sinks: Sequence[Sink] = (),
    options: LoopOptions | None = None,
    *,
    stats_interval: float = 1.0,
    stats_file: TextIO | None = None,
    handle_signals: bool = True,
    queue_size: int = 16,
    **deprecated: object,
) -> RunStats:
    """Run source -> classifier -> sinks until the source ends, ``max_frames``, a signal or a sink says stop.

    Prints a status line every ``stats_interval`` seconds and a summary at the end on
    ``stats_file`` (stderr by default; ``stats_interval=0`` turns the line off). SIGINT and SIGTERM
    end the run cleanly when called from the main thread: the source is released, every sink
    closed (recordings finalised, files flushed) and the summary printed. A sink that asks to stop
    ends the run the same way (``stopped_by`` is its reason: ``stdout closed`` when the JSON lines
    reader went away). What the sinks lost (full queues, messages never sent) is in ``sink_dropped``.

    Args:
        classifier: a :class:`~edge_classifier.Classifier` (any :class:`~edge_classifier.loop.FrameClassifier`).
        source: a Source, or anything :func:`edge_classifier.sources.open` accepts.
        sinks: objects following :class:`~edge_classifier.sinks.base.Sink`.
        options: smoothing, hysteresis, max_frames, ... (:class:`~edge_classifier.LoopOptions`).
        stats_interval: seconds between status lines; 0 for none.
        stats_file: where status lines and the summary go (stderr by default).
        handle_signals: end cleanly on SIGINT/SIGTERM (main thread only).
        queue_size: results a blocking sink's queue holds before it drops.
        **deprecated: the loop options as keywords, the old call form (a DeprecationWarning).

    Returns:
        What the run did (frames, FPS over the loop's own time, per-stage p50/p95, drops, why it stopped).

    Raises:
        EdgeClassifierError: a source, sink or accelerator failure (after the summary is printed);
            ConfigError for an option out of range, before anything opens.
    """
    opts = options_from_keywords(options, deprecated, "run_pipeline")
    out = stats_file if stats_file is not None else sys.stderr
    loop = FrameLoop(classifier, source, opts)
    for sink in sinks:  # a clip sink's pre-roll sees every captured frame, at the camera's rate
        tap = getattr(sink, "on_capture", None)
        if callable(tap):
            loop.add_tap(tap)
    group = SinkGroup(sinks, queue_size)
    stats = LoopStats()
    run = RunStats(device=loop.device)
    close_error: EdgeClassifierError | None = None
    interrupted: KeyboardInterrupt | None = None
    t_start = t_end = time.monotonic()
    signals: contextlib.AbstractContextManager[None] = stop_on_signals(loop) if handle_signals else contextlib.nullcontext()
    with signals:
        results = loop.results()
        try:
            group.start()
            # The run's time is the loop's own: from here to its last frame, not the sinks' start-up (a broker's
            # connect timeout) nor the drain at the end (a dead webhook's retries), which would skew the FPS.
            t_start = last_line = time.monotonic()
            for result in results:
                if stats.frames == 0 and stats_interval > 0:
                    _say_source_mode(loop.source, out)
                t0 = time.perf_counter()
                group.write(result)
                result.timings["sinks"] = time.perf_counter() - t0
                stats.add({k: v for k, v in result.timings.items() if k != "wait"})
                run.events += len(result.events)  # the frame's label event and each region's state event
                if group.stop_requested:
                    loop.stop(group.stop_reason)
                now = time.monotonic()
                if stats_interval > 0 and now - last_line >= stats_interval:
                    print(stats.line(now - last_line, loop.dropped, result.device), file=out, flush=True)
                    last_line = now
        except BaseException as exc:
            run.error = (
                redact_text(str(exc))
                if isinstance(exc, EdgeClassifierError)
                else f"{type(exc).__name__}: {redact_text(str(exc))}"
            )
            run.stopped_by = "SIGINT" if isinstance(exc, KeyboardInterrupt) else "error"
            raise
        finally:
            t_end = time.monotonic()
            try:
                results.close()  # releases the source now, not when the generator is collected
            finally:
                # Every sink is closed (files finalised) on every path, a second Ctrl-C included.
                try:
                    close_error = group.close()
                except KeyboardInterrupt as exc:
                    interrupted = exc
            run.frames = stats.frames
            run.seconds = t_end - t_start
            run.shutdown_seconds = time.monotonic() - t_end
            run.dropped = loop.dropped
            run.decode_errors = loop.source.decode_errors
            run.sink_dropped = group.dropped
            run.stages = stats.run_stages()
            run.device = loop.device
            if run.error is None:
                run.stopped_by = loop.stopped_by
                if close_error is not None:
                    run.error, run.stopped_by = redact_text(str(close_error)), "error"
            elif close_error is not None:
                # Another error ends the run and is the one raised; this one must not vanish.
                log.error("%s", redact_text(str(close_error)))
            print(format_summary(run, redact_url(loop.source.name)), file=out, flush=True)
            if interrupted is not None and run.error is None:
                raise interrupted
    if close_error is not None:
        raise close_error
    return run


def _say_source_mode(source: Any, out: TextIO) -> None:
    """Once, at the first frame: the capture mode the source chose (a webcam's mode, a reduced JPEG decode), if any."""
    mode = getattr(source, "mode", "")
    if isinstance(mode, str) and mode:
        print(f"[source] {getattr(source, 'name', 'source')}: {mode}", file=out, flush=True)

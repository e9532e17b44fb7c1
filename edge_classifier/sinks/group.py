"""The sinks of one run, as one: blocking ones behind a queue, started together, each closed on every exit path."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from ..errors import EdgeClassifierError, SinkError
from ..redact import redact_text
from ..results import Result
from .base import Sink
from .files import os_cause
from .worker import QueuedSink, sink_name

log = logging.getLogger(__name__)

__all__ = ["SinkGroup"]


class SinkGroup:
    """Every sink of a run: those that declare ``blocking = True`` get a :class:`QueuedSink` of their own.

    Args:
        sinks: objects following :class:`~edge_classifier.sinks.base.Sink`.
        queue_size: results a blocking sink's queue holds before it drops.
    """

    def __init__(self, sinks: Iterable[Sink], queue_size: int = 16) -> None:
        # A sink that puts file names on events (the clip sink: ``names_files``) is written to first, so the
        # records the others write or queue already carry them.
        ordered = sorted(sinks, key=lambda s: not getattr(s, "names_files", False))
        self.sinks: list[Any] = [QueuedSink(s, queue_size) if getattr(s, "blocking", False) else s for s in ordered]
        self._started: list[Any] = []

    def start(self) -> None:
        """Start each sink in order; those started before a failing one are still closed by :meth:`close`."""
        for s in self.sinks:
            s.start()
            self._started.append(s)

    def write(self, result: Result) -> None:
        """Hand ``result`` to every sink (a blocking one only queues it)."""
        for s in self._started:
            s.write(result)

    @property
    def stop_requested(self) -> bool:
        """True when a sink asks to end the run (``q`` in the preview window, stdout's reader gone, ...)."""
        return any(getattr(s, "stop_requested", False) for s in self._started)

    @property
    def stop_reason(self) -> str:
        """Why the first sink that asks to end the run does (its ``stop_reason``; ``stop`` when it does not say)."""
        for s in self._started:
            if getattr(s, "stop_requested", False):
                return str(getattr(s, "stop_reason", "stop"))
        return "stop"

    @property
    def dropped(self) -> dict[str, int]:
        """Per sink (by :func:`~edge_classifier.sinks.worker.sink_name`), what it lost: results its full queue dropped,
        messages or events never sent (a full buffer, or still queued at close)."""
        out: dict[str, int] = {}
        for s in self.sinks:
            n = getattr(s, "dropped", None)
            if isinstance(n, int) and not isinstance(n, bool):
                out[s.name if isinstance(s, QueuedSink) else sink_name(s)] = n
        return out

    def close(self) -> EdgeClassifierError | None:
        """Close every started sink, even when one fails or Ctrl-C comes meanwhile; safe to call twice.

        Returns:
            The first failure, as an EdgeClassifierError (to be raised by the caller once the run is summarised), or
            None. Later failures are logged, in the user's terms.

        Raises:
            KeyboardInterrupt: a Ctrl-C during the close, re-raised once every sink is closed.
        """
        first: EdgeClassifierError | None = None
        interrupted: BaseException | None = None
        started, self._started = self._started, []
        for s in started:
            try:
                s.close()
            except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every sink must be closed, files finalised
                if isinstance(exc, KeyboardInterrupt):
                    interrupted = interrupted or exc
                    continue
                error = as_sink_error(s, exc)
                if first is None:
                    first = error
                else:
                    log.error("%s", redact_text(str(error)))
        if interrupted is not None:
            raise interrupted
        return first


def as_sink_error(sink: object, exc: Exception) -> EdgeClassifierError:
    """``exc`` as the package's error: an EdgeClassifierError as it is, an OSError in the user's terms, else a SinkError."""
    if isinstance(exc, EdgeClassifierError):
        return exc
    if isinstance(exc, OSError):
        cause, fix = os_cause(exc)
        return SinkError(sink_name(sink), cause, fix)
    return SinkError(sink_name(sink), f"could not be closed: {type(exc).__name__}: {redact_text(str(exc))}")

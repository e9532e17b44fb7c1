"""One bounded queue and one thread, behind every sink that must not block the inference thread.

A sink's ``write`` runs in the inference thread, once per frame. Whatever may block (a disk, an HTTP server, an
MQTT broker) goes through a :class:`QueueWorker` instead: ``put`` never blocks, a full queue drops an item and
counts it (one counter, one warning at the first drop and every hundredth), and ``close`` is the one shutdown
path: deliver what is queued within a time limit, then give up the rest, count them in the same counter (an item
never delivered is lost whether the queue was full or the run ended first) and say how many.

- :class:`QueuedSink` gives any sink that declares ``blocking = True`` a worker of its own (the session wraps it).
- The webhook and MQTT sinks queue only their label events and status, through a worker each.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, Literal, TypeVar

from ..errors import EdgeClassifierError, SinkError
from ..redact import redact_text
from ..results import Result
from .base import Sink
from .files import os_cause

log = logging.getLogger(__name__)

__all__ = ["QueueWorker", "QueuedSink", "sink_name"]

T = TypeVar("T")

#: Seconds before an item that ``handle`` could not deliver is tried again, unless ``wake`` comes first.
RETRY_DELAY = 0.5


def sink_name(sink: object) -> str:
    """How messages and the summary refer to ``sink``: its ``name`` (``recording out.mp4``), else its class's name."""
    name = getattr(sink, "name", None)
    return name if isinstance(name, str) and name else type(sink).__name__


class QueueWorker(Generic[T]):
    """A bounded queue whose items one thread hands, in order, to ``handle``.

    Args:
        name: for the thread and the log, in the user's terms (``MQTT broker host:1883``, ``webhook http://host/hook``,
            ``recording out.mp4``); never a password (see :mod:`edge_classifier.redact`).
        handle: called in the worker's thread for each item. It returns True when the item is done with
            (delivered, or given up on by the sink), False to keep it at the front of the queue for a retry
            (after ``wake`` or a short delay). An exception ends the worker; :meth:`raise_error` reports it.
        maxsize: items the queue holds (each may keep a frame alive: keep it small).
        drop: which item a full queue loses: ``newest`` (the one being put) or ``oldest`` (for state, where
            the latest matters most).
        ready: False while items cannot be delivered (a broker down): they wait, the queue still bounded.
        tick: called in the worker's thread every ``tick_interval`` seconds (periodic status); 0 is never.
        what: the noun for an item in log messages (``result``, ``event``, ``message``).
        why_full: what a full queue means, for the drop warning (``broker unreachable, buffer of 1000 full``).
        logger: where the warnings go (the sink's own logger).

    Attributes:
        dropped: items lost: the queue was full, ``close`` gave them up, or the sink counted them with :meth:`count_drop`.
    """

    def __init__(
        self,
        name: str,
        handle: Callable[[T], bool],
        *,
        maxsize: int,
        drop: Literal["newest", "oldest"] = "newest",
        ready: Callable[[], bool] | None = None,
        tick: Callable[[], None] | None = None,
        tick_interval: float = 0.0,
        what: str = "item",
        why_full: str = "",
        logger: logging.Logger | None = None,
    ) -> None:
        self.name = name
        self.maxsize = max(1, maxsize)
        self.dropped = 0
        self._handle = handle
        self._drop_oldest = drop == "oldest"
        self._ready = ready
        self._tick = tick
        self._tick_interval = tick_interval
        self._what = what
        self._why_full = why_full or f"queue of {self.maxsize} full"
        self._log = logger or log
        self._items: collections.deque[T] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._hold_until = 0.0  # after a failed delivery: no retry before this, unless woken
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    # --- the producer's side (the inference thread) ----------------------------------------------
    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"sink-{self.name}", daemon=True)
            self._thread.start()

    def put(self, item: T) -> bool:
        """Queue ``item`` without blocking; False when the queue was full and an item was dropped (counted)."""
        with self._cond:
            if len(self._items) >= self.maxsize:
                if not self._drop_oldest:
                    self._count_drop_locked(1)
                    return False
                self._items.popleft()
                self._count_drop_locked(1)
                self._items.append(item)
                self._cond.notify()
                return False
            self._items.append(item)
            self._cond.notify()
            return True

    def count_drop(self, n: int = 1, *, warn: bool = True) -> None:
        """Count ``n`` items the sink itself lost (a client library's own full queue); ``warn=False`` at close, where
        the sink reports its total itself."""
        with self._cond:
            self._count_drop_locked(n, warn=warn)

    def _count_drop_locked(self, n: int, *, warn: bool = True) -> None:
        before = self.dropped
        self.dropped += n
        # The first drop and every hundredth: a slow consumer must not flood the log it is trying to reach.
        if warn and n and (before == 0 or before // 100 != self.dropped // 100):
            self._log.warning("%s: %d %s(s) dropped so far (%s)", self.name, self.dropped, self._what, self._why_full)

    def wake(self) -> None:
        """``ready`` may have turned True (a broker connected): retry at once."""
        with self._cond:
            self._hold_until = 0.0
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        """Items waiting in the queue."""
        with self._cond:
            return len(self._items)

    @property
    def error(self) -> BaseException | None:
        """What ended the worker's thread, if anything did."""
        return self._error

    def raise_error(self) -> None:
        """Raise, once, what ended the worker's thread: an EdgeClassifierError as it is, anything else as a SinkError."""
        exc, self._error = self._error, None
        if exc is None:
            return
        if isinstance(exc, EdgeClassifierError):
            raise exc
        if isinstance(exc, OSError):
            cause, fix = os_cause(exc)
            raise SinkError(self.name, f"failed: {cause}", fix) from exc
        raise SinkError(
            self.name,
            f"stopped on an unexpected error: {type(exc).__name__}: {redact_text(str(exc))}",
            "the other outputs were closed cleanly; please report this with the command that caused it",
        ) from exc

    # --- shutdown ----------------------------------------------------------------------------------
    def close(self, timeout: float, *, interrupt: Callable[[], None] | None = None, grace: float = 0.0) -> int:
        """Deliver what is queued within ``timeout`` s, then give up the rest; safe to call twice.

        Items that cannot be delivered now (``ready`` is False) are not waited for. When the time is up,
        ``interrupt`` is called to cut a delivery in progress short (a back-off, say) and the thread gets
        ``grace`` s more to return.

        Returns:
            How many queued items were given up (0 when everything went out); they are counted in ``dropped``.
        """
        with self._cond:
            self._closing = True
            self._hold_until = 0.0
            self._cond.notify_all()
        thread = self._thread
        if thread is None or not thread.is_alive():
            return self._abandon()
        thread.join(timeout)
        if not thread.is_alive():
            return self._abandon()
        given_up = self._abandon()
        if interrupt is not None:
            interrupt()
        thread.join(grace)
        if thread.is_alive():
            self._log.warning("%s: still busy %g s after close; leaving it to finish on its own", self.name, timeout + grace)
        return given_up

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the thread to end; True when it has (or never started)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _abandon(self) -> int:
        with self._cond:
            n = len(self._items)
            self._items.clear()
            self._count_drop_locked(n, warn=False)  # the sink says how many at close, once
            return n

    # --- the worker's thread -----------------------------------------------------------------------
    def _is_ready(self) -> bool:
        return self._ready is None or self._ready()

    def _run(self) -> None:
        interval = self._tick_interval
        next_tick = time.monotonic() + interval if interval > 0 and self._tick is not None else float("inf")
        try:
            while True:
                taken: list[T] = []  # zero or one item
                with self._cond:
                    while True:
                        now = time.monotonic()
                        deliverable = bool(self._items) and now >= self._hold_until and self._is_ready()
                        if deliverable:
                            taken.append(self._items.popleft())
                            break
                        if self._closing or now >= next_tick:
                            break
                        # Poll at least once a second: `ready` may turn True without a wake.
                        wait = min(1.0, next_tick - now)
                        if self._items and self._hold_until > now:
                            wait = min(wait, self._hold_until - now)
                        self._cond.wait(max(wait, 0.001))
                if taken:
                    if not self._handle(taken[0]):
                        with self._cond:
                            self._items.appendleft(taken[0])
                            while len(self._items) > self.maxsize:  # the producer filled the gap meanwhile
                                if self._drop_oldest:
                                    self._items.popleft()
                                else:
                                    self._items.pop()
                                self._count_drop_locked(1)
                            if self._closing:
                                return  # cannot deliver now, and no more time is given
                            self._hold_until = time.monotonic() + RETRY_DELAY
                    continue
                if time.monotonic() >= next_tick and self._tick is not None:
                    next_tick = time.monotonic() + interval
                    self._tick()
                    continue
                if self._closing:
                    return
        except BaseException as exc:  # noqa: BLE001 - kept for raise_error(), in the thread that owns the sink
            self._error = exc


class QueuedSink:
    """Runs a blocking sink in a :class:`QueueWorker` of its own; drops (and counts) results when full.

    Args:
        sink: the sink to wrap (one that declares ``blocking = True``).
        maxsize: results the queue holds (each keeps its frame alive: keep it small).
        close_timeout: seconds ``close`` lets the queue drain before giving up the rest.

    Attributes:
        name: the wrapped sink's name (:func:`sink_name`), for messages and the summary.
    """

    blocking = False

    def __init__(self, sink: Sink, maxsize: int = 16, close_timeout: float = 10.0) -> None:
        self.sink = sink
        self.name = sink_name(sink)
        self.close_timeout = close_timeout
        self._worker: QueueWorker[Result] = QueueWorker(
            self.name,
            self._deliver,
            maxsize=maxsize,
            what="result",
            why_full=f"it is slower than the frames come; queue of {max(1, maxsize)} full",
        )

    def _deliver(self, result: Result) -> bool:
        self.sink.write(result)
        return True

    @property
    def dropped(self) -> int:
        """Results not written: the queue was full, or they were still queued when ``close`` gave up."""
        return self._worker.dropped

    @property
    def stop_requested(self) -> bool:
        """Passes the wrapped sink's request to end the run."""
        return bool(getattr(self.sink, "stop_requested", False))

    @property
    def stop_reason(self) -> str:
        """Why the wrapped sink asks to end the run (``stdout closed``), ``stop`` when it does not say."""
        return str(getattr(self.sink, "stop_reason", "stop"))

    def start(self) -> None:
        """Start the wrapped sink, then its thread."""
        self.sink.start()
        self._worker.start()

    def write(self, result: Result) -> None:
        """Queue ``result``; when the queue is full it is dropped for this sink and counted.

        Raises:
            EdgeClassifierError: the wrapped sink failed on an earlier result (a SinkError when its error was not one).
        """
        self._worker.raise_error()
        self._worker.put(result)

    def close(self, timeout: float | None = None) -> None:
        """Let the queue drain (up to ``timeout`` s, default ``close_timeout``), then close the wrapped sink.

        The wrapped sink is closed on every path (Ctrl-C while draining included), so files are finalised.

        Raises:
            EdgeClassifierError: the wrapped sink failed while writing (that error first: it is the cause), or
                while closing.
        """
        limit = self.close_timeout if timeout is None else timeout
        try:
            given_up = self._worker.close(limit)
            if given_up:
                log.warning("%s: %d result(s) still queued after %g s were not written", self.name, given_up, limit)
        finally:
            try:
                self.sink.close()
            except Exception as exc:  # noqa: BLE001 - the write error, if any, is the cause to report
                if self._worker.error is None:
                    raise
                log.error("%s: %s", self.name, redact_text(str(exc)))
        self._worker.raise_error()

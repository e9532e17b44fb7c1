"""Webhook sink: POST each label event as JSON to a URL, with a timeout and retries with back-off.

The body is the label-event message of :mod:`edge_classifier.sinks.payload` (the same JSON as on MQTT).
``write`` (in the inference thread) only puts label events on a bounded queue of their own; a thread of the
sink POSTs them. The sink is not ``blocking`` on purpose: the pipeline's queue for blocking sinks carries every
frame and drops whatever does not fit, so a slow server would lose events among ordinary frames; here only
events are queued, and a slow or dead server delays only the webhook, never the camera loop. A request that
still fails after its retries is logged and counted, and the loop goes on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import threading
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..results import Result
from .payload import event_payload

log = logging.getLogger(__name__)

# Client errors that may succeed later (timeout, rate limit); other 4xx mean the request itself is wrong.
_RETRYABLE_4XX = {408, 425, 429}


class WebhookSink:
    """POST label events to ``url``.

    Args:
        url: an http:// or https:// URL.
        timeout: seconds per request.
        retries: further attempts after a failed one (connection error, timeout, 5xx, 408, 429).
        backoff: seconds before the first retry; doubles on each further one.
        camera: the camera's id in the payload (default: this host's name).
        headers: extra HTTP headers (an ``Authorization`` token, say).
        queue_size: events waiting for the server before new ones are dropped (and counted).
        drain_timeout: seconds ``close`` waits for queued events to go out.

    Attributes:
        sent: events the server accepted (2xx).
        failed: events given up on after all retries.
        dropped: events not even tried because the queue was full.

    Raises:
        ConfigError: the URL is not http(s) or names no host; timeout, retries or backoff out of range.
    """

    blocking = False  # write() only queues label events; the sink's own thread does the HTTP

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        camera: str | None = None,
        headers: dict[str, str] | None = None,
        queue_size: int = 100,
        drain_timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"webhook URL {url!r}", "it is not an http:// or https:// URL with a host", "write it as http://host[:port]/path"
            )
        if timeout <= 0 or retries < 0 or backoff < 0:
            raise ConfigError(
                "webhook",
                f"timeout {timeout}, retries {retries}, backoff {backoff}",
                "give timeout > 0, retries >= 0, backoff >= 0",
            )
        from .. import __version__

        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.camera = camera or socket.gethostname()
        self.headers = {"Content-Type": "application/json", "User-Agent": f"edge-classifier/{__version__}", **(headers or {})}
        self.drain_timeout = drain_timeout
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=max(1, queue_size))
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread that POSTs."""
        self._closing.clear()
        self._thread = threading.Thread(target=self._work, name="webhook-sink", daemon=True)
        self._thread.start()

    def write(self, result: Result) -> None:
        """Queue the result's label event, if it has one; never blocks."""
        payload = event_payload(result, self.camera)
        if payload is None:
            return
        try:
            self._queue.put_nowait(json.dumps(payload).encode())
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("webhook %s cannot keep up: %d event(s) dropped so far", self.url, self.dropped)

    def _work(self) -> None:
        while True:
            body = self._queue.get()
            if body is None:
                return
            self.post(body)

    def post(self, body: bytes) -> bool:
        """POST one JSON body with retries; True when the server accepted it."""
        delay = self.backoff
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                # Interruptible, so close() does not wait out a long back-off.
                if self._closing.wait(delay):
                    break
                delay *= 2
            request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
                self.sent += 1
                return True
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code} {exc.reason}"
                if 400 <= exc.code < 500 and exc.code not in _RETRYABLE_4XX:
                    break
            except (urllib.error.URLError, OSError) as exc:  # refused, unreachable, DNS, timeout
                last = str(getattr(exc, "reason", exc))
            log.debug("webhook %s attempt %d failed: %s", self.url, attempt + 1, last)
        self.failed += 1
        log.warning("webhook %s: event not delivered (%s); %d failed so far", self.url, last, self.failed)
        return False

    def close(self) -> None:
        """Send what is queued within ``drain_timeout`` s, then abort any back-off; safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=self.drain_timeout)
            thread.join(self.drain_timeout)
            if thread.is_alive():
                self._closing.set()  # cut the back-off short; a request in flight ends within its timeout
                thread.join(self.timeout + 1.0)
                log.warning("webhook %s: gave up on %d queued event(s) at close", self.url, self._queue.qsize())
        self._closing.set()
        if self.sent or self.failed or self.dropped:
            log.info("webhook %s: %d event(s) delivered, %d failed, %d dropped", self.url, self.sent, self.failed, self.dropped)

"""Webhook sink: POST each label event as JSON to a URL, with a timeout and retries with back-off.

The body is the label-event message of :mod:`edge_classifier.sinks.payload` (the same JSON as on MQTT).
``write`` (in the inference thread) only puts label events on a bounded queue of their own (a
:class:`~edge_classifier.sinks.worker.QueueWorker`, whose thread POSTs them). The sink is not ``blocking`` on
purpose: the session's queue for blocking sinks carries every frame and drops whatever does not fit, so a slow
server would lose events among ordinary frames; here only events are queued, and a slow or dead server delays
only the webhook, never the camera loop. A request that still fails after its retries is logged and counted,
and the loop goes on.

Credentials in the URL (``https://user:password@host/hook``) become an ``Authorization: Basic`` header and are
removed from the URL actually requested (urllib would take ``user:password@host`` for the host name). Every
message shows the URL redacted (:func:`~edge_classifier.redact.redact_url`), never the password.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from .._version import __version__
from ..errors import ConfigError
from ..redact import redact_text, redact_url
from ..results import Result
from .payload import event_payload, state_payloads
from .worker import QueueWorker

log = logging.getLogger(__name__)

# Client errors that may succeed later (timeout, rate limit); other 4xx mean the request itself is wrong.
_RETRYABLE_4XX = {408, 425, 429}


def split_credentials(parts: SplitResult) -> tuple[str, str | None]:
    """The URL without ``user:password@``, and the ``Authorization: Basic`` value they make (None without them).

    User and password may be percent-encoded in the URL (``p%40ss`` for ``p@ss``); the header carries them decoded.
    """
    if parts.username is None and parts.password is None:
        return urlunsplit(parts), None
    host = parts.netloc.rpartition("@")[2]
    token = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
    return urlunsplit(parts._replace(netloc=host)), "Basic " + base64.b64encode(token).decode("ascii")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are errors: urllib would turn the POST into a GET and send the Authorization header to any host."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


_OPENER = urllib.request.build_opener(_NoRedirect)


class WebhookSink:
    """POST label events to ``url``.

    Args:
        url: an http:// or https:// URL; ``user:password@`` in it is sent as an ``Authorization: Basic`` header
            (an ``Authorization`` in ``headers`` takes precedence).
        timeout: seconds per request.
        retries: further attempts after a failed one (connection error, timeout, 5xx, 408, 429).
        backoff: seconds before the first retry; doubles on each further one.
        camera: the camera's id in the payload (default: this host's name).
        headers: extra HTTP headers (an ``Authorization`` token, say).
        queue_size: events waiting for the server before new ones are dropped (and counted).
        drain_timeout: seconds ``close`` waits for queued events to go out.

    Attributes:
        url: the URL requested (without credentials).
        name: how messages and the summary refer to this output (``webhook https://user:***@host/hook``).
        sent: events the server accepted (2xx).
        failed: events given up on after all retries.
        dropped: events never tried: the queue was full, or they were still queued when ``close`` gave up.

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
        shown = redact_url(url)
        try:
            parts = urlsplit(url)
            _ = parts.port  # a port that is no number (a password cut short by a # or /) is a ValueError
        except ValueError:
            raise ConfigError(
                f"webhook URL {shown!r}",
                "it cannot be parsed (is the port a number?)",
                "write it as http://[user:password@]host[:port]/path; percent-encode / # ? @ in a password",
            ) from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"webhook URL {shown!r}",
                "it is not an http:// or https:// URL with a host",
                "write it as http://host[:port]/path",
            )
        if timeout <= 0 or retries < 0 or backoff < 0:
            raise ConfigError(
                "webhook",
                f"timeout {timeout}, retries {retries}, backoff {backoff}",
                "give timeout > 0, retries >= 0, backoff >= 0",
            )
        self.url, auth = split_credentials(parts)
        self.name = f"webhook {shown}"
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.camera = camera or socket.gethostname()
        self.headers = {"Content-Type": "application/json", "User-Agent": f"edge-classifier/{__version__}"}
        if auth is not None:
            self.headers["Authorization"] = auth
        for key, value in (headers or {}).items():  # given headers win, whatever their case
            for same in [k for k in self.headers if k.lower() == key.lower()]:
                del self.headers[same]
            self.headers[key] = value
        self.drain_timeout = drain_timeout
        self.sent = 0
        self.failed = 0
        self._closing = threading.Event()
        self._worker: QueueWorker[bytes] = QueueWorker(
            self.name, self._deliver, maxsize=queue_size, what="event", why_full="the server cannot keep up", logger=log
        )

    @property
    def dropped(self) -> int:
        """Events never tried: the queue was full, or they were still queued when ``close`` gave up."""
        return self._worker.dropped

    def start(self) -> None:
        """Start the thread that POSTs."""
        self._closing.clear()
        self._worker.start()

    def write(self, result: Result) -> None:
        """Queue the result's label event and its regions' state events, if any; never blocks."""
        payload = event_payload(result, self.camera)
        if payload is not None:
            self._worker.put(json.dumps(payload).encode())
        for _, state in state_payloads(result, self.camera):
            self._worker.put(json.dumps(state).encode())

    def _deliver(self, body: bytes) -> bool:
        self.post(body)
        return True  # delivered, or given up after the retries: never queued again

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
                with _OPENER.open(request, timeout=self.timeout) as response:
                    response.read()
                self.sent += 1
                return True
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code} {exc.reason}"
                if 300 <= exc.code < 400:
                    location = redact_url(exc.headers.get("Location", "") if exc.headers else "")
                    last += f": the server redirects to {location or 'another URL'}; give that URL instead"
                    break
                if 400 <= exc.code < 500 and exc.code not in _RETRYABLE_4XX:
                    break
            except (urllib.error.URLError, OSError) as exc:  # refused, unreachable, DNS, timeout
                last = redact_text(str(getattr(exc, "reason", exc)))  # a redirect's URL may carry a token
            log.debug("%s attempt %d failed: %s", self.name, attempt + 1, last)
        self.failed += 1
        log.warning("%s: event not delivered (%s); %d failed so far", self.name, last, self.failed)
        return False

    def close(self) -> None:
        """Send what is queued within ``drain_timeout`` s, then abort any back-off; safe to call twice.

        Raises:
            SinkError: the sending thread failed (a bug: ``post`` handles network errors itself).
        """
        # When time is up, cut the back-off short; a request in flight ends within its timeout.
        given_up = self._worker.close(self.drain_timeout, interrupt=self._closing.set, grace=self.timeout + 1.0)
        if given_up:
            log.warning(
                "%s: %d queued event(s) not sent within %g s at the end; counted as dropped",
                self.name,
                given_up,
                self.drain_timeout,
            )
        self._closing.set()
        if self.sent or self.failed or self.dropped:
            log.info("%s: %d event(s) delivered, %d failed, %d dropped", self.name, self.sent, self.failed, self.dropped)
        self._worker.raise_error()

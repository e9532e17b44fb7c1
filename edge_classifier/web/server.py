"""The live web view's HTTP server: one page, an MJPEG stream, snapshots, status and events, nothing else.

Why the standard library's :class:`~http.server.ThreadingHTTPServer`: it is on every Pi already (no new
dependency, nothing to build on ARM), and a handful of long-lived streams is exactly what a thread per
connection handles well; an asyncio server (aiohttp) would add a dependency and an event loop for no gain at
eight viewers. The thread count is bounded here (:attr:`WebServer.max_connections`), which the standard
server alone does not do.

Threads, and why none of them can slow the camera:

- ``web-encoder`` encodes the newest frame to JPEG at most ``max_fps`` times a second, and only while
  someone watches ``/stream.mjpg``; it reads a reference the loop left in :class:`LiveState`.
- ``web-publisher`` wakes on a label change or event (and once a second for the status and the chart), makes
  the event snapshots and sends the server-sent events.
- one thread per connection sends whatever is newest when its client is ready (:mod:`.hubs`); a client
  that stops reading is dropped after :attr:`_Handler.timeout` seconds.

Routes (GET and HEAD only; every other path is 404, so no file can be read from disk)::

    /                    the page (edge_classifier/web/page.html)
    /stream.mjpg         multipart MJPEG of the annotated view (503 beyond max_viewers)
    /snapshot.jpg        the newest annotated frame; ?event=N the snapshot of event N
    /api/status          JSON status (the MQTT status fields, schema_version, and the page's extras)
    /api/events          the recent label events, JSON, newest first
    /api/events/stream   server-sent events: state (region labels), label (events), status (1 Hz)
    /healthz             liveness, without a password: 200 while frames arrive, 503 when they stopped
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import errno
import hashlib
import hmac
import importlib.resources
import json
import logging
import socket
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import EdgeClassifierError, SinkError
from ..sinks.payload import cpu_temperature
from .hubs import FrameHub, MessageHub, sse_message
from .options import WebOptions
from .render import thumbnail_jpeg, view_jpeg
from .state import LiveState
from .status import History, event_record, events_document, status

log = logging.getLogger(__name__)

#: Longest request line accepted (method, path, version); a longer one gets 414.
MAX_REQUEST_LINE = 2048
#: Connections served beyond the stream limits (page, API calls); more are refused with 503 at once.
EXTRA_CONNECTIONS = 16
#: Seconds a client may take to send its request, or stall a stream, before it is dropped.
CLIENT_TIMEOUT = 10.0
#: Kernel send buffer of a stream connection: a few frames, so a slow client gets fresh frames (the newest wins
#: here, not in a deep kernel queue) and a stalled one is noticed within CLIENT_TIMEOUT of filling it.
STREAM_SNDBUF = 256 * 1024
#: Seconds a frame may be old before /healthz says the loop stalled.
STALE_AFTER = 10.0

_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
    b"Retry-After: 5\r\nContent-Length: 36\r\n\r\ntoo many connections; retry shortly\n"
)
_BOUNDARY = "frame"
_PAGE_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'"
)


def _page() -> bytes:
    return importlib.resources.files(__package__).joinpath("page.html").read_bytes()


class _HttpServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with a bound on simultaneous connections and a way to cut them all at shutdown."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 16

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_connections: int) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.max_connections = max_connections
        self.refused = 0
        self._lock = threading.Lock()
        self._active: set[Any] = set()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            full = len(self._active) >= self.max_connections
            if not full:
                self._active.add(request)
        if full:
            self.refused += 1
            try:
                request.settimeout(1.0)
                request.sendall(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._active.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client going away mid-response is normal; anything else is logged in one line, not a traceback on stderr.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            log.debug("web client %s: %s", client_address, exc)
        else:
            log.warning("web request from %s failed: %s: %s", client_address, type(exc).__name__, exc)

    def drop_connections(self) -> None:
        """Shut every open client connection, so blocked sends fail now and their threads end."""
        with self._lock:
            active = list(self._active)
        for sock in active:
            with contextlib.suppress(OSError):  # already closed by its client
                sock.shutdown(socket.SHUT_RDWR)

    @property
    def connections(self) -> int:
        """Client connections open now."""
        return len(self._active)


class WebServer:
    """The web view: HTTP server, encoder and publisher threads over a :class:`LiveState`.

    Args:
        options: where to listen and the limits (validated by :func:`~.options.check_options`).
        state: what the loop feeds (:class:`~edge_classifier.sinks.web.WebSink` owns it).
        password: the password to require (HTTP Basic, any user name), or None for none.

    Attributes:
        frames: the newest JPEG for the MJPEG viewers.
        messages: the server-sent-event messages.
        history: one-second FPS/latency points for the chart.
    """

    def __init__(self, options: WebOptions, state: LiveState, password: str | None) -> None:
        self.options = options
        self.state = state
        # Only a digest is kept: the password itself never sits in this object, a repr or a log.
        self._password_digest = hashlib.sha256(password.encode()).digest() if password is not None else None
        self.frames = FrameHub(options.max_viewers)
        self.messages = MessageHub()
        self.history = History(options.history_s)
        self.max_connections = options.max_viewers + options.max_event_streams + EXTRA_CONNECTIONS
        self._events: deque[tuple[dict[str, Any], bytes | None]] = deque(maxlen=options.events)
        self._events_lock = threading.Lock()
        self._event_streams = 0
        self._streams_lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: _HttpServer | None = None
        self._threads: list[threading.Thread] = []
        self._cache: tuple[int, bytes, float] | None = None  # (state.seq, JPEG, monotonic time) of the last encode
        self._snapshot_lock = threading.Lock()
        self._cpu_temp: float | None = cpu_temperature()
        self._page = _page()
        self.auth_failures = 0

    # --- life cycle -----------------------------------------------------------------------------------
    @property
    def requires_password(self) -> bool:
        """True when every route but /healthz asks for the password."""
        return self._password_digest is not None

    @property
    def port(self) -> int:
        """The port listened on (the real one when the options said 0)."""
        if self._httpd is None:
            return self.options.port
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The page's address (with the real port)."""
        return dataclasses.replace(self.options, port=self.port).url

    def start(self) -> None:
        """Bind and start serving.

        Raises:
            SinkError: the address is in use, not on this machine, or needs privileges.
        """
        o = self.options
        handler = type("Handler", (_Handler,), {"app": self})
        try:
            self._httpd = _HttpServer((o.host, o.port), handler, self.max_connections)
        except OSError as exc:
            raise _bind_error(o, exc) from None
        self._threads = [
            threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="web-server", daemon=True),
            threading.Thread(target=self._encode_loop, name="web-encoder", daemon=True),
            threading.Thread(target=self._publish_loop, name="web-publisher", daemon=True),
        ]
        for t in self._threads:
            t.start()
        log.info("web view on %s%s", self.url, " (password required)" if self.requires_password else "")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, end every stream, free the port; safe to call more than once."""
        if self._stop.is_set():
            return
        self._stop.set()
        self.frames.close()
        self.messages.close()
        self.state.changed.set()  # wakes the publisher
        httpd = self._httpd
        if httpd is not None:
            httpd.shutdown()  # no new connections; serve_forever returns within its poll interval
            httpd.drop_connections()
            httpd.server_close()  # the listening socket: the port is free from here on
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        # Client threads end on their own: their sockets were shut; give them a moment to say goodbye.
        while httpd is not None and httpd.connections and time.monotonic() < deadline:
            time.sleep(0.02)

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    # --- producers --------------------------------------------------------------------------------------
    def _encode(self) -> bytes | None:
        seq, result = self.state.seq, self.state.latest
        if result is None:
            return None
        data = view_jpeg(result, self.state.fps() or None, self.options.stream_width)
        self._cache = (seq, data, time.monotonic())
        return data

    def _encode_loop(self) -> None:
        period = 1.0 / self.options.max_fps
        last_seq = -1
        failures = 0
        while not self._stop.is_set():
            if not self.frames.wait_for_viewers(timeout=0.5):
                continue  # nobody watches: nothing is encoded
            t0 = time.monotonic()
            if self.state.seq != last_seq:
                last_seq = self.state.seq
                try:
                    data = self._encode()
                except Exception as exc:  # noqa: BLE001 - an odd frame must not end the stream for every viewer
                    failures += 1
                    if failures == 1 or failures % 100 == 0:
                        log.warning("web view: %s (%d frame(s) so far)", exc, failures)
                    data = None
                if data is not None:
                    self.frames.publish(data)
            self._stop.wait(max(0.0, period - (time.monotonic() - t0)))

    def snapshot(self) -> bytes | None:
        """The newest annotated frame as JPEG (None before the first); re-encoded at most ``max_fps`` times a second."""
        with self._snapshot_lock:
            cached = self._cache
            if cached is not None and (cached[0] == self.state.seq or time.monotonic() - cached[2] < 1.0 / self.options.max_fps):
                return cached[1]
            return self._encode()

    def _publish_loop(self) -> None:
        next_tick = time.monotonic() + 1.0
        while not self._stop.is_set():
            self.state.changed.wait(max(0.0, next_tick - time.monotonic()))
            if self._stop.is_set():
                return
            try:
                if self.state.changed.is_set():
                    self.state.changed.clear()
                    self._announce_changes()
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = next_tick + 1.0 if now - next_tick < 1.0 else now + 1.0
                    point = self.history.sample(self.state, now)
                    self._cpu_temp = cpu_temperature()
                    self.messages.publish("status", {**self.status(), "point": point.to_dict()})
            except Exception as exc:  # noqa: BLE001 - the page must keep updating; one bad message is logged, not fatal
                log.warning("web view: could not publish an update: %s: %s", type(exc).__name__, exc)

    def _announce_changes(self) -> None:
        self.messages.publish("state", self.region_message())
        for pending in self.state.take_pending():
            try:
                thumb: bytes | None = thumbnail_jpeg(pending.result)
            except EdgeClassifierError as exc:
                log.warning("web view: no snapshot for event %d: %s", pending.seq, exc)
                thumb = None
            record = event_record(pending, self.state.camera, thumb is not None)
            with self._events_lock:
                self._events.append((record, thumb))
            self.messages.publish("label", record)

    # --- documents ----------------------------------------------------------------------------------------
    def region_message(self) -> dict[str, Any]:
        """The ``state`` event: every region's label now, and when the newest change happened (epoch s)."""
        regions = self.state.regions()
        return {
            "regions": [r.to_dict() for r in regions],
            "changed": max((r.since for r in regions), default=None),
            "frame": self.state.latest.frame.index if self.state.latest is not None else None,
        }

    def status(self, *, with_history: bool = False) -> dict[str, Any]:
        """The ``/api/status`` document."""
        doc = status(
            self.state,
            cpu_temp_c=self._cpu_temp,
            viewers=self.frames.viewers,
            max_viewers=self.options.max_viewers,
            event_streams=self._event_streams,
            stream_fps=self.options.max_fps,
            dropped_messages=self.messages.skipped,
        )
        if with_history:
            doc["history"] = self.history.to_dict()
        return doc

    def events(self) -> list[dict[str, Any]]:
        """The recent label events, newest first."""
        with self._events_lock:
            return [record for record, _ in reversed(self._events)]

    def event_snapshot(self, seq: int) -> bytes | None:
        """The snapshot kept with event ``seq``, or None when it is unknown or gone."""
        with self._events_lock:
            for record, thumb in self._events:
                if record["seq"] == seq:
                    return thumb
        return None

    def check_password(self, header: str | None) -> bool:
        """True when no password is set, or ``header`` (an Authorization value) carries the right one."""
        if self._password_digest is None:
            return True
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        _user, sep, given = decoded.partition(":")  # any user name: the password is the secret
        if not sep:
            return False
        # Digests of equal length, compared in constant time: neither the content nor the length leaks.
        return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), self._password_digest)

    def join_event_stream(self) -> bool:
        """Admit one more server-sent-event client (False beyond the limit)."""
        with self._streams_lock:
            if self._event_streams >= self.options.max_event_streams or self._stop.is_set():
                return False
            self._event_streams += 1
            return True

    def leave_event_stream(self) -> None:
        """One server-sent-event client left."""
        with self._streams_lock:
            self._event_streams -= 1


def _bind_error(o: WebOptions, exc: OSError) -> SinkError:
    where = f"web view {o.host}:{o.port}"
    if exc.errno == errno.EADDRINUSE:
        return SinkError(
            where, "the port is already in use", f"stop the program holding it, or pick another port: --web {o.host}:{o.port + 1}"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return SinkError(
            where, "binding it needs privileges (ports below 1024 need root)", "use a port of 1024 or above, such as 8080"
        )
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return SinkError(
            where,
            f"no network interface of this machine has that address ({exc.strerror or exc})",
            "use 127.0.0.1, 0.0.0.0 or one of this machine's addresses",
        )
    return SinkError(where, f"cannot listen ({exc.strerror or exc})", "check the address and port")


class _Handler(BaseHTTPRequestHandler):
    """One connection: one request (HTTP/1.0, so every connection ends with its response)."""

    app: WebServer
    server_version = "edge-classifier"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    timeout = CLIENT_TIMEOUT  # socket timeout: a slow request, or a stream client that stops reading, is dropped

    # --- request parsing and limits -----------------------------------------------------------------------
    def parse_request(self) -> bool:
        raw: bytes = getattr(self, "raw_requestline", b"")  # set by handle_one_request before this is called
        if len(raw) > MAX_REQUEST_LINE:
            self.requestline, self.request_version, self.command = "", "HTTP/1.0", ""
            self.send_error(414, "request line too long")
            return False
        if not super().parse_request():
            return False
        if self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length", "0").strip() not in ("", "0"):
            self.send_error(413, "this server takes no request bodies")
            return False
        return True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("web %s: " + format, self.client_address[0], *args)

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._route(head=True)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._route(head=False)

    def _route(self, head: bool) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        if path == "/healthz":
            return self._healthz(head)
        if not self.app.check_password(self.headers.get("Authorization")):
            return self._unauthorized(head)
        if path == "/":
            return self._send(200, self.app._page, "text/html; charset=utf-8", head, {"Content-Security-Policy": _PAGE_CSP})
        if path == "/stream.mjpg":
            return self._mjpeg(head)
        if path == "/snapshot.jpg":
            return self._snapshot(parts.query, head)
        if path == "/api/status":
            return self._json(self.app.status(with_history=True), head)
        if path == "/api/events":
            return self._json(events_document(self.app.events()), head)
        if path == "/api/events/stream":
            return self._sse(head)
        return self._text(
            404,
            "not found: the paths are /, /stream.mjpg, /snapshot.jpg, /api/status, /api/events, /api/events/stream, /healthz\n",
            head,
        )

    # --- simple responses -------------------------------------------------------------------------------------
    def _send(self, code: int, body: bytes, ctype: str, head: bool, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _text(self, code: int, text: str, head: bool, headers: dict[str, str] | None = None) -> None:
        self._send(code, text.encode(), "text/plain; charset=utf-8", head, headers)

    def _json(self, doc: Any, head: bool, code: int = 200) -> None:
        self._send(code, json.dumps(doc, separators=(",", ":"), allow_nan=False).encode(), "application/json", head)

    def _unauthorized(self, head: bool) -> None:
        app = self.app
        if self.headers.get("Authorization"):
            app.auth_failures += 1
            if app.auth_failures == 1 or app.auth_failures % 100 == 0:
                log.warning("web view: wrong password from %s (%d refused so far)", self.client_address[0], app.auth_failures)
        self._text(401, "password required\n", head, {"WWW-Authenticate": 'Basic realm="edge-classifier", charset="UTF-8"'})

    def _healthz(self, head: bool) -> None:
        age = self.app.state.last_frame_age()
        doc: dict[str, Any]
        if age is None:
            doc, code = {"status": "starting"}, 200
        elif age > STALE_AFTER:
            doc, code = {"status": "stalled", "last_frame_age_s": round(age, 1)}, 503
        else:
            doc, code = {"status": "ok", "last_frame_age_s": round(age, 3)}, 200
        self._json(doc, head, code)

    def _snapshot(self, query: str, head: bool) -> None:
        params = parse_qs(query, max_num_fields=4)
        if "event" in params:
            text = params["event"][0]
            if not text.isdigit() or len(text) > 12:
                return self._text(400, "event must be a number\n", head)
            data = self.app.event_snapshot(int(text))
            if data is None:
                return self._text(404, f"no snapshot for event {text} (only the recent events keep one)\n", head)
            return self._send(200, data, "image/jpeg", head)
        data = self.app.snapshot()
        if data is None:
            return self._text(503, "no frame yet\n", head, {"Retry-After": "1"})
        self._send(200, data, "image/jpeg", head)

    # --- streams ------------------------------------------------------------------------------------------------
    def _mjpeg(self, head: bool) -> None:
        frames = self.app.frames
        if head:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
            self.end_headers()
            return
        if not frames.join():
            return self._text(
                503, f"too many viewers ({frames.max_viewers}); close another view and retry\n", head, {"Retry-After": "5"}
            )
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF)
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
            self.send_header("Pragma", "no-cache")
            self.end_headers()
            last = 0
            while not frames.closed:
                got = frames.wait_newer(last, timeout=1.0)
                if got is None:
                    continue
                last, data = got
                self.wfile.write(f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n".encode())
                self.wfile.write(data)
                self.wfile.write(b"\r\n")
        except OSError:
            pass  # the viewer went away, stalled past the timeout, or the server is stopping
        finally:
            frames.leave()

    def _sse(self, head: bool) -> None:
        app = self.app
        if head:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            return
        if not app.join_event_stream():
            return self._text(503, f"too many event streams ({app.options.max_event_streams})\n", head, {"Retry-After": "5"})
        try:
            after = app.messages.seq  # before the first message, so nothing published meanwhile is missed
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("X-Accel-Buffering", "no")  # tell a reverse proxy not to buffer the stream
            self.end_headers()
            self.wfile.write(b"retry: 2000\n\n" + sse_message("state", app.region_message()))
            last_sent = time.monotonic()
            while not app.messages.closed:
                after, batch = app.messages.wait(after, timeout=1.0)
                if batch:
                    self.wfile.write(b"".join(batch))
                    last_sent = time.monotonic()
                elif time.monotonic() - last_sent > 15.0:
                    self.wfile.write(b": keep-alive\n\n")  # finds dead connections when the loop is quiet
                    last_sent = time.monotonic()
        except OSError:
            pass
        finally:
            app.leave_event_stream()

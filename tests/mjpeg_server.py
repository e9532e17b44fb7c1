"""A real MJPEG-over-HTTP server on 127.0.0.1 for the live-stream tests, the kind IP cameras serve.

It sends ``multipart/x-mixed-replace`` JPEG parts, the way ``mjpg-streamer`` and most cheap IP cameras
do, and OpenCV's FFmpeg backend reads it as a live stream. The test steers it to show each failure a
real network camera has: a dropped connection (:meth:`stop`, then :meth:`start` on the same port), a
stall (:meth:`stall`: the socket stays open and nothing comes), and a corrupt frame (:meth:`corrupt`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

BOUNDARY = "edgeclassifierframe"


def jpeg_of(image: Path, size: tuple[int, int] = (224, 224), quality: int = 95) -> bytes:
    """``image`` resized to ``size`` and encoded as JPEG with OpenCV."""
    bgr = cv2.imread(str(image))
    if bgr is None:
        raise RuntimeError(f"cannot read {image}")
    ok, buf = cv2.imencode(".jpg", cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"cannot encode {image}")
    return buf.tobytes()


def corrupt_jpeg(jpeg: bytes) -> bytes:
    """A JPEG whose header survives but whose entropy-coded data is garbage: it cannot be decoded."""
    # Keep SOI and the tables (so the demuxer still sees a JPEG part), then cut it short and pad with
    # bytes that are no valid Huffman stream and no end-of-image marker.
    head = jpeg[: min(len(jpeg) // 8, 600)]
    return head + b"\x00" * 64


class MjpegServer:
    """A threaded MJPEG server; every client gets the current frame ``fps`` times a second.

    Args:
        jpeg: the first frame to serve.
        fps: parts per second each client gets.
        port: 0 picks a free port; after :meth:`stop`, :meth:`start` binds the same one again.
    """

    def __init__(self, jpeg: bytes, fps: float = 25.0, port: int = 0) -> None:
        self.fps = fps
        self.port = port
        self.connections = 0  # clients that connected, over every start
        self.parts_sent = 0
        self._jpeg = jpeg
        self._corrupt_left = 0
        self._stalled = False
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._socks: set[socket.socket] = set()
        self._generation = 0  # bumped by stop(): handlers of an older generation end

    @property
    def url(self) -> str:
        """The stream's URL."""
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    # --- steering ---------------------------------------------------------------------
    def show(self, jpeg: bytes) -> None:
        """Serve ``jpeg`` from now on."""
        with self._cond:
            self._jpeg = jpeg

    def stall(self, stalled: bool = True) -> None:
        """Keep every connection (old and new) open but send nothing while ``stalled``."""
        with self._cond:
            self._stalled = stalled
            self._cond.notify_all()

    def corrupt(self, parts: int) -> None:
        """Send the next ``parts`` parts as undecodable JPEGs."""
        with self._cond:
            self._corrupt_left = parts

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` (checked when the server's state changes, and every 50 ms)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    # --- life cycle -------------------------------------------------------------------
    def start(self) -> MjpegServer:
        """Listen (on the same port as before after a :meth:`stop`)."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                owner._serve(self)

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection, as a camera that reboots or loses its network."""
        with self._cond:
            self._generation += 1
            socks, self._socks = set(self._socks), set()
            self._cond.notify_all()
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- one client -------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        with self._cond:
            generation = self._generation
            self._socks.add(handler.connection)
            self.connections += 1
            self._cond.notify_all()
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            handler.send_header("Cache-Control", "no-cache")
            handler.end_headers()
            period = 1.0 / self.fps
            next_at = time.monotonic()
            while True:
                with self._cond:
                    while True:
                        if self._generation != generation:
                            return
                        if not self._stalled:
                            wait = next_at - time.monotonic()
                            if wait <= 0:
                                break
                        else:
                            wait = 0.05
                        self._cond.wait(wait)
                    jpeg = self._jpeg
                    if self._corrupt_left > 0:
                        self._corrupt_left -= 1
                        jpeg = corrupt_jpeg(jpeg)
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                handler.wfile.write(head + jpeg + b"\r\n")
                handler.wfile.flush()
                with self._cond:
                    self.parts_sent += 1
                    self._cond.notify_all()
                next_at = max(next_at + period, time.monotonic() - period)
        except (BrokenPipeError, ConnectionResetError, OSError):
            return  # the client went away, or stop() cut the connection
        finally:
            with self._cond:
                self._socks.discard(handler.connection)

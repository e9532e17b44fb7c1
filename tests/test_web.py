"""The live web view on a real loop (Coral's MobileNetV2 over clips of the Coral photos), seen by a real Chromium.

Every request goes to 127.0.0.1 only. The browser tests need Debian's ``chromium`` and the ``playwright`` package
(the dev extra); where either is missing they are skipped with one reason, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import importlib.util
import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psutil
import pytest

from edge_classifier import Classifier, LoopOptions, run_pipeline
from edge_classifier.errors import ConfigError, SinkError
from edge_classifier.sinks.payload import SCHEMA_VERSION
from edge_classifier.sinks.web import PASSWORD_ENV, WebOptions, WebSink, build_web_sink
from edge_classifier.web.options import is_loopback, parse_address, read_password
from tests.clips import write_clip
from tests.conftest import CORAL, REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
MODEL = CORAL / "mobilenet_v2_1.0_224_quant.tflite"
# Photos whose top-1 at 640x480 is stable and far above the rest (see tests/conftest.py EXPECTED).
SCENES = (("cat.bmp", "Egyptian cat"), ("parrot.jpg", "macaw"), ("bird.bmp", "chickadee"))
# The keys of the MQTT status message (edge_classifier.sinks.mqtt): /api/status must carry every one.
MQTT_STATUS_KEYS = {
    "schema_version",
    "type",
    "camera",
    "time",
    "state",
    "fps",
    "frames",
    "label",
    "backend",
    "device",
    "model",
    "uptime_s",
    "dropped_messages",
}


# --- fixtures and helpers ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clf() -> Iterator[Classifier]:
    with Classifier(MODEL) as c:
        yield c


@pytest.fixture(scope="module")
def scenes_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cat 4 s, parrot 4 s, chickadee 12 s at 10 fps, 640x480 (played in real time, like a camera)."""
    path = tmp_path_factory.mktemp("web") / "scenes.avi"
    return write_clip(
        path, [(CORAL / name, n) for (name, _), n in zip(SCENES, (40, 40, 120), strict=True)], size=(640, 480), fps=10
    )


@pytest.fixture(scope="module")
def fast_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 frames (cat, then parrot) read as fast as the model goes (not real time)."""
    path = tmp_path_factory.mktemp("web") / "fast.avi"
    return write_clip(path, [(CORAL / "cat.bmp", 100), (CORAL / "parrot.jpg", 100)], size=(640, 480), fps=30)


class StopSwitch:
    """A sink that asks the loop to end when the test sets ``stop_requested`` (the sink protocol's own way)."""

    blocking = False

    def __init__(self) -> None:
        self.stop_requested = False
        self.last_write = 0.0

    def start(self) -> None:
        """Nothing to open."""

    def write(self, result: Any) -> None:
        self.last_write = time.monotonic()

    def close(self) -> None:
        """Nothing to release."""


@contextlib.contextmanager
def running(
    clf: Classifier, clip: Path, sink: WebSink, *, realtime: bool = True, smoothing: float = 0.5
) -> Iterator[dict[str, Any]]:
    """run_pipeline(clip -> sink) in a thread; yields once the web view listens; ends the loop on exit.

    The source keeps its full frames (``full_frames``), as a run with a web view does: a viewer wants the whole
    picture, not the reduced decode made for the model.

    The yielded dict gets ``stats`` (RunStats), ``returned`` (monotonic time run_pipeline returned) and ``switch``.
    """
    switch = StopSwitch()
    box: dict[str, Any] = {"switch": switch}

    def target() -> None:
        try:
            box["stats"] = run_pipeline(
                clf,
                str(clip),
                [sink, switch],
                LoopOptions(smoothing=smoothing, source_options={"realtime": realtime, "full_frames": True}),
                stats_interval=0,
                stats_file=io.StringIO(),
                handle_signals=False,
            )
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            box["error"] = exc
        box["returned"] = time.monotonic()

    thread = threading.Thread(target=target, name="test-loop", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while sink.server is None and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        assert sink.server is not None, f"the web view did not start: {box.get('error')}"
        yield box
    finally:
        switch.stop_requested = True
        thread.join(30)
        assert not thread.is_alive(), "the loop did not end"
    if "error" in box:
        raise box["error"]


def get(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """One GET to 127.0.0.1:port: (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def basic(password: str, user: str = "viewer") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def raw_request(port: int, data: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes, read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class MjpegReader(threading.Thread):
    """A viewer of /stream.mjpg that counts the JPEG frames it gets (optionally pausing between reads)."""

    def __init__(self, port: int, headers: dict[str, str] | None = None, pause: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.port, self.headers, self.pause = port, headers or {}, pause
        self.status: int | None = None
        self.frames = 0
        self.last_jpeg = b""
        self.stop = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        r: http.client.HTTPResponse | None = None
        try:
            conn.request("GET", "/stream.mjpg", headers=self.headers)
            r = conn.getresponse()
            self.status = r.status
            if r.status != 200:
                r.read()
                return
            while not self.stop.is_set():
                line = r.fp.readline()
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    n = int(line.split(b":")[1])
                    r.fp.readline()  # the blank line
                    self.last_jpeg = r.fp.read(n)
                    self.frames += 1
                    if self.pause:
                        time.sleep(self.pause)
        except OSError:
            return
        finally:
            if r is not None:
                r.close()  # the response holds the socket open on its own: a viewer that leaves must close both
            conn.close()


def stalled_client(port: int) -> socket.socket:
    """A client that asks for the stream and never reads a byte (a tiny receive buffer, so the server soon blocks)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /stream.mjpg HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    return s


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's package) driven by Playwright; skipped when missing, a failure under CI."""
    problem = None
    if importlib.util.find_spec("playwright") is None:
        problem = (
            "the playwright package is missing: pip install -e '.[dev]' "
            "(no `playwright install` needed: the system Chromium is used)"
        )
    elif not Path(CHROMIUM).exists():
        problem = f"{CHROMIUM} is missing: apt-get install chromium (Debian's package)"
    if problem is not None:
        if under_ci():
            pytest.fail(f"CI needs the browser tests: {problem}", pytrace=False)
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


# --- options and the security rule (nothing binds) ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, ("127.0.0.1", 8080)),
        ("", ("127.0.0.1", 8080)),
        ("0.0.0.0:9000", ("0.0.0.0", 9000)),
        ("0.0.0.0", ("0.0.0.0", 8080)),
        (":8081", ("127.0.0.1", 8081)),
        ("8082", ("127.0.0.1", 8082)),
        ("[::]:8083", ("::", 8083)),
        ("[::1]", ("::1", 8080)),
        ("::1", ("::1", 8080)),
        ("camera.local:80", ("camera.local", 80)),
    ],
)
def test_parse_address(text: str | None, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["0.0.0.0:http", "127.0.0.1:70000", "[::1:8080", "[::1]x"])
def test_parse_address_rejects_bad_values_with_the_fix(text: str) -> None:
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_address(text)


def test_loopback_is_127_slash_8_and_ipv6_1_only() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "localhost"))
    assert not any(
        is_loopback(h) for h in ("0.0.0.0", "::", "", "192.168.1.20", "10.0.0.1", "camera.local", "::ffff:192.168.1.2")
    )


def test_a_network_address_without_a_password_is_refused_before_anything_binds() -> None:
    for host in ("0.0.0.0", "::", "192.168.1.20"):
        with pytest.raises(ConfigError) as info:
            WebSink(WebOptions(host=host, port=8080), environ={})
        text = str(info.value)
        assert "no password" in text and "--web-password-file" in text and PASSWORD_ENV in text and "--web-insecure" in text
    # The CLI's function says the same from --web's value.
    with pytest.raises(ConfigError, match="no password"):
        build_web_sink("0.0.0.0:8080", environ={})
    # Explicitly insecure, or a password from the environment: accepted (not started, so nothing binds).
    assert WebSink(WebOptions(host="0.0.0.0", insecure=True), environ={}).server is None
    assert WebSink(WebOptions(host="0.0.0.0"), environ={PASSWORD_ENV: "pw"}).server is None
    # Loopback needs none.
    assert build_web_sink("127.0.0.2:8080", environ={}).server is None


def test_password_sources_and_their_errors_never_show_the_password(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = "correct horse battery staple"
    f = tmp_path / "web.pass"
    f.write_text(secret + "\n")
    f.chmod(0o644)
    caplog.set_level(logging.DEBUG)
    assert read_password(WebOptions(password_file=str(f)), environ={}) == secret
    assert "readable by other users" in caplog.text  # a hint to chmod 600, without the password
    f.chmod(0o600)
    assert read_password(WebOptions(), environ={PASSWORD_ENV: secret}) == secret
    assert read_password(WebOptions(), environ={}) is None
    assert secret not in repr(WebOptions(password=secret))
    empty = tmp_path / "empty.pass"
    empty.write_text("\n")
    errors = []
    for opts in (
        WebOptions(password_file=str(empty)),
        WebOptions(password_file=str(tmp_path / "missing.pass")),
        WebOptions(password=""),
    ):
        with pytest.raises(ConfigError) as info:
            read_password(opts, environ={})
        errors.append(str(info.value))
    assert "holds no password" in errors[0] and "cannot be read" in errors[1] and "is empty" in errors[2]
    assert all("fix:" in e for e in errors)
    assert secret not in caplog.text and all(secret not in e for e in errors)


@pytest.mark.parametrize(
    "opts", [WebOptions(max_fps=0), WebOptions(max_viewers=0), WebOptions(port=70000), WebOptions(stream_width=10)]
)
def test_bad_limits_are_config_errors(opts: WebOptions) -> None:
    with pytest.raises(ConfigError):
        WebSink(opts, environ={})


def test_a_port_in_use_is_a_sink_error_with_the_fix() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        sink = WebSink(WebOptions(port=port), environ={})
        with pytest.raises(SinkError, match="already in use") as info:
            sink.start()
        assert f"--web 127.0.0.1:{port + 1}" in str(info.value)
        sink.close()  # safe after a failed start


# --- the HTTP API on a real loop -----------------------------------------------------------------------------
def test_api_status_events_snapshots_and_server_sent_events(clf: Classifier, scenes_clip: Path) -> None:
    sink = WebSink(WebOptions(port=0, max_fps=5, camera="porch"), classifier=clf, environ={})
    with running(clf, scenes_clip, sink) as box:
        port = sink.port
        # Server-sent events: the region's label follows the scene, and label events arrive with snapshots.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        conn.request("GET", "/api/events/stream")
        r = conn.getresponse()
        assert r.status == 200 and r.getheader("Content-Type") == "text/event-stream"
        labels: list[str] = []
        events: list[dict[str, Any]] = []
        statuses: list[dict[str, Any]] = []
        name = None
        deadline = time.monotonic() + 20
        while not ("macaw" in labels and len(events) >= 2 and statuses) and time.monotonic() < deadline:
            line = r.fp.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if name == "state" and data["regions"] and (not labels or labels[-1] != data["regions"][0]["label"]):
                    labels.append(data["regions"][0]["label"])
                elif name == "label":
                    events.append(data)
                elif name == "status":
                    statuses.append(data)
        conn.close()
        assert labels[:2] == ["Egyptian cat", "macaw"], labels
        assert [(e["previous_label"], e["label"]) for e in events[:2]] == [(None, "Egyptian cat"), ("Egyptian cat", "macaw")]
        assert statuses[0]["type"] == "status" and "point" in statuses[0]

        # Nobody watched the stream yet: not one frame was encoded for it.
        assert sink.server is not None and sink.server.frames.published == 0

        code, headers, body = get(port, "/api/status")
        status = json.loads(body)
        assert code == 200 and headers["content-type"] == "application/json"
        assert set(status) >= MQTT_STATUS_KEYS and status["schema_version"] == SCHEMA_VERSION
        assert status["camera"] == "porch" and status["model"] == MODEL.name and status["device"] == "cpu"
        assert status["backend"] == clf.runtime_info.runtime and status["frames"] > 40 and 5 < status["fps"] < 15
        assert status["regions"][0]["name"] == "frame" and status["regions"][0]["label"] in ("macaw", "chickadee")
        assert {"capture", "preprocess", "inference", "postprocess", "sinks"} <= set(status["stages_ms"])
        assert status["latency_ms"]["p50"] > 0 and status["history"]["fps"] and status["dropped_frames"] >= 0

        code, _, body = get(port, "/api/events")
        listed = json.loads(body)["events"]
        assert code == 200 and [e["label"] for e in listed][-2:] == ["macaw", "Egyptian cat"]  # newest first
        for e in listed:
            code, headers, jpeg = get(port, "/" + e["snapshot"])
            img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert code == 200 and headers["content-type"] == "image/jpeg" and img.shape == (240, 320, 3)
        assert get(port, "/snapshot.jpg?event=999")[0] == 404 and get(port, "/snapshot.jpg?event=x")[0] == 400

        code, headers, jpeg = get(port, "/snapshot.jpg")
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert code == 200 and img.shape == (480, 640, 3) and float(img.std()) > 20

        # One viewer: frames are encoded, at no more than max_fps.
        viewer = MjpegReader(port)
        viewer.start()
        wait_until(lambda: viewer.frames >= 1, 5, "the first MJPEG frame")
        before, t0 = sink.server.frames.published, time.monotonic()
        time.sleep(2.0)
        rate = (sink.server.frames.published - before) / (time.monotonic() - t0)
        viewer.stop.set()
        assert viewer.status == 200 and 2 <= rate <= 5.5, rate
        assert cv2.imdecode(np.frombuffer(viewer.last_jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (480, 640, 3)

        code, _, body = get(port, "/healthz")
        assert code == 200 and json.loads(body)["status"] == "ok"
        code, headers, page = get(port, "/")
        assert code == 200 and b"stream.mjpg" in page and "default-src 'none'" in headers["content-security-policy"]
        assert b"//cdn" not in page and b"https://" not in page  # self-contained: nothing from the internet
    assert box["stats"].frames > 40


def test_only_the_listed_paths_exist_and_requests_are_bounded(clf: Classifier, scenes_clip: Path) -> None:
    sink = WebSink(WebOptions(port=0), environ={})
    with running(clf, scenes_clip, sink):
        port = sink.port
        wait_until(lambda: sink.state.frames > 0, 10, "the first frame")
        for path in (
            "/page.html",
            "/web/page.html",
            "/../../etc/passwd",
            "/%2e%2e/%2e%2e/etc/passwd",
            "/api",
            "/api/status/x",
            "/index.html",
        ):
            assert get(port, path)[0] == 404, path
        assert raw_request(port, b"GET /" + b"a" * 5000 + b" HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 414")
        assert raw_request(port, b"GET /api/status HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello").startswith(b"HTTP/1.0 413")
        assert raw_request(port, b"POST /api/status HTTP/1.0\r\nContent-Length: 0\r\n\r\n").startswith(b"HTTP/1.0 501")
        head = raw_request(port, b"HEAD /api/status HTTP/1.0\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200") and head.endswith(b"\r\n\r\n")  # headers only


def test_wrong_or_missing_password_gets_401_and_the_password_is_never_logged(
    clf: Classifier, scenes_clip: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    secret = "s3cret-pass:with colon"
    caplog.set_level(logging.DEBUG)
    # A loopback bind given a password uses it: the same code path as a network bind, without leaving this machine.
    sink = WebSink(WebOptions(port=0), environ={PASSWORD_ENV: secret})
    with running(clf, scenes_clip, sink):
        port = sink.port
        wait_until(lambda: sink.state.frames > 0, 10, "the first frame")
        for path in ("/", "/api/status", "/api/events", "/api/events/stream", "/stream.mjpg", "/snapshot.jpg"):
            code, headers, _ = get(port, path)
            assert code == 401 and headers["www-authenticate"].startswith("Basic realm="), path
            assert get(port, path, basic("wrong"))[0] == 401
        assert get(port, "/", {"Authorization": "Basic !!notbase64"})[0] == 401
        assert get(port, "/", {"Authorization": "Bearer " + secret})[0] == 401
        assert get(port, "/", basic(secret))[0] == 200
        assert get(port, "/api/status", basic(secret, user="anyone"))[0] == 200
        assert get(port, "/healthz")[0] == 200  # liveness needs no password and says nothing private
        viewer = MjpegReader(port, basic(secret))
        viewer.start()
        wait_until(lambda: viewer.frames >= 2, 5, "MJPEG frames with the password")
        viewer.stop.set()
    out, err = capfd.readouterr()
    assert "wrong password" in caplog.text
    assert secret not in caplog.text and secret not in out and secret not in err


# --- never slowing the camera ----------------------------------------------------------------------------
def test_a_client_that_never_reads_does_not_stall_the_loop(clf: Classifier, fast_clip: Path) -> None:
    sink = WebSink(WebOptions(port=0, max_fps=30), environ={})
    with running(clf, fast_clip, sink, realtime=False) as box:
        port = sink.port
        stalled = [stalled_client(port) for _ in range(2)]
        slow = MjpegReader(port, pause=1.0)  # reads one frame a second
        slow.start()
        wait_until(lambda: "stats" in box, 60, "the end of the clip")
    stats = box["stats"]
    assert stats.frames == 200 and stats.stopped_by == "end"
    # write() only stores a reference: the sinks stage stays far below a millisecond even with stalled viewers.
    assert stats.stages["sinks"][1] < 0.002, stats.stages["sinks"]
    # close() does not wait for the stalled clients' socket timeout: it cuts their connections.
    assert box["returned"] - box["switch"].last_write < 3.0
    assert sink.server is not None and sink.server.frames.published > 5
    for s in stalled:
        s.close()
    # The port is free at once: a new web view (a restarted service) listens on it again.
    again = WebSink(WebOptions(port=port), environ={})
    again.start()
    assert again.port == port
    again.close()


def test_twenty_viewers_stay_bounded_in_memory_and_threads(clf: Classifier, scenes_clip: Path) -> None:
    sink = WebSink(WebOptions(port=0, max_viewers=20), environ={})
    proc = psutil.Process()
    with running(clf, scenes_clip, sink):
        port = sink.port
        warm = MjpegReader(port)
        warm.start()
        wait_until(lambda: warm.frames >= 5, 10, "a warm-up viewer")
        warm.stop.set()
        warm.join(5)
        wait_until(lambda: sink.server is not None and sink.server.frames.viewers == 0, 5, "the warm-up viewer to leave")
        rss0, threads0 = proc.memory_info().rss, threading.active_count()
        readers = [MjpegReader(port, pause=0.3 if i % 2 else 0.0) for i in range(10)]
        for r in readers:
            r.start()
        stalled = [stalled_client(port) for _ in range(10)]
        wait_until(lambda: sink.server is not None and sink.server.frames.viewers == 20, 10, "20 viewers")
        over = MjpegReader(port)
        over.run()  # the 21st is refused at once
        assert over.status == 503
        peak = rss0
        for _ in range(30):
            time.sleep(0.1)
            peak = max(peak, proc.memory_info().rss)
        assert all(r.frames >= 2 for r in readers), str([(r.status, r.frames) for r in readers])
        for r in readers:
            r.stop.set()
        for s in stalled:
            s.close()
    growth_mb = (peak - rss0) / 2**20
    # A frame is ~40 KB: per-viewer queues would grow without bound; one shared newest frame does not.
    assert growth_mb < 40, f"RSS grew {growth_mb:.1f} MB with 20 viewers"
    assert threading.active_count() <= threads0 + 25


def test_more_viewers_than_allowed_get_503_until_one_leaves(clf: Classifier, scenes_clip: Path) -> None:
    sink = WebSink(WebOptions(port=0, max_viewers=2), environ={})
    with running(clf, scenes_clip, sink):
        port = sink.port
        a, b = MjpegReader(port), MjpegReader(port)
        a.start()
        b.start()
        wait_until(lambda: a.frames and b.frames, 10, "two viewers")
        code, headers, body = get(port, "/stream.mjpg")
        assert code == 503 and b"too many viewers (2)" in body and headers["retry-after"] == "5"
        a.stop.set()
        a.join(5)
        # The server notices the closed connection at its next frame (the page retries a refused stream every 3 s).
        wait_until(lambda: sink.server is not None and sink.server.frames.viewers == 1, 5, "the server to see a viewer leave")
        c = MjpegReader(port)
        c.start()
        wait_until(lambda: c.frames >= 1, 10, "a viewer admitted after one left")
        b.stop.set()
        c.stop.set()


# --- stopping with the loop ---------------------------------------------------------------------------------
CHILD = r"""
import sys
from edge_classifier import Classifier, LoopOptions, run_pipeline
from edge_classifier.sinks.callback import CallbackSink
from edge_classifier.sinks.web import WebOptions, WebSink

model, clip = sys.argv[1], sys.argv[2]
with Classifier(model) as clf:
    web = WebSink(WebOptions(port=0), classifier=clf, environ={})
    told = []
    def announce(result):
        if not told:
            told.append(1)
            print("PORT", web.port, flush=True)
    options = LoopOptions(source_options={"realtime": True, "full_frames": True})
    stats = run_pipeline(clf, clip, [web, CallbackSink(announce)], options, stats_interval=0)
    print("STOPPED", stats.stopped_by, flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_server_stops_with_the_loop_on_a_signal_and_frees_its_port(
    tmp_path: Path, scenes_clip: Path, sig: signal.Signals
) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(MODEL), str(scenes_clip)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line + (proc.stderr.read() if proc.stderr else "")
        port = int(line.split()[1])
        viewer = MjpegReader(port)
        viewer.start()
        events = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        events.request("GET", "/api/events/stream")
        stream = events.getresponse()
        assert stream.status == 200
        stalled = stalled_client(port)  # one that never reads must not hold the shutdown for its socket timeout
        wait_until(lambda: viewer.frames >= 2, 10, "frames in the child's stream")
        t0 = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"STOPPED {sig.name}" in out and f"stopped by {sig.name}" in err, out + err
    assert took < 8.0, f"the child took {took:.1f} s to stop\n{err}"
    stalled.close()
    viewer.join(5)
    assert not viewer.is_alive()  # the stream ended with the server
    assert stream.read() is not None  # the event stream's connection ended (read to EOF, no hang)
    events.close()
    with socket.socket() as s:  # nothing listens on the port any more (REUSEADDR: the closed connections may linger in TIME_WAIT)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


# --- a real browser -------------------------------------------------------------------------------------------
def test_the_page_in_chromium_follows_the_scene(browser: Any, clf: Classifier, scenes_clip: Path, tmp_path: Path) -> None:
    secret = "browser-pass"
    sink = WebSink(WebOptions(port=0, camera="porch"), classifier=clf, environ={PASSWORD_ENV: secret})
    shot = tmp_path / "page.png"
    with running(clf, scenes_clip, sink):
        url = sink.url
        # Without the password, the browser gets 401 and nothing else.
        anon = browser.new_context()
        assert anon.request.get(url).status == 401
        anon.close()
        # bypass_csp: Playwright's wait_for_function evaluates JavaScript, which the page's CSP forbids on purpose.
        context = browser.new_context(
            http_credentials={"username": "me", "password": secret}, viewport={"width": 1000, "height": 800}, bypass_csp=True
        )
        page = context.new_page()
        assert page.goto(url).status == 200
        seen: list[str] = []
        for _, label in SCENES:
            page.wait_for_function("(want) => document.getElementById('label').textContent === want", arg=label, timeout=20_000)
            seen.append(page.inner_text("#label"))
        assert seen == [label for _, label in SCENES]
        # The stream is an image with real pixels, not a broken icon.
        size = page.evaluate("() => { const i = document.getElementById('stream'); return [i.naturalWidth, i.naturalHeight]; }")
        assert size == [640, 480]
        box = page.locator("#stream").bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 100
        # Events with snapshots, health and the chart are filled in.
        page.wait_for_function("() => document.querySelectorAll('#events li[data-seq] img').length >= 3", timeout=10_000)
        assert page.inner_text("#h-model") == MODEL.name and "cpu" in page.inner_text("#h-runtime")
        assert page.inner_text("#camera") == "porch" and page.inner_text("#conn") == "live"
        page.wait_for_function(
            "() => document.getElementById('line-fps').getAttribute('points').split(' ').length >= 3", timeout=10_000
        )
        page.screenshot(path=str(shot))
        # A phone: the page fits the screen's width (no sideways scrolling).
        phone = context.new_page()
        phone.set_viewport_size({"width": 390, "height": 844})
        phone.goto(url)
        phone.wait_for_function("() => document.getElementById('stream').naturalWidth > 0", timeout=10_000)
        assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
        context.close()
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert shot.stat().st_size > 10_000 and pixels.std() > 20, "the screenshot is blank"
    x, y, w, h = (round(box[k]) for k in ("x", "y", "width", "height"))
    view = pixels[y : y + h, x : x + w]
    assert view.std() > 20, "the live view in the screenshot is blank"


def test_the_page_lists_events_from_before_its_event_stream_opened(browser: Any, clf: Classifier, scenes_clip: Path) -> None:
    """The race a loaded machine hits: the page's first api/events answer is older than its stream subscription.

    The first answer is made empty here (as if it left the server just before the cat event), and the page opens only
    after that event was published, so neither that answer nor the stream carries it: the page must fetch the list
    again once the stream is subscribed.
    """
    sink = WebSink(WebOptions(port=0), classifier=clf)
    with running(clf, scenes_clip, sink):
        assert sink.server is not None
        deadline = time.monotonic() + 20
        while not sink.server.events() and time.monotonic() < deadline:
            time.sleep(0.05)
        first = sink.server.events()
        assert first, "no label event within 20 s"
        answered: list[str] = []

        def stale_first_answer(route: Any) -> None:
            answered.append(route.request.url)
            if len(answered) == 1:
                route.fulfill(status=200, content_type="application/json", body=json.dumps({"events": []}))
            else:
                route.continue_()

        context = browser.new_context(bypass_csp=True)
        page = context.new_page()
        page.route("**/api/events", stale_first_answer)
        assert page.goto(sink.url).status == 200
        page.wait_for_selector(f'#events li[data-seq="{first[-1]["seq"]}"]', timeout=10_000)
        assert len(answered) >= 2
        page.wait_for_function("() => document.querySelectorAll('#events li[data-seq]').length >= 2", timeout=20_000)
        shown = page.evaluate(
            "() => Array.from(document.querySelectorAll('#events li[data-seq]'), (li) => Number(li.dataset.seq))"
        )
        assert shown == sorted(shown, reverse=True), "the events are not newest first"
        context.close()

"""A live MJPEG stream over real HTTP (127.0.0.1), read by OpenCV's FFmpeg backend and classified end to end.

The server (tests/mjpeg_server.py) is real: a threaded http.server sending ``multipart/x-mixed-replace``
JPEG parts made from the Coral photos, the way IP cameras and mjpg-streamer do. Each test makes it
fail the way a network camera does (drop, stall, vanish, corrupt frame) and checks what the user gets
from ``pipeline.stream`` / ``run_pipeline`` with Coral's MobileNetV2: a reconnect, a counted warning
or one clear error, and never a hang (every test is bounded by a pytest timeout).
"""

from __future__ import annotations

import io
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_classifier import Classifier, sources
from edge_classifier.errors import CameraTimeoutError, SourceError
from edge_classifier.loop import stream
from edge_classifier.loop_options import LoopOptions
from edge_classifier.results import Result
from edge_classifier.session import run_pipeline
from edge_classifier.sinks import CallbackSink, JsonlSink
from edge_classifier.sources.opencv import OpenCvSource, probe_stream_server, redact_url
from tests.mjpeg_server import MjpegServer, jpeg_of

pytestmark = pytest.mark.timeout(60)


class LogWatch(logging.Handler):
    """Collects the OpenCV source's log lines and lets a test wait for one (no fixed sleeps)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self._cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._cond:
            self.records.append(record)
            self._cond.notify_all()

    def first(self, text: str) -> logging.LogRecord | None:
        """The first record whose message contains ``text``."""
        with self._cond:
            return next((r for r in self.records if text in r.getMessage()), None)

    def wait_for(self, text: str, timeout: float) -> logging.LogRecord:
        """The first record containing ``text``, waiting up to ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = next((r for r in self.records if text in r.getMessage()), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no log line with {text!r} within {timeout} s; got {[r.getMessage() for r in self.records]}"
                    )
                self._cond.wait(left)

    def messages(self) -> list[str]:
        with self._cond:
            return [r.getMessage() for r in self.records]


@pytest.fixture
def logs() -> Iterator[LogWatch]:
    watch = LogWatch()
    logger = logging.getLogger("edge_classifier.sources.opencv")
    old_level = logger.level
    logger.addHandler(watch)
    logger.setLevel(logging.INFO)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)
        logger.setLevel(old_level)


@pytest.fixture(scope="module")
def clf(mnv2: Path) -> Iterator[Classifier]:
    with Classifier(mnv2) as c:
        yield c


@pytest.fixture(scope="module")
def photos(coral: Path) -> dict[str, bytes]:
    return {"cat": jpeg_of(coral / "cat.bmp"), "parrot": jpeg_of(coral / "parrot.jpg")}


@pytest.fixture
def server(photos: dict[str, bytes]) -> Iterator[MjpegServer]:
    srv = MjpegServer(photos["cat"], fps=25.0).start()
    try:
        yield srv
    finally:
        srv.stop()


def top(result: Result) -> str:
    assert result.top is not None
    return result.top.label


def open_stream(url: str, **options: Any) -> OpenCvSource:
    """``sources.open(url)``: what the user calls; a URL gives the OpenCV (FFmpeg) source."""
    src = sources.open(url, **options)
    assert isinstance(src, OpenCvSource)
    return src


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- 1. frames arrive and are classified ----------------------------------------------------------
def test_mjpeg_over_http_is_a_live_source_classified_end_to_end(clf: Classifier, server: MjpegServer) -> None:
    src = open_stream(server.url, read_timeout=3.0)
    assert isinstance(src, OpenCvSource) and src.kind == "stream" and src.live
    results = list(stream(clf, src, LoopOptions(max_frames=5)))
    assert len(results) == 5
    assert [top(r) for r in results] == ["Egyptian cat"] * 5
    assert results[0].frame.rgb.shape == (224, 224, 3) and results[0].frame.source == server.url
    # Frame indices count every frame the source read; a live source may skip some while the model works.
    assert [r.frame.index for r in results] == sorted({r.frame.index for r in results})
    assert src.reconnects == 0 and src.decode_errors == 0 and src._cap is None  # released at the end


# --- 2. the server drops the connection and comes back on the same port ----------------------------
def test_dropped_stream_reconnects_with_backoff_and_the_loop_resumes(
    clf: Classifier, server: MjpegServer, photos: dict[str, bytes], logs: LogWatch
) -> None:
    src = open_stream(server.url, read_timeout=3.0, reconnect_timeout=20.0)
    port = server.port
    gen = stream(clf, src, LoopOptions(max_frames=400))
    try:
        before = [top(next(gen)) for _ in range(3)]
        assert before == ["Egyptian cat"] * 3
        server.show(photos["parrot"])
        server.stop()  # every connection cut, nothing listening: a camera rebooting
        logs.wait_for("reconnect attempt 2 failed", timeout=15.0)  # it backs off instead of spinning
        server.start()
        assert server.port == port
        after: list[str] = []
        for result in gen:
            after.append(top(result))
            if after[-3:] == ["macaw"] * 3:
                break
    finally:
        gen.close()  # type: ignore[attr-defined]
    assert after[-3:] == ["macaw"] * 3, after
    assert src.reconnects == 1 and src.decode_errors == 0
    assert server.connections == 2
    # Back-off: 0.5 s before the first attempt, 1 s before the second, 2 s before the third (which succeeds).
    dropped = logs.first("reconnecting for up to 20 s")
    first = logs.first("reconnect attempt 1 failed")
    second = logs.first("reconnect attempt 2 failed")
    back = logs.first("reconnected after")
    assert dropped and first and second and back, logs.messages()
    assert first.created - dropped.created >= 0.45
    assert second.created - first.created >= 0.95
    assert back.created - second.created >= 1.95  # the third wait (2 s), or more if the restart came late
    assert server.url in dropped.getMessage()


# --- 3. the server stalls: socket open, nothing sent ----------------------------------------------
def test_stalled_stream_times_out_at_read_timeout_then_reconnects(
    clf: Classifier, server: MjpegServer, photos: dict[str, bytes], logs: LogWatch
) -> None:
    src = open_stream(server.url, read_timeout=1.0, reconnect_timeout=20.0)
    gen = stream(clf, src, LoopOptions(max_frames=400))
    try:
        assert top(next(gen)) == "Egyptian cat"
        server.show(photos["parrot"])
        server.stall()
        t_stall = time.time()  # log records carry wall-clock times
        dropped = logs.wait_for("reconnecting", timeout=10.0)
        waited = dropped.created - t_stall
        # FFmpeg's read timeout (the source's read_timeout, the CLI's --timeout) ends the blocked read.
        assert 0.8 <= waited < 5.0, waited
        server.stall(False)
        labels = []
        for result in gen:
            labels.append(top(result))
            if labels[-2:] == ["macaw"] * 2:
                break
    finally:
        gen.close()  # type: ignore[attr-defined]
    assert labels[-2:] == ["macaw"] * 2, labels
    assert src.reconnects == 1 and src.decode_errors == 0


def test_stream_stalled_for_good_raises_camera_timeout_naming_the_url(
    clf: Classifier, server: MjpegServer, logs: LogWatch
) -> None:
    src = open_stream(server.url, read_timeout=1.0, reconnect_timeout=2.5)
    gen = stream(clf, src)
    assert top(next(gen)) == "Egyptian cat"
    server.stall()
    t0 = time.monotonic()
    with pytest.raises(CameraTimeoutError) as info:
        for _ in gen:
            pass
    took = time.monotonic() - t0
    # Detection (read_timeout) + reconnect window (waits and opens inside it) + the closing TCP probe.
    assert took < 1.0 + 2.5 + 2.0 + 1.5, took
    err = info.value
    assert err.thing == server.url
    assert "did not come back within 2.5 s" in err.cause and "accepts connections but sends no video" in err.cause
    assert "reconnect_timeout" in err.fix and src._cap is None
    assert logs.first("reconnect attempt 1 failed") is not None


def test_loop_stall_timeout_bounds_a_long_reconnect(clf: Classifier, server: MjpegServer) -> None:
    """The loop's own stall_timeout still ends a run whose source would keep retrying for a minute."""
    src = open_stream(server.url, read_timeout=1.0, reconnect_timeout=60.0)
    gen = stream(clf, src, LoopOptions(stall_timeout=2.0))
    assert top(next(gen)) == "Egyptian cat"
    server.stall()
    t0 = time.monotonic()
    with pytest.raises(CameraTimeoutError, match="delivered no frame for 2 s") as info:
        for _ in gen:
            pass
    assert time.monotonic() - t0 < 2.0 + 1.0 + 3.0  # the capture thread wakes from the back-off and is joined
    assert info.value.thing == server.url and src._cap is None


# --- 4. the server is gone for good ---------------------------------------------------------------
def test_stream_gone_for_good_ends_the_run_with_one_clear_error(clf: Classifier, server: MjpegServer, tmp_path: Path) -> None:
    src = open_stream(server.url, read_timeout=2.0, reconnect_timeout=2.5)
    out = tmp_path / "out.jsonl"
    err = io.StringIO()
    seen: list[Result] = []

    def unplug(result: Result) -> None:
        seen.append(result)
        if len(seen) == 3:
            server.stop()

    t0 = time.monotonic()
    with pytest.raises(CameraTimeoutError) as info:
        run_pipeline(clf, src, [JsonlSink(out), CallbackSink(unplug)], stats_file=err, handle_signals=False)
    assert time.monotonic() - t0 < 10.0
    e = info.value
    assert isinstance(e, SourceError) and e.thing == server.url
    assert "did not come back within 2.5 s" in e.cause and "connection refused" in e.cause, e.cause
    assert "network" in e.fix and "URL" in e.fix
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) >= 3 and all(r["classes"][0]["label"] == "Egyptian cat" for r in records)
    assert "stopped by error" in err.getvalue() and src._cap is None


def test_stream_that_is_not_there_at_start_fails_at_once_naming_url_cause_and_fix() -> None:
    url = f"http://127.0.0.1:{free_port()}/stream.mjpg"
    t0 = time.monotonic()
    with pytest.raises(SourceError) as info, sources.open(url, read_timeout=3.0):
        pass
    assert time.monotonic() - t0 < 3.0
    e = info.value
    assert e.thing == url and "connection refused" in e.cause and "ffprobe" in e.fix


def test_stream_errors_and_logs_never_show_the_password() -> None:
    assert redact_url("rtsp://admin:s3cret@10.0.0.7:554/live") == "rtsp://admin:***@10.0.0.7:554/live"
    assert redact_url("http://127.0.0.1:8080/a.mjpg") == "http://127.0.0.1:8080/a.mjpg"
    port = free_port()
    with pytest.raises(SourceError) as info, sources.open(f"http://admin:s3cret@127.0.0.1:{port}/s.mjpg", read_timeout=2.0):
        pass
    assert "s3cret" not in str(info.value) and "admin:***@" in str(info.value)


def test_probe_tells_a_silent_server_from_a_missing_one(server: MjpegServer) -> None:
    assert "accepts connections but sends no video" in probe_stream_server(server.url, 2.0)
    assert "connection refused" in probe_stream_server(f"http://127.0.0.1:{free_port()}/", 2.0)
    assert "does not resolve" in probe_stream_server("rtsp://no-such-host.invalid/live", 2.0)


# --- 5. a frame that fails to decode --------------------------------------------------------------
def test_undecodable_frames_are_skipped_and_counted_without_a_reconnect(
    clf: Classifier, server: MjpegServer, logs: LogWatch
) -> None:
    src = open_stream(server.url, read_timeout=3.0)
    gen = stream(clf, src, LoopOptions(max_frames=400))
    try:
        assert top(next(gen)) == "Egyptian cat"
        sent = server.parts_sent
        server.corrupt(3)
        assert server.wait_for(lambda: server.parts_sent >= sent + 6, timeout=10.0)
        labels = []
        for result in gen:
            labels.append(top(result))
            if src.decode_errors >= 3 and len(labels) >= 3:
                break
    finally:
        gen.close()  # type: ignore[attr-defined]
    # FFmpeg cannot decode the part, OpenCV's read() answers False, the next part decodes: skipped, not a drop.
    assert src.decode_errors == 3 and src.reconnects == 0 and server.connections == 1
    assert set(labels) == {"Egyptian cat"}
    assert any("could not be decoded and were skipped (3 so far)" in m or "(3 so far)" in m for m in logs.messages()), (
        logs.messages()
    )


# --- the same stream through `edge-classifier run` -------------------------------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_classifier", "run", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_classifies_the_stream(server: MjpegServer, mnv2: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    p = run_cli("--model", str(mnv2), "--source", server.url, "--timeout", "3", "--max-frames", "3", "--jsonl", str(out))
    assert p.returncode == 0, p.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["classes"][0]["label"] for r in records] == ["Egyptian cat"] * 3
    assert records[0]["source"] == server.url and "stopped by max_frames" in p.stderr


def test_cli_timeout_bounds_opening_a_silent_stream(server: MjpegServer, mnv2: Path) -> None:
    server.stall()
    t0 = time.monotonic()
    p = run_cli("--model", str(mnv2), "--source", server.url, "--timeout", "1", "--max-frames", "3")
    assert time.monotonic() - t0 < 30.0
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert f"{server.url}: the stream cannot be opened within 1 s" in p.stderr
    assert "accepts connections but sends no video" in p.stderr and "fix:" in p.stderr

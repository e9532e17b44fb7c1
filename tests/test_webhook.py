"""The webhook sink against a local HTTP server started by the test, fed by the real camera loop."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from edge_classifier import Classifier, LoopOptions, run_pipeline
from edge_classifier.cli import main
from edge_classifier.errors import ConfigError
from edge_classifier.sinks.payload import SCHEMA_VERSION
from edge_classifier.sinks.webhook import WebhookSink

from .clips import write_clip


class Server:
    """A real HTTP server on 127.0.0.1 that records POSTs; ``script`` gives the status (or a delay) per request."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.attempts = 0
        self.script: list[int | float] = []  # int: answer with this status; float: sleep this long, then 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                outer.attempts += 1
                body = self.rfile.read(int(self.headers["Content-Length"]))
                step = outer.script.pop(0) if outer.script else 200
                if isinstance(step, float):
                    time.sleep(step)
                    step = 200
                if step == 200:
                    outer.bodies.append(json.loads(body))
                    outer.headers.append(dict(self.headers))
                try:
                    self.send_response(step)
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client timed out and hung up

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


@pytest.fixture(scope="module")
def clip(coral: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "cat_parrot.avi", [(coral / "cat.bmp", 20), (coral / "parrot.jpg", 20)])


@pytest.fixture(scope="module")
def clf(mnv2: Path) -> Iterator[Classifier]:
    with Classifier(mnv2) as c:
        yield c


def test_loop_posts_each_label_event(clf: Classifier, clip: Path, server: Server) -> None:
    sink = WebhookSink(server.url, camera="porch", headers={"Authorization": "Bearer t0ken"})
    stats = run_pipeline(clf, str(clip), [sink], LoopOptions(smoothing=0.5), stats_interval=0, handle_signals=False)
    assert stats.frames == 40
    assert [b["label"] for b in server.bodies] == ["Egyptian cat", "macaw"]
    first, second = server.bodies
    assert first["schema_version"] == SCHEMA_VERSION and first["type"] == "label" and first["camera"] == "porch"
    assert second["previous_label"] == "Egyptian cat" and second["id"] == 88 and second["top"][0]["label"] == "macaw"
    assert server.headers[0]["Content-Type"] == "application/json" and server.headers[0]["Authorization"] == "Bearer t0ken"
    assert sink.sent == 2 and sink.failed == 0


def test_server_errors_are_retried_with_backoff(server: Server) -> None:
    server.script = [503, 500]
    sink = WebhookSink(server.url, retries=3, backoff=0.05)
    t0 = time.monotonic()
    assert sink.post(b'{"label": "macaw"}')
    assert server.attempts == 3 and server.bodies == [{"label": "macaw"}]
    assert time.monotonic() - t0 >= 0.05 + 0.1  # waited 0.05 s, then 0.1 s


def test_client_errors_are_not_retried(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    server.script = [404]
    sink = WebhookSink(server.url, retries=3, backoff=0.01)
    assert not sink.post(b"{}")
    assert server.attempts == 1 and sink.failed == 1
    assert "HTTP 404" in caplog.text and "not delivered" in caplog.text


def test_timeout_then_give_up_and_the_loop_goes_on(clf: Classifier, clip: Path, server: Server) -> None:
    # Every request takes longer than the timeout: each event costs (1 + retries) timeouts, in the sink's thread only.
    server.script = [1.0] * 20
    sink = WebhookSink(server.url, timeout=0.2, retries=1, backoff=0.05)
    t0 = time.monotonic()
    stats = run_pipeline(clf, str(clip), [sink], LoopOptions(smoothing=0.5), stats_interval=0, handle_signals=False)
    assert stats.frames == 40
    assert sink.failed == 2 and sink.sent == 0 and server.attempts == 4
    assert stats.stages["sinks"][1] < 0.05  # p95  # the loop only queued the results
    assert time.monotonic() - t0 < 20


def test_nobody_listening_fails_fast_and_counts(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port with nothing behind it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = WebhookSink(f"http://127.0.0.1:{port}/hook", retries=2, backoff=0.01)
    assert not sink.post(b"{}") and sink.failed == 1


def test_close_cuts_a_backoff_short(server: Server) -> None:
    server.script = [503] * 5
    sink = WebhookSink(server.url, retries=4, backoff=5.0)
    threading.Timer(0.3, sink.close).start()
    t0 = time.monotonic()
    assert not sink.post(b"{}")
    assert time.monotonic() - t0 < 3


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "127.0.0.1:8080/hook", "http:///hook"])
def test_bad_webhook_url(url: str) -> None:
    with pytest.raises(ConfigError, match="http:// or https://"):
        WebhookSink(url)


def test_cli_webhook(mnv2: Path, clip: Path, server: Server) -> None:
    argv = [
        "run",
        "--model",
        str(mnv2),
        "--source",
        str(clip),
        "--webhook",
        server.url,
        "--smooth",
        "0.5",
        "--stats-interval",
        "0",
        "-q",
    ]
    assert main(argv) == 0
    assert [b["label"] for b in server.bodies] == ["Egyptian cat", "macaw"]
    assert main(["run", "--model", str(mnv2), "--source", str(clip), "--webhook", "ftp://127.0.0.1/x"]) == 1

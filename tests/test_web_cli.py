"""`edge-classifier run --web`: the command line wires the web view, serves the live status, and frees its port on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.clips import write_clip
from tests.conftest import CORAL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_run_serves_the_web_view_and_frees_the_port(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", [(CORAL / "cat.bmp", 150), (CORAL / "parrot.jpg", 150)], (320, 240), fourcc="mp4v")
    port = _free_port()
    cmd = [sys.executable, "-m", "edge_classifier", "run", "--model", str(CORAL / "mobilenet_v2_1.0_224_quant.tflite"),
           "--source", str(clip), "--realtime", "--web", f"127.0.0.1:{port}", "-q", "--stats-interval", "0"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        status: dict = {}  # type: ignore[type-arg]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                status = _get(f"http://127.0.0.1:{port}/api/status")
            except OSError:
                time.sleep(0.2)
                continue
            if json.dumps(status).count("Egyptian cat"):
                break
            time.sleep(0.2)
        assert "Egyptian cat" in json.dumps(status), status
        assert status["schema_version"] >= 1 and status["model"] == "mobilenet_v2_1.0_224_quant.tflite"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    with socket.socket() as s:
        # Nothing listens any more: a new server (which sets SO_REUSEADDR, as the web view does) can bind at once,
        # past the TIME_WAIT of the connections this test made.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


def test_a_network_address_without_a_password_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "edge_classifier", "run", "--web", "0.0.0.0:8080", "--max-frames", "1"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert p.returncode == 1 and "no password is set" in p.stderr and "--web-password-file" in p.stderr
    assert "Traceback" not in p.stderr and "[run]" not in p.stderr  # refused before anything ran

"""The outputs against a hostile world (issue 15): a full disk, a closed pipe, a broker that never comes, a webhook
with credentials in its URL or dead at shutdown, a second Ctrl-C while closing, and passwords that must not leak.

The full disk is real: a 2 MiB tmpfs mounted for the test (we run as root in CI). Where mounting is not permitted the
disk tests are skipped with one reason, except under ``CI=true``, where they must run.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge_classifier import Classifier, LoopOptions, run_pipeline
from edge_classifier.cli import main
from edge_classifier.errors import ConfigError, SinkError
from edge_classifier.results import Classification, Frame, Result
from edge_classifier.sinks import JsonlSink, RecorderSink
from edge_classifier.sinks.mqtt import MqttSink, parse_mqtt_url
from edge_classifier.sinks.recorder import room_needed
from edge_classifier.sinks.webhook import WebhookSink
from tests.clips import read_video, write_clip
from tests.conftest import under_ci
from tests.mosquitto import Mosquitto

CORAL = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "coral"
MODEL = str(CORAL / "mobilenet_v2_1.0_224_quant.tflite")
SECRET = "s3cretpw"
TOPIC = "cameras/porch"


# --- fixtures -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clf() -> Iterator[Classifier]:
    with Classifier(MODEL) as c:
        yield c


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cat.bmp for 45 frames, then parrot.jpg for 45: two label events with smoothing."""
    return write_clip(tmp_path_factory.mktemp("clip") / "cat_parrot.avi", [(CORAL / "cat.bmp", 45), (CORAL / "parrot.jpg", 45)])


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real, separate 2 MiB file system (tmpfs), unmounted after the test."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    mount = shutil.which("mount")
    proc = (
        subprocess.run(
            [mount or "mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True, check=False
        )
        if mount
        else None
    )
    if proc is None or proc.returncode != 0:
        why = proc.stderr.strip() if proc is not None else "no mount command"
        reason = f"cannot mount a 2 MiB tmpfs to fill a disk for real ({why}): needs root (CAP_SYS_ADMIN)"
        if under_ci():
            pytest.fail(f"CI must run the full-disk tests: {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


def fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` with a file until about ``leave`` bytes stay free."""
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    assert free > leave, f"the test disk has only {free} bytes free"
    with open(disk / "filler.bin", "wb") as f:
        f.write(b"\0" * (free - leave))
    st = os.statvfs(disk)
    assert abs(st.f_bavail * st.f_frsize - leave) <= 8192


def noisy_result(index: int, size: tuple[int, int] = (320, 240)) -> Result:
    """A result whose frame is the cat photo under strong noise: it compresses badly, so it fills a disk quickly."""
    rng = np.random.default_rng(index)
    cat = cv2.cvtColor(cv2.resize(cv2.imread(str(CORAL / "cat.bmp")), size), cv2.COLOR_BGR2RGB)
    rgb = np.clip(cat.astype(np.int16) + rng.integers(-60, 60, cat.shape), 0, 255).astype(np.uint8)
    return Result(
        Frame(rgb, index, index / 20, "test"), [Classification(286, "Egyptian cat", 0.8)], np.zeros(1000, np.float32), {}
    )


def cli_run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "edge_classifier", "run", "--model", MODEL, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


INTERNAL_NAMES = ("QueuedSink", "JsonlSink", "RecorderSink", "MqttSink", "WebhookSink", "QueueWorker", "Traceback")


# --- 2. a recording onto a full disk ---------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".mp4", ".avi"])
def test_a_recording_onto_a_full_disk_stops_with_the_cause_and_stays_playable(small_disk: Path, ext: str) -> None:
    path = small_disk / f"rec{ext}"
    sink = RecorderSink(path, fps=20)
    sink.start()
    with pytest.raises(SinkError) as info:
        for i in range(500):  # 2 MiB holds far fewer noisy frames than this
            sink.write(noisy_result(i))
    err = info.value
    assert str(path) in str(err) and "the disk is full (ENOSPC)" in err.cause and "saved and playable" in err.cause
    assert "free some space" in err.fix
    with pytest.raises(SinkError):  # every later frame is refused the same way; nothing overwrites the file
        sink.write(noisy_result(999))
    sink.close()
    sink.close()
    assert sink.frames > 5
    frames, fps, size = read_video(path)  # the index was written: OpenCV (FFmpeg) reads every frame back
    assert (frames, fps, size) == (sink.frames, 20.0, (320, 240))
    if ext == ".mp4":
        assert b"moov" in path.read_bytes()


def test_a_disk_full_from_the_start_leaves_no_broken_file(small_disk: Path) -> None:
    fill(small_disk, 64 * 1024)
    path = small_disk / "rec.mp4"
    sink = RecorderSink(path, fps=20)
    sink.start()
    with pytest.raises(SinkError, match="the disk is full .*nothing was recorded"):
        sink.write(noisy_result(0))
    sink.close()
    assert not path.exists()


def test_cli_record_onto_a_full_disk_exits_1_with_the_cause_and_a_playable_file(small_disk: Path, tmp_path: Path) -> None:
    noisy = tmp_path / "noisy.png"
    cv2.imwrite(str(noisy), cv2.cvtColor(noisy_result(0, (224, 224)).frame.rgb, cv2.COLOR_RGB2BGR))
    clip = write_clip(tmp_path / "noisy.avi", [(noisy, 150)])  # compresses badly: fills the disk within the clip
    rec = small_disk / "rec.mp4"
    # Room for about 10 of its frames (2-3 KiB each on average) beyond FFmpeg's 32 KiB buffer: the disk fills even
    # when a busy machine makes the recorder drop half the frames.
    fill(small_disk, room_needed(224, 224, 0) + 24 * 1024)
    p = cli_run("--source", str(clip), "--record", str(rec), "--stats-interval", "0", "-q")
    assert p.returncode == 1, p.stderr
    assert f"error: {rec}: the disk is full (ENOSPC)" in p.stderr and "fix: free some space" in p.stderr, p.stderr
    assert not any(name in p.stderr for name in INTERNAL_NAMES), p.stderr
    assert "cannot keep up" not in p.stderr
    frames = read_video(rec)[0]
    assert 0 < frames < 150


# --- 9. JSON lines onto a full disk -----------------------------------------------------------------------------------
def test_jsonl_onto_a_full_disk_keeps_only_whole_lines(small_disk: Path) -> None:
    fill(small_disk, 10 * 1024)
    path = small_disk / "out.jsonl"
    sink = JsonlSink(path)
    sink.start()
    with pytest.raises(SinkError) as info:
        for i in range(10_000):
            sink.write(noisy_result(i, (8, 8)))
    sink.close()
    err = info.value
    assert str(path) in str(err) and "the disk is full (ENOSPC)" in err.cause and f"{sink.written} whole line(s)" in err.cause
    text = path.read_text()
    assert text.endswith("\n") and sink.written > 10
    assert [json.loads(line)["frame"] for line in text.splitlines()] == list(range(sink.written))


def test_cli_jsonl_onto_a_full_disk_says_so_in_the_users_terms(small_disk: Path, clip: Path) -> None:
    out = small_disk / "out.jsonl"
    fill(small_disk, 12 * 1024)
    p = cli_run("--source", str(clip), "--jsonl", str(out), "--stats-interval", "0", "-q")
    assert p.returncode == 1, p.stderr
    assert f"error: {out}: the disk is full (ENOSPC)" in p.stderr, p.stderr
    assert not any(name in p.stderr for name in INTERNAL_NAMES), p.stderr
    assert "closing" not in p.stderr
    lines = out.read_text().splitlines()
    assert 0 < len(lines) < 90 and all(json.loads(line)["frame"] == i for i, line in enumerate(lines))


# --- 8. broken pipes ----------------------------------------------------------------------------------------------------
def into_a_pipe_closed_early(cmd: list[str], timeout: float = 180) -> tuple[int, str, bytes]:
    """Run ``cmd`` with stdout into a small pipe, read one line and close the pipe, as ``| head -1`` does.

    The pipe holds 4 KiB, so a command that prints more must meet the closed pipe.
    """
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)
    proc = subprocess.Popen(cmd, stdout=w, stderr=subprocess.PIPE)
    os.close(w)
    with os.fdopen(r, "rb") as reader:
        first = reader.readline()
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err.decode(errors="replace"), first


QUIET_FAILURES = ("Traceback", "BrokenPipeError", "Exception ignored", "error:", "check free disk space")


def test_classify_into_head_stops_quietly() -> None:
    images = [str(CORAL / "cat.bmp")] * 150  # about 40 KiB of output
    rc, err, first = into_a_pipe_closed_early([sys.executable, "-m", "edge_classifier", "classify", "--model", MODEL, *images])
    assert first.decode().strip() == str(CORAL / "cat.bmp")
    assert rc == 141, err  # what a shell reports for a tool that SIGPIPE ended (128 + 13)
    assert not any(s in err for s in QUIET_FAILURES), err


def test_run_jsonl_to_stdout_into_head_stops_quietly(clip: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "edge_classifier",
        "run",
        "--model",
        MODEL,
        "--source",
        str(clip),
        "--jsonl",
        "-",
        "--stats-interval",
        "0",
    ]
    rc, err, first = into_a_pipe_closed_early(cmd)
    assert json.loads(first)["frame"] == 0
    assert rc == 0, err
    assert "stopped by stdout closed" in err and not any(s in err for s in QUIET_FAILURES), err


# --- 10. MQTT messages never sent are counted ---------------------------------------------------------------------------
def test_mqtt_messages_never_sent_are_counted_and_summarised(clf: Classifier, clip: Path, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)  # configured, never started: down until the end
    sink = MqttSink(parse_mqtt_url(f"{broker.url}/{TOPIC}", connect_timeout=0.5))
    summary = io.StringIO()
    stats = run_pipeline(
        clf, str(clip), [sink], LoopOptions(smoothing=0.5), stats_interval=0, stats_file=summary, handle_signals=False
    )
    assert stats.events == 2 and sink.published == 0
    assert sink.dropped == 2 and stats.sink_dropped == {f"MQTT broker 127.0.0.1:{broker.port}": 2}
    assert f"2 by the outputs (MQTT broker 127.0.0.1:{broker.port}: 2)" in summary.getvalue()


def test_mqtt_messages_queued_at_sigterm_are_counted(clip: Path, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)  # never started
    long_clip = write_clip(tmp_path / "long.avi", [(CORAL / "cat.bmp", 600)])
    cmd = [sys.executable, "-m", "edge_classifier", "run", "--model", MODEL, "--source", str(long_clip), "--realtime"]
    cmd += ["--mqtt", f"{broker.url}/{TOPIC}", "--smooth", "0.5", "--stats-interval", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "frame 2: Egyptian cat (0.75)": the event is queued for the absent broker
        assert "Egyptian cat" in line, proc.communicate(timeout=30)[1]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped by SIGTERM" in err and f"1 by the outputs (MQTT broker 127.0.0.1:{broker.port}: 1)" in err, err
    assert "1 message(s) never sent" in err


# --- 12. credentials in a webhook URL ---------------------------------------------------------------------------------
class ProtectedHook:
    """A real HTTP server on 127.0.0.1 that accepts POSTs only with the expected Basic credentials (401 otherwise)."""

    def __init__(self, user: str, password: str, delay: float = 0.0) -> None:
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.delay = delay
        self.bodies: list[dict[str, Any]] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((self.path, dict(self.headers)))
                if outer.delay:
                    time.sleep(outer.delay)
                ok = self.headers.get("Authorization") == outer.expected
                if ok:
                    outer.bodies.append(json.loads(body))
                try:
                    self.send_response(200 if ok else 401)
                    self.end_headers()
                except OSError:
                    pass  # the client timed out and hung up

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_webhook_credentials_in_the_url_become_basic_auth(clf: Classifier, clip: Path) -> None:
    hook = ProtectedHook("camera", "p@ss:" + SECRET)
    try:
        url = f"http://camera:p%40ss:{SECRET}@127.0.0.1:{hook.port}/hook"  # a percent-encoded @ in the password
        sink = WebhookSink(url, camera="porch")
        assert sink.url == f"http://127.0.0.1:{hook.port}/hook" and SECRET not in sink.name
        stats = run_pipeline(
            clf, str(clip), [sink], LoopOptions(smoothing=0.5), stats_interval=0, stats_file=io.StringIO(), handle_signals=False
        )
        assert stats.frames == 90
        assert [b["label"] for b in hook.bodies] == ["Egyptian cat", "macaw"] and sink.sent == 2 and sink.failed == 0
        path, headers = hook.requests[0]
        assert path == "/hook" and headers["Host"] == f"127.0.0.1:{hook.port}" and headers["Authorization"] == hook.expected
    finally:
        hook.close()


def test_an_explicit_authorization_header_wins_over_url_credentials() -> None:
    hook = ProtectedHook("other", "token")
    try:
        sink = WebhookSink(f"http://camera:{SECRET}@127.0.0.1:{hook.port}/hook", headers={"authorization": hook.expected})
        assert sink.post(b'{"label": "macaw"}') and hook.bodies == [{"label": "macaw"}]
    finally:
        hook.close()


# --- 13. the summary's FPS is the loop's own ----------------------------------------------------------------------------
def test_fps_leaves_out_the_drain_of_a_failing_webhook(clf: Classifier, clip: Path) -> None:
    hook = ProtectedHook("u", "p", delay=1.0)  # every request outlasts the sink's timeout
    try:
        # The first event's retries and back-offs (18 s) outlast the loop: the close must wait its 2 s, then give up.
        sink = WebhookSink(f"http://u:p@127.0.0.1:{hook.port}/hook", timeout=0.5, retries=5, backoff=0.5, drain_timeout=2.0)
        summary = io.StringIO()
        t0 = time.monotonic()
        stats = run_pipeline(
            clf, str(clip), [sink], LoopOptions(smoothing=0.5), stats_interval=0, stats_file=summary, handle_signals=False
        )
        wall = time.monotonic() - t0
    finally:
        hook.close()
    assert stats.frames == 90
    assert stats.shutdown_seconds >= 1.9  # the drain waited its 2 s for the dead server
    assert stats.seconds + stats.shutdown_seconds <= wall and stats.seconds < wall - 1.9
    assert stats.fps == pytest.approx(90 / stats.seconds)
    assert "closing the source and the outputs took" in summary.getvalue()


# --- every exit path releases the files: a second Ctrl-C while closing ----------------------------------------------
class CtrlC:
    """Presses Ctrl-C for real (SIGINT to this process) at frame ``at``, and again while the run closes its outputs."""

    blocking = False

    def __init__(self, at: int) -> None:
        self.at = at

    def start(self) -> None:
        pass

    def write(self, result: Result) -> None:
        if result.frame.index == self.at:
            signal.raise_signal(signal.SIGINT)  # the first: the run stops after this frame

    def close(self) -> None:
        signal.raise_signal(signal.SIGINT)  # the second: Python's default handler raises KeyboardInterrupt here


def test_a_second_ctrl_c_while_closing_still_finalises_every_file(clf: Classifier, clip: Path, tmp_path: Path) -> None:
    out, rec = tmp_path / "out.jsonl", tmp_path / "rec.mp4"
    jsonl, recorder = JsonlSink(out), RecorderSink(rec)
    summary = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(clf, str(clip), [CtrlC(at=20), jsonl, recorder], stats_interval=0, stats_file=summary, handle_signals=True)
    lines = out.read_text().splitlines()
    assert 20 <= len(lines) < 90 and all(json.loads(line)["frame"] == i for i, line in enumerate(lines))
    assert read_video(rec)[0] == recorder.frames >= 20  # released: the index is written
    assert "stopped by SIGINT" in summary.getvalue()


# --- passwords never reach a log, an error or a record ------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        f"http://camera:{SECRET}@127.0.0.1/x",  # the scheme
        f"mqtt://camera:{SECRET}@127.0.0.1:99999/x",  # the port
        f"mqtt://camera:{SECRET}@127.0.0.1/cameras/#",  # a wildcard
        f"mqtt://camera:{SECRET}#x@127.0.0.1/x",  # a # in the password cuts the URL short
        f"mqtt://camera:{SECRET}@/x",  # no host
    ],
)
def test_mqtt_url_errors_hide_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_mqtt_url(url)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value.thing)


@pytest.mark.parametrize(
    "url",
    [f"ftp://camera:{SECRET}@127.0.0.1/x", f"http://camera:{SECRET}#x@127.0.0.1/x", f"http://camera:{SECRET}@/hook"],
)
def test_webhook_url_errors_hide_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        WebhookSink(url)
    assert SECRET not in str(info.value)


def test_webhook_and_mqtt_logs_and_summary_hide_the_password(
    clf: Classifier, clip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="edge_classifier")
    import socket

    with socket.socket() as s:  # a port nothing listens on: every POST fails, every failure is logged
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    webhook = WebhookSink(f"http://camera:{SECRET}@127.0.0.1:{dead}/hook?token={SECRET}", retries=1, backoff=0.01)
    broker = Mosquitto(tmp_path)  # never started: "not reachable", dropped messages, all logged
    mqtt = MqttSink(parse_mqtt_url(f"mqtt://camera:{SECRET}@127.0.0.1:{broker.port}/{TOPIC}", connect_timeout=0.5))
    summary = io.StringIO()
    stats = run_pipeline(
        clf, str(clip), [webhook, mqtt], LoopOptions(smoothing=0.5), stats_interval=0, stats_file=summary, handle_signals=False
    )
    assert webhook.failed == 2 and mqtt.dropped == 2
    assert "event not delivered" in caplog.text and "never sent" in caplog.text and "not reachable yet" in caplog.text
    for text in (caplog.text, summary.getvalue(), json.dumps(stats.to_dict())):
        assert SECRET not in text
    assert f"webhook http://camera:***@127.0.0.1:{dead}/hook?token=***" in caplog.text


def test_a_camera_password_reaches_no_record_no_event_and_no_message(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from tests.mjpeg_server import MjpegServer, jpeg_of

    caplog.set_level(logging.INFO, logger="edge_classifier")
    hook = ProtectedHook("hook", SECRET)
    out = tmp_path / "out.jsonl"
    try:
        with MjpegServer(jpeg_of(CORAL / "cat.bmp"), fps=30) as camera:
            source = camera.url.replace("http://", f"http://camera:{SECRET}@")
            webhook = f"http://hook:{SECRET}@127.0.0.1:{hook.port}/hook"
            argv = ["run", "--model", MODEL, "--source", source, "--max-frames", "10", "--jsonl", str(out), "--webhook", webhook]
            argv += ["--smooth", "0.5"]
            assert main([*argv, "--stats-interval", "0", "-v"]) == 0
    finally:
        hook.close()
    captured = capsys.readouterr()
    records = out.read_text()
    assert len(records.splitlines()) == 10 and hook.bodies, captured.err
    for where, text in {
        "stdout": captured.out,
        "stderr": captured.err,
        "log": caplog.text,
        "records": records,
        "events": json.dumps(hook.bodies),
    }.items():
        assert SECRET not in text, f"the password leaked into {where}"

"""`edge-classifier run` as a user runs it: real subprocesses, signals, files left behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.clips import read_video, write_clip

CORAL = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "coral"
MODEL = str(CORAL / "mobilenet_v2_1.0_224_quant.tflite")


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_classifier", "run", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def write_video(path: Path, segments: list[tuple[str, int]], size: tuple[int, int] = (320, 240)) -> Path:
    """An mp4 (mp4v) of each Coral photo resized to ``size``, ``count`` frames each."""
    return write_clip(path, [(CORAL / name, count) for name, count in segments], size, fourcc="mp4v")


def count_frames(path: Path) -> int:
    return read_video(path)[0]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("cli") / "cat_parrot.mp4", [("cat.bmp", 15), ("parrot.jpg", 15)])


def test_run_video_to_jsonl_and_recording(clip: Path, tmp_path: Path) -> None:
    out, rec = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    p = cli(
        "--model",
        MODEL,
        "--source",
        str(clip),
        "--jsonl",
        str(out),
        "--record",
        str(rec),
        "--max-frames",
        "25",
        "--smooth",
        "0.5",
    )
    assert p.returncode == 0, p.stderr
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(records) == 25 and records[0]["classes"][0]["label"] == "Egyptian cat"
    assert count_frames(rec) == 25
    assert "[summary] 25 frames" in p.stderr and "stopped by max_frames" in p.stderr
    assert p.stdout.splitlines()[0].startswith("frame 2: Egyptian cat")  # label changes printed
    assert any("frame 1" in ln and "macaw" in ln for ln in p.stdout.splitlines())


def test_run_jsonl_to_stdout(clip: Path) -> None:
    p = cli("--model", MODEL, "--source", str(clip), "--jsonl", "-", "--max-frames", "3", "--stats-interval", "0")
    assert p.returncode == 0, p.stderr
    assert [json.loads(x)["frame"] for x in p.stdout.splitlines()] == [0, 1, 2]


def test_run_without_source_plays_the_bundled_clip() -> None:
    p = cli("--model", MODEL)
    assert p.returncode == 0, p.stderr
    assert "no --source given" in p.stderr and "sample_clip.mp4" in p.stderr
    labels = [ln.split(": ", 1)[1].rsplit(" (", 1)[0] for ln in p.stdout.splitlines()]
    # The three subjects in order. With the default centre crop, the rocket's first frames (the launch tower in the
    # middle of the frame) read as "drilling platform, offshore rig" before the zoom makes it a missile.
    assert labels[:2] == ["Egyptian cat", "espresso"] and labels[-1] == "missile", labels


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_and_leaves_complete_files(tmp_path: Path, sig: signal.Signals) -> None:
    long_clip = write_video(tmp_path / "long.mp4", [("cat.bmp", 150), ("parrot.jpg", 150)])
    out, rec = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    args = ["--model", MODEL, "--source", str(long_clip), "--realtime", "--jsonl", str(out), "--record", str(rec)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_classifier", "run", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 20):
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.1)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in ((0, 130) if sig == signal.SIGINT else (0,)), stderr
    lines = out.read_text().splitlines()
    assert 20 <= len(lines) < 300
    frames = [json.loads(line)["frame"] for line in lines]  # every line is whole JSON
    assert frames == sorted(frames)
    assert count_frames(rec) >= len(lines) - 16  # finalised and playable (a queue of at most 16 may drop)
    assert f"stopped by {sig.name}" in stderr and "[summary]" in stderr


def test_not_a_video_is_one_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "clip.mp4"
    bogus.write_text("not a video")
    p = cli("--model", MODEL, "--source", str(bogus))
    assert p.returncode == 1
    assert "is not a video OpenCV can decode" in p.stderr and "fix:" in p.stderr and "Traceback" not in p.stderr


def test_missing_camera_index() -> None:
    p = cli("--model", MODEL, "--source", "9")
    assert p.returncode == 1 and "/dev/video9 does not exist" in p.stderr and "Traceback" not in p.stderr


def test_show_on_a_headless_machine() -> None:
    p = cli("--model", MODEL, "--show", "--max-frames", "1")
    if p.returncode == 0:
        pytest.skip("this machine has an OpenCV GUI and a display")
    assert p.returncode == 1 and "opencv-python" in p.stderr and "Traceback" not in p.stderr


def test_bad_option_values() -> None:
    p = cli("--model", MODEL, "--smooth", "1.5")
    assert p.returncode == 2 and "must be in [0, 1)" in p.stderr


def test_reconnect_timeout_is_a_run_option_that_reaches_a_stream() -> None:
    """A stream that gives up says "raise --reconnect-timeout": the option exists and is passed to the source."""
    from edge_classifier.cli import build_parser
    from edge_classifier.cli.run import source_options

    args = build_parser().parse_args(["run", "--reconnect-timeout", "45", "--timeout", "3"])
    options = source_options(args, "http://127.0.0.1:1/stream.mjpg")
    assert options["reconnect_timeout"] == 45.0 and options["read_timeout"] == 3.0
    args = build_parser().parse_args(["run"])
    assert source_options(args, "rtsp://127.0.0.1:1/x")["reconnect_timeout"] == 20.0  # the source's own default


@pytest.mark.parametrize(
    "args, message",
    [
        (["--top-k", "0"], "argument --top-k/-k: 0 is not allowed"),
        (["--min-score", "nan"], "nan is not allowed: it must be a finite number"),
        (["--threads", "-5"], "-5 is not allowed"),
        (["--reconnect-timeout", "-1"], "-1 is not allowed"),
        (["--device", "bogus"], "'bogus' is not a valid device"),
        (["--source", "a\nb"], "contains the control character"),
    ],
)
def test_bad_run_options_are_one_usage_error(args: list[str], message: str) -> None:
    p = cli("--model", MODEL, *args, timeout=60)
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert len(p.stderr.splitlines()) == 2  # the short usage line and the error

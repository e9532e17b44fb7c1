"""Sinks: annotation drawing, JSON lines, recording, preview window errors, callbacks."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_classifier.errors import SinkError
from edge_classifier.postprocess import Classification
from edge_classifier.results import Frame, LabelEvent, Result
from edge_classifier.sinks import CallbackSink, JsonlSink, OverlaySink, RecorderSink, annotate
from edge_classifier.sinks.annotate import FpsMeter, caption
from edge_classifier.sinks.overlay import gui_problem
from edge_classifier.sinks.recorder import estimate_fps
from tests.clips import read_video

CORAL = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "coral"


def make_result(index: int = 0, t: float = 0.0, label: str = "Egyptian cat", event: bool = False) -> Result:
    rgb = cv2.cvtColor(cv2.resize(cv2.imread(str(CORAL / "cat.bmp")), (320, 240)), cv2.COLOR_BGR2RGB)
    ev = LabelEvent(286, label, 0.8, None, None, index, t) if event else None
    return Result(Frame(rgb, index, t, "test"), [Classification(286, label, 0.8)], np.zeros(1000, np.float32), {"inference": 0.01}, event=ev)


def test_annotate_is_pure_and_draws_a_banner() -> None:
    r = make_result()
    before = r.frame.rgb.copy()
    out = annotate(r.frame.rgb, r, fps=29.97)
    assert np.array_equal(r.frame.rgb, before)  # input untouched
    assert out.shape == (240, 320, 3) and out.dtype == np.uint8
    plain = cv2.cvtColor(r.frame.rgb, cv2.COLOR_RGB2BGR)
    assert np.array_equal(out[-100:], plain[-100:])  # below the banner: the frame, as BGR
    banner = out[:20]
    assert (banner.min(axis=2) > 180).sum() > 50  # light text drawn
    assert banner.mean() < plain[:20].mean()  # darkened behind it


def test_caption_text() -> None:
    assert caption(make_result(), 12.34) == "Egyptian cat 0.80 | 12.3 fps"
    empty = make_result()
    empty.classes = []
    assert "no label" in caption(empty)


def test_fps_meter() -> None:
    m = FpsMeter()
    assert m.update(0.0) is None
    for i in range(1, 50):
        fps = m.update(i / 25)
    assert fps == pytest.approx(25.0)


def test_jsonl_file_is_flushed_per_line(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "out.jsonl"
    sink = JsonlSink(path)
    sink.start()
    sink.write(make_result(0))
    sink.write(make_result(1, event=True))
    lines = path.read_text().splitlines()  # before close: already on disk
    assert [json.loads(x)["frame"] for x in lines] == [0, 1]
    assert json.loads(lines[1])["event"]["label"] == "Egyptian cat"
    sink.close()
    sink.close()


def test_jsonl_stdout_and_events_only(capsys: pytest.CaptureFixture[str]) -> None:
    sink = JsonlSink("-", events_only=True)
    sink.start()
    sink.write(make_result(0))
    sink.write(make_result(1, event=True))
    sink.close()
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and json.loads(out[0])["frame"] == 1


def test_jsonl_unwritable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SinkError, match="cannot be written"):
        JsonlSink(tmp_path / "file" / "out.jsonl").start()


@pytest.mark.parametrize("ext", [".mp4", ".avi"])
def test_recording_is_playable_with_every_frame(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"rec{ext}"
    sink = RecorderSink(path)
    sink.start()
    for i in range(20):
        sink.write(make_result(i, t=i / 20))
    sink.close()
    frames, fps, size = read_video(path)
    assert frames == 20
    assert fps == pytest.approx(20.0, rel=0.05)
    assert size == (320, 240)


@pytest.mark.parametrize("ext", [".mp4", ".avi"])
def test_a_measured_odd_frame_rate_still_records(tmp_path: Path, ext: str) -> None:
    # 85.373 fps measured from capture times once made FFmpeg's mpeg4 encoder refuse to open.
    path = tmp_path / f"odd{ext}"
    sink = RecorderSink(path)
    sink.start()
    for i in range(12):
        sink.write(make_result(i, t=i / 85.373))
    sink.close()
    frames, fps, _ = read_video(path)
    assert frames == 12
    assert fps == pytest.approx(85.0, abs=0.5)


def test_short_recording_is_finalised_on_close(tmp_path: Path) -> None:
    path = tmp_path / "short.mp4"
    sink = RecorderSink(path)
    sink.start()
    for i in range(3):  # fewer than the frames used to measure the rate: still written on close
        sink.write(make_result(i, t=i / 10))
    sink.close()
    assert read_video(path)[0] == 3


def test_recorder_errors(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match="unsupported video extension"):
        RecorderSink(tmp_path / "x.gif")
    with pytest.raises(SinkError, match="folder does not exist"):
        RecorderSink(tmp_path / "nope" / "x.mp4").start()


def test_estimate_fps() -> None:
    assert estimate_fps([0.0, 0.1, 0.2, 0.3]) == pytest.approx(10.0)
    assert estimate_fps([1.0]) == 15.0
    assert estimate_fps([0.0, 10.0]) == 1.0


def test_overlay_on_a_headless_build_explains_the_fix() -> None:
    problem = gui_problem()
    if problem is None:
        pytest.skip("this machine has an OpenCV GUI and a display")
    with pytest.raises(SinkError) as info:
        OverlaySink().start()
    assert "opencv-python" in info.value.fix and "--record" in info.value.fix


def test_callback_sink() -> None:
    got: list[int] = []
    sink = CallbackSink(lambda r: got.append(r.frame.index), events_only=True)
    sink.start()
    for i in range(5):
        sink.write(make_result(i, event=i == 3))
    sink.close()
    assert got == [3] and sink.blocking is False

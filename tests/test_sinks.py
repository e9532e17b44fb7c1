"""Sinks: annotation drawing, JSON lines, recording, preview window errors, callbacks."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_classifier.errors import SinkError
from edge_classifier.results import Classification, Frame, LabelEvent, RegionResult, Result, StateEvent
from edge_classifier.sinks import CallbackSink, JsonlSink, OverlaySink, RecorderSink, annotate
from edge_classifier.sinks.annotate import EVENT_COLOUR, REGION_COLOUR, FpsMeter, caption
from edge_classifier.sinks.overlay import gui_problem
from edge_classifier.sinks.recorder import estimate_fps
from edge_classifier.sinks.worker import QueuedSink, QueueWorker
from tests.clips import read_video

CORAL = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "coral"


def make_result(index: int = 0, t: float = 0.0, label: str = "Egyptian cat", event: bool = False) -> Result:
    rgb = cv2.cvtColor(cv2.resize(cv2.imread(str(CORAL / "cat.bmp")), (320, 240)), cv2.COLOR_BGR2RGB)
    ev = LabelEvent(286, label, 0.8, None, None, index, t) if event else None
    return Result(
        Frame(rgb, index, t, "test"), [Classification(286, label, 0.8)], np.zeros(1000, np.float32), {"inference": 0.01}, event=ev
    )


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


def region_result(door_event: bool = False) -> Result:
    """The cat frame (320x240) with two regions: "door" (a state) and "perch" at the top edge (no state yet)."""
    r = make_result()
    r.classes = []
    event = StateEvent("door", "open", 0.93, None, "Egyptian cat", 0, 0.0) if door_event else None
    door = RegionResult("door", (20, 60, 120, 150), "open", 0.93, event=event)
    perch = RegionResult("perch", (180, 0, 130, 90), None, 0.0)
    r.regions = (door, perch)
    return r


def _near(pixels: np.ndarray, colour: tuple[int, int, int], tol: int = 40) -> np.ndarray:
    return np.all(np.abs(pixels.astype(int) - np.array(colour)) <= tol, axis=-1)


def test_regions_are_drawn_with_their_state_and_the_banner_names_them() -> None:
    r = region_result()
    before = r.frame.rgb.copy()
    out = annotate(r.frame.rgb, r, fps=10.0)
    assert np.array_equal(r.frame.rgb, before)
    assert caption(r, 10.0) == "door: open 0.93 | perch: ? | 10.0 fps"
    # The door's box: its left and bottom edges in the region colour, the inside untouched.
    plain = cv2.cvtColor(r.frame.rgb, cv2.COLOR_RGB2BGR)
    assert _near(out[80:200, 20], REGION_COLOUR).mean() > 0.9
    assert _near(out[209, 30:130], REGION_COLOUR).mean() > 0.9
    assert np.array_equal(out[120:200, 40:120], plain[120:200, 40:120])
    # Its caption sits above the box (coloured text on a darkened plate), the perch's inside its box, which starts at
    # the top edge, below the banner (whose 24 rows keep the frame's own text only).
    assert _near(out[40:58, 20:140], REGION_COLOUR).sum() > _near(plain[40:58, 20:140], REGION_COLOUR).sum() + 10
    assert out[40:58, 20:140].mean() < plain[40:58, 20:140].mean()
    assert _near(out[24:40, 182:210], REGION_COLOUR).sum() >= _near(plain[24:40, 182:210], REGION_COLOUR).sum() + 3
    assert out[24:40, 182:210].mean() < plain[24:40, 182:210].mean()
    # Nothing is drawn outside the boxes, their captions and the banner.
    assert np.array_equal(out[215:, 150:], plain[215:, 150:])


def test_a_region_event_is_drawn_in_the_event_colour_and_boxes_follow_a_resized_frame() -> None:
    r = region_result(door_event=True)
    out = annotate(r.frame.rgb, r)
    assert _near(out[80:200, 20], EVENT_COLOUR).mean() > 0.9
    assert not _near(out[80:200, 20], REGION_COLOUR).any()
    # The web view annotates a shrunken copy: the boxes are scaled to it (door's left edge at x = 10 of 160).
    half = cv2.resize(r.frame.rgb, (160, 120), interpolation=cv2.INTER_AREA)
    small = annotate(half, r)
    assert small.shape == (120, 160, 3)
    assert _near(small[45:95, 10], EVENT_COLOUR).mean() > 0.9
    assert not _near(small[45:95, 20], EVENT_COLOUR).any()


def test_many_regions_are_counted_in_the_banner() -> None:
    r = make_result()
    r.classes = []
    r.regions = tuple(RegionResult(f"shelf-{i}", (i * 30, 100, 25, 25), "full", 0.9) for i in range(8))
    assert caption(r) == "8 regions"
    out = annotate(r.frame.rgb, r)
    assert _near(out[110:120, 0], REGION_COLOUR).all()


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


# --- the one queue worker behind every sink that must not block the loop ------------------------------
def test_worker_drops_the_newest_when_full_counts_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    seen: list[int] = []

    def slow(item: int) -> bool:
        release.wait(5)
        seen.append(item)
        return True

    w: QueueWorker[int] = QueueWorker("slow", slow, maxsize=3, what="result")
    w.start()
    accepted = [w.put(i) for i in range(10)]
    # The thread took item 0 (or not yet): 3 or 4 accepted, the rest dropped and counted.
    assert accepted[:3] == [True] * 3 and w.dropped == accepted.count(False) >= 6
    assert caplog.text.count("dropped so far") == 1 and "slow: 1 result(s) dropped so far (queue of 3 full)" in caplog.text
    release.set()
    assert w.close(5) == 0
    assert seen == [i for i, ok in enumerate(accepted) if ok] and w.pending == 0


def test_worker_can_drop_the_oldest_and_waits_while_not_ready() -> None:
    ready = threading.Event()
    seen: list[int] = []
    w: QueueWorker[int] = QueueWorker("broker", lambda i: seen.append(i) is None, maxsize=2, drop="oldest", ready=ready.is_set)
    w.start()
    for i in range(5):
        w.put(i)
    time.sleep(0.1)
    assert seen == [] and w.pending == 2 and w.dropped == 3  # kept the newest two
    ready.set()
    w.wake()
    assert w.close(5) == 0 and seen == [3, 4]


def test_worker_retries_an_undelivered_item_first_and_ticks() -> None:
    attempts: list[int] = []
    ticks: list[float] = []

    def flaky(item: int) -> bool:
        attempts.append(item)
        return not (item == 1 and attempts.count(1) == 1)  # item 1 fails once, as a publish on a dropped link

    w: QueueWorker[int] = QueueWorker("flaky", flaky, maxsize=10, tick=lambda: ticks.append(time.monotonic()), tick_interval=0.05)
    w.start()
    for i in range(3):
        w.put(i)
    time.sleep(0.8)  # one retry delay (0.5 s) and a few ticks
    assert w.close(5) == 0
    assert attempts == [0, 1, 1, 2] and w.dropped == 0 and len(ticks) >= 5


def test_worker_close_gives_up_after_its_timeout_and_interrupts() -> None:
    stop = threading.Event()
    w: QueueWorker[int] = QueueWorker("stuck", lambda i: stop.wait(30), maxsize=10)
    w.start()
    for i in range(4):
        w.put(i)
    t0 = time.monotonic()
    given_up = w.close(0.2, interrupt=stop.set, grace=2.0)
    assert given_up == 3 and time.monotonic() - t0 < 2 and w.join(0)


def test_a_failing_queued_sink_surfaces_as_a_sink_error_and_is_closed() -> None:
    closed: list[bool] = []

    class Broken:
        blocking = True

        def start(self) -> None: ...

        def write(self, result: Result) -> None:
            raise OSError("disk full")

        def close(self) -> None:
            closed.append(True)

    q = QueuedSink(Broken(), maxsize=4)
    q.start()
    q.write(make_result(0))
    assert q._worker.join(5)  # the worker ended on the error
    with pytest.raises(SinkError, match="Broken: failed: disk full"):
        q.write(make_result(1))
    q.close()  # the error was reported once; close still closes the wrapped sink
    assert closed == [True]

"""The loop on a real video and Coral's MobileNetV2: JSONL per frame, label events, drops, errors, stats."""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge_classifier import Classifier, LoopOptions
from edge_classifier.errors import AcceleratorLostError, ConfigError, SinkError, SourceError
from edge_classifier.loop import FrameClassifier, FrameSlot, _Captured, stream
from edge_classifier.results import Frame, Prediction
from edge_classifier.session import run_pipeline, stop_on_signals
from edge_classifier.sinks import CallbackSink, JsonlSink
from edge_classifier.sources import ImageSource, OpenCvSource
from edge_classifier.sources.base import Source
from edge_classifier.stats import LogHistogram, LoopStats, RunStats, format_line, format_summary, percentile
from tests.clips import write_clip

CORAL = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "coral"


def write_video(path: Path, segments: list[tuple[str, int]], size: tuple[int, int] = (640, 480)) -> Path:
    """An mp4 (mp4v) of each Coral photo resized to ``size``, ``count`` frames each."""
    return write_clip(path, [(CORAL / name, count) for name, count in segments], size, fourcc="mp4v")


@pytest.fixture(scope="module")
def cat_parrot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "cat_parrot.mp4", [("cat.bmp", 30), ("parrot.jpg", 30)])


@pytest.fixture(scope="module")
def clf() -> Iterator[Classifier]:
    with Classifier(CORAL / "mobilenet_v2_1.0_224_quant.tflite") as c:
        yield c


def test_video_to_jsonl_labels_and_one_event_per_change(clf: Classifier, cat_parrot: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    err = io.StringIO()
    options = LoopOptions(smoothing=0.6, hysteresis=3)
    stats = run_pipeline(clf, cat_parrot, [JsonlSink(out)], options, stats_file=err, handle_signals=False)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 60 and [r["frame"] for r in records] == list(range(60))
    raw = [r["classes"][0]["label"] for r in records]
    assert raw[:30] == ["Egyptian cat"] * 30 and raw[30:] == ["macaw"] * 30
    events = [r["event"] for r in records if "event" in r]
    assert [(e["previous_label"], e["label"]) for e in events] == [(None, "Egyptian cat"), ("Egyptian cat", "macaw")]
    assert events[0]["frame_index"] == 2 and 30 <= events[1]["frame_index"] < 40
    assert all("smoothed" in r and set(r["timings_ms"]) >= {"capture", "preprocess", "inference", "postprocess"} for r in records)
    assert stats.frames == 60 and stats.events == 2 and stats.dropped == 0 and stats.stopped_by == "end"
    assert "[summary] 60 frames" in err.getvalue()
    assert set(stats.stages) >= {"capture", "preprocess", "inference", "postprocess", "sinks"}


def test_stream_api_and_max_frames(clf: Classifier, cat_parrot: Path) -> None:
    results = list(clf.stream(cat_parrot, max_frames=5))
    assert [r.frame.index for r in results] == [0, 1, 2, 3, 4]
    assert all(r.top is not None and r.top.label == "Egyptian cat" for r in results)
    assert results[0].frame.rgb.shape == (480, 640, 3) and results[0].smoothed is None
    assert results[0].device == "cpu"
    assert all(r.raw_top == r.top for r in results)  # smoothing off: the answer is the frame's own best


def test_top_is_the_smoothed_answer_and_raw_top_the_frames_own(clf: Classifier, cat_parrot: Path) -> None:
    results = list(clf.stream(cat_parrot, LoopOptions(smoothing=0.9, hysteresis=3)))
    # Frames 30..: the parrot. Each frame's own best flips at once; the smoothed answer (top) follows later.
    assert results[30].raw_top is not None and results[30].raw_top.label == "macaw"
    assert results[30].top is not None and results[30].top.label == "Egyptian cat"
    assert results[30].smoothed is not None and results[30].top == results[30].smoothed[0]
    assert results[-1].top is not None and results[-1].top.label == "macaw"


def test_stream_keywords_override_the_options(clf: Classifier, cat_parrot: Path) -> None:
    base = LoopOptions(smoothing=0.5, max_frames=50)
    results = list(clf.stream(cat_parrot, base, max_frames=3))
    assert len(results) == 3 and results[0].smoothed is not None  # max_frames from the keyword, smoothing kept
    # An explicit signature (no **options), whose keywords are exactly LoopOptions' fields: the two cannot drift.
    params = inspect.signature(Classifier.stream).parameters
    assert all(p.kind is not p.VAR_KEYWORD for p in params.values())
    keywords = {name for name, p in params.items() if p.kind is p.KEYWORD_ONLY}
    assert keywords == {f.name for f in dataclasses.fields(LoopOptions)}


@pytest.mark.parametrize(
    "bad, what",
    [
        ({"smoothing": 1.0}, "smoothing=1.0"),
        ({"smoothing": -0.1}, "smoothing=-0.1"),
        ({"hysteresis": 0}, "hysteresis=0"),
        ({"max_frames": -1}, "max_frames=-1"),
        ({"min_score": 1.5}, "min_score=1.5"),
        ({"stall_timeout": 0}, "stall_timeout=0"),
    ],
)
def test_bad_loop_options_are_config_errors(clf: Classifier, cat_parrot: Path, bad: dict[str, Any], what: str) -> None:
    with pytest.raises(ConfigError, match=f"^{what}: .*\\n  fix: "):
        LoopOptions(**bad)
    # The same error out of Classifier.stream, before any frame is read (it was a bare ValueError from the Smoother).
    with pytest.raises(ConfigError, match=what):
        clf.stream(cat_parrot, **bad)


def test_the_classifier_is_a_frame_classifier(clf: Classifier) -> None:
    fc: FrameClassifier = clf  # checked by mypy; the loop needs nothing else
    assert isinstance(fc.predict(np.zeros((48, 64, 3), np.uint8)), Prediction)


def test_old_pipeline_module_and_keywords_still_work_with_a_warning(clf: Classifier, cat_parrot: Path) -> None:
    import edge_classifier.loop
    import edge_classifier.session
    import edge_classifier.sinks.worker

    with pytest.warns(DeprecationWarning, match=r"import run_pipeline from edge_classifier\.session"):
        from edge_classifier.pipeline import run_pipeline as old_run
    assert old_run is edge_classifier.session.run_pipeline
    with pytest.warns(DeprecationWarning, match="edge_classifier.loop"):
        from edge_classifier.pipeline import FrameLoop, FrameSlot, stream  # noqa: F401
    assert stream is edge_classifier.loop.stream and FrameLoop is edge_classifier.loop.FrameLoop
    with pytest.warns(DeprecationWarning, match="edge_classifier.sinks.worker"):
        from edge_classifier.pipeline import QueuedSink
    assert QueuedSink is edge_classifier.sinks.worker.QueuedSink
    with pytest.raises(ImportError, match="no_such_name"):
        from edge_classifier.pipeline import no_such_name  # noqa: F401
    # The loop's options as keywords: the old call form, same answer.
    with pytest.warns(DeprecationWarning, match=r"run_pipeline\(\.\.\., smoothing=, max_frames=\) is deprecated"):
        stats = run_pipeline(
            clf, cat_parrot, [], smoothing=0.6, max_frames=45, stats_interval=0, stats_file=io.StringIO(), handle_signals=False
        )
    assert stats.frames == 45 and stats.events == 2
    with pytest.warns(DeprecationWarning, match=r"stream\(\.\.\., max_frames=\)"):
        assert len(list(stream(clf, cat_parrot, max_frames=2))) == 2
    with pytest.raises(TypeError, match="smoothnig"):
        stream(clf, cat_parrot, smoothnig=0.5)


def test_breaking_out_of_stream_releases_the_source(clf: Classifier, cat_parrot: Path) -> None:
    src = OpenCvSource(cat_parrot)
    gen = stream(clf, src)
    next(gen)
    assert src._cap is not None
    gen.close()  # type: ignore[attr-defined]
    assert src._cap is None


def test_image_folder_source(clf: Classifier, tmp_path: Path) -> None:
    import shutil

    for name in ("bird.bmp", "cat.bmp", "parrot.jpg", "sunflower.bmp"):
        shutil.copy(CORAL / name, tmp_path / name)
    labels = [r.top.label for r in stream(clf, tmp_path) if r.top]
    assert labels == ["chickadee", "Egyptian cat", "macaw", "daisy"]


class FailingSource(Source):
    """Real photos, then a failure mid-way (a camera unplugged, a disk error)."""

    name = "failing"
    live = False

    def __init__(self, good: int) -> None:
        super().__init__()
        self.good = good
        self.closed = False
        self.rgb = cv2.cvtColor(cv2.imread(str(CORAL / "cat.bmp")), cv2.COLOR_BGR2RGB)

    def read(self) -> np.ndarray | None:
        if self._index >= self.good:
            raise SourceError("failing", "the device went away", "plug it back in")
        return self.rgb

    def close(self) -> None:
        self.closed = True


def test_a_source_that_raises_midway(clf: Classifier, tmp_path: Path) -> None:
    src = FailingSource(good=5)
    out = tmp_path / "out.jsonl"
    err = io.StringIO()
    with pytest.raises(SourceError, match="the device went away"):
        run_pipeline(clf, src, [JsonlSink(out)], stats_file=err, handle_signals=False)
    assert len(out.read_text().splitlines()) == 5  # every frame before the failure, flushed
    assert src.closed
    # The summary says why the run ended; the error itself reaches the caller (and is printed once, by the CLI).
    assert "stopped by error" in err.getvalue() and "the device went away" not in err.getvalue()


class Wrapped:
    """The real classifier with hooks around each predict (``before``/``after`` get the 1-based call number)."""

    def __init__(self, clf: Classifier, before: Any = None, after: Any = None) -> None:
        self.clf, self.before, self.after, self.calls = clf, before, after, 0
        self.spec, self.top_k, self.min_score, self.runtime_info = clf.spec, clf.top_k, clf.min_score, clf.runtime_info

    def predict(self, image: np.ndarray) -> Prediction:
        self.calls += 1
        if self.before:
            self.before(self.calls)
        prediction = self.clf.predict(image)
        if self.after:
            self.after(self.calls)
        return prediction


def test_a_stuck_sink_never_holds_up_inference(clf: Classifier, cat_parrot: Path) -> None:
    # The sink's first call blocks until inference has classified the 60th frame: if the loop ever waited on the
    # sink, that frame would never come and the wait would time out. No clock bound, so any CPU speed passes (an
    # emulated arm64 or a slow Pi as well as this machine).
    all_classified = threading.Event()
    released: list[bool] = []
    seen: list[int] = []

    def sink(result: Any) -> None:
        if not seen and not released:
            released.append(all_classified.wait(timeout=300))
        seen.append(result.frame.index)

    model = Wrapped(clf, after=lambda n: n == 60 and all_classified.set())
    sinks = [CallbackSink(sink, blocking=True)]
    stats = run_pipeline(model, cat_parrot, sinks, queue_size=4, stats_interval=0, stats_file=io.StringIO(), handle_signals=False)
    assert released == [True]  # inference reached frame 60 while the sink was still in its first call
    assert stats.frames == 60 and model.calls == 60
    dropped = stats.sink_dropped["CallbackSink"]
    assert len(seen) + dropped == 60  # every result delivered or counted as dropped, none lost silently
    assert seen == sorted(seen) and seen[:5] == [0, 1, 2, 3, 4]  # in order; the full queue kept the oldest 4
    assert dropped >= 60 - (1 + 4 + 1)  # at most: the one in the sink, the 4 queued, the last frame after release


class CountingSource(OpenCvSource):
    """The real video source played live (30 fps, like a camera), counting the frames it has read."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, realtime=True)
        self.reads, self.ended, self.cond = 0, False, threading.Condition()

    def read(self) -> np.ndarray | None:
        frame = super().read()
        with self.cond:
            if frame is None:
                self.ended = True
            else:
                self.reads += 1
            self.cond.notify_all()
        return frame


def test_a_model_slower_than_its_live_source_drops_stale_frames(clf: Classifier, cat_parrot: Path) -> None:
    # The model is slower than the camera by construction, not by the clock: each predict lasts until the source
    # has read 3 more frames. A loop that keeps only the newest frame must skip the stale ones between.
    src = CountingSource(cat_parrot)
    starved: list[int] = []  # predict calls during which the source read nothing new: the capture thread was held

    def wait_for_three_frames(call: int) -> None:
        if starved:
            return  # already failed: do not wait again (a loop that holds its capture thread would take minutes)
        with src.cond:
            target = src.reads + 3
            if not src.cond.wait_for(lambda: src.reads >= target or src.ended, timeout=30):
                starved.append(call)

    model = Wrapped(clf, before=wait_for_three_frames)
    seen: list[int] = []
    stats = run_pipeline(model, src, [CallbackSink(lambda r: seen.append(r.frame.index))], stats_interval=0,
                         stats_file=io.StringIO(), handle_signals=False)  # fmt: skip
    assert src.live and src.reads == 60 and starved == []  # capture never waited for inference
    assert stats.frames == len(seen) and stats.frames + stats.dropped == 60  # each frame read: classified or dropped
    gaps = np.diff(seen)
    assert (gaps >= 1).all()  # never a frame twice, never out of order
    # While a frame was being classified 3 newer ones arrived: all but the newest were dropped, none queued.
    assert (gaps[:-1] >= 3).all(), seen
    assert stats.frames <= 21 and stats.dropped >= 39


def test_frame_slot_keeps_only_the_newest() -> None:
    slot = FrameSlot()
    stop = threading.Event()
    for i in range(100):
        slot.put(_Captured(Frame(np.zeros((2, 2, 3), np.uint8), i, 0.0), 0.0), wait=False, stop=stop)
    item = slot.take(0.1)
    assert isinstance(item, _Captured) and item.frame.index == 99 and slot.dropped == 99
    assert slot.take(0.01) is None


class FlakyAccelerator:
    """The real classifier whose accelerator dies once (fails_forever: and never comes back)."""

    def __init__(self, clf: Classifier, fail_at: int, fails_forever: bool = False) -> None:
        self.clf, self.fail_at, self.forever = clf, fail_at, fails_forever
        self.spec, self.top_k, self.min_score, self.runtime_info = clf.spec, clf.top_k, clf.min_score, clf.runtime_info
        self.calls = 0

    def predict(self, image: np.ndarray) -> Prediction:
        self.calls += 1
        if self.calls == self.fail_at or (self.forever and self.calls > self.fail_at):
            raise AcceleratorLostError("usb:0", "the Edge TPU stopped responding", "check the USB cable")
        return self.clf.predict(image)


def test_accelerator_lost_midrun_continues_when_the_classifier_still_answers(
    clf: Classifier, cat_parrot: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stats = run_pipeline(
        FlakyAccelerator(clf, 10), cat_parrot, [], LoopOptions(max_frames=20), stats_file=io.StringIO(), handle_signals=False
    )
    assert stats.frames == 20
    assert "accelerator lost" in caplog.text and "continuing on cpu" in caplog.text


def test_accelerator_lost_for_good_stops_with_the_error(clf: Classifier, cat_parrot: Path) -> None:
    err = io.StringIO()
    with pytest.raises(AcceleratorLostError):
        run_pipeline(FlakyAccelerator(clf, 10, fails_forever=True), cat_parrot, [], stats_file=err, handle_signals=False)
    assert "[summary] 9 frames" in err.getvalue()


def test_failing_blocking_sink_ends_the_run_with_a_sink_error(clf: Classifier, cat_parrot: Path) -> None:
    def broken(result: Any) -> None:
        raise OSError("disk full")

    with pytest.raises(SinkError, match="disk full"):
        run_pipeline(clf, cat_parrot, [CallbackSink(broken, blocking=True)], stats_file=io.StringIO(), handle_signals=False)


def test_stop_requested_by_a_sink(clf: Classifier, cat_parrot: Path) -> None:
    class StopAfter:
        blocking = False
        stop_requested = False

        def start(self) -> None: ...

        def write(self, result: Any) -> None:
            self.stop_requested = result.frame.index >= 4

        def close(self) -> None: ...

    stats = run_pipeline(clf, cat_parrot, [StopAfter()], stats_file=io.StringIO(), handle_signals=False)
    assert stats.frames == 5 and stats.stopped_by == "stop"


def test_stats_line_once_per_interval(clf: Classifier, cat_parrot: Path) -> None:
    err = io.StringIO()
    run_pipeline(clf, ImageSource(CORAL / "cat.bmp"), [], stats_interval=0.001, stats_file=err, handle_signals=False)
    run_pipeline(clf, cat_parrot, [], stats_interval=0.05, stats_file=err, handle_signals=False)
    lines = [ln for ln in err.getvalue().splitlines() if ln.startswith("[stats]")]
    assert lines and all("fps" in ln and "inference" in ln and "dropped" in ln for ln in lines)


def test_signals_stop_the_loop_and_the_handlers_come_back(clf: Classifier, cat_parrot: Path) -> None:
    import os
    import signal

    from edge_classifier.loop import FrameLoop

    before = signal.getsignal(signal.SIGTERM)
    loop = FrameLoop(clf, cat_parrot)
    with stop_on_signals(loop):
        assert signal.getsignal(signal.SIGTERM) is not before
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler runs between bytecodes of the main thread
        assert loop.stopped_by == "SIGTERM" and list(loop) == []
    assert signal.getsignal(signal.SIGTERM) is before
    # Left by an exception too.
    with pytest.raises(KeyError), stop_on_signals(FrameLoop(clf, cat_parrot)):
        raise KeyError("boom")
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_mid_run_ends_it_cleanly_with_a_summary(clf: Classifier, cat_parrot: Path, tmp_path: Path) -> None:
    import os
    import signal

    def term_at_frame_5(result: Any) -> None:
        if result.frame.index == 5:
            os.kill(os.getpid(), signal.SIGTERM)

    out, err = tmp_path / "out.jsonl", io.StringIO()
    stats = run_pipeline(clf, cat_parrot, [JsonlSink(out), CallbackSink(term_at_frame_5)], stats_interval=0, stats_file=err)
    assert stats.stopped_by == "SIGTERM" and 6 <= stats.frames <= 8, stats
    assert len(out.read_text().splitlines()) == stats.frames and "stopped by SIGTERM" in err.getvalue()


# --- stats: pure functions ---------------------------------------------------------------
def test_log_histogram_percentiles_match_numpy_within_a_bin() -> None:
    rng = np.random.default_rng(1)
    values = rng.lognormal(mean=math.log(0.01), sigma=0.5, size=5000)
    h = LogHistogram()
    for v in values:
        h.add(float(v))
    for q in (50, 95, 99):
        assert h.percentile(q) == pytest.approx(np.percentile(values, q), rel=0.03)
    assert math.isnan(LogHistogram().percentile(50))
    assert percentile([], 50) != percentile([], 50)  # NaN


def test_loop_stats_memory_is_bounded() -> None:
    st = LoopStats(window=32)
    for i in range(10_000):
        st.add({"inference": 0.001 * (1 + i % 10)})
    assert len(st.recent["inference"]) == 32 and st.frames == 10_000
    assert st.hist["inference"].counts.size == LogHistogram.BINS + 2


def test_format_line_and_summary() -> None:
    line = format_line(29.5, {"sinks": (0.001, 0.002), "inference": (0.010, 0.012)}, 3, 10, "usb:0")
    assert line.index("inference") < line.index("sinks") and "29.5 fps" in line and "dropped 3 (total 10)" in line
    text = format_summary(RunStats(frames=100, seconds=4.0, stages={"inference": (0.01, 0.02)}, stopped_by="SIGINT"), "cam")
    assert "100 frames in 4.0 s = 25.0 fps from cam" in text and "stopped by SIGINT" in text and "10.00 ms" in text

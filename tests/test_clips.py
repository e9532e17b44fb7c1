"""Clips around events, on real scene clips: exact pre- and post-roll read back with OpenCV, retention, a full disk."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import cv2
import pytest

from edge_classifier import Classifier, LoopOptions
from edge_classifier.cli import main
from edge_classifier.errors import ConfigError
from edge_classifier.session import run_pipeline
from edge_classifier.sinks import JsonlSink, clips
from edge_classifier.sinks.clips import CLIP_NAME, ClipSink, FrameRing, _Stored, clip_fps, clip_stem
from tests import region_clips as rc
from tests.conftest import REPO
from tests.test_web import browser  # noqa: F401 - a fixture used by name


def run(clf: Classifier, source: Path, sinks: list[Any], **options: Any) -> tuple[list[dict[str, Any]], str]:
    err = io.StringIO()
    run_pipeline(clf, source, sinks, LoopOptions(**options), stats_file=err, handle_signals=False)
    jsonl = next(s for s in sinks if isinstance(s, JsonlSink))
    return [json.loads(line) for line in Path(jsonl.path).read_text().splitlines()], err.getvalue()


def test_each_event_gets_a_clip_with_exactly_pre_and_post_seconds_of_frames(clf: Classifier, scene: Path, tmp_path: Path) -> None:
    folder = tmp_path / "events"
    sink = ClipSink(folder, pre=1.0, post=1.0)
    records, _ = run(clf, scene, [JsonlSink(tmp_path / "out.jsonl"), sink], regions=rc.two_regions())
    events = [r["event"] for r in records if "event" in r]
    assert [(e["region"], e["frame_index"], e["state"]) for e in events] == [
        ("feeder", 2, "bird"), ("door", 2, "cat"), ("feeder", 42, "flower"), ("door", 62, "person"), ("feeder", 92, "bird"),
    ]  # fmt: skip
    assert sink.written == 5 and sink.stopped is None
    for e in events:
        clip, snapshot = Path(e["clip"]), Path(e["snapshot"])
        assert clip.parent == folder and CLIP_NAME.match(clip.name) and clip.name.endswith(f"_{e['region']}_{e['state']}.mp4")
        assert snapshot == clip.with_suffix(".jpg")
        # 30 fps: 1 s before the event frame is 30 frames, 1 s after is 30 more, cut where the video starts or ends.
        frame = e["frame_index"]
        assert rc.read_marks(clip) == list(range(max(0, frame - 30), min(120, frame + 31))), clip.name
        cap = cv2.VideoCapture(str(clip))
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(30.0)
        cap.release()
        image = cv2.imread(str(snapshot))
        assert image is not None and image.shape[:2] == rc.frame_size()[::-1] and rc.read_mark(image) == frame


def test_webm_clips_are_vp8_with_the_same_frames(
    clf: Classifier, scene: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "events"
    sink = ClipSink(folder, pre=1.0, post=1.0, format="webm")
    records, _ = run(clf, scene, [JsonlSink(tmp_path / "out.jsonl"), sink], regions=rc.two_regions())
    events = [r["event"] for r in records if "event" in r]
    assert len(events) == 5 and sink.written == 5
    for e in events:
        clip = Path(e["clip"])
        assert clip.suffix == ".webm" and CLIP_NAME.match(clip.name) and Path(e["snapshot"]) == clip.with_suffix(".jpg")
        frame = e["frame_index"]
        assert rc.read_marks(clip) == list(range(max(0, frame - 30), min(120, frame + 31))), clip.name
        cap = cv2.VideoCapture(str(clip))
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("ascii", "replace")
        cap.release()
        assert fourcc.upper() in ("VP80", "VP8\0"), fourcc
        assert clip.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a Matroska/WebM file
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no part file left
    assert "is not supported with codec id" not in capfd.readouterr().err  # FFmpeg's VP8 tag chatter kept off stderr


def test_a_browser_plays_the_webm_clip_and_not_the_mp4v_one(browser: Any, scene: Path, mnv2: Path, tmp_path: Path) -> None:  # noqa: F811
    # Both formats through the command line, then a real Chromium loads each in a <video> element.
    for fmt in ("mp4", "webm"):
        code = main(["run", "-s", str(scene), "-m", str(mnv2), "--region", "feeder=0,0,224,224", "--clips", str(tmp_path / fmt),
                     "--clip-format", fmt, "--pre", "0.5", "--post", "0.5", "--stats-interval", "0", "-q"])  # fmt: skip
        assert code == 0
    clips = {fmt: sorted((tmp_path / fmt).glob(f"*.{fmt}"))[0] for fmt in ("mp4", "webm")}
    page_file = tmp_path / "page.html"
    page_file.write_text("<!doctype html><body>" + "".join(f'<video id="{k}" src="{v.as_uri()}" preload="auto" muted></video>'
                                                          for k, v in clips.items()) + "</body>")  # fmt: skip
    page = browser.new_page()
    try:
        page.goto(page_file.as_uri())
        states = {}
        for fmt in clips:
            states[fmt] = page.evaluate(
                """id => new Promise(done => {
                    const v = document.getElementById(id);
                    const report = () => done({width: v.videoWidth, error: v.error ? v.error.code : 0});
                    if (v.readyState >= 2 || v.error) { report(); return; }
                    v.addEventListener("loadeddata", report); v.addEventListener("error", report);
                    setTimeout(report, 10000);
                })""",
                fmt,
            )
    finally:
        page.close()
    assert states["webm"] == {"width": 448, "error": 0}
    assert states["mp4"]["error"] == 4  # MEDIA_ERR_SRC_NOT_SUPPORTED: why webm exists


def test_a_format_this_opencv_cannot_encode_is_refused_at_the_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As on an OpenCV build whose FFmpeg lacks the encoder: one error before the run, naming the fix, not a clip lost
    # at the first event.
    monkeypatch.setitem(clips.CLIP_FORMATS, "webm", (".webm", "ZZZZ"))
    with pytest.raises(ConfigError) as info:
        ClipSink(tmp_path, format="webm")
    text = str(info.value)
    assert "cannot write ZZZZ video into .webm files" in text and "use --clip-format mp4" in text
    assert clips.encoder_works("mp4v", ".mp4") and clips.encoder_works("VP80", ".webm")


def test_the_whole_frame_event_gets_a_clip_too(clf: Classifier, coral: Path, tmp_path: Path) -> None:
    clip = rc.write_scene(tmp_path / "scene.avi", coral, feeder=[("bird.bmp", 30), ("parrot.jpg", 30)], door=[("cat.bmp", 60)])
    sink = ClipSink(tmp_path / "events", pre=0.5, post=0.5)
    records, _ = run(clf, clip, [JsonlSink(tmp_path / "out.jsonl"), sink])
    events = [r["event"] for r in records if "event" in r]
    assert events and all(Path(e["clip"]).name.split("_", 1)[1].startswith("frame_") for e in events)
    first = events[0]
    assert rc.read_marks(Path(first["clip"])) == list(range(0, first["frame_index"] + 16))


def test_a_live_source_fills_the_clip_from_the_capture_thread(clf: Classifier, scene: Path, tmp_path: Path) -> None:
    # Played in real time the file is a live source: stream time is the clock, and the clip is fed by the capture
    # thread's tap, so it holds consecutive frames even if the model had to skip some.
    sink = ClipSink(tmp_path / "events", pre=1.0, post=1.0)
    records, _ = run(
        clf, scene, [JsonlSink(tmp_path / "out.jsonl"), sink], regions=rc.two_regions(), source_options={"realtime": True}
    )
    flower = next(r["event"] for r in records if r.get("event", {}).get("state") == "flower")
    marks = rc.read_marks(Path(flower["clip"]))
    # Consecutive frames, but for any the sink had to drop (and counted) on a machine too busy to compress them.
    assert marks == sorted(set(marks)) and (marks[-1] - marks[0] + 1) - len(marks) <= sink.dropped
    assert marks[0] <= flower["frame_index"] - 27 and marks[-1] >= flower["frame_index"] + 27 and len(marks) >= 50


def test_retention_keeps_the_folder_under_its_limit_oldest_first(clf: Classifier, coral: Path, tmp_path: Path) -> None:
    # The feeder changes every 15 frames: 16 events, each with a clip of about 31 frames.
    flip = [("bird.bmp", 15), ("sunflower.bmp", 15)] * 8
    clip = rc.write_scene(tmp_path / "flip.avi", coral, feeder=flip, door=[("cat.bmp", 240)])
    probe = ClipSink(tmp_path / "probe", pre=0.5, post=0.5, max_mb=None)
    run(clf, clip, [JsonlSink(tmp_path / "probe.jsonl"), probe], regions=(rc.two_regions()[0],))
    sizes = sorted(p.stat().st_size for p in (tmp_path / "probe").iterdir())
    limit_mb = 3 * (max(sizes) * 2) / 1e6  # room for about three clips and their snapshots
    folder = tmp_path / "events"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a clip: never removed")
    sink = ClipSink(folder, pre=0.5, post=0.5, max_mb=limit_mb)
    records, _ = run(clf, clip, [JsonlSink(tmp_path / "out.jsonl"), sink], regions=(rc.two_regions()[0],))
    named = [Path(r["event"]["clip"]) for r in records if "event" in r]
    assert len(named) == 16 and sink.written == 16 and sink.removed >= 10
    kept = sorted(p for p in folder.iterdir() if CLIP_NAME.match(p.name))
    assert sum(p.stat().st_size for p in kept) <= limit_mb * 1e6
    # The newest clips are the ones kept, each with its snapshot; the stranger's file is untouched.
    kept_clips = [p for p in kept if p.suffix == ".mp4"]
    assert kept_clips == named[-len(kept_clips) :] and len(kept_clips) >= 2
    assert all(p.with_suffix(".jpg").exists() for p in kept_clips)
    assert (folder / "notes.txt").exists()


def test_clips_not_yet_written_never_hold_more_than_their_memory(
    clf: Classifier, coral: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An event every 15 frames, each clip collecting for 2 s (60 frames) after it: with room for one clip in
    # memory, the events that come while one is pending get none, and say so.
    flip = [("bird.bmp", 15), ("sunflower.bmp", 15)] * 8
    clip = rc.write_scene(tmp_path / "flip.avi", coral, feeder=flip, door=[("cat.bmp", 240)])
    sink = ClipSink(tmp_path / "events", pre=0.5, post=2.0, memory_mb=0.5)
    records, _ = run(clf, clip, [JsonlSink(tmp_path / "out.jsonl"), sink], regions=(rc.two_regions()[0],))
    events = [r["event"] for r in records if "event" in r]
    with_clip = [e for e in events if "clip" in e]
    assert len(events) == 16 and sink.skipped == 16 - len(with_clip) >= 8 and sink.dropped >= sink.skipped
    assert all(Path(e["clip"]).exists() and Path(e["snapshot"]).exists() for e in with_clip)
    assert any("without a clip" in r.getMessage() for r in caplog.records)


def test_a_full_disk_stops_clips_with_one_warning_never_the_loop(scene: Path, mnv2: Path, tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    probe = subprocess.run(
        [unshare or "unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True, timeout=30
    ) if unshare else None  # fmt: skip
    if probe is None or probe.returncode != 0:
        pytest.skip("a small disk for this test needs `unshare --user --mount` (user namespaces), which this machine refuses")
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import io, logging, sys
            sys.path.insert(0, {str(REPO)!r})
            logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
            from edge_classifier import Classifier, LoopOptions
            from edge_classifier.session import run_pipeline
            from edge_classifier.sinks import JsonlSink
            from edge_classifier.sinks.clips import ClipSink
            from tests.region_clips import two_regions
            with Classifier({str(mnv2)!r}) as clf:
                sink = ClipSink({str(disk)!r}, pre=1.0, post=1.0)
                stats = run_pipeline(clf, {str(scene)!r}, [JsonlSink({str(tmp_path / "out.jsonl")!r}), sink],
                                     LoopOptions(regions=two_regions()), stats_file=io.StringIO(), handle_signals=False)
            print("frames", stats.frames, "written", sink.written, "stopped", sink.stopped is not None)
            """
        )
    )
    # A 2 MB disk: room for a clip or two of this scene (about 0.9 MB of frames each, plus the 1 MB margin), not five.
    command = f"mount -t tmpfs -o size=2m tmpfs {disk} && exec {sys.executable} {script}"
    done = subprocess.run(
        [unshare or "unshare", "--user", "--map-root-user", "--mount", "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "frames 120" in done.stdout and "stopped True" in done.stdout
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING") and "clips" in line]
    assert len(warnings) == 1 and "is full" in warnings[0] and "classification goes on" in warnings[0], done.stderr
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(records) == 240  # every frame of both regions: the loop never stopped


def test_the_ring_keeps_pre_seconds_and_never_more_than_its_bytes() -> None:
    ring = FrameRing(seconds=1.0, max_bytes=10_000)
    for i in range(100):
        ring.add(_Stored(i / 30, i, b"x" * 100))
        assert ring.nbytes <= 10_000
    assert [f.index for f in ring] == list(range(69, 100))  # 1 s at 30 fps, and the frame that starts it
    small = FrameRing(seconds=1.0, max_bytes=1_000)
    for i in range(100):
        small.add(_Stored(i / 30, i, b"x" * 100))
    assert len(small) == 10 and small.trimmed_for_bytes > 0
    assert clip_fps(list(ring)) == 30.0 and clip_fps([]) == 15.0


def test_clip_names_sort_by_time_and_are_safe_file_names() -> None:
    a, b = clip_stem(1_700_000_000.25, "feeder", "tabby, tabby cat"), clip_stem(1_700_000_001.5, "door", "open/closed")
    assert a.endswith(".250_feeder_tabby") and b.endswith(".500_door_open_closed") and a < b
    assert CLIP_NAME.match(a + ".mp4") and CLIP_NAME.match(b + ".jpg")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"pre": -1}, "pre=-1"),
        ({"post": float("nan")}, "post=nan"),
        ({"max_mb": 0}, "clips-max-mb=0"),
        ({"quality": 0}, "quality=0"),
        ({"format": "avi"}, "(?s)clip format='avi'.*mp4, webm"),
    ],
)
def test_bad_clip_options_are_config_errors(kwargs: dict[str, Any], words: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=words):
        ClipSink(tmp_path, **kwargs)

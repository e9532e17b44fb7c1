"""Regions of interest on a real scene clip and Coral's MobileNetV2: states, events at known frames, framing, errors."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge_classifier import Classifier, LoopOptions
from edge_classifier.errors import ConfigError
from edge_classifier.loop import FrameLoop, stream
from edge_classifier.preprocess import fit_to_spec
from edge_classifier.regions import DEFAULT_FRAMING, Region, frame_region, parse_box, pixel_box, region_spec
from edge_classifier.results import Result
from edge_classifier.session import run_pipeline
from edge_classifier.sinks import JsonlSink
from tests import region_clips as rc


def two_regions(**fields: Any) -> tuple[Region, Region]:
    feeder, door = rc.boxes()
    return (
        Region("feeder", feeder, states=rc.FEEDER_STATES, **fields),
        Region("door", door, states=rc.DOOR_STATES, **fields),
    )


def events_of(results: list[Result]) -> dict[str, list[tuple[int, str | None, str]]]:
    out: dict[str, list[tuple[int, str | None, str]]] = {}
    for r in results:
        for region in r.regions:
            if region.event is not None:
                e = region.event
                out.setdefault(e.region, []).append((e.frame_index, e.previous_state, e.state))
    return out


# --- declarations ---------------------------------------------------------------------------


def test_boxes_are_fractions_up_to_one_and_pixels_above() -> None:
    assert parse_box("0.55,0.20,0.30,0.40") == (0.55, 0.2, 0.3, 0.4)
    assert parse_box([100, 50, 300, 400]) == (100, 50, 300, 400)
    door = Region("door", "100,50,300,400")
    assert door.in_pixels and pixel_box(door, 640, 480) == (100, 50, 300, 400)
    feeder = Region("feeder", (0.55, 0.2, 0.3, 0.4))
    assert not feeder.in_pixels and pixel_box(feeder, 1280, 720) == (704, 144, 384, 288)
    # Edges are rounded, so boxes that touch as fractions touch in pixels.
    left, right = Region("a", (0, 0, 1 / 3, 1)), Region("b", (1 / 3, 0, 2 / 3, 1))
    la, ra = pixel_box(left, 640, 480), pixel_box(right, 640, 480)
    assert la[0] + la[2] == ra[0] and ra[0] + ra[2] == 640
    assert Region.parse("feeder=0.55,0.20,0.30,0.40").box == feeder.box


@pytest.mark.parametrize(
    ("box", "words"),
    [
        ("0.5,0.5,0,0.2", "zero width"),
        ("10,10,100,0", "zero height"),
        ("0.6,0.2,0.5,0.4", "leaves the frame"),
        ("1,2,3", "has 3 values"),
        ("a,b,c,d", "not four numbers"),
        ("-1,0,10,10", "finite number >= 0"),
        ("1.5,0,100,100", "mixes pixels"),
    ],
)
def test_a_bad_box_is_one_config_error_naming_the_region(box: str, words: str) -> None:
    with pytest.raises(ConfigError) as e:
        Region("door", box)
    assert "region 'door': box" in str(e.value) and words in str(e.value) and "fix:" in str(e.value)


def test_a_box_outside_the_frame_is_refused_at_the_first_frame(clf: Classifier, scene: Path) -> None:
    w, h = rc.frame_size()
    options = LoopOptions(regions=(Region("door", (w - 100, 0, 200, 100)),))
    with pytest.raises(ConfigError) as e:
        list(stream(clf, scene, options))
    assert f"reaches outside the {w}x{h} frame" in str(e.value) and "region 'door'" in str(e.value)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"name": "front door"}, "is not a plain name"),
        ({"states": {"unknown": ["cat"]}}, "reserved"),
        ({"states": {"open": []}}, "is not a list of labels"),
        ({"states": ["cat"]}, "is not a table of state names"),
        ({"threshold": 1.5}, "is not a score in [0, 1]"),
        ({"states": {"open": ["cat"]}, "thresholds": {"shut": 0.5}}, "names no state of this region"),
        ({"framing": "zoom"}, "use one of stretch, center_crop, letterbox, model"),
        ({"hysteresis": 2.5}, "is not a whole number of frames"),
    ],
)
def test_region_fields_are_validated_with_the_allowed_values(fields: dict[str, Any], words: str) -> None:
    args: dict[str, Any] = {"name": "door", "box": (0.1, 0.1, 0.5, 0.5), **fields}
    with pytest.raises(ConfigError) as e:
        Region(**args)
    assert words in str(e.value)


def test_loop_options_refuse_twin_names_and_bad_trigger_values() -> None:
    with pytest.raises(ConfigError, match="is named twice"):
        LoopOptions(regions=(Region("a", (0, 0, 0.5, 0.5)), Region("a", (0.5, 0.5, 0.5, 0.5))))
    with pytest.raises(ConfigError, match="smoothing"):
        LoopOptions(regions=(Region("a", (0, 0, 0.5, 0.5), smoothing=1.0),))
    with pytest.raises(ConfigError, match="every=0"):
        LoopOptions(every=0)
    with pytest.raises(ConfigError, match="from 1 to 255"):
        LoopOptions(motion=True, motion_threshold=0)
    with pytest.raises(ConfigError, match=r"in \(0, 1\]"):
        LoopOptions(motion=True, motion_min_area=0)
    assert LoopOptions(regions=[Region("a", (0, 0, 1, 1))]).regions[0].name == "a"  # a list becomes a tuple


def test_states_naming_labels_the_model_lacks_are_refused_before_any_frame(clf: Classifier, scene: Path) -> None:
    bad = Region("feeder", rc.boxes()[0], states={"bird": ["birb"]})
    with pytest.raises(ConfigError) as e:
        FrameLoop(clf, scene, LoopOptions(regions=(bad,)))
    assert "'birb'" in str(e.value) and "did you mean 'bird'" in str(e.value) and "built-in group" in str(e.value)


# --- the scene ------------------------------------------------------------------------------


def test_each_region_reports_its_states_with_events_at_the_known_frames(clf: Classifier, scene: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    err = io.StringIO()
    stats = run_pipeline(clf, scene, [JsonlSink(out)], LoopOptions(regions=two_regions()), stats_file=err, handle_signals=False)
    assert stats.frames == 120
    records = [json.loads(line) for line in out.read_text().splitlines()]
    # One record per region per frame, each naming its region.
    assert len(records) == 240 and {r["region"] for r in records} == {"feeder", "door"}
    assert [r["frame"] for r in records if r["region"] == "door"] == list(range(120))
    events = {
        name: [
            (r["frame"], r["event"]["previous_state"], r["event"]["state"])
            for r in records
            if r["region"] == name and "event" in r
        ]
        for name in ("feeder", "door")
    }
    assert events == {"feeder": rc.FEEDER_EVENTS, "door": rc.DOOR_EVENTS}
    # The event names the best label inside the new state.
    feeder_labels = [r["event"]["label"] for r in records if r["region"] == "feeder" and "event" in r]
    assert feeder_labels == ["chickadee", "daisy", "macaw"]
    door_states = [r["state"] for r in records if r["region"] == "door"]
    assert door_states[:2] == [None, None] and door_states[2:62] == ["cat"] * 60 and door_states[62:] == ["person"] * 58
    # A region's box and raw top class are in its record.
    first = next(r for r in records if r["region"] == "door")
    assert first["box"] == [224, 0, 224, 224] and first["classes"][0]["label"] == "Egyptian cat"


def test_fraction_boxes_match_pixel_boxes(clf: Classifier, scene: Path) -> None:
    w, h = rc.frame_size()
    feeder = Region("feeder", (0, 0, 224 / w, 224 / h), states=rc.FEEDER_STATES)
    door = Region("door", (224 / w, 0, 224 / w, 224 / h), states=rc.DOOR_STATES)
    results = list(stream(clf, scene, LoopOptions(regions=(feeder, door))))
    assert results[0].regions[0].box == (0, 0, 224, 224) and results[0].regions[1].box == (224, 0, 224, 224)
    assert events_of(results) == {"feeder": rc.FEEDER_EVENTS, "door": rc.DOOR_EVENTS}


def test_without_states_the_labels_are_the_states_and_unknown_is_below_the_threshold(clf: Classifier, scene: Path) -> None:
    # Egyptian cat scores about 0.75 and military uniform about 0.9 on this model: 0.85 separates them.
    door = Region("door", rc.boxes()[1], threshold=0.85)
    results = list(stream(clf, scene, LoopOptions(regions=(door,))))
    assert events_of(results) == {"door": [(2, None, "unknown"), (62, "unknown", "military uniform")]}
    last = results[-1].regions[0]
    assert (
        last.state == "military uniform" and last.score >= 0.85 and last.top is not None and last.top.label == "military uniform"
    )


def test_per_state_thresholds(clf: Classifier, scene: Path) -> None:
    # The cat is unknown when its state needs 0.99; the person still passes the region's 0.5.
    door = Region("door", rc.boxes()[1], states=rc.DOOR_STATES, thresholds={"cat": 0.99})
    results = list(stream(clf, scene, LoopOptions(regions=(door,))))
    assert events_of(results) == {"door": [(2, None, "unknown"), (62, "unknown", "person")]}


def test_smoothing_and_hysteresis_per_region(clf: Classifier, scene: Path) -> None:
    feeder, door = two_regions()
    slow = dataclasses.replace(door, hysteresis=10)
    results = list(stream(clf, scene, LoopOptions(regions=(feeder, slow), smoothing=0.5)))
    door_events = [e[0] for e in events_of(results)["door"]]
    assert door_events[0] == 9 and 69 <= door_events[1] <= 72  # 10 frames to confirm, a few more for the EMA
    assert results[5].regions[0].smoothed is not None  # smoothing on: the smoothed ranking is reported


def test_a_region_may_run_its_own_model(clf: Classifier, scene: Path, coral: Path) -> None:
    feeder, door = two_regions()
    own = dataclasses.replace(feeder, model=coral / "tf2_mobilenet_v2_1.0_224_ptq.tflite")
    loop = FrameLoop(clf, scene, LoopOptions(regions=(own, door)))
    region_clf = loop.runners[0].classifier
    assert region_clf is not clf and "tf2_mobilenet" in str(getattr(region_clf, "model_path", ""))
    results = list(loop)
    assert events_of(results) == {"feeder": rc.FEEDER_EVENTS, "door": rc.DOOR_EVENTS}
    with pytest.raises(Exception, match="closed"):  # the loop opened it, the loop closed it
        region_clf.runtime_info  # noqa: B018


def test_the_region_is_cut_from_the_full_frame_and_framed_by_its_own_framing(clf: Classifier, coral: Path) -> None:
    # A 1280x720 frame: the region is the parrot photo pasted at (600, 100) at 300x500 (not square).
    frame = np.full((720, 1280, 3), 90, np.uint8)
    parrot = cv2.cvtColor(cv2.imread(str(coral / "parrot.jpg")), cv2.COLOR_BGR2RGB)
    frame[100:600, 600:900] = cv2.resize(parrot, (300, 500), interpolation=cv2.INTER_AREA)
    region = Region("perch", (600, 100, 300, 500))
    assert region.framing == DEFAULT_FRAMING == "stretch"
    box = pixel_box(region, 1280, 720)
    stretched = frame_region(frame, box, region_spec(clf.spec, "stretch"))
    expected = fit_to_spec(frame[100:600, 600:900], dataclasses.replace(clf.spec, resize="stretch"))
    assert stretched.shape == (224, 224, 3) and np.array_equal(stretched, expected)
    cropped = frame_region(frame, box, region_spec(clf.spec, "center_crop"))
    assert np.array_equal(
        cropped, fit_to_spec(frame[100 + 100 : 100 + 400, 600:900], dataclasses.replace(clf.spec, resize="stretch"))
    )
    # The model's own framing (centre crop 0.875) is one choice among the four.
    own = frame_region(frame, box, region_spec(clf.spec, "model"))
    assert np.array_equal(own, fit_to_spec(frame[100:600, 600:900], clf.spec))
    top = clf.predict_framed(stretched).top
    assert top is not None and top.label == "macaw"

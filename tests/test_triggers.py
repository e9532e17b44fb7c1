"""Interval and motion triggers on real scene clips: the same events as classifying every frame, far fewer invokes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_classifier import Classifier, LoopOptions
from edge_classifier.loop import FrameLoop, stream
from edge_classifier.results import Result
from edge_classifier.triggers import MotionDetector
from tests import region_clips as rc
from tests.clips import write_clip


def region_events(results: list[Result]) -> dict[str, list[tuple[int, str]]]:
    out: dict[str, list[tuple[int, str]]] = {}
    for r in results:
        for e in r.events:
            name = getattr(e, "region", "frame")
            out.setdefault(name, []).append((e.frame_index, getattr(e, "state", None) or getattr(e, "label", "")))
    return out


def classified(results: list[Result], name: str) -> list[int]:
    return [r.frame.index for r in results for g in r.regions if g.name == name and g.classified]


def test_motion_gives_the_same_events_as_every_frame_with_far_fewer_invokes(clf: Classifier, scene: Path) -> None:
    every = list(stream(clf, scene, LoopOptions(regions=rc.two_regions())))
    loop = FrameLoop(clf, scene, LoopOptions(regions=rc.two_regions(), motion=True))
    moved = list(loop)
    assert region_events(moved) == region_events(every)
    assert region_events(moved)["feeder"] == [(f, s) for f, _, s in rc.FEEDER_EVENTS]
    assert loop.plan is not None and sum(loop.plan.classified) <= 40 < 240 == sum(len(r.regions) for r in every)
    feeder, door = classified(moved, "feeder"), classified(moved, "door")
    # Each region wakes for its own changes only: the feeder changes at 40 and 90, the door at 60.
    assert {40, 41, 42, 90, 91, 92} <= set(feeder) and not set(range(10, 40)) & set(feeder)
    assert {60, 61, 62} <= set(door) and not set(range(10, 60)) & set(door) and not set(range(70, 120)) & set(door)
    assert loop.skipped == 120 - len(moved)


def test_every_classifies_on_the_stream_clock_and_confirms_a_change_at_frame_rate(
    clf: Classifier, coral: Path, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "cat_parrot.avi", [(coral / "cat.bmp", 45), (coral / "parrot.jpg", 45)])
    loop = FrameLoop(clf, clip, LoopOptions(every=1.0))
    results = list(loop)
    # 30 fps file read as fast as it decodes: 1 s is 30 frames of the file, not 1 s of wall time.
    assert [r.frame.index for r in results] == [0, 1, 2, 32, 62, 63, 64]
    assert [(e.frame_index, getattr(e, "label", "")) for r in results for e in r.events] == [(2, "Egyptian cat"), (64, "macaw")]
    assert loop.skipped == 90 - 7


def test_motion_on_the_whole_frame(clf: Classifier, coral: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "cat_parrot.avi", [(coral / "cat.bmp", 45), (coral / "parrot.jpg", 45)])
    every = list(stream(clf, clip, LoopOptions()))
    moved = list(stream(clf, clip, LoopOptions(motion=True)))
    assert region_events(moved) == region_events(every) == {"frame": [(2, "Egyptian cat"), (47, "macaw")]}
    assert [r.frame.index for r in moved] == [0, 1, 2, 45, 46, 47, 48]  # the first event's frames, the cut, 3 to settle


def test_a_change_without_motion_is_caught_by_the_periodic_check(clf: Classifier, coral: Path, tmp_path: Path) -> None:
    # The door fades from the cat to the person over 3 s: no two frames differ enough to count as motion.
    left = rc.tiles(coral, [("bird.bmp", 180)])
    right = (
        rc.tiles(coral, [("cat.bmp", 30)])
        + rc.fade(coral, "cat.bmp", "grace_hopper.bmp", 90)
        + rc.tiles(coral, [("grace_hopper.bmp", 60)])
    )
    clip = rc.write_tiles(tmp_path / "fade.avi", left, right)
    still = list(stream(clf, clip, LoopOptions(regions=rc.two_regions(), motion=True)))  # recheck every 10 s: after the clip
    assert region_events(still)["door"] == [(2, "cat")]
    checked = list(stream(clf, clip, LoopOptions(regions=rc.two_regions(), motion=True, every=1.0)))
    door = region_events(checked)["door"]
    assert door[0] == (2, "cat") and door[-1][1] == "person" and door[-1][0] <= 150
    assert len(classified(checked, "door")) < 30  # still far fewer than 180


def test_the_motion_detector_measures_change_inside_each_box(coral: Path) -> None:
    a = cv2.cvtColor(cv2.imread(str(coral / "cat_720p.jpg")), cv2.COLOR_BGR2RGB)
    b = a.copy()
    parrot = cv2.cvtColor(cv2.imread(str(coral / "parrot.jpg")), cv2.COLOR_BGR2RGB)
    b[100:300, 900:1200] = cv2.resize(parrot, (300, 200))  # something comes into the top right
    m = MotionDetector(threshold=25)
    assert m.update(a) is None and m.step == 1280 // 160
    mask = m.update(b)
    assert mask is not None and mask.shape == (90, 160)
    assert m.share(mask, (900, 100, 300, 200)) > 0.2  # far above the default min_area of 0.005
    assert m.share(mask, (0, 400, 600, 300)) == 0.0
    again = m.update(b)
    assert again is not None and not again.any()  # nothing moved since
    assert np.isclose(m.share(mask, (0, 0, 1280, 720)), mask.mean())


def test_a_flickering_scene_is_not_chased_at_frame_rate(clf: Classifier, coral: Path, tmp_path: Path) -> None:
    # The door alternates between the cat and the person every frame: a new state always leads, never confirmed.
    cat, person = rc.tiles(coral, [("cat.bmp", 1)]), rc.tiles(coral, [("grace_hopper.bmp", 1)])
    right = (cat + person) * 60
    clip = rc.write_tiles(tmp_path / "flicker.avi", rc.tiles(coral, [("bird.bmp", 120)]), right)
    loop = FrameLoop(clf, clip, LoopOptions(regions=rc.two_regions()[1:], every=1.0))
    results = list(loop)
    door = classified(results, "door")
    # Each second: the scheduled classification, then at most 2 x settle (6) more chasing the pending change.
    assert door[:7] == list(range(7)) and len(door) <= 4 * 7
    assert region_events(results) == {}  # nothing was ever confirmed

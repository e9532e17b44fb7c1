"""``edge-classifier run`` with regions, triggers and clips: the command line, [[region]] tables, their errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_classifier.cli import build_parser, main
from edge_classifier.config import apply_config, load_config
from edge_classifier.errors import ConfigError
from tests import region_clips as rc
from tests.clips import video_frames


@pytest.fixture(scope="module")
def scene(coral: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rc.write_scene(tmp_path_factory.mktemp("scene") / "scene.avi", coral)


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "porch.toml"
    p.write_text(text)
    return p


PORCH = """
every = 1.0
motion = true
motion-threshold = 30
motion-min-area = 0.01
pre = 0.5
post = 0.5
clips-max-mb = 50

[[region]]
name = "feeder"
box = [0, 0, 224, 224]
states = { bird = ["bird"], flower = ["daisy"] }
threshold = 0.6

[[region]]
name = "door"
box = "224,0,224,224"
states = { cat = ["cat"], person = "military uniform" }
thresholds = { person = 0.5 }
framing = "stretch"
hysteresis = 3
"""


def test_region_flags_classify_each_box_with_its_labels_as_states(
    scene: Path, mnv2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    code = main(["run", "-s", str(scene), "-m", str(mnv2), "--region", "feeder=0,0,224,224", "--region", "door=224,0,224,224",
                 "--jsonl", str(out), "--stats-interval", "0"])  # fmt: skip
    assert code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 240 and {r["region"] for r in records} == {"feeder", "door"}
    door = [(r["frame"], r["event"]["state"]) for r in records if r["region"] == "door" and "event" in r]
    assert door == [(2, "Egyptian cat"), (62, "military uniform")]  # without states, labels are the states
    printed = capsys.readouterr().out
    assert "frame 62: door is military uniform" in printed


def test_the_recording_shows_each_region_box_and_its_state(scene: Path, mnv2: Path, tmp_path: Path) -> None:
    video = tmp_path / "run.avi"
    code = main(["run", "-s", str(scene), "-m", str(mnv2), "--region", "feeder=0,0,224,224", "--region", "door=224,0,224,224",
                 "--record", str(video), "--record-fps", "30", "--stats-interval", "0"])  # fmt: skip
    assert code == 0
    frames = video_frames(video)
    assert len(frames) == 120
    bgr = frames[100]
    amber = np.array([0, 200, 255])
    # The door's right edge and both boxes' bottom edges, in amber (MJPG moves colours a little), below the banner.
    for edge in (bgr[40:200, 447], bgr[223, 10:200], bgr[223, 240:440]):
        assert (np.abs(edge.astype(int) - amber).max(axis=-1) <= 70).mean() > 0.8
    # And not in the scene itself.
    source = cv2.VideoCapture(str(scene))
    source.set(cv2.CAP_PROP_POS_FRAMES, 100)
    ok, plain = source.read()
    source.release()
    assert ok and (np.abs(plain[40:200, 447].astype(int) - amber).max(axis=-1) <= 70).mean() < 0.2


def test_a_config_file_with_region_tables_triggers_and_clips(scene: Path, mnv2: Path, tmp_path: Path) -> None:
    out, clips = tmp_path / "out.jsonl", tmp_path / "events"
    cfg = _write(
        tmp_path,
        f'model = "{mnv2}"\nsource = "{scene}"\njsonl = "{out}"\nclips = "{clips}"\nquiet = true\nstats-interval = 0\n' + PORCH,
    )
    args = apply_config(build_parser().parse_args(["run", "--config", str(cfg)]))
    assert args.every == 1.0 and args.motion is True and args.motion_threshold == 30 and args.pre == 0.5
    assert [r["name"] for r in args.region] == ["feeder", "door"]
    assert main(["run", "--config", str(cfg)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    events = [(r["region"], r["frame"], r["event"]["state"]) for r in records if "event" in r]
    # The same events as classifying every frame (tests/test_regions.py), with motion and a 1 s check.
    assert sorted(events) == sorted(
        [("feeder", f, s) for f, _, s in rc.FEEDER_EVENTS] + [("door", f, s) for f, _, s in rc.DOOR_EVENTS]
    )
    assert len(records) < 120  # regions classified only when something moved (or once a second)
    files = sorted(p.name for p in clips.iterdir())
    assert len(files) == 10 and all(Path(r["event"]["clip"]).name in files for r in records if "event" in r)


def test_the_command_line_region_replaces_the_files(tmp_path: Path) -> None:
    cfg = _write(tmp_path, PORCH)
    args = apply_config(build_parser().parse_args(["run", "--config", str(cfg), "--region", "perch=0.5,0,0.5,0.5"]))
    assert args.region == ["perch=0.5,0,0.5,0.5"] and args.every == 1.0


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        (
            '[[region]]\nname = "door"\nbox = [0, 0, 1, 1]\ntreshold = 0.5',
            ["key 'region'", "'treshold'", "did you mean 'threshold'", "name, box, states"],
        ),
        ('[region]\nname = "door"\nbox = [0, 0, 1, 1]', ["key 'region'", "write [[region]] (two brackets)"]),
        ('[[region]]\nname = "door"\nbox = [0.5, 0, 0.6, 1]', ["key 'region'", "region 'door': box", "leaves the frame"]),
        (
            '[[region]]\nname = "door"\nbox = [0, 0, 1, 1]\nframing = "zoom"',
            ["region 'door': framing", "stretch, center_crop, letterbox, model"],
        ),
        ("[[region]]\nbox = [0, 0, 1, 1]", ["[[region]]", "region 1", "has no name"]),
        ('[[region]]\nname = "door"\nbox = [0, 0, 1, 1]\nthreshold = 2', ["region 'door': threshold", "not a score in [0, 1]"]),
        ('[[region]]\nname = "door"\nbox = [0, 0, 1, 1]\nstates = { unknown = ["cat"] }', ["states.unknown", "reserved"]),
        ('[[region]]\nname = "door"\nbox = [0, 0, 1, 1]\nsmoothing = 1.0', ["region 'door'", "smoothing=1.0", "[0, 1)"]),
        (
            '[[region]]\nname = "a"\nbox = [0, 0, 1, 1]\n[[region]]\nname = "a"\nbox = [0, 0, 1, 1]',
            ["region 'a'", "is named twice"],
        ),
        ('[[region]]\nname = "door"\nbox = [0, 0, 1, 1]\nmodel = 3', ["region 'door': model", "is not a path"]),
        ("every = 0", ["key 'every'", "0 is not allowed", "must be in (0, 86400]"]),
        ("motion = 1", ["key 'motion'", "expected true or false"]),
        ("motion-threshold = 300", ["key 'motion-threshold'", "must be in [1, 255]"]),
        ("motion-min-area = 0", ["key 'motion-min-area'", "must be in (0, 1]"]),
        ("pre = -1", ["key 'pre'", "must be in [0, 600]"]),
        ("clips-max-mb = 0", ["key 'clips-max-mb'", "0 is not allowed", "must be in (0, "]),
        ("clips = 5", ["key 'clips'", "expected a string"]),
    ],
)
def test_config_errors_name_the_key_and_the_allowed_values(tmp_path: Path, text: str, parts: list[str]) -> None:
    cfg = _write(tmp_path, text + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    msg = str(err.value)
    assert str(cfg) in msg
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        (["--region", "door"], 1, "has no '='"),
        (["--region", "door=0.5,0.5,0.6,0.2"], 1, "leaves the frame"),
        (["--region", "front door=0,0,1,1"], 1, "is not a plain name"),
        (["--every", "0"], 2, "--every"),
        (["--motion-threshold", "0"], 2, "--motion-threshold"),
    ],
)
def test_bad_region_and_trigger_flags_are_one_error_before_the_model_loads(
    argv: list[str], code: int, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) if code == 2 else _nothing():
        assert main(["run", "-m", "/nonexistent.tflite", *argv]) == code
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and "nonexistent" not in err


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False

"""``edge-classifier collect``: training photos from a real source, paced by stream time, written whole, every
bad input one clear error; and the photos train a model's dataset layout as they are."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_classifier.cli import main
from edge_classifier.collect import check_label, collect
from edge_classifier.errors import ConfigError, SinkError
from edge_classifier.results import Frame
from edge_classifier.sources import open as open_source
from edge_classifier.sources import sample_clip_path
from tests.conftest import REPO
from tests.test_hostile_sinks import fill, small_disk  # noqa: F401 - small_disk is a fixture used by name

CLIP = sample_clip_path()  # 90 frames of 320x240 at 10 fps, shipped in the package


def test_photos_come_every_n_seconds_of_the_clip_whole_and_full_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["collect", "tabby cat", "-s", str(CLIP), "--out", str(tmp_path), "--count", "4", "--every", "1.5"])
    assert code == 0
    photos = sorted((tmp_path / "tabby cat").glob("*.jpg"))
    # 10 fps, one every 1.5 s of the clip: frames 0, 15, 30, 45, whatever the decoding speed.
    assert [p.stem.rsplit("-", 1)[-1] for p in photos] == ["000000", "000015", "000030", "000045"]
    with open_source(CLIP) as src:
        frames = {f.index: f.rgb for f in src if f.index in (0, 15, 30, 45)}
    for photo in photos:
        bgr = cv2.imread(str(photo))
        assert bgr is not None and bgr.shape == (240, 320, 3)
        original = frames[int(photo.stem.rsplit("-", 1)[-1])]
        assert np.abs(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(int) - original).mean() < 4  # quality 92
    out, err = capsys.readouterr()
    assert out.count("(4/4)") == 1 and len(out.splitlines()) == 4
    assert "4 photo(s) of 'tabby cat'" in err
    assert "training needs at least 2" in err and f"edge-convert train {tmp_path}" in err
    assert not list((tmp_path / "tabby cat").glob(".*"))  # no temporary file left


def test_a_second_session_adds_to_the_class_and_names_the_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for label in ("empty", "empty", "full"):
        assert main(["collect", label, "-s", str(CLIP), "--out", str(tmp_path), "--count", "2", "--every", "0", "-q"]) == 0
    out, err = capsys.readouterr()
    assert out == ""  # -q
    assert len(list((tmp_path / "empty").glob("*.jpg"))) == 4  # never overwritten: the names differ
    assert "(4 there now)" in err
    assert "classes in" in err and "empty, full" in err


def test_the_source_ending_first_is_said_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["collect", "x", "-s", str(CLIP), "--out", str(tmp_path), "--count", "50", "--every", "2"]) == 0
    err = capsys.readouterr().err
    assert len(list((tmp_path / "x").glob("*.jpg"))) == 5  # 9 s of clip: 0, 2, 4, 6, 8 s
    assert "the source ended after 90 frames, before 50 photos (lower --every for more)" in err


@pytest.mark.parametrize(
    ("label", "cause"),
    [("", "is empty"), ("  ", "is empty"), ("a/b", "holds '/'"), ("..", "starts with '.'"), (".hidden", "starts with '.'"),
     ("door:open", "holds ':'"), ("tab\there", "holds '\\t'"), ("x" * 101, "is 101 bytes long; a folder name holds at most 100"),
     ("ä" * 51, "is 102 bytes long")],
)  # fmt: skip
def test_a_label_that_cannot_be_a_folder_is_refused(label: str, cause: str) -> None:
    with pytest.raises(ConfigError, match="label") as info:
        check_label(label)
    assert cause in str(info.value) and "plain name" in str(info.value)


def test_labels_with_spaces_and_unicode_are_folders_as_given() -> None:
    assert check_label(" garage door open ") == "garage door open"
    assert check_label("Kätzchen") == "Kätzchen"


def test_bad_values_are_one_error_before_the_camera_opens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "taken").write_text("a file")
    assert main(["collect", "x", "-s", str(CLIP), "--out", str(tmp_path / "taken")]) == 1
    err = capsys.readouterr().err
    assert "taken/x: cannot be made: a file stands where the folder should be" in err and "fix: give another --out" in err
    assert main(["collect", "a/b", "-s", "/dev/video99"]) == 1  # the label is checked before the source is opened
    assert "label 'a/b'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["collect", "x", "--quality", "0"])
    assert exit_info.value.code == 2
    frames = [Frame(np.zeros((4, 4, 3), np.uint8), 0, 0.0)]
    with pytest.raises(ConfigError, match="every"):
        collect(frames, tmp_path, "x", 1, every=float("nan"))
    with pytest.raises(ConfigError, match="count"):
        collect(frames, tmp_path, "x", 0)


def test_a_full_disk_stops_with_one_error_and_leaves_only_whole_photos(small_disk: Path) -> None:  # noqa: F811
    fill(small_disk, 1_100_000)  # room for a few photos above the 1 MiB kept free, not for 50
    with pytest.raises(SinkError) as info, open_source(CLIP) as src:
        collect(src, small_disk, "x", 50, every=0)
    message = str(info.value)
    assert "the disk is full (ENOSPC)" in message and "free some space" in message
    photos = list((small_disk / "x").glob("*.jpg"))
    assert 1 <= len(photos) < 50
    assert all(cv2.imread(str(p)) is not None for p in photos)  # each one whole
    assert not [p for p in (small_disk / "x").iterdir() if p.suffix != ".jpg"]  # no partial file


def test_ctrl_c_keeps_the_photos_taken_and_exits_130(tmp_path: Path) -> None:
    # A real SIGINT to a real process reading the clip at its own pace (--realtime): 10 fps, a photo every frame.
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_classifier", "collect", "x", "-s", str(CLIP), "--out", str(tmp_path), "--count", "80",
         "--every", "0", "--realtime"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    for _ in range(3):  # three photos saved, then Ctrl-C
        assert "x/" in proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    photos = list((tmp_path / "x").glob("*.jpg"))
    assert 3 <= len(photos) < 80 and all(cv2.imread(str(p)) is not None for p in photos)
    assert f"{len(photos)} photo(s) of 'x'" in err and "interrupted (every photo saved is whole)" in err
    assert "Traceback" not in err

"""Photos prepared ahead in worker threads: input order kept, memory bounded, bad files counted and named, same answers."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge_classifier import Classifier
from edge_classifier.errors import ConfigError, EdgeClassifierError, ImageError
from edge_classifier.evaluate import Framing, LabelResolver, evaluate, read_dataset
from edge_classifier.prefetch import Target, available_cores, default_jobs, ordered_map, predict_photos, prepared_photos
from edge_classifier.preprocess import fit_to_spec, load_image
from edge_classifier.spec import SpecOverrides
from tests.conftest import CORAL

MNV2 = CORAL / "mobilenet_v2_1.0_224_quant.tflite"
PHOTOS = ("cat.bmp", "parrot.jpg", "grace_hopper.bmp", "bird.bmp", "sunflower.bmp", "cat_720p.jpg")


# --- the ordered, bounded map ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("jobs", [1, 2, 5])
def test_results_come_in_input_order_whatever_finishes_first(jobs: int) -> None:
    delays = [0.02 * ((i * 7) % 5) for i in range(30)]  # later items often finish first

    def work(i: int) -> int:
        time.sleep(delays[i])
        return i * i

    assert list(ordered_map(work, range(30), jobs=jobs)) == [(i, i * i) for i in range(30)]


def test_memory_is_bounded_by_ahead() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            started.append(i)
        return i

    seen = 0
    for i, _ in ordered_map(work, range(100), jobs=3, ahead=4):
        time.sleep(0.002)  # a slow consumer: the workers must wait for it, not run ahead
        with lock:
            assert len(started) <= i + 1 + 4, (i, len(started))
        seen += 1
    assert seen == 100 and sorted(started) == list(range(100))


def test_errors_are_results_and_bugs_are_raised_in_turn() -> None:
    def work(i: int) -> int:
        if i == 2:
            raise ImageError(f"photo {i}", "is broken", "re-copy it")
        if i == 5:
            raise ZeroDivisionError("a bug")
        return i

    it = ordered_map(work, range(8), jobs=3)
    got = [next(it) for _ in range(5)]
    assert [i for i, _ in got] == [0, 1, 2, 3, 4]
    assert isinstance(got[2][1], ImageError) and "photo 2" in str(got[2][1])
    with pytest.raises(ZeroDivisionError):
        next(it)


def test_closing_early_stops_the_workers() -> None:
    done: list[int] = []

    def work(i: int) -> int:
        time.sleep(0.01)
        done.append(i)
        return i

    before = threading.active_count()
    it = ordered_map(work, range(1000), jobs=2, ahead=4)
    assert next(it) == (0, 0)
    it.close()  # type: ignore[attr-defined]
    assert len(done) <= 1 + 4 + 2  # what was in flight, no more
    assert threading.active_count() <= before


@pytest.mark.parametrize("jobs", [0, -1, True, 1.5, "2"])
def test_jobs_must_be_a_whole_number_of_at_least_one(jobs: object) -> None:
    with pytest.raises(ConfigError, match="jobs"):
        ordered_map(lambda x: x, [1], jobs=jobs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ahead"):
        ordered_map(lambda x: x, [1], jobs=1, ahead=0)


def test_default_jobs_are_the_cores_the_interpreter_leaves() -> None:
    cores = available_cores()
    assert default_jobs(cores) == 1  # the interpreter takes every core: one worker still prepares the next photo
    assert default_jobs(cores + 4) == 1
    assert default_jobs(1) == max(1, cores - 1)
    assert default_jobs(None) == max(1, cores - 1)  # an accelerator: the caller's thread feeds it


# --- photos ---------------------------------------------------------------------------------------------------------
@pytest.fixture()
def folder(tmp_path: Path) -> list[Path]:
    """The Coral photos with bad files between them: corrupt, empty, not an image, missing."""
    paths = []
    for i, name in enumerate(PHOTOS):
        p = tmp_path / f"{i * 2:02d}_{name}"
        shutil.copy(CORAL / name, p)
        paths.append(p)
    (tmp_path / "01_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "03_empty.png").write_bytes(b"")
    (tmp_path / "05_notes.jpg").write_text("shopping list", encoding="utf-8")
    bad = [tmp_path / "01_broken.jpg", tmp_path / "03_empty.png", tmp_path / "05_notes.jpg", tmp_path / "07_missing.jpg"]
    return sorted(paths + bad)


@pytest.mark.parametrize("jobs", [1, 3])
def test_predict_photos_keeps_order_and_answers_and_names_bad_files(folder: list[Path], jobs: int) -> None:
    with Classifier(MNV2) as clf:
        expected = {}
        for p in folder:
            try:
                expected[p] = clf.predict(p).scores
            except ImageError:
                expected[p] = None
        out = list(predict_photos(clf, folder, jobs=jobs, reduced=False))
        reduced = list(predict_photos(clf, folder, jobs=jobs))
    assert [p for p, _ in out] == folder == [p for p, _ in reduced]
    bad = [(p, r) for p, r in out if isinstance(r, EdgeClassifierError)]
    assert [p.name for p, _ in bad] == ["01_broken.jpg", "03_empty.png", "05_notes.jpg", "07_missing.jpg"]
    assert all(isinstance(r, ImageError) and p.name in str(r) for p, r in bad)
    for p, r in out:
        if expected[p] is None:
            continue
        assert not isinstance(r, EdgeClassifierError)
        # Decoded whole, the same pixels reach the model as with predict(path).
        np.testing.assert_array_equal(r.scores, expected[p])
        assert r.timings["decode"] > 0 and r.timings["frame"] > 0 and r.timings["inference"] > 0
    # Decoded reduced (parrot.jpg at 1/2, 256x465; the others are too small), the answers stay.
    assert [r.classes[0].label for _, r in out if not isinstance(r, EdgeClassifierError)] == [
        r.classes[0].label for _, r in reduced if not isinstance(r, EdgeClassifierError)
    ]


def test_prepared_photos_frame_once_per_model(tmp_path: Path) -> None:
    with Classifier(MNV2) as a, Classifier(MNV2, overrides=SpecOverrides(resize="letterbox"), resample="fast") as b:
        targets = [Target(a.spec, "exact"), Target(b.spec, "fast")]
        (photo,) = prepared_photos([CORAL / "parrot.jpg"], targets, jobs=2)
        rgb = load_image(CORAL / "parrot.jpg", min_size=(256, 256))  # the larger need of the two: 256 for crop 0.875
        assert rgb.shape == (465, 256, 3)
        np.testing.assert_array_equal(photo.pixels[0], fit_to_spec(rgb, a.spec, "exact"))
        np.testing.assert_array_equal(photo.pixels[1], fit_to_spec(rgb, b.spec, "fast"))
        assert photo.error is None and len(photo.frame_seconds) == 2
        assert a.predict_framed(photo.pixels[0]).classes[0].label == "macaw"
        with pytest.raises(ImageError, match="not this model's input"):
            a.predict_framed(rgb)
    with pytest.raises(ConfigError, match="targets"):
        list(prepared_photos([CORAL / "parrot.jpg"], [], jobs=1))


def test_evaluate_on_worker_threads_counts_bad_files_and_keeps_the_answers(tmp_path: Path) -> None:
    data = tmp_path / "photos"
    for folder, names in {
        "n02124075": ["cat.bmp"],
        "macaw": ["parrot.jpg"],
        "19": ["bird.bmp"],
        "daisy": ["sunflower.bmp"],
    }.items():
        (data / folder).mkdir(parents=True)
        for name in names:
            shutil.copy(CORAL / name, data / folder / name)
    (data / "macaw" / "broken.jpg").write_bytes(b"GIF89a broken")
    with Classifier(MNV2) as clf:
        dataset = read_dataset(data, LabelResolver(clf.spec.labels, clf.spec.num_classes))
    framings = [Framing.parse("model"), Framing.parse("stretch/fast")]

    def open_for(f: Framing) -> Classifier:
        return Classifier(MNV2, overrides=SpecOverrides(resize=f.resize, crop_fraction=f.crop_fraction), resample=f.resample)

    runs = {}
    for jobs in (1, 3):
        seen: list[Path] = []
        runs[jobs] = evaluate(open_for, dataset, framings, on_unreadable=lambda p, e, seen=seen: seen.append(p), jobs=jobs)
        assert seen == [data / "macaw" / "broken.jpg"]
    for one, three in zip(runs[1], runs[3], strict=True):
        assert one.images == three.images == 4 and one.unreadable == three.unreadable == 1
        assert one.top1 == three.top1 == 1.0 and one.predictions == three.predictions


# --- the command line -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("jobs", ["1", "3"])
def test_classify_a_folder_with_jobs_keeps_order_and_names_bad_files(
    folder: list[Path], jobs: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_classifier.cli import main

    root = folder[0].parent
    code = main(["classify", str(root), "--model", str(MNV2), "--json", "--jobs", jobs, "--top-k", "1"])
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    present = [p for p in folder if p.exists()]
    assert code == 1  # some images failed, as today
    assert [r["image"] for r in records] == [str(p) for p in present]  # sorted, in order, bad ones in their place
    errors = {Path(r["image"]).name for r in records if "error" in r}
    assert errors == {"01_broken.jpg", "03_empty.png", "05_notes.jpg"}
    assert err.count("error: ") == 3 and "01_broken.jpg" in err and "03_empty.png" in err
    labels = [r["classes"][0]["label"] for r in records if "error" not in r]
    assert labels[1] == "macaw" and len(labels) == len(PHOTOS)


def test_classify_jobs_is_checked_and_files_keep_their_spelling(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from edge_classifier.cli import main

    with pytest.raises(SystemExit):
        main(["classify", str(CORAL / "cat.bmp"), "--model", str(MNV2), "--jobs", "0"])
    assert "--jobs" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(
        ["classify", str(empty), str(CORAL / "parrot.jpg"), str(tmp_path / "gone.jpg"), "--model", str(MNV2), "--jobs", "2"]
    )
    out, err = capsys.readouterr()
    assert code == 1 and "holds no image files" in err and "gone.jpg: no such image file" in err
    assert out.splitlines()[0] == str(CORAL / "parrot.jpg") and "macaw" in out

"""`edge-convert train`: real training on a slice of ../shared/testdata/insects, the trained model through the
runtime's own commands, the report, and every bad input.

The slow tests train EfficientNet-Lite0 for real on 12 ants and 12 bees copied into a temporary folder (under
class names with spaces and non-ASCII letters, so the labels' path through the model file is exercised too).
The bad-input tests stop before TensorFlow loads, so they are fast.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_classifier.errors import ConversionError, EdgeClassifierError, TrainingError

REPO = Path(__file__).resolve().parents[1]
INSECTS_TRAIN = REPO.parent / "shared" / "testdata" / "insects" / "train"
# Folder names are the labels: a space, an accent and a CJK name, as a user's own classes may be.
ANTS, BEES = "fourmi ant", "蜜蜂 bee"
PER_CLASS = 12


def _copy_slice(dst: Path, start: int = 0, count: int = PER_CLASS) -> Path:
    """``count`` photos per class from insects/train (sorted, from ``start``) under the test's class names."""
    for src_name, name in (("ants", ANTS), ("bees", BEES)):
        (dst / name).mkdir(parents=True, exist_ok=True)
        for p in sorted((INSECTS_TRAIN / src_name).glob("*.jpg"))[start : start + count]:
            shutil.copy(p, dst / name / p.name)
    return dst


def _train(data: Path, out: Path, **kw: Any) -> dict[str, Any]:
    from edge_classifier.convert.train import TrainOptions, train

    opts = {"base": "efficientnet-lite0", "num_calib": 48, "augment": 1, "progress": False, "announce": False, **kw}
    return train(TrainOptions(data=data, out_dir=out, **opts))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copy_slice(tmp_path_factory.mktemp("photos") / "my insects")


@pytest.fixture(scope="module")
def trained(small: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _train(small, tmp_path_factory.mktemp("out"))


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_classifier", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _unseen(tmp_path: Path) -> Path:
    """Photos of both classes that the slice did not train or validate on."""
    return _copy_slice(tmp_path / "unseen", start=PER_CLASS, count=5)


# --- a real training run and what it wrote -----------------------------------------------------------------
@pytest.mark.slow
def test_training_writes_a_checked_int8_model_and_leaves_nothing_else(trained: dict[str, Any]) -> None:
    from edge_classifier.tflite_file import parse_model, read_associated_files

    out = trained["output"]
    model = Path(out["tflite"])
    assert model.name == "my_insects_int8.tflite"  # <folder name>_int8, made file-safe
    assert sorted(p.name for p in model.parent.iterdir()) == sorted(
        [model.name, "my_insects_train_report.json", "my_insects_train_report.html"]
    )  # no temporary folder, no .part file
    data = model.read_bytes()
    info = parse_model(data, str(model))
    assert {t.dtype for t in info.main.tensors} <= {"uint8", "int8", "int32"}
    assert info.main.tensors[info.main.inputs[0]].dtype == "uint8" and info.main.tensors[info.main.outputs[0]].dtype == "uint8"
    assert list(info.main.tensors[info.main.outputs[0]].shape) == [1, 2]
    files = read_associated_files(data)
    assert files["labels.txt"].decode("utf-8").splitlines() == [ANTS, BEES]
    spec = json.loads(files["edge_classifier_spec.json"])
    assert spec["label_offset"] == 0 and spec["output_kind"] == "probabilities" and spec["resize"] == "center_crop"
    check = trained["check"]
    assert check["float_tensors"] == [] and check["edgetpu_analysis"]["fully_mapped"] is True
    report = json.loads(Path(out["report"]).read_text(encoding="utf-8"))
    assert report["data"]["classes"] == [ANTS, BEES]
    assert report["data"]["train"] == {ANTS: 10, BEES: 10} and report["data"]["val"] == {ANTS: 2, BEES: 2}


@pytest.mark.slow
def test_accuracy_float_and_int8_on_held_out_photos(trained: dict[str, Any]) -> None:
    val = trained["validation"]
    assert val["images"] == 4
    # 10 photos per class are enough for ants vs bees on ImageNet features; INT8 follows float.
    assert val["float_accuracy"] >= 0.75 and val["int8_accuracy"] >= 0.75
    assert [r["class"] for r in val["per_class"]] == [ANTS, BEES]
    assert np.asarray(val["confusion_int8"]).sum() == 4
    history = trained["training"]["history"]
    assert history and all(r["phase"] == "head" for r in history)
    assert sum(r["kept"] for r in history) == 1
    assert history[0]["loss"] > history[-1]["loss"]  # it learnt


@pytest.mark.slow
def test_training_is_reproducible(small: Path, trained: dict[str, Any], tmp_path: Path) -> None:
    again = _train(small, tmp_path / "again")
    first, second = Path(trained["output"]["tflite"]).read_bytes(), Path(again["output"]["tflite"]).read_bytes()
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()  # same photos, same seed: same file
    assert again["training"]["history"] == trained["training"]["history"]


@pytest.mark.slow
def test_trained_model_classifies_with_its_own_labels(trained: dict[str, Any], tmp_path: Path) -> None:
    model = trained["output"]["tflite"]
    unseen = _unseen(tmp_path)
    photos = sorted(unseen.rglob("*.jpg"))
    res = _cli("classify", *map(str, photos), "--model", model, "--json", "-k", "5")
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(records) == len(photos)
    right = 0
    for rec in records:
        assert [c["label"] for c in sorted(rec["classes"], key=lambda c: c["id"])] == [ANTS, BEES]  # 2 classes, never 5
        assert abs(sum(c["score"] for c in rec["classes"]) - 1) < 0.02
        right += rec["classes"][0]["label"] == Path(rec["image"]).parent.name
    assert right >= 8, f"{right}/10 unseen photos right"
    text = _cli("classify", str(photos[0]), "--model", model)
    assert text.returncode == 0 and (ANTS in text.stdout or BEES in text.stdout)


@pytest.mark.slow
def test_trained_model_runs_live_with_its_own_labels(trained: dict[str, Any], tmp_path: Path) -> None:
    unseen = _unseen(tmp_path)
    res = _cli(
        "run", "--model", trained["output"]["tflite"], "--source", str(unseen / ANTS), "--jsonl", "-", "--stats-interval", "0"
    )
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert len(records) == 5
    labels = {c["label"] for r in records for c in r["classes"]}
    assert labels <= {ANTS, BEES} and ANTS in labels


@pytest.mark.slow
def test_trained_model_evaluates_on_a_labelled_folder(trained: dict[str, Any], tmp_path: Path) -> None:
    res = _cli("evaluate", str(_unseen(tmp_path)), "--model", trained["output"]["tflite"], "--json")
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)["results"][0]
    # The folder names resolve to the model's own labels (no ImageNet table involved), every photo counted.
    assert {name: c["total"] for name, c in result["per_class"].items()} == {ANTS: 5, BEES: 5}
    assert result["images"] == 10 and result["unreadable"] == 0 and result["top1"] >= 0.8


@pytest.mark.slow
def test_html_report_is_self_contained_with_real_pictures(trained: dict[str, Any]) -> None:
    from PIL import Image

    page = Path(trained["output"]["html"]).read_text(encoding="utf-8")
    assert ANTS in page and BEES in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing to fetch
    pngs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(pngs) == 3  # per-class bars, confusion matrix, training curve
    for b64 in pngs:
        img = Image.open(io.BytesIO(base64.b64decode(b64)))
        assert img.format == "PNG" and img.width >= 300 and img.height >= 100
        colours = np.asarray(img.convert("RGB")).reshape(-1, 3)
        assert len(np.unique(colours, axis=0)) > 5  # drawn, not blank
    n_wrong = len(trained["validation"]["misclassified"])
    assert page.count("data:image/jpeg;base64,") == n_wrong


@pytest.mark.slow
def test_fine_tuning_and_interrupt_leave_complete_or_no_files(small: Path, tmp_path: Path) -> None:
    report = _train(small, tmp_path / "ft", fine_tune=1, epochs=3, augment=0, num_calib=16)
    phases = [r["phase"] for r in report["training"]["history"]]
    assert phases.count("fine-tune") >= 1 and phases[0] == "head"
    assert report["training"]["fine_tune_layers"] == [
        "blocks_15__expand_conv", "blocks_15__depthwise_conv", "blocks_15__project_conv", "conv_head",
    ]  # fmt: skip
    assert report["validation"]["int8_accuracy"] >= 0.75

    # Ctrl-C while the features are extracted: exit 130, the output folder left as it was (empty).
    out = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_classifier.convert.cli", "train", str(small), "-o", str(out),
         "--base", "efficientnet-lite0"],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    assert proc.stderr is not None
    deadline = time.monotonic() + 240
    for line in proc.stderr:
        if line.startswith("extracting features") or time.monotonic() > deadline:
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert list(out.iterdir()) == []  # not even a hidden temporary folder


@pytest.mark.slow
def test_without_validation_and_with_a_separate_validation_folder(small: Path, tmp_path: Path) -> None:
    # --val-split 0: every photo trains, nothing is claimed about accuracy.
    report = _train(small, tmp_path / "noval", val_split=0.0, augment=0, epochs=3, num_calib=8)
    assert report["validation"]["images"] == 0 and report["validation"]["int8_accuracy"] is None
    assert report["data"]["train"] == {ANTS: PER_CLASS, BEES: PER_CLASS}
    assert len(report["training"]["history"]) == 3 and "val_accuracy" not in report["training"]["history"][0]
    from edge_classifier.convert.train_report import summary

    assert "the accuracy is unknown" in summary(report)
    # --val DIR with one class only: the other class's accuracy is 'no photos', not an error.
    val = tmp_path / "val"
    for p in sorted((small / ANTS).glob("*.jpg"))[:2]:
        (val / ANTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, val / ANTS / p.name)
    report = _train(small, tmp_path / "withval", val=val, augment=0, epochs=3, num_calib=8)
    per_class = {r["class"]: r for r in report["validation"]["per_class"]}
    assert per_class[ANTS]["images"] == 2 and per_class[BEES]["images"] == 0 and per_class[BEES]["int8_accuracy"] is None
    assert report["data"]["val_source"] == str(val) and Path(report["output"]["html"]).is_file()


@pytest.mark.slow
def test_keras_application_base_offline_is_one_clear_error(small: Path, tmp_path: Path) -> None:
    from edge_classifier.convert.sources import keras_cache_dir

    if list(keras_cache_dir().glob("mobilenet_v2*no_top*.h5")):
        pytest.skip("the MobileNetV2 weights are in Keras' cache here, so nothing fails")
    from edge_classifier.errors import WeightsError

    with pytest.raises(WeightsError) as info:
        _train(small, tmp_path / "out", base="mobilenet_v2")
    assert "could not be loaded" in info.value.cause and "efficientnet-lite0" in info.value.fix
    assert list((tmp_path / "out").iterdir()) == []


FAKE_COMPILER = r'''#!{python}
"""FakeEdgeTpuCompiler: edgetpu_compiler exists for x86-64 Debian only and cannot be installed here. It prints a
success line and writes a real compiled model (one of Coral's) under the name the real compiler would use."""
import os, shutil, sys
args = sys.argv[1:]
if args == ["--version"]:
    print("Edge TPU Compiler version 16.0.384591198")
    sys.exit(0)
out_dir, model = args[args.index("-o") + 1], args[-1]
stem = os.path.splitext(os.path.basename(model))[0]
print("Edge TPU Compiler version 16.0.384591198\nModel compiled successfully in 42 ms.")
shutil.copyfile({compiled!r}, os.path.join(out_dir, stem + "_edgetpu.tflite"))
'''


@pytest.mark.slow
def test_edgetpu_compile_of_a_trained_model_lands_beside_it_and_in_the_report(trained: dict[str, Any], tmp_path: Path) -> None:
    from edge_classifier.convert.train import compile_edgetpu

    out = tmp_path / "out"
    shutil.copytree(Path(trained["output"]["tflite"]).parent, out)
    report = json.loads(json.dumps(trained))
    report["output"].update(
        {k: str(out / Path(v).name) for k, v in trained["output"].items() if k in ("tflite", "report", "html")}
    )
    compiled = REPO.parent / "shared" / "testdata" / "coral" / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
    fake = tmp_path / "bin" / "edgetpu_compiler"
    fake.parent.mkdir()
    fake.write_text(FAKE_COMPILER.format(python=sys.executable, compiled=str(compiled)))
    fake.chmod(0o755)
    result = compile_edgetpu(report, compiler=str(fake))
    assert result.output_path == out / "my_insects_int8_edgetpu.tflite" and result.output_path.is_file()
    on_disk = json.loads((out / "my_insects_train_report.json").read_text(encoding="utf-8"))
    assert on_disk["edgetpu_compile"]["output"] == str(result.output_path) and on_disk["output"]["edgetpu_tflite"] == str(
        result.output_path
    )
    assert not list(out.glob(".edgetpu-compile-*"))


# --- pieces: reproducible, pure -------------------------------------------------------------------------------
def test_head_training_is_seeded_and_learns_a_separable_problem() -> None:
    from edge_classifier.convert.train import train_head

    # Two classes told apart by two of 32 features, on an offset and scale like pooled ReLU6 features.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 32))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    x = (3 + 2 * x).astype(np.float32)
    a = train_head(x[:480], y[:480], 2, x_val=x[480:], y_val=y[480:], epochs=40, seed=3)
    b = train_head(x[:480], y[:480], 2, x_val=x[480:], y_val=y[480:], epochs=40, seed=3)
    assert np.array_equal(a.head.weights, b.head.weights) and a.best_epoch == b.best_epoch
    kept = a.history[a.best_epoch - 1]
    assert kept["val_accuracy"] >= 0.85 and a.history[0]["loss"] > kept["loss"]
    # The standardisation is folded into the weights: raw features in, the same answers out.
    assert float(np.mean(a.head.scores(x[480:]).argmax(1) == y[480:])) == pytest.approx(kept["val_accuracy"])
    c = train_head(x[:480], y[:480], 2, x_val=x[480:], y_val=y[480:], epochs=40, seed=4)
    assert not np.array_equal(a.head.weights, c.head.weights)  # the seed drives the batch order


def test_class_weights_balance_an_imbalanced_set() -> None:
    from edge_classifier.convert.train_data import class_weights

    y = np.array([0] * 30 + [1] * 10)
    w = class_weights(y, 2)
    assert w[y].sum() == pytest.approx(40) and (w[y] * (y == 0)).sum() == pytest.approx((w[y] * (y == 1)).sum())


def test_split_is_stratified_seeded_and_keeps_every_class_on_both_sides() -> None:
    from edge_classifier.convert.train_data import stratified_split

    y = np.array([0] * 20 + [1] * 2 + [2] * 7)
    tr, va = stratified_split(y, 0.2, seed=5)
    tr2, va2 = stratified_split(y, 0.2, seed=5)
    assert np.array_equal(va, va2) and np.array_equal(tr, tr2)
    assert sorted([*tr, *va]) == list(range(len(y)))
    assert np.bincount(y[va]).tolist() == [4, 1, 1] and set(y[tr]) == {0, 1, 2}
    assert not np.array_equal(stratified_split(y, 0.2, seed=6)[1], va)
    assert len(stratified_split(y, 0.0, seed=5)[1]) == 0


def test_augmentation_is_seeded_and_uses_the_runtime_framing() -> None:
    from edge_classifier.convert.calibration import preprocess
    from edge_classifier.convert.train_data import augmented_input, model_input
    from edge_classifier.spec import ModelSpec

    spec = ModelSpec((64, 64), "float32", 0.0, 0, (127.0,) * 3, (128.0,) * 3, 2, resize="center_crop")
    rgb = np.random.default_rng(0).integers(0, 255, (120, 200, 3), dtype=np.uint8)
    a = augmented_input(rgb, spec, np.random.default_rng(1))
    b = augmented_input(rgb, spec, np.random.default_rng(1))
    assert a.shape == (64, 64, 3) and a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.array_equal(a, augmented_input(rgb, spec, np.random.default_rng(2)))
    assert np.array_equal(model_input(rgb, spec), preprocess(rgb, spec))  # the calibration path: the runtime's framing


def test_output_name_is_file_safe() -> None:
    from edge_classifier.convert.train import output_name

    assert output_name(Path("photos")) == "photos"
    assert output_name(Path("/x/my photos/")) == "my_photos"
    assert output_name(Path("x"), "garage door") == "garage_door"
    assert output_name(Path("/x/蜜蜂")) == "蜜蜂"


# --- bad input: one clear error, before TensorFlow, or a counted skip ---------------------------------------------
def _photo(path: Path, size: tuple[int, int] = (64, 48), mode: str = "RGB", fmt: str = "JPEG") -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(len(str(path))).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).convert(mode).save(path, format=fmt)
    return path


def _fails(data: Path, tmp_path: Path, **kw: Any) -> TrainingError:
    from edge_classifier.convert.train import TrainOptions, train

    with pytest.raises(TrainingError) as info:
        train(TrainOptions(data=data, out_dir=tmp_path / "out", progress=False, announce=False, **kw))
    assert info.value.fix and "Traceback" not in str(info.value)
    return info.value


def test_no_images_at_all(tmp_path: Path) -> None:
    (tmp_path / "d" / "a").mkdir(parents=True)
    (tmp_path / "d" / "b").mkdir()
    (tmp_path / "d" / "b" / "notes.txt").write_text("x")
    assert "hold no images" in _fails(tmp_path / "d", tmp_path).cause
    (tmp_path / "flat").mkdir()
    _photo(tmp_path / "flat" / "x.jpg")
    err = _fails(tmp_path / "flat", tmp_path)
    assert "no class sub-folders (1 images lie directly in it)" in err.cause and "<class>" in err.fix
    assert "does not exist" in _fails(tmp_path / "missing", tmp_path).cause
    assert "not a folder" in _fails(tmp_path / "flat" / "x.jpg", tmp_path).cause


def test_one_class_only(tmp_path: Path) -> None:
    for i in range(3):
        _photo(tmp_path / "d" / "cat" / f"{i}.jpg")
    err = _fails(tmp_path / "d", tmp_path)
    assert "one class only ('cat')" in err.cause and "at least 2" in err.cause


def test_empty_class_folder_and_single_photo_class(tmp_path: Path) -> None:
    for i in range(3):
        _photo(tmp_path / "d" / "cat" / f"{i}.jpg")
    (tmp_path / "d" / "dog").mkdir()
    err = _fails(tmp_path / "d", tmp_path)
    assert err.thing.endswith("dog") and "holds no images" in err.cause
    _photo(tmp_path / "d" / "dog" / "only.jpg")
    err = _fails(tmp_path / "d", tmp_path)
    assert err.thing.endswith("dog") and "1 photo;" in err.cause and "at least 2" in err.cause


def test_class_whose_photos_are_all_unreadable(tmp_path: Path) -> None:
    from edge_classifier.convert.train_data import check_photos, load_photos, scan_folder

    for i in range(3):
        _photo(tmp_path / "d" / "cat" / f"{i}.jpg")
    (tmp_path / "d" / "dog").mkdir()
    for i in range(2):
        (tmp_path / "d" / "dog" / f"{i}.jpg").write_bytes(b"not a jpeg")
    photos = load_photos(scan_folder(tmp_path / "d"), 64, progress=False)
    with pytest.raises(TrainingError) as info:
        check_photos(photos)
    assert info.value.thing.endswith("dog") and "no readable photos (2 unreadable files skipped)" in info.value.cause


def test_corrupt_and_non_image_files_are_counted_skips(tmp_path: Path) -> None:
    from edge_classifier.convert.train_data import load_photos, scan_folder

    d = tmp_path / "d"
    for i in range(3):
        _photo(d / "cat" / f"{i}.jpg")
        _photo(d / "dog" / "nested" / f"{i}.png", fmt="PNG")  # recursive: still 'dog'
    (d / "cat" / "truncated.jpg").write_bytes(_photo(tmp_path / "t.jpg", (300, 200)).read_bytes()[:400])
    (d / "cat" / "fake.jpg").write_text("this is text")
    (d / "cat" / "empty.png").write_bytes(b"")
    (d / "dog" / "readme.txt").write_text("notes")
    (d / ".git").mkdir()
    _photo(d / ".git" / "x.jpg")  # hidden folders are not classes
    scan = scan_folder(d)
    assert scan.classes == ("cat", "dog")
    photos = load_photos(scan, 64, progress=False)
    assert photos.counts().tolist() == [3, 3]
    reasons = {p.name: r for p, r in photos.skipped}
    assert set(reasons) == {"truncated.jpg", "fake.jpg", "empty.png"}
    assert "not an image" in reasons["fake.jpg"] and "empty" in reasons["empty.png"]
    assert [p.name for p in photos.ignored] == ["readme.txt"]


def test_greyscale_rgba_16bit_and_huge_photos_decode_at_working_size(tmp_path: Path) -> None:
    from PIL import Image

    from edge_classifier.convert.train_data import decode_photo

    grey = decode_photo(_photo(tmp_path / "g.jpg", (90, 60), "L"), 448)
    assert grey.shape == (60, 90, 3) and np.array_equal(grey[..., 0], grey[..., 2])
    rgba = decode_photo(_photo(tmp_path / "a.png", (80, 80), "RGBA", "PNG"), 448)
    assert rgba.shape == (80, 80, 3) and rgba.dtype == np.uint8
    deep = tmp_path / "d16.png"
    Image.fromarray(np.full((40, 50), 40000, dtype=np.uint16)).save(deep)
    assert decode_photo(deep, 448).shape == (40, 50, 3)
    gradient = np.linspace(0, 255, 6000, dtype=np.float32)[None, :, None] * np.ones((4000, 1, 3), dtype=np.float32)
    Image.fromarray(gradient.astype(np.uint8)).save(tmp_path / "huge.jpg", quality=90)  # 24 megapixels
    t = time.perf_counter()
    huge = decode_photo(tmp_path / "huge.jpg", 448)
    assert huge.shape == (448, 672, 3)  # shorter side at the working size, aspect kept
    assert time.perf_counter() - t < 3  # decoded at a reduced scale, not at 24 megapixels


def test_class_names_with_spaces_unicode_and_backslashes_are_labels(tmp_path: Path) -> None:
    from edge_classifier.convert.train_data import check_labels_round_trip, scan_folder

    names = ["garage door open", "蜜蜂", "a\\b", "ça va?"]
    for n in names:
        _photo(tmp_path / "d" / n / "x.jpg")
    scan = scan_folder(tmp_path / "d")
    assert set(scan.classes) == set(names)
    check_labels_round_trip(scan.classes, scan.root)
    # A slash cannot be in a folder name; a nested folder belongs to its first-level class.
    _photo(tmp_path / "d" / "garage door open" / "night/ir" / "y.jpg")
    assert len(scan_folder(tmp_path / "d").files[scan.classes.index("garage door open")]) == 2
    # Names the labels file would read back differently are refused up front, naming the folder.
    for bad in (["1 open", "2 closed"], [" open", "closed"]):
        with pytest.raises(TrainingError) as info:
            check_labels_round_trip(bad, tmp_path)
        assert "rename the class folders" in info.value.fix


def test_output_folder_that_is_a_file(tmp_path: Path) -> None:
    from edge_classifier.convert.train import TrainOptions, train

    for c in ("a", "b"):
        for i in range(2):
            _photo(tmp_path / "d" / c / f"{i}.jpg")
    target = tmp_path / "out"
    target.write_text("I am a file")
    with pytest.raises(TrainingError) as info:
        train(TrainOptions(data=tmp_path / "d", out_dir=target, progress=False, announce=False))
    assert "is a file, not a folder" in info.value.cause
    assert target.read_text() == "I am a file"


def test_bad_numbers_and_bases(tmp_path: Path) -> None:
    from edge_classifier.convert.train import TrainOptions, check_options

    for kw, flag in (({"epochs": 0}, "--epochs"), ({"val_split": 1.0}, "--val-split"), ({"base": "resnet9000"}, "--base")):
        with pytest.raises(TrainingError) as info:
            check_options(TrainOptions(data=tmp_path, **kw))
        assert info.value.thing.startswith(flag)
    assert issubclass(TrainingError, ConversionError) and issubclass(TrainingError, EdgeClassifierError)


def test_validation_folder_with_an_unknown_class(tmp_path: Path) -> None:
    for c in ("a", "b"):
        for i in range(2):
            _photo(tmp_path / "d" / c / f"{i}.jpg")
    _photo(tmp_path / "v" / "c" / "0.jpg")
    err = _fails(tmp_path / "d", tmp_path, val=tmp_path / "v")
    assert "'c' is not one of the training classes" in err.cause


def test_cli_errors_are_one_line_and_exit_1(tmp_path: Path) -> None:
    _photo(tmp_path / "d" / "only" / "0.jpg")
    res = subprocess.run(
        [sys.executable, "-m", "edge_classifier.convert.cli", "train", str(tmp_path / "d"), "-o", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 1 and res.stderr.startswith("error: ") and "fix:" in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run(
        [sys.executable, "-m", "edge_classifier.convert.train_cli", str(tmp_path / "d"), "--val-split", "1.5"],  # on its own too
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 2 and "--val-split" in res.stderr

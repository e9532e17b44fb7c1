"""``edge-convert convert ... --target imx500``: the hand-over to Sony's toolchain, its set-up errors, and (slow) the real thing.

The fast tests check the pieces that run in edge-classifier's own environment: the neutral graph a Keras 3 model is
exported to, rebuilt here by the very function the toolchain runs (:func:`converters.imx500_job.rebuild`, under
this TensorFlow's tf.keras) and compared with the source model on raw pixels; the toolchain's Python and Java
checks; the command line. The slow test converts EfficientNet-Lite0 with the real MCT and imxconv (first use
installs the toolchain from PyPI into ~/.cache/edge-classifier/imx500-toolchain: minutes and ~750 MB).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from converters import imx500_env
from converters.imx500 import export_graph
from converters.imx500_job import agreement, rebuild
from edge_classifier.errors import ConversionError, JavaMissingError, ToolchainInstallError

REPO = Path(__file__).resolve().parents[1]
CORAL = REPO.parent / "shared" / "testdata" / "coral"


def _small_model(keras: object, *, preprocess: bool) -> object:
    import keras as k

    inp = k.Input(shape=(32, 32, 3), batch_size=1, name="image")
    x = inp
    if preprocess:
        x = k.layers.Rescaling(1 / 255.0, name="to_unit")(x)
        norm = k.layers.Normalization(mean=[0.4, 0.5, 0.6], variance=[0.04, 0.09, 0.16], name="norm")
        x = norm(x)
    x = k.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="conv")(x)
    x = k.layers.BatchNormalization(name="bn")(x)
    x = k.layers.ReLU(6.0, name="relu")(x)
    y = k.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = k.layers.Add(name="add")([x, y])
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    x = k.layers.Dense(5, name="fc")(x)
    out = k.layers.Softmax(name="probs")(x)
    model = k.Model(inp, out, name="small")
    rng = np.random.default_rng(0)
    model.set_weights(
        [rng.normal(0, 0.3, w.shape).astype("float32") + (1.0 if "variance" in w.path else 0.0) for w in model.weights]
    )
    return model


@pytest.mark.parametrize("preprocess", [False, True])
def test_the_graph_handed_to_the_toolchain_rebuilds_the_same_network(tmp_path: Path, preprocess: bool) -> None:
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    model = _small_model(keras, preprocess=preprocess)
    scale, offset, folded = export_graph(model, tmp_path)
    assert folded == (["to_unit", "norm"] if preprocess else [])
    graph = json.loads((tmp_path / "graph.json").read_text())
    assert [layer["class_name"] for layer in graph["layers"]][:2] == ["InputLayer", "Conv2D"]
    assert graph["layers"][1]["inbound"] == ["image"] and graph["output"] == "probs"
    # The spec's normalisation (here mean 127.5, std 127.5) composed with the folded layers, as convert_imx500 does.
    mean, std = np.full(3, 127.5), np.full(3, 127.5)
    eff_std = std / scale
    eff_mean = mean - offset * eff_std
    job = {
        "graph": "graph.json",
        "weights": "weights.npz",
        "input_size": [32, 32],
        "mean": eff_mean.tolist(),
        "std": eff_std.tolist(),
    }
    rebuilt = rebuild(tf, job, tmp_path)
    pixels = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    want = np.concatenate([np.asarray(model((pixels[i : i + 1] - 127.5) / 127.5)) for i in range(4)])
    got = np.asarray(rebuilt(pixels))
    assert np.abs(got - want).max() < 1e-5
    assert rebuilt.layers[1].name == "normalize" and type(rebuilt.layers[1]).__name__ == "DepthwiseConv2D"


def test_a_layer_the_sensor_cannot_take_is_named(tmp_path: Path) -> None:
    keras = pytest.importorskip("keras")
    inp = keras.Input(shape=(8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, name="conv")(inp)
    x = keras.layers.LayerNormalization(name="ln")(x)
    model = keras.Model(inp, keras.layers.GlobalAveragePooling2D(name="gap")(x))
    with pytest.raises(ConversionError, match="layer 'ln'.*is a LayerNormalization, which the IMX500 path does not take") as info:
        export_graph(model, tmp_path)
    assert "SavedModel is opaque" in info.value.fix


def test_agreement_figures() -> None:
    f = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]])
    q = np.array([[0.8, 0.2, 0.0], [0.6, 0.3, 0.1], [0.3, 0.3, 0.4]])
    got = agreement(f, q)
    assert got["images"] == 3 and got["top1_agreement"] == pytest.approx(2 / 3) and got["float_top1_in_quantized_top5"] == 1.0


def _exe(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_java_is_checked_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(JavaMissingError, match="is not on PATH") as info:
        imx500_env.ensure_toolchain(tmp_path / "tc")
    assert "openjdk-17" in info.value.fix
    _exe(tmp_path / "old", "java", "echo 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    monkeypatch.setenv("PATH", str(tmp_path / "old"))
    with pytest.raises(JavaMissingError, match="needs Java 17 or newer"):
        imx500_env.check_java()
    _exe(tmp_path / "j8", "java", "echo 'java version \"1.8.0_392\"' >&2\n")
    monkeypatch.setenv("PATH", str(tmp_path / "j8"))
    with pytest.raises(JavaMissingError, match="1.8.0_392"):
        imx500_env.check_java()
    _exe(tmp_path / "new", "java", "echo 'openjdk version \"17.0.15\" 2025-04-15' >&2\n")
    monkeypatch.setenv("PATH", str(tmp_path / "new"))
    assert imx500_env.check_java().startswith('openjdk version "17')


def test_a_failed_install_says_why_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _exe(tmp_path / "bin", "java", "echo 'openjdk version \"17.0.15\"' >&2\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    bad_python = _exe(tmp_path / "bin", "python3.11", 'echo "Error: ensurepip is not available" >&2\nexit 1\n')
    with pytest.raises(ToolchainInstallError, match="(?s)creating the toolchain.s virtual environment failed.*ensurepip") as info:
        imx500_env.ensure_toolchain(tmp_path / "tc", python=str(bad_python))
    assert "PyPI" in info.value.fix and not (tmp_path / "tc").exists()
    monkeypatch.setattr(imx500_env.sys, "version_info", (3, 13, 0))
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(ToolchainInstallError, match="needs Python 3.10 or 3.11"):
        imx500_env.find_python()


def test_a_finished_install_is_reused_and_a_stale_one_is_not(tmp_path: Path) -> None:
    root = tmp_path / "tc"
    (root / "bin").mkdir(parents=True)
    for name in ("python", "imxconv-tf"):
        (root / "bin" / name).write_text("")
    assert imx500_env._installed(root) is None  # no marker: not finished
    (root / imx500_env.MARKER).write_text(json.dumps({"pins": list(imx500_env.PINS), "versions": {"tensorflow": "2.15.1"}}))
    assert imx500_env._installed(root) == {"tensorflow": "2.15.1"}
    (root / imx500_env.MARKER).write_text(json.dumps({"pins": ["edge-mdt[tf]==1.2.0"], "versions": {}}))
    assert imx500_env._installed(root) is None  # other pins: reinstalled


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tensorflow")
    from converters.cli import main

    assert main(["convert", "efficientnet-lite0", "--calib", str(tmp_path), "--target", "imx500", "--edgetpu"]) == 2
    assert "--edgetpu/--compiler are for the TFLite target" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["convert", "efficientnet-lite0", "--calib", str(tmp_path), "--target", "hailo"])
    assert "invalid choice: 'hailo'" in capsys.readouterr().err


@pytest.mark.slow
def test_efficientnet_lite0_converts_for_the_ai_camera(tmp_path: Path) -> None:
    """The real toolchain: MCT quantization and imxconv-tf write a packerOut.zip that fits the sensor."""
    from converters.cli import main
    from converters.sample_images import write_samples

    photos = tmp_path / "photos"
    write_samples(photos)
    out = tmp_path / "out"
    status = main(["convert", "efficientnet-lite0", "--target", "imx500", "--calib", str(photos), "--val", str(CORAL),
                   "--num-calib", "32", "-o", str(out), "--no-progress", "--min-agreement", "0.8"])  # fmt: skip
    assert status == 0
    report = json.loads((out / "efficientnet_lite0_imx500_report.json").read_text())
    packer = Path(report["output"]["packerOut.zip"])
    with zipfile.ZipFile(packer) as zf:
        names = set(zf.namelist())
        params = zf.read("dnnParams.xml").decode()
    assert {"dnnParams.xml", "l2staticData.bin", "manifest.json"} <= names
    # Raw pixels in (unsigned, scale 1: the network normalises them itself), 1000 scores out.
    assert 'format="unsigned"' in params and 'scale="1.0"' in params and 'dimension size="1000"' in params
    assert report["imx500"]["memory_report"]["Fit In Chip"] is True
    assert report["quantization"]["rebuild_max_abs_diff"] < 1e-4
    assert report["quantization"]["agreement"]["top1_agreement"] >= 0.8
    assert report["quantization"]["xquant_readable"]["validation"]["cosine_similarity"] > 0.95
    labels = (packer.parent / "labels.txt").read_text().splitlines()
    assert len(labels) == 1000 and labels[285] == "Egyptian cat"
    assert report["package_on_the_pi"].startswith("imx500-package -i packerOut.zip -o out/")

"""The AI Camera path: an .rpk runs on the IMX500 sensor and the frames carry its answers through the real loop.

Only the hardware edge is faked (tests/fake_imx500.py: picamera2's IMX500 class and an AI Camera for FakePicamera2,
with the vendor's metadata format, over a sysfs/firmware/dpkg tree); the fake sensor runs Coral's MobileNetV2 on
the CPU on the part of the scene its inference region covers, so the answers are a real network's.
"""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_classifier import Classifier, sources
from edge_classifier.backends.imx500 import active_sensor, open_imx500
from edge_classifier.cli import main as cli_main
from edge_classifier.errors import (
    ConfigError,
    FallbackWarning,
    ImageError,
    IMX500Error,
    IMX500FirmwareMissingError,
    IMX500NetworkError,
    IMX500NotFoundError,
    IMX500PermissionError,
    IMX500SupportMissingError,
    LabelsError,
    ModelError,
    SystemPackageHiddenError,
    WrongAcceleratorError,
)
from edge_classifier.imx500.rpk import read_rpk
from edge_classifier.sensor_classifier import SensorClassifier, open_sensor_classifier
from edge_classifier.sources.imx500 import IMX500Source, SensorFrame
from edge_classifier.sysfacts import Identity
from tests import fake_imx500
from tests.fake_imx500 import FakeAICamera, FakeIMX500


def _labels(coral: Path) -> list[str]:
    return (coral / "imagenet_labels.txt").read_text().splitlines()


def _photo(coral: Path, name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(coral / name)), cv2.COLOR_BGR2RGB)


@pytest.fixture
def camera(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Pi with an AI Camera, imx500-all installed, picamera2 with IMX500 support."""
    fake_imx500.install(monkeypatch)
    root = fake_imx500.build_system(tmp_path / "root")
    monkeypatch.setenv("EDGE_CLASSIFIER_SYSROOT", str(root))
    yield root
    sensor = active_sensor()
    if sensor is not None:
        sensor.close()
    fake_imx500.reset()


@pytest.fixture
def rpk(tmp_path: Path, mnv2: Path, coral: Path) -> Path:
    """A classification network whose intrinsics carry ImageNet labels; its stand-in is Coral's MobileNetV2."""
    intr = {"task": "classification", "inference_rate": 30.0, "classes": {"labels": _labels(coral)}}
    (tmp_path / "net").mkdir()
    return fake_imx500.build_rpk(tmp_path / "net" / "mobilenet_v2.rpk", mnv2, intrinsics=intr)


# --- the .rpk format ------------------------------------------------------------------------------------------------
def test_an_rpk_is_read_without_the_camera(tmp_path: Path, mnv2: Path) -> None:
    intr = {"task": "classification", "cpu": {"softmax": True}, "input_aspect_ratio": {"width": 1, "height": 1}}
    for fmt in ("newc", "odc"):
        path = fake_imx500.build_rpk(
            tmp_path / f"n_{fmt}.rpk", mnv2, width=256, height=192, input_format="BGR", intrinsics=intr, cpio=fmt
        )
        info = read_rpk(path)
        assert (info.input_size, info.input_format, info.task) == ((256, 192), "BGR", "classification")
        assert info.cpu_softmax and info.preserve_aspect_ratio and info.labels == ()
        assert info.network_info["inputTensorNorm_K00"] == "0x0400"
    bare = read_rpk(fake_imx500.build_rpk(tmp_path / "bare.rpk", mnv2))
    assert bare.intrinsics == {} and bare.task is None


def test_broken_rpk_files_name_what_is_wrong(tmp_path: Path, mnv2: Path) -> None:
    good = fake_imx500.build_rpk(tmp_path / "good.rpk", mnv2).read_bytes()
    cases = {
        "no_block.rpk": (b"PK\x03\x04" + good[8:], "no firmware block"),
        "no_footer.rpk": (good[:8] + good[8:].replace(b"3695", b"0000", 1), "has no footer"),
        "cut.rpk": (good[: len(good) - 300], "truncated|no network_info"),
        "not_cpio.rpk": (good[: good.index(b"070701")] + b"garbage" * 20, "not a cpio archive"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ModelError, match=message):
            read_rpk(tmp_path / name)
    with pytest.raises(ModelError, match="no such model file"):
        read_rpk(tmp_path / "missing.rpk")


# --- answers --------------------------------------------------------------------------------------------------------
def test_a_clip_through_the_imx500_path_gives_the_expected_labels(camera: Path, rpk: Path, coral: Path) -> None:
    FakeAICamera.clip = [(_photo(coral, "cat.bmp"), 14), (_photo(coral, "parrot.jpg"), 14)]
    with SensorClassifier(rpk) as clf:
        assert clf.runtime_info.device == "imx500:0" and "the network runs on the sensor" in clf.runtime_info.reason
        assert clf.spec.origin["labels"] == "embedded" and clf.spec.num_classes == 1000 and clf.spec.label_offset == 1
        assert clf.spec.input_size == (224, 224) and clf.spec.resize == "stretch"
        results = list(clf.stream("picamera", max_frames=24, smoothing=0.5))
    assert FakeIMX500.uploads and active_sensor() is None  # uploaded once, released on close
    tops = [r.classes[0].label for r in results]
    assert {r.device for r in results} == {"imx500:0"}
    assert all(isinstance(r.frame.rgb, SensorFrame) for r in results)
    assert all(r.timings["inference"] > 0 for r in results)  # the sensor's own DNN time (CnnKpiInfo)
    # The probe saw the first frames of its own opening; the stream's camera starts the clip again after a warm-up.
    assert tops[:10] == ["Egyptian cat"] * 10 and tops[-1] == "macaw"
    assert results[-1].smoothed is not None and results[-1].smoothed[0].label == "macaw"


def test_the_sensors_region_of_interest_picks_what_it_classifies(camera: Path, rpk: Path, coral: Path) -> None:
    cat = cv2.resize(_photo(coral, "cat.bmp"), (320, 480))
    parrot = cv2.resize(_photo(coral, "parrot.jpg"), (320, 480))
    FakeAICamera.clip = [(np.concatenate([cat, parrot], axis=1), 1)]  # cat on the left half, the parrot on the right
    with SensorClassifier(rpk) as clf:
        with IMX500Source(roi=(0.0, 0.0, 0.5, 1.0)) as left:
            assert clf.predict(next(iter(left)).rgb).classes[0].label == "Egyptian cat"
        assert FakeIMX500.loaded is not None and FakeIMX500.loaded.config["roi"] == (0, 0, 2028, 3040)
        with IMX500Source(roi=(0.5, 0.0, 0.5, 1.0)) as right:
            assert clf.predict(next(iter(right)).rgb).classes[0].label == "macaw"
        with pytest.raises(ConfigError, match="not a box inside the frame"):
            IMX500Source(roi=(0.6, 0, 0.5, 1))


def test_the_cli_runs_an_rpk_from_the_picamera(camera: Path, rpk: Path, coral: Path, capsys: pytest.CaptureFixture[str]) -> None:
    FakeAICamera.clip = [(_photo(coral, "parrot.jpg"), 1)]
    status = cli_main(["run", "--model", str(rpk), "--source", "picamera", "--max-frames", "5",
                       "--jsonl", "-", "--stats-interval", "0", "-q"])  # fmt: skip
    out = capsys.readouterr()
    assert status == 0, out.err
    records = [json.loads(line) for line in out.out.splitlines() if line.startswith("{")]
    assert len(records) == 5 and all("macaw" in json.dumps(r) for r in records)
    assert "on imx500:0" in out.err


def test_labels_and_softmax_from_intrinsics_or_a_sidecar(camera: Path, tmp_path: Path, mnv2: Path, coral: Path) -> None:
    FakeAICamera.clip = [(_photo(coral, "parrot.jpg"), 1)]
    net = tmp_path / "side"
    net.mkdir()
    plain = fake_imx500.build_rpk(net / "plain.rpk", mnv2)  # no intrinsics at all: labels from the sidecar
    (net / "plain_labels.txt").write_text("\n".join(_labels(coral)))
    (net / "plain.json").write_text(json.dumps({"name": "mnv2-imx500", "label_offset": 1}))
    with SensorClassifier(plain) as clf:
        assert clf.spec.name == "mnv2-imx500" and clf.spec.origin["labels"] == "embedded"
        assert clf.spec.output_kind == "probabilities"
        with sources.open("picamera") as src:
            assert isinstance(src, IMX500Source)
            assert clf.predict(next(iter(src)).rgb).classes[0].label == "macaw"
    softmax = fake_imx500.build_rpk(net / "sm.rpk", mnv2, intrinsics={"task": "classification", "cpu": {"softmax": True}})
    with SensorClassifier(softmax, labels=_labels(coral)) as clf:
        assert clf.spec.output_kind == "logits" and clf.spec.origin["labels"] == "user"
    with pytest.raises(LabelsError, match="has 3 labels but the model has 1001 outputs"):
        SensorClassifier(softmax, labels=["a", "b", "c"])
    assert active_sensor() is None  # a failed open releases the sensor


# --- one error per cause --------------------------------------------------------------------------------------------
def test_an_rpk_without_the_camera(tmp_path: Path, rpk: Path, mnv2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_imx500.install(monkeypatch)
    monkeypatch.setenv("EDGE_CLASSIFIER_SYSROOT", str(fake_imx500.build_system(tmp_path / "nocam", camera=False)))
    model = rpk
    with pytest.raises(IMX500NotFoundError, match="no IMX500 sensor is attached") as info:
        SensorClassifier(model)
    assert "rpicam-hello --list-cameras" in info.value.fix
    # device="auto" with the network's .tflite beside it: the CPU classifies the plain camera's frames instead.
    shutil.copy(mnv2, model.with_suffix(".tflite"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = open_sensor_classifier(model)
    with clf:
        assert isinstance(clf, Classifier) and clf.runtime_info.device == "cpu"
        assert isinstance(sources.open("picamera"), sources.PiCameraSource) and not isinstance(
            sources.open("picamera"), IMX500Source
        )
    assert any(issubclass(w.category, FallbackWarning) and "AI Camera not usable" in str(w.message) for w in caught)
    with pytest.raises(IMX500NotFoundError):
        open_sensor_classifier(model, device="imx500")  # explicit: no fallback


def test_firmware_permission_support_and_venv(tmp_path: Path, rpk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = rpk
    fake_imx500.install(monkeypatch)
    nofw = fake_imx500.build_system(tmp_path / "nofw", firmware=False)
    with pytest.raises(
        IMX500FirmwareMissingError, match="imx500_loader.fpk, /lib/firmware/imx500_firmware.fpk are missing"
    ) as info:
        open_imx500(model, root=str(nofw))
    assert "imx500-all" in info.value.fix
    locked = fake_imx500.build_system(tmp_path / "locked", node_mode=0o600)
    with pytest.raises(IMX500PermissionError, match="no read/write permission on /dev/v4l-subdev2") as info2:
        open_imx500(model, root=str(locked), identity=Identity(uid=4321, gids=frozenset({4321})))
    assert "video" in info2.value.fix
    ok = fake_imx500.build_system(tmp_path / "ok")
    fake_imx500.install(monkeypatch, imx500_support=False)
    with pytest.raises(IMX500SupportMissingError, match="no IMX500 support") as info3:
        open_imx500(model, root=str(ok))
    assert "python3-picamera2" in info3.value.fix
    for name in ("picamera2", "picamera2.devices", "picamera2.devices.imx500"):
        monkeypatch.setitem(sys.modules, name, None)
    (ok / "usr/lib/python3/dist-packages/picamera2").mkdir(parents=True)
    monkeypatch.setattr("edge_classifier.imx500.discovery.venv_hides_system_packages", lambda: True)
    with pytest.raises(SystemPackageHiddenError, match="hides system packages") as info4:
        open_imx500(model, root=str(ok))
    assert "--system-site-packages" in info4.value.fix


def test_the_network_refused_or_silent(camera: Path, rpk: Path) -> None:
    model = rpk
    FakeIMX500.refuse_upload = True
    with pytest.raises(IMX500NetworkError, match="the sensor's driver refused the network"):
        SensorClassifier(model)
    FakeIMX500.refuse_upload = False
    FakeAICamera.silent = True
    with pytest.raises(IMX500NetworkError, match="no CnnOutputTensor") as info:
        SensorClassifier(model, start_timeout=0.3)
    assert "upload" in info.value.fix
    assert active_sensor() is None


def test_wrong_models_and_wrong_inputs(camera: Path, rpk: Path, mnv2: Path, tmp_path: Path) -> None:
    model = rpk
    with pytest.raises(WrongAcceleratorError, match="is an IMX500 network") as info:
        Classifier(model)
    assert "SensorClassifier" in info.value.fix
    with pytest.raises(WrongAcceleratorError, match="not an IMX500 network"):
        SensorClassifier(mnv2)
    with pytest.raises(WrongAcceleratorError, match="device='hailo' is not the AI Camera"):
        SensorClassifier(model, device="hailo")
    detect = fake_imx500.build_rpk(tmp_path / "det.rpk", mnv2, intrinsics={"task": "object detection"})
    with pytest.raises(ModelError, match="is a object detection network, not an image classifier"):
        SensorClassifier(detect)
    with SensorClassifier(model) as clf:
        with pytest.raises(IMX500Error, match="one network at a time"):
            SensorClassifier(model)
        with pytest.raises(ImageError, match="classifies only the frames it captures"):
            clf.predict(np.zeros((224, 224, 3), np.uint8))
        with pytest.raises(ConfigError, match="one region of interest on its sensor"):
            clf.predict_framed(np.zeros((224, 224, 3), np.uint8))
    with pytest.raises(ModelError, match="closed"):
        clf.runtime_info  # noqa: B018 - the property raises

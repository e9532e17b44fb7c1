"""The Hailo path: a .hef classifies photos and clips through the real Classifier, with one error per cause.

Only the hardware edge is faked (tests/fake_hailo.py: HailoRT's Python binding, with its calls and exception types,
and the sysfs/dpkg tree the driver and Raspberry Pi's packages leave); the fake runs Coral's MobileNetV2 on the CPU,
so the answers are a real network's.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path

import pytest

from edge_classifier import Classifier, SpecOverrides
from edge_classifier.backends.hailo import HailoBackend, open_hailo
from edge_classifier.errors import (
    FallbackWarning,
    HailoBusyError,
    HailoDriverError,
    HailoError,
    HailoModelMismatchError,
    HailoNotFoundError,
    HailoPackageConflictError,
    HailoPermissionError,
    HailoRuntimeMissingError,
    HailoVersionError,
    InferenceError,
    ModelError,
    SystemPackageHiddenError,
    WrongAcceleratorError,
)
from edge_classifier.hailo import hef as hef_facts
from edge_classifier.hailo.diagnose import status_of
from edge_classifier.sysfacts import Identity
from tests import fake_hailo
from tests.clips import write_clip
from tests.conftest import EXPECTED

STRETCH = SpecOverrides(resize="stretch")


@pytest.fixture
def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Raspberry Pi 5 with an AI HAT+ (Hailo-8L), hailo-all 4.20.0 and a working driver."""
    fake_hailo.reset()
    monkeypatch.setitem(sys.modules, "hailo_platform", fake_hailo)
    root = fake_hailo.build_system(tmp_path / "root")
    monkeypatch.setenv("EDGE_CLASSIFIER_SYSROOT", str(root))
    bin_dir = tmp_path / "bin"
    fake_hailo.write_hailortcli(bin_dir, "HAILO8L")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    yield root
    fake_hailo.reset()


def _hef(folder: Path, mnv2: Path, coral: Path, name: str = "mobilenet_v2_h8l.hef", arch: str = "hailo8l") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = fake_hailo.write_fake_hef(folder / name, mnv2, arch)
    shutil.copy(coral / "imagenet_labels.txt", folder / f"{path.stem}_labels.txt")
    return path


@pytest.fixture
def hef(tmp_path: Path, mnv2: Path, coral: Path) -> Path:
    """A Hailo-8L HEF whose stand-in network is Coral's MobileNetV2, with its labels in a sidecar."""
    return _hef(tmp_path / "models", mnv2, coral)


# --- answers ----------------------------------------------------------------------------------------------------
def test_photos_on_the_hailo_get_the_cpu_models_answers(system: Path, hef: Path, mnv2: Path, coral: Path) -> None:
    # Coral's reference table was measured on whole photos stretched to the input (as tests/test_classifier.py does).
    with Classifier(hef, overrides=STRETCH) as clf, Classifier(mnv2, device="cpu", overrides=STRETCH) as cpu:
        info = clf.runtime_info
        assert (info.runtime, info.device) == ("hailort", "hailo:0")
        assert "Hailo-8L /dev/hailo0 via HailoRT 4.20.0" in info.reason and "compiled for the Hailo-8L" in info.reason
        assert isinstance(clf._backend, HailoBackend)
        assert clf.spec.input_size == (224, 224) and clf.spec.pixels_pass_through
        assert clf.spec.origin["labels"] == "embedded" and clf.spec.label_offset == 1 and clf.spec.num_classes == 1000
        for photo, (label, _, _) in EXPECTED.items():
            got = clf.predict(coral / photo)
            want = cpu.predict(coral / photo)
            assert got.classes[0].label == label, photo
            # The same network on the same pixels: the Hailo path adds nothing and loses nothing.
            assert got.classes[0].score == pytest.approx(want.classes[0].score, abs=1e-6), photo
    assert fake_hailo.STATE.runs == len(EXPECTED)
    assert all(v.released for v in fake_hailo.STATE.vdevices)


def test_a_clip_through_the_hailo_path_gives_the_expected_labels(system: Path, hef: Path, coral: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.avi", [(coral / "cat.bmp", 12), (coral / "parrot.jpg", 12)])
    with Classifier(hef) as clf:
        results = list(clf.stream(str(clip), smoothing=0.5))
    tops = [r.classes[0].label for r in results]
    assert len(results) == 24 and {r.device for r in results} == {"hailo:0"}
    assert tops[:12] == ["Egyptian cat"] * 12 and tops[-1] == "macaw"
    assert results[-1].smoothed is not None and results[-1].smoothed[0].label == "macaw"


def test_hef_facts_follow_hailort(tmp_path: Path) -> None:
    assert hef_facts.target_from_name("resnet_v1_50_h8l.hef") == "hailo8l"
    assert hef_facts.target_from_name("yolov8s_h8.hef") == "hailo8"
    assert hef_facts.target_from_name("x_h10.hef") == "hailo10h" and hef_facts.target_from_name("plain.hef") is None
    assert hef_facts.twin_path("/m/mobilenet_v2_h8l.hef") == Path("/m/mobilenet_v2.tflite")
    # DeviceBase::hef_arch_to_device_compatible_archs: 8L runs on 8 (slower), nothing else crosses.
    assert hef_facts.fits("hailo8l", "hailo8")[0] and "Hailo-8L speed" in hef_facts.fits("hailo8l", "hailo8")[1]
    assert not hef_facts.fits("hailo8", "hailo8l")[0] and not hef_facts.fits("hailo8l", "hailo10h")[0]
    assert status_of(fake_hailo.exception_from_status("HAILO_INVALID_DRIVER_VERSION")) == "HAILO_INVALID_DRIVER_VERSION"
    assert status_of(fake_hailo.HailoRTHEFNotCompatibleWithDevice("x")) == "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE"
    garbage = tmp_path / "x.hef"
    garbage.write_bytes(b"not a hef at all")
    with pytest.raises(ModelError, match="lacks the HEF magic"):
        hef_facts.check_hef(garbage)


def test_a_device_by_number(system: Path, hef: Path) -> None:
    with Classifier(hef, device="hailo:0") as clf:
        assert clf.runtime_info.device == "hailo:0"
    assert fake_hailo.STATE.device_ids == [["0001:01:00.0"]]  # the PCIe id HailoRT's Device.scan() lists
    with pytest.raises(HailoNotFoundError, match=r"no Hailo device with that number \(found hailo:0\)"):
        Classifier(hef, device="hailo:1")


def test_an_h8l_hef_runs_on_a_hailo8_as_hailort_lets_it(system: Path, hef: Path, tmp_path: Path) -> None:
    fake_hailo.STATE.arch = "hailo8"
    fake_hailo.write_hailortcli(tmp_path / "bin", "HAILO8")
    with Classifier(hef) as clf:
        assert clf.runtime_info.device == "hailo:0"
        assert any("at Hailo-8L speed" in n for n in clf.runtime_info.notes)


# --- one error per cause ----------------------------------------------------------------------------------------
def test_a_hailo8_hef_on_a_hailo8l_is_a_model_mismatch(
    system: Path, tmp_path: Path, mnv2: Path, coral: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h8 = _hef(tmp_path / "m8", mnv2, coral, "mobilenet_v2_h8.hef", "hailo8")
    with pytest.raises(HailoModelMismatchError, match="compiled for the Hailo-8, but the attached device is a Hailo-8L") as info:
        Classifier(h8, device="hailo")
    assert "_h8l.hef" in info.value.fix
    # Without hailortcli the name check cannot know the chip: HailoRT's own refusal (status 93) says it.
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != str(tmp_path / "bin")))
    with pytest.raises(HailoModelMismatchError, match="HailoRT says it was compiled for another Hailo chip"):
        Classifier(h8, device="hailo")


def test_no_device_no_driver_no_permission(tmp_path: Path, hef: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_hailo.reset()
    monkeypatch.setitem(sys.modules, "hailo_platform", fake_hailo)
    bare = fake_hailo.build_system(tmp_path / "bare", pci=())
    with pytest.raises(HailoNotFoundError, match="no Hailo device is attached") as info:
        open_hailo(hef, root=str(bare))
    assert "lspci" in info.value.fix
    nodriver = fake_hailo.build_system(tmp_path / "nodriver", driver=None)
    with pytest.raises(HailoDriverError, match="driver .* is not loaded") as info2:
        open_hailo(hef, root=str(nodriver))
    assert "hailo-all" in info2.value.fix and "dkms" in info2.value.fix
    locked = fake_hailo.build_system(tmp_path / "locked", node_mode=0o600)
    with pytest.raises(HailoPermissionError, match="no read/write permission on /dev/hailo0") as info3:
        open_hailo(hef, root=str(locked), identity=Identity(uid=4321, gids=frozenset({4321})))
    assert "51-hailo-udev.rules" in info3.value.fix


def test_library_and_driver_versions_apart(system: Path, hef: Path, tmp_path: Path) -> None:
    # The driver's MODULE_VERSION is older than the binding: found before HailoRT is asked.
    older = fake_hailo.build_system(tmp_path / "older", driver=("hailo_pci", "4.18.0"))
    with pytest.raises(HailoVersionError, match="driver is version 4.18.0 but the HailoRT library is 4.20.0") as info:
        open_hailo(hef, root=str(older))
    assert "--reinstall dkms hailo-all" in info.value.fix
    # No version in sysfs: HailoRT's own refusal (HAILO_INVALID_DRIVER_VERSION, 76) is named the same way.
    fake_hailo.STATE.driver_version = "4.18.0"
    unversioned = fake_hailo.build_system(tmp_path / "unversioned", driver=("hailo_pci", ""))
    with pytest.raises(HailoVersionError, match=r"HAILO_INVALID_DRIVER_VERSION"):
        open_hailo(hef, root=str(unversioned))


def test_both_package_families_installed(system: Path, hef: Path, tmp_path: Path) -> None:
    both = fake_hailo.build_system(tmp_path / "both")
    fake_hailo.write_dpkg_status(both, {"hailo-h10-all": "5.1.1", "h10-hailort": "5.1.1"})
    with pytest.raises(HailoPackageConflictError, match="both families are installed") as info:
        open_hailo(hef, root=str(both))
    assert "hailo-h10-all" in info.value.fix and "hailo-all" in info.value.fix


def test_a_busy_device(system: Path, hef: Path) -> None:
    fake_hailo.STATE.busy = True
    with pytest.raises(HailoBusyError, match="another process holds it") as info:
        Classifier(hef, device="hailo")
    assert "fuser -v /dev/hailo0" in info.value.fix


def test_hailort_missing_or_hidden_by_the_venv(system: Path, hef: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hailo_platform", None)  # not importable
    with pytest.raises(HailoRuntimeMissingError, match="not installed") as info:
        Classifier(hef, device="hailo")
    assert "not on PyPI" in info.value.fix
    (system / "usr/lib/python3/dist-packages/hailo_platform").mkdir(parents=True)
    monkeypatch.setattr("edge_classifier.hailo.runtime.venv_hides_system_packages", lambda: True)
    with pytest.raises(SystemPackageHiddenError, match="hidden|without system packages") as info2:
        Classifier(hef, device="hailo")
    assert "--system-site-packages" in info2.value.fix


def test_wrong_model_for_the_chip_asked(system: Path, hef: Path, mnv2: Path) -> None:
    for device in ("edgetpu", "usb:0", "pci"):
        with pytest.raises(WrongAcceleratorError, match="runs only on a Hailo accelerator, not on a Coral Edge TPU"):
            Classifier(hef, device=device)
    with pytest.raises(WrongAcceleratorError, match="not on the CPU"):
        Classifier(hef, device="cpu")
    with pytest.raises(WrongAcceleratorError, match="device='hailo' runs only Hailo .hef files") as info:
        Classifier(mnv2, device="hailo")
    assert "Dataflow Compiler" in info.value.fix
    with pytest.raises(WrongAcceleratorError, match="not an IMX500 network"):
        Classifier(mnv2, device="imx500")


def test_auto_without_a_hailo_runs_the_cpu_twin(tmp_path: Path, mnv2: Path, coral: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_hailo.reset()
    monkeypatch.setitem(sys.modules, "hailo_platform", fake_hailo)
    monkeypatch.setenv("EDGE_CLASSIFIER_SYSROOT", str(fake_hailo.build_system(tmp_path / "root", pci=())))
    hef = _hef(tmp_path / "m", mnv2, coral)
    with pytest.raises(HailoNotFoundError) as info:
        Classifier(hef)  # auto, and no twin to fall back to
    assert "mobilenet_v2.tflite" in info.value.fix
    shutil.copy(mnv2, tmp_path / "m" / "mobilenet_v2.tflite")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Classifier(hef) as clf:
            assert clf.runtime_info.device == "cpu" and clf.model_path.name == "mobilenet_v2.tflite"
            assert "Hailo not usable" in clf.runtime_info.reason
            assert clf.classify(coral / "parrot.jpg")[0].label == "macaw"
    assert any(issubclass(w.category, FallbackWarning) and "CPU twin mobilenet_v2.tflite" in str(w.message) for w in caught)
    assert any(w.filename == __file__ for w in caught if issubclass(w.category, FallbackWarning))


def test_a_corrupt_hef_and_a_failing_run(system: Path, hef: Path, coral: Path) -> None:
    broken = hef.with_name("broken_h8l.hef")
    data = bytearray(hef.read_bytes())
    data[-3] ^= 0xFF  # the payload no longer matches its md5
    broken.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="HailoRT cannot read it: it is corrupt"):
        Classifier(broken, device="hailo")
    with Classifier(hef) as clf:
        fake_hailo.STATE.fail_run = "HAILO_TIMEOUT"
        with pytest.raises(InferenceError, match="HAILO_TIMEOUT"):
            clf.predict(coral / "cat.bmp")
        assert clf.predict(coral / "cat.bmp").classes[0].label == "Egyptian cat"  # the next frame runs again


def test_every_hailo_cause_is_a_hailo_error() -> None:
    for cls in (HailoNotFoundError, HailoDriverError, HailoPermissionError, HailoBusyError, HailoVersionError,
                HailoPackageConflictError, HailoModelMismatchError, HailoRuntimeMissingError):  # fmt: skip
        assert issubclass(cls, HailoError)

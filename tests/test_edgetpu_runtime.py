"""The Edge TPU in the runtime, on a machine without one: real models, the real runtime's load_delegate.

Where libedgetpu would be needed, a FakeLibedgetpu (tests/fakes_edgetpu.py) compiled here stands in:
it fails like the real one (NULL delegate, empty message), so the runtime raises its real exception
and the SDK must find the cause by probing a fake sysfs tree.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from edge_classifier.backends import select as select_policy
from edge_classifier.backends.runtime import select_runtime
from edge_classifier.classifier import Classifier
from edge_classifier.edgetpu.diagnose import (
    Snapshot,
    diagnose_delegate_failure,
    diagnose_prepare_failure,
    twin_path,
    worker_death_error,
)
from edge_classifier.edgetpu.discovery import Identity, parse_device
from edge_classifier.errors import (
    AcceleratorLostError,
    ConfigError,
    CpuTwinMissingError,
    EdgeTpuBusyError,
    EdgeTpuDriverError,
    EdgeTpuError,
    EdgeTpuLibraryMissingError,
    EdgeTpuNotFoundError,
    EdgeTpuPermissionError,
    EdgeTpuVersionError,
    FallbackWarning,
    ModelError,
    NotCompiledForEdgeTpuError,
)
from edge_classifier.tflite_file import read_model_info
from tests.fakes_edgetpu import FakeSysfs, build_fake_libedgetpu

TPU_MODEL = "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
CPU_MODEL = "mobilenet_v1_0.25_128_quant.tflite"
PHOTOS = ("cat.bmp", "parrot.jpg", "grace_hopper.bmp")


@pytest.fixture(autouse=True)
def _no_library_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGE_CLASSIFIER_LIBEDGETPU", raising=False)
    monkeypatch.delenv("EDGE_CLASSIFIER_SYSROOT", raising=False)


@pytest.fixture(scope="module")
def fake_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fake_libedgetpu(tmp_path_factory.mktemp("lib"))


@pytest.fixture
def fake_system(tmp_path: Path, fake_lib: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSysfs:
    """libedgetpu "installed" (the fake) and an empty sysfs tree the test fills in."""
    monkeypatch.setenv("EDGE_CLASSIFIER_LIBEDGETPU", str(fake_lib))
    monkeypatch.setenv("EDGE_CLASSIFIER_SYSROOT", str(tmp_path / "root"))
    (tmp_path / "root").mkdir()
    return FakeSysfs(tmp_path / "root")


def _top5(clf: Classifier, coral: Path) -> list[list[tuple[int, float]]]:
    return [[(c.id, round(c.score, 6)) for c in clf.classify(coral / p, top_k=5)] for p in PHOTOS]


# --- real: libedgetpu is absent here -------------------------------------------------------------
@pytest.mark.parametrize("device", ["edgetpu", "usb:0"])
def test_explicit_device_without_libedgetpu_says_install_it(coral: Path, device: str) -> None:
    with pytest.raises(EdgeTpuLibraryMissingError) as info:
        Classifier(coral / TPU_MODEL, device=device)  # default: isolated, so the worker reports it
    msg = str(info.value)
    assert "libedgetpu.so.1" in msg and "cannot open shared object file" in msg
    assert "apt install libedgetpu1-std" in info.value.fix


def test_in_process_gives_the_same_error(coral: Path) -> None:
    with pytest.raises(EdgeTpuLibraryMissingError, match="not installed"):
        Classifier(coral / TPU_MODEL, device="edgetpu", isolate=False)


def test_auto_falls_back_to_the_cpu_twin_and_answers_as_it(coral: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(select_policy, "_warned", set())
    with pytest.warns(FallbackWarning, match="running the CPU twin mobilenet_v1_0.25_128_quant.tflite"):
        fell_back = Classifier(coral / TPU_MODEL, device="auto")
    with fell_back, Classifier(coral / CPU_MODEL, device="cpu") as direct:
        assert fell_back.model_path == coral / CPU_MODEL
        assert fell_back.runtime_info.device == "cpu"
        assert "libedgetpu.so.1" in fell_back.runtime_info.reason and "not installed" in fell_back.runtime_info.reason
        assert fell_back.spec.labels == direct.spec.labels
        got = _top5(fell_back, coral)
        assert got == _top5(direct, coral)
        assert got[0][0][0] in (281, 282, 283, 285)  # a cat: tabby, tiger, Persian or Egyptian (ids count from 0, no background)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second load of the same model must not warn again
        Classifier(coral / TPU_MODEL, device="auto").close()


def test_edgetpu_model_without_twin(coral: Path, tmp_path: Path) -> None:
    lonely = tmp_path / TPU_MODEL
    shutil.copy(coral / TPU_MODEL, lonely)
    with pytest.raises(CpuTwinMissingError) as info:
        Classifier(lonely, device="auto")
    assert str(tmp_path / CPU_MODEL) in str(info.value)
    assert "not installed" in info.value.cause


def test_twin_path() -> None:
    assert twin_path("/m/x_edgetpu.tflite") == Path("/m/x.tflite")
    assert twin_path("/m/x_edgetpu_v2.tflite") == Path("/m/x_v2.tflite")
    assert twin_path("/m/x.tflite") == Path("/m/x.tflite")


def test_unknown_custom_op_is_not_an_edgetpu_model(coral: Path) -> None:
    info = read_model_info(coral / "model_invoking_error.tflite")
    assert info.custom_ops == ("fake-op-double",) and not info.is_edgetpu_compiled
    with pytest.raises(ModelError, match="fake-op-double") as err:
        Classifier(coral / "model_invoking_error.tflite", device="auto")
    assert not isinstance(err.value, EdgeTpuError)
    with pytest.raises(NotCompiledForEdgeTpuError):
        Classifier(coral / "model_invoking_error.tflite", device="edgetpu")


def test_plain_model_on_edgetpu_says_compile_it(coral: Path) -> None:
    with pytest.raises(NotCompiledForEdgeTpuError) as info:
        Classifier(coral / CPU_MODEL, device="usb:0")
    assert "edge-convert compile" in info.value.fix and "edgetpu_compiler" in info.value.fix
    assert "mobilenet_v1_0.25_128_quant_edgetpu.tflite" in info.value.fix


def test_bad_device_string_is_a_usage_error_not_a_fallback(coral: Path) -> None:
    with pytest.raises(ConfigError, match="usb:N"):
        Classifier(coral / TPU_MODEL, device="usb0")


# --- each cause, from the runtime's real exception and the probed system ----------------------------
def test_library_present_but_no_device(coral: Path, fake_system: FakeSysfs) -> None:
    with pytest.raises(EdgeTpuNotFoundError) as info:
        Classifier(coral / TPU_MODEL, device="edgetpu", isolate=False)
    assert "no Edge TPU is attached" in info.value.cause and "libedgetpu lists no device" in info.value.cause
    assert "lsusb" in info.value.fix
    assert isinstance(info.value.__cause__, ValueError) and "Failed to load delegate" in str(info.value.__cause__)


def test_isolated_worker_reports_the_same_class(coral: Path, fake_system: FakeSysfs) -> None:
    with pytest.raises(EdgeTpuNotFoundError, match="no Edge TPU is attached"):
        Classifier(coral / TPU_MODEL, device="edgetpu", isolate=True)


def test_auto_with_library_but_no_device_names_that_cause(coral: Path, fake_system: FakeSysfs) -> None:
    with pytest.warns(FallbackWarning), Classifier(coral / TPU_MODEL, device="auto", isolate=False) as clf:
        assert clf.runtime_info.device == "cpu" and "no Edge TPU is attached" in clf.runtime_info.reason


def test_device_busy_names_the_holder(coral: Path, fake_system: FakeSysfs) -> None:
    node = fake_system.add_usb("2-1", bus=2, dev=3)
    fake_system.add_holder(31337, node)
    with pytest.raises(EdgeTpuBusyError) as info:
        Classifier(coral / TPU_MODEL, device="usb:0", isolate=False)
    assert "/dev/bus/usb/002/003" in info.value.thing and "pid 31337" in info.value.cause


def test_device_stuck_in_bootloader(coral: Path, fake_system: FakeSysfs) -> None:
    fake_system.add_usb("2-1", bus=2, dev=3, ids=("1a6e", "089a"))
    with pytest.raises(EdgeTpuNotFoundError, match="bootloader id 1a6e:089a") as info:
        Classifier(coral / TPU_MODEL, device="usb", isolate=False)
    assert "power" in info.value.fix


def test_wrong_index_lists_what_exists(coral: Path, fake_system: FakeSysfs) -> None:
    fake_system.add_usb("2-1", bus=2, dev=3)
    with pytest.raises(EdgeTpuNotFoundError, match="found usb:0") as info:
        Classifier(coral / TPU_MODEL, device="usb:1", isolate=False)
    assert "usb:0" in info.value.fix


def test_pcie_driver_not_loaded(coral: Path, fake_system: FakeSysfs) -> None:
    fake_system.add_pci("0000:01:00.0")
    with pytest.raises(EdgeTpuDriverError, match="gasket/apex") as info:
        Classifier(coral / TPU_MODEL, device="pci:0", isolate=False)
    assert "modprobe apex" in info.value.fix


def test_libedgetpu_sees_a_device_that_sysfs_cannot_show(
    coral: Path, fake_system: FakeSysfs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_EDGETPU_LISTS_USB", "1")  # macOS/Windows: no sysfs, only libedgetpu's own list
    with pytest.raises(EdgeTpuBusyError, match="libedgetpu sees usb"):
        Classifier(coral / TPU_MODEL, device="edgetpu", isolate=False)


def test_permission_denied_from_real_exception_and_probe(fake_lib: Path, tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    fs.add_usb("2-1", bus=2, dev=3, mode=0o660)  # root:root 660 and the user is not in its group
    rt, _, _ = select_runtime()
    with pytest.raises(ValueError, match="Failed to load delegate") as real:
        rt.load_delegate(str(fake_lib), {"device": "usb:0"})
    snapshot = Snapshot.take(str(tmp_path), Identity(1000, frozenset({1000})))
    err = diagnose_delegate_failure(real.value, parse_device("usb:0"), snapshot)
    assert isinstance(err, EdgeTpuPermissionError)
    assert "/dev/bus/usb/002/003" in err.cause and "rw-rw----" in err.cause and "sudo" in err.cause
    assert "plugdev" in err.fix and "udev" in err.fix


def test_library_built_for_another_runtime(coral: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lib = build_fake_libedgetpu(tmp_path, undefined_symbol=True)
    monkeypatch.setenv("EDGE_CLASSIFIER_LIBEDGETPU", str(lib))
    with pytest.raises(EdgeTpuVersionError, match="undefined symbol") as info:
        Classifier(coral / TPU_MODEL, device="edgetpu", isolate=False)
    assert "feranick" in info.value.fix


def test_model_compiled_for_a_newer_runtime() -> None:
    # Verbatim from google-coral/edgetpu#435: only a real libedgetpu 13 can raise it.
    text = (
        "Failed to prepare for TPU. Failed precondition: Package requires runtime version (14), which is newer than "
        "this runtime version (13).Node number 2 (EdgeTpuDelegateForCustomOp) failed to prepare."
    )
    err = diagnose_prepare_failure(RuntimeError(text), "m_edgetpu.tflite")
    assert isinstance(err, EdgeTpuVersionError)
    assert "runtime version 14" in err.cause and "libedgetpu's 13" in err.cause
    assert "edgetpu_compiler -m 13" in err.fix


def test_delegate_that_does_not_take_the_custom_op(coral: Path) -> None:
    rt, _, _ = select_runtime()
    interp = rt.interpreter_class(model_path=str(coral / TPU_MODEL))
    with pytest.raises(RuntimeError) as real:  # the runtime's own text for an unbound edgetpu-custom-op
        interp.allocate_tensors()
    err = diagnose_prepare_failure(real.value, str(coral / TPU_MODEL))
    assert isinstance(err, EdgeTpuVersionError) and "different TensorFlow versions" in err.cause
    assert diagnose_prepare_failure(RuntimeError("something else"), "m") is None


def test_worker_death_causes() -> None:
    usb_lost = (
        "F driver/usb/usb_driver.cc:1148] HandleQueuedBulkIn transfer in failed. Not found: USB transfer error 5 "
        "[LibUsbDataInCallback]\nFatal Python error: Aborted"
    )
    err = worker_death_error("m on usb:0", -signal.SIGABRT, usb_lost, loading=False)
    assert isinstance(err, AcceleratorLostError)
    assert "SIGABRT" in err.cause and "disappeared" in err.cause
    timeout = "F :859] transfer on tag 1 failed. Abort. Deadline exceeded: USB transfer error 2 [LibUsbDataOutCallback]"
    assert "power" in worker_death_error("m", -signal.SIGABRT, timeout, loading=False).cause
    segv = worker_death_error("m", -signal.SIGSEGV, "", loading=True)
    assert isinstance(segv, EdgeTpuVersionError) and "newer than libedgetpu" in segv.cause
    assert "stopped answering" in worker_death_error("m", None, "", loading=False).cause


# --- the CLI, run for real ---------------------------------------------------------------------------
def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_CLASSIFIER_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "edge_classifier", *args], capture_output=True, text=True, timeout=120, check=False, env=full_env
    )


def test_cli_devices_here_reports_what_is_missing_with_fixes() -> None:
    res = _cli("devices")
    assert res.returncode == 1, res.stderr
    assert "Edge TPUs: none found" in res.stdout and "lsusb" in res.stdout
    assert "libedgetpu: libedgetpu.so.1 not found" in res.stdout and "apt install libedgetpu1-std" in res.stdout


def test_cli_devices_lists_a_usable_device(fake_lib: Path, tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    fs.add_usb("2-1", bus=2, dev=3)
    fs.add_pci("0000:01:00.0")
    res = _cli("devices", "--json", env={"EDGE_CLASSIFIER_LIBEDGETPU": str(fake_lib), "EDGE_CLASSIFIER_SYSROOT": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["usable"] == ["usb:0"]
    assert [d["device"] for d in report["devices"]] == ["pci:0", "usb:0"]
    assert "gasket/apex" in report["devices"][0]["problem"]
    assert report["library"]["runtime_version"] == 14


def test_cli_doctor_here() -> None:
    res = _cli("doctor")
    assert res.returncode == 0, res.stdout + res.stderr  # nothing *needed* is broken: a runtime is usable
    out = res.stdout
    assert "[  ok] runtime     ai-edge-litert" in out
    assert "[warn] libedgetpu  libedgetpu.so.1 does not load" in out and "apt install libedgetpu1-std" in out
    assert "[warn] edgetpu     no Edge TPU found" in out
    assert "camera" in out and "python3-picamera2" in out
    assert "nothing needed is broken" in out
    required = _cli("doctor", "--require", "edgetpu", "--json")
    assert required.returncode == 1
    checks = [json.loads(line) for line in required.stdout.splitlines()]
    failed = {c["area"] for c in checks if c["status"] == "FAIL"}
    assert failed == {"libedgetpu", "edgetpu"} and all(c["fix"] for c in checks if c["status"] == "FAIL")


def test_cli_doctor_with_a_pcie_card_and_its_node_permission(fake_lib: Path, tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    fs.load_apex_module()
    fs.add_pci("0000:01:00.0", apex=0, mode=0o600)
    res = _cli("doctor", "--json", env={"EDGE_CLASSIFIER_LIBEDGETPU": str(fake_lib), "EDGE_CLASSIFIER_SYSROOT": str(tmp_path)})
    checks = [json.loads(line) for line in res.stdout.splitlines()]
    tpu = [c for c in checks if c["area"] == "edgetpu"]
    (card,) = [c for c in tpu if "pci:0 /dev/apex_0" in c["what"]]
    if os.geteuid() == 0:  # root may open a 600 node it owns; anyone else may not (the node here is root's)
        assert card["status"] == "ok" and "ready" in card["what"]
    else:
        assert card["status"] == "warn" and "no read/write permission" in card["what"] and "apex" in card["fix"]
    assert any(c["what"].startswith("libedgetpu ") and c["status"] == "ok" for c in checks)
    assert any("apex kernel module loaded" in c["what"] for c in tpu)

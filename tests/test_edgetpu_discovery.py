"""Edge TPU discovery over a fake sysfs/dev tree, and libedgetpu probing through ctypes."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_classifier.edgetpu.discovery import (
    DeviceRequest,
    Identity,
    apex_module_loaded,
    find_edgetpus,
    find_pci,
    find_usb,
    node_holders,
    parse_device,
    select_devices,
)
from edge_classifier.edgetpu.library import (
    installed_package,
    library_name,
    parse_runtime_version,
    probe_library,
    runtime_mismatch,
)
from edge_classifier.errors import ConfigError
from tests.fakes_edgetpu import FakeSysfs, build_fake_libedgetpu

USER = Identity(uid=1000, gids=frozenset({1000}))
PLUGDEV = Identity(uid=1000, gids=frozenset({1000, 46}))


@pytest.mark.parametrize(
    ("text", "kind", "index"),
    [
        ("edgetpu", None, None),
        ("usb", "usb", None),
        ("usb:1", "usb", 1),
        ("pci", "pci", None),
        ("PCI:0", "pci", 0),
        (":2", None, 2),
    ],
)
def test_parse_device_accepts_coral_strings(text: str, kind: str | None, index: int | None) -> None:
    req = parse_device(text)
    assert (req.kind, req.index) == (kind, index)
    assert req.delegate_option == ("" if text == "edgetpu" else text.lower())


@pytest.mark.parametrize("text", ["usb0", "gpu", "usb:-1", "usb:x", ":"])
def test_parse_device_rejects_other_strings(text: str) -> None:
    with pytest.raises(ConfigError, match="usb:N"):
        parse_device(text)


def test_usb_both_ids_found_in_bus_order_with_nodes(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    fs.add_other_usb("1-1")
    fs.add_usb("2-2", bus=2, dev=7, ids=("1a6e", "089a"))
    fs.add_usb("2-1", bus=2, dev=3, ids=("18d1", "9302"))
    devices = find_usb(tmp_path, USER)
    assert [d.device_string for d in devices] == ["usb:0", "usb:1"]
    assert [d.node for d in devices] == ["/dev/bus/usb/002/003", "/dev/bus/usb/002/007"]
    assert [d.initialised for d in devices] == [True, False]
    assert all(d.accessible and not d.problem for d in devices)


def test_usb_node_permission_bits_decide_access(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    fs.add_usb("2-1", bus=2, dev=3, mode=0o660)
    node = tmp_path / "dev/bus/usb/002/003"
    import os

    os.chown(node, 0, 46)  # root:plugdev, as the Coral udev rule leaves it
    (denied,) = find_usb(tmp_path, USER)
    assert denied.accessible is False
    assert "no read/write permission on /dev/bus/usb/002/003" in denied.problem
    assert "plugdev" in denied.fix and "udev" in denied.fix
    (granted,) = find_usb(tmp_path, PLUGDEV)
    assert granted.accessible and not granted.problem


def test_usb_without_node_is_reported(tmp_path: Path) -> None:
    FakeSysfs(tmp_path).add_usb("2-1", bus=2, dev=3, mode=None)
    (d,) = find_usb(tmp_path, USER)
    assert d.node is None and d.accessible is None
    assert "no device node /dev/bus/usb/002/003" in d.problem


def test_pci_driver_states(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    fs.add_pci("0000:01:00.0")
    (unbound,) = find_pci(tmp_path, USER)
    assert not apex_module_loaded(tmp_path)
    assert unbound.node is None and "gasket/apex) is not loaded" in unbound.problem and "modprobe apex" in unbound.fix
    fs.load_apex_module()
    (loaded,) = find_pci(tmp_path, USER)
    assert "did not create /dev/apex_N" in loaded.problem and "dmesg" in loaded.fix


def test_pci_bound_node_and_permission(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    fs.load_apex_module()
    fs.add_pci("0000:01:00.0", apex=0, mode=0o600)  # root:root 600, the state in tensorflow#35054
    (d,) = find_pci(tmp_path, USER)
    assert d.node == "/dev/apex_0" and d.initialised
    assert d.accessible is False and "apex" in d.fix
    (root_view,) = find_pci(tmp_path, Identity(0, frozenset({0})))
    assert root_view.accessible and not root_view.problem


def test_all_devices_pci_first_and_requests(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    fs.load_apex_module()
    fs.add_pci("0000:01:00.0", apex=0, mode=0o666)
    fs.add_usb("2-1", bus=2, dev=3)
    fs.add_usb("3-1", bus=3, dev=2)
    devices = find_edgetpus(tmp_path, USER)
    assert [d.device_string for d in devices] == ["pci:0", "usb:0", "usb:1"]
    assert [d.device_string for d in select_devices(devices, parse_device("usb"))] == ["usb:0", "usb:1"]
    assert [d.device_string for d in select_devices(devices, parse_device("usb:1"))] == ["usb:1"]
    assert [d.device_string for d in select_devices(devices, parse_device(":1"))] == ["usb:0"]
    assert select_devices(devices, parse_device("pci:1")) == []
    assert len(select_devices(devices, DeviceRequest("", None, None))) == 3


def test_empty_tree_has_no_devices(tmp_path: Path) -> None:
    assert find_edgetpus(tmp_path / "nothing") == []


def test_node_holders_from_proc(tmp_path: Path) -> None:
    fs = FakeSysfs(tmp_path)
    node = fs.add_usb("2-1", bus=2, dev=3)
    fs.add_holder(4242, node)
    fs.add_holder(4343, "/dev/null_elsewhere")
    assert node_holders(node, tmp_path) == [4242]


def test_library_name_per_os(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGE_CLASSIFIER_LIBEDGETPU", raising=False)
    assert library_name("Linux") == "libedgetpu.so.1"
    assert library_name("Darwin") == "libedgetpu.1.dylib"
    assert library_name("Windows") == "edgetpu.dll"
    monkeypatch.setenv("EDGE_CLASSIFIER_LIBEDGETPU", "/opt/coral/libedgetpu.so.1")
    assert library_name() == "/opt/coral/libedgetpu.so.1"


def test_probe_library_missing_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGE_CLASSIFIER_LIBEDGETPU", raising=False)
    status = probe_library()
    assert not status.loaded
    assert "cannot open shared object file" in status.error


def test_probe_fake_library_version_and_device_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lib = build_fake_libedgetpu(tmp_path)
    status = probe_library(str(lib))
    assert status.loaded and status.path == str(lib)
    assert status.version is not None and status.version.startswith("BuildLabel(")
    assert status.runtime_version == 14
    assert status.devices == ()
    monkeypatch.setenv("FAKE_EDGETPU_LISTS_USB", "1")
    assert probe_library(str(lib)).devices == (("usb", "/sys/bus/usb/devices/2-1"),)


def test_probe_library_with_undefined_symbol(tmp_path: Path) -> None:
    lib = build_fake_libedgetpu(tmp_path, undefined_symbol=True)
    status = probe_library(str(lib))
    assert not status.loaded and status.undefined_symbol


def test_parse_runtime_version() -> None:
    assert parse_runtime_version("BuildLabel(COMPILER=MSVC 192628805,DATE=Nov  4 2020,TIME=11:05:43), RuntimeVersion(13)") == 13
    assert parse_runtime_version("garbage") is None


def test_installed_package_from_dpkg_status(tmp_path: Path) -> None:
    status = tmp_path / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    status.write_text(
        "Package: zlib1g\nStatus: install ok installed\nVersion: 1.2\n\n"
        "Package: libedgetpu1-std\nStatus: install ok installed\nVersion: 16.0tf2.17.1-1.bookworm\nDescription: x\n continued\n"
    )
    assert installed_package(tmp_path) == ("libedgetpu1-std", "16.0tf2.17.1-1.bookworm")
    assert installed_package(tmp_path / "none") is None


def test_runtime_mismatch_rule() -> None:
    google = ("libedgetpu1-std", "16.0")
    community = ("libedgetpu1-std", "16.0tf2.17.1-1")
    assert runtime_mismatch("tflite-runtime", "2.5.0.post1", google) is None
    mismatch = runtime_mismatch("tflite-runtime", "2.14.0", google)
    assert mismatch is not None and "edgetpu#812" in mismatch
    assert runtime_mismatch("ai-edge-litert", "2.3.0", google) is not None
    assert runtime_mismatch("ai-edge-litert", "2.3.0", community) is None
    assert runtime_mismatch("ai-edge-litert", "2.3.0", None) is None

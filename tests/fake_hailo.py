"""FakeHailoRT: a stand-in for HailoRT's Python binding ``hailo_platform``, since no Hailo device exists here.

Installed as ``sys.modules["hailo_platform"]`` by the tests, so edge_classifier's real Hailo backend imports and
drives it exactly as it drives HailoRT. It follows hailort's ``bindings/python/platform/hailo_platform``:

- the names ``__init__`` exports (``VDevice``, ``HEF``, ``FormatType``, ``HailoSchedulingAlgorithm``,
  ``HailoRTException``) and ``__version__``;
- ``pyhailort.py``'s exception classes, and ``ExceptionWrapper.create_exception_from_status``'s mapping from a
  status to a class or to ``HailoRTException("libhailort failed with error: N (HAILO_...)")``; the status numbers
  are ``hailort.h``'s;
- the InferModel API picamera2's ``devices/hailo/hailo.py`` uses: ``VDevice.create_params()``, ``VDevice(params,
  device_ids=...)``, ``create_infer_model(hef)``, ``input()``/``output()`` streams with ``shape``, ``format``,
  ``set_format_type`` and ``quant_infos``, ``input_names``/``output_names``, ``set_batch_size``, ``configure()``,
  ``create_bindings(output_buffers=...)``, ``bindings.input().set_buffer``, ``run([bindings], timeout)``,
  ``shutdown()`` and ``release()``;
- HailoRT's device checks: no driver (64), the device held by another process (74), the library and driver
  versions apart (76), and HailoRT's HEF-vs-chip table (``DeviceBase::hef_arch_to_device_compatible_archs``:
  a Hailo-8L HEF also runs on a Hailo-8, nothing else crosses).

A fake HEF is a real HEF header (``>IIII16s``, magic ``0x01484546``) followed by a JSON payload where HailoRT's
protobuf would be: ``{"arch": "hailo8l", "stand_in": "<a .tflite>"}``. The stand-in is a real model run on the CPU
with ai-edge-litert, so the fake's answers are a real network's answers to the pixels it was given.

The scenario lives in :data:`STATE`; :func:`reset` restores one working Hailo-8L.
"""

from __future__ import annotations

import enum
import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__version__ = "4.20.0"

_HEADER = struct.Struct(">IIII16s")
HEF_MAGIC = 0x01484546

# hailort.h's statuses used here.
STATUS_CODES = {
    "HAILO_INVALID_HEF": 26,
    "HAILO_DRIVER_NOT_INSTALLED": 64,
    "HAILO_DEVICE_IN_USE": 73,
    "HAILO_OUT_OF_PHYSICAL_DEVICES": 74,
    "HAILO_INVALID_DRIVER_VERSION": 76,
    "HAILO_TIMEOUT": 4,
    "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE": 93,
}
# DeviceBase::hef_arch_to_device_compatible_archs, for the chips on Raspberry Pi boards.
_COMPATIBLE = {"hailo8": {"hailo8"}, "hailo8l": {"hailo8l", "hailo8"}, "hailo10h": {"hailo10h"}}


class HailoRTException(Exception):
    """pyhailort's base exception."""


class HailoRTInvalidHEFException(HailoRTException):
    """HAILO_INVALID_HEF."""


class HailoRTHEFNotCompatibleWithDevice(HailoRTException):
    """HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE."""


class HailoRTTimeout(HailoRTException):
    """HAILO_TIMEOUT."""


class HailoRTDriverOperationFailedException(HailoRTException):
    """HAILO_DRIVER_OPERATION_FAILED."""


class HailoRTStatusException(Exception):
    """_pyhailort's raw status exception (``args[0]`` is the status number)."""


def exception_from_status(name: str) -> HailoRTException:
    """``ExceptionWrapper.create_exception_from_status``, for the statuses the fake raises."""
    if name == "HAILO_TIMEOUT":
        return HailoRTTimeout("Received a timeout - hailort has failed because a timeout had occurred")
    if name == "HAILO_INVALID_HEF":
        return HailoRTInvalidHEFException("Invalid HEF. See hailort.log for more information")
    if name == "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE":
        return HailoRTHEFNotCompatibleWithDevice("HEF file is not compatible with device. See hailort.log for more information")
    return HailoRTException(f"libhailort failed with error: {STATUS_CODES[name]} ({name})")


def _raise(name: str) -> None:
    # As pyhailort does: the C++ status exception is the cause of the indicative one.
    try:
        raise HailoRTStatusException(STATUS_CODES[name])
    except HailoRTStatusException as cpp:
        raise exception_from_status(name) from cpp


class FormatType(enum.IntEnum):
    """hailo_format_type_t."""

    AUTO = 0
    UINT8 = 1
    UINT16 = 2
    FLOAT32 = 3


class HailoSchedulingAlgorithm(enum.IntEnum):
    """hailo_scheduling_algorithm_t."""

    NONE = 0
    ROUND_ROBIN = 1


@dataclass
class QuantInfo:
    """hailo_quant_info_t."""

    qp_zp: float
    qp_scale: float
    limvals_min: float
    limvals_max: float


@dataclass
class State:
    """The fake system: the chip, versions, who holds the device, and what the tests can inspect afterwards."""

    arch: str | None = "hailo8l"
    driver_installed: bool = True
    driver_version: str = "4.20.0"
    busy: bool = False
    fail_run: str | None = None  # a status name the next run() raises
    vdevices: list[VDevice] = field(default_factory=list)
    runs: int = 0
    device_ids: list[Any] = field(default_factory=list)


STATE = State()


def reset() -> None:
    """One working Hailo-8L, HailoRT and driver 4.20.0."""
    global STATE, __version__
    STATE = State()
    __version__ = "4.20.0"


def write_fake_hef(path: Path, stand_in: Path, arch: str = "hailo8l") -> Path:
    """A HEF header (magic, version 0, payload size, md5) and a JSON payload naming the chip and the stand-in model."""
    payload = json.dumps({"arch": arch, "stand_in": str(stand_in)}).encode()
    path.write_bytes(_HEADER.pack(HEF_MAGIC, 0, len(payload), 0, hashlib.md5(payload).digest()) + payload)
    return path


def _read_hef(path: str) -> dict[str, Any]:
    data = Path(path).read_bytes()
    if len(data) < _HEADER.size:
        _raise("HAILO_INVALID_HEF")
    magic, _version, size, _ccws, md5 = _HEADER.unpack_from(data)
    payload = data[_HEADER.size : _HEADER.size + size]
    if magic != HEF_MAGIC or hashlib.md5(payload).digest() != md5:
        _raise("HAILO_INVALID_HEF")
    return dict(json.loads(payload))


class VDeviceParams:
    """hailo_vdevice_params_t."""

    def __init__(self) -> None:
        self.device_count = 1
        self.scheduling_algorithm = HailoSchedulingAlgorithm.ROUND_ROBIN
        self.group_id = "UNIQUE"
        self.multi_process_service = False


class _Stream:
    """InferModel.InferStream: one edge's shape, format and quantization."""

    def __init__(self, name: str, shape: tuple[int, ...], fmt: FormatType, quant: QuantInfo) -> None:
        self.name = name
        self.shape = list(shape)
        self._type = fmt
        self._quant = quant

    @property
    def format(self) -> Any:
        return type("hailo_format_t", (), {"type": self._type, "order": 0})()

    def set_format_type(self, type: FormatType) -> None:  # noqa: A002 - HailoRT's parameter name
        self._type = FormatType(type)

    @property
    def quant_infos(self) -> list[QuantInfo]:
        return [self._quant]


class InferModel:
    """An HEF on the fake device: its stand-in interpreter, streams and batch size."""

    def __init__(self, hef_path: str, stand_in: str) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._hef_path = hef_path
        self.interpreter = Interpreter(model_path=stand_in, num_threads=1)
        self.interpreter.allocate_tensors()
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        in_scale, in_zp = inp["quantization"]
        out_scale, out_zp = out["quantization"]
        self._in_detail, self._out_detail = inp, out
        self._input = _Stream("model/input_layer1", tuple(int(d) for d in inp["shape"][1:]), FormatType.UINT8,
                              QuantInfo(in_zp, in_scale, 0.0, 255.0))  # fmt: skip
        self._output = _Stream(
            "model/softmax1", (int(out["shape"][-1]),), FormatType.UINT8, QuantInfo(out_zp, out_scale, 0.0, 1.0)
        )
        self.batch_size = 0

    @property
    def input_names(self) -> list[str]:
        return [self._input.name]

    @property
    def output_names(self) -> list[str]:
        return [self._output.name]

    def input(self, name: str = "") -> _Stream:
        return self._input

    def output(self, name: str = "") -> _Stream:
        return self._output

    def set_batch_size(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def configure(self) -> ConfiguredInferModel:
        return ConfiguredInferModel(self)


class _BindingStream:
    def __init__(self) -> None:
        self._buffer: np.ndarray | None = None

    def set_buffer(self, buffer: np.ndarray) -> None:
        self._buffer = buffer

    def get_buffer(self, tensor_format: Any = None) -> np.ndarray | None:
        return self._buffer


class Bindings:
    """ConfiguredInferModel.Bindings: one buffer per input and output."""

    def __init__(self) -> None:
        self._in = _BindingStream()
        self._out = _BindingStream()

    def input(self, name: str = "") -> _BindingStream:
        return self._in

    def output(self, name: str = "") -> _BindingStream:
        return self._out


class ConfiguredInferModel:
    """Runs the stand-in model on the bound input, writing the bound output in the format asked for."""

    def __init__(self, model: InferModel) -> None:
        self._model = model
        self.shut = False

    def create_bindings(
        self, input_buffers: dict[str, np.ndarray] | None = None, output_buffers: dict[str, np.ndarray] | None = None
    ) -> Bindings:
        b = Bindings()
        for buf in (input_buffers or {}).values():
            b.input().set_buffer(buf)
        for buf in (output_buffers or {}).values():
            b.output().set_buffer(buf)
        return b

    def run(self, bindings: list[Bindings], timeout: int) -> None:
        if self.shut:
            raise HailoRTException("libhailort failed with error: 6 (HAILO_INVALID_OPERATION)")
        if STATE.fail_run:
            name, STATE.fail_run = STATE.fail_run, None
            _raise(name)
        m = self._model
        it = m.interpreter
        for b in bindings:
            pixels = b.input().get_buffer()
            if pixels is None or list(pixels.shape) != m.input().shape:
                raise HailoRTException("libhailort failed with error: 2 (HAILO_INVALID_ARGUMENT)")
            it.set_tensor(m._in_detail["index"], np.asarray(pixels, dtype=m._in_detail["dtype"])[None])
            it.invoke()
            raw = it.get_tensor(m._out_detail["index"])[0]
            out = b.output().get_buffer()
            assert out is not None, "bind an output buffer"
            if m.output().format.type == FormatType.FLOAT32:
                scale, zp = m._out_detail["quantization"]
                np.copyto(out, ((raw.astype(np.float32) - zp) * scale).reshape(out.shape))
            else:
                np.copyto(out, raw.reshape(out.shape))
            STATE.runs += 1

    def shutdown(self) -> None:
        self.shut = True


class VDevice:
    """A virtual device over the fake chip; fails as HailoRT does when the system is not right."""

    @staticmethod
    def create_params() -> VDeviceParams:
        return VDeviceParams()

    def __init__(self, params: VDeviceParams | None = None, *, device_ids: list[str] | None = None) -> None:
        if params is not None and device_ids is not None:  # pyhailort's docstring: each "Excludes" the other
            raise HailoRTException("libhailort failed with error: 2 (HAILO_INVALID_ARGUMENT)")
        if not STATE.driver_installed:
            _raise("HAILO_DRIVER_NOT_INSTALLED")
        if STATE.arch is None:
            _raise("HAILO_OUT_OF_PHYSICAL_DEVICES")
        if STATE.driver_version != __version__:
            _raise("HAILO_INVALID_DRIVER_VERSION")
        if STATE.busy:
            _raise("HAILO_OUT_OF_PHYSICAL_DEVICES")
        self.params = params or VDeviceParams()
        self.released = False
        STATE.device_ids.append(device_ids)
        STATE.vdevices.append(self)

    def create_infer_model(self, hef_source: str, name: str = "") -> InferModel:
        hef = _read_hef(hef_source)
        assert STATE.arch is not None
        if STATE.arch not in _COMPATIBLE.get(hef["arch"], {hef["arch"]}):
            _raise("HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE")
        return InferModel(hef_source, hef["stand_in"])

    def release(self) -> None:
        self.released = True

    def __enter__(self) -> VDevice:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


class HEF:
    """hailo_platform.HEF: only what a file check needs."""

    def __init__(self, hef_source: str) -> None:
        self._info = _read_hef(hef_source)
        self.path = hef_source


__all__ = [
    "HEF",
    "FormatType",
    "HailoRTException",
    "HailoRTHEFNotCompatibleWithDevice",
    "HailoRTInvalidHEFException",
    "HailoRTTimeout",
    "HailoSchedulingAlgorithm",
    "VDevice",
]


# --- the system around it: sysfs, /dev, dpkg, hailortcli ------------------------------------------------------------
def write_dpkg_status(root: Path, packages: dict[str, str]) -> None:
    """dpkg's status file listing ``packages`` as installed (appended to what is there)."""
    status = root / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True, exist_ok=True)
    blocks = [f"Package: {name}\nStatus: install ok installed\nVersion: {version}\n" for name, version in packages.items()]
    old = status.read_text() if status.is_file() else ""
    status.write_text(old + "\n".join(blocks) + "\n")


def build_system(
    root: Path,
    *,
    pci: tuple[tuple[str, str], ...] = (("0001:01:00.0", "2864"),),
    driver: tuple[str, str] | None = ("hailo_pci", "4.20.0"),
    node_mode: int = 0o666,
    nodes: bool = True,
    packages: dict[str, str] | None = None,
) -> Path:
    """A /sys, /dev and dpkg tree as hailort-drivers' PCIe driver and Raspberry Pi's packages leave it.

    Args:
        root: the tree's root (pass it as EDGE_CLASSIFIER_SYSROOT).
        pci: (address, device id) per Hailo PCIe function (``2864`` Hailo-8/8L, ``45c4`` Hailo-10H).
        driver: the loaded module and its MODULE_VERSION, or None when no driver is loaded.
        node_mode: permission bits of /dev/hailoN (0666 from the driver's udev rule).
        nodes: whether the driver made /dev/hailoN (only with a driver).
        packages: apt packages to list as installed (default: hailo-all 4.20.0 and its parts).
    """
    for i, (address, device) in enumerate(pci):
        fn = root / "sys/bus/pci/devices" / address
        fn.mkdir(parents=True, exist_ok=True)
        (fn / "vendor").write_text("0x1e60\n")
        (fn / "device").write_text(f"0x{device}\n")
        if driver is not None and nodes:
            chardev = root / f"sys/class/hailo_chardev/hailo{i}"
            chardev.mkdir(parents=True, exist_ok=True)
            (chardev / "device").symlink_to(fn)
            node = root / f"dev/hailo{i}"
            node.parent.mkdir(parents=True, exist_ok=True)
            node.write_bytes(b"")
            node.chmod(node_mode)
    if driver is not None:
        mod = root / "sys/module" / driver[0]
        mod.mkdir(parents=True, exist_ok=True)
        (mod / "version").write_text(driver[1] + "\n")
    write_dpkg_status(
        root,
        packages
        if packages is not None
        else {"hailo-all": "4.20.0", "hailort": "4.20.0", "hailo-dkms": "4.20.0", "python3-hailort": "4.20.0-1"},
    )
    return root


def write_hailortcli(folder: Path, arch: str = "HAILO8L", *, fail: str = "") -> Path:
    """A ``hailortcli`` that answers ``fw-control identify`` as HailoRT's does (or fails with ``fail``)."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "hailortcli"
    if fail:
        body = f'echo "[HailoRT] [error] {fail}" >&2\nexit 1\n'
    else:
        body = (
            'echo "Executing on device: 0001:01:00.0"\necho "Identifying board"\necho "Control Protocol Version: 2"\n'
            'echo "Firmware Version: 4.20.0 (release,app,extended context switch buffer)"\necho "Logger Version: 0"\n'
            f'echo "Board Name: Hailo-8"\necho "Device Architecture: {arch}"\n'
        )
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(0o755)
    return exe

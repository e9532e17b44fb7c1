"""FakeIMX500 and an AI Camera for FakePicamera2: the IMX500 sensor's edge, since no AI Camera exists here.

:func:`install` puts a ``picamera2`` package into ``sys.modules`` whose ``Picamera2`` is :class:`FakeAICamera` (the
FakePicamera2 of tests/fake_picamera2.py plus the calls the IMX500 path uses) and whose
``picamera2.devices.imx500.IMX500`` is :class:`FakeIMX500`. They follow picamera2's own code:

- ``devices/imx500/imx500.py``: ``IMX500(network_file, camera_id='')`` finds the sensor the way picamera2 does
  (``/sys/class/video4linux/v4l-subdev{i}/device/driver/module`` naming ``imx500``, under the test's
  ``EDGE_CLASSIFIER_SYSROOT``), opens ``/dev/v4l-subdevN``, raises picamera2's ``RuntimeError`` texts, reads the
  ``.rpk`` (firmware blocks, then a cpio with ``network_info.txt`` and ``network_intrinsics``), and offers
  ``camera_num``, ``network_intrinsics``, ``get_input_size``, ``set_inference_roi_abs`` (full-sensor coordinates,
  4056x3040), ``set_inference_aspect_ratio``/``set_auto_aspect_ratio``, ``show_network_fw_progress_bar``,
  ``get_output_shapes``/``get_outputs(metadata, add_batch=...)`` (the ``CnnOutputTensorInfoExported`` ctypes
  layout, column-major reshape) and ``get_kpi_info``;
- frame metadata as libcamera's IMX500 pipeline fills it: ``CnnOutputTensor`` (float32 values),
  ``CnnOutputTensorInfo`` (the exported struct's bytes), ``CnnKpiInfo`` (DNN and DSP microseconds);
- ``capture_request()`` -> a request with ``make_array("main")``, ``get_metadata()``, ``release()``;
  ``capture_metadata()``; ``create_preview_configuration``.

The network's answer is computed with a real model on the CPU: the ``.rpk`` written by :func:`build_rpk` names a
stand-in ``.tflite`` (in its firmware block, where the real network's weights would be), which the fake runs
with ai-edge-litert on the part of the scene the inference region covers, scaled to the input size.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import json
import os
import struct
import threading
import time
import types
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import pytest

from tests import fake_picamera2

NETWORK_NAME_LEN = 64
MAX_NUM_TENSORS = 16
MAX_NUM_DIMENSIONS = 16
FULL_SENSOR = (4056, 3040)
IMX500_CAMERA = {
    "Model": "imx500",
    "Location": 2,
    "Rotation": 0,
    "Id": "/base/axi/pcie@120000/rp1/i2c@88000/imx500@1a",
    "Num": 0,
}


class OutputTensorInfo(ctypes.LittleEndianStructure):
    """struct OutputTensorInfo from libcamera (as picamera2 declares it)."""

    _fields_ = [
        ("tensor_data_num", ctypes.c_uint32),
        ("num_dimensions", ctypes.c_uint32),
        ("size", ctypes.c_uint16 * MAX_NUM_DIMENSIONS),
    ]


class CnnOutputTensorInfoExported(ctypes.LittleEndianStructure):
    """struct CnnOutputTensorInfoExported from libcamera (as picamera2 declares it)."""

    _fields_ = [
        ("network_name", ctypes.c_char * NETWORK_NAME_LEN),
        ("num_tensors", ctypes.c_uint32),
        ("info", OutputTensorInfo * MAX_NUM_TENSORS),
    ]


def tensor_info_bytes(network_name: str, shapes: list[tuple[int, ...]]) -> bytes:
    """The ``CnnOutputTensorInfo`` blob libcamera puts in a frame's metadata."""
    info = CnnOutputTensorInfoExported()
    info.network_name = network_name.encode()[: NETWORK_NAME_LEN - 1]
    info.num_tensors = len(shapes)
    for i, shape in enumerate(shapes):
        info.info[i].tensor_data_num = int(np.prod(shape))
        info.info[i].num_dimensions = len(shape)
        for j, d in enumerate(shape):
            info.info[i].size[j] = d
    return bytes(info)


# --- .rpk files ---------------------------------------------------------------------------------------------------
def _cpio_newc(members: dict[str, bytes]) -> bytes:
    out = bytearray()
    for ino, (name, data) in enumerate([*members.items(), ("TRAILER!!!", b"")], start=1):
        raw = name.encode() + b"\0"
        mode = 0o100644 if name != "TRAILER!!!" else 0
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0]
        out += b"070701" + "".join(f"{v:08X}" for v in fields).encode() + raw
        out += b"\0" * (-len(out) % 4)
        out += data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def _cpio_odc(members: dict[str, bytes]) -> bytes:
    out = bytearray()
    for ino, (name, data) in enumerate([*members.items(), ("TRAILER!!!", b"")], start=1):
        raw = name.encode() + b"\0"
        mode = 0o100644 if name != "TRAILER!!!" else 0
        out += (
            b"070707" + f"{0:06o}{ino:06o}{mode:06o}{0:06o}{0:06o}{1:06o}{0:06o}{0:011o}{len(raw):06o}{len(data):011o}".encode()
        )
        out += raw + data
    return bytes(out)


def build_rpk(
    path: Path,
    stand_in: Path,
    *,
    width: int = 224,
    height: int = 224,
    input_format: str = "RGB",
    intrinsics: dict[str, Any] | None = None,
    cpio: str = "newc",
    network_name: str = "mobilenet_v2",
) -> Path:
    """An ``.rpk`` in imx500-package's layout: one firmware block (naming the stand-in model), then the cpio archive."""
    payload = json.dumps({"stand_in": str(stand_in), "network_name": network_name}).encode()
    block = b"9464" + struct.pack(">I", len(payload)) + payload + bytes(52) + b"3695"
    info = (
        "networkID=00000001\napParamSize=0\nnetworkNum=1\nnetworkOrdinal=0\n"
        f"inputTensorWidth={width}\ninputTensorHeight={height}\ninputTensorFormat={input_format}\n"
        "inputTensorNorm_K00=0x0400\ninputTensorNorm_K02=0x0000\ninputTensorNorm_K03=0x0000\ninputTensorNorm_K11=0x0400\n"
        "inputTensorNorm_K13=0x0000\ninputTensorNorm_K20=0x0000\ninputTensorNorm_K22=0x0400\ninputTensorNorm_K23=0x0000\n"
    )
    members = {"network_info.txt": info.encode()}
    if intrinsics is not None:
        members["network_intrinsics"] = json.dumps(intrinsics).encode()
    archive = _cpio_newc(members) if cpio == "newc" else _cpio_odc(members)
    path.write_bytes(block + archive)
    return path


def _read_rpk(path: str) -> tuple[dict[str, Any], dict[str, str], dict[str, Any] | None]:
    """(block payload, network_info of network 0, intrinsics): what the fake sensor needs of its network."""
    from edge_classifier.imx500.rpk import parse_network_info, split_rpk

    data = Path(path).read_bytes()
    size = struct.unpack(">I", data[4:8])[0]
    payload = json.loads(data[8 : 8 + size])
    members = split_rpk(data, path)
    _, networks = parse_network_info(members["network_info.txt"].decode())
    intr = json.loads(members["network_intrinsics"]) if "network_intrinsics" in members else None
    return payload, networks[0], intr


# --- the sensor ---------------------------------------------------------------------------------------------------
class FakeNetworkIntrinsics:
    """picamera2's NetworkIntrinsics: read-only properties over the intrinsics dict."""

    def __init__(self, val: dict[str, Any] | None) -> None:
        self.intrinsics = val or {}

    @property
    def task(self) -> str | None:
        return self.intrinsics.get("task")

    @property
    def labels(self) -> list[str] | None:
        return (self.intrinsics.get("classes") or {}).get("labels")

    @property
    def softmax(self) -> bool | None:
        return (self.intrinsics.get("cpu") or {}).get("softmax")

    @property
    def inference_rate(self) -> float | None:
        return self.intrinsics.get("inference_rate")


def _root() -> str:
    return os.environ.get("EDGE_CLASSIFIER_SYSROOT") or "/"


class FakeIMX500:
    """picamera2's IMX500 class, with the sensor found in the test's sysfs tree and the network run on the CPU."""

    loaded: ClassVar[FakeIMX500 | None] = None
    refuse_upload: ClassVar[bool] = False
    uploads: ClassVar[list[str]] = []

    def __init__(self, network_file: str, camera_id: str = "") -> None:
        self.device_fd = None
        self.__cfg: dict[str, Any] = {"network_file": network_file, "input_tensor": {}}
        root = _root()
        for i in range(32):
            test_dir = f"{root}/sys/class/video4linux/v4l-subdev{i}/device"
            module_dir = f"{test_dir}/driver/module"
            id_dir = f"{test_dir}/of_node"
            if (  # noqa: SIM102 - nested as in picamera2's IMX500.__init__
                os.path.exists(module_dir)
                and os.path.islink(module_dir)
                and os.path.islink(id_dir)
                and "imx500" in os.readlink(module_dir)
            ):
                if camera_id == "" or (camera_id in os.readlink(id_dir)):
                    self.device_fd = open(f"{root}/dev/v4l-subdev{i}", "rb+", buffering=0)  # noqa: SIM115 - held like picamera2's
                    camera_info = FakeAICamera.global_camera_info()
                    self.__camera_num = next(
                        c["Num"] for c in camera_info if c["Model"] == "imx500" and c["Id"] in os.readlink(id_dir)
                    )
                    break
        if self.device_fd is None:
            raise RuntimeError("IMX500: Requested camera dev-node not found")
        if network_file != "":
            path = os.path.abspath(network_file)
            if not os.path.isfile(path):
                raise RuntimeError(f"Firmware file {path} does not exist.")
            if FakeIMX500.refuse_upload:
                raise RuntimeError(f"IMX500: Unable to set network firmware {path}: [Errno 22] Invalid argument")
            payload, network, intr = _read_rpk(path)
            FakeIMX500.uploads.append(path)
            self.__cfg["intrinsics"] = FakeNetworkIntrinsics(intr) if intr is not None else None
            self.__cfg["input_tensor"]["width"] = int(network["inputTensorWidth"])
            self.__cfg["input_tensor"]["height"] = int(network["inputTensorHeight"])
            self.__cfg["input_tensor_size"] = (int(network["inputTensorWidth"]), int(network["inputTensorHeight"]))
            self.network_name = payload["network_name"]
            from ai_edge_litert.interpreter import Interpreter

            self.interpreter = Interpreter(model_path=payload["stand_in"], num_threads=1)
            self.interpreter.allocate_tensors()
        self.progress_bar_shown = False
        self.set_inference_roi_abs((0, 0, *FULL_SENSOR))
        FakeIMX500.loaded = self

    def __del__(self) -> None:
        if self.device_fd:
            self.device_fd.close()

    @property
    def camera_num(self) -> int:
        return self.__camera_num

    @property
    def config(self) -> dict[str, Any]:
        return self.__cfg

    @property
    def network_intrinsics(self) -> FakeNetworkIntrinsics | None:
        return self.__cfg.get("intrinsics")

    def get_input_size(self) -> tuple[int, int]:
        return self.__cfg["input_tensor_size"]

    def show_network_fw_progress_bar(self) -> None:
        self.progress_bar_shown = True

    def set_inference_roi_abs(self, roi: tuple[int, int, int, int]) -> None:
        x, y, w, h = (int(v) for v in roi)
        fw, fh = FULL_SENSOR
        x, y = max(0, min(x, fw)), max(0, min(y, fh))  # Rectangle.bounded_to(full sensor)
        self.__cfg["roi"] = (x, y, max(0, min(w, fw - x)), max(0, min(h, fh - y)))

    def set_inference_aspect_ratio(self, aspect_ratio: tuple[int, int]) -> None:
        fw, fh = FULL_SENSOR
        aw, ah = aspect_ratio
        w, h = (fw, fw * ah // aw) if fw * ah // aw <= fh else (fh * aw // ah, fh)  # Size.bounded_to_aspect_ratio
        self.set_inference_roi_abs(((fw - w) // 2, (fh - h) // 2, w, h))

    def set_auto_aspect_ratio(self) -> None:
        self.set_inference_aspect_ratio(self.__cfg["input_tensor_size"])

    def get_output_shapes(self, metadata: dict[str, Any]) -> list[list[int]]:
        blob = metadata.get("CnnOutputTensorInfo")
        if not blob:
            return []
        size = ctypes.sizeof(CnnOutputTensorInfoExported)
        if len(blob) != size:
            raise ValueError(f"tensor info length {len(blob)} does not match expected size {size}")
        parsed = CnnOutputTensorInfoExported()
        ctypes.memmove(ctypes.addressof(parsed), bytes(blob), size)
        return [list(t.size)[0 : t.num_dimensions] for t in parsed.info[0 : parsed.num_tensors]]

    def get_outputs(self, metadata: dict[str, Any], add_batch: bool = False) -> list[np.ndarray] | None:
        output_tensor = metadata.get("CnnOutputTensor")
        if not output_tensor:
            return None
        np_output = np.fromiter(output_tensor, dtype=np.float32)
        offset = 0
        outputs = []
        for tensor_shape in self.get_output_shapes(metadata):
            size = int(np.prod(tensor_shape))
            reshaped = np_output[offset : offset + size].reshape(tensor_shape, order="F")
            outputs.append(np.expand_dims(reshaped, 0) if add_batch else reshaped)
            offset += size
        return outputs

    @staticmethod
    def get_kpi_info(metadata: dict[str, Any]) -> tuple[float, float] | None:
        kpi = metadata.get("CnnKpiInfo")
        if kpi is None:
            return None
        return kpi[0] / 1000, kpi[1] / 1000

    # --- the fake's own: what the sensor computes for a scene ---------------------------------------------------
    def run_network(self, scene: np.ndarray) -> dict[str, Any]:
        """Metadata for a frame of ``scene``: the stand-in network's answer on the inference region, scaled to the input."""
        h, w = scene.shape[:2]
        x, y, rw, rh = self.__cfg["roi"]
        fw, fh = FULL_SENSOR
        crop = scene[round(y * h / fh) : round((y + rh) * h / fh), round(x * w / fw) : round((x + rw) * w / fw)]
        iw, ih = self.__cfg["input_tensor_size"]
        pixels = cv2.resize(crop, (iw, ih), interpolation=cv2.INTER_AREA)
        it = self.interpreter
        inp, out = it.get_input_details()[0], it.get_output_details()[0]
        it.set_tensor(inp["index"], pixels[None].astype(inp["dtype"]))
        t0 = time.perf_counter()
        it.invoke()
        dnn_us = int((time.perf_counter() - t0) * 1e6)
        raw = it.get_tensor(out["index"])[0]
        scale, zp = out["quantization"]
        values = (raw.astype(np.float32) - zp) * scale if scale else raw.astype(np.float32)
        return {
            "CnnOutputTensor": values.tolist(),
            "CnnOutputTensorInfo": tensor_info_bytes(self.network_name, [tuple(values.shape)]),
            "CnnKpiInfo": [dnn_us, 150],
        }


# --- the camera -----------------------------------------------------------------------------------------------------
class FakeRequest:
    """A completed request: one frame's array and metadata, released once."""

    def __init__(self, array: np.ndarray, metadata: dict[str, Any]) -> None:
        self._array = array
        self._metadata = metadata
        self.released = False

    def make_array(self, name: str = "main") -> np.ndarray:
        assert not self.released, "make_array after release()"
        return self._array.copy()

    def get_metadata(self) -> dict[str, Any]:
        assert not self.released, "get_metadata after release()"
        return dict(self._metadata)

    def release(self) -> None:
        self.released = True


class FakeAICamera(fake_picamera2.Picamera2):
    """FakePicamera2 plus the IMX500 path's calls; frames show :attr:`clip`'s scenes in turn.

    Class attributes set the scenario: ``clip`` ((RGB scene, frames) in order; the last one stays), ``warmup``
    (frames without an output tensor while the network starts), ``silent`` (the network never answers).
    """

    clip: ClassVar[list[tuple[np.ndarray, int]]] = []
    warmup: ClassVar[int] = 2
    silent: ClassVar[bool] = False

    def __init__(self, camera_num: int = 0, *args: Any, **kw: Any) -> None:
        super().__init__(camera_num, *args, **kw)
        self.camera_properties = {"Model": self.global_camera_info()[camera_num]["Model"], "PixelArraySize": FULL_SENSOR}
        self.frames = 0
        self.requests: list[FakeRequest] = []

    def create_preview_configuration(self, main: dict[str, Any] | None = None, controls: dict[str, Any] | None = None,
                                     buffer_count: int = 4, **kw: Any) -> dict[str, Any]:  # fmt: skip
        """A preview configuration dict: main defaults to XBGR8888 640x480."""
        cfg = self.create_video_configuration(main={"format": "XBGR8888", "size": (640, 480), **(main or {})}, controls=controls)
        cfg.update(use_case="preview", buffer_count=buffer_count)
        return cfg

    def _scene(self) -> np.ndarray:
        left = self.frames
        for scene, count in self.clip:
            if left < count:
                return scene
            left -= count
        return self.clip[-1][0] if self.clip else fake_picamera2.Picamera2.scene

    def _next(self, wait: float | None) -> tuple[np.ndarray, dict[str, Any]]:
        if not self.started or self.camera_config is None:
            raise RuntimeError("Camera has not been started")
        if fake_picamera2.Picamera2.stall_after is not None and self.captures >= fake_picamera2.Picamera2.stall_after:
            if wait is None:
                raise AssertionError("capture without wait= on a stalled camera blocks forever")
            threading.Event().wait(wait)
            raise fake_picamera2.TimeoutError()
        time.sleep(1.0 / fake_picamera2.Picamera2.fps)
        scene = self._scene()
        self.frames += 1
        self.captures += 1
        w, h = self.camera_config["main"]["size"]
        rgb = cv2.resize(scene, (w, h), interpolation=cv2.INTER_AREA)
        order = fake_picamera2._ORDER[self.camera_config["main"]["format"]]
        array = np.ascontiguousarray(
            np.stack([rgb[..., c] if c is not None else np.full((h, w), 255, np.uint8) for c in order], -1)
        )
        metadata: dict[str, Any] = {"ScalerCrop": (0, 0, *FULL_SENSOR), "SensorTimestamp": time.monotonic_ns()}
        net = FakeIMX500.loaded
        if net is not None and not FakeAICamera.silent and self.frames > FakeAICamera.warmup and hasattr(net, "interpreter"):
            metadata.update(net.run_network(scene))
        return array, metadata

    def capture_request(self, wait: float | None = None, flush: Any = None) -> FakeRequest:
        """The next frame's request (a stall blocks, or times out with ``wait``)."""
        request = FakeRequest(*self._next(wait))
        self.requests.append(request)
        return request

    def capture_metadata(self, wait: float | None = None) -> dict[str, Any]:
        """The next frame's metadata."""
        return self._next(wait)[1]


def install(monkeypatch: pytest.MonkeyPatch, *, imx500_support: bool = True) -> None:
    """Put the fake ``picamera2`` (with ``devices.imx500`` unless ``imx500_support`` is False) into sys.modules."""
    reset()
    pkg = types.ModuleType("picamera2")
    pkg.__spec__ = importlib.machinery.ModuleSpec("picamera2", None, is_package=True)
    pkg.__path__ = []  # type: ignore[attr-defined]
    pkg.Picamera2 = FakeAICamera  # type: ignore[attr-defined]
    pkg.TimeoutError = fake_picamera2.TimeoutError  # type: ignore[attr-defined]
    devices = types.ModuleType("picamera2.devices")
    devices.__spec__ = importlib.machinery.ModuleSpec("picamera2.devices", None, is_package=True)
    devices.__path__ = []  # type: ignore[attr-defined]
    pkg.devices = devices  # type: ignore[attr-defined]
    monkeypatch.setitem(sys_modules(), "picamera2", pkg)
    monkeypatch.setitem(sys_modules(), "picamera2.devices", devices)
    if imx500_support:
        imx = types.ModuleType("picamera2.devices.imx500")
        imx.__spec__ = importlib.machinery.ModuleSpec("picamera2.devices.imx500", None)
        imx.IMX500 = FakeIMX500  # type: ignore[attr-defined]
        imx.NetworkIntrinsics = FakeNetworkIntrinsics  # type: ignore[attr-defined]
        devices.imx500 = imx  # type: ignore[attr-defined]
        devices.IMX500 = FakeIMX500  # type: ignore[attr-defined]
        monkeypatch.setitem(sys_modules(), "picamera2.devices.imx500", imx)
    else:
        monkeypatch.setitem(sys_modules(), "picamera2.devices.imx500", None)  # type: ignore[arg-type]


def sys_modules() -> dict[str, Any]:
    import sys

    return sys.modules


def reset() -> None:
    """One AI Camera (camera 0), no network loaded, a two-frame warm-up."""
    fake_picamera2.reset()
    fake_picamera2.Picamera2.cameras = [IMX500_CAMERA]
    fake_picamera2.Picamera2.sensor_size = FULL_SENSOR
    FakeAICamera.clip = []
    FakeAICamera.warmup = 2
    FakeAICamera.silent = False
    FakeIMX500.loaded = None
    FakeIMX500.refuse_upload = False
    FakeIMX500.uploads = []


# --- the system around it -------------------------------------------------------------------------------------------
def build_system(
    root: Path,
    *,
    camera: bool = True,
    node_mode: int = 0o660,
    firmware: bool = True,
    models: tuple[str, ...] = ("imx500_network_mobilenet_v2.rpk",),
    packages: dict[str, str] | None = None,
) -> Path:
    """The /sys, /dev, /lib/firmware, models folder and dpkg tree of a Pi with an AI Camera and imx500-all."""
    if camera:
        dev = root / "sys/devices/platform/axi/1000120000.pcie/1f00088000.i2c/i2c-10/10-001a"
        (dev / "driver").mkdir(parents=True, exist_ok=True)
        module = root / "sys/module/imx500"
        module.mkdir(parents=True, exist_ok=True)
        (dev / "driver" / "module").symlink_to(module)
        of_node = root / "sys/firmware/devicetree/base/axi/pcie@120000/rp1/i2c@88000/imx500@1a"
        of_node.mkdir(parents=True, exist_ok=True)
        (dev / "of_node").symlink_to(of_node)
        subdev = root / "sys/class/video4linux/v4l-subdev2"
        subdev.mkdir(parents=True, exist_ok=True)
        (subdev / "device").symlink_to(dev)
        node = root / "dev/v4l-subdev2"
        node.parent.mkdir(parents=True, exist_ok=True)
        node.write_bytes(b"")
        node.chmod(node_mode)
    if firmware:
        fw = root / "lib/firmware"
        fw.mkdir(parents=True, exist_ok=True)
        (fw / "imx500_loader.fpk").write_bytes(b"\0" * 64)
        (fw / "imx500_firmware.fpk").write_bytes(b"\0" * 128)
    mdir = root / "usr/share/imx500-models"
    mdir.mkdir(parents=True, exist_ok=True)
    for name in models:
        (mdir / name).write_bytes(b"9464")
    from tests.fake_hailo import write_dpkg_status

    write_dpkg_status(
        root,
        packages
        if packages is not None
        else {"imx500-all": "1.0", "imx500-firmware": "1.0", "imx500-models": "1.0", "imx500-tools": "1.0",
              "python3-picamera2": "0.3.30-1"},
    )  # fmt: skip
    return root

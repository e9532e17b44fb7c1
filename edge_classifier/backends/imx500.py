"""Load an ``.rpk`` network onto the AI Camera's IMX500 sensor: the camera is the accelerator.

The calls follow picamera2's ``devices/imx500/imx500.py`` and its ``examples/imx500/imx500_classification_demo.py``:
``IMX500(network_file)`` uploads the network *before* the camera is opened, ``imx500.camera_num`` says which
camera to open with ``Picamera2(camera_num)``, then every frame's metadata carries the network's answer, read with
``imx500.get_outputs(metadata, add_batch=True)`` (``CnnOutputTensor`` shaped by ``CnnOutputTensorInfo``).
``set_inference_roi_abs`` crops what the network sees on the sensor (full-sensor coordinates, 4056x3040), and
``set_auto_aspect_ratio`` keeps the input's aspect when the intrinsics ask for it.

One sensor, one network, per process: the open :class:`IMX500Sensor` is what ``sources.open("picamera")`` opens
frames from while it lives (:func:`active_sensor`), so the loop's frames and the network's answers come from the
same camera. No policy here: :mod:`.select` decides when the IMX500 runs a model.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from importlib import metadata as _metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeClassifierError, IMX500Error, ModelError
from ..imx500.diagnose import Snapshot, diagnose_open_failure, no_output_error, preflight
from ..imx500.discovery import SUPPORT_MODULE
from ..imx500.rpk import RpkInfo, read_rpk
from ..sysfacts import Identity, sysroot
from .base import BackendInfo

log = logging.getLogger(__name__)

#: The sensor's full pixel array, the frame of reference of ``set_inference_roi_abs`` (picamera2's
#: ``IMX500.__get_full_sensor_resolution``).
FULL_SENSOR = (4056, 3040)
#: Seconds to wait for the first output tensor: uploading a network to the sensor "can take several minutes".
DEFAULT_START_TIMEOUT = 300.0

_active: IMX500Sensor | None = None


def active_sensor() -> IMX500Sensor | None:
    """The IMX500 sensor this process has a network loaded on, if any."""
    return _active


class IMX500Sensor:
    """The AI Camera with a network loaded on its sensor.

    Attributes:
        rpk: what the ``.rpk`` says (input size, intrinsics).
        info: where inference runs and why (``device`` is ``imx500:<camera number>``).
        output_size: values per output tensor, learned from the first frame's ``CnnOutputTensorInfo``.
    """

    def __init__(self, vendor: Any, picamera2: Any, rpk: RpkInfo, info: BackendInfo) -> None:
        self._vendor = vendor
        self._picamera2 = picamera2
        self.rpk = rpk
        self.info = info
        self.output_size: int | None = None
        self.roi: tuple[float, float, float, float] | None = None

    @property
    def camera_num(self) -> int:
        """The camera to open with ``Picamera2(camera_num)``."""
        return int(self._vendor.camera_num)

    @property
    def picamera2_class(self) -> Any:
        """picamera2's ``Picamera2`` class (from the module the sensor was opened with)."""
        return self._picamera2.Picamera2

    def outputs(self, metadata: dict[str, Any]) -> np.ndarray | None:
        """The first output tensor of a frame, flat float32; None when the frame carries none (network still starting)."""
        if self._vendor is None:
            raise IMX500Error(self.info.model_path, "the sensor is closed", "open the model again")
        tensors = self._vendor.get_outputs(metadata, add_batch=True)
        if not tensors:
            return None
        return np.asarray(tensors[0], dtype=np.float32).reshape(-1)

    def kpi(self, metadata: dict[str, Any]) -> tuple[float, float] | None:
        """The sensor's own timing of this frame's network run, (DNN ms, DSP ms), when it reports one."""
        try:
            kpi = self._vendor.get_kpi_info(metadata)
        except (TypeError, ValueError, IndexError):  # an older firmware's blob: no timing, not an error
            return None
        return (float(kpi[0]), float(kpi[1])) if kpi else None

    def set_roi(self, roi: tuple[float, float, float, float] | None) -> None:
        """Crop what the network sees, on the sensor: ``(x, y, w, h)`` as fractions of the full frame; None for all of it."""
        self.roi = roi
        fx, fy, fw, fh = roi if roi is not None else (0.0, 0.0, 1.0, 1.0)
        sw, sh = FULL_SENSOR
        box = (round(fx * sw), round(fy * sh), max(1, round(fw * sw)), max(1, round(fh * sh)))
        self._vendor.set_inference_roi_abs(box)

    def start_camera(self, camera: Any, timeout: float) -> int:
        """Wait on a started camera for the network's first output; returns the output tensor's length.

        Raises:
            IMX500NetworkError: no output tensor within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            md = camera.capture_metadata(wait=min(5.0, max(0.1, deadline - time.monotonic())))
            shapes = self._vendor.get_output_shapes(md) if md.get("CnnOutputTensorInfo") else []
            if shapes and md.get("CnnOutputTensor"):
                self.output_size = int(np.prod(shapes[0]))
                return self.output_size
            if time.monotonic() > deadline:
                raise no_output_error(self.info.model_path, timeout)

    def probe(self, timeout: float = DEFAULT_START_TIMEOUT) -> int:
        """Open the camera once, wait for the network's first output, close it; returns the output's length.

        The vendor's classification demo reads ``CnnOutputTensorInfo`` the same way before it starts.
        """
        camera = self.picamera2_class(self.camera_num)
        try:
            rate = self.rpk.inference_rate
            config = camera.create_preview_configuration(controls={"FrameRate": rate} if rate else {}, buffer_count=12)
            camera.configure(config)
            camera.start()
            return self.start_camera(camera, timeout)
        finally:
            for step in ("stop", "close"):
                try:
                    getattr(camera, step)()
                except Exception as exc:  # noqa: BLE001 - closing must go on
                    log.debug("picamera2 %s failed: %s", step, exc)

    def close(self) -> None:
        """Forget the sensor (picamera2's IMX500 object closes its device node when dropped). Safe to call twice."""
        global _active
        if _active is self:
            _active = None
        self._vendor = None


def _picamera2_version() -> str:
    try:
        return _metadata.version("picamera2")
    except _metadata.PackageNotFoundError:
        return "?"


def open_imx500(
    model_path: str | Path,
    *,
    reason: str = "",
    notes: tuple[str, ...] = (),
    root: str | None = None,
    identity: Identity | None = None,
) -> IMX500Sensor:
    """Upload ``model_path`` to the IMX500 and return the sensor, registered as this process's active one.

    Raises:
        ModelError: not a readable ``.rpk``, or a network that is not a classifier.
        IMX500Error: the child class naming why the sensor cannot run it (no camera, permission, firmware, support).
        SystemPackageHiddenError: picamera2 is installed by apt but this venv hides it.
    """
    global _active
    path = str(model_path)
    rpk = read_rpk(path)
    if rpk.task is not None and rpk.task != "classification":
        raise ModelError(
            path,
            f"is a {rpk.task} network, not an image classifier",
            "use a classification network (Raspberry Pi's are imx500_network_mobilenet_v2.rpk, efficientnet_*.rpk, ...)",
        )
    root = root or sysroot()
    snapshot = Snapshot.take(root, identity)
    problem = preflight(snapshot)
    if problem is not None:
        raise problem
    if _active is not None:
        raise IMX500Error(
            "AI Camera (IMX500)",
            f"this process already runs {_active.info.model_path} on it (one network at a time)",
            "close that classifier first",
        )
    module = importlib.import_module(SUPPORT_MODULE)
    picamera2 = importlib.import_module("picamera2")
    try:
        vendor = module.IMX500(path)
    except Exception as exc:  # noqa: BLE001 - picamera2 raises bare RuntimeError/OSError; the snapshot names the cause
        raise diagnose_open_failure(exc, path, snapshot) from exc
    try:
        if sys.stderr.isatty():
            vendor.show_network_fw_progress_bar()  # picamera2's own progress bar for the upload
        if rpk.preserve_aspect_ratio:
            vendor.set_auto_aspect_ratio()
    except EdgeClassifierError:
        raise
    except Exception as exc:  # noqa: BLE001 - a progress bar or an ROI must not hide the network
        log.debug("IMX500 set-up step failed: %s", exc)
    w, h = rpk.input_size
    why = f"AI Camera (IMX500) camera {vendor.camera_num}: the network runs on the sensor ({w}x{h} {rpk.input_format})"
    info = BackendInfo(
        "picamera2-imx500",
        _picamera2_version(),
        f"imx500:{vendor.camera_num}",
        why + (f"; {reason}" if reason else ""),
        0,
        path,
        notes,
    )
    sensor = IMX500Sensor(vendor, picamera2, rpk, info)
    _active = sensor
    return sensor

"""Frames from the AI Camera with its IMX500 network's answer attached: the camera is the accelerator.

Each frame comes from one picamera2 request, so its pixels and the network output in its metadata belong to the
same exposure (``capture_request()``, ``make_array("main")``, ``get_metadata()``, ``release()``: picamera2's
documented way to get both at once). The frame is a :class:`SensorFrame`, an RGB array that also carries
``sensor_outputs`` (the first output tensor, read with the vendor's ``IMX500.get_outputs``) and ``sensor_kpi``;
:class:`~edge_classifier.sensor_classifier.SensorClassifier` answers from those instead of running a model, so the
loop, smoothing, sinks and stats stay as they are for any other source.

Regions: the sensor classifies one inference region of interest (``roi``, fractions of the frame), set on the
sensor with ``set_inference_roi_abs``; software crops of a frame cannot be classified by it.
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import numpy as np

from ..backends.imx500 import DEFAULT_START_TIMEOUT, IMX500Sensor, active_sensor
from ..errors import ConfigError, SourceError
from ..imx500.diagnose import no_output_error
from .picamera import PiCameraSource, memory_to_rgb

#: The attributes a :class:`SensorFrame` carries (SensorClassifier reads them by these names).
OUTPUTS_ATTR = "sensor_outputs"
KPI_ATTR = "sensor_kpi"


class SensorFrame(np.ndarray):
    """An RGB uint8 frame (HxWx3) that carries the IMX500 network's output for it.

    Attributes:
        sensor_outputs: the first output tensor, flat float32.
        sensor_kpi: the sensor's (DNN ms, DSP ms) for this frame, when it reports them.

    Only the array the source makes carries them: a slice, crop or copy of it does not (its answer would be
    the whole frame's, not the crop's).
    """

    sensor_outputs: np.ndarray | None
    sensor_kpi: tuple[float, float] | None

    def __array_finalize__(self, obj: Any) -> None:
        self.sensor_outputs = None
        self.sensor_kpi = None


def sensor_frame(rgb: np.ndarray, outputs: np.ndarray, kpi: tuple[float, float] | None = None) -> SensorFrame:
    """``rgb`` as a :class:`SensorFrame` carrying ``outputs`` (no copy)."""
    frame = rgb.view(SensorFrame)
    frame.sensor_outputs = outputs
    frame.sensor_kpi = kpi
    return frame


def check_roi(roi: Any) -> tuple[float, float, float, float] | None:
    """``roi`` as ``(x, y, w, h)`` fractions inside the frame, or None.

    Raises:
        ConfigError: not four numbers, or a box that leaves the frame or is empty.
    """
    if roi is None:
        return None
    try:
        x, y, w, h = (float(v) for v in roi)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"roi={roi!r}", "is not four numbers (x, y, w, h)", "give fractions of the frame, e.g. roi=(0.25, 0.25, 0.5, 0.5)"
        ) from exc
    if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 - x + 1e-9 and 0 < h <= 1 - y + 1e-9):
        raise ConfigError(
            f"roi={roi!r}", "is not a box inside the frame", "give x, y in [0, 1) and w, h > 0 with x+w <= 1, y+h <= 1"
        )
    return (x, y, w, h)


class IMX500Source(PiCameraSource):
    """The AI Camera running an IMX500 network: frames as :class:`SensorFrame`, each with the network's answer.

    Args:
        sensor: the sensor with the network loaded (default: this process's active one, see
            :func:`~edge_classifier.backends.imx500.active_sensor`).
        roi: ``(x, y, w, h)`` fractions of the frame the network looks at (set on the sensor); None: all of it.
        start_timeout: seconds to wait for the first output tensor (a network's first upload takes minutes).
        **kw: :class:`~edge_classifier.sources.picamera.PiCameraSource`'s options (``size``, ``format``,
            ``capture_timeout``, ``controls``); the camera number is the sensor's.

    Raises:
        SourceError: no network is loaded on the sensor.
        ConfigError: a bad ``roi``.
    """

    def __init__(
        self,
        sensor: IMX500Sensor | None = None,
        *,
        roi: Any = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        camera_num: int | None = None,
        **kw: Any,
    ) -> None:
        sensor = sensor or active_sensor()
        if sensor is None:
            raise SourceError(
                "imx500",
                "no network is loaded on the AI Camera",
                "open the .rpk first: SensorClassifier('network.rpk'), then stream from 'picamera'",
            )
        if camera_num is not None and camera_num != sensor.camera_num:
            raise SourceError(
                f"picamera{camera_num}",
                f"is not the AI Camera, which is camera {sensor.camera_num}",
                f"use picamera{sensor.camera_num}",
            )
        super().__init__(sensor.camera_num, **kw)
        rate = sensor.rpk.inference_rate
        if rate and "FrameRate" not in self.controls:
            self.controls["FrameRate"] = rate  # the network keeps up with this rate (its intrinsics say)
        self.sensor = sensor
        self.roi = check_roi(roi)
        self.start_timeout = start_timeout
        self.name = "imx500" if sensor.camera_num == 0 else f"imx500:{sensor.camera_num}"
        self._last_answer = 0.0  # when the last output tensor came (the open time until the first)
        self._answered = False

    def open(self) -> None:
        """Open the AI Camera (see PiCameraSource.open for the errors) and set the inference region on the sensor."""
        super().open()
        self.sensor.set_roi(self.roi)
        self._last_answer = time.monotonic()
        self._answered = False

    def read(self) -> np.ndarray | None:
        """The next frame that carries the network's answer (frames before the network starts are skipped).

        Raises:
            CameraTimeoutError: no frame within ``capture_timeout``.
            IMX500NetworkError: frames but no output tensor within ``start_timeout`` (or ``capture_timeout`` once
                the network had started).
        """
        while True:
            if self._interrupted.is_set():
                return None
            if self._cam is None:
                raise SourceError(self.name, "the camera is not open", "use it in a with-statement or call open() first")
            try:
                request = self._cam.capture_request(wait=self.capture_timeout)
            except (TimeoutError, concurrent.futures.TimeoutError) as exc:
                raise self._timed_out() from exc
            try:
                array = request.make_array("main")
                metadata = request.get_metadata()
            finally:
                request.release()
            outputs = self.sensor.outputs(metadata)
            if outputs is not None:
                self._answered = True
                self._last_answer = time.monotonic()
                return sensor_frame(memory_to_rgb(array, self.format), outputs, self.sensor.kpi(metadata))
            limit = self.capture_timeout if self._answered else self.start_timeout
            if time.monotonic() - self._last_answer > limit:
                raise no_output_error(self.sensor.info.model_path, limit)

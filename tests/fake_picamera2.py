"""FakePicamera2: a stand-in for the ``picamera2`` module, since no Raspberry Pi camera exists here.

Installed as ``sys.modules["picamera2"]`` by the tests, so edge_classifier's real PiCameraSource
imports and drives it exactly as it would drive picamera2. It mimics the parts of picamera2 0.3.x
the source uses, with picamera2's own behaviour and error texts (see
../shared/reference/errors/edgetpu_and_camera_errors.md, part B):

- ``Picamera2.global_camera_info()`` (static): ``[]`` when no camera; ``Picamera2(n)`` then fails
  with ``IndexError: list index out of range`` like picamera2 does.
- a busy camera: ``RuntimeError("Camera __init__ sequence did not complete.")`` raised from
  libcamera's ``RuntimeError("Failed to acquire camera: Device or resource busy")``.
- ``create_video_configuration(main=...)``: XBGR8888 1280x720 defaults, buffer_count 6.
- ``configure``/``start``/``stop``/``close`` state rules and their RuntimeError texts.
- ``capture_array(name, wait=None)``: blocks forever when the camera stalls unless ``wait`` is
  given, then raises a bare ``TimeoutError``; frames use picamera2's memory orders ("RGB888" is
  B, G, R in memory).

Class attributes set the scenario; :func:`reset` restores the defaults.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import TimeoutError  # picamera2 re-exports this name
from typing import Any, ClassVar

import cv2
import numpy as np

__all__ = ["Picamera2", "TimeoutError", "reset"]

IMX708 = {"Model": "imx708", "Location": 2, "Rotation": 180, "Id": "/base/axi/pcie@120000/rp1/i2c@88000/imx708@1a", "Num": 0}

# What each format holds in memory (picamera2 request.py: "RGB888" -> "BGR" order, and so on).
_ORDER = {"RGB888": (2, 1, 0), "BGR888": (0, 1, 2), "XBGR8888": (0, 1, 2, None), "XRGB8888": (2, 1, 0, None)}


class Picamera2:
    """The fake camera; the scenario lives in class attributes."""

    cameras: ClassVar[list[dict[str, Any]]] = [IMX708]
    busy: ClassVar[bool] = False
    #: Capture calls that succeed before the camera stops delivering (None: never stalls).
    stall_after: ClassVar[int | None] = None
    #: The scene in front of the camera, RGB uint8, resized to the configured size.
    scene: ClassVar[np.ndarray] = np.full((480, 640, 3), (200, 30, 10), dtype=np.uint8)
    fps: ClassVar[float] = 100.0
    sensor_size: ClassVar[tuple[int, int]] = (4608, 2592)
    instances: ClassVar[list[Picamera2]] = []

    @staticmethod
    def global_camera_info() -> list[dict[str, Any]]:
        """The cameras libcamera sees, sorted as picamera2 sorts them (USB last)."""
        return sorted(Picamera2.cameras, key=lambda c: ("/usb" not in c["Id"], c["Id"]), reverse=True)

    def __init__(self, camera_num: int = 0, verbose_console: Any = None, tuning: Any = None, allocator: Any = None) -> None:
        self.is_open = False
        self.started = False
        self.camera_config: dict[str, Any] | None = None
        self.captures = 0
        self.waits: list[float | None] = []
        self.flushed = False
        self.closed = False
        # picamera2 indexes the sorted list: no camera -> IndexError: list index out of range.
        self.camera_num = self.global_camera_info()[camera_num]["Num"]
        if Picamera2.busy:
            try:
                raise RuntimeError("Failed to acquire camera: Device or resource busy")
            except RuntimeError as e:
                raise RuntimeError("Camera __init__ sequence did not complete.") from e
        self.is_open = True
        self.camera_properties = {"Model": "imx708", "PixelArraySize": Picamera2.sensor_size}
        Picamera2.instances.append(self)

    # --- configuration --------------------------------------------------------------------
    def create_video_configuration(
        self, main: dict[str, Any] | None = None, lores: Any = None, raw: Any = None, transform: Any = None,
        colour_space: Any = None, buffer_count: int = 6, controls: dict[str, Any] | None = None, **kw: Any,
    ) -> dict[str, Any]:  # fmt: skip
        """A video configuration dict: main defaults to XBGR8888 1280x720."""
        if not self.is_open:
            raise RuntimeError("Camera not opened")
        main_cfg = {"format": "XBGR8888", "size": (1280, 720), **(main or {})}
        return {
            "use_case": "video",
            "main": main_cfg,
            "lores": lores,
            "buffer_count": buffer_count,
            "controls": dict(controls or {}),
        }

    def align_configuration(self, config: dict[str, Any]) -> None:
        """Round the main width up to a multiple of 32, as picamera2 does for hardware alignment."""
        w, h = config["main"]["size"]
        config["main"]["size"] = ((w + 31) // 32 * 32, h)

    def configure(self, camera_config: dict[str, Any] | None = None) -> None:
        """Check and apply a configuration, with picamera2's error texts."""
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        cfg = camera_config or self.create_video_configuration()
        main = cfg["main"]
        if "format" not in main:
            raise RuntimeError("format not found in main stream")
        if not isinstance(main.get("size"), tuple) or len(main["size"]) != 2:
            raise RuntimeError("size in main stream should be (width, height)")
        if main["size"][0] % 2 or main["size"][1] % 2:
            raise RuntimeError("width and height should be even")
        if main["format"] not in _ORDER and main["format"] != "YUV420":
            raise RuntimeError(f"Bad format {main['format']} in stream main")
        self.camera_config = cfg

    def start(self, config: Any = None, show_preview: bool = False) -> None:
        """Start streaming."""
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        self.started = True

    # --- capture ------------------------------------------------------------------------
    def capture_array(self, name: str = "main", wait: float | None = None, signal_function: Any = None) -> np.ndarray:
        """One frame in the configured format's memory order; a stall blocks (or times out with ``wait``)."""
        if not self.started or self.camera_config is None:
            raise RuntimeError("Camera has not been started")  # the real one would hang: fail loudly instead
        self.waits.append(wait)
        if Picamera2.stall_after is not None and self.captures >= Picamera2.stall_after:
            if wait is None:
                # picamera2 would block forever here; a test must not hang, so say what happened.
                raise AssertionError("capture_array() without wait= on a stalled camera blocks forever")
            threading.Event().wait(wait)
            raise TimeoutError()
        time.sleep(1.0 / Picamera2.fps)
        self.captures += 1
        w, h = self.camera_config["main"]["size"]
        fmt = self.camera_config["main"]["format"]
        rgb = cv2.resize(Picamera2.scene, (w, h), interpolation=cv2.INTER_AREA)
        order = _ORDER[fmt]
        channels = [rgb[..., c] if c is not None else np.full((h, w), 255, np.uint8) for c in order]
        return np.ascontiguousarray(np.stack(channels, axis=-1))

    def cancel_all_and_flush(self) -> None:
        """Drop pending jobs after a timeout, so the camera can be closed."""
        self.flushed = True

    def stop(self) -> None:
        """Stop streaming; a no-op when not started."""
        self.started = False

    def close(self) -> None:
        """Stop and release the camera."""
        self.stop()
        self.is_open = False
        self.closed = True

    def __enter__(self) -> Picamera2:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def reset() -> None:
    """Back to one working imx708 with a reddish scene."""
    Picamera2.cameras = [IMX708]
    Picamera2.busy = False
    Picamera2.stall_after = None
    Picamera2.scene = np.full((480, 640, 3), (200, 30, 10), dtype=np.uint8)
    Picamera2.fps = 100.0
    Picamera2.sensor_size = (4608, 2592)
    Picamera2.instances = []

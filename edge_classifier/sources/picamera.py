"""Frames from a Raspberry Pi camera module through picamera2 (libcamera), scaled by the camera's ISP.

picamera2 ships as an apt package (``python3-picamera2``) and is imported only when this source opens.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import logging
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CameraBusyError, CameraNotFoundError, CameraTimeoutError, SourceError
from .base import Source

log = logging.getLogger(__name__)

#: What picamera2's format names hold in memory, per pixel. The names follow libcamera/DRM, which
#: list channels from the most significant bit, so "RGB888" is B, G, R in a numpy array: a known trap.
MEMORY_ORDER: dict[str, str] = {"RGB888": "BGR", "BGR888": "RGB", "XBGR8888": "RGBX", "XRGB8888": "BGRX"}

_INSTALL_FIX = "install it with: sudo apt install python3-picamera2 (it is not on PyPI with its libcamera bindings)"


def memory_to_rgb(array: np.ndarray, fmt: str) -> np.ndarray:
    """An RGB (H, W, 3) view or copy of a picamera2 array captured in format ``fmt``."""
    order = MEMORY_ORDER[fmt]
    if order == "RGB":
        return array
    if order == "BGR":
        return np.ascontiguousarray(array[..., ::-1])
    if order == "RGBX":
        return np.ascontiguousarray(array[..., :3])
    return np.ascontiguousarray(array[..., 2::-1])  # BGRX


def scaler_size(model_size: tuple[int, int] | None, sensor_size: tuple[int, int] | None) -> tuple[int, int]:
    """The (width, height) to ask the ISP for: just above the model's input, at the sensor's aspect.

    Both sides are at least the model's (height, width), the width is a multiple of 32 and the
    height even, which every Pi ISP accepts without re-aligning. With no model size, 640x480.
    """
    if model_size is None:
        return (640, 480)
    mh, mw = model_size
    sw, sh = sensor_size if sensor_size else (4, 3)
    aspect = sw / sh
    height = max(mh, mw / aspect)
    width = height * aspect
    w = int(-(-width // 32) * 32)
    h = int(-(-height // 2) * 2)
    return (w, h)


def legacy_camera_stack(root: Path = Path("/")) -> str | None:
    """Why this system looks configured for the legacy (MMAL) camera stack, or None.

    The same sign rpicam-apps checks: a V4L2 device named "bm2835 mmal"; secondarily ``start_x=1``
    in the firmware config.
    """
    for name_file in sorted((root / "sys/class/video4linux").glob("*/name")):
        try:
            name = name_file.read_text(errors="replace").strip()
        except OSError:
            continue
        if "mmal" in name.lower():
            return f"{name_file.parent.name} is the legacy MMAL camera driver ({name!r})"
    for cfg in (root / "boot/firmware/config.txt", root / "boot/config.txt"):
        try:
            text = cfg.read_text(errors="replace")
        except OSError:
            continue
        if re.search(r"^\s*start_x\s*=\s*1", text, re.MULTILINE):
            return f"{cfg} has start_x=1"
    return None


def _venv_without_system_packages() -> bool:
    if sys.prefix == sys.base_prefix:
        return False
    cfg = Path(sys.prefix) / "pyvenv.cfg"
    try:
        return "include-system-site-packages = true" not in cfg.read_text().lower()
    except OSError:
        return False


def import_picamera2() -> Any:
    """The ``picamera2`` module, or a SourceError saying which piece is missing and how to install it."""
    try:
        return importlib.import_module("picamera2")
    except ImportError as exc:
        missing = getattr(exc, "name", None) or ""
        venv_note = (
            "; this virtualenv does not see system packages: recreate it with python3 -m venv --system-site-packages .venv"
            if _venv_without_system_packages()
            else ""
        )
        if missing == "picamera2":
            raise SourceError("picamera2", "is not installed", _INSTALL_FIX + venv_note) from exc
        if missing == "libcamera" or "libcamera" in str(exc):
            raise SourceError(
                "picamera2",
                f"its libcamera Python bindings are missing or do not match ({exc})",
                "sudo apt install python3-libcamera python3-picamera2 and use those, not a pip-installed picamera2." + venv_note,
            ) from exc
        raise SourceError("picamera2", f"cannot be imported ({exc})", _INSTALL_FIX + venv_note) from exc


def _no_camera_error(camera_num: int, cameras: list[dict[str, Any]]) -> SourceError:
    legacy = legacy_camera_stack()
    if legacy:
        return CameraNotFoundError(
            "picamera",
            f"the system is configured for the legacy camera stack ({legacy}), which libcamera cannot use",
            "disable it: sudo raspi-config > Interface Options > Legacy Camera > No (or remove start_x=1 and set "
            "camera_auto_detect=1 in config.txt), then reboot",
        )
    if not cameras:
        return CameraNotFoundError(
            "picamera",
            "libcamera detects no camera",
            "power off, reseat the ribbon cable (contacts facing the right way) and check with: rpicam-hello --list-cameras",
        )
    listed = ", ".join(f"{c.get('Num', i)}: {c.get('Model', '?')}" for i, c in enumerate(cameras))
    return CameraNotFoundError(
        f"picamera {camera_num}", f"no camera with that number (found {listed})", "pick one of those numbers"
    )


def _is_busy(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        text = str(seen).lower()
        if "busy" in text or "-16" in text or "in use by another process" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class PiCameraSource(Source):
    """A Raspberry Pi camera through picamera2, delivering RGB frames scaled by the camera's ISP.

    Args:
        camera_num: which camera (as listed by ``rpicam-hello --list-cameras``).
        size: (width, height) to capture; default just above the model's input (see
            :meth:`prefer_size`), keeping the sensor's aspect ratio.
        format: picamera2 pixel format; "BGR888" (RGB in memory, no conversion) by default. Any of
            :data:`MEMORY_ORDER` works: the frames are converted to RGB accordingly.
        capture_timeout: seconds one capture may take before :class:`CameraTimeoutError`
            (picamera2 otherwise blocks forever when the camera stops).
        controls: libcamera controls to set, such as ``{"FrameRate": 30}``.

    Raises (from ``open``):
        SourceError: picamera2 or libcamera is not installed or not visible in this virtualenv.
        CameraNotFoundError: no camera detected, or the legacy camera stack is enabled.
        CameraBusyError: another process holds the camera.
    """

    live = True

    def __init__(
        self,
        camera_num: int = 0,
        *,
        size: tuple[int, int] | None = None,
        format: str = "BGR888",
        capture_timeout: float = 5.0,
        controls: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if format not in MEMORY_ORDER:
            raise SourceError(f"picamera format {format!r}", "is not an RGB format", f"use one of {', '.join(MEMORY_ORDER)}")
        self.camera_num = camera_num
        self.size = size
        self.format = format
        self.capture_timeout = capture_timeout
        self.controls = dict(controls or {})
        self.name = "picamera" if camera_num == 0 else f"picamera{camera_num}"
        self._model_size: tuple[int, int] | None = None
        self._cam: Any = None

    def prefer_size(self, width: int, height: int) -> None:
        """Remember the model's input size so the ISP scales frames down to just above it."""
        self._model_size = (height, width)

    def open(self) -> None:
        """Find, acquire, configure and start the camera; see the class docstring for the errors."""
        self._interrupted.clear()
        module = import_picamera2()
        picamera2_cls = module.Picamera2
        cameras = list(picamera2_cls.global_camera_info())
        if self.camera_num >= len(cameras):
            raise _no_camera_error(self.camera_num, cameras)
        try:
            cam = picamera2_cls(self.camera_num)
        except IndexError as exc:
            raise _no_camera_error(self.camera_num, []) from exc
        except RuntimeError as exc:
            if _is_busy(exc):
                raise CameraBusyError(
                    "picamera",
                    "another process holds the camera (Device or resource busy)",
                    "stop the other program (another picamera2 script, rpicam-vid/libcamera-vid, motion); "
                    "find it with: fuser -v /dev/media* /dev/video*",
                ) from exc
            raise SourceError(
                "picamera", f"libcamera could not open the camera ({exc})", "check: rpicam-hello --list-cameras"
            ) from exc
        try:
            sensor = cam.camera_properties.get("PixelArraySize")
            size = self.size or scaler_size(self._model_size, tuple(sensor) if sensor else None)
            config = cam.create_video_configuration(main={"format": self.format, "size": tuple(size)}, controls=self.controls)
            cam.align_configuration(config)
            cam.configure(config)
            cam.start()
        except RuntimeError as exc:
            _close_quietly(cam)
            raise SourceError(
                "picamera",
                f"the camera rejected the configuration ({exc})",
                "pass an even size such as (640, 480) and an RGB format",
            ) from exc
        self._cam = cam
        self.size = tuple(config["main"]["size"])
        log.info("picamera %d: %s %s, scaled by the ISP (sensor %s)", self.camera_num, self.format, self.size, sensor)

    def read(self) -> np.ndarray | None:
        """The next RGB frame; None after :meth:`interrupt`.

        Raises:
            CameraTimeoutError: no frame within ``capture_timeout`` (cable, power or sensor fault).
        """
        if self._interrupted.is_set():
            return None
        if self._cam is None:
            raise SourceError(self.name, "the camera is not open", "use it in a with-statement or call open() first")
        try:
            array = self._cam.capture_array("main", wait=self.capture_timeout)
        except (TimeoutError, concurrent.futures.TimeoutError) as exc:
            raise self._timed_out() from exc
        return memory_to_rgb(array, self.format)

    def _timed_out(self) -> CameraTimeoutError:
        """Flush the stalled capture (picamera2 does not cancel it, and the camera could not close) and say why."""
        flush = getattr(self._cam, "cancel_all_and_flush", None)
        if flush is not None:
            try:
                flush()
            except Exception as flush_exc:  # noqa: BLE001 - the timeout is the error to report
                log.debug("cancel_all_and_flush failed: %s", flush_exc)
        return CameraTimeoutError(
            self.name,
            f"no frame within {self.capture_timeout:g} s (the camera stopped delivering; libcamera's log may say "
            "'Camera frontend has timed out!')",
            "power off and reseat the ribbon cable, use a shorter cable and a 5 V/3 A+ supply; raise capture_timeout "
            "only for very long exposures",
        )

    def close(self) -> None:
        """Stop and release the camera."""
        cam, self._cam = self._cam, None
        if cam is not None:
            _close_quietly(cam)


def _close_quietly(cam: Any) -> None:
    for step in ("stop", "close"):
        try:
            getattr(cam, step)()
        except Exception as exc:  # noqa: BLE001 - closing must go on, and the first error already surfaced
            log.debug("picamera %s failed: %s", step, exc)

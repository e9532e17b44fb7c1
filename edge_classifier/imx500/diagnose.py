"""Turn "the AI Camera cannot run this network" into the one IMX500Error (or ModelError) that names its cause.

picamera2's ``IMX500`` raises bare ``RuntimeError``s (``devices/imx500/imx500.py``): ``"IMX500: Requested camera
dev-node not found"`` when no sensor matches, ``"Firmware file {path} does not exist."`` for a missing ``.rpk``,
``"IMX500: Unable to set network firmware {path}: {err}"`` when the driver refuses the upload, and an
``OSError`` when ``/dev/v4l-subdevN`` cannot be opened. A :class:`Snapshot` of sysfs, the firmware files, dpkg and
picamera2 tells which cause it is, and most are found before picamera2 is even asked (:func:`preflight`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import (
    EdgeClassifierError,
    IMX500Error,
    IMX500FirmwareMissingError,
    IMX500NetworkError,
    IMX500NotFoundError,
    IMX500PermissionError,
    IMX500SupportMissingError,
    ModelError,
    SystemPackageHiddenError,
)
from ..sysfacts import VENV_FIX, Identity
from .discovery import ATTACH_FIX, FIRMWARE_FIX, IMX500Camera, SupportStatus, find_imx500, firmware, packages, probe_support

SUPPORT_MODULE_NAME = "picamera2.devices.imx500"
PERMISSION_HINT = "sudo usermod -aG video $USER, then log out and in"
SUPPORT_FIX = (
    "use Raspberry Pi OS's picamera2 (sudo apt install python3-picamera2 imx500-all; sudo apt full-upgrade for IMX500 "
    "support, picamera2 0.3.19 or newer), not a pip-installed one"
)


@dataclass(frozen=True)
class Snapshot:
    """What the system shows about the AI Camera at one moment."""

    cameras: tuple[IMX500Camera, ...]
    firmware: dict[str, int | None]
    packages: dict[str, str]
    support: SupportStatus
    root: str = "/"

    @classmethod
    def take(cls, root: str = "/", identity: Identity | None = None, support: SupportStatus | None = None) -> Snapshot:
        """Probe now (picamera2's IMX500 module is imported unless ``support`` is given)."""
        return cls(tuple(find_imx500(root, identity)), firmware(root), packages(root), support or probe_support(root), root)

    @property
    def missing_firmware(self) -> list[str]:
        """Firmware files that are not there."""
        return [p for p, size in self.firmware.items() if size is None]


def support_error(status: SupportStatus) -> EdgeClassifierError | None:
    """The error for picamera2's IMX500 support being unusable, or None when it imports."""
    if status.importable:
        return None
    if status.hidden:
        return SystemPackageHiddenError(
            "picamera2", "is installed system-wide by apt (python3-picamera2) but this virtualenv hides system packages", VENV_FIX
        )
    return IMX500SupportMissingError(SUPPORT_MODULE_NAME, status.error, SUPPORT_FIX)


def preflight(snapshot: Snapshot, *, need_support: bool = True) -> EdgeClassifierError | None:
    """The reason the sensor cannot run a network that the system already shows, or None.

    Order: the camera (an ``.rpk`` without the camera), its node's permission, the firmware, picamera2's support.
    """
    if not snapshot.cameras:
        return IMX500NotFoundError(
            "AI Camera (IMX500)",
            "no IMX500 sensor is attached (no v4l-subdev driven by the imx500 module), so an .rpk network has nowhere to run",
            ATTACH_FIX + "; or run the .tflite version of the model on the CPU with device='cpu'",
        )
    cam = snapshot.cameras[0]
    if not cam.accessible:
        return IMX500PermissionError(f"AI Camera (IMX500) at {cam.node}", f"{cam.problem} (it is {cam.owner})", cam.fix)
    missing = snapshot.missing_firmware
    if missing:
        return IMX500FirmwareMissingError(
            "IMX500 firmware", f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing", FIRMWARE_FIX
        )
    if need_support:
        return support_error(snapshot.support)
    return None


def diagnose_open_failure(exc: BaseException, model_path: str, snapshot: Snapshot) -> EdgeClassifierError:
    """The error for an exception picamera2's ``IMX500(network_file)`` raised."""
    text = str(exc).strip() or type(exc).__name__
    if "does not exist" in text and "Firmware file" in text:
        return ModelError(model_path, "no such model file (picamera2 could not find it)", "check the path")
    found = preflight(snapshot)
    if found is not None:
        return found
    if isinstance(exc, PermissionError):
        return IMX500PermissionError(
            "AI Camera (IMX500)", f"picamera2 could not open the sensor ({text})", snapshot.cameras[0].fix or PERMISSION_HINT
        )
    if "dev-node not found" in text:
        return IMX500NotFoundError("AI Camera (IMX500)", f"picamera2 found no IMX500 sensor ({text})", ATTACH_FIX)
    if "Unable to set network firmware" in text:
        return IMX500NetworkError(
            model_path,
            f"the sensor's driver refused the network ({text})",
            "re-package the network with imx500-package from the imx500-tools matching this firmware (sudo apt full-upgrade), "
            "and close any other program using the camera",
        )
    return IMX500Error("AI Camera (IMX500)", f"picamera2 could not load the network ({text})", "see `dmesg | grep -i imx500`")


def no_output_error(model_path: str, seconds: float) -> IMX500NetworkError:
    """The sensor ran but delivered no output tensor in time."""
    return IMX500NetworkError(
        model_path,
        f"the camera delivered frames for {seconds:g} s but no CnnOutputTensor in their metadata: the network did not start "
        "(the first upload of a network takes up to a few minutes; a network that does not fit the sensor never starts)",
        "wait for the upload (picamera2 shows a progress bar), raise the timeout, or re-convert the network; "
        "`dmesg | grep -i imx500` shows the firmware's messages",
    )

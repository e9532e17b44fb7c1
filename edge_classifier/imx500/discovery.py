"""Find the AI Camera's IMX500 sensor, its firmware and models, and picamera2's IMX500 support, without opening it.

- The sensor: picamera2's ``IMX500.__init__`` walks ``/sys/class/video4linux/v4l-subdev{i}/device`` and takes the
  one whose ``driver/module`` link names ``imx500``; it then opens ``/dev/v4l-subdev{i}`` read-write (the ``video``
  group on Raspberry Pi OS) and names the camera by the ``device`` link's last part (``10-001a``).
- The firmware the kernel loads when the camera starts: ``/lib/firmware/imx500_loader.fpk`` and
  ``imx500_firmware.fpk`` (apt ``imx500-firmware``, part of ``imx500-all``).
- Raspberry Pi's networks: ``/usr/share/imx500-models/*.rpk`` (apt ``imx500-models``); ``imx500-package`` to make
  one from ``packerOut.zip`` is in ``imx500-tools``.
- picamera2's IMX500 support, ``picamera2.devices.imx500``, from apt ``python3-picamera2``.

Every function takes ``root`` so that tests build these trees in a temporary folder.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from ..sysfacts import Identity, dpkg_installed, node_state, system_module_path, under, venv_hides_system_packages

FIRMWARE = ("/lib/firmware/imx500_loader.fpk", "/lib/firmware/imx500_firmware.fpk")
MODELS_DIR = "/usr/share/imx500-models"
PACKAGES = ("imx500-all", "imx500-firmware", "imx500-models", "imx500-tools", "python3-picamera2")
SUPPORT_MODULE = "picamera2.devices.imx500"
MAX_SUBDEVS = 32  # picamera2 looks at v4l-subdev0..31
FIRMWARE_FIX = "sudo apt install imx500-all (firmware, models and imx500-package), then reboot"
PERMISSION_FIX = "sudo usermod -aG video $USER, then log out and in (the sensor's /dev/v4l-subdevN belongs to the video group)"
ATTACH_FIX = (
    "power off, connect the AI Camera's ribbon cable (contacts the right way round), power on, and check "
    "`rpicam-hello --list-cameras` lists an imx500; keep camera_auto_detect=1 in /boot/firmware/config.txt"
)


@dataclass(frozen=True)
class IMX500Camera:
    """One IMX500 sensor seen in sysfs.

    Attributes:
        subdev: ``v4l-subdevN``.
        node: ``/dev/v4l-subdevN``.
        device_id: the I2C device name (``10-001a``) picamera2 matches cameras by.
        accessible: this user may open the node read-write.
        owner: ``user:group mode`` of the node.
        problem: empty when usable as far as sysfs tells, else why not.
        fix: what to do about ``problem``.
    """

    subdev: str
    node: str
    device_id: str
    accessible: bool
    owner: str = ""
    problem: str = ""
    fix: str = ""

    def describe(self) -> str:
        """One line for ``edge-classifier devices``."""
        return f"imx500   {self.node} ({self.device_id})  ({self.owner or 'no node'})  {self.problem or 'ready'}"


def find_imx500(root: str | Path = "/", identity: Identity | None = None) -> list[IMX500Camera]:
    """IMX500 sensors, in picamera2's search order."""
    found = []
    for i in range(MAX_SUBDEVS):
        dev_dir = under(root, f"/sys/class/video4linux/v4l-subdev{i}/device")
        module = dev_dir / "driver" / "module"
        if not (module.is_symlink() and "imx500" in os.readlink(module)):
            continue
        device_id = os.path.basename(os.readlink(dev_dir)) if dev_dir.is_symlink() else dev_dir.name
        shown = f"/dev/v4l-subdev{i}"
        state = node_state(under(root, shown), identity)
        problem = fix = ""
        if not state.exists:
            problem, fix = f"{shown} is missing", "check udev (containers: pass --device /dev/v4l-subdev* and /dev/media*)"
        elif not state.accessible:
            problem, fix = f"no read/write permission on {shown}", PERMISSION_FIX
        found.append(IMX500Camera(f"v4l-subdev{i}", shown, device_id, state.accessible, state.owner, problem, fix))
    return found


def firmware(root: str | Path = "/") -> dict[str, int | None]:
    """Each firmware file and its size (None when missing)."""
    out: dict[str, int | None] = {}
    for path in FIRMWARE:
        p = under(root, path)
        out[path] = p.stat().st_size if p.is_file() else None
    return out


def models(root: str | Path = "/") -> list[str]:
    """The ``.rpk`` networks in Raspberry Pi's models folder (absolute paths as on the device)."""
    base = under(root, MODELS_DIR)
    return sorted(f"{MODELS_DIR}/{p.name}" for p in base.glob("*.rpk")) if base.is_dir() else []


def packages(root: str | Path = "/") -> dict[str, str]:
    """The IMX500 apt packages dpkg lists as installed (name -> version)."""
    return dpkg_installed(root, PACKAGES)


@dataclass(frozen=True)
class SupportStatus:
    """picamera2's IMX500 support as this interpreter sees it.

    Attributes:
        importable: ``picamera2.devices.imx500`` imports.
        error: why not.
        hidden: picamera2 is installed by apt but this virtualenv hides system packages.
        too_old: picamera2 imports but has no ``devices.imx500`` (older than 0.3.19).
    """

    importable: bool
    error: str = ""
    hidden: bool = False
    too_old: bool = False


def probe_support(root: str | Path = "/") -> SupportStatus:
    """Import picamera2's IMX500 module (or say why it does not import)."""
    try:
        base = importlib.util.find_spec("picamera2")
    except (ImportError, ValueError):
        base = None
    if base is None:
        hidden = system_module_path(root, "picamera2") is not None and venv_hides_system_packages()
        return SupportStatus(False, "picamera2 is not installed", hidden=hidden)
    try:
        importlib.import_module(SUPPORT_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("picamera2"):
            return SupportStatus(False, f"picamera2 has no IMX500 support ({exc})", too_old=True)
        return SupportStatus(False, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - a broken native dependency (libcamera, libarchive) can raise anything
        return SupportStatus(False, f"{type(exc).__name__}: {exc}")
    return SupportStatus(True)

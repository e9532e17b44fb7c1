"""Turn "the Hailo cannot be used" into the one HailoError that names its cause and its fix.

HailoRT's Python errors carry the status that caused them: ``pyhailort.ExceptionWrapper`` turns a
``HailoRTStatusException`` into a class for a few statuses (``HailoRTHEFNotCompatibleWithDevice``,
``HailoRTInvalidHEFException``, ``HailoRTDriverOperationFailedException``, ``HailoRTTimeout``, ...) and into a
plain ``HailoRTException("libhailort failed with error: 76 (HAILO_INVALID_DRIVER_VERSION)")`` for the rest
(statuses from ``hailort.h``: 64 DRIVER_NOT_INSTALLED, 73 DEVICE_IN_USE, 74 OUT_OF_PHYSICAL_DEVICES, 76
INVALID_DRIVER_VERSION, 91 HEF_FILE_CORRUPTED, 93 HEF_NOT_COMPATIBLE_WITH_DEVICE). The status says *what*
failed; a :class:`Snapshot` of sysfs, dpkg and the binding says *why* (no device, no driver, no permission,
versions apart, both package families installed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import (
    EdgeClassifierError,
    HailoBusyError,
    HailoDriverError,
    HailoError,
    HailoModelMismatchError,
    HailoNotFoundError,
    HailoPackageConflictError,
    HailoPermissionError,
    HailoVersionError,
    ModelError,
)
from ..sysfacts import Identity
from .discovery import ATTACH_FIX, DRIVER_FIX, HailoDevice, driver, find_hailos
from .hef import CHIP_NAMES, HAILO10H, fits
from .runtime import BindingStatus, families, packages, probe_binding, version_fix, version_mismatch

_STATUS = re.compile(r"\((HAILO_[A-Z0-9_]+)\)|\b(HAILO_[A-Z0-9_]+)\b")
# pyhailort's exception classes for the statuses it names (pyhailort.py, ExceptionWrapper.create_exception_from_status).
_CLASS_STATUS = {
    "HailoRTHEFNotCompatibleWithDevice": "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE",
    "HailoRTInvalidHEFException": "HAILO_INVALID_HEF",
    "HailoRTDriverOperationFailedException": "HAILO_DRIVER_OPERATION_FAILED",
    "HailoRTPCIeDriverException": "HAILO_DRIVER_OPERATION_FAILED",
    "HailoRTTimeout": "HAILO_TIMEOUT",
    "HailoRTNotFoundException": "HAILO_NOT_FOUND",
    "HailoRTInvalidOperationException": "HAILO_INVALID_OPERATION",
    "HailoCommunicationClosedException": "HAILO_COMMUNICATION_CLOSED",
}
CONFLICT_FIX = (
    "keep the family of your board and remove the other: for an AI HAT+ / AI Kit (Hailo-8/8L) "
    "`sudo apt remove --purge hailo-h10-all` then `sudo apt install --reinstall hailo-all`; for an AI HAT+ 2 "
    "(Hailo-10H) `sudo apt remove --purge hailo-all` then `sudo apt install --reinstall hailo-h10-all`; reboot"
)


@dataclass(frozen=True)
class Snapshot:
    """What the system shows about Hailo at one moment.

    Attributes:
        devices: Hailo PCIe functions (see :func:`~edge_classifier.hailo.discovery.find_hailos`).
        driver: the loaded driver module and its version, or None.
        binding: HailoRT's Python binding.
        packages: Hailo apt packages installed (name -> version).
        root: the filesystem root probed.
    """

    devices: tuple[HailoDevice, ...]
    driver: tuple[str, str | None] | None
    binding: BindingStatus
    packages: dict[str, str]
    root: str = "/"

    @classmethod
    def take(cls, root: str = "/", identity: Identity | None = None, binding: BindingStatus | None = None) -> Snapshot:
        """Probe now (the binding is imported unless given)."""
        return cls(tuple(find_hailos(root, identity)), driver(root), binding or probe_binding(root), packages(root), root)

    @property
    def library_version(self) -> str | None:
        """HailoRT's version: the binding's, else the apt package's."""
        if self.binding.version:
            return self.binding.version
        for name in ("hailort", "h10-hailort", "python3-hailort", "python3-h10-hailort"):
            if name in self.packages:
                return self.packages[name]
        return None


def status_of(exc: BaseException) -> str | None:
    """The HailoRT status an exception stands for (``HAILO_INVALID_DRIVER_VERSION``), from its text or class."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            break
        m = _STATUS.search(str(seen))
        if m:
            return m.group(1) or m.group(2)
        name = type(seen).__name__
        if name in _CLASS_STATUS:
            return _CLASS_STATUS[name]
        seen = seen.__cause__ or seen.__context__
    return None


def _thing(device: str) -> str:
    return f"Hailo (device={device!r})"


def preflight(snapshot: Snapshot, device: str = "hailo", index: int | None = None) -> HailoError | None:
    """The reason the Hailo cannot be opened that the system already shows, or None when nothing stands in the way.

    Checked in the order a user fixes them: two package families, no device, no driver, no permission, versions.
    """
    fams = families(snapshot.packages)
    if len(fams) > 1:
        listed = ", ".join(f"{p} {v}" for p, v in sorted(snapshot.packages.items()))
        return HailoPackageConflictError(
            "Hailo packages",
            f"both families are installed ({listed}): hailo-all (Hailo-8/8L) and hailo-h10-all (Hailo-10H) ship "
            "different HailoRT versions and drivers that cannot share one system",
            CONFLICT_FIX,
        )
    devices = list(snapshot.devices)
    if index is not None:
        devices = [d for d in devices if d.index == index]
    if not devices:
        if snapshot.devices:
            found = ", ".join(d.device_string for d in snapshot.devices)
            return HailoNotFoundError(_thing(device), f"no Hailo device with that number (found {found})", f"use one of: {found}")
        return HailoNotFoundError(
            _thing(device), "no Hailo device is attached (no PCIe function 1e60:2864 or 1e60:45c4)", ATTACH_FIX
        )
    dev = devices[0]
    if dev.node is None:
        return HailoDriverError(f"{_thing(device)} at PCI {dev.pci}", dev.problem, dev.fix or DRIVER_FIX)
    if not dev.accessible:
        return HailoPermissionError(f"{_thing(device)} at {dev.node}", f"{dev.problem} (it is {dev.owner})", dev.fix)
    drv_version = snapshot.driver[1] if snapshot.driver else None
    mismatch = version_mismatch(snapshot.library_version, drv_version)
    if mismatch:
        return HailoVersionError(_thing(device), mismatch, version_fix(fams[0] if fams else "hailo-all"))
    return None


def model_mismatch(model_path: str, hef_chip: str | None, device_chip: str | None) -> HailoModelMismatchError | None:
    """The error for a HEF compiled for a chip that cannot run it on this device, or None."""
    ok, _ = fits(hef_chip, device_chip)
    if ok or hef_chip is None or device_chip is None:
        return None
    want = CHIP_NAMES[hef_chip]
    have = CHIP_NAMES[device_chip]
    suffix = {"hailo8": "_h8", "hailo8l": "_h8l", HAILO10H: "_h10"}[device_chip]
    return HailoModelMismatchError(
        model_path,
        f"was compiled for the {want}, but the attached device is a {have}, which cannot run it",
        f"use the same model compiled for the {have} (Raspberry Pi names it *{suffix}.hef, in /usr/share/hailo-models "
        f"or Hailo's model zoo), or run the .tflite on the CPU with device='cpu'",
    )


def diagnose_open_failure(
    exc: BaseException, model_path: str, snapshot: Snapshot, device: str = "hailo", device_chip: str | None = None
) -> EdgeClassifierError:
    """The error for an exception HailoRT raised while creating the VDevice or configuring the model.

    Args:
        exc: what ``hailo_platform`` raised.
        model_path: the .hef, for model errors.
        snapshot: the system as it is now.
        device: the device string asked for.
        device_chip: the attached chip when known (``hailortcli``), for the mismatch message.
    """
    status = status_of(exc)
    text = str(exc).strip() or type(exc).__name__
    if status == "HAILO_HEF_NOT_COMPATIBLE_WITH_DEVICE" or status == "HAILO_INVALID_DEVICE_ARCHITECTURE":
        have = f" ({CHIP_NAMES[device_chip]})" if device_chip in CHIP_NAMES else ""
        return HailoModelMismatchError(
            model_path,
            f"HailoRT says it was compiled for another Hailo chip than the attached one{have} ({text})",
            "use the same model compiled for your chip (*_h8l.hef for the Hailo-8L, *_h8.hef for the Hailo-8, *_h10.hef "
            "for the Hailo-10H), or run the .tflite on the CPU",
        )
    if status in ("HAILO_INVALID_HEF", "HAILO_HEF_FILE_CORRUPTED", "HAILO_HEF_NOT_SUPPORTED"):
        why = (
            "was compiled by a Dataflow Compiler newer than this HailoRT"
            if status == "HAILO_HEF_NOT_SUPPORTED"
            else "is corrupt or truncated"
        )
        return ModelError(
            model_path,
            f"HailoRT cannot read it: it {why} ({text})",
            "re-download the .hef (compare its size and sha256), or upgrade HailoRT: sudo apt full-upgrade",
        )
    found = preflight(snapshot, device)
    if status == "HAILO_INVALID_DRIVER_VERSION" or status in ("HAILO_DRIVER_INVALID_RESPONSE", "HAILO_DRIVER_INVALID_IOCTL"):
        drv = snapshot.driver[1] if snapshot.driver else "unknown"
        fams = families(snapshot.packages)
        return HailoVersionError(
            _thing(device),
            f"the HailoRT library ({snapshot.library_version or 'unknown'}) and the driver ({drv}) are different "
            f"versions; HailoRT refuses the device ({text})",
            version_fix(fams[0] if fams else "hailo-all"),
        )
    if isinstance(
        found, (HailoPackageConflictError, HailoNotFoundError, HailoDriverError, HailoPermissionError, HailoVersionError)
    ):
        return found
    if status in ("HAILO_DEVICE_IN_USE", "HAILO_OUT_OF_PHYSICAL_DEVICES"):
        return HailoBusyError(
            _thing(device),
            f"the device is present and this user may open it, but another process holds it ({text})",
            "stop the other program (another script, rpicam-apps with a Hailo post-process, a hailo-ollama service): "
            "find it with `fuser -v /dev/hailo0`; or share the device through HailoRT's multi-process service",
        )
    if status == "HAILO_DRIVER_NOT_INSTALLED":
        return HailoDriverError(_thing(device), f"HailoRT finds no Hailo driver ({text})", DRIVER_FIX)
    return HailoError(
        _thing(device),
        f"HailoRT could not open it ({text})",
        "see ~/hailort.log and `dmesg | grep -i hailo`; `hailortcli fw-control identify` tests the device on its own",
    )

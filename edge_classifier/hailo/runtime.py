"""HailoRT on this machine: its Python binding, its version against the driver's, its apt packages, ``hailortcli``.

- The binding ``hailo_platform`` comes from apt (``python3-hailort``), not PyPI, into
  ``/usr/lib/python3/dist-packages``: a virtualenv made without ``--system-site-packages`` cannot see it.
  Its ``__init__`` refuses to import when its ``_pyhailort`` extension is another version (``ImportError:
  _pyhailort version (...) does not match pyhailort version (...)``).
- HailoRT opens a device only when the driver is exactly its own version (``HailoRTDriver``: "Driver version
  (X) is different from library version (Y)", ``HAILO_INVALID_DRIVER_VERSION(76)``), so the two are compared here
  from the binding's ``__version__`` and the module's ``/sys/module/hailo_pci/version``.
- ``hailo-all`` (HailoRT 4.x, Hailo-8/8L) and ``hailo-h10-all`` (HailoRT 5.x, Hailo-10H) cannot be installed
  together; dpkg's status tells whether both families are there.
- ``hailortcli fw-control identify`` prints ``Device Architecture: HAILO8L``: the only way to tell a Hailo-8L from
  a Hailo-8 (the PCI id is the same). picamera2's ``devices/hailo/hailo.py`` (``hailo_architecture()``) reads it
  the same way.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType

from ..errors import EdgeClassifierError, HailoRuntimeMissingError, SystemPackageHiddenError
from ..sysfacts import VENV_FIX, dpkg_installed, system_module_path, venv_hides_system_packages
from .hef import normalise_chip

BINDING = "hailo_platform"
#: apt packages of the two families (Raspberry Pi's repository); the metapackage names are the documented ones.
FAMILY_8 = ("hailo-all", "hailort", "hailo-dkms", "hailort-pcie-driver", "python3-hailort")
FAMILY_10H = ("hailo-h10-all", "h10-hailort", "h10-hailort-pcie-driver", "python3-h10-hailort")
INSTALL_FIX = (
    "sudo apt install hailo-all (Hailo-8/8L: AI HAT+, AI Kit) or sudo apt install hailo-h10-all (Hailo-10H: AI HAT+ 2); "
    "hailo_platform is not on PyPI"
)
_ARCH_LINE = re.compile(r"Device Architecture:\s*(\S+)")
_FW_LINE = re.compile(r"Firmware Version:\s*(\S+)")
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class BindingStatus:
    """HailoRT's Python binding as this interpreter sees it.

    Attributes:
        importable: ``import hailo_platform`` works.
        version: its ``__version__`` (the HailoRT library version), when it imports.
        location: where it was imported from.
        error: why it does not import.
        hidden: it is installed system-wide but this virtualenv hides system packages.
    """

    importable: bool
    version: str | None = None
    location: str | None = None
    error: str = ""
    hidden: bool = False


def probe_binding(root: str | Path = "/") -> BindingStatus:
    """Import ``hailo_platform`` (or say why it does not import)."""
    try:
        spec = importlib.util.find_spec(BINDING)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        hidden = system_module_path(root, BINDING) is not None and venv_hides_system_packages()
        return BindingStatus(False, error="not installed", hidden=hidden)
    try:
        module = importlib.import_module(BINDING)
    except Exception as exc:  # noqa: BLE001 - a broken native binding can raise anything on import
        return BindingStatus(False, error=f"{type(exc).__name__}: {exc}")
    version = getattr(module, "__version__", None) or _dist_version()
    return BindingStatus(True, str(version) if version else None, str(getattr(module, "__file__", "") or ""))


def _dist_version() -> str | None:
    for dist in ("hailort", "hailo_platform"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def binding_error(status: BindingStatus) -> EdgeClassifierError | None:
    """Why ``hailo_platform`` cannot be used (SystemPackageHiddenError, HailoRuntimeMissingError), or None."""
    if status.importable:
        return None
    if status.hidden:
        return SystemPackageHiddenError(
            BINDING,
            "is installed system-wide by apt (python3-hailort) but this virtualenv was made without system packages",
            VENV_FIX,
        )
    if status.error == "not installed":
        return HailoRuntimeMissingError(BINDING, "HailoRT's Python binding is not installed", INSTALL_FIX)
    fix = INSTALL_FIX
    if "does not match" in status.error:
        fix = "the binding and its _pyhailort extension are different versions: sudo apt install --reinstall python3-hailort"
    return HailoRuntimeMissingError(BINDING, f"is installed but does not import ({status.error})", fix)


def import_binding(root: str | Path = "/") -> ModuleType:
    """The ``hailo_platform`` module.

    Raises:
        SystemPackageHiddenError: apt installed it, but this virtualenv hides system packages.
        HailoRuntimeMissingError: it is not installed, or it does not import (the message says why).
    """
    error = binding_error(probe_binding(root))
    if error is not None:
        raise error
    return importlib.import_module(BINDING)


def packages(root: str | Path = "/") -> dict[str, str]:
    """The Hailo apt packages dpkg lists as installed (name -> version)."""
    return dpkg_installed(root, FAMILY_8 + FAMILY_10H)


def families(pkgs: dict[str, str]) -> list[str]:
    """Which Hailo package families are installed: ``hailo-all``, ``hailo-h10-all`` or both."""
    found = []
    if any(p in pkgs for p in FAMILY_8):
        found.append("hailo-all")
    if any(p in pkgs for p in FAMILY_10H):
        found.append("hailo-h10-all")
    return found


def version_tuple(text: str | None) -> tuple[int, int, int] | None:
    """``4.20.0`` (or ``4.20.0-1``) -> (4, 20, 0)."""
    m = _VERSION.search(text or "")
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def version_mismatch(library: str | None, driver: str | None) -> str | None:
    """Why HailoRT will refuse this driver (major.minor.revision must be equal), or None when they match or are unknown."""
    lib, drv = version_tuple(library), version_tuple(driver)
    if lib is None or drv is None or lib == drv:
        return None
    return (
        f"the driver is version {'.'.join(map(str, drv))} but the HailoRT library is {'.'.join(map(str, lib))}: "
        "HailoRT opens the device only when they are equal (HAILO_INVALID_DRIVER_VERSION)"
    )


def version_fix(family: str) -> str:
    """How to bring the HailoRT library and the driver to one version."""
    meta = "hailo-h10-all" if family == "hailo-h10-all" else "hailo-all"
    return (
        f"sudo apt update && sudo apt full-upgrade, then sudo apt install --reinstall dkms {meta} and reboot "
        "(remove any Hailo .deb installed by hand first, so apt owns both halves)"
    )


@dataclass(frozen=True)
class Identify:
    """What ``hailortcli fw-control identify`` says (empty when it is missing or fails)."""

    arch: str | None = None
    firmware: str | None = None
    error: str = ""
    raw: str = field(default="", repr=False)


def identify(timeout: float = 10.0) -> Identify:
    """Ask ``hailortcli fw-control identify`` for the device architecture (and firmware version).

    The command opens the device, so it fails while another process holds it; that is reported, not raised.
    """
    exe = shutil.which("hailortcli")
    if exe is None:
        return Identify(error="hailortcli is not installed")
    try:
        proc = subprocess.run([exe, "fw-control", "identify"], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Identify(error=f"hailortcli did not answer ({exc})")
    out = proc.stdout + proc.stderr
    arch = _ARCH_LINE.search(out)
    fw = _FW_LINE.search(out)
    if proc.returncode != 0 or arch is None:
        last = next((ln.strip() for ln in reversed(out.splitlines()) if ln.strip()), "no output")
        return Identify(error=f"hailortcli fw-control identify failed (status {proc.returncode}): {last}", raw=out)
    return Identify(normalise_chip(arch.group(1)), fw.group(1) if fw else None, raw=out)

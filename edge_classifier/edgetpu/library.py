"""libedgetpu: its file name per OS, whether it loads, and its own version and device list (through ctypes).

The C API (``tflite/public/edgetpu_c.h``) exports ``edgetpu_version()``, which returns
``"BuildLabel(...), RuntimeVersion(N)"``, and ``edgetpu_list_devices(size_t*)`` /
``edgetpu_free_devices()``; pycoral wraps the same three calls, so this needs no pycoral.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_LIBRARY = "EDGE_CLASSIFIER_LIBEDGETPU"
_NAMES = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}
_RUNTIME_VERSION = re.compile(r"RuntimeVersion\((\d+)\)")
_PACKAGES = ("libedgetpu1-std", "libedgetpu1-max", "libedgetpu1-legacy-std", "libedgetpu1-legacy-max")
# Google's own 16.0 build links TF 2.5; runtimes from 2.12 on crash with it (google-coral/edgetpu#812).
FIRST_RUNTIME_NEEDING_NEW_BUILD = (2, 12)


def library_name(system: str | None = None) -> str:
    """The libedgetpu file to load: ``$EDGE_CLASSIFIER_LIBEDGETPU`` if set, else the name for this OS."""
    if system is None and os.environ.get(ENV_LIBRARY):
        return os.environ[ENV_LIBRARY]
    return _NAMES.get(system or platform.system(), "libedgetpu.so.1")


def install_fix(system: str | None = None) -> str:
    """How to install libedgetpu on this OS."""
    system = system or platform.system()
    if system == "Darwin":
        return (
            "install the Edge TPU runtime for macOS (libedgetpu.1.dylib) from coral.ai/software, or build google-coral/libedgetpu"
        )
    if system == "Windows":
        return "install the Edge TPU runtime for Windows (edgetpu_runtime, which installs edgetpu.dll) from coral.ai/software"
    return (
        "install libedgetpu: add the Coral apt repository and `sudo apt install libedgetpu1-std` "
        "(pairs with tflite-runtime <= 2.11), "
        "or, for ai-edge-litert / tflite-runtime >= 2.12, a libedgetpu built against a newer TF (feranick/libedgetpu releases, "
        "versions 16.0tf2.x); or set EDGE_CLASSIFIER_LIBEDGETPU to the library's path"
    )


@dataclass(frozen=True)
class LibraryStatus:
    """What is known about libedgetpu on this machine.

    Attributes:
        name: the name or path tried.
        loaded: the library could be loaded.
        path: where the loader found it (None when unknown).
        error: the loader's error text when it could not be loaded.
        version: ``edgetpu_version()`` text, when exported.
        runtime_version: the N of ``RuntimeVersion(N)``: the newest model package it runs.
        devices: libedgetpu's own device list as ``(type, path)``; None when not asked or not exported.
        package: installed Debian package and version (``libedgetpu1-std 16.0tf2.17.1-1``), if any.
    """

    name: str
    loaded: bool
    path: str | None = None
    error: str = ""
    version: str | None = None
    runtime_version: int | None = None
    devices: tuple[tuple[str, str], ...] | None = None
    package: tuple[str, str] | None = field(default=None)

    @property
    def undefined_symbol(self) -> bool:
        """The file exists but was built against another TF/ABI (``undefined symbol``)."""
        return "undefined symbol" in self.error or "Symbol not found" in self.error


class _EdgeTpuDevice(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("path", ctypes.c_char_p)]


def parse_runtime_version(text: str | None) -> int | None:
    """``RuntimeVersion(14)`` -> 14."""
    m = _RUNTIME_VERSION.search(text or "")
    return int(m.group(1)) if m else None


def _call_version(lib: Any) -> str | None:
    try:
        fn = lib.edgetpu_version
    except AttributeError:
        return None
    fn.restype = ctypes.c_char_p
    fn.argtypes = []
    raw = fn()
    return raw.decode("utf-8", "replace") if raw else None


def _call_list_devices(lib: Any) -> tuple[tuple[str, str], ...] | None:
    try:
        list_fn, free_fn = lib.edgetpu_list_devices, lib.edgetpu_free_devices
    except AttributeError:
        return None
    list_fn.restype = ctypes.POINTER(_EdgeTpuDevice)
    list_fn.argtypes = [ctypes.POINTER(ctypes.c_size_t)]
    free_fn.restype = None
    free_fn.argtypes = [ctypes.POINTER(_EdgeTpuDevice)]
    count = ctypes.c_size_t(0)
    ptr = list_fn(ctypes.byref(count))
    if not ptr:
        return ()
    try:
        kinds = {0: "pci", 1: "usb"}
        return tuple((kinds.get(ptr[i].type, str(ptr[i].type)), (ptr[i].path or b"").decode()) for i in range(count.value))
    finally:
        free_fn(ptr)


def probe_library(name: str | None = None, *, list_devices: bool = True, root: str | Path = "/") -> LibraryStatus:
    """Load libedgetpu with ctypes (as the runtimes' ``load_delegate`` will) and ask it what it knows.

    Listing devices enumerates USB and PCIe but opens nothing, so it is safe while another process
    uses the Edge TPU.
    """
    name = name or library_name()
    package = installed_package(root)
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        return LibraryStatus(name, False, error=str(exc), package=package)
    path = _loaded_path(name)
    version = _call_version(lib)
    devices = _call_list_devices(lib) if list_devices else None
    return LibraryStatus(name, True, path, "", version, parse_runtime_version(version), devices, package)


def _loaded_path(name: str) -> str | None:
    if os.path.sep in name:
        return name
    found = ctypes.util.find_library("edgetpu")
    return found or None


def installed_package(root: str | Path = "/") -> tuple[str, str] | None:
    """The installed libedgetpu Debian package and its version, read from dpkg's status file."""
    status = Path(root) / "var/lib/dpkg/status"
    try:
        text = status.read_text(errors="replace")
    except OSError:
        return None
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(" "))
        if fields.get("Package") in _PACKAGES and "installed" in fields.get("Status", "").split():
            return fields["Package"], fields.get("Version", "?")
    return None


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", text)[:2]
    return tuple(int(p) for p in parts)


def runtime_mismatch(runtime: str, runtime_version: str, package: tuple[str, str] | None) -> str | None:
    """Why this TFLite runtime and this libedgetpu build probably do not fit together, or None.

    Google's own libedgetpu 16.0 (and older) is linked against TF 2.5; TFLite runtimes from 2.12 on
    crash (segfault) when they load it. Community builds, merged upstream, carry ``16.0tfX.Y.Z``.
    This rule is inferred from google-coral/edgetpu#812; it only warns.
    """
    if package is None:
        return None
    pkg_version = package[1]
    if "tf" in pkg_version.lower():
        return None
    if runtime == "ai-edge-litert" or _version_tuple(runtime_version) >= FIRST_RUNTIME_NEEDING_NEW_BUILD:
        return (
            f"{package[0]} {pkg_version} is Google's build linked against TF 2.5, and {runtime} {runtime_version} "
            "crashes when it loads it (google-coral/edgetpu#812)"
        )
    return None


MISMATCH_FIX = (
    "install a libedgetpu built for this runtime (feranick/libedgetpu releases, 16.0tf2.x matching your runtime), "
    "or use tflite-runtime 2.11 with Google's libedgetpu1-std 16.0"
)

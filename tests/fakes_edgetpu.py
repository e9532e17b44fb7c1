"""Stand-ins for Edge TPU hardware that cannot exist on a CI machine.

- :class:`FakeSysfs` builds a /sys, /dev and /proc tree in a temporary folder, the way a USB
  Accelerator or an M.2 card shows up there (ids, device numbers, node permission bits, the apex
  class and module).
- :func:`build_fake_libedgetpu` compiles (gcc) a tiny shared library that exports libedgetpu's C
  entry points and, like the real one, returns a NULL delegate without calling the error handler.
  The runtime's real ``load_delegate`` then raises its real ``ValueError``; with ``undefined_symbol``
  the real loader raises the real ``OSError: ... undefined symbol``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

_FAKE_LIB_C = r"""
#include <stddef.h>
#include <stdlib.h>
struct edgetpu_device { int type; const char* path; };
static struct edgetpu_device devices[1] = {{1, "/sys/bus/usb/devices/2-1"}};
void* tflite_plugin_create_delegate(char** keys, char** values, size_t n, void (*report)(const char*)) {
  /* libedgetpu returns NULL on every open failure and never calls report(). */
  (void)keys; (void)values; (void)n; (void)report;
  return NULL;
}
void tflite_plugin_destroy_delegate(void* d) { (void)d; }
const char* edgetpu_version(void) {
  return "BuildLabel(COMPILER=6.3.0 20170516,DATE=redacted,TIME=redacted), RuntimeVersion(14)";
}
struct edgetpu_device* edgetpu_list_devices(size_t* n) {
  if (getenv("FAKE_EDGETPU_LISTS_USB")) { *n = 1; return devices; }
  *n = 0; return NULL;
}
void edgetpu_free_devices(struct edgetpu_device* d) { (void)d; }
"""

_UNDEFINED_C = r"""
extern int absl_str_format_internal_dispatch(int);
int tflite_plugin_create_delegate(void) { return absl_str_format_internal_dispatch(1); }
"""


def build_fake_libedgetpu(folder: Path, *, undefined_symbol: bool = False) -> Path:
    """Compile a FakeLibedgetpu shared library into ``folder``; fails when no C compiler exists (CI installs gcc)."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.fail("no C compiler: the Edge TPU tests build a fake libedgetpu with gcc (apt-get install gcc)")
    name = "libedgetpu_undefined.so" if undefined_symbol else "libedgetpu.so.1"
    src = folder / (name + ".c")
    src.write_text(_UNDEFINED_C if undefined_symbol else _FAKE_LIB_C)
    out = folder / name
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(out), str(src)], check=True, timeout=60, capture_output=True)
    return out


class FakeSysfs:
    """A fake root with the sysfs, /dev and /proc entries Edge TPUs create."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "sys/bus/usb/devices").mkdir(parents=True, exist_ok=True)
        (root / "sys/bus/pci/devices").mkdir(parents=True, exist_ok=True)
        (root / "dev").mkdir(exist_ok=True)

    def add_usb(self, name: str, bus: int, dev: int, ids: tuple[str, str] = ("18d1", "9302"), mode: int | None = 0o666) -> str:
        """A USB device; ``mode`` None leaves out its /dev/bus/usb node. Returns the node path."""
        entry = self.root / "sys/bus/usb/devices" / name
        entry.mkdir(parents=True)
        for field, value in (("idVendor", ids[0]), ("idProduct", ids[1]), ("busnum", str(bus)), ("devnum", str(dev))):
            (entry / field).write_text(value + "\n")
        node = f"/dev/bus/usb/{bus:03d}/{dev:03d}"
        if mode is not None:
            path = self.root / node.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
            path.chmod(mode)
        return node

    def add_other_usb(self, name: str) -> None:
        """A USB device that is not an Edge TPU (a hub), and an interface entry without ids."""
        self.add_usb(name, 1, 1, ("1d6b", "0002"))
        (self.root / "sys/bus/usb/devices" / f"{name}:1.0").mkdir()

    def add_pci(self, address: str, apex: int | None = None, mode: int = 0o660) -> None:
        """A PCIe Edge TPU function; ``apex`` N binds it to /sys/class/apex/apex_N and /dev/apex_N."""
        fn = self.root / "sys/bus/pci/devices" / address
        fn.mkdir(parents=True)
        (fn / "vendor").write_text("0x1ac1\n")
        (fn / "device").write_text("0x089a\n")
        if apex is not None:
            cls = self.root / "sys/class/apex" / f"apex_{apex}"
            cls.mkdir(parents=True)
            (cls / "device").symlink_to(fn)
            node = self.root / "dev" / f"apex_{apex}"
            node.write_bytes(b"")
            node.chmod(mode)

    def load_apex_module(self) -> None:
        """/sys/module/apex exists once the driver is loaded."""
        (self.root / "sys/module/apex").mkdir(parents=True)

    def add_holder(self, pid: int, node: str) -> None:
        """/proc/PID/fd/3 pointing at ``node``, as for a process that holds the device open."""
        fd = self.root / "proc" / str(pid) / "fd"
        fd.mkdir(parents=True)
        os.symlink(self.root / node.lstrip("/"), fd / "3")

"""``edge-classifier devices``: the Edge TPUs this machine shows, and whether libedgetpu loads.

Exit status: 0 when at least one Edge TPU is usable as far as probing can tell (present, this user
may open it, libedgetpu loads); 1 otherwise, so scripts can write ``edge-classifier devices && ...``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from typing import Any

from . import EXIT_ERROR, EXIT_OK


@dataclass(frozen=True)
class EdgeTpuReport:
    """Devices from sysfs and libedgetpu's status, probed once."""

    devices: tuple[Any, ...]
    library: Any
    apex_module: bool

    @property
    def usable(self) -> list[Any]:
        """Devices with no known problem (only when libedgetpu loads)."""
        return [d for d in self.devices if not d.problem] if self.library.loaded else []


def probe(root: str | None = None) -> EdgeTpuReport:
    """Probe sysfs, /dev and libedgetpu (``root`` defaults to ``$EDGE_CLASSIFIER_SYSROOT`` or ``/``)."""
    from ..edgetpu.discovery import apex_module_loaded, find_edgetpus, sysroot
    from ..edgetpu.library import probe_library

    root = root or sysroot()
    return EdgeTpuReport(tuple(find_edgetpus(root)), probe_library(root=root), apex_module_loaded(root))


def library_lines(report: EdgeTpuReport) -> list[str]:
    """Human lines about libedgetpu: where it is and what it says, or why it does not load and the fix."""
    from ..edgetpu.library import install_fix

    lib = report.library
    if not lib.loaded:
        why = "built for another TensorFlow Lite (undefined symbol)" if lib.undefined_symbol else "not found"
        lines = [f"libedgetpu: {lib.name} {why}: {lib.error}", f"  fix: {install_fix()}"]
        if lib.package:
            lines.insert(1, f"  dpkg says {lib.package[0]} {lib.package[1]} is installed: check `ldconfig -p | grep edgetpu`")
        return lines
    lines = [f"libedgetpu: {lib.path or lib.name} loads; {lib.version or 'no edgetpu_version()'}"]
    if lib.package:
        lines.append(f"  package: {lib.package[0]} {lib.package[1]}")
    if lib.devices is not None:
        listed = ", ".join(f"{kind} {path}" for kind, path in lib.devices) or "none"
        lines.append(f"  its own device list: {listed}")
    return lines


def device_lines(report: EdgeTpuReport) -> list[str]:
    """Human lines, one per Edge TPU (with the fix for each problem), or why none was found."""
    from ..edgetpu.diagnose import ATTACH_FIX

    if not report.devices:
        return ["Edge TPUs: none found (no USB 1a6e:089a / 18d1:9302, no PCIe 1ac1:089a)", f"  fix: {ATTACH_FIX}"]
    lines = ["Edge TPUs:"]
    for d in report.devices:
        lines.append(f"  {d.describe()}")
        if d.kind == "usb" and not d.initialised and not d.problem:
            lines.append("    (bootloader id 1a6e:089a: normal until a program first opens it)")
        if d.fix:
            lines.append(f"    fix: {d.fix}")
    return lines


def register(sub: Any) -> None:
    """Add the ``devices`` subcommand."""
    p = sub.add_parser(
        "devices",
        help="list Coral Edge TPUs and check libedgetpu",
        description="List the Coral Edge TPUs this machine shows (USB and PCIe, from sysfs) and whether libedgetpu "
        "loads, with the fix for each problem. Exit status 0 when at least one Edge TPU is usable.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the report; 0 when an Edge TPU is usable."""
    report = probe()
    if args.json:
        print(
            json.dumps(
                {
                    "devices": [{**asdict(d), "device": d.device_string} for d in report.devices],
                    "library": asdict(report.library),
                    "apex_module": report.apex_module,
                    "usable": [d.device_string for d in report.usable],
                }
            )
        )
    else:
        for line in device_lines(report) + library_lines(report):
            print(line)
    return EXIT_OK if report.usable else EXIT_ERROR

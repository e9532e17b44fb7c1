"""``edge-classifier devices``: the accelerators this machine shows (Coral Edge TPUs, Hailo, the AI Camera) and their software.

Exit status: 0 when at least one accelerator is usable as far as probing can tell (an Edge TPU that is present,
that this user may open, with libedgetpu loading; a Hailo with its driver, HailoRT and matching versions; an AI
Camera with its firmware and picamera2's IMX500 support); 1 otherwise, so scripts can write
``edge-classifier devices && ...``.
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


@dataclass(frozen=True)
class HailoReport:
    """Hailo devices, driver, HailoRT and packages, probed once, and the first thing in the way (None: usable)."""

    snapshot: Any
    chip: Any
    problem: Any

    @property
    def usable(self) -> list[str]:
        """Device strings of the usable Hailo devices."""
        return [d.device_string for d in self.snapshot.devices if not d.problem] if self.problem is None else []


def probe_hailo(root: str | None = None) -> HailoReport:
    """Probe sysfs, dpkg, ``hailo_platform`` and ``hailortcli`` for Hailo accelerators."""
    from ..hailo.diagnose import Snapshot, preflight
    from ..hailo.runtime import binding_error, identify
    from ..sysfacts import sysroot

    snapshot = Snapshot.take(root or sysroot())
    problem = preflight(snapshot) or binding_error(snapshot.binding)
    chip = identify() if snapshot.devices and problem is None else None
    return HailoReport(snapshot, chip, problem)


def hailo_lines(report: HailoReport) -> list[str]:
    """Human lines about Hailo: each device, the driver and HailoRT, the packages, and the fix for what is in the way."""
    from ..hailo.discovery import ATTACH_FIX

    snap = report.snapshot
    lines: list[str] = []
    if not snap.devices:
        lines.append("Hailo: none found (no PCIe 1e60:2864 Hailo-8/8L or 1e60:45c4 Hailo-10H)")
    else:
        lines.append("Hailo:")
        lines.extend(f"  {d.describe()}" for d in snap.devices)
    drv = f"{snap.driver[0]} {snap.driver[1] or '(no version)'}" if snap.driver else "not loaded"
    binding = snap.binding
    rt = (
        f"HailoRT {binding.version} (hailo_platform from {binding.location})"
        if binding.importable
        else f"hailo_platform {'hidden by this virtualenv' if binding.hidden else binding.error}"
    )
    lines.append(f"  driver: {drv}; {rt}")
    if snap.packages:
        lines.append("  packages: " + ", ".join(f"{p} {v}" for p, v in sorted(snap.packages.items())))
    if report.chip is not None:
        chip = report.chip
        lines.append(
            f"  chip: {chip.arch.upper() if chip.arch else '?'} "
            f"(hailortcli fw-control identify{': ' + chip.error if chip.error else ''})"
        )
    if report.problem is not None:
        p = report.problem
        lines.append(f"  problem: {p.thing}: {p.cause}")
        lines.append(f"  fix: {p.fix}")
    elif not snap.devices:
        lines.append(f"  fix: {ATTACH_FIX}")
    return lines


@dataclass(frozen=True)
class IMX500Report:
    """The AI Camera's sensor, firmware, models and picamera2 support, probed once, and what is in the way."""

    snapshot: Any
    models: tuple[str, ...]
    problem: Any

    @property
    def usable(self) -> list[str]:
        """``["imx500"]`` when a network could be loaded now."""
        return ["imx500"] if self.problem is None else []


def probe_imx500(root: str | None = None) -> IMX500Report:
    """Probe sysfs, /lib/firmware, the models folder, dpkg and picamera2 for the AI Camera."""
    from ..imx500.diagnose import Snapshot, preflight
    from ..imx500.discovery import models
    from ..sysfacts import sysroot

    root = root or sysroot()
    snapshot = Snapshot.take(root)
    return IMX500Report(snapshot, tuple(models(root)), preflight(snapshot))


def imx500_lines(report: IMX500Report) -> list[str]:
    """Human lines about the AI Camera: the sensor, its firmware, the models, picamera2's support, and the fix."""
    snap = report.snapshot
    lines = [
        "AI Camera (IMX500):" if snap.cameras else "AI Camera (IMX500): none found (no v4l-subdev driven by the imx500 module)"
    ]
    lines.extend(f"  {c.describe()}" for c in snap.cameras)
    fw = ", ".join(f"{path} {'missing' if size is None else f'({size} bytes)'}" for path, size in snap.firmware.items())
    lines.append(f"  firmware: {fw}")
    lines.append(f"  models: {len(report.models)} .rpk in /usr/share/imx500-models")
    sup = snap.support
    lines.append(
        "  picamera2 IMX500 support: "
        + ("importable" if sup.importable else "hidden by this virtualenv" if sup.hidden else sup.error)
    )
    if snap.packages:
        lines.append("  packages: " + ", ".join(f"{p} {v}" for p, v in sorted(snap.packages.items())))
    if report.problem is not None:
        lines.append(f"  problem: {report.problem.thing}: {report.problem.cause}")
        lines.append(f"  fix: {report.problem.fix}")
    return lines


def register(sub: Any) -> None:
    """Add the ``devices`` subcommand."""
    p = sub.add_parser(
        "devices",
        help="list accelerators (Coral Edge TPU, Hailo, AI Camera) and check their software",
        description="List the accelerators this machine shows, with the fix for each problem: Coral Edge TPUs (USB and "
        "PCIe, from sysfs) and whether libedgetpu loads; Hailo devices (AI HAT+, AI Kit), their driver and HailoRT; the "
        "AI Camera's IMX500 sensor, its firmware and picamera2's support. Exit status 0 when one accelerator is usable.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    p.set_defaults(func=run)


def _error_dict(err: Any) -> dict[str, str] | None:
    return None if err is None else {"error": type(err).__name__, "thing": err.thing, "cause": err.cause, "fix": err.fix}


def run(args: argparse.Namespace) -> int:
    """Print the report; 0 when an accelerator is usable."""
    report = probe()
    hailo = probe_hailo()
    imx500 = probe_imx500()
    usable = [d.device_string for d in report.usable] + hailo.usable + imx500.usable
    if args.json:
        snap, cam = hailo.snapshot, imx500.snapshot
        print(
            json.dumps(
                {
                    "devices": [{**asdict(d), "device": d.device_string} for d in report.devices],
                    "library": asdict(report.library),
                    "apex_module": report.apex_module,
                    "hailo": {
                        "devices": [{**asdict(d), "device": d.device_string} for d in snap.devices],
                        "driver": list(snap.driver) if snap.driver else None,
                        "hailort": asdict(snap.binding),
                        "packages": snap.packages,
                        "chip": asdict(hailo.chip) if hailo.chip is not None else None,
                        "problem": _error_dict(hailo.problem),
                    },
                    "imx500": {
                        "cameras": [asdict(c) for c in cam.cameras],
                        "firmware": cam.firmware,
                        "models": list(imx500.models),
                        "picamera2": asdict(cam.support),
                        "packages": cam.packages,
                        "problem": _error_dict(imx500.problem),
                    },
                    "usable": usable,
                }
            )
        )
    else:
        for line in device_lines(report) + library_lines(report) + hailo_lines(hailo) + imx500_lines(imx500):
            print(line)
    return EXIT_OK if usable else EXIT_ERROR

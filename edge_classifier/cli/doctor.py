"""``edge-classifier doctor``: one report on everything the SDK needs, with the fix for each problem.

Exit status: 1 when something *needed* is broken (no usable TFLite runtime, or hardware named with
``--require``); 0 otherwise. The Edge TPU and cameras are optional unless required: a desktop with
neither still classifies images, and doctor says so with a warning instead of failing. The Hailo and the
AI Camera are reported as information on a machine that has neither (no device, none of their packages),
as warnings where their packages or devices say they are meant to be used, and as failures when required.
"""

from __future__ import annotations

import argparse
import glob
import importlib
import importlib.util
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import EXIT_ERROR, EXIT_OK

OK, WARN, FAIL, INFO = "ok", "warn", "FAIL", "info"
_UDEV_DIRS = ("etc/udev/rules.d", "lib/udev/rules.d", "usr/lib/udev/rules.d")


@dataclass(frozen=True)
class Check:
    """One line of the report.

    Attributes:
        area: ``python``, ``runtime``, ``libedgetpu``, ``edgetpu``, ``permissions``, ``camera``, ``hailo`` or ``imx500``.
        status: ``ok``, ``warn``, ``FAIL`` or ``info``.
        what: what was checked and what was found.
        fix: what to do, when status is not ok.
    """

    area: str
    status: str
    what: str
    fix: str = ""


def check_python() -> list[Check]:
    """The interpreter, and whether a virtualenv hides the system's apt packages (picamera2)."""
    venv = sys.prefix != sys.base_prefix
    what = f"Python {platform.python_version()} at {sys.executable}"
    if venv:
        system_site = _venv_system_site()
        what += f" (virtualenv, system site-packages {'visible' if system_site else 'hidden'})"
    return [Check("python", OK, what)]


def _venv_system_site() -> bool:
    cfg = Path(sys.prefix) / "pyvenv.cfg"
    try:
        text = cfg.read_text()
    except OSError:
        return False
    return any(line.replace(" ", "").lower() == "include-system-site-packages=true" for line in text.splitlines())


def check_runtimes() -> list[Check]:
    """Each TFLite runtime: installed, version, usable; FAIL when none is usable."""
    from ..backends.runtime import available_runtimes

    rows = available_runtimes()
    checks = []
    for name, version, note in rows:
        if version is None:
            checks.append(Check("runtime", INFO, f"{name}: {note}"))
        elif note.startswith("usable") or note.startswith("installed"):
            checks.append(Check("runtime", OK, f"{name} {version}: {note}"))
        else:
            checks.append(Check("runtime", WARN, f"{name} {version}: {note}", f"pip install --force-reinstall {name}"))
    if not any(c.status == OK for c in checks):
        checks.append(
            Check("runtime", FAIL, "no usable TFLite runtime", "pip install ai-edge-litert (or tensorflow-cpu on Windows)")
        )
    return checks


def check_edgetpu(root: str, require: bool) -> list[Check]:
    """libedgetpu, its fit with the runtime, each Edge TPU, udev rules and group membership."""
    from ..edgetpu.diagnose import ATTACH_FIX
    from ..edgetpu.discovery import USB_UDEV_RULE
    from ..edgetpu.library import MISMATCH_FIX, install_fix, runtime_mismatch
    from .devices import probe

    missing = FAIL if require else WARN
    report = probe(root)
    lib = report.library
    checks = []
    if lib.loaded:
        what = f"libedgetpu {lib.path or lib.name}: {lib.version or 'loads'}"
        if lib.package:
            what += f"; package {lib.package[0]} {lib.package[1]}"
        checks.append(Check("libedgetpu", OK, what))
        runtime = _first_runtime()
        if runtime and lib.package:
            mismatch = runtime_mismatch(runtime[0], runtime[1], lib.package)
            if mismatch:
                checks.append(Check("libedgetpu", missing, mismatch, MISMATCH_FIX))
    else:
        checks.append(Check("libedgetpu", missing, f"{lib.name} does not load: {lib.error}", install_fix()))
    if not report.devices:
        checks.append(Check("edgetpu", missing, "no Edge TPU found (USB 1a6e:089a / 18d1:9302, PCIe 1ac1:089a)", ATTACH_FIX))
    for d in report.devices:
        status = OK if not d.problem else missing
        checks.append(
            Check("edgetpu", status, f"{d.device_string} {d.node or d.sysfs}: {d.problem or 'ready'} {d.owner}".rstrip(), d.fix)
        )
    if any(d.kind == "pci" for d in report.devices):
        checks.append(
            Check(
                "edgetpu",
                OK if report.apex_module else missing,
                f"apex kernel module {'loaded' if report.apex_module else 'not loaded'}",
                "" if report.apex_module else "sudo apt install gasket-dkms && sudo modprobe apex",
            )
        )
    checks.extend(
        _check_permissions(
            root, any(d.kind == "usb" for d in report.devices), any(d.kind == "pci" for d in report.devices), USB_UDEV_RULE
        )
    )
    return checks


def _first_runtime() -> tuple[str, str] | None:
    from ..backends.runtime import available_runtimes

    for name, version, note in available_runtimes():
        if version is not None and note == "usable":
            return name, version
    return None


def _user_groups() -> list[str]:
    try:
        import grp

        return sorted({grp.getgrgid(g).gr_name for g in {*os.getgroups(), os.getegid()}})
    except (ImportError, KeyError, OSError):
        return []


def _check_permissions(root: str, has_usb: bool, has_pci: bool, usb_rule: str) -> list[Check]:
    if platform.system() != "Linux":
        return []
    rules = []
    for d in _UDEV_DIRS:
        for path in sorted(glob.glob(str(Path(root) / d / "*.rules"))):
            try:
                text = Path(path).read_text(errors="replace").lower()
            except OSError:
                continue
            if "18d1" in text and "9302" in text or 'subsystem=="apex"' in text.replace(" ", ""):
                rules.append(path)
    groups = _user_groups()
    euid = os.geteuid() if hasattr(os, "geteuid") else -1
    checks = []
    who = "root" if euid == 0 else f"uid {euid}"
    in_groups = [g for g in ("plugdev", "apex") if g in groups]
    rule_what = (
        f"udev rule for the Edge TPU: {', '.join(rules)}" if rules else "no udev rule for the Edge TPU (1a6e/18d1 USB ids, apex)"
    )
    needed = has_usb or has_pci
    checks.append(
        Check(
            "permissions",
            OK if rules else (WARN if needed else INFO),
            rule_what,
            ""
            if rules
            else "write these lines to /etc/udev/rules.d/71-edgetpu.rules, then `sudo udevadm control --reload` and re-plug:\n"
            f"{usb_rule}",
        )
    )
    status = OK if (euid == 0 or in_groups) else (WARN if needed else INFO)
    checks.append(
        Check(
            "permissions",
            status,
            f"running as {who}, groups: {', '.join(groups) or '?'}",
            "" if status == OK else "sudo usermod -aG plugdev,video $USER (and apex for PCIe), then log out and in",
        )
    )
    return checks


def check_cameras(root: str, require: bool) -> list[Check]:
    """V4L2 and media nodes, libcamera/picamera2 importability, OpenCV."""
    missing = FAIL if require else WARN
    checks = []
    videos = sorted(glob.glob(str(Path(root) / "dev/video*")))
    media = sorted(glob.glob(str(Path(root) / "dev/media*")))
    shown = [("/" + str(Path(p).relative_to(root))) if root != "/" else p for p in videos + media]
    if videos:
        readable = [p for p in videos if os.access(p, os.R_OK | os.W_OK)]
        status = OK if readable else missing
        checks.append(
            Check(
                "camera",
                status,
                f"camera nodes: {', '.join(shown)}",
                "" if readable else "sudo usermod -aG video $USER, then log out and in",
            )
        )
    else:
        checks.append(
            Check(
                "camera",
                missing,
                "no /dev/video* or /dev/media* node: no camera visible",
                "connect a camera (Pi: check the ribbon cable and `rpicam-hello --list-cameras`; USB: `lsusb`); "
                "in a container pass --device /dev/video0",
            )
        )
    for module, apt in (("libcamera", "python3-libcamera"), ("picamera2", "python3-picamera2")):
        checks.append(_import_check(module, apt))
    try:
        import cv2

        checks.append(Check("camera", OK, f"OpenCV {cv2.__version__} (USB/V4L2 cameras, streams, video files)"))
    except ImportError as exc:
        checks.append(Check("camera", missing, f"OpenCV not importable ({exc})", "pip install opencv-python-headless"))
    return checks


def _import_check(module: str, apt: str) -> Check:
    on_pi = Path("/usr/lib/python3/dist-packages", module).is_dir()
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        if on_pi and sys.prefix != sys.base_prefix:
            return Check(
                "camera",
                WARN,
                f"{module} is installed system-wide but hidden by this virtualenv",
                "recreate the venv with `python3 -m venv --system-site-packages .venv`",
            )
        return Check(
            "camera",
            INFO,
            f"{module} not installed (needed only for the Raspberry Pi camera)",
            f"on Raspberry Pi OS: sudo apt install {apt}",
        )
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - a broken native binding can raise anything on import
        return Check(
            "camera",
            WARN,
            f"{module} is installed but does not import ({type(exc).__name__}: {exc})",
            f"use the apt package {apt} (pip wheels do not match the system libcamera), "
            "in a venv made with --system-site-packages",
        )
    if getattr(mod, "__file__", None) is None:
        return Check(
            "camera",
            WARN,
            f"{module} resolves to an empty namespace package",
            f"sudo apt install {apt}; remove the stray {module} directory",
        )
    return Check("camera", OK, f"{module} importable from {Path(str(mod.__file__)).parent}")


def _level(require: bool, intended: bool) -> str:
    """How loud a problem is: FAIL when required, warn when the machine is set up for the device, else info."""
    return FAIL if require else WARN if intended else INFO


def check_hailo(root: str, require: bool) -> list[Check]:
    """Hailo: the package families, each device, the driver, HailoRT's binding, library vs driver version, the chip."""
    from ..errors import HailoPackageConflictError
    from ..hailo.discovery import ATTACH_FIX
    from ..hailo.runtime import INSTALL_FIX, families, version_fix, version_mismatch
    from ..sysfacts import VENV_FIX
    from .devices import probe_hailo

    report = probe_hailo(root)
    snap = report.snapshot
    level = _level(require, bool(snap.packages or snap.devices))
    checks: list[Check] = []
    fams = families(snap.packages)
    listed = ", ".join(f"{p} {v}" for p, v in sorted(snap.packages.items()))
    if isinstance(report.problem, HailoPackageConflictError):
        checks.append(Check("hailo", FAIL if require else WARN, report.problem.cause, report.problem.fix))
    elif snap.packages:
        checks.append(Check("hailo", OK, f"packages: {listed}"))
    else:
        checks.append(Check("hailo", level, "no Hailo packages installed (needed only for the AI HAT+ / AI Kit)", INSTALL_FIX))
    if not snap.devices:
        checks.append(Check("hailo", level, "no Hailo device (PCIe 1e60:2864 Hailo-8/8L, 1e60:45c4 Hailo-10H)", ATTACH_FIX))
    for d in snap.devices:
        what = f"{d.device_string} {d.node or 'PCI ' + d.pci}: {d.problem or 'ready'} {d.owner}".rstrip()
        checks.append(Check("hailo", OK if not d.problem else level, what, d.fix))
    if snap.driver is not None:
        checks.append(Check("hailo", OK, f"driver {snap.driver[0]} {snap.driver[1] or '(no version)'} loaded"))
    binding = snap.binding
    if binding.importable:
        checks.append(Check("hailo", OK, f"HailoRT {binding.version} (hailo_platform from {binding.location})"))
    elif binding.hidden:
        checks.append(Check("hailo", level, "hailo_platform is installed by apt but hidden by this virtualenv", VENV_FIX))
    else:
        checks.append(Check("hailo", level, f"hailo_platform: {binding.error}", INSTALL_FIX))
    drv_version = snap.driver[1] if snap.driver else None
    mismatch = version_mismatch(snap.library_version, drv_version)
    if mismatch:
        checks.append(Check("hailo", level if not require else FAIL, mismatch, version_fix(fams[0] if fams else "hailo-all")))
    elif snap.library_version and drv_version:
        checks.append(Check("hailo", OK, f"HailoRT library {snap.library_version} and driver {drv_version} match"))
    if report.chip is not None:
        chip = report.chip
        what = f"chip {chip.arch.upper()} (hailortcli fw-control identify)" if chip.arch else chip.error
        checks.append(Check("hailo", OK if chip.arch else INFO, what))
    return checks


def check_imx500(root: str, require: bool) -> list[Check]:
    """The AI Camera: the IMX500 sensor and its node, the firmware, Raspberry Pi's models, picamera2's IMX500 support."""
    from ..imx500.diagnose import SUPPORT_FIX
    from ..imx500.discovery import ATTACH_FIX, FIRMWARE_FIX, MODELS_DIR
    from ..sysfacts import VENV_FIX
    from .devices import probe_imx500

    report = probe_imx500(root)
    snap = report.snapshot
    level = _level(require, bool(snap.packages.keys() - {"python3-picamera2"} or snap.cameras))
    checks: list[Check] = []
    if not snap.cameras:
        checks.append(Check("imx500", level, "no AI Camera (no IMX500 sensor among the v4l-subdevs)", ATTACH_FIX))
    for c in snap.cameras:
        checks.append(
            Check(
                "imx500",
                OK if not c.problem else level,
                f"{c.node} ({c.device_id}): {c.problem or 'ready'} {c.owner}".rstrip(),
                c.fix,
            )
        )
    missing = [p for p, size in snap.firmware.items() if size is None]
    if missing:
        checks.append(Check("imx500", level, f"firmware missing: {', '.join(missing)}", FIRMWARE_FIX))
    else:
        checks.append(Check("imx500", OK, "firmware: " + ", ".join(snap.firmware)))
    checks.append(
        Check(
            "imx500",
            OK if report.models else INFO,
            f"{len(report.models)} .rpk networks in {MODELS_DIR}",
            "" if report.models else FIRMWARE_FIX,
        )
    )
    sup = snap.support
    if sup.importable:
        checks.append(Check("imx500", OK, "picamera2's IMX500 support (picamera2.devices.imx500) imports"))
    elif sup.hidden:
        checks.append(Check("imx500", level, "picamera2 is installed by apt but hidden by this virtualenv", VENV_FIX))
    else:
        checks.append(Check("imx500", level, f"picamera2's IMX500 support: {sup.error}", SUPPORT_FIX))
    return checks


def run_checks(root: str | None = None, require: frozenset[str] = frozenset()) -> list[Check]:
    """Every check, in report order."""
    from ..edgetpu.discovery import sysroot

    root = root or sysroot()
    return (
        check_python()
        + check_runtimes()
        + check_edgetpu(root, "edgetpu" in require)
        + check_cameras(root, "camera" in require)
        + check_hailo(root, "hailo" in require)
        + check_imx500(root, "imx500" in require)
    )


REQUIREMENTS = ("edgetpu", "camera", "hailo", "imx500")


def _requirements(text: str) -> frozenset[str]:
    items = frozenset(x.strip() for x in text.split(",") if x.strip())
    unknown = items - set(REQUIREMENTS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown requirement(s) {', '.join(sorted(unknown))}: use {', '.join(REQUIREMENTS)}")
    return items


def register(sub: Any) -> None:
    """Add the ``doctor`` subcommand."""
    p = sub.add_parser(
        "doctor",
        help="check Python, runtimes, libedgetpu, Edge TPUs, permissions, cameras, Hailo and the AI Camera",
        description="Check everything edge-classifier needs and print the fix for each problem. Exit status 1 when "
        "something needed is broken: no usable TFLite runtime, or hardware named with --require.",
    )
    p.add_argument(
        "--require",
        type=_requirements,
        default=frozenset(),
        help="treat these as needed: edgetpu, camera, hailo, imx500 (comma-separated)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per check instead of text")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the report; 1 when something needed is broken."""
    checks = run_checks(require=args.require)
    for c in checks:
        if args.json:
            print(json.dumps(asdict(c)))
            continue
        print(f"[{c.status:>4}] {c.area:11s} {c.what}")
        if c.fix and c.status != OK:
            for i, line in enumerate(c.fix.splitlines()):
                print(f"{'':19s}{'fix: ' if i == 0 else '     '}{line}")
    failed = [c for c in checks if c.status == FAIL]
    if not args.json:
        print(f"{len(failed)} problem(s) that stop edge-classifier" if failed else "nothing needed is broken")
    return EXIT_ERROR if failed else EXIT_OK

"""Turn a failed Edge TPU load into the one EdgeTpuError that names its cause and fix.

libedgetpu never fills in the delegate loader's error text, so ``ValueError: Failed to load delegate
from libedgetpu.so.1`` stands for "no device", "no permission", "busy", "driver missing" and "did not
start" alike. The exception's *type* and the *phase* tell the library problems apart (an ``OSError``
from ctypes is a missing or mismatched file; a ``RuntimeError`` from ``allocate_tensors`` is a model or
version problem); for the device problems the cause comes from a :class:`Snapshot` of sysfs and /dev.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from pathlib import Path

from ..errors import (
    AcceleratorLostError,
    CpuTwinMissingError,
    EdgeTpuBusyError,
    EdgeTpuDriverError,
    EdgeTpuError,
    EdgeTpuLibraryMissingError,
    EdgeTpuNotFoundError,
    EdgeTpuPermissionError,
    EdgeTpuVersionError,
    NotCompiledForEdgeTpuError,
)
from .discovery import DeviceRequest, EdgeTpuDevice, Identity, apex_module_loaded, find_edgetpus, node_holders, select_devices
from .library import MISMATCH_FIX, LibraryStatus, install_fix, probe_library

_PACKAGE_TOO_NEW = re.compile(r"Package requires runtime version \((\d+)\), which is newer than this runtime version \((\d+)\)")
_DELEGATE_NOT_BOUND = (
    "unresolved custom op: edgetpu-custom-op",
    "Unsupported data type in custom op handler",
    "Null custom op data",
)
_USB_TRANSFER = re.compile(r"USB transfer error (\d+)")
_USB_MEANING = {
    "5": "the device disappeared (unplugged, or reset and re-enumerated)",
    "2": "a transfer timed out (usually not enough power: the accelerator draws up to 900 mA, or a bad cable)",
    "1": "a USB transfer failed",
}
ATTACH_FIX = (
    "plug the USB Accelerator into a USB 3 port directly or through a powered hub and check `lsusb` for 1a6e:089a or "
    "18d1:9302; for an M.2/PCIe card check `lspci -nn | grep 089a`; in a container pass the device through "
    "(--device /dev/bus/usb or --device /dev/apex_0)"
)


@dataclass(frozen=True)
class Snapshot:
    """What the system shows about Edge TPUs at one moment.

    Attributes:
        library: libedgetpu's status (its own device list included when it loads).
        devices: Edge TPUs in sysfs (see :func:`~edge_classifier.edgetpu.discovery.find_edgetpus`).
        apex_module: the PCIe driver is loaded.
        root: the filesystem root probed.
    """

    library: LibraryStatus
    devices: tuple[EdgeTpuDevice, ...]
    apex_module: bool
    root: str = "/"

    @classmethod
    def take(cls, root: str = "/", identity: Identity | None = None, library: LibraryStatus | None = None) -> Snapshot:
        """Probe now."""
        lib = library if library is not None else probe_library(root=root)
        return cls(lib, tuple(find_edgetpus(root, identity)), apex_module_loaded(root), root)


def _thing(request: DeviceRequest) -> str:
    return f"Edge TPU (device={request.text or 'edgetpu'!r})"


def diagnose_delegate_failure(exc: BaseException, request: DeviceRequest, snapshot: Snapshot) -> EdgeTpuError:
    """The cause of an exception from ``load_delegate``.

    Args:
        exc: what the runtime's ``load_delegate`` raised.
        request: the device asked for.
        snapshot: sysfs, /dev and libedgetpu as they are now.
    """
    lib = snapshot.library
    if isinstance(exc, OSError):
        text = str(exc).strip()
        if "undefined symbol" in text or "Symbol not found" in text:
            return EdgeTpuVersionError(lib.name, f"exists but was built against another TensorFlow Lite ({text})", MISMATCH_FIX)
        if "wrong ELF class" in text or "invalid ELF header" in text or "incompatible architecture" in text:
            return EdgeTpuLibraryMissingError(
                lib.name, f"exists but is built for another CPU architecture ({text})", install_fix()
            )
        return EdgeTpuLibraryMissingError(lib.name, f"is not installed or not on the loader path ({text})", install_fix())
    matching = select_devices(list(snapshot.devices), request)
    if not matching:
        return _not_found(request, snapshot)
    usable = [d for d in matching if not d.problem]
    if not usable:
        return _device_problem(request, matching[0])
    dev = usable[0]
    if dev.kind == "usb" and not dev.initialised:
        return EdgeTpuNotFoundError(
            f"{_thing(request)} at {dev.node}",
            "is attached, but libedgetpu could not start it: it still shows the bootloader id 1a6e:089a (firmware not loaded)",
            "give it power (a USB 3 port directly or a powered hub: it draws up to 900 mA) and re-plug it; in a VM pass "
            "the whole USB controller through, since the device re-enumerates as 18d1:9302 once its firmware loads",
        )
    holders = node_holders(dev.node, snapshot.root) if dev.node else []
    who = f" (pid {', '.join(str(p) for p in holders)} has {dev.node} open)" if holders else ""
    return EdgeTpuBusyError(
        f"{_thing(request)} at {dev.node}",
        f"is present and this user may open it, but libedgetpu could not: another process holds it{who}",
        "stop the other process (libedgetpu gives one process a device at a time), or pick another with "
        "device='usb:1' / 'pci:1'; if nothing else uses it, re-plug it (USB) or reboot (PCIe)",
    )


def _not_found(request: DeviceRequest, snapshot: Snapshot) -> EdgeTpuError:
    lib = snapshot.library
    others = [d.device_string for d in snapshot.devices]
    listed = ""
    if lib.devices is not None:
        listed = "; libedgetpu lists " + (", ".join(f"{k} {p}" for k, p in lib.devices) or "no device")
    if others:
        what = f"no Edge TPU matches {request.text!r}"
        return EdgeTpuNotFoundError(
            _thing(request), f"{what}: found {', '.join(others)}{listed}", f"use one of: {', '.join(others)} (or device='auto')"
        )
    if lib.devices:
        # No sysfs to read (macOS, Windows, a container without /sys), but libedgetpu sees one.
        return EdgeTpuBusyError(
            _thing(request),
            f"libedgetpu sees {lib.devices[0][0]} {lib.devices[0][1]} but could not open it: another process holds it, "
            "or this user may not open it",
            "stop the other process; on Linux install the udev rule and join the plugdev group (`edge-classifier doctor`)",
        )
    return EdgeTpuNotFoundError(_thing(request), f"libedgetpu is installed but no Edge TPU is attached{listed}", ATTACH_FIX)


def _device_problem(request: DeviceRequest, dev: EdgeTpuDevice) -> EdgeTpuError:
    thing = f"{_thing(request)} at {dev.node or dev.sysfs}"
    if dev.accessible is False:
        return EdgeTpuPermissionError(thing, f"{dev.problem} (it is {dev.owner}); it works under sudo for that reason", dev.fix)
    if dev.kind == "pci":
        return EdgeTpuDriverError(thing, dev.problem, dev.fix)
    return EdgeTpuNotFoundError(thing, dev.problem, dev.fix or ATTACH_FIX)


def diagnose_prepare_failure(exc: BaseException, model_path: str, snapshot: Snapshot | None = None) -> EdgeTpuError | None:
    """The cause of a ``RuntimeError`` from ``allocate_tensors`` with the delegate attached, or None if not an Edge TPU cause."""
    text = str(exc)
    m = _PACKAGE_TOO_NEW.search(text)
    if m:
        need, have = int(m.group(1)), int(m.group(2))
        return EdgeTpuVersionError(
            model_path,
            f"was compiled for Edge TPU runtime version {need}, newer than this libedgetpu's {have}",
            f"recompile the CPU model for this runtime (`edgetpu_compiler -m {have} model.tflite`, or "
            f"`edge-convert compile model.tflite` with the matching compiler), or upgrade libedgetpu",
        )
    if any(marker in text for marker in _DELEGATE_NOT_BOUND):
        lib = snapshot.library.name if snapshot else "libedgetpu"
        return EdgeTpuVersionError(
            lib,
            f"loaded, but the runtime could not hand it the edgetpu-custom-op ({text.strip().splitlines()[0]}): "
            "libedgetpu and the TFLite runtime were built from different TensorFlow versions",
            MISMATCH_FIX,
        )
    return None


def not_compiled_error(model_path: str, device: str) -> NotCompiledForEdgeTpuError:
    """A plain model was asked to run on the Edge TPU."""
    stem = Path(model_path).stem
    return NotCompiledForEdgeTpuError(
        model_path,
        f"is not compiled for the Edge TPU (it has no edgetpu-custom-op), so device={device!r} cannot run it",
        f"compile it: `edge-convert compile {model_path}` (or `edgetpu_compiler {model_path}`), then pass {stem}_edgetpu.tflite; "
        "or run it on the CPU with device='cpu' or 'auto'",
    )


def twin_path(model_path: str | Path) -> Path:
    """The CPU twin of an ``_edgetpu`` model: the same name without ``_edgetpu`` (``m_edgetpu.tflite`` -> ``m.tflite``)."""
    p = Path(model_path)
    stem = p.stem
    i = stem.rfind("_edgetpu")
    if i < 0:
        return p
    return p.with_name(stem[:i] + stem[i + len("_edgetpu") :] + p.suffix)


def twin_missing_error(model_path: str, twin: Path, why: str) -> CpuTwinMissingError:
    """No Edge TPU is usable and the CPU twin is not there either."""
    if twin == Path(model_path):
        looked = f"its name has no _edgetpu, so there is no CPU twin to look for ({why})"
    else:
        looked = f"the Edge TPU is not usable ({why}) and its CPU twin {twin} does not exist"
    return CpuTwinMissingError(
        model_path,
        looked,
        f"put the CPU model beside it as {twin.name} (the model you compiled it from), "
        "fix the Edge TPU, or pass the CPU model itself",
    )


def worker_death_error(thing: str, returncode: int | None, stderr_tail: str, loading: bool) -> EdgeTpuError:
    """The error for a worker process that died (or hung) instead of answering.

    Args:
        thing: what the worker ran (model and device), for the message.
        returncode: ``Popen.returncode`` (negative: killed by that signal); None when it hung and was killed.
        stderr_tail: the last lines it wrote to stderr.
        loading: it died while loading the model and delegate (not while invoking).
    """
    # The runtimes' own INFO chatter ("Created TensorFlow Lite XNNPACK delegate") explains nothing.
    last = [line for line in stderr_tail.splitlines() if line.strip() and not line.startswith("INFO:")]
    fatal = next((line for line in reversed(last) if line.startswith("F ") or " F " in line[:12]), "")
    if returncode is None:
        how = "stopped answering and was killed"
    elif returncode < 0:
        try:
            how = f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"was killed by signal {-returncode}"
    else:
        how = f"exited with status {returncode}"
    if loading and returncode == -signal.SIGSEGV:
        return EdgeTpuVersionError(
            thing,
            f"the worker {how} while loading the Edge TPU delegate: the TFLite runtime is newer than libedgetpu was built for",
            MISMATCH_FIX,
        )
    detail = ""
    m = _USB_TRANSFER.search(fatal)
    if m:
        detail = f": {_USB_MEANING.get(m.group(1), 'a USB transfer failed')} ({fatal.strip()})"
    elif fatal:
        detail = f" ({fatal.strip()})"
    elif last:
        detail = f" (last words: {last[-1].strip()[:200]})"
    on_cpu = thing.endswith(" on cpu")
    fix = (
        (
            "something outside killed it (the OOM killer, a user) or the runtime crashed; "
            "device='auto' restarts it and answers in-process meanwhile"
        )
        if on_cpu
        else (
            "check the accelerator's power and cable (a powered hub), then retry; "
            "device='auto' keeps answering on the CPU twin meanwhile"
        )
    )
    return AcceleratorLostError(thing, f"the inference worker {how}{detail}", fix)

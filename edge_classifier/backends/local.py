"""Load a model in this process: on the CPU, or on the Coral Edge TPU through libedgetpu's delegate.

No policy here (no fallback, no worker, no choice of device): :mod:`.select` decides, and the worker
process (:mod:`.worker`) calls :func:`open_local` for its own load. A failed Edge TPU load raises the one
:class:`~edge_classifier.errors.EdgeTpuError` that names its cause, found by probing the system
(:mod:`edge_classifier.edgetpu.diagnose`).
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

from ..edgetpu.diagnose import Snapshot, diagnose_delegate_failure, diagnose_prepare_failure
from ..edgetpu.discovery import find_edgetpus, parse_device, select_devices, sysroot
from ..edgetpu.library import installed_package, library_name, runtime_mismatch
from ..errors import ModelError
from ..tflite_file import read_model_bytes
from .base import Backend, BackendInfo
from .runtime import Runtime, create_interpreter, open_cpu

log = logging.getLogger(__name__)


def open_local(
    runtime: Runtime,
    model_path: str | Path,
    *,
    device: str,
    num_threads: int,
    model: bytes | None = None,
    reason: str = "",
    notes: tuple[str, ...] = (),
) -> Backend:
    """Load ``model_path`` in this process on ``device``.

    Args:
        runtime: the chosen runtime.
        model_path: the model file; read only when ``model`` is None.
        device: ``cpu``, ``edgetpu`` or a Coral device string (``usb``, ``usb:0``, ``pci:0``, ``:0``).
        num_threads: CPU threads (on the Edge TPU, for the ops left outside it).
        model: the file's bytes when the caller holds them already.
        reason: why this device was chosen, for :attr:`BackendInfo.reason`.
        notes: what was tried and skipped on the way.

    Raises:
        EdgeTpuError: the child class that names why the Edge TPU cannot be used.
        ModelError: the model itself cannot be loaded.
    """
    if device == "cpu":
        return open_cpu(runtime, model_path, num_threads, model=model, reason=reason or "CPU", notes=notes)
    return open_edgetpu(runtime, model_path, device=device, num_threads=num_threads, model=model, reason=reason, notes=notes)


def check_library(device: str) -> None:
    """Load libedgetpu's file (which opens no device), so a missing library is told without starting a worker.

    Raises:
        EdgeTpuLibraryMissingError, EdgeTpuVersionError: the file is missing or built for another runtime.
    """
    try:
        ctypes.CDLL(library_name())
    except OSError as exc:
        raise diagnose_delegate_failure(exc, parse_device(device), Snapshot.take(sysroot())) from exc


def open_edgetpu(
    runtime: Runtime,
    model_path: str | Path,
    *,
    device: str,
    num_threads: int,
    model: bytes | None = None,
    reason: str = "",
    notes: tuple[str, ...] = (),
) -> Backend:
    """Load libedgetpu's delegate and an Edge TPU model in this process (arguments as :func:`open_local`).

    Raises:
        EdgeTpuError: the child class that names the cause (see :mod:`edge_classifier.edgetpu.diagnose`).
        ModelError: the model itself cannot be loaded.
    """
    path = str(model_path)
    request = parse_device(device)
    data = model if model is not None else read_model_bytes(path)
    lib = library_name()
    options = {"device": request.delegate_option} if request.delegate_option else {}
    try:
        # Load the file first: the runtimes' Delegate leaves a half-built object behind on OSError,
        # whose __del__ then prints a second, misleading AttributeError at garbage collection.
        ctypes.CDLL(lib)
        delegate = runtime.load_delegate(lib, options)
    except (OSError, ValueError, RuntimeError) as exc:
        # The message is empty for most causes; probe the system to name the real one.
        raise diagnose_delegate_failure(exc, request, Snapshot.take(sysroot())) from exc
    try:
        # Not quiet: a libedgetpu built for another TF can crash the process right here, and its words must show.
        interp = create_interpreter(runtime, data, num_threads, [delegate], quiet=False)
    except (RuntimeError, ValueError) as exc:
        err = diagnose_prepare_failure(exc, path)
        if err is not None:
            raise err from exc
        raise ModelError(
            path,
            f"{runtime.name} {runtime.version} cannot load it with the Edge TPU delegate ({str(exc).strip()})",
            "re-compile it from the CPU model with edgetpu_compiler, or run the CPU model with device='cpu'",
        ) from exc
    found = select_devices(find_edgetpus(sysroot()), request)
    label = found[0].device_string if len(found) == 1 else (request.text or "edgetpu")
    why = f"Edge TPU {label} via {lib}" + (f"; {reason}" if reason else "")
    mismatch = runtime_mismatch(runtime.name, runtime.version, installed_package(sysroot()))
    if mismatch:
        log.warning("%s; it loaded here, but if it crashes: %s", mismatch, "see `edge-classifier doctor`")
    return Backend(interp, BackendInfo(runtime.name, runtime.version, label, why, num_threads, path, notes))

"""Open a model on the Coral Edge TPU: load libedgetpu's delegate, explain failures, fall back to the CPU twin.

``device="edgetpu"`` (or ``usb``, ``usb:0``, ``pci:0``, ``:0``) gets the Edge TPU or one
:class:`~edge_classifier.errors.EdgeTpuError` naming the cause; it never falls back silently.
``device="auto"`` with an ``_edgetpu`` model and no usable Edge TPU loads the CPU twin (the same name
without ``_edgetpu``), warns once, and says why in ``BackendInfo.reason``.

By default the Edge TPU interpreter runs in a worker process (``isolate``): libedgetpu aborts the
whole process when a USB accelerator is lost mid-run, and a camera left unattended must survive that.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import warnings
from pathlib import Path
from typing import Any

from ..errors import EdgeTpuError, FallbackWarning, ModelError
from ..tflite_file import ModelFileInfo
from .base import Backend, BackendInfo

log = logging.getLogger(__name__)

ENV_SYSROOT = "EDGE_CLASSIFIER_SYSROOT"
_warned: set[str] = set()


def sysroot() -> str:
    """Where /sys, /dev and /proc are probed: ``$EDGE_CLASSIFIER_SYSROOT`` (a container mounting the host's) or ``/``."""
    return os.environ.get(ENV_SYSROOT) or "/"


def default_isolation(on_edgetpu: bool) -> bool:
    """Whether to run the interpreter in a worker process when the caller did not say.

    On for the Edge TPU (its runtime aborts the process on USB loss, and a round trip costs tens of
    microseconds against milliseconds of inference: see benchmarks/bench_isolation.py); off for the
    CPU, which does not crash that way. Never on Windows, where the worker's pipes cannot be polled.
    """
    return on_edgetpu and platform.system() != "Windows"


def open_in_process(
    runtime: Any, model: bytes, model_path: str, device: str, num_threads: int, reason: str = "", notes: tuple[str, ...] = ()
) -> Backend:
    """Load the delegate and the model in this process.

    Args:
        runtime: the chosen :class:`~edge_classifier.backends.select.Runtime`.
        model: the compiled model's bytes.
        model_path: its path, for messages.
        device: ``edgetpu`` or a Coral device string.
        num_threads: CPU threads for the ops left outside the Edge TPU.

    Raises:
        EdgeTpuError: the child class that names the cause (see :mod:`edge_classifier.edgetpu.diagnose`).
        ModelError: the model itself cannot be loaded.
    """
    from ..edgetpu.diagnose import Snapshot, diagnose_delegate_failure, diagnose_prepare_failure
    from ..edgetpu.discovery import find_edgetpus, parse_device, select_devices
    from ..edgetpu.library import library_name, runtime_mismatch

    request = parse_device(device)
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
        interp = runtime.interpreter_class(model_content=model, num_threads=num_threads, experimental_delegates=[delegate])
        interp.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        err = diagnose_prepare_failure(exc, model_path)
        if err is not None:
            raise err from exc
        raise ModelError(
            model_path,
            f"{runtime.name} {runtime.version} cannot load it with the Edge TPU delegate ({str(exc).strip()})",
            "re-compile it from the CPU model with edgetpu_compiler, or run the CPU model with device='cpu'",
        ) from exc
    found = select_devices(find_edgetpus(sysroot()), request)
    label = found[0].device_string if len(found) == 1 else (request.text or "edgetpu")
    why = f"Edge TPU {label} via {lib}" + (f"; {reason}" if reason else "")
    from ..edgetpu.library import installed_package

    mismatch = runtime_mismatch(runtime.name, runtime.version, installed_package(sysroot()))
    if mismatch:
        log.warning("%s; it loaded here, but if it crashes: %s", mismatch, "see `edge-classifier doctor`")
    return Backend(interp, BackendInfo(runtime.name, runtime.version, label, why, num_threads, model_path, notes))


def open_edgetpu_backend(
    runtime: Any,
    reason: str,
    notes: tuple[str, ...],
    model: bytes,
    model_info: ModelFileInfo,
    model_path: str,
    *,
    device: str,
    num_threads: int,
    isolate: bool | None = None,
) -> tuple[Backend, str]:
    """Load ``model`` on the Edge TPU, or (``device="auto"`` only) on its CPU twin.

    Returns:
        (backend, path of the model actually loaded: the twin's after a fallback).

    Raises:
        NotCompiledForEdgeTpuError: a plain model with an explicit Edge TPU device.
        CpuTwinMissingError: ``auto``, no usable Edge TPU, and no twin file.
        EdgeTpuError: an explicit Edge TPU device that cannot be used (the child class names the cause).
    """
    from ..edgetpu.diagnose import not_compiled_error
    from ..edgetpu.discovery import parse_device

    if not model_info.is_edgetpu_compiled:
        raise not_compiled_error(model_path, device)
    tpu_device = "edgetpu" if device == "auto" else device
    parse_device(tpu_device)  # a bad device string is a usage error, never a reason to fall back
    isolated = default_isolation(True) if isolate is None else isolate
    try:
        backend = _open_tpu(runtime, reason, notes, model, model_path, tpu_device, num_threads, isolated)
    except EdgeTpuError as exc:
        if device != "auto":
            raise
        return _open_twin(runtime, reason, notes, model_path, num_threads, exc)
    if device == "auto" and isolated:
        backend = _with_failover(backend, runtime, reason, notes, model_path, tpu_device, num_threads)
    return backend, model_path


def _open_tpu(
    runtime: Any, reason: str, notes: tuple[str, ...], model: bytes, model_path: str, device: str, num_threads: int, isolated: bool
) -> Backend:
    if not isolated:
        return open_in_process(runtime, model, model_path, device, num_threads, reason, notes)
    from ..edgetpu.diagnose import Snapshot, diagnose_delegate_failure
    from ..edgetpu.discovery import parse_device
    from ..edgetpu.library import library_name
    from ..edgetpu.worker import IsolatedBackend, WorkerPlan

    try:
        # Loading the library opens no device; checking here saves starting a worker (0.3 s) only to
        # hear that libedgetpu is missing, the common case on a machine without a Coral.
        ctypes.CDLL(library_name())
    except OSError as exc:
        raise diagnose_delegate_failure(exc, parse_device(device), Snapshot.take(sysroot())) from exc

    return IsolatedBackend.start(WorkerPlan(model_path, runtime.name, device, num_threads), reason=reason, notes=notes)


def _open_twin(runtime: Any, reason: str, notes: tuple[str, ...], model_path: str, num_threads: int, exc: EdgeTpuError) -> tuple[Backend, str]:
    from ..edgetpu.diagnose import twin_missing_error, twin_path
    from .select import make_interpreter, read_model

    twin = twin_path(model_path)
    why = f"{exc.thing}: {exc.cause}"
    if twin == Path(model_path) or not twin.is_file():
        raise twin_missing_error(model_path, twin, why) from exc
    data, _ = read_model(twin)
    interp = make_interpreter(runtime, data, str(twin), num_threads)
    message = f"Edge TPU not usable, running the CPU twin {twin.name} instead ({why})"
    _warn_once(model_path, message, exc.fix)
    info = BackendInfo(runtime.name, runtime.version, "cpu", f"{message}; {reason}", num_threads, str(twin), notes)
    return Backend(interp, info), str(twin)


def _warn_once(key: str, message: str, fix: str) -> None:
    """Once per model and process: the log gets the fix, the warning (shown at the caller's line) stays one line."""
    if key in _warned:
        log.info("%s", message)
        return
    _warned.add(key)
    log.warning("%s\n  fix: %s", message, fix)
    # stacklevel 6: _open_twin, open_edgetpu_backend, open_backend, Classifier.__init__, the caller.
    warnings.warn(message, FallbackWarning, stacklevel=6)


def _with_failover(
    primary: Backend, runtime: Any, reason: str, notes: tuple[str, ...], model_path: str, device: str, num_threads: int
) -> Backend:
    from ..edgetpu.diagnose import twin_path
    from ..edgetpu.failover import FailoverBackend
    from ..edgetpu.worker import IsolatedBackend, WorkerPlan
    from .select import make_interpreter, read_model

    plan = WorkerPlan(model_path, runtime.name, device, num_threads)
    twin = twin_path(model_path)

    def fallback() -> Backend:
        if twin == Path(model_path) or not twin.is_file():
            from ..edgetpu.diagnose import twin_missing_error

            raise twin_missing_error(model_path, twin, "the Edge TPU worker died")
        data, _ = read_model(twin)
        interp = make_interpreter(runtime, data, str(twin), num_threads)
        info = BackendInfo(runtime.name, runtime.version, "cpu", f"CPU twin {twin.name} while the Edge TPU is lost", num_threads, str(twin), notes)
        return Backend(interp, info)

    return FailoverBackend(primary, lambda: IsolatedBackend.start(plan, reason=reason, notes=notes), fallback)


def open_isolated_cpu_backend(
    runtime: Any, reason: str, notes: tuple[str, ...], model_path: str, *, device: str, num_threads: int
) -> tuple[Backend, str]:
    """Run a CPU model in a worker process (``isolate=True``); on ``auto`` a dead worker is replaced in-process.

    The mechanism is the Edge TPU's; on the CPU it guards against a native crash in a runtime or a
    custom op, at the cost measured by benchmarks/bench_isolation.py.
    """
    from ..edgetpu.failover import FailoverBackend
    from ..edgetpu.worker import IsolatedBackend, WorkerPlan
    from .select import make_interpreter, read_model

    plan = WorkerPlan(model_path, runtime.name, "cpu", num_threads)
    backend: Backend = IsolatedBackend.start(plan, reason=reason, notes=notes)
    if device == "auto":

        def fallback() -> Backend:
            data, _ = read_model(model_path)
            interp = make_interpreter(runtime, data, model_path, num_threads)
            info = BackendInfo(runtime.name, runtime.version, "cpu", "in-process while the worker is restarted", num_threads, model_path, notes)
            return Backend(interp, info)

        backend = FailoverBackend(backend, lambda: IsolatedBackend.start(plan, reason=reason, notes=notes), fallback)
    return backend, model_path

"""Policy, in one place: which runtime and device run a model, whether in a worker, and when to fall back.

The loading itself is done by the layers below: :mod:`.runtime` (choose a runtime, load on the CPU),
:mod:`.local` (load in this process, CPU or Edge TPU), :mod:`.isolated` (load in a worker process) and
:mod:`.failover` (replace a dead worker). Nothing below imports this module.

``device="edgetpu"`` (or ``usb``, ``usb:0``, ``pci:0``, ``:0``) gets the Edge TPU or one
:class:`~edge_classifier.errors.EdgeTpuError` naming the cause; it never falls back silently.
``device="auto"`` with an ``_edgetpu`` model and no usable Edge TPU loads the CPU twin (the same name
without ``_edgetpu``), warns once, and says why in ``BackendInfo.reason``.

By default the Edge TPU interpreter runs in a worker process (``isolate``): libedgetpu aborts the
whole process when a USB accelerator is lost mid-run, and a camera left unattended must survive that.

Raspberry Pi's own accelerators are chosen here too, by the model file: a ``.hef`` runs on a Hailo
(``device="auto"``, ``hailo`` or ``hailo:N``; on ``auto`` without a usable Hailo its CPU twin ``<name>.tflite``
runs instead, with a warning), an ``.rpk`` on the AI Camera's IMX500 sensor (:func:`open_sensor`, for
:class:`~edge_classifier.sensor_classifier.SensorClassifier`: the sensor classifies the frames it captures, so
a plain Classifier cannot run one). A model asked to run on the wrong chip is one
:class:`~edge_classifier.errors.WrongAcceleratorError`; a Hailo that cannot be used is one
:class:`~edge_classifier.errors.HailoError` child naming the cause.
"""

from __future__ import annotations

import logging
import platform
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..edgetpu.diagnose import not_compiled_error, twin_missing_error, twin_path
from ..edgetpu.discovery import parse_device
from ..errors import AcceleratorError, EdgeTpuError, FallbackWarning, WrongAcceleratorError
from ..hailo import hef as _hef
from ..imx500.rpk import is_rpk
from ..sidecar import read_sidecar_spec, sidecar_files
from ..tflite_file import ModelFileInfo, SubgraphInfo, append_associated_files
from ..tflite_file import read_model as _read_model
from . import runtime as _runtime
from .base import Backend
from .failover import FailoverBackend
from .hailo import open_hailo
from .imx500 import IMX500Sensor, open_imx500
from .isolated import IsolatedBackend
from .local import check_library, open_local
from .worker import WorkerPlan

log = logging.getLogger(__name__)

_warned: set[str] = set()


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """What :func:`open_backend` loaded.

    Attributes:
        backend: the loaded model, ready to invoke.
        path: the model file actually loaded (the CPU twin after a fallback).
        info: that file's parsed contents (labels, spec and graph of the model that runs).
        data: that file's bytes.
    """

    backend: Backend
    path: Path
    info: ModelFileInfo
    data: bytes = field(repr=False)

    def __iter__(self) -> Iterator[Any]:
        """Deprecated: ``backend, path = open_backend(...)``, the old two-item answer (path as str)."""
        warnings.warn(
            "open_backend now returns a LoadedModel; use .backend, .path, .info and .data instead of unpacking it "
            "(unpacking goes in the next release)",
            DeprecationWarning,
            stacklevel=2,
        )
        return iter((self.backend, str(self.path)))


def default_isolation(on_edgetpu: bool) -> bool:
    """Whether to run the interpreter in a worker process when the caller did not say.

    On for the Edge TPU (its runtime aborts the process on USB loss, and a round trip costs tens of
    microseconds against milliseconds of inference: see benchmarks/bench_isolation.py); off for the
    CPU, which does not crash that way. Never on Windows, where the worker's pipes cannot be polled.
    """
    return on_edgetpu and platform.system() != "Windows"


def open_backend(
    model: bytes,
    model_info: ModelFileInfo,
    model_path: str,
    *,
    runtime: str | None = None,
    device: str = "auto",
    num_threads: int | None = None,
    isolate: bool | None = None,
) -> LoadedModel:
    """Load ``model`` on the best runtime and device for it.

    Args:
        model: the model file's bytes.
        model_info: the parsed model (custom ops tell an Edge TPU model).
        model_path: the file's path, for messages and for finding a CPU twin.
        runtime: a runtime name to force, or None/``auto``.
        device: ``auto``, ``cpu``, ``edgetpu``, a Coral device string (``usb``, ``usb:0``, ``pci:0``, ``:0``),
            ``hailo`` or ``hailo:N``.
        num_threads: CPU threads; defaults to the cores this process may use.
        isolate: run the interpreter in a worker process (see :mod:`edge_classifier.backends.isolated`);
            None: on for the Edge TPU, off for the CPU. A Hailo runs in this process.

    Returns:
        the backend, with the path, parsed info and bytes of the model file it actually loaded.

    Raises:
        BackendUnavailableError, ModelError, EdgeTpuError, HailoError, WrongAcceleratorError: see the messages.
    """
    kind = model_kind(model_path)
    if kind != "tflite" or _accelerator_device(device):
        return _open_accelerator(kind, model, model_info, model_path, runtime=runtime, device=device, num_threads=num_threads)
    rt, reason, notes = _runtime.select_runtime(runtime)
    threads = num_threads if num_threads and num_threads > 0 else _runtime.default_threads()
    if device == "cpu" or (device == "auto" and not model_info.is_edgetpu_compiled):
        backend: Backend
        if isolate:
            backend = _open_isolated_cpu(rt, reason, notes, model_path, device, threads)
        else:
            why = reason if device == "cpu" else f"{reason}; CPU because the model is not compiled for the Edge TPU"
            backend = _runtime.open_cpu(rt, model_path, threads, model=model, reason=why, notes=notes)
        return LoadedModel(backend, Path(model_path), model_info, model)
    return _open_edgetpu(rt, reason, notes, model, model_info, model_path, device=device, num_threads=threads, isolate=isolate)


# --- Raspberry Pi's accelerators: Hailo (.hef) and the AI Camera's IMX500 (.rpk) ---------------------------
_CORAL_DEVICES = ("edgetpu", "tpu", "usb", "pci")


def model_kind(path: str | Path) -> str:
    """``hef``, ``rpk`` or ``tflite``: which accelerator family a model file is for (by its name, else its first bytes)."""
    if _hef.is_hef(path):
        return "hef"
    if is_rpk(path):
        return "rpk"
    return "tflite"


def _accelerator_device(device: str) -> bool:
    text = device.strip().lower()
    return text == "imx500" or text == "hailo" or text.startswith("hailo:")


def _coral_device(device: str) -> bool:
    text = device.strip().lower()
    return text.split(":")[0] in _CORAL_DEVICES or text.startswith(":")


def sensor_model_error(model_path: str) -> WrongAcceleratorError:
    """An ``.rpk`` handed to a Classifier: only the camera that captures the frames can run it."""
    twin = Path(model_path).with_suffix(".tflite")
    return WrongAcceleratorError(
        model_path,
        "is an IMX500 network: it runs on the AI Camera's sensor, on the frames that camera captures, not on images "
        "given to a Classifier",
        f"use SensorClassifier({Path(model_path).name!r}) and stream from 'picamera' (the CLI does this for "
        f"`run --model {Path(model_path).name} --source picamera`), or classify with its CPU model {twin.name}",
    )


def read_any_model(path: str | Path) -> tuple[bytes, ModelFileInfo]:
    """Read a model of any kind the Classifier loads: its bytes and parsed info.

    A ``.tflite`` is parsed as usual. A ``.hef`` cannot be parsed without HailoRT, so its answer is the sidecar
    files (labels, spec) packed as an associated-files archive, and a one-input, one-output stand-in for its graph:
    the Classifier then builds its spec from the Hailo's tensors and the sidecar as it does for a ``.tflite``.

    Raises:
        ModelError: missing, unreadable or corrupt; SpecError/LabelsError for a bad sidecar.
        WrongAcceleratorError: an ``.rpk``, which only the AI Camera's own frames can feed.
    """
    kind = model_kind(path)
    if kind == "tflite":
        return _read_model(path)
    if kind == "rpk":
        raise sensor_model_error(str(path))
    size = _hef.check_hef(path)
    # A HEF takes raw pixels (normalisation is compiled in), so a sidecar's mean/std must not re-normalise them.
    files, sources = sidecar_files(path, drop=("mean", "std", "hailo_arch"))
    for name, source in sources.items():
        log.info("%s: %s from the sidecar %s", path, name, source)
    data = append_associated_files(b"", files) if files else b""
    stand_in = SubgraphInfo("hef", (), (), (0,), (0,))
    return data, ModelFileInfo(str(path), size, 0, (stand_in,), (), tuple(files))


def _open_accelerator(
    kind: str,
    model: bytes,
    model_info: ModelFileInfo,
    model_path: str,
    *,
    runtime: str | None,
    device: str,
    num_threads: int | None,
) -> LoadedModel:
    """A Hailo for a ``.hef`` (or its CPU twin on ``auto``); one WrongAcceleratorError for a model on the wrong chip."""
    name = Path(model_path).name
    text = device.strip().lower()
    if kind == "rpk":
        raise sensor_model_error(model_path)
    if text == "imx500":
        raise WrongAcceleratorError(
            model_path,
            "is not an IMX500 network: device='imx500' runs .rpk files on the AI Camera's sensor",
            "convert it: `edge-convert convert <float model> --target imx500`, package it on the Pi with "
            "`imx500-package -i packerOut.zip -o out/`, and pass the .rpk; or run this model with device='auto'",
        )
    if kind == "tflite":  # on a Hailo device string
        raise WrongAcceleratorError(
            model_path,
            f"is a TFLite model, and device={device!r} runs only Hailo .hef files",
            "take a precompiled .hef for your chip (Raspberry Pi's /usr/share/hailo-models, Hailo's model zoo); "
            "compiling one needs Hailo's Dataflow Compiler (a vendor account); or run this model with device='auto'",
        )
    twin = _hef.twin_path(model_path)
    if text == "cpu" or _coral_device(text):
        where = "the CPU" if text == "cpu" else f"a Coral Edge TPU (device={device!r})"
        have = f"pass its CPU model {twin.name}" if twin.is_file() else "pass a .tflite of the same network"
        raise WrongAcceleratorError(
            model_path,
            f"is a Hailo HEF: it runs only on a Hailo accelerator, not on {where}",
            f"use device='auto' or 'hailo' on a Hailo, or {have}"
            + (" (compile it for the Edge TPU first)" if text != "cpu" else ""),
        )
    declared = _hef.normalise_chip(str(read_sidecar_spec(model_path).get("hailo_arch") or "")) or None
    hef_chip = declared or _hef.target_from_name(model_path)
    hailo_device = "hailo" if text == "auto" else text
    why = f"the model is a .hef, compiled for the {_hef.CHIP_NAMES[hef_chip]}" if hef_chip else "the model is a .hef"
    try:
        backend: Backend = open_hailo(model_path, device=hailo_device, hef_chip=hef_chip, reason=why)
    except AcceleratorError as exc:
        if text != "auto":
            raise
        if not twin.is_file():
            raise type(exc)(
                exc.thing,
                exc.cause,
                f"{exc.fix}; or put its CPU model beside it as {twin.name}, which device='auto' then runs instead",
            ) from exc
        data, info = _read_model(twin)
        rt, reason, notes = _runtime.select_runtime(runtime)
        threads = num_threads if num_threads and num_threads > 0 else _runtime.default_threads()
        message = f"Hailo not usable, running the CPU twin {twin.name} instead ({exc.thing}: {exc.cause})"
        cpu = _runtime.open_cpu(rt, twin, threads, model=data, reason=f"{message}; {reason}", notes=notes)
        _warn_once(model_path, message, exc.fix, stacklevel=5)
        return LoadedModel(cpu, twin, info, data)
    log.info("%s: %s", name, backend.info)
    return LoadedModel(backend, Path(model_path), model_info, model)


def open_sensor(model_path: str | Path, *, device: str = "auto") -> IMX500Sensor:
    """Load an ``.rpk`` onto the AI Camera's IMX500 (for :class:`~edge_classifier.sensor_classifier.SensorClassifier`).

    Args:
        model_path: the ``.rpk``.
        device: ``auto`` or ``imx500``.

    Raises:
        WrongAcceleratorError: not an ``.rpk``, or a device other than the IMX500.
        ModelError, IMX500Error, SystemPackageHiddenError: see :func:`~edge_classifier.backends.imx500.open_imx500`.
    """
    path = str(model_path)
    text = device.strip().lower()
    if model_kind(path) != "rpk":
        raise WrongAcceleratorError(
            path,
            "is not an IMX500 network (.rpk): the sensor runs only networks packaged for it",
            "use Classifier for .tflite and .hef models; "
            "convert for the AI Camera with `edge-convert convert ... --target imx500`",
        )
    if text not in ("auto", "imx500"):
        raise WrongAcceleratorError(
            path,
            f"is an IMX500 network, and device={device!r} is not the AI Camera",
            "use device='auto' or 'imx500', or run the network's .tflite on that device",
        )
    return open_imx500(path, reason="the model is an .rpk")


def _open_edgetpu(
    rt: _runtime.Runtime,
    reason: str,
    notes: tuple[str, ...],
    model: bytes,
    model_info: ModelFileInfo,
    model_path: str,
    *,
    device: str,
    num_threads: int,
    isolate: bool | None,
) -> LoadedModel:
    """The Edge TPU, or (``device="auto"`` only) the CPU twin.

    Raises:
        NotCompiledForEdgeTpuError: a plain model with an explicit Edge TPU device.
        CpuTwinMissingError: ``auto``, no usable Edge TPU, and no twin file.
        EdgeTpuError: an explicit Edge TPU device that cannot be used (the child class names the cause).
    """
    if not model_info.is_edgetpu_compiled:
        raise not_compiled_error(model_path, device)
    tpu_device = "edgetpu" if device == "auto" else device
    parse_device(tpu_device)  # a bad device string is a usage error, never a reason to fall back
    isolated = default_isolation(True) if isolate is None else isolate
    try:
        if isolated:
            # Loading the library opens no device; checking here saves starting a worker (0.3 s) only to
            # hear that libedgetpu is missing, the common case on a machine without a Coral.
            check_library(tpu_device)
            plan = WorkerPlan(model_path, rt.name, tpu_device, num_threads)
            backend: Backend = IsolatedBackend.start(plan, reason=reason, notes=notes)
        else:
            backend = open_local(
                rt, model_path, device=tpu_device, num_threads=num_threads, model=model, reason=reason, notes=notes
            )
    except EdgeTpuError as exc:
        if device != "auto":
            raise
        return _open_twin(rt, reason, notes, model_path, num_threads, exc)
    if device == "auto" and isolated:
        backend = _with_failover(backend, rt, reason, notes, model_path, tpu_device, num_threads)
    return LoadedModel(backend, Path(model_path), model_info, model)


def _open_twin(
    rt: _runtime.Runtime, reason: str, notes: tuple[str, ...], model_path: str, num_threads: int, exc: EdgeTpuError
) -> LoadedModel:
    twin = twin_path(model_path)
    why = f"{exc.thing}: {exc.cause}"
    if twin == Path(model_path) or not twin.is_file():
        raise twin_missing_error(model_path, twin, why) from exc
    data, info = _read_model(twin)  # parsed as well: the caller builds its spec and labels from the twin
    message = f"Edge TPU not usable, running the CPU twin {twin.name} instead ({why})"
    backend = _runtime.open_cpu(rt, twin, num_threads, model=data, reason=f"{message}; {reason}", notes=notes)
    _warn_once(model_path, message, exc.fix)
    return LoadedModel(backend, twin, info, data)


def _warn_once(key: str, message: str, fix: str, stacklevel: int = 6) -> None:
    """Once per model and process: the log gets the fix, the warning (shown at the caller's line) stays one line."""
    if key in _warned:
        log.info("%s", message)
        return
    _warned.add(key)
    log.warning("%s\n  fix: %s", message, fix)
    # stacklevel 6: _open_twin, _open_edgetpu, open_backend, Classifier.__init__, the caller (5 from _open_accelerator).
    warnings.warn(message, FallbackWarning, stacklevel=stacklevel)


def _with_failover(
    primary: Backend, rt: _runtime.Runtime, reason: str, notes: tuple[str, ...], model_path: str, device: str, num_threads: int
) -> Backend:
    """The isolated Edge TPU backend, answered for by the CPU twin while its worker is dead."""
    plan = WorkerPlan(model_path, rt.name, device, num_threads)
    twin = twin_path(model_path)

    def fallback() -> Backend:
        if twin == Path(model_path) or not twin.is_file():
            raise twin_missing_error(model_path, twin, "the Edge TPU worker died")
        return _runtime.open_cpu(rt, twin, num_threads, reason=f"CPU twin {twin.name} while the Edge TPU is lost", notes=notes)

    return FailoverBackend(primary, lambda: IsolatedBackend.start(plan, reason=reason, notes=notes), fallback)


def _open_isolated_cpu(
    rt: _runtime.Runtime, reason: str, notes: tuple[str, ...], model_path: str, device: str, num_threads: int
) -> Backend:
    """A CPU model in a worker process (``isolate=True``); on ``auto`` a dead worker is replaced in-process.

    On the CPU isolation guards against a native crash in a runtime or a custom op, at the cost
    measured by benchmarks/bench_isolation.py.
    """
    plan = WorkerPlan(model_path, rt.name, "cpu", num_threads)
    backend: Backend = IsolatedBackend.start(plan, reason=reason, notes=notes)
    if device != "auto":
        return backend

    def fallback() -> Backend:
        return _runtime.open_cpu(rt, model_path, num_threads, reason="in-process while the worker is restarted", notes=notes)

    return FailoverBackend(backend, lambda: IsolatedBackend.start(plan, reason=reason, notes=notes), fallback)


# --- deprecated aliases: these names lived here before the runtime got its own module -----------
_MOVED_TO_RUNTIME = frozenset(
    {"RUNTIME_ORDER", "Runtime", "available_runtimes", "default_threads", "make_interpreter", "runtime_version", "select_runtime"}
)


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_RUNTIME:
        new = f"edge_classifier.backends.runtime.{name}"
        value = getattr(_runtime, name)
    elif name == "read_model":
        new, value = "edge_classifier.tflite_file.read_model", _read_model
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"edge_classifier.backends.select.{name} moved to {new}; the old name goes in the next release",
        DeprecationWarning,
        stacklevel=2,
    )
    return value

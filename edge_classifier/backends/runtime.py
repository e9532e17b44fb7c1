"""The TFLite runtime: choose one, create an interpreter, and load a model on the CPU (:func:`open_cpu`).

Order: ai-edge-litert, then tflite-runtime, then TensorFlow's own interpreter. On an INT8
MobileNetV2 ai-edge-litert 2.3 invokes in about 9 ms on two x86 cores where tflite-runtime 2.14
takes about 105 ms (its XNNPACK was built without quantized kernels), so the order is a 10x
question. TensorFlow comes last and is imported only when it is asked for by name or is the only
runtime installed (Windows, where neither of the others ships wheels).

Every interpreter in the package is created by :func:`create_interpreter`, which keeps the runtime's
start-up chatter off stderr (see :mod:`.quiet`).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import BackendUnavailableError, ModelError
from ..tflite_file import read_model_bytes
from .base import Backend, BackendInfo
from .quiet import quiet_runtime_chatter

log = logging.getLogger(__name__)

RUNTIME_ORDER: tuple[str, ...] = ("ai-edge-litert", "tflite-runtime", "tensorflow")
_MODULES: dict[str, str] = {
    "ai-edge-litert": "ai_edge_litert.interpreter",
    "tflite-runtime": "tflite_runtime.interpreter",
    "tensorflow": "tensorflow.lite.python.interpreter",
}
_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "ai-edge-litert": ("ai-edge-litert",),
    "tflite-runtime": ("tflite-runtime",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-aarch64", "tensorflow-macos"),
}
_WHY_ORDER = "the first installed in the order ai-edge-litert > tflite-runtime > tensorflow (fastest INT8 kernels first)"


@dataclass(frozen=True)
class Runtime:
    """An importable TFLite runtime.

    Attributes:
        name: ``ai-edge-litert``, ``tflite-runtime`` or ``tensorflow``.
        version: installed package version.
        module: its interpreter module (``Interpreter``, ``load_delegate``).
    """

    name: str
    version: str
    module: ModuleType

    @property
    def interpreter_class(self) -> Any:
        """The runtime's ``Interpreter`` class."""
        return self.module.Interpreter

    def load_delegate(self, library: str, options: dict[str, str] | None = None) -> Any:
        """The runtime's own ``load_delegate`` (exceptions pass through unchanged for classification)."""
        return self.module.load_delegate(library, options or {})


def runtime_version(name: str) -> str | None:
    """The installed version of a runtime's package, or None when it is not installed."""
    for dist in _DISTRIBUTIONS[name]:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _import_runtime(name: str) -> Runtime:
    version = runtime_version(name)
    if version is None:
        raise BackendUnavailableError(name, "is not installed", f"pip install {_install_hint(name)}")
    try:
        module = importlib.import_module(_MODULES[name])
    except Exception as exc:  # noqa: BLE001 - a broken native wheel can raise anything on import
        raise BackendUnavailableError(
            f"{name} {version}",
            f"is installed but cannot be imported ({type(exc).__name__}: {exc})",
            _import_fix(name, exc),
        ) from exc
    return Runtime(name, version, module)


def _install_hint(name: str) -> str:
    return {
        "ai-edge-litert": "ai-edge-litert",
        "tflite-runtime": '"edge-classifier[tflite-runtime]"',
        "tensorflow": "tensorflow-cpu",
    }[name]


def _import_fix(name: str, exc: Exception) -> str:
    text = str(exc)
    if "numpy" in text.lower() and ("_ARRAY_API" in text or "compiled using NumPy 1" in text):
        return f"{name} was built for numpy<2: pip install 'numpy<2', or use ai-edge-litert which supports numpy 2"
    return f"reinstall it: pip install --force-reinstall {_install_hint(name)}"


def available_runtimes() -> list[tuple[str, str | None, str]]:
    """Every known runtime as ``(name, version or None, note)``, in preference order.

    A runtime is only imported to check it when its package is installed, and TensorFlow not at
    all (its import takes seconds and hundreds of MB): its installed version is reported.
    """
    rows: list[tuple[str, str | None, str]] = []
    for name in RUNTIME_ORDER:
        version = runtime_version(name)
        if version is None:
            rows.append((name, None, f"not installed (pip install {_install_hint(name)})"))
        elif name == "tensorflow":
            rows.append((name, version, "installed (imported only when chosen)"))
        else:
            try:
                _import_runtime(name)
                rows.append((name, version, "usable"))
            except BackendUnavailableError as exc:
                rows.append((name, version, exc.cause))
    return rows


def select_runtime(preferred: str | None = None) -> tuple[Runtime, str, tuple[str, ...]]:
    """Pick the runtime: the one named, or the first usable in :data:`RUNTIME_ORDER`.

    Returns:
        (runtime, reason, notes about runtimes skipped on the way).

    Raises:
        BackendUnavailableError: the named runtime is missing, or none is installed.
    """
    if preferred is not None and preferred != "auto":
        if preferred not in RUNTIME_ORDER:
            raise BackendUnavailableError(
                f"backend={preferred!r}", "is not a known runtime", f"use one of: auto, {', '.join(RUNTIME_ORDER)}"
            )
        return _import_runtime(preferred), f"forced by backend={preferred!r}", ()
    notes: list[str] = []
    for name in RUNTIME_ORDER:
        try:
            rt = _import_runtime(name)
        except BackendUnavailableError as exc:
            notes.append(f"{name}: {exc.cause}")
            continue
        reason = _WHY_ORDER if not notes else f"{_WHY_ORDER}; skipped " + "; ".join(notes)
        if name == "tflite-runtime":
            reason += "; note: tflite-runtime 2.14 runs INT8 models ~10x slower than ai-edge-litert (pip install ai-edge-litert)"
        return rt, reason, tuple(notes)
    raise BackendUnavailableError(
        "TFLite runtime",
        "none is installed (" + "; ".join(notes) + ")",
        "pip install ai-edge-litert (Linux x86-64/aarch64, macOS arm64); on Windows pip install tensorflow-cpu",
    )


def default_threads() -> int:
    """CPU cores this process may use (respects taskset/cgroup affinity where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


_UNRESOLVED = re.compile(r"unresolved custom op: ([^\s.]+)")


def create_interpreter(
    runtime: Runtime, model: bytes, num_threads: int, delegates: list[Any] | None = None, *, quiet: bool = True
) -> Any:
    """Create and allocate an interpreter; the runtime's own exceptions pass through unchanged.

    The one place an interpreter is made: callers map the exceptions to the error that fits their case
    (:func:`make_interpreter` for the CPU, the Edge TPU diagnosis for a delegate).

    Args:
        quiet: hide the runtime's start-up chatter (see :mod:`.quiet`). Off where a native crash while
            loading is a known risk (a delegate), so that its last words reach the terminal.
    """
    with quiet_runtime_chatter() if quiet else contextlib.nullcontext():
        interp = runtime.interpreter_class(model_content=model, num_threads=num_threads, experimental_delegates=delegates or None)
        interp.allocate_tensors()
    return interp


def make_interpreter(
    runtime: Runtime, model: bytes, model_path: str, num_threads: int, delegates: list[Any] | None = None
) -> Any:
    """Create and allocate an interpreter, turning the runtime's errors into ModelError.

    Raises:
        ModelError: corrupt or truncated file, or an op the runtime does not have.
    """
    try:
        interp = create_interpreter(runtime, model, num_threads, delegates)
    except (RuntimeError, ValueError) as exc:
        text = str(exc)
        m = _UNRESOLVED.search(text)
        if m:
            op = m.group(1)
            if op == "edgetpu-custom-op":
                raise ModelError(
                    model_path,
                    "is compiled for the Edge TPU and cannot run on the CPU alone",
                    "attach an Edge TPU and use device='auto' or 'edgetpu', "
                    "or pass the CPU model (the same name without _edgetpu)",
                ) from exc
            raise ModelError(
                model_path,
                f"uses the custom op '{op}', which {runtime.name} {runtime.version} does not provide",
                "re-convert the model with builtin ops only (TFLITE_BUILTINS_INT8), or register the op with the runtime",
            ) from exc
        if "not a valid Flatbuffer" in text or "Could not open" in text or "verif" in text.lower():
            raise ModelError(
                model_path,
                "the model file is truncated or corrupt (the runtime's flatbuffer check failed)",
                "re-download or re-convert the model; compare its size and sha256 with the original",
            ) from exc
        raise ModelError(
            model_path,
            f"{runtime.name} {runtime.version} cannot load it ({text.strip()})",
            "re-convert the model, or try another runtime with backend=",
        ) from exc
    return interp


def open_cpu(
    runtime: Runtime,
    model_path: str | Path,
    num_threads: int,
    *,
    model: bytes | None = None,
    reason: str = "CPU",
    notes: tuple[str, ...] = (),
) -> Backend:
    """Load a model on the CPU in this process: read the file, create the interpreter, wrap it in a Backend.

    Every CPU load in the package goes through here (the first choice, the CPU twin, a fallback, the worker).

    Args:
        runtime: the chosen runtime (see :func:`select_runtime`).
        model_path: the model file; read only when ``model`` is None.
        num_threads: CPU threads for the interpreter.
        model: the file's bytes when the caller holds them already.
        reason: why the CPU runs it, for :attr:`BackendInfo.reason`.
        notes: what was tried and skipped on the way.

    Raises:
        ModelError: the file is missing, not a TFLite model, corrupt, or needs an op the runtime lacks.
    """
    path = str(model_path)
    data = model if model is not None else read_model_bytes(path)
    interp = make_interpreter(runtime, data, path, num_threads)
    return Backend(interp, BackendInfo(runtime.name, runtime.version, "cpu", reason, num_threads, path, notes))

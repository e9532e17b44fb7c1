"""Choose the TFLite runtime and the device, in one place, and say why.

Order: ai-edge-litert, then tflite-runtime, then TensorFlow's own interpreter. On an INT8
MobileNetV2 ai-edge-litert 2.3 invokes in about 9 ms on two x86 cores where tflite-runtime 2.14
takes about 105 ms (its XNNPACK was built without quantized kernels), so the order is a 10x
question. TensorFlow comes last and is imported only when it is asked for by name or is the only
runtime installed (Windows, where neither of the others ships wheels).
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import BackendUnavailableError, EdgeClassifierError, ModelError
from ..tflite_file import ModelFileInfo
from .base import Backend, BackendInfo

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
    return {"ai-edge-litert": "ai-edge-litert", "tflite-runtime": '"edge-classifier[tflite-runtime]"', "tensorflow": "tensorflow-cpu"}[name]


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


def make_interpreter(runtime: Runtime, model: bytes, model_path: str, num_threads: int, delegates: list[Any] | None = None) -> Any:
    """Create and allocate an interpreter, turning the runtime's errors into ModelError.

    Raises:
        ModelError: corrupt or truncated file, or an op the runtime does not have.
    """
    try:
        interp = runtime.interpreter_class(
            model_content=model, num_threads=num_threads, experimental_delegates=delegates or None
        )
        interp.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        text = str(exc)
        m = _UNRESOLVED.search(text)
        if m:
            op = m.group(1)
            if op == "edgetpu-custom-op":
                raise ModelError(
                    model_path,
                    "is compiled for the Edge TPU and cannot run on the CPU alone",
                    "attach an Edge TPU and use device='auto' or 'edgetpu', or pass the CPU model (the same name without _edgetpu)",
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
            model_path, f"{runtime.name} {runtime.version} cannot load it ({text.strip()})", "re-convert the model, or try another runtime with backend="
        ) from exc
    return interp


def open_backend(
    model: bytes,
    model_info: ModelFileInfo,
    model_path: str,
    *,
    runtime: str | None = None,
    device: str = "auto",
    num_threads: int | None = None,
    isolate: bool | None = None,
) -> tuple[Backend, str]:
    """Load ``model`` on the best runtime and device for it.

    Args:
        model: the model file's bytes.
        model_info: the parsed model (custom ops tell an Edge TPU model).
        model_path: the file's path, for messages and for finding a CPU twin.
        runtime: a runtime name to force, or None/``auto``.
        device: ``auto``, ``cpu``, ``edgetpu`` or a Coral device string (``usb``, ``usb:0``, ``pci:0``, ``:0``).
        num_threads: CPU threads; defaults to the cores this process may use.
        isolate: run the interpreter in a worker process (see :mod:`edge_classifier.edgetpu.worker`);
            None: on for the Edge TPU, off for the CPU.

    Returns:
        (backend, path of the model actually loaded).

    Raises:
        BackendUnavailableError, ModelError, EdgeTpuError: see the messages.
    """
    rt, reason, notes = select_runtime(runtime)
    threads = num_threads if num_threads and num_threads > 0 else default_threads()
    if device == "cpu" or (device == "auto" and not model_info.is_edgetpu_compiled):
        if isolate:
            from . import edgetpu

            return edgetpu.open_isolated_cpu_backend(rt, reason, notes, model_path, device=device, num_threads=threads)
        interp = make_interpreter(rt, model, model_path, threads)
        why = reason if device == "cpu" else f"{reason}; CPU because the model is not compiled for the Edge TPU"
        return Backend(interp, BackendInfo(rt.name, rt.version, "cpu", why, threads, model_path, notes)), model_path
    from . import edgetpu

    return edgetpu.open_edgetpu_backend(rt, reason, notes, model, model_info, model_path, device=device, num_threads=threads, isolate=isolate)


def read_model(path: str | Path) -> tuple[bytes, ModelFileInfo]:
    """Read and parse a model file (see :mod:`edge_classifier.tflite_file`)."""
    from ..tflite_file import parse_model, read_model_bytes

    data = read_model_bytes(path)
    try:
        info = parse_model(data, str(path))
    except EdgeClassifierError:
        raise
    except Exception as exc:  # noqa: BLE001 - flatbuffers can fail in many ways on garbage
        raise ModelError(str(path), f"the model file is truncated or corrupt ({type(exc).__name__})", "re-download or re-convert the model") from exc
    return data, info

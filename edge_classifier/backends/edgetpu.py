"""Deprecated alias: this module's parts moved to the layers they belong to (goes in the next release).

- ``sysroot``, ``ENV_SYSROOT`` -> :mod:`edge_classifier.edgetpu.discovery` (a fact about where to probe);
- ``default_isolation`` -> :mod:`edge_classifier.backends.select` (policy);
- ``open_in_process`` -> :func:`edge_classifier.backends.local.open_local` (loading; same arguments here);
- ``open_edgetpu_backend``, ``open_isolated_cpu_backend`` -> :func:`edge_classifier.backends.select.open_backend`,
  which took over these steps (kept here with their old arguments and answers).

Nothing in the package imports this module.
"""

from __future__ import annotations

import warnings
from typing import Any

from ..edgetpu import discovery
from ..tflite_file import ModelFileInfo
from . import select
from .base import Backend
from .local import open_local
from .runtime import Runtime


def _open_in_process(
    runtime: Runtime, model: bytes, model_path: str, device: str, num_threads: int, reason: str = "", notes: tuple[str, ...] = ()
) -> Backend:
    """The old ``open_in_process`` arguments, for :func:`~edge_classifier.backends.local.open_local`."""
    return open_local(runtime, model_path, device=device, num_threads=num_threads, model=model, reason=reason, notes=notes)


def _open_edgetpu_backend(
    runtime: Runtime,
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
    """The old ``open_edgetpu_backend``: (backend, path of the model actually loaded)."""
    loaded = select._open_edgetpu(
        runtime, reason, notes, model, model_info, model_path, device=device, num_threads=num_threads, isolate=isolate
    )
    return loaded.backend, str(loaded.path)


def _open_isolated_cpu_backend(
    runtime: Runtime, reason: str, notes: tuple[str, ...], model_path: str, *, device: str, num_threads: int
) -> tuple[Backend, str]:
    """The old ``open_isolated_cpu_backend``: (backend, model path)."""
    return select._open_isolated_cpu(runtime, reason, notes, model_path, device, num_threads), model_path


_MOVED: dict[str, tuple[str, Any]] = {
    "sysroot": ("edge_classifier.edgetpu.discovery.sysroot", discovery.sysroot),
    "ENV_SYSROOT": ("edge_classifier.edgetpu.discovery.ENV_SYSROOT", discovery.ENV_SYSROOT),
    "default_isolation": ("edge_classifier.backends.select.default_isolation", select.default_isolation),
    "open_in_process": ("edge_classifier.backends.local.open_local", _open_in_process),
    "open_edgetpu_backend": ("edge_classifier.backends.select.open_backend", _open_edgetpu_backend),
    "open_isolated_cpu_backend": ("edge_classifier.backends.select.open_backend", _open_isolated_cpu_backend),
}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    new, value = _MOVED[name]
    warnings.warn(
        f"edge_classifier.backends.edgetpu.{name} is deprecated: use {new}; the old name goes in the next release",
        DeprecationWarning,
        stacklevel=2,
    )
    return value

"""Edge TPU delegate loading (being built in issue 3; this first cut only reports the library missing)."""

from __future__ import annotations

from typing import Any

from ..errors import EdgeTpuLibraryMissingError
from ..tflite_file import ModelFileInfo
from .base import Backend


def open_edgetpu_backend(
    runtime: Any, reason: str, notes: tuple[str, ...], model: bytes, model_info: ModelFileInfo, model_path: str, *, device: str, num_threads: int
) -> tuple[Backend, str]:
    """Load ``model`` with the Edge TPU delegate."""
    raise EdgeTpuLibraryMissingError("libedgetpu.so.1", "is not installed", "install libedgetpu1-std")

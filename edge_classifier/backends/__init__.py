"""TFLite runtimes and accelerators: the one place where the hardware is chosen (see select.py)."""

from .base import Backend, BackendInfo
from .select import RUNTIME_ORDER, available_runtimes, open_backend, select_runtime

__all__ = ["Backend", "BackendInfo", "RUNTIME_ORDER", "available_runtimes", "open_backend", "select_runtime"]

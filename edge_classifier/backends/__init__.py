"""TFLite runtimes and accelerators, in layers: policy on top, loading below it (see :mod:`.select`).

- :mod:`.select`: which runtime and device, whether isolated, when to fall back (policy only).
- :mod:`.isolated` / :mod:`.failover`: a model in a worker process; a CPU stand-in while that worker is lost.
- :mod:`.worker`: the worker process's own side (it imports only :mod:`.local` and :mod:`.runtime`).
- :mod:`.local`: load in this process, on the CPU or the Edge TPU delegate.
- :mod:`.runtime`: choose a TFLite runtime, create interpreters, load on the CPU (:func:`.runtime.open_cpu`).
- :mod:`.base`: the :class:`Backend` every layer hands up.
"""

from .base import Backend, BackendInfo
from .runtime import RUNTIME_ORDER, available_runtimes, select_runtime
from .select import LoadedModel, open_backend

__all__ = ["Backend", "BackendInfo", "LoadedModel", "RUNTIME_ORDER", "available_runtimes", "open_backend", "select_runtime"]

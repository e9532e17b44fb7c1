"""Deprecated alias: worker-process isolation moved to :mod:`edge_classifier.backends.isolated` (goes in the next release).

Nothing in the package imports this module; it only keeps old user imports working, with a
DeprecationWarning naming the new path.
"""

from __future__ import annotations

import warnings
from typing import Any

_MOVED = {
    "IsolatedBackend": "edge_classifier.backends.isolated",
    "WorkerPlan": "edge_classifier.backends.isolated",
    "LOAD_TIMEOUT_S": "edge_classifier.backends.isolated",
    "INVOKE_TIMEOUT_S": "edge_classifier.backends.isolated",
    "worker_main": "edge_classifier.backends.worker",
}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from ..backends import isolated, worker

    warnings.warn(
        f"edge_classifier.edgetpu.worker.{name} moved to {_MOVED[name]}.{name}; the old path goes in the next release",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(worker if name == "worker_main" else isolated, name)

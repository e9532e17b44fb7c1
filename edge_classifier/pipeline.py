"""Deprecated: the old home of the camera loop, kept for one release so that old imports keep working.

It did three jobs, now one module each:

- the frame loop (``FrameLoop``, ``FrameSlot``, ``stream``): :mod:`edge_classifier.loop`;
- the queue behind blocking sinks (``QueuedSink``): :mod:`edge_classifier.sinks.worker`;
- running a session with signals (``run_pipeline``): :mod:`edge_classifier.session`
  (``from edge_classifier import run_pipeline`` is the short form).

Every name imported from here still works and raises a DeprecationWarning that says where it lives now.
"""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any

from . import loop, session
from .sinks import worker

# name -> the module that holds it now (under the same name)
_MOVED: dict[str, ModuleType] = {
    "FrameLoop": loop,
    "FrameSlot": loop,
    "stream": loop,
    "_Captured": loop,
    "QueuedSink": worker,
    "run_pipeline": session,
}

# Every name here is deprecated, so `import *` takes none of them (and warns about none).
__all__: list[str] = []


def __getattr__(name: str) -> Any:
    """The moved name, with a DeprecationWarning pointing at the import to use instead."""
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"edge_classifier.pipeline is deprecated and will be removed in the next release: import {name} from {module.__name__}",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(name for name in _MOVED if not name.startswith("_"))

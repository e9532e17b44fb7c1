"""Deprecated alias: failover moved to :mod:`edge_classifier.backends.failover` (goes in the next release).

Nothing in the package imports this module; it only keeps old user imports working, with a
DeprecationWarning naming the new path.
"""

from __future__ import annotations

import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    if name != "FailoverBackend":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from ..backends import failover

    warnings.warn(
        "edge_classifier.edgetpu.failover.FailoverBackend moved to edge_classifier.backends.failover.FailoverBackend; "
        "the old path goes in the next release",
        DeprecationWarning,
        stacklevel=2,
    )
    return failover.FailoverBackend

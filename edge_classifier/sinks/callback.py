"""A sink that hands each Result to a Python callable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..results import Result


class CallbackSink:
    """Calls ``fn(result)`` for every frame.

    Args:
        fn: the callable; an exception it raises ends the run (after every sink is closed).
        blocking: True when ``fn`` may block (network, disk): the pipeline then calls it from a
            thread of its own behind a bounded queue.
        events_only: call it only on frames where the smoothed label (or a region's state) changed.
    """

    def __init__(self, fn: Callable[[Result], Any], *, blocking: bool = False, events_only: bool = False) -> None:
        self.fn = fn
        self.blocking = blocking
        self.events_only = events_only

    def start(self) -> None:
        """Nothing to open."""

    def write(self, result: Result) -> None:
        """Call the function."""
        if self.events_only and not result.events:  # neither a label event nor a region's state event
            return
        self.fn(result)

    def close(self) -> None:
        """Nothing to release."""

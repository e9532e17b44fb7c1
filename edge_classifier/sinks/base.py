"""The sink protocol: a small start/write/close object that receives Results."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..results import Result


@runtime_checkable
class Sink(Protocol):
    """Receives every Result of a run.

    ``start`` is called once before the first frame, ``write`` once per Result in the inference
    thread (so it must be quick, or declare ``blocking = True`` to be given a bounded queue and a
    thread of its own by the pipeline), and ``close`` once on every exit path, Ctrl-C included;
    ``close`` must flush and release whatever the sink holds.
    """

    #: True when ``write`` may block (disk, network): the pipeline then runs it behind a bounded queue.
    blocking: bool

    def start(self) -> None:
        """Open files, windows or connections."""

    def write(self, result: Result) -> None:
        """Handle one result."""

    def close(self) -> None:
        """Flush and release; safe to call more than once."""

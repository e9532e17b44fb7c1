"""JSON lines: one record per frame (``Result.to_dict``), to a file or stdout, flushed line by line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

from ..errors import SinkError
from ..results import Result


class JsonlSink:
    """Writes one JSON object per frame; each line is flushed, so a killed run leaves only whole lines.

    Args:
        path: a file path, or ``"-"`` for stdout.
        events_only: write only the frames that carry a label event.

    Raises (from ``start``):
        SinkError: the file cannot be created.
    """

    blocking = True

    def __init__(self, path: str | Path, *, events_only: bool = False) -> None:
        self.path = str(path)
        self.events_only = events_only
        self._file: TextIO | None = None
        self._owned = False
        self.written = 0

    def start(self) -> None:
        """Open the file (truncating it) or take stdout."""
        if self.path == "-":
            self._file, self._owned = sys.stdout, False
            return
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise SinkError(self.path, f"cannot be written ({exc.strerror or exc})", "pick a writable path, or - for stdout") from exc
        self._owned = True

    def write(self, result: Result) -> None:
        """Write and flush one record."""
        if self._file is None:
            raise SinkError(self.path, "the JSON lines sink is not started", "call start() first (run_pipeline does)")
        if self.events_only and result.event is None:
            return
        try:
            self._file.write(json.dumps(result.to_dict(), separators=(",", ":")) + "\n")
            self._file.flush()
        except OSError as exc:
            raise SinkError(self.path, f"write failed ({exc.strerror or exc})", "check free disk space") from exc
        self.written += 1

    def close(self) -> None:
        """Flush and close the file (stdout is flushed, not closed)."""
        f, self._file = self._file, None
        if f is None:
            return
        try:
            f.flush()
        finally:
            if self._owned:
                f.close()

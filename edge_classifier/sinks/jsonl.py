"""JSON lines: one record per frame (``Result.records``: per region with regions), to a file or stdout; every line
on disk is whole.

Each record goes to the file as one unbuffered write of a complete line. When the disk fills up part-way through a
line, the file is cut back to the end of the last whole line before the error is raised, so whatever reads the file
later (``jq``, a log shipper, ``json.loads`` per line) never meets half a record. On stdout, a reader that goes
away (``| head -1``) ends the run quietly, the way Unix tools stop when their pipe closes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sys
from pathlib import Path
from typing import BinaryIO, TextIO

from ..errors import SinkError
from ..redact import redact_url
from ..results import Result
from .files import os_cause

log = logging.getLogger(__name__)

#: Why a run ends when the reader of stdout went away (the run's ``stopped_by``).
STDOUT_CLOSED = "stdout closed"


def silence_stdout() -> None:
    """Point file descriptor 1 at /dev/null, so Python's own flush of stdout at exit cannot fail on a closed pipe."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)


class JsonlSink:
    """Writes one JSON object per frame; each line is written whole, so a killed run or a full disk leaves only whole lines.

    Args:
        path: a file path, or ``"-"`` for stdout.
        events_only: write only the frames that carry a label event.

    Attributes:
        name: how messages refer to this output (``JSON lines out.jsonl``).
        written: records written.
        stop_requested: True once stdout's reader went away (the session then ends the run, ``stopped_by`` ``stdout closed``).

    Raises (from ``start``):
        SinkError: the file cannot be created.
    """

    blocking = True

    def __init__(self, path: str | Path, *, events_only: bool = False) -> None:
        self.path = str(path)
        self.events_only = events_only
        self.name = "JSON lines on stdout" if self.path == "-" else f"JSON lines {self.path}"
        self.written = 0
        self.stop_requested = False
        self.stop_reason = STDOUT_CLOSED
        self._file: BinaryIO | None = None
        self._stdout: TextIO | None = None
        self._size = 0  # bytes of whole lines in the file: where a failed write is cut back to

    def start(self) -> None:
        """Open the file (truncating it) or take stdout."""
        if self.path == "-":
            self._stdout = sys.stdout
            return
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # Unbuffered: each line is one write the sink can check and, on failure, take back.
            self._file = open(self.path, "wb", buffering=0)  # noqa: SIM115 - closed in close()
        except OSError as exc:
            cause, fix = os_cause(exc, "pick a writable path, or - for stdout")
            raise SinkError(self.path, f"cannot be written: {cause}", fix) from exc
        self._size = 0

    def write(self, result: Result) -> None:
        """Write one whole record.

        Raises:
            SinkError: the line could not be written (the file keeps every whole line before it).
        """
        if self._file is None and self._stdout is None:
            if self.stop_requested:
                return  # the reader went away; the run is ending
            raise SinkError(self.path, "the JSON lines output is not started", "call start() first (run_pipeline does)")
        # With regions, a frame is one record per region classified on it (each with its ``region``).
        for record in result.records():
            if self.events_only and "event" not in record:
                continue
            if self._stdout is None and self._file is None:
                return  # stdout's reader went away on the record before
            source = record.get("source")
            if isinstance(source, str) and "://" in source:
                record["source"] = redact_url(source)  # a record is read by people too: never a password in it
            line = json.dumps(record, separators=(",", ":")) + "\n"
            if self._stdout is not None:
                self._write_stdout(self._stdout, line)
            elif self._file is not None:
                self._write_file(self._file, line.encode("utf-8"))
            self.written += 1

    def _write_stdout(self, out: TextIO, line: str) -> None:
        try:
            out.write(line)
            out.flush()
        except OSError as exc:
            if isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE:
                self._reader_gone()
                return
            cause, fix = os_cause(exc, "check what stdout is redirected to")
            raise SinkError("stdout", f"a JSON line could not be written: {cause}", fix) from exc

    def _reader_gone(self) -> None:
        """stdout's reader closed the pipe: stop writing and ask the run to end, quietly."""
        self._stdout = None
        self.stop_requested = True
        silence_stdout()
        log.info("stdout was closed by its reader; ending the run")

    def _write_file(self, f: BinaryIO, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                n = f.write(view)
                if not n:  # a raw write that wrote nothing and raised nothing: treat as a full disk
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[n:]
        except OSError as exc:
            kept = self._cut_back(f)
            cause, fix = os_cause(exc)
            raise SinkError(
                self.path,
                f"{cause}: a JSON line could not be written; the file keeps the {kept} whole line(s) before it",
                fix,
            ) from exc
        self._size += len(data)

    def _cut_back(self, f: BinaryIO) -> int:
        """Remove a partly written line (the bytes after the last whole one); returns the whole lines kept."""
        try:
            os.ftruncate(f.fileno(), self._size)
            f.seek(self._size)
        except OSError as exc:  # nothing more can be done for the file; the error raised says why it stopped
            log.error("%s: could not remove a partly written line (%s)", self.path, os_cause(exc)[0])
        return self.written

    def close(self) -> None:
        """Close the file (stdout is flushed, not closed); safe to call twice."""
        f, self._file = self._file, None
        out, self._stdout = self._stdout, None
        if out is not None:
            try:
                out.flush()
            except OSError as exc:
                if isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE:
                    silence_stdout()
                else:
                    raise SinkError(
                        "stdout", f"could not be flushed: {os_cause(exc)[0]}", "check what stdout is redirected to"
                    ) from exc
        if f is not None:
            try:
                f.close()
            except OSError as exc:
                cause, fix = os_cause(exc)
                raise SinkError(self.path, f"could not be closed: {cause}", fix) from exc

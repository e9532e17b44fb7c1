"""Keep native libraries' known chatter (TFLite's start-up line, OpenCV's FFmpeg tag warning) off the terminal.

ai-edge-litert's C++ writes ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` straight to
file descriptor 2 when the first interpreter allocates its tensors. ``sys.stderr`` never sees it, so
:func:`quiet_runtime_chatter` points fd 2 at a temporary file around the call and, afterwards, writes
every captured line back to the real stderr except the ones in :data:`NOISE`. A runtime's error lines
(``ERROR: ...`` before a failed load) therefore still reach the user, in order, on every path.

At logging DEBUG (``-v -v``) nothing is redirected: the runtime's own words pass through as they are.
Nor in the worker process (:func:`keep_everything`): its stderr is read by the parent, and if it dies
while loading, the last words it wrote must still be there; held in the capture file they would die with it.
For the same reason an Edge TPU delegate is bound without it (see :func:`.local.open_edgetpu`). A native
crash inside a quiet CPU load loses what was captured; that crash is what ``isolate=True`` is for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

# Exact lines, without their newline: anything else the runtime says is worth showing. Also OpenCV's FFmpeg, which
# says this each time it opens a WebM writer for VP8 (the ClipSink's webm format), then writes it correctly.
NOISE: frozenset[bytes] = frozenset({
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    b"OpenCV: FFMPEG: tag 0x30385056/'VP80' is not supported with codec id 139 and format 'webm / WebM'",
})  # fmt: skip

# fd 2 belongs to the whole process: one redirect at a time. Another thread's stderr output during the
# window is held in the file and written out when it closes (late, never lost).
_lock = threading.Lock()
_inside = threading.local()
_keep_everything = False


def keep_everything() -> None:
    """Hide nothing from now on in this process (for a process whose stderr another process reads)."""
    global _keep_everything
    _keep_everything = True


def filter_noise(captured: bytes) -> bytes:
    """``captured`` without the lines listed in :data:`NOISE` (a last line without its newline is kept as is)."""
    return b"".join(line for line in captured.splitlines(keepends=True) if line.rstrip(b"\r\n") not in NOISE)


@contextlib.contextmanager
def quiet_runtime_chatter() -> Iterator[None]:
    """Hide the runtime's noise lines written to fd 2 inside the block; re-emit every other line after it.

    Thread-safe (one redirect at a time, re-entrant in one thread) and exception-safe: fd 2 is restored,
    and the captured lines written out, however the block ends.
    """
    if _keep_everything or log.isEnabledFor(logging.DEBUG) or getattr(_inside, "active", False):
        yield
        return
    with _lock:
        saved = _dup(2)
        if saved is None:  # no fd 2 at all (a detached process): nothing to keep quiet
            yield
            return
        try:
            with tempfile.TemporaryFile() as capture:
                _flush_python_stderr()
                os.dup2(capture.fileno(), 2)
                _inside.active = True
                try:
                    yield
                finally:
                    _inside.active = False
                    _flush_python_stderr()  # Python-level writes made inside the block belong to the capture
                    os.dup2(saved, 2)
                    capture.seek(0)
                    _write_all(2, filter_noise(capture.read()))
        finally:
            os.close(saved)


def _dup(fd: int) -> int | None:
    try:
        return os.dup(fd)
    except OSError:
        return None


def _flush_python_stderr() -> None:
    if sys.stderr is not None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except OSError:  # stderr closed or full: the lines cannot be shown anywhere
            return
        view = view[written:]

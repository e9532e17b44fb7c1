"""Run one interpreter in a worker process, frames in and scores out through shared memory (the parent's side).

libedgetpu does not raise when a USB accelerator is lost mid-run: it logs ``F driver/usb/...`` and
aborts the whole process. Here only the worker dies; the caller's next ``invoke`` raises
:class:`~edge_classifier.errors.AcceleratorLostError` and the caller lives on. The same guard serves a
CPU model (``isolate=True``) against a native crash in a runtime or a custom op.

The worker is a fresh interpreter (no fork of a threaded parent, no re-import of the caller's
``__main__``) running :func:`.worker.worker_main`. Setup is JSON lines over its stdin/stdout; then
each frame is one byte each way (``I`` -> ``D``) while the pixels and scores sit in one shared memory
segment that the parent creates, owns and unlinks. The worker ignores SIGINT so that Ctrl-C reaches
the parent, which then shuts it down in order; it exits by itself when its stdin closes.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import asdict
from multiprocessing import shared_memory
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..edgetpu.diagnose import worker_death_error
from ..errors import AcceleratorLostError, InferenceError
from .base import Backend, BackendInfo
from .worker import INVOKE_TIMEOUT_S, LOAD_TIMEOUT_S, WORKER_COMMAND, WorkerPlan, details_from_wire, error_from_wire

__all__ = ["INVOKE_TIMEOUT_S", "LOAD_TIMEOUT_S", "IsolatedBackend", "WorkerPlan"]

log = logging.getLogger(__name__)

_ALIGN = 64


class _Reader:
    """Reads the worker's stdout with deadlines (select), so a hung worker cannot hang the caller."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._fd = stream.fileno()
        self._buf = b""

    def _fill(self, deadline: float) -> bool:
        """Read more; False at EOF. Raises TimeoutError at the deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        ready, _, _ = select.select([self._fd], [], [], remaining)
        if not ready:
            raise TimeoutError
        chunk = os.read(self._fd, 65536)
        if not chunk:
            return False
        self._buf += chunk
        return True

    def read(self, n: int, timeout: float) -> bytes:
        """Exactly ``n`` bytes, or fewer at EOF."""
        deadline = time.monotonic() + timeout
        while len(self._buf) < n and self._fill(deadline):
            pass
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def line(self, timeout: float) -> bytes:
        """One line without its newline; empty at EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            if not self._fill(deadline):
                return b""
        out, _, self._buf = self._buf.partition(b"\n")
        return out


def _reap(proc: subprocess.Popen[bytes], shm: shared_memory.SharedMemory | None) -> None:
    """Last-resort cleanup (garbage collection, interpreter exit): no orphan worker, no /dev/shm leak."""
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    if shm is not None:
        with contextlib.suppress(FileNotFoundError):
            shm.unlink()


class IsolatedBackend(Backend):
    """A :class:`Backend` whose interpreter lives in a worker process (same interface, same numbers).

    Use :meth:`start`. ``input_buffer()`` is a view into shared memory: the caller's preprocessing
    writes straight into it, and the worker copies it into its interpreter on ``invoke()``.
    """

    def __init__(
        self,
        plan: WorkerPlan,
        proc: subprocess.Popen[bytes],
        reader: _Reader,
        shm: shared_memory.SharedMemory,
        ready: dict[str, Any],
        stderr_tail: collections.deque[str],
        stderr_thread: threading.Thread,
        reason: str,
        notes: tuple[str, ...],
    ) -> None:
        self.plan = plan
        self._proc: subprocess.Popen[bytes] | None = proc
        self._reader = reader
        self._shm: shared_memory.SharedMemory | None = shm
        self._unlinked = False
        self._stderr_tail = stderr_tail
        self._stderr_thread = stderr_thread
        self._lost: AcceleratorLostError | None = None
        self.input_details = details_from_wire(ready["input"])
        self.output_details = details_from_wire(ready["output"])
        in_shape, out_shape = tuple(ready["input"]["shape"]), tuple(ready["output"]["shape"])
        self._in: np.ndarray | None = np.ndarray(in_shape, np.dtype(ready["input"]["dtype"]), buffer=shm.buf, offset=0)
        self._out: np.ndarray | None = np.ndarray(
            out_shape, np.dtype(ready["output"]["dtype"]), buffer=shm.buf, offset=int(ready["out_offset"])
        )
        i = ready["info"]
        why = f"{i['reason']}; isolated in worker pid {proc.pid}" + (f"; {reason}" if reason else "")
        self.info = BackendInfo(i["runtime"], i["version"], i["device"], why, i["num_threads"], plan.model_path, notes)
        self._finalizer = weakref.finalize(self, _reap, proc, shm)

    # --- start -------------------------------------------------------------------------
    @classmethod
    def start(cls, plan: WorkerPlan, *, reason: str = "", notes: tuple[str, ...] = ()) -> IsolatedBackend:
        """Start a worker, load the model there, and map the shared input/output buffer.

        Raises:
            EdgeTpuError, ModelError, BackendUnavailableError: the worker could not load (same classes as in-process).
            AcceleratorLostError: the worker died or hung while loading.
        """
        env = dict(os.environ)
        # The worker must import this same package even when it runs from a source tree.
        pkg_parent = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER_COMMAND],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None  # noqa: S101 - PIPE given
        tail: collections.deque[str] = collections.deque(maxlen=40)
        thread = threading.Thread(
            target=_drain, args=(proc.stderr, tail, proc.pid), name=f"backend-worker-{proc.pid}-stderr", daemon=True
        )
        thread.start()
        reader = _Reader(proc.stdout)
        shm: shared_memory.SharedMemory | None = None
        try:
            _send(proc, json.dumps(asdict(plan)).encode() + b"\n")
            ready = _reply(reader, plan.load_timeout)
            if not ready.get("ok"):
                raise error_from_wire(ready["error"])
            in_bytes = int(np.prod(ready["input"]["shape"])) * np.dtype(ready["input"]["dtype"]).itemsize
            out_offset = -(-in_bytes // _ALIGN) * _ALIGN
            out_bytes = int(np.prod(ready["output"]["shape"])) * np.dtype(ready["output"]["dtype"]).itemsize
            shm = shared_memory.SharedMemory(create=True, size=max(1, out_offset + out_bytes))
            _send(proc, json.dumps({"shm": shm.name, "out_offset": out_offset}).encode() + b"\n")
            if not _reply(reader, plan.load_timeout).get("ok"):
                raise InferenceError(
                    plan.model_path, "the worker could not map the shared buffer", "check /dev/shm's size and permissions"
                )
            ready["out_offset"] = out_offset
        except (OSError, TimeoutError, EOFError, ValueError) as exc:
            _stop(proc, thread)
            if shm is not None:
                shm.close()
                shm.unlink()
            hung = isinstance(exc, TimeoutError)
            raise worker_death_error(_thing(plan), None if hung else proc.returncode, "\n".join(tail), loading=True) from exc
        except BaseException:
            _stop(proc, thread)
            if shm is not None:
                shm.close()
                shm.unlink()
            raise
        return cls(plan, proc, reader, shm, ready, tail, thread, reason, notes)

    # --- the Backend interface -----------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The worker's process id (None once closed)."""
        return self._proc.pid if self._proc is not None else None

    def input_buffer(self) -> np.ndarray:
        """The shared input buffer (first batch item): write the frame here, then :meth:`invoke`."""
        if self._in is None:
            raise self._closed_error()
        return np.asarray(self._in[0])

    def write_input(self, values: np.ndarray) -> None:
        """Copy one image into the shared input buffer."""
        np.copyto(self.input_buffer(), values)

    def output(self) -> np.ndarray:
        """A copy of the raw scores the worker wrote."""
        if self._out is None:
            raise self._closed_error()
        return np.array(self._out[0], copy=True)

    def invoke(self) -> None:
        """Have the worker run the model once on the shared input.

        Raises:
            AcceleratorLostError: the worker died or hung (it is reaped, and its shared memory unlinked).
            InferenceError: the interpreter reported an error (the worker lives on).
        """
        if self._lost is not None:
            raise self._lost
        proc = self._proc
        if proc is None:
            raise self._closed_error()
        try:
            _send(proc, b"I")
            reply = self._reader.read(1, self.plan.invoke_timeout)
        except TimeoutError:
            self._die(hung=True)
            raise self._lost_error() from None
        except OSError:
            reply = b""
        if reply == b"D":
            return
        if reply == b"E":
            raise error_from_wire(json.loads(self._reader.line(5.0) or b"{}"))
        self._die(hung=False)
        raise self._lost_error()

    def _lost_error(self) -> AcceleratorLostError:
        assert self._lost is not None  # noqa: S101 - set by _die just before
        return self._lost

    def _die(self, hung: bool) -> None:
        """Reap the dead (or hung) worker and unlink the segment; keep the mapping so the last frame can be read."""
        proc = self._proc
        assert proc is not None  # noqa: S101
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        self._stderr_thread.join(timeout=2)
        err = worker_death_error(
            _thing(self.plan), None if hung else proc.returncode, "\n".join(self._stderr_tail), loading=False
        )
        self._lost = err if isinstance(err, AcceleratorLostError) else AcceleratorLostError(err.thing, err.cause, err.fix)
        log.warning("%s", self._lost)
        self._unlink()

    def _unlink(self) -> None:
        if self._shm is not None and not self._unlinked:
            self._unlinked = True
            with contextlib.suppress(FileNotFoundError):
                self._shm.unlink()

    def _closed_error(self) -> AcceleratorLostError:
        return AcceleratorLostError(self.plan.model_path, "the isolated backend is closed", "create a new Classifier")

    def close(self) -> None:
        """Stop the worker (politely, then by force), reap it, and free the shared memory. Safe to call twice."""
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        if proc.returncode is None:
            _stop(proc, self._stderr_thread)
        self._in = self._out = None
        self._unlink()
        if self._shm is not None:
            # BufferError: a caller still holds a view of input_buffer(); the mapping goes with it, the name is already gone.
            with contextlib.suppress(BufferError):
                self._shm.close()
            self._shm = None
        self._finalizer.detach()


def _thing(plan: WorkerPlan) -> str:
    return f"{plan.model_path} on {plan.device}"


def _send(proc: subprocess.Popen[bytes], data: bytes) -> None:
    assert proc.stdin is not None  # noqa: S101
    proc.stdin.write(data)
    proc.stdin.flush()


def _reply(reader: _Reader, timeout: float) -> dict[str, Any]:
    line = reader.line(timeout)
    if not line:
        raise EOFError("worker closed its output")
    return json.loads(line)  # type: ignore[no-any-return]


def _stop(proc: subprocess.Popen[bytes], thread: threading.Thread) -> None:
    try:
        _send(proc, b"Q")
        assert proc.stdin is not None  # noqa: S101
        proc.stdin.close()
    except (OSError, ValueError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    thread.join(timeout=2)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _drain(stream: IO[bytes], tail: collections.deque[str], pid: int) -> None:
    """Keep the worker's last stderr lines (libedgetpu's fatal line explains a death) and log them at debug."""
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip()
        tail.append(line)
        log.debug("worker %d: %s", pid, line)

"""On ``device="auto"``: when an isolated worker dies, answer on the CPU (the Edge TPU model's twin) and retry with back-off.

The frame that was in flight when the worker died is answered on the CPU too (its pixels are still in
the shared buffer), so a camera loop sees a slower frame, not an error. The worker is retried in a
background thread (a worker takes a second or more to start), first after ``backoff[0]`` seconds,
doubling up to ``backoff[1]``; the swap back happens between frames. What to start and what to fall
back to are the caller's callables: this module knows only :class:`~.base.Backend`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from ..errors import AcceleratorLostError, EdgeClassifierError
from .base import Backend, BackendInfo

log = logging.getLogger(__name__)


def _same_tensors(a: Backend, b: Backend) -> bool:
    return (
        a.input_shape == b.input_shape
        and a.input_dtype == b.input_dtype
        and a.input_quantization == b.input_quantization
        and a.output_shape == b.output_shape
        and a.output_quantization == b.output_quantization
    )


class FailoverBackend(Backend):
    """A primary (isolated) backend with a CPU fallback that takes over when the primary is lost.

    Args:
        primary: the running isolated backend.
        reopen: starts a new primary (called from a background thread on retry).
        fallback: loads the CPU backend (called once, on the first loss).
        backoff: (first, longest) seconds between retries of the primary.
    """

    def __init__(
        self,
        primary: Backend,
        reopen: Callable[[], Backend],
        fallback: Callable[[], Backend],
        backoff: tuple[float, float] = (1.0, 60.0),
    ) -> None:
        self._primary: Backend | None = primary
        self._reference = primary.info
        self._active: Backend = primary
        self._fallback: Backend | None = None
        self._reopen = reopen
        self._make_fallback = fallback
        self._backoff = backoff
        self._delay = backoff[0]
        self._retry_at: float | None = None
        self._lost_why = ""
        self._lock = threading.Lock()
        self._pending: Backend | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self.failovers = 0
        self.recoveries = 0
        self.input_details = primary.input_details
        self.output_details = primary.output_details
        self.info = primary.info

    @property
    def on_fallback(self) -> bool:
        """True while the CPU fallback answers."""
        return self._active is self._fallback

    @property
    def active(self) -> Backend:
        """The backend answering now."""
        return self._active

    def input_buffer(self) -> np.ndarray:
        """The active backend's input buffer."""
        self._maybe_recover()
        return self._active.input_buffer()

    def write_input(self, values: np.ndarray) -> None:
        """Copy one image into the active backend's input."""
        np.copyto(self.input_buffer(), values)

    def output(self) -> np.ndarray:
        """The active backend's scores."""
        return self._active.output()

    def invoke(self) -> None:
        """Run on the active backend; on loss of the primary, re-run this frame on the fallback.

        Raises:
            AcceleratorLostError: the primary was lost and no fallback can be loaded (the fix says why).
        """
        active = self._active
        try:
            active.invoke()
            return
        except AcceleratorLostError as exc:
            if active is not self._primary:
                raise
            self._fail_over(exc)
        self._active.invoke()

    def _fail_over(self, exc: AcceleratorLostError) -> None:
        dead = self._primary
        assert dead is not None  # noqa: S101
        frame = np.array(dead.input_buffer(), copy=True)
        dead.close()
        self._primary = None
        if self._fallback is None:
            try:
                fb = self._make_fallback()
            except EdgeClassifierError as err:
                raise AcceleratorLostError(
                    exc.thing, f"{exc.cause}; and no CPU fallback: {err.cause}", err.fix or exc.fix
                ) from err
            if not _same_tensors(fb, dead):
                fb.close()
                raise AcceleratorLostError(
                    exc.thing, f"{exc.cause}; the CPU twin's input/output tensors differ from the Edge TPU model's", exc.fix
                )
            self._fallback = fb
        self.failovers += 1
        self._lost_why = f"{exc.thing}: {exc.cause}"
        self._active = self._fallback
        fb_info = self._fallback.info
        self.info = BackendInfo(
            fb_info.runtime,
            fb_info.version,
            "cpu",
            f"{self._reference.device} lost ({self._lost_why}); answering on the CPU, retrying in {self._delay:.0f} s",
            fb_info.num_threads,
            fb_info.model_path,
            fb_info.notes,
        )
        log.warning("%s", self.info.reason)
        self._fallback.write_input(frame)
        self._retry_at = time.monotonic() + self._delay

    def _maybe_recover(self) -> None:
        if self._primary is not None or self._closed:
            return
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self._primary = pending
            self._active = pending
            self.info = pending.info
            self._delay = self._backoff[0]
            self._retry_at = None
            self.recoveries += 1
            log.warning("%s is back: %s", self._reference.device, pending.info)
            return
        if self._thread is None and self._retry_at is not None and time.monotonic() >= self._retry_at:
            self._thread = threading.Thread(target=self._retry, name="edgetpu-retry", daemon=True)
            self._thread.start()

    def _retry(self) -> None:
        try:
            backend = self._reopen()
        except EdgeClassifierError as exc:
            self._delay = min(self._delay * 2, self._backoff[1])
            self._retry_at = time.monotonic() + self._delay
            log.info("Edge TPU still not usable (%s); next try in %.0f s", exc.cause, self._delay)
            self._thread = None
            return
        with self._lock:
            if self._closed:
                backend.close()
            else:
                self._pending = backend
        self._thread = None

    def close(self) -> None:
        """Close the primary, the fallback and any backend a retry is starting. Safe to call twice."""
        self._closed = True
        thread = self._thread
        if thread is not None:
            thread.join()
        with self._lock:
            pending, self._pending = self._pending, None
        for backend in (pending, self._primary, self._fallback):
            if backend is not None:
                backend.close()
        self._primary = self._fallback = None

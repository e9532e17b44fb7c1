"""Hand-overs from the web view's producer threads to its many client threads, each bounded and newest-wins.

- :class:`FrameHub`: the newest JPEG of the live view (one slot). Every MJPEG client sends whatever is newest
  when it is ready for the next frame, so a slow client skips frames and a stalled one holds nothing but its
  own connection; the producer never waits for a client.
- :class:`MessageHub`: the recent server-sent-event messages (a short ring). A client that falls further
  behind than the ring skips ahead to the newest, and the skipped messages are counted.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from typing import Any


class FrameHub:
    """The newest encoded frame, and the count of viewers wanting frames.

    Args:
        max_viewers: simultaneous viewers :meth:`join` admits.
    """

    def __init__(self, max_viewers: int) -> None:
        self.max_viewers = max_viewers
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._seq = 0
        self._viewers = 0
        self._closed = False
        self.published = 0

    @property
    def viewers(self) -> int:
        """Viewers connected now."""
        return self._viewers

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def join(self) -> bool:
        """Admit one more viewer; False when ``max_viewers`` are already watching (or the hub is closed)."""
        with self._cond:
            if self._closed or self._viewers >= self.max_viewers:
                return False
            self._viewers += 1
            self._cond.notify_all()  # the encoder may be waiting for a first viewer
            return True

    def leave(self) -> None:
        """One viewer left."""
        with self._cond:
            self._viewers = max(0, self._viewers - 1)

    def wait_for_viewers(self, timeout: float) -> bool:
        """Block the encoder until someone watches (True) or ``timeout`` passes or the hub closes (False)."""
        with self._cond:
            if self._viewers == 0 and not self._closed:
                self._cond.wait(timeout)
            return self._viewers > 0 and not self._closed

    def publish(self, jpeg: bytes) -> None:
        """Replace the newest frame and wake the viewers."""
        with self._cond:
            self._jpeg = jpeg
            self._seq += 1
            self.published += 1
            self._cond.notify_all()

    def newest(self) -> tuple[int, bytes | None]:
        """``(sequence number, JPEG)`` of the newest frame (None before the first)."""
        with self._cond:
            return self._seq, self._jpeg

    def wait_newer(self, after: int, timeout: float) -> tuple[int, bytes] | None:
        """The newest frame once its number is above ``after``; None after ``timeout`` or when the hub closes."""
        with self._cond:
            if self._seq <= after and not self._closed:
                self._cond.wait(timeout)
            if self._closed or self._seq <= after or self._jpeg is None:
                return None
            return self._seq, self._jpeg

    def close(self) -> None:
        """Wake every waiting thread for good."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def sse_message(event: str, data: Any) -> bytes:
    """One server-sent-events message: ``event: NAME`` and its JSON on one ``data:`` line."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), allow_nan=False)}\n\n".encode()


class MessageHub:
    """A short ring of server-sent-event messages for any number of readers.

    Args:
        keep: messages kept for readers that are behind.
    """

    def __init__(self, keep: int = 64) -> None:
        self._cond = threading.Condition()
        self._ring: deque[tuple[int, bytes]] = deque(maxlen=keep)
        self._seq = 0
        self._closed = False
        self.skipped = 0

    @property
    def seq(self) -> int:
        """The number of the newest message (0 before the first)."""
        return self._seq

    def publish(self, event: str, data: Any) -> None:
        """Add one message and wake the readers."""
        message = sse_message(event, data)
        with self._cond:
            self._seq += 1
            self._ring.append((self._seq, message))
            self._cond.notify_all()

    def wait(self, after: int, timeout: float) -> tuple[int, list[bytes]]:
        """``(newest number, messages after `after`)``; an empty list after ``timeout`` or when closed."""
        with self._cond:
            if self._seq <= after and not self._closed:
                self._cond.wait(timeout)
            if self._closed:
                return after, []
            out = [m for s, m in self._ring if s > after]
            oldest = self._ring[0][0] if self._ring else self._seq + 1
            if after + 1 < oldest:
                self.skipped += oldest - after - 1  # the reader fell behind the ring: it skips ahead
            return self._seq, out

    def close(self) -> None:
        """Wake every reader for good."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

"""Writing files that a full disk cannot spoil: OS errors in the user's terms, and the room left on a disk.

A sink that writes to disk must say *why* it stopped in words a person acts on ("the disk is full", not
``[Errno 28]``), and must stop *before* the disk is so full that it cannot finish what it already wrote (an MP4's
index, the end of a JSON line). :func:`os_cause` gives the words and the fix for an ``OSError``; :func:`room_left`
says how many bytes a file may still grow by, counting both the free space and the process's file-size limit.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

try:
    import resource
except ImportError:  # Windows: no file-size limit to read
    resource = None  # type: ignore[assignment]

__all__ = ["os_cause", "room_left"]

# errno -> (cause, fix): the failures a camera left running for weeks meets on an SD card or a network share.
_CAUSES: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("the disk is full (ENOSPC)", "free some space on that disk, or write to another one"),
    errno.EDQUOT: ("the disk quota is used up (EDQUOT)", "free some of your files there, or ask for a larger quota"),
    errno.EFBIG: (
        "the file reached the largest size this system allows (EFBIG)",
        "raise the file-size limit (ulimit -f), or record shorter runs",
    ),
    errno.EROFS: ("the file system is read-only (EROFS)", "write to a disk mounted read-write"),
    errno.EACCES: ("permission denied (EACCES)", "write to a folder this user may write to"),
    errno.EPERM: ("the operation is not permitted (EPERM)", "write to a folder this user may write to"),
    errno.EIO: ("an input/output error (EIO): the disk or SD card may be failing", "check the disk (dmesg), or write to another"),
    errno.EPIPE: ("the reader closed the pipe (EPIPE)", "keep the reading end open, or write to a file"),
}


def os_cause(exc: OSError, fix: str = "check the disk and the path") -> tuple[str, str]:
    """``(cause, fix)`` for an ``OSError`` in the user's terms; ``fix`` is the fallback for an errno not known here."""
    known = _CAUSES.get(exc.errno or -1)
    if known is not None:
        return known
    return (exc.strerror or str(exc) or type(exc).__name__), fix


def room_left(path: Path) -> tuple[int, int | None]:
    """How many more bytes ``path`` may grow by: ``(bytes, errno)``, errno naming the tighter limit.

    The limit is the smaller of the free space of the disk that holds ``path`` (``ENOSPC``) and what the process's
    file-size limit leaves (``RLIMIT_FSIZE``, ``EFBIG``); ``(a large number, None)`` when neither can be read.
    """
    room, why = 1 << 62, None
    try:
        st = os.statvfs(path.parent if not path.is_dir() else path)
        room, why = st.f_bavail * st.f_frsize, errno.ENOSPC
    except OSError:
        pass
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0] if resource is not None else -1
    if soft >= 0 and soft != getattr(resource, "RLIM_INFINITY", -1):
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        if soft - size < room:
            room, why = max(0, soft - size), errno.EFBIG
    return room, why

"""What every ``edge-convert`` subcommand shares: the missing-extra message, output-folder checks, a quiet stderr.

TensorFlow and its converter write some lines from C++ straight to file descriptor 2: absl's "All log messages
before absl::InitializeLog()", oneDNN's notice, the MLIR quantizer's ``fully_quantize: 0, inference_type: 6, ...``
and LiteRT's XNNPACK notice. ``TF_CPP_MIN_LOG_LEVEL`` reaches none of them, and ``TF_ENABLE_ONEDNN_OPTS=0`` would
silence one only by changing the numbers (it turns oneDNN's kernels off). :func:`filtered_stderr` instead points
fd 2 at a pipe while a command runs; a thread copies everything through to the real stderr except whole lines
matching :data:`NOISE`. Progress bars (``\\r`` updates) pass through as they come.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import unquote, urlsplit

from edge_classifier.errors import ConfigError

DISTRIBUTION = "edge-classifier"

#: Top-level modules that only the ``[convert]`` extra installs: failing to import one is a missing extra, not a bug.
CONVERT_EXTRA_MODULES: tuple[str, ...] = ("tensorflow", "keras", "tqdm", "skimage", "efficientnet_lite")

#: Native lines that say nothing to a user of edge-convert (shown again with -v).
NOISE: tuple[re.Pattern[bytes], ...] = (
    re.compile(rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    # absl INFO lines such as oneDNN's notice: "I0000 00:00:1796031602.918353   30678 port.cc:153] oneDNN ...".
    re.compile(rb"I\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] .*"),
    re.compile(rb"fully_quantize: \d+, inference_type: \d+, .*"),
    re.compile(rb"INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."),
    re.compile(rb"INFO: Initialized TensorFlow Lite runtime\."),
)
# Starts of the noise lines: a partial line that could still become one is held back until its end arrives.
_NOISE_STARTS: tuple[bytes, ...] = (b"WARNING: All log messages", b"I0", b"I1", b"fully_quantize:",
                                    b"INFO: Created TensorFlow Lite", b"INFO: Initialized TensorFlow Lite")  # fmt: skip


# --- the [convert] extra ---------------------------------------------------------------------------
def is_extra_module(name: str | None) -> bool:
    """Whether a module named in a ModuleNotFoundError comes from the ``[convert]`` extra."""
    root = (name or "").split(".", 1)[0]
    return any(root == m or root.startswith(m) for m in CONVERT_EXTRA_MODULES)


def missing_extra_module(modules: Sequence[str] = ("tensorflow", "keras")) -> str | None:
    """The first of ``modules`` that cannot be imported here, or None when all can (found without importing)."""
    for name in modules:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):  # a broken or half-installed package
            return name
    return None


def pip_install_command(extra: str = "convert") -> str:
    """The pip command that adds ``extra`` to edge-classifier the way this copy was installed.

    An editable checkout gets ``pip install -e ".[convert]"`` (the checkout's path when run elsewhere), a folder
    installed without -e gets that folder, and a wheel or PyPI install gets ``pip install "edge-classifier[convert]"``.
    The installer's own record (``direct_url.json``, PEP 610) says which.
    """
    # Several records can be visible (an old egg-info in a checkout on sys.path, say): the installer's wins.
    for dist in importlib.metadata.distributions(name=DISTRIBUTION):
        try:
            info = json.loads(dist.read_text("direct_url.json") or "null")
        except ValueError:
            info = None
        if not isinstance(info, dict):
            continue
        url = str(info.get("url", ""))
        dir_info = info.get("dir_info")
        if url.startswith("file:") and isinstance(dir_info, dict):
            folder = Path(unquote(urlsplit(url).path))
            return f'pip install {"-e " if dir_info.get("editable") else ""}"{_here_or(folder)}[{extra}]"'
        return f'pip install "{DISTRIBUTION}[{extra}]"'  # a wheel, an archive or a VCS URL
    # No installer's record: running from a checkout (python -m, PYTHONPATH), or installed from an index.
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "converters").is_dir():
        return f'pip install -e "{_here_or(root)}[{extra}]"'
    return f'pip install "{DISTRIBUTION}[{extra}]"'


def _here_or(folder: Path) -> str:
    try:
        same = Path.cwd().resolve() == folder.resolve()
    except OSError:
        same = False
    return "." if same else str(folder)


def missing_extra_line(command: str, module: str, extra: str = "convert") -> str:
    """The one line that says the extra is missing and how to add it."""
    return (
        f"error: {command} needs the [{extra}] extra (TensorFlow and Keras), which is not installed here "
        f"(no module named {module!r}); install it with: {pip_install_command(extra)}"
    )


# --- arguments -------------------------------------------------------------------------------------
def check_output_folder(path: str | Path, option: str) -> Path:
    """``path`` when it is a folder or can become one (nothing on the way is a file).

    Raises:
        ConfigError: ``path`` or one of its parents exists and is not a folder.
    """
    p = Path(path)
    for candidate in (p, *p.parents):
        try:
            exists = candidate.exists()
        except (OSError, ValueError):
            exists = False
        if exists:
            if not candidate.is_dir():
                what = "is a file" if candidate == p else f"lies under {candidate}, which is a file"
                raise ConfigError(
                    f"{option} {p}", f"{what}, not a folder", f"give {option} a folder (created when missing), e.g. {option} out/"
                )
            break
    return p


# --- a quiet stderr --------------------------------------------------------------------------------
def quiet_tensorflow_env() -> None:
    """Ask TensorFlow for warnings and errors only (its Python logger and C++ logging); call before importing it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def is_noise(line: bytes) -> bool:
    """Whether a whole line (without its line end) is one of :data:`NOISE`."""
    return any(p.fullmatch(line) for p in NOISE)


def _could_become_noise(partial: bytes) -> bool:
    return any(start[: len(partial)] == partial[: len(start)] for start in _NOISE_STARTS)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except OSError:
            return  # stderr went away (a closed pipe): nothing to do with the lines
        view = view[n:]


def _pump(read_fd: int, out_fd: int) -> None:
    buf = b""
    try:
        while True:
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            buf += chunk
            while True:
                ends = [i for i in (buf.find(b"\n"), buf.find(b"\r")) if i >= 0]
                if not ends:
                    break
                end = min(ends) + 1
                segment, buf = buf[:end], buf[end:]
                if not is_noise(segment.rstrip(b"\r\n")):
                    _write_all(out_fd, segment)
            if buf and not _could_become_noise(buf):
                _write_all(out_fd, buf)
                buf = b""
        if buf and not is_noise(buf):
            _write_all(out_fd, buf)
    finally:
        os.close(read_fd)
        os.close(out_fd)


@contextmanager
def filtered_stderr() -> Iterator[None]:
    """Drop :data:`NOISE` lines written to file descriptor 2 (by any library, in C or Python) inside the block."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield  # no usable stderr: nothing to filter
        return
    read_fd, write_fd = os.pipe()
    out_fd = os.dup(saved)  # the pump's own copy: it closes it when the pipe ends
    os.dup2(write_fd, 2)
    os.close(write_fd)
    pump = threading.Thread(target=_pump, args=(read_fd, out_fd), name="edge-convert-stderr", daemon=True)
    pump.start()
    try:
        yield
    finally:
        with suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last write end closes: the pump reads to the end and stops
        os.close(saved)
        # A child process still holding the pipe would keep it open; its lines then go out when it exits.
        pump.join(timeout=5)

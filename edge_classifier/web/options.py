"""The web view's options: where it listens, how it is protected, how much it may cost.

The security rule lives here, once: the view binds to 127.0.0.1 by default; any address outside the loopback
range (127.0.0.0/8, ::1) needs a password, read from a file or an environment variable (never from the command
line, where ``ps`` shows it), unless the user says ``insecure`` explicitly.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
#: Read when no password file is given, so the password need not sit in a config file or `ps` output.
PASSWORD_ENV = "EDGE_CLASSIFIER_WEB_PASSWORD"
#: Longest password file read: a password, not a document.
MAX_PASSWORD_BYTES = 4096


@dataclass(frozen=True)
class WebOptions:
    """How the live web view listens and what it may cost.

    Attributes:
        host: the address to bind (``127.0.0.1``; ``0.0.0.0`` or ``::`` for every interface).
        port: the TCP port (0 picks a free one; :attr:`WebServer.port` tells which).
        password_file: a file holding the password (first line; a trailing newline is ignored).
        password_env: the environment variable read when ``password_file`` is None.
        password: the password itself, for the Python API only (the CLI reads a file or the environment);
            never shown in a repr or a log.
        insecure: allow a non-loopback address without a password (anyone on the network can watch).
        max_fps: the most JPEG frames per second encoded for the live stream.
        max_viewers: simultaneous MJPEG streams; one more gets 503.
        max_event_streams: simultaneous server-sent-event streams; one more gets 503.
        stream_width: frames wider than this are scaled down before encoding (a phone needs no 4K; a Pi should not encode it).
        camera: the camera's name in the page and the status (default: the host name).
        events: recent label events kept (with their snapshots).
        history_s: seconds of FPS/latency history kept for the chart.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    password_file: str | None = None
    password_env: str = PASSWORD_ENV
    password: str | None = field(default=None, repr=False)
    insecure: bool = False
    max_fps: float = 10.0
    max_viewers: int = 8
    max_event_streams: int = 16
    stream_width: int = 960
    camera: str | None = None
    events: int = 20
    history_s: int = 300

    @property
    def url(self) -> str:
        """The page's address as a browser would be given it."""
        host = self.host if self.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"


def parse_address(text: str | None) -> tuple[str, int]:
    """``(host, port)`` from ``--web``'s optional value: ``HOST:PORT``, ``HOST``, ``:PORT``, ``PORT`` or ``[v6]:PORT``.

    Args:
        text: the value; None or ``""`` gives the default 127.0.0.1:8080.

    Raises:
        ConfigError: a port that is not a number from 0 to 65535, or an unbalanced IPv6 bracket.
    """
    fix = "write it as HOST:PORT (0.0.0.0:8080, [::]:8080), HOST, or :PORT"
    if not text:
        return DEFAULT_HOST, DEFAULT_PORT
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (end + 1 < len(text) and text[end + 1] != ":"):
            raise ConfigError(f"--web {text!r}", "the IPv6 address has no closing bracket, or text follows it", fix)
        host, port_text = text[1:end], text[end + 2 :]
    elif text.isdigit():
        host, port_text = DEFAULT_HOST, text
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        host = host or DEFAULT_HOST
    # More than one colon and no brackets: a bare IPv6 address, default port.
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"--web {text!r}", f"the port {port_text!r} is not a number from 0 to 65535", fix)
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach: 127.0.0.0/8, ::1, or the name ``localhost``.

    Other host names count as reachable from the network (no DNS lookup: a name can change what it points to).
    """
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def read_password(options: WebOptions, environ: Mapping[str, str] | None = None) -> str | None:
    """The password, from ``options.password``, else ``password_file``, else the environment; None when none is set.

    Raises:
        ConfigError: the password file is missing, unreadable, too long or empty (the message never holds the password).
    """
    if options.password is not None:
        if not options.password:
            raise ConfigError("web password", "is empty", "give a non-empty password, or None for no password")
        return options.password
    if options.password_file is not None:
        path = Path(options.password_file)
        try:
            with path.open("rb") as f:
                data = f.read(MAX_PASSWORD_BYTES + 1)
            mode = path.stat().st_mode
        except OSError as exc:
            raise ConfigError(
                f"web password file {path}", f"cannot be read ({exc.strerror or exc})", "check the path and its permissions"
            ) from None
        if len(data) > MAX_PASSWORD_BYTES:
            raise ConfigError(
                f"web password file {path}", f"is longer than {MAX_PASSWORD_BYTES} bytes", "put only the password in it"
            )
        lines = data.decode("utf-8", errors="strict").splitlines() if data else []
        password = lines[0] if lines else ""
        if not password:
            raise ConfigError(f"web password file {path}", "holds no password on its first line", "write the password into it")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("web password file %s is readable by other users; chmod 600 it", path)
        return password
    env = os.environ if environ is None else environ
    value = env.get(options.password_env)
    return value if value else None


def check_options(options: WebOptions, environ: Mapping[str, str] | None = None) -> str | None:
    """Validate ``options`` before anything binds; returns the password (None: no authentication).

    Raises:
        ConfigError: a non-loopback address without a password or ``insecure``; a bad port, rate or limit;
            an unreadable password file.
    """
    if not 0 <= options.port <= 65535:
        raise ConfigError("web port", f"{options.port} is not from 0 to 65535", "pick a port such as 8080")
    if not options.max_fps > 0:
        raise ConfigError("web frame rate", f"{options.max_fps} fps is not above 0", "pass --web-fps 10 (or any rate above 0)")
    if options.stream_width < 64:
        raise ConfigError(
            "web stream width",
            f"{options.stream_width} pixels is too narrow to show anything",
            "give 64 or more (960 is the default)",
        )
    if options.max_viewers < 1 or options.max_event_streams < 1:
        raise ConfigError("web viewer limit", "must allow at least one viewer", "give 1 or more")
    if options.events < 1 or options.history_s < 10:
        raise ConfigError("web history", "keeps fewer than 1 event or 10 seconds", "keep at least 1 event and 10 s")
    password = read_password(options, environ)
    if password is None and not options.insecure and not is_loopback(options.host):
        where = options.host or "every interface"
        raise ConfigError(
            f"--web {where}:{options.port}",
            "is reachable from the network, and no password is set",
            f"put a password in a file and pass --web-password-file FILE (or set ${options.password_env}); "
            "or bind to 127.0.0.1 and use an SSH tunnel; or pass --web-insecure to let anyone on the network watch",
        )
    if password is None and not is_loopback(options.host):
        log.warning(
            "web view on %s:%d without a password (--web-insecure): anyone on the network can watch", options.host, options.port
        )
    return password

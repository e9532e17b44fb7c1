"""A real Mosquitto broker for tests: its own process on a free 127.0.0.1 port, its own config, stopped at the end.

No system service is needed; the tests fail (not skip) when the ``mosquitto`` binary is missing, because CI
installs it (Debian package ``mosquitto``).
"""

from __future__ import annotations

import getpass
import itertools
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HOST = "127.0.0.1"
_IDS = itertools.count()


def _binary(name: str) -> str:
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()), None)
    if found is None:
        pytest.fail(f"{name} is not installed: the MQTT tests need a real broker (apt-get install mosquitto)")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """One mosquitto process; ``stop`` and ``start`` again reuse the same port (a broker restart).

    Args:
        workdir: where its config, password file and log go.
        port: the port to listen on (default: a free one).
        users: user -> password; when given, anonymous clients are refused.
        persistent: keep sessions and queued messages across a restart (saved on a clean stop).
        tls: (certificate, key) PEM files: the listener then speaks TLS only.
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        users: dict[str, str] | None = None,
        persistent: bool = False,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.users = users
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "mosquitto.log"
        self.conf = workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} {HOST}",
            *(["persistence true", f"persistence_location {workdir}/"] if persistent else ["persistence false"]),
            f"log_dest file {self.log}",
            "log_type all",
            # As root, mosquitto would switch to the 'mosquitto' user, who may not read our temp files.
            f"user {getpass.getuser()}",
        ]
        if tls:
            lines += [f"certfile {tls[0]}", f"keyfile {tls[1]}"]
        if users:
            pwfile = workdir / "passwd"
            pwfile.touch()
            for user, password in users.items():
                subprocess.run(
                    [_binary("mosquitto_passwd"), "-b", str(pwfile), user, password], check=True, timeout=30, capture_output=True
                )
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            lines.append("allow_anonymous true")
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:<port>``."""
        return f"mqtt://{HOST}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start the broker and wait until it accepts connections."""
        self.proc = subprocess.Popen(
            [_binary("mosquitto"), "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                log = self.log.read_text(errors="replace") if self.log.exists() else ""
                pytest.fail(f"mosquitto exited with {self.proc.returncode}: {err}\n{log}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"mosquitto did not listen on {HOST}:{self.port} within {timeout} s")

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 5 s)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()


class Subscriber:
    """A real paho subscriber that records every message it receives on ``topic`` (wildcards allowed).

    ``durable=True`` keeps its session on the broker (clean session off, QoS 1), so messages published while it
    is disconnected reach it when it comes back.
    """

    def __init__(
        self, broker: Mosquitto, topic: str = "#", username: str | None = None, password: str | None = None, durable: bool = False
    ) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-subscriber-{broker.port}-{next(_IDS)}", clean_session=not durable
        )
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect_async(HOST, broker.port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            self.close()
            pytest.fail("the test subscriber could not subscribe within 10 s")

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, topic: str) -> list[dict[str, Any]]:
        """The JSON payloads received on one topic, in order."""
        with self._lock:
            return [json.loads(p) for t, p, _ in self.messages if t == topic]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
        """Poll ``predicate`` until it holds or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def close(self) -> None:
        """Disconnect and stop its network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def make_tls_files(workdir: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is not installed: the TLS test makes its certificates with it (apt-get install openssl)")
    ca, ca_key = workdir / "ca.pem", workdir / "ca.key"
    cert, key, csr, ext = workdir / "server.pem", workdir / "server.key", workdir / "server.csr", workdir / "san.ext"
    ext.write_text(f"subjectAltName=IP:{HOST}\n")
    for args in (
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            ca_key,
            "-out",
            ca,
            "-days",
            "1",
            "-subj",
            "/CN=edge-classifier test CA",
        ],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={HOST}"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "1", "-extfile", ext],
    ):
        subprocess.run([openssl, *map(str, args)], check=True, timeout=60, capture_output=True)
    return ca, cert, key

"""MQTT sink: label events and periodic status to a broker, with Home Assistant discovery (paho-mqtt 2.x).

Topics under the base topic of the URL (``mqtt://user:pass@host:1883/cameras/porch``)::

    <base>/event     one message per smoothed label change (schema in :mod:`edge_classifier.sinks.payload`)
    <base>/status    {"state": "online", fps, backend, device, temperature, ...}, retained; the broker
                     publishes {"state": "offline"} as the last will when the camera vanishes
    homeassistant/sensor/<camera id>/config   Home Assistant discovery (retained), so the camera shows up as a sensor

With regions (``Result.regions``), each region has its own topics and sensor instead of the camera's label::

    <base>/<region>/event    one message per state change of the region
    <base>/<region>/state    the same message, retained: the region's current state
    homeassistant/sensor/<camera id>_<region>/config   one Home Assistant sensor per region

The inference thread only appends to a bounded buffer (``write`` never touches the network); a thread of
the sink publishes from it (a :class:`~edge_classifier.sinks.worker.QueueWorker` that keeps the newest messages).
While the broker is unreachable, paho's network thread reconnects with exponential back-off, the buffer keeps the
newest messages and counts the ones it had to drop, and the loop goes on classifying. A broker that answers but
refuses the credentials is a :class:`SinkError` at ``start``.

Every message that never reached the broker is counted in ``dropped`` (the number the run's summary shows): those
a full buffer pushed out, those still buffered when the run ended (the broker down until the end, or SIGTERM), and
those handed to the connection but never acknowledged before it closed. The password is never logged: messages
name the broker as ``host:port``, and a bad URL is shown redacted (:func:`~edge_classifier.redact.redact_url`).
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from .._version import __version__
from ..errors import ConfigError, SinkError
from ..redact import redact_url
from ..results import Result
from .payload import cpu_temperature, event_payload, state_payloads, status_payload
from .worker import QueueWorker

log = logging.getLogger(__name__)

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
# CONNACK codes that mean "the broker answered and will not let these credentials in" (MQTT 3.1.1: 4, 5;
# paho 2 reports them as MQTT 5 reason codes 134, 135).
_AUTH_REFUSED = {4, 5, 134, 135}


@dataclass(frozen=True)
class MqttOptions:
    """Where and how to publish.

    Attributes:
        host: broker host name or address.
        port: broker port (1883, or 8883 with TLS).
        base_topic: topics are ``<base_topic>/event`` and ``<base_topic>/status``.
        username: user name, or None for an anonymous connection.
        password: password for ``username``.
        tls: connect with TLS (``mqtts://``).
        cafile: CA bundle to verify the broker with; None uses the system's.
        qos: 0, 1 or 2 for events and status.
        retain: retain label events (status and discovery are always retained).
        status_interval: seconds between status messages; 0 sends only online/offline.
        discovery: publish Home Assistant MQTT discovery.
        discovery_prefix: Home Assistant's discovery prefix.
        camera: the camera's id in payloads, client id and discovery (default: derived from the base topic).
        keepalive: seconds between MQTT pings; the last will fires after 1.5 x this without contact.
        buffer: messages kept while the broker is unreachable; the oldest are dropped (and counted) beyond it.
        connect_timeout: seconds ``start`` waits for the broker's first answer before going on without it.
        reconnect_min: first reconnect delay in seconds; doubles on each failure ...
        reconnect_max: ... up to this.
    """

    host: str
    port: int = DEFAULT_PORT
    base_topic: str = "edge_classifier"
    username: str | None = None
    password: str | None = None
    tls: bool = False
    cafile: str | None = None
    qos: int = 1
    retain: bool = False
    status_interval: float = 30.0
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    camera: str | None = None
    keepalive: int = 30
    buffer: int = 1000
    connect_timeout: float = 5.0
    reconnect_min: int = 1
    reconnect_max: int = 30

    @property
    def event_topic(self) -> str:
        """Where label events go."""
        return f"{self.base_topic}/event"

    @property
    def status_topic(self) -> str:
        """Where online/offline and periodic status go (retained, and the last will)."""
        return f"{self.base_topic}/status"

    @property
    def camera_id(self) -> str:
        """A stable id safe in topics and Home Assistant unique ids: ``cameras/porch`` gives ``cameras_porch``."""
        raw = self.camera or self.base_topic
        return re.sub(r"[^A-Za-z0-9_-]+", "_", raw).strip("_") or "edge_classifier"

    @property
    def discovery_topic(self) -> str:
        """Home Assistant discovery topic of the label sensor."""
        return f"{self.discovery_prefix}/sensor/{self.camera_id}/config"

    def region_topic(self, region: str, kind: str) -> str:
        """``<base>/<region>/event`` (each state change) or ``<base>/<region>/state`` (the current state, retained)."""
        return f"{self.base_topic}/{region}/{kind}"

    def region_discovery_topic(self, region: str) -> str:
        """Home Assistant discovery topic of a region's state sensor."""
        return f"{self.discovery_prefix}/sensor/{self.camera_id}_{region}/config"


def parse_mqtt_url(url: str, **overrides: Any) -> MqttOptions:
    """Options from ``mqtt://[user[:password]@]host[:port][/base/topic]`` (``mqtts://`` for TLS).

    Args:
        url: the broker URL; user and password may be percent-encoded.
        **overrides: any :class:`MqttOptions` field; None values are ignored, so CLI defaults can pass through.

    Raises:
        ConfigError: not an mqtt:// or mqtts:// URL, no host, a bad port, a wildcard in the topic, or a bad QoS.
    """
    fix = "write it as mqtt://[user:password@]host[:port]/base/topic, or mqtts://... for TLS"
    shown = f"MQTT URL {redact_url(url)!r}"  # an error is printed and logged: never with the password
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced [ in the host
        raise ConfigError(shown, "it cannot be parsed as a URL", fix) from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(shown, f"the scheme is {parts.scheme or 'missing'!r}, not mqtt or mqtts", fix)
    if not parts.hostname:
        raise ConfigError(shown, "it names no broker host", fix)
    try:
        port = parts.port
    except ValueError:
        # ValueError's text quotes the port, which is the password when a # or / in it cut the URL short.
        raise ConfigError(
            shown,
            "the port is not a number from 1 to 65535",
            f"{fix}; a password with / # ? or @ in it must be percent-encoded (%2F %23 %3F %40)",
        ) from None
    tls = parts.scheme == "mqtts"
    topic = parts.path.strip("/") or f"edge_classifier/{socket.gethostname()}"
    if "+" in topic or "#" in url:  # '#' starts a URL fragment, so look for it in the whole URL
        raise ConfigError(
            shown,
            f"the topic {parts.path.strip('/') + ('#' if '#' in url else '')!r} holds a wildcard (+ or #)",
            "use a plain topic such as cameras/porch",
        )
    values: dict[str, Any] = {
        "host": parts.hostname,
        "base_topic": topic,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "tls": tls,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    # --mqtt-tls on an mqtt:// URL without a port means the TLS port.
    values.setdefault("port", port or (DEFAULT_TLS_PORT if values["tls"] else DEFAULT_PORT))
    opts = MqttOptions(**values)
    if opts.qos not in (0, 1, 2):
        raise ConfigError("MQTT QoS", f"{opts.qos} is not 0, 1 or 2", "pass --mqtt-qos 0, 1 or 2")
    if opts.cafile and not opts.tls:
        raise ConfigError("MQTT CA file", "given, but the connection is not TLS", "use an mqtts:// URL or --mqtt-tls")
    if opts.buffer < 1:
        raise ConfigError("MQTT buffer", f"{opts.buffer} messages is too few", "give at least 1")
    return opts


def _tls_problem(o: MqttOptions) -> str | None:
    """Why the broker's certificate fails verification, or None (verified, or the broker is simply unreachable).

    paho retries a failed TLS handshake forever without saying why; a certificate that will never verify is a
    configuration error, so it is checked once, the way paho would, to report it at start.
    """
    import ssl

    try:
        ctx = ssl.create_default_context(cafile=o.cafile)
        with (
            socket.create_connection((o.host, o.port), timeout=o.connect_timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=o.host),
        ):
            return None
    except ssl.SSLCertVerificationError as exc:
        return exc.verify_message or str(exc)
    except (OSError, ValueError):
        return None


class MqttSink:
    """Publish label events (after smoothing) and status to an MQTT broker without ever blocking the loop.

    Args:
        options: broker, topics and behaviour (see :func:`parse_mqtt_url`).
        backend: the runtime's name, for status messages (``ai-edge-litert``, ...).
        model: the model's name, for status and discovery.
        regions: the names of the loop's regions: each gets ``<base>/<region>/event`` and ``/state`` topics and a
            Home Assistant sensor of its own (instead of the camera's label sensor). A region first seen in a
            result gets its sensor then.

    Attributes:
        name: how messages and the summary refer to this output (``MQTT broker host:1883``).
        published: messages handed to the broker connection.
        dropped: messages that never reached the broker: pushed out of a full buffer, refused by paho's queue,
            still buffered at close, or unacknowledged when the connection closed.
        reconnects: successful connections after the first one.
    """

    blocking = False  # write() appends to a deque; the sink's own thread does the network work

    def __init__(
        self, options: MqttOptions, *, backend: str | None = None, model: str | None = None, regions: Sequence[str] = ()
    ) -> None:
        self.options = options
        self.regions: list[str] = list(regions)
        self.backend = backend
        self.model = model
        self.name = f"MQTT broker {options.host}:{options.port}"
        self.published = 0
        self.reconnects = 0
        # Handed to paho, not yet acknowledged (QoS 1/2) or sent (QoS 0): lost if the connection closes first.
        self._unacked: collections.deque[Any] = collections.deque()
        self._worker: QueueWorker[tuple[str, bytes, bool]] = QueueWorker(
            self.name,
            self._publish,
            maxsize=options.buffer,
            drop="oldest",  # the newest state matters most to a subscriber
            ready=self._is_connected,
            tick=self._publish_status,
            tick_interval=options.status_interval,
            what="message",
            why_full=f"broker unreachable, buffer of {options.buffer} full",
            logger=log,
        )
        self._client: Any = None
        self._stop = False
        self._connected = threading.Event()
        self._answered = threading.Event()
        self._refused: str | None = None
        self._ever_connected = False
        self._down_since: float | None = None
        self._frames = 0
        self._fps_window: collections.deque[float] = collections.deque(maxlen=120)
        self._device: str | None = None
        self._label: str | None = None
        self._t_start = time.monotonic()
        self._closed = False

    @property
    def connected(self) -> bool:
        """True while the broker has accepted the connection."""
        return self._connected.is_set()

    @property
    def pending(self) -> int:
        """Messages waiting in the buffer for the broker."""
        return self._worker.pending

    @property
    def dropped(self) -> int:
        """Messages that never reached the broker (see the class's attributes)."""
        return self._worker.dropped

    def _is_connected(self) -> bool:
        return self._connected.is_set()

    # --- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Connect (or start retrying in the background) and start the publishing thread.

        Raises:
            SinkError: paho-mqtt is missing, the TLS CA file is unusable, or the broker refused the credentials.
        """
        o = self.options
        client = self._make_client()
        self._client = client
        self._t_start = time.monotonic()
        client.connect_async(o.host, o.port, keepalive=o.keepalive)
        client.loop_start()
        self._answered.wait(o.connect_timeout)
        if self._refused is not None:
            self._shutdown_client()
            raise SinkError(
                f"MQTT broker {o.host}:{o.port}",
                f"refused the connection: {self._refused}",
                "check --mqtt-username/--mqtt-password (or user:password@ in the URL) and the broker's ACL",
            )
        if not self._connected.is_set() and o.tls:
            problem = _tls_problem(o)
            if problem is not None:
                self._shutdown_client()
                raise SinkError(
                    f"MQTT broker {o.host}:{o.port}",
                    f"its TLS certificate is not trusted: {problem}",
                    "pass the CA that signed it with --mqtt-cafile PATH (PEM), or fix the host name in the URL",
                )
        if not self._connected.is_set():
            self._down_since = time.monotonic()
            log.warning(
                "MQTT broker %s:%d not reachable yet; classifying anyway, retrying every %d-%d s and buffering up to %d messages",
                o.host,
                o.port,
                o.reconnect_min,
                o.reconnect_max,
                o.buffer,
            )
        self._worker.start()

    def write(self, result: Result) -> None:
        """Note the frame for status and queue its label event, if any; never blocks."""
        self._frames += 1
        self._fps_window.append(time.monotonic())
        self._device = result.device
        if result.top is not None:
            self._label = result.top.label
        payload = event_payload(result, self.options.camera_id)
        if payload is not None:
            self._enqueue(self.options.event_topic, payload, self.options.retain)
        o = self.options
        for region in result.regions:
            if region.name not in self.regions:
                self.regions.append(region.name)
                if o.discovery:
                    self._enqueue(o.region_discovery_topic(region.name), self._region_discovery(region.name), True)
        for region, state in state_payloads(result, o.camera_id):
            self._enqueue(o.region_topic(region.name, "event"), state, o.retain)
            self._enqueue(o.region_topic(region.name, "state"), state, True)  # the current state, for late subscribers

    def close(self) -> None:
        """Flush what the broker can take within a second or two, say "offline", disconnect. Safe twice.

        Raises:
            SinkError: the publishing thread failed.
        """
        if self._closed:
            return
        self._closed = True
        self._stop = True
        # What cannot go out now (broker down) is not waited for; it is counted in `dropped`.
        still_queued = self._worker.close(5.0)
        client = self._client
        if client is not None and self._connected.is_set():
            # A clean disconnect suppresses the last will, so say "offline" ourselves.
            info = client.publish(self.options.status_topic, self._json(self._status("offline")), qos=1, retain=True)
            # Not connected any more (RuntimeError/ValueError): the broker's last will says "offline" instead.
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=2.0)
            self._wait_for_acks(deadline=time.monotonic() + 2.0)
        unacked = self._count_unacked()
        self._shutdown_client()
        if self.dropped:
            log.warning(
                "%s: %d message(s) never sent (%d pushed out of the full buffer of %d, %d still queued at the end, "
                "%d unacknowledged)",
                self.name,
                self.dropped,
                self.dropped - still_queued - unacked,
                self.options.buffer,
                still_queued,
                unacked,
            )
        log.info("%s: %d message(s) published, %d reconnect(s)", self.name, self.published, self.reconnects)
        self._worker.raise_error()

    def _wait_for_acks(self, deadline: float) -> None:
        """Give the messages handed to paho until ``deadline`` to be acknowledged (connected only)."""
        for info in list(self._unacked):
            left = deadline - time.monotonic()
            if left <= 0 or not self._connected.is_set():
                return
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=left)

    def _count_unacked(self) -> int:
        """Count (as dropped) the messages paho still held unsent or unacknowledged; they die with the connection."""
        lost = sum(1 for info in self._unacked if not info.is_published())
        self._unacked.clear()
        if lost:
            self._worker.count_drop(lost, warn=False)
        return lost

    # --- paho -------------------------------------------------------------------------------------
    def _make_client(self) -> Any:
        try:
            import paho.mqtt.client as mqtt
            from paho.mqtt.enums import CallbackAPIVersion
        except ImportError:
            raise SinkError(
                "MQTT sink", "paho-mqtt is not installed", "pip install 'edge-classifier[mqtt]' (or pip install paho-mqtt)"
            ) from None
        o = self.options
        client_id = f"edge_classifier-{o.camera_id}"[:64]
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if o.username is not None:
            client.username_pw_set(o.username, o.password)
        if o.tls:
            try:
                client.tls_set(ca_certs=o.cafile)
            except (OSError, ValueError) as exc:
                raise SinkError(
                    f"MQTT CA file {o.cafile}", f"cannot be used for TLS ({exc})", "pass a PEM CA bundle with --mqtt-cafile"
                ) from None
        client.will_set(o.status_topic, self._json(self._status("offline")), qos=1, retain=True)
        client.reconnect_delay_set(min_delay=o.reconnect_min, max_delay=o.reconnect_max)
        client.max_queued_messages_set(o.buffer)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        return client

    def _shutdown_client(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.disconnect()
        finally:
            client.loop_stop()
        self._connected.clear()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            text = str(reason_code)
            code = getattr(reason_code, "value", None)
            if code in _AUTH_REFUSED or "not authori" in text.lower() or "user name or password" in text.lower():
                self._refused = f"{text} (CONNACK {code})"
            if self._ever_connected:
                log.error("MQTT broker %s:%d refused the connection: %s", self.options.host, self.options.port, text)
            self._answered.set()
            return
        o = self.options
        # Retained, so a dashboard that subscribes later still sees the camera online and described.
        client.publish(o.status_topic, self._json(self._status("online")), qos=1, retain=True)
        if o.discovery:
            regions = list(self.regions)
            if not regions:  # with regions, each region is a sensor and the whole frame is not classified
                client.publish(o.discovery_topic, self._json(self._discovery()), qos=1, retain=True)
            for region in regions:
                client.publish(o.region_discovery_topic(region), self._json(self._region_discovery(region)), qos=1, retain=True)
        if self._ever_connected:
            self.reconnects += 1
            down = time.monotonic() - self._down_since if self._down_since is not None else 0.0
            log.warning("MQTT reconnected to %s:%d after %.1f s; %d message(s) waiting", o.host, o.port, down, self.pending)
        else:
            if self._down_since is not None:
                log.warning("MQTT connected to %s:%d after %.1f s", o.host, o.port, time.monotonic() - self._down_since)
            else:
                log.info("MQTT connected to %s:%d, publishing to %s", o.host, o.port, o.event_topic)
        self._ever_connected = True
        self._down_since = None
        self._connected.set()
        self._answered.set()
        self._worker.wake()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._connected.clear()
        if self._stop or self._closed or (self._refused is not None and not self._ever_connected):
            return
        self._down_since = time.monotonic()
        log.warning(
            "MQTT lost the broker %s:%d (%s); classifying on, reconnecting with back-off, buffering up to %d messages",
            self.options.host,
            self.options.port,
            reason_code,
            self.options.buffer,
        )

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        self._answered.set()  # refused at once: no need for start() to wait out connect_timeout
        log.debug("MQTT connection attempt to %s:%d failed; retrying", self.options.host, self.options.port)

    # --- buffer and publishing thread -------------------------------------------------------------
    def _enqueue(self, topic: str, payload: dict[str, Any], retain: bool) -> None:
        self._worker.put((topic, self._json(payload), retain))

    def _publish(self, message: tuple[str, bytes, bool]) -> bool:
        """Publish one buffered message (the worker's thread); False keeps it for after the reconnect."""
        import paho.mqtt.client as mqtt

        client = self._client
        if client is None:  # being shut down
            return False
        topic, data, retain = message
        info = client.publish(topic, data, qos=self.options.qos, retain=retain)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            self._worker.count_drop()
            return True
        if info.rc == mqtt.MQTT_ERR_NO_CONN and self.options.qos == 0:
            return False  # the connection dropped under us and paho kept nothing: back to the front of the buffer
        # Sent, or (QoS 1/2 with the connection just lost) kept by paho, which sends it after the reconnect:
        # queueing it again here would deliver it twice.
        self.published += 1
        while self._unacked and self._unacked[0].is_published():
            self._unacked.popleft()
        if len(self._unacked) < self.options.buffer:  # bounded; paho's own queue is bounded the same way
            self._unacked.append(info)
        return True

    def _publish_status(self) -> None:
        """The periodic "online" status with fps and counters (the worker's thread, every status_interval s)."""
        if self._connected.is_set() and self._client is not None:
            self._client.publish(self.options.status_topic, self._json(self._status("online")), qos=self.options.qos, retain=True)

    # --- payloads ---------------------------------------------------------------------------------
    @staticmethod
    def _json(payload: dict[str, Any]) -> bytes:
        return json.dumps(payload, separators=(",", ":")).encode()

    def fps(self) -> float | None:
        """Frames per second over the last few seconds of writes, or None before two frames."""
        window = list(self._fps_window)
        if len(window) < 2 or window[-1] <= window[0]:
            return None
        return round((len(window) - 1) / (window[-1] - window[0]), 2)

    def _status(self, state: str) -> dict[str, Any]:
        if state == "offline":
            return status_payload(self.options.camera_id, state)
        return status_payload(
            self.options.camera_id,
            state,
            fps=self.fps(),
            frames=self._frames,
            label=self._label,
            backend=self.backend,
            device=self._device,
            model=self.model,
            cpu_temp_c=cpu_temperature(),
            uptime_s=round(time.monotonic() - self._t_start, 1),
            dropped_messages=self.dropped,
        )

    def _region_discovery(self, region: str) -> dict[str, Any]:
        """Home Assistant MQTT discovery for a region's sensor: its state is the region's current state."""
        o = self.options
        return {
            **self._discovery(),
            "name": region,
            "unique_id": f"edge_classifier_{o.camera_id}_{region}_state",
            "object_id": f"{o.camera_id}_{region}",
            "state_topic": o.region_topic(region, "state"),
            "value_template": "{{ value_json.state }}",
            "json_attributes_topic": o.region_topic(region, "state"),
        }

    def _discovery(self) -> dict[str, Any]:
        """Home Assistant MQTT discovery for a sensor whose state is the current label."""
        o = self.options
        return {
            "name": "Label",
            "unique_id": f"edge_classifier_{o.camera_id}_label",
            "object_id": f"{o.camera_id}_label",
            "state_topic": o.event_topic,
            "value_template": "{{ value_json.label }}",
            "json_attributes_topic": o.event_topic,
            "availability_topic": o.status_topic,
            "availability_template": "{{ value_json.state }}",
            "payload_available": "online",
            "payload_not_available": "offline",
            "icon": "mdi:cctv",
            "qos": o.qos,
            "device": {
                "identifiers": [f"edge_classifier_{o.camera_id}"],
                "name": o.camera or o.base_topic,
                "manufacturer": "edge_classifier",
                "model": self.model or "ImageNet classifier",
                "sw_version": __version__,
            },
        }

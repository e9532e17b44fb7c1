"""The MQTT sink against a real Mosquitto broker, fed by the real camera loop on a clip of Coral photos."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_classifier import Classifier, LoopOptions, run_pipeline
from edge_classifier.errors import ConfigError, SinkError
from edge_classifier.results import Result
from edge_classifier.sinks.mqtt import MqttSink, parse_mqtt_url
from edge_classifier.sinks.payload import SCHEMA_VERSION, cpu_temperature

from .clips import write_clip
from .mosquitto import Mosquitto, Subscriber, make_tls_files

pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is a required test dependency (pip install -e '.[mqtt]')")

TOPIC = "cameras/porch"


@pytest.fixture(scope="module")
def clip4(coral: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cat, parrot, cat, parrot: 20 frames each, so four label events (frames ~2, ~22, ~43, ~62)."""
    segments = [(coral / "cat.bmp", 20), (coral / "parrot.jpg", 20)] * 2
    return write_clip(tmp_path_factory.mktemp("clip") / "cat_parrot_x2.avi", segments)


@pytest.fixture(scope="module")
def clip2(coral: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 frames of cat.bmp then 30 of parrot.jpg."""
    return write_clip(tmp_path_factory.mktemp("clip") / "cat_parrot.avi", [(coral / "cat.bmp", 30), (coral / "parrot.jpg", 30)])


@pytest.fixture(scope="module")
def clf(mnv2: Path) -> Iterator[Classifier]:
    with Classifier(mnv2) as c:
        yield c


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path)
    b.start()
    yield b
    b.stop()


class Gate:
    """A sink that holds the loop at chosen frames until the test releases it, and notes when each frame passed."""

    blocking = False

    def __init__(self, *at: int) -> None:
        self.reached = {i: threading.Event() for i in at}
        self.release = {i: threading.Event() for i in at}
        self.times: dict[int, float] = {}

    def start(self) -> None:
        pass

    def write(self, result: Result) -> None:
        i = result.frame.index
        self.times[i] = time.monotonic()
        if i in self.reached:
            self.reached[i].set()
            assert self.release[i].wait(60), f"the test never released frame {i}"

    def close(self) -> None:
        for e in self.release.values():
            e.set()


def _run_in_thread(clf: Classifier, clip: Path, sinks: list[Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            options = LoopOptions(smoothing=0.5, hysteresis=3)
            out["stats"] = run_pipeline(clf, str(clip), sinks, options, stats_interval=0, handle_signals=False)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, out


def _labels(sub: Subscriber) -> list[str]:
    return [m["label"] for m in sub.on(f"{TOPIC}/event")]


# --- the loop publishes what it sees ----------------------------------------------------------------------
def test_loop_publishes_label_events_status_and_discovery(clf: Classifier, clip2: Path, broker: Mosquitto) -> None:
    sub = Subscriber(broker)
    try:
        sink = MqttSink(
            parse_mqtt_url(f"{broker.url}/{TOPIC}", status_interval=0.2), backend="ai-edge-litert", model=clf.model_path.name
        )
        stats = run_pipeline(
            clf, str(clip2), [sink], LoopOptions(smoothing=0.5, hysteresis=3), stats_interval=0, handle_signals=False
        )
        assert stats.frames == 60
        assert sub.wait_for(lambda: len(_labels(sub)) >= 2 and any(s["state"] == "offline" for s in sub.on(f"{TOPIC}/status")))
        time.sleep(0.3)  # nothing more may arrive
        events = sub.on(f"{TOPIC}/event")
        assert [e["label"] for e in events] == ["Egyptian cat", "macaw"]
        first, second = events
        assert first["schema_version"] == SCHEMA_VERSION and first["type"] == "label"
        assert first["previous_label"] is None and second["previous_label"] == "Egyptian cat"
        assert second["id"] == 88 and first["id"] == 285
        assert first["frame"] < 30 <= second["frame"]
        assert 0.5 < second["score"] <= 1.0 and second["top"][0]["label"] == "macaw"
        assert first["camera"] == "cameras_porch" and first["source"]

        statuses = sub.on(f"{TOPIC}/status")
        assert statuses[0]["state"] == "online" and statuses[-1]["state"] == "offline"
        running = [s for s in statuses if s["state"] == "online" and s.get("frames", 0) > 0]
        assert running, "no periodic status while the loop ran"
        assert running[-1]["backend"] == "ai-edge-litert" and running[-1]["device"] == "cpu" and running[-1]["fps"] > 0

        (disco,) = sub.on("homeassistant/sensor/cameras_porch/config")
        assert disco["state_topic"] == f"{TOPIC}/event" and disco["value_template"] == "{{ value_json.label }}"
        assert disco["availability_topic"] == f"{TOPIC}/status" and disco["unique_id"] == "edge_classifier_cameras_porch_label"
        assert disco["device"]["model"] == "mobilenet_v2_1.0_224_quant.tflite"
        assert sink.published == 2 and sink.dropped == 0
    finally:
        sub.close()

    # Status and discovery are retained: a dashboard that subscribes later still finds the camera.
    late = Subscriber(broker)
    try:
        assert late.wait_for(lambda: bool(late.on(f"{TOPIC}/status") and late.on("homeassistant/sensor/cameras_porch/config")), 5)
        assert late.on(f"{TOPIC}/status")[-1]["state"] == "offline"
        assert all(retained for _, _, retained in late.messages)
        assert not late.on(f"{TOPIC}/event"), "events are not retained unless asked for"
    finally:
        late.close()


def test_broker_restart_mid_run_loop_keeps_going_and_publishing(
    clf: Classifier, clip4: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge_classifier.sinks.mqtt")
    broker = Mosquitto(tmp_path, persistent=True)
    broker.start()
    # A durable subscriber: what the broker queued for it while it was away reaches it after the restart.
    sub = Subscriber(broker, durable=True)
    gate = Gate(30, 50)
    sink = MqttSink(parse_mqtt_url(f"{broker.url}/{TOPIC}", status_interval=0, reconnect_min=1, reconnect_max=2))
    thread, out = _run_in_thread(clf, clip4, [sink, gate])
    try:
        assert gate.reached[30].wait(60)
        assert sub.wait_for(lambda: len(_labels(sub)) == 2), _labels(sub)
        broker.stop()
        assert sub.wait_for(lambda: not sink.connected, 10)
        t_down = time.monotonic()
        gate.release[30].set()

        # With the broker gone, the loop goes on at full speed: 20 more frames, no frame waiting on the network.
        assert gate.reached[50].wait(30), "the loop stalled while the broker was down"
        gaps = [gate.times[i + 1] - gate.times[i] for i in range(30, 50)]
        assert max(gaps[1:]) < 1.0, f"a frame waited {max(gaps[1:]):.2f} s on the dead broker"
        assert time.monotonic() - t_down < 20
        assert sink.pending == 1  # the cat event at frame ~43, buffered
        assert not sink.connected

        broker.start()  # same port
        assert sub.wait_for(lambda: sink.reconnects == 1, 20), "the sink did not reconnect"
        gate.release[50].set()
        thread.join(60)
        assert not thread.is_alive() and "error" not in out, out.get("error")
        assert out["stats"].frames == 80

        assert sub.wait_for(lambda: len(_labels(sub)) == 4, 20), _labels(sub)
        assert _labels(sub) == ["Egyptian cat", "macaw", "Egyptian cat", "macaw"]
        assert sink.dropped == 0
        text = caplog.text
        assert "lost the broker" in text and "reconnected" in text
    finally:
        gate.close()
        thread.join(30)
        sub.close()
        broker.stop()


def test_broker_down_at_start_loop_runs_and_sink_catches_up(
    clf: Classifier, clip2: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="edge_classifier.sinks.mqtt")
    broker = Mosquitto(tmp_path)  # configured, not started yet
    gate = Gate(59)
    sink = MqttSink(parse_mqtt_url(f"{broker.url}/{TOPIC}", retain=True, connect_timeout=1, reconnect_min=1, reconnect_max=1))
    t0 = time.monotonic()
    thread, out = _run_in_thread(clf, clip2, [sink, gate])
    try:
        # Every frame is classified although there is no broker; start() waited only its connect_timeout.
        assert gate.reached[59].wait(60)
        assert time.monotonic() - t0 < 20
        assert "not reachable yet" in caplog.text
        assert sink.pending == 2 and not sink.connected
        broker.start()
        deadline = time.monotonic() + 20
        while not sink.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink.connected
        gate.release[59].set()
        thread.join(30)
        assert "error" not in out, out.get("error")
        assert sink.published == 2 and sink.dropped == 0
        late = Subscriber(broker)
        try:
            assert late.wait_for(lambda: bool(late.on(f"{TOPIC}/event")), 5)
            assert late.on(f"{TOPIC}/event")[-1]["label"] == "macaw"  # the retained last event
        finally:
            late.close()
    finally:
        gate.close()
        thread.join(30)
        broker.stop()


def test_full_buffer_drops_oldest_and_counts(
    clf: Classifier, clip4: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="edge_classifier.sinks.mqtt")
    broker = Mosquitto(tmp_path)  # never started: everything stays in the buffer of one
    sink = MqttSink(parse_mqtt_url(f"{broker.url}/{TOPIC}", buffer=1, connect_timeout=0.5))
    gate = Gate(79)
    thread, out = _run_in_thread(clf, clip4, [sink, gate])
    try:
        assert gate.reached[79].wait(60)
        assert sink.dropped == 3 and sink.pending == 1
        assert "never sent" not in caplog.text  # reported on close, once
    finally:
        gate.close()
        thread.join(30)
    assert "error" not in out
    # The one still buffered when the run ended never reached the broker either: counted, and the summary says 4.
    assert sink.dropped == 4 and out["stats"].sink_dropped == {sink.name: 4}
    assert "1 message(s) dropped so far" in caplog.text
    assert "4 message(s) never sent (3 pushed out of the full buffer of 1, 1 still queued at the end" in caplog.text


# --- credentials --------------------------------------------------------------------------------------------
def test_wrong_credentials_are_a_clear_error_at_start(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, users={"camera": "s3cret"})
    broker.start()
    try:
        for url in (f"mqtt://camera:wrong@127.0.0.1:{broker.port}/{TOPIC}", f"mqtt://127.0.0.1:{broker.port}/{TOPIC}"):
            sink = MqttSink(parse_mqtt_url(url))
            t0 = time.monotonic()
            with pytest.raises(SinkError) as err:
                sink.start()
            assert time.monotonic() - t0 < 5
            msg = str(err.value)
            assert f"MQTT broker 127.0.0.1:{broker.port}" in msg and "refused" in msg and "Not authorized" in msg
            assert "--mqtt-username" in msg
        ok = MqttSink(parse_mqtt_url(f"mqtt://camera:s3cret@127.0.0.1:{broker.port}/{TOPIC}"))
        ok.start()
        assert ok.connected
        ok.close()
        # The options route gives the same result as the URL.
        ok2 = MqttSink(parse_mqtt_url(f"mqtt://127.0.0.1:{broker.port}/{TOPIC}", username="camera", password="s3cret"))
        ok2.start()
        assert ok2.connected
        ok2.close()
    finally:
        broker.stop()


def test_tls_broker_with_a_private_ca(tmp_path: Path) -> None:
    ca, cert, key = make_tls_files(tmp_path)
    broker = Mosquitto(tmp_path, tls=(cert, key))
    broker.start()
    try:
        sink = MqttSink(parse_mqtt_url(f"mqtts://127.0.0.1:{broker.port}/{TOPIC}", cafile=str(ca)))
        sink.start()
        assert sink.connected
        sink.close()
        # Without the private CA the certificate cannot be verified: a clear error at start, not endless retries.
        untrusted = MqttSink(parse_mqtt_url(f"mqtts://127.0.0.1:{broker.port}/{TOPIC}", connect_timeout=2))
        with pytest.raises(
            SinkError, match="(?s)TLS certificate is not trusted: unable to get local issuer certificate.*--mqtt-cafile"
        ):
            untrusted.start()
    finally:
        broker.stop()


def test_missing_ca_file_is_a_sink_error(tmp_path: Path) -> None:
    sink = MqttSink(parse_mqtt_url(f"mqtts://127.0.0.1:1/{TOPIC}", cafile=str(tmp_path / "nope.pem")))
    with pytest.raises(SinkError, match="nope.pem"):
        sink.start()


# --- URL and options ------------------------------------------------------------------------------------------
def test_parse_mqtt_url() -> None:
    o = parse_mqtt_url("mqtt://cam%40home:p%3Ass@127.0.0.1:1884/cameras/porch/")
    assert (o.host, o.port, o.base_topic, o.username, o.password, o.tls) == (
        "127.0.0.1",
        1884,
        "cameras/porch",
        "cam@home",
        "p:ss",
        False,
    )
    assert o.event_topic == "cameras/porch/event" and o.status_topic == "cameras/porch/status"
    assert o.discovery_topic == "homeassistant/sensor/cameras_porch/config"
    s = parse_mqtt_url("mqtts://127.0.0.1/x", qos=2, retain=True, camera="Porch Cam")
    assert (s.port, s.tls, s.qos, s.retain, s.camera_id) == (8883, True, 2, True, "Porch_Cam")
    assert parse_mqtt_url("mqtt://127.0.0.1", qos=None).qos == 1  # None leaves the default
    assert parse_mqtt_url("mqtt://127.0.0.1").base_topic.startswith("edge_classifier/")


@pytest.mark.parametrize(
    ("url", "kw", "match"),
    [
        ("http://127.0.0.1/x", {}, "not mqtt or mqtts"),
        ("mqtt:///x", {}, "no broker host"),
        ("mqtt://127.0.0.1:99999/x", {}, "port"),
        ("mqtt://127.0.0.1/cameras/#", {}, "wildcard"),
        ("mqtt://127.0.0.1/x", {"qos": 3}, "not 0, 1 or 2"),
        ("mqtt://127.0.0.1/x", {"cafile": "/etc/ssl/ca.pem"}, "not TLS"),
    ],
)
def test_parse_mqtt_url_errors(url: str, kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_mqtt_url(url, **kw)


def test_cpu_temperature_reads_thermal_zone(tmp_path: Path) -> None:
    zone = tmp_path / "thermal_zone0"
    zone.mkdir()
    (zone / "temp").write_text("51234\n")
    assert cpu_temperature(tmp_path) == 51.2
    assert cpu_temperature(tmp_path / "absent") is None


# --- the command line ---------------------------------------------------------------------------------------
def test_cli_run_mqtt_with_credentials_from_env(
    mnv2: Path, clip2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_classifier.cli import main

    broker = Mosquitto(tmp_path, users={"camera": "s3cret"})
    broker.start()
    sub = Subscriber(broker, username="camera", password="s3cret")
    base = ["run", "--model", str(mnv2), "--source", str(clip2), "--smooth", "0.5", "--stats-interval", "0", "-q"]
    try:
        # Wrong password: one clear error, exit 1.
        assert main([*base, "--mqtt", f"mqtt://camera:wrong@127.0.0.1:{broker.port}/{TOPIC}"]) == 1
        err = capsys.readouterr().err
        assert f"error: MQTT broker 127.0.0.1:{broker.port}: refused the connection: Not authorized" in err
        assert "Traceback" not in err

        monkeypatch.setenv("EDGE_CLASSIFIER_MQTT_PASSWORD", "s3cret")
        url = f"mqtt://127.0.0.1:{broker.port}/{TOPIC}"
        assert (
            main(
                [
                    *base,
                    "--mqtt",
                    url,
                    "--mqtt-username",
                    "camera",
                    "--mqtt-qos",
                    "2",
                    "--mqtt-name",
                    "Porch",
                    "--no-mqtt-discovery",
                ]
            )
            == 0
        )
        assert sub.wait_for(lambda: len(_labels(sub)) == 2 and sub.on(f"{TOPIC}/status")[-1]["state"] == "offline")
        assert _labels(sub) == ["Egyptian cat", "macaw"] and sub.on(f"{TOPIC}/event")[0]["camera"] == "Porch"
        online = [s for s in sub.on(f"{TOPIC}/status") if s["state"] == "online"]
        assert online[0]["backend"] == "ai-edge-litert" and online[0]["model"] == mnv2.name
        assert not [t for t, _, _ in sub.messages if t.startswith("homeassistant/")]
    finally:
        sub.close()
        broker.stop()


def test_last_will_says_offline_when_the_process_dies(coral: Path, mnv2: Path, tmp_path: Path, broker: Mosquitto) -> None:
    import signal
    import subprocess
    import sys

    long_clip = write_clip(tmp_path / "long.avi", [(coral / "cat.bmp", 600)])
    sub = Subscriber(broker, f"{TOPIC}/status")
    cmd = [sys.executable, "-m", "edge_classifier", "run", "--model", str(mnv2), "--source", str(long_clip), "--realtime"]
    proc = subprocess.Popen([*cmd, "--mqtt", f"{broker.url}/{TOPIC}", "--stats-interval", "0", "-q"], stderr=subprocess.PIPE)
    try:
        assert sub.wait_for(lambda: any(s["state"] == "online" for s in sub.on(f"{TOPIC}/status")), 60)
        proc.send_signal(signal.SIGKILL)  # no chance to say goodbye: the broker's last will must
        proc.wait(10)
        assert sub.wait_for(lambda: sub.on(f"{TOPIC}/status")[-1]["state"] == "offline", 10)
        assert sub.on(f"{TOPIC}/status")[-1] == {
            "schema_version": SCHEMA_VERSION,
            "type": "status",
            "camera": "cameras_porch",
            "time": sub.on(f"{TOPIC}/status")[-1]["time"],
            "state": "offline",
        }
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stderr:
            proc.stderr.close()
        sub.close()

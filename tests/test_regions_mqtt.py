"""Per-region MQTT topics and Home Assistant discovery, to a real Mosquitto broker, from the scene clip."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_classifier import Classifier, LoopOptions
from edge_classifier.session import run_pipeline
from edge_classifier.sinks.clips import ClipSink
from edge_classifier.sinks.mqtt import MqttSink, parse_mqtt_url
from tests import region_clips as rc
from tests.mosquitto import Mosquitto, Subscriber

pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is a required test dependency (pip install -e '.[mqtt]')")

BASE = "cameras/porch"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path)
    b.start()
    yield b
    b.stop()


def test_each_region_has_its_topics_and_sensor_on_a_real_broker(
    clf: Classifier, scene: Path, broker: Mosquitto, tmp_path: Path
) -> None:
    sub = Subscriber(broker)
    try:
        options = parse_mqtt_url(f"{broker.url}/{BASE}", status_interval=0)
        mqtt = MqttSink(options, model="mobilenet_v2", regions=["feeder", "door"])
        clips = ClipSink(tmp_path / "events", pre=0.5, post=0.5)
        run_pipeline(
            clf, scene, [mqtt, clips], LoopOptions(regions=rc.two_regions()), stats_file=io.StringIO(), handle_signals=False
        )
        assert sub.wait_for(lambda: len(sub.on(f"{BASE}/feeder/state")) == 3 and len(sub.on(f"{BASE}/door/state")) == 2)
        feeder = sub.on(f"{BASE}/feeder/event")
        door = sub.on(f"{BASE}/door/event")
        assert [(m["frame"], m["previous_state"], m["state"]) for m in feeder] == rc.FEEDER_EVENTS
        assert [(m["frame"], m["previous_state"], m["state"]) for m in door] == rc.DOOR_EVENTS
        first = feeder[0]
        assert first["type"] == "state" and first["region"] == "feeder" and first["label"] == "chickadee"
        assert first["camera"] == "cameras_porch" and first["top"][0]["label"] == "chickadee"
        # The clip sink ran first, so each message names its clip and snapshot.
        assert all(Path(m["clip"]).name.endswith(f"_{m['region']}_{m['state']}.mp4") for m in feeder + door)
        assert all(Path(m["snapshot"]).exists() for m in feeder + door)
        # The state topic is retained: a subscriber that comes later gets each region's current state.
        late = Subscriber(broker, topic=f"{BASE}/+/state")
        try:
            assert late.wait_for(lambda: len(late.messages) == 2)
            current = {t: p for t, p, retained in late.messages if retained}
            assert {t: json.loads(p)["state"] for t, p in current.items()} == {
                f"{BASE}/feeder/state": "bird",
                f"{BASE}/door/state": "person",
            }
        finally:
            late.close()
        # One Home Assistant sensor per region (retained), and none for the whole frame, which is not classified.
        for name in ("feeder", "door"):
            (config,) = sub.on(f"homeassistant/sensor/cameras_porch_{name}/config")
            assert config["state_topic"] == f"{BASE}/{name}/state" and config["value_template"] == "{{ value_json.state }}"
            assert config["unique_id"] == f"edge_classifier_cameras_porch_{name}_state" and config["name"] == name
            assert config["availability_topic"] == f"{BASE}/status"
            assert config["device"]["identifiers"] == ["edge_classifier_cameras_porch"]
        assert sub.on("homeassistant/sensor/cameras_porch/config") == []
        assert sub.on(f"{BASE}/event") == []
    finally:
        sub.close()


def test_a_region_the_sink_was_not_told_of_gets_its_sensor_when_first_seen(
    clf: Classifier, scene: Path, broker: Mosquitto
) -> None:
    sub = Subscriber(broker)
    try:
        options = parse_mqtt_url(f"{broker.url}/{BASE}", status_interval=0)
        run_pipeline(
            clf,
            scene,
            [MqttSink(options)],
            LoopOptions(regions=rc.two_regions()[1:], max_frames=5),
            stats_file=io.StringIO(),
            handle_signals=False,
        )
        assert sub.wait_for(lambda: len(sub.on("homeassistant/sensor/cameras_porch_door/config")) == 1)
        assert sub.wait_for(lambda: [m["state"] for m in sub.on(f"{BASE}/door/event")] == ["cat"])
    finally:
        sub.close()

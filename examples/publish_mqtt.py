#!/usr/bin/env python3
"""Publish what the camera sees to an MQTT broker (Home Assistant finds it by itself).

    pip install 'edge-classifier[mqtt]'
    python examples/publish_mqtt.py --broker mqtt://homeassistant.local:1883/cameras/porch
    python examples/publish_mqtt.py --broker mqtt://user:secret@broker:1883/cameras/porch --source 0

Messages (JSON, documented in edge_classifier/sinks/payload.py):
  cameras/porch/event    one per label change: {"label": "macaw", "score": 0.93, "previous_label": ...}
  cameras/porch/status   {"state": "online", "fps": ...} every 30 s, retained; "offline" when the camera goes
  homeassistant/sensor/cameras_porch/config   discovery, so the camera appears as a sensor

If the broker is down the loop keeps classifying and the sink reconnects by itself. The same thing from the
command line: edge-classifier run --mqtt mqtt://broker:1883/cameras/porch
"""

from __future__ import annotations

import argparse
import sys

from edge_classifier import Classifier, EdgeClassifierError, LoopOptions, run_pipeline
from edge_classifier.sinks.mqtt import MqttSink, parse_mqtt_url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--broker", default="mqtt://127.0.0.1:1883/cameras/porch", help="mqtt://[user:pass@]host[:port]/base/topic"
    )
    parser.add_argument("--source", default="picamera", help="picamera, a camera index, a video file, a URL or an image folder")
    parser.add_argument("--model", help="a .tflite classifier (default: the bundled one)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    parser.add_argument("--min-score", type=float, default=0.3, help="ignore classes scoring below this")
    args = parser.parse_args()

    try:
        sink = MqttSink(parse_mqtt_url(args.broker, status_interval=30))
        with Classifier(args.model, min_score=args.min_score) as clf:
            sink.backend, sink.model = clf.runtime_info.runtime, clf.model_path.name  # shown in the status messages
            run_pipeline(clf, args.source, [sink], LoopOptions(smoothing=0.5, max_frames=args.max_frames))
    except EdgeClassifierError as exc:  # bad URL, refused credentials, no camera, ...
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"published {sink.published} event(s) to {sink.options.event_topic}, dropped {sink.dropped}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

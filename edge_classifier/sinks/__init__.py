"""Result sinks: small start/write/close objects, several at once (see :class:`Sink`).

- :class:`JsonlSink`: one JSON record per frame, to a file or stdout.
- :class:`OverlaySink`: an annotated preview window (needs opencv-python with a GUI and a display).
- :class:`RecorderSink`: an annotated video recording.
- :class:`CallbackSink`: a Python callable.
- :class:`MqttSink`: label events, status and Home Assistant discovery to an MQTT broker (the ``[mqtt]`` extra;
  paho is imported when the sink starts).
- :class:`WebhookSink`: label events as HTTP POSTs.
- :class:`ClipSink`: a video clip and a snapshot around every label or state event, from a compressed pre-roll.
"""

from __future__ import annotations

from .annotate import annotate
from .base import Sink
from .callback import CallbackSink
from .clips import ClipSink
from .jsonl import JsonlSink
from .mqtt import MqttSink
from .overlay import OverlaySink
from .recorder import RecorderSink
from .webhook import WebhookSink

__all__ = ["CallbackSink", "ClipSink", "JsonlSink", "MqttSink", "OverlaySink", "RecorderSink", "Sink", "WebhookSink", "annotate"]

"""The JSON messages the network sinks send (MQTT and webhook share them), and their schema version.

Label event (MQTT topic ``<base>/event``, webhook POST body)::

    {"schema_version": 1, "type": "label", "camera": "porch", "time": "2024-05-01T12:00:00.123456+00:00",
     "label": "macaw", "id": 88, "score": 0.93, "previous_label": "Egyptian cat", "previous_id": 285,
     "frame": 57, "source": "clip.mp4", "device": "cpu",
     "top": [{"id": 88, "label": "macaw", "score": 0.93}, ...]}

Region state event (MQTT topics ``<base>/<region>/event`` and, retained, ``<base>/<region>/state``)::

    {"schema_version": 1, "type": "state", "camera": "porch", "time": "...", "region": "feeder", "state": "bird",
     "previous_state": "unknown", "score": 0.97, "label": "chickadee", "frame": 42, "source": "0", "device": "cpu",
     "top": [...], "clip": "events/20240501-120000.123_feeder_bird.mp4", "snapshot": "events/...jpg"}

``clip`` and ``snapshot`` (also on label events) name the files a clip sink is writing for the event, when one runs.

Status (MQTT topic ``<base>/status``, retained; the broker sends ``{"state": "offline"}`` as last will)::

    {"schema_version": 1, "type": "status", "camera": "porch", "time": "...", "state": "online",
     "fps": 29.8, "frames": 1200, "label": "macaw", "backend": "ai-edge-litert", "device": "cpu",
     "cpu_temp_c": 51.2, "uptime_s": 40.1, "dropped_messages": 0}

``schema_version`` changes only when a field is renamed, removed or changes meaning; new fields may be added
within a version, so consumers must ignore fields they do not know.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from ..redact import redact_url
from ..results import RegionResult, Result

SCHEMA_VERSION = 1

#: Where Linux exposes the SoC temperature (Raspberry Pi: thermal_zone0, in millidegrees Celsius).
THERMAL_ZONES = Path("/sys/class/thermal")


def now_iso() -> str:
    """Wall-clock time, UTC, ISO 8601 with microseconds (capture times are monotonic, so not usable here)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


def event_payload(result: Result, camera: str) -> dict[str, Any] | None:
    """The label-event message for a result, or None when the smoothed label did not change on this frame."""
    event = result.event
    if event is None:
        return None
    ranked = result.smoothed if result.smoothed is not None else result.classes
    return {
        "schema_version": SCHEMA_VERSION,
        "type": "label",
        "camera": camera,
        "time": now_iso(),
        "label": event.label,
        "id": event.id,
        "score": round(float(event.score), 6),
        "previous_label": event.previous_label,
        "previous_id": event.previous_id,
        "frame": event.frame_index,
        "source": redact_url(result.frame.source),  # sent to a broker or a server: never a camera's password
        "device": result.device,
        "top": [c.to_dict() for c in ranked],
        **_files(event.clip, event.snapshot),
    }


def _files(clip: str | None, snapshot: str | None) -> dict[str, str]:
    return {k: v for k, v in (("clip", clip), ("snapshot", snapshot)) if v is not None}


def state_payloads(result: Result, camera: str) -> list[tuple[RegionResult, dict[str, Any]]]:
    """The state-event message of each region whose state changed on this frame, with its region."""
    out: list[tuple[RegionResult, dict[str, Any]]] = []
    for region in result.regions:
        event = region.event
        if event is None:
            continue
        ranked = region.smoothed if region.smoothed is not None else region.classes
        out.append(
            (
                region,
                {
                    "schema_version": SCHEMA_VERSION,
                    "type": "state",
                    "camera": camera,
                    "time": now_iso(),
                    "region": event.region,
                    "state": event.state,
                    "previous_state": event.previous_state,
                    "score": round(float(event.score), 6),
                    "label": event.label,
                    "frame": event.frame_index,
                    "source": redact_url(result.frame.source),
                    "device": result.device,
                    "top": [c.to_dict() for c in ranked],
                    **_files(event.clip, event.snapshot),
                },
            )
        )
    return out


def status_payload(camera: str, state: str, **fields: Any) -> dict[str, Any]:
    """A status message: ``state`` is ``online`` or ``offline``; other fields as given (None ones left out)."""
    d: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "type": "status", "camera": camera, "time": now_iso(), "state": state}
    d.update({k: v for k, v in fields.items() if v is not None})
    return d


def cpu_temperature(root: Path = THERMAL_ZONES) -> float | None:
    """The CPU temperature in °C from the first readable thermal zone, or None where there is none (containers, macOS)."""
    zones = sorted(root.glob("thermal_zone*/temp")) if root.is_dir() else []
    for zone in zones:
        try:
            milli = int(zone.read_text().strip())
        except (OSError, ValueError):
            continue
        return round(milli / 1000.0, 1)
    return None

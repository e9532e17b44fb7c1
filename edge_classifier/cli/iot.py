"""The ``run`` options for IoT outputs (MQTT, webhook) and config files, and the sinks they make.

``cli/run.py`` calls :func:`add_iot_options` last in its option function, :func:`build_iot_sinks` from
``build_sinks``, :func:`apply_config_file` first thing in ``run`` and :func:`describe_sinks` once the model
is loaded; everything about these options lives here.
"""

from __future__ import annotations

import argparse
import os
from typing import Any
from urllib.parse import urlsplit

#: Read when --mqtt-password is not given, so the password need not sit in a config file or `ps` output.
PASSWORD_ENV = "EDGE_CLASSIFIER_MQTT_PASSWORD"


def add_iot_options(p: argparse.ArgumentParser) -> None:
    """Add --config, the MQTT and the webhook options; must be called after every other ``run`` option."""
    from ..config import track_explicit

    p.add_argument(
        "--config", "-c", metavar="TOML", help="read options from a TOML file (keys = option names); command-line options win"
    )
    g = p.add_argument_group("MQTT (label events, status, Home Assistant discovery; needs the [mqtt] extra)")
    g.add_argument("--mqtt", metavar="URL", help="publish to mqtt://[user:pass@]host[:port]/base/topic (mqtts:// for TLS)")
    g.add_argument("--mqtt-qos", type=int, choices=(0, 1, 2), default=None, help="QoS of events and status (default 1)")
    g.add_argument("--mqtt-retain", action="store_true", help="retain label events, so a new subscriber gets the current label")
    g.add_argument("--mqtt-username", metavar="USER", help="broker user (overrides the URL's)")
    g.add_argument("--mqtt-password", metavar="PASS", help=f"broker password (overrides the URL's; default ${PASSWORD_ENV})")
    g.add_argument("--mqtt-tls", action="store_true", help="use TLS on an mqtt:// URL (port 8883 unless the URL gives one)")
    g.add_argument(
        "--mqtt-cafile", metavar="PATH", help="CA bundle to verify the broker's TLS certificate (default: the system's)"
    )
    g.add_argument(
        "--mqtt-status-interval",
        type=float,
        default=None,
        metavar="S",
        help="seconds between status messages (default 30; 0 = online/offline only)",
    )
    g.add_argument(
        "--mqtt-discovery",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="publish Home Assistant MQTT discovery so the camera appears as a sensor (default on)",
    )
    g.add_argument(
        "--mqtt-name", metavar="NAME", help="the camera's name in payloads and Home Assistant (default: from the topic)"
    )
    w = p.add_argument_group("webhook")
    w.add_argument("--webhook", metavar="URL", help="POST each label event as JSON to this http(s) URL")
    w.add_argument("--webhook-timeout", type=float, default=5.0, metavar="S", help="seconds per request (default 5)")
    w.add_argument(
        "--webhook-retries", type=int, default=3, metavar="N", help="retries with back-off after a failed request (default 3)"
    )
    track_explicit(p)


def apply_config_file(args: argparse.Namespace) -> argparse.Namespace:
    """Fill ``args`` from ``--config`` where the command line left an option out.

    Raises:
        ConfigError: the file is unreadable, has an unknown key, or a bad value.
    """
    from ..config import apply_config

    return apply_config(args)


def build_iot_sinks(args: argparse.Namespace) -> list[Any]:
    """The MQTT and webhook sinks the options ask for (not started).

    Raises:
        ConfigError: a malformed URL or option.
    """
    sinks: list[Any] = []
    if getattr(args, "mqtt", None):
        from ..sinks.mqtt import MqttSink, parse_mqtt_url

        options = parse_mqtt_url(
            args.mqtt,
            qos=args.mqtt_qos,
            retain=args.mqtt_retain or None,
            username=args.mqtt_username,
            password=args.mqtt_password
            if args.mqtt_password is not None or urlsplit(args.mqtt).password
            else os.environ.get(PASSWORD_ENV),
            tls=args.mqtt_tls or None,
            cafile=args.mqtt_cafile,
            status_interval=args.mqtt_status_interval,
            discovery=args.mqtt_discovery,
            camera=args.mqtt_name,
        )
        sinks.append(MqttSink(options))
    if getattr(args, "webhook", None):
        from ..sinks.webhook import WebhookSink

        sinks.append(WebhookSink(args.webhook, timeout=args.webhook_timeout, retries=args.webhook_retries, camera=args.mqtt_name))
    return sinks


def describe_sinks(sinks: list[Any], classifier: Any) -> None:
    """Tell the sinks that report status which model and runtime run (known only once the model is loaded)."""
    from ..sinks.mqtt import MqttSink

    for s in sinks:
        if isinstance(s, MqttSink):
            s.backend = classifier.backend.runtime
            s.model = classifier.model_path.name

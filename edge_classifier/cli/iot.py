"""The ``run`` options for IoT outputs (MQTT, webhook) and config files, and the sinks they make.

``cli/run.py`` calls :func:`add_iot_options` after its own options, :func:`build_iot_sinks` from
``build_sinks``, :func:`apply_config_file` first thing in ``run`` and :func:`describe_sinks` once the model
is loaded; everything about these options lives here.
"""

from __future__ import annotations

import argparse
import os
from typing import Any
from urllib.parse import urlsplit

from .. import options

#: Read when --mqtt-password is not given, so the password need not sit in a config file or `ps` output.
PASSWORD_ENV = options.PASSWORD_ENV


def add_iot_options(p: argparse.ArgumentParser) -> None:
    """Add --config, the MQTT, webhook and web view options (declared in :mod:`edge_classifier.options`)."""
    options.add_options(p, (options.CONFIG_OPTION, *options.MQTT_OPTIONS, *options.WEBHOOK_OPTIONS, *options.WEB_OPTIONS))


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
    from ..sinks.web import WebSink

    for s in sinks:
        if isinstance(s, MqttSink):
            s.backend = classifier.runtime_info.runtime
            s.model = classifier.model_path.name
        elif isinstance(s, WebSink):
            s.describe(classifier)

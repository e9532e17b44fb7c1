"""systemd unit text for running ``edge-classifier run --config FILE`` as an unattended service (pure).

The unit runs as a non-root user in the ``video`` group (cameras: /dev/video*, /dev/media*, /dev/vchiq) and
``plugdev`` (a USB Coral through its udev rule), restarts on failure, and is hardened only in ways that leave
devices and USB alone: no ``PrivateDevices``, ``DevicePolicy`` or ``RestrictAddressFamilies`` (libcamera and
udev talk over netlink), no ``ProtectHome`` (models and logs often live in the user's home).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_GROUPS = ("video", "plugdev")


@dataclass(frozen=True)
class ServiceSpec:
    """What the unit runs and as whom.

    Attributes:
        executable: absolute path of the ``edge-classifier`` program.
        config: absolute path of the TOML config.
        user: the (non-root) user the service runs as.
        groups: supplementary groups (device access).
        description: the unit's Description=.
        restart_sec: seconds between a crash and the restart.
        extra_args: more arguments after ``run --config FILE`` (``-v``, say).
    """

    executable: Path
    config: Path
    user: str
    groups: tuple[str, ...] = DEFAULT_GROUPS
    description: str = ""
    restart_sec: int = 5
    extra_args: tuple[str, ...] = field(default_factory=tuple)


def unit_name(config: Path) -> str:
    """``edge-classifier-<config stem>.service``, with characters systemd dislikes replaced."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.stem).strip("-") or "camera"
    return f"edge-classifier-{stem}.service"


def _no_specifiers(text: str) -> str:
    """Escape systemd's %-specifiers (and $ expansion in ExecStart) so a path is taken literally."""
    return text.replace("%", "%%").replace("$", "$$")


def _quote(arg: str) -> str:
    """Quote an ExecStart argument for systemd when it holds spaces, quotes, backslashes or specifiers."""
    arg = _no_specifiers(arg)
    if re.search(r"[\s\"'\\;]", arg):
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


def render_unit(spec: ServiceSpec) -> str:
    """The unit file's text.

    Raises:
        ValueError: a relative path, or root as the user (callers turn this into a ConfigError).
    """
    if not spec.executable.is_absolute() or not spec.config.is_absolute():
        raise ValueError("executable and config must be absolute paths")
    if spec.user in ("root", "0"):
        raise ValueError("the service must not run as root")
    argv = [str(spec.executable), "run", "--config", str(spec.config), *spec.extra_args]
    description = spec.description or f"edge-classifier camera ({spec.config.name})"
    groups = " ".join(spec.groups)
    lines = [
        "# Written by `edge-classifier install-service`. Edit the config file, not this unit, then:",
        f"#   sudo systemctl restart {unit_name(spec.config)}",
        "[Unit]",
        f"Description={description}",
        "Documentation=https://github.com/edge-classifier/edge_classifier",
        # MQTT and webhooks need the network; the sinks reconnect anyway if it comes up later.
        "Wants=network-online.target",
        "After=network-online.target",
        "StartLimitIntervalSec=300",
        "StartLimitBurst=10",
        "",
        "[Service]",
        "Type=simple",
        f"User={spec.user}",
        *([f"SupplementaryGroups={groups}"] if groups else []),
        # A path setting: taken whole (spaces allowed, no quotes), only %-specifiers are expanded.
        f"WorkingDirectory={str(spec.config.parent).replace('%', '%%')}",
        f"ExecStart={' '.join(_quote(a) for a in argv)}",
        # The loop stops cleanly on SIGTERM (recording finalised, JSON lines flushed, "offline" published);
        # 130 is its exit status after an interrupt, which is a normal stop here, not a failure to restart.
        "TimeoutStopSec=20",
        "SuccessExitStatus=130 143",
        "Restart=on-failure",
        f"RestartSec={spec.restart_sec}",
        "Environment=PYTHONUNBUFFERED=1",
        "NoNewPrivileges=yes",
        "ProtectSystem=full",
        "PrivateTmp=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectControlGroups=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def enable_instructions(unit_path: Path) -> str:
    """What to type after the unit is written."""
    name = unit_path.name
    return "\n".join(
        [
            f"Wrote {unit_path}. To start it now and at every boot:",
            "  sudo systemctl daemon-reload",
            f"  sudo systemctl enable --now {name}",
            "Follow its log with:",
            f"  journalctl -u {name} -f",
            f"Stop it with: sudo systemctl disable --now {name}",
        ]
    )

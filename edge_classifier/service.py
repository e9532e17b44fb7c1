"""systemd unit text for running ``edge-classifier run --config FILE`` as an unattended service (pure).

The unit runs as a non-root user in the ``video`` group (cameras: /dev/video*, /dev/media*, /dev/vchiq) and
``plugdev`` (a USB Coral through its udev rule), restarts on failure, and is hardened only in ways that leave
devices and USB alone: no ``PrivateDevices``, ``DevicePolicy`` or ``RestrictAddressFamilies`` (libcamera and
udev talk over netlink), no ``ProtectHome`` (models and logs often live in the user's home).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

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


def check_unit_value(what: str, value: str) -> str:
    """``value`` when it can go into a unit file as it is: no line breaks, no control characters, valid text.

    A newline in a value would start a new line of the unit, so a folder named ``x\\nUser=root`` could add settings;
    systemd also cuts lines at NUL and treats other control characters inconsistently. Such values are refused,
    not escaped: the unit must mean exactly what the user sees.

    Raises:
        ConfigError: a control character (C0, DEL or C1) or a byte that is not valid UTF-8.
    """
    for ch in value:
        if unicodedata.category(ch) == "Cc":
            raise ConfigError(
                f"{what} {value!r}",
                f"contains the control character {ch!r}, which would break the systemd unit (or add lines to it)",
                "rename the file or folder without newlines or other control characters, then install the service again",
            )
        if unicodedata.category(ch) == "Cs":
            raise ConfigError(
                f"{what} {value!r}",
                "is not valid UTF-8, which a systemd unit must be",
                "rename the file or folder to a UTF-8 name, then install the service again",
            )
    return value


def _no_specifiers(text: str) -> str:
    """Escape systemd's %-specifiers, so a value is taken literally (every setting expands them, Description= too)."""
    return text.replace("%", "%%")


def _quote(arg: str) -> str:
    """An ExecStart argument taken literally: no %-specifiers, no $ expansion, quoted when it holds spaces or quotes."""
    arg = _no_specifiers(arg).replace("$", "$$")
    if re.search(r"[\s\"'\\;]", arg) or arg == "":
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


def render_unit(spec: ServiceSpec) -> str:
    """The unit file's text.

    Every value that reaches the unit is checked by :func:`check_unit_value` and has its ``%`` escaped.

    Raises:
        ConfigError: a relative path, root as the user, or a value with control characters.
    """
    if not spec.executable.is_absolute() or not spec.config.is_absolute():
        raise ConfigError("systemd unit", "the executable and the config must be absolute paths", "pass absolute paths")
    if spec.user in ("root", "0"):
        raise ConfigError(f"user {spec.user!r}", "the service must not run as root", "pass --user NAME with a non-root account")
    argv = [str(spec.executable), "run", "--config", str(spec.config), *spec.extra_args]
    description = spec.description or f"edge-classifier camera ({spec.config.name})"
    for what, value in (
        ("program path", str(spec.executable)),
        ("config path", str(spec.config)),
        ("user", spec.user),
        ("description", description),
        *(("group", g) for g in spec.groups),
        *(("argument", a) for a in spec.extra_args),
    ):
        check_unit_value(what, value)
    for what, value in (("user", spec.user), *(("group", g) for g in spec.groups)):
        if not value or re.search(r"\s", value):
            raise ConfigError(f"{what} {value!r}", "is empty or holds white space", "give an account or group name")
    groups = " ".join(_no_specifiers(g) for g in spec.groups)
    lines = [
        "# Written by `edge-classifier install-service`. Edit the config file, not this unit, then:",
        f"#   sudo systemctl restart {unit_name(spec.config)}",
        "[Unit]",
        f"Description={_no_specifiers(description)}",
        "Documentation=https://github.com/edge-classifier/edge_classifier",
        # MQTT and webhooks need the network; the sinks reconnect anyway if it comes up later.
        "Wants=network-online.target",
        "After=network-online.target",
        "StartLimitIntervalSec=300",
        "StartLimitBurst=10",
        "",
        "[Service]",
        "Type=simple",
        f"User={_no_specifiers(spec.user)}",
        *([f"SupplementaryGroups={groups}"] if groups else []),
        # A path setting: taken whole (spaces allowed, no quotes), only %-specifiers are expanded.
        f"WorkingDirectory={_no_specifiers(str(spec.config.parent))}",
        f"ExecStart={' '.join(_quote(a) for a in argv)}",
        # The loop stops cleanly on SIGTERM (recording finalised, JSON lines flushed, "offline" published);
        # 130 is its exit status after an interrupt, which is a normal stop here, not a failure to restart.
        "TimeoutStopSec=20",
        "SuccessExitStatus=130 143",
        "Restart=on-failure",
        f"RestartSec={int(spec.restart_sec)}",
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
    for line in lines:
        if line.endswith("\\"):
            # systemd joins a line ending in a backslash with the next one: the next setting would be swallowed.
            raise ConfigError(
                f"systemd unit line {line!r}",
                "ends in a backslash, which systemd reads as 'continued on the next line'",
                "rename the file or folder so that it does not end in a backslash",
            )
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

"""``edge-classifier install-service``: write a systemd unit that runs ``edge-classifier run --config FILE``."""

from __future__ import annotations

import argparse
import getpass
import grp
import logging
import os
import pwd
import shutil
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError, EdgeClassifierError
from . import EXIT_OK

log = logging.getLogger(__name__)

UNIT_DIR = Path("/etc/systemd/system")


def register(sub: Any) -> None:
    """Add the ``install-service`` subcommand."""
    p = sub.add_parser(
        "install-service",
        help="write a systemd unit that runs the camera from a config file",
        description="Write a systemd unit running `edge-classifier run --config FILE` as a non-root user in the "
        "video and plugdev groups, restarted on failure; then print how to enable it.",
    )
    p.add_argument("--config", required=True, help="the TOML config the service runs (checked before the unit is written)")
    p.add_argument("--user", help="the non-root user to run as (default: $SUDO_USER, else you)")
    p.add_argument("--output", help=f"where to write the unit (default: {UNIT_DIR}/edge-classifier-<config name>.service)")
    p.add_argument("--dry-run", action="store_true", help="print the unit instead of writing it")
    p.add_argument("-v", "--verbose", action="count", default=0, help="add -v to the service's command line too")
    p.set_defaults(func=run)


def find_executable() -> Path:
    """The absolute path of the ``edge-classifier`` program this Python runs (its virtualenv's, if any).

    Raises:
        ConfigError: no ``edge-classifier`` script can be found.
    """
    beside = Path(sys.executable).parent / "edge-classifier"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside.absolute()
    found = shutil.which("edge-classifier")
    if found:
        return Path(found).absolute()
    argv0 = Path(sys.argv[0])
    if argv0.name == "edge-classifier" and argv0.is_file():
        return argv0.absolute()
    raise ConfigError(
        "edge-classifier",
        "the program's path cannot be found",
        "install the package (pip install edge-classifier) so the script exists",
    )


def service_user(requested: str | None) -> str:
    """The user to run as: checked to exist and not to be root.

    Raises:
        ConfigError: the user does not exist, or is root.
    """
    name = requested or os.environ.get("SUDO_USER") or getpass.getuser()
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(
            f"user {name!r}",
            "does not exist on this machine",
            f"create it (sudo adduser {name}), or pass --user with an existing account; "
            "the unit must be written on the machine that runs it",
        ) from None
    if entry.pw_uid == 0:
        raise ConfigError(
            f"user {name!r}",
            "is root; a camera service should not run with root's rights",
            "pass --user NAME with the account that owns the camera (pi, say)",
        )
    return name


def existing_groups(wanted: tuple[str, ...]) -> tuple[str, ...]:
    """The groups of ``wanted`` that exist here (systemd refuses to start a unit naming a missing group)."""
    present = []
    for g in wanted:
        try:
            grp.getgrnam(g)
        except KeyError:
            log.warning("group %r does not exist on this machine; leaving it out of SupplementaryGroups", g)
            continue
        present.append(g)
    return tuple(present)


def run(args: argparse.Namespace) -> int:
    """Check the config, write (or print) the unit, print how to enable it."""
    from ..config import load_config
    from ..service import DEFAULT_GROUPS, ServiceSpec, enable_instructions, render_unit, unit_name

    config = Path(args.config).expanduser().absolute()
    load_config(config)  # a broken config is an error now, not a crash loop at boot
    spec = ServiceSpec(
        executable=find_executable(),
        config=config,
        user=service_user(args.user),
        groups=existing_groups(DEFAULT_GROUPS),
        extra_args=("-" + "v" * args.verbose,) if args.verbose else (),
    )
    text = render_unit(spec)  # refuses control characters in any value, before anything is written
    out = Path(args.output).expanduser().absolute() if args.output else UNIT_DIR / unit_name(config)
    if args.dry_run:
        print(f"# would be written to {out}")
        print(text, end="")
        return EXIT_OK
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    except OSError as exc:
        fix = (
            "run it with sudo, or pass --output PATH"
            if isinstance(exc, PermissionError)
            else "pass --output PATH to a writable folder"
        )
        raise EdgeClassifierError(f"unit file {out}", f"cannot be written ({exc.strerror or exc})", fix) from None
    print(enable_instructions(out))
    return EXIT_OK

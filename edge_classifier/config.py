"""TOML config files for ``edge-classifier run``: every CLI option, from a file, validated.

A config file is a flat table whose keys are the ``run`` options without their leading dashes::

    # /etc/edge-classifier/porch.toml
    model = "/opt/models/mobilenet_v2_1.0_224_quant.tflite"
    source = "picamera"
    min-score = 0.5                 # min_score works too
    mqtt = "mqtt://camera:secret@broker.local:1883/cameras/porch"
    mqtt-qos = 1

The allowed keys, their types and their allowed values come from the option table in :mod:`edge_classifier.options`,
the same table the ``run`` argument parser is built from, so the file and the command line can never drift apart.
Options given on the command line override the file. Relative paths are taken as they are (relative to the working
directory); the systemd unit written by ``install-service`` runs in the config file's directory, so paths relative to
the file work there.
"""

from __future__ import annotations

import argparse
import difflib
import stat
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .options import EXPLICIT_ATTR, RUN_COMMAND_OPTIONS, Option, config_options, from_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["EXPLICIT_ATTR", "MAX_CONFIG_BYTES", "apply_config", "load_config", "read_toml", "validate"]

#: A config file is a few dozen lines; anything far larger is the wrong file (or /dev/zero) and is not read.
MAX_CONFIG_BYTES = 1 << 20

# Options that make no sense inside a config file.
_NOT_IN_FILE = {"help", "version", "config"}


def read_toml(path: str | Path) -> dict[str, Any]:
    """The TOML file's top-level table.

    Raises:
        ConfigError: the file is missing, unreadable, not a regular file, too large, not UTF-8 text, or not valid
            TOML (the message has the line and column).
    """
    p = Path(path)
    thing = f"config file {p}"
    try:
        st = p.stat()
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError(thing, "is a folder, not a file", "give --config the .toml file itself")
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(thing, "is not a regular file (a device, pipe or socket)", "give --config a .toml text file")
        if st.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(
                thing, f"is {st.st_size} bytes, too large for a config file", "give --config the .toml file of a few lines"
            )
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(thing, "does not exist", "check the path given to --config") from None
    except OSError as exc:
        raise ConfigError(thing, f"cannot be read ({exc.strerror or exc})", "check its permissions") from None
    except ValueError as exc:  # a NUL in the path
        raise ConfigError(thing, f"is not a usable path ({exc})", "check the path given to --config") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            thing,
            f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}): a binary file?",
            "give --config a TOML text file, written as UTF-8",
        ) from None
    try:
        return dict(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            thing,
            f"is not valid TOML: {exc}",
            'write one key = value per line, strings in quotes: source = "picamera"',
        ) from None
    except RecursionError:
        raise ConfigError(
            thing, "nests arrays or tables too deeply to be a config file", "write one key = value per line"
        ) from None


def load_config(path: str | Path, options: Iterable[Option] = RUN_COMMAND_OPTIONS) -> dict[str, Any]:
    """Read and validate a config file against the ``run`` options.

    Args:
        path: the TOML file.
        options: the options whose names the keys must match (default: every ``run`` option).

    Returns:
        ``{dest: value}`` with values converted exactly as the command line would convert them.

    Raises:
        ConfigError: unreadable file, unknown or repeated key, wrong type, or a value outside the allowed ones; the
            message names the key and what is allowed.
    """
    raw = read_toml(path)
    return validate(raw, str(path), options)


def validate(raw: dict[str, Any], where: str = "config", options: Iterable[Option] = RUN_COMMAND_OPTIONS) -> dict[str, Any]:
    """Check every key and value of a config table; see :func:`load_config`."""
    table = config_options(options)
    aliases = {k.replace("-", "_"): k for k in table}
    out: dict[str, Any] = {}
    seen: dict[str, str] = {}  # option name -> the key that set it
    for key, value in raw.items():
        name = key if key in table else aliases.get(key)
        if name is None:
            raise ConfigError(f"{where}: key {key!r}", "is not an option of 'edge-classifier run'", _unknown_fix(key, table))
        if name in seen:
            raise ConfigError(
                f"{where}: keys {seen[name]!r} and {key!r}",
                "name the same option twice",
                f"keep one of them ({name} = ...)",
            )
        seen[name] = key
        opt = table[name]
        out[opt.dest] = from_config(opt, value, f"{where}: key {key!r}")
        if opt.kind == "tables" and out[opt.dest] is not None:  # [[region]]: each table checked as the run will build it
            _check_regions(out[opt.dest], f"{where}: key {key!r}")
    return out


def _check_regions(values: list[Any], where: str) -> None:
    """The ``[[region]]`` tables made into regions, as ``run`` will make them (errors name the file and region)."""
    from .loop_options import LoopOptions
    from .regions import regions_from

    regions = regions_from(values, where)
    try:
        LoopOptions(regions=regions)  # twin names, smoothing and hysteresis ranges
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.thing}", exc.cause, exc.fix) from None


def _unknown_fix(key: str, table: dict[str, Option]) -> str:
    if key in _NOT_IN_FILE:
        return f"remove {key!r}: it only makes sense on the command line"
    close = difflib.get_close_matches(key.replace("_", "-"), list(table), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}allowed keys: {', '.join(sorted(table))}"


def apply_config(args: argparse.Namespace, options: Iterable[Option] = RUN_COMMAND_OPTIONS) -> argparse.Namespace:
    """Fill ``args`` from ``args.config`` for every option the command line did not give.

    The parser must be built with :func:`edge_classifier.options.add_options`, whose actions record which options
    the command line gave (even when given the default value).

    Raises:
        ConfigError: see :func:`load_config`.
    """
    path = getattr(args, "config", None)
    if not path:
        return args
    values = load_config(path, options)
    explicit: set[str] = getattr(args, EXPLICIT_ATTR, set())
    for dest, value in values.items():
        if dest not in explicit:
            setattr(args, dest, value)
    return args

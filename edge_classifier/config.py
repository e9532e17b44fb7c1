"""TOML config files for ``edge-classifier run``: every CLI option, from a file, validated.

A config file is a flat table whose keys are the ``run`` options without their leading dashes::

    # /etc/edge-classifier/porch.toml
    model = "/opt/models/mobilenet_v2_1.0_224_quant.tflite"
    source = "picamera"
    min-score = 0.5                 # min_score works too
    mqtt = "mqtt://camera:secret@broker.local:1883/cameras/porch"
    mqtt-qos = 1

The allowed keys, their types and their allowed values are read from the ``run`` argument parser itself, so
the file and the command line can never drift apart. Options given on the command line override the file.
Relative paths are taken as they are (relative to the working directory); the systemd unit written by
``install-service`` runs in the config file's directory, so paths relative to the file work there.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

#: Namespace attribute that holds the dests given explicitly on the command line.
EXPLICIT_ATTR = "_explicit_options"

# Options that make no sense inside a config file.
_NOT_IN_FILE = {"help", "version", "config"}


def run_parser() -> argparse.ArgumentParser:
    """The ``run`` subcommand's parser, from the real CLI (the single source of truth for config keys)."""
    from .cli import build_parser

    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and "run" in action.choices:
            return action.choices["run"]
    raise ConfigError("edge-classifier", "this installation has no 'run' command", "reinstall edge-classifier")


def option_table(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Config key (the long option without dashes: ``min-score``) -> the parser's action for it."""
    table: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if not action.option_strings or action.dest in (argparse.SUPPRESS, *_NOT_IN_FILE):
            continue
        longs = [s for s in action.option_strings if s.startswith("--")]
        name = (longs[0] if longs else action.option_strings[0]).lstrip("-")
        if name.startswith("no-") and isinstance(action, argparse.BooleanOptionalAction):
            name = name[3:]
        if name in _NOT_IN_FILE:
            continue
        table[name] = action
    return table


def read_toml(path: str | Path) -> dict[str, Any]:
    """The TOML file's top-level table.

    Raises:
        ConfigError: the file is missing, unreadable, or not valid TOML (the message has the line and column).
    """
    p = Path(path)
    try:
        with p.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {p}", "does not exist", "check the path given to --config") from None
    except OSError as exc:
        raise ConfigError(f"config file {p}", f"cannot be read ({exc.strerror or exc})", "check its permissions") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"config file {p}",
            f"is not valid TOML: {exc}",
            'write one key = value per line, strings in quotes: source = "picamera"',
        ) from None


def load_config(path: str | Path, parser: argparse.ArgumentParser | None = None) -> dict[str, Any]:
    """Read and validate a config file against the ``run`` options.

    Args:
        path: the TOML file.
        parser: the parser whose options the keys must match (default: the real ``run`` parser).

    Returns:
        ``{dest: value}`` with values converted exactly as the command line would convert them.

    Raises:
        ConfigError: unreadable file, unknown key, wrong type, or a value outside the allowed ones; the message
            names the key and what is allowed.
    """
    parser = parser or run_parser()
    raw = read_toml(path)
    return validate(raw, parser, str(path))


def validate(raw: dict[str, Any], parser: argparse.ArgumentParser, where: str = "config") -> dict[str, Any]:
    """Check every key and value of a config table; see :func:`load_config`."""
    table = option_table(parser)
    aliases = {k.replace("-", "_"): k for k in table}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = key if key in table else aliases.get(key)
        if name is None:
            raise ConfigError(f"{where}: key {key!r}", "is not an option of 'edge-classifier run'", _unknown_fix(key, table))
        action = table[name]
        out[action.dest] = _convert(f"{where}: key {key!r}", value, action)
    return out


def _unknown_fix(key: str, table: dict[str, argparse.Action]) -> str:
    if isinstance(key, str) and key in _NOT_IN_FILE:
        return f"remove {key!r}: it only makes sense on the command line"
    close = difflib.get_close_matches(str(key).replace("_", "-"), list(table), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}allowed keys: {', '.join(sorted(table))}"


def _describe(action: argparse.Action) -> str:
    if action.choices is not None:
        return "one of " + ", ".join(repr(c) for c in action.choices)
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse.BooleanOptionalAction)):
        return "true or false"
    if isinstance(action, argparse._CountAction):
        return "a whole number >= 0"
    kind = {None: "a string", int: "a whole number", float: "a number"}.get(action.type, "a value as on the command line")  # type: ignore[arg-type]
    if action.nargs in ("+", "*") or isinstance(action, argparse._AppendAction):
        return f"a list of {kind.removeprefix('a ')}s"
    return kind


def _convert(thing: str, value: Any, action: argparse.Action) -> Any:
    expected = _describe(action)

    def bad(why: str = "") -> ConfigError:
        got = f"{type(value).__name__} {value!r}"
        option = next((o for o in action.option_strings if o.startswith("--")), action.dest)
        return ConfigError(
            thing,
            f"expected {expected}, got {got}{why}",
            f"give it {expected}, as {option} takes (see edge-classifier run --help)",
        )

    if isinstance(value, dict):
        raise ConfigError(
            thing, "is a table, but config files are flat", "write each option as key = value at the top of the file"
        )
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse.BooleanOptionalAction)):
        if not isinstance(value, bool):
            raise bad()
        if isinstance(action, argparse._StoreFalseAction):
            return not value
        return value
    if isinstance(action, argparse._StoreConstAction):
        if not isinstance(value, bool):
            raise bad()
        return action.const if value else action.default
    if isinstance(action, argparse._CountAction):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad()
        return value
    many = action.nargs in ("+", "*") or isinstance(action.nargs, int) or isinstance(action, argparse._AppendAction)
    if many:
        if not isinstance(value, list):
            raise bad()
        return [_scalar(thing, v, action, bad) for v in value]
    return _scalar(thing, value, action, bad)


def _scalar(thing: str, value: Any, action: argparse.Action, bad: Any) -> Any:
    conv = action.type
    if conv is None:
        if not isinstance(value, str):
            raise bad(" (quote it)" if isinstance(value, (int, float)) else "")
        result: Any = value
    elif conv is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        result = value
    elif conv is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        result = float(value)
    else:
        # A custom converter parses the CLI text; give it the same text the user would type.
        if isinstance(value, (bool, dict)):
            raise bad()
        text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
        try:
            result = conv(text)  # type: ignore[operator]
        except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
            raise bad(f" ({exc})") from None
    if action.choices is not None and result not in action.choices:
        allowed = ", ".join(repr(c) for c in action.choices)
        raise ConfigError(thing, f"{value!r} is not allowed", f"use one of {allowed}")
    return result


# --- command line over file -----------------------------------------------------------------------
def _tracking_class(cls: type[argparse.Action]) -> type[argparse.Action]:
    cached = _TRACKING.get(cls)
    if cached is not None:
        return cached

    class Tracking(cls):  # type: ignore[valid-type, misc]
        def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
            explicit: set[str] | None = getattr(namespace, EXPLICIT_ATTR, None)
            if explicit is None:
                explicit = set()
                setattr(namespace, EXPLICIT_ATTR, explicit)
            explicit.add(self.dest)
            super().__call__(parser, namespace, values, option_string)

    Tracking.__name__ = f"Tracking{cls.__name__}"
    _TRACKING[cls] = Tracking
    return Tracking


_TRACKING: dict[type[argparse.Action], type[argparse.Action]] = {}


def track_explicit(parser: argparse.ArgumentParser) -> None:
    """Make the parser record which options the command line gave, so a config file fills in only the rest.

    Call it after every option is added (``add_iot_options`` does, and must come last).
    """
    for action in parser._actions:
        if action.option_strings and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            action.__class__ = _tracking_class(type(action))


def apply_config(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """Fill ``args`` from ``args.config`` for every option the command line did not give.

    Raises:
        ConfigError: see :func:`load_config`.
    """
    path = getattr(args, "config", None)
    if not path:
        return args
    values = load_config(path, parser)
    explicit: set[str] = getattr(args, EXPLICIT_ATTR, set())
    for dest, value in values.items():
        if dest not in explicit:
            setattr(args, dest, value)
    return args

"""Every user option declared once: the command line, config files and the Python API are built from this table.

An :class:`Option` names an option (``top-k``: the long flag without dashes, which is also its config key), its
kind, default and help, and the values it allows. :func:`add_options` turns a group of them into argparse
arguments, :func:`from_config` checks a value read from a config file and :func:`validate_model_options` checks
the keywords of ``Classifier(...)``. All three end in the same rule, so ``--top-k 0``, ``top-k = 0`` in a file
and ``Classifier(top_k=0)`` are refused with the same words.

This module sits on the ground floor beside :mod:`errors`: the CLI, the config reader and the classifier import
it, and it imports nothing of theirs (argparse only builds what a caller asks for).
"""

from __future__ import annotations

import argparse
import difflib
import math
import numbers
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .errors import ConfigError, EdgeClassifierError, SpecError, shown

__all__ = [
    "BENCH_OPTIONS",
    "CONFIG_OPTION",
    "DEVICE_FORMS",
    "EXPLICIT_ATTR",
    "InvalidValue",
    "Kind",
    "MODEL_OPTIONS",
    "MQTT_OPTIONS",
    "Option",
    "PASSWORD_ENV",
    "PHOTO_OPTIONS",
    "REGION_KEYS",
    "REGION_OPTIONS",
    "RUN_COMMAND_OPTIONS",
    "RUN_OPTIONS",
    "WEBHOOK_OPTIONS",
    "WEB_OPTIONS",
    "add_options",
    "check_api_value",
    "check_value",
    "coerce",
    "config_options",
    "from_config",
    "option",
    "parse_text",
    "validate_model_options",
]

#: What an option holds. ``floats``: one number or three (R,G,B); ``size``: ``WxH``; ``flag``: ``--x`` sets it;
#: ``bool``: ``--x`` / ``--no-x``; ``count``: ``-v -v``; ``tables``: a repeatable ``--x TEXT`` on the command line,
#: an array of tables (``[[x]]``, keys from ``Option.keys``) or of such texts in a config file.
Kind = Literal["str", "int", "float", "floats", "size", "flag", "bool", "count", "tables"]

#: Namespace attribute holding the dests the command line gave explicitly (a config file fills in only the rest).
EXPLICIT_ATTR = "_explicit_options"

#: The device strings the SDK takes, for messages.
DEVICE_FORMS = (
    "auto, cpu, edgetpu, usb, usb:N, pci, pci:N or :N (N counts from 0, as in Coral's own tools), hailo, hailo:N "
    "(a Hailo AI HAT+) or imx500 (the AI Camera)"
)
_DEVICE_RE = re.compile(r"^(?:auto|cpu|edgetpu|tpu|(?:usb|pci)(?::\d+)?|:\d+|hailo(?::\d+)?|imx500)$")

# Longest text shown back in a message: a hostile 1 MB value must not become a 1 MB error line.
_SHOW_MAX = 60


class InvalidValue(ValueError):
    """A value broke an option's rule.

    Args:
        cause: what is wrong, in the user's terms (one line; the caller adds where the value came from).
        fix: what to do instead, when the option's general hint would not say it.
    """

    def __init__(self, cause: str, fix: str = "") -> None:
        super().__init__(cause)
        self.cause = cause
        self.fix = fix


@dataclass(frozen=True)
class Option:
    """One user option: what it holds, what it allows, and how the CLI, a config file and the API name it.

    Attributes:
        name: the long flag without dashes, and the config key (``min-score``; ``min_score`` works in files too).
        kind: see :data:`Kind`.
        help: the ``--help`` text.
        default: the value when nobody gives one.
        short: a short flag (``-k``), if any.
        choices: the only values allowed, if the option is an enumeration.
        low, high: the allowed range (None: unbounded); ``low_open``/``high_open`` exclude the bound itself.
        note: said after a range error (``0 is off, 0.9 is heavy smoothing``).
        example: a good value, for the fix of an error.
        metavar: how ``--help`` shows the value.
        group: the ``--help`` section (empty: the command's own).
        api: the keyword of ``Classifier(...)`` or :class:`~edge_classifier.spec.SpecOverrides` carrying it.
        spec_field: a model-contract override (the API raises SpecError for it instead of ConfigError).
        in_config: whether a config file may set it.
        allow_empty: whether an empty string is a value (a password may be empty; a path may not).
        paths: whether the API also takes an ``os.PathLike`` for it.
        check: a further rule; raises :class:`InvalidValue`.
        takes: what it takes in words, when its kind alone says too little (``a device string ...``).
        keys: the keys of a ``tables`` option's tables.
        const: for a ``str`` option, the value of the bare flag (``--web`` alone); None: the flag needs a value.
    """

    name: str
    kind: Kind
    help: str
    default: Any = None
    short: str | None = None
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    note: str = ""
    example: str = ""
    metavar: str | None = None
    group: str = ""
    api: str | None = None
    spec_field: bool = False
    in_config: bool = True
    allow_empty: bool = False
    paths: bool = False
    check: Callable[[Any], None] | None = None
    takes: str = ""
    keys: tuple[str, ...] = ()
    const: str | None = None

    @property
    def dest(self) -> str:
        """The attribute name on an argparse Namespace (``min_score``)."""
        return self.name.replace("-", "_")

    @property
    def flag(self) -> str:
        """The long flag (``--min-score``)."""
        return f"--{self.name}"

    def describe(self) -> str:
        """What the option takes, in words: ``a whole number``, ``one of 'RGB', 'BGR'``."""
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.takes:
            return self.takes
        return {
            "str": "a string",
            "int": "a whole number",
            "float": "a number",
            "floats": "a number, or a list of 3 numbers (R,G,B)",
            "size": "a size WxH such as 1280x720",
            "flag": "true or false",
            "bool": "true or false",
            "count": "a whole number >= 0",
            "tables": "an array of tables",
        }[self.kind]

    def wanted(self) -> str:
        """What the option takes with its range, for a fix: ``a whole number in [1, 100000]``."""
        rule = self.rule().removeprefix("must be ")
        if not rule or self.choices is not None:
            return self.describe()
        if self.kind == "floats":
            return f"one number {rule}, or three (R,G,B)"
        if self.kind == "size":
            return f"WxH, each side {rule}"
        return f"{self.describe()} {rule}"

    def rule(self) -> str:
        """The range in words (``must be in [0, 1)``), or ``""`` when the option has none."""
        low, high = self.low, self.high
        if low is not None and high is not None:
            return f"must be in {'(' if self.low_open else '['}{_num(low)}, {_num(high)}{')' if self.high_open else ']'}"
        if low is not None:
            return f"must be more than {_num(low)}" if self.low_open else f"must be {_num(low)} or more"
        if high is not None:
            return f"must be less than {_num(high)}" if self.high_open else f"must be {_num(high)} or less"
        return ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _show(value: Any) -> str:
    """``repr(value)``, one line and short: control characters escaped, long values cut, ``2`` for ``2.0``."""
    return shown(value, _SHOW_MAX)


# --- the rules ---------------------------------------------------------------------------------
def _check_text(opt: Option, value: str) -> None:
    if value == "" and not opt.allow_empty:
        raise InvalidValue("is empty", f"give {opt.flag} a value, or leave it out")
    for ch in value:
        if unicodedata.category(ch) == "Cc":
            raise InvalidValue(
                f"{_show(value)} contains the control character {ch!r}",
                "remove it (names with newlines or other control characters are refused everywhere)",
            )


def _check_number(opt: Option, value: float) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValue(f"{_show(value)} is not allowed: it must be a finite number")
    low, high = opt.low, opt.high
    bad = (low is not None and (value <= low if opt.low_open else value < low)) or (
        high is not None and (value >= high if opt.high_open else value > high)
    )
    if bad:
        note = f" ({opt.note})" if opt.note else ""
        raise InvalidValue(f"{_show(value)} is not allowed: it {opt.rule()}{note}")


def check_value(opt: Option, value: Any) -> Any:
    """``value`` (already of the option's type) when it obeys the option's rules.

    Raises:
        InvalidValue: out of range, not finite, not one of the choices, empty, or with control characters.
    """
    if value is None:
        return value
    if opt.choices is not None and value not in opt.choices:
        raise InvalidValue(f"{_show(value)} is not allowed", "use one of " + ", ".join(repr(c) for c in opt.choices))
    if opt.kind == "str" or (opt.kind == "tables" and isinstance(value, str)):
        _check_text(opt, os.fsdecode(value) if isinstance(value, os.PathLike) else value)
    elif opt.kind in ("int", "float"):
        _check_number(opt, value)
    elif opt.kind == "floats":
        for v in value:
            _check_number(opt, v)
    elif opt.kind == "size":
        try:
            for v in value:
                _check_number(opt, v)
        except InvalidValue:
            note = f" ({opt.note})" if opt.note else ""
            raise InvalidValue(f"{value[0]}x{value[1]} is not allowed: each side {opt.rule()}{note}") from None
    if opt.check is not None:
        opt.check(value)
    return value


# --- from text (the command line) ---------------------------------------------------------------
def _int_text(text: str) -> int:
    t = text.strip()
    # int() also takes "٣" and "1_000"; the command line takes plain digits, as the help shows.
    if not re.fullmatch(r"[+-]?[0-9]+", t):
        raise InvalidValue(f"{_show(text)} is not a whole number")
    return int(t)


def _float_text(text: str) -> float:
    t = text.strip()
    if not t.isascii():
        raise InvalidValue(f"{_show(text)} is not a number")
    try:
        return float(t)
    except ValueError:
        raise InvalidValue(f"{_show(text)} is not a number") from None


def _floats_list(values: Sequence[float], text: Any) -> list[float]:
    if len(values) not in (1, 3):
        raise InvalidValue(f"{_show(text)} has {len(values)} values", "give one number, or three (R,G,B)")
    return list(values)


def parse_text(opt: Option, text: str) -> Any:
    """The value of ``text`` as the command line gives it (``"0.5"``, ``"127.5,127.5,127.5"``, ``"640x480"``).

    Raises:
        InvalidValue: not of the option's kind, or against its rules.
    """
    value: Any
    if opt.kind == "int":
        value = _int_text(text)
    elif opt.kind == "float":
        value = _float_text(text)
    elif opt.kind == "floats":
        try:
            parts = [_float_text(x) for x in text.split(",")]
        except InvalidValue:
            raise InvalidValue(f"{_show(text)} is not a number or a comma-separated list of numbers") from None
        value = _floats_list(parts, text)
    elif opt.kind == "size":
        m = re.fullmatch(r"\s*([0-9]+)\s*[xX]\s*([0-9]+)\s*", text)
        if not m:
            raise InvalidValue(f"{_show(text)}: expected WxH, e.g. 1280x720")
        value = (int(m.group(1)), int(m.group(2)))
    else:
        value = text
    return check_value(opt, value)


def _argparse_type(opt: Option) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse_text(opt, text)
        except InvalidValue as exc:
            raise argparse.ArgumentTypeError(f"{exc.cause}" + (f"; {exc.fix}" if exc.fix else "")) from None

    convert.__name__ = opt.describe()  # argparse names the type in some messages
    return convert


# --- from Python values (a config file, the API) ---------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _type_name(value: Any) -> str:
    return type(value).__name__


def coerce(opt: Option, value: Any, *, from_file: bool = False) -> Any:
    """``value`` (from a config file or a keyword) as the option's type, checked against its rules.

    Types are strict: a number is not a string, ``true`` is not 1, ``2.5`` is not a whole number.

    Raises:
        InvalidValue: wrong type, or against the option's rules.
    """

    def wrong(extra: str = "") -> InvalidValue:
        return InvalidValue(f"expected {opt.describe()}, got {_type_name(value)} {_show(value)}{extra}")

    if value is None:
        return None
    kind = opt.kind
    if kind in ("flag", "bool"):
        if not isinstance(value, bool):
            raise wrong()
        return value
    if kind == "count":
        if not _is_int(value) or value < 0:
            raise wrong()
        return int(value)
    if kind == "tables":
        return _tables(opt, value, wrong)
    if kind == "str":
        if opt.paths and isinstance(value, os.PathLike) and not from_file:
            return check_value(opt, value)
        if not isinstance(value, str):
            raise wrong(" (quote it)" if from_file and isinstance(value, (int, float)) else "")
        return check_value(opt, value)
    if kind == "int":
        if not _is_int(value):
            raise wrong()
        return check_value(opt, int(value))
    if kind == "float":
        if not _is_real(value):
            raise wrong()
        return check_value(opt, float(value))
    if kind == "floats":
        if isinstance(value, str):
            return parse_text(opt, value)
        if _is_real(value):
            return check_value(opt, [float(value)])
        if isinstance(value, (list, tuple)) or type(value).__name__ == "ndarray":
            items = list(value)
            if not all(_is_real(v) for v in items):
                raise wrong(" (not a number in the list)")
            return check_value(opt, _floats_list([float(v) for v in items], value))
        raise wrong()
    if kind == "size":
        if isinstance(value, str):
            return parse_text(opt, value)
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) for v in value):
            return check_value(opt, (int(value[0]), int(value[1])))
        raise wrong()
    raise AssertionError(f"unknown option kind {kind!r}")  # a bug in the table, not in the user's input


def _tables(opt: Option, value: Any, wrong: Callable[[str], InvalidValue]) -> list[Any]:
    """A ``tables`` value: one command-line text, or a list of texts and tables whose keys are ``opt.keys``."""
    if isinstance(value, dict):
        raise InvalidValue(
            f"is one table: write [[{opt.name}]] (two brackets), one per {opt.name}",
            f"each [[{opt.name}]] holds {', '.join(opt.keys)}",
        )
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise wrong(f" (write [[{opt.name}]] tables)")
    for i, item in enumerate(items, 1):
        if isinstance(item, str):
            check_value(opt, item)
        elif isinstance(item, dict):
            for key in item:
                if key not in opt.keys:
                    close = difflib.get_close_matches(str(key), opt.keys, n=1)
                    hint = f"did you mean {close[0]!r}? " if close else ""
                    raise InvalidValue(
                        f"{opt.name} {i} has the key {_show(key)}, which is not allowed", f"{hint}use {', '.join(opt.keys)}"
                    )
        else:
            raise InvalidValue(f"{opt.name} {i} is {_type_name(item)} {_show(item)}, not a table", f"write [[{opt.name}]] tables")
    return list(items)


def from_config(opt: Option, value: Any, where: str) -> Any:
    """A config file's value for ``opt``, converted exactly as the command line converts it.

    Args:
        opt: the option.
        value: what the file holds (TOML types).
        where: the file and key, for the message (``porch.toml: key 'top-k'``).

    Raises:
        ConfigError: a wrong type or a value against the option's rules; it names the key, what is allowed and
            the flag that takes the same value.
    """
    if isinstance(value, dict) and opt.kind != "tables":
        raise ConfigError(
            where, "is a table, but config files are flat", "write each option as key = value at the top of the file"
        )
    try:
        return coerce(opt, value, from_file=True)
    except InvalidValue as exc:
        raise ConfigError(where, exc.cause, exc.fix or _general_fix(opt, f"as {opt.flag} takes (see --help)")) from None


def _general_fix(opt: Option, tail: str) -> str:
    return f"give it {opt.wanted()}, {tail}"


# --- building argparse ----------------------------------------------------------------------------
def _mark_explicit(namespace: argparse.Namespace, dest: str) -> None:
    explicit: set[str] | None = getattr(namespace, EXPLICIT_ATTR, None)
    if explicit is None:
        explicit = set()
        setattr(namespace, EXPLICIT_ATTR, explicit)
    explicit.add(dest)


class _Store(argparse.Action):
    """``--x VALUE``, remembering that the command line gave it."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: Any = None
    ) -> None:
        if isinstance(values, list) and not values:
            # argparse drops a "--" value (--threads=--) and hands over an empty list instead of refusing it.
            raise argparse.ArgumentError(self, "expected a value ('--' is not one)")
        setattr(namespace, self.dest, values)
        _mark_explicit(namespace, self.dest)


class _StoreTrue(argparse.Action):
    """``--x`` sets True."""

    def __init__(self, option_strings: Sequence[str], dest: str, default: Any = False, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, **kwargs)

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: Any = None
    ) -> None:
        setattr(namespace, self.dest, True)
        _mark_explicit(namespace, self.dest)


class _Count(argparse.Action):
    """``-v -v`` counts."""

    def __init__(self, option_strings: Sequence[str], dest: str, default: Any = 0, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, **kwargs)

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: Any = None
    ) -> None:
        setattr(namespace, self.dest, (getattr(namespace, self.dest, 0) or 0) + 1)
        _mark_explicit(namespace, self.dest)


class _Append(argparse.Action):
    """``--x A --x B`` collects ``[A, B]``."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: Any = None
    ) -> None:
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), values])
        _mark_explicit(namespace, self.dest)


class _BooleanOptional(argparse.BooleanOptionalAction):
    """``--x`` / ``--no-x``."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: Any = None
    ) -> None:
        super().__call__(parser, namespace, values, option_string)
        _mark_explicit(namespace, self.dest)


def _default_text(opt: Option) -> str:
    if opt.default is None or opt.kind in ("flag", "count") or "default" in opt.help:
        return ""
    shown = (
        "x".join(str(v) for v in opt.default)
        if opt.kind == "size"
        else _num(opt.default)
        if _is_real(opt.default)
        else opt.default
    )
    return f" (default {shown})"


def add_options(parser: argparse.ArgumentParser, options: Iterable[Option]) -> None:
    """Add ``options`` to ``parser``, in order, each in its ``--help`` group.

    Every action records on the namespace (:data:`EXPLICIT_ATTR`) that the command line gave it, so a config
    file can fill in exactly the options left out.
    """
    groups: dict[str, Any] = {}
    for opt in options:
        target: Any = parser
        if opt.group:
            target = groups.get(opt.group) or groups.setdefault(opt.group, parser.add_argument_group(opt.group))
        flags = [opt.flag, *([opt.short] if opt.short else [])]
        help_text = opt.help + _default_text(opt)
        kwargs: dict[str, Any] = {"dest": opt.dest, "default": opt.default, "help": help_text}
        if opt.kind == "flag":
            target.add_argument(*flags, action=_StoreTrue, **{**kwargs, "default": bool(opt.default)})
        elif opt.kind == "count":
            target.add_argument(*flags, action=_Count, **{**kwargs, "default": opt.default or 0})
        elif opt.kind == "bool":
            target.add_argument(*flags, action=_BooleanOptional, **kwargs)
        elif opt.kind == "tables":
            target.add_argument(*flags, action=_Append, type=_argparse_type(opt), metavar=opt.metavar, **kwargs)
        else:
            if opt.metavar:
                kwargs["metavar"] = opt.metavar
            if opt.choices is not None:
                kwargs["choices"] = opt.choices
            if opt.const is not None:
                kwargs.update(nargs="?", const=opt.const)
            target.add_argument(*flags, action=_Store, type=_argparse_type(opt), **kwargs)


# --- the table ------------------------------------------------------------------------------------
def _check_device(value: str) -> None:
    if not _DEVICE_RE.match(value.strip().lower()):
        raise InvalidValue(f"{_show(value)} is not a valid device", f"use {DEVICE_FORMS}")


_HOUR = 3600.0
_DAY = 86400.0

#: Options of every command that loads a model (classify, run, bench, evaluate).
MODEL_OPTIONS: tuple[Option, ...] = (
    Option("model", "str", "a .tflite classifier (default: the bundled EfficientNet-Lite0 INT8)", short="-m", api="model",
           paths=True),
    Option("labels", "str", "labels file overriding those embedded in the model", api="labels", paths=True),
    Option("backend", "str", "auto | ai-edge-litert | tflite-runtime | tensorflow", default="auto", api="runtime",
           example="'auto'"),
    Option("device", "str", "auto | cpu | edgetpu | usb | usb:N | pci | pci:N | :N | hailo | hailo:N | imx500", default="auto",
           api="device", example="'cpu'", check=_check_device,
           takes="a device string (auto, cpu, edgetpu, usb:N, pci:N, hailo:N, imx500, ...)"),
    Option("threads", "int", "CPU threads (default: all cores)", low=1, high=1024, example="4", api="num_threads"),
    Option("top-k", "int", "classes per image (default 5)", default=5, short="-k", low=1, high=100_000, example="5", api="top_k"),
    Option("min-score", "float", "drop classes scoring below this", default=0.0, low=0.0, high=1.0,
           note="scores are probabilities", example="0.3", api="min_score"),
    Option("mean", "floats", "normalisation mean, one value or R,G,B", example="127.5", api="mean", spec_field=True),
    Option("std", "floats", "normalisation std, one value or R,G,B", low=0.0, low_open=True, example="127.5", api="std",
           spec_field=True),
    Option("resize", "str", "how frames are fitted", choices=("stretch", "center_crop", "letterbox"), api="resize",
           spec_field=True),
    Option("crop-fraction", "float", "with --resize center_crop: the share of the centre kept (0.875 as ImageNet is scored)",
           low=0.0, low_open=True, high=1.0, example="0.875", api="crop_fraction", spec_field=True),
    Option("color-order", "str", "channel order the model expects", choices=("RGB", "BGR"), api="color_order", spec_field=True),
    Option("label-offset", "int", "leading outputs that are not classes (1 for background)", low=0, high=100_000, example="1",
           api="label_offset", spec_field=True),
    Option("verbose", "count", "say which back-end was chosen and why", short="-v"),
)  # fmt: skip

#: ``run``'s own options (the frame loop, its outputs and its source).
RUN_OPTIONS: tuple[Option, ...] = (
    Option("source", "str", "picamera | camera index (0) | /dev/videoN | video file | rtsp://... | http://... | folder | glob "
           "(default: a camera if present, else the bundled sample clip)", short="-s"),
    Option("jsonl", "str", "write one JSON record per frame to PATH, or - for stdout", metavar="PATH"),
    Option("events-only", "flag", "with --jsonl: only frames where the smoothed label changed"),
    Option("record", "str", "write an annotated video (.mp4, .avi, .mkv)", metavar="PATH"),
    Option("record-fps", "float", "frame rate of --record (default: measured)", low=0.0, low_open=True, high=1000.0,
           example="30"),
    Option("show", "flag", "show an annotated preview window (needs opencv-python and a display)"),
    Option("max-frames", "int", "stop after N classified frames", low=1, example="100"),
    Option("smooth", "float", "EMA weight kept from past frames, 0 (off) .. 0.95 (heavy)", default=0.0, low=0.0, high=1.0,
           high_open=True, note="0 is off, 0.9 is heavy smoothing", example="0.6", metavar="ALPHA"),
    Option("hysteresis", "int", "frames a new label must lead before an event (3)", default=3, low=1, high=100_000, example="3",
           metavar="N"),
    Option("stats-interval", "float", "seconds between stats lines on stderr; 0 = off", default=1.0, low=0.0, high=_DAY,
           example="1", metavar="S"),
    Option("realtime", "flag", "play a video file at its own frame rate, dropping frames like a camera"),
    Option("timeout", "float", "seconds a camera or stream may stall before it counts as lost", default=5.0, low=0.0,
           low_open=True, high=_DAY, example="5", metavar="S"),
    Option("reconnect-timeout", "float", "seconds a dropped stream keeps trying to reopen; 0 = give up at once", default=20.0,
           low=0.0, high=_DAY, example="60", metavar="S"),
    Option("quiet", "flag", "do not print label changes on stdout", short="-q"),
)  # fmt: skip

#: ``--config``: on the command line only.
CONFIG_OPTION = Option(
    "config", "str", "read options from a TOML file (keys = option names); command-line options win", short="-c", metavar="TOML",
    in_config=False,
)  # fmt: skip

_MQTT = "MQTT (label events, status, Home Assistant discovery; needs the [mqtt] extra)"
#: The password is read from here when --mqtt-password is not given, so it need not sit in a file or `ps` output.
PASSWORD_ENV = "EDGE_CLASSIFIER_MQTT_PASSWORD"

MQTT_OPTIONS: tuple[Option, ...] = (
    Option("mqtt", "str", "publish to mqtt://[user:pass@]host[:port]/base/topic (mqtts:// for TLS)", metavar="URL", group=_MQTT),
    Option("mqtt-qos", "int", "QoS of events and status (default 1)", choices=(0, 1, 2), group=_MQTT),
    Option("mqtt-retain", "flag", "retain label events, so a new subscriber gets the current label", group=_MQTT),
    Option("mqtt-username", "str", "broker user (overrides the URL's)", metavar="USER", group=_MQTT),
    Option("mqtt-password", "str", f"broker password (overrides the URL's; default ${PASSWORD_ENV})", metavar="PASS", group=_MQTT,
           allow_empty=True),
    Option("mqtt-tls", "flag", "use TLS on an mqtt:// URL (port 8883 unless the URL gives one)", group=_MQTT),
    Option("mqtt-cafile", "str", "CA bundle to verify the broker's TLS certificate (default: the system's)", metavar="PATH",
           group=_MQTT),
    Option("mqtt-status-interval", "float", "seconds between status messages (default 30; 0 = online/offline only)", low=0.0,
           high=_DAY, example="30", metavar="S", group=_MQTT),
    Option("mqtt-discovery", "bool", "publish Home Assistant MQTT discovery so the camera appears as a sensor (default on)",
           default=True, group=_MQTT),
    Option("mqtt-name", "str", "the camera's name in payloads and Home Assistant (default: from the topic)", metavar="NAME",
           group=_MQTT),
)  # fmt: skip

WEBHOOK_OPTIONS: tuple[Option, ...] = (
    Option("webhook", "str", "POST each label event as JSON to this http(s) URL", metavar="URL", group="webhook"),
    Option("webhook-timeout", "float", "seconds per request (default 5)", default=5.0, low=0.0, low_open=True, high=_HOUR,
           example="5", metavar="S", group="webhook"),
    Option("webhook-retries", "int", "retries with back-off after a failed request (default 3)", default=3, low=0, high=10,
           example="3", metavar="N", group="webhook"),
)  # fmt: skip

_REGIONS = "regions, triggers and clips"
#: The keys of a ``[[region]]`` table (the fields of :class:`edge_classifier.regions.Region`).
REGION_KEYS = ("name", "box", "states", "threshold", "thresholds", "model", "framing", "smoothing", "hysteresis")

REGION_OPTIONS: tuple[Option, ...] = (
    Option("region", "tables", "classify the box NAME=x,y,w,h on its own (fractions of the frame, or pixels when a value is "
           "above 1); repeat for more; states, thresholds and a model per region go in [[region]] tables of --config",
           metavar="NAME=X,Y,W,H", group=_REGIONS, keys=REGION_KEYS, example="feeder=0.55,0.20,0.30,0.40",
           takes="NAME=x,y,w,h, or [[region]] tables (keys: " + ", ".join(REGION_KEYS) + ")"),
    Option("every", "float", "classify at most once every S seconds, idle in between (a change seen is confirmed at once)",
           low=0.0, low_open=True, high=_DAY, example="2", metavar="S", group=_REGIONS),
    Option("motion", "flag", "classify only while something moves (per region), and once every --every S (default 10)",
           group=_REGIONS),
    Option("motion-threshold", "int", "grey levels a pixel must change by to count as motion", default=25, low=1, high=255,
           example="25", metavar="N", group=_REGIONS),
    Option("motion-min-area", "float", "share of the frame (or region) that must move", default=0.005, low=0.0, low_open=True,
           high=1.0, example="0.005", metavar="SHARE", group=_REGIONS),
    Option("clips", "str", "write a video clip and a snapshot around every event into DIR", metavar="DIR", group=_REGIONS,
           paths=True),
    Option("pre", "float", "seconds of video before the event in a clip", default=3.0, low=0.0, high=600.0, example="3",
           metavar="S", group=_REGIONS),
    Option("post", "float", "seconds of video after the event in a clip", default=5.0, low=0.0, high=600.0, example="5",
           metavar="S", group=_REGIONS),
    Option("clips-max-mb", "float", "keep the clips folder under this many MB, the oldest clips removed first",
           default=1000.0, low=0.0, low_open=True, high=1e9, example="500", metavar="MB", group=_REGIONS),
    Option("clip-format", "str", "mp4 (mp4v: cheap to encode, not playable in browsers) or webm (VP8: plays in browsers "
           "and Home Assistant, about 8x the encoding CPU)", default="mp4", choices=("mp4", "webm"), example="webm",
           group=_REGIONS),
)  # fmt: skip

_WEB = "web view (a live page for a headless camera)"

WEB_OPTIONS: tuple[Option, ...] = (
    Option("web", "str", "serve a live page, MJPEG stream and JSON API on ADDR:PORT (default 127.0.0.1:8080); any address "
           "but loopback needs a password", metavar="ADDR:PORT", group=_WEB, const="", allow_empty=True),
    Option("web-password-file", "str", "file holding the web view's password (or set $EDGE_CLASSIFIER_WEB_PASSWORD)",
           metavar="FILE", group=_WEB, paths=True),
    Option("web-insecure", "flag", "allow a non-loopback --web address without a password (anyone on the network can watch)",
           group=_WEB),
    Option("web-fps", "float", "frames per second streamed to viewers (default 10)", default=10.0, low=0.0, low_open=True,
           high=60.0, example="10", metavar="N", group=_WEB),
)  # fmt: skip

#: Every option of ``edge-classifier run``, in ``--help`` order; a config file may set all but ``config``.
RUN_COMMAND_OPTIONS: tuple[Option, ...] = (
    *MODEL_OPTIONS, *RUN_OPTIONS, *REGION_OPTIONS, CONFIG_OPTION, *MQTT_OPTIONS, *WEBHOOK_OPTIONS, *WEB_OPTIONS
)  # fmt: skip

#: ``edge-classifier bench``'s own options.
BENCH_OPTIONS: tuple[Option, ...] = (
    Option("runs", "int", "calls per measurement (default 200)", default=200, low=1, high=1_000_000, example="200"),
    # 8192 a side: an 8K camera frame fits; 100000x100000 would be a 30 GB array before the model even loads.
    Option("frame", "size", "frame size WxH for classify() (default 1280x720)", default=(1280, 720), low=1, high=8192,
           note="8192 fits an 8K camera frame", example="1280x720"),
)  # fmt: skip


#: Options of the commands that read photo files (``classify``, ``evaluate``).
PHOTO_OPTIONS: tuple[Option, ...] = (
    Option("jobs", "int", "threads decoding and framing the next photos while the model runs (default: the cores the "
           "interpreter leaves free, at least 1)", low=1, high=1024, example="2", in_config=False),
)  # fmt: skip


#: ``edge-classifier collect``: the source options of ``run`` and its own.
COLLECT_OPTIONS: tuple[Option, ...] = (
    *(opt for opt in RUN_OPTIONS if opt.name in ("source", "timeout", "reconnect-timeout", "realtime")),
    Option("quiet", "flag", "do not print each photo's path on stdout", short="-q", in_config=False),
    Option("out", "str", "the dataset folder: photos go to OUT/LABEL/ (default photos)", default="photos", metavar="DIR",
           in_config=False),
    Option("count", "int", "photos to take (default 50)", default=50, low=1, high=1_000_000, example="50", metavar="N",
           in_config=False),
    Option("every", "float", "seconds between photos, of the stream's own time; 0 = every frame (default 2)", default=2.0,
           low=0.0, high=_DAY, example="2", metavar="S", in_config=False),
    Option("quality", "int", "JPEG quality (default 92)", default=92, low=1, high=100, example="92", in_config=False),
)  # fmt: skip


def option(name: str, table: Iterable[Option] = (*RUN_COMMAND_OPTIONS, *BENCH_OPTIONS)) -> Option:
    """The option called ``name`` (``top-k`` or ``top_k``).

    Raises:
        KeyError: no such option.
    """
    key = name.replace("_", "-")
    for opt in table:
        if opt.name == key:
            return opt
    raise KeyError(name)


def config_options(table: Iterable[Option] = RUN_COMMAND_OPTIONS) -> dict[str, Option]:
    """Config key -> option, for the options a config file may set."""
    return {opt.name: opt for opt in table if opt.in_config}


# --- the Python API ---------------------------------------------------------------------------------
_API_OPTIONS: dict[str, Option] = {opt.api: opt for opt in MODEL_OPTIONS if opt.api}


def _api_error(opt: Option, name: str, value: Any, exc: InvalidValue) -> EdgeClassifierError:
    cls = SpecError if opt.spec_field else ConfigError
    example = f", e.g. {name}={opt.example}" if opt.example else ""
    fix = exc.fix or f"pass {opt.wanted()}{example}"
    return cls(f"{name}={_show(value)}", exc.cause, fix)


def check_api_value(name: str, value: Any) -> Any:
    """``value`` of the API keyword ``name`` (``top_k``, ``mean``, ...), checked by the option table's rule.

    Raises:
        ConfigError: a wrong type or value of a run option (SpecError for a model-contract override).
        KeyError: ``name`` is no option.
    """
    opt = _API_OPTIONS[name]
    try:
        return coerce(opt, value)
    except InvalidValue as exc:
        raise _api_error(opt, name, value, exc) from None


def validate_model_options(
    *,
    model: Any = None,
    labels: Any = None,
    runtime: Any = None,
    device: Any = "auto",
    num_threads: Any = None,
    top_k: Any = 5,
    min_score: Any = 0.0,
    overrides: Any = None,
    isolate: Any = None,
) -> None:
    """Check ``Classifier(...)``'s keywords with the same rules the command line and config files use.

    Types are strict (``top_k="3"`` and ``num_threads=2.5`` are refused, not converted), so a wrong call fails
    here with the option's name instead of deep inside the interpreter.

    Raises:
        ConfigError: a keyword of the wrong type or out of range; the message names it, the cause and the fix.
        SpecError: a field of ``overrides`` is wrong (mean, std, resize, colour order, crop fraction, label offset).
    """
    if labels is not None and not isinstance(labels, (str, os.PathLike)):
        if (
            isinstance(labels, (bytes, bytearray))
            or not isinstance(labels, Sequence)
            or not all(isinstance(x, str) for x in labels)
        ):
            raise ConfigError(
                f"labels={_show(labels)}",
                "is neither a labels file nor a list of strings",
                "pass a path, or a list of label strings",
            )
        labels = None  # a list of labels: the spec checks that it fits the outputs
    for name, value in (("model", model), ("labels", labels), ("device", device), ("num_threads", num_threads),
                        ("top_k", top_k), ("min_score", min_score)):  # fmt: skip
        if value is None and name in ("device", "top_k", "min_score"):
            opt = _API_OPTIONS[name]
            raise ConfigError(f"{name}=None", "is not allowed here", f"pass {opt.wanted()}, e.g. {name}={opt.example}")
        check_api_value(name, value)
    if runtime is not None and not isinstance(runtime, str):
        raise ConfigError(
            f"runtime={_show(runtime)}", f"is of type {_type_name(runtime)}, not a runtime name", "pass 'auto' or a runtime name"
        )
    if isolate is not None and not isinstance(isolate, bool):
        raise ConfigError(
            f"isolate={_show(isolate)}", f"is of type {_type_name(isolate)}", "pass True, False or None (on for the Edge TPU)"
        )
    if overrides is None:
        return
    fields = getattr(overrides, "__dataclass_fields__", None)
    if fields is None or type(overrides).__name__ != "SpecOverrides":
        raise ConfigError(
            f"overrides={_show(overrides)}",
            f"is of type {_type_name(overrides)}",
            "pass edge_classifier.SpecOverrides(mean=..., std=...)",
        )
    for field_name in ("mean", "std", "resize", "crop_fraction", "color_order", "label_offset"):
        if field_name in fields:
            value = getattr(overrides, field_name)
            if field_name == "color_order" and isinstance(value, str):
                value = value.upper()  # the spec has always taken "rgb" for "RGB"
            check_api_value(field_name, value)

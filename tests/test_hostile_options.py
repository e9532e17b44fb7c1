"""Hostile values for every option, through the command line, the config reader and the API.

Generated per option from the option table: wrong types, NaN and infinities, negatives, huge numbers, empty
strings, non-ASCII digits, emoji and control characters. Each must end in an accepted value that obeys the
option's rules, or in one clean refusal: a usage error (exit 2, the usage line and one error line) on the
command line, a ConfigError/SpecError whose message is one line plus its fix elsewhere. Never another exception,
never a hang.
"""

from __future__ import annotations

import datetime
import io
import math
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import pytest

from edge_classifier.cli import build_parser
from edge_classifier.config import load_config, validate
from edge_classifier.errors import ConfigError, EdgeClassifierError, SpecError
from edge_classifier.options import BENCH_OPTIONS, MODEL_OPTIONS, RUN_COMMAND_OPTIONS, Option, check_value, validate_model_options

pytestmark = pytest.mark.timeout(120)

CONTROL = ["\n", "\r", "\x00", "\t", "\x1b[2J", "\x7f", "\x85"]
HUGE_INT = "9" * 40

# Texts no number option can take, and the extra ones for each kind.
NOT_NUMBERS = ["", " ", "abc", "🙂", "1,5", "0x10", "1_000", "٣", "１", "--", "1e", "nan%", *CONTROL]
TEXTS: dict[str, list[str]] = {
    "int": [*NOT_NUMBERS, "1.5", "nan", "inf", "1e3", "-1", "0", "-5", HUGE_INT, f"-{HUGE_INT}"],
    "float": [*NOT_NUMBERS, "nan", "NaN", "inf", "-inf", "1e999", "-1e999", "-1", "-0", "2", "1e308", HUGE_INT],
    "floats": [*NOT_NUMBERS, ",", "1,2", "1,2,3,4", "nan", "1,nan,1", "inf", "-5", "0", "1e999,1,1", "a,b,c", "0,0,0"],
    "size": [
        "",
        "0x0",
        "100000x100000",
        "-1x5",
        "axb",
        "1x",
        "x1",
        "1x1x1",
        "nanxnan",
        "1e3x1e3",
        "🙂x1",
        "640x480\n",
        "99999999999999999999x1",
    ],
    "str": ["", *CONTROL, "🙂", "a" * 10_000, "ünïcødé", " "],
    "tables": [
        "", "x", "feeder", "feeder=", "=0.1,0.1,0.5,0.5", "feeder=1,2,3", "feeder=a,b,c,d", "feeder=0,0,0,0",
        "feeder=-1,0,1,1", "feeder=nan,0,1,1", "feeder=inf,0,1,1", "feeder=0.9,0.9,0.5,0.5", "feeder=1,1,0,10",
        *(f"feed{c}er=0.1,0.1,0.5,0.5" for c in CONTROL), "🙂=0.1,0.1,0.5,0.5", "a" * 10_000,
    ],
}
# The values the command line must refuse, whatever the rest of the table says (the issue's list).
MUST_REFUSE = [
    ("top-k", "0"), ("top-k", "-1"), ("min-score", "2"), ("min-score", "nan"), ("label-offset", "-1"), ("std", "nan"),
    ("std", "-5"), ("mean", "inf"), ("threads", "0"), ("threads", "-5"), ("device", "bogus"), ("frame", "0x0"),
    ("frame", "100000x100000"), ("smooth", "1"), ("max-frames", "0"), ("timeout", "0"), ("webhook-timeout", "inf"),
    ("mqtt-qos", "3"), ("resize", "crop"), ("webhook-retries", HUGE_INT),
]  # fmt: skip

VALUED = [o for o in (*RUN_COMMAND_OPTIONS, *BENCH_OPTIONS) if o.kind not in ("flag", "bool", "count")]


def _cases() -> Iterator[tuple[Option, str]]:
    for opt in VALUED:
        texts = TEXTS[opt.kind] if opt.choices is None else ["", "bogus", "🙂", "\n", "RGB\n", "5", "-1"]
        for text in texts:
            yield opt, text


def _command(opt: Option) -> str:
    return "bench" if opt in BENCH_OPTIONS else "run"


def _parse(argv: list[str]) -> tuple[Any, str]:
    """``(namespace or exit status, stderr)`` of parsing ``argv`` in-process."""
    err = io.StringIO()
    with redirect_stderr(err):
        try:
            return build_parser().parse_args(argv), err.getvalue()
        except SystemExit as exc:
            return exc.code, err.getvalue()


def _clean_refusal(stderr: str, flag: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("usage: "), stderr
    assert lines[1].startswith("edge-classifier ") and ": error: argument " in lines[1] and flag in lines[1], stderr


@pytest.mark.parametrize(("opt", "text"), list(_cases()), ids=lambda v: v.name if isinstance(v, Option) else repr(v)[:24])
def test_command_line_value_is_accepted_by_the_rules_or_refused_cleanly(opt: Option, text: str) -> None:
    result, stderr = _parse([_command(opt), f"{opt.flag}={text}"])
    if result == 2:
        _clean_refusal(stderr, opt.flag)
        return
    assert not isinstance(result, int), (result, stderr)
    value = getattr(result, opt.dest)
    check_value(opt, value)  # an accepted value obeys the table (raises InvalidValue otherwise)
    if isinstance(value, float):
        assert math.isfinite(value)
    if isinstance(value, str):
        assert (value or opt.allow_empty) and not any(ch in value for ch in "\n\r\x00\x1b\x7f\x85")


@pytest.mark.parametrize(("name", "text"), MUST_REFUSE)
def test_the_issues_bad_values_are_refused(name: str, text: str) -> None:
    opt = next(o for o in VALUED if o.name == name)
    result, stderr = _parse([_command(opt), f"{opt.flag}={text}"])
    assert result == 2, f"{opt.flag} {text!r} was accepted"
    _clean_refusal(stderr, opt.flag)
    if name == "device":
        assert "is not a valid device" in stderr and "usb:N" in stderr


def _typed_values(opt: Option) -> list[Any]:
    """Python values for a config file's key: wrong types, non-finite, out of range, empty, hostile strings."""
    values: list[Any] = [True, False, None, {}, {"a": 1}, [], [[1]], datetime.date(2020, 1, 1), datetime.time(1, 2)]
    values += [0, -1, 1, 2, 10**18, -(10**18), 2**63 - 1, 0.5, -0.0, 1.5, float("nan"), float("inf"), float("-inf"), 1e308]
    values += ["", "abc", "5", "nan", "🙂", "a" * 10_000, *CONTROL, *(f"x{c}y" for c in CONTROL)]
    values += [[1.0, 2.0], [1, 2, 3], [float("nan")] * 3, ["a", "b", "c"], [1.0] * 4, [True, 1, 1], [0, 0], [8193, 10]]
    return values


@pytest.mark.parametrize("opt", [o for o in RUN_COMMAND_OPTIONS if o.in_config], ids=lambda o: o.name)
def test_config_values_are_accepted_by_the_rules_or_one_config_error(opt: Option) -> None:
    for value in _typed_values(opt):
        try:
            out = validate({opt.name: value}, "hostile.toml")
        except ConfigError as exc:
            message = str(exc)
            assert message.startswith(f"hostile.toml: key '{opt.name}'"), message
            lines = message.splitlines()
            assert 1 <= len(lines) <= 2 and (len(lines) == 1 or lines[1].startswith("  fix: ")), message
            assert len(message) < 2000, "a hostile value is cut short in the message"
            continue
        except Exception as exc:  # noqa: BLE001 - the point: nothing else may come out
            pytest.fail(f"{opt.name} = {value!r}: {type(exc).__name__}: {exc}")
        check_value(opt, out[opt.dest])


@pytest.mark.parametrize(
    "text",
    [
        "top-k = nan\n", "top-k = inf\n", "min-score = -inf\n", "top-k = 1979-05-27\n", "source = 1979-05-27T07:32:00Z\n",
        "mean = [1, [2], 3]\n", "\ufefftop-k = 3\n", "top-k = 0x10\n", "top-k = 9223372036854775807\n",
        'device = "usb:\\u0000"\n', "x = " + "[" * 3000 + "]" * 3000 + "\n", "[[a]]\nb = 1\n", "a.b.c = 1\n", '"" = 1\n',
        "top-k = 3\ntop-k = 4\n",
        "top-k = 3\ntop_k = 4\n", "mqtt-discovery = 1\n", "verbose = -1\n",
    ],
)  # fmt: skip
def test_config_files_are_read_or_refused_with_one_config_error(tmp_path: Path, text: str) -> None:
    cfg = tmp_path / "hostile.toml"
    cfg.write_text(text, encoding="utf-8")
    try:
        load_config(cfg)
    except ConfigError as exc:
        assert str(exc).startswith(f"config file {cfg}") or str(exc).startswith(f"{cfg}:"), str(exc)
        assert len(str(exc).splitlines()) <= 2


API_VALUES: dict[str, list[Any]] = {
    "top_k": ["3", 2.5, 0, -1, True, None, float("nan"), [3], 10**30],
    "min_score": ["0.5", 2, -0.1, float("nan"), float("inf"), None, True, [0.5]],
    "num_threads": [2.5, "2", 0, -5, True, 10**9, float("nan")],
    "device": ["bogus", "", 3, None, "usb:x", "usb\n", b"cpu", "🙂"],
    "model": [3, b"model.tflite", "", "a\x00b", "a\nb", ["m.tflite"]],
    "labels": [3, b"labels.txt", "", "x\x00y", [1, 2], {"a": 1}],
    "isolate": ["yes", 1, 0.0],
    "runtime": [3, b"tflite", ["auto"]],
    "overrides": [{"mean": 1}, "mean=1", 3],
}


@pytest.mark.parametrize(("name", "value"), [(k, v) for k, vs in API_VALUES.items() for v in vs], ids=repr)
def test_api_keywords_are_refused_with_one_typed_error(name: str, value: Any) -> None:
    with pytest.raises((ConfigError, SpecError)) as err:
        validate_model_options(**{name: value})
    head = str(err.value).splitlines()[0]
    assert head.split("=", 1)[0] in (name, "labels", "runtime") and len(str(err.value).splitlines()) <= 2, str(err.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("mean", float("inf")), ("mean", [1, 2]), ("std", -5), ("std", [1, 0, 1]), ("std", "nan"), ("resize", "crop"),
     ("color_order", "RGBA"), ("label_offset", -1), ("label_offset", 2.0), ("crop_fraction", 0), ("crop_fraction", float("nan"))],
)  # fmt: skip
def test_spec_overrides_are_refused_as_spec_errors(field: str, value: Any) -> None:
    from edge_classifier.spec import SpecOverrides

    with pytest.raises(SpecError, match=field):
        validate_model_options(overrides=SpecOverrides(**{field: value}))


def test_valid_api_values_pass() -> None:
    import numpy as np

    from edge_classifier.spec import SpecOverrides

    validate_model_options(
        model=Path("m.tflite"), labels=["a", "b"], runtime="auto", device="usb:0", num_threads=np.int64(2), top_k=np.int32(3),
        min_score=np.float32(0.25), overrides=SpecOverrides(mean=127.5, std=(1.0, 2.0, 3.0), color_order="bgr"), isolate=None,
    )  # fmt: skip
    assert {o.api for o in MODEL_OPTIONS if o.api} >= {"top_k", "min_score", "num_threads", "device", "model", "labels", "mean"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "bogus"], "is not a valid device"),
        (["--label-offset", "5000"], "is not an output of this model, which has 1001"),
        (["--labels", "/nonexistent/labels.txt"], "no such labels file"),
        (["--backend", "onnx"], "is not a known runtime"),
    ],
)
def test_classify_with_bad_values_exits_non_zero_without_a_traceback(
    mnv2: Path, coral: Path, args: list[str], message: str
) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "edge_classifier", "classify", str(coral / "cat.bmp"), "--model", str(mnv2), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode in (1, 2) and message in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_every_error_type_raised_here_is_an_edge_classifier_error() -> None:
    assert issubclass(ConfigError, EdgeClassifierError) and issubclass(SpecError, EdgeClassifierError)


@pytest.mark.parametrize("opt", [o for o in VALUED if o.example or o.choices], ids=lambda o: o.name)
def test_good_values_still_pass(opt: Option) -> None:
    """The other half of the property: refusing everything would pass the tests above."""
    text = str(opt.choices[0]) if opt.choices else opt.example.strip("'")
    result, stderr = _parse([_command(opt), f"{opt.flag}={text}"])
    assert not isinstance(result, int), stderr
    assert getattr(result, opt.dest) == check_value(opt, getattr(result, opt.dest)) is not None

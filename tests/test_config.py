"""TOML config files for ``run``: keys derived from the real parser, validation errors, command line over file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_classifier.cli import build_parser, main
from edge_classifier.config import apply_config, load_config, validate
from edge_classifier.errors import ConfigError
from edge_classifier.options import RUN_COMMAND_OPTIONS, Option, config_options

from .clips import write_clip


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "porch.toml"
    p.write_text(text)
    return p


def _sample(opt: Option) -> tuple[list[str], object]:
    """Command-line words giving ``opt`` a valid non-default value, and the value they must produce."""
    if opt.kind == "flag":
        return [opt.flag], True
    if opt.kind == "count":
        return [opt.flag, opt.flag], 2
    if opt.kind == "bool":
        return [f"--no-{opt.name}"], False
    if opt.choices is not None:
        return [opt.flag, str(opt.choices[-1])], opt.choices[-1]
    text = opt.example or "x.txt"
    if opt.name == "device":
        text = "usb:1"
    value: object = {"int": int, "float": float}.get(opt.kind, str)(text)  # type: ignore[operator]
    if opt.kind in ("floats", "tables"):
        value = [float(text)] if opt.kind == "floats" else [text]
    return [opt.flag, text], value


def test_every_run_option_is_a_config_key_and_a_flag() -> None:
    """The parser and the config reader come from one table: each option parses on the command line and in a file."""
    parser = build_parser()
    keys = config_options()
    assert "config" not in keys and "help" not in keys
    for key in ("model", "source", "min-score", "top-k", "smooth", "max-frames", "jsonl", "mqtt", "mqtt-qos", "mqtt-discovery",
                "webhook", "reconnect-timeout"):  # fmt: skip
        assert key in keys
    for opt in RUN_COMMAND_OPTIONS:
        words, value = _sample(opt)
        args = parser.parse_args(["run", *words])
        assert getattr(args, opt.dest) == value, opt.name
        if opt.in_config:
            toml_value = value if not isinstance(value, list) else value[0]
            assert validate({opt.name: toml_value}) == {opt.dest: value}, opt.name
    assert {o.name for o in RUN_COMMAND_OPTIONS if o.in_config} == set(keys)


def test_valid_config_converts_like_the_command_line(tmp_path: Path) -> None:
    cfg = _write(
        tmp_path,
        """
model = "m.tflite"
source = "picamera"
min-score = 0.5          # hyphen, as on the command line
top_k = 3                # underscore works too
mean = [127.5, 127.5, 127.5]
std = "127.5"
resize = "center_crop"
smooth = 0.6
max-frames = 100
show = false
mqtt = "mqtt://127.0.0.1:1883/cameras/porch"
mqtt-qos = 2
mqtt-discovery = false
verbose = 2
""",
    )
    values = load_config(cfg)
    assert values == {
        "model": "m.tflite",
        "source": "picamera",
        "min_score": 0.5,
        "top_k": 3,
        "mean": [127.5, 127.5, 127.5],
        "std": [127.5],
        "resize": "center_crop",
        "smooth": 0.6,
        "max_frames": 100,
        "show": False,
        "mqtt": "mqtt://127.0.0.1:1883/cameras/porch",
        "mqtt_qos": 2,
        "mqtt_discovery": False,
        "verbose": 2,
    }
    assert isinstance(values["min_score"], float) and isinstance(values["top_k"], int)


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("min_scor = 0.3", ["key 'min_scor'", "is not an option", "did you mean 'min-score'", "allowed keys:", "mqtt-qos"]),
        ('resize = "crop"', ["key 'resize'", "'crop' is not allowed", "'stretch', 'center_crop', 'letterbox'"]),
        ("mqtt-qos = 3", ["key 'mqtt-qos'", "3 is not allowed", "0, 1, 2"]),
        ("source = 0", ["key 'source'", "expected a string, got int 0 (quote it)"]),
        ('top-k = "5"', ["key 'top-k'", "expected a whole number, got str '5'"]),
        ("top-k = 2.5", ["key 'top-k'", "expected a whole number"]),
        ("min-score = true", ["key 'min-score'", "expected a number, got bool"]),
        ('show = "yes"', ["key 'show'", "expected true or false"]),
        ("smooth = 1.5", ["key 'smooth'", "must be in [0, 1)", "--smooth"]),
        ("max-frames = 0", ["key 'max-frames'", "must be 1 or more"]),
        ('mean = ["a", "b"]', ["key 'mean'", "not a number"]),
        ('config = "other.toml"', ["key 'config'", "only makes sense on the command line"]),
        ("[mqtt]\nqos = 1", ["key 'mqtt'", "is a table", "key = value"]),
        ("source = picamera", ["is not valid TOML", "line 1", 'source = "picamera"']),
    ],
)
def test_config_errors_name_the_key_and_the_allowed_values(tmp_path: Path, text: str, parts: list[str]) -> None:
    cfg = _write(tmp_path, text + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    msg = str(err.value)
    assert str(cfg) in msg
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_command_line_wins_over_the_file_before_or_after_config(tmp_path: Path) -> None:
    cfg = _write(tmp_path, 'top-k = 2\nmax-frames = 50\nsource = "a.mp4"\nquiet = true\nmqtt-discovery = false\n')
    parser = build_parser()
    # --top-k 5 is the default value, given explicitly: it must still win over the file.
    for argv in (["run", "--top-k", "5", "--config", str(cfg)], ["run", "--config", str(cfg), "--top-k", "5"]):
        args = apply_config(parser.parse_args(argv))
        assert args.top_k == 5 and args.max_frames == 50 and args.source == "a.mp4" and args.quiet is True
        assert args.mqtt_discovery is False
    args = apply_config(parser.parse_args(["run", "-c", str(cfg), "-s", "b.mp4", "--mqtt-discovery"]))
    assert args.source == "b.mp4" and args.mqtt_discovery is True and args.top_k == 2


def test_run_with_config_end_to_end(coral: Path, mnv2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = write_clip(tmp_path / "clip.avi", [(coral / "cat.bmp", 10), (coral / "parrot.jpg", 10)])
    out = tmp_path / "frames.jsonl"
    cfg = _write(
        tmp_path,
        f'model = "{mnv2}"\nsource = "{clip}"\njsonl = "{out}"\ntop-k = 2\nmax-frames = 15\nstats-interval = 0\nsmooth = 0.5\n',
    )
    assert main(["run", "--config", str(cfg), "--max-frames", "12"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 12  # the command line's 12, not the file's 15
    assert all(len(r["classes"]) == 2 for r in records)  # the file's top-k
    assert records[0]["classes"][0]["label"] == "Egyptian cat" and records[-1]["classes"][0]["label"] == "macaw"
    assert "frame " in capsys.readouterr().out  # label changes printed (quiet not set)


def test_run_with_bad_config_exits_1_with_the_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _write(tmp_path, 'device = "gpu"\nmqtt-qos = "high"\n')
    assert main(["run", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    # The first bad key is reported (device was accepted unchecked until issue 15; now it is the first error).
    assert "key 'device'" in err and "is not a valid device" in err and "usb:N" in err
    cfg.write_text('mqtt-qos = "high"\n')
    assert main(["run", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "key 'mqtt-qos'" in err and "expected" in err


@pytest.mark.parametrize(
    ("content", "parts"),
    [
        (bytes(range(256)) * 4, ["is not UTF-8 text", "a binary file?"]),
        (b"\x89PNG\r\n\x1a\n\x00\x00", ["is not UTF-8 text"]),
        (b"min-score = 0.5\nmin_score = 0.7\n", ["keys 'min-score' and 'min_score'", "name the same option twice", "keep one"]),
        (b"top-k = 0\n", ["key 'top-k'", "0 is not allowed", "must be in [1, 100000]"]),
        (b"min-score = nan\n", ["key 'min-score'", "nan is not allowed", "finite"]),
        (b"label-offset = -1\n", ["key 'label-offset'", "-1 is not allowed"]),
        (b"std = [1.0, -5.0, 1.0]\n", ["key 'std'", "-5 is not allowed", "more than 0"]),
        (b'device = "bogus"\n', ["key 'device'", "is not a valid device", "usb:N"]),
        (b'source = "a\\nb"\n', ["key 'source'", "control character"]),
        (b"mean = [1.0, 2.0]\n", ["key 'mean'", "has 2 values", "three (R,G,B)"]),
        (b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", ["config file"]),
    ],
)
def test_bad_config_files_are_one_clean_config_error(tmp_path: Path, content: bytes, parts: list[str]) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    for part in parts:
        assert part in str(err.value), f"{part!r} not in {err.value}"


def test_a_folder_a_device_or_a_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder, not a file"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config("/dev/zero")  # read whole, it would never end
    big = tmp_path / "big.toml"
    big.write_text("# padding\n" * 200_000)
    with pytest.raises(ConfigError, match="too large for a config file"):
        load_config(big)


@pytest.mark.parametrize("command", ["run", "install-service"])
def test_a_binary_config_on_the_command_line_exits_1_without_a_traceback(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "photo.toml"
    cfg.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)))
    extra = ["--user", "nobody", "--dry-run"] if command == "install-service" else []
    assert main([command, "--config", str(cfg), *extra]) == 1
    err = capsys.readouterr().err
    assert "is not UTF-8 text" in err and "Traceback" not in err

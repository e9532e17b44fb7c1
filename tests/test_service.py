"""``install-service``: the systemd unit it writes, checked by ``systemd-analyze verify`` where that tool exists."""

from __future__ import annotations

import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from edge_classifier.cli import main
from edge_classifier.errors import ConfigError
from edge_classifier.service import ServiceSpec, render_unit, unit_name

# A non-root account every Linux has; systemd-analyze warns that it is "special", which is all it may say.
USER = "nobody"


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "porch cam.toml"  # a space, to check quoting in ExecStart
    cfg.write_text('source = "picamera"\nmin-score = 0.5\nmqtt = "mqtt://127.0.0.1:1883/cameras/porch"\n')
    return cfg


def _keys(unit: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k] = v
    return out


def test_install_service_writes_a_unit_and_says_how_to_enable_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    out = tmp_path / "units" / "porch.service"
    assert main(["install-service", "--config", str(cfg), "--user", USER, "--output", str(out)]) == 0
    unit = out.read_text()
    keys = _keys(unit)
    exe, *rest = keys["ExecStart"].split(" ", 1)
    assert Path(exe).is_absolute() and Path(exe).name == "edge-classifier" and Path(exe).is_file()
    assert rest == [f'run --config "{cfg}"']
    assert keys["User"] == USER and keys["SupplementaryGroups"].split() == ["video", "plugdev"]
    assert keys["Restart"] == "on-failure" and int(keys["RestartSec"]) > 0
    assert keys["WorkingDirectory"] == str(tmp_path)
    assert keys["WantedBy"] == "multi-user.target" and keys["NoNewPrivileges"] == "yes"
    # Nothing that would hide /dev/video*, /dev/bus/usb or /dev/apex_0 from the camera loop.
    for forbidden in ("PrivateDevices", "DevicePolicy", "DeviceAllow", "RestrictAddressFamilies", "ProtectHome"):
        assert forbidden not in keys
    said = capsys.readouterr().out
    for line in ("systemctl daemon-reload", f"systemctl enable --now {out.name}", f"journalctl -u {out.name}"):
        assert line in said


def test_dry_run_prints_the_unit_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    assert main(["install-service", "--config", str(cfg), "--user", USER, "--dry-run", "-v"]) == 0
    text = capsys.readouterr().out
    assert "/etc/systemd/system/edge-classifier-porch-cam.service" in text
    assert f'run --config "{cfg}" -v' in text and "[Service]" in text
    assert list(tmp_path.iterdir()) == [cfg]


def test_generated_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    out = tmp_path / unit_name(cfg)
    assert main(["install-service", "--config", str(cfg), "--user", USER, "--output", str(out)]) == 0
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed here (apt-get install systemd)")
    proc = subprocess.run([tool, "verify", str(out)], capture_output=True, text=True, timeout=60)
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    # verify exits 0 even for unknown keys or bad values, so every line it prints is checked as well.
    problems = [ln for ln in lines if f"Special user {USER} configured" not in ln]
    assert proc.returncode == 0 and not problems, "\n".join(lines)


def test_systemd_analyze_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: the same tool on a unit with a bad executable and a bad value."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed here (apt-get install systemd)")
    text = render_unit(ServiceSpec(Path("/nonexistent/edge-classifier"), tmp_path / "x.toml", USER)).replace(
        "Restart=on-failure", "Restart=sometimes"
    )
    unit = tmp_path / "broken.service"
    unit.write_text(text)
    proc = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "is not executable" in out and "sometimes" in out


def test_root_and_unknown_users_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    root = pwd.getpwuid(0).pw_name
    assert main(["install-service", "--config", str(cfg), "--user", root, "--dry-run"]) == 1
    assert "should not run with root's rights" in capsys.readouterr().err
    assert main(["install-service", "--config", str(cfg), "--user", "no-such-user-xyz", "--dry-run"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_a_broken_config_is_refused_before_any_unit_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("min_scor = 0.5\n")
    out = tmp_path / "bad.service"
    assert main(["install-service", "--config", str(cfg), "--user", USER, "--output", str(out)]) == 1
    assert "did you mean 'min-score'" in capsys.readouterr().err
    assert not out.exists()
    assert main(["install-service", "--config", str(tmp_path / "missing.toml"), "--user", USER, "--dry-run"]) == 1


def test_render_unit_refuses_root_and_relative_paths() -> None:
    with pytest.raises(ConfigError, match="root"):
        render_unit(ServiceSpec(Path("/usr/bin/edge-classifier"), Path("/etc/x.toml"), "root"))
    with pytest.raises(ConfigError, match="absolute"):
        render_unit(ServiceSpec(Path("edge-classifier"), Path("/etc/x.toml"), "pi"))
    # %-specifiers are escaped in every field, Description= included, so systemd does not expand them.
    text = render_unit(ServiceSpec(Path("/opt/ec/bin/edge-classifier"), Path("/etc/ec%h/100%.toml"), "pi"))
    keys = _keys(text)
    assert "--config /etc/ec%%h/100%%.toml" in keys["ExecStart"]
    assert keys["WorkingDirectory"] == "/etc/ec%%h" and keys["Description"] == "edge-classifier camera (100%%.toml)"
    assert "%" not in text.replace("%%", "")


# --- unit injection -------------------------------------------------------------------------------
INJECTION = "x\nUser=root\nExecStartPre=+touch X"


def test_a_config_folder_with_newlines_is_refused_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / INJECTION
    folder.mkdir()
    cfg = folder / "cam.toml"
    cfg.write_text('source = "picamera"\n')
    out = tmp_path / "units" / "cam.service"
    assert main(["install-service", "--config", str(cfg), "--user", USER, "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert "control character '\\n'" in err and "would break the systemd unit" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 2  # the error and its fix
    assert not out.exists() and not out.parent.exists() and not (tmp_path / "X").exists()
    assert main(["install-service", "--config", str(cfg), "--user", USER, "--dry-run"]) == 1
    printed = capsys.readouterr()
    assert "ExecStartPre" not in printed.out and "[Service]" not in printed.out


@pytest.mark.parametrize("bad", ["\n", "\r", "\x00", "\t", "\x1b", "\x7f", "\x85", "\udcff"])
@pytest.mark.parametrize("field", ["executable", "config", "user", "groups", "description", "extra_args"])
def test_every_value_that_reaches_the_unit_is_checked(field: str, bad: str) -> None:
    good = {"executable": Path("/usr/bin/edge-classifier"), "config": Path("/etc/ec/cam.toml"), "user": "pi",
            "groups": ("video",), "description": "porch", "extra_args": ("-v",)}  # fmt: skip
    render_unit(ServiceSpec(**good))  # type: ignore[arg-type]
    value: object = {
        "executable": Path(f"/usr/bin/edge{bad}classifier"),
        "config": Path(f"/etc/ec{bad}/cam.toml"),
        "user": f"pi{bad}",
        "groups": ("video", f"plug{bad}dev"),
        "description": f"porch{bad}User=root",
        "extra_args": (f"-v{bad}",),
    }[field]
    with pytest.raises(ConfigError, match="control character|not valid UTF-8"):
        render_unit(ServiceSpec(**{**good, field: value}))  # type: ignore[arg-type]


def test_a_trailing_backslash_cannot_swallow_the_next_setting() -> None:
    with pytest.raises(ConfigError, match="ends in a backslash"):
        render_unit(ServiceSpec(Path("/usr/bin/edge-classifier"), Path("/srv/cam\\/x.toml"), "pi"))
    # Inside ExecStart the same backslash is quoted, so only WorkingDirectory= could end with it; a backslash
    # elsewhere in a name is fine.
    text = render_unit(ServiceSpec(Path("/usr/bin/edge-classifier"), Path("/srv/a\\b/x.toml"), "pi"))
    assert _keys(text)["ExecStart"].endswith('run --config "/srv/a\\\\b/x.toml"')


def test_a_unit_with_percent_signs_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """A config in ``50%x dir/cam%i.toml``: escaped, systemd takes it literally; unescaped, verify rejects it."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed here (apt-get install systemd)")
    folder = tmp_path / "50%x dir"
    folder.mkdir()
    cfg = folder / "cam%i.toml"
    cfg.write_text('source = "picamera"\n')
    out = tmp_path / "cam.service"
    assert main(["install-service", "--config", str(cfg), "--user", USER, "--output", str(out)]) == 0

    def verify(unit: Path) -> tuple[int, list[str]]:
        proc = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip() and f"Special user {USER}" not in ln]
        return proc.returncode, lines

    rc, problems = verify(out)
    assert rc == 0 and not problems, problems
    unescaped = tmp_path / "unescaped.service"
    unescaped.write_text(out.read_text().replace("%%", "%"))
    rc, problems = verify(unescaped)
    assert rc != 0 and any("specifiers" in ln for ln in problems), problems

"""``devices`` and ``doctor`` on Hailo systems: each situation found, explained, and given its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_classifier.cli import main as cli_main
from tests import fake_hailo


@pytest.fixture
def hailort(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """HailoRT's binding (the fake) importable, and hailortcli on PATH saying HAILO8L."""
    fake_hailo.reset()
    monkeypatch.setitem(sys.modules, "hailo_platform", fake_hailo)
    fake_hailo.write_hailortcli(tmp_path / "bin", "HAILO8L")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    yield
    fake_hailo.reset()


def _doctor(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *extra: str
) -> tuple[int, list[dict]]:
    monkeypatch.setenv("EDGE_CLASSIFIER_SYSROOT", str(root))
    status = cli_main(["doctor", "--json", *extra])
    checks = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return status, [c for c in checks if c["area"] == "hailo"]


def test_a_working_ai_hat(
    hailort: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = fake_hailo.build_system(tmp_path / "root")
    monkeypatch.setenv("EDGE_CLASSIFIER_SYSROOT", str(root))
    assert cli_main(["devices", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "hailo:0" in report["usable"] and report["hailo"]["problem"] is None
    assert report["hailo"]["driver"] == ["hailo_pci", "4.20.0"] and report["hailo"]["chip"]["arch"] == "hailo8l"
    assert cli_main(["devices"]) == 0
    text = capsys.readouterr().out
    assert "hailo:0  Hailo-8/8L /dev/hailo0" in text and "ready" in text and "chip: HAILO8L" in text
    status, checks = _doctor(root, capsys, monkeypatch, "--require", "hailo")
    assert status == 0 and all(c["status"] == "ok" for c in checks), checks
    whats = " | ".join(c["what"] for c in checks)
    assert "packages: hailo-all 4.20.0" in whats and "HailoRT library 4.20.0 and driver 4.20.0 match" in whats
    assert "chip HAILO8L" in whats


def test_no_hailo_is_information_unless_required(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "hailo_platform", None)
    bare = tmp_path / "bare"
    bare.mkdir()
    status, checks = _doctor(bare, capsys, monkeypatch)
    assert status == 0 and {c["status"] for c in checks} == {"info"}
    status, checks = _doctor(bare, capsys, monkeypatch, "--require", "hailo")
    assert status == 1
    failed = [c for c in checks if c["status"] == "FAIL"]
    assert failed and all(c["fix"] for c in failed)
    assert any("no Hailo device" in c["what"] and "lspci" in c["fix"] for c in failed)


@pytest.mark.parametrize(
    ("setup", "expected", "fix"),
    [
        (dict(driver=None), "driver (hailo_pci or hailo1x_pci) is not loaded", "dkms hailo-all"),
        (
            dict(driver=("hailo_pci", "4.18.0")),
            "driver is version 4.18.0 but the HailoRT library is 4.20.0",
            "--reinstall dkms hailo-all",
        ),
        (dict(packages={"hailo-all": "4.20.0", "hailo-h10-all": "5.1.1"}), "both families are installed", "remove --purge"),
    ],
)  # fmt: skip
def test_each_problem_is_warned_with_its_fix(
    hailort: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    setup: dict,
    expected: str,
    fix: str,
) -> None:
    root = fake_hailo.build_system(tmp_path / "root", **setup)
    status, checks = _doctor(root, capsys, monkeypatch)
    assert status == 0  # not required: a warning, not a failure
    (hit,) = [c for c in checks if expected in c["what"]]
    assert hit["status"] == "warn" and fix in hit["fix"]
    monkeypatch.setenv("EDGE_CLASSIFIER_SYSROOT", str(root))
    assert cli_main(["devices", "--json"]) == 1
    problem = json.loads(capsys.readouterr().out)["hailo"]["problem"]
    assert problem is not None and fix in problem["fix"]


def test_hailort_hidden_by_the_venv(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hailo_platform", None)
    root = fake_hailo.build_system(tmp_path / "root")
    (root / "usr/lib/python3/dist-packages/hailo_platform").mkdir(parents=True)
    monkeypatch.setattr("edge_classifier.hailo.runtime.venv_hides_system_packages", lambda: True)
    status, checks = _doctor(root, capsys, monkeypatch)
    (hit,) = [c for c in checks if "hidden by this virtualenv" in c["what"]]
    assert hit["status"] == "warn" and "--system-site-packages" in hit["fix"]
    assert cli_main(["devices"]) == 1
    assert "SystemPackageHidden" not in capsys.readouterr().out  # said in words, with the fix
    monkeypatch.setenv("EDGE_CLASSIFIER_SYSROOT", str(root))
    cli_main(["devices", "--json"])
    assert json.loads(capsys.readouterr().out)["hailo"]["problem"]["error"] == "SystemPackageHiddenError"


def test_the_real_command_sees_a_hailo_tree(tmp_path: Path) -> None:
    """``python -m edge_classifier devices`` in a child process: the tree's device is found, HailoRT's absence named."""
    root = fake_hailo.build_system(tmp_path / "root")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_CLASSIFIER_")}
    env["EDGE_CLASSIFIER_SYSROOT"] = str(root)
    res = subprocess.run([sys.executable, "-m", "edge_classifier", "devices", "--json"], capture_output=True, text=True,
                         timeout=120, check=False, env=env)  # fmt: skip
    assert res.returncode == 1, res.stderr
    hailo = json.loads(res.stdout)["hailo"]
    assert [d["device"] for d in hailo["devices"]] == ["hailo:0"] and hailo["devices"][0]["node"] == "/dev/hailo0"
    assert hailo["problem"]["error"] in ("HailoRuntimeMissingError", "SystemPackageHiddenError")

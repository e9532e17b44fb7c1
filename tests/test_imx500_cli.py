"""``devices`` and ``doctor`` on AI Camera systems: each situation found, explained, and given its fix."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from edge_classifier.cli import main as cli_main
from tests import fake_imx500


def _run(root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("EDGE_CLASSIFIER_SYSROOT", str(root))
    status = cli_main(list(args))
    return status, capsys.readouterr().out


def _imx500_checks(out: str) -> list[dict]:
    return [c for c in (json.loads(line) for line in out.splitlines()) if c["area"] == "imx500"]


def test_a_working_ai_camera(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    fake_imx500.install(monkeypatch)
    root = fake_imx500.build_system(tmp_path / "root")
    status, out = _run(root, capsys, monkeypatch, "devices", "--json")
    report = json.loads(out)
    assert status == 0 and "imx500" in report["usable"]
    assert (
        report["imx500"]["cameras"][0]["node"] == "/dev/v4l-subdev2" and report["imx500"]["cameras"][0]["device_id"] == "10-001a"
    )
    assert report["imx500"]["models"] == ["/usr/share/imx500-models/imx500_network_mobilenet_v2.rpk"]
    status, out = _run(root, capsys, monkeypatch, "devices")
    assert "imx500   /dev/v4l-subdev2 (10-001a)" in out and "picamera2 IMX500 support: importable" in out
    status, out = _run(root, capsys, monkeypatch, "doctor", "--json", "--require", "imx500")
    checks = _imx500_checks(out)
    assert status == 0 and {c["status"] for c in checks} == {"ok"}, checks


@pytest.mark.parametrize(
    ("setup", "support", "expected", "fix"),
    [
        (dict(camera=False), True, "no AI Camera", "rpicam-hello --list-cameras"),
        (dict(firmware=False), True, "firmware missing: /lib/firmware/imx500_loader.fpk", "sudo apt install imx500-all"),
        (dict(), False, "picamera2's IMX500 support: picamera2 has no IMX500 support", "python3-picamera2"),
    ],
)  # fmt: skip
def test_each_problem_is_warned_with_its_fix(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    setup: dict,
    support: bool,
    expected: str,
    fix: str,
) -> None:
    fake_imx500.install(monkeypatch, imx500_support=support)
    root = fake_imx500.build_system(tmp_path / "root", **setup)
    status, out = _run(root, capsys, monkeypatch, "doctor", "--json")
    (hit,) = [c for c in _imx500_checks(out) if expected in c["what"]]
    assert status == 0 and hit["status"] == "warn" and fix in hit["fix"]  # imx500-all is installed: meant to be used
    status, out = _run(root, capsys, monkeypatch, "doctor", "--json", "--require", "imx500")
    assert status == 1 and any(c["status"] == "FAIL" and expected in c["what"] for c in _imx500_checks(out))
    status, out = _run(root, capsys, monkeypatch, "devices")
    assert status == 1 and "problem:" in out and fix.split()[0] in out


def test_picamera2_hidden_by_the_venv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("picamera2", "picamera2.devices", "picamera2.devices.imx500"):
        monkeypatch.setitem(sys.modules, name, None)
    root = fake_imx500.build_system(tmp_path / "root")
    (root / "usr/lib/python3/dist-packages/picamera2").mkdir(parents=True)
    monkeypatch.setattr("edge_classifier.imx500.discovery.venv_hides_system_packages", lambda: True)
    status, out = _run(root, capsys, monkeypatch, "doctor", "--json")
    (hit,) = [c for c in _imx500_checks(out) if "hidden by this virtualenv" in c["what"]]
    assert hit["status"] == "warn" and "--system-site-packages" in hit["fix"]
    status, out = _run(root, capsys, monkeypatch, "devices", "--json")
    assert json.loads(out)["imx500"]["problem"]["error"] == "SystemPackageHiddenError"


def test_a_desktop_without_an_ai_camera_is_information(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    status, out = _run(bare, capsys, monkeypatch, "doctor", "--json")
    assert status == 0 and {c["status"] for c in _imx500_checks(out)} == {"info"}

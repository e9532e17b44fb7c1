"""The arm64 check's own logic, natively: which tests it runs, what it installs, how it refuses or skips.

The emulated run itself is CI's stage 3 (``scripts/arm64-check.sh``); these tests cover the parts that decide what
that stage proves, so a change that would silently shrink it (a core file renamed, a runtime test that starts to
import TensorFlow, a linter or the converter's stack in the arm64 requirements) fails here in seconds.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "arm64-check.sh"
HELPERS = REPO / "scripts" / "arm64"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"arm64_{name}", HELPERS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


runtime_tests = _load("runtime_tests")
requirements = _load("requirements")


def test_converter_tests_are_host_only_and_runtime_tests_are_not() -> None:
    tests_dir = REPO / "tests"
    assert runtime_tests.host_only_reason(tests_dir / "test_convert.py", tests_dir) is not None
    assert runtime_tests.host_only_reason(tests_dir / "test_train.py", tests_dir) is not None
    assert runtime_tests.host_only_reason(tests_dir / "test_classifier.py", tests_dir) is None
    assert runtime_tests.host_only_reason(tests_dir / "test_pipeline.py", tests_dir) is None


def test_a_tensorflow_import_through_a_helper_module_is_caught(tmp_path: Path) -> None:
    tests_dir = tmp_path / "tests"
    tests_dir.mkdir()
    (tests_dir / "helper.py").write_text("def f():\n    import tensorflow as tf\n    return tf\n")
    (tests_dir / "test_uses_helper.py").write_text("from .helper import f\n")
    (tests_dir / "test_plain.py").write_text("import numpy\nimport pytest\npytest.importorskip('cv2')\n")
    (tests_dir / "test_skips_torch.py").write_text("import pytest\ntorch = pytest.importorskip('torch')\n")
    reason = runtime_tests.host_only_reason(tests_dir / "test_uses_helper.py", tests_dir)
    assert reason == "tensorflow (via helper.py)"
    assert runtime_tests.host_only_reason(tests_dir / "test_plain.py", tests_dir) is None
    assert runtime_tests.host_only_reason(tests_dir / "test_skips_torch.py", tests_dir) == "torch"


def test_the_core_list_names_existing_runtime_tests_only() -> None:
    core = runtime_tests.core_files(REPO / "tests", HELPERS / "core-tests.txt")
    assert Path("tests/test_classifier.py") in core
    assert all((REPO / path).is_file() for path in core)
    assert len(core) == len(set(core)) >= 10


@pytest.mark.parametrize(
    ("line", "complaint"),
    [("tests/test_gone.py", "does not exist"), ("tests/test_convert.py", "not a runtime test")],
)
def test_a_stale_core_list_stops_the_check(tmp_path: Path, line: str, complaint: str) -> None:
    listing = tmp_path / "core.txt"
    listing.write_text(f"# comment\ntests/test_classifier.py\n{line}  # why\n")
    with pytest.raises(SystemExit, match=complaint):
        runtime_tests.core_files(REPO / "tests", listing)


def test_the_arm64_requirements_are_the_runtimes_without_linters_or_tensorflow() -> None:
    wanted = requirements.runtime_requirements(REPO / "pyproject.toml")
    names = {requirements._name(req) for req in wanted}
    assert {"numpy", "ai-edge-litert", "opencv-python-headless", "pillow", "paho-mqtt", "pytest"} <= names
    assert not names & {"ruff", "mypy", "tensorflow", "tensorflow-cpu", "torch"}


def _script(*args: str, env: dict[str, str] | None = None, unprivileged: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = ["bash", str(SCRIPT), *args]
    if unprivileged:  # as nobody (uid and gid 65534 on Debian)
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    base = {k: v for k, v in os.environ.items() if k != "CI"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={**base, **(env or {})}, check=False)


def test_bad_arguments_are_refused_before_anything_is_built() -> None:
    res = _script("--suite", "sid")
    assert res.returncode == 2
    assert "--suite must be bookworm or trixie, not 'sid'" in res.stderr
    res = _script(env={"EDGE_CLASSIFIER_ARM64_CACHE": "relative/cache"})
    assert res.returncode == 2
    assert "must be an absolute folder other than /" in res.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv to drop to nobody")
@pytest.mark.skipif(shutil.which("sudo") is not None, reason="sudo is installed: an unprivileged run would try it")
def test_without_root_the_check_skips_with_its_reason_and_fails_under_ci() -> None:
    res = _script(unprivileged=True, env={"EDGE_CLASSIFIER_ARM64_CACHE": "/nonexistent/arm64"})
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip().splitlines()[-1].startswith("arm64: skipped: building the arm64 root needs root")
    res = _script(unprivileged=True, env={"CI": "true", "EDGE_CLASSIFIER_ARM64_CACHE": "/nonexistent/arm64"})
    assert res.returncode == 1
    assert "arm64: FAILED: the arm64 check cannot run on this machine" in res.stdout
    assert "(CI=true requires it)" in res.stdout

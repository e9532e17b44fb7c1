"""The wheel as a user installs it: the converter under ``edge_classifier.convert``, nothing called ``converters``.

Builds the wheel with pip (``pip wheel . --no-deps``), installs it into a throwaway virtualenv and runs its
``edge-convert`` there. The venv borrows this environment's third-party packages (numpy, OpenCV, ...) through a
``.pth`` line, never its ``edge_classifier``: what runs is the wheel's copy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

# A wheel build (pip caches setuptools after the first) and a venv: about 10 s, so not marked slow.


def _run(cmd: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("whl")
    res = _run([sys.executable, "-m", "pip", "wheel", str(REPO), "-w", str(out), "--no-deps", "-q"], cwd=out, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    (built,) = out.glob("edge_classifier-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wv")
    res = _run([sys.executable, "-m", "venv", "--without-pip", str(root)], cwd=root)
    assert res.returncode == 0, res.stderr
    python = root / "bin" / "python"
    res = _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)], cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root).stdout.strip())
    # Third-party packages from this environment, after the venv's own: numpy and friends, not our package.
    (site / "zz_borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return root


def _site(venv: Path) -> Path:
    (site,) = venv.glob("lib/python*/site-packages")
    return site


def _expected_files() -> set[str]:
    """Every source file the wheel must hold, under its installed name."""
    files = {f"edge_classifier/{p.relative_to(REPO / 'edge_classifier')}" for p in (REPO / "edge_classifier").rglob("*.py")}
    files |= {f"edge_classifier/convert/{p.relative_to(REPO / 'converters')}" for p in (REPO / "converters").rglob("*.py")}
    return {f for f in files if "__pycache__" not in f}


def test_the_wheel_holds_every_module_and_no_top_level_converters(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/", 1)[0] for n in names}
    assert "converters" not in tops
    assert {t for t in tops if not t.endswith(".dist-info")} == {"edge_classifier"}
    missing = sorted(_expected_files() - names)
    assert not missing, f"not in the wheel (add the package to [tool.setuptools] packages in pyproject.toml): {missing}"
    assert any(n.startswith("edge_classifier/models/") and n.endswith(".tflite") for n in names)
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "edge-convert = edge_classifier.convert.cli:main" in text and "converters" not in text


def test_installed_wheel_has_the_converter_under_the_project_namespace(venv: Path) -> None:
    site = _site(venv)
    assert not (site / "converters").exists()
    assert (site / "edge_classifier" / "convert" / "cli.py").is_file()
    assert (site / "edge_classifier" / "convert" / "edgetpu_cli.py").is_file()
    python = str(venv / "bin" / "python")
    res = _run([python, "-c", "import edge_classifier.convert.cli as m; print(m.__file__)"], cwd=venv)
    assert res.returncode == 0 and res.stdout.strip().startswith(str(site)), res.stdout + res.stderr
    res = _run([python, "-c", "import converters"], cwd=venv)
    assert res.returncode != 0 and "No module named 'converters'" in res.stderr


def test_installed_edge_convert_lists_its_subcommands_and_names_the_wheel_fix(venv: Path) -> None:
    res = _run([str(venv / "bin" / "edge-convert"), "--help"], cwd=venv)
    assert res.returncode == 0, res.stderr
    assert "{convert,analyze,compile" in res.stdout.splitlines()[0]
    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None; "
        "from edge_classifier.convert.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    res = _run([str(venv / "bin" / "python"), "-c", code, "convert", "mobilenet_v2", "--calib", str(venv)], cwd=venv)
    assert res.returncode == 1
    (line,) = res.stderr.splitlines()
    assert 'pip install "edge-classifier[convert]"' in line and "-e" not in line.split("install it with:")[1]

"""Sony's IMX500 toolchain in a virtual environment of its own, made on first use and reused after.

Sony's packages cannot share edge-classifier's environment: ``uni-tensorflow`` (imxconv-tf's front end) requires
``tensorflow<2.16`` and ``numpy<2``, ``edge-mdt-cl[tf]`` pins ``tensorflow==2.15.*``, and MCT's Keras exporter
refuses TensorFlow above 2.15, while the converter here runs TensorFlow 2.21 with Keras 3. So the toolchain lives
in ``~/.cache/edge-classifier/imx500-toolchain`` (``$EDGE_CLASSIFIER_IMX500_TOOLCHAIN`` to move it), installed from
PyPI with exact pins (what ``pip install "edge-mdt[tf]==1.3.0"`` resolves to), and the converter talks to it
through files and a child process (:mod:`.imx500_job`). ``uni-tensorflow`` needs Python 3.10 or 3.11;
``sdspconv`` (imxconv's back end) is Java, and needs a Java runtime 17 or newer on PATH.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from edge_classifier.errors import JavaMissingError, ToolchainInstallError

log = logging.getLogger(__name__)

ENV_DIR = "EDGE_CLASSIFIER_IMX500_TOOLCHAIN"
#: Sony's edge-mdt 1.3.0 [tf] as pip resolves it (checked 2026-11 on PyPI); the rest follow from these.
PINS: tuple[str, ...] = (
    "edge-mdt[tf]==1.3.0",
    "model-compression-toolkit==2.5.1",
    "edge-mdt-tpc==1.3.0",
    "mct-quantizers==1.6.0",
    "imx500-converter[tf]==3.18.2",
    "uni-tensorflow==3.18.2",
    "sdspconv==3.18.1",
    "tensorflow==2.15.1",
    "keras==2.15.0",
    "numpy==1.26.4",
)
SUPPORTED_PYTHON = ((3, 10), (3, 11))  # uni-tensorflow: Requires-Python >=3.10,<3.12
MIN_JAVA = 17
MARKER = "edge-classifier-toolchain.json"
INSTALL_TIMEOUT = 3600


@dataclass(frozen=True)
class Toolchain:
    """A ready toolchain environment.

    Attributes:
        root: the virtual environment.
        python: its interpreter.
        imxconv: its ``imxconv-tf`` script.
        java: the Java runtime on PATH and its version line.
        versions: the installed versions of the pinned packages.
    """

    root: Path
    python: Path
    imxconv: Path
    java: str
    versions: dict[str, str]


def default_dir() -> Path:
    """Where the toolchain lives: ``$EDGE_CLASSIFIER_IMX500_TOOLCHAIN`` or ``~/.cache/edge-classifier/imx500-toolchain``."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "edge-classifier" / "imx500-toolchain"


def find_python() -> str:
    """A Python 3.10 or 3.11 to build the environment with: this one when it fits, else one on PATH.

    Raises:
        ToolchainInstallError: none found.
    """
    if sys.version_info[:2] in SUPPORTED_PYTHON:
        return sys.executable
    for name in ("python3.11", "python3.10"):
        found = shutil.which(name)
        if found:
            return found
    raise ToolchainInstallError(
        "IMX500 toolchain",
        f"Sony's uni-tensorflow needs Python 3.10 or 3.11, and this is {sys.version.split()[0]} with neither on PATH",
        "install python3.11 (e.g. `uv python install 3.11` or your distribution's package) and run again",
    )


def check_java() -> str:
    """The Java runtime's version line.

    Raises:
        JavaMissingError: no ``java`` on PATH, or older than 17.
    """
    java = shutil.which("java")
    fix = "install a Java runtime 17 or newer: sudo apt install openjdk-17-jre-headless (or set PATH to one)"
    if java is None:
        raise JavaMissingError("java", "is not on PATH; imxconv's back end (sdspconv) is a Java program", fix)
    try:
        proc = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JavaMissingError(java, f"does not run ({exc})", fix) from exc
    line = (proc.stderr or proc.stdout).strip().splitlines()[0] if (proc.stderr or proc.stdout).strip() else ""
    m = re.search(r'version "(\d+)(?:\.(\d+))?', line)
    major = int(m.group(1)) if m else 0
    if major == 1 and m and m.group(2):  # "1.8.0_392" is Java 8
        major = int(m.group(2))
    if major < MIN_JAVA:
        raise JavaMissingError(java, f"is {line or 'of an unknown version'}; sdspconv needs Java {MIN_JAVA} or newer", fix)
    return line


def _bin(root: Path, name: str) -> Path:
    return root / ("Scripts" if os.name == "nt" else "bin") / name


def _installed(root: Path) -> dict[str, str] | None:
    """The marker's versions when ``root`` holds a finished install of the current pins."""
    try:
        marker = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if marker.get("pins") != list(PINS) or not _bin(root, "python").exists() or not _bin(root, "imxconv-tf").exists():
        return None
    return dict(marker.get("versions", {}))


def _run(cmd: list[str], what: str, timeout: int = INSTALL_TIMEOUT) -> str:
    log.info("%s: %s", what, " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ToolchainInstallError(
            "IMX500 toolchain", f"{what} took longer than {timeout} s", "check the network, then run again"
        ) from exc
    except OSError as exc:
        raise ToolchainInstallError(
            "IMX500 toolchain", f"{what} could not start ({exc})", "check the Python installation"
        ) from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-12:])
        raise ToolchainInstallError(
            "IMX500 toolchain",
            f"{what} failed (status {proc.returncode}):\n{tail}",
            "check that PyPI is reachable (pip config, proxy) and that the disk has ~3 GB free; the partial environment "
            "is removed, so running again starts clean",
        )
    return proc.stdout


def ensure_toolchain(root: Path | None = None, *, python: str | None = None) -> Toolchain:
    """The toolchain environment, created and installed the first time (about 750 MB of wheels from PyPI).

    Args:
        root: where it lives (default :func:`default_dir`).
        python: the interpreter to build it with (default :func:`find_python`).

    Raises:
        ToolchainInstallError: no suitable Python, or the venv or the pinned packages cannot be installed.
        JavaMissingError: no Java 17+ (checked first: without it imxconv cannot finish anyway).
    """
    java = check_java()
    root = root or default_dir()
    versions = _installed(root)
    if versions is None:
        python = python or find_python()
        # Built where it will live (a venv's scripts name their interpreter by absolute path); the marker, written
        # last, says the install finished, so a half-made environment is never taken for a ready one.
        shutil.rmtree(root, ignore_errors=True)
        root.parent.mkdir(parents=True, exist_ok=True)
        print(
            f"[imx500] first use: installing Sony's toolchain into {root} (once; ~750 MB from PyPI)", file=sys.stderr, flush=True
        )
        try:
            _run([python, "-m", "venv", str(root)], "creating the toolchain's virtual environment", timeout=600)
            py = str(_bin(root, "python"))
            _run(
                [py, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", *PINS], "pip install of Sony's packages"
            )
            frozen = _run(
                [py, "-m", "pip", "list", "--format=json", "--disable-pip-version-check"], "listing the toolchain", timeout=300
            )
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        wanted = {_norm(re.split(r"[\[=]", p)[0]) for p in PINS}
        versions = {_norm(d["name"]): d["version"] for d in json.loads(frozen) if _norm(d["name"]) in wanted}
        (root / MARKER).write_text(json.dumps({"pins": list(PINS), "versions": versions, "python": python}, indent=1))
    return Toolchain(root, _bin(root, "python"), _bin(root, "imxconv-tf"), java, versions)


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")

"""The requirements of the runtime test suite, read from pyproject.toml: what a Pi installs, plus the test tools.

``scripts/arm64-check.sh`` installs these in the emulated arm64 root with ``--only-binary=:all:``, so the check also
proves that every runtime dependency comes as a prebuilt aarch64 wheel (a Pi should never compile one). Printed: the
project's dependencies, its ``mqtt`` extra (the MQTT sink's tests) and its ``dev`` extra without the linters
(ruff and mypy check the sources, which are the same on every architecture; stage 1 of CI runs them).

Usage: ``python3 scripts/arm64/requirements.py [pyproject.toml]`` prints one requirement per line.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

# Extras that the device side uses and the runtime tests exercise; "convert" (TensorFlow) is host-only.
RUNTIME_EXTRAS: tuple[str, ...] = ("mqtt", "dev")
# Source checkers: architecture-independent, run natively in CI's first stage.
LINTERS: frozenset[str] = frozenset({"ruff", "mypy"})


def _name(requirement: str) -> str:
    """The distribution name a requirement line starts with, normalised (PEP 503)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def runtime_requirements(pyproject: Path) -> list[str]:
    """The project's dependencies plus its runtime extras, linters left out, in pyproject order."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    wanted = list(project.get("dependencies", []))
    extras = project.get("optional-dependencies", {})
    for extra in RUNTIME_EXTRAS:
        wanted += [req for req in extras.get(extra, []) if _name(req) not in LINTERS]
    return wanted


def main(argv: list[str]) -> int:
    """Print the runtime test requirements of the pyproject.toml named in ``argv`` (default ./pyproject.toml)."""
    print("\n".join(runtime_requirements(Path(argv[0] if argv else "pyproject.toml"))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

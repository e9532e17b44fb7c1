"""The package's layers (DESIGN.md), checked over the source's AST: imports run downward only, and nothing cycles.

Every import counts, function-local ones included: a deferred import that runs upward is still a knot. A new module
must be given its layer here, which is the point: placing it is a design decision.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "edge_classifier"

# Module prefix -> rank; a module may import only modules of its own rank or below. The longest prefix wins.
LAYERS: dict[str, int] = {
    "edge_classifier": 100,  # the package's __init__: the public API re-exports everything, so nothing imports it
    "edge_classifier.__main__": 95,
    "edge_classifier.cli": 90,
    "edge_classifier.config": 85,
    "edge_classifier.service": 85,
    "edge_classifier.session": 70,
    "edge_classifier.pipeline": 70,  # deprecated re-exports of loop and session
    "edge_classifier.loop": 65,
    "edge_classifier.collect": 62,  # training photos from a source's frames, written whole
    "edge_classifier.sources": 60,
    "edge_classifier.sinks": 60,
    "edge_classifier.web": 60,
    "edge_classifier.smoothing": 55,
    "edge_classifier.triggers": 55,
    "edge_classifier.evaluate": 55,
    "edge_classifier.classifier": 50,
    "edge_classifier.sensor_classifier": 50,  # the AI Camera's FrameClassifier: answers come with the frames
    "edge_classifier.loop_options": 45,
    "edge_classifier.prefetch": 45,
    "edge_classifier.regions": 44,  # pure declarations and geometry: LoopOptions holds Regions
    "edge_classifier.preprocess": 40,
    "edge_classifier.postprocess": 40,
    "edge_classifier.spec": 40,
    "edge_classifier.results": 40,
    "edge_classifier.states": 40,
    "edge_classifier.imagenet": 40,
    "edge_classifier.decode": 35,
    "edge_classifier.backends": 30,  # the package's __init__ re-exports select's policy
    "edge_classifier.backends.select": 30,
    "edge_classifier.backends.isolated": 25,
    "edge_classifier.backends.failover": 25,
    "edge_classifier.backends.edgetpu": 30,  # deprecated aliases of select/local (one release)
    "edge_classifier.backends.worker": 22,  # the worker process's side: imports only local, runtime, base, quiet
    "edge_classifier.backends.local": 20,
    "edge_classifier.backends.hailo": 20,  # a .hef on a Hailo, in this process
    "edge_classifier.backends.imx500": 20,  # an .rpk on the AI Camera's sensor
    "edge_classifier.backends.runtime": 15,
    "edge_classifier.backends.base": 15,
    "edge_classifier.backends.quiet": 10,
    "edge_classifier.edgetpu": 15,
    "edge_classifier.hailo": 15,  # Hailo facts: HEF files, devices, HailoRT, diagnosis
    "edge_classifier.imx500": 15,  # IMX500 facts: .rpk files, the sensor, firmware, diagnosis
    # Deprecated aliases of backends.isolated/failover (one release): above what they re-export, imported by nothing.
    "edge_classifier.edgetpu.worker": 35,
    "edge_classifier.edgetpu.failover": 35,
    "edge_classifier.options": 10,
    "edge_classifier.tflite_file": 5,
    "edge_classifier.sysfacts": 5,  # dpkg, kernel modules, device nodes, venvs: facts several probes share
    "edge_classifier.sidecar": 5,  # labels and spec beside a .hef or .rpk
    "edge_classifier.errors": 5,
    "edge_classifier.stats": 5,
    "edge_classifier.redact": 5,
    "edge_classifier._version": 0,
    "edge_classifier.data": 0,
    "edge_classifier.models": 0,
}


def module_name(path: Path) -> str:
    """Dotted module name of a file under edge_classifier/."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def rank(module: str) -> int | None:
    """The layer of ``module``: its longest prefix in LAYERS."""
    best: str | None = None
    for prefix in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best)):
            best = prefix
    return None if best is None else LAYERS[best]


def imports_of(path: Path, module: str) -> set[str]:
    """Every edge_classifier module ``path`` imports, at any depth of its code, resolved to absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from .x import y` may name a submodule y: count it when such a file exists.
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if _exists(sub) else target)
    return {m for m in found if m == "edge_classifier" or m.startswith("edge_classifier.")}


def _exists(module: str) -> bool:
    path = REPO.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def graph() -> dict[str, set[str]]:
    """module -> the edge_classifier modules it imports."""
    return {module_name(p): imports_of(p, module_name(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in graph() if rank(m) is None)
    assert not unplaced, f"give these modules a layer in tests/test_layers.py: {unplaced}"


def test_imports_run_downward_only() -> None:
    upward = []
    for module, targets in graph().items():
        own = rank(module)
        for target in sorted(targets):
            theirs = rank(target)
            if own is not None and theirs is not None and theirs > own:
                upward.append(f"{module} ({own}) imports {target} ({theirs})")
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def test_no_import_cycle() -> None:
    edges = {m: {t for t in ts if t != m} for m, ts in graph().items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in edges:
                continue
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_runtime_never_imports_tensorflow_or_the_converters() -> None:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                if name.split(".")[0] in ("tensorflow", "keras", "converters") or name.startswith("edge_classifier.convert"):
                    bad.append(f"{path.relative_to(REPO)}:{node.lineno} imports {name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("edge_classifier.sinks.mqtt", "from .. import __version__", {"edge_classifier"}),
        ("edge_classifier.classifier", "def f():\n    from .pipeline import stream", {"edge_classifier.pipeline"}),
        ("edge_classifier.backends.select", "from ..errors import ModelError", {"edge_classifier.errors"}),
    ],
)
def test_the_checker_sees_relative_and_local_imports(tmp_path: Path, module: str, source: str, expected: set[str]) -> None:
    # The checker must see what the issue found: a sink importing the package __init__, a function-local upward import.
    path = REPO.joinpath(*module.split(".")).with_suffix(".py")
    fake = tmp_path / path.name
    fake.write_text(source, encoding="utf-8")
    got = imports_of(fake, module)
    assert got == expected
    assert any(rank(t) is not None and rank(t) > rank(module) for t in got) == (expected != {"edge_classifier.errors"})  # type: ignore[operator]

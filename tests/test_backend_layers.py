"""The backends in layers: one CPU loader, a quiet runtime, read_model that blames the file only when the file is at fault.

Real models throughout; the only stand-ins are a parser bug (monkeypatched, to prove it is not blamed on the
file) and an interpreter subclass that writes one extra stderr line while the real runtime prints its own.
"""

from __future__ import annotations

import ast
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import pytest

from edge_classifier import tflite_file
from edge_classifier.backends import runtime, select
from edge_classifier.backends.quiet import quiet_runtime_chatter
from edge_classifier.classifier import Classifier
from edge_classifier.errors import FallbackWarning, ModelError
from edge_classifier.tflite_file import read_model
from tests.conftest import REPO

CPU_MODEL = "mobilenet_v1_0.25_128_quant.tflite"
TPU_MODEL = "mobilenet_v1_0.25_128_quant_edgetpu.tflite"
XNNPACK = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
BACKENDS = REPO / "edge_classifier" / "backends"


# --- quiet by default ----------------------------------------------------------------------------
def _console_script() -> list[str]:
    script = Path(sys.executable).with_name("edge-classifier")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "edge_classifier"]


def test_classify_prints_nothing_on_stderr(coral: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_CLASSIFIER_")}
    cmd = [*_console_script(), "classify", str(coral / "cat.bmp")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert res.returncode == 0, res.stderr
    assert "Egyptian cat" in res.stdout
    assert res.stderr == ""


_CREATE_WITH_ANOTHER_LINE = """
import os, sys, types
from edge_classifier.backends import runtime

rt, _, _ = runtime.select_runtime("ai-edge-litert")

class Talkative(rt.interpreter_class):
    def allocate_tensors(self):
        os.write(2, b"another line from the runtime\\n")
        sys.stderr.write("and one from Python\\n")
        return super().allocate_tensors()  # the real runtime prints its XNNPACK line in here

talkative = runtime.Runtime(rt.name, rt.version, types.SimpleNamespace(Interpreter=Talkative))
backend = runtime.open_cpu(talkative, sys.argv[1], 1)
print(backend.info.device)
"""


def test_only_the_xnnpack_line_is_hidden(coral: Path) -> None:
    """A fresh process (the runtime prints its line once per process) creates an interpreter that says two more things."""
    res = subprocess.run(
        [sys.executable, "-c", _CREATE_WITH_ANOTHER_LINE, str(coral / CPU_MODEL)],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout == "cpu\n"
    assert res.stderr == "another line from the runtime\nand one from Python\n"


def test_debug_logging_lets_the_runtime_speak(coral: Path) -> None:
    code = "import logging; logging.basicConfig(level=logging.DEBUG)\n" + _CREATE_WITH_ANOTHER_LINE
    res = subprocess.run(
        [sys.executable, "-c", code, str(coral / CPU_MODEL)], capture_output=True, text=True, timeout=120, check=False, cwd=REPO
    )
    assert res.returncode == 0, res.stderr
    assert XNNPACK in res.stderr and "another line from the runtime" in res.stderr


def _fd2() -> tuple[int, int]:
    st = os.fstat(2)
    return st.st_dev, st.st_ino


def test_quiet_filters_keeps_order_and_restores_fd_on_error(capfd: pytest.CaptureFixture[str]) -> None:
    before = _fd2()
    with pytest.raises(RuntimeError, match="load failed"), quiet_runtime_chatter():
        os.write(2, b"ERROR: first\n" + XNNPACK.encode() + b"\nERROR: second\n")
        raise RuntimeError("load failed")
    assert _fd2() == before
    assert capfd.readouterr().err == "ERROR: first\nERROR: second\n"
    os.write(2, b"after\n")  # fd 2 writes reach the real stderr again
    assert capfd.readouterr().err == "after\n"


def test_quiet_from_many_threads(capfd: pytest.CaptureFixture[str]) -> None:
    before = _fd2()
    barrier = threading.Barrier(4)

    def work(i: int) -> None:
        barrier.wait()
        for j in range(20):
            with quiet_runtime_chatter(), quiet_runtime_chatter():  # nested in one thread: one redirect
                os.write(2, f"{XNNPACK}\nthread {i} line {j}\n".encode())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _fd2() == before
    lines = capfd.readouterr().err.splitlines()
    assert sorted(lines) == sorted(f"thread {i} line {j}" for i in range(4) for j in range(20))


def test_quiet_passes_through_at_debug(capfd: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("edge_classifier.backends.quiet")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with quiet_runtime_chatter():
            os.write(2, XNNPACK.encode() + b"\n")
    finally:
        logger.setLevel(old)
    assert capfd.readouterr().err == XNNPACK + "\n"


# --- read_model: the file's fault, or a bug ----------------------------------------------------------
def test_truncated_file_gets_the_clean_error(coral: Path, tmp_path: Path) -> None:
    data = (coral / CPU_MODEL).read_bytes()
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError) as info:
        read_model(cut)
    expected = f"the model file is truncated or corrupt: it ends at byte {len(data) // 2}, inside the flatbuffer, which reads"
    assert info.value.cause.startswith(expected)
    assert "sha256" in info.value.fix
    assert type(info.value.__cause__).__name__ == "error"  # struct.error, kept as the cause
    with pytest.raises(ModelError, match="it ends at byte"):
        Classifier(cut)


@pytest.mark.parametrize(
    ("offset", "cause"),
    [
        (68, "an offset inside the flatbuffer points outside the file (bad number"),  # flatbuffers' TypeError
        (43, "an offset inside the flatbuffer points outside the file (to byte 4278190148)"),  # struct.error, wild offset
        (40, "truncated or corrupt: it ends at byte 525598, inside the flatbuffer, which reads byte 118994219"),
        (481008, "operator 8 of subgraph 0 uses operator code 9984, but the file defines 5"),
        (525519, "the archive of associated files (labels, spec) after its flatbuffer cannot be read"),
    ],
)
def test_corrupt_file_gets_the_clean_error(coral: Path, tmp_path: Path, offset: int, cause: str) -> None:
    data = bytearray((coral / CPU_MODEL).read_bytes())
    data[offset] = 0xFF
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError) as info:
        read_model(bad)
    assert cause in info.value.cause and "corrupt" in info.value.cause
    assert str(bad) == info.value.thing


@pytest.mark.parametrize("bug", [AttributeError, TypeError, IndexError])
def test_a_parser_bug_keeps_its_traceback(coral: Path, monkeypatch: pytest.MonkeyPatch, bug: type[Exception]) -> None:
    def broken(*_args: object) -> object:
        raise bug("a bug in the parser, not in the file")

    monkeypatch.setattr(tflite_file, "_tensor_info", broken)
    with pytest.raises(bug, match="a bug in the parser"):
        read_model(coral / CPU_MODEL)
    with pytest.raises(bug, match="a bug in the parser"):
        Classifier(coral / CPU_MODEL)


# --- one loader --------------------------------------------------------------------------------------
def test_only_runtime_makes_interpreters_and_only_the_loaders_wrap_them() -> None:
    """Creating an interpreter is written once (runtime.py); a Backend is built only by the two loaders."""
    creates: list[str] = []
    wraps: list[str] = []
    for path in sorted((REPO / "edge_classifier").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "interpreter_class" and isinstance(node.ctx, ast.Load):
                creates.append(path.name)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Backend":
                wraps.append(path.name)
    assert set(creates) == {"runtime.py"}
    assert sorted(wraps) == ["local.py", "runtime.py"]


def test_every_cpu_load_in_process_goes_through_open_cpu(coral: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = runtime.open_cpu

    def counting(rt: runtime.Runtime, model_path: str | Path, num_threads: int, **kw: object) -> object:
        calls.append(Path(model_path).name)
        return real(rt, model_path, num_threads, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(runtime, "open_cpu", counting)
    monkeypatch.setattr(select, "_warned", set())
    with Classifier(coral / CPU_MODEL, device="cpu"):
        pass
    with pytest.warns(FallbackWarning), Classifier(coral / TPU_MODEL, device="auto", isolate=False):
        pass
    assert calls == [CPU_MODEL, CPU_MODEL]  # the second is the twin


def test_open_backend_says_what_it_loaded_and_the_classifier_reads_the_twin_once(
    coral: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (CPU_MODEL, TPU_MODEL):
        shutil.copy(coral / name, tmp_path / name)
    twin = tmp_path / CPU_MODEL
    data, info = read_model(tmp_path / TPU_MODEL)
    monkeypatch.setattr(select, "_warned", set())
    with pytest.warns(FallbackWarning):
        loaded = select.open_backend(data, info, str(tmp_path / TPU_MODEL), device="auto", isolate=False)
    try:
        assert loaded.path == twin and loaded.backend.info.model_path == str(twin)
        assert loaded.data == twin.read_bytes() and loaded.info.path == str(twin)
        assert not loaded.info.is_edgetpu_compiled and loaded.info.associated_files == ("imagenet_labels.txt",)
    finally:
        loaded.backend.close()

    reads: list[str] = []
    real_read_bytes = Path.read_bytes

    def counting(self: Path) -> bytes:
        reads.append(self.name)
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FallbackWarning)
        with Classifier(tmp_path / TPU_MODEL, device="auto", isolate=False) as clf:
            assert clf.model_path == twin and len(clf.spec.labels) >= 1000
    assert reads.count(CPU_MODEL) == 1 and reads.count(TPU_MODEL) == 1


def test_the_worker_side_imports_only_the_in_process_loader_and_the_runtime() -> None:
    tree = ast.parse((BACKENDS / "worker.py").read_text(encoding="utf-8"))
    relative = {
        (node.level, node.module or "", alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level
        for alias in node.names
    }
    modules = {module or name for level, module, name in relative if level == 1} | {
        f"..{module or name}" for level, module, name in relative if level == 2
    }
    assert modules == {"base", "local", "quiet", "runtime", "..errors"}


# --- the old import paths, for one release ------------------------------------------------------------
def test_old_import_paths_still_work_with_a_deprecation_warning() -> None:
    from edge_classifier.backends import failover, isolated, local
    from edge_classifier.edgetpu import discovery

    with pytest.warns(DeprecationWarning, match="edgetpu.worker.IsolatedBackend moved to edge_classifier.backends.isolated"):
        from edge_classifier.edgetpu.worker import IsolatedBackend
    assert IsolatedBackend is isolated.IsolatedBackend
    with pytest.warns(DeprecationWarning, match="backends.failover.FailoverBackend"):
        from edge_classifier.edgetpu.failover import FailoverBackend
    assert FailoverBackend is failover.FailoverBackend
    with pytest.warns(DeprecationWarning, match="use edge_classifier.edgetpu.discovery.sysroot"):
        from edge_classifier.backends.edgetpu import sysroot
    assert sysroot is discovery.sysroot
    with pytest.warns(DeprecationWarning, match="moved to edge_classifier.backends.runtime.make_interpreter"):
        from edge_classifier.backends.select import make_interpreter
    assert make_interpreter is runtime.make_interpreter
    with pytest.warns(DeprecationWarning, match="moved to edge_classifier.tflite_file.read_model"):
        from edge_classifier.backends.select import read_model as old_read_model
    assert old_read_model is read_model
    with pytest.warns(DeprecationWarning, match="local.open_local"):
        from edge_classifier.backends.edgetpu import open_in_process
    assert callable(open_in_process) and callable(local.open_local)
    with pytest.raises(ImportError):
        from edge_classifier.edgetpu.worker import no_such_name  # noqa: F401


def test_unpacking_open_backends_answer_is_deprecated(coral: Path) -> None:
    data, info = read_model(coral / CPU_MODEL)
    with pytest.warns(DeprecationWarning, match="open_backend now returns a LoadedModel"):
        backend, path = select.open_backend(data, info, str(coral / CPU_MODEL), device="cpu")
    try:
        assert path == str(coral / CPU_MODEL) and backend.info.device == "cpu"
    finally:
        backend.close()


def test_the_isolated_worker_starts_without_runpy_noise_and_keeps_every_word(coral: Path) -> None:
    """The worker runs as ``-c`` (no runpy warning) and hides nothing: the parent reads its stderr to explain a death."""
    from edge_classifier.backends.isolated import IsolatedBackend, WorkerPlan

    backend = IsolatedBackend.start(WorkerPlan(str(coral / CPU_MODEL), "ai-edge-litert", "cpu", 1))
    try:
        backend.invoke()
    finally:
        backend.close()  # joins the thread that reads the worker's stderr
    tail = "\n".join(backend._stderr_tail)
    assert "RuntimeWarning" not in tail and XNNPACK in tail, textwrap.shorten(tail, 300)

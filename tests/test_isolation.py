"""Worker-process isolation with a worker that runs the real CPU model (the mechanism does not depend on the delegate).

A worker is SIGKILLed mid-stream, as libedgetpu's abort on USB loss would end it: the caller gets
AcceleratorLostError, or on device="auto" keeps answering (same scores) and later gets a new worker;
no zombie process and no /dev/shm segment is left on any path.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from edge_classifier.backends.failover import FailoverBackend
from edge_classifier.backends.isolated import IsolatedBackend, WorkerPlan
from edge_classifier.classifier import Classifier
from edge_classifier.errors import AcceleratorLostError, ModelError

CPU_MODEL = "mobilenet_v1_0.25_128_quant.tflite"
PHOTOS = ("cat.bmp", "parrot.jpg", "grace_hopper.bmp", "bird.bmp")
SHM = Path("/dev/shm")

pytestmark = pytest.mark.timeout(120)


def _segments() -> set[str]:
    return {p.name for p in SHM.iterdir()} if SHM.is_dir() else set()


def _children() -> set[int]:
    # Python's own shared-memory resource tracker lives as long as this process (it unlinks segments a crash leaves).
    return {p.pid for p in psutil.Process().children(recursive=True) if "resource_tracker" not in " ".join(_cmdline(p))}


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


@pytest.fixture(autouse=True)
def no_leaks() -> object:
    """Every test must leave no worker process (zombie or alive) and no shared-memory segment behind."""
    before_shm, before_kids = _segments(), _children()
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (_children() - before_kids or _segments() - before_shm):
        time.sleep(0.05)
    assert _children() - before_kids == set(), "worker processes left behind"
    assert _segments() - before_shm == set(), "shared-memory segments left in /dev/shm"


def _scores(clf: Classifier, coral: Path) -> list[np.ndarray]:
    return [clf.predict(coral / p).scores for p in PHOTOS]


def _reaped(pid: int) -> bool:
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return True
    return proc.status() != psutil.STATUS_ZOMBIE and proc.ppid() != os.getpid()


def test_isolated_answers_like_in_process(coral: Path) -> None:
    with Classifier(coral / CPU_MODEL, device="cpu") as direct, Classifier(coral / CPU_MODEL, device="cpu", isolate=True) as iso:
        assert "isolated in worker pid" in iso.runtime_info.reason
        for a, b in zip(_scores(direct, coral), _scores(iso, coral), strict=True):
            np.testing.assert_array_equal(a, b)


def test_killed_worker_raises_accelerator_lost(coral: Path) -> None:
    clf = Classifier(coral / CPU_MODEL, device="cpu", isolate=True)
    backend = clf._backend
    assert isinstance(backend, IsolatedBackend) and backend.pid is not None
    pid = backend.pid
    try:
        _scores(clf, coral)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(AcceleratorLostError, match="killed by SIGKILL") as info:
            clf.classify(coral / "cat.bmp")
        assert "OOM killer" in info.value.fix
        assert _reaped(pid)
        with pytest.raises(AcceleratorLostError):  # stays lost: no silent answers from a dead worker
            clf.classify(coral / "cat.bmp")
    finally:
        clf.close()


def test_auto_keeps_answering_after_the_worker_dies_and_gets_a_new_one(coral: Path) -> None:
    with Classifier(coral / CPU_MODEL, device="cpu") as direct:
        expected = _scores(direct, coral)
    clf = Classifier(coral / CPU_MODEL, device="auto", isolate=True)
    backend = clf._backend
    assert isinstance(backend, FailoverBackend)
    first = backend.active
    assert isinstance(first, IsolatedBackend) and first.pid is not None
    first_pid = first.pid
    try:
        for a, b in zip(_scores(clf, coral), expected, strict=True):
            np.testing.assert_array_equal(a, b)
        os.kill(first_pid, signal.SIGKILL)
        # The frame in flight when the worker died is answered too, in-process.
        for a, b in zip(_scores(clf, coral), expected, strict=True):
            np.testing.assert_array_equal(a, b)
        assert backend.on_fallback and backend.failovers == 1
        assert "lost" in clf.runtime_info.reason and "killed by SIGKILL" in clf.runtime_info.reason
        assert _reaped(first_pid)
        deadline = time.monotonic() + 30
        while backend.on_fallback and time.monotonic() < deadline:  # retried after the 1 s back-off
            clf.classify(coral / "cat.bmp")
            time.sleep(0.1)
        assert not backend.on_fallback and backend.recoveries == 1
        second = backend.active
        assert isinstance(second, IsolatedBackend) and second.pid not in (None, first_pid)
        for a, b in zip(_scores(clf, coral), expected, strict=True):
            np.testing.assert_array_equal(a, b)
    finally:
        clf.close()


def test_hung_worker_is_killed_and_reported(coral: Path) -> None:
    backend = IsolatedBackend.start(WorkerPlan(str(coral / CPU_MODEL), "ai-edge-litert", "cpu", 1, invoke_timeout=1.0))
    pid = backend.pid
    assert pid is not None
    try:
        backend.invoke()
        os.kill(pid, signal.SIGSTOP)  # alive but silent, like a wedged USB transfer
        with pytest.raises(AcceleratorLostError, match="stopped answering"):
            backend.invoke()
        assert _reaped(pid)
    finally:
        backend.close()


def test_failover_without_a_fallback_raises_lost(coral: Path, tmp_path: Path) -> None:
    plan = WorkerPlan(str(coral / CPU_MODEL), "ai-edge-litert", "cpu", 1)

    def no_twin() -> IsolatedBackend:
        raise ModelError(str(tmp_path / "twin.tflite"), "no such model file", "put it there")

    backend = FailoverBackend(IsolatedBackend.start(plan), lambda: IsolatedBackend.start(plan), no_twin)
    try:
        pid = backend.active.pid  # type: ignore[attr-defined]
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(AcceleratorLostError, match="no CPU fallback: no such model file"):
            backend.invoke()
    finally:
        backend.close()


def test_worker_load_errors_keep_their_class(coral: Path) -> None:
    with pytest.raises(ModelError, match="fake-op-double"):
        Classifier(coral / "model_invoking_error.tflite", device="cpu", isolate=True)


def test_close_is_idempotent_and_releases_everything(coral: Path) -> None:
    clf = Classifier(coral / CPU_MODEL, device="auto", isolate=True)
    clf.classify(coral / "cat.bmp")
    clf.close()
    clf.close()


def test_edgetpu_failover_hands_over_to_the_cpu_twin_and_keeps_retrying(coral: Path) -> None:
    """The Edge TPU worker is stood in for by a worker running the twin on the CPU; hand-over and retry are the real code."""
    from edge_classifier.backends import select as select_policy
    from edge_classifier.backends.runtime import make_interpreter, select_runtime
    from edge_classifier.tflite_file import read_model

    rt, reason, notes = select_runtime()
    primary = IsolatedBackend.start(WorkerPlan(str(coral / CPU_MODEL), rt.name, "cpu", 1))
    tpu_model = str(coral / "mobilenet_v1_0.25_128_quant_edgetpu.tflite")
    backend = select_policy._with_failover(primary, rt, reason, notes, tpu_model, "usb:0", 1)
    assert isinstance(backend, FailoverBackend)
    data, _ = read_model(coral / CPU_MODEL)
    reference = make_interpreter(rt, data, str(coral / CPU_MODEL), 1)
    frame = np.random.default_rng(1).integers(0, 256, size=(128, 128, 3), dtype=np.uint8)
    reference.set_tensor(reference.get_input_details()[0]["index"], frame[None])
    reference.invoke()
    expected = reference.get_tensor(reference.get_output_details()[0]["index"])[0]
    try:
        assert primary.pid is not None
        os.kill(primary.pid, signal.SIGKILL)
        backend.write_input(frame)
        backend.invoke()
        np.testing.assert_array_equal(backend.output(), expected)
        assert backend.on_fallback and backend.info.device == "cpu"
        assert backend.info.model_path == str(coral / CPU_MODEL) and "usb:0" not in backend.info.model_path
        deadline = time.monotonic() + 30
        while backend._delay < 2.0 and time.monotonic() < deadline:  # the retry runs (and fails: no libedgetpu here)
            backend.write_input(frame)
            backend.invoke()
            time.sleep(0.1)
        assert backend._delay == 2.0 and backend.on_fallback  # back-off doubled, still answering on the CPU
        np.testing.assert_array_equal(backend.output(), expected)
    finally:
        backend.close()

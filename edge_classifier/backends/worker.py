"""The worker process's side of isolation, and the plan and wire format both sides share.

The parent (:mod:`.isolated`) starts ``python -c "...worker_main()"`` and sends a :class:`WorkerPlan`
as one JSON line; the worker loads the model with the in-process loader (:func:`.local.open_local`)
and answers with the tensors' shapes. Then each frame is one byte each way (``I`` -> ``D``, or ``E``
and a JSON error) while the pixels and scores sit in one shared memory segment the parent owns.

This module imports only the in-process loader and the runtime (and :mod:`.quiet`, to switch it off:
the parent reads the worker's stderr): the worker never needs the policy that decided to start it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any

import numpy as np

from .. import errors
from ..errors import EdgeClassifierError, InferenceError
from .base import Backend
from .local import open_local
from .quiet import keep_everything
from .runtime import select_runtime

LOAD_TIMEOUT_S = 90.0  # a USB accelerator stuck in its bootloader takes ~25 s to fail
INVOKE_TIMEOUT_S = 10.0

# What the parent runs: ``-c`` rather than ``-m``, so this module is never executed a second time as
# __main__ after the package's own imports have loaded it (runpy warns about that, and two copies would exist).
WORKER_COMMAND = "import sys; from edge_classifier.backends.worker import worker_main; sys.exit(worker_main())"


@dataclass(frozen=True)
class WorkerPlan:
    """What the worker loads.

    Attributes:
        model_path: the model file (the worker reads it itself).
        runtime: the runtime name chosen by the parent.
        device: ``cpu``, ``edgetpu`` or a Coral device string.
        num_threads: CPU threads for the interpreter.
        load_timeout: seconds to wait for the model and delegate to load.
        invoke_timeout: seconds one invoke may take before the worker counts as hung.
    """

    model_path: str
    runtime: str
    device: str
    num_threads: int
    load_timeout: float = LOAD_TIMEOUT_S
    invoke_timeout: float = INVOKE_TIMEOUT_S


# --- the wire format ------------------------------------------------------------------------
def details_to_wire(d: dict[str, Any]) -> dict[str, Any]:
    """A tensor's details (shape, dtype, quantization) as JSON-able values."""
    return {
        "shape": [int(x) for x in d["shape"]],
        "dtype": np.dtype(d["dtype"]).name,
        "quantization": [float(d["quantization"][0]), int(d["quantization"][1])],
    }


def details_from_wire(d: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`details_to_wire`, shaped like the interpreter's own details."""
    return {
        "shape": np.array(d["shape"], dtype=np.int32),
        "dtype": np.dtype(d["dtype"]).type,
        "quantization": tuple(d["quantization"]),
        "index": 0,
    }


def error_to_wire(exc: EdgeClassifierError) -> dict[str, str]:
    """An error as JSON-able fields, so the parent can raise the same class."""
    return {"class": type(exc).__name__, "thing": exc.thing, "cause": exc.cause, "fix": exc.fix}


def error_from_wire(d: dict[str, str]) -> EdgeClassifierError:
    """The error the worker reported, as its own class (InferenceError when the class is unknown)."""
    cls = getattr(errors, d.get("class", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, EdgeClassifierError)):
        cls = InferenceError
    return cls(d.get("thing", "worker"), d.get("cause", "failed"), d.get("fix", ""))


# --- the worker process ----------------------------------------------------------------------
def _load(plan: WorkerPlan) -> Backend:
    rt, _, notes = select_runtime(plan.runtime)
    return open_local(rt, plan.model_path, device=plan.device, num_threads=plan.num_threads, notes=notes)


def _attach(name: str) -> shared_memory.SharedMemory:
    # The parent owns the segment. Python < 3.13 registers every attach with a resource tracker
    # that would unlink the parent's segment when this process exits, so tracking is skipped here.
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name=name, track=False)  # type: ignore[call-arg]
    from multiprocessing import resource_tracker

    register = resource_tracker.register
    resource_tracker.register = lambda *_a, **_k: None
    try:
        return shared_memory.SharedMemory(name=name)
    finally:
        resource_tracker.register = register


def worker_main() -> int:
    """Entry point of the worker process (see :data:`WORKER_COMMAND`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The parent reads this stderr (to explain a death while loading, too): nothing is hidden or held back here.
    keep_everything()
    # Keep the protocol channel private: anything a library prints to stdout goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    inp = os.fdopen(0, "rb", buffering=0)

    def send_json(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj).encode() + b"\n")

    def read_line() -> bytes:
        buf = b""
        while not buf.endswith(b"\n"):
            c = inp.read(1)
            if not c:
                return b""
            buf += c
        return buf

    raw = read_line()
    if not raw:
        return 0
    plan = WorkerPlan(**json.loads(raw))
    try:
        backend = _load(plan)
    except EdgeClassifierError as exc:
        send_json({"ok": False, "error": error_to_wire(exc)})
        return 0
    info = backend.info
    send_json(
        {
            "ok": True,
            "input": details_to_wire(backend.input_details),
            "output": details_to_wire(backend.output_details),
            "info": {
                "runtime": info.runtime,
                "version": info.version,
                "device": info.device,
                "reason": info.reason,
                "num_threads": info.num_threads,
            },
        }
    )
    raw = read_line()
    if not raw:
        return 0
    setup = json.loads(raw)
    shm = _attach(setup["shm"])
    in_arr = np.ndarray(tuple(backend.input_shape), np.dtype(backend.input_dtype), buffer=shm.buf, offset=0)
    out_shape = tuple(int(x) for x in backend.output_details["shape"])
    out_arr = np.ndarray(out_shape, np.dtype(backend.output_details["dtype"]), buffer=shm.buf, offset=int(setup["out_offset"]))
    send_json({"ok": True})
    try:
        while True:
            cmd = inp.read(1)
            if not cmd or cmd == b"Q":
                break
            backend.write_input(in_arr[0])
            try:
                backend.invoke()
            except EdgeClassifierError as exc:
                out.write(b"E" + json.dumps(error_to_wire(exc)).encode() + b"\n")
                continue
            out_arr[0] = backend.output()
            out.write(b"D")
    finally:
        del in_arr, out_arr
        shm.close()
        backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())

"""The Backend: one loaded model on one runtime, with zero-copy access to its input tensor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InferenceError, ModelError


@dataclass(frozen=True)
class BackendInfo:
    """Which runtime (and accelerator) runs the model, and why it was chosen.

    Attributes:
        runtime: ``ai-edge-litert``, ``tflite-runtime`` or ``tensorflow``.
        version: the runtime package's version.
        device: ``cpu``, or the Edge TPU device string (``usb:0``, ``pci:0``).
        reason: one sentence saying why this runtime and device were chosen.
        num_threads: CPU threads given to the interpreter.
        model_path: the model file actually loaded (the CPU twin after a fallback).
        notes: what was tried and skipped on the way.
    """

    runtime: str
    version: str
    device: str
    reason: str
    num_threads: int
    model_path: str
    notes: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return f"{self.runtime} {self.version} on {self.device} ({self.num_threads} threads): {self.reason}"


class Backend:
    """A TFLite interpreter holding one model, ready to invoke.

    Works with any of the runtimes' ``Interpreter`` classes, which share one API.

    Args:
        interpreter: an allocated interpreter.
        info: how it was chosen.
    """

    def __init__(self, interpreter: Any, info: BackendInfo) -> None:
        self._interpreter = interpreter
        self.info = info
        inputs = interpreter.get_input_details()
        outputs = interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(
                info.model_path,
                f"is not an image classifier: it has {len(inputs)} inputs and {len(outputs)} outputs",
                "use a classifier with one image input and one score output",
            )
        self.input_details: dict[str, Any] = inputs[0]
        self.output_details: dict[str, Any] = outputs[0]
        self._input_index = int(inputs[0]["index"])
        self._output_index = int(outputs[0]["index"])
        # tensor() returns a callable that yields a fresh view each time; holding a view across
        # invoke() is refused by the runtime, so views are taken per call and dropped.
        self._input_view = interpreter.tensor(self._input_index)
        self._output_view = interpreter.tensor(self._output_index)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of the input tensor, batch included."""
        return tuple(int(x) for x in self.input_details["shape"])

    @property
    def input_dtype(self) -> str:
        """numpy name of the input tensor's dtype."""
        return str(np.dtype(self.input_details["dtype"]).name)

    @property
    def input_quantization(self) -> tuple[float, int]:
        """(scale, zero point) of the input tensor; (0.0, 0) for float."""
        scale, zp = self.input_details["quantization"]
        return float(scale), int(zp)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of the output tensor."""
        return tuple(int(x) for x in self.output_details["shape"])

    @property
    def output_quantization(self) -> tuple[float, int]:
        """(scale, zero point) of the output tensor; (0.0, 0) for float."""
        scale, zp = self.output_details["quantization"]
        return float(scale), int(zp)

    def write_input(self, values: np.ndarray) -> None:
        """Copy one image (HxWx3, the input dtype) into the interpreter's own input buffer."""
        np.copyto(self._input_view()[0], values)

    def input_buffer(self) -> np.ndarray:
        """A view of the input tensor's first batch item; drop it before :meth:`invoke`."""
        return self._input_view()[0]  # type: ignore[no-any-return]

    def invoke(self) -> None:
        """Run the model once on the current input.

        Raises:
            InferenceError: the runtime failed while running the model.
        """
        try:
            self._interpreter.invoke()
        except RuntimeError as exc:
            raise InferenceError(
                self.info.model_path,
                f"the interpreter failed while running the model ({str(exc).strip()})",
                "check that the model runs with this runtime version; re-convert it if it is corrupt",
            ) from exc

    def output(self) -> np.ndarray:
        """A copy of the raw output vector (its own dtype)."""
        return np.array(self._output_view()[0], copy=True)

    def close(self) -> None:
        """Release the interpreter (and any delegate it holds)."""
        self._interpreter = None
        self._input_view = None
        self._output_view = None

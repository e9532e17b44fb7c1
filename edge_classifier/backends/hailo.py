"""Load a ``.hef`` on a Hailo accelerator in this process, behind the same interface as :class:`~.base.Backend`.

The calls follow picamera2's ``devices/hailo/hailo.py`` (the ``Hailo`` class Raspberry Pi ships) and HailoRT's
InferModel API (``hailo_platform.pyhailort``): ``VDevice.create_params()`` with the round-robin scheduler, ``VDevice``,
``create_infer_model(hef)``, ``set_batch_size(1)``, the input as ``FormatType.UINT8`` and the output as
``FormatType.FLOAT32`` (HailoRT dequantizes it, as picamera2's default ``output_type='FLOAT32'`` asks),
``configure()``, ``create_bindings`` with our own buffers, then ``run([bindings], timeout_ms)`` per frame.

A HEF takes raw RGB pixels: Hailo's compiler folds the normalisation into the network, so the input is uint8 with
quantization (1.0, 0) and :class:`~edge_classifier.classifier.Classifier` writes pixels straight into the input
buffer. No policy here: :mod:`.select` decides when the Hailo runs and what happens when it cannot.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeClassifierError, InferenceError, ModelError
from ..hailo.diagnose import Snapshot, diagnose_open_failure, model_mismatch, preflight, status_of
from ..hailo.discovery import HailoDevice, parse_device
from ..hailo.hef import CHIP_NAMES, HAILO10H, check_hef, fits
from ..hailo.runtime import identify, import_binding
from ..sysfacts import Identity, sysroot
from .base import Backend, BackendInfo

log = logging.getLogger(__name__)

#: How long one inference may take before HailoRT gives up (picamera2 waits 10 s for the async queue).
RUN_TIMEOUT_MS = 10_000


class HailoBackend(Backend):
    """A HEF configured on a Hailo device, ready to run: a :class:`~.base.Backend` without a TFLite interpreter.

    Created by :func:`open_hailo`. Every member of Backend is overridden (its constructor, which takes an
    interpreter, is not called), so the Classifier drives it as it drives a TFLite one. The input buffer is the one
    bound to HailoRT, so writing a frame into :meth:`input_buffer` is the whole hand-over.
    """

    def __init__(  # noqa: PLW0231 - Backend.__init__ wraps a TFLite interpreter; there is none here
        self, vdevice: Any, configured: Any, bindings: Any, inputs: np.ndarray, outputs: np.ndarray, info: BackendInfo
    ) -> None:
        self._vdevice = vdevice
        self._configured = configured
        self._bindings = bindings
        self._in = inputs
        self._out = outputs
        self.info = info

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of the input, batch included: ``(1, height, width, 3)``."""
        return (1, *self._in.shape)

    @property
    def input_dtype(self) -> str:
        """``uint8``: raw pixels."""
        return str(self._in.dtype.name)

    @property
    def input_quantization(self) -> tuple[float, int]:
        """(1.0, 0): the pixels themselves are the input (normalisation is inside the HEF)."""
        return 1.0, 0

    @property
    def output_shape(self) -> tuple[int, ...]:
        """``(1, num_outputs)``."""
        return (1, int(self._out.size))

    @property
    def output_quantization(self) -> tuple[float, int]:
        """(0.0, 0): HailoRT hands over float32 scores, already dequantized."""
        return 0.0, 0

    def write_input(self, values: np.ndarray) -> None:
        """Copy one image (HxWx3 uint8) into the buffer bound to HailoRT."""
        np.copyto(self._in, values)

    def input_buffer(self) -> np.ndarray:
        """The buffer bound to HailoRT's input (HxWx3 uint8)."""
        return self._in

    def invoke(self) -> None:
        """Run the HEF once on the input buffer.

        Raises:
            InferenceError: HailoRT failed or timed out (the message names its status).
        """
        if self._configured is None:
            raise InferenceError(self.info.model_path, "the Hailo backend is closed", "create a new Classifier")
        try:
            self._configured.run([self._bindings], RUN_TIMEOUT_MS)
        except Exception as exc:  # noqa: BLE001 - HailoRT raises its own classes, none of them ours
            status = status_of(exc) or type(exc).__name__
            raise InferenceError(
                self.info.model_path,
                f"HailoRT failed while running it on {self.info.device} ({status}: {str(exc).strip()})",
                "a timeout or a closed channel means the device stopped answering: check the HAT's seating and power, "
                "`dmesg | grep -i hailo`, then restart; PCIe errors on a Pi 5 often go away with dtparam=pciex1_gen=2",
            ) from exc

    def output(self) -> np.ndarray:
        """A copy of the scores (float32, one per output)."""
        return np.array(self._out, dtype=np.float32, copy=True).reshape(-1)

    def close(self) -> None:
        """Release the configured model and the VDevice (as picamera2's ``Hailo.close`` does). Safe to call twice."""
        configured, self._configured = self._configured, None
        vdevice, self._vdevice = self._vdevice, None
        self._bindings = None
        if configured is not None:
            shutdown = getattr(configured, "shutdown", None)
            if shutdown is not None:
                try:
                    shutdown()
                except Exception as exc:  # noqa: BLE001 - closing must go on
                    log.debug("Hailo shutdown failed: %s", exc)
        if vdevice is not None:
            try:
                vdevice.release()
            except Exception as exc:  # noqa: BLE001 - closing must go on
                log.debug("VDevice.release failed: %s", exc)


def open_hailo(
    model_path: str | Path,
    *,
    device: str = "hailo",
    hef_chip: str | None = None,
    reason: str = "",
    notes: tuple[str, ...] = (),
    root: str | None = None,
    identity: Identity | None = None,
) -> HailoBackend:
    """Configure ``model_path`` on a Hailo device in this process.

    Args:
        model_path: the ``.hef``.
        device: ``hailo`` (the first) or ``hailo:N``.
        hef_chip: the chip the HEF was compiled for, when known (its name or sidecar).
        reason: why the Hailo was chosen, for :attr:`BackendInfo.reason`.
        notes: what was tried and skipped on the way.
        root: where /sys, /dev and dpkg's status are probed (default :func:`~edge_classifier.sysfacts.sysroot`).
        identity: whose permissions to check the node against (tests).

    Raises:
        ModelError: not a readable HEF, not a classifier, or corrupt for HailoRT.
        HailoError: the child class that names why the device cannot be used.
        SystemPackageHiddenError: ``hailo_platform`` is installed by apt but this venv hides it.
    """
    path = str(model_path)
    check_hef(path)
    root = root or sysroot()
    index = parse_device(device)
    index = None if index == -1 else index
    snapshot = Snapshot.take(root, identity)
    problem = preflight(snapshot, device, index)
    if problem is not None:
        raise problem
    hp = import_binding(root)
    dev = _pick(snapshot.devices, index)
    device_chip = identify().arch or (HAILO10H if dev.family == HAILO10H else None)
    mismatch = model_mismatch(path, hef_chip, device_chip)
    if mismatch is not None:
        raise mismatch
    _, slower = fits(hef_chip, device_chip)
    if slower:
        log.warning("%s: %s", path, slower)
        notes = (*notes, slower)
    vdevice = None
    try:
        if index is not None:
            # pyhailort's VDevice takes params *or* device_ids ("Excludes 'params'"): one device, by its PCIe id.
            vdevice = hp.VDevice(device_ids=[dev.pci])
        else:
            params = hp.VDevice.create_params()
            params.scheduling_algorithm = hp.HailoSchedulingAlgorithm.ROUND_ROBIN
            vdevice = hp.VDevice(params)
        infer_model = vdevice.create_infer_model(path)
        _check_classifier(infer_model, path)
        infer_model.set_batch_size(1)
        infer_model.input().set_format_type(hp.FormatType.UINT8)
        infer_model.output().set_format_type(hp.FormatType.FLOAT32)
        configured = infer_model.configure()
        inputs = np.zeros(tuple(int(d) for d in infer_model.input().shape), dtype=np.uint8)
        outputs = np.zeros(tuple(int(d) for d in infer_model.output().shape), dtype=np.float32)
        bindings = configured.create_bindings(output_buffers={infer_model.output_names[0]: outputs})
        bindings.input().set_buffer(inputs)
    except EdgeClassifierError:
        _release(vdevice)
        raise
    except Exception as exc:  # noqa: BLE001 - HailoRT's classes are mapped to ours by their status
        _release(vdevice)
        raise diagnose_open_failure(exc, path, snapshot, device, device_chip) from exc
    if inputs.ndim != 3 or inputs.shape[-1] != 3:
        _release(vdevice)
        raise ModelError(path, f"is not an image classifier: its input is {list(inputs.shape)}, expected [height, width, 3]",
                         "use a Hailo classification HEF with one RGB input")  # fmt: skip
    chip = CHIP_NAMES.get(device_chip or "", "Hailo")
    where = f"{chip} {dev.node}"
    version = snapshot.library_version or "?"
    why = f"{where} via HailoRT {version}" + (f"; {reason}" if reason else "")
    return HailoBackend(
        vdevice, configured, bindings, inputs, outputs, BackendInfo("hailort", version, dev.device_string, why, 1, path, notes)
    )


def _pick(devices: tuple[HailoDevice, ...], index: int | None) -> HailoDevice:
    if index is None:
        return devices[0]
    return next(d for d in devices if d.index == index)


def _check_classifier(infer_model: Any, path: str) -> None:
    ins, outs = list(infer_model.input_names), list(infer_model.output_names)
    if len(ins) != 1 or len(outs) != 1:
        raise ModelError(
            path,
            f"is not an image classifier: it has {len(ins)} inputs and {len(outs)} outputs",
            "use a classification HEF (one image in, one score vector out); detection HEFs are not supported",
        )


def _release(vdevice: Any) -> None:
    if vdevice is None:
        return
    try:
        vdevice.release()
    except Exception as exc:  # noqa: BLE001 - the original error is the one to report
        log.debug("VDevice.release failed: %s", exc)

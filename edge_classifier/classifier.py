"""Classifier: preprocess -> backend -> postprocess for one model, as a context manager."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .backends.base import Backend, BackendInfo
from .backends.select import open_backend, read_model
from .errors import ModelError
from .postprocess import Classification, class_scores, classes_from_scores
from .preprocess import RESAMPLE_MODES, ImageInput, fit_to_input, letterbox_pad_value, load_image, quantize_pixels, resample_for
from .spec import ModelSpec, SpecOverrides, build_spec
from .tflite_file import ModelFileInfo, ends_in_softmax

if TYPE_CHECKING:
    from .results import Result

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """The full answer for one image.

    Attributes:
        classes: the top-k classes, best first.
        scores: probabilities for every class id (float32, background removed).
        timings: seconds spent per stage: ``preprocess``, ``inference``, ``postprocess``.
    """

    classes: list[Classification]
    scores: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def top(self) -> Classification | None:
        """The best class, or None when nothing passed the score threshold."""
        return self.classes[0] if self.classes else None


def default_model_path() -> Path:
    """The INT8 model bundled with the package (used when no model is given).

    Raises:
        ModelError: the bundled model is missing from this installation.
    """
    from importlib import resources

    try:
        root = resources.files("edge_classifier.models")
        for name in ("efficientnet_lite0_int8.tflite",):
            candidate = root / name
            if candidate.is_file():
                return Path(str(candidate))
    except ModuleNotFoundError:
        pass
    raise ModelError(
        "default model",
        "no model is bundled with this installation",
        "pass --model PATH (any ImageNet INT8 .tflite), or reinstall edge-classifier from a full clone",
    )


class Classifier:
    """Classify images with a TFLite ImageNet classifier on the fastest available hardware.

    Args:
        model: path of a ``.tflite`` file; None takes the bundled default model.
        labels: a labels file or a list of labels, overriding those embedded in the model.
        backend: ``auto`` (default) or a runtime name to force: ``ai-edge-litert``,
            ``tflite-runtime``, ``tensorflow``.
        device: ``auto`` (Edge TPU when the model is compiled for it and one is usable, else the
            CPU), ``cpu``, ``edgetpu``, or a Coral device string such as ``usb:0`` or ``pci:0``.
        num_threads: CPU threads for the interpreter; default all cores this process may use.
        top_k: how many classes :meth:`classify` returns.
        min_score: drop classes scoring below this.
        overrides: spec fields to override (mean, std, resize, color_order, label_offset, ...).
        resample: ``auto`` (Lanczos for files and PIL images, the fast box cascade for numpy
            frames), ``fast`` or ``exact``; see :mod:`edge_classifier.preprocess`.
        isolate: run the interpreter in a worker process, so that an accelerator lost mid-run raises
            AcceleratorLostError (or, on ``device="auto"``, hands over to the CPU) instead of aborting
            this process; None: on for the Edge TPU, off for the CPU.

    Raises:
        ModelError: missing, corrupt or non-classifier model; labels that do not fit.
        BackendUnavailableError: no TFLite runtime, or the forced one is missing.
        EdgeTpuError: the Edge TPU was required and cannot be used.

    Example:
        >>> with Classifier("mobilenet_v2_1.0_224_quant.tflite") as clf:
        ...     for c in clf.classify("cat.jpg"):
        ...         print(c.id, c.label, c.score)
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        labels: str | Path | Sequence[str] | None = None,
        backend: str | None = None,
        device: str = "auto",
        num_threads: int | None = None,
        top_k: int = 5,
        min_score: float = 0.0,
        overrides: SpecOverrides | None = None,
        resample: str = "auto",
        isolate: bool | None = None,
    ) -> None:
        if resample not in RESAMPLE_MODES:
            from .errors import SpecError

            raise SpecError(f"resample={resample!r}", "is not a resampling mode", f"use one of {', '.join(RESAMPLE_MODES)}")
        self.resample = resample
        path = Path(model) if model is not None else default_model_path()
        data, info = read_model(path)
        _check_is_classifier(info, str(path))
        self.model_info: ModelFileInfo = info
        self.top_k = top_k
        self.min_score = min_score
        self._backend: Backend | None = None
        backend_obj, used_path = open_backend(data, info, str(path), runtime=backend, device=device, num_threads=num_threads, isolate=isolate)
        self._backend = backend_obj
        self.model_path = Path(used_path)
        if used_path != str(path):
            # A CPU twin was loaded: its own file holds the labels and spec that go with it.
            from .tflite_file import read_model_info

            info = read_model_info(used_path)
        ov = overrides or SpecOverrides()
        if labels is not None:
            ov = SpecOverrides(**{**ov.__dict__, "labels": labels})
        self.spec: ModelSpec = build_spec(
            input_shape=backend_obj.input_shape,
            input_dtype=backend_obj.input_dtype,
            input_quant=backend_obj.input_quantization,
            output_shape=backend_obj.output_shape,
            associated_files=_associated(info, data if used_path == str(path) else None, used_path),
            model_name=str(path),
            overrides=ov,
            output_is_softmax=ends_in_softmax(info),
        )
        self._out_scale, self._out_zp = backend_obj.output_quantization
        self._pad = letterbox_pad_value(self.spec)
        log.info("model %s: %s", path, self.spec.describe())
        log.info("backend: %s", backend_obj.info)

    # --- introspection -----------------------------------------------------------------
    @property
    def backend(self) -> BackendInfo:
        """Which runtime and device run the model, and why."""
        return self._require().info

    def _require(self) -> Backend:
        if self._backend is None:
            raise ModelError(str(self.model_path), "the classifier is closed", "create a new Classifier")
        return self._backend

    # --- inference ---------------------------------------------------------------------
    def predict_rgb(self, rgb: np.ndarray, *, resample: str | None = None) -> Prediction:
        """Classify an RGB uint8 frame (HxWx3) that is already decoded; the per-frame hot path.

        Args:
            rgb: the frame.
            resample: ``fast`` or ``exact``; default the classifier's (``auto`` means ``fast`` here).
        """
        backend = self._require()
        t0 = time.perf_counter()
        mode = resample or self.resample
        fitted = fit_to_input(rgb, self.spec.input_size, self.spec.resize, self._pad, "fast" if mode == "auto" else mode)
        quantize_pixels(fitted, self.spec, out=backend.input_buffer())
        t1 = time.perf_counter()
        backend.invoke()
        t2 = time.perf_counter()
        scores = class_scores(backend.output(), self.spec, self._out_scale, self._out_zp)
        classes = classes_from_scores(scores, self.spec, self.top_k, self.min_score)
        t3 = time.perf_counter()
        return Prediction(classes, scores, {"preprocess": t1 - t0, "inference": t2 - t1, "postprocess": t3 - t2})

    def invoke(self) -> None:
        """Run the interpreter once on whatever input it holds: the model's own cost, for timing."""
        self._require().invoke()

    def predict(self, image: ImageInput, *, bgr: bool = False) -> Prediction:
        """Classify one image (path, numpy array, or PIL image) and return the full prediction.

        Raises:
            ImageError: the image is missing, unreadable, or empty.
        """
        t0 = time.perf_counter()
        rgb = load_image(image, bgr=bgr)
        pred = self.predict_rgb(rgb, resample=resample_for(image, self.resample))
        pred.timings["decode"] = time.perf_counter() - t0 - sum(pred.timings.values())
        return pred

    def classify(self, image: ImageInput, *, bgr: bool = False, top_k: int | None = None) -> list[Classification]:
        """The top classes of one image, best first.

        Args:
            image: a file path, a numpy array (RGB; BGR with ``bgr=True``), or a PIL image.
            bgr: the numpy array is in OpenCV's BGR order.
            top_k: overrides the classifier's ``top_k`` for this call.

        Raises:
            ImageError: the image is missing, unreadable, or empty.
        """
        pred = self.predict(image, bgr=bgr)
        if top_k is None or top_k == self.top_k:
            return pred.classes
        return classes_from_scores(pred.scores, self.spec, top_k, self.min_score)

    def stream(self, source: Any, **options: Any) -> Iterator[Result]:
        """Classify frames from a source as they come (see :func:`edge_classifier.pipeline.stream`).

        Args:
            source: a Source (see :mod:`edge_classifier.sources`) or anything ``sources.open`` accepts.
            **options: passed to :func:`edge_classifier.pipeline.stream` (smoothing, max_frames, ...).
        """
        from .pipeline import stream

        return stream(self, source, **options)

    # --- lifetime ----------------------------------------------------------------------
    def close(self) -> None:
        """Release the interpreter and any accelerator. Safe to call twice."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def __enter__(self) -> Classifier:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = str(self._backend.info) if self._backend else "closed"
        return f"Classifier({str(self.model_path)!r}, {state})"


def _check_is_classifier(info: ModelFileInfo, name: str) -> None:
    """Refuse detection, segmentation and pose models before an interpreter is built for them."""
    sg = info.main
    if len(sg.inputs) != 1 or len(sg.outputs) != 1:
        raise ModelError(
            name,
            f"is not an image classifier: it has {len(sg.inputs)} inputs and {len(sg.outputs)} outputs",
            "use a classifier with one image input and one score output (detection, pose and segmentation models are not supported)",
        )


def _associated(info: ModelFileInfo, data: bytes | None, path: str) -> dict[str, bytes]:
    from .tflite_file import read_associated_files

    if data is None:
        data = Path(path).read_bytes()
    return read_associated_files(data) if info.associated_files else {}

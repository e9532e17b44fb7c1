"""Classifier: preprocess -> backend -> postprocess for one model, as a context manager."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .backends.base import Backend, BackendInfo
from .backends.select import open_backend, read_any_model
from .errors import ConfigError, EdgeClassifierError, ImageError, ModelError, SpecError
from .loop_options import LoopOptions
from .options import validate_model_options
from .postprocess import class_scores, classes_from_scores
from .preprocess import RESAMPLE_MODES, ImageInput, fit_to_input, letterbox_pad_value, load_image, quantize_pixels, resample_for
from .regions import Region
from .results import Classification, Prediction, Result
from .spec import ModelSpec, SpecOverrides, build_spec
from .tflite_file import ModelFileInfo, ends_in_softmax

# Prediction lives in edge_classifier.results with the other result types; importing it from here still works.
__all__ = ["Classifier", "Prediction", "default_model_path", "register_stream"]

log = logging.getLogger(__name__)

# Classifier.stream is a convenience over edge_classifier.loop.stream. The loop sits a layer above this module
# (it needs the sources and the smoother) and layers import only downward, so the loop plugs its function in
# here when it is imported (the package __init__ imports it); this module never imports the loop.
StreamFunction = Callable[["Classifier", Any, LoopOptions], Iterator[Result]]
_stream_function: StreamFunction | None = None


def register_stream(fn: StreamFunction) -> None:
    """Install the frame loop behind :meth:`Classifier.stream`; called once, by :mod:`edge_classifier.loop`."""
    global _stream_function
    _stream_function = fn


def _deprecated(old: str, new: str, stacklevel: int = 3) -> None:
    """Warn that ``old`` is going; ``stacklevel`` 3 names the caller of the method that calls this."""
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release: use {new}", DeprecationWarning, stacklevel=stacklevel
    )


def _runtime_choice(runtime: str | None, backend: str | None) -> str | None:
    """``runtime=``, or the deprecated ``backend=`` spelling of it (both at once is an error)."""
    if backend is None:
        return runtime
    if runtime is not None:
        raise ConfigError(
            f"Classifier(runtime={runtime!r}, backend={backend!r})",
            "both name the runtime (backend= is the deprecated spelling of runtime=)",
            "pass runtime= only",
        )
    _deprecated("Classifier(backend=...)", "Classifier(runtime=...)", stacklevel=4)
    return backend


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
        runtime: ``auto`` (default) or a TFLite runtime to force: ``ai-edge-litert``,
            ``tflite-runtime``, ``tensorflow``. :attr:`runtime_info` says which one runs, and why.
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
        backend: deprecated spelling of ``runtime`` (a DeprecationWarning; both at once is a ConfigError).

    Raises:
        ModelError: missing, corrupt or non-classifier model; labels that do not fit.
        ConfigError: ``runtime`` and ``backend`` both given.
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
        runtime: str | None = None,
        device: str = "auto",
        num_threads: int | None = None,
        top_k: int = 5,
        min_score: float = 0.0,
        overrides: SpecOverrides | None = None,
        resample: str = "auto",
        isolate: bool | None = None,
        backend: str | None = None,
    ) -> None:
        _check_resample(resample)
        # The runtime's name stays in `backend` for the loading code below, which still calls it that.
        backend = _runtime_choice(runtime, backend)
        # One rule for the API, the CLI and config files: a wrong type or value is named here, not deep in the runtime.
        validate_model_options(
            model=model, labels=labels, runtime=backend, device=device, num_threads=num_threads, top_k=top_k,
            min_score=min_score, overrides=overrides, isolate=isolate,
        )  # fmt: skip
        self.resample = resample
        path = Path(model) if model is not None else default_model_path()
        data, info = read_any_model(path)  # a .tflite, or a Hailo .hef with its sidecar (backends.select)
        _check_is_classifier(info, str(path))
        self.model_info: ModelFileInfo = info
        self.top_k = top_k
        self.min_score = min_score
        self._backend: Backend | None = None
        loaded = open_backend(data, info, str(path), runtime=backend, device=device, num_threads=num_threads, isolate=isolate)
        backend_obj = self._backend = loaded.backend
        self.model_path = loaded.path
        # After a fallback the CPU twin runs: its own file (already parsed) holds the labels and spec that go with it.
        data, info, used_path = loaded.data, loaded.info, str(loaded.path)
        ov = overrides or SpecOverrides()
        if labels is not None:
            ov = SpecOverrides(**{**ov.__dict__, "labels": labels})
        self.spec: ModelSpec = build_spec(
            input_shape=backend_obj.input_shape,
            input_dtype=backend_obj.input_dtype,
            input_quant=backend_obj.input_quantization,
            output_shape=backend_obj.output_shape,
            associated_files=_associated(info, data, used_path),
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
    def runtime_info(self) -> BackendInfo:
        """Which runtime and device run the model, and why (``.runtime``, ``.device``, ``.reason``, ...).

        Raises:
            ModelError: the classifier is closed.
        """
        return self._require().info

    @property
    def backend(self) -> BackendInfo:
        """Deprecated name of :attr:`runtime_info`."""
        _deprecated("Classifier.backend", "Classifier.runtime_info")
        return self.runtime_info

    def _require(self) -> Backend:
        if self._backend is None:
            raise ModelError(str(self.model_path), "the classifier is closed", "create a new Classifier")
        return self._backend

    # --- inference ---------------------------------------------------------------------
    def predict(self, image: ImageInput, *, bgr: bool = False, resample: str | None = None) -> Prediction:
        """Classify one image and return the full prediction; the per-frame hot path for arrays.

        Args:
            image: a file path, a numpy array (RGB; BGR with ``bgr=True``), or a PIL image. An RGB uint8
                frame (HxWx3) is used as it is, without a copy.
            bgr: the numpy array is in OpenCV's BGR order.
            resample: ``auto``, ``fast`` or ``exact``; default the classifier's (``auto`` is ``fast`` for
                arrays, ``exact`` for files and PIL images).

        Returns:
            The top-k classes, every class's score, and the seconds per stage (``decode`` for a file or a
            PIL image, ``preprocess``, ``inference``, ``postprocess``).

        Raises:
            ImageError: the image is missing, unreadable, or empty.
            SpecError: ``resample`` is not a resampling mode.
            ModelError: the classifier is closed.
        """
        mode = self.resample if resample is None else _check_resample(resample)
        t0 = time.perf_counter()
        rgb = load_image(image, bgr=bgr)
        if isinstance(image, np.ndarray):
            # An array needs no decoding; checking (or converting) it is part of preprocessing.
            return self._predict_rgb(rgb, resample_for(image, mode), t0)
        t1 = time.perf_counter()
        pred = self._predict_rgb(rgb, resample_for(image, mode), t1)
        pred.timings["decode"] = t1 - t0
        return pred

    def predict_framed(self, pixels: np.ndarray) -> Prediction:
        """Classify pixels already framed for this model, as :mod:`edge_classifier.prefetch` prepares them ahead.

        Args:
            pixels: :func:`~edge_classifier.preprocess.fit_to_spec`'s output for this classifier's spec: RGB uint8
                of the input size (height, width, 3). It is quantized and run as it is, not framed again.

        Raises:
            ImageError: ``pixels`` is not RGB uint8 of the model's input size.
            ModelError: the classifier is closed.
        """
        h, w = self.spec.input_size
        if not isinstance(pixels, np.ndarray) or pixels.shape != (h, w, 3) or pixels.dtype != np.uint8:
            got = f"{getattr(pixels, 'shape', type(pixels).__name__)} {getattr(pixels, 'dtype', '')}".strip()
            raise ImageError(
                "framed pixels",
                f"are {got}, not this model's input ({h}x{w}x3 uint8)",
                "pass fit_to_spec(rgb, classifier.spec), or call predict() with the image",
            )
        return self._predict_rgb(pixels, "fast", time.perf_counter(), framed=True)

    def _predict_rgb(self, rgb: np.ndarray, mode: str, t0: float, framed: bool = False) -> Prediction:
        backend = self._require()
        fitted = (
            rgb
            if framed
            else fit_to_input(
                rgb,
                self.spec.input_size,
                self.spec.resize,
                self._pad,
                "fast" if mode == "auto" else mode,
                self.spec.crop_fraction,
            )
        )
        quantize_pixels(fitted, self.spec, out=backend.input_buffer())
        t1 = time.perf_counter()
        backend.invoke()
        t2 = time.perf_counter()
        scores = class_scores(backend.output(), self.spec, self._out_scale, self._out_zp)
        classes = classes_from_scores(scores, self.spec, self.top_k, self.min_score)
        t3 = time.perf_counter()
        return Prediction(classes, scores, {"preprocess": t1 - t0, "inference": t2 - t1, "postprocess": t3 - t2})

    def predict_rgb(self, rgb: np.ndarray, *, resample: str | None = None) -> Prediction:
        """Deprecated: :meth:`predict` takes arrays and gives the same answer."""
        _deprecated("Classifier.predict_rgb(frame)", "Classifier.predict(frame)")
        return self.predict(rgb, resample=resample)

    def _invoke(self) -> None:
        """Run the interpreter once on whatever input it holds: the model's own cost, for benchmarks."""
        self._require().invoke()

    def invoke(self) -> None:
        """Deprecated: a benchmark hook that leaves the public API (benchmarks call ``_invoke``)."""
        _deprecated("Classifier.invoke()", "Classifier.predict(), or edge-classifier bench for timings")
        self._invoke()

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

    def stream(
        self,
        source: Any,
        options: LoopOptions | None = None,
        *,
        smoothing: float | None = None,
        hysteresis: int | None = None,
        max_frames: int | None = None,
        min_score: float | None = None,
        stall_timeout: float | None = None,
        source_options: Mapping[str, Any] | None = None,
        regions: Sequence[Region] | None = None,
        every: float | None = None,
        motion: bool | None = None,
        motion_threshold: int | None = None,
        motion_min_area: float | None = None,
    ) -> Iterator[Result]:
        """Classify frames from a source as they come: :func:`edge_classifier.loop.stream` on this classifier.

        Args:
            source: a Source (see :mod:`edge_classifier.sources`) or anything ``sources.open`` accepts: a
                video file, a camera index, a URL, an image folder, ``"picamera"``.
            options: the loop's options; the keywords below override single fields of it.
            smoothing: EMA weight kept from past frames, in [0, 1) (see :class:`LoopOptions`).
            hysteresis: frames a new top label must lead before ``Result.event`` announces it.
            max_frames: stop after this many classified frames.
            min_score: threshold for smoothed labels and events (default: the classifier's).
            stall_timeout: seconds without any frame before CameraTimeoutError.
            source_options: keyword arguments for ``sources.open``.
            regions: :class:`~edge_classifier.regions.Region` boxes classified on their own (``Result.regions``).
            every: classify at most once per this many seconds of the stream.
            motion: classify only while something moves (per region), plus a slow periodic check.
            motion_threshold: grey levels a pixel must change by to count as moving (1..255).
            motion_min_area: share of the frame or region that must move, in (0, 1].

        Yields:
            One :class:`~edge_classifier.results.Result` per classified frame; closing the iterator (or
            leaving a ``for`` loop) releases the source.

        Raises:
            ConfigError: an option out of range.
            SourceError: the source cannot be opened or fails mid-way.
        """
        given = {
            "smoothing": smoothing,
            "hysteresis": hysteresis,
            "max_frames": max_frames,
            "min_score": min_score,
            "stall_timeout": stall_timeout,
            "source_options": source_options,
            "regions": regions,
            "every": every,
            "motion": motion,
            "motion_threshold": motion_threshold,
            "motion_min_area": motion_min_area,
        }
        opts = options if options is not None else LoopOptions()
        changes = {k: v for k, v in given.items() if v is not None}
        if changes:
            opts = opts.replace(**changes)
        if _stream_function is None:
            raise EdgeClassifierError(
                "Classifier.stream", "the frame loop (edge_classifier.loop) is not loaded", "import edge_classifier first"
            )
        return _stream_function(self, source, opts)

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


def _check_resample(mode: str) -> str:
    if mode not in RESAMPLE_MODES:
        raise SpecError(f"resample={mode!r}", "is not a resampling mode", f"use one of {', '.join(RESAMPLE_MODES)}")
    return mode


def _check_is_classifier(info: ModelFileInfo, name: str) -> None:
    """Refuse detection, segmentation and pose models before an interpreter is built for them."""
    sg = info.main
    if len(sg.inputs) != 1 or len(sg.outputs) != 1:
        raise ModelError(
            name,
            f"is not an image classifier: it has {len(sg.inputs)} inputs and {len(sg.outputs)} outputs",
            "use a classifier with one image input and one score output "
            "(detection, pose and segmentation models are not supported)",
        )


def _associated(info: ModelFileInfo, data: bytes | None, path: str) -> dict[str, bytes]:
    from .tflite_file import read_associated_files

    if data is None:
        data = Path(path).read_bytes()
    return read_associated_files(data) if info.associated_files else {}

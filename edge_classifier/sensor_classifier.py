"""SensorClassifier: classify with a network that runs on the camera's own sensor (the Raspberry Pi AI Camera).

The IMX500 runs the network on every frame it captures and puts the answer in that frame's metadata, so there is
no model to invoke: this classifier reads the answer the frame carries (:class:`~edge_classifier.sources.imx500.
SensorFrame`) and turns it into the same :class:`~edge_classifier.results.Prediction` a
:class:`~edge_classifier.Classifier` gives, with the same spec, labels, top-k, smoothing, sinks and stats. It has
the loop's :class:`~edge_classifier.loop.FrameClassifier` members, so ``edge_classifier.loop.stream(clf,
"picamera")`` (or :meth:`SensorClassifier.stream`) runs it; while it is open, ``sources.open("picamera")`` opens
the AI Camera with its network (:class:`~edge_classifier.sources.imx500.IMX500Source`).

Example::

    with SensorClassifier("/usr/share/imx500-models/imx500_network_mobilenet_v2.rpk", labels="imagenet.txt") as clf:
        for result in clf.stream("picamera", smoothing=0.6):
            print(result.top)
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import classifier as _classifier
from .backends.base import BackendInfo
from .backends.imx500 import DEFAULT_START_TIMEOUT, IMX500Sensor
from .backends.select import model_kind, open_sensor
from .errors import ConfigError, FallbackWarning, ImageError, IMX500Error, ModelError
from .options import validate_model_options
from .postprocess import class_scores, classes_from_scores
from .results import Classification, Prediction, Result
from .sidecar import sidecar_files
from .spec import LABELS_FILE, SPEC_FILE, ModelSpec, SpecOverrides, build_spec

log = logging.getLogger(__name__)

__all__ = ["SensorClassifier", "is_sensor_model", "open_sensor_classifier"]


def is_sensor_model(model: str | Path | None) -> bool:
    """True for a network that runs on a camera's sensor (an IMX500 ``.rpk``)."""
    return model is not None and model_kind(model) == "rpk"


def _spec_files(sensor: IMX500Sensor, model: str) -> dict[str, bytes]:
    """Labels and framing from the network's own intrinsics, then a sidecar for what they leave out."""
    import json

    rpk = sensor.rpk
    files, _ = sidecar_files(model)
    spec = json.loads(files.get(SPEC_FILE, b"{}"))
    # The sensor scales its inference region to the input: stretched, or cropped to the input's aspect when the
    # intrinsics ask for it (set_auto_aspect_ratio); the ROI and the scaling happen on the sensor, not here.
    spec.setdefault("resize", "center_crop" if rpk.preserve_aspect_ratio else "stretch")
    if rpk.preserve_aspect_ratio:
        spec.setdefault("crop_fraction", 1.0)
    spec.setdefault("color_order", rpk.input_format if rpk.input_format in ("RGB", "BGR") else "RGB")
    files[SPEC_FILE] = json.dumps(spec).encode()
    if rpk.labels:
        files[LABELS_FILE] = "\n".join(rpk.labels).encode()
    return files


class SensorClassifier:
    """Classify the AI Camera's frames with the network on its IMX500 sensor.

    Args:
        model: an ``.rpk`` (``imx500-package``'s output; Raspberry Pi's are in /usr/share/imx500-models).
        labels: a labels file or list overriding the network's own (its intrinsics) and a sidecar's.
        device: ``auto`` or ``imx500``.
        top_k: how many classes a prediction keeps.
        min_score: drop classes scoring below this.
        overrides: spec fields to override (``label_offset``, ``output_kind``, ``name``, ...).
        start_timeout: seconds to wait for the network's first answer (its first upload takes minutes).

    Raises:
        WrongAcceleratorError: not an ``.rpk``, or a device other than the IMX500.
        ModelError: an unreadable ``.rpk`` or a network that is not a classifier; LabelsError for labels that do
            not fit its output.
        IMX500Error: the child class naming why the sensor cannot run it.
    """

    resample = "fast"

    def __init__(
        self,
        model: str | Path,
        *,
        labels: str | Path | Sequence[str] | None = None,
        device: str = "auto",
        top_k: int = 5,
        min_score: float = 0.0,
        overrides: SpecOverrides | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        validate_model_options(model=model, labels=labels, device=device, top_k=top_k, min_score=min_score, overrides=overrides)
        self.model_path = Path(model)
        self.top_k = top_k
        self.min_score = min_score
        self._sensor: IMX500Sensor | None = open_sensor(model, device=device)
        try:
            sensor = self._sensor
            outputs = sensor.probe(start_timeout)
            ov = overrides or SpecOverrides()
            if labels is not None:
                ov = SpecOverrides(**{**ov.__dict__, "labels": labels})
            w, h = sensor.rpk.input_size
            self.spec: ModelSpec = build_spec(
                input_shape=(1, h, w, 3),
                input_dtype="uint8",
                input_quant=(1.0, 0),  # the sensor feeds the network its own pixels
                output_shape=(1, outputs),
                associated_files=_spec_files(sensor, str(model)),
                model_name=str(model),
                overrides=ov,
                output_is_softmax=False if sensor.rpk.cpu_softmax else None,
            )
        except BaseException:
            self.close()
            raise
        log.info("model %s: %s", model, self.spec.describe())
        log.info("backend: %s", sensor.info)

    @property
    def runtime_info(self) -> BackendInfo:
        """Where the network runs (``device`` is ``imx500:<camera number>``) and why.

        Raises:
            ModelError: the classifier is closed.
        """
        return self._require().info

    @property
    def sensor(self) -> IMX500Sensor:
        """The sensor holding the network (for its ROI, camera number and ``.rpk`` facts)."""
        return self._require()

    def _require(self) -> IMX500Sensor:
        if self._sensor is None:
            raise ModelError(str(self.model_path), "the classifier is closed", "create a new SensorClassifier")
        return self._sensor

    def predict(self, image: Any, *, bgr: bool = False, resample: str | None = None) -> Prediction:
        """The prediction the sensor made for ``image``, a frame from the AI Camera.

        Raises:
            ImageError: ``image`` is not a frame the AI Camera delivered with its answer.
            ModelError: the answer's length does not match the spec (another network), or the classifier is closed.
        """
        self._require()
        outputs = getattr(image, "sensor_outputs", None)
        if outputs is None:
            raise ImageError(
                "image",
                "carries no IMX500 answer: the AI Camera classifies only the frames it captures itself, on its sensor",
                "stream from sources.open('picamera') while this classifier is open (SensorClassifier.stream('picamera')); "
                "to classify photos use a Classifier with the network's .tflite",
            )
        t0 = time.perf_counter()
        if outputs.size != self.spec.num_outputs:
            raise ModelError(
                str(self.model_path),
                f"the sensor answered with {outputs.size} values, but the spec has {self.spec.num_outputs} outputs",
                "another network is loaded on the sensor: close other programs using the camera and open this one again",
            )
        scores = class_scores(np.asarray(outputs), self.spec, 0.0, 0)
        classes = classes_from_scores(scores, self.spec, self.top_k, self.min_score)
        kpi = getattr(image, "sensor_kpi", None)
        # The sensor's own timing of the network (DNN part) is this frame's inference time.
        timings = {"inference": float(kpi[0]) / 1000 if kpi else 0.0, "postprocess": time.perf_counter() - t0}
        return Prediction(classes, scores, timings)

    def predict_framed(self, pixels: np.ndarray) -> Prediction:
        """Not possible: the sensor classifies its own inference region, not pixels cut out on the CPU.

        Raises:
            ConfigError: always; set the region on the sensor instead (``roi``).
        """
        raise ConfigError(
            "regions with the AI Camera",
            "the IMX500 classifies one region of interest on its sensor, not crops cut from the frame on the CPU",
            "give the camera source roi=(x, y, w, h) (fractions of the frame) instead of regions, "
            "e.g. source_options={'roi': (0.25, 0.25, 0.5, 0.5)}",
        )

    def classify(self, image: Any, *, bgr: bool = False, top_k: int | None = None) -> list[Classification]:
        """The top classes of an AI Camera frame, best first (see :meth:`predict`)."""
        pred = self.predict(image)
        if top_k is None or top_k == self.top_k:
            return pred.classes
        return classes_from_scores(pred.scores, self.spec, top_k, self.min_score)

    def stream(self, source: Any = "picamera", options: Any = None, **kw: Any) -> Iterator[Result]:
        """Classify the AI Camera's frames as they come: :meth:`Classifier.stream <edge_classifier.Classifier.stream>`'s
        arguments (``smoothing``, ``hysteresis``, ``max_frames``, ``source_options``, ...)."""
        return _classifier.Classifier.stream(self, source, options, **kw)  # type: ignore[arg-type]

    def close(self) -> None:
        """Release the sensor (another network may then be loaded). Safe to call twice."""
        sensor, self._sensor = self._sensor, None
        if sensor is not None:
            sensor.close()

    def __enter__(self) -> SensorClassifier:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = str(self._sensor.info) if self._sensor else "closed"
        return f"SensorClassifier({str(self.model_path)!r}, {state})"


def open_sensor_classifier(model: str | Path, *, device: str = "auto", **kw: Any) -> SensorClassifier | _classifier.Classifier:
    """A SensorClassifier for an ``.rpk``; on ``device="auto"`` without a usable AI Camera, a Classifier on its CPU twin.

    The twin is the network's ``.tflite`` beside it (``net.rpk`` -> ``net.tflite``): the camera then delivers plain
    frames and the CPU classifies them, with a :class:`~edge_classifier.errors.FallbackWarning`.

    Args:
        model: the ``.rpk``.
        device: ``auto`` or ``imx500``.
        **kw: the classifiers' shared keywords (``labels``, ``top_k``, ``min_score``, ``overrides``).

    Raises:
        IMX500Error: as SensorClassifier, when there is no twin to fall back to (or the device was ``imx500``).
    """
    sensor_kw = {k: v for k, v in kw.items() if k in ("labels", "top_k", "min_score", "overrides", "start_timeout")}
    try:
        return SensorClassifier(model, device=device, **sensor_kw)
    except IMX500Error as exc:
        twin = Path(model).with_suffix(".tflite")
        if device != "auto" or not twin.is_file():
            raise
        message = f"AI Camera not usable, running the CPU twin {twin.name} instead ({exc.thing}: {exc.cause})"
        log.warning("%s\n  fix: %s", message, exc.fix)
        warnings.warn(message, FallbackWarning, stacklevel=2)
        cpu_kw = {k: v for k, v in kw.items() if k != "start_timeout"}
        return _classifier.Classifier(twin, device="auto", **cpu_kw)

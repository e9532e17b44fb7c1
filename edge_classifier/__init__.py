"""edge_classifier: run an ImageNet TFLite classifier on edge devices, offline, on live frames.

Public API::

    from edge_classifier import Classifier
    with Classifier("mobilenet_v2_1.0_224_quant.tflite") as clf:
        for c in clf.classify("cat.jpg"):
            print(c.id, c.label, c.score)
        for result in clf.stream("clip.mp4", smoothing=0.6):
            print(result.top)

Result types live in :mod:`edge_classifier.results`; the loop in :mod:`edge_classifier.loop`, sessions with
sinks and signals in :mod:`edge_classifier.session`.

TensorFlow is never imported by the runtime; heavy or hardware-bound libraries (picamera2,
libedgetpu) are imported only when used.
"""

from __future__ import annotations

from . import errors, sinks, sources
from ._version import __version__
from .classifier import Classifier, default_model_path
from .errors import (
    BackendUnavailableError,
    EdgeClassifierError,
    EdgeTpuError,
    ImageError,
    LabelsError,
    ModelError,
    SourceError,
)
from .loop import FrameClassifier
from .loop_options import LoopOptions
from .regions import Region
from .results import Classification, Frame, LabelEvent, Prediction, RegionResult, Result, StateEvent
from .session import run_pipeline
from .spec import ModelSpec, SpecOverrides

__all__ = [
    "BackendUnavailableError",
    "Classification",
    "Classifier",
    "EdgeClassifierError",
    "EdgeTpuError",
    "Frame",
    "FrameClassifier",
    "ImageError",
    "LabelEvent",
    "LabelsError",
    "LoopOptions",
    "ModelError",
    "ModelSpec",
    "Prediction",
    "Region",
    "RegionResult",
    "Result",
    "SourceError",
    "SpecOverrides",
    "StateEvent",
    "__version__",
    "default_model_path",
    "errors",
    "run_pipeline",
    "sinks",
    "sources",
]

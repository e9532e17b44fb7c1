"""edge_classifier: run an ImageNet TFLite classifier on edge devices, offline, on live frames.

Public API::

    from edge_classifier import Classifier
    with Classifier("mobilenet_v2_1.0_224_quant.tflite") as clf:
        for c in clf.classify("cat.jpg"):
            print(c.id, c.label, c.score)

TensorFlow is never imported by the runtime; heavy or hardware-bound libraries (picamera2,
libedgetpu) are imported only when used.
"""

from __future__ import annotations

from . import errors, sinks, sources
from .classifier import Classifier, Prediction, default_model_path
from .errors import (
    BackendUnavailableError,
    EdgeClassifierError,
    EdgeTpuError,
    ImageError,
    LabelsError,
    ModelError,
    SourceError,
)
from .pipeline import run_pipeline
from .postprocess import Classification
from .results import Frame, LabelEvent, Result
from .spec import ModelSpec, SpecOverrides

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError",
    "Classification",
    "Classifier",
    "EdgeClassifierError",
    "EdgeTpuError",
    "Frame",
    "ImageError",
    "LabelEvent",
    "LabelsError",
    "ModelError",
    "ModelSpec",
    "Prediction",
    "Result",
    "SourceError",
    "SpecOverrides",
    "__version__",
    "default_model_path",
    "errors",
    "run_pipeline",
    "sinks",
    "sources",
]

"""From the output tensor to labelled classes: pure functions on score arrays."""

from __future__ import annotations

import numpy as np

from .results import Classification
from .spec import ModelSpec

# Classification lives in edge_classifier.results with the other result types; importing it from here still works.
__all__ = ["Classification", "class_scores", "classes_from_scores", "dequantize", "softmax", "top_k"]


def dequantize(raw: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float values of a quantized tensor; float tensors (scale 0) pass through as float32."""
    if scale == 0:
        return np.asarray(raw, dtype=np.float32)
    return np.asarray((raw.astype(np.float32) - np.float32(zero_point)) * np.float32(scale), dtype=np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis."""
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    e = np.exp(shifted)
    return np.asarray(e / np.sum(e, axis=-1, keepdims=True), dtype=np.float32)


def class_scores(raw_output: np.ndarray, spec: ModelSpec, scale: float, zero_point: int) -> np.ndarray:
    """Probabilities per class id (leading non-class outputs removed) from the raw output tensor."""
    values = dequantize(raw_output.reshape(-1), scale, zero_point)
    if spec.output_kind == "logits":
        values = softmax(values)
    return values[spec.label_offset :]


def top_k(scores: np.ndarray, k: int, min_score: float = 0.0) -> list[tuple[int, float]]:
    """The ``k`` best ``(index, score)`` pairs at or above ``min_score``, best first.

    Ties keep the lower index first, so results are stable across runs.
    """
    if k <= 0 or scores.size == 0:
        return []
    k = min(k, scores.size)
    # argpartition is O(n); only the k winners are then sorted.
    idx = np.argpartition(-scores, k - 1)[:k]
    order = sorted(idx.tolist(), key=lambda i: (-float(scores[i]), i))
    return [(i, float(scores[i])) for i in order if scores[i] >= min_score]


def classes_from_scores(scores: np.ndarray, spec: ModelSpec, k: int, min_score: float = 0.0) -> list[Classification]:
    """Top-k labelled classes from per-class scores (see :func:`class_scores`)."""
    return [Classification(i, spec.label(i), s) for i, s in top_k(scores, k, min_score)]

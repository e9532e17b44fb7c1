"""Float vs INT8 on held-out images: agreement, top-5 overlap, distance, and accuracy when labelled.

The INT8 side runs through :class:`edge_classifier.Classifier` on the written file, embedded spec
and all, so what is validated is exactly what users run. The metrics are pure functions on score
arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_classifier.postprocess import softmax

from .calibration import class_of, load_rgb, preprocess


def top1_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of rows whose argmax is the same in ``a`` and ``b`` (N x C)."""
    return float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1)))


def topk_overlap(a: np.ndarray, b: np.ndarray, k: int = 5) -> float:
    """Mean fraction of the top-``k`` classes that ``a`` and ``b`` share, per row."""
    k = min(k, a.shape[1])
    ta = np.argsort(-a, axis=1, kind="stable")[:, :k]
    tb = np.argsort(-b, axis=1, kind="stable")[:, :k]
    return float(np.mean([len(set(x.tolist()) & set(y.tolist())) / k for x, y in zip(ta, tb, strict=True)]))


def total_variation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean total-variation distance ``0.5 * sum |p - q|`` between probability rows."""
    return float(np.mean(0.5 * np.abs(a - b).sum(axis=1)))


def accuracy(scores: np.ndarray, truth: Sequence[int | None]) -> float | None:
    """Top-1 accuracy over the rows with a known class, or None when none is known."""
    rows = [(i, t) for i, t in enumerate(truth) if t is not None]
    if not rows:
        return None
    return float(np.mean([int(np.argmax(scores[i])) == t for i, t in rows]))


@dataclass
class Validation:
    """The validation result, ready for the report."""

    images: int
    held_out: bool
    top1_agreement: float
    top5_overlap: float
    mean_total_variation: float
    float_top1_accuracy: float | None
    int8_top1_accuracy: float | None
    labelled_images: int
    float_ms_per_image: float
    int8_ms_per_image: float
    rows: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


def validate(
    float_model: Any,
    float_spec: Any,
    int8_path: str | Path,
    images: Sequence[Path],
    *,
    root: Path | None = None,
    held_out: bool = True,
    progress: bool = True,
) -> Validation:
    """Run the float Keras model and the INT8 file on ``images`` and compare them.

    Args:
        float_model: the batch-1 Keras model that was quantized.
        float_spec: its float32 ModelSpec (normalisation, resize, labels, offset, output kind).
        int8_path: the converted .tflite (read by the runtime, embedded spec included).
        images: validation image files.
        root: the validation folder; a sub-folder per class makes it labelled.
        held_out: whether these images were kept out of calibration (reported as is).
    """
    import time

    from edge_classifier import Classifier

    it: Any = images
    if progress:
        try:
            from tqdm import tqdm

            it = tqdm(images, desc="validating", unit="img", leave=False)
        except ImportError:
            pass
    fscores: list[np.ndarray] = []
    qscores: list[np.ndarray] = []
    truth: list[int | None] = []
    t_float = t_int8 = 0.0
    with Classifier(int8_path, top_k=5) as clf:
        for path in it:
            rgb = load_rgb(path, "validation")
            x = preprocess(rgb, float_spec)[None]
            t0 = time.perf_counter()
            out = np.asarray(float_model(x, training=False)).reshape(-1).astype(np.float32)
            t1 = time.perf_counter()
            pred = clf.predict(rgb)
            t2 = time.perf_counter()
            t_float += t1 - t0
            t_int8 += t2 - t1
            if float_spec.output_kind == "logits":
                out = softmax(out)
            fscores.append(out[float_spec.label_offset :])
            qscores.append(pred.scores)
            truth.append(class_of(path, root, float_spec.labels, float_spec.num_classes) if root is not None else None)
    f = np.stack(fscores)
    q = np.stack(qscores)
    rows = []
    for path, fs, qs, t in zip(images, f, q, truth, strict=True):
        fi, qi = int(np.argmax(fs)), int(np.argmax(qs))
        rows.append(
            {
                "image": str(path),
                "float": {"id": fi, "label": float_spec.label(fi), "score": round(float(fs[fi]), 4)},
                "int8": {"id": qi, "label": float_spec.label(qi), "score": round(float(qs[qi]), 4)},
                "agree": fi == qi,
                "truth": t,
            }
        )
    n = max(1, len(images))
    return Validation(
        images=len(images),
        held_out=held_out,
        top1_agreement=top1_agreement(f, q),
        top5_overlap=topk_overlap(f, q, 5),
        mean_total_variation=total_variation(f, q),
        float_top1_accuracy=accuracy(f, truth),
        int8_top1_accuracy=accuracy(q, truth),
        labelled_images=sum(t is not None for t in truth),
        float_ms_per_image=1000 * t_float / n,
        int8_ms_per_image=1000 * t_int8 / n,
        rows=rows,
    )

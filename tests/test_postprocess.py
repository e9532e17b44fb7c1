"""Pure postprocessing: dequantize, softmax, top-k, label offsets and labels files."""

from __future__ import annotations

import numpy as np
import pytest

from edge_classifier.errors import LabelsError, SpecError
from edge_classifier.postprocess import class_scores, classes_from_scores, dequantize, softmax, top_k
from edge_classifier.spec import ModelSpec, build_spec, fit_labels, parse_labels


def make_spec(n: int, offset: int = 0, kind: str = "probabilities", labels: tuple[str, ...] = ()) -> ModelSpec:
    return ModelSpec(
        input_size=(2, 2), input_dtype="uint8", input_scale=1 / 128, input_zero_point=128, mean=(128.0,) * 3,
        std=(128.0,) * 3, num_outputs=n, label_offset=offset, output_kind=kind, labels=labels,  # type: ignore[arg-type]
    )  # fmt: skip


def test_dequantize_and_softmax() -> None:
    raw = np.array([0, 128, 255], np.uint8)
    assert dequantize(raw, 1 / 256, 0).tolist() == pytest.approx([0, 0.5, 255 / 256])
    assert dequantize(np.array([-128, 0], np.int8), 0.5, -128).tolist() == [0.0, 64.0]
    f = np.array([0.1, 0.2], np.float32)
    assert dequantize(f, 0.0, 0) is f or np.array_equal(dequantize(f, 0.0, 0), f)
    p = softmax(np.array([1000.0, 1000.0, 0.0]))
    assert p.sum() == pytest.approx(1.0) and p[0] == pytest.approx(0.5)


def test_top_k_order_ties_threshold() -> None:
    s = np.array([0.1, 0.5, 0.5, 0.05, 0.3], np.float32)
    assert top_k(s, 3) == [(1, 0.5), (2, 0.5), (4, pytest.approx(0.3))]
    assert top_k(s, 10, min_score=0.2) == [(1, 0.5), (2, 0.5), (4, pytest.approx(0.3))]
    assert top_k(s, 0) == []


def test_label_offset_and_logits() -> None:
    spec = make_spec(4, offset=1, kind="logits", labels=("a", "b", "c"))
    raw = np.array([9.0, 1.0, 3.0, 2.0], np.float32)
    scores = class_scores(raw, spec, 0.0, 0)
    assert scores.shape == (3,)
    best = classes_from_scores(scores, spec, 1)[0]
    assert (best.id, best.label) == (1, "b")
    # Softmax ran over all four outputs (background included), as the model defines it.
    assert scores.sum() < 1.0


def test_fit_labels_offsets() -> None:
    labels = tuple(f"l{i}" for i in range(1000))
    assert fit_labels(("background",) + labels, 1001, "x") == (labels, 1)
    assert fit_labels(labels, 1001, "x") == (labels, 1)
    assert fit_labels(labels, 1000, "x") == (labels, 0)
    with pytest.raises(LabelsError, match="999 labels but the model has 1001 outputs"):
        fit_labels(labels[:999], 1001, "x")


def test_a_custom_models_background_class_is_a_class() -> None:
    # A model trained with a "nothing here" class called background: its answer must stay visible, ids unshifted.
    assert fit_labels(("background", "cat", "dog"), 3, "x") == (("background", "cat", "dog"), 0)
    assert fit_labels(("Background", "bird"), 2, "x") == (("Background", "bird"), 0)
    # Without the background line, a file one short still means output 0 is not a class, whatever the size.
    assert fit_labels(("cat", "dog"), 3, "x") == (("cat", "dog"), 1)


def test_parse_labels_formats() -> None:
    assert parse_labels("cat\ndog\n\n", "f") == ("cat", "dog")
    assert parse_labels("0 cat\n2: dog\n", "f") == ("cat", "class 1", "dog")
    with pytest.raises(LabelsError, match="empty"):
        parse_labels("\n\n", "f")


def test_build_spec_inference_and_overrides() -> None:
    base = dict(input_shape=(1, 224, 224, 3), input_dtype="uint8", input_quant=(1 / 128, 128), output_shape=(1, 1001))
    s = build_spec(**base, associated_files={}, model_name="m.tflite")  # type: ignore[arg-type]
    assert s.mean == (128.0,) * 3 and s.std == (128.0,) * 3 and s.label_offset == 1 and s.pixels_pass_through
    assert s.label(285) == "class 285"
    from edge_classifier.spec import SpecOverrides

    s2 = build_spec(**base, associated_files={}, model_name="m.tflite", overrides=SpecOverrides(mean=127.5, std=(1, 2, 3)))  # type: ignore[arg-type]
    assert s2.origin["mean"] == "user" and s2.std == (1.0, 2.0, 3.0) and not s2.pixels_pass_through
    with pytest.raises(SpecError, match="resize"):
        build_spec(**base, associated_files={}, model_name="m", overrides=SpecOverrides(resize="squash"))  # type: ignore[arg-type]
    emb = {
        "edge_classifier_spec.json": b'{"mean": [1, 2, 3], "resize": "center_crop"}',
        "labels.txt": "\n".join(["x"] * 1000).encode(),
    }
    s3 = build_spec(**base, associated_files=emb, model_name="m")  # type: ignore[arg-type]
    assert s3.mean == (1.0, 2.0, 3.0) and s3.resize == "center_crop" and s3.origin["labels"] == "embedded"

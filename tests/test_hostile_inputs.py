"""Hostile inputs to the image, label, URL and source entry points: one clean EdgeClassifierError each, never a traceback
of another type, never a silent wrong answer, never a secret in the text."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_classifier import Classifier, sources
from edge_classifier.errors import EdgeClassifierError, ImageError, LabelsError, SourceError
from edge_classifier.preprocess import MAX_PIXELS, as_rgb_frame, load_image, to_rgb8
from edge_classifier.redact import RedactingFilter, redact_text, redact_url
from edge_classifier.spec import load_labels


# --- very large images (defect 1) -------------------------------------------------------------------------------
def _huge_png(path: Path, side: int = 20000) -> Path:
    # A 20000x20000 palette PNG compresses to a few hundred KB: a decompression bomb.
    Image.new("P", (side, side)).save(path, optimize=False)
    return path


def test_a_huge_png_is_refused_with_the_limit(tmp_path: Path) -> None:
    bomb = _huge_png(tmp_path / "huge.png")
    with pytest.raises(ImageError, match=r"20000x20000 \(400 megapixels\), more than the 64-megapixel limit"):
        load_image(bomb)


def test_a_huge_jpeg_is_decoded_reduced(coral: Path, tmp_path: Path) -> None:
    # 12000x7000 = 84 MP: over the limit, so the JPEG decoder hands back a 1/2-scale image.
    big = Image.open(coral / "cat.bmp").convert("RGB").resize((12000, 7000))
    big.save(tmp_path / "big.jpg", quality=60)
    rgb = load_image(tmp_path / "big.jpg")
    assert rgb.shape == (3500, 6000, 3) and rgb.shape[0] * rgb.shape[1] <= MAX_PIXELS


def test_classify_skips_the_huge_image_and_classifies_the_rest(
    coral: Path, mnv2: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from edge_classifier.cli import main

    huge = _huge_png(tmp_path / "b_huge.png")
    assert main(["classify", str(coral / "cat.bmp"), str(huge), str(coral / "parrot.jpg"), "--model", str(mnv2), "--json"]) == 1
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert [r.get("classes", [{}])[0].get("label") for r in records] == ["Egyptian cat", None, "macaw"]
    assert "megapixel limit" in records[1]["error"] and "Traceback" not in err


# --- arrays (defects 3 and 4) -------------------------------------------------------------------------------------
GOOD = np.zeros((48, 64, 3), np.uint8)
BAD_ARRAYS = [
    np.zeros((0, 64, 3), np.uint8),
    np.zeros((48, 64, 2), np.uint8),
    np.zeros((48, 64, 5), np.uint8),
    np.zeros((2, 48, 64, 3), np.uint8),
    np.zeros((48,), np.uint8),
    np.zeros((48, 64, 3), np.complex64),
    np.zeros((48, 64, 3), object),
    np.zeros((48, 64, 3), "U1"),
    np.full((48, 64, 3), np.nan, np.float32),
    np.full((48, 64, 3), np.inf, np.float64),
    np.full((48, 64, 3), -0.5, np.float32),
    np.full((48, 64, 3), 300.0, np.float32),
    np.full((48, 64, 3), -3, np.int32),
    np.full((48, 64, 3), 70000, np.int64),
    np.zeros((48, 64, 3), np.int8),
]


@pytest.mark.parametrize("arr", BAD_ARRAYS, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_bad_arrays_are_image_errors(arr: np.ndarray) -> None:
    with pytest.raises(ImageError):
        as_rgb_frame(arr)


@pytest.mark.parametrize("thing", [None, "not an array", [[1, 2, 3]], 3.5])
def test_non_arrays_are_image_errors(thing: object) -> None:
    with pytest.raises(ImageError, match="is not a numpy array"):
        as_rgb_frame(thing)


def test_the_fast_path_returns_a_good_frame_as_is_and_fixes_strides() -> None:
    assert as_rgb_frame(GOOD) is GOOD
    flipped = GOOD[:, ::-1]
    out = as_rgb_frame(flipped)
    assert out.flags.c_contiguous and out.shape == GOOD.shape


def test_uint16_is_scaled_not_wrapped() -> None:
    frame16 = np.full((4, 4, 3), 65535, np.uint16)
    assert int(as_rgb_frame(frame16).min()) == 255


def test_the_float_contract_0_to_1_and_0_to_255(coral: Path, mnv2: Path) -> None:
    rgb = load_image(coral / "cat.bmp")
    np.testing.assert_array_equal(to_rgb8(rgb.astype(np.float32)), rgb)  # 0..255 floats: an 8-bit image cast
    np.testing.assert_array_equal(to_rgb8(rgb.astype(np.float32) / 255.0), rgb)  # 0..1 floats
    with Classifier(mnv2) as clf:
        want = clf.classify(rgb)[0].label
        assert clf.classify(rgb.astype(np.float32))[0].label == want == "Egyptian cat"
        grey = Image.fromarray(rgb).convert("F")  # PIL mode "F": 0..255 floats
        assert clf.classify(grey)[0].label == clf.classify(Image.fromarray(rgb).convert("L"))[0].label


def test_a_normalised_tensor_is_not_an_image() -> None:
    with pytest.raises(ImageError, match="outside both 0..1 and 0..255"):
        to_rgb8((np.random.default_rng(0).standard_normal((8, 8, 3))).astype(np.float32))


# --- labels (defect 5, and the folder given as --labels) ---------------------------------------------------------
def test_a_byte_order_mark_does_not_shift_the_labels(coral: Path, mnv2: Path, tmp_path: Path) -> None:
    text = (coral / "imagenet_labels.txt").read_text(encoding="utf-8")
    bom = tmp_path / "labels.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert load_labels(bom)[0] == "background"
    with Classifier(mnv2, labels=bom) as clf:
        assert clf.spec.label_offset == 1
        top = clf.classify(coral / "cat.bmp")[0]
        assert (top.id, top.label) == (285, "Egyptian cat")


def test_a_folder_as_labels(tmp_path: Path) -> None:
    with pytest.raises(LabelsError, match="is a folder, not a labels file"):
        load_labels(tmp_path)


# --- URLs and secrets ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("rtsp://admin:s3cretpw@10.0.0.7:554/live", "rtsp://admin:***@10.0.0.7:554/live"),
        ("mqtt://u:p%40ss@broker:1883/cams", "mqtt://u:***@broker:1883/cams"),
        ("https://hooks.example/x?token=abc&camera=porch", "https://hooks.example/x?token=***&camera=porch"),
        ("http://:onlypw@cam/", "http://***@cam/"),
        ("http://cam.local:8080/a.mjpg", "http://cam.local:8080/a.mjpg"),
        ("http://u:pw@host:notaport/x", "http://***@host:notaport/x"),
    ],
)
def test_redact_url(url: str, want: str) -> None:
    assert redact_url(url) == want
    assert "s3cret" not in redact_text(f"cannot open {url} (timeout)")


def test_the_log_filter_redacts_arguments(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("edge_classifier.test_redact")
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.WARNING):
        log.warning("[run] source %s", "rtsp://user:s3cretpw@cam/live")
    assert "s3cretpw" not in caplog.text and "rtsp://user:***@cam/live" in caplog.text


def test_an_unsupported_url_scheme_is_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as err:
        sources.open("ftp://user:hunter2@127.0.0.1:1/x.mp4")
    text = str(err.value)
    assert "ftp:// is not a video stream" in text and "hunter2" not in text and "ftp:/127" not in text


@pytest.mark.parametrize("spec", ["", "   ", "/nonexistent/clip.mp4", "picamera99"])
def test_bad_sources_are_source_errors(spec: str) -> None:
    with pytest.raises(EdgeClassifierError):
        src = sources.open(spec)
        with src:
            next(iter(src))


# --- generated: every dtype x shape x fill through the array entry point -----------------------------------------
_DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64, np.float16, np.float32, np.float64,
           np.bool_, np.complex64, object]  # fmt: skip
_SHAPES = [(0,), (5,), (0, 0), (1, 1), (7, 5), (0, 4, 3), (4, 0, 3), (7, 5, 1), (7, 5, 2), (7, 5, 3), (7, 5, 4),
           (7, 5, 5), (1, 7, 5, 3), (7, 5, 3, 1)]  # fmt: skip
_FILLS = [0, 1, 255, -1, 0.5, 300.0, float("nan"), float("inf")]


def _generated() -> list[np.ndarray]:
    out = []
    for dtype in _DTYPES:
        for shape in _SHAPES:
            for fill in _FILLS:
                try:
                    with np.errstate(all="ignore"):
                        arr = np.full(shape, fill, dtype=dtype)
                except (ValueError, TypeError, OverflowError):
                    continue
                out.append(arr)
    return out


def test_generated_arrays_give_an_answer_or_an_image_error(mnv2: Path) -> None:
    arrays = _generated()
    assert len(arrays) > 1000
    answered = refused = 0
    with Classifier(mnv2) as clf:
        for arr in arrays:
            for view in (arr, arr[..., ::-1] if arr.ndim == 3 else arr):
                try:
                    pred = clf.predict(view)
                except ImageError:
                    refused += 1
                    continue
                except EdgeClassifierError as exc:  # pragma: no cover - any other typed error would be a wrong type
                    pytest.fail(f"{arr.dtype}{list(arr.shape)} fill {arr.flat[0] if arr.size else None}: {type(exc).__name__}")
                # An accepted array is a real image: HxW(x1|3|4), a pixel dtype, finite values in a pixel range.
                assert view.ndim in (2, 3) and view.size > 0, (view.dtype, view.shape)
                assert np.isfinite(pred.scores).all() and pred.scores.min() >= 0.0 and pred.scores.max() <= 1.0
                answered += 1
    assert answered > 100 and refused > 500

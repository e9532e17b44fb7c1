"""Pure preprocessing maths: quantization round trips, the fast path, resize modes."""

from __future__ import annotations

import numpy as np
import pytest

from edge_classifier.errors import ImageError
from edge_classifier.preprocess import (
    crop_box,
    dequantize_input,
    fit_to_input,
    quantize_pixels,
    resize_exact,
    resize_fast,
    to_rgb8,
)
from edge_classifier.spec import ModelSpec


def spec(dtype: str, scale: float, zp: int, mean: float, std: float, color: str = "RGB") -> ModelSpec:
    return ModelSpec(
        input_size=(4, 4), input_dtype=dtype, input_scale=scale, input_zero_point=zp,
        mean=(mean,) * 3, std=(std,) * 3, num_outputs=10, color_order=color,  # type: ignore[arg-type]
    )  # fmt: skip


ALL_PIXELS = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)


@pytest.mark.parametrize(
    "dtype, scale, zp, mean, std",
    [
        ("uint8", 1 / 128, 128, 128.0, 128.0),  # Coral's TF1 QAT models
        ("uint8", 1 / 127.5, 127, 127.5, 127.5),  # TF2 PTQ models
        ("int8", 1 / 128, 0, 128.0, 128.0),
        ("int8", 1 / 127.5, -1, 127.5, 127.5),
    ],
)
def test_fast_path_applies_and_equals_the_float_maths(dtype: str, scale: float, zp: int, mean: float, std: float) -> None:
    s = spec(dtype, scale, zp, mean, std)
    assert s.pixels_pass_through
    fast = quantize_pixels(ALL_PIXELS, s)
    # The same affine map evaluated in float64, rounded: the slow path's definition.
    info = np.iinfo(np.dtype(dtype))
    slow = np.clip(np.rint((ALL_PIXELS.astype(np.float64) - mean) / std / scale + zp), info.min, info.max)
    assert fast.dtype == np.dtype(dtype)
    assert np.abs(fast.astype(np.int32) - slow.astype(np.int32)).max() <= 1
    # And the values stand for the normalised pixels to within one quantization step.
    assert np.allclose(dequantize_input(fast, s), (ALL_PIXELS - mean) / std, atol=scale * 1.01)


@pytest.mark.parametrize(
    "dtype, scale, zp, mean, std",
    [("uint8", 1 / 64, 128, 127.5, 127.5), ("int8", 0.02, 5, 100.0, 60.0), ("uint8", 1.0, 0, 0.0, 1.0)],
)
def test_slow_path_round_trips_within_half_a_step(dtype: str, scale: float, zp: int, mean: float, std: float) -> None:
    s = spec(dtype, scale, zp, mean, std)
    q = quantize_pixels(ALL_PIXELS, s)
    want = (ALL_PIXELS.astype(np.float32) - mean) / std
    got = dequantize_input(q, s)
    info = np.iinfo(np.dtype(dtype))
    representable = (want / scale + zp >= info.min) & (want / scale + zp <= info.max)
    assert np.abs(got - want)[representable].max() <= scale / 2 + 1e-6


def test_pass_through_is_refused_when_maths_differ() -> None:
    assert not spec("uint8", 1 / 64, 128, 127.5, 127.5).pixels_pass_through
    assert not spec("float32", 0.0, 0, 127.5, 127.5).pixels_pass_through


def test_float_input_and_bgr() -> None:
    s = spec("float32", 0.0, 0, 127.5, 127.5, color="BGR")
    px = np.zeros((1, 1, 3), np.uint8)
    px[0, 0] = (255, 0, 0)
    out = quantize_pixels(px, s)
    assert out.dtype == np.float32
    assert out[0, 0].tolist() == pytest.approx([-1.0, -1.0, 1.0])


def test_writes_into_a_given_buffer() -> None:
    s = spec("uint8", 1 / 128, 128, 128.0, 128.0)
    buf = np.zeros((16, 16, 3), np.uint8)
    res = quantize_pixels(ALL_PIXELS, s, out=buf)
    assert res is buf and np.array_equal(buf, ALL_PIXELS)


def test_crop_box_and_modes() -> None:
    assert crop_box(720, 1280, 224, 224, "center_crop") == (0, 280, 720, 720)
    assert crop_box(1280, 720, 224, 224, "center_crop") == (280, 0, 720, 720)
    assert crop_box(720, 1280, 224, 224, "stretch") == (0, 0, 720, 1280)
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[:, :100] = 255  # left half white
    stretch = fit_to_input(frame, (10, 10), "stretch")
    crop = fit_to_input(frame, (10, 10), "center_crop")
    box = fit_to_input(frame, (10, 10), "letterbox", pad_value=7)
    assert stretch.shape == crop.shape == box.shape == (10, 10, 3)
    assert stretch[:, :4].min() == 255 and stretch[:, 6:].max() == 0
    assert crop[:, :4].min() == 255 and crop[:, 6:].max() == 0  # the centre still straddles the edge
    assert box[0].max() == 7 and box[-1].max() == 7 and box[4, 0, 0] == 255  # bars top and bottom


def test_fast_resize_antialiases_and_hits_the_size() -> None:
    # A 1-pixel checkerboard has no content at 224 px: an aliasing resize shows stripes, a box cascade grey.
    checker = ((np.indices((720, 1280)).sum(axis=0) % 2) * 255).astype(np.uint8)
    rgb = np.repeat(checker[..., None], 3, axis=2)
    out = resize_fast(rgb, 224, 224)
    assert out.shape == (224, 224, 3)
    assert abs(float(out.mean()) - 127.5) < 2 and out.std() < 10
    up = resize_fast(rgb[:10, :10], 30, 20)
    assert up.shape == (20, 30, 3)
    assert resize_exact(rgb, 224, 224).shape == (224, 224, 3)


def test_to_rgb8_kinds() -> None:
    gray = np.full((3, 4), 10, np.uint8)
    assert to_rgb8(gray).shape == (3, 4, 3)
    assert to_rgb8(np.full((2, 2), 65535, np.uint16)).max() == 255
    assert to_rgb8(np.full((2, 2, 3), 0.5, np.float32)).max() == 128
    rgba = np.zeros((1, 1, 4), np.uint8)
    rgba[0, 0] = (200, 100, 50, 0)
    assert to_rgb8(rgba).tolist() == [[[0, 0, 0]]]
    rgba[0, 0, 3] = 255
    assert to_rgb8(rgba).tolist() == [[[200, 100, 50]]]
    bgr = np.array([[[1, 2, 3]]], np.uint8)
    assert to_rgb8(bgr, bgr=True).tolist() == [[[3, 2, 1]]]
    with pytest.raises(ImageError, match="NaN"):
        to_rgb8(np.full((2, 2), np.nan, np.float32))
    with pytest.raises(ImageError, match="dtype"):
        to_rgb8(np.zeros((2, 2), np.complex64))

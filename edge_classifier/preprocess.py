"""From any common image to the model's input tensor: decode, orient, resize, quantize.

Pure functions on numpy arrays (OpenCV for resizing, Pillow for decoding files). The converter
imports these same functions for calibration, so the INT8 model is calibrated on exactly what the
runtime will feed it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import cv2
import numpy as np

from .errors import ImageError
from .spec import ModelSpec

if TYPE_CHECKING:
    from PIL import Image as PILImage

ImageInput = Union[str, Path, np.ndarray, "PILImage.Image"]

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm",
)  # fmt: skip


def load_image(image: ImageInput, *, bgr: bool = False) -> np.ndarray:
    """Any supported image as an RGB ``uint8`` array of shape (H, W, 3).

    Args:
        image: a file path, a numpy array (HxW, HxWx1, HxWx3 or HxWx4; uint8, uint16 or float
            in 0..1), or a PIL image.
        bgr: the numpy array is in OpenCV's BGR(A) order.

    Raises:
        ImageError: missing or unreadable file, empty image, or an unsupported array.
    """
    if isinstance(image, (str, Path)):
        return _load_file(Path(image))
    if isinstance(image, np.ndarray):
        return to_rgb8(image, bgr=bgr, name="image array")
    if hasattr(image, "mode") and hasattr(image, "size"):
        return _pil_to_rgb(image, "PIL image")
    raise ImageError(
        f"{type(image).__name__} object",
        "is not an image",
        "pass a file path, a numpy array (HxWx3 RGB, or BGR with bgr=True) or a PIL image",
    )


def _load_file(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise ImageError(str(path), "no such image file", "check the path")
    if path.is_dir():
        raise ImageError(str(path), "is a directory", "pass an image file (the `run` command takes folders)")
    if path.stat().st_size == 0:
        raise ImageError(str(path), "the file is empty", "re-copy the image")
    try:
        with Image.open(path) as im:
            im.load()
            return _pil_to_rgb(im, str(path))
    except UnidentifiedImageError as exc:
        raise ImageError(str(path), "is not an image Pillow can read", f"use one of {', '.join(IMAGE_EXTENSIONS)}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        # Truncated JPEG/PNG data surfaces as OSError from Pillow's decoders.
        raise ImageError(str(path), f"cannot be decoded ({exc})", "the file is truncated or corrupt: re-copy it") from exc


def _pil_to_rgb(im: PILImage.Image, name: str) -> np.ndarray:
    from PIL import ImageOps

    if im.width == 0 or im.height == 0:
        raise ImageError(name, "the image has no pixels", "pass a non-empty image")
    # Phone photos store rotation in EXIF; without this a portrait cat is classified sideways.
    im = ImageOps.exif_transpose(im) or im
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im)
        return to_rgb8(arr, name=name)
    if im.mode == "F":
        return to_rgb8(np.asarray(im), name=name)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Composite on black, the same as dropping alpha for opaque pixels.
        im = im.convert("RGBA")
        rgba = np.asarray(im)
        return _drop_alpha(rgba)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im))


def _drop_alpha(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4].astype(np.uint16)
    return ((rgba[..., :3].astype(np.uint16) * alpha + 127) // 255).astype(np.uint8)


def to_rgb8(arr: np.ndarray, *, bgr: bool = False, name: str = "image array") -> np.ndarray:
    """Normalise an array to RGB ``uint8`` (H, W, 3).

    uint16 (and 32-bit integer) images are scaled by their bit depth, float images are taken as
    0..1, grayscale is replicated, and alpha is composited on black.

    Raises:
        ImageError: empty array or unsupported shape or dtype.
    """
    if arr.size == 0:
        raise ImageError(name, f"the image is empty (shape {arr.shape})", "pass an image with pixels")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError(name, f"has shape {arr.shape}", "pass HxW (grayscale), HxWx3 (RGB) or HxWx4 (RGBA)")
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == np.uint16:
        out = (arr >> 8).astype(np.uint8)
    elif arr.dtype in (np.int32, np.uint32, np.int64):
        peak = 65535 if int(arr.max()) > 255 else 255
        out = (np.clip(arr, 0, peak) * (255.0 / peak) + 0.5).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ImageError(name, "contains NaN or infinite values", "pass finite pixel values")
        out = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif arr.dtype == np.bool_:
        out = arr.astype(np.uint8) * 255
    else:
        raise ImageError(name, f"has unsupported dtype {arr.dtype}", "pass uint8, uint16 or float (0..1) pixels")
    if out.ndim == 2:
        return np.ascontiguousarray(np.repeat(out[..., None], 3, axis=2))
    if out.shape[2] == 4:
        out = _drop_alpha(out)
    if bgr:
        out = out[..., ::-1]
    return np.ascontiguousarray(out)


def crop_box(height: int, width: int, target_h: int, target_w: int, mode: str) -> tuple[int, int, int, int]:
    """The (top, left, height, width) region of a frame that the model sees.

    ``center_crop`` takes the largest centred region with the model's aspect ratio; the other
    modes take the whole frame.
    """
    if mode != "center_crop":
        return 0, 0, height, width
    target_aspect = target_w / target_h
    if width / height > target_aspect:
        w = max(1, round(height * target_aspect))
        return 0, (width - w) // 2, height, w
    h = max(1, round(width / target_aspect))
    return (height - h) // 2, 0, h, width


RESAMPLE_MODES: tuple[str, ...] = ("auto", "fast", "exact")


def resize_fast(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Anti-aliased downscale at nearly the cost of a bilinear one (about 0.3 ms for 720p -> 224).

    OpenCV's INTER_AREA is exact but slow for non-integer factors (4 ms for 720p -> 224). A
    bilinear resize by exactly one half samples midway between two pixels, which *is* a 2-pixel
    box filter, and OpenCV runs it at memory speed. So each axis is halved that way while it is
    at least twice its target, and a last bilinear step covers the remaining factor (under 2,
    where bilinear no longer skips pixels). The cascade of box filters approximates a triangle
    filter: no aliasing, no ringing. Upscaling is plain bilinear.
    """
    h, w = img.shape[:2]
    while w >= 2 * width or h >= 2 * height:
        nw = w // 2 if w >= 2 * width else w
        nh = h // 2 if h >= 2 * height else h
        # Trim an odd last row/column so the step is an exact half (the box stays 2 pixels wide).
        img = cv2.resize(img[: nh * 2 if nh != h else h, : nw * 2 if nw != w else w], (nw, nh), interpolation=cv2.INTER_LINEAR)
        h, w = nh, nw
    if (h, w) == (height, width):
        return img
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)


def resize_exact(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pillow's anti-aliased Lanczos resize: the filter Coral's reference results were made with.

    About 10x the cost of :func:`resize_fast` on a camera frame; worth it for still photos,
    where decoding the file costs more anyway.
    """
    from PIL import Image

    if img.shape[:2] == (height, width):
        return img
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((width, height), Image.Resampling.LANCZOS))


def _resize(img: np.ndarray, width: int, height: int, resample: str) -> np.ndarray:
    return resize_exact(img, width, height) if resample == "exact" else resize_fast(img, width, height)


def fit_to_input(rgb: np.ndarray, size: tuple[int, int], mode: str, pad_value: int = 0, resample: str = "fast") -> np.ndarray:
    """Resize an RGB frame to ``size`` = (height, width) by ``mode``.

    ``stretch`` resizes the whole frame, ``center_crop`` crops to the model's aspect ratio first,
    ``letterbox`` keeps the aspect ratio and pads with ``pad_value``. ``resample`` is ``fast``
    (:func:`resize_fast`, for camera frames) or ``exact`` (:func:`resize_exact`, for photos).
    """
    th, tw = size
    h, w = rgb.shape[:2]
    if mode == "letterbox":
        scale = min(th / h, tw / w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        inner = _resize(rgb, nw, nh, resample)
        out = np.full((th, tw, 3), pad_value, dtype=np.uint8)
        y, x = (th - nh) // 2, (tw - nw) // 2
        out[y : y + nh, x : x + nw] = inner
        return out
    top, left, ch, cw = crop_box(h, w, th, tw, mode)
    return _resize(rgb[top : top + ch, left : left + cw], tw, th, resample)


def quantize_params(spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(gain, offset)`` so that the input value is ``gain * pixel + offset``.

    For a quantized input this folds normalisation and quantization into one affine map;
    for a float input it is just the normalisation.
    """
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    if spec.input_dtype == "float32" or spec.input_scale <= 0:
        return (1.0 / std).astype(np.float32), (-mean / std).astype(np.float32)
    gain = 1.0 / (std * spec.input_scale)
    return gain.astype(np.float32), (spec.input_zero_point - mean * gain).astype(np.float32)


def quantize_pixels(pixels: np.ndarray, spec: ModelSpec, out: np.ndarray | None = None) -> np.ndarray:
    """Turn RGB uint8 pixels of the input size into the model's input values.

    Writes into ``out`` (for example the interpreter's own input buffer) when given. Channel
    order is swapped here for BGR models. When the quantization equals the normalisation
    (:attr:`ModelSpec.pixels_pass_through`) the pixels are copied, or shifted by 128 for int8,
    without float maths.
    """
    if spec.color_order == "BGR":
        pixels = pixels[..., ::-1]
    dtype = np.dtype(spec.input_dtype)
    if out is None:
        out = np.empty(pixels.shape, dtype=dtype)
    if spec.pixels_pass_through:
        if dtype == np.uint8:
            np.copyto(out, pixels)
        else:
            # uint8 -> int8 by flipping the top bit equals subtracting 128, without widening.
            np.bitwise_xor(pixels, np.uint8(0x80), out=out.view(np.uint8))
        return out
    gain, offset = quantize_params(spec)
    values = pixels.astype(np.float32) * gain + offset
    if dtype == np.float32:
        np.copyto(out, values)
        return out
    info = np.iinfo(dtype)
    np.copyto(out, np.clip(np.rint(values), info.min, info.max).astype(dtype))
    return out


def dequantize_input(values: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """The normalised float values a quantized input tensor stands for (for tests and reports)."""
    if spec.input_dtype == "float32":
        return values.astype(np.float32)
    return ((values.astype(np.float32) - spec.input_zero_point) * spec.input_scale).astype(np.float32)


def resample_for(image: ImageInput, resample: str = "auto") -> str:
    """The resampling an input gets: ``auto`` is ``exact`` for files and PIL images (still photos)
    and ``fast`` for numpy arrays (camera and video frames, the per-frame hot path)."""
    if resample != "auto":
        return resample
    return "fast" if isinstance(image, np.ndarray) else "exact"


def letterbox_pad_value(spec: ModelSpec) -> int:
    """The grey level of letterbox bars: the mean colour, which the model sees as zero signal."""
    level = sum(spec.mean) / 3.0
    return int(round(level)) if 0 <= level <= 255 else 0


def list_images(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` in a stable (sorted) order."""
    root = Path(folder)
    pattern: Any = root.rglob("*") if recursive else root.glob("*")
    return sorted(p for p in pattern if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)

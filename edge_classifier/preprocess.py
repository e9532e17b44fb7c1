"""From any common image to the model's input tensor: decode, orient, resize, quantize.

Pure functions on numpy arrays (OpenCV for resizing, Pillow for decoding files). The converter
imports these same functions for calibration, so the INT8 model is calibrated on exactly what the
runtime will feed it.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import cv2
import numpy as np

from .decode import reduced_scale, reduced_size
from .errors import ConfigError, ImageError
from .spec import ModelSpec

if TYPE_CHECKING:
    from PIL import Image as PILImage

ImageInput = Union[str, Path, np.ndarray, "PILImage.Image"]

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm",
)  # fmt: skip


def load_image(image: ImageInput, *, bgr: bool = False, min_size: tuple[int, int] | None = None) -> np.ndarray:
    """Any supported image as an RGB ``uint8`` array of shape (H, W, 3).

    Args:
        image: a file path, a numpy array (HxW, HxWx1, HxWx3 or HxWx4; uint8, uint16, or float in 0..1 or
            0..255, detected), or a PIL image.
        bgr: the numpy array is in OpenCV's BGR(A) order.
        min_size: (width, height) the caller needs at least, such as :func:`min_source_size` of a model's spec. A
            JPEG file is then decoded at the largest reduced scale (1/2, 1/4 or 1/8, in the JPEG decoder) that keeps
            it at least that large on both axes once its EXIF orientation is applied: several times faster for a
            photo much larger than the model's input. None (default): full resolution, for callers that need every
            pixel (regions, recording). Other formats, arrays and PIL images come at their own size either way.

    Raises:
        ImageError: missing or unreadable file, empty image, or an unsupported array.
        ConfigError: ``min_size`` is not a (width, height) pair of positive integers.
    """
    if isinstance(image, (str, Path)):
        return _load_file(Path(image), _check_min_size(min_size))
    if isinstance(image, np.ndarray):
        return to_rgb8(image, bgr=bgr, name="image array")
    if hasattr(image, "mode") and hasattr(image, "size"):
        return _pil_to_rgb(image, "PIL image")
    raise ImageError(
        f"{type(image).__name__} object",
        "is not an image",
        "pass a file path, a numpy array (HxWx3 RGB, or BGR with bgr=True) or a PIL image",
    )


def _check_min_size(min_size: Any) -> tuple[int, int] | None:
    if min_size is None:
        return None
    ok = isinstance(min_size, (tuple, list)) and len(min_size) == 2
    ok = ok and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in min_size)
    if not ok:
        raise ConfigError(
            f"min_size={min_size!r}",
            "is not a (width, height) pair of positive integers",
            "pass e.g. min_source_size(spec), or None for full resolution",
        )
    return int(min_size[0]), int(min_size[1])


def min_source_size(spec: ModelSpec) -> tuple[int, int]:
    """The smallest (width, height) an image may have, on each axis, for :func:`fit_to_spec` to downscale it, never enlarge it.

    The model's input size, divided by the crop fraction for ``center_crop`` (256x256 for 224x224 at 0.875). Per axis is
    exact for a centre crop: the crop is the largest centred region of the input's aspect ratio, scaled by the fraction,
    so it reaches the input size on both axes exactly when the image is at least input/fraction on both. For
    ``stretch`` and ``letterbox`` it is the input size itself. Reduced-scale decoding and camera modes aim at this size.
    """
    h, w = spec.input_size
    f = spec.crop_fraction if spec.resize == "center_crop" else 1.0
    # The epsilon keeps 224 / 0.875 at 256 whatever the float rounding of other fractions does.
    return math.ceil(w / f - 1e-6), math.ceil(h / f - 1e-6)


# The largest image decoded at full size: 64 megapixels (a 9248x6936 phone or DSLR photo; 192 MB as RGB). A larger
# JPEG is decoded reduced by its decoder (1/2, 1/4, 1/8 scale: no model needs more pixels than that leaves); a larger
# image of another format is refused with this limit named. Pillow's own guard (DecompressionBombError past 179 MP)
# would end a folder run with a traceback instead.
MAX_PIXELS = 64_000_000
_OPEN_LOCK = threading.Lock()


def _load_file(path: Path, min_size: tuple[int, int] | None = None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise ImageError(str(path), "no such image file", "check the path")
    if path.is_dir():
        raise ImageError(str(path), "is a directory", "pass an image file (the `run` command takes folders)")
    if path.stat().st_size == 0:
        raise ImageError(str(path), "the file is empty", "re-copy the image")
    try:
        with _open_unguarded(path) as im:
            _choose_draft(im, str(path), min_size)
            im.load()
            return _pil_to_rgb(im, str(path))
    except UnidentifiedImageError as exc:
        raise ImageError(str(path), "is not an image Pillow can read", f"use one of {', '.join(IMAGE_EXTENSIONS)}") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # Truncated JPEG/PNG data surfaces as OSError from Pillow's decoders.
        raise ImageError(str(path), f"cannot be decoded ({exc})", "the file is truncated or corrupt: re-copy it") from exc
    except MemoryError as exc:
        raise ImageError(str(path), "needs more memory to decode than this machine has", "downscale the image first") from exc


def _open_unguarded(path: Path) -> Any:
    """``Image.open`` with Pillow's pixel guard lifted for the header read only: :func:`_choose_draft` applies ours."""
    from PIL import Image

    with _OPEN_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _choose_draft(im: Any, name: str, min_size: tuple[int, int] | None) -> None:
    """Set a JPEG's decoding scale (Pillow's draft mode) once: reduced to ``min_size``, and within :data:`MAX_PIXELS`.

    Pillow honours only the first draft request, so both reasons are folded into one scale here.

    Raises:
        ImageError: an image of another format over the pixel limit.
    """
    w, h = im.size
    denominator = 1
    if min_size is not None and im.format == "JPEG":
        # The pixels are decoded as stored and turned upright afterwards: compare with the stored orientation.
        need = (min_size[1], min_size[0]) if _exif_transposes(im) else min_size
        denominator = reduced_scale(w, h, need)
    budget = _budget_scale(im, name)
    denominator = max(denominator, budget)
    if denominator > 1:
        # Pillow picks the largest scale whose result is at least the size asked for: ask for the floor of each side.
        im.draft("RGB", (max(1, w // denominator), max(1, h // denominator)))
    if budget > 1 and im.size[0] * im.size[1] > MAX_PIXELS:  # a JPEG Pillow cannot decode reduced
        raise _over_budget(name, w, h)


def _exif_transposes(im: Any) -> bool:
    """Whether the EXIF orientation swaps width and height (orientations 5 to 8: rotated by 90 or 270 degrees)."""
    try:
        return int(im.getexif().get(0x0112, 1)) in (5, 6, 7, 8)
    except (ValueError, TypeError, OSError, SyntaxError):
        return False  # a broken EXIF block: exif_transpose will not rotate either


def _budget_scale(im: Any, name: str) -> int:
    """The JPEG scale denominator that keeps a huge image within :data:`MAX_PIXELS` (1 for any image within it).

    Raises:
        ImageError: an image of another format over the limit, or a JPEG still over it at 1/8.
    """
    w, h = im.size
    if w * h <= MAX_PIXELS:
        return 1
    if im.format == "JPEG":
        for denominator in (2, 4, 8):
            rw, rh = reduced_size(w, h, denominator)
            if rw * rh <= MAX_PIXELS:
                return denominator
    raise _over_budget(name, w, h)


def _over_budget(name: str, w: int, h: int) -> ImageError:
    return ImageError(
        name,
        f"is {w}x{h} ({w * h / 1e6:.0f} megapixels), more than the {MAX_PIXELS / 1e6:.0f}-megapixel limit for decoding",
        "downscale it first (no classifier needs more than a few megapixels), or save it as JPEG, which is decoded reduced",
    )


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

    uint16 (and 32-bit integer) images are scaled by their bit depth, float images are read as 0..1 when every
    value is at most 1 and as 0..255 otherwise (values outside 0..255 are refused), grayscale is replicated, and
    alpha is composited on black.

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
        if int(arr.min()) < 0 or int(arr.max()) > 65535:
            raise ImageError(
                name,
                f"has integer values from {int(arr.min())} to {int(arr.max())}",
                "pass 8- or 16-bit pixel values (0..255 or 0..65535)",
            )
        peak = 65535 if int(arr.max()) > 255 else 255
        out = (np.clip(arr, 0, peak) * (255.0 / peak) + 0.5).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        out = _float_to_uint8(arr, name)
    elif arr.dtype == np.bool_:
        out = arr.astype(np.uint8) * 255
    else:
        raise ImageError(name, f"has unsupported dtype {arr.dtype}", "pass uint8, uint16 or float (0..1 or 0..255) pixels")
    if out.ndim == 2:
        return np.ascontiguousarray(np.repeat(out[..., None], 3, axis=2))
    if out.shape[2] == 4:
        out = _drop_alpha(out)
    if bgr:
        out = out[..., ::-1]
    return np.ascontiguousarray(out)


def as_rgb_frame(frame: Any, *, bgr: bool = False, name: str = "frame") -> np.ndarray:
    """A frame checked once, cheaply, on its way to the model: RGB uint8 HxWx3, C-contiguous.

    The common case (a uint8 HxWx3 array, as OpenCV and picamera2 deliver) costs a few attribute checks; anything
    else goes through :func:`to_rgb8`, which converts what it can and raises :class:`ImageError` for the rest.

    Raises:
        ImageError: not an array, empty, the wrong shape or dtype, or non-finite values.
    """
    if not isinstance(frame, np.ndarray):
        raise ImageError(
            f"{name} ({type(frame).__name__})", "is not a numpy array", "pass an HxWx3 uint8 array (RGB, or BGR with bgr=True)"
        )
    if (
        frame.dtype == np.uint8
        and frame.ndim == 3
        and frame.shape[2] == 3
        and frame.shape[0] > 0
        and frame.shape[1] > 0
        and not bgr
    ):
        return frame if frame.flags.c_contiguous else np.ascontiguousarray(frame)
    return to_rgb8(frame, bgr=bgr, name=name)


def _float_to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    """Float pixels to uint8 by the documented contract: the range is detected from the values.

    All values in 0..1 are taken as 0..1 (the convention of scikit-image, matplotlib and ``ToTensor``); otherwise
    values in 0..255 are taken as 0..255 (an 8-bit image cast to float, a PIL mode "F" image). Anything else (negative,
    above 255, NaN, infinite) is refused: a normalised tensor such as ``(x - mean) / std`` is not an image, and
    guessing its scale would give a silent wrong answer.
    """
    lo, hi = float(np.min(arr)), float(np.max(arr))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ImageError(name, "contains NaN or infinite values", "pass finite pixel values, 0..1 or 0..255")
    if lo < 0.0 or hi > 255.0:
        raise ImageError(
            name,
            f"has float values from {lo:g} to {hi:g}, outside both 0..1 and 0..255",
            "pass pixels, not a normalised tensor: floats in 0..1 or 0..255, or uint8",
        )
    gain = 255.0 if hi <= 1.0 else 1.0
    return np.asarray(np.clip(arr * gain + 0.5, 0, 255), dtype=np.uint8)


def crop_box(
    height: int, width: int, target_h: int, target_w: int, mode: str, crop_fraction: float = 1.0
) -> tuple[int, int, int, int]:
    """The (top, left, height, width) region of a frame that the model sees.

    ``center_crop`` takes the largest centred region with the model's aspect ratio, scaled by ``crop_fraction``
    (0.875 keeps the central 87.5% of a square photo's side, as ImageNet models are evaluated); the other modes take
    the whole frame. The region is at least one pixel and is centred (an odd leftover pixel goes to the bottom/right).
    """
    if mode != "center_crop":
        return 0, 0, height, width
    target_aspect = target_w / target_h
    if width / height > target_aspect:
        full_h, full_w = float(height), height * target_aspect
    else:
        full_h, full_w = width / target_aspect, float(width)
    h = min(height, max(1, round(full_h * crop_fraction)))
    w = min(width, max(1, round(full_w * crop_fraction)))
    return (height - h) // 2, (width - w) // 2, h, w


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


def fit_to_input(
    rgb: np.ndarray, size: tuple[int, int], mode: str, pad_value: int = 0, resample: str = "fast", crop_fraction: float = 1.0
) -> np.ndarray:
    """Resize an RGB frame to ``size`` = (height, width) by ``mode``.

    ``stretch`` resizes the whole frame, ``center_crop`` crops the central ``crop_fraction`` of the largest region
    with the model's aspect ratio first (see :func:`crop_box`), ``letterbox`` keeps the aspect ratio and pads with
    ``pad_value``. ``resample`` is ``fast`` (:func:`resize_fast`, for camera frames) or ``exact``
    (:func:`resize_exact`, for photos).
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
    top, left, ch, cw = crop_box(h, w, th, tw, mode, crop_fraction)
    return _resize(rgb[top : top + ch, left : left + cw], tw, th, resample)


def fit_to_spec(rgb: np.ndarray, spec: ModelSpec, resample: str = "fast") -> np.ndarray:
    """Frame an RGB image for the model the way its spec says: size, resize mode, crop fraction, letterbox grey.

    The one framing used by the classifier, calibration, training and evaluation, so each sees what the camera feeds.
    """
    return fit_to_input(rgb, spec.input_size, spec.resize, letterbox_pad_value(spec), resample, spec.crop_fraction)


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

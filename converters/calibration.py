"""Calibration and validation samples from an image folder, through the runtime's own preprocessing.

Every sample is made by :mod:`edge_classifier.preprocess` (``load_image`` -> ``fit_to_input`` ->
``quantize_pixels`` with the float32 spec, which gives ``(pixel - mean) / std``), so the INT8
ranges are measured on exactly what the runtime will feed the model. Never random noise: noise
has none of the statistics of photos and gives ranges that clip real activations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_classifier.errors import CalibrationError, DatasetError, ImageError
from edge_classifier.evaluate import LabelResolver
from edge_classifier.preprocess import (
    IMAGE_EXTENSIONS,
    fit_to_spec,
    list_images,
    load_image,
    quantize_pixels,
)
from edge_classifier.spec import ModelSpec

DEFAULT_SAMPLES = 300


def find_images(folder: str | Path, role: str = "calibration") -> list[Path]:
    """Every image under ``folder`` (recursive, the types the runtime reads), sorted.

    Raises:
        CalibrationError: the folder is missing, not a folder, or holds no images.
    """
    root = Path(folder)
    flag = "--calib" if role == "calibration" else "--val"
    if not root.exists():
        raise CalibrationError(
            str(root), f"the {role} folder does not exist", f"give {flag} a folder of photos like those the model will see"
        )
    if not root.is_dir():
        raise CalibrationError(str(root), f"the {role} path is not a folder", f"give {flag} a folder (searched recursively)")
    images = list_images(root, recursive=True)
    if not images:
        raise CalibrationError(
            str(root),
            f"the {role} folder holds no images ({', '.join(IMAGE_EXTENSIONS)}, searched recursively)",
            "put a few hundred representative photos in it; never calibrate on random noise",
        )
    return images


def load_rgb(path: Path, role: str = "calibration") -> np.ndarray:
    """Decode one image with the runtime's loader.

    Raises:
        CalibrationError: the image cannot be read.
    """
    try:
        return load_image(path)
    except ImageError as exc:
        raise CalibrationError(str(path), f"a {role} image cannot be read ({exc.cause})", "remove or replace the file") from exc


def preprocess(rgb: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """The float model input for one RGB frame: the runtime's framing and normalisation, float32 spec."""
    return quantize_pixels(fit_to_spec(rgb, spec, "exact"), spec)


def augment(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop (35-100 % of the area, aspect 3:4..4:3) and a horizontal flip half the time."""
    h, w = rgb.shape[:2]
    area = rng.uniform(0.35, 1.0) * h * w
    aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    ch = int(min(h, max(8, round(np.sqrt(area / aspect)))))
    cw = int(min(w, max(8, round(np.sqrt(area * aspect)))))
    top = int(rng.integers(0, h - ch + 1))
    left = int(rng.integers(0, w - cw + 1))
    out = rgb[top : top + ch, left : left + cw]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


# Below these, calibration ranges are measured on too little: warn (the INT8 model may clip real activations).
FEW_IMAGES = 100
GREY_SHARE = 0.5
FLAT_SHARE = 0.5


@dataclass(frozen=True)
class SampleSet:
    """Preprocessed float samples, where they came from, and what looked thin about them."""

    samples: np.ndarray
    images: tuple[Path, ...]
    augmented: int
    warnings: tuple[str, ...] = ()


def is_greyscale(rgb: np.ndarray) -> bool:
    """Whether an RGB image carries no colour (every channel within 3 levels of the others, on a subsample)."""
    small = rgb[:: max(1, rgb.shape[0] // 64), :: max(1, rgb.shape[1] // 64)].astype(np.int16)
    return bool(np.abs(small - small.mean(axis=2, keepdims=True)).max() <= 3)


def is_flat(rgb: np.ndarray) -> bool:
    """Whether an image is nearly uniform or a fine repetitive texture rather than a photo of a scene.

    A photo has structure at coarse scales: its 8x8 block means vary. A flat image or a fine texture (noise,
    a checkerboard, fabric) averages out to nearly one grey at that scale.
    """
    h, w = rgb.shape[:2]
    grey = rgb.mean(axis=2)
    bh, bw = max(1, h // 8), max(1, w // 8)
    blocks = grey[: bh * 8, : bw * 8].reshape(8, bh, 8, bw).mean(axis=(1, 3))
    return bool(blocks.std() < 8.0)


def sample_warnings(n_images: int, grey: int, flat: int, count: int, augmented: int) -> list[str]:
    """The warnings a calibration set earns: few images, mostly greyscale, mostly flat or texture-like."""
    out = []
    if n_images < FEW_IMAGES:
        out.append(
            f"only {n_images} calibration image(s) ({augmented} of the {count} samples are random crops/flips of them): "
            f"INT8 ranges measured on few photos can clip real ones; use {FEW_IMAGES}+ photos like the camera will see"
        )
    if n_images and grey / n_images >= GREY_SHARE:
        out.append(f"{grey} of {n_images} calibration images are greyscale: calibrate on colour photos if the camera sees colour")
    if n_images and flat / n_images >= FLAT_SHARE:
        out.append(f"{flat} of {n_images} calibration images look flat or like textures, not photos of scenes: use real photos")
    return out


def build_samples(
    images: Sequence[Path],
    spec: ModelSpec,
    count: int = DEFAULT_SAMPLES,
    *,
    augment_small: bool | None = None,
    seed: int = 0,
    progress: bool = True,
) -> SampleSet:
    """Up to ``count`` float samples: every image once (evenly spaced if there are more), then,
    with ``augment_small``, seeded random crops/flips of them until ``count`` is reached.

    ``augment_small=None`` (the default) augments whenever the images are fewer than ``count``: 5 photos calibrate
    ``count`` samples, not 5. Pass False to calibrate on the images alone.

    Raises:
        CalibrationError: an image cannot be read, or ``count`` is not positive.
    """
    if count <= 0:
        raise CalibrationError("--num-calib", f"must be positive, got {count}", "use e.g. --num-calib 300")
    if len(images) > count:
        idx = np.linspace(0, len(images) - 1, count).round().astype(int)
        chosen = [images[i] for i in sorted(set(idx.tolist()))]
    else:
        chosen = list(images)
    if augment_small is None:
        augment_small = len(chosen) < count
    total = count if augment_small else len(chosen)
    h, w = spec.input_size
    out = np.empty((total, h, w, 3), dtype=np.float32)
    rng = np.random.default_rng(seed)
    decoded: list[np.ndarray] = []
    grey = flat = 0
    for i in _progress(range(total), progress, "calibration images"):
        if i < len(chosen):
            rgb = load_rgb(chosen[i])
            grey += is_greyscale(rgb)
            flat += is_flat(rgb)
            if augment_small and total > len(chosen):
                decoded.append(rgb)
            out[i] = preprocess(rgb, spec)
        else:
            out[i] = preprocess(augment(decoded[i % len(decoded)], rng), spec)
    augmented = total - len(chosen)
    return SampleSet(out, tuple(chosen), augmented, tuple(sample_warnings(len(chosen), grey, flat, count, augmented)))


def split_holdout(images: Sequence[Path], fraction: float = 0.2, seed: int = 0) -> tuple[list[Path], list[Path], bool]:
    """Split a folder's images into (calibration, validation, held_out).

    With a single image there is nothing to hold out: both sides get it and ``held_out`` is False.
    """
    n = len(images)
    if n < 2:
        return list(images), list(images), False
    k = min(n - 1, max(1, round(n * fraction)))
    rng = np.random.default_rng(seed)
    val_idx = set(rng.choice(n, size=k, replace=False).tolist())
    calib = [p for i, p in enumerate(images) if i not in val_idx]
    val = [p for i, p in enumerate(images) if i in val_idx]
    return calib, val, True


def class_of(path: Path, root: Path, labels: Sequence[str], num_classes: int | None = None) -> int | None:
    """The class id of a validation image from its sub-folder, resolved as ``edge-classifier evaluate`` does
    (label, synonym, plural, class id, or WordNet id); None for an image directly in ``root`` or in a sub-folder
    that names no class (a calibration folder split for validation may be organised by anything).
    """
    rel = path.relative_to(root)
    if len(rel.parts) < 2:
        return None
    try:
        return LabelResolver(labels, num_classes if num_classes is not None else len(labels)).resolve(rel.parts[0])
    except DatasetError:
        return None


def _progress(it: Iterable[int], enabled: bool, desc: str) -> Iterable[int]:
    if not enabled:
        return it
    try:
        from tqdm import tqdm
    except ImportError:
        return it
    return tqdm(it, desc=desc, unit="img", leave=False)

"""Training photos: a folder of class sub-folders, decoded once, split, weighted and augmented.

Layout: ``DIR/<class>/**/*.jpg``; the first-level folder name is the label (spaces and any Unicode
are fine), images are found recursively below it, so ``cats/indoor/x.jpg`` is a ``cats`` photo.
Hidden folders (``.git``, ``__MACOSX``) are not classes. Files that are not images are ignored and
counted; images that cannot be decoded are skipped, counted and named (``-v``).

Every photo is decoded once and kept at a working size (its shorter side at most twice the model
input), so a folder of 40-megapixel photos costs what a folder of screenshots costs. Every model
input is then made by the runtime's own framing (:func:`converters.calibration.preprocess`, the
same ``fit_to_input`` + ``quantize_pixels`` the camera path uses), with augmentation (random crop,
flip, colour jitter) applied to the photo *before* that framing: training sees what the camera feeds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_classifier.errors import ImageError, TrainingError
from edge_classifier.preprocess import IMAGE_EXTENSIONS, load_image, resize_fast
from edge_classifier.spec import ModelSpec, parse_labels

log = logging.getLogger(__name__)

MIN_PHOTOS_PER_CLASS = 2  # one to train on and one to check it with
FEW_PHOTOS_PER_CLASS = 10  # below this a warning says to collect more
IMBALANCE_RATIO = 1.5  # largest / smallest class above this is warned about
_NOT_CLASSES = frozenset({"__MACOSX", "@eaDir", "$RECYCLE.BIN", "System Volume Information"})


@dataclass(frozen=True)
class FolderScan:
    """What a training (or validation) folder holds, before any image is decoded.

    Attributes:
        root: the folder.
        classes: class names (first-level sub-folders), sorted.
        files: per class, the image files under its folder (recursive, sorted).
        ignored: files that are not images (by extension), and images lying directly in ``root``.
    """

    root: Path
    classes: tuple[str, ...]
    files: tuple[tuple[Path, ...], ...]
    ignored: tuple[Path, ...]


@dataclass
class Photos:
    """Decoded photos of one folder: working-size RGB arrays and their class ids.

    Attributes:
        root: the folder.
        classes: the class names (index = class id).
        images: RGB uint8 arrays, shorter side at most ``max_side``.
        labels: class id of each image.
        paths: file of each image.
        skipped: (file, reason) of every image that could not be decoded.
        ignored: files that are not images, or not in a class folder.
    """

    root: Path
    classes: tuple[str, ...]
    images: list[np.ndarray]
    labels: np.ndarray
    paths: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)

    def counts(self) -> np.ndarray:
        """Readable photos per class."""
        return (
            np.bincount(self.labels, minlength=len(self.classes))
            if len(self.labels)
            else np.zeros(len(self.classes), dtype=np.int64)
        )

    def subset(self, idx: Sequence[int]) -> Photos:
        """The photos at ``idx`` (same classes; skipped/ignored lists are not carried)."""
        return Photos(
            self.root,
            self.classes,
            [self.images[i] for i in idx],
            self.labels[np.asarray(idx, dtype=np.int64)],
            [self.paths[i] for i in idx],
        )


def _is_class_dir(p: Path) -> bool:
    return p.is_dir() and not p.name.startswith(".") and p.name not in _NOT_CLASSES


def scan_folder(folder: str | Path, role: str = "training") -> FolderScan:
    """List the class sub-folders of ``folder`` and the image files in each.

    Raises:
        TrainingError: the folder is missing or not a folder, or it has no class sub-folders.
    """
    root = Path(folder)
    flag = "DIR" if role == "training" else "--val"
    if not root.exists():
        raise TrainingError(
            str(root), f"the {role} folder does not exist", f"give {flag} as a folder with one sub-folder of photos per class"
        )
    if not root.is_dir():
        raise TrainingError(
            str(root), f"the {role} path is not a folder", f"give {flag} as a folder with one sub-folder of photos per class"
        )
    class_dirs = sorted((p for p in root.iterdir() if _is_class_dir(p)), key=lambda p: p.name)
    loose = sorted(p for p in root.iterdir() if p.is_file())
    files: list[tuple[Path, ...]] = []
    ignored: list[Path] = list(loose)
    for d in class_dirs:
        found: list[Path] = []
        for p in sorted(d.rglob("*")):
            if not p.is_file() or any(part.startswith(".") for part in p.relative_to(d).parts[:-1]):
                continue
            (found if p.suffix.lower() in IMAGE_EXTENSIONS else ignored).append(p)
        files.append(tuple(found))
    if not class_dirs:
        n_loose = sum(p.suffix.lower() in IMAGE_EXTENSIONS for p in loose)
        cause = (
            f"has no class sub-folders ({n_loose} images lie directly in it)"
            if n_loose
            else "has no class sub-folders and no images"
        )
        raise TrainingError(
            str(root),
            cause,
            f"put the photos of each class in a sub-folder named after it: {root}/<class>/photo.jpg (at least 2 classes)",
        )
    return FolderScan(root, tuple(d.name for d in class_dirs), tuple(files), tuple(ignored))


def check_scan(scan: FolderScan, min_per_class: int = MIN_PHOTOS_PER_CLASS) -> None:
    """The checks that need no decoding: two classes or more, and enough image files in each.

    Raises:
        TrainingError: no images at all, one class only, an empty class folder, or a class with too few images.
    """
    total = sum(len(f) for f in scan.files)
    if total == 0:
        raise TrainingError(
            str(scan.root),
            f"its class folders ({', '.join(scan.classes)}) hold no images ({', '.join(IMAGE_EXTENSIONS)}, searched recursively)",
            "put the photos of each class in its sub-folder",
        )
    if len(scan.classes) < 2:
        raise TrainingError(
            str(scan.root),
            f"has one class only ({scan.classes[0]!r}): a classifier needs at least 2",
            "add a sub-folder of photos for each other thing the camera should tell apart (for example 'empty' or 'other')",
        )
    for name, files in zip(scan.classes, scan.files, strict=True):
        if not files:
            raise TrainingError(
                str(scan.root / name), "the class folder holds no images", "add photos of this class, or remove the folder"
            )
        if len(files) < min_per_class:
            raise TrainingError(
                str(scan.root / name),
                f"the class has {len(files)} photo{'s' if len(files) != 1 else ''}; at least {min_per_class} are needed "
                "(one to learn from and one to check with)",
                "add photos of this class (30 or more from the camera itself work well), or remove the folder",
            )


def check_labels_round_trip(classes: Sequence[str], root: Path) -> None:
    """Refuse class names that would not survive the labels file embedded in the model.

    The runtime reads ``labels.txt`` one label per line, stripped, and takes ``<id> <label>`` lines
    as ids; a name like ``" 1 open"`` or one with a line break would come back different.

    Raises:
        TrainingError: a class name would be read back differently.
    """
    text = "\n".join(classes) + "\n"
    try:
        back = parse_labels(text, "labels")
    except Exception:  # noqa: BLE001 - any failure here means the names do not round-trip
        back = ()
    if tuple(back) == tuple(classes):
        return
    bad = [c for i, c in enumerate(classes) if i >= len(back) or back[i] != c] or list(classes)
    raise TrainingError(
        str(root / bad[0]),
        f"the class name {bad[0]!r} would not read back the same from the model's labels file "
        "(leading/trailing spaces, line breaks, or every name starting with a number and a space)",
        "rename the class folders: plain names such as 'open' and 'closed' (spaces inside a name and Unicode are fine)",
    )


def decode_photo(path: Path, max_side: int) -> np.ndarray:
    """Decode one photo with the runtime's loader (EXIF rotation, greyscale, alpha, 16-bit) at working size.

    JPEGs are decoded at a reduced scale when they are much larger than needed (Pillow's ``draft``),
    then the shorter side is brought down to ``max_side`` with the runtime's anti-aliased resize.

    Raises:
        ImageError: the file is not an image or cannot be decoded.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        if path.stat().st_size == 0:
            raise ImageError(str(path), "the file is empty", "re-copy the image")
        with Image.open(path) as im:
            im.draft(None, (max_side, max_side))  # type: ignore[arg-type]  # JPEG only: DCT-domain downscale
            im.load()
            rgb = load_image(im)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(str(path), "is not an image Pillow can read", "remove it, or convert it to JPEG/PNG") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(str(path), f"has too many pixels to decode safely ({exc})", "downscale it below 100 megapixels") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(str(path), f"cannot be decoded ({exc})", "the file is truncated or corrupt: re-copy it") from exc
    h, w = rgb.shape[:2]
    short = min(h, w)
    if short > max_side:
        f = max_side / short
        rgb = resize_fast(rgb, max(1, round(w * f)), max(1, round(h * f)))
    return np.ascontiguousarray(rgb)


def load_photos(scan: FolderScan, max_side: int, *, progress: bool = True, classes: Sequence[str] | None = None) -> Photos:
    """Decode every image of a scan, skipping (and recording) the unreadable ones.

    Args:
        scan: the folder listing.
        max_side: the working size (shorter side) photos are kept at.
        progress: show a progress bar.
        classes: the class list to number against (a validation folder uses the training classes);
            default: the scan's own.

    Raises:
        TrainingError: a validation class is not a training class.
    """
    names = tuple(classes) if classes is not None else scan.classes
    images: list[np.ndarray] = []
    labels: list[int] = []
    paths: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    jobs: list[tuple[int, Path]] = []
    for cls, files in zip(scan.classes, scan.files, strict=True):
        if cls not in names:
            raise TrainingError(
                str(scan.root / cls),
                f"the validation class {cls!r} is not one of the training classes ({', '.join(names)})",
                "name the validation sub-folders exactly like the training ones",
            )
        jobs.extend((names.index(cls), p) for p in files)
    for cid, p in progress_bar(jobs, progress, "reading photos", "img"):
        try:
            images.append(decode_photo(p, max_side))
        except ImageError as exc:
            skipped.append((p, exc.cause))
            log.info("skipped %s: %s", p, exc.cause)
            continue
        labels.append(cid)
        paths.append(p)
    return Photos(scan.root, names, images, np.asarray(labels, dtype=np.int64), paths, skipped, list(scan.ignored))


def check_photos(photos: Photos, *, role: str = "training", min_per_class: int = MIN_PHOTOS_PER_CLASS) -> list[str]:
    """Check the classes of a training set; return warnings (few photos, imbalance).

    Raises:
        TrainingError: no readable photos, fewer than two classes, or a class with too few photos.
    """
    counts = photos.counts()
    unreadable = f" ({len(photos.skipped)} unreadable files skipped)" if photos.skipped else ""
    if counts.sum() == 0:
        raise TrainingError(
            str(photos.root),
            f"holds no readable photos{unreadable}",
            f"put photos ({', '.join(IMAGE_EXTENSIONS)}) in one sub-folder per class",
        )
    if len(photos.classes) < 2:
        raise TrainingError(
            str(photos.root),
            f"has one class only ({photos.classes[0]!r}): a classifier needs at least 2",
            "add a sub-folder of photos for each other thing the camera should tell apart (for example 'empty' or 'other')",
        )
    for name, n in zip(photos.classes, counts.tolist(), strict=True):
        if n == 0:
            raise TrainingError(
                str(photos.root / name),
                f"the class folder holds no readable photos{unreadable}",
                "add photos of this class, or remove the folder",
            )
        if n < min_per_class:
            raise TrainingError(
                str(photos.root / name),
                f"the class has {n} readable photo{'s' if n != 1 else ''}; at least {min_per_class} are needed "
                "(one to learn from and one to check with)",
                "add photos of this class (30 or more from the camera itself work well), or remove the folder",
            )
    warnings = []
    few = [f"{c} ({n})" for c, n in zip(photos.classes, counts.tolist(), strict=True) if n < FEW_PHOTOS_PER_CLASS]
    if few:
        warnings.append(f"few photos in {', '.join(few)}: expect a weak model; collect {FEW_PHOTOS_PER_CLASS * 3}+ per class")
    if counts.max() > IMBALANCE_RATIO * counts.min():
        warnings.append(
            f"the classes are imbalanced ({counts.max()} vs {counts.min()} photos): the loss is weighted per class "
            "so the small ones still count; more photos of them would help more"
        )
    return warnings


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Balanced per-class weights ``n / (k * count)``: each class carries the same total weight."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    w = np.zeros(num_classes, dtype=np.float64)
    present = counts > 0
    w[present] = len(labels) / (present.sum() * counts[present])
    return w


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded per-class split into (train indices, validation indices).

    Each class gives ``round(n * fraction)`` photos to validation, at least one and never all of them,
    so every class is both learnt and checked. ``fraction`` 0 keeps everything for training.
    """
    if fraction <= 0:
        return np.arange(len(labels)), np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    train: list[int] = []
    val: list[int] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        k = min(len(idx) - 1, max(1, round(len(idx) * fraction)))
        val.extend(idx[:k].tolist())
        train.extend(idx[k:].tolist())
    return np.asarray(sorted(train), dtype=np.int64), np.asarray(sorted(val), dtype=np.int64)


# --- augmentation: on the photo, before the runtime's framing --------------------------------
@dataclass(frozen=True)
class AugmentOptions:
    """Random changes applied to a photo before framing.

    Attributes:
        min_area: smallest random crop, as a fraction of the photo's area.
        max_aspect: crops range from ``1/max_aspect`` to ``max_aspect`` in aspect ratio.
        flip: mirror left-right half the time.
        brightness: brightness factor range ``1 +- brightness``.
        contrast: contrast factor range ``1 +- contrast``.
        saturation: saturation factor range ``1 +- saturation``.
    """

    min_area: float = 0.5
    max_aspect: float = 4 / 3
    flip: bool = True
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2


def random_crop(rgb: np.ndarray, rng: np.random.Generator, opts: AugmentOptions) -> np.ndarray:
    """A random sub-window (``min_area``..100 % of the area, aspect within ``max_aspect``), mirrored half the time."""
    h, w = rgb.shape[:2]
    area = rng.uniform(opts.min_area, 1.0) * h * w
    aspect = float(np.exp(rng.uniform(-np.log(opts.max_aspect), np.log(opts.max_aspect))))
    ch = int(min(h, max(1, round(np.sqrt(area / aspect)))))
    cw = int(min(w, max(1, round(np.sqrt(area * aspect)))))
    top = int(rng.integers(0, h - ch + 1))
    left = int(rng.integers(0, w - cw + 1))
    out = rgb[top : top + ch, left : left + cw]
    if opts.flip and rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def colour_jitter(rgb: np.ndarray, rng: np.random.Generator, opts: AugmentOptions) -> np.ndarray:
    """Random brightness, contrast and saturation, as a camera's exposure and white balance vary."""
    x = rgb.astype(np.float32)
    b = rng.uniform(1 - opts.brightness, 1 + opts.brightness)
    c = rng.uniform(1 - opts.contrast, 1 + opts.contrast)
    s = rng.uniform(1 - opts.saturation, 1 + opts.saturation)
    grey = x @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
    x = grey[..., None] + s * (x - grey[..., None])  # saturation around each pixel's grey
    x = c * (x - grey.mean()) + grey.mean()  # contrast around the mean grey
    x = b * x
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def model_input(rgb: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """The float model input for one photo: exactly the runtime's framing and normalisation."""
    from .calibration import preprocess

    return preprocess(rgb, spec)


def augmented_input(rgb: np.ndarray, spec: ModelSpec, rng: np.random.Generator, opts: AugmentOptions | None = None) -> np.ndarray:
    """A random variant of a photo (crop, flip, colour jitter), then framed exactly as the runtime frames it."""
    o = opts or AugmentOptions()
    return model_input(colour_jitter(random_crop(rgb, rng, o), rng, o), spec)


def progress_bar(items: Iterable[Any], enabled: bool, desc: str, unit: str, total: int | None = None) -> Iterable[Any]:
    """``items`` behind a tqdm bar when asked for and installed (it is in the ``convert`` extra)."""
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, unit=unit, leave=False, total=total)

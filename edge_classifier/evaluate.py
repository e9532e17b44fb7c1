"""Accuracy on a labelled set of photos: top-1/top-5, per class, the most confused pairs, side by side per framing.

A labelled set is a folder with one sub-folder per class, or a CSV of ``path,label`` rows. A class is named by its
label or one of its comma-separated synonyms (``ant`` for "ant, emmet, pismire"; case and ``_`` ignored), by its class
id (``285``), or, for a 1000-class ImageNet model, by its WordNet id (``n02124075``, as ImageNet's own folders are
named). The maths (hits, per-class accuracy, confusions) are pure functions on arrays; :func:`evaluate` runs a model
once per framing on photos decoded once, so ``--compare`` costs one decode per photo, not one per framing.

The converter's validation (``edge-convert --val``) reads its labelled folder through the same :class:`LabelResolver`
and scores with the same functions.
"""

from __future__ import annotations

import csv
import difflib
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DatasetError, EdgeClassifierError
from .prefetch import Target, default_jobs, prepared_photos
from .preprocess import list_images
from .spec import RESIZE_MODES, check_crop_fraction

_WNID = re.compile(r"^n\d{8}$")


@lru_cache(maxsize=1)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 ImageNet WordNet ids in class-id order (``n01440764`` is class 0, tench)."""
    text = resources.files("edge_classifier.data").joinpath("imagenet_wnids.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _norm(text: str) -> str:
    return " ".join(text.strip().lower().replace("_", " ").split())


def _singulars(name: str) -> list[str]:
    """English singulars a plural folder name may stand for, most specific first."""
    out = []
    if name.endswith("ies"):
        out.append(name[:-3] + "y")
    if name.endswith("es"):
        out.append(name[:-2])
    if name.endswith("s") and not name.endswith("ss"):
        out.append(name[:-1])
    return out


class LabelResolver:
    """Turns a folder or CSV label into a class id of one model.

    Args:
        labels: the model's class labels (background removed, as in :attr:`ModelSpec.labels`).
        num_classes: how many classes the model scores.
    """

    def __init__(self, labels: Sequence[str], num_classes: int) -> None:
        self.labels = tuple(labels)
        self.num_classes = num_classes
        self._by_name: dict[str, set[int]] = {}
        for i, label in enumerate(self.labels):
            for name in {label, *label.split(",")}:
                if _norm(name):
                    self._by_name.setdefault(_norm(name), set()).add(i)
        wnids = imagenet_wnids() if num_classes == 1000 else ()
        self._wnid = {w: i for i, w in enumerate(wnids)}

    def resolve(self, name: str, where: str = "label") -> int:
        """The class id ``name`` stands for.

        Raises:
            DatasetError: the name is unknown, ambiguous, or an id out of range.
        """
        text = name.strip()
        if text.isdigit():
            cid = int(text)
            if cid >= self.num_classes:
                raise DatasetError(
                    where,
                    f"class id {cid} is out of range for a model with {self.num_classes} classes",
                    f"use 0..{self.num_classes - 1}",
                )
            return cid
        if _WNID.match(text):
            if text in self._wnid:
                return self._wnid[text]
            why = (
                "is not one of ImageNet's 1000 WordNet ids"
                if self._wnid
                else f"is a WordNet id, but the model has {self.num_classes} classes, not ImageNet's 1000"
            )
            raise DatasetError(where, f"{text!r} {why}", "name the folder by the model's label or class id")
        ids = self._by_name.get(_norm(text), set())
        if not ids:
            # Folders are often named in the plural ("ants", "bees", "puppies"): accept a singular that names one class.
            for singular in _singulars(_norm(text)):
                if len(self._by_name.get(singular, ())) == 1:
                    ids = self._by_name[singular]
                    break
        if len(ids) == 1:
            return next(iter(ids))
        if len(ids) > 1:
            options = ", ".join(f"{i} ({self.labels[i]})" for i in sorted(ids))
            raise DatasetError(where, f"{text!r} names more than one class: {options}", "name the folder by the class id instead")
        close = difflib.get_close_matches(_norm(text), list(self._by_name), n=3, cutoff=0.6)
        hint = (
            f"did you mean {' or '.join(repr(c) for c in close)}?"
            if close
            else "name it by one of the model's labels, a class id, or a WordNet id"
        )
        if not self.labels:
            hint = "the model has no labels: name the folders by class id (0, 1, ...)"
        raise DatasetError(where, f"{text!r} is not a label of this model", hint)


@dataclass(frozen=True)
class LabelledImage:
    """One photo and its true class."""

    path: Path
    class_id: int


@dataclass
class Dataset:
    """A labelled set, ready to run.

    Attributes:
        items: the photos with their classes, in a stable order.
        empty_classes: class folders that hold no image (warned about, not fatal).
        missing: CSV rows whose file does not exist (counted with the unreadable ones).
        source: the folder or CSV it was read from.
    """

    items: list[LabelledImage]
    empty_classes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    source: str = ""


def read_dataset(source: str | Path, resolver: LabelResolver) -> Dataset:
    """Read a labelled folder (one sub-folder per class) or a CSV of ``path,label`` rows.

    Raises:
        DatasetError: nothing to evaluate, an unknown label, or an unreadable CSV.
    """
    src = Path(source)
    if not src.exists():
        raise DatasetError(str(src), "does not exist", "give a folder with one sub-folder per class, or a CSV of path,label rows")
    data = _read_csv(src, resolver) if src.is_file() else _read_folder(src, resolver)
    if not data.items:
        why = "holds no labelled image" + (
            f" (empty class folders: {', '.join(data.empty_classes)})" if data.empty_classes else ""
        )
        if data.missing:
            why = f"lists {len(data.missing)} file(s), none of which exists"
        raise DatasetError(
            str(src), why, "put photos in one sub-folder per class (photos/cat/*.jpg), or list them in a CSV of path,label"
        )
    return data


def _read_folder(root: Path, resolver: LabelResolver) -> Dataset:
    items: list[LabelledImage] = []
    empty: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        cid = resolver.resolve(folder.name, f"{root}/{folder.name}")
        photos = list_images(folder)
        if not photos:
            empty.append(folder.name)
        items.extend(LabelledImage(p, cid) for p in photos)
    return Dataset(items, empty, [], str(root))


def _read_csv(path: Path, resolver: LabelResolver) -> Dataset:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(str(path), f"cannot be read as a UTF-8 CSV ({exc})", "give a text file of path,label rows") from exc
    items: list[LabelledImage] = []
    missing: list[str] = []
    for n, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) != 2:
            raise DatasetError(
                f"{path}:{n}",
                f"has {len(row)} fields, expected 2 (path,label)",
                "write one path,label per row; quote paths with commas",
            )
        file, label = row[0].strip(), row[1].strip()
        if n == 1 and (file.lower(), label.lower()) == ("path", "label"):
            continue
        cid = resolver.resolve(label, f"{path}:{n}")
        photo = (path.parent / file) if not Path(file).is_absolute() else Path(file)
        if photo.is_file():
            items.append(LabelledImage(photo, cid))
        else:
            missing.append(str(photo))
    return Dataset(items, [], missing, str(path))


# --- framings -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Framing:
    """One way of fitting a photo to the model: a resize mode, its crop fraction, and the resampling filter.

    ``None`` fields keep what the model's spec says.
    """

    resize: str | None = None
    crop_fraction: float | None = None
    resample: str = "exact"

    @classmethod
    def parse(cls, text: str) -> Framing:
        """``MODE[:FRACTION][/RESAMPLE]``, e.g. ``center_crop:0.875``, ``stretch/fast``, ``model`` (the spec's own).

        Raises:
            DatasetError: an unknown mode or resampling, or a fraction outside (0, 1].
        """
        body, _, resample = text.strip().partition("/")
        mode, _, frac = body.partition(":")
        resample = resample or "exact"
        if resample not in ("exact", "fast"):
            raise DatasetError(
                f"framing {text!r}",
                f"resampling {resample!r} is unknown",
                "use /exact (Lanczos, as for photos) or /fast (as for camera frames)",
            )
        if mode in ("", "model"):
            return cls(None, None, resample)
        if mode not in RESIZE_MODES:
            raise DatasetError(
                f"framing {text!r}", f"{mode!r} is not a resize mode", f"use one of {', '.join(RESIZE_MODES)}, or 'model'"
            )
        fraction: float | None = None
        if frac:
            try:
                fraction = check_crop_fraction(float(frac))
            except (ValueError, EdgeClassifierError) as exc:
                raise DatasetError(
                    f"framing {text!r}", f"crop fraction {frac!r} is not a number in (0, 1]", "e.g. center_crop:0.875"
                ) from exc
        return cls(mode, fraction, resample)

    def describe(self, spec: Any) -> str:
        """The framing in words, with the spec's values filled in."""
        mode = self.resize or spec.resize
        frac = self.crop_fraction if self.crop_fraction is not None else spec.crop_fraction
        body = f"center_crop({frac:g})" if mode == "center_crop" else mode
        return f"{body}, {'Lanczos' if self.resample == 'exact' else 'fast box+bilinear'}"


# --- the maths ------------------------------------------------------------------------------------------------------
def topk_hits(scores: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    """Per row, whether the true class is among the ``k`` best scores (ties broken by class id)."""
    k = min(k, scores.shape[1])
    best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.asarray((best == truth[:, None]).any(axis=1))


def per_class_accuracy(pred: np.ndarray, truth: np.ndarray) -> dict[int, tuple[int, int]]:
    """class id -> (correct, total) over the rows whose truth is that class."""
    out: dict[int, tuple[int, int]] = {}
    for cid in np.unique(truth):
        rows = truth == cid
        out[int(cid)] = (int((pred[rows] == cid).sum()), int(rows.sum()))
    return out


def most_confused(pred: np.ndarray, truth: np.ndarray, n: int = 5) -> list[tuple[int, int, int]]:
    """The ``n`` most frequent (true, predicted, count) mistakes, most frequent first."""
    counts = Counter((int(t), int(p)) for t, p in zip(truth, pred, strict=True) if t != p)
    return [(t, p, c) for (t, p), c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


# --- running --------------------------------------------------------------------------------------------------------
@dataclass
class Evaluation:
    """One framing's result on a dataset."""

    framing: str
    images: int
    top1: float
    top5: float
    per_class: dict[str, dict[str, float | int]]
    confused: list[dict[str, Any]]
    images_per_second: float
    unreadable: int
    predictions: list[tuple[str, int, int]] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (predictions left out)."""
        d = {k: v for k, v in self.__dict__.items() if k != "predictions"}
        return d


ProgressFn = Callable[[int, int], None]


def evaluate(
    open_classifier: Callable[[Framing], Any],
    dataset: Dataset,
    framings: Sequence[Framing] = (Framing(),),
    *,
    progress: ProgressFn | None = None,
    on_unreadable: Callable[[Path, EdgeClassifierError], None] | None = None,
    jobs: int | None = None,
) -> list[Evaluation]:
    """Classify every photo of ``dataset`` with one classifier per framing; photos are decoded once.

    Args:
        open_classifier: makes a :class:`~edge_classifier.classifier.Classifier` (a context manager) for a framing.
        dataset: from :func:`read_dataset`.
        framings: the framings to compare; the first is the main result.
        progress: called with (done, total) after each photo.
        on_unreadable: called for each photo that cannot be decoded (it is skipped and counted).
        jobs: threads decoding and framing the next photos while the models run (:mod:`edge_classifier.prefetch`);
            default the cores the first model's interpreter leaves free, at least 1.

    Returns:
        one :class:`Evaluation` per framing, in order.
    """
    classifiers = [open_classifier(f) for f in framings]
    try:
        scores: list[list[np.ndarray]] = [[] for _ in framings]
        seconds = [0.0 for _ in framings]
        truth: list[int] = []
        kept: list[Path] = []
        unreadable = len(dataset.missing)
        # Each framing's resampling as predict() gave it on a decoded photo (an array: "auto" is the fast filter).
        targets = [Target(clf.spec, "fast" if clf.resample == "auto" else clf.resample) for clf in classifiers]
        threads = getattr(getattr(classifiers[0], "runtime_info", None), "num_threads", None)
        photos = prepared_photos([item.path for item in dataset.items], targets, jobs=jobs or default_jobs(threads))
        for n, (item, photo) in enumerate(zip(dataset.items, photos, strict=True), start=1):
            if photo.error is not None:
                unreadable += 1
                if on_unreadable is not None:
                    on_unreadable(item.path, photo.error)
            else:
                for i, clf in enumerate(classifiers):
                    t0 = time.perf_counter()
                    scores[i].append(clf.predict_framed(photo.pixels[i]).scores)
                    # The framing was done ahead in a worker; it still counts in this framing's time.
                    seconds[i] += time.perf_counter() - t0 + photo.frame_seconds[i]
                truth.append(item.class_id)
                kept.append(item.path)
            if progress is not None:
                progress(n, len(dataset.items))
        if not truth:
            raise DatasetError(
                dataset.source,
                f"none of its {len(dataset.items)} image(s) could be decoded",
                "check the files (run with -v to name them)",
            )
        t = np.asarray(truth)
        labels = classifiers[0].spec.labels
        return [
            _summarise(framings[i].describe(classifiers[i].spec), np.stack(scores[i]), t, labels, seconds[i], unreadable, kept)
            for i in range(len(framings))
        ]
    finally:
        for clf in classifiers:
            clf.close()


def _summarise(
    name: str, s: np.ndarray, t: np.ndarray, labels: Sequence[str], seconds: float, unreadable: int, paths: list[Path]
) -> Evaluation:
    def label(cid: int) -> str:
        return labels[cid] if 0 <= cid < len(labels) else f"class {cid}"

    pred = np.argmax(s, axis=1)
    per = {
        label(cid): {"id": cid, "correct": c, "total": tot, "accuracy": c / tot}
        for cid, (c, tot) in sorted(per_class_accuracy(pred, t).items())
    }
    confused = [{"true": label(a), "predicted": label(b), "count": c} for a, b, c in most_confused(pred, t)]
    return Evaluation(
        framing=name,
        images=len(t),
        top1=float(topk_hits(s, t, 1).mean()),
        top5=float(topk_hits(s, t, 5).mean()),
        per_class=per,
        confused=confused,
        images_per_second=len(t) / seconds if seconds > 0 else 0.0,
        unreadable=unreadable,
        predictions=[(str(p), int(a), int(b)) for p, a, b in zip(paths, t, pred, strict=True)],
    )


def class_counts(dataset: Dataset) -> Counter[int]:
    """How many photos each class has."""
    return Counter(item.class_id for item in dataset.items)

"""Photos decoded and framed ahead in worker threads while the interpreter runs: in order, with bounded memory.

A photo costs more to decode and frame (a Lanczos resize) than a fast model costs to run, so a folder classified one
photo after another keeps the interpreter idle most of the time. Here ``jobs`` threads prepare the next photos while
the caller's thread runs the model on the current one; results come back in the input order, and at most ``ahead``
photos are in flight, so memory stays flat however large the folder.

Threads, not processes, on purpose: Pillow's JPEG decoder and resize and OpenCV's resize release the GIL for the pixel
work, so the threads do run on the other cores; they share memory (no pixels pickled between processes, no second
copy of numpy, Pillow and OpenCV per worker) and start at once. JPEGs are decoded at a reduced scale when the model
needs fewer pixels (:func:`~edge_classifier.preprocess.load_image`'s ``min_size``).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from .errors import ConfigError, EdgeClassifierError
from .preprocess import fit_to_spec, load_image, min_source_size
from .results import Prediction
from .spec import ModelSpec

__all__ = [
    "FramedClassifier",
    "PreparedPhoto",
    "Target",
    "available_cores",
    "check_jobs",
    "default_jobs",
    "frame_photo",
    "ordered_map",
    "predict_photos",
    "prepared_photos",
]

T = TypeVar("T")
R = TypeVar("R")
_DONE = object()


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_jobs(interpreter_threads: int | None) -> int:
    """Worker threads for a folder: the cores the interpreter does not use, at least 1.

    Args:
        interpreter_threads: the interpreter's CPU threads (``runtime_info.num_threads``); None or 0 for an
            accelerator that needs no CPU threads of its own, which leaves all cores but the caller's.
    """
    used = interpreter_threads if interpreter_threads else 1
    return max(1, available_cores() - used)


def check_jobs(jobs: int) -> int:
    """``jobs`` when it is a whole number of at least 1.

    Raises:
        ConfigError: anything else.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(
            f"jobs={jobs!r}",
            "is not a whole number of at least 1",
            f"pass 1..{available_cores()} (default: the cores the interpreter leaves free)",
        )
    return jobs


def ordered_map(
    work: Callable[[T], R], items: Iterable[T], *, jobs: int, ahead: int | None = None
) -> Iterator[tuple[T, R | EdgeClassifierError]]:
    """``work(item)`` for each item in ``jobs`` threads, yielded in the items' order as ``(item, result)``.

    An :class:`EdgeClassifierError` raised by ``work`` is yielded as that item's result (the caller counts and names
    it; the rest go on); any other exception is raised in the caller at that item's turn. Closing the iterator early
    cancels what has not started and waits for the (at most ``jobs``) running items.

    Args:
        work: the function run in the threads.
        items: consumed lazily, ``ahead`` at a time.
        jobs: worker threads, at least 1.
        ahead: items submitted and not yet yielded, at most (default ``2 * jobs``): the bound on memory.

    Raises:
        ConfigError: ``jobs`` or ``ahead`` below 1.
    """
    check_jobs(jobs)
    limit = 2 * jobs if ahead is None else ahead
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError(
            f"ahead={ahead!r}", "is not a whole number of at least 1", "pass at least 1, or None for twice the jobs"
        )
    return _ordered(work, iter(items), jobs, limit)


def _ordered(work: Callable[[T], R], items: Iterator[T], jobs: int, limit: int) -> Iterator[tuple[T, R | EdgeClassifierError]]:
    def run(item: T) -> R | EdgeClassifierError:
        try:
            return work(item)
        except EdgeClassifierError as exc:
            return exc

    pending: deque[tuple[T, Future[R | EdgeClassifierError]]] = deque()
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="edge-classifier-prefetch")
    try:
        for item in items:
            pending.append((item, pool.submit(run, item)))
            if len(pending) >= limit:
                break
        while pending:
            item, future = pending.popleft()
            result = future.result()
            # Refill before handing the result over, so the workers stay busy while the caller uses it.
            nxt = next(items, _DONE)
            if nxt is not _DONE:
                pending.append((nxt, pool.submit(run, nxt)))  # type: ignore[arg-type]
            yield item, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class Target:
    """What one model needs from a photo: its spec (input size, resize mode, crop fraction) and the resampling.

    Attributes:
        spec: the model's :class:`~edge_classifier.spec.ModelSpec`.
        resample: ``exact`` (Lanczos, the default for photos) or ``fast``.
    """

    spec: ModelSpec
    resample: str = "exact"


@dataclass(frozen=True)
class PreparedPhoto:
    """One photo, decoded once and framed for each target, or the error that stopped it.

    Attributes:
        path: the file.
        pixels: one framed RGB uint8 array per target (the input size); empty when ``error`` is set.
        error: why the photo could not be read (named, as :func:`~edge_classifier.preprocess.load_image` raises it).
        decode_seconds: the worker's time decoding the file.
        frame_seconds: the worker's time framing it, per target.
    """

    path: Path
    pixels: tuple[np.ndarray, ...]
    error: EdgeClassifierError | None = None
    decode_seconds: float = 0.0
    frame_seconds: tuple[float, ...] = ()


def decode_size(targets: Sequence[Target]) -> tuple[int, int]:
    """The size a photo must keep, per axis, to serve every target without enlarging: the largest of their needs."""
    needs = [min_source_size(t.spec) for t in targets]
    return max(n[0] for n in needs), max(n[1] for n in needs)


def frame_photo(path: str | Path, targets: Sequence[Target], *, reduced: bool = True) -> PreparedPhoto:
    """Decode ``path`` once (reduced to what the targets need when ``reduced``) and frame it for each target.

    Raises:
        ImageError: the file is missing, unreadable or empty.
    """
    t0 = time.perf_counter()
    rgb = load_image(Path(path), min_size=decode_size(targets) if reduced else None)
    t1 = time.perf_counter()
    pixels, seconds = [], []
    for target in targets:
        pixels.append(fit_to_spec(rgb, target.spec, target.resample))
        t2 = time.perf_counter()
        seconds.append(t2 - t1)
        t1 = t2
    return PreparedPhoto(Path(path), tuple(pixels), None, t1 - t0 - sum(seconds), tuple(seconds))


def prepared_photos(
    paths: Iterable[str | Path], targets: Sequence[Target], *, jobs: int, reduced: bool = True, ahead: int | None = None
) -> Iterator[PreparedPhoto]:
    """Each photo of ``paths``, in order, decoded and framed in ``jobs`` worker threads (see :func:`frame_photo`).

    A photo that cannot be read comes back with ``error`` set and no pixels; the others still come.

    Raises:
        ConfigError: ``jobs`` below 1, or no targets.
    """
    if not targets:
        raise ConfigError("prepared_photos(targets=())", "names no model to frame the photos for", "pass one Target per model")
    for path, result in ordered_map(lambda p: frame_photo(p, targets, reduced=reduced), paths, jobs=jobs, ahead=ahead):
        if isinstance(result, EdgeClassifierError):
            yield PreparedPhoto(Path(path), (), result)
        else:
            yield result


class FramedClassifier(Protocol):
    """What :func:`predict_photos` needs of a classifier; :class:`~edge_classifier.Classifier` is one."""

    @property
    def spec(self) -> ModelSpec:
        """The model's contract: the photos are framed by it."""

    @property
    def resample(self) -> str:
        """``auto``/``exact`` (Lanczos for photos) or ``fast``."""

    def predict_framed(self, pixels: np.ndarray) -> Prediction:
        """Classify pixels framed by :func:`~edge_classifier.preprocess.fit_to_spec` for :attr:`spec`."""


def predict_photos(
    classifier: FramedClassifier, paths: Iterable[str | Path], *, jobs: int, reduced: bool = True
) -> Iterator[tuple[Path, Prediction | EdgeClassifierError]]:
    """Classify photo files in order, the next ones decoded and framed in ``jobs`` threads while the model runs.

    The answers are those of ``classifier.predict(path)`` on the same files, except that large JPEGs are decoded at
    a reduced scale when ``reduced`` (their top-1 is unchanged within the tolerance measured by
    ``benchmarks/bench_pixels.py``). Each Prediction's timings add ``decode`` and ``frame``: the worker's seconds,
    spent while the model ran on an earlier photo.

    Yields:
        (path, Prediction) per photo, or (path, error) for one that cannot be read or classified, in the order of
        ``paths`` (as a loop over ``predict(path)`` that catches :class:`EdgeClassifierError` would).

    Raises:
        ConfigError: ``jobs`` below 1.
    """
    # Photos get Lanczos unless the classifier was made with resample="fast", as predict(path) does.
    target = Target(classifier.spec, "fast" if classifier.resample == "fast" else "exact")
    for photo in prepared_photos(paths, [target], jobs=jobs, reduced=reduced):
        if photo.error is not None:
            yield photo.path, photo.error
            continue
        try:
            pred = classifier.predict_framed(photo.pixels[0])
        except EdgeClassifierError as exc:  # the model failed on this photo: reported for it, the rest go on
            yield photo.path, exc
            continue
        pred.timings["decode"] = photo.decode_seconds
        pred.timings["frame"] = photo.frame_seconds[0]
        yield photo.path, pred

"""``edge-classifier classify``: classify image files and print the top classes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import EdgeClassifierError
from ..options import PHOTO_OPTIONS, add_options
from . import EXIT_ERROR, EXIT_OK, add_model_options, classifier_from_args


def register(sub: Any) -> None:
    """Add the ``classify`` subcommand."""
    p = sub.add_parser(
        "classify",
        help="classify image files",
        description="Classify image files with a TFLite classifier. The next photos are decoded and framed in worker "
        "threads while the model runs (--jobs); JPEGs larger than the model needs are decoded at a reduced scale.",
        usage="%(prog)s [options] IMAGE|FOLDER [IMAGE|FOLDER ...]  (options: --help)",
    )
    p.add_argument("images", nargs="+", help="image files (jpg, png, bmp, ...) or folders (every image in them, sorted)")
    add_model_options(p)
    add_options(p, PHOTO_OPTIONS)
    p.add_argument("--json", action="store_true", help="one JSON object per image on stdout")
    p.set_defaults(func=run)


def _expand(items: list[str]) -> tuple[list[str], list[EdgeClassifierError]]:
    """Folders replaced by their images (sorted, recursively), files kept as given; errors for empty folders."""
    from ..sources.images import resolve_images

    images: list[str] = []
    errors: list[EdgeClassifierError] = []
    for item in items:
        if not Path(item).is_dir():
            images.append(item)
            continue
        try:
            images.extend(str(p) for p in resolve_images(item))
        except EdgeClassifierError as exc:
            errors.append(exc)
    return images, errors


def run(args: argparse.Namespace) -> int:
    """Classify each image in order, the next ones prepared in worker threads; a bad image is reported and the others
    still run."""
    from ..prefetch import default_jobs, predict_photos

    images, folder_errors = _expand(args.images)
    for exc in folder_errors:
        print(f"error: {exc}", file=sys.stderr)
    clf = classifier_from_args(args)
    failures = len(folder_errors)
    with clf:
        jobs = args.jobs or default_jobs(clf.runtime_info.num_threads)
        for image, (_, pred) in zip(images, predict_photos(clf, images, jobs=jobs), strict=True):
            if isinstance(pred, EdgeClassifierError):
                exc = pred
                failures += 1
                print(f"error: {exc}", file=sys.stderr)
                if args.json:
                    print(json.dumps({"image": image, "error": str(exc)}), flush=True)
                continue
            if args.json:
                record: dict[str, Any] = {
                    "image": image,
                    "classes": [c.to_dict() for c in pred.classes],
                    "model": str(clf.model_path),
                    "backend": clf.runtime_info.runtime,
                    "device": clf.runtime_info.device,
                    "inference_ms": round(pred.timings["inference"] * 1000, 3),
                }
                print(json.dumps(record), flush=True)
            else:
                print(image)
                for c in pred.classes:
                    print(f"  {c.score:6.3f}  {c.id:4d}  {c.label}")
    return EXIT_ERROR if failures else EXIT_OK

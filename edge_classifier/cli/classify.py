"""``edge-classifier classify``: classify image files and print the top classes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import EdgeClassifierError
from . import EXIT_ERROR, EXIT_OK, add_model_options, classifier_from_args


def register(sub: Any) -> None:
    """Add the ``classify`` subcommand."""
    p = sub.add_parser(
        "classify",
        help="classify image files",
        description="Classify image files with a TFLite classifier.",
        usage="%(prog)s [options] IMAGE [IMAGE ...]  (options: --help)",
    )
    p.add_argument("images", nargs="+", help="image files (jpg, png, bmp, ...)")
    add_model_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object per image on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Classify each image; a bad image is reported and the others still run."""
    clf = classifier_from_args(args)
    failures = 0
    with clf:
        for image in args.images:
            try:
                pred = clf.predict(image)
            except EdgeClassifierError as exc:
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

"""``edge-classifier evaluate``: accuracy on a labelled folder or CSV, optionally for several framings side by side."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import EdgeClassifierError
from ..options import PHOTO_OPTIONS, add_options
from . import EXIT_OK, add_model_options, classifier_from_args

DEFAULT_COMPARE = ("model", "center_crop:0.875", "center_crop:1.0", "stretch", "letterbox")


def register(sub: Any) -> None:
    """Add the ``evaluate`` subcommand."""
    p = sub.add_parser(
        "evaluate",
        help="accuracy on labelled photos (top-1/top-5, per class, confusions)",
        description=(
            "Measure a model's accuracy on labelled photos: a folder with one sub-folder per class (named by label, "
            "class id, or ImageNet WordNet id such as n01440764) or a CSV of path,label rows."
        ),
    )
    p.add_argument("dataset", type=Path, help="labelled folder (DIR/<class>/*.jpg) or CSV (path,label)")
    add_model_options(p)
    add_options(p, PHOTO_OPTIONS)
    p.add_argument(
        "--compare",
        nargs="*",
        metavar="FRAMING",
        help="compare framings side by side: MODE[:CROP][/exact|/fast], e.g. center_crop:0.875 stretch letterbox/fast; "
        "alone: " + " ".join(DEFAULT_COMPARE),
    )
    p.add_argument(
        "--resample", choices=("exact", "fast"), default="exact", help="resampling filter (default exact: Lanczos, as for photos)"
    )
    p.add_argument("--json", action="store_true", help="print the results as one JSON document")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the dataset, run each framing, print the report."""
    from ..evaluate import Framing, LabelResolver, evaluate, read_dataset

    texts = [f"model/{args.resample}"] if args.compare is None else (list(args.compare) or list(DEFAULT_COMPARE))
    framings = [Framing.parse(t if "/" in t else f"{t}/{args.resample}") for t in texts]
    probe = classifier_from_args(args)
    with probe:
        resolver = LabelResolver(probe.spec.labels, probe.spec.num_classes)
    data = read_dataset(args.dataset, resolver)
    for name in data.empty_classes:
        print(f"warning: {args.dataset}/{name}: class folder holds no image (skipped)", file=sys.stderr)

    def unreadable(path: Path, exc: EdgeClassifierError) -> None:
        if args.verbose:
            print(f"skipped: {exc}", file=sys.stderr)

    if args.verbose:
        for missing in data.missing:
            print(f"skipped: {missing}: listed in the CSV but missing", file=sys.stderr)
    bar = _Progress(enabled=not args.no_progress and not args.json and sys.stderr.isatty())
    results = evaluate(lambda f: _classifier_for(args, f), data, framings, progress=bar, on_unreadable=unreadable, jobs=args.jobs)
    bar.close()
    if args.json:
        print(
            json.dumps(
                {"dataset": str(args.dataset), "model": str(args.model or "bundled"), "results": [r.as_dict() for r in results]},
                indent=1,
            )
        )
        return EXIT_OK
    _print_report(results, str(args.dataset))
    return EXIT_OK


def _classifier_for(args: argparse.Namespace, framing: Any) -> Any:
    ns = argparse.Namespace(**vars(args))
    if framing.resize is not None:
        ns.resize = framing.resize
    if framing.crop_fraction is not None:
        ns.crop_fraction = framing.crop_fraction
    clf = classifier_from_args(ns)
    clf.resample = framing.resample
    return clf


def _print_report(results: list[Any], dataset: str) -> None:
    main = results[0]
    print(
        f"{dataset}: {main.images} images"
        + (f", {main.unreadable} unreadable (skipped; -v names them)" if main.unreadable else "")
    )
    if len(results) > 1:
        width = max(len(r.framing) for r in results)
        print(f"  {'framing':<{width}}  top-1   top-5   img/s")
        for r in results:
            print(f"  {r.framing:<{width}}  {100 * r.top1:5.1f}%  {100 * r.top5:5.1f}%  {r.images_per_second:6.1f}")
        print()
    print(f"{main.framing}: top-1 {100 * main.top1:.1f}%, top-5 {100 * main.top5:.1f}%, {main.images_per_second:.1f} images/s")
    print("per class (worst first):")
    worst = sorted(main.per_class.items(), key=lambda kv: (kv[1]["accuracy"], kv[0]))
    for label, row in worst[:20]:
        print(f"  {100 * row['accuracy']:5.1f}%  {row['correct']:>4}/{row['total']:<4} {label}")
    if len(worst) > 20:
        print(f"  ... {len(worst) - 20} more classes (--json lists all)")
    if main.confused:
        print("most confused (true -> predicted):")
        for c in main.confused:
            print(f"  {c['count']:4d}  {c['true']} -> {c['predicted']}")


class _Progress:
    """A one-line progress bar on stderr, drawn only on a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or (done % 8 and done != total):
            return
        width = 30
        filled = width * done // max(1, total)
        sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        sys.stderr.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()

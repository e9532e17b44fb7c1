"""``edge-classifier collect LABEL``: training photos from the camera that will run the model, one every few seconds."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..options import COLLECT_OPTIONS, add_options
from . import EXIT_OK


def register(sub: Any) -> None:
    """Add the ``collect`` subcommand."""
    p = sub.add_parser(
        "collect",
        help="save training photos of one class from a camera (OUT/LABEL/*.jpg)",
        description=(
            "Save photos of one class from the camera that will run the model, one every few seconds, into OUT/LABEL/ "
            "(the layout `edge-convert train OUT` reads). Run it once per class while you vary what should not matter "
            "(light, time of day, people passing). Without --source: the camera when one is present, else the sample clip."
        ),
    )
    p.add_argument("label", help='the class: the folder\'s name, e.g. "garage door open"')
    add_options(p, COLLECT_OPTIONS)
    p.set_defaults(func=run)


def _timed(source: Any) -> Iterator[Any]:
    """The source's frames on the stream's own time, by the loop's rule (:func:`~edge_classifier.sources.file_fps`),
    so ``--every 2`` means two seconds of video whatever the decoding speed, and of the clock for a camera."""
    from ..sources import file_fps

    fps = file_fps(source)
    for frame in source:
        yield dataclasses.replace(frame, t_stream=frame.index / fps) if fps else frame


def run(args: argparse.Namespace) -> int:
    """Open the source and save the photos; a summary with the next step at the end."""
    from ..collect import Collected, check_label, collect
    from ..redact import redact_url
    from ..sources import open as open_source
    from .run import resolve_source

    label = check_label(args.label)  # before a camera is opened
    # Whole frames: photos are framed at training, as the runtime frames the camera's picture.
    spec, options = resolve_source(args, full_frames=True, command="collect")

    def saved(path: Path, n: int) -> None:
        if not args.quiet:
            print(f"{path}  ({n}/{args.count})", flush=True)

    interrupted = False
    with open_source(spec, **options) as source:
        try:
            done = collect(_timed(source), args.out, label, args.count, args.every, args.quality, on_saved=saved)
        except KeyboardInterrupt as exc:
            done = getattr(exc, "collected", None) or Collected(Path(args.out) / label, ended="interrupted")
            interrupted = True
    where = redact_url(str(spec))
    total = done.already + len(done.saved)
    line = f"[collect] {len(done.saved)} photo(s) of {label!r} from {where} in {done.folder} ({total} there now)"
    if done.ended == "source":
        line += f"; the source ended after {done.frames} frames, before {args.count} photos (lower --every for more)"
    elif interrupted:
        line += "; interrupted (every photo saved is whole)"
    print(line, file=sys.stderr)
    out = Path(args.out)
    classes = sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")) if out.is_dir() else []
    train = f"edge-convert train {args.out} -o out/"
    if len(classes) < 2:
        print(f"[collect] next: collect another class (training needs at least 2), then: {train}", file=sys.stderr)
    else:
        print(f"[collect] classes in {args.out}: {', '.join(classes)}; next: {train}", file=sys.stderr)
    if interrupted:
        raise KeyboardInterrupt
    return EXIT_OK
